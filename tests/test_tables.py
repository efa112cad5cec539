"""lakelib.tables: finding partitions (catalog first, else default folders), reading them pruned, writing them
through the publish protocol (the protocol itself: tests/test_publish.py)."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Mapping, Sequence

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakelib.catalog.base import Catalog, NoCatalog, Partition, RegisterResult, selects
from lakelib.config import load_config
from lakelib.schema import EVENTS, MESSAGE_TYPE_COUNTS_DAILY, Table
from lakelib.storage import Storage
from lakelib.tables import Tables, find_partitions, partition_location, read_partitions

DAILY = MESSAGE_TYPE_COUNTS_DAILY
DAILY_ROWS = T.StructType(
    [
        T.StructField("type", T.StringType()),
        T.StructField("message_count", T.LongType()),
        T.StructField("sourceid", T.StringType()),
        T.StructField("dt", T.StringType()),
    ]
)


class MemoryCatalog(Catalog):
    """A catalog kept in a dict: what a metastore would answer, for testing the lookups around it."""

    kind = "memory"

    def __init__(self) -> None:
        self.database = "test"
        self.tables: dict[str, str] = {}
        self.parts: dict[tuple[str, tuple[str, ...]], str] = {}
        self.calls: list[str] = []

    def ensure_table(self, table: Table, location: str) -> None:
        self.calls.append("ensure_table")
        self.tables.setdefault(table.name, location)

    def register_partitions(self, table: Table, partitions: Sequence[Partition]) -> RegisterResult:
        self.calls.append("register_partitions")
        assert table.name in self.tables, "register_partitions before ensure_table"
        result = RegisterResult()
        for p in partitions:
            key = (table.name, tuple(p.values.values()))
            if key not in self.parts:
                result.created.append(p.values)
            elif self.parts[key] != p.location:
                result.repointed.append(p.values)
            else:
                result.unchanged += 1
            self.parts[key] = p.location
        return result

    def partition_location(self, table: Table, values: Mapping[str, str]) -> str | None:
        return self.parts.get((table.name, tuple(values.values())))

    def list_partitions(self, table: Table, sources=None, days=None) -> list[Partition]:
        self.calls.append(("list_partitions", table.name, sources, days))
        return [
            Partition(dict(zip(table.partition_keys, v)), loc) for (name, v), loc in self.parts.items()
            if name == table.name and selects(table, dict(zip(table.partition_keys, v)), sources, days)
        ]

    def drop_partitions(self, table: Table, values: Sequence[Mapping[str, str]]) -> None:
        for v in values:
            self.parts.pop((table.name, tuple(v.values())), None)


@pytest.fixture
def root(tmp_path: Path) -> str:
    return f"file://{tmp_path}/tables"


def daily_df(spark, rows):
    return spark.createDataFrame(rows, DAILY_ROWS)


def write_partitions(df, table: Table, root: str) -> list[Partition]:
    """Test data in a table's default folders (what catalog.kind none and older lakes hold), one file each."""
    keys = list(table.partition_keys)
    df.repartition(*keys).write.mode("overwrite").option("partitionOverwriteMode", "dynamic").partitionBy(
        *keys).parquet(f"{root}/{table.name}")
    values = sorted({tuple(r) for r in df.select(*keys).distinct().collect()})
    return [Partition(dict(zip(keys, v)), partition_location(root, table, dict(zip(keys, v)))) for v in values]


def register(catalog: Catalog, table: Table, root: str, parts: Sequence[Partition]) -> RegisterResult:
    catalog.ensure_table(table, f"{root}/{table.name}")
    return catalog.register_partitions(table, parts)


def open_test_tables(spark, tmp_path: Path, catalog: Catalog, run_id: str) -> Tables:
    path = tmp_path / "lake.yaml"
    path.write_text(f"lake: {{raw: {tmp_path}/raw, tables: {tmp_path}/tables, quarantine: {tmp_path}/q, "
                    f"reports: {tmp_path}/r}}\ncatalog: {{kind: none}}\n")
    return Tables(spark, load_config(path), run_id, Storage(spark), catalog)


def test_partition_location_is_the_hive_folder_in_key_order():
    assert partition_location("s3://b/t", DAILY, {"dt": "2020-01-02", "sourceid": "web"}) == (
        "s3://b/t/message_type_counts_daily/sourceid=web/dt=2020-01-02"
    )


