"""``--changed``: each events partition records the raw listing it was made from; the daily chain redoes only the
days whose listing changed (json_to_parquet) or the partitions converted since (event_tables, message_type_counts)."""
from __future__ import annotations

import gzip
import json
import os
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from jobs import event_tables, json_to_parquet, message_type_counts
from lakelib.changes import compare, lookback_days
from lakelib.paths import day_folder
from lakelib.publish import FAULT_ENV

D1, D2, D3 = "2026-01-01", "2026-01-02", "2026-01-03"
RANGE = ["--date", D1, "--end-date", D3]


def write_raw(tmp_path: Path, day: str, ids, name: str = "part-0.gz", source: str = "web") -> Path:
    folder = tmp_path / "raw" / source / day_folder(date.fromisoformat(day))
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"messageId": f"{day}-{i}", "type": "track", "event": "Order Completed", "userId": f"u{i}",
                         "timestamp": f"{day}T00:00:00Z", "properties": {"n": i}}) for i in ids]
    path = folder / name
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


@pytest.fixture
def lake(spark, tmp_path):
    """A lake with Spark's catalog (versions published by the catalog), dropped after the test."""
    database = f"chg_{uuid.uuid4().hex[:10]}"
    config = tmp_path / "lake.yaml"
    config.write_text(
        f"lake: {{raw: {tmp_path}/raw, tables: {tmp_path}/tables, quarantine: {tmp_path}/quarantine, "
        f"reports: {tmp_path}/reports}}\ncatalog: {{kind: spark, database: {database}}}\n", encoding="utf-8")
    yield tmp_path, config
    spark.sql(f"DROP DATABASE IF EXISTS {database} CASCADE")


def run(tmp_path: Path, config: Path, main, *args: str) -> tuple[int, dict]:
    out = tmp_path / f"report-{uuid.uuid4().hex[:8]}.json"
    code = main(["--config", str(config), "--report", str(out), *args])
    return code, json.loads(out.read_text()) if out.exists() else {}


def published(report: dict, table: str | None = None) -> set[tuple]:
    return {(p["table"], p.get("sourceid"), p.get("dt") or p.get("end_dt")) for p in report.get("published", [])
            if table is None or p["table"] == table}


def reasons(report: dict) -> dict[str, str]:
    return {d["dt"]: d["reason"] for d in report["changed_days"]}


def listing_state(tmp_path: Path, day: str) -> Path:
    return tmp_path / "tables" / "_lakelib" / "raw_listings" / "sourceid=web" / f"dt={day}.json"


# --- json_to_parquet ---------------------------------------------------------------------------------------------


def test_a_late_file_for_an_earlier_day_is_converted_by_the_next_changed_run_and_nothing_else(spark, lake):
    tmp_path, config = lake
    write_raw(tmp_path, D1, range(3))
    write_raw(tmp_path, D2, range(4))
    code, first = run(tmp_path, config, json_to_parquet.main, "--changed", *RANGE)
    assert code == 0 and first["status"] == "succeeded"
    assert reasons(first) == {D1: "new files", D2: "new files"}
    assert {(p["dt"], p["reason"]) for p in first["partitions"]} == {(D1, "new files"), (D2, "new files")}
    recorded = json.loads(listing_state(tmp_path, D1).read_text())
    entry = {p["dt"]: p for p in first["partitions"]}[D1]
    assert recorded["version"] == entry["version"] and recorded["version"]
    assert [f[0] for f in recorded["files"]] == [f"{day_folder(date.fromisoformat(D1))}/part-0.gz"]

    write_raw(tmp_path, D1, range(3, 5), name="part-1.gz")  # Segment writes into D1's folder a day later
    code, second = run(tmp_path, config, json_to_parquet.main, "--changed", *RANGE)
    assert code == 0 and second["status"] == "succeeded"
    assert reasons(second) == {D1: "new files", D2: "unchanged"}
    assert [(p["dt"], p["rows_written"], p["reason"]) for p in second["partitions"]] == [(D1, 5, "new files")]
    assert published(second) == {("events", "web", D1), ("json_to_parquet", "web", D1)}
    assert second["totals"]["days_converted"] == 1 and second["totals"]["day_reasons"] == {
        f"web/{D1}": "new files", f"web/{D2}": "unchanged"}
    assert json.loads(listing_state(tmp_path, D2).read_text())["run_id"] == first["run_id"]
    row = spark.read.parquet(f"{tmp_path}/tables/lake_runs/job=json_to_parquet/{second['run_id']}.parquet").first()
    assert json.loads(row["totals"])["day_reasons"] == {f"web/{D1}": "new files", f"web/{D2}": "unchanged"}
    assert json.loads(listing_state(tmp_path, D1).read_text())["version"] == second["partitions"][0]["version"]


