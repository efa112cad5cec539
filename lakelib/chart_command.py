"""``lake chart``: the lake's charts as PNG files (the same figures :mod:`lakelib.charts` gives a notebook).

    lake chart counts --config conf/local.yaml --source ios --start 2026-01-01 --end 2026-01-03 --out counts.png
    lake chart quarantine --config conf/local.yaml --start 2026-01-01 --end 2026-01-03 --out quarantine.png
"""
from __future__ import annotations

import argparse
import logging
import os

from lakelib.cli import command
from lakelib.config import load_config
from lakelib.runs_command import DEFAULT_CONFIG, active_session, default_config


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, metavar="PATH",
                        help=f"the lake's config (default: $LAKELIB_CONFIG, else {DEFAULT_CONFIG})")
    parser.add_argument("--start", required=True, metavar="YYYY-MM-DD", help="the first day")
    parser.add_argument("--end", required=True, metavar="YYYY-MM-DD", help="the last day, inclusive")
    parser.add_argument("--out", required=True, metavar="F.png", help="where to write the chart (PNG, SVG, PDF)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    charts = parser.add_subparsers(dest="chart", required=True, metavar="CHART")
    counts = charts.add_parser("counts", help="daily messages by type of one source (message_type_counts_daily)")
    counts.add_argument("--source", required=True, metavar="S", help="the source id")
    _common(counts)
    quarantine = charts.add_parser("quarantine", help="quarantined lines by reason per day")
    quarantine.add_argument("--source", action="append", default=[], metavar="S",
                            help="a source id (repeatable; default: every source)")
    _common(quarantine)


@command("chart", "draw a chart of the lake into an image file (needs the notebook extra)", _add_arguments)
def run(args: argparse.Namespace) -> int:
    """``lake chart counts|quarantine``."""
    from lakelib import charts, lake
    from lakelib.session import build_session

    logging.basicConfig(level=logging.WARNING)
    config = load_config(args.config or default_config(), args.set)
    lake.as_day(args.start, "--start")  # a bad day or no matplotlib fails before Spark starts
    lake.as_day(args.end, "--end")
    charts.require_matplotlib()
    joined = active_session()
    spark = build_session(config, app_name="lake-chart")
    try:
        if args.chart == "counts":
            fig = charts.counts_chart(spark, config, args.source, args.start, args.end)
        else:
            fig = charts.quarantine_chart(spark, config, args.source or None, args.start, args.end)
    finally:
        if joined is None:  # a session this command started (not a notebook's or a test's)
            spark.stop()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=100)
    print(f"lake chart {args.chart}: wrote {args.out}")
    return 0
