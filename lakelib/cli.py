"""The ``lake`` command: small tools around the jobs.

``lake sample`` writes realistic raw Segment logs, ``lake ddl`` prints a table's Athena DDL, ``lake sql`` queries
the lake's tables by name, ``lake runs`` lists the last job runs, ``lake chart`` draws a chart into a file.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from lakelib.errors import LakelibError

#: name -> (help, add_arguments(parser), run(args) -> int); each module registers its own command below.
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lake``."""
    from lakelib import (  # noqa: F401 - they register their commands
        chart_command,
        ddl_command,
        runs_command,
        sample,
        sql_command,
    )

    parser = argparse.ArgumentParser(prog="lake", description="lakelib tools")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_args, _) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command][2](args)
    except LakelibError as exc:
        print(f"lake {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code


def command(name: str, help_text: str, add_args: Callable[[argparse.ArgumentParser], None]):
    """Register ``run(args) -> int`` as ``lake <name>``."""

    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = (help_text, add_args, run)
        return run

    return register


if __name__ == "__main__":
    sys.exit(main())
