"""compact_partitions end to end: a partition of 300 small files, the Spark catalog, retention, crashes."""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from chispa import assert_df_equality

from jobs.compact_partitions import main
from lakelib.catalog import open_catalog
from lakelib.catalog.base import Partition
from lakelib.config import load_config
from lakelib.publish import FAULT_ENV
from lakelib.schema import EVENTS, MESSAGE_TYPE_COUNTS_DAILY, spark_schema

PART = {"sourceid": "web", "dt": "2020-01-02"}
PDIR = "sourceid=web/dt=2020-01-02"


def _rows(n=3000):
    return [
        (f"m{i}", "track", f"a{i % 50}", None, f"ev{i % 7}", None, None, None, "web",
         datetime(2020, 1, 2, 3, 4, i % 60), None, None, datetime(2020, 1, 2, 3, 5, 0),
         {"ip": f"1.2.3.{i % 255}", "lib": '{"name":"x"}'}, {"k": str(i)}, None, None, "2", None)
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def template(spark, tmp_path_factory):
    """The 300-file partition, written once; each test copies it (no Spark job)."""
    folder = tmp_path_factory.mktemp("template") / "events" / PDIR
    spark.createDataFrame(_rows(), spark_schema(EVENTS)).repartition(300).write.parquet(str(folder))
    return folder


@pytest.fixture(scope="module")
def small_template(spark, tmp_path_factory):
    """A 20-file partition of 300 rows, for the tests that run the job many times."""
    folder = tmp_path_factory.mktemp("small") / "events" / PDIR
    spark.createDataFrame(_rows(300), spark_schema(EVENTS)).repartition(20).write.parquet(str(folder))
    return folder


def comparable(df):
    """Maps as sorted JSON entries, so that chispa can sort rows (Spark cannot order by a map)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    return df.select(*[
        F.to_json(F.array_sort(F.map_entries(f.name))).alias(f.name) if isinstance(f.dataType, T.MapType)
        else F.col(f.name) for f in df.schema.fields
    ])


def assert_same_rows(got, expected):
    assert_df_equality(comparable(got), comparable(expected), ignore_row_order=True, ignore_nullable=True)


class Lake:
    """A test lake: a config, the events partition in its default folder, registered in a fresh database."""

    def __init__(self, spark, tmp_path: Path, template: Path):
        self.spark, self.tmp = spark, tmp_path
        self.default = tmp_path / "tables" / "events" / PDIR
        shutil.copytree(template, self.default)
        self.config_path = tmp_path / "lake.yaml"
        self.config_path.write_text(
            f"lake: {{raw: {tmp_path}/raw, tables: {tmp_path}/tables, quarantine: {tmp_path}/q, "
            f"reports: {tmp_path}/reports}}\n"
            f"catalog: {{kind: spark, database: compact_{uuid.uuid4().hex[:10]}}}\n"
        )
        self.config = load_config(self.config_path)
        self.catalog = open_catalog(self.config, spark)
        self.catalog.ensure_table(EVENTS, f"file://{tmp_path}/tables/events")
        self.catalog.register_partitions(EVENTS, [Partition(dict(PART), f"file://{self.default}")])

    def run(self, *args: str, fault: str | None = None, monkeypatch=None) -> tuple[int, dict]:
        report = self.tmp / f"report-{uuid.uuid4().hex[:6]}.json"
        if fault:
            os.environ[FAULT_ENV] = fault
        try:
            code = main(["--config", str(self.config_path), "--table", "events", "--target-file-mb", "1",
                         "--report", str(report), *args])
        finally:
            os.environ.pop(FAULT_ENV, None)
        return code, json.loads(report.read_text()) if report.exists() else {}

    def location(self) -> str:
        return self.catalog.partition_location(EVENTS, PART)

    def data_files(self, location: str) -> list[str]:
        folder = Path(location.replace("file://", "").replace("file:", ""))
        if not folder.exists():
            return []
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith(("_", ".")))

    def snapshot(self) -> list[tuple[str, int]]:
        root = self.tmp / "tables"
        return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*")
                      if p.is_file() and "_metastore" not in p.parts and "lake_runs" not in p.parts)

    def table_rows(self):
        return self.spark.table(f"{self.config.catalog.database}.events").drop("sourceid", "dt")


@pytest.fixture
def lake(spark, tmp_path, template):
    return Lake(spark, tmp_path, template)


@pytest.fixture
def small_lake(spark, tmp_path, small_template):
    return Lake(spark, tmp_path, small_template)


def test_300_small_files_become_one_file_with_the_same_rows(lake, spark, capsys):
    expected = spark.createDataFrame(_rows(), spark_schema(EVENTS))
    assert len(lake.data_files(lake.location())) == 300

    code, report = lake.run("--dry-run")
    assert code == 0 and report["status"] == "dry_run"
    out = capsys.readouterr().out
    assert f"{PDIR}: 300 files" in out and "-> 1 files" in out
    before = lake.snapshot()
    assert lake.location().endswith(PDIR)

    code, report = lake.run()
    assert code == 0, report
    new = lake.location()
    assert "/_versions/events/" + PDIR + "/v=" in new
    assert len(lake.data_files(new)) == 1
    assert_same_rows(lake.table_rows(), expected)
    part = report["partitions"][0]
    assert (part["files_before"], part["files_after"]) == (300, 1)
    assert part["bytes_before"] == sum(size for name, size in before if name.endswith(".parquet"))
    assert part["rows"] == 3000 and report["totals"]["files_after"] == 1
    assert len(lake.data_files(f"file://{lake.default}")) == 300  # old files kept for the retention

    after_first = lake.snapshot()
    code, report = lake.run()
    assert code == 0 and report["status"] == "nothing_to_do"
    assert lake.location() == new and lake.snapshot() == after_first
    code, report = lake.run("--dry-run")
    assert code == 0 and lake.snapshot() == after_first and "left alone" in capsys.readouterr().out

    code, report = lake.run("--set", "publish.retention_hours=0")
    assert code == 0 and report["totals"]["deleted_versions"] == 1
    assert lake.data_files(f"file://{lake.default}") == [] and lake.location() == new
    assert_same_rows(lake.table_rows(), expected)


@pytest.mark.parametrize("fault", ["after_write", "after_verify", "after_publish", "before_cleanup"])
def test_a_crash_at_any_step_leaves_a_complete_copy_and_a_rerun_finishes(small_lake, spark, fault):
    lake = small_lake
    expected = spark.createDataFrame(_rows(300), spark_schema(EVENTS))
    code, crashed = lake.run("--set", "publish.retention_hours=0", fault=fault)
    report = crashed
    assert code == 1 and report["status"] == "failed" and fault in report["error"]
    published = fault in ("after_publish", "before_cleanup")
    assert ("/_versions/" in lake.location()) == published
    assert len(lake.data_files(lake.location())) == (1 if published else 20)

    code, report = lake.run("--set", "publish.retention_hours=0")
    assert code == 0, report
    final = lake.location()
    assert "/_versions/" in final and len(lake.data_files(final)) == 1
    if fault == "after_verify":  # the verified copy of the crashed run is published, not written again
        assert final.endswith("/v=" + crashed["run_id"]) and report["partitions"][0]["rows"] == 300
    versions = lake.tmp / "tables" / "_versions" / "events" / PDIR
    assert sorted(p.name for p in versions.iterdir() if not p.name.startswith("_")) == [final.rsplit("/", 1)[1]]
    assert lake.data_files(f"file://{lake.default}") == []
    assert_same_rows(lake.table_rows(), expected)


def test_json_to_parquet_style_rewrite_of_the_default_folder_takes_over_again(small_lake, spark):
    lake = small_lake
    code, _ = lake.run()
    assert code == 0
    compacted = lake.location()
    # What a json_to_parquet rerun does: dynamic overwrite of the default folder, then re-point the catalog there.
    rows = _rows(10)
    df = spark.createDataFrame(rows, spark_schema(EVENTS))
    df.coalesce(1).write.mode("overwrite").parquet(str(lake.default))
    lake.catalog.register_partitions(EVENTS, [Partition(dict(PART), f"file://{lake.default}")])
    code, report = lake.run("--set", "publish.retention_hours=0")
    assert code == 0 and report["partitions"][0]["action"] == "left"
    assert lake.location().rstrip("/").endswith(PDIR) and report["totals"]["deleted_versions"] == 1
    assert not Path(compacted.replace("file:", "").replace("//", "/")).exists()
    assert_same_rows(lake.table_rows(), df)


@pytest.mark.parametrize("rerun", ["rewrites the default folder", "re-points the catalog"])
def test_a_rerun_of_json_to_parquet_during_compaction_is_not_undone(small_lake, spark, monkeypatch, capsys, rerun):
    """json_to_parquet reruns the day while compaction rewrites it: the rerun's rows must stay the catalog's.

    The rerun happens right after compaction verified its copy (the longest window, before its publish):
    either it rewrites the planned default folder in place (the catalog already points there), or the planned
    folder was elsewhere (compacted before) and the rerun re-points the catalog to the default folder.
    """
    import lakelib.compaction as compaction

    lake = small_lake
    if rerun == "re-points the catalog":  # the partition lives elsewhere, as after an earlier compaction
        elsewhere = lake.tmp / "tables" / "elsewhere" / PDIR
        shutil.copytree(lake.default, elsewhere)
        shutil.rmtree(lake.default)
        lake.catalog.register_partitions(EVENTS, [Partition(dict(PART), f"file://{elsewhere}")])
    newer = spark.createDataFrame(_rows(7), spark_schema(EVENTS))
    verify = compaction.verify_version

    def verify_then_rerun(*args, **kwargs):
        checked = verify(*args, **kwargs)
        newer.coalesce(1).write.mode("overwrite").parquet(f"file://{lake.default}")
        lake.catalog.register_partitions(EVENTS, [Partition(dict(PART), f"file://{lake.default}")])
        return checked

    monkeypatch.setattr(compaction, "verify_version", verify_then_rerun)
    code, report = lake.run("--set", "publish.retention_hours=0")
    monkeypatch.setattr(compaction, "verify_version", verify)

    assert code == 0 and report["status"] == "stopped" and report["totals"]["stopped"] == 1
    part = report["partitions"][0]
    assert part["action"] == "stopped" and "not published" in part["reason"]
    assert ("were rewritten" if rerun == "rewrites the default folder" else "the catalog moved it") in part["reason"]
    assert "not published" in capsys.readouterr().err
    assert lake.location().rstrip("/").endswith(f"tables/events/{PDIR}")
    assert_same_rows(lake.table_rows(), newer)

    code, report = lake.run("--set", "publish.retention_hours=0")  # the next run compacts the newer files
    assert code == 0 and report["partitions"][0]["action"] in ("compacted", "left")
    assert_same_rows(lake.table_rows(), newer)


def test_two_compactions_of_one_partition_at_once_leave_readers_on_one_complete_version(small_lake, spark):
    """Compaction and its rerun at the same moment (two schedulers, a retry): a reader of the catalog counts the
    partition all along and only ever sees its 300 rows; afterwards one verified version is the catalog's."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.test_publish import Reader

    lake = small_lake
    with Reader(spark, f"{lake.config.catalog.database}.events", PART["dt"]) as reader:
        with ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(lambda _: lake.run(), range(2)))
        time.sleep(0.5)
    assert reader.errors == [] and reader.seen and set(reader.seen) == {300}, (set(reader.seen), reader.errors)
    assert [code for code, _ in runs] == [0, 0], [r.get("error") for _, r in runs]
    actions = sorted(r["partitions"][0]["action"] for _, r in runs)
    assert "compacted" in actions and set(actions) <= {"compacted", "left", "stopped"}, actions
    current = lake.location()
    assert "/_versions/events/" in current and len(lake.data_files(current)) == 1
    assert_same_rows(lake.table_rows(), spark.createDataFrame(_rows(300), spark_schema(EVENTS)))

    code, report = lake.run("--set", "publish.retention_hours=0")   # the next run leaves it and cleans up
    assert code == 0 and report["partitions"][0]["action"] == "left"
    versions = lake.tmp / "tables" / "_versions" / "events" / PDIR
    assert [p.name for p in versions.iterdir() if p.name.startswith("v=")] == [current.rstrip("/").rsplit("/", 1)[1]]


