"""The ``glue`` backend against moto's Glue on 127.0.0.1: real boto3 calls over HTTP."""
from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from lakelib.catalog import Partition, open_catalog
from lakelib.catalog.glue_catalog import GlueCatalog, glue_client
from lakelib.config import parse_config
from lakelib.errors import CatalogError
from lakelib.paths import partition_dir
from lakelib.schema import EVENTS

ROOT = "s3://lake-bucket/tables/events"
REGION = "us-east-1"


@pytest.fixture
def client(aws):
    return glue_client(region=REGION, endpoint_url=aws)


@pytest.fixture
def catalog(client):
    cat = GlueCatalog(client, "segment_logs", sleep=lambda s: None)
    cat.ensure_table(EVENTS, ROOT)
    return cat


def count_calls(client, operation: str) -> list[dict]:
    """Record the parameters of every ``operation`` call the client makes from now on."""
    calls: list[dict] = []
    client.meta.events.register(f"before-parameter-build.glue.{operation}",
                                lambda params, **kw: calls.append(dict(params)))
    return calls


def parts(sources, days, root=ROOT, scheme_root=None):
    out = []
    for source in sources:
        for day in days:
            values = {"sourceid": source, "dt": day}
            out.append(Partition(values, f"{scheme_root or root}/{partition_dir(values)}"))
    return out


def days(n: int, start=date(2020, 1, 1)) -> list[str]:
    return [(start + timedelta(days=i)).isoformat() for i in range(n)]


def registered(client, database="segment_logs", table="events") -> dict[tuple, str]:
    pages = client.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table)
    return {tuple(p["Values"]): p["StorageDescriptor"]["Location"] for page in pages for p in page["Partitions"]}


