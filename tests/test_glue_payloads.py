"""The pure Glue payload builders and response readers: no client, no server."""
from __future__ import annotations

import pytest

from lakelib.catalog import glue_payloads as gp
from lakelib.catalog.base import partition_name
from lakelib.paths import canonical_location
from lakelib.schema import EVENTS, MESSAGE_TYPE_COUNTS_YEARLY


def test_table_input_is_an_external_parquet_table_with_the_schema_columns():
    got = gp.table_input(EVENTS, "s3a://lake/tables/events/")

    assert got["Name"] == "events"
    assert got["TableType"] == "EXTERNAL_TABLE"
    assert got["Parameters"]["EXTERNAL"] == "TRUE"
    assert got["PartitionKeys"] == [{"Name": "sourceid", "Type": "string"}, {"Name": "dt", "Type": "string"}]
    sd = got["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in sd["Columns"]] == [(c.name, c.type) for c in EVENTS.columns]
    assert sd["Location"] == "s3://lake/tables/events"
    assert sd["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert sd["OutputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert not any(k.startswith("projection.") for k in got["Parameters"])


def test_partition_input_carries_values_in_key_order_and_a_full_parquet_descriptor():
    got = gp.partition_input(EVENTS, {"dt": "2020-01-02", "sourceid": "web"}, "s3a://lake/t/events/sourceid=web/dt=2020-01-02")

    assert got["Values"] == ["web", "2020-01-02"]
    sd = got["StorageDescriptor"]
    assert sd["Location"] == "s3://lake/t/events/sourceid=web/dt=2020-01-02"
    assert sd["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert [c["Name"] for c in sd["Columns"]] == EVENTS.column_names


def test_a_partition_without_all_its_keys_is_refused():
    with pytest.raises(KeyError, match="dt"):
        gp.partition_values(EVENTS, {"sourceid": "web"})


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("s3a://bucket/a/b", "s3://bucket/a/b"),
        ("s3a://bucket/a/b/", "s3://bucket/a/b"),
        ("s3://bucket/a", "s3://bucket/a"),
        ("file:///tmp/lake/t", "file:///tmp/lake/t"),
    ],
)
def test_glue_locations_are_s3_not_s3a(uri, expected):
    assert canonical_location(uri) == expected


def test_catalog_id_goes_on_every_request_when_set():
    inputs = [gp.partition_input(EVENTS, {"sourceid": "a", "dt": "2020-01-01"}, "s3://lake/x")]
    builders = [
        lambda cid: gp.create_database_request("db", cid),
        lambda cid: gp.create_table_request("db", EVENTS, "s3://lake/t", catalog_id=cid),
        lambda cid: gp.batch_create_partition_request("db", EVENTS, inputs, cid),
        lambda cid: gp.batch_update_partition_request("db", EVENTS, inputs, cid),
        lambda cid: gp.batch_get_partition_request("db", EVENTS, [["a", "2020-01-01"]], cid),
        lambda cid: gp.batch_delete_partition_request("db", EVENTS, [["a", "2020-01-01"]], cid),
    ]
    for build in builders:
        assert build("123456789012")["CatalogId"] == "123456789012"
        assert "CatalogId" not in build(None)


def test_batch_requests_refuse_more_than_glue_accepts():
    inputs = [gp.partition_input(EVENTS, {"sourceid": "a", "dt": f"d{i}"}, "s3://lake/x") for i in range(101)]
    with pytest.raises(ValueError, match="at most 100"):
        gp.batch_create_partition_request("db", EVENTS, inputs)
    with pytest.raises(ValueError, match="at most 100"):
        gp.batch_update_partition_request("db", EVENTS, inputs)
    assert [len(c) for c in gp.chunks(inputs, gp.CREATE_CHUNK)] == [100, 1]


def test_update_entries_replace_the_partition_with_the_same_values():
    inputs = [gp.partition_input(EVENTS, {"sourceid": "a", "dt": "2020-01-01"}, "s3://lake/new")]
    entry = gp.batch_update_partition_request("db", EVENTS, inputs)["Entries"][0]
    assert entry["PartitionValueList"] == ["a", "2020-01-01"]
    assert entry["PartitionInput"]["StorageDescriptor"]["Location"] == "s3://lake/new"


def test_projection_parameters_follow_the_table_keys():
    events = gp.projection_parameters(EVENTS, "s3a://lake/t/events")
    assert events["projection.enabled"] == "true"
    assert events["projection.sourceid.type"] == "injected"
    assert events["projection.dt.type"] == "date"
    assert events["projection.dt.format"] == "yyyy-MM-dd"
    assert events["projection.dt.range"].endswith(",NOW")
    assert events["storage.location.template"] == "s3://lake/t/events/sourceid=${sourceid}/dt=${dt}"

    yearly = gp.projection_parameters(MESSAGE_TYPE_COUNTS_YEARLY, "s3://lake/t/y")
    assert yearly["projection.end_dt.type"] == "date"
    assert "projection.dt.type" not in yearly
    assert yearly["storage.location.template"] == "s3://lake/t/y/sourceid=${sourceid}/end_dt=${end_dt}"

    assert gp.table_parameters(EVENTS, "s3://lake/t/events", projection=True)["projection.enabled"] == "true"


# Shaped like the BatchCreatePartition / BatchUpdatePartition responses of the Glue API reference.
CREATE_RESPONSE = {
    "Errors": [
        {"PartitionValues": ["web", "2020-01-01"],
         "ErrorDetail": {"ErrorCode": "AlreadyExistsException", "ErrorMessage": "Partition already exists."}},
        {"PartitionValues": ["web", "2020-01-02"],
         "ErrorDetail": {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}},
        {"PartitionValues": ["web", "2020-01-03"],
         "ErrorDetail": {"ErrorCode": "InvalidInputException", "ErrorMessage": "Invalid location"}},
    ],
    "ResponseMetadata": {"HTTPStatusCode": 200},
}


def test_batch_errors_are_sorted_into_tolerated_transient_and_fatal():
    ok, retry, fatal = gp.split_batch_errors(CREATE_RESPONSE, tolerated=gp.ALREADY_EXISTS)
    assert [e.values for e in ok] == [("web", "2020-01-01")]
    assert [e.values for e in retry] == [("web", "2020-01-02")]
    assert [(e.values, e.code) for e in fatal] == [(("web", "2020-01-03"), "InvalidInputException")]


def test_nothing_is_tolerated_unless_asked():
    ok, _, fatal = gp.split_batch_errors(CREATE_RESPONSE)
    assert ok == []
    assert {e.code for e in fatal} == {"AlreadyExistsException", "InvalidInputException"}


def test_update_errors_name_their_partition():
    response = {"Errors": [{"PartitionValueList": ["web", "2020-01-01"],
                            "ErrorDetail": {"ErrorCode": "EntityNotFoundException", "ErrorMessage": "gone"}}]}
    (err,) = gp.batch_errors(response)
    assert partition_name(EVENTS, err.values) == "events (sourceid=web, dt=2020-01-01)"
    assert not err.transient


def test_table_differs_only_on_what_lakelib_owns():
    wanted = gp.table_input(EVENTS, "s3://lake/t/events")
    existing = dict(wanted, Parameters={**wanted["Parameters"], "last_analyzed": "x"}, CreateTime="now")
    assert not gp.table_differs(existing, wanted)

    moved = dict(wanted, StorageDescriptor=dict(wanted["StorageDescriptor"], Location="s3://old/events"))
    assert gp.table_differs(moved, wanted)

    sd = wanted["StorageDescriptor"]
    fewer = dict(wanted, StorageDescriptor=dict(sd, Columns=sd["Columns"][:-1]))
    assert gp.table_differs(fewer, wanted)

    projected = gp.table_input(EVENTS, "s3://lake/t/events", projection=True)
    assert gp.table_differs(existing, projected)
    assert gp.table_differs(projected, wanted)  # projection turned off


def test_an_update_keeps_foreign_parameters_and_drops_unwanted_projection():
    wanted = gp.table_input(EVENTS, "s3://lake/t/events")
    existing = gp.table_input(EVENTS, "s3://lake/t/events", projection=True)
    existing["Parameters"]["owner_team"] = "data"

    params = gp.merged_table_input(existing, wanted)["Parameters"]

    assert params["owner_team"] == "data"
    assert not any(k.startswith("projection.") for k in params) and "storage.location.template" not in params
    assert params["EXTERNAL"] == "TRUE"
