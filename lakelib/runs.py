"""The run history: every job run is also one row of the Parquet table ``lake_runs``, partitioned by job.

:func:`lakelib.runner.run_job` calls :func:`record_run` once the JSON report is written, whatever the outcome
(succeeded, failed, nothing_to_do, dry_run). The row (:func:`run_row`) holds the report's job, run id, status,
times, the command line as the report has it (secrets redacted), the number of partitions, the totals as JSON text
and the error line; the JSON reports stay the detailed record.

Each run is its own file, ``<lake.tables>/lake_runs/job=<job>/<run_id>.parquet``, added by the publish protocol's
append: Spark writes the one row into a staging folder of that run (``<lake.tables>/_staging/lake_runs/<run_id>/``),
it is verified, and the file is moved into the partition folder, so runs that finish at the same time never touch
each other's files. (Spark's append mode would not do: concurrent appends to one table share its ``_temporary``
folder, and the first to commit deletes it.) The partition ``job=<job>`` is then registered in the catalog, a no-op
after the first run of a job.

A run is recorded only when it has a SparkSession: a usage or config error exits before Spark starts, and a job
that fails before building its session has none either; their JSON report (if any) is the record. Recording never
changes a run's outcome: a failure to record is logged as a warning.

:func:`job_paces` reads the rows back the other way: how long a job takes where it ran, per run and per GB of
input (``lake backfill``'s estimate).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from lakelib.errors import one_line
from lakelib.provenance import FIELDS as PROVENANCE_FIELDS
from lakelib.schema import LAKE_RUNS, spark_schema

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

    from lakelib.config import Config
    from lakelib.report import RunReport

log = logging.getLogger(__name__)

#: ``lake_runs`` column -> key of the run report's ``billed`` (:func:`lakelib.emr.billed_usage`).
BILLED_COLUMNS = {"billed_vcpu_hours": "vcpu_hours", "billed_memory_gb_hours": "memory_gb_hours",
                  "billed_storage_gb_hours": "storage_gb_hours", "cost_usd": "cost_usd"}


def _timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def run_row(report: RunReport) -> dict[str, Any]:
    """The ``lake_runs`` row of a finished run report: its data columns and ``job``.

    >>> from lakelib.report import RunReport
    >>> report = RunReport("json_to_parquet", run_id="r1", started_at="2026-01-01T00:00:00.000000Z")
    >>> report.totals = {"lines_read": 3}
    >>> report.extra["arguments"] = ["--date", "2026-01-01"]
    >>> report.finish("failed", "no raw data")
    >>> report.finished_at = "2026-01-01T00:00:02.500000Z"
    >>> row = run_row(report)
    >>> row["status"], row["duration_s"], row["totals"], row["error"], row["job"]
    ('failed', 2.5, '{"lines_read": 3}', 'no raw data', 'json_to_parquet')
    """
    started, finished = _timestamp(report.started_at), _timestamp(report.finished_at)
    arguments = report.extra.get("arguments")
    return {
        "run_id": report.run_id,
        "status": report.status,
        "started_at": started,
        "finished_at": finished,
        "duration_s": None if started is None or finished is None else (finished - started).total_seconds(),
        "arguments": None if arguments is None else [str(a) for a in arguments],
        "partitions": len(report.partitions),
        "totals": json.dumps(report.totals, sort_keys=True, default=str),
        "error": report.extra.get("error"),
        **{key: (report.extra.get("provenance") or {}).get(key) for key in PROVENANCE_FIELDS},
        **{column: (report.extra.get("billed") or {}).get(key) for column, key in BILLED_COLUMNS.items()},
        "job": report.job,
    }


def record_run(spark: SparkSession, config: Config, report: RunReport) -> str | None:
    """Append a finished run to ``lake_runs`` (its own file in ``job=<job>``, registered) through the publish
    protocol's append (:meth:`lakelib.tables.Tables.append`).

    Parameters
    ----------
    spark
        The job's session.
    config
        The job's config (``lake.tables``, the catalog, ``write.compression``).
    report
        The finished run report.

    Returns
    -------
    str or None
        The file written; ``None`` when the run could not be recorded (logged as a warning, never raised: the
        run's own outcome stands).
    """
    from lakelib.tables import open_tables

    row = run_row(report)
    try:
        frame = spark.createDataFrame([tuple(row[c] for c in LAKE_RUNS.column_names)], spark_schema(LAKE_RUNS))
        target = open_tables(spark, config, report.run_id).append(LAKE_RUNS, frame, {"job": report.job},
                                                                   report.run_id)
    except Exception as exc:  # noqa: BLE001 - the run's outcome must not depend on its history
        log.warning("run %s not recorded in %s: %s", report.run_id, LAKE_RUNS.name, one_line(exc))
        return None
    log.debug("run %s recorded in %s", report.run_id, target)
    return target


@dataclass(frozen=True)
class JobPace:
    """How long one job takes where it ran: seconds per run (Spark starting, listings) plus seconds per GB of input,
    over ``runs`` succeeded runs."""

    per_run: float
    per_gb: float
    runs: int

    def seconds(self, size: float) -> float:
        """Expected seconds of one run reading ``size`` bytes."""
        return self.per_run + size / 1e9 * self.per_gb


def ran_on(row: Mapping[str, Any]) -> str:
    """Where a ``lake_runs`` row's run ran: ``serverless``, ``emr`` or ``local`` (from its provenance columns).

    >>> ran_on({"emr_cluster_id": "j-1"}), ran_on({"serverless_application_id": "00a"}), ran_on({})
    ('emr', 'serverless', 'local')
    """
    if row.get("serverless_application_id"):
        return "serverless"
    return "emr" if row.get("emr_cluster_id") else "local"


def fit_pace(points: Sequence[tuple[float, float]]) -> JobPace:
    """``seconds = per_run + GB * per_gb`` by least squares over ``(bytes, seconds)`` points; with one size only, or
    a fit that is not positive, all the time is per GB (total seconds over total GB).

    >>> fit_pace([(1e9, 30.0), (3e9, 50.0)])
    JobPace(per_run=20.0, per_gb=10.0, runs=2)
    >>> fit_pace([(1e9, 30.0), (1e9, 10.0)])
    JobPace(per_run=0.0, per_gb=20.0, runs=2)
    """
    n = len(points)
    gbs = [b / 1e9 for b, _ in points]
    secs = [s for _, s in points]
    mean_gb, mean_s = sum(gbs) / n, sum(secs) / n
    spread = sum((g - mean_gb) ** 2 for g in gbs)
    if spread > 0:
        slope = sum((g - mean_gb) * (t - mean_s) for g, t in zip(gbs, secs)) / spread
        intercept = mean_s - slope * mean_gb
        if slope > 0 and intercept >= 0:
            return JobPace(intercept, slope, n)
    return JobPace(0.0, sum(secs) / sum(gbs), n)


def job_paces(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], JobPace]:
    """:func:`fit_pace` by job and where it ran (:func:`ran_on`), over the succeeded ``lake_runs`` rows whose totals
    name ``input_bytes`` above 0.

    >>> rows = [{"job": "j", "status": "succeeded", "duration_s": 30.0, "totals": '{"input_bytes": 1000000000}'},
    ...         {"job": "j", "status": "succeeded", "duration_s": 10.0, "totals": '{"input_bytes": 1000000000}'},
    ...         {"job": "j", "status": "failed", "duration_s": 99.0, "totals": '{"input_bytes": 5}'}]
    >>> job_paces(rows)
    {('j', 'local'): JobPace(per_run=0.0, per_gb=20.0, runs=2)}
    """
    points: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for row in rows:
        try:
            size = float(json.loads(row.get("totals") or "{}").get("input_bytes") or 0)
        except (ValueError, AttributeError):
            continue
        if row.get("status") == "succeeded" and size > 0 and row.get("duration_s") is not None:
            points.setdefault((str(row["job"]), ran_on(row)), []).append((size, float(row["duration_s"])))
    return {key: fit_pace(found) for key, found in points.items()}
