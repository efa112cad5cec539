"""Message counts by type: per source and received day, and over the 365 UTC days ending with a day.

The transforms (:func:`count_by_type`, :func:`sum_daily`, ...) are pure; :func:`publish_daily` and
:func:`publish_yearly` count and publish partitions through the publish protocol. ``message_type_counts`` runs them
for the days it is asked; ``forget_users`` runs them again for the days an erasure changed (counts always equal the
events).
"""
from __future__ import annotations

import logging
from datetime import date, timedelta
from functools import reduce
from typing import TYPE_CHECKING, Any, Callable, Sequence

from lakelib.paths import window_start
from lakelib.schema import EVENTS, MESSAGE_TYPE_COUNTS_DAILY, MESSAGE_TYPE_COUNTS_YEARLY

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

    from lakelib.report import RunReport
    from lakelib.tables import Partition, Tables

log = logging.getLogger(__name__)

WINDOW_DAYS = 365


def count_by_type(events: DataFrame) -> DataFrame:
    """Distinct messageIds by source, received day and type.

    Parameters
    ----------
    events
        At least ``sourceid``, ``dt``, ``type``, ``messageid``.

    Returns
    -------
    DataFrame
        ``sourceid``, ``dt``, ``type``, ``message_count`` (bigint); a type with no message that day has no row.
    """
    from pyspark.sql import functions as F

    return events.groupBy("sourceid", "dt", "type").agg(
        F.countDistinct("messageid").cast("bigint").alias("message_count")
    )


def in_window(end: date, days: int = WINDOW_DAYS, column: str = "dt") -> Callable[[DataFrame], DataFrame]:
    """A ``df.transform`` step keeping the rows whose ``column`` (``YYYY-MM-DD``) is one of the ``days`` UTC
    days ending with ``end`` inclusive.

    ``daily.transform(in_window(date(2020, 12, 31)))`` keeps 2020-01-02 .. 2020-12-31 (2020 has 366 days).
    """
    from pyspark.sql import functions as F

    first, last = window_start(end, days).isoformat(), end.isoformat()

    def step(df: DataFrame) -> DataFrame:
        return df.where(F.col(column).between(F.lit(first), F.lit(last)))

    return step


def window_days(ends: Sequence[date], days: int = WINDOW_DAYS) -> list[date]:
    """Every day some window ending with one of ``ends`` covers, in order.

    >>> [d.isoformat() for d in window_days([date(2021, 3, 1), date(2021, 3, 2)], days=2)]
    ['2021-02-28', '2021-03-01', '2021-03-02']
    """
    if not ends:
        return []
    first, last = window_start(min(ends), days), max(ends)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def sum_daily(daily: DataFrame, ends: Sequence[date], days: int = WINDOW_DAYS) -> DataFrame:
    """Yearly (rolling-window) counts from daily counts: for each end day, the sum over its ``days``-day window.

    Parameters
    ----------
    daily
        ``sourceid``, ``dt``, ``type``, ``message_count``.
    ends
        The last day of each window (``end_dt``); one aggregation per end day (cache ``daily`` for several).
    days
        Window length, 365 by default.

    Returns
    -------
    DataFrame
        ``sourceid``, ``end_dt``, ``type``, ``message_count`` (bigint); a source with no data in a window has
        no row for that ``end_dt``, a type with no message in it has no row either.
    """
    from pyspark.sql import functions as F

    sums = [
        daily.transform(in_window(end, days))
        .groupBy("sourceid", "type")
        .agg(F.sum("message_count").cast("bigint").alias("message_count"))
        .select("sourceid", F.lit(end.isoformat()).alias("end_dt"), "type", "message_count")
        for end in sorted(set(ends))
    ]
    if not sums:
        raise ValueError("sum_daily needs at least one end day")
    return reduce(lambda a, b: a.unionByName(b), sums)


