"""json_to_parquet end to end: raw gzip folders in, events + quarantine + report out, checked independently."""
from __future__ import annotations

import base64
import gzip
import json
import re
import uuid
from collections import defaultdict
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs import json_to_parquet
from lakelib.parse import TOO_DEEP
from lakelib.paths import day_folder, unescape_value
from lakelib.raw import RawDay, read_raw_lines
from lakelib.sample import SampleSpec, generate
from lakelib.schema import EVENTS, MESSAGE_TYPES, spark_schema
from lakelib.storage import FileInfo

DAY1, DAY2 = date(2026, 1, 1), date(2026, 1, 2)
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|z|[+-]\d{2}(:?\d{2})?)?$")


def reference_judge(line: str):
    """An independent reading of the contract's reject rules, in plain Python: (reason, message)."""
    def no_constants(name):
        raise ValueError(name)

    try:
        message = json.loads(line, parse_constant=no_constants)
    except ValueError:
        return "invalid_json", None
    if not isinstance(message, dict):
        return "not_an_object", None
    mid = message.get("messageId")
    if mid is None or (isinstance(mid, str) and not mid.strip()):
        return "missing_message_id", None
    if message.get("type") not in MESSAGE_TYPES:
        return "invalid_type", None
    ts = message.get("timestamp")
    if not isinstance(ts, str) or not ISO.match(ts):
        return "invalid_timestamp", None
    try:
        datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", ts).replace("z", "Z"))
    except ValueError:
        return "invalid_timestamp", None
    return None, message


def expected_from_raw(raw: Path):
    """Per (source, dt): lines, duplicates, quarantined by reason, and the winning copy of each messageId."""
    out = defaultdict(lambda: {"lines": 0, "by_reason": defaultdict(int), "winners": {}, "valid": 0})
    for path in sorted(raw.rglob("*.gz")):
        source, folder = path.parent.parent.name, path.parent.name
        dt = datetime.fromtimestamp(int(folder) / 1000, tz=timezone.utc).date().isoformat()
        part = out[(source, dt)]
        for line in gzip.open(path, "rt", encoding="utf-8").read().split("\n"):
            if not line.strip():
                continue
            part["lines"] += 1
            reason, message = reference_judge(line)
            if reason:
                part["by_reason"][reason] += 1
                continue
            part["valid"] += 1
            mid = message["messageId"] if isinstance(message["messageId"], str) else json.dumps(message["messageId"])
            received = message.get("receivedAt") or "9999"
            if mid not in part["winners"] or received < part["winners"][mid]["receivedAt"]:
                part["winners"][mid] = dict(message, receivedAt=received)
    return out


def write_raw(raw: Path, source: str, day: date, lines, name="part-0.gz"):
    folder = raw / source / day_folder(day)
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / name, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return folder / name


def write_config(tmp_path: Path, catalog: str = "kind: none") -> Path:
    config = tmp_path / "job.yaml"
    config.write_text(
        f"lake:\n  raw: {tmp_path}/raw\n  tables: {tmp_path}/tables\n  quarantine: {tmp_path}/quarantine\n"
        f"  reports: {tmp_path}/reports\ncatalog:\n  {catalog}\nwrite:\n  target_file_mb: 64\n"
    )
    return config


def read_events(spark, tmp_path: Path):
    return spark.read.schema(spark_schema(EVENTS, with_partitions=True)).option(
        "basePath", f"{tmp_path}/tables/events").parquet(f"{tmp_path}/tables/events/sourceid=*/dt=*")


def comparable(df):
    """Map columns as JSON text, so that chispa can sort rows (Spark cannot order maps)."""
    return df.select(*[F.to_json(c).alias(c) if t.startswith("map") else F.col(c) for c, t in df.dtypes])


def run(config: Path, *args: str) -> int:
    return json_to_parquet.main(["--config", str(config), *args])


@pytest.fixture(scope="module")
def sampled(spark, tmp_path_factory):
    """A generated lake with ugly extras, converted once; shared by the checks below."""
    tmp_path = tmp_path_factory.mktemp("lake")
    generate(SampleSpec(out=str(tmp_path / "raw"), sources=2, days=2, events_per_day=400, files_per_day=2,
                        start=DAY1, seed=11, duplicate_share=0.05, malformed_share=0.05))
    write_raw(tmp_path / "raw", "web", DAY1, [
        '{"messageId":"x1","type":"track","timestamp":"2026-01-01T10:00:00+02:00","receivedAt":"2026-01-01T09:00:00.5Z"}',
        '{"messageId":"x1","type":"track","timestamp":"2026-01-01T10:00:00+02:00","receivedAt":"2026-01-01T08:00:00Z"}',
        '{"messageId":"x2","type":"page","timestamp":"2026-01-01T10:00:00.123456Z","userId":7,"context":"n/a"}',
        "", '{"messageId":"x3"', "[]",
    ], name="extra.gz")
    config = write_config(tmp_path)
    report_path = tmp_path / "report.json"
    code = run(config, "--date", DAY1.isoformat(), "--end-date", "2026-01-03", "--report", str(report_path))
    return tmp_path, config, code, json.loads(report_path.read_text())


