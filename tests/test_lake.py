"""The notebook read API (lakelib.lake) on every catalog kind, and the run history (lakelib.runs, lake_runs)."""
from __future__ import annotations

import gzip
import json
import shutil
import uuid
from datetime import date, datetime
from pathlib import Path

import pytest

from lakelib import lake
from lakelib.catalog import Partition, open_catalog
from lakelib.config import load_config
from lakelib.errors import LakelibError, UsageError
from lakelib.report import RunReport, write_report
from lakelib.runner import job_parser, run_job
from lakelib.runs import record_run
from lakelib.schema import EVENTS, LAKE_RUNS, MESSAGE_TYPE_COUNTS_DAILY, MESSAGE_TYPE_COUNTS_YEARLY, spark_schema
from lakelib.tables import partition_location

DAYS = ["2026-01-01", "2026-01-02", "2026-01-03"]


def event_rows(source: str, day: str, n: int = 3, tag: str = "") -> list[tuple]:
    stamp = datetime(2026, 1, int(day[-2:]), 12, 0, 0)
    return [
        (f"{tag}{source}-{day}-{i}", "track" if i % 2 else "page", f"a{i}", None, "Clicked" if i % 2 else None,
         None if i % 2 else "Home", None, None, "web", stamp, None, None, stamp, {"ip": "1.2.3.4"},
         {"k": str(i)}, None, None, "2", None, source, day)
        for i in range(n)
    ]


def write_config(tmp_path: Path, kind: str, **glue) -> Path:
    path = tmp_path / f"lake-{uuid.uuid4().hex[:6]}.yaml"
    glue_text = f"glue: {{region: us-east-1, endpoint_url: {glue['endpoint']}}}" if glue else ""
    path.write_text(
        f"lake: {{raw: {tmp_path}/raw, tables: {tmp_path}/tables, quarantine: {tmp_path}/quarantine, "
        f"reports: {tmp_path}/reports}}\n"
        f"catalog: {{kind: {kind}, database: lake_{uuid.uuid4().hex[:10]}, {glue_text}}}\n"
    )
    return path


def write_partitions(df, table, tables_root: str) -> list[Partition]:
    """Test data in a table's default folders (what catalog.kind none and older lakes hold)."""
    keys = list(table.partition_keys)
    df.select(*table.column_names, *keys).write.mode("overwrite").option("partitionOverwriteMode", "dynamic") \
        .partitionBy(*keys).parquet(f"{tables_root}/{table.name}")
    values = sorted({tuple(r) for r in df.select(*keys).distinct().collect()})
    return [Partition(dict(zip(keys, v)), partition_location(tables_root, table, dict(zip(keys, v)))) for v in values]


def write_events(spark, config, rows) -> list[Partition]:
    df = spark.createDataFrame(rows, spark_schema(EVENTS, with_partitions=True))
    return write_partitions(df, EVENTS, config.lake.tables)


def folder(uri: str) -> Path:
    return Path(uri.replace("file://", "").replace("file:", ""))


def ids(df) -> list[str]:
    return sorted(r["messageid"] for r in df.select("messageid").collect())


@pytest.fixture
def lake_none(spark, tmp_path):
    """Events of web and ios on three days, by path only (catalog.kind none)."""
    config = load_config(write_config(tmp_path, "none"))
    write_events(spark, config, [r for s in ("web", "ios") for d in DAYS for r in event_rows(s, d)])
    return config


