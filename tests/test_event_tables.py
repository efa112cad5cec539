"""Typed tables: the naming and typing rules (pure), the flattening (Spark), and the event_tables job end to end."""
from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from jobs.event_tables import main, reconcile, staging_key, staging_key_column
from lakelib.cli import main as cli_main
from lakelib.schema import EVENTS, spark_schema
from lakelib.typed import (
    LARGE_BIGINT,
    Observed,
    Registry,
    TypedColumn,
    TypedTable,
    column_name,
    event_table_name,
    kind_of,
    observe,
    snake_case,
    table_rows,
    typed_rows,
    value_kind,
    widen,
)

TS = datetime(2020, 1, 1, 12, 0, 0)


# --- names -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, snake", [
    ("Order Completed", "order_completed"), ("productId", "product_id"), ("userID", "user_id"),
    ("HTTPServer", "http_server"), ("  Signed--Up! ", "signed_up"), ("v2Plan", "v2_plan"),
    ("already_snake", "already_snake"),
    ("ÉtéSale", "t_sale"), ("!!!", ""),
])
def test_snake_case(text, snake):
    assert snake_case(text) == snake


def test_event_table_names_never_collide_with_the_type_tables_other_lakelib_tables_or_each_other():
    assert event_table_name("Order Completed") == "order_completed"
    for reserved in ("Pages", "events", "Identifies", "message type counts daily"):
        name = event_table_name(reserved)
        assert name != snake_case(reserved) and name.startswith(snake_case(reserved) + "_")
    a = event_table_name("order completed", taken=["order_completed"])
    assert a.startswith("order_completed_") and a == event_table_name("order completed", taken=["order_completed"])
    assert event_table_name("???").startswith("event_") and event_table_name("???") != event_table_name("!!!")
    assert len(event_table_name("x" * 300)) == 128


def test_column_names_flatten_paths_and_keep_clear_of_common_columns():
    assert column_name(["properties", "product", "sku"]) == "product_sku"
    assert column_name(["context", "page", "path"]) == "context_page_path"
    assert column_name(["properties", "userId"]) == "user_id"
    assert column_name(["properties", "userid"]) == "properties_userid"       # a common column
    assert column_name(["traits", "timestamp"]) == "traits_timestamp"
    assert column_name(["properties", "dt"]) == "properties_dt"               # a partition key
    assert column_name(["properties", "context", "ip"]) == "properties_context_ip"  # looks like context
    clash = column_name(["properties", "Plan"], taken=["plan"])
    assert clash.startswith("plan_") and clash != column_name(["properties", "PLAN"], taken=["plan"])


@pytest.mark.parametrize("text, kind", [
    ("true", "boolean"), ("false", "boolean"), ("True", "string"), ("0", "bigint"), ("-12", "bigint"),
    ("9007199254740992", "bigint"),
    ("123456789012345678", "bigint>2^53"), ("1234567890123456789", "string"), ("12.50", "double"), ("1e3", "double"),
    ("007", "string"), ("+1", "string"), ("1.", "string"), ("2020-01-02T03:04:05.123Z", "timestamp"),
    ("2020-01-02", "timestamp"), ("2020-13-02T00:00:00Z", "string"), ("[1,2]", "string"), ("", "string"),
])
def test_kind_of_a_value_text(text, kind):
    assert kind_of(text) == kind


def test_widen_is_a_lattice_bigint_double_string():
    assert widen("bigint", "double") == "double" == widen("double", "bigint")
    for a, b in [("bigint", "string"), ("double", "boolean"), ("timestamp", "bigint"), ("boolean", "bigint")]:
        assert widen(a, b) == "string" == widen(b, a)
    assert widen(None, "boolean") == "boolean" and widen("timestamp", None) == "timestamp"


def test_bigint_and_double_make_double_only_while_every_integer_is_exact_in_a_double():
    assert widen("bigint", LARGE_BIGINT) == LARGE_BIGINT == widen(LARGE_BIGINT, "bigint")
    assert widen(LARGE_BIGINT, "double") == "string" == widen("double", LARGE_BIGINT)
    assert widen(LARGE_BIGINT, "boolean") == "string" and widen(None, LARGE_BIGINT) == LARGE_BIGINT