def test_the_run_succeeds_and_reports_every_line(sampled):
    tmp_path, _, code, report = sampled
    assert code == 0 and report["status"] == "succeeded"
    expected = expected_from_raw(tmp_path / "raw")
    assert {(p["sourceid"], p["dt"]) for p in report["partitions"]} == set(expected)
    for p in report["partitions"]:
        e = expected[(p["sourceid"], p["dt"])]
        assert p["lines_read"] == e["lines"]
        assert p["rows_written"] == len(e["winners"])
        assert p["duplicates_dropped"] == e["valid"] - len(e["winners"])
        assert p["quarantined"] == sum(e["by_reason"].values())
        assert {k: v for k, v in p["quarantined_by_reason"].items() if v} == dict(e["by_reason"])
        assert p["lines_read"] == p["rows_written"] + p["duplicates_dropped"] + p["quarantined"]
        assert p["files_written"] >= 1 and p["bytes_written"] > 0
    totals = report["totals"]
    assert totals["lines_read"] == totals["rows_written"] + totals["duplicates_dropped"] + totals["quarantined"]
    assert totals["lines_read"] == sum(e["lines"] for e in expected.values())
    assert {"sourceid": "web", "dt": "2026-01-03"} in report["skipped_days"]
    assert set(report) >= {"job", "run_id", "status", "started_at", "finished_at", "partitions", "totals"}
    assert (tmp_path / "reports" / "json_to_parquet" / f"{report['run_id']}.json").exists()


def test_the_table_holds_the_earliest_received_copy_of_each_message(spark, sampled):
    tmp_path = sampled[0]
    expected = expected_from_raw(tmp_path / "raw")
    got = {(r["sourceid"], r["dt"], r["messageid"]): r for r in read_events(spark, tmp_path).collect()}
    assert len(got) == sum(len(e["winners"]) for e in expected.values())
    for (source, dt), e in expected.items():
        for mid, message in e["winners"].items():
            row = got[(source, dt, mid)]
            assert row["type"] == message["type"]
            if message["receivedAt"] != "9999":
                want = datetime.fromisoformat(message["receivedAt"].replace("Z", "+00:00"))
                assert row["receivedat"] == want.astimezone(timezone.utc).replace(tzinfo=None)
    extra = got[("web", DAY1.isoformat(), "x1")]
    assert extra["receivedat"] == datetime(2026, 1, 1, 8)
    assert extra["timestamp"] == datetime(2026, 1, 1, 8), "stored in UTC"
    x2 = got[("web", DAY1.isoformat(), "x2")]
    assert x2["userid"] == "7" and x2["context"] is None and x2["timestamp"] == datetime(2026, 1, 1, 10, 0, 0, 123456)


def test_rejected_lines_land_in_the_quarantine_exactly_as_read(spark, sampled):
    tmp_path = sampled[0]
    rows = spark.read.json(f"{tmp_path}/quarantine/json_to_parquet").collect()
    expected = expected_from_raw(tmp_path / "raw")
    assert len(rows) == sum(sum(e["by_reason"].values()) for e in expected.values())
    for row in rows:
        assert row["reason"] == reference_judge(row["raw"])[0]
        assert row["file"].endswith(".gz")
    assert {(r["raw"], r["reason"]) for r in rows} >= {('{"messageId":"x3"', "invalid_json"), ("[]", "not_an_object")}


def test_partitions_are_hive_folders_with_snappy_parquet(sampled):
    tmp_path = sampled[0]
    files = sorted((tmp_path / "tables" / "events").glob("sourceid=*/dt=*/*.parquet"))
    assert files and all(".snappy." in f.name for f in files)
    assert {f.parent.relative_to(tmp_path / "tables" / "events").as_posix() for f in files} == {
        f"sourceid={s}/dt={d}" for s in ("web", "ios") for d in ("2026-01-01", "2026-01-02")}


def test_a_rerun_replaces_exactly_what_it_produces(spark, tmp_path):
    raw = tmp_path / "raw"
    write_raw(raw, "web", DAY1, [json.dumps({"messageId": f"m{i}", "type": "track",
                                             "timestamp": "2026-01-01T00:00:00Z"}) for i in range(50)] + ["bad"])
    write_raw(raw, "web", DAY2, [json.dumps({"messageId": "n1", "type": "alias",
                                             "timestamp": "2026-01-02T00:00:00Z"})])
    config = write_config(tmp_path)
    assert run(config, "--date", "2026-01-01", "--end-date", "2026-01-02") == 0
    first = read_events(spark, tmp_path).collect()
    files_before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "tables" / "events").rglob("*.parquet"))
    assert run(config, "--date", "2026-01-01") == 0
    assert run(config, "--date", "2026-01-01", "--end-date", "2026-01-02") == 0
    second = read_events(spark, tmp_path)
    assert_df_equality(comparable(second), comparable(spark.createDataFrame(first, second.schema)),
                       ignore_row_order=True)
    files_after = sorted(p.relative_to(tmp_path) for p in (tmp_path / "tables" / "events").rglob("*.parquet"))
    assert len(files_after) == len(files_before)
    assert [p.parent for p in files_after] == [p.parent for p in files_before]
    quarantined = list((tmp_path / "quarantine" / "json_to_parquet").rglob("*.json.gz"))
    assert len(quarantined) == 1, "the rerun replaced the quarantine partition, not added to it"


