"""Reading, writing and registering the lake's partitioned tables, wherever their partitions live.

A table's partitions normally sit in their default Hive-style folders,
``<lake.tables>/<table>/sourceid=<id>/dt=<YYYY-MM-DD>/``; after a compaction the catalog may point a partition
somewhere else. The helpers here hide that difference from the jobs:

- :func:`find_partitions` says which partitions of a table exist for some sources and days, and where (the
  catalog's location when it has one, else the default folder when it holds data files);
- :func:`read_partitions` reads only the asked columns of exactly those partitions, the partition keys added as
  string columns (Parquet column pruning, and no listing of folders nobody asked for);
- :func:`write_partitions` overwrites exactly the partitions a DataFrame holds (dynamic partition overwrite) and
  returns them with their folders;
- :func:`register` records them in the catalog, once the data is complete.

A typical job::

    parts = find_partitions(EVENTS, config.lake.tables, storage, catalog, sources=["web"], days=days)
    events = read_partitions(spark, EVENTS, parts, ["messageid", "type"])
    written = write_partitions(counts, MESSAGE_TYPE_COUNTS_DAILY, config.lake.tables, config.write.compression)
    register(catalog, MESSAGE_TYPE_COUNTS_DAILY, config.lake.tables, written)
"""
from __future__ import annotations

import logging
from datetime import date
from functools import reduce
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence, Union

from lakelib.catalog.base import Catalog, Partition, RegisterResult
from lakelib.errors import LakelibError, PartialRegistrationError
from lakelib.paths import canonical_location, join, parse_partition_dir, partition_dir, table_dir
from lakelib.report import RunReport, record_registration
from lakelib.schema import Table, get_table, spark_type

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from lakelib.storage import Storage

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

    Partitions in Hive-style folders under a common root (the default layout) are read in one scan with
    ``basePath``; any other location (a compacted partition) is read on its own with its key values added as
    literals, and the scans are unioned. Only ``columns`` are read from the Parquet files.

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

    by_base: dict[str, list[str]] = {}
    alone: list[Partition] = []
    for part in partitions:
        values = key_values(t, part.values)
        suffix = "/" + partition_dir(values)
        location = canonical_location(part.location, s3a_is_s3=False)
        if location.endswith(suffix):
            by_base.setdefault(location[: -len(suffix)], []).append(location)
        else:
            alone.append(Partition(values, location))

    frames = []
    for base, paths in by_base.items():
        # An explicit schema: only these columns are read, and the keys stay strings (no type inference).
        reader = spark.read.schema(T.StructType(data_fields + key_fields)).option("basePath", base)
        frames.append(reader.parquet(*paths).select(*names))
    for part in alone:
        df = spark.read.schema(T.StructType(data_fields)).parquet(part.location)
        frames.append(df.select(*columns, *[F.lit(v).cast("string").alias(k) for k, v in part.values.items()]))
    log.debug("%s: reading %d partitions in %d scans", t.name, len(partitions), len(frames))
    return reduce(lambda a, b: a.unionByName(b), frames)


def write_partitions(
    df: DataFrame,
    table: TableRef,
    tables_root: str,
    compression: str = "snappy",
    *,
    partitions: Sequence[Mapping[str, object]] | None = None,
    one_file_per_partition: bool = True,
) -> list[Partition]:
    """Overwrite the partitions of a table that ``df`` holds, and only those (dynamic partition overwrite).

    Parameters
    ----------
    df
        The table's data columns and partition keys (other columns are dropped, the order is the table's).
    table
        The table (or its name).
    tables_root
        ``lake.tables``; the table is written under ``<tables_root>/<table>/``.
    compression
        Parquet codec (``write.compression``).
    partitions
        The key values ``df`` holds, when the caller knows them; otherwise they are computed with one more
        (small) Spark job over ``df``, so cache ``df`` if it is costly.
    one_file_per_partition
        Shuffle rows by partition key first so that each partition gets a single file (right for small
        tables; a big table sizes its files itself and passes ``False``).

    Returns
    -------
    list[Partition]
        The partitions written, at their default folders, sorted. Nothing is written for an empty list.
    """
    from pyspark.sql import functions as F

    t = as_table(table)
    keys = list(t.partition_keys)
    if partitions is None:
        rows = df.select(*[F.col(k).cast("string").alias(k) for k in keys]).distinct().collect()
        partitions = [row.asDict() for row in rows]
    values = sorted({tuple(key_values(t, p).values()) for p in partitions})
    written = [Partition(dict(zip(keys, v)), partition_location(tables_root, t, dict(zip(keys, v)))) for v in values]
    if not written:
        log.info("%s: nothing to write", t.name)
        return []
    out = df.select(*t.column_names, *[F.col(k).cast("string").alias(k) for k in keys])
    if one_file_per_partition:
        out = out.repartition(*keys)
    codec = "uncompressed" if compression == "none" else compression
    (
        out.write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .option("compression", codec)
        .partitionBy(*keys)
        .parquet(table_dir(tables_root, t.name))
    )
    log.info("%s: wrote %d partitions", t.name, len(written))
    return written


def register(
    catalog: Catalog,
    table: TableRef,
    tables_root: str,
    partitions: Sequence[Partition],
    report: RunReport | None = None,
) -> RegisterResult:
    """Record written partitions in the catalog: the table if it is new, then each partition's folder.

    Call it only once the data is complete. Idempotent: identical partitions are left alone, moved ones are
    re-pointed (a rewrite to the default folder after a compaction re-points the partition there).

    Parameters
    ----------
    catalog, table, tables_root, partitions
        Where, which table (under ``<tables_root>/<table>``), and its partitions at their folders.
    report
        When given, which partitions are registered is recorded on it (``registered`` on the entries of
        ``report.partitions`` with their key values, see :func:`lakelib.report.record_registration`), after a
        success and after a partial failure alike: fill ``report.partitions`` first.

    Raises
    ------
    PartialRegistrationError
        The catalog refused part way (recorded on ``report`` first); a rerun finishes the registration.
    CatalogError
        The table could not be created or repaired (no partition was registered).
    """
    t = as_table(table)
    catalog.ensure_table(t, table_dir(tables_root, t.name))
    values = [key_values(t, p.values) for p in partitions]
    try:
        result = catalog.register_partitions(t, list(partitions))  # each backend logs what it changed
    except PartialRegistrationError as exc:
        if report is not None:
            record_registration(report, t.name, exc.registered, exc.not_registered, exc.unknown)
        raise
    if report is not None and catalog.kind != "none":
        record_registration(report, t.name, values)
    return result
