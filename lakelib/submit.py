"""``lake submit`` (and ``scripts/submit.sh``, a thin wrapper): run a job here, on an EMR cluster, or on EMR
Serverless, and with ``--wait`` say what happened.

    lake submit local JOB [JOB_ARGS...]
    lake submit emr --cluster-id j-XXX --artifacts s3://bucket/prefix [--wait] JOB [JOB_ARGS...]
    lake submit serverless --application-id ID --execution-role-arn ARN --artifacts s3://bucket/prefix [--wait]
                JOB [JOB_ARGS...]

Before anything is uploaded, :func:`check_job_args` runs the job's own parser on its arguments (a typo fails
with the job's usage line), and :func:`remote_config_problem` refuses a config whose lake is on this machine or
whose catalog is the embedded Derby metastore. ``--dry-run``, wherever it is on the line, prints the request and
sends nothing. The AWS calls that change something go through the ``aws`` CLI (its environment applies:
AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL...); ``--wait`` follows the run with boto3 (:func:`lakelib.emr.follow`),
printing each state change with the time since submission, then the driver's last lines from the S3 logs, the run
report's URI and, on EMR Serverless, the billed use and its cost.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.abc
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from typing import IO, Any, Iterator, Mapping, Sequence

from lakelib import emr
from lakelib.cli import command
from lakelib.errors import ConfigError, LakelibError, SubmitError, UsageError, one_line
from lakelib.paths import S3_URI
from lakelib.provenance import LOG_URI_CONF
from lakelib.redact import redact, redact_text
from lakelib.run_reports import add_to_report

log = logging.getLogger(__name__)

MODES = ("local", "emr", "serverless")
#: Hive's metastore client factory of the AWS Glue Data Catalog (EMR's "use Glue as the metastore" setting).
GLUE_FACTORY = "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"
_FACTORY_KEYS = ("hive.metastore.client.factory.class", "spark.hadoop.hive.metastore.client.factory.class",
                 "spark.hive.metastore.client.factory.class")


# --------------------------------------------------------------------------------------------------- checks


@contextlib.contextmanager
def _importable_without_pyspark() -> Iterator[None]:
    """Let a job module be imported where PySpark is not installed (a laptop with only the wheel): ``pyspark``
    and its submodules become inert stand-ins for the import, and are removed afterwards."""
    if importlib.util.find_spec("pyspark") is not None:
        yield
        return

    class _Anything:
        def __getattr__(self, name: str) -> _Anything:
            return self

        def __call__(self, *args: Any, **kwargs: Any) -> _Anything:
            return self

        def __getitem__(self, key: Any) -> _Anything:
            return self

        def __mro_entries__(self, bases: tuple) -> tuple:
            return (object,)

    class _StubModule(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            return _Anything()

    class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
            if name == "pyspark" or name.startswith("pyspark."):
                return importlib.util.spec_from_loader(name, self, is_package=True)
            return None

        def create_module(self, spec: Any) -> types.ModuleType | None:
            module = _StubModule(spec.name)
            module.__path__ = []
            return module

        def exec_module(self, module: types.ModuleType) -> None:
            return None

    finder = _Finder()
    before = set(sys.modules)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for name in set(sys.modules) - before:  # the stand-ins and whatever imported them
            if name == "pyspark" or name.startswith(("pyspark.", "lakelib.")) or name.startswith("_lakelib_job_"):
                del sys.modules[name]


def job_parser(script: Path) -> argparse.ArgumentParser:
    """The job's own argument parser: ``build_parser()`` of the job file, imported by its path (no Spark starts).

    Raises
    ------
    UsageError
        The file cannot be imported or has no ``build_parser``.
    """
    name = f"_lakelib_job_{script.stem}"
    spec = importlib.util.spec_from_file_location(name, script)
    if spec is None or spec.loader is None:
        raise UsageError(f"{script}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    saved_path = list(sys.path)
    try:
        with _importable_without_pyspark():
            sys.modules[name] = module  # dataclasses look their module up while it executes
            spec.loader.exec_module(module)
            build = getattr(module, "build_parser", None)
            if not callable(build):
                raise UsageError(f"{script.name}: no build_parser() to check the job's arguments with")
            return build()
    except ImportError as exc:
        raise UsageError(f"{script.name}: cannot be imported here to check its arguments: {one_line(exc)}") from None
    finally:
        sys.path[:] = saved_path
        sys.modules.pop(name, None)


def takes_option(parser: argparse.ArgumentParser, option: str) -> bool:
    """Whether ``parser`` has ``option`` (``--dry-run``...)."""
    return option in parser._option_string_actions


def check_job_args(script: Path, job_args: Sequence[str]) -> tuple[list[str], bool]:
    """Run the job's own parser on ``job_args``; return the arguments to send and whether ``--dry-run`` was among
    them. A ``--dry-run`` the job does not take is the submission's own, and is taken out.

    Raises
    ------
    SystemExit
        Status 2: the job's parser refused, after printing its usage line and its error on stderr.
    """
    parser = job_parser(script)
    dry_run = "--dry-run" in job_args
    send = list(job_args) if takes_option(parser, "--dry-run") else [a for a in job_args if a != "--dry-run"]
    parser.parse_args(send)
    return send, dry_run


def remote_config_problem(config: Any, glue_metastore: bool | None) -> str | None:
    """Why a job on EMR or EMR Serverless cannot use ``config`` (one line naming the key), or ``None``.

    ``glue_metastore``: whether the cluster's Spark uses the Glue Data Catalog as its Hive metastore (``None``:
    not known, so not held against ``catalog.kind: spark``).
    """
    for key in ("raw", "tables", "quarantine", "reports"):
        uri = getattr(config.lake, key)
        if not S3_URI.match(uri):
            return f"lake.{key}: {uri} is on this machine; a job on EMR reads and writes s3:// URIs"
    if config.catalog.kind == "spark" and config.catalog.metastore:
        return (f"catalog.metastore: {config.catalog.metastore} is the embedded Derby metastore of this machine; "
                "on EMR use catalog.kind glue, or the cluster's metastore without catalog.metastore")
    if config.catalog.kind == "spark" and glue_metastore is False:
        return ("catalog.kind: spark is the cluster's own Derby metastore here (the cluster has no "
                f"hive.metastore.client.factory.class = {GLUE_FACTORY}): use catalog.kind glue, or create the "
                "cluster with conf/emr-7.x-configurations.json")
    return None


def uses_glue_metastore(configurations: Sequence[Mapping[str, Any]] | None, *extra: Mapping[str, str]) -> bool:
    """Whether EMR ``Configurations`` (nested, as ``DescribeCluster`` returns them) or Spark conf maps set the
    Glue Data Catalog as Hive's metastore.

    >>> uses_glue_metastore([{"Classification": "spark-hive-site", "Properties": {
    ...     "hive.metastore.client.factory.class": GLUE_FACTORY}}])
    True
    >>> uses_glue_metastore([], {"spark.executor.cores": "4"})
    False
    """
    maps = list(extra)
    stack = list(configurations or ())
    while stack:
        item = stack.pop()
        maps.append(item.get("Properties") or {})
        stack.extend(item.get("Configurations") or ())
    return any(m.get(k) == GLUE_FACTORY for m in maps for k in _FACTORY_KEYS)


# --------------------------------------------------------------------------------------------------- aws CLI


def aws(args: Sequence[str], what: str) -> str:
    """Run the ``aws`` CLI; its stdout. ``what`` starts the error line.

    Raises
    ------
    SubmitError
        The CLI is missing or failed (its last error line, without the ``An error occurred`` preamble).
    """
    if shutil.which("aws") is None:
        raise SubmitError("the aws CLI is not on PATH (pip install awscli, or install AWS CLI v2)")
    done = subprocess.run(["aws", *args], capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()] or [f"aws exited {done.returncode}"]
        last = lines[-1].strip()
        if last.startswith("An error occurred (") and "operation: " in last:
            last = last.split("operation: ", 1)[1]
        raise SubmitError(f"{what}: {last}")
    return done.stdout


# --------------------------------------------------------------------------------------------------- waiting


def _elapsed(seconds: float) -> str:
    """``0:03:12``."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def watch(
    kind: str,
    first_id: str,
    second_id: str,
    poll_seconds: float = 30.0,
    timeout_seconds: float = 86_400.0,
    prices: emr.Prices | None = None,
    session: Any = None,
    err: IO[str] | None = None,
    config: Any = None,
) -> int:
    """Follow a step (``kind`` ``emr``: cluster id, step id) or a job run (``serverless``: application id, job run
    id) to its end, printing each state change, then the driver's last lines, the run report's URI and the billed
    use (EMR Serverless; also added to the run report and, given the lake's ``config``, to its ``lake_runs`` row:
    :func:`record_billed`). Returns 0 on success, 1 otherwise."""
    import boto3

    err = err or sys.stderr
    session = session or boto3.session.Session()
    label = f"step {second_id}" if kind == "emr" else f"job run {second_id}"
    if kind == "emr":
        client = session.client("emr")

        def poll() -> emr.RunState:
            return emr.step_state(client, first_id, second_id)
    else:
        client = session.client("emr-serverless")

        def poll() -> emr.RunState:
            return emr.job_run_state(client, first_id, second_id)

    def on_change(state: emr.RunState, elapsed: float) -> None:
        print(f"submit: [{_elapsed(elapsed)}] {label} {state.state}", file=err, flush=True)

    try:
        final = emr.follow(poll, on_change, poll_seconds, timeout_seconds)
    except SubmitError as exc:
        print(f"submit: error: {label}: {exc}", file=err)
        return 1
    s3 = session.client("s3")
    if kind == "emr":
        log_base = _cluster_log_uri(client, first_id)
    else:
        monitoring = (final.detail.get("configurationOverrides") or {}).get("monitoringConfiguration") or {}
        log_base = (monitoring.get("s3MonitoringConfiguration") or {}).get("logUri")
    seen = _print_logs(s3, emr.driver_log_locations(log_base, kind, first_id, second_id), err)
    if kind == "emr":  # in cluster mode the driver's own output is in its YARN container's logs
        seen += _print_logs(s3, emr.driver_container_logs(s3, log_base, first_id, seen), err)
    report = emr.report_location(seen)
    if report:
        print(f"submit: run report: {report}", file=err)
    if kind == "serverless":
        usage = emr.billed_usage(final.detail, prices or emr.list_prices(session.region_name))
        if usage is not None:
            print(f"submit: {emr.format_usage(usage)}", file=err)
            if report:
                add_to_report(report, {"billed": usage}, s3)
            print(f"submit: {record_billed(config, (first_id, second_id), usage, s3)}", file=err, flush=True)
    if final.succeeded:
        print(f"submit: {label} {final.state}", file=err)
        return 0
    if kind == "emr":
        line = emr.step_failure(final.detail, second_id, emr.steps_log_location(log_base, first_id, second_id))
    else:
        line = emr.job_run_failure(final.detail)
    print(f"submit: error: {line}", file=err)
    return 1