def test_a_day_of_nothing_but_rejects_is_quarantined_and_leaves_no_events(tmp_path):
    good = json.dumps({"messageId": "m1", "type": "track", "timestamp": "2026-01-01T00:00:00Z"})
    write_raw(tmp_path / "raw", "web", DAY1, [good])
    config = write_config(tmp_path)
    assert run(config, "--date", "2026-01-01") == 0
    assert (tmp_path / "tables" / "events" / "sourceid=web" / "dt=2026-01-01").is_dir()
    write_raw(tmp_path / "raw", "web", DAY1, ["not json", "[1]", '{"type": "track"}'])
    report = tmp_path / "report.json"
    assert run(config, "--date", "2026-01-01", "--report", str(report)) == 0
    totals = json.loads(report.read_text())["totals"]
    assert (totals["lines_read"], totals["rows_written"], totals["quarantined"]) == (3, 0, 3)
    assert not (tmp_path / "tables" / "events" / "sourceid=web" / "dt=2026-01-01").exists(), "the stale day is gone"
    assert len(list((tmp_path / "quarantine").rglob("*.json.gz"))) == 1


def test_without_a_date_every_day_folder_is_converted(tmp_path):
    for day in (DAY1, DAY2):
        write_raw(tmp_path / "raw", "web", day, ['{"messageId":"m","type":"track","timestamp":"2026-01-01T00:00:00Z"}'])
    (tmp_path / "raw" / "web" / "not-a-day").mkdir()
    (tmp_path / "raw" / "web" / day_folder(DAY1) / "_SUCCESS").write_text("")
    report = tmp_path / "report.json"
    assert run(write_config(tmp_path), "--report", str(report)) == 0
    partitions = json.loads(report.read_text())["partitions"]
    assert [(p["dt"], p["lines_read"], p["input_files"]) for p in partitions] == [
        ("2026-01-01", 1, 1), ("2026-01-02", 1, 1)]


def test_the_spec_examples_reach_the_table_intact(spark, tmp_path, spec_examples):
    write_raw(tmp_path / "raw", "docs", date(2015, 2, 23), spec_examples)
    config = write_config(tmp_path)
    assert run(config, "--date", "2015-02-23", "--source", "docs") == 0
    rows = {r["messageid"]: r for r in read_events(spark, tmp_path).collect()}
    assert set(rows) == {"022bb90c-bbac-11e4-8dfc-aa07a5b093db", "ajs-f8ca1e4de5024d9430b3928bd8ac6b96"}
    shared = rows["022bb90c-bbac-11e4-8dfc-aa07a5b093db"]
    assert shared["type"] == "identify", "earliest receivedAt wins; on a tie, the first line"
    assert json.loads(shared["traits"]["address"]) == {"street": "6th St", "city": "San Francisco", "state": "CA",
                                                       "postalCode": "94103", "country": "USA"}
    assert shared["traits"]["logins"] == "5"
    track = rows["ajs-f8ca1e4de5024d9430b3928bd8ac6b96"]
    assert track["event"] == "Course Clicked" and track["integrations"] == {}
    assert track["originaltimestamp"] == datetime(2015, 12, 12, 19, 11, 1, 152000)


def test_a_truncated_gzip_fails_naming_the_file_and_writes_nothing(tmp_path, capsys):
    good = write_raw(tmp_path / "raw", "web", DAY1, [json.dumps({"messageId": f"m{i}", "type": "track",
                                                     "timestamp": "2026-01-01T00:00:00Z", "pad": "x" * 200})
                                                     for i in range(2000)])
    broken = good.with_name("broken.gz")
    data = good.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    code = run(write_config(tmp_path), "--date", "2026-01-01")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert "broken.gz" in err[-1] and "truncated" in err[-1] and "part-0.gz" not in err[-1]
    assert not (tmp_path / "tables" / "events").exists()
    report = json.loads(next((tmp_path / "reports").rglob("*.json")).read_text())
    assert report["status"] == "failed" and "broken.gz" in report["error"]


def test_a_single_day_without_data_exits_1_with_one_line(tmp_path, capsys):
    write_raw(tmp_path / "raw", "web", DAY1, ['{"messageId":"m","type":"track","timestamp":"2026-01-01T00:00:00Z"}'])
    code = run(write_config(tmp_path), "--date", "2026-02-01")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("json_to_parquet: error: no raw data") and "2026-02-01" in err[-1]


