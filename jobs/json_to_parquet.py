"""json_to_parquet: Segment's raw day folders to the ``events`` Parquet table, with a quarantine for bad lines.

    spark-submit jobs/json_to_parquet.py --config conf/local.yaml --date 2026-01-01 [--end-date ...]

Reads ``<lake.raw>/<sourceId>/<received-day-epoch-ms>/*.gz`` for the requested sources and days (no ``--date``:
every day found), judges every line (``lakelib.parse``), keeps the earliest-received copy of each messageId per
source and day, and writes ``<lake.tables>/events/sourceid=<id>/dt=<day>/`` (snappy files near
``write.target_file_mb``) and ``<lake.quarantine>/json_to_parquet/sourceid=<id>/dt=<day>/`` (JSON lines with
``reason``, ``raw``, ``file``). A rerun replaces exactly the partitions it produces. It registers the partitions in
the catalog once the data is complete, and its run report proves that every line was accounted for:
``lines_read == rows_written + duplicates_dropped + quarantined`` (``+ duplicates_earlier_days`` with
``dedup.window_days`` over 1: a messageId already seen for the source in the window's earlier days is dropped too).

Two passes over the same scan (one per day, its files packed into the planned number of tasks): the judge pass
parses the three judged fields and ``receivedAt`` of every line and caches a narrow result (counts, quarantine, and
the losing copies of each messageId, ranked on those narrow rows); the write pass parses every field of the lines
without judging them again, drops the rejected lines and the losers with a broadcast anti-join on the line's ``pos``
and writes with no shuffle (BENCHMARKS.md has the figures).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from functools import reduce
from typing import Mapping, Sequence

if __package__ in (None, ""):  # run as a script by spark-submit from a checkout: the repository root is importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from lakelib.catalog import Catalog, Partition, open_catalog
from lakelib.config import Config
from lakelib.errors import InputError, LakelibError
from lakelib.parse import TOO_DEEP, judge_lines, losing_copies, parse_valid, too_deep
from lakelib.paths import join, partition_dir
from lakelib.raw import RawDay, find_raw_days
from lakelib.report import CONVERSION_COUNTERS, RunReport, sum_counters
from lakelib.runner import job_parser, requested_days, requested_sources, run_job
from lakelib.schema import EVENTS, REJECT_REASONS, spark_schema
from lakelib.session import build_session
from lakelib.storage import Storage
from lakelib.tables import find_partitions, read_partitions, register, write_partitions

JOB = "json_to_parquet"
log = logging.getLogger(JOB)

#: Parquet (snappy) bytes per byte of gzipped JSON input, used to plan file counts. Measured on `lake sample` data:
#: 3.3 MB of gzip became 4.5 MB of Parquet (the maps of nested JSON text compress less well than gzip).
PARQUET_PER_GZIP_BYTE = 1.35

#: What :func:`_read_gzip_by_content` says about a file that is not a complete gzip stream.
_NOT_GZIP_SIGN = "lakelib: not a complete gzip stream:"

#: Signs, in a Spark failure, that a compressed input file could not be read.
_READ_FAILURE_SIGNS = ("FAILED_READ_FILE", "Unexpected end of input stream", "CRC failure", "Not in GZIP format",
                       "not a gzip file", "invalid block type", "invalid distance", "incorrect header check",
                       "ZipException", "EOFException", _NOT_GZIP_SIGN)


def build_parser() -> argparse.ArgumentParser:
    """The job's command line (the contract's common arguments)."""
    return job_parser(JOB, "Convert Segment's raw JSON logs to the events Parquet table.")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; returns the exit status (0 ok, 1 failed run, 2 usage or config error)."""
    return run_job(JOB, build_parser(), argv, convert)