def test_ensure_table_creates_the_database_and_an_external_parquet_table(client, catalog):
    assert client.get_database(Name="segment_logs")["Database"]["Name"] == "segment_logs"
    table = client.get_table(DatabaseName="segment_logs", Name="events")["Table"]
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert [(k["Name"], k["Type"]) for k in table["PartitionKeys"]] == [("sourceid", "string"), ("dt", "string")]
    sd = table["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in sd["Columns"]] == [(c.name, c.type) for c in EVENTS.columns]
    assert ("timestamp", "timestamp") in [(c["Name"], c["Type"]) for c in sd["Columns"]]
    assert ("context", "map<string,string>") in [(c["Name"], c["Type"]) for c in sd["Columns"]]
    assert sd["Location"] == ROOT
    assert sd["InputFormat"].endswith("MapredParquetInputFormat")
    assert sd["OutputFormat"].endswith("MapredParquetOutputFormat")
    assert sd["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert not any(k.startswith("projection.") for k in table["Parameters"])


def test_ensure_table_again_changes_nothing(client, catalog):
    creates, updates = count_calls(client, "CreateTable"), count_calls(client, "UpdateTable")
    catalog.ensure_table(EVENTS, ROOT)
    assert creates == [] and updates == []


def test_ensure_table_repairs_a_table_that_drifted(client, catalog):
    table = client.get_table(DatabaseName="segment_logs", Name="events")["Table"]
    sd = dict(table["StorageDescriptor"], Columns=table["StorageDescriptor"]["Columns"][:3])
    client.update_table(DatabaseName="segment_logs", TableInput={
        "Name": "events", "TableType": "EXTERNAL_TABLE", "PartitionKeys": table["PartitionKeys"],
        "StorageDescriptor": sd, "Parameters": table["Parameters"]})

    catalog.ensure_table(EVENTS, ROOT)

    cols = client.get_table(DatabaseName="segment_logs", Name="events")["Table"]["StorageDescriptor"]["Columns"]
    assert [c["Name"] for c in cols] == EVENTS.column_names


def test_ensure_tables_reads_all_tables_at_once_and_touches_only_the_missing_and_the_drifted(client, catalog):
    from dataclasses import replace

    from lakelib.schema import MESSAGE_TYPE_COUNTS_DAILY, MESSAGE_TYPE_COUNTS_YEARLY

    daily_root, yearly_root = "s3://lake-bucket/tables/daily", "s3://lake-bucket/tables/yearly"
    catalog.ensure_table(MESSAGE_TYPE_COUNTS_DAILY, daily_root)
    narrowed = replace(MESSAGE_TYPE_COUNTS_DAILY, columns=MESSAGE_TYPE_COUNTS_DAILY.columns[:1])
    catalog.ensure_table(narrowed, daily_root)   # the daily table lost a column since: it drifted
    gets = count_calls(client, "GetTable")
    creates, updates = count_calls(client, "CreateTable"), count_calls(client, "UpdateTable")
    catalog.ensure_tables([(EVENTS, ROOT), (MESSAGE_TYPE_COUNTS_DAILY, daily_root),
                           (MESSAGE_TYPE_COUNTS_YEARLY, yearly_root)])
    assert [c["TableInput"]["Name"] for c in creates] == ["message_type_counts_yearly"]
    assert [c["TableInput"]["Name"] for c in updates] == ["message_type_counts_daily"]
    assert {c["Name"] for c in gets} == {"message_type_counts_daily", "message_type_counts_yearly"}  # not events
    cols = client.get_table(DatabaseName="segment_logs", Name="message_type_counts_daily")["Table"][
        "StorageDescriptor"]["Columns"]
    assert [c["Name"] for c in cols] == MESSAGE_TYPE_COUNTS_DAILY.column_names


def test_s3a_locations_are_registered_as_s3(client):
    catalog = GlueCatalog(client, "segment_logs")
    catalog.ensure_table(EVENTS, "s3a://lake-bucket/tables/events")
    catalog.register_partitions(EVENTS, parts(["web"], days(2), scheme_root="s3a://lake-bucket/tables/events"))

    table = client.get_table(DatabaseName="segment_logs", Name="events")["Table"]
    assert table["StorageDescriptor"]["Location"] == ROOT
    assert registered(client) == {
        ("web", "2020-01-01"): f"{ROOT}/sourceid=web/dt=2020-01-01",
        ("web", "2020-01-02"): f"{ROOT}/sourceid=web/dt=2020-01-02",
    }


def test_250_partitions_go_in_three_batch_create_calls(client, catalog):
    calls = count_calls(client, "BatchCreatePartition")
    wanted = parts(["web", "ios"], days(125))

    result = catalog.register_partitions(EVENTS, wanted)

    assert [len(c["PartitionInputList"]) for c in calls] == [100, 100, 50]
    assert len(result.created) == 250 and result.repointed == [] and result.unchanged == 0
    got = registered(client)
    assert got == {tuple(p.values.values()): p.location for p in wanted}
    one = client.get_partition(DatabaseName="segment_logs", TableName="events", PartitionValues=["ios", "2020-03-01"])
    sd = one["Partition"]["StorageDescriptor"]
    assert sd["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert [c["Name"] for c in sd["Columns"]] == EVENTS.column_names


def test_a_rerun_changes_nothing(client, catalog):
    wanted = parts(["web", "ios"], days(3))
    catalog.register_partitions(EVENTS, wanted)
    before = client.get_partitions(DatabaseName="segment_logs", TableName="events")["Partitions"]
    updates = count_calls(client, "BatchUpdatePartition")

    result = catalog.register_partitions(EVENTS, wanted)

    assert result.created == [] and result.repointed == [] and result.unchanged == 6
    assert updates == []
    assert client.get_partitions(DatabaseName="segment_logs", TableName="events")["Partitions"] == before


def test_a_partition_moved_by_hand_is_put_back(client, catalog):
    wanted = parts(["web"], days(3))
    catalog.register_partitions(EVENTS, wanted)
    moved = wanted[1]
    entry = client.get_partition(DatabaseName="segment_logs", TableName="events",
                                 PartitionValues=list(moved.values.values()))["Partition"]
    client.update_partition(
        DatabaseName="segment_logs", TableName="events", PartitionValueList=entry["Values"],
        PartitionInput={"Values": entry["Values"],
                        "StorageDescriptor": dict(entry["StorageDescriptor"], Location="s3://elsewhere/x")})

    result = catalog.register_partitions(EVENTS, wanted)

    assert result.repointed == [moved.values] and result.created == [] and result.unchanged == 2
    assert registered(client)[tuple(moved.values.values())] == moved.location
    assert catalog.partition_location(EVENTS, moved.values) == moved.location


def test_a_compacted_partition_is_repointed_to_its_new_folder(client, catalog):
    catalog.register_partitions(EVENTS, parts(["web"], days(2)))
    new_home = "s3://lake-bucket/tables/events/_compacted/run-1/sourceid=web/dt=2020-01-02"

    result = catalog.register_partitions(EVENTS, [Partition({"sourceid": "web", "dt": "2020-01-02"}, new_home)])

    assert result.repointed == [{"sourceid": "web", "dt": "2020-01-02"}]
    assert registered(client)[("web", "2020-01-02")] == new_home
    assert registered(client)[("web", "2020-01-01")] == f"{ROOT}/sourceid=web/dt=2020-01-01"


def test_a_partition_glue_refuses_fails_with_its_name(client, catalog, aws):
    """Provoke a real per-partition error: the partition vanishes between the create and the update."""
    wanted = parts(["web"], days(2))
    catalog.register_partitions(EVENTS, wanted)
    other = glue_client(region=REGION, endpoint_url=aws)

    def someone_drops_it(params, **kwargs):
        other.batch_delete_partition(DatabaseName="segment_logs", TableName="events",
                                     PartitionsToDelete=[{"Values": ["web", "2020-01-02"]}])

    client.meta.events.register("before-call.glue.BatchUpdatePartition", someone_drops_it)
    moved = [Partition(wanted[1].values, "s3://lake-bucket/compacted/web/2020-01-02")]

    with pytest.raises(CatalogError, match=r"events \(sourceid=web, dt=2020-01-02\).*EntityNotFoundException"):
        catalog.register_partitions(EVENTS, moved)


def test_a_missing_table_fails_with_one_line_naming_it(client):
    catalog = GlueCatalog(client, "segment_logs")
    with pytest.raises(CatalogError, match=r"segment_logs\.events") as info:
        catalog.register_partitions(EVENTS, parts(["web"], days(1)))
    assert "\n" not in str(info.value)


def test_throttled_partitions_are_sent_again(client, catalog):
    """Glue answers HTTP 200 with a per-partition ThrottlingException; those partitions must be retried.

    The first BatchCreatePartition response is replaced, at the HTTP layer through botocore's own event
    system, by the body Glue sends when it throttles one partition; the retry reaches moto.
    """
    from botocore.awsrequest import AWSResponse

    body = (b'{"Errors": [{"PartitionValues": ["web", "2020-01-02"], "ErrorDetail": '
            b'{"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}}]}')
    sent: list[dict] = []
    calls = count_calls(client, "BatchCreatePartition")

    class Raw:
        def stream(self, **kwargs):
            yield body

    def throttle_first(request, **kwargs):
        sent.append(request)
        if len(sent) == 1:
            # What Glue does: it creates the others and throttles one.
            other = glue_client(region=REGION, endpoint_url=client.meta.endpoint_url)
            other.create_partition(DatabaseName="segment_logs", TableName="events",
                                   PartitionInput=calls[0]["PartitionInputList"][0])
            return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.1"}, Raw())
        return None

    client.meta.events.register("before-send.glue.BatchCreatePartition", throttle_first)
    result = catalog.register_partitions(EVENTS, parts(["web"], days(2)))

    assert [[p["Values"] for p in c["PartitionInputList"]] for c in calls] == [
        [["web", "2020-01-01"], ["web", "2020-01-02"]], [["web", "2020-01-02"]]]
    assert set(registered(client)) == {("web", "2020-01-01"), ("web", "2020-01-02")}
    assert result.created == [{"sourceid": "web", "dt": "2020-01-01"}, {"sourceid": "web", "dt": "2020-01-02"}]


def test_list_partition_location_and_drop(client, catalog):
    wanted = parts(["web", "ios"], days(2))
    catalog.register_partitions(EVENTS, wanted)

    listed = catalog.list_partitions(EVENTS)
    assert sorted((tuple(p.values.items()), p.location) for p in listed) == sorted(
        (tuple(p.values.items()), p.location) for p in wanted)
    assert catalog.partition_location(EVENTS, {"sourceid": "web", "dt": "1999-01-01"}) is None

    catalog.drop_partitions(EVENTS, [wanted[0].values, {"sourceid": "nope", "dt": "2020-01-01"}])
    assert set(registered(client)) == {tuple(p.values.values()) for p in wanted[1:]}
    assert GlueCatalog(client, "other_db").list_partitions(EVENTS) == []


def test_catalog_id_is_sent_on_every_call(client):
    seen: list[tuple[str, dict]] = []
    client.meta.events.register("provide-client-params.glue.*",
                                lambda params, model, **kw: seen.append((model.name, dict(params))))
    catalog = GlueCatalog(client, "segment_logs", catalog_id="123456789012")
    catalog.ensure_table(EVENTS, ROOT)
    catalog.register_partitions(EVENTS, parts(["web"], days(2)))
    catalog.register_partitions(EVENTS, parts(["web"], days(2), scheme_root="s3://lake-bucket/moved"))
    catalog.list_partitions(EVENTS)

    names = {name for name, _ in seen}
    assert {"CreateDatabase", "CreateTable", "BatchCreatePartition", "BatchUpdatePartition"} <= names
    assert [name for name, params in seen if params.get("CatalogId") != "123456789012"] == []


def test_projection_sets_athena_table_properties(client):
    catalog = GlueCatalog(client, "segment_logs", projection=True)
    catalog.ensure_table(EVENTS, "s3a://lake-bucket/tables/events")

    params = client.get_table(DatabaseName="segment_logs", Name="events")["Table"]["Parameters"]
    assert params["projection.enabled"] == "true"
    assert params["projection.dt.type"] == "date"
    assert params["projection.dt.format"] == "yyyy-MM-dd"
    assert params["projection.sourceid.type"] == "injected"
    assert params["storage.location.template"] == f"{ROOT}/sourceid=${{sourceid}}/dt=${{dt}}"


def test_turning_projection_off_removes_it(client):
    GlueCatalog(client, "segment_logs", projection=True).ensure_table(EVENTS, ROOT)
    GlueCatalog(client, "segment_logs", projection=False).ensure_table(EVENTS, ROOT)

    params = client.get_table(DatabaseName="segment_logs", Name="events")["Table"]["Parameters"]
    assert not any(k.startswith("projection.") for k in params)
    assert params["classification"] == "parquet"


def test_open_catalog_builds_a_glue_client_from_the_config(aws):
    config = parse_config({
        "lake": {"raw": "s3://lake-bucket/raw", "tables": "s3://lake-bucket/tables",
                 "quarantine": "s3://lake-bucket/q", "reports": "s3://lake-bucket/r"},
        "catalog": {"kind": "glue", "database": "seg",
                    "glue": {"region": "eu-west-1", "endpoint_url": aws, "partition_projection": True}},
    })
    catalog = open_catalog(config)

    assert catalog.kind == "glue" and catalog.database == "seg" and catalog.projection
    assert catalog.client.meta.region_name == "eu-west-1"
    assert catalog.client.meta.endpoint_url == aws
    assert catalog.client.meta.config.retries["mode"] == "standard"
    catalog.ensure_table(EVENTS, f"{config.lake.tables}/events")
    assert catalog.client.get_table(DatabaseName="seg", Name="events")["Table"]["Name"] == "events"


def fetched(client) -> list[int]:
    """Record how many partitions each GetPartitions response carries, from now on."""
    counts: list[int] = []
    client.meta.events.register("after-call.glue.GetPartitions",
                                lambda parsed, **kw: counts.append(len(parsed.get("Partitions", []))))
    return counts


def test_a_one_day_run_fetches_that_days_partitions_without_their_schema(client, catalog):
    """1,500 registered partitions (3 sources x 500 days); a run for one source and one day asks for one.

    moto evaluates ``Expression`` with Glue's grammar on its side, so the count is what Glue's filter returns.
    """
    for source in ("web", "ios", "android"):
        catalog.register_partitions(EVENTS, parts([source], days(500)))
    requests, counts = count_calls(client, "GetPartitions"), fetched(client)

    got = catalog.list_partitions(EVENTS, sources=["web"], days=["2020-06-01"])

    assert [(p.values, p.location) for p in got] == [
        ({"sourceid": "web", "dt": "2020-06-01"}, f"{ROOT}/sourceid=web/dt=2020-06-01")]
    assert sum(counts) == 1
    assert requests == [{"DatabaseName": "segment_logs", "TableName": "events", "ExcludeColumnSchema": True,
                         "Expression": "sourceid = 'web' AND dt = '2020-06-01'"}]

    every_source = catalog.list_partitions(EVENTS, sources=None, days=["2020-06-01"])  # a run without --source
    assert len(every_source) == 3 and counts[1] == 3
    assert requests[1]["Expression"] == "dt = '2020-06-01'"

    week = catalog.list_partitions(EVENTS, sources=["web", "ios"], days=days(7, start=date(2020, 6, 1)))
    assert len(week) == 14 and sum(counts[2:]) == 14
    assert requests[2]["Expression"] == "sourceid IN ('ios', 'web') AND dt BETWEEN '2020-06-01' AND '2020-06-07'"
    assert len(catalog.list_partitions(EVENTS)) == 1500


def test_days_that_do_not_fit_an_in_list_are_asked_as_a_range_and_filtered_here(client, catalog):
    catalog.register_partitions(EVENTS, parts(["web"], days(400)))
    every_other = days(400)[::2]  # 200 days: an IN list of them is longer than Glue's 2048 characters
    requests, counts = count_calls(client, "GetPartitions"), fetched(client)

    got = catalog.list_partitions(EVENTS, sources=["web"], days=every_other)

    assert sorted(p.values["dt"] for p in got) == every_other
    assert requests[0]["Expression"] == f"sourceid = 'web' AND dt BETWEEN '{every_other[0]}' AND '{every_other[-1]}'"
    assert sum(counts) == 399  # the range, not the table; what is not asked for is dropped here
    assert catalog.list_partitions(EVENTS, sources=[], days=None) == []


def test_partition_expression_stays_within_glues_limit():
    from lakelib.catalog.glue_payloads import EXPRESSION_LIMIT, partition_expression

    many_sources = [f"source-{i:04d}" for i in range(400)]
    some_days = days(1000)[::3]
    expression = partition_expression(EVENTS, many_sources, some_days)
    assert len(expression) <= EXPRESSION_LIMIT
    assert expression == f"dt BETWEEN '{some_days[0]}' AND '{some_days[-1]}'"  # sources: too many to name
    assert partition_expression(EVENTS, ["o'brien"], None) == "sourceid = 'o''brien'"


def test_a_drift_repair_skips_the_table_version_archive(client, catalog):
    table = client.get_table(DatabaseName="segment_logs", Name="events")["Table"]
    client.update_table(DatabaseName="segment_logs", TableInput={
        "Name": "events", "TableType": "EXTERNAL_TABLE", "PartitionKeys": table["PartitionKeys"],
        "StorageDescriptor": dict(table["StorageDescriptor"], Location="s3://elsewhere/events"),
        "Parameters": table["Parameters"]})
    updates = count_calls(client, "UpdateTable")

    catalog.ensure_table(EVENTS, ROOT)

    assert [u["SkipArchive"] for u in updates] == [True]
    assert client.get_table(DatabaseName="segment_logs", Name="events")["Table"]["StorageDescriptor"][
        "Location"] == ROOT


def refuse_batch(client, number: int, operation: str = "BatchCreatePartition") -> None:
    """Glue refuses the ``number``-th ``operation`` call of ``client`` with ``ResourceNumberLimitExceededException``
    (what it answers when an account reaches its partition quota); every other call reaches moto.

    The refusal is injected at the HTTP layer (botocore's ``before-send`` event), so boto3 parses a real error
    response and the calls before and after it, and the read-back, are real requests to moto's server.
    """
    from botocore.awsrequest import AWSResponse

    body = (b'{"__type": "ResourceNumberLimitExceededException", '
            b'"Message": "Number of partitions in the account exceeds the quota"}')
    seen: list[object] = []

    class Raw:
        def stream(self, **kwargs):
            yield body

    def maybe_refuse(request, **kwargs):
        seen.append(request)
        if len(seen) == number:
            return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.1"}, Raw())
        return None

    client.meta.events.register(f"before-send.glue.{operation}", maybe_refuse)


def test_when_glue_refuses_the_second_batch_the_error_says_which_are_registered_and_a_rerun_finishes(
        client, catalog, aws):
    from lakelib.errors import PartialRegistrationError

    wanted = parts(["web"], days(120))
    refuse_batch(client, 2)

    with pytest.raises(PartialRegistrationError) as info:
        catalog.register_partitions(EVENTS, wanted)

    error = info.value
    assert str(error).startswith("glue BatchCreatePartition on segment_logs.events failed: "
                                 "ResourceNumberLimitExceededException")
    assert str(error).endswith("; 100 of 120 partitions of segment_logs.events are registered, 20 are not "
                               "(the run report lists which): rerun the job to register the rest")
    assert error.registered == [p.values for p in wanted[:100]]
    assert error.not_registered == [p.values for p in wanted[100:]]
    assert set(registered(client)) == {tuple(p.values.values()) for p in wanted[:100]}

    again = GlueCatalog(glue_client(region=REGION, endpoint_url=aws), "segment_logs").register_partitions(
        EVENTS, wanted)
    assert len(again.created) == 20 and again.unchanged == 100
    assert registered(client) == {tuple(p.values.values()): p.location for p in wanted}


def test_a_partition_repointed_to_the_wrong_place_counts_as_not_registered(client, catalog):
    from lakelib.errors import PartialRegistrationError

    catalog.register_partitions(EVENTS, parts(["web"], days(3)))
    moved = parts(["web"], days(3), scheme_root="s3://lake-bucket/compacted")
    refuse_batch(client, 1, "BatchUpdatePartition")

    with pytest.raises(PartialRegistrationError, match="0 of 3 partitions .* are registered, 3 are not") as info:
        catalog.register_partitions(EVENTS, moved)
    assert info.value.not_registered == [p.values for p in moved]


def test_the_run_report_lists_per_partition_whether_it_is_registered(client, aws, tmp_path, capsys):
    """A job that calls the catalog itself: the runner records the error's partitions (the publish protocol records
    them too: tests/test_publish.py)."""
    from lakelib.runner import job_parser, run_job

    config = tmp_path / "job.yaml"
    config.write_text(f"lake: {{raw: {tmp_path}/raw, tables: s3://lake-bucket/tables, quarantine: {tmp_path}/q, "
                      f"reports: {tmp_path}/reports}}\ncatalog: {{kind: none}}\n")
    report_path = tmp_path / "report.json"
    wanted = parts(["web", "ios"], days(60))
    refuse_batch(client, 2)

    def body(args, cfg, report):
        report.partitions = [dict(p.values, rows_written=1) for p in wanted]
        catalog = GlueCatalog(client, "segment_logs", sleep=lambda s: None)
        catalog.ensure_table(EVENTS, ROOT)
        catalog.register_partitions(EVENTS, wanted)
        return "succeeded"

    code = run_job("demo", job_parser("demo", "test"), ["--config", str(config), "--report", str(report_path)], body)

    assert code == 1
    report = json.loads(report_path.read_text())
    assert report["status"] == "failed"
    flags = {(p["sourceid"], p["dt"]): p["registered"] for p in report["partitions"]}
    first_batch = {tuple(p.values.values()) for p in wanted[:100]}
    assert flags == {tuple(p.values.values()): tuple(p.values.values()) in first_batch for p in wanted}
    assert report["registration"]["events"]["registered"] == 100
    assert report["registration"]["events"]["not_registered"] == [p.values for p in wanted[100:]]
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("demo: error: glue BatchCreatePartition on segment_logs.events failed")
    assert last.endswith("100 of 120 partitions of segment_logs.events are registered, 20 are not "
                         "(the run report lists which): rerun the job to register the rest")
