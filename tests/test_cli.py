"""The ``lake`` command line: its version, and every command listed however it is started."""
from __future__ import annotations

import subprocess
import sys

import pytest

import lakelib
from lakelib import cli
from tests.conftest import REPO


@pytest.mark.parametrize("start", [["-m", "lakelib.cli"], ["-c", "import sys; from lakelib.cli import main; "
                                                                  "sys.exit(main())"]])
def test_help_lists_every_command_however_lake_is_started(start):
    done = subprocess.run([sys.executable, *start, "--help"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    listed = done.stdout.split("positional arguments:")[1]
    assert [c.name for c in cli.commands()] == ["sample", "ddl", "sql", "runs", "chart", "report", "submit", "backfill",
                                              "schedule"]
    assert all(f"    {c.name} " in listed for c in cli.commands())


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"lake (lakelib) {lakelib.__version__}"


def test_a_command_error_is_one_line_and_its_exit_code(capsys):
    assert cli.main(["ddl", "no_such_table"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lake ddl: error:")


def test_only_a_command_that_passes_options_on_takes_unknown_ones(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["runs", "--cluster-id", "j-1"])
    assert exited.value.code == 2 and "unrecognized arguments: --cluster-id j-1" in capsys.readouterr().err
    args, passed = cli.build_parser().parse_known_args(["backfill", "--start", "2026-01-01", "--end", "2026-01-02",
                                                        "--conf", "a=b"])
    assert (args.config, passed) == (None, ["--conf", "a=b"])  # --conf is not taken for an abbreviated --config
