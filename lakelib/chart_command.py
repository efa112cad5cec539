"""``lake chart``: the lake's charts as PNG files (the same figures :mod:`lakelib.charts` gives a notebook).

    lake chart counts --config conf/local.yaml --source ios --start 2026-01-01 --end 2026-01-03 --out counts.png
    lake chart quarantine --config conf/local.yaml --start 2026-01-01 --end 2026-01-03 --out quarantine.png

Neither starts Spark where it can be helped: the quarantine chart reads the run reports, the counts chart reads
``message_type_counts_daily`` through pyarrow. Only with ``catalog.kind: spark`` (partition locations in Spark's
metastore) does ``counts`` start a local Spark session.
"""
from __future__ import annotations

import argparse
import logging
import os

from lakelib.cli import add_config_arguments, command, config_of


def _common(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--start", required=True, metavar="YYYY-MM-DD", help="the first day")
    parser.add_argument("--end", required=True, metavar="YYYY-MM-DD", help="the last day, inclusive")
    parser.add_argument("--out", required=True, metavar="F.png", help="where to write the chart (PNG, SVG, PDF)")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    charts = parser.add_subparsers(dest="chart", required=True, metavar="CHART")
    counts = charts.add_parser("counts", help="daily messages by type of one source (message_type_counts_daily)")
    counts.add_argument("--source", required=True, metavar="S", help="the source id")
    _common(counts)
    quarantine = charts.add_parser("quarantine", help="quarantined lines by reason per day, as a share of lines read")
    quarantine.add_argument("--source", action="append", default=[], metavar="S",
                            help="a source id (repeatable; default: every source)")
    quarantine.add_argument("--counts", action="store_true", help="plot the numbers of lines, not the share")
    _common(quarantine)


def active_session():
    """The session already running in this process (a notebook's, a test's), or ``None``."""
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession()


@command("chart", "draw a chart of the lake into an image file (needs the notebook extra)", _add_arguments)
def run(args: argparse.Namespace) -> int:
    """``lake chart counts|quarantine``."""
    from lakelib import charts

    logging.basicConfig(level=logging.WARNING)
    config = config_of(args)
    charts.days_of(args.start, args.end)  # a bad or inverted range, or no matplotlib, fails before any read
    charts.require_matplotlib()
    if args.chart == "quarantine":
        fig = charts.quarantine_chart(None, config, args.source or None, args.start, args.end, share=not args.counts)
    elif config.catalog.kind != "spark":
        fig = charts.counts_chart(None, config, args.source, args.start, args.end)
    else:
        from lakelib.session import build_session

        joined = active_session()
        spark = build_session(config, app_name="lake-chart")
        try:
            fig = charts.counts_chart(spark, config, args.source, args.start, args.end)
        finally:
            if joined is None:  # a session this command started (not a notebook's or a test's)
                spark.stop()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=100)
    print(f"lake chart {args.chart}: wrote {args.out}")
    return 0
