"""Backfills planned in batches: which days each batch converts, what the raw folders weigh, how long it should take.

``lake backfill`` (:mod:`lakelib.backfill_command`) runs the plan. Everything here is pure but the raw listing
(:func:`list_raw`, through pyarrow, no Spark) and the run history (:func:`history_pace`, from the run reports):

>>> from datetime import date
>>> batches = plan_batches(date(2026, 1, 1), date(2026, 1, 7), 3, {date(2026, 1, 2): (1, 10), date(2026, 1, 7): (2, 5)})
>>> [(str(b.first), str(b.last), b.days_with_data, b.bytes) for b in batches]
[('2026-01-01', '2026-01-03', 1, 10), ('2026-01-07', '2026-01-07', 1, 5)]

Batches are calendar chunks of ``batch_days`` from ``start`` (a resumed backfill keeps the same chunks); a chunk with
no raw folder is left out. Each batch is one ``json_to_parquet --date FIRST --end-date LAST --changed``: a day
already published from the same raw listing is listed and skipped, so a rerun converts only what is new.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from lakelib.errors import UsageError
from lakelib.paths import date_range
from lakelib.redact import redact_args

if TYPE_CHECKING:  # pragma: no cover
    from lakelib.config import Config

JOB = "json_to_parquet"
GB = 1_000_000_000
#: Seconds per GB of gzipped raw input when the lake has no history: the 2-core scale figure of BENCHMARKS.md
#: (420.1 MB in 151.7 s, spark-submit included). A cluster is faster; the first batch's run then gives a figure.
DEFAULT_SECONDS_PER_GB = 361.0


@dataclass(frozen=True)
class Batch:
    """One run of the backfill: the calendar days ``first``..``last``, and what the raw folders hold for them."""

    first: date
    last: date
    days_with_data: int
    day_folders: int
    bytes: int

    @property
    def label(self) -> str:
        """``2026-01-01..2026-01-03`` (one date for a one-day batch)."""
        return str(self.first) if self.first == self.last else f"{self.first}..{self.last}"


@dataclass(frozen=True)
class Pace:
    """Seconds per run and per GB of raw input, and what the figures rest on (``runs`` of history, or none)."""

    per_run: float
    per_gb: float
    runs: int
    basis: str

    def seconds(self, batch: Batch) -> float:
        """Expected seconds of one batch."""
        return self.per_run + batch.bytes / GB * self.per_gb


def plan_batches(start: date, end: date, batch_days: int, raw: Mapping[date, tuple[int, int]]) -> list[Batch]:
    """Calendar chunks of ``batch_days`` from ``start`` to ``end``, each with the day folders and bytes ``raw``
    (day -> (day folders, bytes)) lists in it; chunks without raw data are left out.

    Raises
    ------
    UsageError
        ``end`` before ``start``, or ``batch_days`` under 1.
    """
    if end < start:
        raise UsageError(f"--end {end} is before --start {start}")
    if batch_days < 1:
        raise UsageError(f"--batch-days {batch_days}: give 1 or more")
    batches = []
    first = start
    while first <= end:
        last = min(first + timedelta(days=batch_days - 1), end)
        found = [raw[d] for d in date_range(first, last) if d in raw]
        if found:
            batches.append(Batch(first, last, len(found), sum(f for f, _ in found), sum(b for _, b in found)))
        first = last + timedelta(days=1)
    return batches


def job_args(batch: Batch, config: str, sources: Sequence[str] = (), sets: Sequence[str] = ()) -> list[str]:
    """The arguments of the batch's ``json_to_parquet`` run.

    >>> job_args(Batch(date(2026, 1, 1), date(2026, 1, 3), 3, 3, 1), "conf/emr.yaml", ["web"])
    ['--config', 'conf/emr.yaml', '--date', '2026-01-01', '--end-date', '2026-01-03', '--changed', '--source', 'web']
    """
    args = ["--config", config, "--date", str(batch.first), "--end-date", str(batch.last), "--changed"]
    for source in sources:
        args += ["--source", source]
    for item in sets:
        args += ["--set", item]
    return args


def pace_of(rows: Iterable[Mapping], where: str) -> Pace:
    """The pace of ``json_to_parquet`` where a backfill will run (``local``, ``emr``, ``serverless``), from
    ``lake_runs`` rows (:func:`lakelib.runs.job_paces`), or :data:`DEFAULT_SECONDS_PER_GB`, saying so.

    >>> pace_of([], "emr").basis
    'no json_to_parquet run on emr in the history: 361 s per GB assumed (BENCHMARKS.md, 2 cores)'
    """
    from lakelib.runs import job_paces

    known = job_paces(rows).get((JOB, where))
    if known is None:
        return Pace(0.0, DEFAULT_SECONDS_PER_GB, 0, f"no {JOB} run on {where} in the history: "
                    f"{DEFAULT_SECONDS_PER_GB:.0f} s per GB assumed (BENCHMARKS.md, 2 cores)")
    per_run = f"{known.per_run:,.0f} s per run + " if known.per_run else ""
    return Pace(known.per_run, known.per_gb, known.runs, f"{per_run}{known.per_gb:,.0f} s per GB, from the last "
                f"{known.runs} {JOB} run(s) on {where}")


def format_duration(seconds: float) -> str:
    """``1 h 02 min``, ``3 min 05 s``, ``42 s``.

    >>> format_duration(3725), format_duration(185), format_duration(41.6)
    ('1 h 02 min', '3 min 05 s', '42 s')
    """
    whole = int(round(seconds))
    if whole >= 3600:
        return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
    if whole >= 60:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole} s"


def _mb(n: int) -> str:
    return f"{n / 1_000_000:,.1f} MB"


def format_plan(batches: Sequence[Batch], pace: Pace, start: date, end: date) -> str:
    """The estimate, then one line per batch (days with data, day folders, raw bytes, expected time)."""
    days = sum(b.days_with_data for b in batches)
    size = sum(b.bytes for b in batches)
    total = sum(pace.seconds(b) for b in batches)
    lines = [
        f"backfill {start}..{end}: {len(batches)} batch(es), {days} day(s) with raw data "
        f"({sum(b.day_folders for b in batches)} day folder(s)), {_mb(size)} of raw input",
        f"expected time: {format_duration(total)} ({pace.basis}); days already published from the same raw "
        "listing are only listed",
    ]
    for i, b in enumerate(batches, 1):
        lines.append(f"  batch {i}/{len(batches)}  {b.label:<22} {b.days_with_data:>3} day(s) {b.day_folders:>4} "
                     f"folder(s) {_mb(b.bytes):>12}  ~{format_duration(pace.seconds(b))}")
    return "\n".join(lines)


def resume_command(failed: Batch, end: date, batch_days: int, mode: str, config: str | None,
                   sources: Sequence[str] = (), sets: Sequence[str] = (), submit_options: Sequence[str] = ()) -> str:
    """The ``lake backfill`` line that starts again at the failed batch (secret values redacted, shell-quoted).

    >>> print(resume_command(Batch(date(2026, 1, 7), date(2026, 1, 9), 3, 3, 1), date(2026, 1, 31), 3, "emr",
    ...                      "conf/emr.yaml", submit_options=["--cluster-id", "j-1", "--conf", "a.secret=x"]))
    lake backfill --config conf/emr.yaml --start 2026-01-07 --end 2026-01-31 --batch-days 3 --mode emr \
