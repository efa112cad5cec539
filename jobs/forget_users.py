"""forget_users: erase people from every table, the quarantine and (on request) the raw copy, verified.

    spark-submit jobs/forget_users.py --config conf/local.yaml --ids ids.jsonl [--source S] [--date D [--end-date E]]
        [--include-raw] [--dry-run] [--report R]

``--ids`` names a file of JSON lines, each with ``userId`` and/or ``anonymousId`` (the shape of Segment's deletion
requests). Forgotten are those ids and the ids the lake ties to them (:func:`lakelib.forget.linked_ids`); an event
goes by :func:`lakelib.forget.goes_rule`. For every table (``events``, each typed table) and the quarantine, the
partitions holding someone forgotten are found from the id columns alone and rewritten without them through the
publish protocol, verified (rows after = rows before minus rows removed, and the checksum of the kept rows); every
other partition is left untouched. The daily counts of the changed days and the yearly counts whose window holds
one are recomputed. The forgotten ids are stored only as salted hashes, so that later conversions suppress them.
The versions that still hold them are deleted once ``forget.retention_hours`` have passed (0: at once; later
runs of this job delete the rest). See ``docs/erasure.md``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if __package__ in (None, ""):  # run as a script by spark-submit from a checkout: the repository root is importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lakelib.config import Config
from lakelib.counts import WINDOW_DAYS, publish_daily, publish_yearly
from lakelib.forget import (
    Forgotten,
    delete_noncurrent_versions,
    holds_id_string,
    lake_salt,
    line_goes,
    linked_ids,
    load_forgotten,
    mark_goes,
    new_salt,
    read_ids,
    rewrite_raw_file,
    save_forgotten,
)
from lakelib.paths import window_start
from lakelib.publish import Staged, Target
from lakelib.report import RunReport, utc_now
from lakelib.runner import job_parser, requested_days, requested_sources, run_job
from lakelib.schema import EVENTS, MESSAGE_TYPE_COUNTS_DAILY, MESSAGE_TYPE_COUNTS_YEARLY, QUARANTINE
from lakelib.typed import REGISTRY_NAME, Registry

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

    from lakelib.tables import Partition, Tables

JOB = "forget_users"
#: The columns that say who an event is from (those a table has are read to find the partitions to rewrite).
ID_COLUMNS = ("type", "userid", "anonymousid", "previousid")
#: Erasures whose superseded versions still wait for their retention, under ``<lake.tables>/_lakelib/``.
PENDING = "forget/pending"
#: How the report names the quarantine of ``json_to_parquet``.
QUARANTINE_NAME = "quarantine"

log = logging.getLogger(JOB if __name__ == "__main__" else __name__)

Key = tuple


def build_parser() -> argparse.ArgumentParser:
    """The common job arguments plus ``--ids``, ``--include-raw`` and ``--dry-run``."""
    parser = job_parser(JOB, "Erase people (userIds, anonymousIds and the ids linked to them) from the lake.")
    parser.add_argument("--ids", required=True, metavar="URI",
                        help="JSON lines, each with userId and/or anonymousId (Segment's deletion requests)")
    parser.add_argument("--include-raw", action="store_true",
                        help="also remove their lines from the raw files (every other line kept byte for byte)")
    parser.add_argument("--dry-run", action="store_true", help="print what would go, per table; change nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; returns the exit status (0 ok, 1 failed, 2 usage or config error)."""
    return run_job(JOB, build_parser(), argv, forget)


# --- pure transforms -----------------------------------------------------------------------------------------------


def affected_partitions(ids: DataFrame, forgotten: Forgotten, keys: Sequence[str]) -> dict[Key, tuple[int, int]]:
    """:func:`removal_counts` of a table's id columns and keys, by erasure's row rule."""
    from pyspark.sql import functions as F

    return removal_counts(mark_goes(ids, forgotten, "_goes"), F.col("_goes"), keys)


