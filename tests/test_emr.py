"""lakelib.emr: the pure step builders and packaging, and the thin boto3 calls against moto's server."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import pytest

from lakelib import emr, submit
from lakelib.errors import SubmitError, UsageError
from lakelib.redact import redact
from tests.conftest import REPO


def test_step_is_one_cluster_mode_spark_submit_with_conf_before_the_script():
    step = emr.build_spark_step(
        "json_to_parquet",
        "s3://bkt/p/jobs/json_to_parquet.py",
        "s3://bkt/p/lakelib.zip",
        ["--config", "s3://bkt/c/emr.yaml", "--date", "2024-01-02"],
        action_on_failure="CANCEL_AND_WAIT",
        conf=[("spark.executor.cores", "4"), ("spark.sql.shuffle.partitions", "64")],
    )
    assert step == {
        "Name": "lakelib json_to_parquet --config s3://bkt/c/emr.yaml --date 2024-01-02",
        "ActionOnFailure": "CANCEL_AND_WAIT",
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": [
                "spark-submit", "--deploy-mode", "cluster", "--master", "yarn",
                "--py-files", "s3://bkt/p/lakelib.zip",
                "--conf", "spark.executor.cores=4", "--conf", "spark.sql.shuffle.partitions=64",
                "s3://bkt/p/jobs/json_to_parquet.py",
                "--config", "s3://bkt/c/emr.yaml", "--date", "2024-01-02",
            ],
        },
    }
    cli = emr.to_cli_step(step)
    assert cli["Type"] == "CUSTOM_JAR" and cli["Args"] == step["HadoopJarStep"]["Args"]


def test_step_arguments_are_kept_verbatim_and_the_name_is_bounded():
    odd = ["--set", "spark.x=a b;c 'd' \"e\" $HOME `id`"]
    step = emr.build_spark_step("j", "s3://bkt/j.py", "s3://bkt/l.zip", odd * 40)
    assert step["HadoopJarStep"]["Args"][-2:] == odd
    assert len(step["Name"]) == 256


def test_unknown_action_on_failure_and_bad_conf_are_usage_errors():
    with pytest.raises(UsageError, match="TERMINATE_CLUSTER"):
        emr.build_spark_step("j", "s3://bkt/j.py", "s3://bkt/l.zip", [], action_on_failure="EXPLODE")
    with pytest.raises(UsageError, match="key=value"):
        emr.parse_conf(["spark.x"])
    assert emr.parse_conf(["a=b=c"]) == [("a", "b=c")]


def test_config_argument_is_found_and_rewritten_in_both_spellings():
    assert emr.config_argument(["--date", "d", "--config", "c.yaml"]) == "c.yaml"
    assert emr.config_argument(["--config=c.yaml"]) == "c.yaml"
    assert emr.config_argument(["--date", "d"]) is None
    with pytest.raises(UsageError):
        emr.config_argument(["--config"])
    args = ["--config", "c.yaml", "--source", "s1", "--config=c.yaml"]
    assert emr.rewrite_job_args(args, "s3://bkt/c.yaml") == [
        "--config", "s3://bkt/c.yaml", "--source", "s1", "--config=s3://bkt/c.yaml"
    ]
    assert emr.rewrite_job_args(args, None) == args


def test_layout_names_artifacts_by_content():
    a = emr.artifact_layout("s3://bkt/emr/", "json_to_parquet", "0.1.0", "aaaa", "emr.yaml", "c1")
    b = emr.artifact_layout("s3://bkt/emr", "json_to_parquet", "0.1.0", "bbbb", "conf/emr.yaml", "c2")
    assert a.pyfiles == "s3://bkt/emr/lakelib/0.1.0-aaaa/lakelib.zip"
    assert a.wheel == "s3://bkt/emr/lakelib/0.1.0-aaaa/lakelib-0.1.0-py3-none-any.whl"
    assert b.config == "s3://bkt/emr/config/c2/emr.yaml"
    assert {a.prefix, a.config}.isdisjoint({b.prefix, b.config})
    with pytest.raises(UsageError):
        emr.artifact_layout("/local/path", "j", "0.1.0", "aaaa")


def test_scheme_follows_the_release_label():
    assert emr.scheme_for_release("emr-7.12.0") == "s3"
    assert emr.scheme_for_release("emr-6.15.0") == "s3"
    assert emr.scheme_for_release("emr-spark-8.0.0") == "s3a"
    assert emr.scheme_for_release("emr-8.1.0") == "s3a"
    assert emr.with_scheme("s3://bkt/a.zip", "s3a") == "s3a://bkt/a.zip"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """lakelib's wheel from the standard build (python -m build), once for this module."""
    return emr.build_wheel(REPO, tmp_path_factory.mktemp("dist"))


