"""Rewrite a table's small files into files near a target size, without a reader ever missing or doubling a row.

For each registered partition of ``--table`` (filtered by ``--source`` and ``--date``/``--end-date``, the day
being ``dt`` or ``end_dt``), plan from the file sizes; a partition that would end with fewer files is written to
a new version folder, verified against the old files (row count and a checksum over every column), and only then
published by re-pointing its catalog partition. Old versions are deleted by a later run once
``publish.retention_hours`` have passed. ``--dry-run`` prints the plan and changes nothing.

    spark-submit jobs/compact_partitions.py --config conf/local.yaml --table events --date 2020-01-02
    spark-submit jobs/compact_partitions.py --config conf/local.yaml --table events --target-file-mb 512 --dry-run

It needs a catalog (``catalog.kind`` spark or glue): without one the switch to the new files cannot be atomic.
See docs/compaction.md.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

if __package__ in (None, ""):  # run as a script by spark-submit from a checkout: the repository root is importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lakelib.compaction import MB, Outcome, PartitionPlan, compact_partition, plan_partitions
from lakelib.config import Config
from lakelib.errors import ConfigError, LakelibError, UsageError
from lakelib.paths import partition_dir
from lakelib.report import RunReport, sum_counters
from lakelib.runner import job_parser, requested_days, requested_sources, run_job
from lakelib.schema import TABLES, Table
from lakelib.tables import catalog_holds_locations, open_tables

JOB = "compact_partitions"
COUNTERS = ("files_before", "bytes_before", "files_after", "bytes_after")

log = logging.getLogger(JOB if __name__ == "__main__" else __name__)


def build_parser() -> argparse.ArgumentParser:
    """The common job arguments plus ``--table``, ``--target-file-mb`` and ``--dry-run``."""
    parser = job_parser(JOB, "Compact a table's partitions into files near a target size.")
    parser.add_argument("--table", required=True, metavar="NAME", help=f"one of {', '.join(TABLES)}")
    parser.add_argument(
        "--target-file-mb", type=int, metavar="N", help="target file size in MB (default: write.target_file_mb)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; returns the exit status."""
    return run_job(JOB, build_parser(), argv, compact)


def check_arguments(args: argparse.Namespace, config: Config) -> tuple[Table, int]:
    """The table and the target size in bytes, or a one-line usage/config error (before Spark starts).

    Raises
    ------
    UsageError
        An unknown table or a target that is not a positive number of MB.
    ConfigError
        ``catalog.kind: none``.
    """
    table = TABLES.get(args.table)
    if table is None:
        raise UsageError(f"--table {args.table!r} is not a table (known: {', '.join(TABLES)})")
    target_mb = config.write.target_file_mb if args.target_file_mb is None else args.target_file_mb
    if target_mb <= 0:
        raise UsageError(f"--target-file-mb must be a positive number of MB, not {target_mb}")
    if not catalog_holds_locations(config):
        raise ConfigError(
            "catalog.kind: compact_partitions needs a catalog (spark or glue) to switch partitions atomically; "
            "it is none"
        )
    return table, target_mb * MB


def compact(args: argparse.Namespace, config: Config, report: RunReport) -> str:
    """The job's body: plan every selected partition, then compact, publish and clean up each."""
    table, target_bytes = check_arguments(args, config)
    days = requested_days(args)
    sources = requested_sources(args, config)

    from lakelib.session import build_session

    spark = build_session(config, app_name=JOB)
    tables = open_tables(spark, config, report.run_id)
    target = tables.target(table)
    parts = tables.registered(table, sources or None, None if days is None else [d.isoformat() for d in days])
    log.info("%s: %d registered partitions selected", table.name, len(parts))

    plans = plan_partitions(tables, parts, target_bytes)
    report.extra.update({"table": table.name, "target_bytes": target_bytes, "dry_run": bool(args.dry_run)})

    if args.dry_run:
        report.partitions = [p.to_dict() for p in plans]
        report.totals = {"partitions": len(plans), "to_compact": sum(p.compact for p in plans)}
        report.totals.update(sum_counters(report.partitions, ("files_before", "bytes_before", "files_after")))
        print_plan(table, plans)
        return "dry_run"

    outcomes: list[Outcome] = []
    for i, plan in enumerate(plans):
        outcome = _skipped(plan)
        try:
            if plan.compact:
                outcome = compact_partition(tables, target, plan)
            if outcome.action != "compacted":  # a compacted partition was cleaned up when it was published
                key = target.key(plan.values)
                outcome.deleted_versions = tables.cleanup(table, {key: outcome.location_after})[key]
        except LakelibError as exc:
            # The report lists every selected partition: done, this one failed, the rest not started.
            failed = dict(_skipped(plan).to_dict(), action="failed", reason=str(exc))
            rest = [dict(_skipped(p).to_dict(), action="not_started", reason="") for p in plans[i + 1:]]
            report.partitions = [o.to_dict() for o in outcomes] + [failed] + rest
            raise
        outcomes.append(outcome)
        report.partitions = [o.to_dict() for o in outcomes]
    report.totals = {
        "partitions": len(outcomes),
        "compacted": sum(o.action == "compacted" for o in outcomes),
        "stopped": sum(o.action == "stopped" for o in outcomes),
    }
    report.totals.update(sum_counters(report.partitions, COUNTERS))
    report.totals["deleted_versions"] = sum(len(o.deleted_versions) for o in outcomes)
    log.info(
        "%s: %d of %d partitions compacted, %d -> %d files, %d old versions deleted",
        table.name, report.totals["compacted"], len(outcomes), report.totals["files_before"],
        report.totals["files_after"], report.totals["deleted_versions"],
    )
    if report.totals["stopped"]:
        log.warning("%s: %d partition(s) changed while compacting and were not published (see the report): run "
                    "compaction again", table.name, report.totals["stopped"])
        return "stopped"  # exit 0: the catalog shows the newer rows, they are just not compacted yet
    return "succeeded" if report.totals["compacted"] or report.totals["deleted_versions"] else "nothing_to_do"


def _skipped(plan: PartitionPlan) -> Outcome:
    return Outcome(
        values=dict(plan.values),
        action="left",
        location_before=plan.location,
        location_after=plan.location,
        files_before=plan.files_before,
        bytes_before=plan.bytes_before,
        files_after=plan.files_before,
        bytes_after=plan.bytes_before,
        reason=plan.to_dict()["reason"],
    )


def print_plan(table: Table, plans: Sequence[PartitionPlan]) -> None:
    """The dry-run plan on stdout: one line per partition, then the totals."""
    print(f"compaction plan for {table.name} (dry run, nothing changed):")
    for p in plans:
        what = f"-> {p.files_after} files" if p.compact else f"left alone ({p.to_dict()['reason']})"
        print(f"  {partition_dir(p.values)}: {p.files_before} files, {p.bytes_before} bytes {what}")
    todo = [p for p in plans if p.compact]
    print(
        f"{len(todo)} of {len(plans)} partitions to compact: "
        f"{sum(p.files_before for p in todo)} files -> {sum(p.files_after for p in todo)}"
    )


if __name__ == "__main__":
    sys.exit(main())
