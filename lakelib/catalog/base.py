"""The one small interface every metastore backend implements, and the ``none`` backend.

Jobs call it only after their data is complete: ``ensure_table`` then ``register_partitions`` with the folder
of every partition they wrote. Registering is idempotent: an identical partition is left alone, a partition
whose location differs is re-pointed (after a compaction, or a hand edit), a new one is created.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Collection, Mapping, Sequence

from lakelib.errors import ForeignTableError, PartialRegistrationError
from lakelib.paths import same_location
from lakelib.schema import MARK, Table, type_key


@dataclass
class Partition:
    """A partition of a table: its key values (in the table's key order) and the folder holding its files."""

    values: dict[str, str]
    location: str


@dataclass
class RegisterResult:
    """What :meth:`Catalog.register_partitions` changed."""

    created: list[dict[str, str]] = field(default_factory=list)
    repointed: list[dict[str, str]] = field(default_factory=list)
    unchanged: int = 0


def partition_name(table: Table, values: Mapping[str, str] | Sequence[str]) -> str:
    """A partition as messages name it: ``events (sourceid=web, dt=2020-01-02)``.

    ``values`` is a mapping of key to value, or the values in the table's key order.

    >>> from lakelib.schema import EVENTS
    >>> partition_name(EVENTS, {"dt": "2020-01-02", "sourceid": "web"})
    'events (sourceid=web, dt=2020-01-02)'
    >>> partition_name(EVENTS, ["web", "2020-01-02"])
    'events (sourceid=web, dt=2020-01-02)'
    """
    if isinstance(values, Mapping):
        values = [values.get(k, "?") for k in table.partition_keys]
    pairs = ", ".join(f"{k}={v}" for k, v in zip(table.partition_keys, values))
    return f"{table.name} ({pairs})"


def selects(
    table: Table, values: Mapping[str, str], sources: Collection[str] | None, days: Collection[str] | None
) -> bool:
    """Whether a partition is one of the given sources (first key) and days (second key); ``None`` = any.

    >>> from lakelib.schema import EVENTS
    >>> selects(EVENTS, {"sourceid": "web", "dt": "2020-01-02"}, ["web"], None)
    True
    >>> selects(EVENTS, {"sourceid": "web", "dt": "2020-01-02"}, None, ["2020-01-03"])
    False
    """
    return (sources is None or values.get(table.source_key) in sources) and (
        days is None or table.day_key is None or values.get(table.day_key) in days
    )


def sources_and_days(table: Table, values: Sequence[Mapping[str, object]]) -> tuple[set[str], set[str] | None]:
    """The sources and days (``None`` for a table without a day key) that a listing of ``values`` must cover.

    >>> from lakelib.schema import EVENTS
    >>> sources_and_days(EVENTS, [{"sourceid": "web", "dt": "2020-01-02"}])
    ({'web'}, {'2020-01-02'})
    """
    sources = {str(v[table.source_key]) for v in values}
    days = None if table.day_key is None else {str(v[table.day_key]) for v in values}
    return sources, days


def partial_registration(
    database: str,
    table: Table,
    wanted: Sequence[Mapping[str, str]],
    registered: Collection[tuple[str, ...]] | None,
    cause: BaseException,
) -> PartialRegistrationError:
    """The error for a registration that failed part way, saying how many partitions are registered.

    Parameters
    ----------
    database
        The catalog database, for the message.
    table
        The table.
    wanted
        The key values of every partition the call was to register.
    registered
        The key tuples (in the table's key order) the catalog holds at the wanted location, read back after the
        failure; ``None`` when reading back failed too.
    cause
        The catalog's refusal; its one line starts the message.

    Examples
    --------
    >>> from lakelib.schema import EVENTS
    >>> wanted = [{"sourceid": "web", "dt": d} for d in ("2020-01-01", "2020-01-02")]
    >>> err = partial_registration("db", EVENTS, wanted, {("web", "2020-01-01")}, RuntimeError("glue said no"))
    >>> for part in str(err).split(": "): print(part)
    glue said no; 1 of 2 partitions of db.events are registered, 1 are not (the run report lists which)
    rerun the job to register the rest
    >>> err.not_registered
    [{'sourceid': 'web', 'dt': '2020-01-02'}]
    """
    keys = table.partition_keys
    values = [{k: str(v[k]) for k in keys} for v in wanted]
    name = f"{database}.{table.name.lower()}"
    if registered is None:
        message = (f"{cause}; whether the {len(values)} partitions of {name} are registered could not be read back: "
                   "rerun the job to register them")
        return PartialRegistrationError(message, table=table.name, unknown=values)
    done = [v for v in values if tuple(v.values()) in registered]
    missing = [v for v in values if tuple(v.values()) not in registered]
    message = (f"{cause}; {len(done)} of {len(values)} partitions of {name} are registered, {len(missing)} are not "
               "(the run report lists which): rerun the job to register the rest")
    return PartialRegistrationError(message, table=table.name, registered=done, not_registered=missing)


def is_marked(parameters: Mapping[str, str] | None) -> bool:
    """Whether a table's parameters carry lakelib's :data:`MARK`.

    >>> is_marked({"lakelib.managed": "true"}), is_marked({"EXTERNAL": "TRUE"}), is_marked(None)
    (True, False, False)
    """
    return (parameters or {}).get(MARK[0]) == MARK[1]


def check_adoptable(name: str, table: Table, location: str, have_location: str, have_keys: Sequence[str],
                    have_columns: Mapping[str, str]) -> None:
    """Refuse an unmarked table unless it is the one lakelib would create (a lake made before the mark existed).

    It is adopted when it lives at ``location``, has the same partition keys, and each of its columns is one of
    ``table``'s with the same type or one that type widens to.

    Raises
    ------
    ForeignTableError
        It is someone else's table: the message names it, what differs, and how to proceed.
    """
    from lakelib.typed import is_widening

    wanted = {c.name: type_key(c.type) for c in table.columns}
    odd = sorted(c for c, t in have_columns.items() if c not in wanted or not is_widening(t, wanted[c]))
    if not same_location(have_location, location, s3a_is_s3=False):
        why = f"it is at {have_location}, lakelib's is at {location}"
    elif [k.lower() for k in have_keys] != list(table.partition_keys):
        why = f"it is partitioned by ({', '.join(have_keys)}), lakelib's by ({', '.join(table.partition_keys)})"
    elif odd:
        why = f"its column(s) {', '.join(odd[:5])} are not lakelib's"
    else:
        return
    raise ForeignTableError(f"table {name} was not created by lakelib ({why}); lakelib leaves it alone: drop or "
                            f"rename it, or set catalog.database to another database")


class Catalog(abc.ABC):
    """A metastore lakelib keeps true: Spark's Hive metastore, AWS Glue, or none."""

    kind = "abstract"
    database: str = ""
    #: Whether the catalog records where each partition is (``none`` does not).
    holds_locations = True
    #: Whether some readers find partitions by their default folders whatever the catalog says (no catalog, or
    #: Athena's partition projection): then partitions are kept in their default folders.
    read_by_path = False

    @abc.abstractmethod
    def ensure_table(self, table: Table, location: str) -> None:
        """Create the database and the table (external, Parquet, partitioned, marked with :data:`MARK`) if they do not
        exist; bring a table lakelib created to ``table``'s columns.

        Raises
        ------
        ForeignTableError
            The table exists and lakelib did not create it (:func:`check_adoptable`).
        """

    def ensure_tables(self, items: Sequence[tuple[Table, str]]) -> None:
        """:meth:`ensure_table` for many tables (``(table, location)``); backends look them all up at once and
        only touch those that are missing or differ."""
        for table, location in items:
            self.ensure_table(table, location)

    def foreign_tables(self) -> set[str]:
        """Names of the database's tables that lakelib did not create (no :data:`MARK`), lower case."""
        return set()

    @abc.abstractmethod
    def register_partitions(self, table: Table, partitions: Sequence[Partition]) -> RegisterResult:
        """Create missing partitions and re-point those whose location differs; leave identical ones alone.

        Raises
        ------
        PartialRegistrationError
            The metastore refused part way; it says which partitions are registered (a rerun finishes).
        """

    @abc.abstractmethod
    def partition_location(self, table: Table, values: Mapping[str, str]) -> str | None:
        """The registered folder of one partition, or ``None`` when it is not registered."""

    @abc.abstractmethod
    def list_partitions(
        self, table: Table, sources: Collection[str] | None = None, days: Collection[str] | None = None
    ) -> list[Partition]:
        """The registered partitions of a table for some sources and days (``None``: all); empty when the table
        does not exist. Backends ask the metastore for those partitions only where it can filter."""

    @abc.abstractmethod
    def drop_partitions(self, table: Table, values: Sequence[Mapping[str, str]]) -> None:
        """Remove partitions from the catalog (never their files); missing ones are ignored."""


class NoCatalog(Catalog):
    """``catalog.kind: none``: nothing is registered; readers use the table folders directly."""

    kind = "none"
    holds_locations = False
    read_by_path = True

    def __init__(self, database: str = "segment_logs") -> None:
        self.database = database

    def ensure_table(self, table: Table, location: str) -> None:
        return None

    def register_partitions(self, table: Table, partitions: Sequence[Partition]) -> RegisterResult:
        return RegisterResult(unchanged=len(partitions))

    def partition_location(self, table: Table, values: Mapping[str, str]) -> str | None:
        return None

    def list_partitions(
        self, table: Table, sources: Collection[str] | None = None, days: Collection[str] | None = None
    ) -> list[Partition]:
        return []

    def drop_partitions(self, table: Table, values: Sequence[Mapping[str, str]]) -> None:
        return None
