"""The daily chain as something to deploy: an Airflow DAG file, or a Step Functions state machine with an EventBridge
Scheduler schedule.

The chain (:data:`CHAIN`): ``json_to_parquet --changed``, ``event_tables --changed``, ``message_type_counts --period
day --changed``, ``message_type_counts --period year --changed``, then ``compact_partitions --table events`` of
yesterday. Every step is what ``lake submit`` sends: the packaged submission of :func:`lakelib.emr.prepare` and its
request from :func:`lakelib.emr.build_spark_step` (an EMR step) or :func:`lakelib.emr.build_job_run_request` (an
EMR Serverless job run). Each job is safe to rerun, so the retries set here never double a row.

Yesterday is the run's logical day: ``{{ ds }}`` in Airflow (a daily run covers the day before it starts), a
JSONata expression on the execution's start time in Step Functions.
"""
from __future__ import annotations

import json
import pprint
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

#: Where "yesterday" goes in a step's arguments until a target says how it spells it.
YESTERDAY = "<yesterday>"
#: (task name, job, arguments beside --config), in the order they run.
CHAIN: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("convert", "json_to_parquet", ("--changed",)),
    ("typed_tables", "event_tables", ("--changed",)),
    ("daily_counts", "message_type_counts", ("--period", "day", "--changed")),
    ("yearly_counts", "message_type_counts", ("--period", "year", "--changed")),
    ("compact_events", "compact_partitions", ("--table", "events", "--date", YESTERDAY)),
)
#: Retries of one failed run (every job is safe to rerun) and the seconds before the first.
RETRIES = 2
RETRY_SECONDS = 600
#: Longest a step may run before its wait gives up (Airflow's waiter, Step Functions' TimeoutSeconds).
STEP_TIMEOUT_SECONDS = 6 * 3600
#: Airflow's spelling of yesterday; Step Functions' (JSONata, on the execution's start time).
AIRFLOW_YESTERDAY = "{{ ds }}"
ASL_YESTERDAY = ("{% $fromMillis($toMillis($states.context.Execution.StartTime) - 86400000, "
                 "'[Y0001]-[M01]-[D01]') %}")


@dataclass(frozen=True)
class Task:
    """One step of the chain: its name, and the request ``lake submit`` would send (``StepConfig`` of an EMR step,
    or the ``StartJobRun`` request of EMR Serverless)."""

    name: str
    request: dict[str, Any]


def with_yesterday(value: Any, spelling: str) -> Any:
    """``value`` (nested lists and dicts) with every :data:`YESTERDAY` replaced by ``spelling``.

    >>> with_yesterday({"Args": ["--date", YESTERDAY]}, "{{ ds }}")
    {'Args': ['--date', '{{ ds }}']}
    """
    if isinstance(value, dict):
        return {k: with_yesterday(v, spelling) for k, v in value.items()}
    if isinstance(value, list):
        return [with_yesterday(v, spelling) for v in value]
    return spelling if value == YESTERDAY else value


def pascal_keys(value: Any) -> Any:
    """An AWS API request with its keys as Step Functions' integrations spell them (``jobDriver`` -> ``JobDriver``),
    values untouched.

    >>> pascal_keys({"jobDriver": {"sparkSubmit": {"entryPointArguments": ["--x"]}}})
    {'JobDriver': {'SparkSubmit': {'EntryPointArguments': ['--x']}}}
    """
    if isinstance(value, dict):
        return {k[:1].upper() + k[1:]: pascal_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [pascal_keys(v) for v in value]
    return value


def _state_name(task: str) -> str:
    return "".join(part.capitalize() for part in task.split("_"))


def state_machine(tasks: Sequence[Task], mode: str, cluster_id: str | None = None,
                  execution_role_arn: str | None = None) -> dict[str, Any]:
    """The ASL definition: one ``.sync`` Task state per step, in order, each retried :data:`RETRIES` times.

    ``emr``: ``arn:aws:states:::elasticmapreduce:addStep.sync`` on ``cluster_id`` (with the step's runtime role
    when given); ``serverless``: ``arn:aws:states:::emr-serverless:startJobRun.sync`` with the job run request,
    keys in Step Functions' spelling (its integration lists no ``RetryPolicy``: the state's ``Retry`` reruns it).
    JSONata states, so yesterday is computed from the execution's start time.
    """
    states: dict[str, Any] = {}
    names = [_state_name(t.name) for t in tasks]
    for i, task in enumerate(tasks):
        if mode == "emr":
            resource = "arn:aws:states:::elasticmapreduce:addStep.sync"
            arguments: dict[str, Any] = {"ClusterId": cluster_id, "Step": task.request}
            if execution_role_arn:
                arguments["ExecutionRoleArn"] = execution_role_arn
        else:
            resource = "arn:aws:states:::emr-serverless:startJobRun.sync"
            arguments = dict(pascal_keys(task.request), ClientToken="{% $uuid() %}")
        state: dict[str, Any] = {
            "Type": "Task",
            "Comment": f"lakelib {task.name}",
            "Resource": resource,
            "Arguments": with_yesterday(arguments, ASL_YESTERDAY),
            "TimeoutSeconds": STEP_TIMEOUT_SECONDS,
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": RETRY_SECONDS, "MaxAttempts": RETRIES,
                       "BackoffRate": 2.0}],
        }
        if i + 1 < len(tasks):
            state["Next"] = names[i + 1]
        else:
            state["End"] = True
        states[names[i]] = state
    return {"Comment": "lakelib's daily chain, written by lake schedule: regenerate rather than edit",
            "QueryLanguage": "JSONata", "StartAt": names[0], "States": states}


