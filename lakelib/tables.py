"""The lake's tables as a job sees them: find partitions, read them, publish new versions of them.

With a catalog, a partition lives wherever the catalog points (a version folder under
``<lake.tables>/_versions/``, or the default Hive-style folder ``<lake.tables>/<table>/sourceid=<id>/dt=<day>/``
of older lakes); without one, in its default folder. :class:`Tables` hides that from the jobs, and is their one
way in and out of the lake:

- :meth:`Tables.find` says which partitions of a table exist for some sources and days, and where;
- :meth:`Tables.read` reads only the asked columns of exactly those partitions, the keys added as string columns;
- :meth:`Tables.stage` / :meth:`Tables.publish` (or :meth:`Tables.write`, both at once) change partitions through
  the publish protocol (:mod:`lakelib.publish`): a new version, verified, then switched in one catalog batch.

A typical job::

    tables = open_tables(spark, config, report.run_id)
    events = tables.read(EVENTS, tables.find(EVENTS, sources=["web"], days=days), ["messageid", "type"])
    tables.write(MESSAGE_TYPE_COUNTS_DAILY, count_by_type(events), expected={("web", "2020-01-02"): 6}, report=report)
"""
from __future__ import annotations

import logging
from datetime import date
from functools import reduce
from typing import TYPE_CHECKING, ContextManager, Iterable, Mapping, Sequence, Union

from lakelib.catalog.base import Catalog, NoCatalog, Partition
from lakelib.errors import LakelibError
from lakelib.paths import canonical_location, join, parse_partition_dir, partition_dir, table_dir
from lakelib.publish import VERSION_KEY, Key, Published, Publisher, Staged, Target
from lakelib.schema import Table, get_table, spark_type
from lakelib.storage import PARALLEL_FILE_CALLS, each

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from lakelib.checksum import Checksum
    from lakelib.config import Config
    from lakelib.report import RunReport
    from lakelib.storage import Storage

__all__ = ["Partition", "Tables", "open_tables", "find_partitions", "read_partitions", "partition_location"]

log = logging.getLogger(__name__)

TableRef = Union[Table, str]


def as_table(table: TableRef) -> Table:
    """``table`` itself, or the :class:`~lakelib.schema.Table` of that name.

    >>> as_table("events").partition_keys
    ('sourceid', 'dt')
    """
    return table if isinstance(table, Table) else get_table(table)


def key_values(table: TableRef, values: Mapping[str, object]) -> dict[str, str]:
    """The partition key values of ``values`` as strings, in the table's key order (other keys dropped).

    Raises
    ------
    KeyError
        A partition key is missing from ``values``.

    >>> key_values("message_type_counts_yearly", {"end_dt": date(2020, 1, 2), "sourceid": "web", "x": 1})
    {'sourceid': 'web', 'end_dt': '2020-01-02'}
    """
    keys = as_table(table).partition_keys
    missing = [k for k in keys if k not in values]
    if missing:
        raise KeyError(f"partition values {dict(values)} lack {', '.join(missing)}")
    return {k: _text(values[k]) for k in keys}


def partition_location(tables_root: str, table: TableRef, values: Mapping[str, object]) -> str:
    """The default folder of one partition: ``<tables_root>/<table>/<key>=<value>/...``.

    >>> partition_location("s3://b/tables", "events", {"dt": "2020-01-02", "sourceid": "web"})
    's3://b/tables/events/sourceid=web/dt=2020-01-02'
    """
    t = as_table(table)
    return join(table_dir(tables_root, t.name), partition_dir(key_values(t, values)))


