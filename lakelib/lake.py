"""The lake, read from a notebook: events, message counts, the quarantine and the run history, as DataFrames.

Every function takes the session you have (one :func:`lakelib.session.build_session` built, or the ``spark`` of a
Jupyter, EMR Studio or Glue notebook) and the lake's config, and uses Spark's public API only (``spark.table``,
``spark.catalog``, ``spark.read``; boto3 for Glue), so it works on any SparkSession. Given ``None`` instead of a
session, the same function reads through pyarrow and returns a pandas DataFrame, with no JVM (small reads from a
laptop: counts, runs, a quarantine sample; see :mod:`lakelib.local_read`)::

    from lakelib import lake
    from lakelib.config import load_config

    config = load_config("conf/local.yaml")
    lake.events(spark, config, sources=["ios"], start="2026-01-01", end="2026-01-02", columns=["type", "userid"])
    lake.daily_counts(spark, config, start="2026-01-01", end="2026-01-03")
    lake.quarantine(spark, config, sources="ios", start="2026-01-01").groupBy("reason").count()
    lake.runs(spark, config, last=10)
    lake.daily_counts(None, config, sources="ios")          # pandas, no Spark
    lake.table(spark, config, "order_completed", start="2026-01-01")   # any table, typed ones included

Each reads only the partitions asked for (``sources``, and the inclusive day range ``start``..``end``; ``None``
means no bound), found where the catalog says they are:

- ``catalog.kind: spark``: the table in the session's catalog, filtered on its partition keys (Spark prunes the
  partitions in the metastore, and reads a compacted partition at its registered location). A session that does
  not know the table (one without Hive support) reads it by path instead;
- ``catalog.kind: glue``: ``GetPartitions`` with an ``Expression`` on the keys, then exactly those locations;
- ``catalog.kind: none`` (and the quarantine, which no catalog holds): the default folders, by a path glob of the
  asked sources and days under the table's root.

An empty selection (no partition in the range) gives an empty DataFrame with the same columns and types as a full
one: the asked data columns, then the partition keys as strings. A range whose ``start`` is after its ``end``, a
source the table does not have, an unknown quarantine reason are :class:`~lakelib.errors.UsageError` naming what
exists. Without a session and with ``catalog.kind: spark`` the partitions' locations are in Spark's metastore:
the read starts Spark (the active session, else one :func:`~lakelib.session.build_session` builds) and converts
the result to pandas.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Dict, Iterable, Mapping, Sequence, Tuple, Union

from lakelib.errors import MissingExtraError, UsageError
from lakelib.paths import (
    SOURCE_ID_RULE,
    date_range,
    escape_value,
    is_source_id,
    join,
    parse_date,
    parse_partition_dir,
    table_dir,
    unescape_value,
)
from lakelib.schema import (
    EVENTS,
    LAKE_RUNS,
    MESSAGE_TYPE_COUNTS_DAILY,
    MESSAGE_TYPE_COUNTS_YEARLY,
    REJECT_REASONS,
    Table,
    spark_type,
)
from lakelib.schema import QUARANTINE as QUARANTINE_LINES
from lakelib.tables import TableRef, as_table, read_partitions

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from pyspark.sql import Column as SparkColumn
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from lakelib.config import Config

log = logging.getLogger(__name__)

__all__ = [
    "KeyRange", "QUARANTINE", "as_day", "as_values", "daily_counts", "events", "path_glob", "quarantine",
    "read_table", "runs", "sources", "table", "yearly_counts",
]

#: The quarantine of ``json_to_parquet`` (:data:`lakelib.schema.QUARANTINE`) as the read API returns it: its first
#: fields only (``reason``, ``raw``, ``file``, ``run_id``; any other field a line carries is ignored).
QUARANTINE = replace(QUARANTINE_LINES, columns=QUARANTINE_LINES.columns[:4])

#: A day range longer than this is globbed as ``dt=*`` (then filtered) rather than spelled out day by day.
MAX_GLOB_DAYS = 3660

Day = Union[date, str]
#: What a read returns: a Spark DataFrame when given a session, a pandas DataFrame when given ``None``.
Frame = Any
Sources = Union[str, Iterable[str], None]


@dataclass(frozen=True)
class KeyRange:
    """An inclusive range of a partition key's values (``None``: unbounded)."""

    low: str | None = None
    high: str | None = None


