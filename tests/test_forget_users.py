"""forget_users end to end: who goes (linked ids, the shared device), where (every table, the quarantine, the counts,
the raw copy), what stays untouched, no clear id anywhere, and a forgotten person never comes back."""
from __future__ import annotations

import gzip
import json
import re
import uuid
from datetime import date
from pathlib import Path

import pytest

from jobs import event_tables, forget_users, json_to_parquet, message_type_counts
from lakelib.paths import day_folder
from lakelib.sample import SampleSpec, generate

DAY1, DAY2 = date(2026, 1, 1), date(2026, 1, 2)
GONE = "u-gone-4711"  # the person asked for
ANON, PREV = "anon-linked-0815", "prev-linked-0042"  # ids the lake ties to them
OTHER = "u-other-1234"  # another person on the same device (ANON)
SECRETS = (GONE, ANON, PREV, f"{GONE}@example.org")


def _msg(mid: str, kind: str, **fields) -> str:
    return json.dumps({"messageId": mid, "type": kind, "timestamp": "2026-01-01T10:00:00Z", **fields})


PERSON_LINES = [
    _msg("g1", "track", userId=GONE, anonymousId=ANON, event="Order Completed", properties={"total": 5}),
    _msg("g2", "identify", userId=GONE, traits={"email": f"{GONE}@example.org"}),
    _msg("g3", "alias", userId=GONE, previousId=PREV),
    _msg("g4", "page", anonymousId=ANON, name="Home"),  # before they logged in, on their device
    _msg("g5", "screen", anonymousId=PREV, name="Start"),  # under the id the alias ties to them
    _msg("o1", "track", userId=OTHER, anonymousId=ANON, event="Order Completed", properties={"total": 7}),
    f'{{"messageId": "q1", "type": "track", "userId": "{GONE}", oops}}',  # quarantined, holds the id
    '{"messageId": "q2", "type": "track", oops}',  # quarantined, nobody's
]


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """A sample lake (Spark catalog, uncompressed Parquet so that a byte search means something) with one person
    added on web's first day, converted, typed, counted."""
    root = tmp_path_factory.mktemp("forget")
    database = f"forget_{uuid.uuid4().hex[:8]}"
    generate(SampleSpec(out=str(root / "raw"), sources=2, days=2, events_per_day=150, files_per_day=1, start=DAY1,
                        seed=5, malformed_share=0.02))
    person = root / "raw" / "web" / day_folder(DAY1) / "person.gz"
    person.write_bytes(gzip.compress(("\n".join(PERSON_LINES) + "\n").encode()))
    config = root / "lake.yaml"
    config.write_text(
        f"lake: {{raw: {root}/raw, tables: {root}/tables, quarantine: {root}/quarantine, reports: {root}/reports}}\n"
        f"catalog: {{kind: spark, database: {database}}}\nwrite: {{compression: none}}\n")
    base = ["--config", str(config), "--date", DAY1.isoformat(), "--end-date", DAY2.isoformat()]
    assert json_to_parquet.main(base) == 0
    assert event_tables.main(base) == 0
    assert message_type_counts.main(base + ["--period", "day"]) == 0
    assert message_type_counts.main(["--config", str(config), "--period", "year", "--date", DAY2.isoformat()]) == 0
    ids = root / "ids.jsonl"
    ids.write_text(json.dumps({"userId": GONE}) + "\n")
    yield {"root": root, "config": config, "database": database, "ids": ids, "person": person,
           "original": person.read_bytes()}
    spark.sql(f"DROP DATABASE IF EXISTS {database} CASCADE")


def _run(lake, *args: str) -> tuple[int, dict]:
    report = lake["root"] / f"report-{uuid.uuid4().hex[:6]}.json"
    code = forget_users.main(["--config", str(lake["config"]), "--ids", str(lake["ids"]), "--report", str(report),
                              *args])
    return code, json.loads(report.read_text()) if report.exists() else {}


def _table(spark, lake, name):
    spark.catalog.refreshTable(f"{lake['database']}.{name}")
    return spark.table(f"{lake['database']}.{name}")


def _ids_in(spark, lake, name) -> set[str]:
    df = _table(spark, lake, name)
    cols = [c for c in ("userid", "anonymousid", "previousid") if c in df.columns]
    return {v for r in df.select(*cols).collect() for v in r if v}