def partition_summary(counts: DataFrame, keys: Sequence[str]) -> list[dict[str, Any]]:
    """Per output partition: its key values, ``rows`` (types) and ``message_count`` (their sum), sorted."""
    from pyspark.sql import functions as F

    rows = (
        counts.groupBy(*keys)
        .agg(F.count(F.lit(1)).alias("rows"), F.sum("message_count").alias("message_count"))
        .collect()
    )
    out = [{**{k: row[k] for k in keys}, "rows": int(row["rows"]), "message_count": int(row["message_count"])}
           for row in rows]
    return sorted(out, key=lambda p: tuple(p[k] for k in keys))


def publish_daily(
    tables: Tables, report: RunReport | None, events_partitions: Sequence[Partition], drop: Sequence[Partition] = ()
) -> list[dict[str, Any]]:
    """Count the given ``events`` partitions into ``message_type_counts_daily``, published (``drop``: daily
    partitions whose events are gone, removed).

    Returns the per-partition summary of what was published, with each partition's ``location``.
    """
    gone = [tuple(p.values.values()) for p in drop]
    if not events_partitions and not gone:
        return []
    summary: list[dict[str, Any]] = []
    counts = None
    if events_partitions:
        counts = count_by_type(tables.read(EVENTS, events_partitions, ["messageid", "type"])).persist()
        summary = partition_summary(counts, MESSAGE_TYPE_COUNTS_DAILY.partition_keys)
    try:
        expected = {(p["sourceid"], p["dt"]): p["rows"] for p in summary}
        published = tables.write(MESSAGE_TYPE_COUNTS_DAILY, counts, expected, drop=gone, one_file_per_partition=True,
                                 report=report)
    finally:
        if counts is not None:
            counts.unpersist()
    locations = {(p.values["sourceid"], p.values["dt"]): p.version for p in published}
    for part in summary:
        part["location"] = locations[(part["sourceid"], part["dt"])]
    if gone:
        log.info("daily counts of %d source-day(s) removed: their events are gone", len(gone))
    return summary


def publish_yearly(tables: Tables, report: RunReport | None, sources: Sequence[str] | None, ends: Sequence[date],
                   daily_parts: Sequence[Partition] | None = None) -> tuple[list[dict[str, Any]], list[Any]]:
    """Sum the daily counts of each window ending with one of ``ends`` and publish them; a window of a source with no
    data left in it loses its partition. With ``report``, the summary becomes its ``partitions`` (registration
    recorded on them).

    Returns the per-partition summary (with ``days_with_data``) and the partitions published.
    """
    days = window_days(ends)
    if daily_parts is None:
        daily_parts = tables.find(MESSAGE_TYPE_COUNTS_DAILY, sources, days)
    daily = tables.read(MESSAGE_TYPE_COUNTS_DAILY, daily_parts, ["type", "message_count"])
    if len(ends) > 1:
        daily = daily.persist()
    yearly = sum_daily(daily, ends).persist()
    try:
        summary = partition_summary(yearly, MESSAGE_TYPE_COUNTS_YEARLY.partition_keys)
        days_by_source: dict[str, list[str]] = {}
        for p in daily_parts:
            days_by_source.setdefault(p.values["sourceid"], []).append(p.values["dt"])
        for part in summary:
            first = window_start(date.fromisoformat(part["end_dt"]), WINDOW_DAYS).isoformat()
            part["days_with_data"] = sum(first <= d <= part["end_dt"]
                                         for d in days_by_source.get(part["sourceid"], []))
        if report is not None:
            report.partitions = summary
        have = {(p["sourceid"], p["end_dt"]) for p in summary}
        gone = [tuple(p.values.values()) for p in tables.find(MESSAGE_TYPE_COUNTS_YEARLY, sources, ends)
                if tuple(p.values.values()) not in have]
        expected = {(p["sourceid"], p["end_dt"]): p["rows"] for p in summary}
        published = tables.write(MESSAGE_TYPE_COUNTS_YEARLY, yearly, expected, drop=gone,
                                 one_file_per_partition=True, report=report)
    finally:
        yearly.unpersist()
        daily.unpersist()
    locations = {(p.values["sourceid"], p.values["end_dt"]): p.version for p in published}
    for part in summary:
        part["location"] = locations[(part["sourceid"], part["end_dt"])]
    return summary, published