def test_events_reads_only_the_asked_sources_days_and_columns(spark, lake_none):
    config = lake_none
    # A partition nobody asked for holds a file that is not Parquet: reading it would fail the query.
    bad = folder(partition_location(config.lake.tables, EVENTS, {"sourceid": "web", "dt": DAYS[2]}))
    (bad / "part-corrupt.parquet").write_bytes(b"not parquet at all")

    df = lake.events(spark, config, sources="web", start=DAYS[0], end=date(2026, 1, 2), columns=["messageid", "type"])
    assert df.columns == ["messageid", "type", "sourceid", "dt"]
    assert ids(df) == sorted(f"web-{d}-{i}" for d in DAYS[:2] for i in range(3))
    assert {(r["sourceid"], r["dt"]) for r in df.collect()} == {("web", DAYS[0]), ("web", DAYS[1])}
    assert all("sourceid=web/dt=2026-01-0" in f and "dt=2026-01-03" not in f for f in df.inputFiles())

    (bad / "part-corrupt.parquet").unlink()
    every = lake.events(spark, config, sources=None, start=DAYS[1])
    assert every.schema == spark_schema(EVENTS, with_partitions=True)
    assert sorted({(r["sourceid"], r["dt"]) for r in every.select("sourceid", "dt").collect()}) == [
        ("ios", DAYS[1]), ("ios", DAYS[2]), ("web", DAYS[1]), ("web", DAYS[2])]


def test_an_empty_range_is_an_empty_frame_with_the_schema(spark, lake_none):
    full = lake.events(spark, lake_none, columns=["messageid", "timestamp", "context"])
    nothing_there = lake.events(spark, lake_none, sources=["web"], start="2025-01-01", end="2025-01-31",
                                columns=["messageid", "timestamp", "context"])
    assert nothing_there.schema == full.schema and nothing_there.count() == 0
    assert full.count() == 18
    empty_counts = lake.daily_counts(spark, lake_none, start="2030-01-01", end="2030-01-02")
    assert empty_counts.columns == ["type", "message_count", "sourceid", "dt"] and empty_counts.count() == 0
    with pytest.raises(UsageError, match="start 2026-01-03 is after end 2026-01-01"):
        lake.events(spark, lake_none, start="2026-01-03", end="2026-01-01")
    with pytest.raises(UsageError, match=r"events has no source android \(it has: ios, web\)"):
        lake.events(spark, lake_none, sources=["android", "web"])


def test_bad_arguments_are_usage_errors(spark, lake_none):
    with pytest.raises(UsageError, match="start"):
        lake.events(spark, lake_none, start="2026-13-01")
    with pytest.raises(UsageError, match="no column nope"):
        lake.events(spark, lake_none, columns=["messageid", "nope"])
    with pytest.raises(UsageError, match="last"):
        lake.runs(spark, lake_none, last=-1)


@pytest.mark.parametrize("read", [
    lambda spark, config, bad: lake.events(spark, config, sources=["web", bad]),
    lambda spark, config, bad: lake.read_table(spark, config, EVENTS, None, {"sourceid": (bad, "web")}),
    lambda spark, config, bad: lake.runs(spark, config, jobs=bad),
    lambda spark, config, bad: lake.quarantine(None, config, sources=bad),
])
def test_a_source_that_cannot_be_one_is_a_usage_error_before_the_metastore_sees_it(spark, tmp_path, read):
    """A trailing backslash in a partition filter ends in Hive's MetaException on the Spark catalog."""
    config = load_config(write_config(tmp_path, "spark"))
    catalog = open_catalog(config, spark)
    catalog.ensure_table(EVENTS, f"{config.lake.tables}/events")
    catalog.register_partitions(EVENTS, write_events(spark, config, event_rows("web", DAYS[0])))
    with pytest.raises(UsageError, match=r"'a\\\\': expected letters, digits"):
        read(spark, config, "a\\")


def test_counts_read_both_tables_by_their_day_key(spark, lake_none):
    config = lake_none
    daily = spark.createDataFrame(
        [("track", 5, "web", d) for d in DAYS] + [("page", 2, "web", DAYS[0])],
        spark_schema(MESSAGE_TYPE_COUNTS_DAILY, with_partitions=True),
    )
    write_partitions(daily, MESSAGE_TYPE_COUNTS_DAILY, config.lake.tables)
    yearly = spark.createDataFrame([("track", 15, "web", DAYS[2]), ("track", 9, "web", DAYS[1])],
                                   spark_schema(MESSAGE_TYPE_COUNTS_YEARLY, with_partitions=True))
    write_partitions(yearly, MESSAGE_TYPE_COUNTS_YEARLY, config.lake.tables)

    got = lake.daily_counts(spark, config, sources=["web"], start=DAYS[0], end=DAYS[0]).collect()
    assert sorted((r["type"], r["message_count"], r["dt"]) for r in got) == [("page", 2, DAYS[0]), ("track", 5, DAYS[0])]
    got = lake.yearly_counts(spark, config, end=DAYS[1]).collect()
    assert [(r["end_dt"], r["message_count"]) for r in got] == [(DAYS[1], 9)]


