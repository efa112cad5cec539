"""Submit lakelib jobs to Amazon EMR (steps on a cluster) and EMR Serverless (job runs): package, name the
artifacts, build the request, send it, wait for it.

The pure part (no AWS, no Spark) builds what a submission needs:

- :func:`build_wheel` runs the standard build (``python -m build``, metadata from ``pyproject.toml``);
  :func:`build_pyfiles_zip` repacks that wheel, plus the pure-Python files of :data:`BUNDLED_DEPENDENCIES`
  (PyYAML), into the ``--py-files`` zip, so a Python with only PySpark and boto3 runs the jobs;
- :func:`artifact_layout` names the uploads after their content, so a rerun never overwrites files a running job
  still reads;
- :func:`rewrite_job_args` points ``--config`` at the uploaded copy;
- :func:`build_spark_step` returns the ``StepConfig`` dict of ``AddJobFlowSteps`` (``command-runner.jar`` running
  ``spark-submit --deploy-mode cluster``) and :func:`build_job_run_request` the ``StartJobRun`` request of EMR
  Serverless. Names and printed forms go through :func:`lakelib.redact.redact_args`.

The thin part takes injected boto3 clients: :func:`upload`, :func:`add_step`, :func:`wait_for_step` (botocore's
``step_complete`` waiter), :func:`start_job_run`, :func:`wait_for_job_run` (a botocore waiter on ``GetJobRun``).
From a notebook::

    import boto3
    from lakelib import emr
    planned = emr.prepare(".", "/tmp/submit", "s3://b/p", "json_to_parquet", ["--config", "conf/emr.yaml"])
    emr.upload(boto3.client("s3"), planned)
    request = emr.build_job_run_request("00abc", "arn:aws:iam::1:role/r", planned)
    run_id = emr.start_job_run(boto3.client("emr-serverless"), request)
    emr.wait_for_job_run(boto3.client("emr-serverless"), "00abc", run_id)

``python -m lakelib.emr plan|wait-step|wait-job-run ...`` is what ``scripts/submit.sh`` calls; the script uploads
with ``aws s3 cp`` and submits with ``aws emr add-steps`` / ``aws emr-serverless start-job-run``.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping, Sequence

from lakelib.errors import LakelibError, SubmitError, UsageError, aws_error
from lakelib.paths import S3_URI, canonical_location
from lakelib.redact import is_secret_key, redact_args

log = logging.getLogger(__name__)

ACTIONS_ON_FAILURE = ("CONTINUE", "CANCEL_AND_WAIT", "TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW")
PYFILES_ZIP = "lakelib.zip"
#: Distributions the jobs import that EMR Serverless images are not known to carry: their pure-Python files ride
#: in the ``--py-files`` zip (PyYAML falls back to its pure-Python parser without its C extension).
BUNDLED_DEPENDENCIES = ("PyYAML",)
#: Distributions every EMR and EMR Serverless image provides: never shipped.
PROVIDED_DEPENDENCIES = ("boto3", "pyspark")
#: Job run states of EMR Serverless after which nothing changes any more.
JOB_RUN_FINAL_STATES = ("SUCCESS", "FAILED", "CANCELLED")
#: Fixed timestamp of every archive member (zip cannot store earlier dates): same sources, same bytes.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01, for the wheel build
_JOB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOG_SCHEMES = ("s3", "s3a", "s3n")
#: A botocore waiter on ``GetJobRun`` (EMR Serverless ships none): success on SUCCESS, failure on FAILED/CANCELLED.
_JOB_RUN_WAITER = {
    "version": 2,
    "waiters": {
        "JobRunFinished": {
            "operation": "GetJobRun",
            "delay": 30,
            "maxAttempts": 2880,
            "acceptors": [
                {"state": "success", "matcher": "path", "argument": "jobRun.state", "expected": "SUCCESS"},
                {"state": "failure", "matcher": "path", "argument": "jobRun.state", "expected": "FAILED"},
                {"state": "failure", "matcher": "path", "argument": "jobRun.state", "expected": "CANCELLED"},
            ],
        }
    },
}


@dataclass(frozen=True)
class ArtifactLayout:
    """Where each uploaded file lives (``s3://`` URIs, as ``aws s3 cp`` takes them)."""

    prefix: str
    wheel: str
    pyfiles: str
    job_script: str
    config: str | None
    logs: str


@dataclass(frozen=True)
class Planned:
    """A packaged submission: the job, its rewritten arguments, the uploads ``(local path, s3 URI)``."""

    job: str
    job_args: list[str]
    layout: ArtifactLayout
    uploads: list[tuple[str, str]] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------- packaging


def build_wheel(repo: str | os.PathLike[str], dest_dir: str | os.PathLike[str]) -> Path:
    """Build lakelib's wheel with the standard frontend (``python -m build --wheel``) into ``dest_dir``.

    The build runs on a copy of the sources (a stale ``build/`` in the checkout cannot leak into it) with
    ``SOURCE_DATE_EPOCH`` fixed, so the same sources give the same bytes. Without build isolation when this Python
    already has what ``[build-system]`` requires (``make install`` puts it there), isolated otherwise.

    Raises
    ------
    SubmitError
        ``build`` is not installed, or the build failed (its last line of output is in the message).
    """
    if importlib.util.find_spec("build") is None:
        raise SubmitError(f"{sys.executable} has no 'build' module: pip install build (or pip install -e '.[dev]')")
    repo, dest = Path(repo), Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lakelib-build-") as tmp:
        src = Path(tmp) / "src"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for name in ("lakelib", "jobs"):
            shutil.copytree(repo / name, src / name, ignore=ignore)
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            shutil.copy2(repo / name, src / name)
        command = [sys.executable, "-m", "build", "--wheel", "--outdir", str(Path(tmp) / "dist"), str(src)]
        if _build_requirements_met(repo / "pyproject.toml"):
            command.insert(4, "--no-isolation")
        env = dict(os.environ, SOURCE_DATE_EPOCH=_SOURCE_DATE_EPOCH, PYTHONDONTWRITEBYTECODE="1")
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp)
        if done.returncode != 0:
            last = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()][-1:] or ["no output"]
            raise SubmitError(f"python -m build failed: {last[0].strip()}")
        (built,) = (Path(tmp) / "dist").glob("*.whl")
        return Path(shutil.copy2(built, dest / built.name))


