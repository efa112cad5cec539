"""The ``lake`` command: small tools around the jobs.

``lake sample`` writes realistic raw Segment logs, ``lake ddl`` prints a table's Athena DDL, ``lake sql`` queries
the lake's tables by name. Every command lives in the module named in :data:`COMMAND_MODULES`, as one ``run``
function marked with :func:`command`; ``lake --help`` imports exactly those modules, so the list is explicit and
``python -m lakelib.cli`` sees the same commands as ``lake``.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

from lakelib import __version__
from lakelib.errors import LakelibError

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
    "lakelib.submit",
)


@dataclass(frozen=True)
class Command:
    """One ``lake`` subcommand: its name, one line of help, its arguments, and what it runs."""

    name: str
    help: str
    add_arguments: AddArguments
    run: Run


def command(name: str, help_text: str, add_args: AddArguments) -> Callable[[Run], Run]:
    """Mark ``run(args) -> int`` as ``lake <name>`` (the mark is read by :func:`commands`; nothing is registered)."""

    def mark(run: Run) -> Run:
        run.lake_command = Command(name, help_text, add_args, run)  # type: ignore[attr-defined]
        return run

    return mark


def commands() -> list[Command]:
    """The commands of :data:`COMMAND_MODULES`, in that order.

    >>> [c.name for c in commands()]
    ['sample', 'ddl', 'sql', 'runs', 'chart', 'submit']
    """
    return [importlib.import_module(name).run.lake_command for name in COMMAND_MODULES]


def build_parser() -> argparse.ArgumentParser:
    """The ``lake`` argument parser, one subparser per command."""
    parser = argparse.ArgumentParser(prog="lake", description="lakelib tools")
    parser.add_argument("--version", action="version", version=f"lake (lakelib) {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in commands():
        cmd.add_arguments(sub.add_parser(cmd.name, help=cmd.help, description=cmd.help))
        sub.choices[cmd.name].set_defaults(run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lake``: exit 2 for a usage or config error, 1 for a failed command."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except LakelibError as exc:
        print(f"lake {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