def _text(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def find_partitions(
    table: TableRef,
    tables_root: str,
    storage: Storage,
    catalog: Catalog,
    sources: Iterable[str] | None = None,
    days: Iterable[date | str] | None = None,
    skip: Iterable[Mapping[str, object]] = (),
) -> list[Partition]:
    """Which partitions of a table exist for the given sources and days, and where their files are.

    A partition the catalog knows is taken at the catalog's location (after a compaction it is not the
    default folder). Any other partition is taken at its default folder when that folder holds data files
    (``catalog.kind: none``, or written but not registered yet). Days with no partition are simply absent.

    Parameters
    ----------
    table
        The table (or its name); its first partition key is the source, its second the day (``dt`` or ``end_dt``).
    tables_root
        ``lake.tables``.
    storage
        File-system access (lists the table's folders: one listing per source, one per candidate day).
    catalog
        Where registered partitions are looked up (one ``list_partitions`` call, given the sources and days so
        that the metastore returns those partitions only).
    sources
        Source ids to look at; ``None`` = every source found in the catalog or under the table's folder.
    days
        Values of the day key to look at; ``None`` = every day found.
    skip
        Key values the caller does not want (it has them already): they are neither returned nor checked on
        disk, which saves one listing each (on S3, a year of days is 365 requests per source).

    Returns
    -------
    list[Partition]
        Sorted by key values; ``values`` hold strings in the table's key order.
    """
    t = as_table(table)
    source_key, day_key = t.partition_keys[0], t.partition_keys[1]
    wanted_sources = None if sources is None else {str(s) for s in sources}
    wanted_days = None if days is None else {_text(d) for d in days}
    skipped = {tuple(key_values(t, v).values()) for v in skip}

    def wanted(values: Mapping[str, str]) -> bool:
        return (
            (wanted_sources is None or values.get(source_key) in wanted_sources)
            and (wanted_days is None or values.get(day_key) in wanted_days)
            and tuple(values.get(k) for k in t.partition_keys) not in skipped
        )

    found: dict[tuple[str, ...], Partition] = {}
    for part in catalog.list_partitions(t, wanted_sources, wanted_days):
        values = {k: str(part.values[k]) for k in t.partition_keys if k in part.values}
        if len(values) == len(t.partition_keys) and wanted(values):
            found[tuple(values.values())] = Partition(values, part.location)
    from_catalog = len(found)

    root = table_dir(tables_root, t.name)
    if wanted_sources is None:
        source_dirs = [(f.name, parse_partition_dir(f.name).get(source_key)) for f in storage.list(root) if f.is_dir]
    else:
        source_dirs = [(partition_dir({source_key: s}), s) for s in sorted(wanted_sources)]
    on_disk = 0
    for dir_name, source in source_dirs:
        if source is None:
            continue
        for entry in storage.list(join(root, dir_name)):
            day = parse_partition_dir(entry.name).get(day_key) if entry.is_dir else None
            if day is None:
                continue
            values = {source_key: source, day_key: day}
            key = tuple(values.values())
            if key in found or not wanted(values):
                continue
            if storage.data_files(entry.path):
                found[key] = Partition(values, partition_location(tables_root, t, values))
                on_disk += 1
    log.debug(
        "%s: %d partitions found (%d from the catalog, %d from folders)", t.name, len(found), from_catalog, on_disk
    )
    return [found[k] for k in sorted(found)]


def read_partitions(
    spark: SparkSession, table: TableRef, partitions: Sequence[Partition], columns: Sequence[str]
) -> DataFrame:
    """Read some columns of some partitions of a table, with the partition keys added as string columns.

    Partitions in Hive-style folders under a common root (default folders, or the version folders
    ``.../<key>=<value>/v=<run_id>`` of :mod:`lakelib.publish`) are read in one scan per root with ``basePath``; any
    other location is read on its own with its key values added as literals, and the scans are unioned. Only
    ``columns`` are read from the Parquet files.

    Parameters
    ----------
    spark
        The session.
    table
        The table (or its name).
    partitions
        From :func:`find_partitions`; nothing else is listed or read.
    columns
        Data columns to read (not the partition keys, which are always added).

    Returns
    -------
    DataFrame
        ``columns`` then the partition keys; empty (with that schema) when ``partitions`` is empty.

    Raises
    ------
    LakelibError
        A column that the table does not have.
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    t = as_table(table)
    types = {c.name: c.type for c in t.columns}
    unknown = [c for c in columns if c not in types]
    if unknown:
        raise LakelibError(f"table {t.name} has no column {', '.join(unknown)}")
    data_fields = [T.StructField(c, spark_type(types[c]), True) for c in columns]
    key_fields = [T.StructField(k, T.StringType(), True) for k in t.partition_keys]
    names = list(columns) + list(t.partition_keys)
    if not partitions:
        return spark.createDataFrame([], T.StructType(data_fields + key_fields))

    by_base: dict[tuple[str, bool], list[str]] = {}
    alone: list[Partition] = []
    for part in partitions:
        values = key_values(t, part.values)
        suffix = "/" + partition_dir(values)
        location = canonical_location(part.location, s3a_is_s3=False)
        parent, _, last = location.rpartition("/")
        if location.endswith(suffix):
            by_base.setdefault((location[: -len(suffix)], False), []).append(location)
        elif last.startswith(f"{VERSION_KEY}=") and parent.endswith(suffix):
            by_base.setdefault((parent[: -len(suffix)], True), []).append(location)
        else:
            alone.append(Partition(values, location))

    frames = []
    version_field = [T.StructField(VERSION_KEY, T.StringType(), True)]
    for (base, versioned), paths in by_base.items():
        # An explicit schema: only these columns are read, and the keys stay strings (no type inference).
        schema = T.StructType(data_fields + key_fields + (version_field if versioned else []))
        frames.append(spark.read.schema(schema).option("basePath", base).parquet(*paths).select(*names))
    for part in alone:
        df = spark.read.schema(T.StructType(data_fields)).parquet(part.location)
        frames.append(df.select(*columns, *[F.lit(v).cast("string").alias(k) for k, v in part.values.items()]))
    log.debug("%s: reading %d partitions in %d scans", t.name, len(partitions), len(frames))
    return reduce(lambda a, b: a.unionByName(b), frames)


class Tables:
    """A run's way in and out of the lake's tables: find, read, and change them through the publish protocol.

    Build it with :func:`open_tables`. ``storage`` and ``catalog`` are the run's file system and metastore; the
    jobs never use them directly.
    """

    def __init__(self, spark: SparkSession, config: Config, run_id: str, storage: Storage, catalog: Catalog) -> None:
        self.spark = spark
        self.config = config
        self.storage = storage
        self.catalog = catalog
        self.publisher = Publisher(spark, storage, run_id, config.write.codec, config.publish.retention_hours)

    @property
    def run_id(self) -> str:
        """The run whose versions this writes."""
        return self.publisher.run_id

    def target(self, table: TableRef) -> Target:
        """A table under ``lake.tables``, registered in the lake's catalog."""
        return Target(as_table(table), self.config.lake.tables, self.catalog)

    def quarantine(self, table: Table) -> Target:
        """A quarantine table (JSON lines under ``lake.quarantine``, read by path: no catalog holds it)."""
        return Target(table, self.config.lake.quarantine, NoCatalog(self.catalog.database), fmt="json",
                      name=f"quarantine of {table.name}")

    def find(self, table: TableRef, sources: Iterable[str] | None = None, days: Iterable[date | str] | None = None,
             skip: Iterable[Mapping[str, object]] = ()) -> list[Partition]:
        """:func:`find_partitions` of a table of this lake."""
        return self.find_in(self.target(table), sources, days, skip)

    def find_each(self, tables: Sequence[TableRef], sources: Sequence[str] | None = None,
                  days: Sequence[date | str] | None = None, width: int = PARALLEL_FILE_CALLS) -> list[list[Partition]]:
        """:meth:`find` for each of ``tables``, ``width`` listings (or catalog calls) at a time; in their order."""
        return each(lambda t: self.find(t, sources, days), tables, width)

    def data_bytes(self, location: str) -> int:
        """Bytes of a partition folder's data files (hidden ones aside)."""
        return sum(f.size for f in self.storage.data_files(location))

    def foreign_tables(self) -> set[str]:
        """The catalog's tables lakelib did not create (their names are taken)."""
        return self.catalog.foreign_tables()

    def hold(self, uri: str, *, wait: float | None = None, poll: float | None = None,
             stale: float | None = None) -> ContextManager[None]:
        """This run holds the lock file ``uri`` for the block, waiting while another run does
        (:func:`lakelib.lock.hold`)."""
        from lakelib.lock import hold

        return hold(self.storage, uri, self.run_id, log, wait=wait, poll=poll, stale=stale)

    def registered(self, table: TableRef, sources: Iterable[str] | None = None,
                   days: Iterable[str] | None = None) -> list[Partition]:
        """The partitions the catalog holds for some sources and days (``None``: all), sorted by key."""
        t = as_table(table)
        listed = self.catalog.list_partitions(t, None if sources is None else list(sources),
                                              None if days is None else list(days))
        found = [Partition(key_values(t, p.values), p.location) for p in listed]
        return sorted(found, key=lambda p: tuple(p.values.values()))

    def cleanup(self, table: TableRef, current: Mapping[Key, str | None]) -> dict[Key, list[str]]:
        """Delete the expired superseded folders of some partitions (:meth:`lakelib.publish.Publisher.cleanup`)."""
        return self.publisher.cleanup(self.target(table), current)

    def read(self, table: TableRef, partitions: Sequence[Partition], columns: Sequence[str]) -> DataFrame:
        """:func:`read_partitions`."""
        return read_partitions(self.spark, table, partitions, columns)

    def find_in(self, target: Target, sources: Iterable[str] | None = None,
                days: Iterable[date | str] | None = None, skip: Iterable[Mapping[str, object]] = ()) -> list[Partition]:
        """:func:`find_partitions` of any target (the quarantine, say), through its own catalog."""
        return find_partitions(target.table, target.home, self.storage, target.catalog, sources, days, skip)

    def read_json(self, target: Target, partitions: Sequence[Partition]) -> DataFrame:
        """Every column of some partitions of a JSON-lines target (the quarantine), the keys as string columns."""
        from pyspark.sql import types as T

        t = target.table
        fields = [T.StructField(n, spark_type(c.type), True) for n, c in ((c.name, c) for c in t.columns)]
        schema = T.StructType(fields + [T.StructField(k, T.StringType(), True) for k in t.partition_keys])
        if not partitions:
            return self.spark.createDataFrame([], schema)
        return self.spark.read.schema(schema).option("basePath", target.root).json(
            [p.location for p in partitions]).select(*t.all_names)

    def list_state(self, folder: str) -> list[str]:
        """The names of the state files in a folder under ``<lake.tables>/_lakelib/``."""
        return [f.name for f in self.storage.data_files(join(self.config.lake.tables, STATE_DIR, folder))]

    def remove_state(self, name: str) -> None:
        """Delete a state file under ``<lake.tables>/_lakelib/``."""
        self.storage.delete(join(self.config.lake.tables, STATE_DIR, name))

    def stage(self, table: TableRef | Target, df: DataFrame | None, expected: Mapping[Key, int], *,
              drop: Iterable[Key] = (), one_file_per_partition: bool = False,
              checksums: Mapping[Key, Checksum] | None = None, max_rows_per_file: int = 0,
              verify: bool = True) -> Staged:
        """Write and verify a new version of some partitions (:meth:`lakelib.publish.Publisher.stage`)."""
        target = table if isinstance(table, Target) else self.target(table)
        return self.publisher.stage(target, df, expected, drop=drop, one_file_per_partition=one_file_per_partition,
                                    checksums=checksums, max_rows_per_file=max_rows_per_file, verify=verify)

    def verify(self, *staged: Staged) -> None:
        """Verify versions staged with ``verify=False``, in one Spark job (:meth:`lakelib.publish.Publisher.verify`)."""
        self.publisher.verify(*staged)

    def publish(self, *staged: Staged, report: RunReport | None = None) -> list[Published]:
        """Switch readers to staged versions, then clean up (:meth:`lakelib.publish.Publisher.publish`)."""
        return self.publisher.publish(*staged, report=report)

    def write(self, table: TableRef | Target, df: DataFrame | None, expected: Mapping[Key, int], *,
              drop: Iterable[Key] = (), one_file_per_partition: bool = False,
              report: RunReport | None = None) -> list[Published]:
        """:meth:`stage` then :meth:`publish`: one table's partitions replaced, verified, switched."""
        staged = self.stage(table, df, expected, drop=drop, one_file_per_partition=one_file_per_partition)
        return self.publish(staged, report=report)

    def append(self, table: TableRef, df: DataFrame, values: Mapping[str, str], name: str) -> str:
        """Add a run's own file to a partition (:meth:`lakelib.publish.Publisher.append`); returns the file."""
        return self.publisher.append(self.target(table), df, values, name)

    def state_uri(self, name: str) -> str:
        """Where a state file under ``<lake.tables>/_lakelib/`` lives."""
        return join(self.config.lake.tables, STATE_DIR, name)

    def read_state(self, name: str) -> str | None:
        """A small lakelib state file under ``<lake.tables>/_lakelib/`` (``None`` when absent)."""
        uri = join(self.config.lake.tables, STATE_DIR, name)
        return self.storage.read_text(uri) if self.storage.exists(uri) else None

    def write_state(self, name: str, text: str) -> None:
        """Replace a state file under ``<lake.tables>/_lakelib/``."""
        self.storage.write_text(join(self.config.lake.tables, STATE_DIR, name), text)

    def scratch(self, job: str) -> str:
        """A folder of this run for intermediate files, under ``<lake.tables>/_staging/<job>/``; see :meth:`remove`."""
        return join(self.config.lake.tables, "_staging", job, self.run_id)

    def remove(self, uri: str) -> None:
        """Delete a scratch folder."""
        self.storage.delete(uri)


def catalog_holds_locations(config: Config) -> bool:
    """Whether the lake's catalog says where partitions are (else readers go by path); known before Spark starts."""
    from lakelib.catalog import holds_locations

    return holds_locations(config)


#: lakelib's own small files (the typed tables' registry, ...), under ``lake.tables``.
STATE_DIR = "_lakelib"


def open_tables(spark: SparkSession, config: Config, run_id: str, *, glue_client: object = None) -> Tables:
    """The lake's tables for one run: its storage and the catalog ``catalog.kind`` names."""
    from lakelib.catalog import open_catalog
    from lakelib.storage import Storage

    return Tables(spark, config, run_id, Storage(spark), open_catalog(config, spark, glue_client=glue_client))
