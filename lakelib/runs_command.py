"""``lake runs``: the last job runs of a lake (table ``lake_runs``), as a table for people.

    lake runs --config conf/local.yaml --job json_to_parquet --last 5
"""
from __future__ import annotations

import argparse
import logging
import os
from typing import Any, Mapping, Sequence

from lakelib.cli import command
from lakelib.config import load_config
from lakelib.errors import UsageError

#: The config ``lake runs`` and ``lake chart`` read when ``--config`` is not given: ``$LAKELIB_CONFIG``, else this.
DEFAULT_CONFIG = "conf/local.yaml"


def default_config() -> str:
    """``$LAKELIB_CONFIG`` if set, else ``conf/local.yaml`` (the demo's, from the repository root)."""
    return os.environ.get("LAKELIB_CONFIG") or DEFAULT_CONFIG


def format_runs(rows: Sequence[Mapping[str, Any]], width: int = 60) -> str:
    """Runs (rows of ``lake_runs``) as a fixed-width table: one line per run, the error or run id last.

    >>> from datetime import datetime
    >>> print(format_runs([{"started_at": datetime(2026, 1, 2, 3, 4, 5), "job": "json_to_parquet",
    ...                     "status": "failed", "duration_s": 12.34, "partitions": 0, "run_id": "r1",
    ...                     "error": "no raw data for ios on 2026-01-02"}]))
    started (UTC)        job                  status            time  parts  run id / error
    2026-01-02 03:04:05  json_to_parquet      failed          12.3 s      0  no raw data for ios on 2026-01-02
    """
    lines = [f"{'started (UTC)':<20} {'job':<20} {'status':<13} {'time':>8} {'parts':>6}  run id / error"]
    for r in rows:
        started = r["started_at"].strftime("%Y-%m-%d %H:%M:%S") if r.get("started_at") else "?"
        took = f"{r['duration_s']:.1f} s" if r.get("duration_s") is not None else "?"
        last = r.get("error") or r.get("run_id") or ""
        if len(last) > width:
            last = last[: width - 3] + "..."
        lines.append(f"{started:<20} {r['job']:<20} {r['status']:<13} {took:>8} {r.get('partitions') or 0:>6}  {last}")
    return "\n".join(lines)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, metavar="PATH",
                        help=f"the lake's config (default: $LAKELIB_CONFIG, else {DEFAULT_CONFIG})")
    parser.add_argument("--job", action="append", default=[], metavar="J", help="only this job (repeatable)")
    parser.add_argument("--last", type=int, default=20, metavar="N", help="the N most recent runs (default 20)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")


def active_session():
    """The session already running in this process (a notebook's, a test's), or ``None``."""
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession()


@command("runs", "list the last job runs recorded in the lake (table lake_runs)", _add_arguments)
def run(args: argparse.Namespace) -> int:
    """``lake runs``: most recent first."""
    from lakelib import lake
    from lakelib.session import build_session

    if args.last < 1:
        raise UsageError(f"--last {args.last}: give a number of runs, 1 or more")
    logging.basicConfig(level=logging.WARNING)
    config = load_config(args.config or default_config(), args.set)
    joined = active_session()
    spark = build_session(config, app_name="lake-runs")
    try:
        rows = [r.asDict() for r in lake.runs(spark, config, jobs=args.job or None, last=args.last).collect()]
    finally:
        if joined is None:  # a session this command started (not a notebook's or a test's)
            spark.stop()
    if not rows:
        print(f"no runs recorded under {config.lake.tables}/lake_runs" + (f" for {', '.join(args.job)}" if args.job else ""))
        return 0
    print(format_runs(rows))
    return 0