def _print_logs(s3: Any, uris: Sequence[str], err: IO[str]) -> list[str]:
    """Print the job's last lines of each log; return every line read."""
    seen: list[str] = []
    for uri in uris:
        lines = emr.read_log(s3, uri)
        if lines is None:
            print(f"submit: no log at {uri} (yet: EMR copies logs to S3 every few minutes)", file=err)
            continue
        seen += lines
        shown = emr.job_lines(lines)
        if shown:
            print(f"submit: last lines of {uri}:", file=err)
            for line in shown:
                print(f"  | {line}", file=err)
    return seen


def _cluster_log_uri(client: Any, cluster_id: str) -> str | None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return client.describe_cluster(ClusterId=cluster_id)["Cluster"].get("LogUri")
    except (ClientError, BotoCoreError):
        return None


def record_billed(config: Any, key: tuple[str, str], usage: Mapping[str, Any], s3: Any = None) -> str:
    """Fill the ``lake_runs`` row of an EMR Serverless job run with its billed use (:func:`lakelib.runs.fill_billed`,
    with a Spark session on this machine) and add it to the row's report; one line saying what happened."""
    later = "; lake runs --refresh-cost fills it later"
    if config is None:
        return "lake_runs not updated: --config is not a local file" + later
    if importlib.util.find_spec("pyspark") is None:
        return "lake_runs not updated: no PySpark here" + later
    if config.lake.tables.startswith("s3://") and "spark.hadoop.fs.s3.impl" not in config.spark:
        return (f"lake_runs not updated: Spark on this machine does not read {config.lake.tables} (s3:// is EMRFS)"
                + later.replace("later", "where Spark reaches the lake (the cluster, EMR Studio)"))
    from lakelib.runs import add_billed_to_reports, fill_billed
    from lakelib.session import build_session

    try:
        spark = build_session(config, app_name="lake submit --wait")
        changed = fill_billed(spark, config, {key: usage})
    except Exception as exc:  # noqa: BLE001 - the job run's outcome stands; the cost can be filled later
        return f"lake_runs not updated: {one_line(exc)}" + later
    if not changed:
        return f"lake_runs has no row of job run {key[1]} without cost" + later
    add_billed_to_reports(config, changed, {key: usage}, s3)
    return f"lake_runs: billed use and cost recorded for run {changed[0]['run_id']}"