def test_a_removed_raw_file_reconverts_the_day_from_what_is_left_and_a_day_with_none_left_loses_its_partition(lake):
    tmp_path, config = lake
    write_raw(tmp_path, D1, range(3))
    gone = write_raw(tmp_path, D1, range(3, 5), name="part-1.gz")
    write_raw(tmp_path, D2, range(2))
    assert run(tmp_path, config, json_to_parquet.main, "--changed", *RANGE)[0] == 0

    gone.unlink()
    code, report = run(tmp_path, config, json_to_parquet.main, "--changed", *RANGE)
    assert code == 0 and reasons(report) == {D1: "removed files", D2: "unchanged"}
    assert [(p["dt"], p["rows_written"]) for p in report["partitions"]] == [(D1, 3)]
    assert {d["dt"]: d["files_removed"] for d in report["changed_days"]} == {D1: 1, D2: 0}

    for f in (tmp_path / "raw" / "web" / day_folder(date.fromisoformat(D1))).iterdir():
        f.unlink()
    code, report = run(tmp_path, config, json_to_parquet.main, "--changed", *RANGE)
    assert code == 0 and reasons(report) == {D1: "removed files", D2: "unchanged"}
    events = [p for p in report["published"] if p["table"] == "events"]
    assert [(p["dt"], p["version"]) for p in events] == [(D1, None)]  # the partition is dropped
    code, report = run(tmp_path, config, json_to_parquet.main, "--changed", *RANGE)
    assert code == 0 and report["status"] == "nothing_to_do" and reasons(report) == {D2: "unchanged"}


def test_a_crash_after_the_write_records_no_listing_so_the_next_changed_run_converts_the_day(lake):
    tmp_path, config = lake
    write_raw(tmp_path, D1, range(3))
    os.environ[FAULT_ENV] = "after_write"
    try:
        code, report = run(tmp_path, config, json_to_parquet.main, "--changed", *RANGE)
    finally:
        os.environ.pop(FAULT_ENV, None)
    assert code == 1 and report["status"] == "failed"
    assert not listing_state(tmp_path, D1).exists()
    assert not (tmp_path / "tables" / "_lakelib" / "conversions").exists()
    code, report = run(tmp_path, config, json_to_parquet.main, "--changed", *RANGE)
    assert code == 0 and reasons(report) == {D1: "new files"}
    assert [(p["dt"], p["rows_written"]) for p in report["partitions"]] == [(D1, 3)]


def test_changed_alone_looks_back_from_today_and_refuses_lookback_days_it_cannot_use(lake, capsys):
    tmp_path, config = lake
    today = datetime.now(timezone.utc).date()
    write_raw(tmp_path, today.isoformat(), range(2))
    write_raw(tmp_path, D1, range(2))  # far outside the lookback
    code, report = run(tmp_path, config, json_to_parquet.main, "--changed", "--lookback-days", "2")
    assert code == 0 and reasons(report) == {today.isoformat(): "new files"}
    for args in (["--lookback-days", "2"], ["--changed", "--lookback-days", "0"],
                 ["--changed", "--lookback-days", "2", "--date", D1]):
        assert json_to_parquet.main(["--config", str(config), *args]) == 2
    assert "--lookback-days" in capsys.readouterr().err


# --- the whole daily chain ------------------------------------------------------------------------------------------

CHAIN = [(event_tables.main, []), (message_type_counts.main, ["--period", "day"]),
         (message_type_counts.main, ["--period", "year"])]