def convert(args: argparse.Namespace, config: Config, report: RunReport) -> str:
    """The job's body: find, read, judge, dedupe, write, verify, register, report."""
    days = requested_days(args)
    sources = requested_sources(args, config)
    spark = build_session(config, app_name=JOB)
    storage = Storage(spark)

    raw_days, skipped = find_raw_days(storage, config.lake.raw, sources, days)
    report.extra["skipped_days"] = [{"sourceid": s, "dt": d.isoformat()} for s, d in skipped]
    for source, day in skipped:
        log.info("no raw folder for source %s on %s: skipped", source, day)
    if not raw_days:
        wanted = ", ".join(sources) or "any source"
        when = f"on {days[0]}" if days and len(days) == 1 else (f"{days[0]}..{days[-1]}" if days else "at all")
        raise InputError(f"no raw data for {wanted} {when} under {config.lake.raw}")
    n_files = sum(len(d.files) for d in raw_days)
    log.info(
        "reading %d source(s), %d day folder(s), %d files, %s",
        len({d.source for d in raw_days}), len(raw_days), n_files, _mb(sum(d.bytes for d in raw_days)),
    )

    # Both passes read the same scan (one per day, packed to the planned file count), so a line's ``pos`` is the
    # same in both. The judge pass caches narrow rows (no event columns): the counts, the quarantine and the
    # losing copies of each messageId come from that cache; the write pass parses every field, drops the rejected
    # lines and the losers with a broadcast anti-join and writes each task's rows into its day's folder, with no
    # shuffle.
    plan = plan_file_counts(raw_days, config.write.target_file_mb)
    lines = read_raw_lines(spark, raw_days, plan)
    events_root = join(config.lake.tables, EVENTS.name)
    quarantine_root = join(config.lake.quarantine, JOB)
    window = config.dedup.window_days
    catalog = open_catalog(config, spark)
    counts, dropped = judge_pass(spark, lines, raw_days, config, catalog, quarantine_root, report.run_id)

    keys = [d.key for d in raw_days]
    produced = sorted(k for k in keys if k in counts and _expected_rows(counts[k]))
    quarantined = {k for k in keys if counts.get(k, {}).get("quarantined")}
    expected = sum(_expected_rows(counts[k]) for k in produced)
    try:
        written_parts = write_events(lines, dropped, produced, config.lake.tables, config.write.compression)
    finally:
        dropped.unpersist()
    read = sum(c["lines_read"] for c in counts.values())
    if produced and (written_parts.lines, written_parts.rows) != (read, expected):
        raise LakelibError(
            f"the write pass read {written_parts.lines:,} lines and kept {written_parts.rows:,} rows, the judge "
            f"pass read {read:,} and expected {expected:,}: the input changed during the run; rerun the job"
        )
    remove_stale(storage, events_root, [k for k in keys if k not in produced])
    remove_stale(storage, quarantine_root, [k for k in keys if k not in quarantined])

    written = verify_written(spark, storage, events_root, produced)
    report.partitions = [partition_entry(d, counts.get(d.key, _empty_counts()), written.get(d.key), window > 1)
                         for d in raw_days]
    counters = CONVERSION_COUNTERS + (("duplicates_earlier_days",) if window > 1 else ())
    report.totals = sum_counters(report.partitions, counters + ("quarantined_by_reason",))
    report.extra["dedup_window_days"] = window
    if written_parts.partitions:
        register(catalog, EVENTS, config.lake.tables, written_parts.partitions, report=report)
    stale = [k for k in keys if k not in produced]
    if stale:
        catalog.drop_partitions(EVENTS, [{"sourceid": s, "dt": d} for s, d in stale])

    print_summary(report)
    return "succeeded"


