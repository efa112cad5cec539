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

The billed use of an EMR Serverless run arrives after its row (:func:`fill_billed` rewrites the row's partition
through the publish protocol). A rewrite and an append hold the same lock (:data:`LOCK_NAME`), so a run that
finishes during a rewrite waits a moment instead of adding its file to the version being replaced.

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
from typing import TYPE_CHECKING, Any, ContextManager, Iterable, Mapping, Sequence, Tuple

from lakelib.errors import one_line
from lakelib.paths import join
from lakelib.provenance import FIELDS as PROVENANCE_FIELDS
from lakelib.redact import redact_args
from lakelib.schema import LAKE_RUNS, spark_schema

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

    from lakelib.config import Config
    from lakelib.report import RunReport
    from lakelib.tables import Tables

log = logging.getLogger(__name__)

#: The lock file that appends to ``lake_runs`` and rewrites of it hold: hidden in the table's own folder
#: (``<lake.tables>/lake_runs/_lock``), where readers skip it and a run leaves nothing elsewhere.
LOCK_NAME = "_lock"
#: How long a run waits to record its row while ``lake_runs`` is being rewritten, in seconds.
RECORD_WAIT_SECONDS = 600.0
#: A ``lake_runs`` lock older than this (seconds) was left by a run that died: a rewrite takes seconds.
LOCK_STALE_SECONDS = 3600.0

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
        "arguments": None if arguments is None else redact_args([str(a) for a in arguments]),
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
        tables = open_tables(spark, config, report.run_id)
        with _lock(tables, wait=RECORD_WAIT_SECONDS, poll=1.0):
            target = tables.append(LAKE_RUNS, frame, {"job": report.job}, report.run_id)
    except Exception as exc:  # noqa: BLE001 - the run's outcome must not depend on its history
        log.warning("run %s not recorded in %s: %s", report.run_id, LAKE_RUNS.name, one_line(exc))
        return None
    log.debug("run %s recorded in %s", report.run_id, target)
    return target


# --- the billed use of EMR Serverless runs, filled in after the run (lake submit --wait, lake runs --refresh-cost) --

#: A run of EMR Serverless, as ``lake_runs`` names it: ``(serverless_application_id, serverless_job_run_id)``.
JobRunKey = Tuple[str, str]


def job_run_key(row: Mapping[str, Any]) -> JobRunKey | None:
    """The EMR Serverless application and job run of a ``lake_runs`` row, or ``None`` when it did not run there."""
    app, job_run = row.get("serverless_application_id"), row.get("serverless_job_run_id")
    return (str(app), str(job_run)) if app and job_run else None


def without_cost(rows: Iterable[Mapping[str, Any]]) -> list[JobRunKey]:
    """The EMR Serverless job runs among ``rows`` whose cost is not filled in yet.

    >>> without_cost([{"serverless_application_id": "00a", "serverless_job_run_id": "00r", "cost_usd": None},
    ...               {"serverless_application_id": "00a", "serverless_job_run_id": "00s", "cost_usd": 0.1},
    ...               {"emr_cluster_id": "j-1", "cost_usd": None}])
    [('00a', '00r')]
    """
    keys = [job_run_key(r) for r in rows if r.get("cost_usd") is None]
    return sorted({k for k in keys if k is not None})