def _declared_package_files() -> set[str]:
    """What pyproject.toml declares: every module of the packages found, and the package data."""
    declared = {p.relative_to(REPO).as_posix() for p in (REPO / "lakelib").rglob("*.py") if "__pycache__" not in p.parts}
    shipped = {"jobs": "*.py", "conf": "*.*", "bootstrap": "*.sh"}  # installed as lakelib.jobs, .examples, .bootstrap
    inside = {"jobs": "jobs", "conf": "examples", "bootstrap": "bootstrap"}
    declared |= {f"lakelib/{inside[d]}/{p.name}" for d, pattern in shipped.items() for p in (REPO / d).glob(pattern)}
    return declared | {"lakelib/py.typed"} | {p.relative_to(REPO).as_posix()
                                              for p in (REPO / "lakelib" / "resources").glob("*.properties")}


def test_wheel_holds_every_declared_file_and_metadata_from_pyproject(wheel, tmp_path):
    import lakelib

    names = set(zipfile.ZipFile(wheel).namelist())
    assert wheel.name == f"lakelib-{lakelib.__version__}-py3-none-any.whl"
    assert _declared_package_files() <= names
    assert "lakelib/resources/log4j2.properties" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "benchmarks/", "jobs/"))]
    assert {"lakelib/jobs/json_to_parquet.py", "lakelib/examples/emr.yaml", "lakelib/bootstrap/install-lakelib.sh"} \
        <= names
    dist_info = f"lakelib-{lakelib.__version__}.dist-info"
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata and f"{dist_info}/licenses/LICENSE" in names
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert any("pyyaml" in r.lower() for r in requires)
    assert not [r for r in requires if "pyspark" in r.lower() and "extra ==" not in r]
    assert "lake = lakelib.cli:main" in zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
    # the standard build is reproducible: same sources, same bytes
    assert emr.build_wheel(REPO, tmp_path).read_bytes() == wheel.read_bytes()


def test_wheel_installs_with_pip_and_never_requires_pyspark(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--no-index", "--target", str(target), str(wheel)],
        check=True, capture_output=True, timeout=120,
    )
    out = subprocess.run(
        [sys.executable, "-c", "import lakelib, lakelib.emr, lakelib.jobs.json_to_parquet; print(lakelib.__file__)"],
        capture_output=True, text=True, check=True, cwd=tmp_path, env={"PYTHONPATH": str(target)},
    ).stdout
    assert out.startswith(str(target))
    assert (target / "bin" / "lake").exists()
    assert not (target / "jobs").exists(), "no top-level jobs package in site-packages"