def judge_pass(
    spark: SparkSession,
    lines: DataFrame,
    raw_days: Sequence[RawDay],
    config: Config,
    catalog: Catalog,
    quarantine_root: str,
    run_id: str,
) -> tuple[dict[tuple[str, str], dict], DataFrame]:
    """Judge every line on a narrow parse: counts per partition, the quarantine, and the lines to drop.

    Returns
    -------
    tuple
        :func:`per_partition_counts` (with ``duplicates`` and ``duplicates_earlier_days`` filled in), and the
        ``pos`` of every line the write pass drops (:func:`find_losers`' rows and the rejected lines), persisted (the
        caller unpersists them after the write pass).
    """
    window = config.dedup.window_days
    judged = narrow_judge(lines).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = per_partition_counts(count_lines(spark, judged, raw_days))
        total = {k: sum(c[k] for c in counts.values()) for k in ("lines_read", "valid", "quarantined")}
        log.info(
            "judged %s lines: %s valid, %s quarantined",
            f"{total['lines_read']:,}", f"{total['valid']:,}", f"{total['quarantined']:,}",
        )
        earlier = None
        if window > 1:
            parts = earlier_partitions(Storage(spark), catalog, config.lake.tables, raw_days, window)
            seen = read_partitions(spark, EVENTS, parts, ["messageid"]).unionByName(
                judged.where(F.col("reason").isNull()).select("messageid", "sourceid", "dt")
            )
            earlier = ids_seen_before(seen, window)
        rejected = judged.where(F.col("reason").isNotNull()).select(
            "sourceid", "dt", "pos", F.lit("quarantined").alias("kind")
        )
        losers = find_losers(judged, earlier).select("sourceid", "dt", "pos", "kind")
        dropped = losers.unionByName(rejected).persist(StorageLevel.MEMORY_AND_DISK)
        for (key, kind), n in count_by_partition(dropped, "kind").items():
            if kind != "quarantined":  # counted by count_lines already
                counts[key][kind] = n
        if total["quarantined"]:
            write_quarantine(judged, quarantine_root, run_id)
    finally:
        judged.unpersist()
    return counts, dropped


def partition_entry(day: RawDay, counts: dict, written: dict | None, with_earlier: bool = False) -> dict:
    """One partition of the run report, once its rows in the files match what the judge pass expects.

    ``duplicates_earlier_days`` is in the entry when ``with_earlier`` (a dedup window over one day).

    Raises
    ------
    LakelibError
        The files hold another number of rows than the judge pass expects.
    """
    w = written or {"rows": 0, "files": 0, "bytes": 0}
    expected = _expected_rows(counts)
    if w["rows"] != expected:
        raise LakelibError(f"events sourceid={day.source} dt={day.key[1]}: {w['rows']} rows in the files, "
                           f"expected {expected}")
    entry = {
        "sourceid": day.source,
        "dt": day.key[1],
        "lines_read": counts["lines_read"],
        "rows_written": w["rows"],
        "duplicates_dropped": counts["duplicates"],
        "quarantined": counts["quarantined"],
        "quarantined_by_reason": counts["by_reason"],
        "files_written": w["files"],
        "bytes_written": w["bytes"],
        "input_files": len(day.files),
    }
    if with_earlier:
        entry["duplicates_earlier_days"] = counts["duplicates_earlier_days"]
    return entry


def _expected_rows(counts: dict) -> int:
    return counts["valid"] - counts["duplicates"] - counts["duplicates_earlier_days"]


