"""The run reports under ``lake.reports``, read directly (local files, or S3 through boto3): no Spark, no pyarrow.

``lake runs`` and ``lake report`` read them this way; they are small JSON files named
``<lake.reports>/<job>/<run_id>.json``, and a run id carries its start time (:func:`lakelib.report.new_run_id`),
so the last runs are found from a listing and only those files are read.
"""
from __future__ import annotations

import json
import logging
import os
import re
from typing import Any, Iterable, Mapping

from lakelib.errors import UsageError, one_line

log = logging.getLogger(__name__)

#: ``<job>-<YYYYmmddTHHMMSS.fffZ>-<8 hex>``, as :func:`lakelib.report.new_run_id` makes them (older ids have
#: no milliseconds: ``<YYYYmmddTHHMMSSZ>``).
RUN_ID = re.compile(r"^(?P<job>.+)-(?P<time>\d{8}T\d{6}(?:\.\d{3})?Z)-[0-9a-f]{8}$")


def _s3_parts(uri: str) -> tuple[str, str] | None:
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme.lower() not in ("s3", "s3a"):
        return None
    bucket, _, key = rest.partition("/")
    return bucket, key.strip("/")


def _local(uri: str) -> str:
    return uri[len("file://"):] if uri.startswith("file://") else uri


def _s3_client(s3_client: Any) -> Any:
    if s3_client is not None:
        return s3_client
    import boto3

    return boto3.client("s3")


def list_reports(reports_root: str, jobs: Iterable[str] | None = None, s3_client: Any = None) -> list[str]:
    """The JSON reports under ``reports_root`` (of ``jobs`` only, when given), oldest run first.

    Parameters
    ----------
    reports_root
        ``lake.reports``.
    jobs
        Job names; ``None`` for every job.
    s3_client
        An injected boto3 S3 client (built from the environment when ``None``).
    """
    wanted = None if jobs is None else set(jobs)
    found: list[tuple[str, str]] = []  # (job, run_id)
    s3 = _s3_parts(reports_root)
    if s3 is not None:
        bucket, prefix = s3
        pages = _s3_client(s3_client).get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{prefix}/" if prefix else "")
        for page in pages:
            for obj in page.get("Contents", []):
                parts = obj["Key"][len(prefix):].strip("/").split("/")
                if len(parts) == 2 and parts[1].endswith(".json"):
                    found.append((parts[0], parts[1][: -len(".json")]))
    else:
        root = _local(reports_root)
        for job in sorted(os.listdir(root)) if os.path.isdir(root) else []:
            folder = os.path.join(root, job)
            if os.path.isdir(folder):
                found += [(job, name[: -len(".json")]) for name in os.listdir(folder) if name.endswith(".json")]
    found = [(job, run_id) for job, run_id in found if wanted is None or job in wanted]
    found.sort(key=lambda item: (_run_time(item[1]), item[1]))
    return [f"{reports_root.rstrip('/')}/{job}/{run_id}.json" for job, run_id in found]


def _run_time(run_id: str) -> str:
    """The start time a run id carries, to the millisecond (``.000`` for the ids without), sortable as text."""
    match = RUN_ID.match(run_id)
    if not match:
        return ""
    time = match.group("time")[:-1]
    return time if "." in time else f"{time}.000"


def read_text(uri: str, s3_client: Any = None) -> str:
    """The text of a local file or an S3 object."""
    s3 = _s3_parts(uri)
    if s3 is None:
        with open(_local(uri), encoding="utf-8") as handle:
            return handle.read()
    body = _s3_client(s3_client).get_object(Bucket=s3[0], Key=s3[1])["Body"].read()
    return body.decode("utf-8")


def write_text(uri: str, text: str, content_type: str = "text/html", s3_client: Any = None) -> None:
    """Write text to a local file (its folder created) or an S3 object."""
    s3 = _s3_parts(uri)
    if s3 is None:
        path = _local(uri)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return
    _s3_client(s3_client).put_object(Bucket=s3[0], Key=s3[1], Body=text.encode("utf-8"), ContentType=content_type)


