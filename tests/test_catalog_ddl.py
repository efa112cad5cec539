"""``lake ddl``: the Athena DDL of a lake table, as printed by the command."""
from __future__ import annotations

import re

import pytest

from lakelib.cli import main
from lakelib.schema import EVENTS, MESSAGE_TYPE_COUNTS_YEARLY


def ddl(capsys, *argv: str) -> str:
    assert main(["ddl", *argv]) == 0
    return capsys.readouterr().out


def columns(text: str) -> list[tuple[str, str]]:
    body = text.split("(\n", 1)[1].split("\n)", 1)[0]
    return [tuple(line.strip().rstrip(",").split(" ", 1)) for line in body.splitlines()]


def test_events_ddl_has_the_schema_columns_keys_and_location(capsys):
    out = ddl(capsys, "events", "--location", "s3a://my-bucket/lake/tables/events/")

    assert out.startswith("CREATE EXTERNAL TABLE IF NOT EXISTS `segment_logs`.`events` (")
    assert columns(out) == [(f"`{c.name}`", c.type) for c in EVENTS.columns]
    assert "PARTITIONED BY (`sourceid` string, `dt` string)" in out
    assert "STORED AS PARQUET" in out
    assert "LOCATION 's3://my-bucket/lake/tables/events'" in out  # Athena needs s3://
    assert "projection" not in out
    assert out.rstrip().endswith(";")


def test_projection_adds_athena_table_properties(capsys):
    out = ddl(capsys, "message_type_counts_yearly", "--projection", "--database", "seg",
              "--location", "s3://b/t/message_type_counts_yearly")

    props = dict(re.findall(r"'([^']+)'='([^']*)'", out.split("TBLPROPERTIES", 1)[1]))
    assert "`seg`.`message_type_counts_yearly`" in out
    assert props["projection.enabled"] == "true"
    assert props["projection.sourceid.type"] == "injected"
    assert props["projection.end_dt.type"] == "date"
    assert props["projection.end_dt.format"] == "yyyy-MM-dd"
    assert props["storage.location.template"] == "s3://b/t/message_type_counts_yearly/sourceid=${sourceid}/end_dt=${end_dt}"
    assert props["parquet.compression"] == "SNAPPY"
    assert [n for n, _ in columns(out)] == [f"`{c.name}`" for c in MESSAGE_TYPE_COUNTS_YEARLY.columns]


def test_location_and_database_come_from_the_config(capsys, tmp_path):
    config = tmp_path / "lake.yaml"
    config.write_text(
        "lake: {raw: s3://acme-logs/segment, tables: s3a://acme-lake/tables, quarantine: s3://acme-lake/q,"
        " reports: s3://acme-lake/reports}\ncatalog: {kind: glue, database: acme, glue: {region: eu-west-1}}\n"
    )
    out = ddl(capsys, "events", "--config", str(config))

    assert "`acme`.`events`" in out
    assert "LOCATION 's3://acme-lake/tables/events'" in out


def test_without_a_location_or_any_config_a_placeholder_is_printed_with_a_warning(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no conf/local.yaml here
    monkeypatch.delenv("LAKELIB_CONFIG", raising=False)
    assert main(["ddl", "events"]) == 0
    out, err = capsys.readouterr()
    assert "LOCATION 's3://your-bucket/tables/events'" in out
    assert err.startswith("lake ddl: warning: s3://your-bucket/tables/events is a placeholder")


def test_without_config_ddl_follows_the_one_config_rule_of_every_command(capsys, tmp_path, monkeypatch):
    config = tmp_path / "lake.yaml"
    config.write_text("lake: {raw: s3://acme/raw, tables: s3://acme/t, quarantine: s3://acme/q, reports: s3://acme/r}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LAKELIB_CONFIG", str(config))
    assert "LOCATION 's3://acme/t/events'" in ddl(capsys, "events")
    monkeypatch.delenv("LAKELIB_CONFIG")
    (tmp_path / "conf").mkdir()
    config.rename(tmp_path / "conf" / "local.yaml")
    assert "LOCATION 's3://acme/t/events'" in ddl(capsys, "events")


def test_an_unknown_table_exits_2_naming_the_known_ones(capsys):
    assert main(["ddl", "evnts"]) == 2
    err = capsys.readouterr().err
    assert "evnts" in err and "events" in err and len(err.strip().splitlines()) == 1


def test_a_wrong_config_exits_2(capsys, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("lake: {raw: s3://acme-logs/segment}\n")
    assert main(["ddl", "events", "--config", str(config)]) == 2
    assert "lake.tables" in capsys.readouterr().err


@pytest.mark.parametrize("table", ["events", "message_type_counts_daily", "message_type_counts_yearly"])
def test_every_table_has_a_ddl(capsys, table):
    assert f"`segment_logs`.`{table}`" in ddl(capsys, table, "--projection")
