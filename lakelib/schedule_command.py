"""``lake schedule``: write the daily chain as an Airflow DAG file or a Step Functions state machine (ASL JSON) with
its EventBridge Scheduler schedule.

    lake schedule --config conf/emr.yaml --target airflow --out dags/lakelib_daily.py --upload
    lake schedule --config conf/emr.yaml --target airflow --mode emr --cluster-id j-XXX --artifacts s3://b/p \\
        --out dags/lakelib_daily.py --upload
    lake schedule --config conf/emr.yaml --target stepfunctions --mode serverless --application-id 00abc \\
        --execution-role-arn arn:... --artifacts s3://b/p --scheduler-role-arn arn:... --out lakelib-daily.json

Each job is packaged as ``lake submit`` packages it (:func:`lakelib.emr.prepare`: the same content-addressed
artifacts), and its request comes from the same builders; ``--upload`` puts the artifacts in place. Where the runs
go comes from the options, else from the config's ``submit:`` keys (``mode``, ``artifacts``, ``cluster_id``,
``application_id``, ``execution_role_arn``), so the short form above is the whole command for a configured lake.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from lakelib import emr, schedule
from lakelib.cli import add_config_arguments, command, config_of, default_config
from lakelib.config import SUBMIT_KEYS, SUBMIT_MODES, SubmitSettings
from lakelib.errors import UsageError
from lakelib.provenance import LOG_URI_CONF

TARGETS = ("airflow", "stepfunctions")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--target", required=True, choices=TARGETS)
    parser.add_argument("--mode", choices=SUBMIT_MODES, help="where the jobs run (default: submit.mode, else emr)")
    parser.add_argument("--out", "--output", dest="out", metavar="PATH", help="write here (default: print)")
    parser.add_argument("--artifacts", metavar="S3_URI",
                        help="where lake submit uploads (--upload); default: submit.artifacts")
    parser.add_argument("--upload", action="store_true", help="upload the artifacts the schedule runs (aws s3 cp)")
    parser.add_argument("--cluster-id", help="emr: the long-running cluster")
    parser.add_argument("--scheme", choices=("s3", "s3a"), default="s3", help="emr: s3a for EMR 8 (default s3)")
    parser.add_argument("--application-id", help="serverless: the EMR Serverless application")
    parser.add_argument("--execution-role-arn", help="serverless: the job runs' role; emr: the steps' runtime role")
    parser.add_argument("--log-uri", help="S3 logs of the runs (serverless default: <artifacts>/logs/)")
    parser.add_argument("--cron", default="cron(0 6 * * ? *)", help="when, UTC (default: 06:00, after late files)")
    parser.add_argument("--name", default="lakelib-daily", help="DAG id / state machine and schedule name")
    parser.add_argument("--scheduler-role-arn", help="stepfunctions: the role EventBridge Scheduler starts it with")
    parser.add_argument("--region", help="stepfunctions: the state machine's region (default: boto3's)")


def _check(args: argparse.Namespace, submit: SubmitSettings) -> None:
    """Fill what the options leave out from the config's ``submit:`` keys, then check that nothing is missing."""
    args.mode = args.mode or submit.mode or "emr"
    for key in SUBMIT_KEYS[args.mode]:
        if getattr(args, key) is None:
            setattr(args, key, getattr(submit, key))
    needed = ["artifacts", "cluster_id"] if args.mode == "emr" else ["artifacts", "application_id", "execution_role_arn"]
    missing = [k for k in needed if not getattr(args, k)]
    if missing:
        raise UsageError(f"--mode {args.mode} needs " + " and ".join(f"--{k.replace('_', '-')} (or submit.{k} in "
                                                                     "the config)" for k in missing))
    if not args.cron.startswith("cron(") or len(args.cron[5:-1].split()) != 6:
        raise UsageError(f"--cron {args.cron!r}: expected EventBridge's cron(minutes hours day month weekday year)")


