"""lakelib.emr: the pure step builders and packaging, and the thin boto3 calls against moto's server."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import boto3
import pytest

from lakelib import emr
from lakelib.errors import SubmitError, UsageError
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


def test_packages_are_reproducible_and_hold_lakelib_and_jobs(tmp_path):
    first = emr.build_pyfiles_zip(REPO, tmp_path / "a.zip")
    second = emr.build_pyfiles_zip(REPO, tmp_path / "b.zip")
    assert first.read_bytes() == second.read_bytes()
    names = zipfile.ZipFile(first).namelist()
    assert "lakelib/emr.py" in names and "jobs/json_to_parquet.py" in names and "lakelib/py.typed" in names
    assert not [n for n in names if "__pycache__" in n or not n.startswith(("lakelib/", "jobs/"))]

    wheel = emr.build_wheel(REPO, tmp_path / "w1")
    again = emr.build_wheel(REPO, tmp_path / "w2")
    assert wheel.name == f"lakelib-{emr.read_package_info(REPO).version}-py3-none-any.whl"
    assert wheel.read_bytes() == again.read_bytes()


def test_wheel_installs_with_pip_and_never_requires_pyspark(tmp_path):
    wheel = emr.build_wheel(REPO, tmp_path)
    metadata = zipfile.ZipFile(wheel).read(f"{wheel.name.split('-py3')[0]}.dist-info/METADATA").decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert requires and not [r for r in requires if "pyspark" in r.lower()]
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--no-index", "--target", str(target), str(wheel)],
        check=True, capture_output=True, timeout=120,
    )
    out = subprocess.run(
        [sys.executable, "-c", "import lakelib, lakelib.emr, jobs; print(lakelib.__file__)"],
        capture_output=True, text=True, check=True, cwd=tmp_path, env={"PYTHONPATH": str(target)},
    ).stdout
    assert out.startswith(str(target))
    assert (target / "bin" / "lake").exists()


def test_plan_writes_the_step_json_and_the_uploads(tmp_path):
    config = REPO / "conf" / "emr.yaml"
    code = emr.main([
        "plan", "--repo", str(REPO), "--workdir", str(tmp_path), "--artifacts", "s3://bkt/emr", "--scheme", "s3a",
        "json_to_parquet", "--config", str(config), "--date", "2024-01-02",
    ])
    assert code == 0
    (step,) = json.loads((tmp_path / "step.json").read_text())
    uploads = dict(line.split("\t")[::-1] for line in (tmp_path / "uploads.tsv").read_text().splitlines())
    config_uri = step["Args"][step["Args"].index("--config") + 1]
    assert uploads[config_uri] == str(config)
    script = [a for a in step["Args"] if a.endswith("/jobs/json_to_parquet.py")]
    assert len(script) == 1 and script[0].startswith("s3a://bkt/emr/lakelib/")
    assert {uri.split("/")[-1] for uri in uploads} >= {"lakelib.zip", "json_to_parquet.py", "emr.yaml"}


def test_plan_refuses_a_job_without_config(tmp_path, capsys):
    code = emr.main(["plan", "--repo", str(REPO), "--workdir", str(tmp_path), "--artifacts", "s3://bkt/e",
                     "json_to_parquet", "--date", "2024-01-02"])
    assert code == 2
    assert capsys.readouterr().err.startswith("submit: error: the job arguments need --config")


@pytest.fixture
def cluster(aws):
    client = boto3.client("emr", region_name="us-east-1")
    cluster_id = client.run_job_flow(
        Name="nb", ReleaseLabel="emr-7.5.0", LogUri="s3n://lake-logs/emr/",
        Instances={"MasterInstanceType": "m5.xlarge", "InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    return client, cluster_id


def test_notebook_submission_adds_the_step_and_reads_its_state(cluster):
    client, cluster_id = cluster
    step = emr.build_spark_step("j", "s3://bkt/j.py", "s3://bkt/l.zip", ["--config", "s3://bkt/c.yaml"])
    step_id = emr.add_step(client, cluster_id, step)
    (listed,) = client.list_steps(ClusterId=cluster_id)["Steps"]
    assert listed["Id"] == step_id and listed["Config"]["Args"] == step["HadoopJarStep"]["Args"]
    assert emr.step_state(client, cluster_id, step_id)[0] in ("PENDING", "RUNNING")
    assert emr.step_log_uri(client, cluster_id, step_id) == f"s3://lake-logs/emr/{cluster_id}/steps/{step_id}/"
    with pytest.raises(SubmitError, match="still"):
        emr.wait_for_step(client, cluster_id, step_id, poll_seconds=0.05, timeout_seconds=0.2)

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.emr.models import emr_backends

    moto_step = emr_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].clusters[cluster_id].steps[0]
    moto_step.state = "FAILED"
    with pytest.raises(SubmitError, match=f"FAILED; logs: s3://lake-logs/emr/{cluster_id}/steps/{step_id}/"):
        emr.wait_for_step(client, cluster_id, step_id, poll_seconds=0.05)
    moto_step.state = "COMPLETED"
    assert emr.wait_for_step(client, cluster_id, step_id, poll_seconds=0.05) == "COMPLETED"


def test_add_step_to_an_unknown_cluster_is_a_submit_error(aws):
    client = boto3.client("emr", region_name="us-east-1")
    step = emr.build_spark_step("j", "s3://bkt/j.py", "s3://bkt/l.zip", [])
    with pytest.raises(SubmitError, match="j-NOPE"):
        emr.add_step(client, "j-NOPE", step)
