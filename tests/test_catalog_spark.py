"""The ``spark`` backend against the session's embedded Hive metastore (Derby, in a temporary folder)."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from lakelib.catalog import Partition, open_catalog
from lakelib.catalog.spark_catalog import SparkCatalog
from lakelib.config import parse_config
from lakelib.errors import CatalogError
from lakelib.paths import partition_dir
from lakelib.schema import EVENTS, MESSAGE_TYPE_COUNTS_DAILY, spark_schema


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def event_row(message_id: str, ts: datetime, props: dict) -> tuple:
    values = {c.name: None for c in EVENTS.columns}
    values.update(messageid=message_id, type="track", event="Clicked", timestamp=ts, receivedat=ts,
                  properties=props, context={"library": '{"name":"analytics.js"}'})
    return tuple(values[c] for c in EVENTS.column_names)


@pytest.fixture
def database():
    return f"test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def catalog(spark, database):
    yield SparkCatalog(spark, database)
    spark.sql(f"DROP DATABASE IF EXISTS {database} CASCADE")


def write_partition(spark, folder, rows) -> str:
    uri = f"file://{folder}"
    spark.createDataFrame(rows, spark_schema(EVENTS)).coalesce(1).write.mode("overwrite").parquet(uri)
    return uri


def rows_by_id(spark, name: str) -> dict:
    return {r["messageid"]: r.asDict() for r in spark.table(name).collect()}


def test_a_registered_table_reads_back_with_maps_timestamps_and_keys(spark, catalog, database, tmp_path):
    root = f"file://{tmp_path}/events"
    loc_a = write_partition(spark, tmp_path / "events" / "sourceid=web" / "dt=2020-01-01",
                            [event_row("m1", utc(2020, 1, 1, 23, 59, 59, 123000), {"plan": "pro", "n": "3"})])
    loc_b = write_partition(spark, tmp_path / "events" / "sourceid=ios" / "dt=2020-01-02",
                            [event_row("m2", utc(2020, 1, 2, 0, 0, 1), {"nested": '{"a":1}'})])

    catalog.ensure_table(EVENTS, root)
    result = catalog.register_partitions(EVENTS, [
        Partition({"sourceid": "web", "dt": "2020-01-01"}, loc_a),
        Partition({"sourceid": "ios", "dt": "2020-01-02"}, loc_b),
    ])

    assert sorted(r["sourceid"] for r in result.created) == ["ios", "web"]
    got = rows_by_id(spark, f"{database}.events")
    assert got["m1"]["timestamp"] == datetime(2020, 1, 1, 23, 59, 59, 123000)  # session time zone is UTC
    assert got["m1"]["properties"] == {"plan": "pro", "n": "3"}
    assert got["m2"]["properties"] == {"nested": '{"a":1}'}
    assert got["m2"]["context"] == {"library": '{"name":"analytics.js"}'}
    assert (got["m1"]["sourceid"], got["m1"]["dt"]) == ("web", "2020-01-01")
    assert (got["m2"]["sourceid"], got["m2"]["dt"]) == ("ios", "2020-01-02")
    filtered = spark.sql(f"SELECT messageid FROM {database}.events WHERE sourceid = 'ios' AND dt = '2020-01-02'")
    assert [r[0] for r in filtered.collect()] == ["m2"]


def test_the_table_is_an_external_hive_parquet_table_with_the_schema_types(spark, catalog, database, tmp_path):
    catalog.ensure_table(EVENTS, f"file://{tmp_path}/events")

    cols = {c.name: c for c in spark.catalog.listColumns(f"{database}.events")}
    assert [n for n, c in cols.items() if not c.isPartition] == EVENTS.column_names
    assert [n for n, c in cols.items() if c.isPartition] == ["sourceid", "dt"]
    assert cols["timestamp"].dataType == "timestamp"
    assert cols["properties"].dataType.replace(" ", "") == "map<string,string>"
    info = {r["col_name"]: r["data_type"] for r in spark.sql(f"DESCRIBE FORMATTED {database}.events").collect()}
    assert info["Type"] == "EXTERNAL"
    assert info["Serde Library"].endswith("ParquetHiveSerDe")
    assert info["InputFormat"].endswith("MapredParquetInputFormat")

    catalog.ensure_table(EVENTS, f"file://{tmp_path}/events")  # again: no error, nothing changes
    assert [c.name for c in spark.catalog.listColumns(f"{database}.events")] == EVENTS.all_names


def test_a_rerun_is_a_no_op_and_a_moved_partition_is_repointed(spark, catalog, database, tmp_path):
    values = {"sourceid": "web", "dt": "2020-01-01"}
    folder = tmp_path / "events" / partition_dir(values)
    first = write_partition(spark, folder, [event_row("old", utc(2020, 1, 1), {})])
    catalog.ensure_table(EVENTS, f"file://{tmp_path}/events")
    catalog.register_partitions(EVENTS, [Partition(values, first)])
    assert set(rows_by_id(spark, f"{database}.events")) == {"old"}

    again = catalog.register_partitions(EVENTS, [Partition(dict(values), first + "/")])
    assert (again.created, again.repointed, again.unchanged) == ([], [], 1)

    compacted = write_partition(spark, tmp_path / "compacted" / "run1",
                                [event_row("new1", utc(2020, 1, 1), {}), event_row("new2", utc(2020, 1, 1), {})])
    moved = catalog.register_partitions(EVENTS, [Partition(values, compacted)])

    assert moved.repointed == [values] and moved.created == []
    assert set(rows_by_id(spark, f"{database}.events")) == {"new1", "new2"}
    assert catalog.partition_location(EVENTS, values).rstrip("/").endswith("compacted/run1")


def test_files_rewritten_in_place_are_seen_after_registering(spark, catalog, database, tmp_path):
    values = {"sourceid": "web", "dt": "2020-01-01"}
    folder = tmp_path / "events" / partition_dir(values)
    loc = write_partition(spark, folder, [event_row("a", utc(2020, 1, 1), {})])
    catalog.ensure_table(EVENTS, f"file://{tmp_path}/events")
    catalog.register_partitions(EVENTS, [Partition(values, loc)])
    assert set(rows_by_id(spark, f"{database}.events")) == {"a"}

    write_partition(spark, folder, [event_row("b", utc(2020, 1, 1), {}), event_row("c", utc(2020, 1, 1), {})])
    result = catalog.register_partitions(EVENTS, [Partition(values, loc)])

    assert result.unchanged == 1
    assert set(rows_by_id(spark, f"{database}.events")) == {"b", "c"}


def test_list_and_drop_partitions(spark, catalog, tmp_path):
    assert catalog.list_partitions(MESSAGE_TYPE_COUNTS_DAILY) == []
    catalog.ensure_table(MESSAGE_TYPE_COUNTS_DAILY, f"file://{tmp_path}/counts")
    wanted = [Partition({"sourceid": s, "dt": "2020-01-01"}, f"file://{tmp_path}/counts/sourceid={s}/dt=2020-01-01")
              for s in ("a", "b'quote")]
    catalog.register_partitions(MESSAGE_TYPE_COUNTS_DAILY, wanted)

    listed = {p.values["sourceid"]: p.location for p in catalog.list_partitions(MESSAGE_TYPE_COUNTS_DAILY)}
    assert set(listed) == {"a", "b'quote"}
    assert listed["a"].endswith("/counts/sourceid=a/dt=2020-01-01")

    catalog.drop_partitions(MESSAGE_TYPE_COUNTS_DAILY, [wanted[0].values, {"sourceid": "zz", "dt": "2020-01-01"}])
    assert [p.values["sourceid"] for p in catalog.list_partitions(MESSAGE_TYPE_COUNTS_DAILY)] == ["b'quote"]
    assert catalog.partition_location(MESSAGE_TYPE_COUNTS_DAILY, wanted[0].values) is None


def test_list_partitions_of_some_sources_and_days(spark, catalog, tmp_path):
    root = f"file://{tmp_path}/counts"
    catalog.ensure_table(MESSAGE_TYPE_COUNTS_DAILY, root)
    catalog.register_partitions(MESSAGE_TYPE_COUNTS_DAILY, [
        Partition({"sourceid": s, "dt": d}, f"{root}/sourceid={s}/dt={d}")
        for s in ("a", "b'quote", "c") for d in ("2020-01-01", "2020-01-02", "2020-01-03")])

    def listed(sources, days):
        got = catalog.list_partitions(MESSAGE_TYPE_COUNTS_DAILY, sources, days)
        return sorted((p.values["sourceid"], p.values["dt"]) for p in got)

    assert listed(["b'quote"], ["2020-01-02"]) == [("b'quote", "2020-01-02")]
    assert listed(["a", "c"], ["2020-01-01", "2020-01-03"]) == [
        ("a", "2020-01-01"), ("a", "2020-01-03"), ("c", "2020-01-01"), ("c", "2020-01-03")]
    assert listed(None, ["2020-01-02"]) == [(s, "2020-01-02") for s in ("a", "b'quote", "c")]
    assert listed(["nope"], None) == [] and listed([], None) == []
    assert len(listed(None, None)) == 9


def test_when_the_metastore_refuses_the_second_statement_the_error_says_which_are_registered(spark, catalog, tmp_path):
    from lakelib.errors import PartialRegistrationError

    root = f"file://{tmp_path}/counts"
    catalog.ensure_table(MESSAGE_TYPE_COUNTS_DAILY, root)
    wanted = [Partition({"sourceid": f"s{i:03d}", "dt": "2020-02-01"}, f"{root}/sourceid=s{i:03d}/dt=2020-02-01")
              for i in range(100)]
    # The 101st partition (second ALTER TABLE ... ADD statement) has a location no file system serves.
    wanted.append(Partition({"sourceid": "zz", "dt": "2020-02-01"}, "nofs://nowhere/zz"))

    with pytest.raises(PartialRegistrationError) as info:
        catalog.register_partitions(MESSAGE_TYPE_COUNTS_DAILY, wanted)

    assert str(info.value).endswith(f"100 of 101 partitions of {catalog.database}.message_type_counts_daily are "
                                    "registered, 1 are not (the run report lists which): rerun the job to register "
                                    "the rest")
    assert info.value.not_registered == [{"sourceid": "zz", "dt": "2020-02-01"}]
    assert len(catalog.list_partitions(MESSAGE_TYPE_COUNTS_DAILY)) == 100


def test_a_column_of_another_type_is_refused(spark, catalog, database, tmp_path):
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
    create = (f"CREATE TABLE {database}.message_type_counts_daily (type string, message_count string) "
              f"PARTITIONED BY (sourceid string, dt string) STORED AS PARQUET LOCATION 'file://{tmp_path}/c'")
    spark.sql(create)   # someone else's table: not lakelib's mark, not lakelib's columns
    with pytest.raises(CatalogError, match=r"message_type_counts_daily was not created by lakelib \(its column\(s\) "
                                           r"message_count are not lakelib's\)"):
        catalog.ensure_table(MESSAGE_TYPE_COUNTS_DAILY, f"file://{tmp_path}/c")
    spark.sql(f"DROP TABLE {database}.message_type_counts_daily")
    spark.sql(create + " TBLPROPERTIES ('lakelib.managed'='true')")   # lakelib's, narrowed by hand
    with pytest.raises(CatalogError, match=r"message_type_counts_daily has column message_count as string"):
        catalog.ensure_table(MESSAGE_TYPE_COUNTS_DAILY, f"file://{tmp_path}/c")


def test_ensure_tables_leaves_up_to_date_tables_alone_and_brings_the_others_to_lakelibs_definition(
        spark, catalog, database, tmp_path, monkeypatch):
    from dataclasses import replace

    from lakelib.schema import MESSAGE_TYPE_COUNTS_YEARLY, Column

    daily, yearly = f"file://{tmp_path}/daily", f"file://{tmp_path}/yearly"
    catalog.ensure_tables([(MESSAGE_TYPE_COUNTS_DAILY, daily)])
    catalog.ensure_tables([(EVENTS, f"file://{tmp_path}/events")])
    slow: list[str] = []
    ensure_table = catalog.ensure_table
    monkeypatch.setattr(catalog, "ensure_table", lambda t, loc: (slow.append(t.name), ensure_table(t, loc)))
    grown = replace(MESSAGE_TYPE_COUNTS_DAILY, columns=(*MESSAGE_TYPE_COUNTS_DAILY.columns, Column("note", "string")))
    catalog.ensure_tables([(EVENTS, f"file://{tmp_path}/events"), (grown, daily), (MESSAGE_TYPE_COUNTS_YEARLY, yearly)])
    assert slow == ["message_type_counts_daily", "message_type_counts_yearly"]   # events was up to date
    assert [c.name for c in spark.catalog.listColumns(f"{database}.message_type_counts_daily")
            if not c.isPartition] == [*MESSAGE_TYPE_COUNTS_DAILY.column_names, "note"]
    assert spark.catalog.tableExists(f"{database}.message_type_counts_yearly")
    slow.clear()
    catalog.ensure_tables([(grown, f"file://{tmp_path}/moved"), (MESSAGE_TYPE_COUNTS_YEARLY, yearly)])
    assert slow == ["message_type_counts_daily"]   # another location
    assert "moved" in spark.sql(f"DESCRIBE FORMATTED {database}.message_type_counts_daily").where(
        "col_name = 'Location'").first()["data_type"]


def test_open_catalog_picks_the_spark_backend(spark, tmp_path):
    config = parse_config({
        "lake": {"raw": str(tmp_path / "raw"), "tables": str(tmp_path / "t"), "quarantine": str(tmp_path / "q"),
                 "reports": str(tmp_path / "r")},
        "catalog": {"kind": "spark", "database": "seg"},
    })
    catalog = open_catalog(config, spark)
    assert isinstance(catalog, SparkCatalog) and catalog.database == "seg"
    with pytest.raises(CatalogError, match="SparkSession"):
        open_catalog(config)
