"""The lake, read from a notebook: events, message counts, the quarantine and the run history, as DataFrames.

Every function takes the session you have (one :func:`lakelib.session.build_session` built, or the ``spark`` of a
Jupyter, EMR Studio or Glue notebook) and the lake's config, and uses Spark's public API only (``spark.table``,
``spark.catalog``, ``spark.read``; boto3 for Glue), so it works on any SparkSession::

    from lakelib import lake
    from lakelib.config import load_config

    config = load_config("conf/local.yaml")
    lake.events(spark, config, sources=["ios"], start="2026-01-01", end="2026-01-02", columns=["type", "userid"])
    lake.daily_counts(spark, config, start="2026-01-01", end="2026-01-03")
    lake.quarantine(spark, config, sources="ios", start="2026-01-01").groupBy("reason").count()
    lake.runs(spark, config, last=10)

Each reads only the partitions asked for (``sources``, and the inclusive day range ``start``..``end``; ``None``
means no bound), found where the catalog says they are:

- ``catalog.kind: spark``: the table in the session's catalog, filtered on its partition keys (Spark prunes the
  partitions in the metastore, and reads a compacted partition at its registered location). A session that does
  not know the table (one without Hive support) reads it by path instead;
- ``catalog.kind: glue``: ``GetPartitions`` with an ``Expression`` on the keys, then exactly those locations;
- ``catalog.kind: none`` (and the quarantine, which no catalog holds): the default folders, by a path glob of the
  asked sources and days under the table's root.

An empty selection (``start`` after ``end``, no partition in the range) gives an empty DataFrame with the same
columns and types as a full one: the asked data columns, then the partition keys as strings.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Dict, Iterable, Mapping, Sequence, Tuple, Union

from lakelib.errors import UsageError
from lakelib.paths import date_range, escape_value, join, parse_date, table_dir
from lakelib.schema import (
    EVENTS,
    LAKE_RUNS,
    MESSAGE_TYPE_COUNTS_DAILY,
    MESSAGE_TYPE_COUNTS_YEARLY,
    STRING,
    Column,
    Table,
    spark_type,
)
from lakelib.tables import TableRef, as_table, read_partitions

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column as SparkColumn
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from lakelib.config import Config

log = logging.getLogger(__name__)

#: The quarantine of ``json_to_parquet``: gzipped JSON lines under ``<lake.quarantine>/json_to_parquet/``, read
#: with these fields only (any other field a line carries is ignored).
QUARANTINE = Table(
    "json_to_parquet",
    (Column("reason", STRING), Column("raw", STRING), Column("file", STRING), Column("run_id", STRING)),
    ("sourceid", "dt"),
    "lines json_to_parquet rejected",
)

#: A day range longer than this is globbed as ``dt=*`` (then filtered) rather than spelled out day by day.
MAX_GLOB_DAYS = 3660

Day = Union[date, str]
Sources = Union[str, Iterable[str], None]


@dataclass(frozen=True)
class KeyRange:
    """An inclusive range of a partition key's values (``None``: unbounded)."""

    low: str | None = None
    high: str | None = None


#: Partition key -> the values wanted (a tuple) or a range of them.
Filters = Dict[str, Union[Tuple[str, ...], KeyRange]]


def events(
    spark: SparkSession,
    config: Config,
    sources: Sources = None,
    start: Day | None = None,
    end: Day | None = None,
    columns: Sequence[str] | None = None,
) -> DataFrame:
    """The ``events`` table: some columns of some sources over a range of received days.

    Parameters
    ----------
    spark
        Any SparkSession.
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
        ``columns`` then ``sourceid``, ``dt``.

    Raises
    ------
    UsageError
        A day that is not ``YYYY-MM-DD`` or a column the table does not have.
    """
    return read_table(spark, config, EVENTS, columns, _filters(EVENTS, sources, start, end))


def daily_counts(
    spark: SparkSession, config: Config, sources: Sources = None, start: Day | None = None, end: Day | None = None
) -> DataFrame:
    """``message_type_counts_daily``: ``type``, ``message_count``, ``sourceid``, ``dt`` for ``start``..``end``.

    Parameters are those of :func:`events`.
    """
    table = MESSAGE_TYPE_COUNTS_DAILY
    return read_table(spark, config, table, None, _filters(table, sources, start, end))


def yearly_counts(
    spark: SparkSession, config: Config, sources: Sources = None, start: Day | None = None, end: Day | None = None
) -> DataFrame:
    """``message_type_counts_yearly``: ``type``, ``message_count``, ``sourceid``, ``end_dt``, for the windows
    ending ``start``..``end`` (each row counts the 365 days ending with its ``end_dt``).

    Parameters are those of :func:`events`.
    """
    table = MESSAGE_TYPE_COUNTS_YEARLY
    return read_table(spark, config, table, None, _filters(table, sources, start, end))


def quarantine(
    spark: SparkSession,
    config: Config,
    sources: Sources = None,
    start: Day | None = None,
    end: Day | None = None,
    reasons: Iterable[str] | None = None,
) -> DataFrame:
    """The lines ``json_to_parquet`` rejected: ``reason``, ``raw`` (the line as read), ``file``, ``run_id``,
    ``sourceid``, ``dt``.

    Read by path (no catalog holds the quarantine) with those fields only, so lines that carry more fields
    read the same. ``reasons`` keeps only those reasons (see :data:`lakelib.schema.REJECT_REASONS`); the other
    parameters are those of :func:`events`.
    """
    filters = _filters(QUARANTINE, sources, start, end)
    root = join(config.lake.quarantine, QUARANTINE.name)
    df = _read_by_path(spark, QUARANTINE, root, QUARANTINE.column_names, filters, "json")
    if reasons is not None:
        df = df.where(_col("reason").isin(*[str(r) for r in reasons]))
    return df


def runs(
    spark: SparkSession, config: Config, jobs: Sources = None, last: int | None = None
) -> DataFrame:
    """The run history (table ``lake_runs``), most recent first.

    Parameters
    ----------
    spark
        Any SparkSession.
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
    df = read_table(spark, config, LAKE_RUNS, None, filters).orderBy(
        _col("started_at").desc(), _col("run_id").desc()
    )
    return df if last is None else df.limit(last)


def read_table(
    spark: SparkSession,
    config: Config,
    table: TableRef,
    columns: Sequence[str] | None = None,
    filters: Mapping[str, Tuple[str, ...] | KeyRange] | None = None,
) -> DataFrame:
    """Some columns of the partitions of a lake table that ``filters`` selects, wherever they live.

    Parameters
    ----------
    spark
        Any SparkSession.
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
        parts = [p for p in listed if _keeps(filters, p.values)]  # an open day range is filtered here
        log.debug("glue: %d partition(s) of %s selected", len(parts), t.name)
        return read_partitions(spark, t, parts, names)
    return _read_by_path(spark, t, table_dir(config.lake.tables, t.name), names, filters, "parquet")


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


def _keeps(filters: Mapping[str, Tuple[str, ...] | KeyRange], values: Mapping[str, str]) -> bool:
    """Whether a partition's key values pass ``filters`` (the Python twin of :func:`_where`)."""
    for key, wanted in filters.items():
        value = values.get(key)
        if isinstance(wanted, tuple) and value not in wanted:
            return False
        if isinstance(wanted, KeyRange) and value is not None and (
            (wanted.low is not None and value < wanted.low) or (wanted.high is not None and value > wanted.high)
        ):
            return False
    return True


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
