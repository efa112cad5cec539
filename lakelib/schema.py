"""The Segment message and the lake's tables, described once.

The column lists here are plain Python (name, Hive type) so that DDL, Glue payloads and docs can be built
without Spark; :func:`spark_schema` turns a table into a PySpark ``StructType`` when Spark is there.

Segment's spec (https://segment.com/docs/connections/spec/) defines the common fields of every message and a few
per type (``event`` for track, ``name`` for page and screen, ``groupId`` for group, ``previousId`` for alias,
``traits`` for identify and group). Nested objects (``context``, ``properties``, ``traits``, ``integrations``) are
stored as ``map<string,string>`` with nested values as JSON text, as in the seed article's Athena table; any
top-level field the spec does not name is kept in ``extras`` so that nothing of a message is lost.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql.types import StructType

MESSAGE_TYPES = ("track", "identify", "page", "screen", "group", "alias")

#: Reject reasons of ``json_to_parquet``, in the order they are tested.
REJECT_REASONS = ("invalid_json", "not_an_object", "missing_message_id", "invalid_type", "invalid_timestamp")


@dataclass(frozen=True)
class Column:
    """A table column: lower-case name, Hive type, and the Segment field it comes from (if any)."""

    name: str
    type: str
    field: str | None = None
    comment: str = ""


@dataclass(frozen=True)
class Table:
    """A lake table: its columns and its partition keys (all partition keys are strings)."""

    name: str
    columns: tuple[Column, ...]
    partition_keys: tuple[str, ...]
    comment: str = ""

    @property
    def column_names(self) -> list[str]:
        """Data column names, in order."""
        return [c.name for c in self.columns]

    @property
    def all_names(self) -> list[str]:
        """Data columns then partition keys: the column order of the table as the catalog shows it."""
        return self.column_names + list(self.partition_keys)

    @property
    def source_key(self) -> str:
        """The partition key that names the source (or, for ``lake_runs``, the job): the first one."""
        return self.partition_keys[0]

    @property
    def day_key(self) -> str | None:
        """The partition key that names the day (``dt``, ``end_dt``), or ``None`` for a table without one."""
        return self.partition_keys[1] if len(self.partition_keys) > 1 else None


STRING, TIMESTAMP, BIGINT, MAP = "string", "timestamp", "bigint", "map<string,string>"
DOUBLE, BOOLEAN, STRING_ARRAY = "double", "boolean", "array<string>"

EVENT_COLUMNS = (
    Column("messageid", STRING, "messageId", "unique id of the message (dedup key per source and day)"),
    Column("type", STRING, "type", "track, identify, page, screen, group or alias"),
    Column("anonymousid", STRING, "anonymousId"),
    Column("userid", STRING, "userId"),
    Column("event", STRING, "event", "track: the event name"),
    Column("name", STRING, "name", "page, screen: the page or screen name"),
    Column("groupid", STRING, "groupId", "group: the group id"),
    Column("previousid", STRING, "previousId", "alias: the previous id"),
    Column("channel", STRING, "channel"),
    Column("timestamp", TIMESTAMP, "timestamp", "UTC"),
    Column("originaltimestamp", TIMESTAMP, "originalTimestamp", "UTC"),
    Column("sentat", TIMESTAMP, "sentAt", "UTC"),
    Column("receivedat", TIMESTAMP, "receivedAt", "UTC"),
    Column("context", MAP, "context", "nested values as JSON text"),
    Column("properties", MAP, "properties", "nested values as JSON text"),
    Column("traits", MAP, "traits", "nested values as JSON text"),
    Column("integrations", MAP, "integrations", "nested values as JSON text"),
    Column("version", STRING, "version"),
    Column("extras", MAP, None, "top-level fields the spec does not name, as JSON text"),
)

EVENTS = Table(
    "events",
    EVENT_COLUMNS,
    ("sourceid", "dt"),
    "Segment messages, one row per messageId per source and received day (dt = UTC day Segment received it)",
)

_COUNT_COLUMNS = (Column("type", STRING), Column("message_count", BIGINT))

MESSAGE_TYPE_COUNTS_DAILY = Table(
    "message_type_counts_daily",
    _COUNT_COLUMNS,
    ("sourceid", "dt"),
    "distinct messages by type per source and received day",
)
MESSAGE_TYPE_COUNTS_YEARLY = Table(
    "message_type_counts_yearly",
    _COUNT_COLUMNS,
    ("sourceid", "end_dt"),
    "distinct messages by type per source over the 365 UTC days ending with end_dt inclusive",
)

TABLES = {t.name: t for t in (EVENTS, MESSAGE_TYPE_COUNTS_DAILY, MESSAGE_TYPE_COUNTS_YEARLY)}

#: The run history: every job run appends one file to ``lake_runs/job=<job>/``. It is not in :data:`TABLES`
#: (the tables the jobs write and ``compact_partitions`` rewrites): compaction would move a partition away from
#: the folder the next run appends to.
LAKE_RUNS = Table(
    "lake_runs",
    (
        Column("run_id", STRING, comment="<job>-<UTC time>-<8 hex>, as in the run report"),
        Column("status", STRING, comment="succeeded, failed, nothing_to_do, dry_run"),
        Column("started_at", TIMESTAMP, comment="UTC"),
        Column("finished_at", TIMESTAMP, comment="UTC"),
        Column("duration_s", DOUBLE, comment="finished_at - started_at, in seconds"),
        Column("arguments", STRING_ARRAY, comment="the command line, secrets redacted"),
        Column("partitions", BIGINT, comment="partitions in the run report"),
        Column("totals", STRING, comment="the run report's totals, as JSON text"),
        Column("error", STRING, comment="the one-line error of a failed run"),
        # where it ran (lakelib.provenance); columns added after the first release: older rows read them as null
        Column("spark_application_id", STRING, comment="Spark's spark.app.id"),
        Column("emr_cluster_id", STRING, comment="the EMR cluster (j-...), on EMR"),
        Column("emr_step_id", STRING, comment="the EMR step (s-...), when the driver could tell"),
        Column("serverless_application_id", STRING, comment="the EMR Serverless application, on EMR Serverless"),
        Column("serverless_job_run_id", STRING, comment="the EMR Serverless job run"),
        Column("log_uri", STRING, comment="the run's S3 log folder"),
        Column("lakelib_version", STRING, comment="lakelib's version"),
        Column("spark_version", STRING, comment="Spark's version"),
        # what it cost (EMR Serverless: lake submit --wait, or lake runs --refresh-cost)
        Column("billed_vcpu_hours", DOUBLE, comment="billed vCPU-hours (EMR Serverless)"),
        Column("billed_memory_gb_hours", DOUBLE, comment="billed memory GB-hours (EMR Serverless)"),
        Column("billed_storage_gb_hours", DOUBLE, comment="billed storage GB-hours (EMR Serverless)"),
        Column("cost_usd", DOUBLE, comment="the billed use at the prices in the run report's billed.price_source"),
    ),
    ("job",),
    "one row per job run (success, failure, dry run); the JSON run reports hold the details",
)

#: The quarantine of ``json_to_parquet``: gzipped JSON lines under ``<lake.quarantine>/json_to_parquet/``, read by
#: path (no catalog holds it). A null field is left out of a line.
QUARANTINE = Table(
    "json_to_parquet",
    (
        Column("reason", STRING, comment="the first reject rule that applies"),
        Column("raw", STRING, comment="the line exactly as read (invalid UTF-8 replaced)"),
        Column("file", STRING, comment="the raw file it came from"),
        Column("run_id", STRING, comment="the run that quarantined it"),
        Column("raw_base64", STRING, comment="the line's bytes, when they are not UTF-8"),
        Column("detail", STRING, comment="why a line is invalid JSON, when the reason alone would mislead"),
    ),
    ("sourceid", "dt"),
    "lines json_to_parquet rejected",
)

#: Every table lakelib registers in the catalog, by name.
ALL_TABLES = {**TABLES, LAKE_RUNS.name: LAKE_RUNS}

#: Segment field name -> column, for the fields parsed out of a message.
FIELD_TO_COLUMN = {c.field: c for c in EVENT_COLUMNS if c.field}


def get_table(name: str) -> Table:
    """The table called ``name``.

    Raises
    ------
    KeyError
        With the known names in the message.
    """
    try:
        return ALL_TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r} (known: {', '.join(ALL_TABLES)})") from None


def type_key(hive_type: str) -> str:
    """A column type's text as catalogs are compared: no spaces, lower case.

    >>> type_key("MAP<STRING, STRING>") == type_key("map<string,string>")
    True
    """
    return hive_type.replace(" ", "").lower()


def spark_type(hive_type: str):
    """The PySpark ``DataType`` of a Hive type string used in this module."""
    from pyspark.sql import types as T

    simple = {STRING: T.StringType(), TIMESTAMP: T.TimestampType(), BIGINT: T.LongType(), DOUBLE: T.DoubleType(),
              BOOLEAN: T.BooleanType()}
    if hive_type in simple:
        return simple[hive_type]
    if hive_type == MAP:
        return T.MapType(T.StringType(), T.StringType(), valueContainsNull=True)
    if hive_type == STRING_ARRAY:
        return T.ArrayType(T.StringType(), containsNull=True)
    raise ValueError(f"no Spark type for {hive_type!r}")


def spark_schema(table: Table, with_partitions: bool = False) -> StructType:
    """The PySpark schema of a table's data columns (and its partition keys, as strings, if asked)."""
    from pyspark.sql import types as T

    fields = [T.StructField(c.name, spark_type(c.type), True) for c in table.columns]
    if with_partitions:
        fields += [T.StructField(k, T.StringType(), True) for k in table.partition_keys]
    return T.StructType(fields)


