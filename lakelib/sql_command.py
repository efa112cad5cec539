"""``lake sql``: run Spark SQL against the lake's catalog and print the result (``--format table|json|csv``).

    lake sql --config conf/local.yaml "SELECT type, sum(message_count) FROM segment_logs.message_type_counts_daily
                                        GROUP BY type"
"""
from __future__ import annotations

import argparse
import logging

from lakelib.cli import add_config_arguments, command, config_of
from lakelib.runs_command import add_format_argument, print_rows


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", nargs="+", help="one or more SQL statements; each result is printed")
    add_config_arguments(parser)
    parser.add_argument("--limit", type=int, default=50, help="rows to print per query (default 50)")
    add_format_argument(parser)


@command("sql", "run Spark SQL on the lake's tables (by name, through the configured catalog)", _add_arguments)
def run(args: argparse.Namespace) -> int:
    """``lake sql``."""
    from lakelib.session import build_session

    logging.basicConfig(level=logging.WARNING)
    config = config_of(args)
    spark = build_session(config, app_name="lake-sql")
    try:
        for query in args.query:
            result = spark.sql(query)
            if args.format != "table":  # machine-readable: the rows only, no echo of the query
                print_rows([r.asDict(recursive=True) for r in result.limit(args.limit).collect()], result.columns,
                           args.format)
                continue
            print(f"> {' '.join(query.split())}")
            result.show(args.limit, truncate=False)
    finally:
        spark.stop()
    return 0
