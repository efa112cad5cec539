"""The publish protocol: versions, verification, the switch (catalog or by path), cleanup, and crash safety."""
from __future__ import annotations

import gzip
import json
import os
import threading
import time
import uuid
from datetime import date
from pathlib import Path

import pytest

from jobs import event_tables, json_to_parquet
from lakelib.config import load_config
from lakelib.errors import VerificationError
from lakelib.paths import day_folder, same_location
from lakelib.publish import FAULT_ENV, FAULT_STEPS, MARKERS_DIR, Publisher
from lakelib.schema import MESSAGE_TYPE_COUNTS_DAILY, spark_schema
from lakelib.tables import open_tables

DAY = date(2026, 1, 1)
PDIR = "sourceid=web/dt=2026-01-01"


def write_config(tmp_path: Path, catalog: str) -> Path:
    path = tmp_path / "lake.yaml"
    path.write_text(
        f"lake: {{raw: {tmp_path}/raw, tables: {tmp_path}/tables, quarantine: {tmp_path}/quarantine, "
        f"reports: {tmp_path}/reports}}\ncatalog: {catalog}\n", encoding="utf-8")
    return path


def write_raw(tmp_path: Path, ids, name="part-0.gz") -> None:
    folder = tmp_path / "raw" / "web" / day_folder(DAY)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"messageId": i, "type": "track", "event": "Order Completed", "userId": f"u{i}",
                         "timestamp": "2026-01-01T00:00:00Z", "properties": {"n": 1}}) for i in ids]
    (folder / name).write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))


def counts_daily(spark, rows):
    return spark.createDataFrame(rows, "type string, message_count bigint, sourceid string, dt string")


@pytest.fixture
def spark_lake(spark, tmp_path):
    database = f"pub_{uuid.uuid4().hex[:10]}"
    config = write_config(tmp_path, f"{{kind: spark, database: {database}}}")
    yield config, database
    spark.sql(f"DROP DATABASE IF EXISTS {database} CASCADE")


# --- stage, publish, clean up --------------------------------------------------------------------------------------


def test_with_a_catalog_each_write_is_a_new_version_registered_in_one_batch_and_the_old_one_goes_after_retention(
        spark, tmp_path, spark_lake):
    config_path, database = spark_lake
    config = load_config(config_path)
    key = ("web", "2026-01-01")

    first = open_tables(spark, config, "run-1")
    done = first.write(MESSAGE_TYPE_COUNTS_DAILY, counts_daily(spark, [("track", 3, *key), ("page", 1, *key)]),
                       {key: 2})
    assert [(p.version, p.superseded, p.rows) for p in done] == [
        (f"file://{tmp_path}/tables/_versions/message_type_counts_daily/{PDIR}/v=run-1", None, 2)]
    own = tmp_path / "tables" / "message_type_counts_daily"
    assert not own.exists() or not any(p.is_file() for p in own.rglob("*"))  # nothing in the table's own folder

    second = open_tables(spark, config, "run-2")
    done = second.write(MESSAGE_TYPE_COUNTS_DAILY, counts_daily(spark, [("track", 4, *key)]), {key: 1})
    assert done[0].superseded == f"file://{tmp_path}/tables/_versions/message_type_counts_daily/{PDIR}/v=run-1"
    table = f"{database}.message_type_counts_daily"
    assert [tuple(r) for r in spark.table(table).collect()] == [("track", 4, "web", "2026-01-01")]
    versions = tmp_path / "tables/_versions/message_type_counts_daily" / PDIR
    assert sorted(p.name for p in versions.iterdir()) == [MARKERS_DIR, "v=run-1", "v=run-2"]  # kept for 6 hours
    marker = json.loads(next((versions / MARKERS_DIR).glob("*.json")).read_text())
    assert marker["by"].endswith("v=run-2") and marker["superseded_at"] is not None

    later = Publisher(spark, second.storage, "run-3", retention_hours=6, clock=lambda: time.time() + 6 * 3600)
    deleted = later.cleanup(second.target(MESSAGE_TYPE_COUNTS_DAILY), {key: done[0].version})
    assert deleted == {key: [f"file://{versions}/v=run-1"]}
    assert sorted(p.name for p in versions.iterdir() if p.name != MARKERS_DIR) == ["v=run-2"]
    assert list((versions / MARKERS_DIR).glob("*.json")) == []

    # A partition that no longer exists: dropped from the catalog first, its version deleted after the retention.
    third = open_tables(spark, load_config(config_path), "run-4")
    dropped = third.write(MESSAGE_TYPE_COUNTS_DAILY, None, {}, drop=[key])
    assert [(p.version, p.superseded) for p in dropped] == [(None, done[0].version)]
    spark.catalog.refreshTable(table)
    assert spark.table(table).count() == 0
    assert (versions / "v=run-2").exists()
    expired = Publisher(spark, third.storage, "run-5", retention_hours=6, clock=lambda: time.time() + 7 * 3600)
    assert expired.cleanup(third.target(MESSAGE_TYPE_COUNTS_DAILY), {key: None}) == {key: [f"file://{versions}/v=run-2"]}