# --------------------------------------------------------------------------------------------------- the command


def _remote_parser(prog: str, target: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"{prog} {target}", description=f"submit one job to {target}")
    if target == "emr":
        parser.add_argument("--cluster-id", required=True)
        parser.add_argument("--execution-role-arn", help="the step's runtime role")
        parser.add_argument("--action-on-failure", default="CONTINUE")
        parser.add_argument("--scheme", choices=("s3", "s3a"), help="default: from the cluster's release label")
    else:
        parser.add_argument("--application-id", required=True)
        parser.add_argument("--execution-role-arn", required=True)
        parser.add_argument("--log-uri", help="S3 logs of the job run (default <artifacts>/logs/)")
        parser.add_argument("--cloudwatch-logs", action="store_true", help="also send the logs to CloudWatch")
        parser.add_argument("--cloudwatch-log-group", help="CloudWatch log group (default: EMR Serverless's)")
        emr.add_price_arguments(parser)
    parser.add_argument("--artifacts", required=True, metavar="S3_URI")
    parser.add_argument("--name")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--wait", action="store_true", help="follow the run and exit 1 unless it succeeds")
    parser.add_argument("--poll-seconds", type=float, default=float(os.environ.get("LAKELIB_POLL_SECONDS", 30)))
    parser.add_argument("--timeout-seconds", type=float, default=86_400.0)
    parser.add_argument("--dry-run", action="store_true", help="print the request, send nothing (anywhere)")
    parser.add_argument("--allow-local-lake", action="store_true",
                        help="accept file:// lake roots (a replay on this machine, a test)")
    parser.add_argument("job")
    parser.add_argument("job_args", nargs=argparse.REMAINDER)
    return parser