def build_tasks(args: argparse.Namespace, config_path: str, work: str) -> tuple[list[schedule.Task], list]:
    """The chain's tasks, each packaged and built as ``lake submit`` does, and the packaged submissions."""
    tasks, planned_all = [], []
    for name, job, extra in schedule.CHAIN:
        job_args = ["--config", config_path, *extra]
        planned = emr.prepare(emr.checkout_root(), Path(work) / name, args.artifacts, job, job_args,
                              with_wheel=args.mode == "emr")
        planned_all.append(planned)
        conf: list[tuple[str, str]] = []
        log_root = args.log_uri or (planned.layout.logs if args.mode == "serverless" else None)
        if log_root:  # for the run's provenance, as lake submit sets it
            conf.append((LOG_URI_CONF, emr.with_scheme(log_root, "s3")))
        request: dict[str, Any]
        if args.mode == "emr":
            request = emr.build_spark_step(job, emr.with_scheme(planned.layout.job_script, args.scheme),
                                           emr.with_scheme(planned.layout.pyfiles, args.scheme), planned.job_args,
                                           name=f"lakelib {name}", conf=conf)
        else:
            request = emr.build_job_run_request(args.application_id, args.execution_role_arn, planned,
                                                name=f"lakelib {name}", conf=conf, log_uri=args.log_uri)
        tasks.append(schedule.Task(name, request))
    return tasks, planned_all


def _upload(planned_all: list, work: str) -> None:
    from lakelib.submit import aws

    stage = None
    for planned in planned_all:
        stage = emr.stage(planned, Path(work) / "stage")
    if stage is not None:
        aws(["s3", "cp", "--recursive", "--only-show-errors", str(stage), f"s3://{stage.name}/"],
            f"upload to s3://{stage.name} failed")
    for uri in sorted({uri for planned in planned_all for _, uri in planned.uploads}):
        print(f"schedule: uploaded {uri}", file=sys.stderr)


def _write(text: str, out: str | None) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text, encoding="utf-8")
    print(f"schedule: wrote {out}", file=sys.stderr)


@command("schedule", "write the daily chain as an Airflow DAG or a Step Functions state machine", _add_arguments)
def run(args: argparse.Namespace) -> int:
    """``lake schedule``."""
    from lakelib import __version__

    config = config_of(args)  # a wrong config is refused here, not on the first scheduled run
    _check(args, config.submit)
    config_path = args.config or default_config()
    with tempfile.TemporaryDirectory(prefix="lakelib-schedule-") as work:
        tasks, planned_all = build_tasks(args, config_path, work)
        if args.upload:
            _upload(planned_all, work)
    if args.target == "airflow":
        start = date.today() - timedelta(days=1)
        _write(schedule.airflow_dag(tasks, args.mode, args.cron, args.name.replace("-", "_"), __version__, start,
                                    args.cluster_id, args.execution_role_arn if args.mode == "emr" else None),
               args.out)
    else:
        role = args.execution_role_arn if args.mode == "emr" else None
        _write(schedule.dumps(schedule.state_machine(tasks, args.mode, args.cluster_id, role)), args.out)
        _write_schedule(args)
    if not args.upload:
        print(f"schedule: the runs read the artifacts under {args.artifacts}: write them with --upload",
              file=sys.stderr)
    return 0


def _write_schedule(args: argparse.Namespace) -> None:
    """The EventBridge Scheduler schedule beside ``--out`` (``<stem>.schedule.json``), when it can be named."""
    if args.out is None or args.scheduler_role_arn is None:
        print("schedule: with --out and --scheduler-role-arn, the EventBridge Scheduler schedule is written beside "
              "the definition", file=sys.stderr)
        return
    import boto3

    region = args.region or boto3.session.Session().region_name or "us-east-1"
    try:
        arn = schedule.state_machine_arn(args.scheduler_role_arn, region, args.name)
    except ValueError as exc:
        raise UsageError(f"--scheduler-role-arn: {exc}") from None
    path = Path(args.out).with_suffix(".schedule.json")
    _write(schedule.dumps(schedule.scheduler_schedule(args.name, args.cron, arn, args.scheduler_role_arn)),
           str(path))
    print(f"schedule: deploy with\n  aws stepfunctions create-state-machine --name {args.name} --definition "
          f"file://{args.out} --role-arn <the state machine's role>\n  aws scheduler create-schedule "
          f"--cli-input-json file://{path}", file=sys.stderr)