def test_a_column_of_large_integers_is_bigint_and_a_double_makes_it_string_in_a_run_or_a_later_one():
    path = ["properties", "id"]
    one = Registry().plan([obs("E", path, "bigint", LARGE_BIGINT, "double"), obs("E", ["properties", "n"], "bigint",
                                                                                  "double")])
    cols = {c.name: c.type for c in one.registry.table_for("track", "E").columns}
    assert cols == {"id": "string", "n": "double"}

    first = Registry().plan([obs("E", path, LARGE_BIGINT), obs("E", ["properties", "n"], "bigint")]).registry
    assert [(c.name, c.type, c.large) for c in first.table_for("track", "E").columns] == [
        ("id", "bigint", True), ("n", "bigint", False)]
    again = Registry.from_json(first.to_json())                       # the registry keeps what the column held
    later = again.plan([obs("E", path, "double"), obs("E", ["properties", "n"], "double")])
    assert later.widened == [{"table": "e", "column": "id", "from": "bigint", "to": "string"},
                             {"table": "e", "column": "n", "from": "bigint", "to": "double"}]
    small_then_large = Registry.from_json(again.plan([obs("E", ["properties", "n"], LARGE_BIGINT)]).registry.to_json())
    assert small_then_large.table_for("track", "E").columns[1].large
    assert small_then_large.plan([obs("E", ["properties", "n"], "double")]).widened[0]["to"] == "string"


def test_a_registry_without_the_mark_reads_as_before():
    table = TypedTable("e", "track", "E", [TypedColumn("id", "bigint", ["properties", "id"])])
    text = Registry({"e": table}).to_json()
    assert '"large"' not in text and not Registry.from_json(text).tables["e"].columns[0].large


def test_value_kind_in_spark_agrees_with_kind_of(spark):
    from pyspark.sql import functions as F

    texts = ["9007199254740992", "-9007199254740993", "123456789012345678", "1234567890123456789", "12", "2.5",
             "-0", "999999999999999999"]
    got = spark.createDataFrame([(t,) for t in texts], "v string").select(value_kind(F.col("v"))).collect()
    assert [r[0] for r in got] == [kind_of(t) for t in texts]


def obs(event, path, *kinds, message_type="track"):
    return Observed(message_type, event, tuple(path), frozenset(kinds))


def test_plan_names_deterministically_and_only_grows():
    observed = [
        obs("Order Completed", ["properties", "Plan"], "string"),
        obs("Order Completed", ["properties", "plan"], "string"),
        obs("Order Completed", ["properties", "revenue"], "bigint", "double"),
        obs("order completed", ["properties", "x"], "boolean"),
        obs(None, ["traits", "email"], "string", message_type="identify"),
    ]
    one = Registry().plan(observed, events=["Pages"])
    two = Registry().plan(list(reversed(observed)), events=["Pages"])
    assert one.registry.to_json() == two.registry.to_json()
    reg = one.registry
    assert reg.table_for("track", "Order Completed").name == "order_completed"   # sorts first: keeps the slug
    assert reg.table_for("track", "order completed").name.startswith("order_completed_")
    assert reg.table_for("track", "Pages").name.startswith("pages_")
    cols = {c.name: c.type for c in reg.table_for("track", "Order Completed").columns}
    assert cols["plan"] == "string" and cols["revenue"] == "double"
    assert [c for c in cols if c.startswith("plan_")]                       # 'plan' collided with 'Plan'
    assert reg.tables["identifies"].columns[0].name == "email"

    # A later run: the names stay, a new key is appended, a conflicting value widens, nothing narrows.
    later = Registry.from_json(reg.to_json()).plan([
        obs("order completed", ["properties", "x"], "bigint"),
        obs("Order Completed", ["properties", "revenue"], "bigint"),
        obs("Order Completed", ["properties", "new_key"], "timestamp"),
        obs("Order Completed, again", ["properties", "a"], "bigint"),
    ])
    assert later.registry.table_for("track", "order completed").name == reg.table_for("track", "order completed").name
    assert later.widened == [{"table": reg.table_for("track", "order completed").name, "column": "x",
                              "from": "boolean", "to": "string"}]
    oc = later.registry.table_for("track", "Order Completed")
    assert [c.name for c in oc.columns][-1] == "new_key" and {c.name: c.type for c in oc.columns}["revenue"] == "double"
    assert later.new_tables == ["order_completed_again"]


def test_reconcile_flags_each_table_that_differs():
    got = reconcile({("web", "d1"): {"tracks": 3, "a": 2, "b": 1}}, {("web", "d1"): {"tracks": 3, "a": 2, "b": 2}},
                    {("web", "d1"): {"track": 3}})
    assert got[0]["mismatches"] == [{"table": "b", "expected": 1, "written": 2}]
    assert got[0]["tracks_without_event"] == 0