def test_lake_submit_dry_run_works_from_the_wheel_alone(wheel, tmp_path):
    """Only the wheel and its dependencies (no checkout, no PySpark): lake submit serverless --dry-run checks the
    job's arguments and the wheel's example config, and prints the request of a job run that uses no wheel."""
    import boto3
    import yaml

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--no-index", "--target", str(site), str(wheel)], check=True, capture_output=True, timeout=120)
    for module in (boto3, yaml):
        for path in Path(module.__file__).parent.parent.iterdir():
            top = path.name.split("-")[0].lower()
            wanted = {"boto3", "botocore", "jmespath", "s3transfer", "dateutil", "python_dateutil", "urllib3",
                      "six.py", "yaml", "pyyaml", "_yaml"}
            if top in wanted and not (site / path.name).exists():
                (site / path.name).symlink_to(path)
    config = site / "lakelib" / "examples" / "emr.yaml"
    command = [sys.executable, "-S", "-m", "lakelib.cli", "submit", "serverless", "--application-id", "00app",
               "--execution-role-arn", "arn:aws:iam::123456789012:role/r", "--artifacts", "s3://bkt/emr",
               "json_to_parquet", "--config", str(config), "--date", "2026-01-01", "--dry-run"]
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    request = json.loads(done.stdout)
    assert request["jobDriver"]["sparkSubmit"]["entryPoint"].endswith("/jobs/json_to_parquet.py")
    uploads = [line.split()[-1] for line in done.stderr.splitlines() if line.startswith("submit: would upload")]
    assert sorted(u.rsplit("/", 1)[1] for u in uploads) == ["emr.yaml", "json_to_parquet.py", "lakelib.zip"]
    typo = subprocess.run([*command[:-3], "--daet", "2026-01-01"], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=120)
    assert typo.returncode == 2 and "json_to_parquet: error: unrecognized arguments: --daet" in typo.stderr


def test_the_sdist_holds_the_whole_project_and_its_suite_runs_from_it(tmp_path):
    import shutil
    import tarfile

    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if tracked.returncode != 0 or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    done = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(tmp_path),
                           str(REPO)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (sdist,) = tmp_path.glob("lakelib-*.tar.gz")
    with tarfile.open(sdist) as archive:
        root = archive.getnames()[0].split("/")[0]
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
        archive.extractall(tmp_path)
    missing = [f for f in tracked.stdout.splitlines() if f not in names and f != ".gitignore"]
    assert missing == [], "every tracked file ships, conftest.py and fixtures included"
    unpacked = tmp_path / root
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_config.py"],
                         cwd=unpacked, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(unpacked)))
    assert run.returncode == 0, run.stdout[-2000:]
    assert "passed" in run.stdout.splitlines()[-1]


def test_pyfiles_zip_is_the_wheel_plus_pure_python_pyyaml(wheel, tmp_path):
    first = emr.build_pyfiles_zip(wheel, tmp_path / "a.zip")
    assert emr.build_pyfiles_zip(wheel, tmp_path / "b.zip").read_bytes() == first.read_bytes()
    names = set(zipfile.ZipFile(first).namelist())
    assert set(zipfile.ZipFile(wheel).namelist()) <= names
    assert {"yaml/__init__.py", "yaml/constructor.py"} <= names
    assert not [n for n in names if n.endswith((".so", ".pyd", ".pyc"))]
    assert [n for n in names if n.startswith("pyyaml-") or n.startswith("PyYAML-")]  # its METADATA and license
    assert "lakelib/resources/lakelib-json.jar" in names  # the JSON UDFs (lakelib.json_udfs)
    # python -S: no site-packages, so lakelib, PyYAML and the resources can only come from the zip
    probe = (
        "import sys, os; sys.path.insert(0, sys.argv[1]); import yaml, lakelib.session as s, lakelib.config; "
        "import lakelib.json_udfs as j; "
        "assert yaml.__file__.startswith(sys.argv[1]) and not yaml.__with_libyaml__; "
        "print(yaml.safe_load('a: [1, 2]'), s.quiet_logger_levels()['hive.log'], os.path.getsize(j.jar_path()))"
    )
    done = subprocess.run([sys.executable, "-S", "-c", probe, str(first)], capture_output=True, text=True,
                          cwd=tmp_path, env={})
    assert done.returncode == 0, done.stderr
    jar = (REPO / "lakelib" / "resources" / "lakelib-json.jar").stat().st_size
    assert done.stdout.split() == ["{'a':", "[1,", "2]}", "ERROR", str(jar)]