def removal_counts(rows: DataFrame, goes: Any, keys: Sequence[str]) -> dict[Key, tuple[int, int]]:
    """Per partition holding a row that goes: ``(rows, rows that go)``, from a frame of its id columns and keys."""
    from pyspark.sql import functions as F

    flagged = rows.select(*keys, goes.alias("_goes"))
    grouped = flagged.groupBy(*keys).agg(F.count(F.lit(1)).alias("rows"),
                                         F.sum(F.col("_goes").cast("long")).alias("gone"))
    return {tuple(r[k] for k in keys): (int(r["rows"]), int(r["gone"])) for r in grouped.where("gone > 0").collect()}


# --- the job -------------------------------------------------------------------------------------------------------


def forget(args: argparse.Namespace, config: Config, report: RunReport) -> str:
    """The job's body: read the ids, link them, find, rewrite and verify, recount, store the hashes, clean up."""
    from lakelib.session import build_session
    from lakelib.tables import open_tables

    request = read_ids(args.ids)  # before Spark: a malformed file fails here, naming the line
    days = requested_days(args)
    sources = requested_sources(args, config) or None
    report.extra.update({"ids_file": args.ids, "ids_given": len(request.ids), "dry_run": bool(args.dry_run),
                         "include_raw": bool(args.include_raw)})
    spark = build_session(config, app_name=JOB)
    tables = open_tables(spark, config, report.run_id)
    retention = min(config.publish.retention_hours, config.forget.retention_hours)
    tables.publisher.retention_hours = retention
    if not args.dry_run:
        report.extra["earlier_erasures_cleaned"] = clean_pending(tables)

    stored = load_forgotten(tables.storage, config.lake.tables)
    salt = lake_salt(tables.storage, config.lake.tables, create=not args.dry_run) or new_salt()
    given = Forgotten.of(salt, request.ids)
    events_parts = tables.find(EVENTS, sources, days)
    ids = tables.read(EVENTS, events_parts, list(ID_COLUMNS)).persist()
    try:  # one read of the events' id columns links the ids and finds the events partitions to rewrite
        forgotten = linked_ids(ids, given)
        plans = {EVENTS.name: (events_parts, affected_partitions(ids, forgotten, EVENTS.partition_keys))}
    finally:
        ids.unpersist()
    report.extra["linked_ids_added"] = len(forgotten.hashes) - len(given.hashes)
    log.info("%d id(s) given, %d linked to them by the lake", len(given.hashes), report.extra["linked_ids_added"])

    targets = [tables.target(EVENTS)] + [tables.target(t.table()) for _, t in sorted(typed_tables(tables).items())]
    plans.update({t.table.name: plan_table(tables, t, forgotten, sources, days) for t in targets[1:]})
    quarantine = tables.quarantine(QUARANTINE)
    plans[QUARANTINE_NAME] = plan_quarantine(tables, quarantine, forgotten, sources, days)
    report.partitions = [{"table": name, **dict(zip(("sourceid", "dt"), key)), "rows": n, "rows_removed": gone}
                         for name, (_, parts) in sorted(plans.items()) for key, (n, gone) in sorted(parts.items())]
    if args.dry_run:
        print_plan(plans)
        report.totals = {"rows_removed": 0, "rows_that_would_go": sum(p["rows_removed"] for p in report.partitions),
                         "partitions": len(report.partitions)}
        return "dry_run"

    if not stored or forgotten.hashes - stored.hashes:
        save_forgotten(tables.storage, config.lake.tables, forgotten.hashes - (stored.hashes if stored else set()),
                       salt, report.run_id, utc_now())
    staged = [stage_rewrite(tables, target, forgotten, *plans[target.table.name]) for target in targets
              if plans[target.table.name][1]]
    if plans[QUARANTINE_NAME][1]:
        staged.append(stage_quarantine(tables, quarantine, forgotten, *plans[QUARANTINE_NAME]))
    published = tables.publish(*staged, report=report)
    changed = sorted(plans[EVENTS.name][1])
    recount(tables, changed)
    raw = rewrite_raw(tables, config, forgotten, sources, days) if args.include_raw else None
    verified = verify(tables, targets, quarantine, forgotten, plans)

    superseded = [p.superseded for p in published if p.superseded]
    deleted = [d for p in published for d in p.deleted]
    record_pending(tables, report, superseded, deleted, retention)
    versions = [delete_noncurrent_versions(_s3(), d).summary() for d in deleted if d.startswith(("s3://", "s3a://"))]
    per_table = {name: {"rows_removed": sum(g for _, g in parts.values()), "partitions_rewritten": len(parts)}
                 for name, (_, parts) in sorted(plans.items())}
    report.extra.update({"tables": per_table, "verified": verified, "superseded_deleted": deleted,
                         "object_versions": versions})
    if raw is not None:
        report.extra["raw"] = raw
    report.totals = {"rows_removed": sum(t["rows_removed"] for t in per_table.values()),
                     "partitions_rewritten": sum(t["partitions_rewritten"] for t in per_table.values()),
                     "linked_ids_added": report.extra["linked_ids_added"], "verified": verified}
    print_summary(report, per_table)
    return "succeeded"