def read_raw_lines(
    spark: SparkSession, raw_days: Sequence[RawDay], plan: Mapping[tuple[str, str], int] | None = None
) -> DataFrame:
    """The raw lines of the given day folders' files: ``value``, ``file``, ``file_idx``, ``sourceid``, ``dt``,
    ``pos``.

    Exactly the files the listing found are read, and each line gets ``sourceid``/``dt`` from its file's
    :class:`RawDay` (never from a path Spark reports, never through the session's time zone). ``value`` holds the
    line's bytes as they are (invalid UTF-8 included; ``lakelib.parse`` rejects it). Files whose name ends in ``.gz``
    in another case (``.GZ``) are decompressed here, by content. ``file_idx`` sorts like ``file`` within a day.
    ``pos`` identifies the line in the run and grows with its position in its file; two reads of the same
    DataFrame give every line the same ``pos``.

    Each day is its own scan, so that a task holds one day; with ``plan`` (files per ``(sourceid, dt)``) a day's
    files are packed into that many tasks (never fewer than one file per task: a gzip file is not split).
    """
    storage = Storage(spark)
    listed = [(d, f) for d in raw_days for f in d.files]
    keys = spark.createDataFrame(
        [(storage.spark_uri(f.path), f.path, i, d.source, d.day.isoformat()) for i, (d, f) in enumerate(listed)],
        "_uri string, file string, file_idx int, sourceid string, dt string",
    )
    parts = []
    for day in raw_days:
        plain = [f.path for f in day.files if not _gzip_in_other_case(f.name)]
        if plain:
            scan = spark.read.text(plain).select("value", F.col("_metadata.file_path").alias("_uri"))
            if plan:
                scan = scan.coalesce(max(1, plan.get(day.key, 1)))
            parts.append(scan)
    other_case = [f.path for d in raw_days for f in d.files if _gzip_in_other_case(f.name)]
    if other_case:
        parts.append(_read_gzip_by_content(spark, other_case))
    lines = reduce(lambda a, b: a.unionByName(b), parts).withColumn("pos", F.monotonically_increasing_id())
    joined = lines.join(F.broadcast(keys), "_uri", "left")
    unlisted = F.raise_error(F.concat(F.lit("lakelib: a line from a file the listing does not hold: "), F.col("_uri")))
    return joined.select(
        "value",
        F.when(F.col("file").isNull(), unlisted).otherwise(F.col("file")).alias("file"),
        "file_idx",
        "sourceid",
        "dt",
        "pos",
    )


def _gzip_in_other_case(name: str) -> bool:
    """A gzip suffix Hadoop's codec lookup (case-sensitive ``.gz``) would miss."""
    return name.lower().endswith(".gz") and not name.endswith(".gz")


def _read_gzip_by_content(spark: SparkSession, paths: Sequence[str]) -> DataFrame:
    """Lines of gzip files Spark would read as plain text, in order: ``value``, ``_uri``. A bad file fails the read."""
    from lakelib.raw import gunzip, split_lines

    @F.udf(returnType="array<binary>")
    def lines_of(content, uri):  # no type hints: Spark 4 would take them for a pandas UDF's
        try:
            return split_lines(gunzip(bytes(content)))
        except ValueError as exc:
            raise ValueError(f"{_NOT_GZIP_SIGN} {uri}: {exc}") from None

    files = spark.read.format("binaryFile").load(list(paths)).select(
        "content", F.col("_metadata.file_path").alias("_uri")
    )
    exploded = files.select("_uri", F.explode(lines_of("content", "_uri")).alias("line"))
    return exploded.select(F.col("line").cast("string").alias("value"), "_uri")


def narrow_judge(lines: DataFrame) -> DataFrame:
    """The judge pass's rows: what the counts, the quarantine and the dedup need, and no event column.

    ``file`` (a long path) is kept for rejected lines only; the dedup orders files by ``file_idx``.
    """
    judged = lines.transform(lambda df: judge_lines(df, keep=("file_idx",)))
    return judged.withColumn("file", F.when(F.col("reason").isNotNull(), F.col("file")))


def count_lines(spark: SparkSession, judged: DataFrame, raw_days: Sequence[RawDay]) -> list:
    """Lines per partition and reason; the first action, so it also reads the input (and fills the cache).

    Raises
    ------
    InputError
        A gzip file is truncated or corrupt: naming each such file (nothing has been written).
    """
    agg = judged.groupBy("sourceid", "dt", "reason").agg(F.count(F.lit(1)).alias("lines"))
    try:
        return agg.collect()
    except Exception as exc:  # a Py4JJavaError from reading the input
        text = str(exc)
        if not any(sign in text for sign in _READ_FAILURE_SIGNS):
            raise
        bad = find_corrupt_gzip(spark, [f.path for d in raw_days for f in d.files])
        if not bad:
            raise
        names = ", ".join(f"{path} ({why})" for path, why in bad)
        raise InputError(
            f"corrupt or truncated gzip file(s), nothing was written: {names}; "
            "replace or remove them, then rerun"
        ) from None


