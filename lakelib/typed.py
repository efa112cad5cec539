"""Typed tables: Segment's per-type and per-event tables, with flattened, typed columns. Naming, typing, widening.

``events`` keeps ``context``, ``properties`` and ``traits`` as ``map<string,string>`` whose nested values are JSON
text; the typed tables (``jobs/event_tables.py``) flatten them to columns. This module holds the rules, as pure
functions over plain Python values (no Spark), plus the few Column expressions that apply them in Spark:

- :func:`snake_case`, :func:`event_table_name`, :func:`column_name`: names (``docs/typed-tables.md``);
- :func:`value_kind` (Spark) / :func:`kind_of` (Python): the type a value's text asks for;
- :func:`widen`: the type lattice (``bigint -> double -> string``; any other conflict -> ``string``);
- :class:`Registry`: every typed table's columns and types, kept as JSON under ``lake.tables``; :meth:`Registry.plan`
  turns what a run observed into new tables, new columns and widenings (the schema only grows).
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from lakelib.paths import join
from lakelib.schema import EVENT_COLUMNS, TABLES, Column, Table, get_table

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column as SparkColumn

BOOLEAN, BIGINT, DOUBLE, TIMESTAMP, STRING = "boolean", "bigint", "double", "timestamp", "string"
TYPES = (BOOLEAN, BIGINT, DOUBLE, TIMESTAMP, STRING)

#: Levels of nesting flattened to columns (``a.b.c``); an object deeper than that, and any array, is JSON text.
MAX_DEPTH = 3
#: Longest column or table name; a longer one is cut and ends with the hash of what it names.
MAX_NAME = 128

#: Message type -> its typed table.
TYPE_TABLES = {
    "track": "tracks", "identify": "identifies", "page": "pages", "screen": "screens", "group": "groups",
    "alias": "aliases",
}
#: Columns every typed table has (from ``events``), then the ones of each type.
BASE_COLUMNS = ("messageid", "anonymousid", "userid", "timestamp", "originaltimestamp", "sentat", "receivedat")
TYPE_COLUMNS = {"track": ("event",), "identify": (), "page": ("name",), "screen": ("name",), "group": ("groupid",),
                "alias": ("previousid",)}
#: The ``events`` map flattened besides ``context`` in each type's table (``None``: context only).
FLATTENED = {"track": None, "identify": "traits", "page": "properties", "screen": "properties", "group": "traits",
             "alias": None}
PARTITION_KEYS = ("sourceid", "dt")

#: Names no event table may take: the six type tables and every other lakelib table.
RESERVED_TABLES = frozenset(TYPE_TABLES.values()) | frozenset(TABLES) | {"lake_runs"}
#: Names no flattened property or trait may take (it gets its map's name as prefix instead).
RESERVED_COLUMNS = frozenset(c.name for c in EVENT_COLUMNS) | frozenset(PARTITION_KEYS)

#: The registry of typed tables (their columns and types, the event of each event table), under ``lake.tables``.
#: The registry's file, under ``<lake.tables>/_lakelib/`` (lakelib's state files: :meth:`lakelib.tables.Tables.read_state`).
REGISTRY_NAME = "event_tables.json"

#: Separator of the path segments in a flattened value's key (a character no sane key holds).
PATH_SEP = "\u001f"

_BIGINT_TEXT = r"^-?(0|[1-9][0-9]{0,17})$"
#: Any JSON integer (a longer one than :data:`_BIGINT_TEXT` fits neither ``bigint`` nor, exactly, ``double``).
_INTEGER_TEXT = r"^-?(0|[1-9][0-9]*)$"
#: The largest integer size a ``double`` holds exactly.
EXACT_IN_DOUBLE = 2 ** 53
#: A value kind, not a column type: an integer that ``bigint`` holds but ``double`` does not (beyond 2^53 in size).
#: A column of such values is ``bigint``; with a ``double`` value it becomes ``string``, never ``double``.
LARGE_BIGINT = "bigint>2^53"
_NUMBER_TEXT = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$"
_EVENT_TYPES = {c.name: c.type for c in EVENT_COLUMNS}


def _hash8(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def registry_uri(tables_root: str) -> str:
    """Where the registry of typed tables lives.

    >>> registry_uri("s3://b/tables/")
    's3://b/tables/_lakelib/event_tables.json'
    """
    return join(tables_root, "_lakelib", REGISTRY_NAME)


def snake_case(text: str) -> str:
    """Lower snake case, go-snakecase style: words split at case changes and at anything not a letter or digit.

    >>> [snake_case(t) for t in ("Order Completed", "productId", "userID", "HTTPServer", "a--b", "Plan")]
    ['order_completed', 'product_id', 'user_id', 'http_server', 'a_b', 'plan']
    """
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    return re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()


def _bounded(name: str, named: str) -> str:
    """``name`` cut to :data:`MAX_NAME` characters, ending with the hash of ``named`` when cut."""
    return name if len(name) <= MAX_NAME else f"{name[:MAX_NAME - 9].rstrip('_')}_{_hash8(named)}"


def _free(name: str, named: str, taken: set[str]) -> str:
    """``name``, or the first of ``name_<8 hex>``, ``name_<16 hex>``, ``name_<40 hex>``, ``name_<40 hex>_2``, ...
    (hashes of ``named``) that is not ``taken``: a fallback name is checked like any other."""
    if name not in taken:
        return name
    digest = hashlib.sha1(named.encode("utf-8")).hexdigest()
    n = 1
    while True:
        for width in (8, 16, 40):
            tail = f"_{digest[:width]}" + (f"_{n}" if n > 1 else "")
            candidate = f"{name[:MAX_NAME - len(tail)].rstrip('_')}{tail}"
            if candidate not in taken:
                return candidate
        n += 1


def event_table_name(event: str, taken: Iterable[str] = ()) -> str:
    """The table of a track event: its slug, or ``<slug>_<8 hex of sha1(event)>`` when the slug is taken.

    A name is taken when it is one of :data:`RESERVED_TABLES` or already names another table (``taken``: other
    events' tables, tables lakelib did not create); a fallback that is taken too gets a longer hash
    (``_<16 hex>``, ``_<40 hex>``, then a counter). An event whose name has no letter or digit gets
    ``event_<8 hex>``.

    >>> event_table_name("Order Completed")
    'order_completed'
    >>> event_table_name("order completed", taken=["order_completed"])
    'order_completed_05dfd65a'
    >>> event_table_name("order completed", taken=["order_completed", "order_completed_05dfd65a"])
    'order_completed_05dfd65a844004d6'
    >>> event_table_name("Tracks")
    'tracks_3dd1a4d1'
    """
    taken = set(taken) | RESERVED_TABLES
    slug = snake_case(event)
    if not slug:
        return _free(f"event_{_hash8(event)}", event, taken)
    return _free(_bounded(slug, event), event, taken)


def path_key(path: Sequence[str]) -> str:
    """The key of a flattened value: its path (map name first) joined with :data:`PATH_SEP`."""
    return PATH_SEP.join(path)


def column_name(path: Sequence[str], taken: Iterable[str] = ()) -> str:
    """The column of a flattened value, from its path (``["properties", "product", "sku"]``).

    ``context`` paths are ``context_`` + the snake-cased segments joined with ``_``; ``properties`` and ``traits``
    paths are the joined segments alone, or ``properties_``/``traits_`` + them when that would be a common
    column, a partition key or start with ``context_``. A name already ``taken`` by another column of the table
    (``Plan`` and ``plan``) gets ``_<8 hex of sha1(path key)>``, a longer hash when that is taken too.

    >>> column_name(["properties", "product", "sku"]), column_name(["context", "page", "path"])
    ('product_sku', 'context_page_path')
    >>> column_name(["traits", "userId"]), column_name(["traits", "userid"])
    ('user_id', 'traits_userid')
    >>> column_name(["properties", "Plan"], taken=["plan"])
    'plan_3f39c6a1'
    >>> column_name(["properties", "Plan"], taken=["plan", "plan_3f39c6a1"])
    'plan_3f39c6a16ff5f7bf'
    """
    origin, segments = path[0], [snake_case(s) for s in path[1:]]
    body = "_".join(s for s in segments if s)
    if origin == "context":
        name = f"context_{body}" if body else ""
    elif not body or body in RESERVED_COLUMNS or body.startswith("context_"):
        name = f"{origin}_{body}" if body else ""
    else:
        name = body
    key = path_key(path)
    if not name:
        name = f"{origin}_{_hash8(key)}"
    return _free(_bounded(name, key), key, set(taken))


def kind_of(text: str | None) -> str | None:
    """The type one value's text asks for (Python twin of :func:`value_kind`; ``None`` for a null).

    >>> [kind_of(t) for t in ("true", "12", "12.50", "1e3", "007", "2020-01-02T03:04:05Z", "{}", None)]
    ['boolean', 'bigint', 'double', 'double', 'string', 'timestamp', 'string', None]
    >>> [kind_of(t) for t in ("9007199254740993", "-9007199254740992", "12345678901234567890")]
    ['bigint>2^53', 'bigint', 'string']
    """
    from datetime import datetime

    from lakelib.parse import ISO_8601

    if text is None:
        return None
    if text in ("true", "false"):
        return BOOLEAN
    if re.match(_BIGINT_TEXT, text):
        return BIGINT if abs(int(text)) <= EXACT_IN_DOUBLE else LARGE_BIGINT
    if re.match(_INTEGER_TEXT, text):
        return STRING
    if re.match(_NUMBER_TEXT, text):
        return DOUBLE
    if re.match(ISO_8601, text):
        try:
            datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            return TIMESTAMP
        except ValueError:
            return STRING
    return STRING


def value_kind(text: SparkColumn) -> SparkColumn:
    """Spark: the type one value's text asks for (``boolean``, ``bigint``, ``double``, ``timestamp``, ``string``).

    JSON integers (no leading zero, no ``+``) of at most 18 digits are ``bigint`` (:data:`LARGE_BIGINT` beyond
    2^53 in size), longer ones ``string``, other JSON numbers ``double``; ``true``/``false`` are ``boolean``;
    ISO-8601 text is ``timestamp``; anything else is ``string``.
    """
    from pyspark.sql import functions as F

    from lakelib.parse import parse_timestamp

    return (
        F.when(text.isNull(), F.lit(None).cast("string"))
        .when(text.isin("true", "false"), F.lit(BOOLEAN))
        # a number and an ISO-8601 timestamp start with "-" or a digit: other text is a string without a regex
        .when(~F.substring(text, 1, 1).isin(*"-0123456789"), F.lit(STRING))
        .when(text.rlike(_BIGINT_TEXT), F.when(F.abs(text.cast("bigint")) <= F.lit(EXACT_IN_DOUBLE), F.lit(BIGINT))
              .otherwise(F.lit(LARGE_BIGINT)))
        .when(text.rlike(_INTEGER_TEXT), F.lit(STRING))
        .when(text.rlike(_NUMBER_TEXT), F.lit(DOUBLE))
        .when(parse_timestamp(text).isNotNull(), F.lit(TIMESTAMP))
        .otherwise(F.lit(STRING))
    )


def typed_value(text: SparkColumn, hive_type: str) -> SparkColumn:
    """Spark: a value's text as ``hive_type`` (a type :func:`widen` chose, so the text always fits it)."""
    from pyspark.sql import functions as F

    from lakelib.parse import parse_timestamp

    if hive_type == BOOLEAN:
        return F.when(text.isNotNull(), text == F.lit("true"))
    if hive_type == TIMESTAMP:
        return parse_timestamp(text)
    if hive_type in (BIGINT, DOUBLE):
        return text.cast(hive_type)
    return text


def widen(a: str | None, b: str | None) -> str | None:
    """The narrowest kind holding values of kinds ``a`` and ``b`` (``None`` = no value yet).

    ``bigint`` and ``double`` make ``double`` only while every integer is exact in a double: with
    :data:`LARGE_BIGINT` they make ``string`` (:func:`column_type` is the column type of a kind).

    >>> widen("bigint", "double"), widen("double", "bigint"), widen("bigint", "boolean"), widen(None, "timestamp")
    ('double', 'double', 'string', 'timestamp')
    >>> widen("bigint", LARGE_BIGINT), widen(LARGE_BIGINT, "double")
    ('bigint>2^53', 'string')
    """
    if a is None or a == b:
        return b if a is None else a
    if b is None:
        return a
    if {a, b} == {BIGINT, DOUBLE}:
        return DOUBLE
    if {a, b} == {BIGINT, LARGE_BIGINT}:
        return LARGE_BIGINT
    return STRING


def column_type(kind: str) -> str:
    """The column type of a kind :func:`widen` gives (:data:`LARGE_BIGINT` is ``bigint``)."""
    return BIGINT if kind == LARGE_BIGINT else kind


def column_kind(column: TypedColumn) -> str:
    """The kind a registered column holds: :data:`LARGE_BIGINT` for a ``bigint`` column that has held such values."""
    return LARGE_BIGINT if column.type == BIGINT and column.large else column.type


def is_widening(old: str, new: str) -> bool:
    """Whether a column of type ``old`` may become ``new`` (the same type counts).

    >>> is_widening("bigint", "string"), is_widening("double", "bigint")
    (True, False)
    """
    return widen(old, new) == new


# --- the registry of typed tables --------------------------------------------------------------------------------


@dataclass
class TypedColumn:
    """A flattened column: its name, its type, and the path it comes from (map name first)."""

    name: str
    type: str
    path: list[str]
    #: A ``bigint`` column that has held an integer beyond 2^53 (a ``double`` value then makes it ``string``).
    large: bool = False


@dataclass
class TypedTable:
    """A typed table: the message type it holds, the track event (event tables), its flattened columns."""

    name: str
    message_type: str
    event: str | None = None
    columns: list[TypedColumn] = field(default_factory=list)

    @property
    def common_columns(self) -> tuple[str, ...]:
        """The columns taken as they are from ``events``."""
        return BASE_COLUMNS + TYPE_COLUMNS[self.message_type]

    def by_path(self) -> dict[str, TypedColumn]:
        """Flattened columns by path key."""
        return {path_key(c.path): c for c in self.columns}

    def table(self) -> Table:
        """The :class:`lakelib.schema.Table` (common columns, then flattened ones in the order they appeared)."""
        cols = [Column(name, _EVENT_TYPES[name]) for name in self.common_columns]
        cols += [Column(c.name, c.type, comment=".".join(c.path)) for c in self.columns]
        # No quote or backslash in a comment: Spark SQL and Athena escape them differently.
        event = re.sub(r"['\\\"]", "", self.event or "")
        what = f"track event {event}" if self.event is not None else f"{self.message_type} calls"
        return Table(self.name, tuple(cols), PARTITION_KEYS, f"Segment {what}, typed (lakelib event_tables)")


@dataclass(frozen=True)
class Observed:
    """What a run saw of one flattened path of one table: the types its values asked for."""

    message_type: str
    event: str | None
    path: tuple[str, ...]
    kinds: frozenset[str]


@dataclass
class Plan:
    """What :meth:`Registry.plan` decided: the new registry and what changed."""

    registry: Registry
    new_tables: list[str] = field(default_factory=list)
    added: list[dict[str, Any]] = field(default_factory=list)
    widened: list[dict[str, Any]] = field(default_factory=list)

    def table_for(self, message_type: str, event: str | None) -> TypedTable:
        """The table of a message type (``event=None``) or of a track event."""
        return self.registry.table_for(message_type, event)


@dataclass
class Registry:
    """Every typed table lakelib has written, with its columns; persisted as JSON (:meth:`to_json`)."""

    tables: dict[str, TypedTable] = field(default_factory=dict)

    def table_for(self, message_type: str, event: str | None) -> TypedTable:
        """The registered table of a message type or track event.

        Raises
        ------
        KeyError
            Not registered.
        """
        for table in self.tables.values():
            if table.message_type == message_type and table.event == event:
                return table
        raise KeyError(f"no typed table for {message_type} {event!r}")

    def plan(self, observed: Iterable[Observed], events: Iterable[str] = (), taken: Iterable[str] = ()) -> Plan:
        """A new registry holding what a run observed: tables for new events, new columns, wider types.

        Deterministic: new event names and new paths are taken in sorted order, so the same input names the
        same way; a name once given is kept for good.

        Parameters
        ----------
        observed
            Per table and path, the value types seen (paths with no non-null value are not observed).
        events
            Every track event name of the run (an event whose calls have no properties still gets its table).
        taken
            Table names a new event table must not take besides the registry's own (tables of the catalog's
            database that lakelib did not create).
        """
        reg = Registry(copy.deepcopy(self.tables))
        out = Plan(reg)
        for message_type, name in TYPE_TABLES.items():
            if name not in reg.tables:
                reg.tables[name] = TypedTable(name, message_type)
                out.new_tables.append(name)
        obs = sorted(observed, key=lambda o: (o.message_type, o.event or "", o.event is not None, o.path))
        names = sorted({o.event for o in obs if o.event is not None} | set(events))
        known = {t.event for t in reg.tables.values() if t.event is not None}
        foreign = {name.lower() for name in taken} - set(reg.tables)
        for event in names:
            if event not in known:
                name = event_table_name(event, taken=set(reg.tables) | foreign)
                reg.tables[name] = TypedTable(name, "track", event)
                out.new_tables.append(name)
        for o in obs:
            table = reg.table_for(o.message_type, o.event)
            kind = None
            for k in sorted(o.kinds):
                kind = widen(kind, k)
            if kind is None:
                continue
            have = table.by_path().get(path_key(o.path))
            if have is None:
                taken = set(table.common_columns) | set(PARTITION_KEYS) | {c.name for c in table.columns}
                col = TypedColumn(column_name(list(o.path), taken), column_type(kind), list(o.path),
                                  kind == LARGE_BIGINT)
                table.columns.append(col)
                out.added.append({"table": table.name, "column": col.name, "type": col.type})
            elif (new := widen(column_kind(have), kind)) is not None and column_type(new) != have.type:
                out.widened.append({"table": table.name, "column": have.name, "from": have.type,
                                    "to": column_type(new)})
                have.type, have.large = column_type(new), new == LARGE_BIGINT
            else:
                have.large = have.large or new == LARGE_BIGINT
        reg.check()
        return out

    def to_json(self) -> str:
        """The registry as JSON text (sorted, stable)."""
        tables = {
            name: {"message_type": t.message_type, "event": t.event,
                   "columns": [{"name": c.name, "type": c.type, "path": c.path, **({"large": True} if c.large else {})}
                               for c in t.columns]}
            for name, t in sorted(self.tables.items())
        }
        return json.dumps({"version": 1, "tables": tables}, indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str | None) -> Registry:
        """A registry from :meth:`to_json` text (empty for ``None`` or blank text)."""
        if not text or not text.strip():
            return cls()
        data: Mapping[str, Any] = json.loads(text)
        registry = cls({
            name: TypedTable(name, t["message_type"], t.get("event"),
                             [TypedColumn(c["name"], c["type"], list(c["path"]), bool(c.get("large")))
                              for c in t.get("columns", [])])
            for name, t in data.get("tables", {}).items()
        })
        registry.check()
        return registry

    def check(self) -> None:
        """Every name unique for good: one table per event, one column per name in a table.

        Raises
        ------
        ConfigError
            A registry written by an older lakelib that gave a name twice; the message names table and column.
        """
        from lakelib.errors import ConfigError

        seen: dict[tuple[str, str | None], str] = {}
        for table in self.tables.values():
            other = seen.setdefault((table.message_type, table.event), table.name)
            if other != table.name:
                raise ConfigError(f"registry of typed tables: tables {other} and {table.name} both hold the same "
                                  "calls; remove one from it (and its catalog table) and rerun event_tables")
            names = [c.name for c in table.columns] + list(table.common_columns) + list(PARTITION_KEYS)
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ConfigError(f"registry of typed tables: table {table.name} has column(s) {', '.join(twice)} "
                                  "twice; rename one in the registry (and in the table's files) and rerun event_tables")


# --- Spark transforms ----------------------------------------------------------------------------------------------


def bind(value: SparkColumn, body: Callable[[SparkColumn], SparkColumn]) -> SparkColumn:
    """Spark: ``body(value)`` with ``value`` computed once per row however often ``body`` uses it.

    Inside higher-order functions (``transform``, ``filter``...) Spark evaluates an expression each time it
    appears; a lambda variable is evaluated once. Flattening JSON is the costly part of typed tables, so each
    parse is bound once.
    """
    from pyspark.sql import functions as F

    return F.element_at(F.transform(F.array(value), body), 1)


def flatten_map(origin: str, values: SparkColumn, depth: int = MAX_DEPTH) -> SparkColumn:
    """Spark: the leaves of a ``map<string,string>`` whose values may be JSON objects, down to ``depth`` levels.

    Returns an ``array<struct<path: array<string>, value: string>>``: ``path`` starts with ``origin``; a value
    that is a JSON object above ``depth`` is replaced by its members, anything else (arrays, deeper objects,
    text that only looks like an object) is a leaf as it is. Null values are left out; an empty object ``{}`` is
    a leaf (its text), so that no key vanishes.
    """
    from pyspark.sql import functions as F

    def leaf(path: SparkColumn, value: SparkColumn) -> SparkColumn:
        return F.struct(path.alias("path"), value.alias("value"))

    def expand(entry: SparkColumn) -> SparkColumn:
        def members_or_leaf(members: SparkColumn) -> SparkColumn:
            nested = F.transform(F.map_entries(members), lambda m: leaf(F.concat(entry["path"], F.array(m["key"])),
                                                                        m["value"]))
            return F.when(F.size(members) > 0, nested).otherwise(F.array(entry))

        parsed = F.when((F.size(entry["path"]) <= depth) & F.ltrim(entry["value"]).startswith("{"),
                        F.from_json(entry["value"], "map<string,string>"))   # only what may be an object is parsed
        return bind(parsed, members_or_leaf)

    leaves = F.transform(F.map_entries(values), lambda e: leaf(F.array(F.lit(origin), e["key"]), e["value"]))
    for _ in range(depth - 1):
        leaves = F.flatten(F.transform(leaves, expand))
    return F.coalesce(F.filter(leaves, lambda e: e["value"].isNotNull()), F.array())


def _attrs(*leaf_arrays: SparkColumn) -> SparkColumn:
    from pyspark.sql import functions as F

    def last_wins(keyed: SparkColumn) -> SparkColumn:
        # A key repeated inside a nested object keeps its last value (as in Python's json), like events' own maps.
        last = F.filter(keyed, lambda e, i: ~F.exists(F.slice(keyed, i + 2, F.size(keyed)), lambda x: x["k"] == e["k"]))
        repeats = F.size(F.array_distinct(F.transform(keyed, lambda e: e["k"]))) < F.size(keyed)
        return F.map_from_entries(F.when(repeats, last).otherwise(keyed))

    entries = F.concat(*leaf_arrays)
    return bind(F.transform(entries, lambda e: F.struct(F.array_join(e["path"], PATH_SEP).alias("k"),
                                                         e["value"].alias("v"))), last_wins)


#: Columns of the rows :func:`typed_rows` returns, before ``attrs`` and the partition keys.
ROW_COLUMNS = ("_type", "_event") + BASE_COLUMNS + ("event", "name", "groupid", "previousid")


def typed_rows(events: Any) -> Any:
    """One row per event and typed table it goes to, its flattened values in ``attrs`` (path key -> text).

    Every event gets a row for its type's table (``_event`` null); a track call with an event name gets a
    second row for its event's table (``_event`` = the name). ``tracks`` rows hold ``context`` only, event rows
    ``context`` and ``properties``, identifies and groups rows ``context`` and ``traits``, pages and screens rows
    ``context`` and ``properties``.

    Parameters
    ----------
    events
        ``events`` rows: at least ``type``, the common columns, ``context``, ``properties``, ``traits``,
        ``sourceid``, ``dt``.

    Returns
    -------
    DataFrame
        :data:`ROW_COLUMNS`, ``attrs`` (``map<string,string>``), ``sourceid``, ``dt``.
    """
    from pyspark.sql import functions as F

    def targets(flat: SparkColumn) -> SparkColumn:
        context, properties, traits = flat["context"], flat["properties"], flat["traits"]
        type_attrs = (
            F.when(F.col("type").isin("identify", "group"), _attrs(context, traits))
            .when(F.col("type").isin("page", "screen"), _attrs(context, properties))
            .otherwise(_attrs(context))
        )
        named = (F.col("type") == "track") & F.col("event").isNotNull() & (F.trim(F.col("event")) != "")
        no_event = F.lit(None).cast("string")
        return F.when(
            named,
            F.array(F.struct(no_event.alias("_event"), type_attrs.alias("attrs")),
                    F.struct(F.col("event").alias("_event"), _attrs(context, properties).alias("attrs"))),
        ).otherwise(F.array(F.struct(no_event.alias("_event"), type_attrs.alias("attrs"))))

    flat = F.struct(*[flatten_map(c, F.col(c)).alias(c) for c in ("context", "properties", "traits")])
    common = [c for c in ROW_COLUMNS if not c.startswith("_")]
    return (
        events.select(F.col("type").alias("_type"), *common, "sourceid", "dt", F.explode(bind(flat, targets)).alias("_t"))
        .select("_type", "_t._event", *common, "_t.attrs", "sourceid", "dt")
    )


def observe(rows: Any) -> Any:
    """The value types seen per table and path: ``_type``, ``_event``, ``path`` (array), ``kinds`` (array)."""
    from pyspark.sql import functions as F

    leaves = rows.select("_type", "_event", F.explode("attrs").alias("key", "value"))
    kinds = leaves.where(F.col("value").isNotNull()).select(
        "_type", "_event", "key", value_kind(F.col("value")).alias("kind"))
    return (kinds.groupBy("_type", "_event", "key").agg(F.collect_set("kind").alias("kinds"))
            .select("_type", "_event", F.split("key", PATH_SEP).alias("path"), "kinds"))


def table_rows(rows: Any, table: TypedTable) -> Any:
    """The rows of one typed table from :func:`typed_rows` rows: common columns, typed columns, partition keys."""
    from pyspark.sql import functions as F

    mine = rows.where((F.col("_type") == table.message_type) & (
        F.col("_event").isNull() if table.event is None else F.col("_event") == F.lit(table.event)))
    typed = [typed_value(F.col("attrs")[path_key(c.path)], c.type).alias(c.name) for c in table.columns]
    return mine.select(*table.common_columns, *typed, *PARTITION_KEYS)


def conform(df: Any, table: Table) -> Any:
    """``df`` (one partition as its files hold it) with the columns and types of ``table``; absent columns null.

    Used to rewrite older partitions after a widening: ``bigint`` and ``double`` values become ``double`` or
    their text (Spark's cast: ``12``, ``12.5``, ``1.0E10``).
    """
    from pyspark.sql import functions as F

    from lakelib.schema import spark_type

    have = set(df.columns)
    cols = [(F.col(c.name) if c.name in have else F.lit(None)).cast(spark_type(c.type)).alias(c.name)
            for c in table.columns]
    return df.select(*cols, *[F.col(k) for k in table.partition_keys])


def resolve_table(name: str, tables_root: str | None) -> Table:
    """A fixed lake table, or a typed table (``event_tables``) as its registry under ``tables_root`` describes it.

    Raises
    ------
    UsageError
        Neither: the message lists the fixed tables and says where typed tables were looked for.
    """
    from lakelib.config import read_config_text
    from lakelib.errors import ConfigError, UsageError

    try:
        return get_table(name)
    except KeyError as exc:
        known = str(exc.args[0])
    if tables_root is None:
        raise UsageError(f"{known}; a typed table (event_tables) needs --config to find its schema")
    uri = registry_uri(tables_root)
    try:
        registry = Registry.from_json(read_config_text(uri))
    except ConfigError:
        raise UsageError(f"{known}; no typed tables either (no {uri}: run event_tables first)") from None
    if name not in registry.tables:
        typed = ", ".join(sorted(registry.tables)) or "none"
        raise UsageError(f"{known}; no typed table {name!r} either (typed tables in {uri}: {typed})")
    return registry.tables[name].table()
