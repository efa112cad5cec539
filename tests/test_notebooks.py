"""The notebooks: committed clean, and explore_the_lake executed headless as `make notebook` does, on a lake of its own."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import nbformat
import pyspark
import pytest

from jobs import json_to_parquet, message_type_counts
from lakelib.sample import SampleSpec, generate

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
RUNNER = REPO / "scripts" / "run_notebooks.py"


def run_notebooks(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # The kernel starts its own Spark; nothing of this process's JVM may leak into its environment.
    clean = {k: v for k, v in (env or os.environ).items() if not k.startswith("PYSPARK_GATEWAY")}
    return subprocess.run([sys.executable, str(RUNNER), *args], cwd=REPO, env=clean, capture_output=True,
                          text=True, timeout=1200)


def outputs(path: Path) -> list[dict]:
    notebook = nbformat.read(path, as_version=4)
    return [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebooks_are_committed_with_outputs_cleared(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_a_failing_cell_fails_the_run_and_the_executed_copy_shows_it(tmp_path):
    broken = tmp_path / "broken.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('before')"),
                                                   nbformat.v4.new_code_cell("1 / 0")]), broken)
    result = run_notebooks("--out", str(tmp_path / "out"), str(broken))
    assert result.returncode == 1 and "broken.ipynb" in result.stderr
    errors = [o for o in outputs(tmp_path / "out" / "broken.ipynb") if o["output_type"] == "error"]
    assert [e["ename"] for e in errors] == ["ZeroDivisionError"]


def test_explore_the_lake_runs_headless_and_draws_its_charts(spark, tmp_path):
    generate(SampleSpec(out=str(tmp_path / "raw"), sources=2, days=2, events_per_day=300, files_per_day=1,
                        start=date(2026, 1, 1), malformed_share=0.05))
    config = tmp_path / "lake.yaml"
    # catalog none: the notebook's kernel runs its own Spark, which must not share this session's metastore.
    config.write_text(
        f"lake: {{raw: {tmp_path}/raw, tables: {tmp_path}/tables, quarantine: {tmp_path}/quarantine, "
        f"reports: {tmp_path}/reports}}\ncatalog: {{kind: none}}\n"
    )
    days = ["--date", "2026-01-01", "--end-date", "2026-01-02"]
    assert json_to_parquet.main(["--config", str(config), *days]) == 0
    assert message_type_counts.main(["--config", str(config), "--period", "day", *days]) == 0
    assert message_type_counts.main(["--config", str(config), "--period", "year", "--date", "2026-01-02"]) == 0

    out = tmp_path / "executed"
    result = run_notebooks("--out", str(out), str(REPO / "notebooks" / "explore_the_lake.ipynb"),
                           env=dict(os.environ, LAKELIB_CONFIG=str(config)))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    got = outputs(out / "explore_the_lake.ipynb")
    assert [o for o in got if o["output_type"] == "error"] == []
    images = [o for o in got if "image/png" in o.get("data", {})]
    assert len(images) == 2, "the counts chart and the quarantine chart"
    text = "".join(o.get("text", "") for o in got if o["output_type"] == "stream")
    assert f"Spark {pyspark.__version__}," in text, "the kernel runs this Python, with this Spark line"
    assert "json_to_parquet" in text and "message_type_counts" in text and "succeeded" in text
    assert "invalid_json" in text or "invalid_type" in text, "the quarantine sample"