def _build_requirements_met(pyproject: Path) -> bool:
    """Whether this Python satisfies ``[build-system] requires`` (then the build needs no isolated env)."""
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # Python < 3.11: isolated builds only
        return False
    from packaging.requirements import Requirement

    with open(pyproject, "rb") as handle:
        requires = tomllib.load(handle)["build-system"]["requires"]
    for text in requires:
        requirement = Requirement(text)
        try:
            installed = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            return False
        if not requirement.specifier.contains(installed, prereleases=True):
            return False
    return True


def wheel_version(wheel: str | os.PathLike[str]) -> str:
    """The version in a wheel's file name.

    >>> wheel_version("dist/lakelib-0.1.0-py3-none-any.whl")
    '0.1.0'
    """
    return Path(wheel).name.split("-")[1]


def bundled_files(distribution: str) -> list[tuple[str, bytes]]:
    """The pure-Python files of an installed distribution, ready for a zip: ``.py`` files of its packages (compiled
    extensions left out) and its ``METADATA`` and license files, as ``(archive name, bytes)``.

    Raises
    ------
    SubmitError
        The distribution is not installed in this Python.
    """
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise SubmitError(f"{distribution} is not installed in {sys.executable}; it is shipped from there") from None
    files = list(dist.files or ())
    top_level = set((dist.read_text("top_level.txt") or "").split()) or {
        PurePosixPath(str(f)).parts[0] for f in files if PurePosixPath(str(f)).parts[1:] == ("__init__.py",)
    }
    out = []
    for path in files:
        parts = PurePosixPath(str(path)).parts
        in_package = parts[0] in top_level and not parts[0].startswith("_") and path.suffix == ".py"
        is_meta = parts[0].endswith(".dist-info") and (path.name == "METADATA" or "licenses" in parts)
        if (in_package and "__pycache__" not in parts) or is_meta:
            out.append((str(path), Path(str(dist.locate_file(path))).read_bytes()))
    if not any(name.endswith(".py") for name, _ in out):
        raise SubmitError(f"{distribution} in {sys.executable} has no Python files to ship")
    return sorted(out)


