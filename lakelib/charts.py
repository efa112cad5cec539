"""Charts of the lake for people: daily messages by type, and quarantined lines by reason as a share of lines read.

Each function returns a matplotlib ``Figure`` of a fixed size (a notebook shows it; ``lake chart ... --out F.png``
saves it), whatever the range: the x axis is a date axis (the received day, UTC) with automatic ticks; up to
:data:`MAX_BAR_DAYS` days each day is a stacked bar, past that the series are stacked areas, so a year stays
readable. The title carries the range, the legend lists the series top of the stack first. matplotlib is an
optional dependency (``pip install 'lakelib[notebook]'``), imported only when a chart is drawn::

    fig = counts_chart(None, config, "ios", "2026-01-01", "2026-03-31")   # no Spark: pyarrow reads the counts
    fig.savefig("counts.png")
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from lakelib import lake
from lakelib.errors import MissingExtraError, UsageError
from lakelib.paths import date_range, parse_date
from lakelib.schema import MESSAGE_TYPES, REJECT_REASONS

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure
    from pyspark.sql import SparkSession

    from lakelib.config import Config

log = logging.getLogger(__name__)

#: Up to this many days a chart draws one bar per day; past it, stacked areas.
MAX_BAR_DAYS = 31
#: Every chart's size in inches (at 100 dpi: 1000 x 450 pixels), whatever the number of days.
FIGSIZE = (10.0, 4.5)


def counts_chart(
    spark: SparkSession | None, config: Config, source: str, start: lake.Day, end: lake.Day
) -> Figure:
    """Daily messages by type of one source, stacked, from ``message_type_counts_daily``.

    Parameters
    ----------
    spark
        Any SparkSession, or ``None`` to read without Spark (pyarrow).
    config
        The lake's config.
    source
        The source id.
    start, end
        The first and last received day (inclusive).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    UsageError
        A bad or inverted range, or a source the table does not have (the message lists those it has).
    MissingExtraError
        matplotlib is not installed.
    """
    days = days_of(start, end)
    require_matplotlib()
    counts = lake.daily_counts(spark, config, sources=source, start=days[0], end=days[-1])
    series = pivot(_sums(counts, "dt", "type", "message_count"), days, MESSAGE_TYPES)
    return stacked(days, series, title=f"{source}: messages by type, {days[0]} to {days[-1]}",
                   ylabel="messages per day", legend="type")


def quarantine_chart(
    spark: SparkSession | None, config: Config, sources: lake.Sources, start: lake.Day, end: lake.Day,
    share: bool = True,
) -> Figure:
    """Quarantined lines by reason per day as a share of the lines read (``share=False``: the counts), stacked.

    Both numbers come from the reports of the ``json_to_parquet`` runs that converted each day (the last
    succeeded one), so numerator and denominator are the same run's: :func:`lakelib.run_reports.conversions`.
    ``spark`` is not needed (kept so every chart takes the same arguments); the others are those of
    :func:`counts_chart`, ``sources`` may name several sources or none (all).
    """
    from lakelib import run_reports

    days = days_of(start, end)
    require_matplotlib()
    wanted = lake.as_values(sources)
    parts = run_reports.conversions(config.lake.reports, None, days[0], days[-1])
    seen = sorted({str(p["sourceid"]) for p in parts})
    missing = [s for s in wanted or () if s not in seen]
    if missing:
        raise UsageError(f"no json_to_parquet report of source {', '.join(missing)} for {days[0]}..{days[-1]} "
                         f"(sources with one: {', '.join(seen) or 'none'})")
    parts = [p for p in parts if wanted is None or p["sourceid"] in wanted]
    by_reason = ((p["dt"], r, n) for p in parts for r, n in (p.get("quarantined_by_reason") or {}).items() if n)
    counts = pivot(by_reason, days, REJECT_REASONS)
    which = ", ".join(wanted or ()) or "all sources"
    if not share:
        return stacked(days, counts, title=f"{which}: quarantined lines by reason, {days[0]} to {days[-1]}",
                       ylabel="lines per day", legend="reason")
    read = pivot(((p["dt"], "read", p["lines_read"]) for p in parts), days).get("read", [0] * len(days))
    shares = {r: [100.0 * v / n if n else 0.0 for v, n in zip(values, read)] for r, values in counts.items()}
    total, lines = sum(sum(v) for v in counts.values()), sum(read)
    return stacked(days, shares, title=f"{which}: quarantined, % of lines read ({total:,} of {lines:,}), "
                   f"{days[0]} to {days[-1]}", ylabel="% of lines read", legend="reason", percent=True)


def pivot(
    rows: Iterable[tuple[str, str, float]], days: Sequence[str], order: Sequence[str] = ()
) -> dict[str, list[Any]]:
    """``(day, label, value)`` rows to one list of values per label, aligned on ``days`` (0 where absent).

    Labels come in ``order`` first, then any other label alphabetically; labels without a value are left out.

    >>> pivot([("d2", "page", 3), ("d1", "track", 5), ("d2", "track", 1), ("d9", "page", 7)], ["d1", "d2"],
    ...       ["track", "page"])
    {'track': [5, 1], 'page': [0, 3]}
    """
    index = {day: i for i, day in enumerate(days)}
    series: dict[str, list[Any]] = {}
    for day, label, value in rows:
        if day in index:
            series.setdefault(label, [0] * len(days))[index[day]] += value or 0
    known = [label for label in order if label in series]
    return {label: series[label] for label in known + sorted(set(series) - set(known))}


def stacked(
    days: Sequence[str], series: Mapping[str, Sequence[float]], title: str, ylabel: str, legend: str,
    percent: bool = False,
) -> Figure:
    """The series stacked in order (the first at the bottom) on a date axis, in a new fixed-size ``Figure``:
    bars up to :data:`MAX_BAR_DAYS` days, areas past it; the legend lists the top of the stack first."""
    require_matplotlib()
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    fig = Figure(figsize=FIGSIZE, dpi=100, layout="constrained")
    ax = fig.subplots()
    x = [float(v) for v in date2num([parse_date(d) for d in days])]  # days since the epoch: bar widths in days
    if len(days) <= MAX_BAR_DAYS:
        bottom = [0.0] * len(days)
        for label, values in series.items():
            ax.bar(x, values, bottom=bottom, label=label, width=0.8)
            bottom = [b + v for b, v in zip(bottom, values)]
    elif series:
        ax.stackplot(x, *series.values(), labels=list(series))
    locator = AutoDateLocator(minticks=3, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_xlim(x[0] - 0.6, x[-1] + 0.6)
    ax.set_xlabel("received day (UTC)")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if percent:
        ax.yaxis.set_major_formatter(PercentFormatter(decimals=None))
    else:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 17.5 lines
    if series:
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles[::-1], labels[::-1], title=legend, loc="upper left", bbox_to_anchor=(1.0, 1.0))
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


def _sums(df: Any, day: str, label: str, value: str) -> list[tuple[str, str, int]]:
    """``(day, label, sum of value)`` of a Spark or a pandas DataFrame."""
    if hasattr(df, "groupBy"):
        return [(r[0], r[1], int(r[2] or 0)) for r in df.groupBy(day, label).sum(value).collect()]
    return [(d, lab, int(v)) for (d, lab), v in df.groupby([day, label])[value].sum().items()]


def days_of(start: lake.Day, end: lake.Day) -> list[str]:
    """Every day of ``start``..``end`` as ``YYYY-MM-DD``; a :class:`UsageError` for a bad or inverted range."""
    first, last = lake.as_day(start, "start"), lake.as_day(end, "end")
    if first is None or last is None:
        raise UsageError("a chart needs both a start and an end day")
    if first > last:
        raise UsageError(f"start {first} is after end {last}: give the first day, then the last")
    return [d.isoformat() for d in date_range(parse_date(first), parse_date(last))]