#: Partition key -> the values wanted (a tuple) or a range of them.
Filters = Dict[str, Union[Tuple[str, ...], KeyRange]]


def events(
    spark: SparkSession | None,
    config: Config,
    sources: Sources = None,
    start: Day | None = None,
    end: Day | None = None,
    columns: Sequence[str] | None = None,
) -> Frame:
    """The ``events`` table: some columns of some sources over a range of received days.

    Parameters
    ----------
    spark
        Any SparkSession; ``None`` reads without Spark into pandas (small reads only).
    config
        The lake's config (:func:`lakelib.config.load_config`).
    sources
        A source id or several; ``None`` (or empty) for every source.
    start, end
        The first and last ``dt`` (``YYYY-MM-DD`` or a ``date``), inclusive; ``None`` for no bound.
    columns
        Data columns to read (Parquet reads only these); ``None`` for all of them.

    Returns
    -------
    DataFrame
        ``columns`` then ``sourceid``, ``dt`` (a pandas DataFrame when ``spark`` is ``None``).

    Raises
    ------
    UsageError
        A bad day, ``start`` after ``end``, a source or a column the table does not have.
    """
    return table(spark, config, EVENTS, sources, start, end, columns)


def table(
    spark: SparkSession | None,
    config: Config,
    name: TableRef,
    sources: Sources = None,
    start: Day | None = None,
    end: Day | None = None,
    columns: Sequence[str] | None = None,
) -> Frame:
    """Any lake table by name, typed tables of ``event_tables`` included (``tracks``, ``order_completed``...).

    Parameters are those of :func:`events`; ``start``/``end`` bound the table's day key (``dt`` or ``end_dt``).

    Raises
    ------
    UsageError
        As :func:`events`, and a name that is neither a lake table nor a typed table (the message lists both).
    """
    from lakelib.typed import resolve_table

    t = name if isinstance(name, Table) else resolve_table(str(name).lower(), config.lake.tables)
    filters = _filters(t, sources, start, end)
    check_sources(spark, config, t, filters)
    return read_table(spark, config, t, columns, filters)


def daily_counts(
    spark: SparkSession | None, config: Config, sources: Sources = None, start: Day | None = None,
    end: Day | None = None,
) -> Frame:
    """``message_type_counts_daily``: ``type``, ``message_count``, ``sourceid``, ``dt`` for ``start``..``end``.

    Parameters are those of :func:`events`.
    """
    return table(spark, config, MESSAGE_TYPE_COUNTS_DAILY, sources, start, end)


def yearly_counts(
    spark: SparkSession | None, config: Config, sources: Sources = None, start: Day | None = None,
    end: Day | None = None,
) -> Frame:
    """``message_type_counts_yearly``: ``type``, ``message_count``, ``sourceid``, ``end_dt``, for the windows
    ending ``start``..``end`` (each row counts the 365 days ending with its ``end_dt``).

    Parameters are those of :func:`events`.
    """
    return table(spark, config, MESSAGE_TYPE_COUNTS_YEARLY, sources, start, end)


def quarantine(
    spark: SparkSession | None,
    config: Config,
    sources: Sources = None,
    start: Day | None = None,
    end: Day | None = None,
    reasons: Iterable[str] | None = None,
    limit: int | None = None,
) -> Frame:
    """The lines ``json_to_parquet`` rejected: ``reason``, ``raw`` (the line as read), ``file``, ``run_id``,
    ``sourceid``, ``dt``.

    Read by path (no catalog holds the quarantine) with those fields only, so lines that carry more fields
    read the same. ``reasons`` keeps only those reasons (see :data:`lakelib.schema.REJECT_REASONS`; another is a
    :class:`UsageError`), ``limit`` at most that many lines (a sample); the other parameters are those of
    :func:`events`.
    """
    wanted = as_values(reasons) if reasons is not None else None
    unknown = [r for r in wanted or () if r not in REJECT_REASONS]
    if unknown:
        raise UsageError(f"no quarantine reason {', '.join(unknown)} (reasons: {', '.join(REJECT_REASONS)})")
    filters = _filters(QUARANTINE, sources, start, end)
    check_sources(spark, config, QUARANTINE, filters)
    root = join(config.lake.quarantine, QUARANTINE.name)
    if spark is None:
        from lakelib import local_read

        local_read.require_pandas()
        parts = local_read.list_folders(QUARANTINE, root, lambda values: keeps(filters, values))
        pdf = local_read.read_json_lines(QUARANTINE, parts, QUARANTINE.column_names,
                                         None if wanted is not None else limit)
        if wanted is not None:
            pdf = pdf[pdf["reason"].isin(wanted)].reset_index(drop=True)
            pdf = pdf if limit is None else pdf.head(limit)
        return pdf
    df = _read_by_path(spark, QUARANTINE, root, QUARANTINE.column_names, filters, "json")
    if reasons is not None:
        df = df.where(_col("reason").isin(*(wanted or ())))
    return df if limit is None else df.limit(limit)