@pytest.mark.parametrize("args, needle", [
    (["--date", "2026-13-01"], "--date"),
    (["--date", "2026-01-02", "--end-date", "2026-01-01"], "before"),
    (["--end-date", "2026-01-01"], "--end-date needs --date"),
    (["--date", "2026-01-01", "--set", "lake.rawx=1"], "lake.rawx: unknown key"),
])
def test_usage_and_config_errors_exit_2_before_spark(tmp_path, capsys, args, needle):
    code = run(write_config(tmp_path), *args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert needle in err[-1] and err[-1].startswith("json_to_parquet: error:")


def test_file_count_follows_the_target_size():
    day = RawDay("web", DAY1, "file:///r", [FileInfo("p", "p", 600 * 1024 * 1024, False, 0)])
    planned = round(600 * json_to_parquet.PARQUET_PER_GZIP_BYTE / 256)
    assert planned >= 2
    assert json_to_parquet.plan_file_counts([day], 256) == {("web", "2026-01-01"): planned}
    assert json_to_parquet.plan_file_counts([day], 1024) == {("web", "2026-01-01"): 1}


# --- hostile input and setups (issue 11) ---------------------------------------------------------------------------

def _msg(mid, **fields) -> str:
    return json.dumps({"messageId": mid, "type": "track", "timestamp": "2026-01-01T00:00:00Z", **fields})


def write_raw_bytes(raw: Path, source: str, folder: str, lines: list[bytes], name="part-0.gz") -> Path:
    path = raw / source / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    return path


def tables_written(tmp_path: Path) -> set[str]:
    """The tables a run left folders of (a failed run still records itself in ``lake_runs``)."""
    tables = tmp_path / "tables"
    return {p.name for p in tables.iterdir()} if tables.exists() else set()


def _top(parts: tuple[str, ...]) -> str:
    return "/".join(parts[:2]) if parts[0] == "tables" else parts[0]


def hostile_config(tmp_path: Path, database: str | None = None) -> Path:
    catalog = f"{{kind: spark, database: {database}}}" if database else "{kind: none}"
    config = tmp_path / "hostile.yaml"
    config.write_text(
        f"lake:\n  raw: {tmp_path}/raw\n  tables: {tmp_path}/tables\n  quarantine: {tmp_path}/quarantine\n"
        f"  reports: {tmp_path}/reports\ncatalog: {catalog}\n"
        "spark:\n  spark.sql.session.timeZone: America/Los_Angeles\n"
        "  spark.sql.legacy.parquet.datetimeRebaseModeInWrite: EXCEPTION\n"
    )
    return config


def test_ancient_timestamps_are_stored_exactly_and_the_run_succeeds(spark, tmp_path):
    write_raw(tmp_path / "raw", "web", DAY1, [_msg("old", receivedAt="1899-12-31T23:59:59Z", sentAt="0001-01-01T00:00:00Z",
                                                   originalTimestamp="1582-10-10T12:00:00Z")])
    write_raw(tmp_path / "raw", "ios", DAY1, [_msg("new")])
    assert run(hostile_config(tmp_path), "--date", DAY1.isoformat()) == 0
    columns = ("receivedat", "sentat", "originaltimestamp")
    got = read_events(spark, tmp_path).select(
        "sourceid", *[F.date_format(c, "yyyy-MM-dd HH:mm:ss").alias(c) for c in columns]
    ).collect()
    assert sorted(tuple(r) for r in got) == [("ios", None, None, None),
                                              ("web", "1899-12-31 23:59:59", "0001-01-01 00:00:00", "1582-10-10 12:00:00")]


def test_rows_take_their_keys_from_the_listing_whatever_the_names_and_the_time_zone(spark, tmp_path):
    from lakelib.storage import Storage

    day = write_raw(tmp_path / "raw", "my source", DAY1, [_msg("a")]).parent
    write_raw(tmp_path / "raw", "näö-東京", DAY2, [_msg("b")])
    days = [RawDay("my source", DAY1, f"file://{day}", Storage(spark).list(f"file://{day}"))]
    spark.conf.set("spark.sql.session.timeZone", "America/Los_Angeles")
    try:
        got = read_raw_lines(spark, days).select("sourceid", "dt", "file").collect()
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    assert [(r["sourceid"], r["dt"]) for r in got] == [("my source", "2026-01-01")]
    assert got[0]["file"].endswith("/my source/1767225600000/part-0.gz")


def test_escape_value_escapes_exactly_as_spark(spark, tmp_path):
    from lakelib.paths import escape_value, unescape_value

    values = ["a b", "x/y", "100%", "é東", "".join(chr(c) for c in range(1, 128) if not chr(c).isalnum())]
    spark.createDataFrame([(v, 1) for v in values], "k string, n int").write.partitionBy("k").parquet(str(tmp_path / "t"))
    folders = {p.name for p in (tmp_path / "t").iterdir() if p.name.startswith("k=")}
    assert folders == {f"k={escape_value(v)}" for v in values}
    assert [unescape_value(escape_value(v)) for v in values] == values


@pytest.mark.parametrize("source", ["..", ".", "", "a/b", "pct%41", "x*"])
def test_a_source_that_is_not_a_plain_folder_name_is_refused(tmp_path, capsys, source):
    write_raw(tmp_path / "raw", "web", DAY1, [_msg("m")])
    assert run(write_config(tmp_path), "--source", source) == 2
    assert "is not a source id" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "tables").exists()  # a usage error is not a run: no lake_runs row either


def test_a_folder_under_raw_that_cannot_be_a_source_fails_naming_it_before_writing(tmp_path, capsys):
    write_raw(tmp_path / "raw", "web", DAY1, [_msg("m")])
    write_raw(tmp_path / "raw", "pct%41", DAY1, [_msg("n")])
    (tmp_path / "raw" / "_hidden").mkdir()
    assert run(write_config(tmp_path)) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "'pct%41'" in last and "_hidden" not in last and "nothing was written" in last
    assert tables_written(tmp_path) <= {"lake_runs"} and not (tmp_path / "quarantine").exists()


@pytest.mark.parametrize("with_date", [True, False])
def test_every_folder_naming_the_same_day_is_read(spark, tmp_path, with_date):
    canonical = day_folder(DAY1)
    folders = [canonical, str(int(canonical) + 1), "0" + canonical]
    for i, folder in enumerate(folders):
        write_raw_bytes(tmp_path / "raw", "web", folder, [_msg(f"m{i}").encode(), _msg("shared").encode()])
    report = tmp_path / "report.json"
    args = ["--date", DAY1.isoformat()] if with_date else []
    assert run(write_config(tmp_path), "--report", str(report), *args) == 0
    [p] = json.loads(report.read_text())["partitions"]
    assert (p["dt"], p["lines_read"], p["rows_written"], p["duplicates_dropped"], p["input_files"]) == (
        DAY1.isoformat(), 6, 4, 2, 3)
    assert sorted(r["messageid"] for r in read_events(spark, tmp_path).collect()) == ["m0", "m1", "m2", "shared"]


