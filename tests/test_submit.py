"""scripts/submit.sh against moto's server with the real aws CLI: what lands in S3 and on the cluster."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from tests.conftest import REPO

SUBMIT = REPO / "scripts" / "submit.sh"
BIN = Path(sys.executable).parent
CONFIG = REPO / "conf" / "emr.yaml"


def run_submit(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SUBMIT), *args], capture_output=True, text=True, timeout=timeout, env=env or submit_env()
    )


def submit_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.update(extra)
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture
def cluster(aws):
    """A waiting EMR 7 cluster with a LogUri, and the artifacts bucket."""
    emr = boto3.client("emr", region_name="us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="lake-artifacts")
    response = emr.run_job_flow(
        Name="lakelib-test",
        ReleaseLabel="emr-7.5.0",
        LogUri="s3://lake-logs/emr/",
        Applications=[{"Name": "Spark"}],
        Instances={
            "MasterInstanceType": "m5.xlarge",
            "SlaveInstanceType": "m5.xlarge",
            "InstanceCount": 2,
            "KeepJobFlowAliveWhenNoSteps": True,
        },
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )
    return {"id": response["JobFlowId"], "emr": emr, "s3": s3}


def keys(s3, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def submit_args(cluster_id: str, *extra: str) -> list[str]:
    return [
        "emr", "--cluster-id", cluster_id, "--artifacts", "s3://lake-artifacts/emr", *extra,
        "json_to_parquet", "--config", str(CONFIG), "--date", "2024-01-02",
    ]


def test_submit_uploads_artifacts_and_adds_one_cluster_mode_step(cluster):
    done = run_submit(*submit_args(cluster["id"], "--name", "nightly 2024-01-02", "--conf", "spark.executor.cores=4"))
    assert done.returncode == 0, done.stderr
    step_id = done.stdout.strip()

    steps = cluster["emr"].list_steps(ClusterId=cluster["id"])["Steps"]
    assert [s["Id"] for s in steps] == [step_id]
    step = steps[0]
    assert step["Name"] == "nightly 2024-01-02"
    assert step["ActionOnFailure"] == "CONTINUE"
    assert step["Config"]["Jar"] == "command-runner.jar"
    args = step["Config"]["Args"]
    assert args[:5] == ["spark-submit", "--deploy-mode", "cluster", "--master", "yarn"]
    assert args[args.index("--conf") + 1] == "spark.executor.cores=4"

    uploaded = keys(cluster["s3"], "lake-artifacts")
    pyfiles = args[args.index("--py-files") + 1]
    script = next(a for a in args if a.endswith("/jobs/json_to_parquet.py"))
    config = args[args.index(script) + 2]
    assert args[args.index(script) + 1:] == ["--config", config, "--date", "2024-01-02"]
    for uri in (pyfiles, script, config):
        assert uri.startswith("s3://lake-artifacts/emr/"), uri
        assert uri[len("s3://lake-artifacts/"):] in uploaded
    assert any(k.endswith("-py3-none-any.whl") for k in uploaded)
    assert len(uploaded) == 4
    # the uploaded copies are the local files, byte for byte
    body = cluster["s3"].get_object(Bucket="lake-artifacts", Key=config[len("s3://lake-artifacts/"):])["Body"].read()
    assert body == CONFIG.read_bytes()
    body = cluster["s3"].get_object(Bucket="lake-artifacts", Key=script[len("s3://lake-artifacts/"):])["Body"].read()
    assert body == (REPO / "jobs" / "json_to_parquet.py").read_bytes()


def test_rerun_with_the_same_sources_reuses_the_same_artifacts(cluster):
    first = run_submit(*submit_args(cluster["id"]))
    second = run_submit(*submit_args(cluster["id"]))
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.strip() != second.stdout.strip()
    steps = cluster["emr"].list_steps(ClusterId=cluster["id"])["Steps"]
    assert len(steps) == 2
    assert steps[0]["Config"]["Args"] == steps[1]["Config"]["Args"]
    assert len(keys(cluster["s3"], "lake-artifacts")) == 4


def test_dry_run_prints_the_step_and_sends_nothing(cluster):
    done = run_submit(*submit_args(cluster["id"], "--dry-run"))
    assert done.returncode == 0, done.stderr
    (step,) = json.loads(done.stdout)
    assert step["Type"] == "CUSTOM_JAR" and step["Jar"] == "command-runner.jar"
    assert "--deploy-mode" in step["Args"]
    assert cluster["emr"].list_steps(ClusterId=cluster["id"])["Steps"] == []
    assert keys(cluster["s3"], "lake-artifacts") == []


def test_emr_8_cluster_gets_s3a_uris(aws):
    emr = boto3.client("emr", region_name="us-east-1")
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="lake-artifacts")
    cluster_id = emr.run_job_flow(
        Name="spark4", ReleaseLabel="emr-spark-8.0.0",
        Instances={"MasterInstanceType": "m5.xlarge", "InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    done = run_submit(*submit_args(cluster_id))
    assert done.returncode == 0, done.stderr
    args = emr.list_steps(ClusterId=cluster_id)["Steps"][0]["Config"]["Args"]
    assert args[args.index("--py-files") + 1].startswith("s3a://lake-artifacts/")
    assert any(a.startswith("s3a://") and a.endswith("/jobs/json_to_parquet.py") for a in args)
    assert args[args.index("--config") + 1].startswith("s3://"), "the config is read with boto3, not Hadoop"


def test_unknown_cluster_is_one_clear_line(cluster):
    done = run_submit(*submit_args("j-DOESNOTEXIST"))
    assert done.returncode != 0
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("submit: error: cluster j-DOESNOTEXIST"), done.stderr
    assert keys(cluster["s3"], "lake-artifacts") == []


def test_missing_bucket_is_one_clear_line(cluster):
    args = submit_args(cluster["id"])
    args[args.index("s3://lake-artifacts/emr")] = "s3://no-such-bucket/emr"
    done = run_submit(*args)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "bucket no-such-bucket" in lines[0], done.stderr
    assert cluster["emr"].list_steps(ClusterId=cluster["id"])["Steps"] == []


def test_missing_aws_cli_is_one_clear_line(cluster, tmp_path):
    # a PATH with this venv's python3 but no aws
    (tmp_path / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (tmp_path / "python3").chmod(0o755)
    env = submit_env(PATH=f"{tmp_path}{os.pathsep}/usr/bin{os.pathsep}/bin")
    if shutil.which("aws", path=env["PATH"]):
        pytest.skip("an aws CLI is installed system-wide")
    done = run_submit(*submit_args(cluster["id"]), env=env)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "submit: error: the aws CLI is not on PATH (pip install awscli, or install AWS CLI v2)"
    ]


def test_bad_job_or_config_is_refused_before_anything_is_sent(cluster, tmp_path):
    done = run_submit("emr", "--cluster-id", cluster["id"], "--artifacts", "s3://lake-artifacts/emr", "nope",
                      "--config", str(CONFIG))
    assert done.returncode == 2 and "unknown job 'nope'" in done.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("lake: {raw: s3://lake-raw/x}\n")
    done = run_submit("emr", "--cluster-id", cluster["id"], "--artifacts", "s3://lake-artifacts/emr",
                      "json_to_parquet", "--config", str(bad))
    assert done.returncode == 2 and "lake.tables" in done.stderr, done.stderr
    assert keys(cluster["s3"], "lake-artifacts") == []
    assert cluster["emr"].list_steps(ClusterId=cluster["id"])["Steps"] == []


def _set_step_state(cluster_id: str, state: str) -> None:
    """Move the (only) step on moto's in-process backend: moto keeps steps RUNNING forever."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.emr.models import emr_backends

    for step in emr_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].clusters[cluster_id].steps:
        step.state = state


