"""scripts/submit.sh against moto's server with the real aws CLI: what lands in S3 and on the cluster."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import boto3
import pytest

from lakelib import submit
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


def popen_waiting(command: list[str], tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """Start a --wait submission; its stderr goes to a file the test reads while it runs."""
    err_file = tmp_path / f"stderr-{time.monotonic_ns()}.txt"
    with err_file.open("w") as handle:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=handle, text=True, env=submit_env())
    return proc, err_file


def _wait_until(predicate, proc) -> None:
    deadline = time.monotonic() + 90
    while not predicate():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.2)


def reported_running(err_file: Path, proc: subprocess.Popen) -> None:
    """Wait until --wait has printed a RUNNING state (the run is then still running)."""
    _wait_until(lambda: " RUNNING" in err_file.read_text(), proc)
    assert proc.poll() is None, "--wait returned while the run was still RUNNING"


@pytest.mark.parametrize("final, status", [("COMPLETED", 0), ("FAILED", 1)])
def test_wait_follows_the_step_to_its_end(cluster, final, status, tmp_path):
    proc, err_file = popen_waiting(["bash", str(SUBMIT), *submit_args(cluster["id"], "--wait", "--poll-seconds", "0.2")],
                                   tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not cluster["emr"].list_steps(ClusterId=cluster["id"])["Steps"]:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        reported_running(err_file, proc)
        _set_step_state(cluster["id"], final)
        out, _ = proc.communicate(timeout=60)
        err = err_file.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    step_id = cluster["emr"].list_steps(ClusterId=cluster["id"])["Steps"][0]["Id"]
    assert proc.returncode == status, err
    assert out.strip() == step_id
    assert f"] step {step_id} RUNNING" in err and f"] step {step_id} {final}" in err
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


# --------------------------------------------------------------------------------------------------- EMR Serverless

ROLE = "arn:aws:iam::123456789012:role/lake-serverless"


@pytest.fixture
def application(aws):
    """An EMR Serverless Spark application on moto's server, and the artifacts bucket."""
    client = boto3.client("emr-serverless", region_name="us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="lake-artifacts")
    app_id = client.create_application(name="lake", releaseLabel="emr-7.5.0", type="SPARK")["applicationId"]
    return {"id": app_id, "client": client, "s3": s3}


def serverless_args(app_id: str, *extra: str, config: Path = CONFIG, job_args: tuple[str, ...] = ()) -> list[str]:
    return [
        "serverless", "--application-id", app_id, "--execution-role-arn", ROLE,
        "--artifacts", "s3://lake-artifacts/emr", *extra,
        "json_to_parquet", "--config", str(config), *(job_args or ("--date", "2024-01-02")),
    ]


def moto_job_runs(app_id: str) -> list:
    """The job runs on moto's in-process backend (its ListJobRuns fails for an application without runs)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.emrserverless.models import emrserverless_backends

    return emrserverless_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].job_runs.get(app_id, [])


def only_run(application) -> dict:
    (listed,) = application["client"].list_job_runs(applicationId=application["id"])["jobRuns"]
    return application["client"].get_job_run(applicationId=application["id"], jobRunId=listed["id"])["jobRun"]


def test_serverless_uploads_and_starts_one_job_run(application):
    secret = "spark.hadoop.fs.s3a.secret.key=hunter2"
    done = run_submit(*serverless_args(application["id"], "--conf", "spark.executor.cores=4",
                                       job_args=("--date", "2024-01-02", "--set", secret)))
    assert done.returncode == 0, done.stderr
    run = only_run(application)
    assert done.stdout.strip() == run["jobRunId"]
    assert run["executionRole"] == ROLE
    driver = run["jobDriver"]["sparkSubmit"]
    uploaded = keys(application["s3"], "lake-artifacts")
    assert driver["entryPoint"].endswith("/jobs/json_to_parquet.py")
    params = driver["sparkSubmitParameters"].split()
    assert params[0] == "--py-files" and params[2:4] == ["--conf", "spark.executor.cores=4"]
    assert params[4:] == ["--conf", "spark.lakelib.logUri=s3://lake-artifacts/emr/logs/"], "for the provenance"
    config = driver["entryPointArguments"][1]
    assert driver["entryPointArguments"] == ["--config", config, "--date", "2024-01-02", "--set", secret]
    for uri in (driver["entryPoint"], params[1], config):
        assert uri.startswith("s3://lake-artifacts/emr/") and uri[len("s3://lake-artifacts/"):] in uploaded
    logs = run["configurationOverrides"]["monitoringConfiguration"]["s3MonitoringConfiguration"]["logUri"]
    assert logs == "s3://lake-artifacts/emr/logs/"
    assert run["name"].startswith("lakelib json_to_parquet --config s3://") and "hunter2" not in run["name"]
    assert "hunter2" not in done.stderr
    assert "spark.hadoop.fs.s3a.secret.key=*********(redacted): its secret is sent" in done.stderr


def test_serverless_dry_run_prints_the_request_redacted_and_sends_nothing(application):
    done = run_submit(*serverless_args(application["id"], "--dry-run", "--log-uri", "s3://lake-logs/serverless/",
                                       job_args=("--set", "a.password=pw")))
    assert done.returncode == 0, done.stderr
    request = json.loads(done.stdout)
    assert request["applicationId"] == application["id"] and request["executionRoleArn"] == ROLE
    assert request["jobDriver"]["sparkSubmit"]["entryPointArguments"][-1] == "a.password=*********(redacted)"
    logs = request["configurationOverrides"]["monitoringConfiguration"]["s3MonitoringConfiguration"]["logUri"]
    assert logs == "s3://lake-logs/serverless/"
    assert keys(application["s3"], "lake-artifacts") == []
    assert moto_job_runs(application["id"]) == []


JDBC = "sink.url=jdbc:postgresql://db/lake?user=etl&password=hunter2"


@pytest.mark.parametrize("mode", ["emr", "serverless"])
def test_dry_runs_hide_secrets_in_conf_values_and_names(cluster, application, mode):
    """Secrets in --conf values (sparkSubmitParameters on Serverless), inside a value (a JDBC URL's password) and
    after a secret option in a name (--password -VALUE) are hidden in what --dry-run prints."""
    own = ["--conf", "spark.hadoop.fs.s3a.secret.key=hunter2", "--name", "nightly --password -hunter2", "--dry-run"]
    if mode == "emr":
        args = submit_args(cluster["id"], *own) + ["--set", JDBC]
    else:
        args = serverless_args(application["id"], *own, job_args=("--date", "2024-01-02", "--set", JDBC))
    done = run_submit(*args)
    assert done.returncode == 0, done.stderr
    assert "hunter2" not in done.stdout + done.stderr
    printed = json.loads(done.stdout)
    if mode == "emr":
        (step,) = printed
        name, params, job_args = step["Name"], " ".join(step["Args"]), step["Args"]
    else:
        driver = printed["jobDriver"]["sparkSubmit"]
        name, params, job_args = printed["name"], driver["sparkSubmitParameters"], driver["entryPointArguments"]
    assert name == "nightly --password *********(redacted)"
    assert "--conf spark.hadoop.fs.s3a.secret.key=*********(redacted)" in params
    assert job_args[-1] == "sink.url=jdbc:postgresql://db/lake?user=etl&password=*********(redacted)"


def test_an_error_line_quoting_a_secret_argument_hides_it(application):
    done = run_submit(*serverless_args(application["id"], "--conf", "fs.s3a.password.hunter2", "--dry-run"))
    assert done.returncode == 2 and "hunter2" not in done.stderr
    assert done.stderr.strip() == "submit: error: --conf '*********(redacted)': expected key=value"


def test_serverless_unknown_application_is_one_clear_line(application):
    done = run_submit(*serverless_args("00nosuchapp"))
    assert done.returncode != 0 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("submit: error: application 00nosuchapp"), done.stderr


@pytest.mark.parametrize("final, status", [("SUCCESS", 0), ("FAILED", 1), ("CANCELLED", 1)])
def test_serverless_wait_follows_the_run_to_its_final_state(application, monkeypatch, final, status, tmp_path):
    from moto.emrserverless import models

    monkeypatch.setattr(models, "JOB_STATUS", "RUNNING")  # moto's runs are born SUCCESS
    proc, err_file = popen_waiting(
        ["bash", str(SUBMIT), *serverless_args(application["id"], "--wait", "--poll-seconds", "0.2")], tmp_path)
    try:
        deadline = time.monotonic() + 90
        while not moto_job_runs(application["id"]):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        reported_running(err_file, proc)
        run = moto_job_runs(application["id"])[0]
        run.state, run.state_details = final, ("Job failed, please check complete logs" if status else None)
        out, _ = proc.communicate(timeout=60)
        err = err_file.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status, err
    assert out.strip() == run.id
    last = err.strip().splitlines()[-1]
    assert f"] job run {run.id} RUNNING" in err and f"] job run {run.id} {final}" in err
    if final == "SUCCESS":
        assert last == f"submit: job run {run.id} SUCCESS"
    else:
        where = f"s3://lake-artifacts/emr/logs/applications/{application['id']}/jobs/{run.id}/SPARK_DRIVER/stderr.gz"
        details = ": Job failed, please check complete logs" if status else ""
        assert last == f"submit: error: job run {run.id} {final}{details}; driver stderr: {where}"


def test_serverless_run_replays_from_the_uploaded_artifacts_without_lakelib_or_pyyaml(application, tmp_path):
    """Download what the job run names, and spark-submit it as EMR Serverless would, on a Python that has PySpark
    (Spark's own zips) and boto3 only: lakelib and PyYAML can only come from the uploaded --py-files zip."""
    from lakelib.sample import SampleSpec, generate

    lake = tmp_path / "lake"
    generate(SampleSpec(out=str(lake / "raw"), sources=1, days=1, events_per_day=40, files_per_day=1,
                        start=date(2026, 1, 1)))
    config = tmp_path / "replay.yaml"
    config.write_text(
        "lake:\n"
        + "".join(f"  {k}: file://{lake / k}\n" for k in ("raw", "tables", "quarantine", "reports"))
        + "catalog: {kind: none}\nspark: {spark.sql.shuffle.partitions: 2}\n"
    )
    done = run_submit(*serverless_args(application["id"], "--wait", "--poll-seconds", "0.1", "--allow-local-lake",
                                       config=config,
                                       job_args=("--date", "2026-01-01", "--report", str(tmp_path / "report.json"))))
    assert done.returncode == 0, done.stderr
    driver = only_run(application)["jobDriver"]["sparkSubmit"]
    params = driver["sparkSubmitParameters"].split()

    local = {}
    for uri in (driver["entryPoint"], params[1]):
        key = uri[len("s3://lake-artifacts/"):]
        local[uri] = tmp_path / "artifacts" / key
        local[uri].parent.mkdir(parents=True, exist_ok=True)
        application["s3"].download_file("lake-artifacts", key, str(local[uri]))

    # boto3 and its dependencies, nothing else, on a Python started without site-packages
    only = tmp_path / "boto3-only"
    only.mkdir()
    site = Path(boto3.__file__).parent.parent
    for name in ("boto3", "botocore", "jmespath", "s3transfer", "dateutil", "urllib3", "six.py"):
        (only / name).symlink_to(site / name)
    python = tmp_path / "python-without-site"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    python.chmod(0o755)
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    env = dict(submit_env(PYSPARK_PYTHON=str(python), PYSPARK_DRIVER_PYTHON=str(python), SPARK_HOME=str(spark_home)),
               PYTHONPATH=str(only))
    for module in ("yaml", "lakelib"):
        probe = subprocess.run([str(python), "-c", f"import {module}"], env=env, cwd=tmp_path, capture_output=True)
        assert probe.returncode != 0, f"{module} is importable without the zip"

    replay = [str(spark_home / "bin" / "spark-submit"), "--master", "local[1]", "--py-files", str(local[params[1]]),
              str(local[driver["entryPoint"]]), *driver["entryPointArguments"]]
    ran = subprocess.run(replay, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "succeeded" and report["totals"]["rows_written"] > 0
    assert list((lake / "tables" / "events").rglob("*.parquet"))
    assert driver["entryPointArguments"][1].startswith("s3://lake-artifacts/emr/config/"), "read back with boto3"


# --------------------------------------------------------------------------------------------------- hostile input


def test_artifacts_outside_the_prefix_are_refused_before_anything_is_written(cluster, application, tmp_path):
    for args in (submit_args(cluster["id"]), serverless_args(application["id"])):
        args[args.index("s3://lake-artifacts/emr")] = "s3://lake-artifacts/../../x"
        done = run_submit(*args, env=submit_env(TMPDIR=str(tmp_path)))
        assert done.returncode == 2
        assert done.stderr.strip().splitlines() == [
            "submit: error: 's3://lake-artifacts/../../x': a key may not hold '.', '..' or empty segments"
        ]
    assert keys(cluster["s3"], "lake-artifacts") == [] and list(tmp_path.iterdir()) == []


def test_step_runtime_role_and_secrets(cluster, tmp_path):
    """--execution-role-arn reaches add-steps; a secret --set value stays in the step's args (the job needs it) but
    not in its name, nor in what --dry-run prints."""
    calls = tmp_path / "aws-calls"
    shim = tmp_path / "bin" / "aws"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{calls}"\nexec "{BIN / "aws"}" "$@"\n')
    shim.chmod(0o755)
    env = submit_env(PATH=f"{shim.parent}{os.pathsep}{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    role = "arn:aws:iam::123456789012:role/lake-step"
    secret = "spark.hadoop.fs.s3a.secret.key=hunter2"
    args = submit_args(cluster["id"], "--execution-role-arn", role) + ["--set", secret]
    done = run_submit(*args, env=env)
    assert done.returncode == 0, done.stderr
    (add_steps,) = [line for line in calls.read_text().splitlines() if line.startswith("emr add-steps")]
    assert f"--execution-role-arn {role}" in add_steps
    (step,) = cluster["emr"].list_steps(ClusterId=cluster["id"])["Steps"]
    assert step["Config"]["Args"][-1] == secret
    assert "hunter2" not in step["Name"] and "secret.key=*********(redacted)" in step["Name"]
    dry = run_submit(*submit_args(cluster["id"], "--dry-run") + ["--set", secret])
    assert dry.returncode == 0 and "hunter2" not in dry.stdout + dry.stderr


def test_help_exits_0_and_names_every_mode():
    done = run_submit("--help")
    assert done.returncode == 0 and done.stderr == ""
    assert all(f"scripts/submit.sh {mode}" in done.stdout for mode in ("local", "emr", "serverless"))
    assert run_submit().returncode == 2


# --------------------------------------------------------------------------------------------------- checked first


def lake_submit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The installed console command, ``lake submit``."""
    return subprocess.run([str(BIN / "lake"), "submit", *args], capture_output=True, text=True, timeout=120,
                          env=env or submit_env())


@pytest.mark.parametrize("runner", [run_submit, lake_submit], ids=["submit.sh", "lake submit"])
def test_a_misspelt_job_argument_fails_with_the_jobs_usage_before_any_upload(cluster, runner):
    args = submit_args(cluster["id"])
    args[args.index("--date")] = "--daet"
    done = runner(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("usage: json_to_parquet [-h] --config PATH")
    assert lines[-1] == "json_to_parquet: error: unrecognized arguments: --daet 2024-01-02"
    assert keys(cluster["s3"], "lake-artifacts") == []
    assert cluster["emr"].list_steps(ClusterId=cluster["id"])["Steps"] == []


def _config(tmp_path: Path, lake: str, catalog: str) -> Path:
    path = tmp_path / "lake.yaml"
    path.write_text("lake:\n" + "".join(f"  {k}: {lake}/{k}\n" for k in ("raw", "tables", "quarantine", "reports"))
                    + f"catalog: {catalog}\n")
    return path


@pytest.mark.parametrize("lake, catalog, key", [
    ("file:///data/lake", "{kind: glue, glue: {region: us-east-1}}", "lake.raw: file:///data/lake/raw is on this machine"),
    ("s3://lake", "{kind: spark, metastore: file:///tmp/ms}", "catalog.metastore: file:///tmp/ms is the embedded Derby"),
    ("s3://lake", "{kind: spark}", "catalog.kind: spark is the cluster's own Derby metastore"),
])
def test_a_local_config_is_refused_for_emr_naming_the_key(cluster, tmp_path, lake, catalog, key):
    config = _config(tmp_path, lake, catalog)
    done = run_submit("emr", "--cluster-id", cluster["id"], "--artifacts", "s3://lake-artifacts/emr",
                      "json_to_parquet", "--config", str(config))
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"submit: error: {key}"), line
    assert keys(cluster["s3"], "lake-artifacts") == []
    assert cluster["emr"].list_steps(ClusterId=cluster["id"])["Steps"] == []


def test_spark_catalog_is_accepted_on_a_cluster_with_glue_as_its_metastore(aws, tmp_path):
    emr = boto3.client("emr", region_name="us-east-1")
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="lake-artifacts")
    configurations = json.loads((REPO / "conf" / "emr-7.x-configurations.json").read_text())
    cluster_id = emr.run_job_flow(
        Name="glue", ReleaseLabel="emr-7.5.0", Configurations=configurations,
        Instances={"MasterInstanceType": "m5.xlarge", "InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    config = _config(tmp_path, "s3://lake", "{kind: spark}")
    done = run_submit("emr", "--cluster-id", cluster_id, "--artifacts", "s3://lake-artifacts/emr",
                      "json_to_parquet", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert len(emr.list_steps(ClusterId=cluster_id)["Steps"]) == 1


@pytest.mark.parametrize("runner", [run_submit, lake_submit], ids=["submit.sh", "lake submit"])
def test_dry_run_after_the_job_name_changes_nothing(cluster, application, runner):
    for args in (submit_args(cluster["id"]), serverless_args(application["id"])):
        done = runner(*args, "--dry-run")
        assert done.returncode == 0, done.stderr
        printed = json.loads(done.stdout)
        job_args = printed[0]["Args"] if isinstance(printed, list) else \
            printed["jobDriver"]["sparkSubmit"]["entryPointArguments"]
        assert "--dry-run" not in job_args, "json_to_parquet has no --dry-run: it is the submission's own"
    assert keys(cluster["s3"], "lake-artifacts") == []
    assert cluster["emr"].list_steps(ClusterId=cluster["id"])["Steps"] == []
    assert moto_job_runs(application["id"]) == []


def test_a_jobs_own_dry_run_stays_in_its_arguments_and_nothing_is_sent(cluster):
    done = run_submit("emr", "--cluster-id", cluster["id"], "--artifacts", "s3://lake-artifacts/emr",
                      "compact_partitions", "--config", str(CONFIG), "--table", "events", "--dry-run")
    assert done.returncode == 0, done.stderr
    (step,) = json.loads(done.stdout)
    assert step["Args"][-1] == "--dry-run"
    assert keys(cluster["s3"], "lake-artifacts") == [] and cluster["emr"].list_steps(ClusterId=cluster["id"])["Steps"] == []


def test_serverless_uploads_no_wheel_and_can_log_to_cloudwatch(application):
    done = run_submit(*serverless_args(application["id"], "--cloudwatch-logs", "--cloudwatch-log-group", "/lake"))
    assert done.returncode == 0, done.stderr
    uploaded = keys(application["s3"], "lake-artifacts")
    assert not [k for k in uploaded if k.endswith(".whl")] and len(uploaded) == 3
    monitoring = only_run(application)["configurationOverrides"]["monitoringConfiguration"]
    assert monitoring["cloudWatchLoggingConfiguration"] == {"enabled": True, "logGroupName": "/lake"}


# --------------------------------------------------------------------------------------------------- --wait reports


def _put_log(s3, uri: str, text: str) -> None:
    import gzip

    bucket, key = uri[len("s3://"):].split("/", 1)
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    if bucket not in buckets:
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(text.encode()))


STEP_STDERR = (
    "26/01/02 03:04:01 INFO Client: Submitted application application_1767322800000_0003\n"
    "26/01/02 03:04:12 INFO Client: Application report for application_1767322800000_0003 (state: FINISHED)\n"
    'Exception in thread "main" org.apache.spark.SparkException: Application finished with failed status\n'
)
DRIVER_STDERR = (
    "26/01/02 03:04:05 INFO SparkContext: Running Spark version 3.5.1\n"
    "03:04:10 report: s3://lake-reports/reports/json_to_parquet/json_to_parquet-20260102T030405Z-ab12cd34.json\n"
    "03:04:10 json_to_parquet failed in 5.0 s\n"
    "26/01/02 03:04:11 INFO SparkContext: Successfully stopped SparkContext\n"
    "json_to_parquet: error: no raw data for web on 2024-01-02\n"
)


def test_wait_on_a_step_prints_its_states_and_the_drivers_last_lines(cluster, tmp_path):
    proc, err_file = popen_waiting(["bash", str(SUBMIT), *submit_args(cluster["id"], "--wait", "--poll-seconds", "0.2")],
                                   tmp_path)
    try:
        _wait_until(lambda: cluster["emr"].list_steps(ClusterId=cluster["id"])["Steps"], proc)
        step_id = cluster["emr"].list_steps(ClusterId=cluster["id"])["Steps"][0]["Id"]
        where = f"s3://lake-logs/emr/{cluster['id']}/steps/{step_id}/"
        _put_log(cluster["s3"], where + "stderr.gz", STEP_STDERR)
        _put_log(cluster["s3"], where + "stdout.gz", "json_to_parquet: 0 partitions\n")
        driver = (f"s3://lake-logs/emr/{cluster['id']}/containers/application_1767322800000_0003/"
                  "container_1767322800000_0003_01_000001/")
        _put_log(cluster["s3"], driver + "stderr.gz", DRIVER_STDERR)
        _put_log(cluster["s3"], driver.replace("_000001/", "_000002/") + "stderr.gz", "an executor's log\n")
        reported_running(err_file, proc)
        _set_step_state(cluster["id"], "INTERRUPTED")
        out, _ = proc.communicate(timeout=60)
        err = err_file.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    lines = err.splitlines()
    states = [line.split("] ", 1)[1] for line in lines if line.startswith("submit: [")]
    assert states == [f"step {step_id} RUNNING", f"step {step_id} INTERRUPTED"], "INTERRUPTED is final"
    assert f"submit: last lines of {where}stdout.gz:" in lines and "  | json_to_parquet: 0 partitions" in lines
    assert f"submit: last lines of {where}stderr.gz:" in lines
    assert "  | Exception in thread \"main\" org.apache.spark.SparkException: Application finished with failed status" \
        in lines
    assert f"submit: last lines of {driver}stderr.gz:" in lines, "the driver's own log, in cluster mode"
    assert "  | json_to_parquet: error: no raw data for web on 2024-01-02" in lines
    assert "  | an executor's log" not in lines
    assert not [line for line in lines if "INFO SparkContext" in line], "Spark's own lines are left out"
    assert ("submit: run report: s3://lake-reports/reports/json_to_parquet/"
            "json_to_parquet-20260102T030405Z-ab12cd34.json") in lines
    assert lines[-1] == f"submit: error: step {step_id} INTERRUPTED; logs: {where}"


def billed_wait(application, tmp_path, *extra: str, config: Path = CONFIG, before_end=None) -> tuple:
    """``lake submit serverless --wait`` (at --price-vcpu-hour 0.1) of a job run that moto bills 2 vCPU-hours,
    8 GB-hours of memory and 10 GB-hours of storage; ``before_end(run)`` runs while it is RUNNING. The job run and
    the submission's stderr, once it returned 0."""
    proc, err_file = popen_waiting(
        [str(BIN / "lake"), "submit", *serverless_args(application["id"], "--wait", "--poll-seconds", "0.2",
                                                        "--price-vcpu-hour", "0.1", *extra, config=config)], tmp_path)
    try:
        _wait_until(lambda: moto_job_runs(application["id"]), proc)
        run = moto_job_runs(application["id"])[0]
        if before_end is not None:
            before_end(run)
        run.billed_resource_utilization = {"vCPUHour": 2.0, "memoryGBHour": 8.0, "storageGBHour": 10.0}
        reported_running(err_file, proc)
        run.state = "SUCCESS"
        proc.communicate(timeout=300)
        err = err_file.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    return run, err


def test_wait_on_a_job_run_prints_billed_use_and_cost_and_adds_them_to_the_report(application, monkeypatch,
                                                                                  tmp_path):
    from moto.emrserverless import models

    monkeypatch.setattr(models, "JOB_STATUS", "RUNNING")
    report_uri = "s3://lake-reports/reports/json_to_parquet/r1.json"
    s3 = application["s3"]
    s3.create_bucket(Bucket="lake-reports")
    s3.put_object(Bucket="lake-reports", Key="reports/json_to_parquet/r1.json",
                  Body=json.dumps({"job": "json_to_parquet", "run_id": "r1", "status": "succeeded"}).encode())

    def driver_log(run) -> None:
        where = f"s3://lake-artifacts/emr/logs/applications/{application['id']}/jobs/{run.id}/SPARK_DRIVER/"
        _put_log(s3, where + "stderr.gz", f"03:04:10 report: {report_uri}\n03:04:10 json_to_parquet succeeded\n")

    run, err = billed_wait(application, tmp_path, before_end=driver_log)
    lines = err.splitlines()
    assert "  | 03:04:10 json_to_parquet succeeded" in lines
    assert f"submit: run report: {report_uri}" in lines
    cost = 2.0 * 0.1 + 8.0 * 0.0057785 + 10.0 * 0.000111
    assert (f"submit: billed 2.000 vCPU-hours, 8.000 GB-hours memory, 10.000 GB-hours storage: ${cost:.4f} "
            "at the prices given") in lines
    assert lines[-1] == f"submit: job run {run.id} SUCCESS"
    report = json.loads(s3.get_object(Bucket="lake-reports", Key="reports/json_to_parquet/r1.json")["Body"].read())
    assert report["billed"]["cost_usd"] == pytest.approx(cost) and report["billed"]["vcpu_hours"] == 2.0
    assert report["status"] == "succeeded"


def test_wait_records_the_billed_use_in_the_runs_lake_runs_row(application, spark, monkeypatch, tmp_path):
    """A replay with a lake on this machine: the job run's lake_runs row (recorded by the job, here by the test)
    gets its billed use and cost from --wait, through the publish protocol, and so does its report."""
    from moto.emrserverless import models

    from lakelib import lake
    from lakelib.config import load_config
    from tests.test_run_costs import COST, record, serverless

    monkeypatch.setattr(models, "JOB_STATUS", "RUNNING")
    config_file = tmp_path / "replay.yaml"
    config_file.write_text(f"lake: {{raw: {tmp_path}/raw, tables: {tmp_path}/tables, quarantine: {tmp_path}/q, "
                           f"reports: {tmp_path}/reports}}\ncatalog: {{kind: none}}\n")
    config = load_config(config_file)
    runs = {}

    def recorded(run) -> None:  # what the job does at its end
        runs["earlier"] = record(spark, config, "json_to_parquet", serverless(application["id"], "00earlier"))
        runs["this"] = record(spark, config, "json_to_parquet", serverless(application["id"], run.id))

    run, err = billed_wait(application, tmp_path, "--allow-local-lake", config=config_file, before_end=recorded)
    earlier, report = runs["earlier"], runs["this"]
    lines = err.splitlines()
    assert f"submit: lake_runs: billed use and cost recorded for run {report.run_id}" in lines
    assert lines[-1] == f"submit: job run {run.id} SUCCESS"
    rows = {r["run_id"]: r for r in lake.runs(spark, config).collect()}
    assert sorted(rows) == sorted([earlier.run_id, report.run_id])
    assert rows[report.run_id]["cost_usd"] == pytest.approx(COST) and rows[report.run_id]["billed_vcpu_hours"] == 2.0
    assert rows[earlier.run_id]["cost_usd"] is None, "another run's row is left as it was"
    written = json.loads((tmp_path / "reports" / "json_to_parquet" / f"{report.run_id}.json").read_text())
    assert written["billed"]["cost_usd"] == pytest.approx(COST)


def test_wait_says_why_the_row_is_not_updated_when_spark_here_cannot_reach_the_lake():
    from lakelib.config import load_config

    line = submit.record_billed(load_config(CONFIG), ("00a", "00r"), {"cost_usd": 0.1})
    assert line.startswith("lake_runs not updated: Spark on this machine does not read s3://")
    assert line.endswith("lake runs --refresh-cost fills it where Spark reaches the lake (the cluster, EMR Studio)")
    assert submit.record_billed(None, ("00a", "00r"), {}) == \
        "lake_runs not updated: --config is not a local file; lake runs --refresh-cost fills it later"
