"""The pure parts of ``make bench``: parameters -> input layout, measuring a process, the report's arithmetic."""
from __future__ import annotations

import os
import sys

import pytest

from benchmarks.core import BenchParams, ratios, raw_day_folders, render_markdown, summarize
from benchmarks.measure import run
from benchmarks.run import ensure_input
from lakelib.paths import folder_day


def test_default_parameters_are_the_issue_s_input():
    params = BenchParams()
    assert params.n_files == 24
    assert params.events_per_day * params.sources * params.days == 1_000_000
    assert params.last_day.isoformat() == "2026-01-04"
    assert BenchParams(seed=1).key != params.key and BenchParams(lines=10).key != params.key


def test_raw_day_folders_are_every_source_and_day():
    folders = raw_day_folders(BenchParams(days=2), ["web", "ios"])
    assert [s for s, _ in folders] == ["ios", "ios", "web", "web"]
    assert sorted({folder_day(d).isoformat() for _, d in folders}) == ["2026-01-01", "2026-01-02"]


def test_input_is_generated_in_the_raw_layout_and_reused(tmp_path):
    params = BenchParams(lines=240, sources=2, days=2, files_per_day=3, seed=5)
    meta = ensure_input(params, str(tmp_path))
    raw = meta["raw"]
    assert os.path.isabs(raw)
    found = sorted(os.path.relpath(os.path.join(r, f), raw) for r, _d, fs in os.walk(raw) for f in fs)
    assert len(found) == meta["files"] == 12
    assert {tuple(p.split("/")[:2]) for p in found} == set(raw_day_folders(params, meta["sources"]))
    assert all(p.endswith(".gz") for p in found)
    assert meta["lines"] >= 240
    stamp = os.path.getmtime(os.path.join(raw, found[0]))
    again = ensure_input(params, str(tmp_path))
    assert again["lines"] == meta["lines"] and os.path.getmtime(os.path.join(raw, found[0])) == stamp
    other = ensure_input(BenchParams(lines=240, sources=2, days=2, files_per_day=3, seed=6), str(tmp_path))
    assert other["raw"] != raw


