"""Submit lakelib jobs to Amazon EMR: package, name the artifacts, build the Spark step, add it, wait for it.

The pure part (no AWS, no Spark) builds what a submission needs:

- :func:`build_wheel` and :func:`build_pyfiles_zip` package ``lakelib/`` and ``jobs/`` reproducibly (same sources,
  same bytes), so :func:`artifact_layout` can name the uploads after their content and a rerun never overwrites
  files a running step still reads;
- :func:`rewrite_job_args` points ``--config`` at the uploaded copy;
- :func:`build_spark_step` returns the ``StepConfig`` dict that EMR's ``AddJobFlowSteps`` takes
  (``command-runner.jar`` running ``spark-submit --deploy-mode cluster``); :func:`to_cli_step` is the same
  step in the shape ``aws emr add-steps --steps file://...`` reads.

The thin part takes an injected boto3 EMR client: :func:`add_step`, :func:`step_state`, :func:`wait_for_step`,
:func:`step_log_uri`. From a notebook::

    import boto3
    from lakelib import emr
    step = emr.build_spark_step("json_to_parquet", "s3://b/p/lakelib/0.1.0-ab12/jobs/json_to_parquet.py",
                                "s3://b/p/lakelib/0.1.0-ab12/lakelib.zip", ["--config", "s3://b/conf.yaml"])
    step_id = emr.add_step(boto3.client("emr"), "j-XXXX", step)
    emr.wait_for_step(boto3.client("emr"), "j-XXXX", step_id)

``python -m lakelib.emr plan ...`` is what ``scripts/submit.sh emr`` calls to build the packages and the step JSON;
the script itself uploads with ``aws s3 cp`` and submits with ``aws emr add-steps``.
"""
from __future__ import annotations

import argparse
import ast
import base64
import csv
import hashlib
import io
import json
import logging
import os
import re
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping, Sequence

from lakelib.errors import LakelibError, SubmitError, UsageError

log = logging.getLogger(__name__)

ACTIONS_ON_FAILURE = ("CONTINUE", "CANCEL_AND_WAIT", "TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW")
#: Step states after which nothing changes any more.
FINAL_STATES = ("COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED")
PYFILES_ZIP = "lakelib.zip"
#: Fixed timestamp of every archive member (zip cannot store earlier dates): same sources, same bytes.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_PACKAGES = ("lakelib", "jobs")
_S3_URI = re.compile(r"^s3a?://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(/.*)?$")
_SKIP_PARTS = {"__pycache__"}


@dataclass(frozen=True)
class PackageInfo:
    """What the wheel's metadata says, read from ``setup.py`` without running it."""

    name: str
    version: str
    requires: tuple[str, ...] = ()
    python_requires: str | None = None
    summary: str = ""
    console_scripts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArtifactLayout:
    """Where each uploaded file lives (``s3://`` URIs, as ``aws s3 cp`` takes them)."""

    prefix: str
    wheel: str
    pyfiles: str
    job_script: str
    config: str | None


# --------------------------------------------------------------------------------------------------- packaging


def read_package_info(repo: str | os.PathLike[str]) -> PackageInfo:
    """Read name, version, requirements and console scripts from the literal arguments of ``setup(...)``.

    Raises
    ------
    SubmitError
        No ``setup.py``, or it has no ``setup(name=..., version=...)`` with literal values.
    """
    path = Path(repo) / "setup.py"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError) as exc:
        raise SubmitError(f"cannot read {path}: {exc}") from None
    values: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "setup":
            for kw in node.keywords:
                try:
                    values[kw.arg] = ast.literal_eval(kw.value)
                except ValueError:
                    continue
    if not isinstance(values.get("name"), str) or not isinstance(values.get("version"), str):
        raise SubmitError(f"{path}: setup() has no literal name= and version=")
    scripts = (values.get("entry_points") or {}).get("console_scripts", ())
    return PackageInfo(
        name=values["name"],
        version=values["version"],
        requires=tuple(values.get("install_requires") or ()),
        python_requires=values.get("python_requires"),
        summary=values.get("description", ""),
        console_scripts=tuple(scripts),
    )


