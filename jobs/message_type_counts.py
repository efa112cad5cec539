"""How many messages of each type a source sent: per received day, and over the 365 days ending with a day.

``--period day`` counts the distinct messageIds by ``type`` of each requested source and day, reading only the
``messageid`` and ``type`` columns of exactly those ``events`` partitions, and overwrites those partitions of
``message_type_counts_daily``.

``--period year`` writes ``message_type_counts_yearly/sourceid=<id>/end_dt=<date>/``: the sum of the daily counts
over the 365 UTC days ending with ``--date`` inclusive (one partition per end day when ``--end-date`` is given).
It never rescans a year of events: it reads ``message_type_counts_daily`` for the window, after computing and
writing the daily partitions that are missing but whose ``events`` partition exists. Days without data are
simply absent from the sum.

    spark-submit jobs/message_type_counts.py --config conf/local.yaml --period day --date 2020-01-02
    spark-submit jobs/message_type_counts.py --config conf/local.yaml --period year --date 2020-12-31

``--date`` is required (there is no implicit "today": a rerun must mean the same thing tomorrow), unless
``--changed``: then the job counts again the ``events`` partitions converted since this period's last ``--changed``
run (within ``--date``/``--end-date`` when given), and ``--period year`` sums again the windows ending on those days
and every published window holding one (``docs/operations.md``). Sources are the ``--source`` values, else the
config's ``sources``, else every source found in the tables read.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Collection, Sequence

if __package__ in (None, ""):  # run as a script by spark-submit from a checkout: the repository root is importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lakelib.changes import add_changed_arguments, changed_partitions, mark_followed
from lakelib.config import Config
from lakelib.counts import WINDOW_DAYS, publish_daily, publish_yearly, window_days
from lakelib.errors import UsageError
from lakelib.paths import date_range, window_start
from lakelib.report import RunReport
from lakelib.runner import job_parser, requested_days, requested_sources, run_job
from lakelib.schema import EVENTS, MESSAGE_TYPE_COUNTS_DAILY, MESSAGE_TYPE_COUNTS_YEARLY
from lakelib.tables import Partition

if TYPE_CHECKING:  # pragma: no cover
    from lakelib.tables import Tables

JOB = "message_type_counts"

log = logging.getLogger(JOB if __name__ == "__main__" else __name__)


def run_day(config: Config, report: RunReport, tables: Tables, sources: Sequence[str], days: Sequence[date],
            only: Collection[tuple[str, str]] | None = None) -> str:
    """``--period day``: count each requested source and day from ``events`` into the daily table; a requested day
    whose ``events`` partition is gone loses its daily counts too (counts always equal the events). ``only``: the
    source-days to count, when not every pair of ``sources`` and ``days`` (``--changed``)."""
    events_parts = [p for p in tables.find(EVENTS, sources or None, days) if only is None or _key(p) in only]
    found = {_key(p) for p in events_parts}
    log.info("events: %d partitions to count (%d days x %s)", len(events_parts), len(days),
             f"{len(sources)} sources" if sources else "every source")
    if sources:
        absent = [f"{s}/{d.isoformat()}" for s in sources for d in days if (s, d.isoformat()) not in found]
        if absent:
            log.info("no events for %d source-days: %s", len(absent), _short(absent))
        report.extra["days_without_events"] = absent
    stale = [p for p in tables.find(MESSAGE_TYPE_COUNTS_DAILY, sources or None, days)
             if _key(p) not in found and (only is None or _key(p) in only)]
    report.extra["events_partitions_read"] = len(events_parts)
    summary = publish_daily(tables, report, events_parts, stale)
    report.partitions = summary
    report.totals = _totals(summary)
    report.extra["daily_removed"] = [dict(p.values) for p in stale]
    for part in summary:
        log.info("  %s %s: %d types, %d messages", part["sourceid"], part["dt"], part["rows"], part["message_count"])
    return "succeeded" if summary or stale else "nothing_to_do"


def run_year(config: Config, report: RunReport, tables: Tables, sources: Sequence[str], ends: Sequence[date],
             refresh: Collection[tuple[str, str]] = ()) -> str:
    """``--period year``: fill the missing daily partitions of the window(s), then sum the daily table. ``refresh``:
    source-days whose daily counts are counted again first (their events changed: ``--changed``)."""
    days = window_days(ends)
    wanted = sources or None
    log.info("window: %s .. %s (%d end days, %d days)", days[0], days[-1], len(ends), len(days))
    daily_parts = [p for p in tables.find(MESSAGE_TYPE_COUNTS_DAILY, wanted, days) if _key(p) not in refresh]
    # Only the events partitions without daily counts are looked up (and, further down, read).
    skip = [{"sourceid": p.values["sourceid"], "dt": p.values["dt"]} for p in daily_parts]
    missing = tables.find(EVENTS, wanted, days, skip=skip)
    log.info("daily counts: %d partitions present, %d missing with events to count", len(daily_parts), len(missing))
    computed = publish_daily(tables, report, missing)
    new_parts = [Partition({"sourceid": p["sourceid"], "dt": p["dt"]}, p["location"]) for p in computed]
    daily_parts = sorted(daily_parts + new_parts, key=lambda p: tuple(p.values.values()))
    report.extra["daily_computed"] = [{"sourceid": p["sourceid"], "dt": p["dt"]} for p in computed]
    report.extra["events_partitions_read"] = len(missing)
    report.extra["daily_partitions_read"] = len(daily_parts)

    summary, _ = publish_yearly(tables, report, wanted, ends, daily_parts)
    for part in summary:
        log.info("  %s end_dt=%s: %d types, %d messages over %d days with data", part["sourceid"], part["end_dt"],
                 part["rows"], part["message_count"], part["days_with_data"])
    report.totals = _totals(summary)
    report.totals["daily_partitions_computed"] = len(computed)
    return "succeeded" if summary else "nothing_to_do"


def _key(part: Partition) -> tuple[str, str]:
    return part.values["sourceid"], part.values["dt"]


def changed_ends(tables: Tables, keys: Sequence[tuple[str, str]]) -> list[date]:
    """The yearly windows ``--changed`` sums again: those ending on a changed day, and every published window that
    holds one."""
    days = sorted({date.fromisoformat(dt) for _, dt in keys})
    if not days:
        return []
    sources = sorted({s for s, _ in keys})
    ends = date_range(days[0], days[-1] + timedelta(days=WINDOW_DAYS - 1))
    published = {date.fromisoformat(p.values["end_dt"]) for p in tables.find(MESSAGE_TYPE_COUNTS_YEARLY, sources, ends)}
    holding = {e for e in published if any(window_start(e, WINDOW_DAYS) <= d <= e for d in days)}
    return sorted(holding | set(days))


def _totals(summary: Sequence[dict[str, Any]]) -> dict[str, int]:
    return {
        "partitions": len(summary),
        "rows": sum(p["rows"] for p in summary),
        "message_count": sum(p["message_count"] for p in summary),
    }


def _short(items: Sequence[str], limit: int = 5) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


# --- main ------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The common job arguments plus ``--period``."""
    parser = job_parser(JOB, "Message counts by type: per received day, or over the 365 days ending with a day.")
    parser.add_argument("--period", required=True, choices=("day", "year"),
                        help="day: counts per source and day from events; year: 365-day sums from the daily counts")
    add_changed_arguments(parser)
    return parser


