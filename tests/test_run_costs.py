"""The billed use of EMR Serverless runs in lake_runs: lake runs --refresh-cost (and lakelib.runs.fill_billed, which
lake submit --wait uses) against moto's EMR Serverless, rewriting lake_runs through the publish protocol."""
from __future__ import annotations

import json

import boto3
import pytest

from lakelib import lake
from lakelib.cli import main
from lakelib.config import load_config
from lakelib.report import RunReport, write_report
from lakelib.runs import fill_billed, record_run
from tests.test_lake import write_config

BILLED = {"vCPUHour": 2.0, "memoryGBHour": 8.0, "storageGBHour": 10.0}
COST = 2.0 * 0.1 + 8.0 * 0.0057785 + 10.0 * 0.000111  # at --price-vcpu-hour 0.1, list prices otherwise


def moto_run(app_id: str, job_run_id: str):
    """A job run on moto's in-process backend (moto bills nothing: the test sets what GetJobRun returns)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.emrserverless.models import emrserverless_backends

    runs = emrserverless_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].job_runs[app_id]
    return next(r for r in runs if r.id == job_run_id)


def start_job_run(client, app_id: str) -> str:
    return client.start_job_run(applicationId=app_id, executionRoleArn="arn:aws:iam::123456789012:role/r",
                                jobDriver={"sparkSubmit": {"entryPoint": "s3://b/j.py"}})["jobRunId"]


def record(spark, config, job: str, where: dict, billed: dict | None = None) -> RunReport:
    """A finished run that ran ``where`` (provenance), with its report and its lake_runs row."""
    report = RunReport(job)
    report.extra["provenance"] = where
    if billed:
        report.extra["billed"] = billed
    report.finish("succeeded")
    write_report(report, config.lake.reports, None, None)
    assert record_run(spark, config, report)
    return report


def serverless(app_id: str, job_run_id: str) -> dict:
    return {"serverless_application_id": app_id, "serverless_job_run_id": job_run_id}


@pytest.mark.parametrize("kind", ["none", "spark", "glue"])
def test_refresh_cost_fills_the_rows_without_cost_from_get_job_run(spark, tmp_path, aws, capsys, kind):
    path = write_config(tmp_path, kind, **({"endpoint": aws} if kind == "glue" else {}))
    config = load_config(path)
    client = boto3.client("emr-serverless", region_name="us-east-1")
    app = client.create_application(name="lake", releaseLabel="emr-7.5.0", type="SPARK")["applicationId"]
    done, running, priced = (start_job_run(client, app) for _ in range(3))
    moto_run(app, done).billed_resource_utilization = BILLED
    moto_run(app, running).state = "RUNNING"
    moto_run(app, priced).billed_resource_utilization = {"vCPUHour": 99.0}
    filled = record(spark, config, "json_to_parquet", serverless(app, done))
    left = record(spark, config, "json_to_parquet", serverless(app, running))
    kept = record(spark, config, "json_to_parquet", serverless(app, priced), {"vcpu_hours": 1.0, "cost_usd": 0.05})
    other = record(spark, config, "event_tables", {"emr_cluster_id": "j-1"})

    assert main(["runs", "--config", str(path), "--refresh-cost", "--price-vcpu-hour", "0.1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"{filled.run_id}: billed 2.000 vCPU-hours, 8.000 GB-hours memory, 10.000 GB-hours storage: "
                      f"${COST:.4f} at the prices given")
    assert out[1] == "billed use filled in for 1 run(s)"

    rows = {r["run_id"]: r for r in lake.runs(spark, config).collect()}
    assert sorted(rows) == sorted(r.run_id for r in (filled, left, kept, other)), "every row is still there, once"
    got = rows[filled.run_id]
    assert (got["billed_vcpu_hours"], got["billed_memory_gb_hours"], got["billed_storage_gb_hours"]) == (2.0, 8.0, 10.0)
    assert got["cost_usd"] == pytest.approx(COST) and got["serverless_job_run_id"] == done
    assert rows[left.run_id]["cost_usd"] is None, "a run not final yet is left for later"
    assert rows[kept.run_id]["cost_usd"] == 0.05, "a cost already known is kept"
    assert rows[other.run_id]["cost_usd"] is None and rows[other.run_id]["emr_cluster_id"] == "j-1"
    report = json.loads((tmp_path / "reports" / "json_to_parquet" / f"{filled.run_id}.json").read_text())
    assert report["billed"]["cost_usd"] == pytest.approx(COST) and report["billed"]["price_source"] == \
        "the prices given"
    assert not list((tmp_path / "tables" / "_staging" / "lake_runs").glob("*")), "no staging folder is left"

    # a run recorded after the rewrite lands beside the rewritten rows; a second refresh has nothing to do
    later = record(spark, config, "json_to_parquet", {"emr_cluster_id": "j-2"})
    assert main(["runs", "--config", str(path), "--refresh-cost"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "billed use filled in for 0 run(s)"
    rows = {r["run_id"]: r for r in lake.runs(spark, config).collect()}
    assert len(rows) == 5 and later.run_id in rows and rows[filled.run_id]["cost_usd"] == pytest.approx(COST)


def test_fill_billed_rewrites_only_the_partitions_of_the_rows_it_fills(spark, tmp_path):
    config = load_config(write_config(tmp_path, "none"))
    first = record(spark, config, "json_to_parquet", serverless("00a", "00r"))
    second = record(spark, config, "event_tables", serverless("00a", "00s"))
    untouched = tmp_path / "tables" / "lake_runs" / "job=event_tables" / f"{second.run_id}.parquet"
    before = untouched.stat().st_mtime_ns
    usage = {"vcpu_hours": 1.0, "memory_gb_hours": 2.0, "storage_gb_hours": 0.0, "cost_usd": 0.07}
    (changed,) = fill_billed(spark, config, {("00a", "00r"): usage, ("00b", "00x"): usage})
    assert changed["run_id"] == first.run_id and changed["cost_usd"] == 0.07
    assert untouched.stat().st_mtime_ns == before, "job=event_tables is not rewritten"
    assert fill_billed(spark, config, {("00a", "00r"): dict(usage, cost_usd=9.0)}) == [], "filled once"
    costs = {r["run_id"]: r["cost_usd"] for r in lake.runs(spark, config).collect()}
    assert costs == {first.run_id: 0.07, second.run_id: None}


def test_refresh_cost_without_pyspark_names_the_extra(tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_pyspark(name, *args, **kwargs):
        if name.split(".")[0] == "pyspark":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyspark)
    assert main(["runs", "--config", str(write_config(tmp_path, "none")), "--refresh-cost",
                 "--region", "us-east-1"]) == 1
    assert "pip install 'lakelib[spark]'" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["none", "spark"])
def test_a_run_that_finishes_while_its_partition_is_rewritten_keeps_its_row(spark, tmp_path, monkeypatch, kind):
    """fill_billed's switch and a run's append hold one lock: the run waits, then lands in the new version."""
    import threading

    from lakelib.tables import Tables

    config = load_config(write_config(tmp_path, kind))
    billed = record(spark, config, "json_to_parquet", serverless("00a", "00r"))
    late = RunReport("json_to_parquet")
    late.finish("succeeded")
    recorder = threading.Thread(target=record_run, args=(spark, config, late))
    publish = Tables.publish

    def publish_after_a_run_finished(self, *staged):  # a run ends between the rewrite's read and its switch
        recorder.start()
        recorder.join(3.0)  # (it waits for the lock: 3 s, then the switch goes on)
        publish(self, *staged)

    monkeypatch.setattr(Tables, "publish", publish_after_a_run_finished)
    usage = {"vcpu_hours": 1.0, "memory_gb_hours": 2.0, "storage_gb_hours": 0.0, "cost_usd": 0.07}
    assert [r["run_id"] for r in fill_billed(spark, config, {("00a", "00r"): usage})] == [billed.run_id]
    monkeypatch.setattr(Tables, "publish", publish)
    recorder.join(30)
    costs = {r["run_id"]: r["cost_usd"] for r in lake.runs(spark, config).collect()}
    assert costs == {billed.run_id: 0.07, late.run_id: None}, "the late run's row is there, and the billed one"
    assert not (tmp_path / "tables" / "lake_runs" / "_lock").exists()
