"""json_to_parquet: Segment's raw day folders to the ``events`` Parquet table, with a quarantine for bad lines.

    spark-submit jobs/json_to_parquet.py --config conf/local.yaml --date 2026-01-01 [--end-date ...]
    spark-submit jobs/json_to_parquet.py --config conf/local.yaml --changed [--lookback-days 14]

Reads ``<lake.raw>/<sourceId>/<received-day-epoch-ms>/*.gz`` for the requested sources and days (no ``--date``:
every day found), judges every line (``lakelib.parse``), keeps the earliest-received copy of each messageId per
source and day, and writes ``<lake.tables>/events/sourceid=<id>/dt=<day>/`` (snappy files near
``write.target_file_mb``) and ``<lake.quarantine>/json_to_parquet/sourceid=<id>/dt=<day>/`` (JSON lines with
``reason``, ``raw``, ``file``). A rerun replaces exactly the partitions it produces. It registers the partitions in
the catalog once the data is complete, and its run report proves that every line was accounted for:
``lines_read == rows_written + duplicates_dropped + quarantined`` (``+ duplicates_earlier_days`` with
``dedup.window_days`` over 1: a messageId already seen for the source in the window's earlier days is dropped too).
Once published, each day's raw listing is recorded; ``--changed`` converts only the days whose listing differs
from it (:mod:`lakelib.changes`, ``docs/operations.md``).

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
from datetime import date, timedelta
from typing import Mapping, Sequence

if __package__ in (None, ""):  # run as a script by spark-submit from a checkout: the repository root is importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from lakelib.changes import UNCHANGED, DayChange, add_changed_arguments, find_changes, lookback_days, record_conversion
from lakelib.config import Config
from lakelib.errors import InputError, LakelibError
from lakelib.forget import Forgotten, holds_id_string, load_forgotten, mark_goes
from lakelib.parse import TIMESTAMPS_CUT, TOO_DEEP, judge_lines, losing_copies, parse_valid, too_deep
from lakelib.paths import raw_day_dir
from lakelib.publish import Staged
from lakelib.raw import NOT_GZIP_SIGN, RawDay, find_corrupt_gzip, find_raw_days, read_raw_lines
from lakelib.report import CONVERSION_COUNTERS, RunReport, sum_counters
from lakelib.runner import job_parser, requested_days, requested_sources, run_job
from lakelib.schema import EVENTS, QUARANTINE, REJECT_REASONS
from lakelib.session import build_session
from lakelib.tables import Partition, Tables, open_tables

JOB = "json_to_parquet"
log = logging.getLogger(JOB)

#: The report's counters: the contract's, and the rows written with a timestamp cut to the microsecond.
COUNTERS = CONVERSION_COUNTERS + ("timestamps_truncated",)

#: Parquet (snappy) bytes per byte of gzipped JSON input, used to plan file counts. Measured on `lake sample` data:
#: 3.3 MB of gzip became 4.5 MB of Parquet (the maps of nested JSON text compress less well than gzip).
PARQUET_PER_GZIP_BYTE = 1.35

#: Signs, in a Spark failure, that a compressed input file could not be read.
_READ_FAILURE_SIGNS = ("FAILED_READ_FILE", "Unexpected end of input stream", "CRC failure", "Not in GZIP format",
                       "not a gzip file", "invalid block type", "invalid distance", "incorrect header check",
                       "ZipException", "EOFException", NOT_GZIP_SIGN)


def build_parser() -> argparse.ArgumentParser:
    """The job's command line (the contract's common arguments, ``--changed`` and ``--lookback-days``)."""
    parser = job_parser(JOB, "Convert Segment's raw JSON logs to the events Parquet table.")
    add_changed_arguments(parser, lookback=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; returns the exit status (0 ok, 1 failed run, 2 usage or config error)."""
    return run_job(JOB, build_parser(), argv, convert)


