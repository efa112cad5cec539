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
  Serverless. Names and printed forms go through :mod:`lakelib.redact`.

The thin part takes injected boto3 clients: :func:`upload`, :func:`add_step`, :func:`wait_for_step`
(``DescribeStep``), :func:`start_job_run`, :func:`wait_for_job_run` (``GetJobRun``), both through :func:`follow`.
From a notebook::

    import boto3
    from lakelib import emr
    planned = emr.prepare(".", "/tmp/submit", "s3://b/p", "json_to_parquet", ["--config", "conf/emr.yaml"])
    emr.upload(boto3.client("s3"), planned)
    request = emr.build_job_run_request("00abc", "arn:aws:iam::1:role/r", planned)
    run_id = emr.start_job_run(boto3.client("emr-serverless"), request)
    emr.wait_for_job_run(boto3.client("emr-serverless"), "00abc", run_id)

``lake submit`` and ``scripts/submit.sh`` (:mod:`lakelib.submit`) use these, uploading with ``aws s3 cp`` and
submitting with ``aws emr add-steps`` / ``aws emr-serverless start-job-run``; :func:`follow` is their wait.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Mapping, Sequence

from lakelib.errors import SubmitError, UsageError, aws_error
from lakelib.paths import S3_URI, canonical_location
from lakelib.provenance import run_log_uri
from lakelib.redact import redact_arg, redact_args, redact_words

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
#: Step states of EMR after which nothing changes any more.
STEP_FINAL_STATES = ("COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED")
#: Fixed timestamp of every archive member (zip cannot store earlier dates): same sources, same bytes.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01, for the wheel build
_JOB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOG_SCHEMES = ("s3", "s3a", "s3n")

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
        for name in ("lakelib", "jobs", "conf", "bootstrap"):  # pyproject's package-dir
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
    wheel: str | os.PathLike[str] | None, dest: str | os.PathLike[str], bundle: Sequence[str] = BUNDLED_DEPENDENCIES
) -> Path:
    """Write the ``spark-submit --py-files`` zip: every member of ``wheel`` (packages, package data, dist-info) plus
    :func:`bundled_files` of each distribution in ``bundle`` (lakelib itself when there is no wheel: an installed
    package). Byte-identical for identical inputs.

    A pure-Python wheel installs by unpacking, so its members are exactly what ``pip install`` would put on the
    path; a zip on ``sys.path`` is what ``--py-files`` takes (Spark does not put a ``.whl`` there).
    """
    members: dict[str, bytes] = {}
    if wheel is not None:
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


def jobs_folder(repo: str | os.PathLike[str] | None = None) -> Path:
    """Where the job scripts are: ``<repo>/jobs`` of a checkout, else the installed package's ``lakelib/jobs``
    (the wheel carries them there: no top-level ``jobs`` package).
    """
    if repo is not None:
        return Path(repo) / "jobs"
    root = checkout_root()
    if root is not None:
        return root / "jobs"
    from importlib.resources import files

    return Path(str(files("lakelib").joinpath("jobs")))


def checkout_root() -> Path | None:
    """The lakelib checkout this module runs from (it has ``jobs/`` and ``scripts/submit.sh``), or ``None`` for an
    installed package."""
    root = Path(os.path.abspath(__file__)).parent.parent  # a symlinked lakelib/ stays in the checkout linking it
    return root if (root / "jobs").is_dir() and (root / "scripts" / "submit.sh").is_file() else None


def known_jobs(folder: str | os.PathLike[str]) -> list[str]:
    """The jobs in a jobs folder: every ``<name>.py`` but ``_*.py``."""
    return sorted(p.stem for p in Path(folder).glob("*.py") if not p.stem.startswith("_"))


