"""Pure builders of AWS Glue request payloads, and pure readers of Glue responses. No client, no I/O.

Every ``*_request`` function returns the keyword arguments of one boto3 Glue call (``client.create_table(**req)``),
with ``CatalogId`` set when a catalog id is given. :func:`split_batch_errors` reads the per-partition ``Errors``
of a ``BatchCreatePartition`` / ``BatchUpdatePartition`` response, which Glue returns with HTTP 200: a batch call
that "succeeded" may still have refused some partitions.

Glue (and Athena) understand ``s3://`` locations only, so every location goes through
:func:`lakelib.paths.canonical_location` (``s3a://`` as ``s3://``).

>>> from lakelib.schema import EVENTS
>>> req = partition_input(EVENTS, {"sourceid": "web", "dt": "2020-01-02"}, "s3a://b/t/events/sourceid=web/dt=2020-01-02")
>>> req["Values"], req["StorageDescriptor"]["Location"]
(['web', '2020-01-02'], 's3://b/t/events/sourceid=web/dt=2020-01-02')
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Collection, Iterator, Mapping, Sequence, TypeVar

from lakelib.paths import canonical_location
from lakelib.schema import MARK, Table

INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"

#: Glue's limits per call.
CREATE_CHUNK = 100  # BatchCreatePartition
UPDATE_CHUNK = 100  # BatchUpdatePartition
GET_CHUNK = 1000  # BatchGetPartition
DELETE_CHUNK = 25  # BatchDeletePartition
EXPRESSION_LIMIT = 2048  # GetPartitions Expression, characters

#: Per-partition error codes that mean "try again", not "this partition is wrong".
TRANSIENT_ERRORS = frozenset({
    "ThrottlingException", "InternalServiceException", "OperationTimeoutException", "ConcurrentModificationException",
})
ALREADY_EXISTS = "AlreadyExistsException"
NOT_FOUND = "EntityNotFoundException"

#: Partition keys that hold a day (``YYYY-MM-DD``), projected as dates; every other key is ``injected``.
DATE_KEYS = ("dt", "end_dt")
#: First day of the projected date range (``projection.<key>.range`` is ``<start>,NOW``).
PROJECTION_START = "2015-01-01"

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size``.

    >>> [len(c) for c in chunks(list(range(250)), 100)]
    [100, 100, 50]
    """
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def _with_catalog(request: dict[str, Any], catalog_id: str | None) -> dict[str, Any]:
    if catalog_id:
        request["CatalogId"] = catalog_id
    return request


def columns(table: Table) -> list[dict[str, str]]:
    """The Glue ``Columns`` of a table's data columns, types exactly as in :mod:`lakelib.schema`."""
    out = []
    for col in table.columns:
        item = {"Name": col.name, "Type": col.type}
        if col.comment:
            item["Comment"] = col.comment
        out.append(item)
    return out


def storage_descriptor(table: Table, location: str) -> dict[str, Any]:
    """A Parquet ``StorageDescriptor`` (formats, serde, columns) at ``location``."""
    return {
        "Columns": columns(table),
        "Location": canonical_location(location),
        "InputFormat": INPUT_FORMAT,
        "OutputFormat": OUTPUT_FORMAT,
        "Compressed": False,
        "SerdeInfo": {"SerializationLibrary": SERDE, "Parameters": {"serialization.format": "1"}},
        "StoredAsSubDirectories": False,
    }


def projection_parameters(table: Table, location: str, start: str = PROJECTION_START) -> dict[str, str]:
    """Athena partition-projection table properties for ``table`` at ``location``.

    Day keys (``dt``, ``end_dt``) are projected as dates from ``start`` to ``NOW``; every other key (``sourceid``)
    is ``injected``: Athena queries must then name it in ``WHERE`` (``sourceid = 'web'``).

    >>> from lakelib.schema import EVENTS
    >>> params = projection_parameters(EVENTS, "s3a://b/tables/events")
    >>> params["projection.sourceid.type"], params["projection.dt.range"]
    ('injected', '2015-01-01,NOW')
    >>> params["storage.location.template"]
    's3://b/tables/events/sourceid=${sourceid}/dt=${dt}'
    """
    params = {"projection.enabled": "true"}
    for key in table.partition_keys:
        if key in DATE_KEYS:
            params[f"projection.{key}.type"] = "date"
            params[f"projection.{key}.range"] = f"{start},NOW"
            params[f"projection.{key}.format"] = "yyyy-MM-dd"
            params[f"projection.{key}.interval"] = "1"
            params[f"projection.{key}.interval.unit"] = "DAYS"
        else:
            params[f"projection.{key}.type"] = "injected"
    template = "/".join(f"{key}=${{{key}}}" for key in table.partition_keys)
    params["storage.location.template"] = f"{canonical_location(location)}/{template}"
    return params


