"""Typed tables under hostile-yet-ordinary input: widenings that are all or nothing, names unique for good,
tables lakelib did not create left alone."""
from __future__ import annotations

import json
import uuid

import pytest

from tests.test_event_tables import event, run, write_config, write_events

#: property -> (day 1's text, day 2's text, day 1's type, the wider type): every widening docs/typed-tables.md allows.
WIDENINGS = {
    "coupon": ("false", "SAVE10", "boolean", "string"),
    "count": ("12", "twelve", "bigint", "string"),
    "ratio": ("12.5", "n/a", "double", "string"),
    "due": ("2020-01-02T03:04:05Z", "soon", "timestamp", "string"),
    "amount": ("12", "12.5", "bigint", "double"),
}


def day_of(day: str, which: int, n: int = 2, event_name: str = "Coupon Applied", **extra):
    props = {k: v[which] for k, v in WIDENINGS.items()}
    return [event(f"c{day[-2:]}{i}{event_name[:3]}", "track", day, event=event_name, userid=f"u{i}",
                  properties={**props, **extra}) for i in range(n)]


def two_days():
    return day_of("2020-03-01", 0) + day_of("2020-03-02", 1)


def hive_client_conf(spark):
    return spark._jsparkSession.sharedState().externalCatalog().unwrapped().client().conf()


def test_every_widening_on_the_spark_metastore_rewrites_older_partitions_and_reads_back(spark, tmp_path):
    db = f"tw_{uuid.uuid4().hex[:8]}"
    write_config(tmp_path, f"{{kind: spark, database: {db}}}")
    write_events(spark, tmp_path, two_days())
    assert run(tmp_path, "--date", "2020-03-01")[0] == 0
    assert {k: v for k, v in spark.table(f"{db}.coupon_applied").dtypes if k in WIDENINGS} == {
        k: v[2] for k, v in WIDENINGS.items()}

    code, report = run(tmp_path, "--date", "2020-03-02")
    assert code == 0, report.get("error")
    assert sorted((w["column"], w["from"], w["to"], w["partitions_rewritten"]) for w in report["widened"]) == sorted(
        (k, v[2], v[3], 1) for k, v in WIDENINGS.items())
    spark.catalog.refreshTable(f"{db}.coupon_applied")
    table = spark.table(f"{db}.coupon_applied")
    assert {k: v for k, v in table.dtypes if k in WIDENINGS} == {k: v[3] for k, v in WIDENINGS.items()}
    got = {(r["dt"], r["coupon"], r["count"], r["ratio"], r["due"], r["amount"]) for r in table.collect()}
    assert got == {("2020-03-01", "false", "12", "12.5", "2020-01-02T03:04:05Z", 12.0),
                   ("2020-03-02", "SAVE10", "twelve", "n/a", "soon", 12.5)}
    code, again = run(tmp_path, "--date", "2020-03-01", "--end-date", "2020-03-02")
    assert code == 0 and again["widened"] == []


def test_a_widening_the_metastore_refuses_publishes_nothing_and_says_what_to_set(spark, tmp_path, capsys):
    db = f"tw_{uuid.uuid4().hex[:8]}"
    write_config(tmp_path, f"{{kind: spark, database: {db}}}")
    write_events(spark, tmp_path, two_days())
    assert run(tmp_path, "--date", "2020-03-01")[0] == 0
    registry = (tmp_path / "tables" / "_lakelib" / "event_tables.json").read_text()
    before = {t: sorted(tuple(r) for r in spark.table(f"{db}.{t}").collect()) for t in ("coupon_applied", "tracks")}
    capsys.readouterr()

    conf = hive_client_conf(spark)   # a remote metastore with Hive's default: boolean -> string refused
    conf.set("hive.metastore.disallow.incompatible.col.type.changes", "true")
    try:
        code, report = run(tmp_path, "--date", "2020-03-02")
    finally:
        conf.set("hive.metastore.disallow.incompatible.col.type.changes", "false")
    assert code == 1
    error = report["error"]
    assert "refused to widen" in error and "coupon boolean -> string" in error and "\n" not in error
    assert "hive.metastore.disallow.incompatible.col.type.changes=false" in error and "as it was" in error
    assert f"error: {error}" in capsys.readouterr().err.splitlines()[-1]
    # Nothing published: every table (not only the refused one) reads as before, with the old types.
    for name, rows in before.items():
        spark.catalog.refreshTable(f"{db}.{name}")
        assert sorted(tuple(r) for r in spark.table(f"{db}.{name}").collect()) == rows
    assert dict(spark.table(f"{db}.coupon_applied").dtypes)["coupon"] == "boolean"
    assert (tmp_path / "tables" / "_lakelib" / "event_tables.json").read_text() == registry

    code, report = run(tmp_path, "--date", "2020-03-02")     # the metastore fixed: the rerun finishes
    assert code == 0 and len(report["widened"]) == len(WIDENINGS)
    spark.catalog.refreshTable(f"{db}.coupon_applied")
    assert spark.table(f"{db}.coupon_applied").count() == 4


