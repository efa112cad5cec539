"""Run reports: one JSON document per job run, written under ``lake.reports`` and at ``--report PATH``.

The shape is fixed by the contract: ``job``, ``run_id``, ``status``, ``started_at``, ``finished_at``,
``partitions`` and ``totals``; jobs add their own keys beside them (``skipped_days``, ``error``...).
"""
from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from lakelib.paths import join
from lakelib.redact import hide_url_passwords

if TYPE_CHECKING:  # pragma: no cover
    from lakelib.storage import Storage

log = logging.getLogger(__name__)

#: Per-partition counters of ``json_to_parquet``; the totals are their sums.
CONVERSION_COUNTERS = (
    "lines_read",
    "rows_written",
    "duplicates_dropped",
    "quarantined",
    "files_written",
    "bytes_written",
)


def utc_now() -> str:
    """Now, as ISO-8601 UTC with a ``Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_run_id(job: str, at: datetime | None = None) -> str:
    """A sortable, unique run id: ``<job>-<UTC time to the millisecond>-<8 hex>``.

    >>> new_run_id("demo", datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc))[:-8]
    'demo-20260102T030405.678Z-'
    """
    at = at or datetime.now(timezone.utc)
    return f"{job}-{at:%Y%m%dT%H%M%S}.{at.microsecond // 1000:03d}Z-{uuid.uuid4().hex[:8]}"


@dataclass
class RunReport:
    """What one run did; :meth:`to_dict` is the JSON document."""

    job: str
    run_id: str = ""
    status: str = "running"
    started_at: str = field(default_factory=utc_now)
    finished_at: str | None = None
    partitions: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.run_id:
            self.run_id = new_run_id(self.job)

    def finish(self, status: str, error: str | None = None) -> None:
        """Close the report with ``succeeded``, ``failed`` or ``nothing_to_do``."""
        self.status = status
        self.finished_at = utc_now()
        if error:
            self.extra["error"] = error

    def to_dict(self) -> dict[str, Any]:
        """The report as the contract's JSON object."""
        out = {
            "job": self.job,
            "run_id": self.run_id,
            "status": self.status,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "partitions": self.partitions,
            "totals": self.totals,
        }
        out.update(self.extra)
        return out

    def to_json(self) -> str:
        """The report as indented JSON text (no URL's password in it: :func:`lakelib.redact.hide_url_passwords`)."""
        return hide_url_passwords(json.dumps(self.to_dict(), indent=2, sort_keys=False, default=str)) + "\n"


def sum_counters(partitions: Iterable[Mapping[str, Any]], keys: Iterable[str]) -> dict[str, Any]:
    """Totals of numeric counters, and of ``*_by_reason``-style dict counters, over partitions."""
    totals: dict[str, Any] = {}
    parts = list(partitions)
    for key in keys:
        values = [p.get(key) for p in parts]
        if any(isinstance(v, Mapping) for v in values):
            merged: dict[str, int] = {}
            for value in values:
                for reason, count in (value or {}).items():
                    merged[reason] = merged.get(reason, 0) + int(count)
            totals[key] = merged
        else:
            totals[key] = sum(int(v or 0) for v in values)
    return totals


def record_registration(
    report: RunReport,
    table: str,
    registered: Sequence[Mapping[str, str]],
    not_registered: Sequence[Mapping[str, str]] = (),
    unknown: Sequence[Mapping[str, str]] = (),
) -> None:
    """Record in the report which partitions of ``table`` the catalog holds after a registration.

    Each entry of ``report.partitions`` with the key values of one of them (and no other ``table``) gets
    ``registered``: ``true``, ``false``, or ``null`` (unknown: the catalog could not be read back).
    ``registration.<table>`` gets the count of each and the key values of every partition that is not registered
    (or unknown), so nothing is lost when the entries of ``report.partitions`` are not of that table.

    Parameters
    ----------
    report
        The run's report.
    table
        The table's name.
    registered, not_registered, unknown
        Partitions as their key values (``{"sourceid": "web", "dt": "2020-01-02"}``); see
        :class:`~lakelib.errors.PartialRegistrationError`.

    Examples
    --------
    >>> report = RunReport("demo", partitions=[{"sourceid": "web", "dt": "2020-01-01", "rows": 3},
    ...                                        {"sourceid": "web", "dt": "2020-01-02", "rows": 4}])
    >>> record_registration(report, "events", [{"sourceid": "web", "dt": "2020-01-01"}],
    ...                     [{"sourceid": "web", "dt": "2020-01-02"}])
    >>> [p["registered"] for p in report.partitions]
    [True, False]
    >>> report.extra["registration"]["events"]["not_registered"]
    [{'sourceid': 'web', 'dt': '2020-01-02'}]
    """
    states = [(v, True) for v in registered] + [(v, False) for v in not_registered] + [(v, None) for v in unknown]
    for values, state in states:
        for entry in report.partitions:
            if values and entry.get("table", table) == table and all(
                    str(entry.get(k)) == str(v) for k, v in values.items()):
                entry["registered"] = state
    report.extra.setdefault("registration", {})[table] = {
        "registered": len(registered),
        "not_registered": [dict(v) for v in not_registered],
        "unknown": [dict(v) for v in unknown],
    }


def report_uri(reports_root: str, report: RunReport) -> str:
    """``<lake.reports>/<job>/<run_id>.json``."""
    return join(reports_root, report.job, f"{report.run_id}.json")


def html_uri(json_uri: str) -> str:
    """Where the HTML page of a JSON report goes: beside it, ``.json`` replaced by ``.html``.

    >>> html_uri("s3://b/reports/demo/r1.json"), html_uri("out/report")
    ('s3://b/reports/demo/r1.html', 'out/report.html')
    """
    return (json_uri[: -len(".json")] if json_uri.endswith(".json") else json_uri) + ".html"


def write_report(
    report: RunReport, reports_root: str | None, extra_path: str | None, storage: Storage | None
) -> list[str]:
    """Write the report under ``lake.reports`` (through Hadoop's FileSystem when a session exists) and to
    ``--report PATH`` (a local path or any URI the storage reaches), each with its HTML page beside it
    (:func:`html_uri`, :mod:`lakelib.html_report`). Returns where the JSON went.

    A report that cannot be written is logged, never raised: it must not hide the job's own outcome.
    """
    from lakelib.html_report import render

    text = report.to_json()
    try:
        page: str | None = render(json.loads(text))  # the page shows what the JSON holds, passwords hidden
    except Exception as exc:  # noqa: BLE001 - the JSON report is the record; the page is for people
        log.error("could not render the HTML run report: %s", exc)
        page = None
    written = []
    targets = ([report_uri(reports_root, report)] if reports_root else []) + ([extra_path] if extra_path else [])
    for target in targets:
        for uri, body in ((target, text), (html_uri(target), page)):
            if body is None:
                continue
            try:
                if "://" in uri and not uri.startswith("file://"):
                    if storage is None:
                        raise OSError("no Spark session to reach it")
                    storage.write_text(uri, body)
                else:
                    local = uri[len("file://"):] if uri.startswith("file://") else uri
                    os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
                    with open(local, "w", encoding="utf-8") as handle:
                        handle.write(body)
                if uri == target:
                    written.append(target)
            except Exception as exc:  # noqa: BLE001 - reported, the job's outcome stands
                log.error("could not write the run report to %s: %s", uri, exc)
    return written