def table_parameters(table: Table, location: str, projection: bool = False) -> dict[str, str]:
    """The table ``Parameters``: external Parquet, snappy, and the projection properties when asked.

    A table without a day key (``lake_runs``, by job) is never projected: an injected key alone would make Athena
    refuse every query that does not name one job.

    >>> from lakelib.schema import LAKE_RUNS
    >>> "projection.enabled" in table_parameters(LAKE_RUNS, "s3://b/t/lake_runs", projection=True)
    False
    """
    params = {"EXTERNAL": "TRUE", "classification": "parquet", "parquet.compression": "SNAPPY", MARK[0]: MARK[1]}
    if projection and any(key in DATE_KEYS for key in table.partition_keys):
        params.update(projection_parameters(table, location))
    return params


def table_input(table: Table, location: str, projection: bool = False) -> dict[str, Any]:
    """The ``TableInput`` of an external, partitioned Parquet table (partition keys are strings)."""
    return {
        "Name": table.name.lower(),
        "Description": table.comment,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": table_parameters(table, location, projection),
        "PartitionKeys": [{"Name": key, "Type": "string"} for key in table.partition_keys],
        "StorageDescriptor": storage_descriptor(table, location),
    }


def create_database_request(database: str, catalog_id: str | None = None) -> dict[str, Any]:
    """``CreateDatabase`` arguments."""
    return _with_catalog(
        {"DatabaseInput": {"Name": database, "Description": "Segment logs as Parquet tables (lakelib)"}}, catalog_id
    )


def create_table_request(
    database: str, table: Table, location: str, *, projection: bool = False, catalog_id: str | None = None
) -> dict[str, Any]:
    """``CreateTable`` arguments (also ``UpdateTable``'s: same keys)."""
    return _with_catalog(
        {"DatabaseName": database, "TableInput": table_input(table, location, projection)}, catalog_id
    )


def update_table_request(
    database: str, table_input: Mapping[str, Any], *, catalog_id: str | None = None
) -> dict[str, Any]:
    """``UpdateTable`` arguments for a drift repair: ``SkipArchive``, so no table version piles up per repair.

    >>> update_table_request("db", {"Name": "events"})["SkipArchive"]
    True
    """
    return _with_catalog({"DatabaseName": database, "TableInput": dict(table_input), "SkipArchive": True}, catalog_id)


def sql_literal(value: str) -> str:
    """A Glue partition-expression string literal (a quote is doubled).

    >>> print(sql_literal("it's"))
    'it''s'
    """
    return "'" + str(value).replace("'", "''") + "'"


def _in_or_equal(key: str, values: Sequence[str]) -> str:
    if len(values) == 1:
        return f"{key} = {sql_literal(values[0])}"
    return f"{key} IN ({', '.join(sql_literal(v) for v in values)})"


def _day_condition(key: str, days: Sequence[str], room: int) -> str:
    """``=``, ``IN`` or, when that is too long or the days are a run of consecutive dates, ``BETWEEN``."""
    exact = _in_or_equal(key, days)
    if len(days) > 1:
        try:
            first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
            consecutive = (last - first).days == len(days) - 1
        except ValueError:
            consecutive = False
        if consecutive or len(exact) > room:
            # ISO days sort as text, so a string BETWEEN holds exactly the days of the range.
            return f"{key} BETWEEN {sql_literal(days[0])} AND {sql_literal(days[-1])}"
    return exact