def test_with_the_spark_catalog_a_relocated_partition_is_read_where_the_catalog_says(spark, tmp_path):
    config = load_config(write_config(tmp_path, "spark"))
    parts = write_events(spark, config, [r for d in DAYS for r in event_rows("web", d)])
    # web/2026-01-02 is "compacted": its registered location is another folder, holding other rows.
    moved = tmp_path / "tables" / "_compacted" / "events" / "sourceid=web" / "dt=2026-01-02" / "run1"
    other = spark.createDataFrame(event_rows("web", DAYS[1], n=2, tag="moved-"), spark_schema(EVENTS, True))
    other.drop("sourceid", "dt").write.parquet(str(moved))
    catalog = open_catalog(config, spark)
    catalog.ensure_table(EVENTS, f"{config.lake.tables}/events")
    catalog.register_partitions(EVENTS, [p if p.values["dt"] != DAYS[1] else Partition(p.values, f"file://{moved}")
                                         for p in parts[:2]])
    # Registered and outside the asked range: its file is not Parquet, so reading it would fail the query.
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "part-corrupt.parquet").write_bytes(b"not parquet at all")
    catalog.register_partitions(EVENTS, [Partition({"sourceid": "web", "dt": "2025-12-31"}, f"file://{tmp_path}/x")])

    df = lake.events(spark, config, sources=["web"], start=DAYS[0], end=DAYS[1], columns=["messageid"])
    assert ids(df) == sorted([f"web-{DAYS[0]}-{i}" for i in range(3)] + [f"moved-web-{DAYS[1]}-{i}" for i in range(2)])
    assert any(str(moved) in f for f in df.inputFiles())
    assert all(str(moved) in f or f"dt={DAYS[0]}" in f for f in df.inputFiles())
    # The catalog is the truth: web/2026-01-03 is on disk but not registered, so it is not part of the table.
    assert lake.events(spark, config, start=DAYS[2]).count() == 0
    assert lake.events(spark, config, start="2026-02-01").schema == spark_schema(EVENTS, with_partitions=True)


def test_with_glue_the_partitions_come_from_get_partitions(spark, tmp_path, aws):
    config = load_config(write_config(tmp_path, "glue", endpoint=aws))
    parts = write_events(spark, config, [r for d in DAYS for r in event_rows("web", d)])
    moved = tmp_path / "elsewhere"
    shutil.copytree(folder(parts[0].location), moved)
    catalog = open_catalog(config)
    catalog.ensure_table(EVENTS, f"{config.lake.tables}/events")
    catalog.register_partitions(EVENTS, [Partition(parts[0].values, f"file://{moved}"), parts[1]])
    shutil.rmtree(folder(parts[0].location))  # only the catalog's location holds the first day now

    df = lake.events(spark, config, sources=["web"], start=DAYS[0], end=DAYS[2], columns=["messageid"])
    assert ids(df) == sorted(f"web-{d}-{i}" for d in DAYS[:2] for i in range(3))
    with pytest.raises(UsageError, match=r"no source ios \(it has: web\)"):
        lake.events(spark, config, sources=["web", "ios"])
    assert lake.events(spark, config, start=DAYS[1], end=DAYS[1]).count() == 3
    assert lake.events(spark, config, start="2027-01-01").count() == 0