def find_losers(judged: DataFrame, earlier: DataFrame | None = None) -> DataFrame:
    """The valid lines the write pass drops: ``sourceid, dt, pos, messageid, kind``.

    ``kind`` is ``duplicates_earlier_days`` for every copy of a messageId that ``earlier`` holds for its source and
    day, ``duplicates`` for the other copies that are not the kept one of their day
    (:func:`lakelib.parse.losing_copies` on the narrow rows: a shuffle of a few bytes per valid line).

    Parameters
    ----------
    judged
        :func:`narrow_judge`'s rows.
    earlier
        ``sourceid, dt, messageid``: the ids seen in the dedup window before each day (:func:`ids_seen_before`).
    """
    columns = ["sourceid", "dt", "messageid", "receivedat", "file_idx", "pos"]
    valid = judged.where(F.col("reason").isNull()).select(*columns)
    out = ["sourceid", "dt", "pos", "messageid"]
    dropped_earlier = None
    if earlier is not None:
        marked = valid.join(earlier.withColumn("_earlier", F.lit(True)), ["sourceid", "dt", "messageid"], "left")
        dropped_earlier = marked.where(F.col("_earlier")).select(*out, F.lit("duplicates_earlier_days").alias("kind"))
        valid = marked.where(F.col("_earlier").isNull()).select(*columns)
    losers = losing_copies(valid, file_order="file_idx").select(*out, F.lit("duplicates").alias("kind"))
    return losers if dropped_earlier is None else losers.unionByName(dropped_earlier)


def earlier_partitions(
    storage: Storage, catalog: Catalog, tables_root: str, raw_days: Sequence[RawDay], window: int
) -> list[Partition]:
    """The ``events`` partitions in the dedup window before the converted days, other than the converted days.

    The converted days' own messageIds come from this run's input instead (their partitions are being replaced).
    """
    converting = {d.key for d in raw_days}
    wanted = {(d.source, (d.day - timedelta(days=k)).isoformat()) for d in raw_days for k in range(1, window)}
    wanted -= converting
    if not wanted:
        return []
    found = find_partitions(EVENTS, tables_root, storage, catalog, sources={s for s, _ in wanted},
                            days={d for _, d in wanted}, skip=[{"sourceid": s, "dt": d} for s, d in converting])
    parts = [p for p in found if (p.values["sourceid"], p.values["dt"]) in wanted]
    log.info("dedup window of %d days: reading the messageids of %d earlier partition(s) of %s", window,
             len(parts), EVENTS.name)
    return parts


def ids_seen_before(seen: DataFrame, window: int) -> DataFrame:
    """For each source and day, the messageIds seen on one of the ``window - 1`` days before it.

    Parameters
    ----------
    seen
        ``messageid, sourceid, dt``: where each messageId was seen.
    window
        ``dedup.window_days``.

    Returns
    -------
    DataFrame
        Distinct ``sourceid, dt, messageid`` (``dt`` the later day that a copy of the message is dropped from).
    """
    later = F.date_format(F.date_add(F.to_date("dt"), F.col("_k")), "yyyy-MM-dd")
    shifted = seen.select("sourceid", "dt", "messageid", F.explode(F.sequence(F.lit(1), F.lit(window - 1))).alias("_k"))
    return shifted.select("sourceid", later.alias("dt"), "messageid").distinct()


def count_by_partition(rows: DataFrame, *by: str) -> dict[tuple, int]:
    """Rows per ``(sourceid, dt)``, or per ``((sourceid, dt), *by)`` when ``by`` columns are given."""
    grouped = rows.groupBy("sourceid", "dt", *by).count().collect()
    if not by:
        return {(r["sourceid"], r["dt"]): r["count"] for r in grouped}
    return {((r["sourceid"], r["dt"]), *[r[c] for c in by]): r["count"] for r in grouped}