def partition_expression(
    table: Table,
    sources: Collection[str] | None = None,
    days: Collection[str] | None = None,
    limit: int = EXPRESSION_LIMIT,
) -> str | None:
    """The ``GetPartitions`` ``Expression`` that asks Glue for the partitions of some sources and days.

    The first partition key is the source, the second the day (``dt``, ``end_dt``). The expression may ask for
    more than wanted (days that are not consecutive and too many for an ``IN`` list become one ``BETWEEN``; a
    source list that does not fit in ``limit`` is left out), never for less: callers filter the answer again.

    Parameters
    ----------
    table
        The table.
    sources
        Source ids; ``None`` = every source.
    days
        ``YYYY-MM-DD`` values of the day key; ``None`` = every day.
    limit
        Glue's maximum length of an expression.

    Returns
    -------
    str or None
        ``None`` when nothing is filtered.

    Raises
    ------
    ValueError
        An empty ``sources`` or ``days`` (it selects nothing: the caller need not ask Glue).

    Examples
    --------
    >>> from lakelib.schema import EVENTS
    >>> partition_expression(EVENTS, ["web"], ["2020-01-02"])
    "sourceid = 'web' AND dt = '2020-01-02'"
    >>> partition_expression(EVENTS, ["web", "ios"], ["2020-01-01", "2020-01-02", "2020-01-03"])
    "sourceid IN ('ios', 'web') AND dt BETWEEN '2020-01-01' AND '2020-01-03'"
    >>> partition_expression(EVENTS, None, ["2020-01-01", "2020-03-01"])
    "dt IN ('2020-01-01', '2020-03-01')"
    >>> partition_expression(EVENTS) is None
    True
    """
    source_key, day_key = table.source_key, table.day_key
    if (sources is not None and not sources) or (days is not None and not days):
        raise ValueError("partition_expression: an empty list of sources or days selects nothing; do not call Glue")
    conditions = []
    if sources is not None:
        condition = _in_or_equal(source_key, sorted({str(s) for s in sources}))
        if len(condition) <= limit // 2:
            conditions.append(condition)
    if days is not None and day_key is not None:
        room = limit - sum(len(c) + len(" AND ") for c in conditions)
        conditions.append(_day_condition(day_key, sorted({str(d) for d in days}), room))
    return " AND ".join(conditions) or None


def get_partitions_request(
    database: str, table: Table, expression: str | None = None, catalog_id: str | None = None
) -> dict[str, Any]:
    """``GetPartitions`` arguments: the partitions ``expression`` selects, without their column schema.

    >>> from lakelib.schema import EVENTS
    >>> get_partitions_request("db", EVENTS, "dt = '2020-01-02'")
    {'DatabaseName': 'db', 'TableName': 'events', 'ExcludeColumnSchema': True, 'Expression': "dt = '2020-01-02'"}
    """
    request: dict[str, Any] = {"DatabaseName": database, "TableName": table.name.lower(), "ExcludeColumnSchema": True}
    if expression:
        request["Expression"] = expression
    return _with_catalog(request, catalog_id)


def _projection_key(name: str) -> bool:
    return name.startswith("projection.") or name == "storage.location.template"