def test_a_version_with_other_rows_than_expected_is_never_published(spark, tmp_path, spark_lake):
    config_path, database = spark_lake
    tables = open_tables(spark, load_config(config_path), "run-1")
    key = ("web", "2026-01-01")
    tables.write(MESSAGE_TYPE_COUNTS_DAILY, counts_daily(spark, [("track", 3, *key)]), {key: 1})
    bad = open_tables(spark, load_config(config_path), "run-2")
    with pytest.raises(VerificationError, match=r"1 row\(s\) in the new version, 2 expected"):
        bad.write(MESSAGE_TYPE_COUNTS_DAILY, counts_daily(spark, [("page", 9, *key)]), {key: 2})
    extra = counts_daily(spark, [("page", 9, *key), ("page", 9, "web", "2026-01-02")])
    with pytest.raises(VerificationError, match="the rows hold other partitions"):
        bad.write(MESSAGE_TYPE_COUNTS_DAILY, extra, {key: 1})
    assert [tuple(r) for r in spark.table(f"{database}.message_type_counts_daily").collect()] == [
        ("track", 3, "web", "2026-01-01")]


def test_versions_staged_unverified_are_verified_together_and_never_published_before(spark, tmp_path, spark_lake):
    """Hundreds of typed tables are written first and verified in one Spark job: a version with a wrong count is
    named, the good ones stay unpublished with it, and publish refuses a version nobody verified."""
    from lakelib.errors import LakelibError
    from lakelib.schema import MESSAGE_TYPE_COUNTS_YEARLY

    config_path, database = spark_lake
    tables = open_tables(spark, load_config(config_path), "run-1")
    key = ("web", "2026-01-01")
    daily = tables.stage(MESSAGE_TYPE_COUNTS_DAILY, counts_daily(spark, [("track", 3, *key), ("page", 1, *key)]),
                         {key: 2}, verify=False)
    yearly_rows = spark.createDataFrame([("track", 3, "web", "2026-01-01")],
                                        "type string, message_count bigint, sourceid string, end_dt string")
    yearly = tables.stage(MESSAGE_TYPE_COUNTS_YEARLY, yearly_rows, {("web", "2026-01-01"): 2}, verify=False)
    with pytest.raises(LakelibError, match="must be verified before it is published"):
        tables.publish(daily)
    with pytest.raises(VerificationError, match=r"message_type_counts_yearly .*1 row\(s\) in the new version, 2"):
        tables.verify(daily, yearly)
    assert not spark.catalog.tableExists(f"{database}.message_type_counts_daily")
    assert daily.rows == {key: 2}  # counted in the same job
    tables.publish(daily)
    assert spark.table(f"{database}.message_type_counts_daily").count() == 2


