"""``lake report [RUN_ID]``: print where a run's HTML report is (the last run's by default).

    lake report --config conf/local.yaml                       # the last run
    lake report json_to_parquet-20260102T030405Z-1a2b3c4d      # that run

The page sits beside the JSON report (``<lake.reports>/<job>/<run_id>.html``). A run from before HTML reports
existed gets its page now, rendered from its JSON. No Spark: the reports are read directly (local or S3).
"""
from __future__ import annotations

import argparse
import json

from lakelib.cli import add_config_arguments, command, config_of


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", nargs="?", metavar="RUN_ID", help="the run (default: the last run of any job)")
    add_config_arguments(parser)


@command("report", "print the path of a run's HTML report (the last run's by default)", _add_arguments)
def run(args: argparse.Namespace) -> int:
    """``lake report``: exit 2 when there is no such run (the message names the last runs)."""
    from lakelib import run_reports
    from lakelib.html_report import render
    from lakelib.report import html_uri

    config = config_of(args)
    found = run_reports.find_report(config.lake.reports, args.run_id)
    page = html_uri(found)
    if not run_reports.exists(page):
        run_reports.write_text(page, render(json.loads(run_reports.read_text(found))))
    print(page[len("file://"):] if page.startswith("file://") else page)
    return 0