def test_write_replaces_only_the_partitions_written_and_returns_them(spark, root, tmp_path):
    first = daily_df(spark, [("track", 3, "web", "2020-01-01"), ("page", 1, "web", "2020-01-02"),
                             ("track", 7, "ios", "2020-01-01")])
    tables = open_test_tables(spark, tmp_path, NoCatalog(), "run-1")
    keys = {("ios", "2020-01-01"): 1, ("web", "2020-01-01"): 1, ("web", "2020-01-02"): 1}
    written = tables.write(DAILY, first, keys, one_file_per_partition=True)
    assert [(p.values, p.version) for p in written] == [
        ({"sourceid": "ios", "dt": "2020-01-01"}, f"{root}/message_type_counts_daily/sourceid=ios/dt=2020-01-01"),
        ({"sourceid": "web", "dt": "2020-01-01"}, f"{root}/message_type_counts_daily/sourceid=web/dt=2020-01-01"),
        ({"sourceid": "web", "dt": "2020-01-02"}, f"{root}/message_type_counts_daily/sourceid=web/dt=2020-01-02"),
    ]
    assert [p.files for p in written] == [1, 1, 1]  # one file per partition

    again = open_test_tables(spark, tmp_path, NoCatalog(), "run-2").write(
        DAILY, daily_df(spark, [("identify", 5, "web", "2020-01-01")]), {("web", "2020-01-01"): 1})
    assert [p.values for p in again] == [{"sourceid": "web", "dt": "2020-01-01"}]
    storage = Storage(spark)

    found = find_partitions(DAILY, root, storage, NoCatalog())
    got = read_partitions(spark, DAILY, found, ["type", "message_count"])
    expected = daily_df(spark, [("identify", 5, "web", "2020-01-01"), ("page", 1, "web", "2020-01-02"),
                                ("track", 7, "ios", "2020-01-01")])
    assert_df_equality(got, expected, ignore_row_order=True)


def test_find_filters_sources_and_days_and_skips_folders_without_data(spark, root, tmp_path):
    rows = [("track", 1, s, d) for s in ("a", "b", "c") for d in ("2020-01-01", "2020-01-02")]
    write_partitions(daily_df(spark, rows), DAILY, root)
    empty = tmp_path / "tables" / "message_type_counts_daily" / "sourceid=a" / "dt=2020-01-03"
    empty.mkdir()
    (empty / "_SUCCESS").write_text("")
    storage = Storage(spark)

    every = find_partitions(DAILY, root, storage, NoCatalog())
    assert [tuple(p.values.values()) for p in every] == [
        (s, d) for s in ("a", "b", "c") for d in ("2020-01-01", "2020-01-02")
    ]
    some = find_partitions(DAILY, root, storage, NoCatalog(), sources=["c", "a", "zzz"],
                           days=["2020-01-02", "2020-01-03", "2020-01-04"])
    assert [p.values for p in some] == [{"sourceid": "a", "dt": "2020-01-02"}, {"sourceid": "c", "dt": "2020-01-02"}]
    assert find_partitions(EVENTS, root, storage, NoCatalog()) == []
    skipping = find_partitions(DAILY, root, storage, NoCatalog(), sources=["a", "b"],
                               skip=[{"dt": "2020-01-01", "sourceid": "a"}])
    assert [tuple(p.values.values()) for p in skipping] == [
        ("a", "2020-01-02"), ("b", "2020-01-01"), ("b", "2020-01-02")
    ]


def test_the_catalog_location_wins_over_the_default_folder(spark, root, tmp_path):
    write_partitions(daily_df(spark, [("track", 1, "web", "2020-01-01"), ("track", 2, "web", "2020-01-02")]),
                     DAILY, root)
    # A compaction rewrote web/2020-01-01 elsewhere and re-pointed the catalog; the old folder still holds files.
    moved = f"file://{tmp_path}/compacted/web-2020-01-01-v2"
    daily_df(spark, [("track", 100, "x", "x")]).select("type", "message_count").write.parquet(moved)
    catalog = MemoryCatalog()
    register(catalog, DAILY, root, [Partition({"sourceid": "web", "dt": "2020-01-01"}, moved)])

    found = find_partitions(DAILY, root, Storage(spark), catalog, sources=["web"])
    assert catalog.calls[-1] == ("list_partitions", DAILY.name, {"web"}, None)  # the metastore filters
    assert [(p.values["dt"], p.location) for p in found] == [
        ("2020-01-01", moved),
        ("2020-01-02", f"{root}/message_type_counts_daily/sourceid=web/dt=2020-01-02"),
    ]
    got = read_partitions(spark, DAILY, found, ["type", "message_count"])
    expected = daily_df(spark, [("track", 100, "web", "2020-01-01"), ("track", 2, "web", "2020-01-02")])
    assert_df_equality(got, expected, ignore_row_order=True)