# --- flattening in Spark -----------------------------------------------------------------------------------------


def event(mid, type_, day="2020-01-01", source="web", **fields):
    row = {c.name: None for c in EVENTS.columns}
    row.update(messageid=mid, type=type_, timestamp=TS, receivedat=TS, **fields)
    return tuple(row[c.name] for c in EVENTS.columns) + (source, day)


def events_df(spark, rows):
    return spark.createDataFrame(rows, spark_schema(EVENTS, with_partitions=True))


def test_typed_rows_flatten_nested_json_to_a_depth_and_route_each_map_to_its_tables(spark):
    ctx = {"library": '{"name":"analytics.js","version":"2.1"}', "page": '{"path":"/a"}'}
    rows = [
        event("t1", "track", event="Order Completed", context=ctx, properties={
            "product": '{"sku":"A-1","dims":{"w":3,"deep":{"x":1}},"tags":["a","b"]}', "revenue": "12.5",
            "dup": '{"a":1,"a":2}', "none": None, "empty": "{}"}),
        event("t2", "track", event=None, properties={"x": "1"}),
        event("i1", "identify", traits={"email": "a@b.c"}, properties={"ignored": "1"}),
        event("p1", "page", name="Home", properties={"title": "Home"}, traits={"ignored": "1"}),
    ]
    got = {(r["_type"], r["_event"], r["messageid"]): r["attrs"] for r in typed_rows(events_df(spark, rows)).collect()}
    sep = "\u001f"

    def keys(attrs):
        return {k.replace(sep, "."): v for k, v in attrs.items()}

    assert set(got) == {("track", None, "t1"), ("track", "Order Completed", "t1"), ("track", None, "t2"),
                        ("identify", None, "i1"), ("page", None, "p1")}
    assert keys(got[("track", None, "t1")]) == {"context.library.name": "analytics.js", "context.library.version": "2.1",
                                                "context.page.path": "/a"}
    assert keys(got[("track", "Order Completed", "t1")]) == {
        "context.library.name": "analytics.js", "context.library.version": "2.1", "context.page.path": "/a",
        "properties.product.sku": "A-1", "properties.product.dims.w": "3",
        "properties.product.dims.deep": '{"x":1}',        # past the depth: JSON text
        "properties.product.tags": '["a","b"]',            # arrays: JSON text
        "properties.revenue": "12.5", "properties.dup.a": "2", "properties.empty": "{}",
    }
    assert keys(got[("track", None, "t2")]) == {}
    assert keys(got[("identify", None, "i1")]) == {"traits.email": "a@b.c"}
    assert keys(got[("page", None, "p1")]) == {"properties.title": "Home"}

    seen = observe(typed_rows(events_df(spark, rows))).collect()
    kinds = {(r["_event"], ".".join(r["path"])): sorted(r["kinds"]) for r in seen}
    assert kinds[("Order Completed", "properties.revenue")] == ["double"]
    assert kinds[("Order Completed", "properties.product.dims.w")] == ["bigint"]
    assert kinds[("Order Completed", "context.library.version")] == ["double"]


def test_table_rows_types_every_value_and_keeps_common_columns(spark):
    rows = [event("t1", "track", event="Signed Up", userid="u1", properties={"n": "3", "ok": "true",
                                                                            "at": "2020-01-02T03:04:05Z"}),
            event("t2", "track", event="Signed Up", properties={"n": "4.5", "ok": "false"})]
    plan = Registry().plan([obs("Signed Up", ["properties", "n"], "bigint", "double"),
                            obs("Signed Up", ["properties", "ok"], "boolean"),
                            obs("Signed Up", ["properties", "at"], "timestamp")])
    table = plan.registry.table_for("track", "Signed Up")
    df = table_rows(typed_rows(events_df(spark, rows)), table)
    assert df.columns == ["messageid", "anonymousid", "userid", "timestamp", "originaltimestamp", "sentat",
                          "receivedat", "event", "at", "n", "ok", "sourceid", "dt"]
    assert dict(df.dtypes)["n"] == "double" and dict(df.dtypes)["ok"] == "boolean"
    got = sorted((r["messageid"], r["userid"], r["n"], r["ok"], r["at"]) for r in df.collect())
    assert got == [("t1", "u1", 3.0, True, datetime(2020, 1, 2, 3, 4, 5)), ("t2", None, 4.5, False, None)]