def test_without_a_catalog_default_folders_are_swapped_and_the_old_one_is_kept_aside(spark, tmp_path):
    config = load_config(write_config(tmp_path, "{kind: none}"))
    key = ("web", "2026-01-01")
    default = tmp_path / "tables/message_type_counts_daily" / PDIR
    open_tables(spark, config, "run-1").write(MESSAGE_TYPE_COUNTS_DAILY, counts_daily(spark, [("track", 3, *key)]),
                                              {key: 1})
    first_files = sorted(p.name for p in default.iterdir() if p.suffix == ".parquet")
    done = open_tables(spark, config, "run-2").write(
        MESSAGE_TYPE_COUNTS_DAILY, counts_daily(spark, [("page", 1, *key), ("track", 5, *key)]), {key: 2})
    assert done[0].version == f"file://{default}"
    aside = tmp_path / "tables/_versions/message_type_counts_daily" / PDIR / "v=run-2.replaced"
    assert done[0].superseded == f"file://{aside}"
    assert sorted(p.name for p in aside.iterdir() if p.suffix == ".parquet") == first_files
    got = spark.read.schema(spark_schema(MESSAGE_TYPE_COUNTS_DAILY)).parquet(str(default))
    assert sorted(tuple(r) for r in got.collect()) == [("page", 1), ("track", 5)]
    assert not (tmp_path / "tables/_staging/message_type_counts_daily/run-2").exists()


def test_glue_batches_stay_within_the_service_limits(spark, tmp_path, aws):
    import boto3

    config = load_config(write_config(
        tmp_path, f"{{kind: glue, database: pubglue, glue: {{region: us-east-1, endpoint_url: '{aws}'}}}}"))
    client = boto3.client("glue", region_name="us-east-1", endpoint_url=aws)
    sizes: dict[str, list[int]] = {}

    def record(params, **_):
        for field, n in (("PartitionInputList", "BatchCreatePartition"), ("Entries", "BatchUpdatePartition"),
                         ("PartitionsToDelete", "BatchDeletePartition")):
            if field in params:
                sizes.setdefault(n, []).append(len(params[field]))

    client.meta.events.register("provide-client-params.glue.*", record)
    days = [f"2026-{m:02d}-{d:02d}" for m in (1, 2, 3, 4, 5) for d in range(1, 29)][:130]
    rows = [("track", 1, "web", d) for d in days]
    tables = open_tables(spark, config, "run-1", glue_client=client)
    tables.write(MESSAGE_TYPE_COUNTS_DAILY, counts_daily(spark, rows), {("web", d): 1 for d in days})
    again = open_tables(spark, config, "run-2", glue_client=client)
    again.write(MESSAGE_TYPE_COUNTS_DAILY, counts_daily(spark, rows[:110]), {("web", d): 1 for d in days[:110]},
                drop=[("web", d) for d in days[110:]])
    assert max(sizes["BatchCreatePartition"]) <= 100 and sum(sizes["BatchCreatePartition"]) >= 130
    assert max(sizes["BatchUpdatePartition"]) <= 100 and sum(sizes["BatchUpdatePartition"]) == 110
    assert max(sizes["BatchDeletePartition"]) <= 25 and sum(sizes["BatchDeletePartition"]) == 20
    pages = client.get_paginator("get_partitions").paginate(DatabaseName="pubglue", TableName="message_type_counts_daily")
    listed = [p for page in pages for p in page["Partitions"]]
    assert len(listed) == 110 and all("/v=run-2" in p["StorageDescriptor"]["Location"] for p in listed)