def runs(
    spark: SparkSession | None, config: Config, jobs: Sources = None, last: int | None = None
) -> Frame:
    """The run history (table ``lake_runs``), most recent first.

    Parameters
    ----------
    spark
        Any SparkSession; ``None`` reads without Spark into pandas.
    config
        The lake's config.
    jobs
        A job name or several (``json_to_parquet``...); ``None`` for every job.
    last
        Only the ``last`` most recent runs; ``None`` for all.

    Returns
    -------
    DataFrame
        The columns of :data:`lakelib.schema.LAKE_RUNS`, then ``job``.
    """
    if last is not None and last < 0:
        raise UsageError(f"last={last}: give a number of runs, 0 or more")
    wanted = as_values(jobs)
    filters: Filters = {} if wanted is None else {"job": wanted}
    df = read_table(spark, config, LAKE_RUNS, None, filters)
    if spark is None:
        df = df.sort_values(["started_at", "run_id"], ascending=False, ignore_index=True)
        return df if last is None else df.head(last)
    df = df.orderBy(_col("started_at").desc(), _col("run_id").desc())
    return df if last is None else df.limit(last)


def read_table(
    spark: SparkSession | None,
    config: Config,
    table: TableRef,
    columns: Sequence[str] | None = None,
    filters: Mapping[str, Tuple[str, ...] | KeyRange] | None = None,
) -> Frame:
    """Some columns of the partitions of a lake table that ``filters`` selects, wherever they live.

    Parameters
    ----------
    spark
        Any SparkSession; ``None`` reads through pyarrow into pandas (:mod:`lakelib.local_read`).
    config
        The lake's config: its catalog says where partitions are (see the module's docstring).
    table
        A table of :mod:`lakelib.schema` (or its name).
    columns
        Data columns to read; ``None`` for all.
    filters
        Partition key -> the values wanted, or a :class:`KeyRange`; a key not named is not filtered.

    Returns
    -------
    DataFrame
        ``columns`` (typed as in the schema), then the partition keys as strings.

    Raises
    ------
    UsageError
        A column the table does not have.
    """
    t = as_table(table)
    names = list(columns) if columns is not None else t.column_names
    unknown = [c for c in names if c not in t.column_names]
    if unknown:
        raise UsageError(f"table {t.name} has no column {', '.join(unknown)} (it has {', '.join(t.column_names)})")
    filters = dict(filters or {})
    _check_ids(t, filters)
    if spark is None:
        return _read_local(config, t, names, filters)
    if _selects_nothing(filters):
        return spark.createDataFrame([], _schema(t, names))
    kind = config.catalog.kind
    if kind == "spark":
        name = f"{config.catalog.database}.{t.name}"
        if spark.catalog.tableExists(name):
            log.debug("reading %s through the session's catalog", name)
            return _conform(spark.table(name).where(_where(t, filters)), t, names)
        log.info("table %s is not in this session's catalog: reading its folders", name)
    elif kind == "glue":
        from lakelib.catalog import open_catalog

        catalog = open_catalog(config)
        keys = t.partition_keys
        days = _glob_values(filters.get(keys[1])) if len(keys) > 1 else None
        sources = filters.get(keys[0])
        listed = catalog.list_partitions(t, sources if isinstance(sources, tuple) else None, days)  # Glue filters
        parts = [p for p in listed if keeps(filters, p.values)]  # an open day range is filtered here
        log.debug("glue: %d partition(s) of %s selected", len(parts), t.name)
        return read_partitions(spark, t, parts, names)
    return _read_by_path(spark, t, table_dir(config.lake.tables, t.name), names, filters, "parquet")


