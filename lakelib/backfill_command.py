"""``lake backfill``: convert a range of received days in batches, here or on EMR, stopping at the first failure.

    lake backfill --config conf/emr.yaml --start 2025-01-01 --end 2025-12-31 --batch-days 7 \\
        --mode serverless --application-id 00abc --execution-role-arn arn:... --artifacts s3://b/p

It prints the plan and the estimate first (:mod:`lakelib.backfill`), then runs each batch as ``lake submit`` would
(``local``: spark-submit here; ``emr``/``serverless``: :func:`lakelib.submit.run_remote` with ``--wait``, so a batch
ends before the next starts). Options it does not know are ``lake submit emr|serverless``'s, checked by that parser
before anything runs. A failed batch ends the backfill with the command that resumes at it.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable, Sequence

from lakelib import backfill, submit
from lakelib.backfill import JOB, Batch
from lakelib.cli import add_config_arguments, command, config_of, default_config
from lakelib.errors import UsageError
from lakelib.paths import date_range, parse_date
from lakelib.runner import requested_sources

RunBatch = Callable[[Batch], int]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--start", required=True, metavar="YYYY-MM-DD", help="the first received day")
    parser.add_argument("--end", required=True, metavar="YYYY-MM-DD", help="the last received day, inclusive")
    parser.add_argument("--batch-days", type=int, default=7, metavar="N", help="days per run (default 7)")
    parser.add_argument("--mode", choices=submit.MODES, default="local", help="where the batches run (default local)")
    parser.add_argument("--source", action="append", default=[], metavar="ID", help="only this source (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the estimate, run nothing")
    parser.epilog = ("emr and serverless also take the options of 'lake submit emr|serverless' (--cluster-id, "
                     "--application-id, --execution-role-arn, --artifacts, --conf...), by default the config's "
                     "submit: keys; each batch waits for its run.")


def runner(mode: str, submit_options: Sequence[str], config: str, sources: Sequence[str],
           sets: Sequence[str]) -> RunBatch:
    """How one batch runs in ``mode``: ``lake submit local`` or ``lake submit emr|serverless ... --wait``."""

    def run_batch(batch: Batch) -> int:
        args = backfill.job_args(batch, config, sources, sets)
        if mode == "local":
            return submit.run_local([JOB, *args])
        return submit.run_remote(mode, [*submit_options, "--wait", JOB, *args], prog="lake backfill")

    return run_batch


def run_batches(batches: Sequence[Batch], run_batch: RunBatch, clock: Callable[[], float] = time.monotonic
                ) -> Batch | None:
    """Run the batches in order; the first that fails or is interrupted (nothing after it runs), or ``None``."""
    for i, batch in enumerate(batches, 1):
        print(f"backfill: batch {i}/{len(batches)} {batch.label} ...", flush=True)
        started = clock()
        try:
            code = run_batch(batch)
        except KeyboardInterrupt:  # Ctrl-C: the batch did not finish, and the resume line is still worth having
            code = 130
        took = backfill.format_duration(clock() - started)
        if code != 0:
            print(f"backfill: batch {i}/{len(batches)} {batch.label} failed (exit {code}) after {took}", flush=True)
            return batch
        print(f"backfill: batch {i}/{len(batches)} {batch.label} done in {took}", flush=True)
    return None


def check_submit_options(mode: str, options: Sequence[str]) -> list[str]:
    """The ``lake submit`` options to pass on (``--wait`` is the backfill's own), checked by that command's parser.

    Raises
    ------
    UsageError
        Options with ``--mode local``.
    SystemExit
        Status 2: ``lake submit``'s parser refused them (it printed its usage and error line).
    """
    options = [o for o in options if o != "--wait"]
    if mode == "local":
        if options:
            raise UsageError(f"unrecognized arguments: {' '.join(options)} (lake submit's options go with "
                             "--mode emr or serverless)")
        return options
    submit._remote_parser("lake backfill", mode).parse_args([*options, JOB])
    return options


@command("backfill", "convert a range of received days in batches (here, on EMR or on EMR Serverless)",
         _add_arguments, pass_through=True)
def run(args: argparse.Namespace) -> int:
    """``lake backfill``: 0 when every batch succeeded, 1 at the first failed batch (after the resume line)."""
    try:
        start, end = parse_date(args.start), parse_date(args.end)
    except ValueError as exc:
        raise UsageError(f"--start/--end: {exc}") from None
    config = config_of(args)
    passed = [*args.passed, *(config.submit.options(args.mode, args.passed) if args.mode != "local" else [])]
    options = check_submit_options(args.mode, passed)
    sources = requested_sources(args, config)
    batches = backfill.plan_batches(start, end, args.batch_days, backfill.list_raw(config, sources,
                                                                                     date_range(start, end)))
    print(backfill.format_plan(batches, backfill.history_pace(config, args.mode), start, end), flush=True)
    if args.dry_run or not batches:
        if not batches:
            print(f"backfill: no raw data for {', '.join(sources) or 'any source'} in {start}..{end}")
        return 0
    config_path = args.config or default_config()
    failed = run_batches(batches, runner(args.mode, options, config_path, args.source, args.set))
    if failed is None:
        print(f"backfill: {len(batches)} batch(es) done, {start}..{end}")
        return 0
    line = backfill.resume_command(failed, end, args.batch_days, args.mode, args.config, args.source, args.set,
                                   [o for o in args.passed if o != "--wait"])  # the config gives the rest again
    print(f"backfill: stopped; batches before {failed.first} are done. To resume:\n  {line}", file=sys.stderr)
    return 1
