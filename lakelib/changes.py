"""What each ``events`` partition was made from, and which days changed since: the ``--changed`` runs.

Every conversion records, once its partitions are published, the raw listing each day was built from (a state file
per source and day under ``<lake.tables>/_lakelib/raw_listings/``: every file's key under the source folder, its
size and its modification time, with the version published) and a log of the run's partitions
(``_lakelib/conversions/<run_id>.json``). ``json_to_parquet --changed`` compares a fresh listing of each day with
the recorded one (:func:`compare`); ``event_tables`` and ``message_type_counts --changed`` follow the conversion
logs they have not followed yet (``_lakelib/followed/<job>.json``). ``docs/operations.md`` says why.
"""
from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from lakelib.errors import UsageError
from lakelib.paths import date_range, partition_dir, window_start
from lakelib.schema import EVENTS
from lakelib.storage import each

if TYPE_CHECKING:  # pragma: no cover
    from lakelib.publish import Published
    from lakelib.raw import RawDay
    from lakelib.tables import Tables

log = logging.getLogger(__name__)

#: State folders under ``<lake.tables>/_lakelib/``.
LISTINGS = "raw_listings"
CONVERSIONS = "conversions"
FOLLOWED = "followed"

#: Why a day was converted or skipped, in the order a day with several kinds of change is named.
NEW, CHANGED, REMOVED, UNCHANGED = "new files", "changed files", "removed files", "unchanged"
DEFAULT_LOOKBACK_DAYS = 14
#: State files read or written at once (small objects: on S3 the latency, not the bandwidth, is the cost).
PARALLEL_STATE_CALLS = 16

Key = tuple  # (sourceid, dt)


@dataclass
class DayChange:
    """One source-day of a ``--changed`` run: its raw listing now, and why it is converted or skipped."""

    source: str
    dt: str
    reason: str
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def key(self) -> Key:
        """``(sourceid, dt)``."""
        return self.source, self.dt

    def to_dict(self) -> dict[str, Any]:
        """The report entry (file counts, not names)."""
        return {"sourceid": self.source, "dt": self.dt, "reason": self.reason, "files_new": len(self.new),
                "files_changed": len(self.changed), "files_removed": len(self.removed)}


# --- command line ----------------------------------------------------------------------------------------------


def add_changed_arguments(parser: argparse.ArgumentParser, lookback: bool = False) -> None:
    """``--changed`` (and, for the conversion, ``--lookback-days N``) on a job's parser."""
    what = ("convert only the days whose raw listing differs from what their events partition was made from"
            if lookback else "only the events partitions converted since this job's last --changed run")
    parser.add_argument("--changed", action="store_true", help=what)
    if lookback:
        parser.add_argument("--lookback-days", type=int, metavar="N",
                            help=f"with --changed and no --date: the N received days up to today UTC "
                                 f"(default {DEFAULT_LOOKBACK_DAYS})")


def lookback_days(args: argparse.Namespace, days: list[date] | None, today: date | None = None) -> list[date] | None:
    """The days a conversion considers: ``days`` (``--date``), or with ``--changed`` alone the last
    ``--lookback-days`` days up to today UTC.

    Raises
    ------
    UsageError
        ``--lookback-days`` without ``--changed``, with ``--date``, or under 1.
    """
    n = getattr(args, "lookback_days", None)
    if n is not None and not args.changed:
        raise UsageError("--lookback-days needs --changed")
    if n is not None and days is not None:
        raise UsageError("--lookback-days and --date both choose the days: give one of them")
    if n is not None and n < 1:
        raise UsageError(f"--lookback-days {n}: give 1 or more days")
    if not args.changed or days is not None:
        return days
    end = today or datetime.now(timezone.utc).date()
    return date_range(window_start(end, n or DEFAULT_LOOKBACK_DAYS), end)


# --- listings --------------------------------------------------------------------------------------------------


def listing_of(day: RawDay) -> list[list[Any]]:
    """The files a conversion of ``day`` reads: ``[key, size, modified_ms]`` sorted, ``key`` being
    ``<day folder>/<file name>`` under the source's folder (the same whatever the raw root's scheme)."""
    return sorted(["/".join(f.path.rstrip("/").split("/")[-2:]), f.size, f.modified_ms] for f in day.files)


def listing_name(key: Key) -> str:
    """The state file of a source-day's listing: ``raw_listings/sourceid=<id>/dt=<day>.json``."""
    return f"{LISTINGS}/{partition_dir({'sourceid': key[0], 'dt': key[1]})}.json"


def read_listings(tables: Tables, keys: Iterable[Key]) -> dict[Key, dict[str, Any]]:
    """The recorded listing of each source-day that has one (state files read a few at a time)."""
    keys = list(keys)

    def read(key: Key) -> dict[str, Any] | None:
        text = tables.read_state(listing_name(key))
        try:
            data = json.loads(text) if text else None
        except ValueError:
            log.warning("unreadable listing record of %s %s: the day counts as new", *key)
            return None
        return data if isinstance(data, dict) else None

    found = dict(zip(keys, each(read, keys, PARALLEL_STATE_CALLS)))
    return {k: v for k, v in found.items() if v is not None}