def test_glue_refusing_part_way_is_reported_per_partition_and_a_rerun_finishes(spark, tmp_path, aws):
    import boto3
    from test_catalog_glue import refuse_batch

    from lakelib.errors import PartialRegistrationError
    from lakelib.report import RunReport

    config = load_config(write_config(
        tmp_path, f"{{kind: glue, database: pubglue, glue: {{region: us-east-1, endpoint_url: '{aws}'}}}}"))
    client = boto3.client("glue", region_name="us-east-1", endpoint_url=aws)
    days = [f"2026-{m:02d}-{d:02d}" for m in (1, 2, 3, 4, 5) for d in range(1, 27)]
    rows = [("track", 1, "web", d) for d in days]
    report = RunReport("demo", partitions=[{"sourceid": "web", "dt": d} for d in days])
    refuse_batch(client, 2)
    with pytest.raises(PartialRegistrationError, match="100 of 130 partitions"):
        open_tables(spark, config, "run-1", glue_client=client).write(
            MESSAGE_TYPE_COUNTS_DAILY, counts_daily(spark, rows), {("web", d): 1 for d in days}, report=report)
    flags = [p["registered"] for p in report.partitions]
    assert flags == [True] * 100 + [False] * 30
    assert report.extra["registration"]["message_type_counts_daily"]["not_registered"] == [
        {"sourceid": "web", "dt": d} for d in days[100:]]

    retry = boto3.client("glue", region_name="us-east-1", endpoint_url=aws)
    done = open_tables(spark, config, "run-2", glue_client=retry).write(
        MESSAGE_TYPE_COUNTS_DAILY, counts_daily(spark, rows), {("web", d): 1 for d in days})
    assert len(done) == 130
    listed = retry.get_paginator("get_partitions").paginate(DatabaseName="pubglue",
                                                            TableName="message_type_counts_daily")
    assert sum(len(page["Partitions"]) for page in listed) == 130


def test_with_athena_partition_projection_partitions_stay_in_the_template_folders(spark, tmp_path, aws):
    import boto3

    config = load_config(write_config(tmp_path, f"{{kind: glue, database: projected, glue: {{region: us-east-1, "
                                                f"endpoint_url: '{aws}', partition_projection: true}}}}"))
    client = boto3.client("glue", region_name="us-east-1", endpoint_url=aws)
    key = ("web", "2026-01-01")
    for run, rows in (("run-1", [("track", 3, *key)]), ("run-2", [("track", 4, *key), ("page", 1, *key)])):
        open_tables(spark, config, run, glue_client=client).write(MESSAGE_TYPE_COUNTS_DAILY, counts_daily(spark, rows),
                                                                  {key: len(rows)})
    default = tmp_path / "tables/message_type_counts_daily" / PDIR  # what Athena's projection template names
    got = spark.read.schema(spark_schema(MESSAGE_TYPE_COUNTS_DAILY)).parquet(str(default)).collect()
    assert sorted(tuple(r) for r in got) == [("page", 1), ("track", 4)]
    part = client.get_partition(DatabaseName="projected", TableName="message_type_counts_daily",
                                PartitionValues=list(key))["Partition"]
    assert part["StorageDescriptor"]["Location"] == f"file://{default}"


# --- crash safety: a reader of the catalog never sees anything but one complete version ----------------------------


class Reader:
    """Counts the rows of one partition through the catalog, in a loop, from another thread."""

    def __init__(self, spark, table: str, day: str = DAY.isoformat()):
        self.spark, self.table, self.day, self.seen, self.errors = spark, table, day, [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            try:
                self.spark.catalog.refreshTable(self.table)
                self.seen.append(self.spark.table(self.table).where(f"dt = '{self.day}'").count())
            except Exception as exc:  # noqa: BLE001 - recorded: a reader must never fail
                self.errors.append(repr(exc))
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=120)


def _run_with_fault(main, args, fault):
    os.environ[FAULT_ENV] = fault
    try:
        return main(args)
    finally:
        os.environ.pop(FAULT_ENV, None)