@pytest.mark.parametrize("final, status", [("COMPLETED", 0), ("FAILED", 1)])
def test_wait_follows_the_step_to_its_end(cluster, final, status):
    proc = subprocess.Popen(
        ["bash", str(SUBMIT), *submit_args(cluster["id"], "--wait", "--poll-seconds", "0.2")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=submit_env(),
    )
    try:
        deadline = time.monotonic() + 60
        while not cluster["emr"].list_steps(ClusterId=cluster["id"])["Steps"]:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(0.5)
        assert proc.poll() is None, "--wait returned while the step was still RUNNING"
        _set_step_state(cluster["id"], final)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    step_id = cluster["emr"].list_steps(ClusterId=cluster["id"])["Steps"][0]["Id"]
    assert proc.returncode == status, err
    assert out.strip() == step_id
    if final == "FAILED":
        assert err.strip().splitlines()[-1] == (
            f"submit: error: step {step_id} FAILED; logs: s3://lake-logs/emr/{cluster['id']}/steps/{step_id}/"
        )


def test_local_runs_the_job_with_lakelib_importable_and_returns_its_status(tmp_path):
    # A copy of the script in a tiny checkout whose job only reports what it sees (no SparkContext: quick).
    (tmp_path / "scripts").mkdir()
    (tmp_path / "jobs").mkdir()
    shutil.copy(SUBMIT, tmp_path / "scripts" / "submit.sh")
    (tmp_path / "lakelib").symlink_to(REPO / "lakelib")
    (tmp_path / "jobs" / "probe.py").write_text(
        "import json, os, sys\nimport lakelib\n"
        "print(json.dumps({'lakelib': lakelib.__file__, 'python': os.environ.get('PYSPARK_PYTHON'),"
        " 'args': sys.argv[1:]}))\nsys.exit(3)\n"
    )
    done = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "submit.sh"), "local", "probe", "--set", "a=b c", "--x"],
        capture_output=True, text=True, timeout=180, env=submit_env(), cwd=tmp_path,
    )
    assert done.returncode == 3, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["lakelib"].startswith(str(tmp_path / "lakelib"))
    assert seen["args"] == ["--set", "a=b c", "--x"]
    assert subprocess.run([seen["python"], "-c", "import pyspark"]).returncode == 0
    unknown = run_submit("local", "no_such_job")
    assert unknown.returncode == 2 and unknown.stderr.startswith("submit: error: unknown job 'no_such_job'")