def test_an_upper_case_gz_is_decompressed(spark, tmp_path):
    write_raw(tmp_path / "raw", "web", DAY1, [_msg("lower")])
    write_raw(tmp_path / "raw", "web", DAY1, [_msg("upper1"), "", _msg("upper2")], name="part-1.GZ")
    assert run(write_config(tmp_path), "--date", DAY1.isoformat()) == 0
    assert sorted(r["messageid"] for r in read_events(spark, tmp_path).collect()) == ["lower", "upper1", "upper2"]
    assert not (tmp_path / "quarantine").exists()


@pytest.mark.parametrize("name, content, why", [
    ("plain.gz", b'{"messageId":"p"}\n', "not a gzip file"),
    ("random.gz", bytes(range(7, 250)) * 3, "not a gzip file"),
    ("junk.gz", gzip.compress(b"x\n") + b"junk", "trailing data"),
    ("zeros.gz", gzip.compress(b"x\n") + b"\0" * 512, "trailing data"),
    ("zeros.GZ", gzip.compress(b"x\n") + b"\0" * 512, "trailing data"),
])
def test_a_gz_that_is_not_gzip_fails_naming_the_file(tmp_path, capsys, name, content, why):
    good = write_raw(tmp_path / "raw", "web", DAY1, [_msg("m")])
    (good.parent / name).write_bytes(content)
    assert run(write_config(tmp_path), "--date", DAY1.isoformat()) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert name in last and why in last and "part-0.gz" not in last
    assert tables_written(tmp_path) <= {"lake_runs"}