def merged_table_input(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """``wanted``, keeping the table parameters someone else set on ``existing`` (not projection ones)."""
    kept = {k: v for k, v in (existing.get("Parameters") or {}).items() if not _projection_key(k)}
    return dict(wanted, Parameters={**kept, **wanted["Parameters"]})


def table_differs(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether a ``GetTable`` ``Table`` differs from a wanted ``TableInput`` in anything lakelib owns.

    Compared: columns (names and types), partition keys, location, formats, serde, the wanted parameters, and
    projection parameters that are no longer wanted. Other parameters someone added are not a difference.
    """
    def cols(items: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
        return [(c["Name"], c["Type"]) for c in items]

    have_sd, want_sd = existing.get("StorageDescriptor", {}), wanted["StorageDescriptor"]
    have_params = existing.get("Parameters", {})
    return (
        cols(have_sd.get("Columns", [])) != cols(want_sd["Columns"])
        or cols(existing.get("PartitionKeys", [])) != cols(wanted["PartitionKeys"])
        or canonical_location(have_sd.get("Location", "")) != want_sd["Location"]
        or have_sd.get("InputFormat") != want_sd["InputFormat"]
        or have_sd.get("OutputFormat") != want_sd["OutputFormat"]
        or have_sd.get("SerdeInfo", {}).get("SerializationLibrary") != want_sd["SerdeInfo"]["SerializationLibrary"]
        or any(have_params.get(k) != v for k, v in wanted["Parameters"].items())
        or any(_projection_key(k) and k not in wanted["Parameters"] for k in have_params)
        or (existing.get("TableType") or "").upper() != wanted["TableType"]
    )


def partition_values(table: Table, values: Mapping[str, str]) -> list[str]:
    """The ``Values`` list of a partition, in the table's key order.

    Raises
    ------
    KeyError
        A partition key is missing from ``values``.
    """
    missing = [k for k in table.partition_keys if k not in values]
    if missing:
        raise KeyError(f"partition of {table.name} has no value for {', '.join(missing)}")
    return [str(values[k]) for k in table.partition_keys]


def partition_input(table: Table, values: Mapping[str, str], location: str) -> dict[str, Any]:
    """The ``PartitionInput`` of one partition: its values and a full Parquet storage descriptor."""
    return {"Values": partition_values(table, values), "StorageDescriptor": storage_descriptor(table, location)}


def _batch_request(
    operation: str, field: str, limit: int, database: str, table: Table, items: Sequence[Any], catalog_id: str | None
) -> dict[str, Any]:
    if len(items) > limit:
        raise ValueError(f"{operation} takes at most {limit} partitions, not {len(items)}")
    return _with_catalog({"DatabaseName": database, "TableName": table.name.lower(), field: list(items)}, catalog_id)


def batch_create_partition_request(
    database: str, table: Table, inputs: Sequence[Mapping[str, Any]], catalog_id: str | None = None
) -> dict[str, Any]:
    """``BatchCreatePartition`` arguments for at most :data:`CREATE_CHUNK` partition inputs."""
    return _batch_request("BatchCreatePartition", "PartitionInputList", CREATE_CHUNK, database, table, inputs,
                          catalog_id)


def batch_update_partition_request(
    database: str, table: Table, inputs: Sequence[Mapping[str, Any]], catalog_id: str | None = None
) -> dict[str, Any]:
    """``BatchUpdatePartition`` arguments: each input replaces the partition with the same values."""
    entries = [{"PartitionValueList": list(p["Values"]), "PartitionInput": p} for p in inputs]
    return _batch_request("BatchUpdatePartition", "Entries", UPDATE_CHUNK, database, table, entries, catalog_id)


def batch_get_partition_request(
    database: str, table: Table, values: Sequence[Sequence[str]], catalog_id: str | None = None
) -> dict[str, Any]:
    """``BatchGetPartition`` arguments for at most :data:`GET_CHUNK` value lists."""
    keys = [{"Values": list(v)} for v in values]
    return _batch_request("BatchGetPartition", "PartitionsToGet", GET_CHUNK, database, table, keys, catalog_id)


def batch_delete_partition_request(
    database: str, table: Table, values: Sequence[Sequence[str]], catalog_id: str | None = None
) -> dict[str, Any]:
    """``BatchDeletePartition`` arguments for at most :data:`DELETE_CHUNK` value lists."""
    keys = [{"Values": list(v)} for v in values]
    return _batch_request("BatchDeletePartition", "PartitionsToDelete", DELETE_CHUNK, database, table, keys,
                          catalog_id)


@dataclass(frozen=True)
class PartitionError:
    """One entry of a batch response's ``Errors``."""

    values: tuple[str, ...]
    code: str
    message: str

    @property
    def transient(self) -> bool:
        """Whether retrying the same partition may succeed (throttling, a Glue-side hiccup)."""
        return self.code in TRANSIENT_ERRORS


def batch_errors(response: Mapping[str, Any]) -> list[PartitionError]:
    """The per-partition ``Errors`` of a batch response (create, update or delete), as :class:`PartitionError`.

    >>> batch_errors({"Errors": [{"PartitionValues": ["web", "2020-01-02"],
    ...     "ErrorDetail": {"ErrorCode": "AlreadyExistsException", "ErrorMessage": "Partition already exists."}}]})
    [PartitionError(values=('web', '2020-01-02'), code='AlreadyExistsException', message='Partition already exists.')]
    >>> batch_errors({"ResponseMetadata": {"HTTPStatusCode": 200}})
    []
    """
    out = []
    for item in response.get("Errors") or []:
        values = item.get("PartitionValues") or item.get("PartitionValueList") or []
        detail = item.get("ErrorDetail") or {}
        out.append(
            PartitionError(tuple(values), detail.get("ErrorCode") or "UnknownError", detail.get("ErrorMessage") or "")
        )
    return out


def split_batch_errors(
    response: Mapping[str, Any], *, tolerated: str | None = None
) -> tuple[list[PartitionError], list[PartitionError], list[PartitionError]]:
    """Sort a batch response's errors into ``(tolerated, transient, fatal)``.

    Parameters
    ----------
    response
        A ``BatchCreatePartition``, ``BatchUpdatePartition`` or ``BatchDeletePartition`` response.
    tolerated
        The error code the caller handles on purpose (``AlreadyExistsException`` after a create,
        ``EntityNotFoundException`` after a delete); ``None`` tolerates nothing.

    Returns
    -------
    tuple
        Errors with the tolerated code, errors worth retrying, and every other error.
    """
    ok, retry, fatal = [], [], []
    for err in batch_errors(response):
        if tolerated and err.code == tolerated:
            ok.append(err)
        elif err.transient:
            retry.append(err)
        else:
            fatal.append(err)
    return ok, retry, fatal