def find_corrupt_gzip(spark: SparkSession, paths: Sequence[str]) -> list[tuple[str, str]]:
    """Which of ``paths`` (``.gz`` in any case) are not complete gzip streams: ``(path, reason)``.

    Decompresses each file once, as strictly as Hadoop's reader (:func:`lakelib.raw.gunzip`).
    """
    from lakelib.raw import gunzip

    gz = [p for p in paths if p.lower().endswith(".gz")]
    if not gz:
        return []
    storage = Storage(spark)
    path_of = {storage.spark_uri(p): p for p in gz}

    @F.udf(returnType="string")
    def problem(content):  # no type hints: Spark 4 would take them for a pandas UDF's
        try:
            gunzip(bytes(content))
        except ValueError as exc:
            return str(exc)
        return None

    files = spark.read.format("binaryFile").load(gz).select(
        F.col("_metadata.file_path").alias("uri"), problem("content").alias("why")
    )
    return sorted((path_of.get(r["uri"], r["uri"]), r["why"]) for r in files.where("why is not null").collect())


def per_partition_counts(stats: Sequence) -> dict[tuple[str, str], dict]:
    """``(sourceid, dt)`` -> lines_read, valid, quarantined, by_reason (all reasons, zeros kept), duplicates (0)."""
    out: dict[tuple[str, str], dict] = {}
    for row in stats:
        c = out.setdefault((row["sourceid"], row["dt"]), _empty_counts())
        c["lines_read"] += row["lines"]
        if row["reason"] is None:
            c["valid"] += row["lines"]
        else:
            c["quarantined"] += row["lines"]
            c["by_reason"][row["reason"]] += row["lines"]
    return out


def _empty_counts() -> dict:
    return {
        "lines_read": 0, "valid": 0, "duplicates": 0, "duplicates_earlier_days": 0, "quarantined": 0,
        "by_reason": {reason: 0 for reason in REJECT_REASONS},
    }


def plan_file_counts(raw_days: Sequence[RawDay], target_file_mb: int) -> dict[tuple[str, str], int]:
    """How many Parquet files each partition should get so that files land near ``target_file_mb``."""
    target = target_file_mb * 1024 * 1024
    return {d.key: max(1, int(d.bytes * PARQUET_PER_GZIP_BYTE / target + 0.5)) for d in raw_days}


@dataclass
class Written:
    """What the write pass wrote: its partitions (at their default folders), the lines it read (blank lines aside),
    the rows it kept."""

    partitions: list[Partition]
    lines: int
    rows: int


def write_events(
    lines: DataFrame, dropped: DataFrame, produced: Sequence[tuple[str, str]], tables_root: str, compression: str
) -> Written:
    """Parse every field of the lines the judge pass kept, write them (dynamic overwrite).

    ``dropped`` holds the ``pos`` of the rejected lines and of the losing copies: they are dropped with a broadcast
    anti-join, so the write pass does not judge again (:func:`lakelib.parse.parse_valid`). No shuffle: each task
    writes the rows of its own scan, which holds one day, so a partition gets one file per task of its day
    (:func:`read_raw_lines` packs a day's files into the planned number of tasks).
    """
    seen, kept = Observation("lines_read"), Observation("kept_rows")
    events = (
        lines.transform(parse_valid)
        .observe(seen, F.count(F.lit(1)).alias("lines"))
        .join(F.broadcast(dropped.select("pos")), "pos", "left_anti")
        .observe(kept, F.count(F.lit(1)).alias("rows"))
    )
    log.info("writing %d partition(s) of %s", len(produced), EVENTS.name)
    parts = write_partitions(events, EVENTS, tables_root, compression,
                             partitions=[{"sourceid": s, "dt": d} for s, d in produced], one_file_per_partition=False)
    if not parts:
        return Written([], 0, 0)
    return Written(parts, int(seen.get["lines"]), int(kept.get["rows"]))