--cluster-id j-1 --conf 'a.secret=*********(redacted)'
    """
    words = ["lake", "backfill"] + (["--config", config] if config else [])
    for item in sets:
        words += ["--set", item]
    words += ["--start", str(failed.first), "--end", str(end), "--batch-days", str(batch_days), "--mode", mode]
    for source in sources:
        words += ["--source", source]
    return " ".join(shlex.quote(w) for w in redact_args(words + list(submit_options)))


def list_raw(config: Config, sources: Sequence[str], days: Sequence[date]) -> dict[date, tuple[int, int]]:
    """Day -> (day folders, bytes) of the raw folders of ``days`` (``sources``, else every source under
    ``lake.raw``), listed through pyarrow like :func:`lakelib.raw.find_raw_days` lists them in the job."""
    from lakelib.local_read import ArrowListing
    from lakelib.raw import find_raw_days

    found, _ = find_raw_days(ArrowListing(), config.lake.raw, sources, days)
    out: dict[date, tuple[int, int]] = {}
    for raw_day in found:
        folders, size = out.get(raw_day.day, (0, 0))
        out[raw_day.day] = (folders + 1, size + raw_day.bytes)
    return out


def history_pace(config: Config, where: str, last: int = 50) -> Pace:
    """:func:`pace_of` over the last ``last`` ``json_to_parquet`` runs of the lake (their run reports, no Spark)."""
    from lakelib.run_reports import last_runs

    return pace_of(last_runs(config.lake.reports, [JOB], last), where)