def count_messages(args: argparse.Namespace, config: Config, report: RunReport) -> str:
    """The job body for :func:`lakelib.runner.run_job`."""
    from lakelib.session import build_session
    from lakelib.tables import open_tables

    days = requested_days(args)
    if days is None and not args.changed:
        raise UsageError("--date is required (the day to count, or the last day of the year with --period year), "
                         "unless --changed")
    sources = requested_sources(args, config)
    report.extra.update({
        "period": args.period,
        "sources": sources or "all",
        "dates": None if days is None else [days[0].isoformat(), days[-1].isoformat()],
    })
    spark = build_session(config, app_name=f"{JOB}_{args.period}")
    tables = open_tables(spark, config, report.run_id)
    if args.changed:
        return count_changed(args.period, report, tables, sources, days)
    log.info("%s --period %s: %s, %s .. %s", JOB, args.period, ", ".join(sources) if sources else "every source",
             days[0], days[-1])
    run = run_day if args.period == "day" else run_year
    status = run(config, report, tables, sources, days)
    totals = report.totals
    log.info("%s: %d partitions, %d rows, %d messages counted", status, totals["partitions"], totals["rows"],
             totals["message_count"])
    return status


def count_changed(period: str, report: RunReport, tables: Tables, sources: Sequence[str],
                  days: Sequence[date] | None) -> str:
    """``--changed``: count again the events partitions converted since this period's last ``--changed`` run
    (:func:`lakelib.changes.changed_partitions`), and for ``year`` the windows that hold them."""
    followed = changed_partitions(tables, f"{JOB}_{period}", sources, days)
    keys = followed.keys
    report.extra["changed_partitions"] = [{"sourceid": s, "dt": d} for s, d in keys]
    if not keys:
        report.totals = {**_totals([]), "changed_partitions": 0}
        mark_followed(tables, followed)
        log.info("nothing_to_do: no events partition changed since the last --changed run")
        return "nothing_to_do"
    sources = sorted({s for s, _ in keys})
    if period == "day":
        status = run_day(tables.config, report, tables, sources, sorted({date.fromisoformat(d) for _, d in keys}), keys)
    else:
        status = run_year(tables.config, report, tables, sources, changed_ends(tables, keys), keys)
    report.totals["changed_partitions"] = len(keys)
    mark_followed(tables, followed)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; returns the exit status (0 ok, 1 failed, 2 usage or config error)."""
    return run_job(JOB, build_parser(), argv, count_messages)


if __name__ == "__main__":
    sys.exit(main())