def run_remote(target: str, argv: Sequence[str], prog: str = "lake submit", out: IO[str] | None = None,
               err: IO[str] | None = None) -> int:
    """``lake submit emr|serverless ...``: check, package, upload, submit, and with ``--wait`` follow."""
    out, err = out or sys.stdout, err or sys.stderr
    args = _remote_parser(prog, target).parse_args(argv)
    script = emr.job_script(None, args.job)
    job_args, job_dry_run = check_job_args(script, args.job_args)
    dry_run = args.dry_run or job_dry_run
    conf = emr.parse_conf(args.conf)
    config_value = emr.config_argument(job_args)
    config = None
    if config_value is not None and not S3_URI.match(config_value):
        from lakelib.config import load_config

        config = load_config(config_value)
    bucket = emr.split_s3_uri(args.artifacts)[0]

    described: dict[str, Any] = {}
    if not dry_run:
        if target == "emr":
            described = json.loads(aws(["emr", "describe-cluster", "--cluster-id", args.cluster_id, "--output",
                                        "json"], f"cluster {args.cluster_id}"))["Cluster"]
            state = described.get("Status", {}).get("State")
            if state in ("TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS"):
                raise SubmitError(f"cluster {args.cluster_id} is {state}")
        else:
            described = json.loads(aws(["emr-serverless", "get-application", "--application-id",
                                        args.application_id, "--output", "json"],
                                       f"application {args.application_id}"))["application"]
            if described.get("state") == "TERMINATED":
                raise SubmitError(f"application {args.application_id} is TERMINATED")
    if config is not None and not args.allow_local_lake:
        glue: bool | None = None  # EMR Serverless's Spark uses the Glue Data Catalog by default
        if target == "emr":
            extra = [dict(config.spark), dict(conf)]
            glue = uses_glue_metastore(described.get("Configurations"), *extra) if described else (
                True if uses_glue_metastore([], *extra) else None)
        problem = remote_config_problem(config, glue)
        if problem:
            raise ConfigError(f"{problem} (--config {config_value})")
    if not dry_run:
        aws(["s3api", "head-bucket", "--bucket", bucket], f"bucket {bucket}")  # before the build

    scheme = getattr(args, "scheme", None) or emr.scheme_for_release(described.get("ReleaseLabel"))
    log_root = described.get("LogUri") if target == "emr" else None
    with tempfile.TemporaryDirectory(prefix="lakelib-submit-") as work:
        planned = emr.prepare(emr.checkout_root(), work, args.artifacts, args.job, job_args,
                              with_wheel=target == "emr")
        if target == "serverless":
            log_root = args.log_uri or planned.layout.logs
        if log_root and log_root != "None":  # for the run's provenance (lakelib.provenance)
            conf.append((LOG_URI_CONF, emr.with_scheme(log_root, "s3")))
        if target == "emr":
            step = emr.build_spark_step(planned.job, emr.with_scheme(planned.layout.job_script, scheme),
                                        emr.with_scheme(planned.layout.pyfiles, scheme), planned.job_args,
                                        name=args.name, action_on_failure=args.action_on_failure, conf=conf)
            request: Any = [emr.to_cli_step(step)]
        else:
            request = emr.build_job_run_request(
                args.application_id, args.execution_role_arn, planned, name=args.name, conf=conf,
                log_uri=args.log_uri, scheme=scheme,
                cloudwatch_log_group=(args.cloudwatch_log_group or "") if args.cloudwatch_logs else None)
        if dry_run:
            print(json.dumps(redact(request), indent=2), file=out)
            for _, uri in planned.uploads:
                print(f"submit: would upload {uri}", file=err)
            return 0
        stage = emr.stage(planned, Path(work) / "stage")
        aws(["s3", "cp", "--recursive", "--only-show-errors", str(stage), f"s3://{bucket}/"],
            f"upload to s3://{bucket} failed")
        for _, uri in planned.uploads:
            print(f"submit: uploaded {uri}", file=err)
        request_file = Path(work) / "request.json"
        request_file.write_text(json.dumps(request), encoding="utf-8")
        if target == "emr":
            if any(uri == planned.layout.wheel for _, uri in planned.uploads):
                print(f"submit: wheel for the bootstrap action: {planned.layout.wheel}", file=err)
            role = ["--execution-role-arn", args.execution_role_arn] if args.execution_role_arn else []
            run_id = aws(["emr", "add-steps", "--cluster-id", args.cluster_id, "--steps", f"file://{request_file}",
                          *role, "--query", "StepIds[0]", "--output", "text"],
                         f"cluster {args.cluster_id}: cannot add the step").strip()
        else:
            run_id = aws(["emr-serverless", "start-job-run", "--cli-input-json", f"file://{request_file}",
                          "--query", "jobRunId", "--output", "text"],
                         f"application {args.application_id}: cannot start the job run").strip()
    print(run_id, file=out, flush=True)
    if not args.wait:
        return 0
    first = args.cluster_id if target == "emr" else args.application_id
    import boto3

    session = boto3.session.Session()
    prices = None if target == "emr" else emr.chosen_prices(args, session.region_name)
    return watch(target, first, run_id, args.poll_seconds, args.timeout_seconds, prices, session, err, config)