def sources(spark: SparkSession | None, config: Config, table: TableRef = EVENTS) -> list[str] | None:
    """The source ids (first partition key values) a table has, sorted; ``None`` when that cannot be told
    cheaply (a Spark read of folders without a catalog).

    Parameters are those of :func:`read_table`; the quarantine is :data:`QUARANTINE`.
    """
    t = as_table(table)
    if t is QUARANTINE:  # a source without a rejected line is still a source of the lake
        no_spark_needed = spark is not None or config.catalog.kind != "spark"
        lake_sources = sources(spark, config, EVENTS) if no_spark_needed else None  # no Spark just for a check
        found = _listed_sources(spark, t, join(config.lake.quarantine, t.name))
        return None if lake_sources is None or found is None else sorted(set(lake_sources) | set(found))
    if config.catalog.kind == "none":
        return _listed_sources(spark, t, table_dir(config.lake.tables, t.name))
    kind = config.catalog.kind
    if kind == "glue":
        from lakelib.catalog import open_catalog

        return sorted({p.values[t.source_key] for p in open_catalog(config).list_partitions(t)})
    if kind == "spark":
        session = spark if spark is not None else _spark_for(config)
        name = f"{config.catalog.database}.{t.name}"
        if not session.catalog.tableExists(name):
            return None  # read by path (see read_table): no check
        rows = session.sql(f"SHOW PARTITIONS {name}").collect()
        return sorted({parse_partition_dir(r[0]).get(t.source_key, "") for r in rows} - {""})
    return None


def _listed_sources(spark: SparkSession | None, table: Table, root: str) -> list[str] | None:
    """The source folders under a table's root folder; ``None`` for S3 with a session (no check then)."""
    if spark is None:
        from lakelib import local_read

        found = local_read.list_folders(table, root, lambda values: True, levels=1)
        return sorted({p.values[table.source_key] for p in found})
    if not root.startswith("file://"):
        return None  # listing S3 from a Spark session is Hadoop's job: not worth it for a check
    folder = root[len("file://"):]
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return sorted(unescape_value(n.partition("=")[2]) for n in names if n.startswith(f"{table.source_key}="))


def check_sources(
    spark: SparkSession | None, config: Config, table: Table, filters: Mapping[str, Tuple[str, ...] | KeyRange]
) -> None:
    """Raise :class:`UsageError` when ``filters`` asks for a source the table does not have (naming those it has)."""
    _check_ids(table, filters)
    wanted = filters.get(table.source_key)
    if not isinstance(wanted, tuple) or not wanted:
        return
    known = sources(spark, config, table)
    missing = [s for s in wanted if known is not None and s not in known]
    if missing:
        has = ", ".join(known or ()) or "no source yet"
        raise UsageError(f"{table.name} has no source {', '.join(missing)} (it has: {has})")


def _check_ids(table: Table, filters: Mapping[str, Tuple[str, ...] | KeyRange]) -> None:
    """Refuse a source (or job) that cannot be one, as the jobs do, before a metastore sees it (a trailing
    backslash ends in Hive's MetaException)."""
    wanted = filters.get(table.source_key)
    bad = [s for s in wanted if not is_source_id(s)] if isinstance(wanted, tuple) else []
    if bad:
        raise UsageError(f"{table.source_key} {bad[0]!r}: expected {SOURCE_ID_RULE}")