def write_quarantine(root: Path, source: str, day: str, lines: list[dict]) -> None:
    part = root / "json_to_parquet" / f"sourceid={source}" / f"dt={day}"
    part.mkdir(parents=True, exist_ok=True)
    with gzip.open(part / "part-00000.json.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(line) + "\n" for line in lines)


def test_quarantine_reads_the_fields_it_knows_and_ignores_others(spark, lake_none, tmp_path):
    root = tmp_path / "quarantine"
    write_quarantine(root, "web", DAYS[0], [
        {"reason": "invalid_json", "raw": "{oops", "file": "f1.gz", "run_id": "r1", "raw_base64": "e29vcHM="},
        {"reason": "invalid_type", "raw": '{"type": "x"}', "file": "f1.gz", "run_id": "r1"},
    ])
    write_quarantine(root, "web", DAYS[1], [{"reason": "invalid_json", "raw": "x", "file": "f2.gz", "run_id": "r2"}])
    write_quarantine(root, "ios", DAYS[0], [{"reason": "invalid_json", "raw": "y", "file": "f3.gz", "run_id": "r3"}])

    df = lake.quarantine(spark, lake_none, sources="web", start=DAYS[0], end=DAYS[0])
    assert df.columns == ["reason", "raw", "file", "run_id", "sourceid", "dt"]
    assert sorted((r["reason"], r["raw"]) for r in df.collect()) == [("invalid_json", "{oops"),
                                                                     ("invalid_type", '{"type": "x"}')]
    only = lake.quarantine(spark, lake_none, reasons=["invalid_json"]).collect()
    assert sorted(r["file"] for r in only) == ["f1.gz", "f2.gz", "f3.gz"]
    assert lake.quarantine(spark, lake_none, start="2027-01-01").count() == 0


def glue_or_spark_runs(spark, config):
    return {(r["job"], r["status"]) for r in lake.runs(spark, config).collect()}


def run_fake_job(config_path: Path, job: str, outcome: str, *extra: str) -> int:
    def body(args, config, report):
        report.totals = {"rows": 7}
        if outcome == "fail":
            raise LakelibError("the input is gone")
        return outcome

    return run_job(job, job_parser(job, "a test job"), ["--config", str(config_path), *extra], body)


def test_every_run_is_a_row_of_lake_runs_queryable_through_the_metastore(spark, tmp_path):
    path = write_config(tmp_path, "spark")
    config = load_config(path)
    assert run_fake_job(path, "json_to_parquet", "succeeded", "--date", "2026-01-01") == 0
    assert run_fake_job(path, "json_to_parquet", "fail") == 1
    assert run_fake_job(path, "compact_partitions", "dry_run") == 0

    rows = spark.sql(f"SELECT job, status FROM {config.catalog.database}.lake_runs").collect()
    assert sorted((r["job"], r["status"]) for r in rows) == [
        ("compact_partitions", "dry_run"), ("json_to_parquet", "failed"), ("json_to_parquet", "succeeded")]
    files = sorted(p.name for p in (tmp_path / "tables" / "lake_runs" / "job=json_to_parquet").glob("*.parquet"))
    assert len(files) == 2, "each run is its own file"
    assert not list((tmp_path / "tables" / "lake_runs").glob("_staging/*")), "no staging folder is left"

    last = lake.runs(spark, config, jobs="json_to_parquet", last=1).collect()
    assert [r["status"] for r in last] == ["failed"]
    failed = last[0]
    assert failed["error"] == "the input is gone" and json.loads(failed["totals"]) == {"rows": 7}
    assert failed["arguments"] == ["--config", str(path)] and failed["duration_s"] >= 0
    assert failed["finished_at"] >= failed["started_at"] and failed["run_id"].startswith("json_to_parquet-")
    assert lake.runs(spark, config).schema == spark_schema(LAKE_RUNS, with_partitions=True)
    assert [r["job"] for r in lake.runs(spark, config, last=3).collect()][0] == "compact_partitions"


def test_the_report_and_the_row_say_where_the_run_ran(spark, tmp_path, monkeypatch):
    import pyspark

    import lakelib

    monkeypatch.setenv("AWS_EMR_SERVERLESS_APPLICATION_ID", "00app")
    monkeypatch.setenv("AWS_EMR_SERVERLESS_JOB_RUN_ID", "00run")
    spark.conf.set("spark.lakelib.logUri", "s3://lake-logs/serverless/")
    try:
        path = write_config(tmp_path, "none")
        assert run_fake_job(path, "json_to_parquet", "succeeded") == 0
    finally:
        spark.conf.unset("spark.lakelib.logUri")
    (report,) = [json.loads(p.read_text()) for p in (tmp_path / "reports" / "json_to_parquet").glob("*.json")]
    expected = {
        "spark_application_id": spark.sparkContext.applicationId,
        "emr_cluster_id": None,
        "emr_step_id": None,
        "serverless_application_id": "00app",
        "serverless_job_run_id": "00run",
        "log_uri": "s3://lake-logs/serverless/applications/00app/jobs/00run/",
        "lakelib_version": lakelib.__version__,
        "spark_version": pyspark.__version__,
    }
    assert report["provenance"] == expected
    (row,) = lake.runs(spark, load_config(path)).collect()
    assert {k: row[k] for k in expected} == expected
    assert row["cost_usd"] is None, "the billed use comes later (lake submit --wait)"


def test_secrets_inside_values_reach_neither_the_report_nor_the_row(spark, tmp_path):
    path = write_config(tmp_path, "none")
    jdbc = "spark.spark.sink.url=jdbc:postgresql://db/lake?user=etl&password=hunter2"
    assert run_fake_job(path, "json_to_parquet", "succeeded", "--set", jdbc,
                        "--set", "spark.spark.sink.token=hunter3") == 0
    (report_file,) = (tmp_path / "reports" / "json_to_parquet").glob("*.json")
    text = report_file.read_text()
    assert "hunter2" not in text and "hunter3" not in text
    hidden = ["--set", "spark.spark.sink.url=jdbc:postgresql://db/lake?user=etl&password=*********(redacted)",
              "--set", "spark.spark.sink.token=*********(redacted)"]
    assert json.loads(text)["arguments"][2:] == hidden
    (row,) = lake.runs(spark, load_config(path)).collect()
    assert row["arguments"][2:] == hidden


@pytest.mark.parametrize("kind", ["none", "spark"])
def test_two_runs_recording_at_the_same_moment_both_have_their_row(spark, tmp_path, kind):
    import threading

    config = load_config(write_config(tmp_path, kind))
    reports = [RunReport("json_to_parquet") for _ in range(2)]
    for report in reports:
        report.finish("succeeded")
    start = threading.Barrier(2)
    written: dict[str, object] = {}

    def record(report: RunReport) -> None:
        start.wait()
        written[report.run_id] = record_run(spark, config, report)

    threads = [threading.Thread(target=record, args=(r,)) for r in reports]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(written.values()), written
    assert sorted(r["run_id"] for r in lake.runs(spark, config).collect()) == sorted(r.run_id for r in reports)


def test_lake_runs_written_before_the_provenance_columns_still_read(spark, tmp_path):
    """A lake_runs file and catalog table of an older lakelib (the first nine columns) read with the new columns
    null, and the next run brings the table's columns up to date."""
    from lakelib.schema import Table

    old = Table("lake_runs", LAKE_RUNS.columns[:9], ("job",))
    path = write_config(tmp_path, "spark")
    config = load_config(path)
    row = ("r-old", "succeeded", datetime(2025, 1, 1), datetime(2025, 1, 1, 0, 1), 60.0, ["--x"], 1, "{}", None)
    folder_uri = partition_location(config.lake.tables, LAKE_RUNS, {"job": "json_to_parquet"})
    spark.createDataFrame([row], spark_schema(old)).coalesce(1).write.parquet(str(tmp_path / "old"))
    (part,) = (tmp_path / "old").glob("part-*.parquet")
    folder(folder_uri).mkdir(parents=True)
    shutil.copy(part, folder(folder_uri) / "r-old.parquet")
    catalog = open_catalog(config, spark)
    catalog.ensure_table(old, f"{config.lake.tables}/lake_runs")
    catalog.register_partitions(old, [Partition({"job": "json_to_parquet"}, folder_uri)])
    (got,) = lake.runs(spark, config).collect()
    assert got["run_id"] == "r-old" and got["spark_version"] is None and got["cost_usd"] is None
    assert run_fake_job(path, "json_to_parquet", "succeeded") == 0
    rows = {r["run_id"]: r for r in lake.runs(spark, config).collect()}
    assert len(rows) == 2 and rows["r-old"]["lakelib_version"] is None
    assert [r["lakelib_version"] for k, r in rows.items() if k != "r-old"] != [None]


def test_runs_are_recorded_by_path_without_a_catalog(spark, tmp_path):
    path = write_config(tmp_path, "none")
    config = load_config(path)
    assert lake.runs(spark, config).count() == 0
    assert run_fake_job(path, "message_type_counts", "nothing_to_do") == 0
    assert glue_or_spark_runs(spark, config) == {("message_type_counts", "nothing_to_do")}


def test_a_run_that_cannot_be_recorded_still_succeeds(spark, tmp_path, capsys):
    path = write_config(tmp_path, "none")
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "lake_runs").write_text("a file where the table's folder should be")
    assert run_fake_job(path, "json_to_parquet", "succeeded") == 0
    assert "not recorded in lake_runs" in capsys.readouterr().err
    assert len(list((tmp_path / "reports" / "json_to_parquet").glob("*.json"))) == 1