def test_what_is_shipped_covers_every_requirement_of_the_package():
    """A new dependency fails here until it is either bundled into the zip or known to be on every EMR image."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~ \[;]", r, maxsplit=1)[0].lower() for r in requires}
    assert names == {n.lower() for n in emr.BUNDLED_DEPENDENCIES + emr.PROVIDED_DEPENDENCIES} - {"pyspark"}


def test_dry_run_prints_the_step_with_the_uploads_it_would_make(capsys):
    config = REPO / "conf" / "emr.yaml"
    code = submit.main([
        "emr", "--cluster-id", "j-1", "--artifacts", "s3://bkt/emr", "--scheme", "s3a", "--dry-run",
        "json_to_parquet", "--config", str(config), "--date", "2024-01-02",
    ])
    out, err = capsys.readouterr()
    assert code == 0, err
    (step,) = json.loads(out)
    uploads = [line.split()[-1] for line in err.splitlines() if line.startswith("submit: would upload ")]
    config_uri = step["Args"][step["Args"].index("--config") + 1]
    assert config_uri in uploads
    script = [a for a in step["Args"] if a.endswith("/jobs/json_to_parquet.py")]
    assert len(script) == 1 and script[0].startswith("s3a://bkt/emr/lakelib/")
    assert {uri.split("/")[-1] for uri in uploads} >= {"lakelib.zip", "json_to_parquet.py", "emr.yaml"}


def test_a_job_without_config_is_refused_with_the_jobs_own_usage(capsys):
    code = submit.main(["emr", "--cluster-id", "j-1", "--artifacts", "s3://bkt/e", "--dry-run",
                        "json_to_parquet", "--date", "2024-01-02"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: json_to_parquet") and "the following arguments are required: --config" in err


@pytest.fixture
def cluster(aws):
    client = boto3.client("emr", region_name="us-east-1")
    cluster_id = client.run_job_flow(
        Name="nb", ReleaseLabel="emr-7.5.0", LogUri="s3n://lake-logs/emr/",
        Instances={"MasterInstanceType": "m5.xlarge", "InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    return client, cluster_id


def moto_step(cluster_id: str, monkeypatch, state: str, failure: dict | None = None) -> None:
    """Move the cluster's steps on moto's in-process backend (moto keeps them RUNNING and has no FailureDetails)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.emr.models import Step, emr_backends

    original = Step.status.fget
    if failure is not None:
        monkeypatch.setattr(Step, "status", property(lambda self: {**original(self), "FailureDetails": failure}))
    for step in emr_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].clusters[cluster_id].steps:
        step.state = state


def test_notebook_submission_adds_the_step_with_its_role_and_waits_with_the_service_waiter(cluster, monkeypatch):
    client, cluster_id = cluster
    sent = []
    client.meta.events.register("provide-client-params.emr.AddJobFlowSteps", lambda params, **_: sent.append(dict(params)))
    step = emr.build_spark_step("j", "s3://bkt/j.py", "s3://bkt/l.zip", ["--config", "s3://bkt/c.yaml"])
    role = "arn:aws:iam::123456789012:role/lake-step"
    step_id = emr.add_step(client, cluster_id, step, execution_role_arn=role)
    assert sent[0]["ExecutionRoleArn"] == role
    (listed,) = client.list_steps(ClusterId=cluster_id)["Steps"]
    assert listed["Id"] == step_id and listed["Config"]["Args"] == step["HadoopJarStep"]["Args"]
    assert emr.step_log_uri(client, cluster_id, step_id) == f"s3://lake-logs/emr/{cluster_id}/steps/{step_id}/"
    with pytest.raises(SubmitError, match="still RUNNING"):
        emr.wait_for_step(client, cluster_id, step_id, poll_seconds=0.05, timeout_seconds=0.2)

    moto_step(cluster_id, monkeypatch, "FAILED")
    with pytest.raises(SubmitError) as failed:
        emr.wait_for_step(client, cluster_id, step_id, poll_seconds=0.05)
    assert str(failed.value) == f"step {step_id} FAILED; logs: s3://lake-logs/emr/{cluster_id}/steps/{step_id}/"
    log_file = f"s3n://lake-logs/emr/{cluster_id}/steps/{step_id}/stderr.gz"
    moto_step(cluster_id, monkeypatch, "CANCELLED", {"Reason": "Unknown error.", "Message": "boom", "LogFile": log_file})
    with pytest.raises(SubmitError) as cancelled:
        emr.wait_for_step(client, cluster_id, step_id, poll_seconds=0.05)
    assert str(cancelled.value) == (
        f"step {step_id} CANCELLED: Unknown error.; boom; log file: s3://lake-logs/emr/{cluster_id}/steps/{step_id}/stderr.gz"
    )
    moto_step(cluster_id, monkeypatch, "COMPLETED")
    assert emr.wait_for_step(client, cluster_id, step_id, poll_seconds=0.05) == "COMPLETED"


