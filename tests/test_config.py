"""Config loading: what is accepted, what is refused (one line naming the key), URIs, --set overrides."""
from __future__ import annotations

import textwrap

import boto3
import pytest

from lakelib.config import load_config, normalize_uri
from lakelib.errors import ConfigError
from lakelib.paths import is_within

GOOD = """
lake:
  raw: s3://acme-lake/segment-logs
  tables: s3a://acme-lake/tables
  quarantine: lake/quarantine
  reports: file:///var/lake/reports
sources: [web, ios]
catalog:
  kind: glue
  database: segment_logs
  glue: {region: us-east-1, endpoint_url: "http://127.0.0.1:5000"}
write: {target_file_mb: 128, compression: snappy}
spark: {spark.sql.shuffle.partitions: 16, spark.sql.adaptive.enabled: true}
"""


def _write(tmp_path, text):
    path = tmp_path / "job.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_full_config_is_read_and_normalised(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(_write(tmp_path, GOOD))
    assert config.lake.raw == "s3://acme-lake/segment-logs"
    assert config.lake.tables == "s3a://acme-lake/tables"
    assert config.lake.quarantine == f"file://{tmp_path}/lake/quarantine"
    assert config.lake.reports == "file:///var/lake/reports"
    assert config.sources == ("web", "ios")
    assert config.catalog.kind == "glue" and config.catalog.glue.region == "us-east-1"
    assert config.write.target_file_mb == 128
    assert config.spark == {"spark.sql.shuffle.partitions": "16", "spark.sql.adaptive.enabled": "true"}


def test_defaults_fill_what_is_optional(tmp_path):
    config = load_config(_write(tmp_path, "lake: {raw: r, tables: t, quarantine: q, reports: p}"))
    assert config.sources == ()
    assert (config.catalog.kind, config.catalog.database) == ("spark", "segment_logs")
    assert (config.write.target_file_mb, config.write.compression) == (256, "snappy")
    assert config.dedup.window_days == 1
    assert config.spark == {}


def test_set_overrides_any_key_with_a_yaml_value(tmp_path):
    config = load_config(
        _write(tmp_path, GOOD),
        ["write.target_file_mb=64", "catalog.kind=none", "sources=[a]", "spark.spark.sql.shuffle.partitions=4"],
    )
    assert config.write.target_file_mb == 64
    assert config.catalog.kind == "none"
    assert config.sources == ("a",)
    assert config.spark["spark.sql.shuffle.partitions"] == "4"