def _lines_read(raw: Path) -> dict[tuple[str, str], int]:
    """Non-blank lines per (source, UTC day of the folder), counted from the bytes, case-blind about ``.gz``."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for path in raw.rglob("*"):
        if path.is_file() and path.name.lower().endswith(".gz"):
            day = datetime.fromtimestamp(int(path.parent.name) / 1000, tz=timezone.utc).date().isoformat()
            data = gzip.decompress(path.read_bytes())
            out[(path.parent.parent.name, day)] += sum(1 for line in re.split(rb"\r\n|\r|\n", data) if line.strip())
    return dict(out)


def test_a_raw_folder_of_every_hostile_case_at_once_is_accounted_for_line_by_line(spark, tmp_path, capsys):
    raw = tmp_path / "raw"
    clean = [_msg(f"c{i}", properties={"n": i}).encode() for i in range(20)]
    write_raw_bytes(raw, "web", day_folder(DAY1), clean)
    write_raw_bytes(raw, "ios", day_folder(DAY2), clean)
    hostile = [
        _msg("old", receivedAt="1899-12-31T23:59:59Z", sentAt="0001-01-01T00:00:00Z").encode(),
        _msg("forged").encode()[:-1] + b'},"lakelib_eol":0}',
        _msg("uX1").encode().replace(b"X", b"\xff"),
        _msg("uX1").encode().replace(b"X", b"\xfe"),
        b'{"messageId":"u\\ud800","type":"track","timestamp":"2026-01-01T00:00:00Z"}',
        b'{"messageId":"u\\ud801","type":"track","timestamp":"2026-01-01T00:00:00Z"}',
        b'{"messageId":1e400,"type":"track","timestamp":"2026-01-01T00:00:00Z"}',
        b'{"messageId":2e400,"type":"track","timestamp":"2026-01-01T00:00:00Z"}',
        b'{"messageId":"dupkeys","type":"track","timestamp":"2026-01-01T00:00:00Z","properties":{"a":1,"a":2}}',
        b'{"messageId":"deep","type":"track","timestamp":"2026-01-01T00:00:00Z","p":' + b"[" * 2000 + b"]" * 2000 + b"}",
        _msg("c1").encode(),  # a duplicate of a clean line in another folder of the same day
    ]
    for source in ("my source", "näö-東京"):
        write_raw_bytes(raw, source, day_folder(DAY1), hostile)
        write_raw_bytes(raw, source, str(int(day_folder(DAY1)) + 1), clean[:5], name="second.gz")
        write_raw_bytes(raw, source, day_folder(DAY1), [_msg("upper").encode()], name="part-9.GZ")
    # the two cases that stop a run: a folder that cannot be a source id, a .gz that is not gzip
    write_raw_bytes(raw, "pct%41", day_folder(DAY1), clean)
    not_gzip = raw / "web" / day_folder(DAY1) / "plain.gz"
    not_gzip.write_bytes(b"\n".join(clean))
    database = f"hostile_{uuid.uuid4().hex[:10]}"
    config = hostile_config(tmp_path, database)
    before = {p for p in tmp_path.rglob("*")}

    def new_files():
        return {p for p in tmp_path.rglob("*") if p.is_file() and p not in before}

    assert run(config) == 1
    assert "'pct%41'" in capsys.readouterr().err.strip().splitlines()[-1]
    assert {_top(p.relative_to(tmp_path).parts) for p in new_files()} <= {"reports", "tables/lake_runs", "tables/_metastore"}
    (raw / "pct%41").rename(raw / "pct-41")  # what the error line says to do
    before |= set((raw / "pct-41").rglob("*"))
    assert run(config) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "plain.gz (not a gzip file)" in last
    assert {_top(p.relative_to(tmp_path).parts) for p in new_files()} <= {"reports", "tables/lake_runs", "tables/_metastore"}
    not_gzip.unlink()

    report_path = tmp_path / "report.json"
    assert run(config, "--report", str(report_path)) == 0
    report = json.loads(report_path.read_text())
    assert report["status"] == "succeeded"
    reported = {(p["sourceid"], p["dt"]): p for p in report["partitions"]}
    assert {k: p["lines_read"] for k, p in reported.items()} == _lines_read(raw)
    for p in reported.values():
        assert p["lines_read"] == p["rows_written"] + p["duplicates_dropped"] + p["quarantined"]
    for source in ("my source", "näö-東京"):
        p = reported[(source, DAY1.isoformat())]
        assert (p["lines_read"], p["rows_written"], p["duplicates_dropped"], p["quarantined"]) == (17, 10, 1, 6)
        assert p["quarantined_by_reason"]["invalid_json"] == 6 and p["input_files"] == 3

    events = spark.table(f"{database}.events")  # through the catalog: the partitions live in version folders
    per_partition = {(r["sourceid"], r["dt"]): r["count"] for r in events.groupBy("sourceid", "dt").count().collect()}
    assert per_partition == {k: p["rows_written"] for k, p in reported.items() if p["rows_written"]}
    ids = {r["messageid"] for r in events.where(F.col("sourceid") == "my source").select("messageid").collect()}
    assert {"old", "1e400", "2e400", "dupkeys", "upper", "c1"} <= ids and "forged" not in ids
    dupkeys = events.where(F.col("messageid") == "dupkeys").select(F.size("properties"), F.col("properties")["a"])
    assert [tuple(r) for r in dupkeys.collect()] == [(1, "2")] * 2

    quarantine = spark.read.json(f"{tmp_path}/quarantine/json_to_parquet").where(F.col("sourceid") == "my source")
    rows = quarantine.collect()
    assert {base64.b64decode(r["raw_base64"]) for r in rows if r["raw_base64"]} == set(hostile[2:4])
    assert [r["detail"] for r in rows if r["detail"]] == [TOO_DEEP]

    written = {p.relative_to(tmp_path).parts[0] for p in new_files()}
    assert written <= {"tables", "quarantine", "reports", "report.json", "report.html"}
    registered = {
        tuple(unescape_value(kv.split("=", 1)[1]) for kv in r[0].split("/"))
        for r in spark.sql(f"SHOW PARTITIONS {database}.events").collect()
    }
    assert registered == {k for k, p in reported.items() if p["rows_written"]}
    spark.sql(f"DROP DATABASE IF EXISTS {database} CASCADE")


def test_under_spark_submit_a_corrupt_file_ends_with_one_line_saying_what_to_fix_and_no_java_trace(tmp_path):
    import os
    import subprocess
    import sys

    good = write_raw(tmp_path / "raw", "web", DAY1, [_msg(f"m{i}", pad="x" * 100) for i in range(500)])
    broken = good.with_name("broken.gz")
    broken.write_bytes(good.read_bytes()[:300])
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", PYSPARK_PYTHON=sys.executable)
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    done = subprocess.run(
        [str(Path(json_to_parquet.__file__).parent.parent / "scripts" / "submit.sh"), "local", "json_to_parquet",
         "--config", str(write_config(tmp_path)), "--date", DAY1.isoformat()],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert done.returncode == 1
    last = done.stdout.strip().splitlines()[-1]  # spark-submit hands the Python driver's stderr to its stdout
    assert last.startswith("json_to_parquet: error: corrupt or truncated gzip") and "broken.gz (truncated)" in last
    assert "\tat " not in done.stdout + done.stderr and "Exception in task" not in done.stderr


# --- the dedup window across days (issue 15) -------------------------------------------------------------------------

def _ids_by_day(spark, tmp_path: Path) -> dict[str, list[str]]:
    got: dict[str, list[str]] = defaultdict(list)
    for row in read_events(spark, tmp_path).select("dt", "messageid").collect():
        got[row["dt"]].append(row["messageid"])
    return {dt: sorted(ids) for dt, ids in got.items()}


def _window_run(tmp_path: Path, window: int, first: date, last: date) -> dict:
    report = tmp_path / f"report-{window}-{first}-{last}.json"
    args = ["--date", first.isoformat(), "--end-date", last.isoformat(), "--report", str(report)]
    assert run(write_config(tmp_path), *args, "--set", f"dedup.window_days={window}") == 0
    return json.loads(report.read_text())


def _accounted(report: dict) -> None:
    for entry in report["partitions"] + [report["totals"]]:
        assert entry["lines_read"] == (entry["rows_written"] + entry["duplicates_dropped"] + entry["quarantined"]
                                       + entry.get("duplicates_earlier_days", 0)), entry


def test_a_message_retried_on_the_next_day_is_kept_once_with_a_two_day_window(spark, tmp_path):
    received = "2026-01-02T00:00:01Z"
    write_raw(tmp_path / "raw", "web", DAY1, [_msg("retried"), _msg("a"), _msg("a")])
    write_raw(tmp_path / "raw", "web", DAY2, [_msg("retried", receivedAt=received), _msg("b"),
                                              _msg("retried"), "not json"])

    default = _window_run(tmp_path, 1, DAY1, DAY2)  # today's behaviour: one day at a time
    assert _ids_by_day(spark, tmp_path) == {"2026-01-01": ["a", "retried"], "2026-01-02": ["b", "retried"]}
    assert "duplicates_earlier_days" not in default["totals"] and default["totals"]["duplicates_dropped"] == 2
    _accounted(default)

    both = _window_run(tmp_path, 2, DAY1, DAY2)  # both days in one run: day 1's lines count for day 2
    assert _ids_by_day(spark, tmp_path) == {"2026-01-01": ["a", "retried"], "2026-01-02": ["b"]}
    day2 = next(p for p in both["partitions"] if p["dt"] == "2026-01-02")
    assert (day2["duplicates_earlier_days"], day2["duplicates_dropped"], day2["rows_written"]) == (2, 0, 1)
    assert both["totals"]["duplicates_earlier_days"] == 2 and both["totals"]["duplicates_dropped"] == 1
    _accounted(both)

    alone = _window_run(tmp_path, 2, DAY2, DAY2)  # day 2 alone: day 1 is read from the events table
    assert _ids_by_day(spark, tmp_path) == {"2026-01-01": ["a", "retried"], "2026-01-02": ["b"]}
    assert alone["totals"]["duplicates_earlier_days"] == 2
    _accounted(alone)

    backwards = _window_run(tmp_path, 2, DAY1, DAY1)  # a window looks backwards only: day 2 keeps what it has
    assert backwards["totals"]["duplicates_earlier_days"] == 0
    assert _ids_by_day(spark, tmp_path) == {"2026-01-01": ["a", "retried"], "2026-01-02": ["b"]}


def test_a_day_whose_every_message_came_earlier_leaves_no_partition(spark, tmp_path):
    write_raw(tmp_path / "raw", "web", DAY1, [_msg("x")])
    write_raw(tmp_path / "raw", "web", DAY2, [_msg("x")])
    _window_run(tmp_path, 1, DAY1, DAY2)
    report = _window_run(tmp_path, 3, DAY1, DAY2)
    assert _ids_by_day(spark, tmp_path) == {"2026-01-01": ["x"]}
    day2 = next(p for p in report["partitions"] if p["dt"] == "2026-01-02")
    assert (day2["rows_written"], day2["files_written"], day2["duplicates_earlier_days"]) == (0, 0, 1)
    _accounted(report)


# --- issue 21: timestamps beyond the microsecond ----------------------------------------------------------------


def test_timestamps_beyond_the_microsecond_are_cut_and_counted_per_partition_for_the_rows_written(
        spark, tmp_path, capsys):
    seven = "2026-01-01T10:00:00.1234567Z"  # what .NET clients send
    write_raw(tmp_path / "raw", "web", DAY1, [
        _msg("cut", timestamp=seven, receivedAt="2026-01-01T10:00:01Z"),
        _msg("dup", receivedAt="2026-01-01T10:00:01Z"),
        _msg("dup", sentAt=seven, receivedAt="2026-01-01T11:00:00Z"),  # the losing copy: not written, not counted
        _msg("zeros", sentAt="2026-01-01T10:00:00.1234560Z"),  # nothing beyond the microsecond is lost
        _msg("nine", originalTimestamp="2026-01-01T10:00:00.123456789+01:00"),
        _msg("odd", sentAt="not a time 2026-01-01T10:00:00.1234567"),
        json.dumps({"messageId": "bad", "type": "unknown", "timestamp": seven}),  # quarantined: not counted
    ])
    write_raw(tmp_path / "raw", "web", DAY2, [_msg("two", receivedAt="2026-01-02T00:00:00.0000001Z"), _msg("plain")])
    report_path = tmp_path / "report.json"
    assert run(write_config(tmp_path), "--date", "2026-01-01", "--end-date", "2026-01-02",
               "--report", str(report_path)) == 0
    report = json.loads(report_path.read_text())
    by_day = {p["dt"]: p["timestamps_truncated"] for p in report["partitions"]}
    assert by_day == {"2026-01-01": 2, "2026-01-02": 1} and report["totals"]["timestamps_truncated"] == 3
    _accounted(report)
    assert "  3 row(s) with a timestamp cut to the microsecond" in capsys.readouterr().out
    stored = {r["messageid"]: r for r in read_events(spark, tmp_path).collect()}
    assert stored["cut"]["timestamp"] == datetime(2026, 1, 1, 10, 0, 0, 123456)
    assert stored["nine"]["originaltimestamp"] == datetime(2026, 1, 1, 9, 0, 0, 123456)
    assert stored["two"]["receivedat"] == datetime(2026, 1, 2)
    assert stored["odd"]["sentat"] is None and stored["dup"]["sentat"] is None


def test_no_cut_timestamp_no_summary_line(tmp_path, capsys):
    write_raw(tmp_path / "raw", "web", DAY1, [_msg("a", sentAt="2026-01-01T10:00:00.123456Z")])
    report_path = tmp_path / "report.json"
    assert run(write_config(tmp_path), "--date", "2026-01-01", "--report", str(report_path)) == 0
    assert json.loads(report_path.read_text())["totals"]["timestamps_truncated"] == 0
    assert "cut to the microsecond" not in capsys.readouterr().out


# --- issue 21: a key repeated inside a nested object ---------------------------------------------------------------


def test_a_key_repeated_inside_a_nested_object_keeps_its_last_value_and_the_typed_table_agrees(spark, tmp_path):
    from jobs import event_tables

    repeated = ('{"messageId":"m1","type":"track","event":"Order Completed","timestamp":"2026-01-01T00:00:00Z",'
                '"context": {"device": {"id": "first", "id": "last"}, "app": {"build": {"n": 1, "n": 2}, "v": 1}},'
                '"properties": {"cart": {"id": "first", "x": 0, "id": "last"},'
                ' "shop": {"owner": {"id": "first", "id": "last"}}, "items": [{"sku": "a", "sku": "b"}, {"sku": "c"}],'
                ' "note": "{\\"k\\":1,\\"k\\":2}"}, "_meta": {"x": {"y": 1, "y": 2}}}')
    rejected = '{"type":"track","timestamp":"2026-01-01T00:00:00Z","context":{"device":{"id":"a", "id":"b"}}}'
    write_raw(tmp_path / "raw", "web", DAY1, [repeated, rejected])
    config = write_config(tmp_path)
    report = tmp_path / "report.json"
    assert run(config, "--date", "2026-01-01", "--report", str(report)) == 0
    row = read_events(spark, tmp_path).select(
        "context", "properties", "extras", *[F.get_json_object(F.col(m)[k], path).alias(f"{k}{path}") for m, k, path in (
            ("context", "device", "$.id"), ("context", "app", "$.build.n"), ("properties", "cart", "$.id"),
            ("properties", "shop", "$.owner.id"))]).first()
    assert (row["device$.id"], row["app$.build.n"], row["cart$.id"], row["shop$.owner.id"]) == ("last", "2", "last",
                                                                                                 "last")
    assert row["context"] == {"device": '{"id":"last"}', "app": '{"build":{"n":2},"v":1}'}
    assert row["properties"] == {"cart": '{"x":0,"id":"last"}', "shop": '{"owner":{"id":"last"}}',
                                 "items": '[{"sku":"b"},{"sku":"c"}]', "note": '{"k":1,"k":2}'}, \
        "a string that holds JSON text is a string: kept as sent"
    assert row["extras"] == {"_meta": '{"x":{"y":2}}'}
    quarantined = spark.read.json(f"{tmp_path}/quarantine/json_to_parquet").collect()
    assert [(q["reason"], q["raw"]) for q in quarantined] == [("missing_message_id", rejected)], \
        "the quarantine keeps the line as it came"
    totals = json.loads(report.read_text())["totals"]
    assert (totals["lines_read"], totals["rows_written"], totals["quarantined"]) == (2, 1, 1)

    assert event_tables.main(["--config", str(config), "--date", "2026-01-01"]) == 0
    typed = spark.read.parquet(f"file://{tmp_path}/tables/order_completed").first()
    assert (typed["context_device_id"], typed["context_app_build_n"], typed["cart_id"], typed["shop_owner_id"]) == (
        "last", 2, "last", "last")


def test_lines_without_a_repeated_nested_key_are_stored_as_spark_makes_their_text(spark, tmp_path):
    plain = ('{"messageId":"m2","type":"track","timestamp":"2026-01-01T00:00:00Z",'
             '"context":{"library":{"name":"a","version":"1"},"os":{"name":"iOS","version":"17"},"ip":"1.2.3.4"},'
             '"properties":{"products":[{"sku":"a","price":1.5},{"sku":"c","price":2}],'
             '"product":{"name":"x","brand":{"name":"y","id":1},"id":2},"s":"{\\"k\\":1,\\"k\\":2}",'
             '"matrix":[[{"a":1},{"a":2}]],"text":"a,\\"b\\":{\\"b\\":1}","esc":{"a\\"b":1,"a\\\\b":2}}}')
    write_raw(tmp_path / "raw", "web", DAY1, [plain])
    assert run(write_config(tmp_path), "--date", "2026-01-01") == 0
    row = read_events(spark, tmp_path).first()
    assert row["context"] == {"library": '{"name":"a","version":"1"}', "os": '{"name":"iOS","version":"17"}',
                              "ip": "1.2.3.4"}
    assert row["properties"] == {
        "products": '[{"sku":"a","price":1.5},{"sku":"c","price":2}]',
        "product": '{"name":"x","brand":{"name":"y","id":1},"id":2}', "s": '{"k":1,"k":2}',
        "matrix": '[[{"a":1},{"a":2}]]', "text": 'a,"b":{"b":1}', "esc": '{"a\\"b":1,"a\\\\b":2}'}


def test_numeric_message_ids_beside_a_nested_message_id_stay_different_messages(spark, tmp_path):
    """Two messages, ids 12 and 13, each with a nested ``messageId`` 7 first: two rows, no duplicate."""
    lines = [f'{{"properties":{{"messageId":7}},"messageId":{i},"type":"track","timestamp":"2026-01-01T00:00:00Z"}}'
             for i in (12, 13)]
    write_raw(tmp_path / "raw", "web", DAY1, lines)
    report = tmp_path / "report.json"
    assert run(write_config(tmp_path), "--date", "2026-01-01", "--report", str(report)) == 0
    assert sorted(r["messageid"] for r in read_events(spark, tmp_path).collect()) == ["12", "13"]
    totals = json.loads(report.read_text())["totals"]
    assert (totals["lines_read"], totals["rows_written"], totals["duplicates_dropped"]) == (2, 2, 0)