def test_an_unchanged_lake_makes_changed_a_no_op_for_every_job_and_late_files_redo_only_their_days(lake):
    tmp_path, config = lake
    for source in ("web", "ios"):
        write_raw(tmp_path, D1, range(3), source=source)
        write_raw(tmp_path, D2, range(4), source=source)
    assert run(tmp_path, config, json_to_parquet.main, "--changed", *RANGE)[0] == 0
    for main, args in CHAIN:
        code, report = run(tmp_path, config, main, "--changed", *args)
        assert code == 0 and report["status"] == "succeeded", report.get("error")
    first_year = published(report, "message_type_counts_yearly")
    assert first_year == {("message_type_counts_yearly", s, d) for s in ("web", "ios") for d in (D1, D2)}

    code, report = run(tmp_path, config, json_to_parquet.main, "--changed", *RANGE)
    assert code == 0 and report["status"] == "nothing_to_do" and not report.get("published")
    assert report["totals"]["days_unchanged"] == 4 and report["totals"]["rows_written"] == 0
    for main, args in CHAIN:
        code, report = run(tmp_path, config, main, "--changed", *args)
        assert code == 0 and report["status"] == "nothing_to_do" and not report.get("published"), report

    write_raw(tmp_path, D1, range(3, 6), name="part-1.gz")  # late files: web's first day, ios's second
    write_raw(tmp_path, D2, range(4, 5), name="part-1.gz", source="ios")
    late = {("web", D1), ("ios", D2)}
    code, report = run(tmp_path, config, json_to_parquet.main, "--changed", *RANGE)
    assert code == 0 and {k[1:] for k in published(report, "events")} == late
    code, report = run(tmp_path, config, event_tables.main, "--changed")
    assert code == 0 and {k[1:] for k in published(report)} == late  # tracks and order_completed, nothing dropped
    assert all(p["version"] for p in report["published"])
    assert {(p["sourceid"], p["dt"]): p["events"] for p in report["partitions"]} == {("web", D1): 6, ("ios", D2): 5}
    code, report = run(tmp_path, config, message_type_counts.main, "--changed", "--period", "day")
    assert code == 0 and {k[1:] for k in published(report)} == late
    assert {(p["sourceid"], p["dt"]): p["message_count"] for p in report["partitions"]} == {("web", D1): 6,
                                                                                            ("ios", D2): 5}
    code, report = run(tmp_path, config, message_type_counts.main, "--changed", "--period", "year")
    assert code == 0 and published(report, "message_type_counts_yearly") == first_year  # every window holds one
    assert {(p["sourceid"], p["end_dt"]): p["message_count"] for p in report["partitions"]} == {
        ("web", D1): 6, ("web", D2): 10, ("ios", D1): 3, ("ios", D2): 8}
    for main, args in [(json_to_parquet.main, RANGE)] + CHAIN:
        code, report = run(tmp_path, config, main, "--changed", *args)
        assert code == 0 and report["status"] == "nothing_to_do" and not report.get("published")


# --- pure parts ---------------------------------------------------------------------------------------------------


def test_compare_names_the_change_and_a_day_never_converted_is_new():
    key = ("web", D1)
    assert compare(key, [["f/a.gz", 1, 1]], None).reason == "new files"
    assert compare(key, [], {"files": [["f/a.gz", 1, 1]]}).reason == "removed files"
    assert compare(key, [["f/a.gz", 1, 2]], {"files": [["f/a.gz", 1, 1]]}).reason == "changed files"
    both = compare(key, [["f/b.gz", 1, 1]], {"files": [["f/a.gz", 1, 1]]})
    assert (both.reason, both.new, both.removed) == ("new files", ["f/b.gz"], ["f/a.gz"])


def test_lookback_days_ends_today_and_keeps_the_requested_days():
    import argparse

    args = argparse.Namespace(changed=True, lookback_days=None)
    days = lookback_days(args, None, today=date(2026, 3, 14))
    assert (len(days), days[0], days[-1]) == (14, date(2026, 3, 1), date(2026, 3, 14))
    assert lookback_days(args, [date(2026, 1, 1)]) == [date(2026, 1, 1)]
    assert lookback_days(argparse.Namespace(changed=False, lookback_days=None), None) is None
