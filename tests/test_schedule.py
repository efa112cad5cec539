"""lake schedule: the daily chain as a Step Functions state machine (checked against asl-validator's JSON schemas and
accepted by moto's Step Functions), an EventBridge Scheduler schedule, and an Airflow DAG loaded by Airflow's DagBag."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import boto3
import pytest

from lakelib import cli, schedule
from tests.conftest import FIXTURES, REPO

CONFIG = str(REPO / "conf" / "emr.yaml")
ARTIFACTS = "s3://lake-artifacts/emr"
ROLE = "arn:aws:iam::123456789012:role/lake-runs"
SCHEDULER_ROLE = "arn:aws:iam::123456789012:role/lake-scheduler"
AIRFLOW_PYTHON = Path(os.environ.get("LAKELIB_AIRFLOW_VENV") or REPO / ".venv-airflow") / "bin" / "python"
MODE_ARGS = {"emr": ["--mode", "emr", "--cluster-id", "j-ABC"],
             "serverless": ["--mode", "serverless", "--application-id", "00app", "--execution-role-arn", ROLE]}


def lake_schedule(tmp_path: Path, target: str, mode: str, name: str, *extra: str) -> Path:
    out = tmp_path / name
    assert cli.main(["schedule", "--config", CONFIG, "--target", target, *MODE_ARGS[mode], "--artifacts", ARTIFACTS,
                     "--out", str(out), *extra]) == 0
    return out


@pytest.fixture(scope="module")
def definitions(tmp_path_factory):
    """The state machine of each mode, and the schedule beside the emr one."""
    tmp_path = tmp_path_factory.mktemp("sfn")
    emr = lake_schedule(tmp_path, "stepfunctions", "emr", "emr.json", "--scheduler-role-arn", SCHEDULER_ROLE,
                        "--region", "us-east-1")
    serverless = lake_schedule(tmp_path, "stepfunctions", "serverless", "serverless.json")
    return {"emr": json.loads(emr.read_text()), "serverless": json.loads(serverless.read_text()),
            "schedule": json.loads(emr.with_suffix(".schedule.json").read_text())}


def asl_errors(definition: dict) -> list[str]:
    """Errors of ``definition`` against asl-validator's JSON schemas (tests/fixtures/asl-schemas, Apache-2.0), each
    state given the machine's ``QueryLanguage`` first, as asl-validator does before it validates."""
    from jsonschema import Draft7Validator
    from referencing import Registry, Resource

    folder = FIXTURES / "asl-schemas"
    registry = Registry().with_resources(
        (f"http://asl-validator.cloud/{p.name}", Resource.from_contents(json.loads(p.read_text())))
        for p in folder.glob("*.json"))
    validator = Draft7Validator(json.loads((folder / "state-machine.json").read_text()), registry=registry)
    definition = json.loads(json.dumps(definition))
    for state in definition.get("States", {}).values():
        state.setdefault("QueryLanguage", definition.get("QueryLanguage", "JSONPath"))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(definition)]


@pytest.mark.parametrize("mode, resource", [("emr", "arn:aws:states:::elasticmapreduce:addStep.sync"),
                                            ("serverless", "arn:aws:states:::emr-serverless:startJobRun.sync")])
def test_the_state_machine_is_the_chain_in_order_and_valid_asl(definitions, mode, resource):
    definition = definitions[mode]
    assert asl_errors(definition) == []
    states = definition["States"]
    order, name = [], definition["StartAt"]
    while True:
        order.append(name)
        if states[name].get("End"):
            break
        name = states[name]["Next"]
    assert order == ["Convert", "TypedTables", "DailyCounts", "YearlyCounts", "CompactEvents"]
    for state in states.values():
        assert state["Resource"] == resource
        assert state["Retry"][0]["MaxAttempts"] == schedule.RETRIES
    if mode == "serverless":
        args = states["YearlyCounts"]["Arguments"]
        assert (args["ApplicationId"], args["ExecutionRoleArn"]) == ("00app", ROLE)
        assert args["JobDriver"]["SparkSubmit"]["EntryPointArguments"][2:] == ["--period", "year", "--changed"]
        assert args["ConfigurationOverrides"]["MonitoringConfiguration"]["S3MonitoringConfiguration"]["LogUri"] == (
            f"{ARTIFACTS}/logs/")
    else:
        assert states["CompactEvents"]["Arguments"]["Step"]["HadoopJarStep"]["Args"][-4:] == [
            "--table", "events", "--date", schedule.ASL_YESTERDAY]