def test_every_widening_on_glue_describes_the_table_and_partitions_and_rewrites_the_files(spark, tmp_path, aws):
    from lakelib.catalog.glue_catalog import glue_client

    write_config(tmp_path, f"{{kind: glue, database: typed, glue: {{region: us-east-1, endpoint_url: '{aws}'}}}}")
    write_events(spark, tmp_path, two_days())
    assert run(tmp_path, "--date", "2020-03-01")[0] == 0
    code, report = run(tmp_path, "--date", "2020-03-02")
    assert code == 0 and len(report["widened"]) == len(WIDENINGS)
    client = glue_client(region="us-east-1", endpoint_url=aws)
    table = client.get_table(DatabaseName="typed", Name="coupon_applied")["Table"]
    wide = {k: v[3] for k, v in WIDENINGS.items()}
    assert {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"] if c["Name"] in wide} == wide
    assert table["Parameters"]["lakelib.managed"] == "true"
    for day in ("2020-03-01", "2020-03-02"):
        descriptor = client.get_partition(DatabaseName="typed", TableName="coupon_applied",
                                          PartitionValues=["web", day])["Partition"]["StorageDescriptor"]
        assert {c["Name"]: c["Type"] for c in descriptor["Columns"] if c["Name"] in wide} == wide
        files = spark.read.parquet(descriptor["Location"])
        assert {k: v for k, v in files.dtypes if k in wide} == wide


# --- names unique for good --------------------------------------------------------------------------------------


def named(day: str, name: str, mid: str, **props):
    return event(mid, "track", day, event=name, properties=props)


def event_tables_of(report) -> dict:
    return report["event_tables"]


def test_an_event_named_like_another_events_fallback_gets_its_own_table_in_one_run_and_across_runs(spark, tmp_path):
    write_config(tmp_path, "{kind: none}")
    one_run = [named("2020-03-01", "Order Completed", "a1"), named("2020-03-01", "order completed", "a2"),
               named("2020-03-01", "Order_completed_05dfd65a", "a3"), named("2020-03-01", "Order_completed_05dfd65a",
                                                                            "a4")]
    write_events(spark, tmp_path, one_run)
    code, report = run(tmp_path, "--date", "2020-03-01")
    assert code == 0, report.get("error")
    tables = event_tables_of(report)
    assert len(set(tables.values())) == 3 and tables["Order Completed"] == "order_completed"
    assert tables["Order_completed_05dfd65a"] == "order_completed_05dfd65a"
    assert tables["order completed"].startswith("order_completed_05dfd65a") and len(tables["order completed"]) > 24
    rows = {name: spark.read.parquet(f"file://{tmp_path}/tables/{table}").count() for name, table in tables.items()}
    assert rows == {"Order Completed": 1, "order completed": 1, "Order_completed_05dfd65a": 2}

    # Across runs: the fallback name arrives first, the event whose fallback it is arrives later.
    other = tmp_path / "other"
    other.mkdir()
    write_config(other, "{kind: none}")
    write_events(spark, other, [named("2020-03-01", "Order Completed", "b1"),
                                named("2020-03-01", "Order_completed_05dfd65a", "b2"),
                                named("2020-03-02", "order completed", "b3")])
    assert run(other, "--date", "2020-03-01")[0] == 0
    code, later = run(other, "--date", "2020-03-02")
    assert code == 0, later.get("error")
    assert later["event_tables"]["order completed"] not in ("order_completed", "order_completed_05dfd65a")
    registry = json.loads((other / "tables" / "_lakelib" / "event_tables.json").read_text())["tables"]
    events = [t["event"] for t in registry.values() if t["event"] is not None]
    assert sorted(events) == sorted({"Order Completed", "Order_completed_05dfd65a", "order completed"})


def test_a_column_named_like_another_columns_fallback_stays_its_own_column(spark, tmp_path):
    db = f"tn_{uuid.uuid4().hex[:8]}"
    write_config(tmp_path, f"{{kind: spark, database: {db}}}")
    write_events(spark, tmp_path, [
        named("2020-03-01", "Signed Up", "s1", plan="pro", plan_3f39c6a1="x"),
        named("2020-03-02", "Signed Up", "s2", Plan="PRO")])
    assert run(tmp_path, "--date", "2020-03-01")[0] == 0
    code, report = run(tmp_path, "--date", "2020-03-02")
    assert code == 0, report.get("error")
    assert run(tmp_path, "--date", "2020-03-01", "--end-date", "2020-03-02")[0] == 0   # every later run still works
    spark.catalog.refreshTable(f"{db}.signed_up")
    table = spark.table(f"{db}.signed_up")
    plan_columns = [c for c in table.columns if c.lower().startswith("plan")]
    assert len(plan_columns) == len(set(plan_columns)) == 3
    got = {r["messageid"]: {c: r[c] for c in plan_columns if r[c] is not None} for r in table.collect()}
    assert got["s1"] == {"plan": "pro", "plan_3f39c6a1": "x"}
    assert list(got["s2"].values()) == ["PRO"] and list(got["s2"]) not in (["plan"], ["plan_3f39c6a1"])


def test_a_registry_that_gives_a_name_twice_is_refused_with_the_table_named(tmp_path):
    from lakelib.errors import ConfigError
    from lakelib.typed import Registry

    text = json.dumps({"version": 1, "tables": {"signed_up": {"message_type": "track", "event": "Signed Up",
                       "columns": [{"name": "plan_3f39c6a1", "type": "string", "path": ["properties", "plan_3f39c6a1"]},
                                   {"name": "plan_3f39c6a1", "type": "string", "path": ["properties", "Plan"]}]}}})
    with pytest.raises(ConfigError, match="signed_up has column.s. plan_3f39c6a1 twice"):
        Registry.from_json(text)


# --- tables lakelib did not create --------------------------------------------------------------------------------


def test_a_glue_table_someone_else_made_is_left_alone_and_the_event_named_otherwise(spark, tmp_path, aws):
    from lakelib.catalog.glue_catalog import glue_client

    client = glue_client(region="us-east-1", endpoint_url=aws)
    client.create_database(DatabaseInput={"Name": "typed"})
    theirs = {"Name": "signup", "TableType": "EXTERNAL_TABLE", "Parameters": {"owner": "growth team"},
              "PartitionKeys": [{"Name": "day", "Type": "string"}],
              "StorageDescriptor": {"Columns": [{"Name": "email", "Type": "string"}],
                                    "Location": "s3://growth/signup/"}}
    client.create_table(DatabaseName="typed", TableInput=theirs)
    write_config(tmp_path, f"{{kind: glue, database: typed, glue: {{region: us-east-1, endpoint_url: '{aws}'}}}}")
    write_events(spark, tmp_path, [named("2020-03-01", "Signup", "g1", plan="pro")])
    code, report = run(tmp_path, "--date", "2020-03-01")
    assert code == 0, report.get("error")
    name = report["event_tables"]["Signup"]
    assert name.startswith("signup_") and name in report["new_tables"]
    after = client.get_table(DatabaseName="typed", Name="signup")["Table"]
    assert after["StorageDescriptor"]["Columns"] == theirs["StorageDescriptor"]["Columns"]
    assert after["StorageDescriptor"]["Location"] == "s3://growth/signup/" and after["Parameters"] == theirs["Parameters"]
    ours = client.get_table(DatabaseName="typed", Name=name)["Table"]
    assert ours["Parameters"]["lakelib.managed"] == "true"

    # A lakelib table name held by someone else's table: the run fails naming it, and publishes nothing.
    client.delete_table(DatabaseName="typed", Name="tracks")
    client.create_table(DatabaseName="typed", TableInput=dict(theirs, Name="tracks"))
    code, report = run(tmp_path, "--date", "2020-03-01")
    assert code == 1
    assert "table typed.tracks was not created by lakelib" in report["error"] and "s3://growth/signup" in report["error"]
    assert client.get_table(DatabaseName="typed", Name="tracks")["Table"]["Parameters"] == theirs["Parameters"]


def test_a_spark_table_someone_else_made_is_left_alone_and_an_older_lakelib_table_is_adopted(spark, tmp_path):
    db = f"tf_{uuid.uuid4().hex[:8]}"
    write_config(tmp_path, f"{{kind: spark, database: {db}}}")
    spark.sql(f"CREATE DATABASE {db}")
    spark.sql(f"CREATE TABLE {db}.signup (email string) USING parquet LOCATION 'file://{tmp_path}/theirs'")
    write_events(spark, tmp_path, [named("2020-03-01", "Signup", "g1", plan="pro"),
                                   event("p1", "page", "2020-03-01", name="Home", properties={"path": "/"})])
    code, report = run(tmp_path, "--date", "2020-03-01")
    assert code == 0, report.get("error")
    assert report["event_tables"]["Signup"].startswith("signup_")
    assert spark.table(f"{db}.signup").columns == ["email"]

    # A table an older lakelib made (no mark, lakelib's location and columns) is adopted and marked.
    spark.sql(f"ALTER TABLE {db}.pages UNSET TBLPROPERTIES ('lakelib.managed')")
    assert run(tmp_path, "--date", "2020-03-01")[0] == 0
    props = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {db}.pages").collect()}
    assert props["lakelib.managed"] == "true"
    assert spark.table(f"{db}.pages").count() == 1


def test_names_refuse_every_taken_fallback():
    from lakelib.typed import column_name, event_table_name

    taken = {"order_completed"}
    for _ in range(5):
        name = event_table_name("order completed", taken=taken)
        assert name not in taken and name.startswith("order_completed_")
        taken.add(name)
    cols = {"plan"}
    for _ in range(5):
        col = column_name(["properties", "Plan"], taken=cols)
        assert col not in cols
        cols.add(col)
    assert len(event_table_name("x" * 300, taken={"x" * 119 + "_" + "0" * 8})) <= 128