# --- the job -----------------------------------------------------------------------------------------------------


def write_config(tmp_path: Path, catalog: str) -> Path:
    for name in ("raw", "tables", "quarantine", "reports"):
        (tmp_path / name).mkdir(exist_ok=True)
    (tmp_path / "lake.yaml").write_text(
        "lake:\n" + "".join(f"  {n}: {tmp_path / n}\n" for n in ("raw", "tables", "quarantine", "reports"))
        + f"catalog: {catalog}\n", encoding="utf-8")
    return tmp_path / "lake.yaml"


def write_events(spark, lake: Path, rows) -> None:
    events_df(spark, rows).write.mode("overwrite").option("partitionOverwriteMode", "dynamic").partitionBy(
        "sourceid", "dt").parquet(f"file://{lake}/tables/events")


def run(lake: Path, *args: str) -> tuple[int, dict]:
    report = lake / f"report-{uuid.uuid4().hex[:6]}.json"
    code = main(["--config", str(lake / "lake.yaml"), "--report", str(report), *args])
    return code, json.loads(report.read_text()) if report.exists() else {}


def day_events(day: str, amount: str):
    """A day of one source: three track event names, identifies with traits, pages, one of each other type."""
    ctx = {"library": '{"name":"analytics.js","version":"4.1.0"}', "page": '{"path":"/cart"}', "ip": "1.2.3.4"}
    d = day[-2:]
    return [
        event(f"oc{d}a", "track", day, event="Order Completed", userid="u1", context=ctx,
              properties={"amount": amount, "product": '{"sku":"A-1","price":10}', "coupon": None}),
        event(f"oc{d}b", "track", day, event="Order Completed", userid="u2", context=ctx,
              properties={"amount": amount, "product": '{"sku":"B-2","price":12}'}),
        event(f"su{d}", "track", day, event="Signed Up", context=ctx, properties={"plan": "pro", "Plan": "PRO"}),
        event(f"pv{d}", "track", day, event="Product Viewed", properties={"id": "7", "tags": '["x"]'}),
        event(f"nn{d}", "track", day, event=None, context=ctx),
        event(f"id{d}", "identify", day, userid="u1", context=ctx,
              traits={"email": "a@b.c", "age": "41", "vip": "true", "address": '{"city":"Oslo"}'}),
        event(f"pg{d}", "page", day, name="Cart", context=ctx, properties={"path": "/cart", "title": "Cart"}),
        event(f"sc{d}", "screen", day, name="Home", properties={"userid": "x"}),
        event(f"gr{d}", "group", day, groupid="g1", traits={"name": "Acme", "employees": "20"}),
        event(f"al{d}", "alias", day, previousid="anon-1", userid="u1"),
    ]