def convert(args: argparse.Namespace, config: Config, report: RunReport) -> str:
    """The job's body: find, read, judge, dedupe, stage the events and the quarantine, verify, publish, report."""
    days = lookback_days(args, requested_days(args))
    sources = requested_sources(args, config)
    spark = build_session(config, app_name=JOB)
    tables = open_tables(spark, config, report.run_id)

    raw_days, skipped = find_raw_days(tables.storage, config.lake.raw, sources, days)
    report.extra["skipped_days"] = [{"sourceid": s, "dt": d.isoformat()} for s, d in skipped]
    for source, day in skipped:
        log.info("no raw folder for source %s on %s: skipped", source, day)
    changes = None
    if args.changed:
        changes = find_changes(tables, raw_days, [(s, d.isoformat()) for s, d in skipped])
        raw_days = changed_days(raw_days, changes, config.lake.raw)
        report_changes(report, changes)
        if not raw_days:
            return nothing_changed(report, changes)
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
    window = config.dedup.window_days
    forgotten = load_forgotten(tables.storage, config.lake.tables)  # people erased: their events never come back
    keys = [d.key for d in raw_days]
    if n_files:
        plan = plan_file_counts(raw_days, config.write.target_file_mb)
        lines = read_raw_lines(spark, raw_days, plan)
        counts, dropped, quarantine = judge_pass(spark, lines, raw_days, config, tables, forgotten)
        expected = {k: _expected_rows(counts[k]) for k in keys if k in counts and _expected_rows(counts[k])}
        try:
            read = sum(c["lines_read"] for c in counts.values())
            events, truncated = stage_events(tables, lines, dropped, expected, [k for k in keys if k not in expected],
                                             read)
        finally:
            dropped.unpersist()
    else:  # --changed, and every file of these days is gone: their partitions go
        counts, truncated = {}, {}
        events = tables.stage(EVENTS, None, {}, drop=keys)
        quarantine = tables.stage(tables.quarantine(QUARANTINE), None, {}, drop=keys)

    report.partitions = [partition_entry(d, counts.get(d.key, _empty_counts()), events, window > 1,
                                         forgotten is not None, truncated.get(d.key, 0)) for d in raw_days]
    counters = COUNTERS + (("duplicates_earlier_days",) if window > 1 else ()) + (
        ("suppressed",) if forgotten is not None else ())
    report.totals = sum_counters(report.partitions, counters + ("quarantined_by_reason", "input_bytes"))
    report.extra["dedup_window_days"] = window
    published = tables.publish(events, quarantine, report=report)
    reasons = None if changes is None else {c.key: c.reason for c in changes}
    if reasons is not None:
        for entry in report.partitions:
            entry["reason"] = reasons.get((entry["sourceid"], entry["dt"]))
        report_changes(report, changes)
    record_conversion(tables, raw_days, published, reasons)
    print_summary(report)
    return "succeeded"


def changed_days(raw_days: Sequence[RawDay], changes: Sequence[DayChange], raw: str) -> list[RawDay]:
    """The days ``--changed`` converts: the listed days that changed, and (with no file) those whose every file is
    gone, so that their partitions are removed."""
    todo = {c.key for c in changes if c.reason != UNCHANGED}
    out = [d for d in raw_days if d.key in todo]
    listed = {d.key for d in out}
    for source, dt in sorted(todo - listed):
        day = date.fromisoformat(dt)
        out.append(RawDay(source, day, raw_day_dir(raw, source, day)))
    return out


def report_changes(report: RunReport, changes: Sequence[DayChange]) -> None:
    """Why each day of a ``--changed`` run was converted or skipped: ``changed_days`` in the report, and in the
    totals (so in ``lake_runs``) the count per reason and each day's reason."""
    report.extra["changed_days"] = [c.to_dict() for c in changes]
    by_reason: dict[str, int] = {}
    for c in changes:
        by_reason[c.reason] = by_reason.get(c.reason, 0) + 1
    report.totals["days_converted"] = sum(n for r, n in by_reason.items() if r != UNCHANGED)
    report.totals["days_unchanged"] = by_reason.get(UNCHANGED, 0)
    report.totals["days_by_reason"] = by_reason
    report.totals["day_reasons"] = {f"{c.source}/{c.dt}": c.reason for c in changes}


