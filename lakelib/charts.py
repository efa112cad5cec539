"""Charts of the lake for people: daily messages by type, and quarantined lines by reason, as stacked bars.

Each function returns a matplotlib ``Figure`` (a notebook shows it; ``lake chart ... --out F.png`` saves it).
matplotlib is an optional dependency (``pip install 'lakelib[notebook]'``), imported only when a chart is drawn,
so a cluster's install never needs it::

    fig = counts_chart(spark, config, "ios", "2026-01-01", "2026-01-03")
    fig.savefig("counts.png")

Every day of the range has its bar (an empty day shows as a gap, not as a missing label).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from lakelib import lake
from lakelib.errors import MissingExtraError, UsageError
from lakelib.paths import date_range, parse_date
from lakelib.schema import MESSAGE_TYPES, REJECT_REASONS

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure
    from pyspark.sql import SparkSession

    from lakelib.config import Config

log = logging.getLogger(__name__)


def counts_chart(
    spark: SparkSession, config: Config, source: str, start: lake.Day, end: lake.Day
) -> Figure:
    """Daily messages by type of one source, stacked, from ``message_type_counts_daily``.

    Parameters
    ----------
    spark
        Any SparkSession.
    config
        The lake's config.
    source
        The source id.
    start, end
        The first and last day (inclusive).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    MissingExtraError
        matplotlib is not installed.
    """
    rows = (
        lake.daily_counts(spark, config, sources=source, start=start, end=end)
        .groupBy("dt", "type").sum("message_count").collect()
    )
    days = _days(start, end)
    series = pivot(((r["dt"], r["type"], r["sum(message_count)"]) for r in rows), days, MESSAGE_TYPES)
    return stacked_bars(days, series, title=f"{source}: messages by type per day", ylabel="messages",
                        legend="type")


def quarantine_chart(
    spark: SparkSession, config: Config, sources: lake.Sources, start: lake.Day, end: lake.Day
) -> Figure:
    """Quarantined lines by reason per day (of some sources, or all when ``sources`` is ``None``), stacked.

    Parameters are those of :func:`counts_chart`; ``sources`` may name several sources or none (all).
    """
    rows = lake.quarantine(spark, config, sources=sources, start=start, end=end).groupBy("dt", "reason").count().collect()
    days = _days(start, end)
    series = pivot(((r["dt"], r["reason"], r["count"]) for r in rows), days, REJECT_REASONS)
    which = ", ".join(lake.as_values(sources) or ()) or "all sources"
    return stacked_bars(days, series, title=f"{which}: quarantined lines by reason per day", ylabel="lines",
                        legend="reason")


def pivot(
    rows: Iterable[tuple[str, str, int]], days: Sequence[str], order: Sequence[str] = ()
) -> dict[str, list[int]]:
    """``(day, label, value)`` rows to one list of values per label, aligned on ``days`` (0 where absent).

    Labels come in ``order`` first, then any other label alphabetically; labels without a value are left out.

    >>> pivot([("d2", "page", 3), ("d1", "track", 5), ("d2", "track", 1), ("d9", "page", 7)], ["d1", "d2"],
    ...       ["track", "page"])
    {'track': [5, 1], 'page': [0, 3]}
    """
    index = {day: i for i, day in enumerate(days)}
    series: dict[str, list[int]] = {}
    for day, label, value in rows:
        if day in index:
            series.setdefault(label, [0] * len(days))[index[day]] += int(value or 0)
    known = [label for label in order if label in series]
    return {label: series[label] for label in known + sorted(set(series) - set(known))}


def stacked_bars(
    days: Sequence[str], series: Mapping[str, Sequence[int]], title: str, ylabel: str, legend: str
) -> Figure:
    """One stacked bar per day, a segment per series, in a new ``Figure`` (no pyplot state)."""
    require_matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(max(7.5, 0.45 * len(days) + 4), 4.5), layout="constrained")
    ax = fig.subplots()
    positions = list(range(len(days)))
    bottom = [0] * len(days)
    for label, values in series.items():
        ax.bar(positions, values, bottom=bottom, label=label, width=0.8)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_xticks(positions)
    ax.set_xticklabels(days, rotation=45 if len(days) > 4 else 0, ha="right" if len(days) > 4 else "center")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 17.5 lines
    if series:
        ax.legend(title=legend, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    else:
        ax.text(0.5, 0.5, "no data in this range", transform=ax.transAxes, ha="center", va="center")
    log.debug("chart %r: %d days, %d series", title, len(days), len(series))
    return fig


def require_matplotlib() -> None:
    """Raise :class:`MissingExtraError` (naming the extra to install) when matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingExtraError("charts need matplotlib: pip install 'lakelib[notebook]'") from None


def _days(start: lake.Day, end: lake.Day) -> list[str]:
    first, last = lake.as_day(start, "start"), lake.as_day(end, "end")
    if first is None or last is None:
        raise UsageError("a chart needs both a start and an end day")
    return [d.isoformat() for d in date_range(parse_date(first), parse_date(last))]