def test_a_metastore_that_refuses_the_re_point_fails_the_run_and_the_report_says_where_it_stopped(
        small_lake, monkeypatch, capsys):
    from lakelib.catalog.spark_catalog import SparkCatalog
    from lakelib.errors import CatalogError

    sql = SparkCatalog._sql

    def refuse_set_location(self, statement, what):
        if "SET LOCATION" in statement:
            raise CatalogError(f"spark metastore: {what} failed: MetaException: refused")
        return sql(self, statement, what)

    monkeypatch.setattr(SparkCatalog, "_sql", refuse_set_location)
    code, report = small_lake.run()

    assert code == 1 and report["status"] == "failed"
    assert [(p["action"], p["registered"]) for p in report["partitions"]] == [("failed", False)]
    assert "0 of 1 partitions" in report["partitions"][0]["reason"]
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("rerun the job to register the rest")
    assert small_lake.location().rstrip("/").endswith(f"tables/events/{PDIR}")  # still the old, complete files


def test_count_tables_compact_too(spark, tmp_path):
    config_path = tmp_path / "lake.yaml"
    config_path.write_text(
        f"lake: {{raw: {tmp_path}/raw, tables: {tmp_path}/tables, quarantine: {tmp_path}/q, reports: {tmp_path}/r}}\n"
        f"catalog: {{kind: spark, database: compact_{uuid.uuid4().hex[:10]}}}\n"
    )
    config = load_config(config_path)
    catalog = open_catalog(config, spark)
    folder = tmp_path / "tables" / "message_type_counts_daily" / "sourceid=ios" / "dt=2020-01-03"
    rows = [(t, i) for i, t in enumerate(["track", "identify", "page", "screen", "group", "alias"])]
    df = spark.createDataFrame(rows, spark_schema(MESSAGE_TYPE_COUNTS_DAILY))
    df.repartition(6).write.parquet(str(folder))
    catalog.ensure_table(MESSAGE_TYPE_COUNTS_DAILY, f"file://{tmp_path}/tables/message_type_counts_daily")
    values = {"sourceid": "ios", "dt": "2020-01-03"}
    catalog.register_partitions(MESSAGE_TYPE_COUNTS_DAILY, [Partition(values, f"file://{folder}")])
    code = main(["--config", str(config_path), "--table", "message_type_counts_daily", "--source", "ios",
                 "--date", "2020-01-03"])
    assert code == 0
    location = catalog.partition_location(MESSAGE_TYPE_COUNTS_DAILY, values)
    assert "/_versions/message_type_counts_daily/sourceid=ios/dt=2020-01-03/" in location
    got = spark.table(f"{config.catalog.database}.message_type_counts_daily").drop("sourceid", "dt")
    assert_same_rows(got, df)


def test_refuses_an_unknown_table_and_a_config_without_catalog(tmp_path, capsys):
    config_path = tmp_path / "lake.yaml"
    base = f"lake: {{raw: {tmp_path}/raw, tables: {tmp_path}/t, quarantine: {tmp_path}/q, reports: {tmp_path}/r}}\n"
    config_path.write_text(base + "catalog: {kind: none}\n")
    assert main(["--config", str(config_path), "--table", "nope"]) == 2
    assert "--table 'nope' is not a table" in capsys.readouterr().err
    assert main(["--config", str(config_path), "--table", "events"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("compact_partitions: error: catalog.kind: compact_partitions needs a catalog")