def nothing_changed(report: RunReport, changes: Sequence[DayChange]) -> str:
    """A ``--changed`` run with no day to convert: zero counters, the reasons, a summary line; nothing published."""
    reasons = dict(report.totals)
    report.totals = {**sum_counters([], COUNTERS + ("quarantined_by_reason",)), **reasons}
    print(f"{JOB} --changed: no day changed ({len(changes)} day folder(s) listed, all unchanged); nothing converted")
    sys.stdout.flush()
    return "nothing_to_do"


def judge_pass(
    spark: SparkSession, lines: DataFrame, raw_days: Sequence[RawDay], config: Config, tables: Tables,
    forgotten: Forgotten | None = None,
) -> tuple[dict[tuple[str, str], dict], DataFrame, Staged]:
    """Judge every line on a narrow parse: counts per partition, the quarantine, and the lines to drop.

    Returns
    -------
    tuple
        :func:`per_partition_counts` (with ``duplicates``, ``duplicates_earlier_days`` and ``suppressed`` filled
        in), the ``pos`` of every line the write pass drops (:func:`find_losers`' rows, the kept copies of erased
        people's messages and the rejected lines), persisted (the caller unpersists them after the write pass), and
        the quarantine's new version, staged.
    """
    window = config.dedup.window_days
    judged = narrow_judge(lines, ids=forgotten is not None).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = per_partition_counts(count_lines(spark, judged, raw_days))
        total = {k: sum(c[k] for c in counts.values()) for k in ("lines_read", "valid", "quarantined")}
        log.info(
            "judged %s lines: %s valid, %s quarantined",
            f"{total['lines_read']:,}", f"{total['valid']:,}", f"{total['quarantined']:,}",
        )
        earlier = None
        if window > 1:
            parts = earlier_partitions(tables, raw_days, window)
            seen = tables.read(EVENTS, parts, ["messageid"]).unionByName(
                judged.where(F.col("reason").isNull()).select("messageid", "sourceid", "dt")
            )
            earlier = ids_seen_before(seen, window)
        rejected = judged.where(F.col("reason").isNotNull()).select(
            "sourceid", "dt", "pos", F.lit("quarantined").alias("kind")
        )
        losers = find_losers(judged, earlier).select("sourceid", "dt", "pos", "kind")
        dropped = losers.unionByName(rejected)
        if forgotten is not None:
            dropped = dropped.unionByName(find_suppressed(judged, losers, forgotten))
        dropped = dropped.persist(StorageLevel.MEMORY_AND_DISK)
        for (key, kind), n in count_by_partition(dropped, "kind").items():
            if kind != "quarantined":  # counted by count_lines already
                counts[key][kind] = n
        rejects = judged.where(F.col("reason").isNotNull())
        if forgotten is not None and total["quarantined"]:
            held = holds_id_string(F.col("raw"), forgotten)
            for (key, reason), n in count_by_partition(rejects.where(held), "reason").items():
                counts[key]["quarantined"] -= n  # a rejected line of an erased person is not kept either
                counts[key]["by_reason"][reason] -= n
                counts[key]["suppressed"] += n
                counts[key]["suppressed_rejects"] += n
            rejects = rejects.where(~held)
        quarantined = {d.key: counts[d.key]["quarantined"] for d in raw_days
                       if counts.get(d.key, {}).get("quarantined")}
        log.info("quarantine: %d partition(s) with rejected lines", len(quarantined))
        quarantine = tables.stage(tables.quarantine(QUARANTINE), quarantine_rows(rejects, tables.run_id), quarantined,
                                  drop=[d.key for d in raw_days if d.key not in quarantined],
                                  one_file_per_partition=True)
    finally:
        judged.unpersist()
    return counts, dropped, quarantine