def test_record_run_returns_the_file_it_wrote(spark, tmp_path):
    config = load_config(write_config(tmp_path, "none"))
    report = RunReport("event_tables")
    report.finish("succeeded")
    written = record_run(spark, config, report)
    assert written == f"{config.lake.tables}/lake_runs/job=event_tables/{report.run_id}.parquet"
    assert folder(written).is_file()


def test_lake_runs_prints_the_last_runs_most_recent_first(spark, tmp_path, capsys):
    from lakelib.cli import main

    path = write_config(tmp_path, "none")
    assert main(["runs", "--config", str(path)]) == 0
    assert "no runs recorded" in capsys.readouterr().out
    assert run_fake_job(path, "json_to_parquet", "succeeded") == 0
    assert run_fake_job(path, "message_type_counts", "fail") == 1
    capsys.readouterr()
    assert main(["runs", "--config", str(path), "--last", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("started (UTC)") and len(lines) == 3
    assert "message_type_counts" in lines[1] and "failed" in lines[1] and "the input is gone" in lines[1]
    assert "json_to_parquet" in lines[2] and "succeeded" in lines[2]
    assert main(["runs", "--config", str(path), "--job", "json_to_parquet"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert spark.sparkContext._jsc is not None, "the command left the running session alone"


def test_runs_started_in_one_second_list_in_the_order_they_started(tmp_path):
    """Run ids carry milliseconds: a run that starts in the same second as the one before it is still the last (by
    name it would sort first), and older ids without milliseconds still sort by their second."""
    from datetime import timezone

    from lakelib.report import new_run_id
    from lakelib.run_reports import find_report, list_reports

    second = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    older = RunReport("zz_job", run_id="zz_job-20260102T030404Z-00000000")
    first = RunReport("message_type_counts", run_id=new_run_id("message_type_counts", second.replace(microsecond=1000)))
    last = RunReport("event_tables", run_id=new_run_id("event_tables", second.replace(microsecond=998000)))
    for report in (last, older, first):
        report.finish("succeeded")
        write_report(report, str(tmp_path), None, None)
    assert last.run_id.startswith("event_tables-20260102T030405.998Z-")
    names = [uri.rsplit("/", 1)[1][: -len(".json")] for uri in list_reports(str(tmp_path))]
    assert names == [older.run_id, first.run_id, last.run_id]
    assert find_report(str(tmp_path)).endswith(f"/event_tables/{last.run_id}.json")
    assert find_report(str(tmp_path), older.run_id).endswith(f"/zz_job/{older.run_id}.json")


def write_conversion_report(reports: Path, parts: list[dict]) -> None:
    """A succeeded json_to_parquet run report with these partition entries (what the quarantine chart reads)."""
    report = RunReport("json_to_parquet", partitions=parts)
    report.finish("succeeded")
    write_report(report, str(reports), None, None)


def test_charts_stack_the_counts_of_each_day(spark, lake_none, tmp_path):
    from matplotlib.dates import num2date

    from lakelib.charts import counts_chart, quarantine_chart

    daily = spark.createDataFrame(
        [("track", 5, "web", DAYS[0]), ("page", 2, "web", DAYS[0]), ("track", 4, "web", DAYS[2]),
         ("track", 100, "ios", DAYS[0])],
        spark_schema(MESSAGE_TYPE_COUNTS_DAILY, with_partitions=True),
    )
    write_partitions(daily, MESSAGE_TYPE_COUNTS_DAILY, lake_none.lake.tables)
    for session in (spark, None):
        ax = counts_chart(session, lake_none, "web", DAYS[0], DAYS[2]).axes[0]
        assert ax.get_title() == f"web: messages by type, {DAYS[0]} to {DAYS[2]}"
        assert ax.get_xlabel() == "received day (UTC)"
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["page", "track"], "top of the stack first"
        bars = [(num2date(p.get_x() + p.get_width() / 2).date().isoformat(), p.get_y(), p.get_height())
                for p in ax.patches]
        assert [b[2] for b in bars] == [5, 0, 4, 2, 0, 0], "track then page on top of it, one bar per day"
        assert [b[0] for b in bars[:3]] == DAYS and bars[3][1] == 5, "page is stacked on track, on its day"

    write_conversion_report(tmp_path / "reports", [
        {"sourceid": "web", "dt": DAYS[1], "lines_read": 10, "quarantined": 3,
         "quarantined_by_reason": {"invalid_json": 2, "missing_message_id": 1}},
        {"sourceid": "ios", "dt": DAYS[1], "lines_read": 10, "quarantined": 0, "quarantined_by_reason": {}}])
    ax = quarantine_chart(None, lake_none, None, DAYS[0], DAYS[1]).axes[0]
    assert [p.get_height() for p in ax.patches] == [0, 10.0, 0, 5.0], "% of the 20 lines read that day"
    ax = quarantine_chart(spark, lake_none, "web", DAYS[0], DAYS[1], share=False).axes[0]
    assert [p.get_height() for p in ax.patches] == [0, 2, 0, 1]


def test_lake_chart_writes_png_files(spark, lake_none, tmp_path, capsys):
    from lakelib.cli import main

    daily = spark.createDataFrame([("track", 5, "web", DAYS[0])],
                                  spark_schema(MESSAGE_TYPE_COUNTS_DAILY, with_partitions=True))
    write_partitions(daily, MESSAGE_TYPE_COUNTS_DAILY, lake_none.lake.tables)
    write_conversion_report(tmp_path / "reports", [
        {"sourceid": "web", "dt": DAYS[0], "lines_read": 10, "quarantined": 1,
         "quarantined_by_reason": {"invalid_json": 1}}])
    path = lake_none.path
    out = tmp_path / "charts" / "counts.png"
    assert main(["chart", "counts", "--config", path, "--source", "web", "--start", DAYS[0], "--end", DAYS[2],
                 "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "wrote" in capsys.readouterr().out
    out = tmp_path / "charts" / "quarantine.png"
    assert main(["chart", "quarantine", "--config", path, "--start", DAYS[0], "--end", DAYS[0],
                 "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert main(["chart", "counts", "--config", path, "--source", "web", "--start", "2026-02-30", "--end", DAYS[0],
                 "--out", str(out)]) == 2


def test_without_matplotlib_lake_chart_names_the_extra_before_starting_spark(tmp_path, monkeypatch, capsys):
    import builtins

    from lakelib.cli import main

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    monkeypatch.setattr("lakelib.session.build_session", lambda *a, **k: pytest.fail("Spark was started"))
    path = write_config(tmp_path, "none")
    assert main(["chart", "counts", "--config", str(path), "--source", "web", "--start", DAYS[0], "--end", DAYS[0],
                 "--out", str(tmp_path / "c.png")]) == 1
    assert "pip install 'lakelib[notebook]'" in capsys.readouterr().err