def run_local(argv: Sequence[str]) -> int:
    """``lake submit local JOB ARGS``: ``spark-submit`` the job on this machine (lakelib importable, Spark's startup
    chatter quiet); the job's exit status."""
    if not argv or argv[0].startswith("-"):
        raise UsageError("usage: submit local JOB [JOB_ARGS...]")
    script = emr.job_script(None, argv[0])
    spark_submit = shutil.which("spark-submit") or str(Path(sys.executable).parent / "spark-submit")
    if not os.access(spark_submit, os.X_OK):
        raise UsageError("spark-submit is not on PATH (run 'make install' and use .venv/bin, or pip install pyspark)")
    if importlib.util.find_spec("pyspark") is None:
        raise UsageError(f"{sys.executable} has no pyspark (pip install 'lakelib[spark]')")
    from importlib.resources import files

    log4j = Path(str(files("lakelib").joinpath("resources").joinpath("log4j2.properties")))
    env = dict(os.environ)
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    root = str(Path(os.path.abspath(emr.__file__)).parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    command = [spark_submit, "--driver-java-options", f"-Dlog4j2.configurationFile=file:{log4j}", str(script),
               *argv[1:]]
    return subprocess.run(command, env=env).returncode


def main(argv: Sequence[str] | None = None, prog: str = "lake submit") -> int:
    """``lake submit local|emr|serverless ...``; exit 0 success, 1 failure, 2 usage or config error."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="submit: %(levelname)s: %(message)s", stream=sys.stderr)
    if not argv or argv[0] in ("-h", "--help"):
        stream = sys.stdout if argv else sys.stderr
        print(__doc__.split("\n\n")[1].replace("lake submit", prog), file=stream)
        print(f"{prog} MODE --help: the options of a mode", file=stream)
        return 0 if argv else 2
    mode, rest = argv[0], argv[1:]
    try:
        if mode == "local":
            return run_local(rest)
        if mode in ("emr", "serverless"):
            return run_remote(mode, rest, prog)
        raise UsageError(f"unknown mode {mode!r} (local, emr or serverless; see {prog} --help)")
    except LakelibError as exc:
        print(f"submit: error: {redact_text(str(exc), argv)}", file=sys.stderr)
        return exc.exit_code
    except SystemExit as exc:  # an argument parser (ours or the job's) printed its usage and error line
        return exc.code if isinstance(exc.code, int) else 2


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="local|emr|serverless ...",
                        help="the mode, its options, the job and its arguments (lake submit emr --help)")


@command("submit", "run a job here, on an EMR cluster or on EMR Serverless (scripts/submit.sh)", _add_arguments)
def run(args: argparse.Namespace) -> int:
    """``lake submit``: :func:`main`."""
    return main(args.argv)


if __name__ == "__main__":
    prog_name = os.environ.get("LAKELIB_SUBMIT_PROG", "lake submit")
    sys.exit(main(prog=prog_name))