def typed_tables(tables: Tables) -> dict[str, Any]:
    """The typed tables ``event_tables`` made (its registry), by name."""
    return dict(Registry.from_json(tables.read_state(REGISTRY_NAME)).tables)


def plan_table(tables: Tables, target: Target, forgotten: Forgotten, sources: Sequence[str] | None,
               days: Sequence[Any] | None) -> tuple[list[Partition], dict[Key, tuple[int, int]]]:
    """The partitions of a table and, per partition that holds someone forgotten, ``(rows, rows that go)``, from
    the id columns alone."""
    t = target.table
    parts = tables.find(t, sources, days)
    columns = [c for c in ID_COLUMNS if c in t.column_names]
    if not parts or not columns:
        return parts, {}
    return parts, affected_partitions(tables.read(t, parts, columns), forgotten, t.partition_keys)


def plan_quarantine(tables: Tables, target: Target, forgotten: Forgotten, sources: Sequence[str] | None,
                    days: Sequence[Any] | None) -> tuple[list[Partition], dict[Key, tuple[int, int]]]:
    """The quarantine's partitions and those holding a forgotten id as a JSON string in a line."""
    from pyspark.sql import functions as F

    parts = tables.find_in(target, sources, days)
    if not parts:
        return parts, {}
    rows = tables.read_json(target, parts)
    return parts, removal_counts(rows, holds_id_string(F.col("raw"), forgotten), list(target.table.partition_keys))


def stage_rewrite(tables: Tables, target: Target, forgotten: Forgotten, found: Sequence[Partition],
                  affected: Mapping[Key, tuple[int, int]]) -> Staged:
    """The affected partitions (of those ``found`` when planning) of a table without the rows that go, staged and
    verified (rows, and the checksum of the kept rows); a partition left empty is dropped."""
    from pyspark.sql import functions as F

    from lakelib.checksum import checksums_by

    t = target.table
    keys = list(t.partition_keys)
    parts = [p for p in found if target.key(p.values) in affected]
    kept = mark_goes(tables.read(t, parts, t.column_names), forgotten, "_goes").where(~F.col("_goes")).drop("_goes")
    kept = kept.persist()
    expected = {k: n - gone for k, (n, gone) in affected.items() if n > gone}
    checks = checksums_by(kept, keys)
    log.info("%s: rewriting %d partition(s) without %d row(s)", t.name, len(affected),
             sum(g for _, g in affected.values()))
    try:
        return tables.stage(target, kept, expected, drop=[k for k in affected if k not in expected],
                            checksums={k: checks[k] for k in expected})
    finally:
        kept.unpersist()


def stage_quarantine(tables: Tables, target: Target, forgotten: Forgotten, found: Sequence[Partition],
                     affected: Mapping[Key, tuple[int, int]]) -> Staged:
    """The affected quarantine partitions (of those ``found`` when planning) without the lines that hold a forgotten
    id, staged and verified."""
    from pyspark.sql import functions as F

    parts = [p for p in found if target.key(p.values) in affected]
    kept = tables.read_json(target, parts).where(~holds_id_string(F.col("raw"), forgotten))
    expected = {k: n - gone for k, (n, gone) in affected.items() if n > gone}
    return tables.stage(target, kept, expected, drop=[k for k in affected if k not in expected],
                        one_file_per_partition=True)