def test_step_name_and_printed_args_redact_secrets_but_the_job_keeps_them():
    args = ["--config", "s3://b/c.yaml", "--set", "spark.spark.hadoop.fs.s3a.secret.key=hunter2"]
    step = emr.build_spark_step("j", "s3://b/j.py", "s3://b/l.zip", args)
    assert "hunter2" not in step["Name"] and "secret.key=*********(redacted)" in step["Name"]
    assert step["HadoopJarStep"]["Args"][-1] == args[-1]
    assert emr.secret_arguments(args) == ["spark.spark.hadoop.fs.s3a.secret.key=*********(redacted)"]


def test_names_hide_secrets_inside_values_and_after_a_secret_option():
    args = ["--config", "s3://b/c.yaml", "--set", "sink.url=jdbc:postgresql://db/lake?user=etl&password=hunter2"]
    step = emr.build_spark_step("j", "s3://b/j.py", "s3://b/l.zip", args, name="nightly --password -hunter2")
    assert step["Name"] == "nightly --password *********(redacted)"
    layout = emr.artifact_layout("s3://bkt/emr", "j", "0.1.0", "ab12")
    request = emr.build_job_run_request("00app", "r", emr.Planned("j", args, layout),
                                        conf=[("spark.hadoop.fs.s3a.secret.key", "hunter2")])
    assert request["name"].endswith("--set sink.url=jdbc:postgresql://db/lake?user=etl&password=*********(redacted)")
    assert request["jobDriver"]["sparkSubmit"]["entryPointArguments"] == args, "the job gets the real values"
    printed = json.dumps(redact(request))
    assert "hunter2" not in printed and "spark.hadoop.fs.s3a.secret.key=*********(redacted)" in printed
    assert emr.secret_arguments(args) == ["sink.url=jdbc:postgresql://db/lake?user=etl&password=*********(redacted)"]


@pytest.mark.parametrize("uri", ["s3://bucket/../../x", "s3://bucket/a/./b", "s3://bucket/a//b", "s3://bucket/.."])
def test_artifacts_with_dot_segments_are_refused(uri, tmp_path, capsys):
    with pytest.raises(UsageError, match="'.', '..' or empty segments"):
        emr.split_s3_uri(uri)
    assert submit.main(["emr", "--cluster-id", "j-1", "--artifacts", uri, "--dry-run", "json_to_parquet",
                        "--config", str(REPO / "conf" / "emr.yaml")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_job_run_request_for_emr_serverless(tmp_path):
    layout = emr.artifact_layout("s3://bkt/emr", "json_to_parquet", "0.1.0", "ab12", "emr.yaml", "cd34")
    args = ["--config", layout.config, "--date", "2024-01-02", "--set", "a.password=pw"]
    planned = emr.Planned("json_to_parquet", args, layout)
    request = emr.build_job_run_request("00app", "arn:aws:iam::1:role/r", planned,
                                        conf=[("spark.executor.cores", "4")])
    assert request == {
        "applicationId": "00app",
        "executionRoleArn": "arn:aws:iam::1:role/r",
        "name": "lakelib json_to_parquet --config s3://bkt/emr/config/cd34/emr.yaml --date 2024-01-02 --set "
                "a.password=*********(redacted)",
        "jobDriver": {"sparkSubmit": {
            "entryPoint": "s3://bkt/emr/lakelib/0.1.0-ab12/jobs/json_to_parquet.py",
            "entryPointArguments": args,
            "sparkSubmitParameters": "--py-files s3://bkt/emr/lakelib/0.1.0-ab12/lakelib.zip "
                                     "--conf spark.executor.cores=4",
        }},
        "configurationOverrides": {
            "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": "s3://bkt/emr/logs/"}}
        },
    }
    printed = redact(request)
    assert "pw" not in json.dumps(printed) and request["jobDriver"]["sparkSubmit"]["entryPointArguments"][-1] == \
        "a.password=pw"
    custom = emr.build_job_run_request("00app", "arn:aws:iam::1:role/r", planned, log_uri="s3://logs/x/")
    assert custom["configurationOverrides"]["monitoringConfiguration"]["s3MonitoringConfiguration"]["logUri"] == \
        "s3://logs/x/"
    with pytest.raises(UsageError, match="white space"):
        emr.build_job_run_request("00app", "r", planned, conf=[("spark.x", "a b")])