def package_files(repo: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """The files that make up the package: ``(archive name, path)`` for every ``.py`` and ``py.typed`` under
    ``lakelib/`` and ``jobs/``, sorted by name."""
    root = Path(repo)
    found = []
    for package in _PACKAGES:
        for path in (root / package).rglob("*"):
            rel = path.relative_to(root)
            if not path.is_file() or _SKIP_PARTS.intersection(rel.parts):
                continue
            if path.suffix == ".py" or path.name == "py.typed":
                found.append((rel.as_posix(), path))
    return sorted(found)


def build_pyfiles_zip(repo: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Write ``lakelib/`` and ``jobs/`` into a zip for ``spark-submit --py-files`` (byte-identical for identical
    sources). Returns the path written."""
    dest = Path(dest)
    with zipfile.ZipFile(dest, "w") as archive:
        for name, path in package_files(repo):
            _add(archive, name, path.read_bytes())
    return dest


def build_wheel(repo: str | os.PathLike[str], dest_dir: str | os.PathLike[str]) -> Path:
    """Build a pure-Python wheel of lakelib (``lakelib`` and ``jobs`` packages) into ``dest_dir``.

    No setuptools or network needed, and reproducible: the same sources give the same bytes. PySpark is never
    a requirement of it (``setup.py`` keeps PySpark in an extra).

    Returns
    -------
    Path
        ``dest_dir/<name>-<version>-py3-none-any.whl``.
    """
    info = read_package_info(repo)
    dist = re.sub(r"[^A-Za-z0-9.]+", "_", info.name)
    dist_info = f"{dist}-{info.version}.dist-info"
    members = [(name, path.read_bytes()) for name, path in package_files(repo)]
    metadata = ["Metadata-Version: 2.1", f"Name: {info.name}", f"Version: {info.version}"]
    if info.summary:
        metadata.append(f"Summary: {info.summary}")
    if info.python_requires:
        metadata.append(f"Requires-Python: {info.python_requires}")
    metadata += [f"Requires-Dist: {req}" for req in info.requires]
    members.append((f"{dist_info}/METADATA", ("\n".join(metadata) + "\n").encode()))
    wheel_file = "Wheel-Version: 1.0\nGenerator: lakelib.emr\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    members.append((f"{dist_info}/WHEEL", wheel_file.encode()))
    members.append((f"{dist_info}/top_level.txt", ("\n".join(_PACKAGES) + "\n").encode()))
    if info.console_scripts:
        entry = "[console_scripts]\n" + "".join(f"{s.replace(' ', '')}\n" for s in info.console_scripts)
        members.append((f"{dist_info}/entry_points.txt", entry.replace("=", " = ").encode()))
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, data in members:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        writer.writerow([name, f"sha256={digest}", len(data)])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    members.append((f"{dist_info}/RECORD", record.getvalue().encode()))

    dest = Path(dest_dir) / f"{dist}-{info.version}-py3-none-any.whl"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w") as archive:
        for name, data in members:
            _add(archive, name, data)
    return dest


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def content_digest(paths: Iterable[str | os.PathLike[str]], length: int = 12) -> str:
    """A short hex SHA-256 over the bytes of ``paths`` (in the order given)."""
    sha = hashlib.sha256()
    for path in paths:
        data = Path(path).read_bytes()
        sha.update(len(data).to_bytes(8, "big"))
        sha.update(data)
    return sha.hexdigest()[:length]


# --------------------------------------------------------------------------------------------------- naming


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b/`` -> ``("bucket", "a/b")``.

    Raises
    ------
    UsageError
        Not an ``s3://`` or ``s3a://`` URI with a valid bucket name.
    """
    match = _S3_URI.match(uri or "")
    if match is None:
        raise UsageError(f"{uri!r} is not an s3:// URI with a valid bucket name")
    return match.group(1), (match.group(2) or "").strip("/")


def artifact_layout(
    artifacts: str,
    job: str,
    version: str,
    package_digest: str,
    config_name: str | None = None,
    config_digest: str | None = None,
    wheel_name: str | None = None,
) -> ArtifactLayout:
    """Name every upload under ``artifacts`` after its content, so reruns are safe.

    ``<artifacts>/lakelib/<version>-<package digest>/`` holds the wheel, the ``--py-files`` zip and
    ``jobs/<job>.py``; ``<artifacts>/config/<config digest>/<config file name>`` holds the config. A changed source
    or config gets a new folder; the same one is uploaded over itself with identical bytes.

    Examples
    --------
    >>> layout = artifact_layout("s3://bkt/emr/", "json_to_parquet", "0.1.0", "ab12", "emr.yaml", "cd34")
    >>> layout.job_script
    's3://bkt/emr/lakelib/0.1.0-ab12/jobs/json_to_parquet.py'
    >>> layout.config
    's3://bkt/emr/config/cd34/emr.yaml'
    """
    bucket, key = split_s3_uri(artifacts)
    root = f"s3://{bucket}" + (f"/{key}" if key else "")
    prefix = f"{root}/lakelib/{version}-{package_digest}"
    config = None
    if config_name is not None:
        if not config_digest:
            raise ValueError("config_digest is required with config_name")
        config = f"{root}/config/{config_digest}/{PurePosixPath(config_name).name}"
    return ArtifactLayout(
        prefix=prefix,
        wheel=f"{prefix}/{wheel_name or f'lakelib-{version}-py3-none-any.whl'}",
        pyfiles=f"{prefix}/{PYFILES_ZIP}",
        job_script=f"{prefix}/jobs/{job}.py",
        config=config,
    )


def with_scheme(uri: str, scheme: str) -> str:
    """``s3://b/k`` as ``<scheme>://b/k`` (``s3`` or ``s3a``).

    >>> with_scheme("s3://b/k.py", "s3a")
    's3a://b/k.py'
    """
    if scheme not in ("s3", "s3a"):
        raise UsageError(f"scheme {scheme!r}: expected s3 or s3a")
    return scheme + uri[uri.index("://"):]


def scheme_for_release(release_label: str | None) -> str:
    """The URI scheme Spark on this EMR release reads S3 with: ``s3`` (EMRFS) up to 7.x, ``s3a`` from 8 on.

    >>> scheme_for_release("emr-7.5.0"), scheme_for_release("emr-spark-8.0.0"), scheme_for_release(None)
    ('s3', 's3a', 's3')
    """
    match = re.search(r"(\d+)\.\d+(?:\.\d+)?$", release_label or "")
    return "s3a" if match and int(match.group(1)) >= 8 else "s3"


# --------------------------------------------------------------------------------------------------- the step


def config_argument(job_args: Sequence[str]) -> str | None:
    """The value of ``--config`` (``--config X`` or ``--config=X``) in ``job_args``, or ``None``.

    Raises
    ------
    UsageError
        ``--config`` is the last argument (no value).
    """
    for i, arg in enumerate(job_args):
        if arg == "--config":
            if i + 1 >= len(job_args):
                raise UsageError("--config needs a value")
            return job_args[i + 1]
        if arg.startswith("--config="):
            return arg[len("--config="):]
    return None


def rewrite_job_args(job_args: Sequence[str], config_uri: str | None) -> list[str]:
    """``job_args`` with every ``--config`` value replaced by ``config_uri`` (unchanged when it is ``None``).

    >>> rewrite_job_args(["--config", "conf/emr.yaml", "--date", "2024-01-02"], "s3://b/c/emr.yaml")
    ['--config', 's3://b/c/emr.yaml', '--date', '2024-01-02']
    >>> rewrite_job_args(["--config=conf/emr.yaml"], "s3://b/c/emr.yaml")
    ['--config=s3://b/c/emr.yaml']
    """
    out = list(job_args)
    if config_uri is None:
        return out
    for i, arg in enumerate(out):
        if arg == "--config" and i + 1 < len(out):
            out[i + 1] = config_uri
        elif arg.startswith("--config="):
            out[i] = f"--config={config_uri}"
    return out


def parse_conf(items: Iterable[str]) -> list[tuple[str, str]]:
    """``["k=v", ...]`` -> ``[("k", "v"), ...]``.

    Raises
    ------
    UsageError
        An item without ``=`` or with an empty key.
    """
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--conf {item!r}: expected key=value")
        pairs.append((key.strip(), value))
    return pairs


def build_spark_step(
    job: str,
    job_script: str,
    pyfiles: str,
    job_args: Sequence[str],
    name: str | None = None,
    action_on_failure: str = "CONTINUE",
    conf: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The ``StepConfig`` of one cluster-mode Spark step, as EMR's ``AddJobFlowSteps`` takes it.

    Parameters
    ----------
    job
        The job's name (``json_to_parquet``), for the default step name.
    job_script
        URI of the uploaded ``jobs/<job>.py``.
    pyfiles
        URI of the uploaded zip of ``lakelib/`` and ``jobs/`` (``--py-files``).
    job_args
        The job's arguments, already rewritten to uploaded copies (:func:`rewrite_job_args`).
    name
        Step name; ``lakelib <job> <args>`` (cut to 256 characters) by default.
    action_on_failure
        One of :data:`ACTIONS_ON_FAILURE`; ``CONTINUE`` keeps a long-running cluster alive.
    conf
        Extra ``--conf key=value`` pairs for ``spark-submit``.

    Raises
    ------
    UsageError
        An unknown ``action_on_failure``.

    Examples
    --------
    >>> step = build_spark_step("j", "s3://b/j.py", "s3://b/l.zip", ["--date", "2024-01-02"])
    >>> step["HadoopJarStep"]["Args"]
    ['spark-submit', '--deploy-mode', 'cluster', '--master', 'yarn', '--py-files', 's3://b/l.zip', 's3://b/j.py', \
'--date', '2024-01-02']
    """
    if action_on_failure not in ACTIONS_ON_FAILURE:
        expected = ", ".join(ACTIONS_ON_FAILURE)
        raise UsageError(f"--action-on-failure {action_on_failure!r}: expected one of {expected}")
    args = ["spark-submit", "--deploy-mode", "cluster", "--master", "yarn", "--py-files", pyfiles]
    for key, value in conf:
        args += ["--conf", f"{key}={value}"]
    args.append(job_script)
    args += list(job_args)
    step_name = name or " ".join(["lakelib", job, *job_args])
    return {
        "Name": step_name[:256],
        "ActionOnFailure": action_on_failure,
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": args},
    }


def to_cli_step(step: Mapping[str, Any]) -> dict[str, Any]:
    """The same step in the form ``aws emr add-steps --steps file://step.json`` reads (a ``CUSTOM_JAR`` step).

    >>> to_cli_step(build_spark_step("j", "s3://b/j.py", "s3://b/l.zip", [], name="n"))["Jar"]
    'command-runner.jar'
    """
    jar = step["HadoopJarStep"]
    return {
        "Type": "CUSTOM_JAR",
        "Name": step["Name"],
        "ActionOnFailure": step["ActionOnFailure"],
        "Jar": jar["Jar"],
        "Args": list(jar["Args"]),
    }


# --------------------------------------------------------------------------------------------------- AWS calls


def add_step(client: Any, cluster_id: str, step: Mapping[str, Any]) -> str:
    """Add ``step`` (from :func:`build_spark_step`) to the cluster; returns the step id.

    Raises
    ------
    SubmitError
        EMR refused (unknown cluster, terminated cluster, no permission...).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = client.add_job_flow_steps(JobFlowId=cluster_id, Steps=[dict(step)])
    except (ClientError, BotoCoreError) as exc:
        raise SubmitError(f"cluster {cluster_id}: cannot add the step: {_aws_message(exc)}") from None
    return response["StepIds"][0]


def step_state(client: Any, cluster_id: str, step_id: str) -> tuple[str, str | None]:
    """``(state, reason)`` of a step: ``PENDING``, ``RUNNING``, ``COMPLETED``, ``FAILED``... and the failure reason
    EMR gives, if any."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        status = client.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["Status"]
    except (ClientError, BotoCoreError) as exc:
        raise SubmitError(f"step {step_id} on {cluster_id}: cannot read its state: {_aws_message(exc)}") from None
    details = status.get("FailureDetails") or {}
    reason = details.get("Message") or details.get("Reason") or (status.get("StateChangeReason") or {}).get("Message")
    return status["State"], reason


def step_log_uri(client: Any, cluster_id: str, step_id: str) -> str | None:
    """Where EMR puts the step's logs (``<cluster LogUri>/<cluster id>/steps/<step id>/``), or ``None`` when the
    cluster has no ``LogUri``."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        log_uri = client.describe_cluster(ClusterId=cluster_id)["Cluster"].get("LogUri")
    except (ClientError, BotoCoreError):
        return None
    return steps_log_location(log_uri, cluster_id, step_id)


def steps_log_location(log_uri: str | None, cluster_id: str, step_id: str) -> str | None:
    """``<LogUri>/<cluster id>/steps/<step id>/`` (EMR's layout), or ``None`` without a LogUri.

    >>> steps_log_location("s3n://logs/emr/", "j-1", "s-2")
    's3://logs/emr/j-1/steps/s-2/'
    """
    if not log_uri or log_uri == "None":
        return None
    base = re.sub(r"^s3n://", "s3://", log_uri).rstrip("/")
    return f"{base}/{cluster_id}/steps/{step_id}/"


def wait_for_step(
    client: Any, cluster_id: str, step_id: str, poll_seconds: float = 30.0, timeout_seconds: float | None = None
) -> str:
    """Poll the step until it reaches a final state; returns ``COMPLETED``.

    Raises
    ------
    SubmitError
        The step ended in any other state (message: state, reason, where the logs are), or ``timeout_seconds``
        passed first.
    """
    deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    while True:
        state, reason = step_state(client, cluster_id, step_id)
        if state in FINAL_STATES:
            break
        if deadline is not None and time.monotonic() >= deadline:
            raise SubmitError(f"step {step_id} still {state} after {timeout_seconds:g}s")
        log.info("step %s: %s", step_id, state)
        time.sleep(poll_seconds)
    if state == "COMPLETED":
        return state
    where = step_log_uri(client, cluster_id, step_id)
    logs = f"; logs: {where}" if where else "; the cluster has no LogUri, see the step in the EMR console"
    raise SubmitError(f"step {step_id} {state}" + (f": {reason}" if reason else "") + logs)


def _aws_message(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return (response.get("Error") or {}).get("Message") or str(exc).splitlines()[0]


# --------------------------------------------------------------------------------------------------- CLI


def plan(args: argparse.Namespace) -> dict[str, Any]:
    """Package and plan one submission: build the zip (and the wheel unless ``--dry-run``), name the uploads,
    build the step. Writes ``step.json`` (the CLI form) and returns the plan (what to upload where, the step).

    Raises
    ------
    UsageError
        Unknown job, no ``--config``, a bad ``--conf`` or ``--artifacts``.
    ConfigError
        The local config does not validate (checked before anything is uploaded).
    """
    repo = Path(args.repo).resolve()
    job = args.job
    script = repo / "jobs" / f"{job}.py"
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", job) or not script.is_file():
        known = sorted(p.stem for p in (repo / "jobs").glob("*.py") if not p.stem.startswith("_"))
        raise UsageError(f"unknown job {job!r} (jobs/: {', '.join(known) or 'none'})")
    split_s3_uri(args.artifacts)
    conf = parse_conf(args.conf)
    config_value = config_argument(args.job_args)
    if config_value is None:
        raise UsageError("the job arguments need --config PATH (it is uploaded and rewritten to its S3 copy)")
    local_config = None if _S3_URI.match(config_value) else Path(config_value)
    if local_config is not None:
        if not local_config.is_file():
            raise UsageError(f"--config {config_value}: no such file")
        from lakelib.config import load_config

        load_config(local_config)

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    zip_path = build_pyfiles_zip(repo, work / PYFILES_ZIP)
    info = read_package_info(repo)
    digest = content_digest([zip_path, repo / "setup.py"])
    wheel_path = None if args.dry_run else build_wheel(repo, work)
    layout = artifact_layout(
        args.artifacts,
        job,
        info.version,
        digest,
        config_name=local_config.name if local_config else None,
        config_digest=content_digest([local_config]) if local_config else None,
        wheel_name=wheel_path.name if wheel_path else None,
    )
    config_uri = layout.config if local_config else with_scheme(config_value, "s3")
    job_args = rewrite_job_args(args.job_args, config_uri)
    for i, arg in enumerate(job_args):
        if arg == "--report" and i + 1 < len(job_args) and not _S3_URI.match(job_args[i + 1]):
            log.warning("--report %s is a path on the driver node of the cluster; give an s3:// URI", job_args[i + 1])
    step = build_spark_step(
        job,
        with_scheme(layout.job_script, args.scheme),
        with_scheme(layout.pyfiles, args.scheme),
        job_args,
        name=args.name,
        action_on_failure=args.action_on_failure,
        conf=conf,
    )
    uploads = [(str(zip_path), layout.pyfiles), (str(script), layout.job_script)]
    if wheel_path is not None:
        uploads.append((str(wheel_path), layout.wheel))
    if local_config is not None:
        uploads.append((str(local_config), layout.config))
    (work / "step.json").write_text(json.dumps([to_cli_step(step)], indent=2) + "\n", encoding="utf-8")
    (work / "uploads.tsv").write_text("".join(f"{src}\t{dst}\n" for src, dst in uploads), encoding="utf-8")
    return {"step": step, "uploads": uploads, "layout": layout}


def _plan_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lakelib.emr plan", description="package and plan an EMR step")
    parser.add_argument("--repo", default=".", help="the lakelib checkout")
    parser.add_argument("--workdir", required=True, help="where the packages, step.json and uploads.tsv go")
    parser.add_argument("--artifacts", required=True, metavar="S3_URI")
    parser.add_argument("--scheme", default="s3", choices=("s3", "s3a"), help="URI scheme Spark reads S3 with")
    parser.add_argument("--name")
    parser.add_argument("--action-on-failure", default="CONTINUE")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--dry-run", action="store_true", help="do not build the wheel (nothing is uploaded)")
    parser.add_argument("job")
    parser.add_argument("job_args", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lakelib.emr plan ...`` (used by ``scripts/submit.sh``) and ``... scheme RELEASE_LABEL``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="submit: %(levelname)s: %(message)s", stream=sys.stderr)
    try:
        if argv[:1] == ["scheme"] and len(argv) == 2:
            print(scheme_for_release(argv[1]))
            return 0
        if argv[:1] != ["plan"]:
            print("usage: python -m lakelib.emr {plan ... | scheme RELEASE_LABEL}", file=sys.stderr)
            return 2
        result = plan(_plan_parser().parse_args(argv[1:]))
        print(result["layout"].wheel if result["layout"] else "")
        return 0
    except LakelibError as exc:
        print(f"submit: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