def test_the_schema_check_can_fail(definitions):
    broken = json.loads(json.dumps(definitions["emr"]))
    broken["States"]["Convert"]["Retry"][0]["MaxAttempts"] = "twice"
    del broken["States"]["TypedTables"]["Type"]
    assert len(asl_errors(broken)) >= 2


def test_moto_step_functions_and_scheduler_accept_them(definitions, aws):
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    for mode in ("emr", "serverless"):
        created = sfn.create_state_machine(name=f"lakelib-daily-{mode}", definition=json.dumps(definitions[mode]),
                                           roleArn=ROLE)
        got = sfn.describe_state_machine(stateMachineArn=created["stateMachineArn"])
        assert json.loads(got["definition"]) == definitions[mode]
    created = sfn.create_state_machine(name="lakelib-daily", definition=json.dumps(definitions["emr"]), roleArn=ROLE)
    plan = definitions["schedule"]
    assert plan["Target"]["Arn"] == created["stateMachineArn"]  # the ARN the schedule names is the one it gets
    scheduler = boto3.client("scheduler", region_name="us-east-1")
    scheduler.create_schedule(**plan)
    got = scheduler.get_schedule(Name=plan["Name"])
    assert (got["ScheduleExpression"], got["Target"]["Arn"]) == ("cron(0 6 * * ? *)", created["stateMachineArn"])


def test_a_scheduled_step_is_what_lake_submit_sends(definitions, capsys):
    from lakelib.submit import main as submit_main

    assert submit_main(["emr", "--cluster-id", "j-ABC", "--artifacts", ARTIFACTS, "--dry-run", "compact_partitions",
                        "--config", CONFIG, "--table", "events", "--date", "2026-01-02"]) == 0
    (submitted,) = json.loads(capsys.readouterr().out)
    scheduled = definitions["emr"]["States"]["CompactEvents"]["Arguments"]["Step"]
    assert scheduled["HadoopJarStep"]["Args"][:-1] == submitted["Args"][:-1]
    assert (scheduled["HadoopJarStep"]["Jar"], scheduled["ActionOnFailure"]) == (submitted["Jar"],
                                                                                  submitted["ActionOnFailure"])


def test_a_wrong_mode_setup_is_one_usage_line(tmp_path, capsys):
    code = cli.main(["schedule", "--config", CONFIG, "--target", "airflow", "--mode", "serverless",
                     "--application-id", "00app", "--artifacts", ARTIFACTS])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "lake schedule: error: --mode serverless needs --execution-role-arn (or submit.execution_role_arn in the "
        "config)")
    assert cli.main(["schedule", "--config", CONFIG, "--target", "airflow"]) == 2
    assert capsys.readouterr().err.strip() == (
        "lake schedule: error: --mode emr needs --artifacts (or submit.artifacts in the config) and --cluster-id "
        "(or submit.cluster_id in the config)")


@pytest.mark.parametrize("mode", ["emr", "serverless"])
def test_the_contracts_short_form_takes_where_the_runs_go_from_the_config(tmp_path, mode):
    """``lake schedule --config PATH --target T --out PATH``: a config with ``submit:`` keys needs no more."""
    keys = {"emr": f"{{mode: emr, artifacts: {ARTIFACTS}, cluster_id: j-ABC}}",
            "serverless": f"{{mode: serverless, artifacts: {ARTIFACTS}, application_id: 00app, "
                          f"execution_role_arn: '{ROLE}'}}"}[mode]
    config = tmp_path / "lake.yaml"
    config.write_text(Path(CONFIG).read_text() + f"submit: {keys}\n")
    short, long = tmp_path / "short.json", tmp_path / "long.json"
    assert cli.main(["schedule", "--config", str(config), "--target", "stepfunctions", "--out", str(short)]) == 0
    assert cli.main(["schedule", "--config", str(config), "--target", "stepfunctions", *MODE_ARGS[mode],
                     "--artifacts", ARTIFACTS, "--out", str(long)]) == 0
    assert short.read_text() == long.read_text()
    assert json.loads(short.read_text())["StartAt"]
    other = tmp_path / "other.json"  # an option wins over its key
    assert cli.main(["schedule", "--config", str(config), "--target", "stepfunctions", "--artifacts",
                     "s3://other-bucket/p", "--out", str(other)]) == 0
    assert "s3://other-bucket/p/" in other.read_text() and ARTIFACTS not in other.read_text()


