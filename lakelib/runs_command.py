"""``lake runs``: the last job runs of a lake, as a table for people (or JSON, or CSV).

    lake runs --config conf/local.yaml --job json_to_parquet --last 5 [--format table|json|csv]
    lake runs --config conf/emr.yaml --refresh-cost [--region R] [--endpoint-url URL] [--price-vcpu-hour USD ...]

It reads the run reports under ``lake.reports`` directly (local files, or S3 through boto3;
:mod:`lakelib.run_reports`): no Spark, no JVM, a few small reads. Each run is shown as its ``lake_runs`` row.
``--refresh-cost`` first fills the billed use and cost of the EMR Serverless runs that have none, from
``GetJobRun`` (:func:`lakelib.runs.refresh_costs`): that rewrites ``lake_runs`` through the publish protocol, so it
needs PySpark and a Spark that reaches the lake.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any, Mapping, Sequence

from lakelib.cli import DEFAULT_CONFIG, add_config_arguments, command, config_of, default_config
from lakelib.emr import add_price_arguments
from lakelib.errors import UsageError

__all__ = ["DEFAULT_CONFIG", "default_config", "format_runs", "print_rows", "run"]

FORMATS = ("table", "json", "csv")


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


def print_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str) -> None:
    """Rows as JSON (one array) or CSV with a header, on stdout; values that are not text as JSON text or ISO."""
    if fmt == "json":
        print(json.dumps([{c: r.get(c) for c in columns} for r in rows], indent=2, default=str))
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else json.dumps(r[c]) if isinstance(r[c], (list, dict))
                         else r[c].isoformat() if hasattr(r[c], "isoformat") else r[c] for c in columns])


def add_format_argument(parser: argparse.ArgumentParser) -> None:
    """``--format table|json|csv``."""
    parser.add_argument("--format", choices=FORMATS, default="table", help="how to print (default: table)")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--job", action="append", default=[], metavar="J", help="only this job (repeatable)")
    parser.add_argument("--last", type=int, default=20, metavar="N", help="the N most recent runs (default 20)")
    add_format_argument(parser)
    parser.add_argument("--refresh-cost", action="store_true",
                        help="first fill the billed use and cost of EMR Serverless runs that have none (needs Spark)")
    parser.add_argument("--region", help="EMR Serverless's region (default: the AWS environment's)")
    parser.add_argument("--endpoint-url", help="EMR Serverless's and S3's endpoint (default: the AWS environment's)")
    add_price_arguments(parser)


def refresh(config: Any, args: argparse.Namespace) -> None:
    """``--refresh-cost``: :func:`lakelib.runs.refresh_costs` with a session of this machine, one line per run."""
    import boto3

    from lakelib.emr import chosen_prices, format_usage
    from lakelib.runs import BILLED_COLUMNS, refresh_costs
    from lakelib.session import build_session

    aws = boto3.session.Session(region_name=args.region)
    prices = chosen_prices(args, aws.region_name)
    client = aws.client("emr-serverless", endpoint_url=args.endpoint_url)
    s3 = aws.client("s3", endpoint_url=args.endpoint_url)
    changed = refresh_costs(build_session(config, app_name="lake runs --refresh-cost"), config, client, prices, s3)
    for row in changed:
        usage = {key: row[column] for column, key in BILLED_COLUMNS.items()}
        print(f"{row['run_id']}: {format_usage(dict(usage, price_source=prices.source))}")
    print(f"billed use filled in for {len(changed)} run(s)")


@command("runs", "list the last job runs of the lake (from the run reports; no Spark)", _add_arguments)
def run(args: argparse.Namespace) -> int:
    """``lake runs``: most recent first."""
    from lakelib.run_reports import last_runs
    from lakelib.schema import LAKE_RUNS

    if args.last < 1:
        raise UsageError(f"--last {args.last}: give a number of runs, 1 or more")
    config = config_of(args)
    if args.refresh_cost:
        refresh(config, args)
    rows = last_runs(config.lake.reports, args.job or None, args.last)
    if args.format != "table":
        print_rows(rows, ["job"] + LAKE_RUNS.column_names, args.format)
        return 0
    if not rows:
        print(f"no runs recorded under {config.lake.reports}" + (f" for {', '.join(args.job)}" if args.job else ""))
        return 0
    print(format_runs(rows))
    return 0