def recount(tables: Tables, changed: Sequence[Key]) -> None:
    """Recompute the daily counts of the changed days that have them, and every yearly window holding one."""
    from datetime import date

    if not changed:
        return
    sources, days = sorted({k[0] for k in changed}), sorted({k[1] for k in changed})
    daily = [p for p in tables.find(MESSAGE_TYPE_COUNTS_DAILY, sources, days)
             if (p.values["sourceid"], p.values["dt"]) in set(changed)]
    keys = {(p.values["sourceid"], p.values["dt"]) for p in daily}
    events = [p for p in tables.find(EVENTS, sources, days) if (p.values["sourceid"], p.values["dt"]) in keys]
    gone = [p for p in daily if (p.values["sourceid"], p.values["dt"]) not in
            {(e.values["sourceid"], e.values["dt"]) for e in events}]
    if daily:
        publish_daily(tables, None, events, gone)
    for source in sources:
        changed_days = [date.fromisoformat(d) for s, d in changed if s == source]
        ends = [date.fromisoformat(p.values["end_dt"]) for p in tables.find(MESSAGE_TYPE_COUNTS_YEARLY, [source])
                if any(window_start(date.fromisoformat(p.values["end_dt"]), WINDOW_DAYS) <= d
                       <= date.fromisoformat(p.values["end_dt"]) for d in changed_days)]
        if ends:
            publish_yearly(tables, None, [source], sorted(ends))
    log.info("counts recomputed: %d daily partition(s); yearly windows of %d source(s)", len(daily), len(sources))


def rewrite_raw(tables: Tables, config: Config, forgotten: Forgotten, sources: Sequence[str] | None,
                days: Sequence[Any] | None) -> dict[str, int]:
    """Rewrite the raw files holding a line that goes (found by one Spark pass over the raw lines)."""
    from pyspark.sql import functions as F

    from lakelib.raw import find_raw_days, read_raw_lines

    raw_days, _ = find_raw_days(tables.storage, config.lake.raw, list(sources or []), days)
    if not raw_days:
        return {"files_rewritten": 0, "lines_removed": 0}

    @F.udf(returnType="boolean")
    def goes(line):  # no type hints: Spark 4 would take them for a pandas UDF's
        return line_goes(bytes(line), forgotten)

    lines = read_raw_lines(tables.spark, raw_days)
    files = [r["file"] for r in lines.where(goes(F.col("value").cast("binary"))).select("file").distinct().collect()]
    removed = sum(rewrite_raw_file(tables.storage, f, forgotten) for f in sorted(files))
    log.info("raw: %d file(s) rewritten, %d line(s) removed", len(files), removed)
    return {"files_rewritten": len(files), "lines_removed": removed}


def verify(tables: Tables, targets: Sequence[Target], quarantine: Target, forgotten: Forgotten,
           plans: Mapping[str, tuple[list[Partition], dict[Key, tuple[int, int]]]]) -> bool:
    """Read every touched partition again through the catalog: none of the forgotten may be left.

    Raises
    ------
    VerificationError
        A forgotten person still in a table.
    """
    from pyspark.sql import functions as F

    from lakelib.errors import VerificationError

    for target in targets:
        touched = plans[target.table.name][1]
        if not touched:
            continue
        parts = [p for p in tables.find(target.table, sorted({k[0] for k in touched}), sorted({k[1] for k in touched}))
                 if target.key(p.values) in touched]
        columns = [c for c in ID_COLUMNS if c in target.table.column_names]
        left = mark_goes(tables.read(target.table, parts, columns), forgotten, "_goes").where(F.col("_goes")).count()
        if left:
            raise VerificationError(f"{target.table.name}: {left} row(s) of forgotten people still read through "
                                    "the catalog after the rewrite")
    touched = plans[QUARANTINE_NAME][1]
    if touched:
        parts = [p for p in tables.find_in(quarantine) if quarantine.key(p.values) in touched]
        if tables.read_json(quarantine, parts).where(holds_id_string(F.col("raw"), forgotten)).count():
            raise VerificationError("the quarantine still holds lines of forgotten people after the rewrite")
    return True