def partition_entry(day: RawDay, counts: dict, events: Staged, with_earlier: bool = False,
                    with_suppressed: bool = False, truncated: int = 0) -> dict:
    """One partition of the run report, from the judge pass's counts and the verified new version of ``events``;
    ``truncated``: its rows written with a timestamp cut to the microsecond (:func:`stage_events`).

    ``duplicates_earlier_days`` is in the entry when ``with_earlier`` (a dedup window over one day), ``suppressed``
    when ``with_suppressed`` (someone was erased from the lake).
    """
    key = day.key
    entry = {
        "sourceid": day.source,
        "dt": day.key[1],
        "lines_read": counts["lines_read"],
        "rows_written": events.rows.get(key, 0),
        "duplicates_dropped": counts["duplicates"],
        "quarantined": counts["quarantined"],
        "quarantined_by_reason": counts["by_reason"],
        "files_written": events.files.get(key, 0),
        "bytes_written": events.bytes.get(key, 0),
        "timestamps_truncated": truncated,
        "input_files": len(day.files),
        "input_bytes": day.bytes,  # the pace of lake backfill's estimate (lakelib.runs.job_paces)
    }
    if with_earlier:
        entry["duplicates_earlier_days"] = counts["duplicates_earlier_days"]
    if with_suppressed:
        entry["suppressed"] = counts["suppressed"]
    return entry


def _expected_rows(counts: dict) -> int:
    suppressed_valid = counts["suppressed"] - counts["suppressed_rejects"]
    return counts["valid"] - counts["duplicates"] - counts["duplicates_earlier_days"] - suppressed_valid


def narrow_judge(lines: DataFrame, ids: bool = False) -> DataFrame:
    """The judge pass's rows: what the counts, the quarantine and the dedup need (with ``ids``, what suppression
    needs too: ``type``, ``userid``, ``anonymousid``, ``previousid``), and no other event column.

    ``file`` (a long path) is kept for rejected lines only; the dedup orders files by ``file_idx``.
    """
    judged = lines.transform(lambda df: judge_lines(df, keep=("file_idx",), ids=ids))
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


def find_suppressed(judged: DataFrame, losers: DataFrame, forgotten: Forgotten) -> DataFrame:
    """The kept copies of erased people's messages (``sourceid, dt, pos, kind``, kind ``suppressed``): valid lines
    that are not a losing copy and that go by erasure's rule (:func:`lakelib.forget.mark_goes`, on salted hashes)."""
    kept = judged.where(F.col("reason").isNull()).join(losers.select("pos"), "pos", "left_anti")
    gone = mark_goes(kept.select("sourceid", "dt", "pos", "type", "userid", "anonymousid", "previousid"), forgotten,
                     "_goes")
    return gone.where(F.col("_goes")).select("sourceid", "dt", "pos", F.lit("suppressed").alias("kind"))


def earlier_partitions(tables: Tables, raw_days: Sequence[RawDay], window: int) -> list[Partition]:
    """The ``events`` partitions in the dedup window before the converted days, other than the converted days.

    The converted days' own messageIds come from this run's input instead (their partitions are being replaced).
    """
    converting = {d.key for d in raw_days}
    wanted = {(d.source, (d.day - timedelta(days=k)).isoformat()) for d in raw_days for k in range(1, window)}
    wanted -= converting
    if not wanted:
        return []
    found = tables.find(EVENTS, sources={s for s, _ in wanted}, days={d for _, d in wanted},
                        skip=[{"sourceid": s, "dt": d} for s, d in converting])
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
        "lines_read": 0, "valid": 0, "duplicates": 0, "duplicates_earlier_days": 0, "suppressed": 0,
        "suppressed_rejects": 0, "quarantined": 0,
        "by_reason": {reason: 0 for reason in REJECT_REASONS},
    }


def plan_file_counts(raw_days: Sequence[RawDay], target_file_mb: int) -> dict[tuple[str, str], int]:
    """How many Parquet files each partition should get so that files land near ``target_file_mb``."""
    target = target_file_mb * 1024 * 1024
    return {d.key: max(1, int(d.bytes * PARQUET_PER_GZIP_BYTE / target + 0.5)) for d in raw_days}