def job_script(repo: str | os.PathLike[str] | None, job: str) -> Path:
    """The script of a known job, from the checkout ``repo`` (``<repo>/jobs/<job>.py``) or, with ``None``, from
    :func:`jobs_folder`.

    Raises
    ------
    UsageError
        Not a job name, or no such job (the message lists the jobs).
    """
    jobs = jobs_folder(repo)
    script = jobs / f"{job}.py"
    if not _JOB_NAME.match(job) or not script.is_file():
        raise UsageError(f"unknown job {job!r} (jobs/: {', '.join(known_jobs(jobs)) or 'none'})")
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
    """The arguments that hold a secret (:func:`lakelib.redact.redact_arg`), as redacted.

    >>> secret_arguments(["--set", "fs.s3a.secret.key=x", "--date", "d"])
    ['fs.s3a.secret.key=*********(redacted)']
    """
    return [hidden for arg, hidden in ((a, redact_arg(a)) for a in args) if hidden != arg]


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
        "Name": redact_words(name or default_name(job, job_args))[:256],
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
    cloudwatch_log_group: str | None = None,
) -> dict[str, Any]:
    """The ``StartJobRun`` request of EMR Serverless for a :class:`Planned` submission.

    ``entryPoint`` is the uploaded job script, ``entryPointArguments`` the rewritten job arguments,
    ``sparkSubmitParameters`` carries ``--py-files`` and the ``--conf`` pairs, and the driver and executors log to
    ``log_uri`` (default: ``<artifacts>/logs/``), and to CloudWatch as well when ``cloudwatch_log_group`` is given
    (``""``: EMR Serverless's default group).

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
    monitoring: dict[str, Any] = {"s3MonitoringConfiguration": {"logUri": log_uri or planned.layout.logs}}
    if cloudwatch_log_group is not None:
        cloudwatch: dict[str, Any] = {"enabled": True}
        if cloudwatch_log_group:
            cloudwatch["logGroupName"] = cloudwatch_log_group
        monitoring["cloudWatchLoggingConfiguration"] = cloudwatch
    return {
        "applicationId": application_id,
        "executionRoleArn": execution_role_arn,
        "name": redact_words(name or default_name(planned.job, planned.job_args))[:256],
        "jobDriver": {
            "sparkSubmit": {
                "entryPoint": with_scheme(planned.layout.job_script, scheme),
                "entryPointArguments": list(planned.job_args),
                "sparkSubmitParameters": " ".join(params),
            }
        },
        "configurationOverrides": {"monitoringConfiguration": monitoring},
    }


def driver_stderr_location(log_uri: str | None, application_id: str, job_run_id: str) -> str | None:
    """Where EMR Serverless puts a job run's driver stderr under its S3 ``logUri``, or ``None`` without one.

    >>> driver_stderr_location("s3://b/logs/", "00app", "00run")
    's3://b/logs/applications/00app/jobs/00run/SPARK_DRIVER/stderr.gz'
    """
    if not log_uri:
        return None
    return f"{run_log_uri(with_scheme(log_uri, 's3'), None, None, application_id, job_run_id)}SPARK_DRIVER/stderr.gz"


def steps_log_location(log_uri: str | None, cluster_id: str, step_id: str) -> str | None:
    """``<LogUri>/<cluster id>/steps/<step id>/`` (EMR's layout), or ``None`` without a LogUri.

    >>> steps_log_location("s3n://logs/emr/", "j-1", "s-2")
    's3://logs/emr/j-1/steps/s-2/'
    """
    if not log_uri or log_uri == "None":
        return None
    return run_log_uri(with_scheme(log_uri, "s3"), cluster_id, step_id, None, None)


# --------------------------------------------------------------------------------------------------- planning


def prepare(
    repo: str | os.PathLike[str] | None,
    workdir: str | os.PathLike[str],
    artifacts: str,
    job: str,
    job_args: Sequence[str],
    with_wheel: bool = True,
) -> Planned:
    """Package one submission and name its uploads: the ``--py-files`` zip (repacked from a wheel built from the
    checkout ``repo``, or, with ``repo=None``, from the installed lakelib), the job script, the validated local
    ``--config`` (rewritten to its S3 copy), and, ``with_wheel`` and from a checkout, the wheel for the bootstrap
    action (EMR Serverless never uses it).

    Raises
    ------
    UsageError
        Unknown job, no ``--config``, a bad ``--artifacts``.
    ConfigError
        The local config does not validate.
    SubmitError
        The build failed.
    """
    repo = Path(repo).resolve() if repo is not None else None
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
        log.warning("%s: its secret is sent as a job argument, which EMR shows to anyone who may describe the "
                    "step or job run; prefer the cluster's role or a secret store", key)

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    wheel: Path | None = None
    if repo is not None:
        wheel = build_wheel(repo, work)
        zip_path = build_pyfiles_zip(wheel, work / PYFILES_ZIP)
        version = wheel_version(wheel)
    else:
        zip_path = build_pyfiles_zip(None, work / PYFILES_ZIP, ("lakelib", *BUNDLED_DEPENDENCIES))
        version = importlib.metadata.version("lakelib")
    layout = artifact_layout(
        artifacts,
        job,
        version,
        content_digest([zip_path]),
        config_name=local_config.name if local_config else None,
        config_digest=content_digest([local_config]) if local_config else None,
    )
    config_uri = layout.config if local_config else with_scheme(config_value, "s3")
    rewritten = rewrite_job_args(job_args, config_uri)
    for i, arg in enumerate(rewritten):
        if arg == "--report" and i + 1 < len(rewritten) and not S3_URI.match(rewritten[i + 1]):
            log.warning("--report %s is a path on the driver of the job; give an s3:// URI",
                        redact_arg(rewritten[i + 1]))
    uploads = [(str(zip_path), layout.pyfiles), (str(script), layout.job_script)]
    if with_wheel and wheel is not None:
        uploads.append((str(wheel), layout.wheel))
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
    """Wait for the step (:func:`follow` on ``DescribeStep``); returns ``COMPLETED``.

    Raises
    ------
    SubmitError
        The step ended FAILED, CANCELLED or INTERRUPTED (:func:`step_failure` is the message), or
        ``timeout_seconds`` passed.
    """
    final = follow(lambda: step_state(client, cluster_id, step_id), poll_seconds=poll_seconds,
                   timeout_seconds=timeout_seconds)
    if not final.succeeded:
        raise SubmitError(step_failure(final.detail, step_id, step_log_uri(client, cluster_id, step_id)))
    return final.state


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
    """Wait for an EMR Serverless job run (:func:`follow` on ``GetJobRun``); returns ``SUCCESS``.

    Raises
    ------
    SubmitError
        The run ended FAILED or CANCELLED (:func:`job_run_failure` is the message), or ``timeout_seconds`` passed.
    """
    final = follow(lambda: job_run_state(client, application_id, job_run_id), poll_seconds=poll_seconds,
                   timeout_seconds=timeout_seconds)
    if not final.succeeded:
        raise SubmitError(job_run_failure(final.detail))
    return final.state


# --------------------------------------------------------------------------------------------------- following a run


@dataclass(frozen=True)
class RunState:
    """Where a step or a job run is: its state, whether it is final and succeeded, and the service's record of it
    (the step's ``Status``, or the whole ``jobRun``)."""

    state: str
    final: bool
    succeeded: bool
    detail: Mapping[str, Any] = field(default_factory=dict)


def step_state(client: Any, cluster_id: str, step_id: str) -> RunState:
    """The state of an EMR step (``DescribeStep``); COMPLETED, FAILED, CANCELLED and INTERRUPTED are final.

    Raises
    ------
    SubmitError
        EMR refused (unknown cluster or step, no permission...).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        status = client.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["Status"]
    except (ClientError, BotoCoreError) as exc:
        raise SubmitError(f"step {step_id} on {cluster_id}: {aws_error(exc)[1]}") from None
    state = str(status.get("State"))
    return RunState(state, state in STEP_FINAL_STATES, state == "COMPLETED", status)


def job_run_state(client: Any, application_id: str, job_run_id: str) -> RunState:
    """The state of an EMR Serverless job run (``GetJobRun``); SUCCESS, FAILED and CANCELLED are final.

    Raises
    ------
    SubmitError
        EMR Serverless refused (unknown application or job run, no permission...).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        job_run = client.get_job_run(applicationId=application_id, jobRunId=job_run_id)["jobRun"]
    except (ClientError, BotoCoreError) as exc:
        raise SubmitError(f"job run {job_run_id} of {application_id}: {aws_error(exc)[1]}") from None
    state = str(job_run.get("state"))
    return RunState(state, state in JOB_RUN_FINAL_STATES, state == "SUCCESS", job_run)


def follow(
    poll: Callable[[], RunState],
    on_change: Callable[[RunState, float], None] | None = None,
    poll_seconds: float = 30.0,
    timeout_seconds: float = 86_400.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RunState:
    """Poll until a final state, calling ``on_change(state, elapsed seconds)`` at the first poll and at every
    change. A loop rather than botocore's waiters: those report nothing until the end.

    Raises
    ------
    SubmitError
        ``timeout_seconds`` passed without a final state.
    """
    started, last = clock(), None
    while True:
        current = poll()
        if current.state != last and on_change is not None:
            on_change(current, clock() - started)
        last = current.state
        if current.final:
            return current
        if clock() - started >= timeout_seconds:
            raise SubmitError(f"still {current.state} after {timeout_seconds:g}s")
        sleep(poll_seconds)


def driver_log_locations(log_base: str | None, kind: str, first_id: str, second_id: str) -> list[str]:
    """The driver's ``stdout.gz`` and ``stderr.gz`` where EMR writes them: ``<LogUri>/<cluster>/steps/<step>/``
    for a step, ``<logUri>/applications/<app>/jobs/<run>/SPARK_DRIVER/`` for a job run; ``[]`` without logs.

    >>> driver_log_locations("s3n://l/emr/", "emr", "j-1", "s-2")
    ['s3://l/emr/j-1/steps/s-2/stdout.gz', 's3://l/emr/j-1/steps/s-2/stderr.gz']
    """
    if kind == "emr":
        folder = steps_log_location(log_base, first_id, second_id)
    else:
        stderr = driver_stderr_location(log_base, first_id, second_id)
        folder = stderr[: -len("stderr.gz")] if stderr else None
    return [f"{folder}stdout.gz", f"{folder}stderr.gz"] if folder else []


def read_log(client: Any, uri: str) -> list[str] | None:
    """The non-blank lines of a gzipped log in S3 (``None`` when it is not there or unreadable)."""
    import gzip

    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split_s3_uri(uri)
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        text = gzip.decompress(body).decode("utf-8", errors="replace")
    except (ClientError, BotoCoreError, OSError, EOFError) as exc:
        log.debug("no log at %s: %s", uri, exc)
        return None
    return [line.rstrip() for line in text.splitlines() if line.strip()]


#: A line of Spark's or YARN's own logging (log4j's ``yy/MM/dd HH:mm:ss LEVEL``), not the job's.
_SPARK_LOG_LINE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (?:TRACE|DEBUG|INFO|WARN)\b")


def job_lines(lines: Iterable[str], last: int = 12) -> list[str]:
    """The job's own last lines of a driver log: Spark's and YARN's INFO/WARN lines left out.

    >>> job_lines(["25/01/02 03:04:05 INFO SparkContext: stopped", "j: error: no raw data"])
    ['j: error: no raw data']
    """
    kept = [line for line in lines if not _SPARK_LOG_LINE.match(line)]
    return kept[-last:] if last else []


#: A YARN application id, as spark-submit prints it in a cluster-mode step's log.
_YARN_APPLICATION = re.compile(r"\b(application_\d+_\d+)\b")


def driver_container_logs(client: Any, log_uri: str | None, cluster_id: str, step_lines: Iterable[str]) -> list[str]:
    """The driver's ``stdout.gz`` and ``stderr.gz`` of a cluster-mode step: in the first container (the
    application master, where the driver runs) of the YARN application the step's log names, under
    ``<LogUri>/<cluster>/containers/<application>/``; ``[]`` when there is none (yet).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    found = [m.group(1) for line in step_lines for m in _YARN_APPLICATION.finditer(line)]
    if not found or not log_uri or log_uri == "None":
        return []
    folder = f"{with_scheme(log_uri, 's3').rstrip('/')}/{cluster_id}/containers/{found[-1]}/"
    bucket, key = split_s3_uri(folder)
    try:
        listed = client.list_objects_v2(Bucket=bucket, Prefix=key + "/", Delimiter="/")
    except (ClientError, BotoCoreError) as exc:
        log.debug("cannot list %s: %s", folder, exc)
        return []
    first = [p["Prefix"] for p in listed.get("CommonPrefixes", []) if p["Prefix"].rstrip("/").endswith("_000001")]
    return [f"s3://{bucket}/{first[0]}{name}" for name in ("stdout.gz", "stderr.gz")] if first else []


#: The runner's log line naming the run report (``HH:MM:SS report: <uri>``).
_REPORT_LINE = re.compile(r"\breport: (\S+\.json)\s*$")


def report_location(lines: Iterable[str]) -> str | None:
    """The run report's URI from the driver's log lines (the last ``report: <uri>`` line), or ``None``.

    >>> report_location(["01:02:03 report: s3://b/reports/j/r1.json", "j succeeded in 3.0 s"])
    's3://b/reports/j/r1.json'
    """
    found = None
    for line in lines:
        match = _REPORT_LINE.search(line)
        if match:
            found = match.group(1)
    return found


# --------------------------------------------------------------------------------------------------- billed use


@dataclass(frozen=True)
class Prices:
    """EMR Serverless prices in USD: per vCPU-hour, per GB-hour of memory, per GB-hour of storage (beyond the
    20 GB every worker gets free), and where they come from."""

    vcpu_hour: float
    memory_gb_hour: float
    storage_gb_hour: float
    source: str


#: EMR Serverless list prices (x86, on demand) by region, from aws.amazon.com/emr/pricing; other regions use
#: us-east-1's, and the printed cost says so. ``--price-*`` options replace them.
LIST_PRICES = {
    "us-east-1": Prices(0.052624, 0.0057785, 0.000111, "us-east-1 list prices (x86, on demand)"),
}


def list_prices(region: str | None) -> Prices:
    """The list prices of ``region``, or us-east-1's (the source says which).

    >>> list_prices("eu-west-3").source
    'us-east-1 list prices (x86, on demand) (none known for eu-west-3)'
    """
    if region in LIST_PRICES:
        return LIST_PRICES[str(region)]
    base = LIST_PRICES["us-east-1"]
    return Prices(base.vcpu_hour, base.memory_gb_hour, base.storage_gb_hour,
                  f"{base.source} (none known for {region or 'an unknown region'})")


def add_price_arguments(parser: Any) -> None:
    """``--price-vcpu-hour``, ``--price-gb-hour``, ``--price-storage-gb-hour`` (USD; default: list prices), for
    ``lake submit serverless`` and ``lake runs --refresh-cost``; :func:`chosen_prices` reads them."""
    parser.add_argument("--price-vcpu-hour", type=float, help="USD per vCPU-hour (default: list price)")
    parser.add_argument("--price-gb-hour", type=float, help="USD per GB-hour of memory (default: list price)")
    parser.add_argument("--price-storage-gb-hour", type=float, help="USD per GB-hour of storage")


def chosen_prices(args: Any, region: str | None) -> Prices:
    """The prices of :func:`add_price_arguments`' options, the region's list prices for those not given.

    >>> from types import SimpleNamespace
    >>> chosen_prices(SimpleNamespace(price_vcpu_hour=0.1, price_gb_hour=None, price_storage_gb_hour=None),
    ...               "us-east-1").memory_gb_hour
    0.0057785
    """
    base = list_prices(region)
    given = (args.price_vcpu_hour, args.price_gb_hour, args.price_storage_gb_hour)
    if all(v is None for v in given):
        return base
    chosen = [b if v is None else v for v, b in zip(given, (base.vcpu_hour, base.memory_gb_hour,
                                                           base.storage_gb_hour))]
    return Prices(chosen[0], chosen[1], chosen[2], "the prices given")


def billed_usage(job_run: Mapping[str, Any], prices: Prices) -> dict[str, Any] | None:
    """A job run's billed use (``billedResourceUtilization``, else ``totalResourceUtilization``) and its cost at
    ``prices``; ``None`` when ``GetJobRun`` gave neither.

    >>> usage = billed_usage({"billedResourceUtilization": {"vCPUHour": 2.0, "memoryGBHour": 8.0,
    ...     "storageGBHour": 0.0}}, Prices(0.05, 0.005, 0.0001, "test"))
    >>> usage["cost_usd"], usage["vcpu_hours"], usage["price_source"]
    (0.14, 2.0, 'test')
    """
    used = job_run.get("billedResourceUtilization") or job_run.get("totalResourceUtilization")
    if not used:
        return None
    vcpu = float(used.get("vCPUHour") or 0.0)
    memory = float(used.get("memoryGBHour") or 0.0)
    storage = float(used.get("storageGBHour") or 0.0)
    cost = vcpu * prices.vcpu_hour + memory * prices.memory_gb_hour + storage * prices.storage_gb_hour
    return {
        "vcpu_hours": vcpu,
        "memory_gb_hours": memory,
        "storage_gb_hours": storage,
        "cost_usd": round(cost, 6),
        "price_source": prices.source,
    }


def format_usage(usage: Mapping[str, Any]) -> str:
    """One line for people.

    >>> format_usage({"vcpu_hours": 2.0, "memory_gb_hours": 8.0, "storage_gb_hours": 0.0, "cost_usd": 0.14,
    ...               "price_source": "us-east-1 list prices"})
    'billed 2.000 vCPU-hours, 8.000 GB-hours memory, 0.000 GB-hours storage: $0.1400 at us-east-1 list prices'
    """
    return (f"billed {usage['vcpu_hours']:.3f} vCPU-hours, {usage['memory_gb_hours']:.3f} GB-hours memory, "
            f"{usage['storage_gb_hours']:.3f} GB-hours storage: ${usage['cost_usd']:.4f} at {usage['price_source']}")