def add_to_report(uri: str, fields: Mapping[str, Any], s3_client: Any = None) -> bool:
    """Add ``fields`` to the JSON run report at ``uri`` (local or S3); ``False`` (and a warning) when it cannot be
    read or written."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        report = json.loads(read_text(uri, s3_client))
        report.update(fields)
        write_text(uri, json.dumps(report, indent=2, default=str) + "\n", "application/json", s3_client)
    except (OSError, ValueError, ClientError, BotoCoreError) as exc:
        log.warning("could not add %s to the run report %s: %s", ", ".join(fields), uri, one_line(exc))
        return False
    return True


def exists(uri: str, s3_client: Any = None) -> bool:
    """Whether a local file or an S3 object exists."""
    s3 = _s3_parts(uri)
    if s3 is None:
        return os.path.isfile(_local(uri))
    from botocore.exceptions import ClientError

    try:
        _s3_client(s3_client).head_object(Bucket=s3[0], Key=s3[1])
    except ClientError:
        return False
    return True


def last_runs(reports_root: str, jobs: Iterable[str] | None = None, last: int = 20,
              s3_client: Any = None) -> list[dict[str, Any]]:
    """The ``last`` most recent runs as ``lake_runs`` rows (:func:`lakelib.runs.run_row`), most recent first.

    A report that cannot be read or parsed is skipped with a warning.
    """
    from lakelib.runs import run_row

    client = _s3_client(s3_client) if _s3_parts(reports_root) else None
    rows = []
    for uri in reversed(list_reports(reports_root, jobs, client)[-last:] if last > 0 else []):
        try:
            rows.append(run_row(as_report(json.loads(read_text(uri, client)))))
        except (OSError, ValueError, KeyError) as exc:
            log.warning("skipping the report %s: %s", uri, exc)
    return rows


def as_report(doc: dict[str, Any]) -> Any:
    """A :class:`lakelib.report.RunReport` from its JSON document (keys beyond the contract's in ``extra``)."""
    from lakelib.report import RunReport

    fixed = ("job", "run_id", "status", "started_at", "finished_at", "partitions", "totals")
    report = RunReport(**{k: doc[k] for k in fixed if doc.get(k) is not None})
    report.extra = {k: v for k, v in doc.items() if k not in fixed}
    return report


def find_report(reports_root: str, run_id: str | None = None, s3_client: Any = None) -> str:
    """The JSON report of ``run_id`` (the most recent run when ``None``).

    Raises
    ------
    UsageError
        No report at all, or none of that run (the message names the last few runs).
    """
    client = _s3_client(s3_client) if _s3_parts(reports_root) else None
    if run_id is not None:
        match = RUN_ID.match(run_id)
        uri = f"{reports_root.rstrip('/')}/{match.group('job') if match else '?'}/{run_id}.json"
        if match and exists(uri, client):
            return uri
    reports = list_reports(reports_root, None, client)
    if not reports:
        raise UsageError(f"no run report under {reports_root}")
    if run_id is None:
        return reports[-1]
    recent = ", ".join(u.rsplit("/", 1)[-1][: -len(".json")] for u in reversed(reports[-5:]))
    raise UsageError(f"no report of run {run_id} under {reports_root} (last runs: {recent})")


def conversions(reports_root: str, sources: Iterable[str] | None, start: str, end: str,
                s3_client: Any = None) -> list[dict[str, Any]]:
    """Per source and received day of ``start``..``end``: ``lines_read``, ``quarantined`` and
    ``quarantined_by_reason`` as the last succeeded ``json_to_parquet`` run that converted that day reported them.

    Only reports of runs started on or after ``start`` are read (a day is converted after it is received).
    """
    client = _s3_client(s3_client) if _s3_parts(reports_root) else None
    wanted = None if sources is None else set(sources)
    since = start.replace("-", "")
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for uri in list_reports(reports_root, ["json_to_parquet"], client):
        run_id = uri.rsplit("/", 1)[-1][: -len(".json")]
        if _run_time(run_id)[:8] < since:
            continue
        try:
            doc = json.loads(read_text(uri, client))
        except (OSError, ValueError) as exc:
            log.warning("skipping the report %s: %s", uri, exc)
            continue
        if doc.get("status") != "succeeded":
            continue
        for part in doc.get("partitions") or []:
            key = (str(part.get("sourceid")), str(part.get("dt")))
            if start <= key[1] <= end and (wanted is None or key[0] in wanted) and "lines_read" in part:
                latest[key] = part  # reports come oldest first: the last run wins
    return [latest[k] for k in sorted(latest)]