def stage_events(tables: Tables, lines: DataFrame, dropped: DataFrame, expected: Mapping[tuple[str, str], int],
                 gone: Sequence[tuple[str, str]], lines_read: int) -> tuple[Staged, dict[tuple[str, str], int]]:
    """Parse every field of the lines the judge pass kept and stage them as the new version of ``events``; also
    count, per partition, the rows written with a timestamp cut to the microsecond.

    ``dropped`` holds the ``pos`` of the rejected lines and of the losing copies: they are dropped with a broadcast
    anti-join, so the write pass does not judge again (:func:`lakelib.parse.parse_valid`). No shuffle: each task
    writes the rows of its own scan, which holds one day, so a partition gets one file per task of its day
    (:func:`lakelib.raw.read_raw_lines` packs a day's files into the planned number of tasks). ``gone``: days that
    now yield no row, whose partitions are removed. The cut timestamps are counted by the observation of the kept
    rows (one conditional count per partition, on the write itself: no other pass, no extra column shuffled).

    Raises
    ------
    LakelibError
        The write pass read other lines than the judge pass (the input changed during the run).
    """
    seen, kept = Observation("lines_read"), Observation("kept_rows")
    days = sorted(expected)
    cut = [F.count(F.when(F.col(TIMESTAMPS_CUT) & (F.col("sourceid") == s) & (F.col("dt") == d), 1)).alias(f"cut_{i}")
           for i, (s, d) in enumerate(days)]
    events = (
        lines.transform(parse_valid)
        .observe(seen, F.count(F.lit(1)).alias("lines"))
        .join(F.broadcast(dropped.select("pos")), "pos", "left_anti")
        .observe(kept, F.count(F.lit(1)).alias("rows"), *cut)
    )
    staged = tables.stage(EVENTS, events, expected, drop=gone)
    if expected and int(seen.get["lines"]) != lines_read:
        raise LakelibError(
            f"the write pass read {int(seen.get['lines']):,} lines and kept {int(kept.get['rows']):,} rows, the judge "
            f"pass read {lines_read:,}: the input changed during the run; nothing was published, rerun the job"
        )
    return staged, ({k: int(kept.get[f"cut_{i}"]) for i, k in enumerate(days)} if days else {})


def quarantine_rows(rejected: DataFrame, run_id: str) -> DataFrame:
    """The rejected lines as quarantine rows: reason, raw, file, run_id, and where they apply ``raw_base64`` (the
    bytes of a line that is not UTF-8) and ``detail`` (why a line is invalid JSON, when the reason alone would
    mislead), with ``sourceid`` and ``dt``.
    """
    detail = F.when((F.col("reason") == "invalid_json") & too_deep(F.col("raw")), F.lit(TOO_DEEP))
    return rejected.select(
        "reason", "raw", "file", F.lit(run_id).alias("run_id"), "raw_base64", detail.alias("detail"), "sourceid", "dt"
    )


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
    if t.get("suppressed"):
        print(f"  {t['suppressed']:,} message(s) of erased people suppressed (not written)")
    if t.get("timestamps_truncated"):
        print(f"  {t['timestamps_truncated']:,} row(s) with a timestamp cut to the microsecond (fraction digits beyond "
              "the sixth dropped)")
    reasons = {k: v for k, v in t.get("quarantined_by_reason", {}).items() if v}
    if reasons:
        print("  quarantined by reason: " + ", ".join(f"{k} {v:,}" for k, v in reasons.items()))
    if "days_by_reason" in t:
        print("  --changed: days by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(t["days_by_reason"].items())))
    sys.stdout.flush()


def _mb(n: int) -> str:
    return f"{n / 1_048_576:.1f} MB" if n >= 104_858 else f"{n / 1024:.1f} KB"


if __name__ == "__main__":
    sys.exit(main())
