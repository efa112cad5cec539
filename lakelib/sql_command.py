"""``lake sql``: run Spark SQL against the lake's catalog and print the result, e.g. after ``make demo``.

    lake sql --config conf/local.yaml "SELECT type, sum(message_count) FROM segment_logs.message_type_counts_daily
                                        GROUP BY type"
"""
from __future__ import annotations

import argparse
import logging

from lakelib.cli import command
from lakelib.config import load_config


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", nargs="+", help="one or more SQL statements; each result is printed")
    parser.add_argument("--config", required=True, help="the job config (its catalog and spark settings)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("--limit", type=int, default=50, help="rows to print per query (default 50)")


@command("sql", "run Spark SQL on the lake's tables (by name, through the configured catalog)", _add_arguments)
def run(args: argparse.Namespace) -> int:
    """``lake sql``."""
    from lakelib.session import build_session

    logging.basicConfig(level=logging.WARNING)
    config = load_config(args.config, args.set)
    spark = build_session(config, app_name="lake-sql")
    try:
        for query in args.query:
            print(f"> {' '.join(query.split())}")
            spark.sql(query).show(args.limit, truncate=False)
    finally:
        spark.stop()
    return 0