def build_pyfiles_zip(
    wheel: str | os.PathLike[str], dest: str | os.PathLike[str], bundle: Sequence[str] = BUNDLED_DEPENDENCIES
) -> Path:
    """Write the ``spark-submit --py-files`` zip: every member of ``wheel`` (packages, package data, dist-info) plus
    :func:`bundled_files` of each distribution in ``bundle``. Byte-identical for identical inputs.

    A pure-Python wheel installs by unpacking, so its members are exactly what ``pip install`` would put on the
    path; a zip on ``sys.path`` is what ``--py-files`` takes (Spark does not put a ``.whl`` there).
    """
    members: dict[str, bytes] = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            members[name] = archive.read(name)
    for distribution in bundle:
        members.update(bundled_files(distribution))
    dest = Path(dest)
    with zipfile.ZipFile(dest, "w") as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, members[name])
    return dest


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
        Not an ``s3://`` or ``s3a://`` URI with a valid bucket name, or a key with ``.``, ``..`` or empty segments
        (S3 keeps them literally, a local staging folder would not).

    >>> split_s3_uri("s3://bkt/emr/")
    ('bkt', 'emr')
    """
    match = S3_URI.match(uri or "")
    if match is None:
        raise UsageError(f"{uri!r} is not an s3:// URI with a valid bucket name")
    key = (match.group(3) or "").strip("/")
    if key and any(part in ("", ".", "..") for part in key.split("/")):
        raise UsageError(f"{uri!r}: a key may not hold '.', '..' or empty segments")
    return match.group(2), key


def artifact_layout(
    artifacts: str,
    job: str,
    version: str,
    package_digest: str,
    config_name: str | None = None,
    config_digest: str | None = None,
) -> ArtifactLayout:
    """Name every upload under ``artifacts`` after its content, so reruns are safe.

    ``<artifacts>/lakelib/<version>-<package digest>/`` holds the wheel, the ``--py-files`` zip and
    ``jobs/<job>.py``; ``<artifacts>/config/<config digest>/<config file name>`` holds the config;
    ``<artifacts>/logs/`` is where EMR Serverless job runs log by default.

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
        wheel=f"{prefix}/lakelib-{version}-py3-none-any.whl",
        pyfiles=f"{prefix}/{PYFILES_ZIP}",
        job_script=f"{prefix}/jobs/{job}.py",
        config=config,
        logs=f"{root}/logs/",
    )


def with_scheme(uri: str, scheme: str) -> str:
    """An S3 URI (``s3://``, ``s3a://``, ``s3n://``) in the spelling of ``scheme`` (``s3`` or ``s3a``), through
    :func:`lakelib.paths.canonical_location` (a trailing slash is kept).

    >>> with_scheme("s3://b/k.py", "s3a"), with_scheme("s3n://logs/emr/", "s3")
    ('s3a://b/k.py', 's3://logs/emr/')
    """
    if scheme not in ("s3", "s3a"):
        raise UsageError(f"scheme {scheme!r}: expected s3 or s3a")
    given, sep, rest = uri.partition("://")
    if not sep or given not in _LOG_SCHEMES:
        raise UsageError(f"{uri!r} is not an S3 URI")
    canonical = canonical_location(f"s3a://{rest}")  # s3://<rest>, one spelling
    return scheme + canonical[len("s3"):] + ("/" if uri.endswith("/") else "")


def scheme_for_release(release_label: str | None) -> str:
    """The URI scheme Spark on this EMR release reads S3 with: ``s3`` (EMRFS) up to 7.x, ``s3a`` from 8 on.

    >>> scheme_for_release("emr-7.5.0"), scheme_for_release("emr-spark-8.0.0"), scheme_for_release(None)
    ('s3', 's3a', 's3')
    """
    match = re.search(r"(\d+)\.\d+(?:\.\d+)?$", release_label or "")
    return "s3a" if match and int(match.group(1)) >= 8 else "s3"