@pytest.mark.parametrize(
    "text, key",
    [
        ("lake: {raw: r, tables: t, quarantine: q, reports: p}\nextra: 1", "extra: unknown key"),
        ("lake: {raw: r, tables: t, quarantine: q, reports: p, archive: a}", "lake.archive: unknown key"),
        ("lake: {raw: r, tables: t, quarantine: q}", "lake.reports: missing"),
        ("sources: []", "lake.raw: missing"),
        ("lake: {raw: r, tables: t, quarantine: q, reports: p}\nwrite: {target_file_mb: big}", "write.target_file_mb"),
        ("lake: {raw: r, tables: t, quarantine: q, reports: p}\nwrite: {target_file_mb: 0}", "write.target_file_mb"),
        ("lake: {raw: r, tables: t, quarantine: q, reports: p}\nwrite: {compression: brotli9}", "write.compression"),
        ("lake: {raw: r, tables: t, quarantine: q, reports: p}\ndedup: {window_days: 0}", "dedup.window_days"),
        ("lake: {raw: r, tables: t, quarantine: q, reports: p}\ndedup: {window_days: 1.5}", "dedup.window_days"),
        ("lake: {raw: r, tables: t, quarantine: q, reports: p}\ndedup: {window_days: true}", "dedup.window_days"),
        ("lake: {raw: r, tables: t, quarantine: q, reports: p}\ndedup: {days: 2}", "dedup.days: unknown key"),
        ("lake: {raw: r, tables: t, quarantine: q, reports: p}\ncatalog: {kind: hive}", "catalog.kind"),
        ("lake: {raw: r, tables: t, quarantine: q, reports: p}\ncatalog: {kind: glue}", "catalog.glue.region"),
        ("lake: {raw: r, tables: t, quarantine: q, reports: p}\ncatalog: {database: Bad-Name}", "catalog.database"),
        ("lake: {raw: 'http://x/y', tables: t, quarantine: q, reports: p}", "lake.raw"),
        ("lake: {raw: 's3:///nobucket', tables: t, quarantine: q, reports: p}", "lake.raw"),
        ("lake: {raw: 'file://host/x', tables: t, quarantine: q, reports: p}", "lake.raw"),
        ("lake: {raw: s3://bkt/logs, tables: s3a://bkt/logs/tables, quarantine: q, reports: p}", "lake.tables"),
        ("lake: {raw: lake/raw, tables: t, quarantine: lake/raw/q, reports: p}", "lake.quarantine"),
        ("lake: {raw: r, tables: t, quarantine: q, reports: p}\nsources: [a/b]", "sources[0]"),
        ("lake: {raw: r, tables: t, quarantine: q, reports: p}\nspark: {spark.x: [1]}", "spark.spark.x"),
        ("lake: {raw: r, tables: t, quarantine: q, reports: p}\nsubmit: {mode: local}", "submit.mode"),
        ("lake: {raw: r, tables: t, quarantine: q, reports: p}\nsubmit: {artifacts: lake/jobs}", "submit.artifacts"),
        ("lake: {raw: r, tables: t, quarantine: q, reports: p}\nsubmit: {cluster: j-1}", "submit.cluster: unknown"),
        ("lake: [1, 2]", "lake: expected a mapping"),
        ("lake: {raw: r\n  tables: [", "not valid YAML"),
    ],
)
def test_a_wrong_config_is_refused_with_one_line_naming_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, text))
    message = str(error.value)
    assert key in message
    assert "\n" not in message


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="cannot read it"):
        load_config(tmp_path / "nope.yaml")


def test_uri_forms():
    assert normalize_uri("s3://bkt/p/", "k") == "s3://bkt/p"
    assert normalize_uri("s3a://bkt", "k") == "s3a://bkt"
    assert normalize_uri("/abs/dir/", "k") == "file:///abs/dir"
    assert normalize_uri("rel/../x", "k", cwd="/home/me") == "file:///home/me/x"
    assert is_within("s3a://bkt/raw/x", "s3://bkt/raw") and not is_within("s3://bkt/rawer", "s3://bkt/raw")
    with pytest.raises(ConfigError, match="no valid S3 bucket"):
        normalize_uri("s3://b/p", "lake.raw")


def test_a_config_on_s3_is_read_with_boto3(aws, tmp_path):
    s3 = boto3.client("s3", endpoint_url=aws)
    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key="conf/job.yaml", Body=GOOD.encode())
    config = load_config("s3://artifacts/conf/job.yaml")
    assert config.lake.raw == "s3://acme-lake/segment-logs"
    with pytest.raises(ConfigError, match="s3://artifacts/conf/missing.yaml: cannot read it"):
        load_config("s3://artifacts/conf/missing.yaml")


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "-1"])
def test_retention_hours_must_be_a_finite_number_of_hours(tmp_path, value):
    with pytest.raises(ConfigError, match="compaction.retention_hours: must be a finite number"):
        load_config(_write(tmp_path, f"lake: {{raw: r, tables: t, quarantine: q, reports: p}}\n"
                                     f"compaction: {{retention_hours: {value}}}"))


def test_a_config_that_is_not_utf8_is_one_line_naming_the_byte(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_bytes(b"lake: {raw: r, tables: t, quarantine: q, reports: p}\nsources: [caf\xe9]\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == f"config {path}: not UTF-8 text (byte 0xe9 on line 2); save it as UTF-8"


def test_a_job_given_a_config_that_is_not_utf8_exits_2_with_one_line(tmp_path, capsys):
    from jobs.message_type_counts import main

    path = tmp_path / "job.yaml"
    path.write_bytes(b"lake: {raw: r, tables: t, quarantine: q, reports: p}\n# \xff\xfe\n")
    assert main(["--config", str(path), "--period", "day", "--date", "2020-01-02"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"message_type_counts: error: config {path}: not UTF-8 text (byte 0xff on line 2); "
                   "save it as UTF-8"]
