"""Where a run ran: the Spark application, the EMR cluster and step or the EMR Serverless application and job run,
the log URI, and the lakelib and Spark versions; the run report's ``provenance`` and columns of ``lake_runs``.

Sources (one line, as found): EMR Serverless sets ``AWS_EMR_SERVERLESS_APPLICATION_ID`` and
``AWS_EMR_SERVERLESS_JOB_RUN_ID`` in the driver's environment; every EMR node has ``/mnt/var/lib/info/job-flow.json``
(``jobFlowId``), and a step's working directory is ``.../steps/<step id>`` (a driver in cluster mode runs in a YARN
container instead, so its step id is known only to ``lake submit --wait``); ``lake submit`` passes the S3 log root
as ``spark.lakelib.logUri``; ``spark.app.id`` is Spark's own.
"""
from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger(__name__)

#: The Spark conf ``lake submit`` sets to the S3 log root: the cluster's ``LogUri`` or the job run's ``logUri``.
LOG_URI_CONF = "spark.lakelib.logUri"
#: Where every EMR node describes its cluster.
JOB_FLOW_JSON = "/mnt/var/lib/info/job-flow.json"
#: The fields, in the order of their ``lake_runs`` columns.
FIELDS = ("spark_application_id", "emr_cluster_id", "emr_step_id", "serverless_application_id",
          "serverless_job_run_id", "log_uri", "lakelib_version", "spark_version")
_STEP_DIR = re.compile(r"(?:^|/)steps/(s-[0-9A-Z]+)(?:/|$)")


def _first(environ: Mapping[str, str], *names: str) -> str | None:
    return next((environ[n] for n in names if environ.get(n)), None)


def _cluster_id(environ: Mapping[str, str], job_flow_json: str) -> str | None:
    found = _first(environ, "EMR_CLUSTER_ID", "AWS_EMR_JOB_FLOW_ID")
    if found or not os.path.isfile(job_flow_json):
        return found
    try:
        return json.loads(Path(job_flow_json).read_text(encoding="utf-8")).get("jobFlowId")
    except (OSError, ValueError):
        return None


def collect(
    spark: Any = None,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
    job_flow_json: str = JOB_FLOW_JSON,
) -> dict[str, str | None]:
    """The provenance of this process's run (``None`` for what does not apply or is not known).

    Parameters
    ----------
    spark
        The run's session (any SparkSession: only ``version`` and ``conf`` are read); ``None`` before Spark started.
    environ, cwd, job_flow_json
        The process's environment, working directory and EMR's cluster file (defaults: this process's).

    Examples
    --------
    >>> where = collect(None, {"AWS_EMR_SERVERLESS_APPLICATION_ID": "00a", "AWS_EMR_SERVERLESS_JOB_RUN_ID": "00r"},
    ...                 cwd="/home/hadoop", job_flow_json="/nonexistent")
    >>> where["serverless_job_run_id"], where["emr_cluster_id"], where["log_uri"]
    ('00r', None, None)
    """
    from lakelib import __version__

    environ = os.environ if environ is None else environ
    conf: dict[str, str | None] = {}
    if spark is not None:
        for key in ("spark.app.id", LOG_URI_CONF):
            try:
                conf[key] = spark.conf.get(key, None)
            except Exception:  # noqa: BLE001 - a session that refuses to say is no reason to fail a run
                log.debug("spark conf %s unreadable", key, exc_info=True)
    application = _first(environ, "AWS_EMR_SERVERLESS_APPLICATION_ID", "EMR_SERVERLESS_APPLICATION_ID")
    job_run = _first(environ, "AWS_EMR_SERVERLESS_JOB_RUN_ID", "EMR_SERVERLESS_JOB_RUN_ID")
    cluster = None if application else _cluster_id(environ, job_flow_json)
    step_dir = _STEP_DIR.search(cwd if cwd is not None else os.getcwd())
    step = _first(environ, "EMR_STEP_ID") or (step_dir.group(1) if step_dir and cluster else None)
    return {
        "spark_application_id": conf.get("spark.app.id"),
        "emr_cluster_id": cluster,
        "emr_step_id": step,
        "serverless_application_id": application,
        "serverless_job_run_id": job_run,
        "log_uri": run_log_uri(conf.get(LOG_URI_CONF), cluster, step, application, job_run),
        "lakelib_version": __version__,
        "spark_version": getattr(spark, "version", None) if spark is not None else None,
    }


def run_log_uri(base: str | None, cluster: str | None, step: str | None, application: str | None,
                job_run: str | None) -> str | None:
    """The run's own log folder under the S3 log root ``base``, as EMR lays it out.

    >>> run_log_uri("s3://l/emr/", "j-1", "s-2", None, None)
    's3://l/emr/j-1/steps/s-2/'
    >>> run_log_uri("s3://l/logs", None, None, "00a", "00r")
    's3://l/logs/applications/00a/jobs/00r/'
    """
    if not base:
        return None
    root = base.rstrip("/")
    if application and job_run:
        return f"{root}/applications/{application}/jobs/{job_run}/"
    if cluster:
        return f"{root}/{cluster}/" + (f"steps/{step}/" if step else "")
    return base