def test_notebook_job_run_starts_and_waits_until_a_final_state(aws, monkeypatch):
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.emrserverless.models import emrserverless_backends

    client = boto3.client("emr-serverless", region_name="us-east-1")
    app = client.create_application(name="lake", releaseLabel="emr-7.5.0", type="SPARK")["applicationId"]
    layout = emr.artifact_layout("s3://bkt/emr", "j", "0.1.0", "ab12")
    request = emr.build_job_run_request(app, "arn:aws:iam::123456789012:role/r", emr.Planned("j", [], layout))
    run_id = emr.start_job_run(client, request)
    run = client.get_job_run(applicationId=app, jobRunId=run_id)["jobRun"]
    assert run["jobDriver"]["sparkSubmit"]["entryPoint"] == layout.job_script
    backend_run = emrserverless_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].job_runs[app][0]
    backend_run.state = "RUNNING"
    with pytest.raises(SubmitError, match="still RUNNING"):
        emr.wait_for_job_run(client, app, run_id, poll_seconds=0.05, timeout_seconds=0.2)
    backend_run.state, backend_run.state_details = "FAILED", "Job failed, please check complete logs"
    with pytest.raises(SubmitError) as failed:
        emr.wait_for_job_run(client, app, run_id, poll_seconds=0.05)
    assert str(failed.value) == (
        f"job run {run_id} FAILED: Job failed, please check complete logs; driver stderr: "
        f"s3://bkt/emr/logs/applications/{app}/jobs/{run_id}/SPARK_DRIVER/stderr.gz"
    )
    backend_run.state = "SUCCESS"
    assert emr.wait_for_job_run(client, app, run_id, poll_seconds=0.05) == "SUCCESS"
    with pytest.raises(SubmitError, match="cannot start the job run"):
        emr.start_job_run(client, dict(request, applicationId="00nope"))


def test_add_step_to_an_unknown_cluster_is_a_submit_error(aws):
    client = boto3.client("emr", region_name="us-east-1")
    step = emr.build_spark_step("j", "s3://bkt/j.py", "s3://bkt/l.zip", [])
    with pytest.raises(SubmitError, match="j-NOPE"):
        emr.add_step(client, "j-NOPE", step)


def test_notebook_prepare_and_upload_put_every_artifact_in_s3(aws, tmp_path):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="lake-artifacts")
    config = REPO / "conf" / "emr.yaml"
    planned = emr.prepare(REPO, tmp_path, "s3://lake-artifacts/nb", "json_to_parquet", ["--config", str(config)])
    assert planned.job_args == ["--config", planned.layout.config]
    written = emr.upload(s3, planned)
    listed = {f"s3://lake-artifacts/{o['Key']}" for o in s3.list_objects_v2(Bucket="lake-artifacts")["Contents"]}
    assert listed == set(written) == {planned.layout.pyfiles, planned.layout.job_script, planned.layout.wheel,
                                      planned.layout.config}
    with pytest.raises(SubmitError, match="upload to s3://no-such-bucket"):
        emr.upload(s3, emr.Planned("j", [], planned.layout, [(str(config), "s3://no-such-bucket/c.yaml")]))