def path_glob(root: str, table: Table, filters: Mapping[str, Tuple[str, ...] | KeyRange]) -> str:
    """A Hadoop glob of the partition folders ``filters`` selects under a table's root folder.

    Values are spelled out in braces (a day range day by day, up to :data:`MAX_GLOB_DAYS`), anything else is ``*``,
    so only the folders of the asked sources are listed.

    >>> path_glob("s3://b/t/events", EVENTS, {"sourceid": ("ios", "web"), "dt": KeyRange("2020-01-30", "2020-02-01")})
    's3://b/t/events/sourceid={ios,web}/dt={2020-01-30,2020-01-31,2020-02-01}'
    >>> path_glob("s3://b/t/events", EVENTS, {"dt": KeyRange("2020-01-30", None)})
    's3://b/t/events/sourceid=*/dt=*'
    """
    segments = []
    for key in table.partition_keys:
        values = _glob_values(filters.get(key))
        if values is None:
            segments.append(f"{key}=*")
        elif len(values) == 1:
            segments.append(f"{key}={values[0]}")
        else:
            segments.append(f"{key}={{{','.join(values)}}}")
    return join(root, *segments)


# -- helpers --------------------------------------------------------------------------------------------------


def as_values(items: Sources) -> Tuple[str, ...] | None:
    """Source ids (or job names) as a tuple: ``None`` or empty -> ``None`` (all of them, as ``sources: []`` in a
    config), a string -> that one value.

    >>> as_values("ios"), as_values(["ios", "web", "ios"]), as_values([])
    (('ios',), ('ios', 'web'), None)
    """
    if items is None:
        return None
    if isinstance(items, str):
        items = [items]
    out = tuple(dict.fromkeys(str(i) for i in items))
    return out or None


def as_day(value: Day | None, name: str) -> str | None:
    """A day as ``YYYY-MM-DD`` (``None`` stays ``None``).

    Raises
    ------
    UsageError
        Not a date, naming the argument.

    >>> as_day(date(2026, 1, 2), "start"), as_day("2026-01-02", "end")
    ('2026-01-02', '2026-01-02')
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.isoformat()
    try:
        return parse_date(str(value)).isoformat()
    except ValueError as exc:
        raise UsageError(f"{name}: {exc}") from None


def _filters(table: Table, sources: Sources, start: Day | None, end: Day | None) -> Filters:
    source_key, day_key = table.partition_keys
    filters: Filters = {}
    wanted = as_values(sources)
    if wanted is not None:
        filters[source_key] = wanted
    low, high = as_day(start, "start"), as_day(end, "end")
    if low is not None and high is not None and low > high:
        raise UsageError(f"start {low} is after end {high}: give the first day, then the last")
    if low is not None or high is not None:
        filters[day_key] = KeyRange(low, high)
    return filters


def _selects_nothing(filters: Mapping[str, Tuple[str, ...] | KeyRange]) -> bool:
    for wanted in filters.values():
        if isinstance(wanted, tuple) and not wanted:
            return True
        if isinstance(wanted, KeyRange) and wanted.low is not None and wanted.high is not None \
                and wanted.low > wanted.high:
            return True
    return False


def _glob_escape(value: str) -> str:
    out = escape_value(value)
    for char in "\\{}[]*?,":
        out = out.replace(char, "\\" + char)
    return out


def _glob_values(wanted: Tuple[str, ...] | KeyRange | None) -> list[str] | None:
    if isinstance(wanted, tuple):
        return [_glob_escape(v) for v in wanted]
    if isinstance(wanted, KeyRange) and wanted.low is not None and wanted.high is not None:
        days = date_range(parse_date(wanted.low), parse_date(wanted.high))
        if len(days) <= MAX_GLOB_DAYS:
            return [d.isoformat() for d in days]
    return None


def keeps(filters: Mapping[str, Tuple[str, ...] | KeyRange], values: Mapping[str, str]) -> bool:
    """Whether a partition's key values pass ``filters`` (the Python twin of :func:`_where`); a key ``values`` does
    not have yet passes (a listing fills the keys one level at a time).

    >>> keeps({"sourceid": ("web",), "dt": KeyRange("2026-01-02", None)}, {"sourceid": "web"})
    True
    """
    for key, wanted in filters.items():
        if key not in values:
            continue
        value = values.get(key)
        if isinstance(wanted, tuple) and value not in wanted:
            return False
        if isinstance(wanted, KeyRange) and value is not None and (
            (wanted.low is not None and value < wanted.low) or (wanted.high is not None and value > wanted.high)
        ):
            return False
    return True


def _read_local(config: Config, table: Table, names: Sequence[str],
                filters: Mapping[str, Tuple[str, ...] | KeyRange]) -> pd.DataFrame:
    """:func:`read_table` without a session: pyarrow and pandas, or Spark when only its metastore knows where."""
    from lakelib import local_read

    local_read.require_pandas()
    if _selects_nothing(filters):
        return local_read.arrow_schema(table, names).empty_table().to_pandas()
    root = table_dir(config.lake.tables, table.name)
    try:
        wanted = filters.get(table.source_key)
        parts = local_read.find_partitions(config, table, root, lambda values: keeps(filters, values),
                                           wanted if isinstance(wanted, tuple) else None)
    except local_read.NeedsSpark as exc:
        log.info("%s: reading through Spark", exc)
        return read_table(_spark_for(config), config, table, names, filters).toPandas()
    return local_read.read_parquet(table, parts, names)


def _spark_for(config: Config) -> SparkSession:
    """The active SparkSession, else a new one from ``config``; a one-line error naming the extra without PySpark."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise MissingExtraError(f"catalog.kind {config.catalog.kind}: the partitions' locations are in Spark's "
                                "metastore, which needs PySpark: pip install 'lakelib[spark]'") from None
    from lakelib.session import build_session

    return SparkSession.getActiveSession() or build_session(config, app_name="lakelib-read")