def test_duckdb_conversion_partitions_by_the_raw_folders(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    from benchmarks.duck_job import main as duck_main

    params = BenchParams(lines=200, sources=2, days=2, files_per_day=2, seed=3)
    meta = ensure_input(params, str(tmp_path / "data"))
    out = str(tmp_path / "duck")
    duck_main(out, meta["raw"], 1)
    rows = duckdb.sql(
        f"SELECT sourceid, CAST(dt AS VARCHAR), count(*) FROM read_parquet('{out}/*/*/*.parquet', "
        "hive_partitioning=true) GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    expected = sorted((s, folder_day(d).isoformat()) for s, d in raw_day_folders(params, meta["sources"]))
    assert [(s, d) for s, d, _n in rows] == expected
    assert all(n >= params.events_per_day for _s, _d, n in rows)


def test_measure_reports_exit_status_and_the_child_s_memory():
    big = run([sys.executable, "-c", "import time; b = bytearray(80_000_000); b[::4096] = b'x' * len(b[::4096]); "
               "time.sleep(0.6)"], interval=0.05)
    assert big.ok and big.seconds > 0.5
    assert big.rss_mb >= 75
    failed = run([sys.executable, "-c", "import sys; sys.exit(3)"])
    assert not failed.ok and failed.returncode == 3


def _result(lakelib, naive, duckdb, floor):
    runs = lambda xs: [{"seconds": x, "rss_mb": 500.0 + x, "output_bytes": 2_000_000} for x in xs]  # noqa: E731
    return {
        "when": "2026-11-27 04:00 UTC", "argv": "--quick",
        "machine": {"nproc": 2, "cpu": "Test CPU", "mem_gb": 8.0, "load_before": "0.10, 0.20, 0.30"},
        "versions": {"Python": "3.11", "Spark (PySpark)": "3.5.0", "DuckDB": "1.0", "Java": "17"},
        "params": BenchParams().to_dict(), "repeats": 3,
        "input": {"files": 24, "lines": 1_014_618, "bytes": 111_000_000},
        "conversion": {"lakelib": runs(lakelib), "naive": runs(naive), "duckdb": runs(duckdb), "floor": runs(floor)},
    }


def test_report_shows_medians_runs_and_ratios_against_the_targets():
    text = render_markdown(_result([30, 10, 50], [60, 61, 59], [10, 9, 11], [15, 14, 16]))
    assert "| 30.0 s | [30.0, 10.0, 50.0] | 550 MB |" in text  # median 30, peak RSS the largest run's
    assert "| naive | 0.50x | <= 1.0x | yes |" in text
    assert "| duckdb | 3.00x | (reported) | |" in text
    assert "| floor | 2.00x | (reported) | |" in text
    text = render_markdown(_result([70], [60], [10], [15]))
    assert "| naive | 1.17x | <= 1.0x | no |" in text
    assert "Test CPU" in text and "0.10, 0.20, 0.30" in text and "1,014,618 lines" in text
    assert "benchmarks/conversion.png" in text


def test_failed_runs_are_left_out_of_the_median_and_counted():
    s = summarize([{"seconds": 5.0, "rss_mb": 1.0}, {"seconds": 1.0, "rss_mb": 9.0, "ok": False},
                   {"seconds": 7.0, "rss_mb": 2.0}])
    assert s["seconds"] == 6.0 and s["failed"] == 1 and s["rss_mb"] == 2.0
    r = ratios({"lakelib": {"seconds": 10.0}, "naive": {"seconds": None}})
    assert r["naive"]["ratio"] is None and not r["naive"]["met"]


def test_the_scale_table_shows_each_size_against_the_1m_run_and_names_a_failure():
    def fig(seconds, ok=True, rss=900.0):
        return {"seconds": seconds, "rss_mb": rss, "ok": ok, "returncode": 0 if ok else 52}

    rows = [
        {"target_lines": 250_000, "lines": 253_580, "bytes": 28_000_000, "lakelib": fig(20.0), "naive": fig(10.0)},
        {"target_lines": 1_000_000, "lines": 1_014_618, "bytes": 111_000_000, "lakelib": fig(50.0), "naive": fig(25.0)},
        {"target_lines": 4_000_000, "lines": 4_058_000, "bytes": 444_000_000, "lakelib": fig(180.0, ok=False),
         "naive": fig(100.0)},
    ]
    result = dict(_result([30], [60], [10], [15]), scale={"when": "2026-11-27 23:00 UTC", "driver_memory": "1g",
                                                          "rows": rows})
    text = render_markdown(result)
    assert "## Scale" in text and "1g driver heap" in text
    assert "| 1,014,618 | 105.9 MB | 50.0 s | 900 MB | 49.3 s | 1.00x | 25.0 s | 900 MB | 2.00x |" in text
    assert "| 253,580 | 26.7 MB | 20.0 s | 900 MB | 78.9 s | 0.40x | 10.0 s |" in text
    assert "failed (exit 52)" in text


def test_the_event_tables_table_shows_each_width_against_its_conversion_with_the_job_s_steps():
    def fig(seconds, ok=True, **extra):
        return {"seconds": seconds, "rss_mb": 900.0, "ok": ok, "returncode": 0 if ok else 1, **extra}

    steps = {"read_and_plan": 20.0, "stale": 1.0, "write": 15.0, "verify": 2.0, "rewrite_older": 0.0,
             "publish": 8.0}
    figure = {"when": "2026-12-05 09:00 UTC", "load_before": "1.0, 1.0, 1.0", "load_after": "2.0, 2.0, 2.0",
              "rows": [{"names": 50, "conversion": fig(60.0), "event_tables": fig(54.0, tables=56, steps=steps)},
                       {"names": 500, "conversion": fig(62.0), "event_tables": fig(90.0, ok=False)}]}
    text = render_markdown(dict(_result([30], [60], [10], [15]), event_tables=figure))
    assert "## Typed tables at width" in text and "2026-12-05 09:00 UTC" in text
    assert ("| 50 | 56 | 60.0 s | 54.0 s | 0.90x | <= 1.0x | yes | 20.0 s | 1.0 s | 15.0 s | 2.0 s | 0.0 s | 8.0 s |"
            in text)
    assert "| 500 | | 62.0 s | failed | | <= 1.0x | no |" in text