def state_machine_arn(role_arn: str, region: str, name: str) -> str:
    """The ARN a state machine ``name`` gets in the account of ``role_arn``.

    >>> state_machine_arn("arn:aws:iam::123456789012:role/r", "eu-west-1", "lakelib-daily")
    'arn:aws:states:eu-west-1:123456789012:stateMachine:lakelib-daily'
    """
    match = re.match(r"^arn:aws[\w-]*:iam::(\d{12}):role/", role_arn)
    if match is None:
        raise ValueError(f"{role_arn!r} is not an IAM role ARN")
    partition = role_arn.split(":")[1]
    return f"arn:{partition}:states:{region}:{match.group(1)}:stateMachine:{name}"


def scheduler_schedule(name: str, cron: str, target_arn: str, role_arn: str) -> dict[str, Any]:
    """An EventBridge Scheduler schedule starting the state machine daily (``aws scheduler create-schedule
    --cli-input-json file://...``), retried by the scheduler when the start itself fails.

    >>> scheduler_schedule("lakelib-daily", "cron(0 6 * * ? *)", "arn:sm", "arn:role")["Target"]["RetryPolicy"]
    {'MaximumRetryAttempts': 2, 'MaximumEventAgeInSeconds': 3600}
    """
    return {
        "Name": name,
        "Description": "lakelib's daily chain (lake schedule)",
        "ScheduleExpression": cron,
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": {"Arn": target_arn, "RoleArn": role_arn, "Input": "{}",
                   "RetryPolicy": {"MaximumRetryAttempts": RETRIES, "MaximumEventAgeInSeconds": 3600}},
    }


def airflow_cron(cron: str) -> str:
    """EventBridge's ``cron(m h d M w y)`` as Airflow's five fields.

    >>> airflow_cron("cron(0 6 * * ? *)")
    '0 6 * * *'
    """
    fields = cron.strip()[len("cron("):-1].split()
    return " ".join("*" if f == "?" else f for f in fields[:5])


_DAG = '''"""{doc}"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow import DAG
from airflow.providers.amazon.aws.operators.{module} import {operator}

#: What `lake submit {mode}` would send for each job, from lakelib {version}'s builders (lakelib.emr).
{constants}
TASKS = {tasks}

with DAG(
    dag_id={dag_id!r},
    schedule={schedule!r},
    start_date=pendulum.datetime({start.year}, {start.month}, {start.day}, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={{"retries": {retries}, "retry_delay": timedelta(seconds={retry_seconds})}},
    tags=["lakelib"],
) as dag:
    previous = None
    for name, request in TASKS.items():
{make_task}
        if previous is not None:
            previous >> task
        previous = task
'''

_EMR_TASK = '''        task = EmrAddStepsOperator(
            task_id=name,
            job_flow_id=CLUSTER_ID,
            steps=[request],
            execution_role_arn=EXECUTION_ROLE_ARN,
            deferrable=True,  # waits for the step in the triggerer; a retry adds the step again
            waiter_delay=60,
            waiter_max_attempts={attempts},
        )'''

_SERVERLESS_TASK = '''        task = EmrServerlessStartJobOperator(
            task_id=name,
            application_id=request["applicationId"],
            execution_role_arn=request["executionRoleArn"],
            name=request["name"],
            job_driver=request["jobDriver"],
            configuration_overrides=request["configurationOverrides"],
            config={{"retryPolicy": {{"maxAttempts": {max_attempts}}}}},  # EMR Serverless retries the run itself
            deferrable=True,
            waiter_delay=60,
            waiter_max_attempts={attempts},
        )'''


def airflow_dag(tasks: Sequence[Task], mode: str, cron: str, dag_id: str, version: str, start: Any,
                cluster_id: str | None = None, execution_role_arn: str | None = None) -> str:
    """The text of an Airflow DAG file running the chain with the Amazon provider's deferrable operators:
    ``EmrAddStepsOperator`` (``emr``) or ``EmrServerlessStartJobOperator`` (``serverless``), in order."""
    attempts = STEP_TIMEOUT_SECONDS // 60
    requests = {t.name: with_yesterday(t.request, AIRFLOW_YESTERDAY) for t in tasks}
    if mode == "emr":
        module, operator, make = "emr", "EmrAddStepsOperator", _EMR_TASK.format(attempts=attempts)
        constants = f"CLUSTER_ID = {cluster_id!r}\nEXECUTION_ROLE_ARN = {execution_role_arn!r}"
    else:
        module, operator, make = "emr", "EmrServerlessStartJobOperator", _SERVERLESS_TASK.format(
            attempts=attempts, max_attempts=RETRIES + 1)
        constants = ""
    doc = (f"lakelib's daily chain on {'EMR cluster ' + str(cluster_id) if mode == 'emr' else 'EMR Serverless'}, "
           "written by `lake schedule`: regenerate rather than edit.")
    return _DAG.format(doc=doc, module=module, operator=operator, mode=mode, version=version, constants=constants,
                       tasks=pprint.pformat(requests, width=110, sort_dicts=False), dag_id=dag_id,
                       schedule=airflow_cron(cron), start=start, retries=RETRIES if mode == "emr" else 0,
                       retry_seconds=RETRY_SECONDS, make_task=make)


def dumps(document: Mapping[str, Any]) -> str:
    """JSON for a file: indented, with a final newline."""
    return json.dumps(document, indent=2) + "\n"