def write_quarantine(judged: DataFrame, quarantine_root: str, run_id: str) -> None:
    """Write the rejected lines as gzipped JSON lines: reason, raw, file, run_id, and where they apply
    ``raw_base64`` (the bytes of a line that is not UTF-8) and ``detail`` (why a line is invalid JSON, when the
    reason alone would mislead).
    """
    rejected = judged.where(F.col("reason").isNotNull())
    detail = F.when((F.col("reason") == "invalid_json") & too_deep(F.col("raw")), F.lit(TOO_DEEP))
    rejected = rejected.select(
        "reason", "raw", "file", F.lit(run_id).alias("run_id"), "raw_base64", detail.alias("detail"), "sourceid", "dt"
    )
    log.info("writing rejected lines to %s", quarantine_root)
    writer = rejected.repartition("sourceid", "dt").write.mode("overwrite").partitionBy("sourceid", "dt")
    writer.option("compression", "gzip").json(quarantine_root)


def remove_stale(storage: Storage, root: str, keys: Sequence[tuple[str, str]]) -> None:
    """Delete partition folders a rerun no longer produces (their day now yields no rows of that kind)."""
    for source, dt in keys:
        if storage.delete(join(root, _pdir(source, dt))):
            log.info("removed stale %s", join(root, _pdir(source, dt)))


def verify_written(
    spark: SparkSession, storage: Storage, events_root: str, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], dict]:
    """Rows (from the Parquet footers), files and bytes actually in each written partition folder."""
    if not keys:
        return {}
    dirs = [join(events_root, _pdir(s, d)) for s, d in keys]
    rows = (
        spark.read.schema(spark_schema(EVENTS, with_partitions=True))
        .option("basePath", events_root)
        .parquet(*dirs)
        .groupBy("sourceid", "dt")
        .count()
        .collect()
    )
    out = {key: {"rows": 0, "files": 0, "bytes": 0} for key in keys}
    for row in rows:
        out[(row["sourceid"], row["dt"])]["rows"] = row["count"]
    for key, folder in zip(keys, dirs):
        files = storage.data_files(folder)
        out[key]["files"] = len(files)
        out[key]["bytes"] = sum(f.size for f in files)
    return out


def print_summary(report: RunReport) -> None:
    """A closing table for people, on stdout."""
    t = report.totals
    print(
        f"{JOB}: {len(report.partitions)} partition(s): {t['lines_read']:,} lines -> {t['rows_written']:,} rows, "
        f"{t['duplicates_dropped']:,} duplicates dropped, {t['quarantined']:,} quarantined, "
        f"{t['files_written']} file(s), {_mb(t['bytes_written'])}"
    )
    header = f"  {'sourceid':<20} {'dt':<10} {'lines':>9} {'rows':>9} {'dups':>7} {'quar.':>7} {'files':>5} {'size':>9}"
    print(header)
    for p in report.partitions:
        print(
            f"  {p['sourceid']:<20} {p['dt']:<10} {p['lines_read']:>9,} {p['rows_written']:>9,} "
            f"{p['duplicates_dropped']:>7,} {p['quarantined']:>7,} {p['files_written']:>5} {_mb(p['bytes_written']):>9}"
        )
    reasons = {k: v for k, v in t.get("quarantined_by_reason", {}).items() if v}
    if reasons:
        print("  quarantined by reason: " + ", ".join(f"{k} {v:,}" for k, v in reasons.items()))
    sys.stdout.flush()


def _pdir(source: str, dt: str) -> str:
    return partition_dir({"sourceid": source, "dt": dt})


def _mb(n: int) -> str:
    return f"{n / 1_048_576:.1f} MB" if n >= 104_858 else f"{n / 1024:.1f} KB"


if __name__ == "__main__":
    sys.exit(main())