def compare(key: Key, now: Sequence[Sequence[Any]], recorded: Mapping[str, Any] | None) -> DayChange:
    """Why a source-day is converted (``new files``, ``changed files``, ``removed files``) or skipped
    (``unchanged``): its listing ``now`` against the recorded one (none: never converted, so new).

    >>> compare(("web", "2026-01-01"), [["f/a.gz", 3, 1]], {"files": [["f/a.gz", 3, 1]]}).reason
    'unchanged'
    >>> compare(("web", "2026-01-01"), [["f/a.gz", 4, 2]], {"files": [["f/a.gz", 3, 1], ["f/b.gz", 1, 1]]}).reason
    'changed files'
    """
    before = {f[0]: tuple(f[1:]) for f in (recorded or {}).get("files", [])}
    after = {f[0]: tuple(f[1:]) for f in now}
    change = DayChange(key[0], key[1], UNCHANGED,
                       new=sorted(set(after) - set(before)), removed=sorted(set(before) - set(after)),
                       changed=sorted(k for k in set(after) & set(before) if after[k] != before[k]))
    if recorded is None or change.new:
        change.reason = NEW
    elif change.changed:
        change.reason = CHANGED
    elif change.removed:
        change.reason = REMOVED
    return change


def find_changes(tables: Tables, raw_days: Sequence[RawDay], missing: Iterable[Key]) -> list[DayChange]:
    """Each listed day, and each ``missing`` source-day (no file left) that had a listing, with its reason."""
    missing = list(missing)
    recorded = read_listings(tables, [d.key for d in raw_days] + missing)
    out = [compare(d.key, listing_of(d), recorded.get(d.key)) for d in raw_days]
    out += [compare(k, [], recorded[k]) for k in missing if recorded.get(k, {}).get("files")]
    return sorted(out, key=lambda c: c.key)


def record_conversion(tables: Tables, raw_days: Sequence[RawDay], published: Sequence[Published],
                      reasons: Mapping[Key, str] | None = None) -> None:
    """After a conversion is published: the run's log of partitions for the jobs that follow ``events``, then each
    day's listing with the ``events`` version it became (``None``: the day yields no row).

    Written only once the switch is done: a run that fails before (or while writing the log) leaves the old
    listing, so ``--changed`` converts the day again and logs it again.
    """
    versions = {(p.values["sourceid"], p.values["dt"]): p.version for p in published
                if p.table == EVENTS.name}
    at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    records = [{"sourceid": d.source, "dt": d.key[1], "version": versions.get(d.key), "run_id": tables.run_id,
                "recorded_at": at, "files": listing_of(d)} for d in raw_days]

    entries = [{k: r[k] for k in ("sourceid", "dt", "version")} for r in records]
    for e in entries:
        e["reason"] = (reasons or {}).get((e["sourceid"], e["dt"]))
    tables.write_state(f"{CONVERSIONS}/{tables.run_id}.json",
                       json.dumps({"run_id": tables.run_id, "recorded_at": at, "partitions": entries}, indent=1) + "\n")

    def write(record: dict[str, Any]) -> None:
        tables.write_state(listing_name((record["sourceid"], record["dt"])), json.dumps(record, indent=1) + "\n")

    each(write, records, PARALLEL_STATE_CALLS)
    log.info("raw listings of %d day(s) recorded", len(records))


# --- following the conversions ---------------------------------------------------------------------------------


@dataclass
class Followed:
    """The ``events`` partitions a job must redo: converted since its last ``--changed`` run."""

    job: str
    keys: list[Key]
    logs: list[str]  # the conversion logs fully covered by this run: marked followed once it succeeds
    seen: list[str]  # the logs already followed


def changed_partitions(tables: Tables, job: str, sources: Sequence[str] | None = None,
                       days: Sequence[date] | None = None) -> Followed:
    """The ``events`` partitions that conversions published since ``job`` last followed them (``sources`` and
    ``days`` narrow them; a log with partitions outside them stays to follow)."""
    state = tables.read_state(f"{FOLLOWED}/{job}.json")
    seen = list(json.loads(state).get("conversions", [])) if state else []
    pending = sorted(set(tables.list_state(CONVERSIONS)) - set(seen))
    wanted_days = None if days is None else {d.isoformat() for d in days}
    keys: set[Key] = set()
    covered = []
    for name in pending:
        data = json.loads(tables.read_state(f"{CONVERSIONS}/{name}") or "{}")
        parts = [(p["sourceid"], p["dt"]) for p in data.get("partitions", [])]
        inside = [k for k in parts if (not sources or k[0] in sources) and (wanted_days is None or k[1] in wanted_days)]
        keys.update(inside)
        if len(inside) == len(parts):
            covered.append(name)
    log.info("%s --changed: %d conversion(s) not followed yet, %d events partition(s) to redo", job, len(pending),
             len(keys))
    return Followed(job, sorted(keys), covered, seen)


def mark_followed(tables: Tables, followed: Followed) -> None:
    """Record that ``followed.job`` has redone what its logs name (once its run has published)."""
    if not followed.logs:
        return
    names = sorted(set(followed.seen) | set(followed.logs))
    tables.write_state(f"{FOLLOWED}/{followed.job}.json", json.dumps({"conversions": names}, indent=1) + "\n")