def job_script(repo: str | os.PathLike[str], job: str) -> Path:
    """``<repo>/jobs/<job>.py`` of a known job.

    Raises
    ------
    UsageError
        Not a job name, or no such job (the message lists the jobs).
    """
    jobs = Path(repo) / "jobs"
    script = jobs / f"{job}.py"
    if not _JOB_NAME.match(job) or not script.is_file():
        known = sorted(p.stem for p in jobs.glob("*.py") if not p.stem.startswith("_"))
        raise UsageError(f"unknown job {job!r} (jobs/: {', '.join(known) or 'none'})")
    return script


# --------------------------------------------------------------------------------------------------- job arguments


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


def secret_arguments(args: Sequence[str]) -> list[str]:
    """The keys of the ``key=value`` arguments whose values :func:`lakelib.redact.redact_args` hides.

    >>> secret_arguments(["--set", "fs.s3a.secret.key=x", "--date", "d"])
    ['fs.s3a.secret.key']
    """
    return [key for key, sep, _ in (arg.partition("=") for arg in args) if sep and is_secret_key(key)]


# --------------------------------------------------------------------------------------------------- requests


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
        URI of the uploaded ``--py-files`` zip.
    job_args
        The job's arguments, already rewritten to uploaded copies (:func:`rewrite_job_args`); kept verbatim in the
        step's arguments (the job needs them), redacted in the default name.
    name
        Step name; ``lakelib <job> <redacted args>`` (cut to 256 characters) by default.
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
    return {
        "Name": (name or default_name(job, job_args))[:256],
        "ActionOnFailure": action_on_failure,
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": args},
    }


def default_name(job: str, job_args: Sequence[str]) -> str:
    """``lakelib <job> <args>``, secrets redacted.

    >>> default_name("j", ["--set", "a.password=p"])
    'lakelib j --set a.password=*********(redacted)'
    """
    return " ".join(["lakelib", job, *redact_args(job_args)])


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


def build_job_run_request(
    application_id: str,
    execution_role_arn: str,
    planned: Planned,
    name: str | None = None,
    conf: Sequence[tuple[str, str]] = (),
    log_uri: str | None = None,
    scheme: str = "s3",
) -> dict[str, Any]:
    """The ``StartJobRun`` request of EMR Serverless for a :class:`Planned` submission.

    ``entryPoint`` is the uploaded job script, ``entryPointArguments`` the rewritten job arguments,
    ``sparkSubmitParameters`` carries ``--py-files`` and the ``--conf`` pairs, and the driver and executors log to
    ``log_uri`` (default: ``<artifacts>/logs/``).

    Raises
    ------
    UsageError
        A ``--conf`` key or value with white space (EMR Serverless splits ``sparkSubmitParameters`` on it).

    Examples
    --------
    >>> layout = artifact_layout("s3://bkt/emr", "j", "0.1.0", "ab12")
    >>> request = build_job_run_request("00app", "arn:aws:iam::1:role/r", Planned("j", ["--date", "d"], layout))
    >>> request["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"]
    '--py-files s3://bkt/emr/lakelib/0.1.0-ab12/lakelib.zip'
    >>> request["configurationOverrides"]["monitoringConfiguration"]["s3MonitoringConfiguration"]["logUri"]
    's3://bkt/emr/logs/'
    """
    params = ["--py-files", with_scheme(planned.layout.pyfiles, scheme)]
    for key, value in conf:
        if re.search(r"\s", key + value):
            raise UsageError(f"--conf {key}: EMR Serverless cannot take white space in sparkSubmitParameters")
        params += ["--conf", f"{key}={value}"]
    return {
        "applicationId": application_id,
        "executionRoleArn": execution_role_arn,
        "name": (name or default_name(planned.job, planned.job_args))[:256],
        "jobDriver": {
            "sparkSubmit": {
                "entryPoint": with_scheme(planned.layout.job_script, scheme),
                "entryPointArguments": list(planned.job_args),
                "sparkSubmitParameters": " ".join(params),
            }
        },
        "configurationOverrides": {
            "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": log_uri or planned.layout.logs}}
        },
    }