def test_typed_tables_across_days_widen_report_and_register(spark, tmp_path, capsys):
    database = f"tt_{uuid.uuid4().hex[:8]}"
    write_config(tmp_path, f"{{kind: spark, database: {database}}}")
    days = {"2020-03-01": "12", "2020-03-02": "12.5", "2020-03-03": "twelve"}   # integer -> float -> text
    write_events(spark, tmp_path, [r for day, amount in days.items() for r in day_events(day, amount)])

    reports = []
    for day in days:
        code, report = run(tmp_path, "--date", day)
        assert code == 0, report.get("error")
        reports.append(report)

    db = database
    # Every event once in its type's table, track events also in their event's table.
    counts = {t: spark.table(f"{db}.{t}").count() for t in
              ("tracks", "identifies", "pages", "screens", "groups", "aliases", "order_completed", "signed_up",
               "product_viewed")}
    assert counts == {"tracks": 15, "identifies": 3, "pages": 3, "screens": 3, "groups": 3, "aliases": 3,
                      "order_completed": 6, "signed_up": 3, "product_viewed": 3}
    oc = spark.table(f"{db}.order_completed")
    assert dict(oc.dtypes)["amount"] == "string" and dict(oc.dtypes)["product_price"] == "bigint"
    assert sorted((r["dt"], r["amount"]) for r in oc.select("dt", "amount").distinct().collect()) == [
        ("2020-03-01", "12"), ("2020-03-02", "12.5"), ("2020-03-03", "twelve")]
    assert {r["context_library_name"] for r in oc.collect()} == {"analytics.js"}
    assert "context_page_path" in spark.table(f"{db}.tracks").columns
    assert "amount" not in spark.table(f"{db}.tracks").columns                     # tracks: no properties
    ident = dict(spark.table(f"{db}.identifies").dtypes)
    assert (ident["email"], ident["age"], ident["vip"], ident["address_city"]) == ("string", "bigint", "boolean",
                                                                                   "string")
    assert dict(spark.table(f"{db}.screens").dtypes)["properties_userid"] == "string"
    su = spark.table(f"{db}.signed_up").columns
    assert "plan" in su and [c for c in su if c.startswith("plan_")]
    assert spark.table(f"{db}.product_viewed").select("tags").first()[0] == '["x"]'

    # The widening is reported (bigint -> double, then double -> string) and older partitions were rewritten.
    assert reports[0]["widened"] == []
    assert [(w["column"], w["from"], w["to"], w["partitions_rewritten"]) for r in reports[1:] for w in r["widened"]] \
        == [("amount", "bigint", "double", 1), ("amount", "double", "string", 2)]
    assert reports[2]["rewritten_partitions"] == [
        {"sourceid": "web", "dt": d, "tables": {"order_completed": 2}, "mismatches": []}
        for d in ("2020-03-01", "2020-03-02")]
    # The catalog describes the widened column.
    described = {r["col_name"]: r["data_type"] for r in spark.sql(f"DESCRIBE {db}.order_completed").collect()}
    assert described["amount"] == "string"

    # lake ddl prints the typed table's Athena DDL from the registry, widened type included.
    assert cli_main(["ddl", "order_completed", "--config", str(tmp_path / "lake.yaml")]) == 0
    ddl = capsys.readouterr().out
    columns = [line.strip().rstrip(",") for line in ddl.split("(\n", 1)[1].split("\n)", 1)[0].splitlines()]
    assert f"`{db}`.`order_completed`" in ddl
    assert columns[:8] == [f"`{c}` {t}" for c, t in spark.table(f"{db}.order_completed").dtypes[:8]]
    assert "`amount` string" in columns and "`product_price` bigint" in columns and "`product_sku` string" in columns
    assert "PARTITIONED BY (`sourceid` string, `dt` string)" in ddl
    assert f"LOCATION 'file://{tmp_path}/tables/order_completed'" in ddl

    # The report reconciles every table with events, per partition.
    part = reports[2]["partitions"][0]
    assert part["mismatches"] == [] and part["events"] == 10 and part["tracks_without_event"] == 1
    assert part["tables"]["order_completed"] == 2 and part["tables"]["tracks"] == 5
    assert reports[2]["totals"]["rows_written"] == sum(part["tables"].values()) == 14

    # A rerun of the three days changes nothing; then a day whose events changed loses its stale event table.
    before = sorted(tuple(r) for r in spark.table(f"{db}.order_completed").collect())
    code, again = run(tmp_path, "--date", "2020-03-01", "--end-date", "2020-03-03")
    assert code == 0 and again["widened"] == [] and again["new_tables"] == []
    spark.catalog.refreshTable(f"{db}.order_completed")
    assert sorted(tuple(r) for r in spark.table(f"{db}.order_completed").collect()) == before

    write_events(spark, tmp_path, [r for r in day_events("2020-03-03", "x") if not r[0].startswith("pv")])
    code, rerun = run(tmp_path, "--date", "2020-03-03")
    assert code == 0
    assert rerun["stale_partitions_removed"] == [{"table": "product_viewed", "sourceid": "web", "dt": "2020-03-03"}]
    spark.catalog.refreshTable(f"{db}.product_viewed")
    assert spark.table(f"{db}.product_viewed").count() == 2


def test_no_events_is_nothing_to_do_and_date_is_required(tmp_path, capsys, monkeypatch):
    write_config(tmp_path, "{kind: none}")
    assert run(tmp_path, "--date", "2020-01-01")[1]["status"] == "nothing_to_do"
    assert main(["--config", str(tmp_path / "lake.yaml")]) == 2
    monkeypatch.chdir(tmp_path / "raw")  # no conf/local.yaml there, and no $LAKELIB_CONFIG: no config at all
    monkeypatch.delenv("LAKELIB_CONFIG", raising=False)
    assert cli_main(["ddl", "order_completed"]) == 2
    assert "needs --config" in capsys.readouterr().err
    assert cli_main(["ddl", "order_completed", "--config", str(tmp_path / "lake.yaml")]) == 2
    assert "run event_tables first" in capsys.readouterr().err