def _versions(tmp_path: Path, table: str) -> list[str]:
    folder = tmp_path / "tables" / "_versions" / table / PDIR
    return sorted(p.name for p in folder.iterdir() if p.name != MARKERS_DIR) if folder.exists() else []


@pytest.mark.parametrize("fault", FAULT_STEPS)
def test_json_to_parquet_killed_at_each_step_leaves_readers_on_one_complete_version(spark, tmp_path, spark_lake,
                                                                                    fault):
    config, database = spark_lake
    args = ["--config", str(config), "--date", DAY.isoformat()]
    write_raw(tmp_path, [f"a{i}" for i in range(40)])
    assert json_to_parquet.main(args) == 0
    write_raw(tmp_path, [f"b{i}" for i in range(60)], name="part-1.gz")

    with Reader(spark, f"{database}.events") as reader:
        assert _run_with_fault(json_to_parquet.main, args, fault) == 1
        time.sleep(0.5)
    assert reader.errors == [] and reader.seen and set(reader.seen) <= {40, 100}, (set(reader.seen), reader.errors)
    published = fault in ("after_publish", "before_cleanup")
    spark.catalog.refreshTable(f"{database}.events")
    assert spark.table(f"{database}.events").count() == (100 if published else 40)

    assert json_to_parquet.main(args + ["--set", "publish.retention_hours=0"]) == 0  # the rerun finishes, cleans up
    spark.catalog.refreshTable(f"{database}.events")
    assert spark.table(f"{database}.events").count() == 100
    location = spark.sql(f"DESCRIBE FORMATTED {database}.events PARTITION (sourceid='web', dt='2026-01-01')")
    current = [r["data_type"] for r in location.collect() if r["col_name"] == "Location"][0]
    assert _versions(tmp_path, "events") == [current.rsplit("/", 1)[1]]


@pytest.mark.parametrize("fault", FAULT_STEPS)
def test_event_tables_killed_at_each_step_leaves_readers_on_one_complete_version(spark, tmp_path, spark_lake, fault):
    config, database = spark_lake
    args = ["--config", str(config), "--date", DAY.isoformat()]
    write_raw(tmp_path, [f"a{i}" for i in range(40)])
    assert json_to_parquet.main(args) == 0 and event_tables.main(args) == 0
    write_raw(tmp_path, [f"b{i}" for i in range(60)], name="part-1.gz")
    assert json_to_parquet.main(args) == 0

    with Reader(spark, f"{database}.order_completed") as reader:
        assert _run_with_fault(event_tables.main, args, fault) == 1
        time.sleep(0.5)
    assert reader.errors == [] and reader.seen and set(reader.seen) <= {40, 100}, (set(reader.seen), reader.errors)

    assert event_tables.main(args + ["--set", "publish.retention_hours=0"]) == 0
    spark.catalog.refreshTable(f"{database}.order_completed")
    assert spark.table(f"{database}.order_completed").count() == 100
    assert len(_versions(tmp_path, "order_completed")) == 1 and len(_versions(tmp_path, "tracks")) == 1


def test_a_version_of_an_odd_source_is_found_and_read_where_it_was_published(spark, tmp_path, spark_lake):
    """The metastore hands locations back percent-encoded (``sourceid=my%20source``): they must name the folder."""
    config_path, _ = spark_lake
    key = ("my source", "2026-01-01")
    tables = open_tables(spark, load_config(config_path), "run-1")
    done = tables.write(MESSAGE_TYPE_COUNTS_DAILY, counts_daily(spark, [("track", 3, *key), ("page", 1, *key)]),
                        {key: 2})
    (found,) = tables.find(MESSAGE_TYPE_COUNTS_DAILY, ["my source"])
    assert same_location(found.location, done[0].version) and "sourceid=my source/" in found.location
    got = tables.read(MESSAGE_TYPE_COUNTS_DAILY, [found], ["type", "message_count"]).collect()
    assert sorted(tuple(r) for r in got) == [("page", 1, *key), ("track", 3, *key)]