def _locations(spark, lake, table) -> dict[str, str]:
    rows = spark.sql(f"SHOW PARTITIONS {lake['database']}.{table}").collect()
    out = {}
    for r in rows:
        spec = r[0]
        desc = spark.sql(f"DESCRIBE FORMATTED {lake['database']}.{table} PARTITION "
                         f"({', '.join(f'{k}={v!r}' for k, v in (kv.split('=') for kv in spec.split('/')))})")
        out[spec] = [d["data_type"] for d in desc.collect() if d["col_name"] == "Location"][0]
    return out


def _bytes_under(folder: Path) -> bytes:
    """Every file's bytes (gzip decompressed) under a folder."""
    out = []
    for p in folder.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            out.append(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    return b"\n".join(out)


def test_a_dry_run_says_what_would_go_and_changes_nothing(spark, lake, capsys):
    def files():  # what a dry run must not change (its own report and lake_runs row aside)
        return sorted(str(p) for p in lake["root"].rglob("*") if not {"reports", "lake_runs"} & set(p.parts)
                      and not p.name.startswith("report-"))

    before = files()
    code, report = _run(lake, "--dry-run")
    assert code == 0 and report["status"] == "dry_run"
    out = capsys.readouterr().out
    assert "events: 5 row(s) in 1 partition(s)" in out and "quarantine: 1 row(s) in 1 partition(s)" in out
    assert files() == before


def test_forgetting_erases_the_person_and_linked_ids_everywhere_and_keeps_them_out(spark, lake, capsys):
    events_before = _locations(spark, lake, "events")
    other_day = f"sourceid=web/dt={DAY2}"
    code, report = _run(lake, "--include-raw", "--set", "forget.retention_hours=0")
    assert code == 0, report.get("error")
    assert report["verified"] is True and report["linked_ids_added"] == 2
    assert report["tables"]["events"] == {"rows_removed": 5, "partitions_rewritten": 1}
    assert report["tables"]["quarantine"] == {"rows_removed": 1, "partitions_rewritten": 1}
    assert report["tables"]["tracks"]["rows_removed"] == 1 and report["tables"]["aliases"]["rows_removed"] == 1
    assert report["tables"]["order_completed"]["rows_removed"] == 1
    assert report["raw"] == {"files_rewritten": 1, "lines_removed": 6}
    assert report["erased_bytes_gone"] == "now"

    # Gone from every table read through the catalog; the other person on the shared device stays.
    for name in ("events", "tracks", "identifies", "pages", "screens", "aliases", "order_completed"):
        assert not {GONE, PREV} & _ids_in(spark, lake, name), name
    events = _table(spark, lake, "events")
    assert {r["messageid"] for r in events.where(f"anonymousid = '{ANON}'").collect()} == {"o1"}
    # A partition without them is not touched.
    after = _locations(spark, lake, "events")
    assert after[other_day] == events_before[other_day]
    assert after[f"sourceid=web/dt={DAY1}"] != events_before[f"sourceid=web/dt={DAY1}"]
    # Counts equal the events again.
    counts = {(r["type"]): r["message_count"] for r in _table(spark, lake, "message_type_counts_daily")
              .where(f"sourceid = 'web' and dt = '{DAY1}'").collect()}
    from_events = {r["type"]: r["count"] for r in events.where(f"sourceid = 'web' and dt = '{DAY1}'")
                   .groupBy("type").count().collect()}
    assert counts == from_events
    yearly = {r["type"]: r["message_count"] for r in _table(spark, lake, "message_type_counts_yearly")
              .where("sourceid = 'web'").collect()}
    two_days = {r["type"]: r["count"] for r in events.where("sourceid = 'web'").groupBy("type").count().collect()}
    assert yearly == two_days

    # No byte of them left under the tables or the quarantine (superseded versions included); the linked device id
    # stays only in the other person's event. No id in clear in the reports or the logs.
    for folder in ("tables", "quarantine"):
        blob = _bytes_under(lake["root"] / folder)
        assert not any(s.encode() in blob for s in SECRETS if s != ANON), folder
    assert not any(s.encode() in _bytes_under(lake["root"] / "reports") for s in SECRETS)
    out = capsys.readouterr()
    assert not any(s in out.out + out.err for s in SECRETS)
    runs = _table(spark, lake, "lake_runs").where("job = 'forget_users'").collect()
    assert runs and not any(s in json.dumps(r.asDict(), default=str) for r in runs for s in SECRETS)

    # The raw file lost exactly their lines; every other line is kept byte for byte.
    kept = gzip.decompress(lake["person"].read_bytes()).split(b"\n")
    assert kept == [line.encode() for line in PERSON_LINES if not re.search(r"g\d|q1", line)] + [b""]


def test_a_reconversion_never_brings_them_back_and_a_rerun_removes_nothing(spark, lake):
    lake["person"].write_bytes(lake["original"])  # Segment recopied the raw file, or it came back from a backup
    report_path = lake["root"] / "reconvert.json"
    args = ["--config", str(lake["config"]), "--date", DAY1.isoformat()]
    assert json_to_parquet.main(args + ["--source", "web", "--report", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    web = report["partitions"][0]
    assert web["suppressed"] == 6 and report["totals"]["suppressed"] == 6  # their 5 events and their rejected line
    assert web["quarantined_by_reason"]["invalid_json"] == web["quarantined"] - sum(
        n for r, n in web["quarantined_by_reason"].items() if r != "invalid_json")
    assert web["lines_read"] == web["rows_written"] + web["duplicates_dropped"] + web["quarantined"] + web["suppressed"]
    assert not {GONE, PREV} & _ids_in(spark, lake, "events")
    assert event_tables.main(args) == 0
    assert not {GONE, PREV} & (_ids_in(spark, lake, "tracks") | _ids_in(spark, lake, "aliases"))
    assert GONE.encode() not in _bytes_under(lake["root"] / "quarantine" / "json_to_parquet")

    code, report = _run(lake, "--set", "forget.retention_hours=0")
    assert code == 0 and report["totals"]["rows_removed"] == 0 and report["verified"] is True
    assert all(t["rows_removed"] == 0 for t in report["tables"].values())


def test_the_ids_file_is_checked_before_anything_is_read(lake, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"userId": "fine"}) + "\n" + '{"userId": "secret-person", oops\n')
    code = forget_users.main(["--config", str(lake["config"]), "--ids", str(bad)])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1 and "line 2" in err and "secret-person" not in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert forget_users.main(["--config", str(lake["config"]), "--ids", str(empty)]) == 2
    assert "no id" in capsys.readouterr().err


def test_with_glue_the_rewritten_partitions_are_re_pointed(spark, tmp_path, aws):
    import boto3

    raw = tmp_path / "raw" / "web"
    for day, lines in ((DAY1, PERSON_LINES[:6]), (DAY2, [_msg("d2", "track", userId=OTHER, event="X")])):
        (raw / day_folder(day)).mkdir(parents=True)
        (raw / day_folder(day) / "part-0.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    config = tmp_path / "lake.yaml"
    config.write_text(
        f"lake: {{raw: {tmp_path}/raw, tables: {tmp_path}/tables, quarantine: {tmp_path}/q, reports: {tmp_path}/r}}\n"
        f"catalog: {{kind: glue, database: forget, glue: {{region: us-east-1, endpoint_url: '{aws}'}}}}\n")
    assert json_to_parquet.main(["--config", str(config)]) == 0
    glue = boto3.client("glue", region_name="us-east-1", endpoint_url=aws)

    def locations():
        pages = glue.get_paginator("get_partitions").paginate(DatabaseName="forget", TableName="events")
        return {tuple(p["Values"]): p["StorageDescriptor"]["Location"] for page in pages for p in page["Partitions"]}

    before = locations()
    ids = tmp_path / "ids.jsonl"
    ids.write_text(json.dumps({"userId": GONE}) + "\n")
    report = tmp_path / "report.json"
    assert forget_users.main(["--config", str(config), "--ids", str(ids), "--report", str(report)]) == 0
    after = locations()
    assert after[("web", str(DAY2))] == before[("web", str(DAY2))]
    assert after[("web", str(DAY1))] != before[("web", str(DAY1))] and "/_versions/events/" in after[("web", str(DAY1))]
    done = json.loads(report.read_text())
    assert done["tables"]["events"]["rows_removed"] == 5 and done["erased_bytes_gone"] != "now"
    rows = spark.read.parquet(after[("web", str(DAY1))]).select("messageid").collect()
    assert sorted(r[0] for r in rows) == ["o1"]
