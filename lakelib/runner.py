"""What every job's ``main`` shares: the common arguments, logging for people, exit codes, the run report.

A job is ``main(argv) -> int`` that calls :func:`run_job` with its parser and a body::

    def main(argv=None) -> int:
        return run_job("json_to_parquet", build_parser(), argv, convert)

:func:`run_job` parses the arguments and loads the config *before* Spark starts (a usage or config error exits 2
with one line), runs the body, maps lakelib's errors and Spark's to one line and an exit code (1 for a failed
run), and writes the run report whatever the outcome (and, when a session exists, its row of the ``lake_runs``
table: :mod:`lakelib.runs`). The line is the last the job prints, on the driver's stderr, which ``spark-submit``
passes to its own stdout.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import date
from typing import Callable, Optional, Sequence

from lakelib.config import Config, load_config
from lakelib.errors import LakelibError, PartialRegistrationError, UsageError, one_line
from lakelib.paths import SOURCE_ID_RULE, date_range, is_source_id, parse_date
from lakelib.provenance import collect as collect_provenance
from lakelib.redact import RedactingFormatter, redact_args, redact_text
from lakelib.report import RunReport, record_registration, write_report

log = logging.getLogger(__name__)

JobBody = Callable[[argparse.Namespace, Config, RunReport], Optional[str]]


def job_parser(job: str, description: str) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with the arguments every job takes (see the contract)."""
    parser = argparse.ArgumentParser(prog=job, description=description)
    parser.add_argument("--config", required=True, metavar="PATH", help="the job config (YAML)")
    parser.add_argument(
        "--source", action="append", default=[], metavar="ID", help="a source id (repeatable; default: config's)"
    )
    parser.add_argument("--date", metavar="YYYY-MM-DD", help="the (first) UTC day")
    parser.add_argument("--end-date", metavar="YYYY-MM-DD", help="the last UTC day, inclusive")
    parser.add_argument("--report", metavar="PATH", help="also write the run report (JSON) here")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a config key, e.g. write.target_file_mb=128",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, and Spark's INFO logging")
    return parser


def requested_days(args: argparse.Namespace) -> list[date] | None:
    """The days asked for with ``--date``/``--end-date`` (inclusive), or ``None`` when no ``--date`` was given.

    Raises
    ------
    UsageError
        A date that is not ``YYYY-MM-DD``, ``--end-date`` without ``--date``, or an end before the start.
    """
    if args.date is None:
        if args.end_date is not None:
            raise UsageError("--end-date needs --date (the first day of the range)")
        return None
    try:
        start = parse_date(args.date)
        end = parse_date(args.end_date) if args.end_date else start
    except ValueError as exc:
        raise UsageError(f"--date/--end-date: {exc}") from None
    if end < start:
        raise UsageError(f"--end-date {end} is before --date {start}")
    return date_range(start, end)


def requested_sources(args: argparse.Namespace, config: Config) -> list[str]:
    """``--source`` values if any, else the config's ``sources`` (empty means every source found).

    Raises
    ------
    UsageError
        A value that is not a source id (:data:`lakelib.paths.SOURCE_ID`): ``..``, ``.``, empty, a path...
    """
    sources = list(dict.fromkeys(args.source or config.sources))
    for source in sources:
        if not is_source_id(source):
            where = "--source" if args.source else "sources:"
            raise UsageError(f"{where} {source!r} is not a source id ({SOURCE_ID_RULE})")
    return sources


def setup_logging(verbose: bool = False) -> None:
    """Progress lines on stderr, for people: ``HH:MM:SS message``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("py4j", "botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose else logging.ERROR)
    if verbose:
        os.environ.setdefault("LAKELIB_SPARK_LOG_LEVEL", "INFO")


def run_job(job: str, parser: argparse.ArgumentParser, argv: Sequence[str] | None, body: JobBody) -> int:
    """Run one job from the command line and return its exit status (0, 1 or 2).

    Parameters
    ----------
    job
        The job's name (report ``job`` field, messages).
    parser
        From :func:`job_parser`, with the job's own arguments added.
    argv
        The arguments (``sys.argv[1:]`` when ``None``).
    body
        Does the work; it builds the SparkSession itself, fills the report, and returns the final status
        (``succeeded`` when it returns ``None``). It raises :class:`LakelibError` for a failed run.
    """
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed its usage and one error line
        return int(exc.code or 0)
    setup_logging(args.verbose)
    arguments = [str(a) for a in (argv if argv is not None else sys.argv[1:])]
    try:
        config = load_config(args.config, args.set)
        requested_days(args)
        requested_sources(args, config)
    except LakelibError as exc:
        return _fail(job, redact_text(str(exc), arguments), exc.exit_code)

    from lakelib.storage import Storage

    report = RunReport(job)
    report.extra["arguments"] = redact_args(arguments)  # never a secret --set value in a report
    started = time.monotonic()
    active_before = _active_session()
    code, message = 0, None
    try:
        status = body(args, config, report) or "succeeded"
        report.finish(status)
    except PartialRegistrationError as exc:  # the report says which partitions made it, whatever the job did
        code, message = exc.exit_code, str(exc)
        record_registration(report, exc.table, exc.registered, exc.not_registered, exc.unknown)
    except LakelibError as exc:
        code, message = exc.exit_code, str(exc)
    except KeyboardInterrupt:
        code, message = 130, "interrupted"
    except Exception as exc:  # noqa: BLE001 - every failure ends in one line
        log.debug("failure", exc_info=True)
        code, message = 1, spark_error_line(exc)
    if message is not None:
        message = redact_text(message, arguments)
        report.finish("failed", message)
    session = _active_session()
    report.extra["provenance"] = collect_provenance(session)  # where it ran, also in its lake_runs row
    storage = Storage(session) if session is not None else None
    written = write_report(report, config.lake.reports, args.report, storage)
    if written:
        log.info("report: %s", written[0])
    # Without a session (a failure before Spark started) the JSON report is the record; a usage or config error
    # found by the job itself (exit 2) is not a run either.
    if session is not None and code != 2:
        from lakelib.runs import record_run

        record_run(session, config, report)
    log.info("%s %s in %.1f s", job, report.status, time.monotonic() - started)
    if session is not None and active_before is None:
        session.stop()
    if message is not None:
        return _fail(job, message, code)
    return code


def spark_error_line(exc: BaseException) -> str:
    """One readable line for an exception from Spark or py4j: the first line of the deepest Java message."""
    text = str(getattr(exc, "desc", None) or exc)
    java = getattr(exc, "java_exception", None)
    if java is not None:
        cause = java
        while cause.getCause() is not None:
            cause = cause.getCause()
        text = f"{cause.getClass().getSimpleName()}: {cause.getMessage()}"
    return one_line(text) or type(exc).__name__


def _active_session():
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover
        return None
    return SparkSession.getActiveSession()


def _fail(job: str, message: str, code: int) -> int:
    sys.stderr.flush()
    print(f"{job}: error: {message}", file=sys.stderr, flush=True)
    return code