def test_read_prunes_columns_and_keeps_keys_as_strings(spark, root):
    rows = [("m1", "track", "123", "2020-01-01"), ("m2", "page", "123", "2020-01-02")]
    schema = T.StructType([T.StructField(n, T.StringType()) for n in ("messageid", "type", "sourceid", "dt")])
    events = spark.createDataFrame(rows, schema)
    for column in EVENTS.columns[2:]:
        events = events.withColumn(column.name, F.lit(None).cast(column.type))
    events.write.partitionBy("sourceid", "dt").parquet(f"{root}/events")

    found = find_partitions(EVENTS, root, Storage(spark), NoCatalog(), days=["2020-01-02"])
    got = read_partitions(spark, EVENTS, found, ["type"])
    assert got.schema == T.StructType([T.StructField(n, T.StringType()) for n in ("type", "sourceid", "dt")])
    assert [tuple(r) for r in got.collect()] == [("page", "123", "2020-01-02")]
    plan = got._jdf.queryExecution().executedPlan().toString()
    assert "ReadSchema: struct<type:string>" in plan


def test_read_of_no_partitions_is_empty_with_the_schema(spark):
    got = read_partitions(spark, DAILY, [], ["message_count"])
    assert got.schema.fieldNames() == ["message_count", "sourceid", "dt"]
    assert got.collect() == []


def test_publishing_creates_the_table_first_then_registers_the_version_in_one_call(spark, root, tmp_path):
    catalog = MemoryCatalog()
    tables = open_test_tables(spark, tmp_path, catalog, "run-1")
    done = tables.write(DAILY, daily_df(spark, [("track", 1, "web", "2020-01-01"), ("page", 2, "ios", "2020-01-01")]),
                        {("web", "2020-01-01"): 1, ("ios", "2020-01-01"): 1})
    calls = [c if isinstance(c, str) else c[0] for c in catalog.calls]
    assert calls == ["ensure_table", "list_partitions", "register_partitions"]  # schemas first, then one registration
    assert catalog.tables == {DAILY.name: f"{root}/message_type_counts_daily"}
    assert sorted(catalog.parts.values()) == sorted(p.version for p in done)
    assert all(p.version.startswith(f"{root}/_versions/message_type_counts_daily/") for p in done)


def test_with_the_spark_catalog_registered_and_relocated_partitions_are_read_where_it_says(spark, root, tmp_path):
    from lakelib.catalog.spark_catalog import SparkCatalog

    catalog = SparkCatalog(spark, f"tables_{uuid.uuid4().hex[:8]}")
    written = write_partitions(daily_df(spark, [("track", 1, "web", "2020-01-01"), ("page", 2, "web", "2020-01-02")]),
                               DAILY, root)
    register(catalog, DAILY, root, written)
    assert [p.values for p in find_partitions(DAILY, root, Storage(spark), catalog)] == [p.values for p in written]

    # An unregistered partition on disk is found too; a registered one moved elsewhere is read at its new place.
    write_partitions(daily_df(spark, [("alias", 3, "web", "2020-01-03")]), DAILY, root)
    moved = f"file://{tmp_path}/elsewhere/part-v2"
    daily_df(spark, [("track", 50, "x", "x")]).select("type", "message_count").write.parquet(moved)
    register(catalog, DAILY, root, [Partition({"sourceid": "web", "dt": "2020-01-01"}, moved)])

    found = find_partitions(DAILY, root, Storage(spark), catalog, sources=["web"])
    assert [p.values["dt"] for p in found] == ["2020-01-01", "2020-01-02", "2020-01-03"]
    got = read_partitions(spark, DAILY, found, ["type", "message_count"])
    expected = daily_df(spark, [("track", 50, "web", "2020-01-01"), ("page", 2, "web", "2020-01-02"),
                                ("alias", 3, "web", "2020-01-03")])
    assert_df_equality(got, expected, ignore_row_order=True)