# --------------------------------------------------------------------------------------------------- Airflow

DAGBAG_CHECK = """
import json, os, sys
from airflow.models import DagBag
bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}}
for dag in bag.dags.values():
    tasks = {t.task_id: {"type": type(t).__name__, "deferrable": getattr(t, "deferrable", None),
                         "upstream": sorted(t.upstream_task_ids), "retries": t.retries} for t in dag.tasks}
    compact = dag.get_task("compact_events")
    compact.render_template_fields({"ds": "2026-01-02"})
    rendered = compact.steps[0]["HadoopJarStep"]["Args"] if hasattr(compact, "steps") else \
        compact.job_driver["sparkSubmit"]["entryPointArguments"]
    out["dags"][dag.dag_id] = {"tasks": tasks, "schedule": str(dag.schedule_interval), "compact": rendered}
print(json.dumps(out))
"""


@pytest.mark.skipif(not AIRFLOW_PYTHON.exists() and not os.environ.get("LAKELIB_REQUIRE_AIRFLOW"),
                    reason="no .venv-airflow (make test-airflow creates it and runs this test)")
@pytest.mark.parametrize("mode, operator", [("emr", "EmrAddStepsOperator"),
                                            ("serverless", "EmrServerlessStartJobOperator")])
def test_airflows_dagbag_loads_the_dag_without_import_errors(tmp_path, mode, operator):
    dags = tmp_path / "dags"
    lake_schedule(dags, "airflow", mode, f"lakelib_daily_{mode}.py", "--name", f"lakelib-daily-{mode}")
    env = dict(os.environ, AIRFLOW_HOME=str(tmp_path / "airflow"), AIRFLOW__CORE__LOAD_EXAMPLES="False",
               AIRFLOW__CORE__UNIT_TEST_MODE="True")
    done = subprocess.run([str(AIRFLOW_PYTHON), "-c", DAGBAG_CHECK, str(dags)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["errors"] == {}
    dag = seen["dags"][f"lakelib_daily_{mode}"]
    assert dag["schedule"] == "0 6 * * *"
    tasks = dag["tasks"]
    assert list(tasks) == ["convert", "typed_tables", "daily_counts", "yearly_counts", "compact_events"]
    assert [t["upstream"] for t in tasks.values()] == [[], ["convert"], ["typed_tables"], ["daily_counts"],
                                                      ["yearly_counts"]]
    assert all(t["type"] == operator and t["deferrable"] is True for t in tasks.values())
    assert {t["retries"] for t in tasks.values()} == {schedule.RETRIES if mode == "emr" else 0}
    assert dag["compact"][-4:] == ["--table", "events", "--date", "2026-01-02"]


def test_upload_puts_every_artifact_the_schedule_names_in_place(aws, tmp_path, monkeypatch):
    import re
    import sys

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")  # the aws CLI
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="lake-artifacts")
    out = lake_schedule(tmp_path, "stepfunctions", "serverless", "sm.json", "--upload")
    named = set(re.findall(r"s3://lake-artifacts/([^\s\"']+\.(?:py|zip|yaml))", out.read_text()))
    stored = {o["Key"] for o in s3.list_objects_v2(Bucket="lake-artifacts")["Contents"]}
    assert len(named) == 6  # four job scripts (message_type_counts runs twice), the --py-files zip, the config
    assert named <= stored