def test_staging_key_matches_spark(spark):
    df = spark.createDataFrame([("track", "Order Completed"), ("identify", None)], "_type string, _event string")
    got = df.select(staging_key_column()).collect()
    assert [r[0] for r in got] == [staging_key("track", "Order Completed"), staging_key("identify", None)]


def test_glue_catalog_grows_and_widens_a_typed_table_without_archiving_versions(aws):
    from lakelib.catalog import Partition
    from lakelib.catalog.glue_catalog import GlueCatalog, glue_client

    client = glue_client(region="us-east-1", endpoint_url=aws)
    catalog = GlueCatalog(client, "segment_logs", sleep=lambda s: None)
    first = Registry().plan([obs("Order Completed", ["properties", "amount"], "bigint")])
    table = first.registry.table_for("track", "Order Completed")
    catalog.ensure_table(table.table(), "s3://b/tables/order_completed")
    part = Partition({"sourceid": "web", "dt": "2020-01-01"}, "s3://b/tables/order_completed/sourceid=web/dt=2020-01-01")
    catalog.register_partitions(table.table(), [part])
    updates: list[dict] = []
    client.meta.events.register("before-parameter-build.glue.UpdateTable", lambda params, **kw: updates.append(params))

    later = first.registry.plan([obs("Order Completed", ["properties", "amount"], "double"),
                                 obs("Order Completed", ["properties", "coupon"], "string")])
    wider = later.registry.table_for("track", "Order Completed").table()
    catalog.ensure_table(wider, "s3://b/tables/order_completed")
    result = catalog.register_partitions(wider, [part])   # the rewritten partition: same folder, wider columns
    assert result.repointed == [part.values]
    got = client.get_partition(DatabaseName="segment_logs", TableName="order_completed",
                               PartitionValues=["web", "2020-01-01"])
    assert ("amount", "double") in [(c["Name"], c["Type"]) for c in got["Partition"]["StorageDescriptor"]["Columns"]]
    assert catalog.register_partitions(wider, [part]).unchanged == 1

    cols = client.get_table(DatabaseName="segment_logs", Name="order_completed")["Table"]["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in cols][-2:] == [("amount", "double"), ("coupon", "string")]
    assert [u.get("SkipArchive") for u in updates] == [True]


def test_spark_metastore_widens_a_column_but_never_narrows_it(spark, tmp_path):
    from lakelib.catalog.spark_catalog import SparkCatalog
    from lakelib.errors import CatalogError

    catalog = SparkCatalog(spark, f"tw_{uuid.uuid4().hex[:8]}")
    narrow = Registry().plan([obs("Paid", ["properties", "amount"], "bigint")])
    location = f"file://{tmp_path}/paid"
    catalog.ensure_table(narrow.registry.table_for("track", "Paid").table(), location)
    wide = narrow.registry.plan([obs("Paid", ["properties", "amount"], "double"), obs("Paid", ["properties", "b"],
                                                                                        "boolean")])
    catalog.ensure_table(wide.registry.table_for("track", "Paid").table(), location)
    types = dict(spark.table(f"{catalog.database}.paid").dtypes)
    assert (types["amount"], types["b"], types["dt"]) == ("double", "boolean", "string")
    with pytest.raises(CatalogError, match="amount"):
        catalog.ensure_table(narrow.registry.table_for("track", "Paid").table(), location)


def test_with_glue_the_widened_column_is_described_on_the_table_and_its_partitions(spark, tmp_path, aws):
    from lakelib.catalog.glue_catalog import glue_client

    write_config(tmp_path, f"{{kind: glue, database: typed, glue: {{region: us-east-1, endpoint_url: '{aws}'}}}}")
    write_events(spark, tmp_path, day_events("2020-03-01", "12") + day_events("2020-03-02", "12.5"))
    assert run(tmp_path, "--date", "2020-03-01")[0] == 0
    code, report = run(tmp_path, "--date", "2020-03-02")
    assert code == 0 and [(w["column"], w["to"]) for w in report["widened"]] == [("amount", "double")]

    client = glue_client(region="us-east-1", endpoint_url=aws)
    table = client.get_table(DatabaseName="typed", Name="order_completed")["Table"]
    assert ("amount", "double") in [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    got = []
    for day in ("2020-03-01", "2020-03-02"):
        part = client.get_partition(DatabaseName="typed", TableName="order_completed", PartitionValues=["web", day])
        descriptor = part["Partition"]["StorageDescriptor"]
        assert ("amount", "double") in [(c["Name"], c["Type"]) for c in descriptor["Columns"]]
        assert "/_versions/order_completed/" in descriptor["Location"]  # each partition at its published version
        got += [(day, r["amount"]) for r in spark.read.parquet(descriptor["Location"]).select("amount").distinct()
                .collect()]
    assert sorted(got) == [("2020-03-01", 12.0), ("2020-03-02", 12.5)]


def test_a_widening_removes_an_older_partition_whose_events_are_gone(spark, tmp_path):
    write_config(tmp_path, "{kind: none}")
    write_events(spark, tmp_path, day_events("2020-03-01", "12") + day_events("2020-03-02", "12.5"))
    assert run(tmp_path, "--date", "2020-03-01")[0] == 0
    # Day 1's events were rebuilt without its orders (its typed tables were not rerun).
    write_events(spark, tmp_path, [r for r in day_events("2020-03-01", "12") if not r[0].startswith("oc")])
    code, report = run(tmp_path, "--date", "2020-03-02")
    assert code == 0 and report["rewritten_partitions"] == []
    assert not (tmp_path / "tables" / "order_completed" / "sourceid=web" / "dt=2020-03-01").exists()
    amounts = spark.read.schema("amount double, dt string").parquet(f"file://{tmp_path}/tables/order_completed")
    assert sorted(tuple(r) for r in amounts.select("amount", "dt").collect()) == [(12.5, "2020-03-02")] * 2


def test_a_long_step_says_what_it_does_at_least_every_interval(spark, tmp_path, capsys, monkeypatch):
    import lakelib.progress

    monkeypatch.setattr(lakelib.progress, "EVERY_SECONDS", 0.01)   # every step outlasts it: each one speaks
    write_config(tmp_path, "{kind: none}")
    write_events(spark, tmp_path, day_events("2020-03-01", "12"))
    assert run(tmp_path, "--date", "2020-03-01")[0] == 0
    lines = capsys.readouterr().err.splitlines()
    for step in ("still reading 1 events partition(s) and flattening them (", "still writing 9 typed table(s): ",
                 "still publishing 9 typed table(s) ("):
        assert any(step in line for line in lines), step
    counted = [line.split(": ", 1)[1] for line in lines if "still writing 9 typed table(s): " in line]
    assert all(re.search(r"[0-9] of 9 done \(\d+s\)$", c) for c in counted), counted


def test_progress_counts_what_threads_finished():
    import logging

    from lakelib.progress import progress

    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger = logging.getLogger("progress-test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    with progress(logger, "writing 2 tables", total=2, every=0.01) as done:
        done.add()
        time.sleep(0.2)
    logger.removeHandler(handler)
    assert records and all(r.startswith("still writing 2 tables: ") for r in records)
    assert records[-1].startswith("still writing 2 tables: 1 of 2 done (")


def test_two_runs_at_once_take_turns_and_the_registry_keeps_both_runs_tables_and_columns(spark, tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    import lakelib.lock

    monkeypatch.setattr(lakelib.lock, "POLL_SECONDS", 0.2)
    write_config(tmp_path, "{kind: none}")
    write_events(spark, tmp_path, [
        event("a1", "track", "2020-03-01", event="Day One", properties={"first": "1"}),
        event("b1", "track", "2020-03-02", event="Day Two", properties={"second": "x"}),
        event("c1", "track", "2020-03-02", event="Signed Up", properties={"plan": "pro"}),
        event("c2", "track", "2020-03-01", event="Signed Up", properties={"seats": "3"})])
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda day: run(tmp_path, "--date", day), ["2020-03-01", "2020-03-02"]))
    assert [code for code, _ in runs] == [0, 0], [r.get("error") for _, r in runs]
    registry = json.loads((tmp_path / "tables" / "_lakelib" / "event_tables.json").read_text())["tables"]
    assert {"day_one", "day_two", "signed_up"} <= set(registry)
    assert {c["name"] for c in registry["signed_up"]["columns"]} == {"plan", "seats"}
    assert not (tmp_path / "tables" / "_lakelib" / "event_tables.lock").exists()


def test_a_lock_held_past_the_wait_fails_naming_the_run_and_the_file(spark, tmp_path, monkeypatch):
    import lakelib.lock

    monkeypatch.setattr(lakelib.lock, "WAIT_SECONDS", 0.5)
    monkeypatch.setattr(lakelib.lock, "POLL_SECONDS", 0.1)
    write_config(tmp_path, "{kind: none}")
    write_events(spark, tmp_path, day_events("2020-03-01", "12"))
    lock = tmp_path / "tables" / "_lakelib" / "event_tables.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"run_id": "event_tables-other", "since": time.time()}))
    code, report = run(tmp_path, "--date", "2020-03-01")
    assert code == 1 and "another run (event_tables-other) has held" in report["error"]
    assert str(lock) in report["error"] and lock.exists()
    lock.write_text(json.dumps({"run_id": "event_tables-dead", "since": time.time() - 2 * 86400}))
    assert run(tmp_path, "--date", "2020-03-01")[0] == 0 and not lock.exists()   # a dead run's lock is taken over


def test_dry_run_prints_the_plan_with_the_partitions_each_widening_rewrites_and_writes_nothing(spark, tmp_path,
                                                                                              capsys):
    write_config(tmp_path, "{kind: none}")
    write_events(spark, tmp_path, day_events("2020-03-01", "12") + day_events("2020-03-02", "12.5") + [
        event("new2", "track", "2020-03-02", event="Cart Viewed", properties={"items": "3"})])
    assert run(tmp_path, "--date", "2020-03-01")[0] == 0

    def snapshot():
        root = tmp_path / "tables"
        return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*")
                      if "lake_runs" not in p.parts)

    before = snapshot()
    capsys.readouterr()
    code, report = run(tmp_path, "--date", "2020-03-02", "--dry-run")
    out = capsys.readouterr().out
    assert code == 0 and report["status"] == "dry_run"
    assert snapshot() == before
    assert "  create table cart_viewed\n" in out and "  add column cart_viewed.items bigint\n" in out
    assert ("  widen order_completed.amount bigint -> double: rewrites 1 older partition(s) (web/2020-03-01)\n"
            in out)
    assert out.splitlines()[-1] == ("1 table(s) to create, 1 column(s) to add, 1 widening(s) rewriting 1 older "
                                    "partition(s)")
    assert report["widened"][0]["partitions"] == ["web/2020-03-01"]

    code, real = run(tmp_path, "--date", "2020-03-02")     # the plan is what the run then does
    assert code == 0 and real["new_tables"] == report["new_tables"] == ["cart_viewed"]
    assert [(w["column"], w["partitions_rewritten"]) for w in real["widened"]] == [("amount", 1)]


def test_typed_files_are_sized_to_the_target_like_events_files(spark, tmp_path, monkeypatch):
    import jobs.event_tables as job

    write_config(tmp_path, "{kind: none}")
    write_events(spark, tmp_path, day_events("2020-03-01", "12"))
    # The day's events files weigh 4 MB (as far as the plan knows): 0.4 MB a row, so 2 rows (0.8 MB) a file, and
    # tracks (5 rows) gets 3 files.
    monkeypatch.setattr(job, "events_bytes", lambda tables, location: 4 * 1024 * 1024)
    code, report = run(tmp_path, "--date", "2020-03-01", "--set", "write.target_file_mb=1")
    assert code == 0, report.get("error")

    def files(table):
        folder = tmp_path / "tables" / table / "sourceid=web" / "dt=2020-03-01"
        return [p for p in folder.iterdir() if p.suffix == ".parquet"]

    assert len(files("tracks")) == 3 and len(files("order_completed")) == 1 and len(files("identifies")) == 1
    assert spark.read.parquet(f"file://{tmp_path}/tables/tracks").count() == 5
    assert report["partitions"][0]["mismatches"] == [] and report["partitions"][0]["tables"]["tracks"] == 5


def test_an_id_beyond_2_53_beside_a_double_makes_a_string_column_that_keeps_its_digits(spark, tmp_path):
    database = f"tt_{uuid.uuid4().hex[:8]}"
    write_config(tmp_path, f"{{kind: spark, database: {database}}}")
    rows = [event("a", "track", "2020-03-01", event="Paid", properties={"ref": "123456789012345678", "n": "7"}),
            event("b", "track", "2020-03-01", event="Paid", properties={"ref": "2.5", "n": "7.5"})]
    write_events(spark, tmp_path, rows)
    code, report = run(tmp_path, "--date", "2020-03-01")
    assert code == 0, report.get("error")
    paid = spark.table(f"{database}.paid")
    assert dict(paid.dtypes)["ref"] == "string" and dict(paid.dtypes)["n"] == "double"
    assert sorted(r["ref"] for r in paid.collect()) == ["123456789012345678", "2.5"]