def clean_pending(tables: Tables) -> int:
    """Delete the superseded versions earlier erasures left for their retention, where it has passed."""
    done = 0
    for name in tables.list_state(PENDING):
        record = json.loads(tables.read_state(f"{PENDING}/{name}") or "{}")
        if time.time() < record.get("delete_after_epoch", 0):
            continue
        for entry in record.get("partitions", []):
            target = tables.quarantine(QUARANTINE) if entry["table"] == QUARANTINE_NAME else tables.target(
                _table_of(tables, entry["table"]))
            key = tuple(entry["key"])
            tables.publisher.cleanup(target, {key: _current(target, key)})
        left = [loc for loc in record.get("superseded", []) if tables.storage.exists(loc)]
        if not left:
            tables.remove_state(f"{PENDING}/{name}")
            done += 1
    return done


def _current(target: Target, key: Key) -> str | None:
    """Where readers find a partition now (asked again: another run may have published it since)."""
    if target.by_path:
        return target.default_dir(key)
    return target.catalog.partition_location(target.table, target.values(key))


def _table_of(tables: Tables, name: str) -> Any:
    from lakelib.schema import ALL_TABLES

    if name in ALL_TABLES:
        return ALL_TABLES[name]
    return typed_tables(tables)[name].table()


def record_pending(tables: Tables, report: RunReport, superseded: Sequence[str], deleted: Sequence[str],
                   retention: float) -> None:
    """Say in the report when the erased bytes are gone, and keep what waits for the retention for a later run."""
    left = [s for s in superseded if s not in deleted]
    due = time.time() + retention * 3600
    report.extra["erased_bytes_gone"] = "now" if not left else datetime.fromtimestamp(due, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    if not left:
        return
    partitions = [{"table": QUARANTINE_NAME if p["table"] == QUARANTINE.name else p["table"],
                   "key": [p.get("sourceid"), p.get("dt") or p.get("end_dt")]}
                  for p in report.extra.get("published", []) if p.get("superseded") in left]
    tables.write_state(f"{PENDING}/{report.run_id}.json", json.dumps(
        {"delete_after_epoch": due, "superseded": left, "partitions": partitions}, indent=1))
    log.info("%d superseded version(s) still hold erased rows until %s: run %s again after that to delete them",
             len(left), report.extra["erased_bytes_gone"], JOB)


def _s3() -> Any:
    import boto3

    return boto3.client("s3")


def print_plan(plans: Mapping[str, tuple[list[Partition], dict[Key, tuple[int, int]]]]) -> None:
    """The dry run: per table, the partitions and rows that would go."""
    print(f"{JOB}: dry run, nothing changed")
    for name, (_, parts) in sorted(plans.items()):
        if parts:
            print(f"  {name}: {sum(g for _, g in parts.values()):,} row(s) in {len(parts)} partition(s)")
            for (source, day), (n, gone) in sorted(parts.items()):
                print(f"    sourceid={source} dt={day}: {gone:,} of {n:,} row(s)")
    if not any(parts for _, parts in plans.values()):
        print("  no table holds them")
    sys.stdout.flush()


def print_summary(report: RunReport, per_table: Mapping[str, Mapping[str, int]]) -> None:
    """A closing table for people, on stdout."""
    t = report.totals
    print(f"{JOB}: {t['rows_removed']:,} row(s) removed from {t['partitions_rewritten']} partition(s), "
          f"{t['linked_ids_added']} linked id(s) added, verified: {str(t['verified']).lower()}")
    for name, counts in per_table.items():
        if counts["partitions_rewritten"]:
            print(f"  {name:<40} {counts['rows_removed']:>9,} rows  {counts['partitions_rewritten']:>4} partitions")
    print(f"  superseded versions holding them gone: {report.extra['erased_bytes_gone']}")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