#: The table parameter (property) that marks a table lakelib created; lakelib alters no table without it.
MARK = ("lakelib.managed", "true")


def create_table_ddl(
    table: Table, location: str, database: str = "segment_logs", literal: Callable[[str], str] | None = None,
    properties: Mapping[str, str] | None = None,
) -> str:
    """Hive ``CREATE EXTERNAL TABLE`` for a Parquet table at ``location``, its strings quoted by ``literal``: the
    rule of the engine it is sent to (Athena's, :func:`lakelib.catalog.glue_payloads.sql_literal`, by default; the
    Spark metastore passes :func:`lakelib.catalog.spark_catalog.sql_string`). ``TBLPROPERTIES`` holds snappy, lakelib's
    :data:`MARK` and ``properties`` (one per line when there are more).

    >>> print(create_table_ddl(MESSAGE_TYPE_COUNTS_DAILY, "s3://b/t/message_type_counts_daily"))
    ... # doctest: +NORMALIZE_WHITESPACE
    CREATE EXTERNAL TABLE IF NOT EXISTS `segment_logs`.`message_type_counts_daily` (
      `type` string,
      `message_count` bigint
    )
    COMMENT 'distinct messages by type per source and received day'
    PARTITIONED BY (`sourceid` string, `dt` string)
    STORED AS PARQUET
    LOCATION 's3://b/t/message_type_counts_daily'
    TBLPROPERTIES ('parquet.compression'='SNAPPY', 'lakelib.managed'='true')
    """
    if literal is None:
        from lakelib.catalog.glue_payloads import sql_literal

        literal = sql_literal
    pairs = [f"{literal(k)}={literal(v)}" for k, v in {"parquet.compression": "SNAPPY", MARK[0]: MARK[1],
                                                       **(properties or {})}.items()]
    props = ", ".join(pairs) if not properties else "\n" + ",\n".join(f"  {p}" for p in pairs) + "\n"
    cols = ",\n".join(f"  `{c.name}` {c.type}" for c in table.columns)
    parts = ", ".join(f"`{k}` string" for k in table.partition_keys)
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{table.name}` (\n{cols}\n)\n"
        f"COMMENT {literal(table.comment)}\n"
        f"PARTITIONED BY ({parts})\n"
        "STORED AS PARQUET\n"
        f"LOCATION {literal(location)}\n"
        f"TBLPROPERTIES ({props})"
    )