def with_billed(row: Mapping[str, Any], usage: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a ``lake_runs`` row with the billed columns of ``usage`` (:func:`lakelib.emr.billed_usage`)."""
    return {**row, **{column: usage.get(key) for column, key in BILLED_COLUMNS.items()}}


def read_runs(spark: SparkSession, config: Config) -> list[dict[str, Any]]:
    """Every row of ``lake_runs`` (with ``job``), as dicts: the table is one small row per run."""
    from lakelib.lake import read_table

    return [r.asDict() for r in read_table(spark, config, LAKE_RUNS).collect()]


def fill_billed(spark: SparkSession, config: Config, usage: Mapping[JobRunKey, Mapping[str, Any]]
                ) -> list[dict[str, Any]]:
    """Fill the billed columns of the ``lake_runs`` rows of these EMR Serverless job runs that have none, by
    republishing their partitions (``job=<job>``) through the publish protocol (stage, verify, publish).

    The rows are read and republished under the lock :func:`record_run` takes too, so a run that finishes meanwhile
    records its row after the switch, into the new version.

    Returns
    -------
    list[dict]
        The rows changed, as now published.

    Raises
    ------
    LakelibError
        The protocol refused (nothing was switched), or another rewrite held the lock too long.
    """
    from lakelib.report import new_run_id
    from lakelib.tables import open_tables

    tables = open_tables(spark, config, new_run_id("lake_runs"))
    with _lock(tables):
        rows = read_runs(spark, config)
        changed = [with_billed(r, usage[key]) for r, key in ((r, job_run_key(r)) for r in rows)
                   if key is not None and key in usage and r.get("cost_usd") is None]
        if not changed:
            return []
        jobs = sorted({r["job"] for r in changed})
        by_run = {r["run_id"]: r for r in changed}
        kept = [by_run.get(r["run_id"], r) for r in rows if r["job"] in jobs]
        frame = spark.createDataFrame([tuple(r[c] for c in LAKE_RUNS.all_names) for r in kept],
                                      spark_schema(LAKE_RUNS, with_partitions=True))
        expected = {(job,): sum(r["job"] == job for r in kept) for job in jobs}
        tables.publish(tables.stage(LAKE_RUNS, frame, expected, one_file_per_partition=True))
    log.info("%s: billed use of %d run(s) filled in", LAKE_RUNS.name, len(changed))
    return changed


def _lock(tables: Tables, wait: float | None = None, poll: float | None = None) -> ContextManager[None]:
    """The ``lake_runs`` lock (:data:`LOCK_NAME`) for this run's block."""
    return tables.hold(join(tables.target(LAKE_RUNS).root, LOCK_NAME), wait=wait, poll=poll, stale=LOCK_STALE_SECONDS)


def refresh_costs(spark: SparkSession, config: Config, client: Any, prices: Any,
                  s3_client: Any = None) -> list[dict[str, Any]]:
    """Fill the billed use and cost of every ``lake_runs`` row of an EMR Serverless job run that has none, from
    ``GetJobRun`` (``client``: an ``emr-serverless`` boto3 client) at ``prices`` (:class:`lakelib.emr.Prices`);
    each changed run's JSON report gets its ``billed`` too. A job run not final yet, or unknown, is left for later.

    Returns
    -------
    list[dict]
        The rows changed, as now published.
    """
    from lakelib import emr
    from lakelib.errors import SubmitError

    usage = {}
    for app, job_run in without_cost(read_runs(spark, config)):
        try:
            state = emr.job_run_state(client, app, job_run)
        except SubmitError as exc:
            log.warning("%s: left without cost: %s", job_run, exc)
            continue
        billed = emr.billed_usage(state.detail, prices) if state.final else None
        if billed is not None:
            usage[(app, job_run)] = billed
    changed = fill_billed(spark, config, usage)
    add_billed_to_reports(config, changed, usage, s3_client)
    return changed


def add_billed_to_reports(config: Config, rows: Iterable[Mapping[str, Any]],
                          usage: Mapping[JobRunKey, Mapping[str, Any]], s3_client: Any = None) -> None:
    """Add ``billed`` to the JSON report of each row (``<lake.reports>/<job>/<run_id>.json``) that has one."""
    from lakelib.run_reports import add_to_report, exists

    for row in rows:
        key = job_run_key(row)
        uri = join(config.lake.reports, row["job"], f"{row['run_id']}.json")
        if key is not None and key in usage and exists(uri, s3_client):
            add_to_report(uri, {"billed": dict(usage[key])}, s3_client)


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
