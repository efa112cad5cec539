"""The ``lake`` command: small tools around the jobs.

``lake sample`` writes realistic raw Segment logs, ``lake ddl`` prints a table's Athena DDL, ``lake sql`` queries
the lake's tables by name, ``lake runs``, ``lake chart`` and ``lake report`` show what the jobs did (without Spark
where they can), ``lake submit`` runs a job here or on EMR, ``lake backfill`` a range of days in batches, and
``lake schedule`` writes the daily chain for Airflow or Step Functions. Every command lives in the module named in
:data:`COMMAND_MODULES`, as one ``run`` function marked with :func:`command`; ``lake --help`` imports exactly those
modules, so the list is explicit and ``python -m lakelib.cli`` sees the same commands as ``lake``.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from lakelib import __version__
from lakelib.errors import LakelibError

if TYPE_CHECKING:  # pragma: no cover
    from lakelib.config import Config

Run = Callable[[argparse.Namespace], int]
AddArguments = Callable[[argparse.ArgumentParser], None]

#: The module of every ``lake`` command, in the order ``lake --help`` lists them. A new command: a module with a
#: ``run`` marked with :func:`command`, added here.
COMMAND_MODULES = (
    "lakelib.sample",
    "lakelib.ddl_command",
    "lakelib.sql_command",
    "lakelib.runs_command",
    "lakelib.chart_command",
    "lakelib.report_command",
    "lakelib.submit",
    "lakelib.backfill_command",
    "lakelib.schedule_command",
)

#: The config every ``lake`` command reads when ``--config`` is not given: ``$LAKELIB_CONFIG``, else this.
DEFAULT_CONFIG = "conf/local.yaml"

#: A module a command may miss -> the extra that brings it.
EXTRAS = {"pyspark": "spark", "py4j": "spark", "pandas": "notebook", "pyarrow": "notebook",
          "matplotlib": "notebook"}


@dataclass(frozen=True)
class Command:
    """One ``lake`` subcommand: its name, one line of help, its arguments, and what it runs."""

    name: str
    help: str
    add_arguments: AddArguments
    run: Run
    pass_through: bool = False


def command(name: str, help_text: str, add_args: AddArguments, pass_through: bool = False) -> Callable[[Run], Run]:
    """Mark ``run(args) -> int`` as ``lake <name>`` (the mark is read by :func:`commands`; nothing is registered).
    With ``pass_through``, the arguments its parser does not know reach ``run`` as ``args.passed``."""

    def mark(run: Run) -> Run:
        run.lake_command = Command(name, help_text, add_args, run, pass_through)  # type: ignore[attr-defined]
        return run

    return mark


def commands() -> list[Command]:
    """The commands of :data:`COMMAND_MODULES`, in that order.

    >>> [c.name for c in commands()]
    ['sample', 'ddl', 'sql', 'runs', 'chart', 'report', 'submit', 'backfill', 'schedule']
    """
    return [importlib.import_module(name).run.lake_command for name in COMMAND_MODULES]


def default_config() -> str:
    """``$LAKELIB_CONFIG`` if set, else ``conf/local.yaml`` (the demo's, from the repository root)."""
    return os.environ.get("LAKELIB_CONFIG") or DEFAULT_CONFIG


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config PATH`` (the one rule of every command: else ``$LAKELIB_CONFIG``, else ``conf/local.yaml``) and
    ``--set KEY=VALUE``."""
    parser.add_argument("--config", default=None, metavar="PATH",
                        help=f"the lake's config (default: $LAKELIB_CONFIG, else {DEFAULT_CONFIG})")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")


def config_of(args: argparse.Namespace) -> Config:
    """The config a command's ``--config``/``--set`` name (see :func:`add_config_arguments`)."""
    from lakelib.config import load_config

    return load_config(args.config or default_config(), getattr(args, "set", None) or [])


def build_parser() -> argparse.ArgumentParser:
    """The ``lake`` argument parser, one subparser per command."""
    parser = argparse.ArgumentParser(prog="lake", description="lakelib tools")
    parser.add_argument("--version", action="version", version=f"lake (lakelib) {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in commands():
        # a command passing options on takes no abbreviation: `--conf` must not become its `--config`
        cmd.add_arguments(sub.add_parser(cmd.name, help=cmd.help, description=cmd.help,
                                         allow_abbrev=not cmd.pass_through))
        sub.choices[cmd.name].set_defaults(run=cmd.run, pass_through=cmd.pass_through)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lake``: exit 2 for a usage or config error, 1 for a failed command."""
    parser = build_parser()
    args, passed = parser.parse_known_args(argv)
    if passed and not args.pass_through:
        parser.error(f"unrecognized arguments: {' '.join(passed)}")
    args.passed = passed
    try:
        code = args.run(args)
        sys.stdout.flush()
        return code
    except LakelibError as exc:
        print(f"lake {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # the reader went away (`lake ddl events | head -3`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ModuleNotFoundError as exc:
        extra = EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"lake {args.command}: error: this needs {exc.name}: pip install 'lakelib[{extra}]'", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
