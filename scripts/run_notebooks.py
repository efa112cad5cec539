#!/usr/bin/env python3
"""`make notebook`: execute notebooks headless with nbclient, write the executed copies, fail on any cell error.

    python scripts/run_notebooks.py [--out build/notebooks] [--timeout 900] [NOTEBOOK ...]   # default: notebooks/*.ipynb

Each notebook runs in a fresh `python3` kernel (the Python running this script) whose working folder is the
repository root and whose PYTHONPATH starts with it, so `import lakelib` is this checkout and `conf/local.yaml` is
the demo's lake (`LAKELIB_CONFIG` in the environment points a notebook at another config). The executed copy is
written under --out even when a cell fails, so the error can be read there; the exit status is then 1.
nbclient is the maintained executor of Jupyter notebooks (papermill adds parameters on top, not needed here).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def execute(path: Path, out_dir: Path, timeout: int) -> bool:
    """Execute one notebook into ``out_dir``; whether every cell ran without an error."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO)}})
    started = time.monotonic()
    ok = True
    try:
        client.execute()
    except CellExecutionError as exc:
        ok = False
        print(f"{path}: a cell failed: {str(exc).strip().splitlines()[-1]}", file=sys.stderr)
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    ok = ok and not errors
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / path.name
    nbformat.write(notebook, target)
    print(f"{path} -> {target}: {'ok' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run_notebooks", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "notebooks", help="where executed copies go")
    parser.add_argument("--timeout", type=int, default=900, help="seconds one cell may take (default 900)")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((REPO / "notebooks").glob("*.ipynb"))
    if not notebooks:
        print("run_notebooks: no notebook to run", file=sys.stderr)
        return 2
    # The kernel inherits this environment: this checkout first on its path, Spark on the loopback interface.
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    failed = [nb for nb in notebooks if not execute(nb, args.out, args.timeout)]
    if failed:
        print(f"run_notebooks: {len(failed)} of {len(notebooks)} notebook(s) failed: "
              f"{', '.join(str(nb) for nb in failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