def redacted_job_run_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a ``StartJobRun`` request fit to print: secret-looking ``entryPointArguments`` values hidden."""
    out = json.loads(json.dumps(request))
    driver = out["jobDriver"]["sparkSubmit"]
    driver["entryPointArguments"] = redact_args(driver.get("entryPointArguments", []))
    return out


def driver_stderr_location(log_uri: str | None, application_id: str, job_run_id: str) -> str | None:
    """Where EMR Serverless puts a job run's driver stderr under its S3 ``logUri``, or ``None`` without one.

    >>> driver_stderr_location("s3://b/logs/", "00app", "00run")
    's3://b/logs/applications/00app/jobs/00run/SPARK_DRIVER/stderr.gz'
    """
    if not log_uri:
        return None
    base = with_scheme(log_uri, "s3").rstrip("/")
    return f"{base}/applications/{application_id}/jobs/{job_run_id}/SPARK_DRIVER/stderr.gz"


def steps_log_location(log_uri: str | None, cluster_id: str, step_id: str) -> str | None:
    """``<LogUri>/<cluster id>/steps/<step id>/`` (EMR's layout), or ``None`` without a LogUri.

    >>> steps_log_location("s3n://logs/emr/", "j-1", "s-2")
    's3://logs/emr/j-1/steps/s-2/'
    """
    if not log_uri or log_uri == "None":
        return None
    return f"{with_scheme(log_uri, 's3').rstrip('/')}/{cluster_id}/steps/{step_id}/"


# --------------------------------------------------------------------------------------------------- planning


def prepare(
    repo: str | os.PathLike[str],
    workdir: str | os.PathLike[str],
    artifacts: str,
    job: str,
    job_args: Sequence[str],
) -> Planned:
    """Package one submission and name its uploads: build the wheel and the ``--py-files`` zip into ``workdir``,
    validate a local ``--config`` (before anything is uploaded) and rewrite it to its S3 copy.

    Raises
    ------
    UsageError
        Unknown job, no ``--config``, a bad ``--artifacts``.
    ConfigError
        The local config does not validate.
    SubmitError
        The build failed.
    """
    repo = Path(repo).resolve()
    script = job_script(repo, job)
    split_s3_uri(artifacts)
    config_value = config_argument(job_args)
    if config_value is None:
        raise UsageError("the job arguments need --config PATH (it is uploaded and rewritten to its S3 copy)")
    local_config = None if S3_URI.match(config_value) else Path(config_value)
    if local_config is not None:
        if not local_config.is_file():
            raise UsageError(f"--config {config_value}: no such file")
        from lakelib.config import load_config

        load_config(local_config)
    for key in secret_arguments(job_args):
        log.warning("%s: its value is sent as a job argument, which EMR shows to anyone who may describe the "
                    "step or job run; prefer the cluster's role or a secret store", key)

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel(repo, work)
    zip_path = build_pyfiles_zip(wheel, work / PYFILES_ZIP)
    layout = artifact_layout(
        artifacts,
        job,
        wheel_version(wheel),
        content_digest([zip_path]),
        config_name=local_config.name if local_config else None,
        config_digest=content_digest([local_config]) if local_config else None,
    )
    config_uri = layout.config if local_config else with_scheme(config_value, "s3")
    rewritten = rewrite_job_args(job_args, config_uri)
    for i, arg in enumerate(rewritten):
        if arg == "--report" and i + 1 < len(rewritten) and not S3_URI.match(rewritten[i + 1]):
            log.warning("--report %s is a path on the driver of the job; give an s3:// URI", rewritten[i + 1])
    uploads = [(str(zip_path), layout.pyfiles), (str(script), layout.job_script), (str(wheel), layout.wheel)]
    if local_config is not None and layout.config is not None:
        uploads.append((str(local_config), layout.config))
    return Planned(job=job, job_args=rewritten, layout=layout, uploads=uploads)


def stage(planned: Planned, stage_dir: str | os.PathLike[str]) -> Path:
    """Copy every upload to ``<stage_dir>/<bucket>/<key>`` (for one ``aws s3 cp --recursive``); returns
    ``<stage_dir>/<bucket>``.

    Raises
    ------
    UsageError
        A key that would leave the staging folder (:func:`split_s3_uri` refuses those first).
    """
    root = Path(stage_dir).resolve()
    bucket = ""
    for src, dst in planned.uploads:
        bucket, key = split_s3_uri(dst)
        target = (root / bucket / key).resolve()
        if root / bucket not in target.parents:
            raise UsageError(f"{dst}: outside the staging folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    return root / bucket


# --------------------------------------------------------------------------------------------------- AWS calls


def upload(client: Any, planned: Planned) -> list[str]:
    """Upload every file of ``planned`` with an S3 client; returns the URIs written.

    Raises
    ------
    SubmitError
        S3 refused an upload (no bucket, no permission...).
    """
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    done = []
    for src, dst in planned.uploads:
        bucket, key = split_s3_uri(dst)
        try:
            client.upload_file(src, bucket, key)
        except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
            raise SubmitError(f"upload to {dst} failed: {aws_error(exc)[1]}") from None
        done.append(dst)
    return done


def add_step(client: Any, cluster_id: str, step: Mapping[str, Any], execution_role_arn: str | None = None) -> str:
    """Add ``step`` (from :func:`build_spark_step`) to the cluster, with a runtime role if given; returns the step id.

    Raises
    ------
    SubmitError
        EMR refused (unknown cluster, terminated cluster, no permission...).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    extra = {"ExecutionRoleArn": execution_role_arn} if execution_role_arn else {}
    try:
        response = client.add_job_flow_steps(JobFlowId=cluster_id, Steps=[dict(step)], **extra)
    except (ClientError, BotoCoreError) as exc:
        raise SubmitError(f"cluster {cluster_id}: cannot add the step: {aws_error(exc)[1]}") from None
    return response["StepIds"][0]


def step_log_uri(client: Any, cluster_id: str, step_id: str) -> str | None:
    """Where EMR puts the step's logs (``<cluster LogUri>/<cluster id>/steps/<step id>/``), or ``None`` when the
    cluster has no ``LogUri``."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        log_uri = client.describe_cluster(ClusterId=cluster_id)["Cluster"].get("LogUri")
    except (ClientError, BotoCoreError):
        return None
    return steps_log_location(log_uri, cluster_id, step_id)


def step_failure(status: Mapping[str, Any], step_id: str, logs: str | None) -> str:
    """One line for a step that ended badly: its state, EMR's ``FailureDetails`` (reason, message, log file) and
    where its logs are.

    >>> step_failure({"State": "FAILED", "FailureDetails": {"Reason": "Unknown error.",
    ...              "LogFile": "s3://l/j-1/steps/s-2/stderr.gz"}}, "s-2", "s3://l/j-1/steps/s-2/")
    'step s-2 FAILED: Unknown error.; log file: s3://l/j-1/steps/s-2/stderr.gz'
    """
    details = status.get("FailureDetails") or {}
    reason = "; ".join(dict.fromkeys(t for t in (details.get("Reason"), details.get("Message")) if t))
    line = f"step {step_id} {status.get('State')}" + (f": {reason}" if reason else "")
    if details.get("LogFile"):
        return f"{line}; log file: {with_scheme(details['LogFile'], 's3')}"
    if logs:
        return f"{line}; logs: {logs}"
    return f"{line}; the cluster has no LogUri, see the step in the EMR console"


def wait_for_step(
    client: Any, cluster_id: str, step_id: str, poll_seconds: float = 30.0, timeout_seconds: float = 86_400.0
) -> str:
    """Wait for the step with botocore's ``step_complete`` waiter; returns ``COMPLETED``.

    Raises
    ------
    SubmitError
        The step ended FAILED or CANCELLED (:func:`step_failure` is the message), or ``timeout_seconds`` passed.
    """
    from botocore.exceptions import WaiterError

    waiter = client.get_waiter("step_complete")
    attempts = max(1, int(timeout_seconds // max(poll_seconds, 0.001)))
    try:
        waiter.wait(ClusterId=cluster_id, StepId=step_id, WaiterConfig={"Delay": poll_seconds, "MaxAttempts": attempts})
        return "COMPLETED"
    except WaiterError as exc:
        last: dict[str, Any] = dict(exc.last_response or {})  # type: ignore[call-overload,unused-ignore]
        status = last.get("Step", {}).get("Status")
        if not status:
            raise SubmitError(f"step {step_id} on {cluster_id}: {aws_error(exc)[1]}") from None
        if status.get("State") not in ("FAILED", "CANCELLED", "INTERRUPTED"):
            raise SubmitError(f"step {step_id} still {status.get('State')} after {timeout_seconds:g}s") from None
        raise SubmitError(step_failure(status, step_id, step_log_uri(client, cluster_id, step_id))) from None


def start_job_run(client: Any, request: Mapping[str, Any]) -> str:
    """Start an EMR Serverless job run (``request`` from :func:`build_job_run_request`); returns its id.

    Raises
    ------
    SubmitError
        EMR Serverless refused (unknown application, role, permission...).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return client.start_job_run(**request)["jobRunId"]
    except (ClientError, BotoCoreError) as exc:
        raise SubmitError(f"application {request.get('applicationId')}: cannot start the job run: "
                          f"{aws_error(exc)[1]}") from None


def job_run_failure(job_run: Mapping[str, Any]) -> str:
    """One line for a job run that ended badly: its state, ``stateDetails`` and where the driver's stderr is.

    >>> job_run_failure({"applicationId": "00a", "jobRunId": "00r", "state": "FAILED", "stateDetails": "Job failed",
    ...     "configurationOverrides": {"monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": "s3://l/"}}}})
    'job run 00r FAILED: Job failed; driver stderr: s3://l/applications/00a/jobs/00r/SPARK_DRIVER/stderr.gz'
    """
    monitoring = (job_run.get("configurationOverrides") or {}).get("monitoringConfiguration") or {}
    log_uri = (monitoring.get("s3MonitoringConfiguration") or {}).get("logUri")
    line = f"job run {job_run.get('jobRunId')} {job_run.get('state')}"
    if job_run.get("stateDetails"):
        line += f": {job_run['stateDetails']}"
    where = driver_stderr_location(log_uri, str(job_run.get("applicationId")), str(job_run.get("jobRunId")))
    return line + (f"; driver stderr: {where}" if where else "; no S3 logUri, see the job run in EMR Studio")


def wait_for_job_run(
    client: Any, application_id: str, job_run_id: str, poll_seconds: float = 30.0, timeout_seconds: float = 86_400.0
) -> str:
    """Wait for an EMR Serverless job run with a botocore waiter on ``GetJobRun``; returns ``SUCCESS``.

    Raises
    ------
    SubmitError
        The run ended FAILED or CANCELLED (:func:`job_run_failure` is the message), or ``timeout_seconds`` passed.
    """
    from botocore.exceptions import WaiterError
    from botocore.waiter import WaiterModel, create_waiter_with_client

    waiter = create_waiter_with_client("JobRunFinished", WaiterModel(_JOB_RUN_WAITER), client)
    attempts = max(1, int(timeout_seconds // max(poll_seconds, 0.001)))
    try:
        waiter.wait(applicationId=application_id, jobRunId=job_run_id,
                    WaiterConfig={"Delay": poll_seconds, "MaxAttempts": attempts})
        return "SUCCESS"
    except WaiterError as exc:
        last: dict[str, Any] = dict(exc.last_response or {})  # type: ignore[call-overload,unused-ignore]
        job_run = last.get("jobRun")
        if not job_run:
            raise SubmitError(f"job run {job_run_id} of {application_id}: {aws_error(exc)[1]}") from None
        if job_run.get("state") not in JOB_RUN_FINAL_STATES:
            raise SubmitError(f"job run {job_run_id} still {job_run.get('state')} after {timeout_seconds:g}s") from None
        raise SubmitError(job_run_failure(job_run)) from None


# --------------------------------------------------------------------------------------------------- CLI


def plan(args: argparse.Namespace) -> Planned:
    """``python -m lakelib.emr plan``: :func:`prepare`, stage the uploads under ``<workdir>/stage``, write the
    request (``step.json`` for ``aws emr add-steps``, ``request.json`` for ``aws emr-serverless start-job-run``)
    and ``uploads.tsv``; with ``--dry-run`` print the request, secrets redacted, instead.
    """
    conf = parse_conf(args.conf)
    planned = prepare(args.repo, args.workdir, args.artifacts, args.job, args.job_args)
    work = Path(args.workdir)
    stage(planned, work / "stage")
    (work / "uploads.tsv").write_text("".join(f"{s}\t{d}\n" for s, d in planned.uploads), encoding="utf-8")
    if args.target == "emr":
        step = build_spark_step(
            planned.job,
            with_scheme(planned.layout.job_script, args.scheme),
            with_scheme(planned.layout.pyfiles, args.scheme),
            planned.job_args,
            name=args.name,
            action_on_failure=args.action_on_failure,
            conf=conf,
        )
        request: Any = [to_cli_step(step)]
        printable: Any = [dict(request[0], Args=redact_args(request[0]["Args"]))]
        out = work / "step.json"
    else:
        if not args.application_id or not args.execution_role_arn:
            raise UsageError("--application-id and --execution-role-arn are required")
        request = build_job_run_request(args.application_id, args.execution_role_arn, planned, name=args.name,
                                        conf=conf, log_uri=args.log_uri, scheme=args.scheme)
        printable = redacted_job_run_request(request)
        out = work / "request.json"
    out.write_text(json.dumps(request, indent=2) + "\n", encoding="utf-8")
    if args.dry_run:
        print(json.dumps(printable, indent=2))
    else:
        print(planned.layout.wheel)
    return planned


def _plan_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lakelib.emr plan", description="package and plan a submission")
    parser.add_argument("--target", choices=("emr", "serverless"), default="emr")
    parser.add_argument("--repo", default=".", help="the lakelib checkout")
    parser.add_argument("--workdir", required=True, help="where the packages, the request and uploads.tsv go")
    parser.add_argument("--artifacts", required=True, metavar="S3_URI")
    parser.add_argument("--scheme", default="s3", choices=("s3", "s3a"), help="URI scheme Spark reads S3 with")
    parser.add_argument("--name")
    parser.add_argument("--action-on-failure", default="CONTINUE")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--application-id")
    parser.add_argument("--execution-role-arn")
    parser.add_argument("--log-uri", help="EMR Serverless logs (default <artifacts>/logs/)")
    parser.add_argument("--dry-run", action="store_true", help="print the request (secrets redacted)")
    parser.add_argument("job")
    parser.add_argument("job_args", nargs=argparse.REMAINDER)
    return parser


def _wait_parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m lakelib.emr {command}")
    if command == "wait-step":
        parser.add_argument("--cluster-id", required=True)
        parser.add_argument("--step-id", required=True)
    else:
        parser.add_argument("--application-id", required=True)
        parser.add_argument("--job-run-id", required=True)
    parser.add_argument("--poll-seconds", type=float, default=30.0)
    parser.add_argument("--timeout-seconds", type=float, default=86_400.0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lakelib.emr plan|wait-step|wait-job-run ...``, ``scheme RELEASE_LABEL``, ``bucket S3_URI``,
    ``job-script REPO JOB`` (what ``scripts/submit.sh`` calls)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="submit: %(levelname)s: %(message)s", stream=sys.stderr)
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    try:
        if command == "scheme" and len(rest) == 1:
            print(scheme_for_release(rest[0]))
        elif command == "bucket" and len(rest) == 1:
            print(split_s3_uri(rest[0])[0])
        elif command == "job-script" and len(rest) == 2:
            print(job_script(rest[0], rest[1]))
        elif command == "plan":
            plan(_plan_parser().parse_args(rest))
        elif command in ("wait-step", "wait-job-run"):
            import boto3

            args = _wait_parser(command).parse_args(rest)
            if command == "wait-step":
                wait_for_step(boto3.client("emr"), args.cluster_id, args.step_id, args.poll_seconds,
                              args.timeout_seconds)
                print(f"submit: step {args.step_id} COMPLETED", file=sys.stderr)
            else:
                wait_for_job_run(boto3.client("emr-serverless"), args.application_id, args.job_run_id,
                                 args.poll_seconds, args.timeout_seconds)
                print(f"submit: job run {args.job_run_id} SUCCESS", file=sys.stderr)
        else:
            print("usage: python -m lakelib.emr {plan ... | wait-step ... | wait-job-run ... | scheme RELEASE_LABEL"
                  " | bucket S3_URI | job-script REPO JOB}", file=sys.stderr)
            return 2
        return 0
    except LakelibError as exc:
        print(f"submit: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
