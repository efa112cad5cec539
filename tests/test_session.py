"""The session's quiet logging comes from one list: the packaged log4j2 properties."""
from __future__ import annotations

from lakelib.session import LOG4J2_QUIET, quiet_logger_levels, session_conf


def test_the_quiet_loggers_are_read_from_the_packaged_properties():
    levels = quiet_logger_levels()
    assert levels["hive.log"] == "ERROR"  # "Updating partition stats fast" on every partition added
    assert levels["org.apache.hadoop.util.NativeCodeLoader"] == "ERROR"
    assert levels["org.apache.hadoop.hive.metastore.RetryingHMSHandler"] == "FATAL"
    assert "rootLogger" not in levels and all(level in ("ERROR", "FATAL") for level in levels.values())
    assert LOG4J2_QUIET.endswith("lakelib/resources/log4j2.properties")


def test_every_session_is_utc_with_dynamic_partition_overwrite():
    conf = session_conf(None, {"spark.sql.shuffle.partitions": "2"})
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.sql.sources.partitionOverwriteMode"] == "dynamic"
    assert conf["spark.sql.shuffle.partitions"] == "2"


def test_settings_lakelib_depends_on_win_over_the_config(caplog):
    from lakelib.config import parse_config

    config = parse_config({
        "lake": {"raw": "file:///r", "tables": "file:///t", "quarantine": "file:///q", "reports": "file:///p"},
        "spark": {"spark.sql.session.timeZone": "America/Los_Angeles",
                  "spark.sql.legacy.parquet.datetimeRebaseModeInWrite": "EXCEPTION",
                  "spark.sql.parquet.int96RebaseModeInWrite": "LEGACY",
                  "spark.sql.sources.partitionOverwriteMode": "static", "spark.sql.shuffle.partitions": "7"},
    })
    conf = session_conf(config)
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.sql.sources.partitionOverwriteMode"] == "dynamic"
    assert conf["spark.sql.parquet.datetimeRebaseModeInWrite"] == "CORRECTED"
    assert conf["spark.sql.parquet.int96RebaseModeInWrite"] == "CORRECTED"
    assert "spark.sql.legacy.parquet.datetimeRebaseModeInWrite" not in conf
    assert conf["spark.sql.shuffle.partitions"] == "7"
    assert "America/Los_Angeles" in caplog.text