def _col(name: str) -> SparkColumn:
    from pyspark.sql import functions as F

    return F.col(name)


def _where(table: Table, filters: Mapping[str, Tuple[str, ...] | KeyRange]) -> SparkColumn:
    from pyspark.sql import functions as F

    condition = F.lit(True)
    for key in table.partition_keys:
        wanted = filters.get(key)
        if isinstance(wanted, tuple):
            condition = condition & F.col(key).isin(*wanted)
        elif isinstance(wanted, KeyRange):
            if wanted.low is not None:
                condition = condition & (F.col(key) >= F.lit(wanted.low))
            if wanted.high is not None:
                condition = condition & (F.col(key) <= F.lit(wanted.high))
    return condition


def _schema(table: Table, names: Sequence[str]) -> StructType:
    from pyspark.sql import types as T

    types = {c.name: c.type for c in table.columns}
    fields = [T.StructField(c, spark_type(types[c]), True) for c in names]
    return T.StructType(fields + [T.StructField(k, T.StringType(), True) for k in table.partition_keys])


def _conform(df: DataFrame, table: Table, names: Sequence[str]) -> DataFrame:
    """The asked columns with the schema's types, then the partition keys as strings."""
    from pyspark.sql import functions as F

    types = {c.name: c.type for c in table.columns}
    have = {c.lower() for c in df.columns}  # a table registered before a column was added has no such column
    return df.select(
        *[(F.col(c) if c in have else F.lit(None)).cast(spark_type(types[c])).alias(c) for c in names],
        *[F.col(k).cast("string").alias(k) for k in table.partition_keys],
    )


def _error_class(exc: Exception) -> str | None:
    """The error class of a PySpark exception (``getCondition`` on Spark 4, ``getErrorClass`` on 3.5)."""
    for getter in ("getCondition", "getErrorClass"):
        method = getattr(exc, getter, None)
        if method is not None:
            return method()
    return None


def _read_by_path(
    spark: SparkSession,
    table: Table,
    root: str,
    names: Sequence[str],
    filters: Mapping[str, Tuple[str, ...] | KeyRange],
    file_format: str,
) -> DataFrame:
    """Read the partition folders ``filters`` selects under ``root``; empty (same schema) when none exists."""
    from pyspark.errors import AnalysisException

    schema = _schema(table, names)
    pattern = path_glob(root, table, filters)
    log.debug("reading %s", pattern)
    try:
        df = spark.read.schema(schema).option("basePath", root).format(file_format).load(pattern)
        df.schema  # noqa: B018 - a Spark Connect session resolves the paths only when asked
    except AnalysisException as exc:
        if _error_class(exc) != "PATH_NOT_FOUND":
            raise
        log.debug("no partition matches %s", pattern)
        return spark.createDataFrame([], schema)
    return df.where(_where(table, filters)).select(*names, *table.partition_keys)
