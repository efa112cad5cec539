"""The ``glue`` backend: tables and partitions in the AWS Glue Data Catalog, through an injected boto3 client.

The payloads come from :mod:`lakelib.catalog.glue_payloads`; this module only sends them and reads the answers.
Partitions are created with ``BatchCreatePartition`` (100 per call). Glue answers those calls with HTTP 200 and a
per-partition ``Errors`` list, which is read every time: ``AlreadyExistsException`` leads to a look at the
registered location and columns (``BatchGetPartition``) and, when they differ, a ``BatchUpdatePartition``; throttling and
other transient codes are retried with backoff; any other error raises :class:`~lakelib.errors.CatalogError`
naming the partition. Whole-call throttling is retried by botocore itself (``retries={"mode": "standard"}``).

>>> client = glue_client(region="eu-west-1", endpoint_url="http://127.0.0.1:5000")   # doctest: +SKIP
>>> catalog = GlueCatalog(client, "segment_logs")                                    # doctest: +SKIP
>>> catalog.ensure_table(EVENTS, "s3://bucket/tables/events")                        # doctest: +SKIP
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Collection, Mapping, Sequence

from lakelib.catalog import glue_payloads as gp
from lakelib.catalog.base import (
    Catalog,
    Partition,
    RegisterResult,
    check_adoptable,
    is_marked,
    partial_registration,
    partition_name,
    selects,
)
from lakelib.errors import CatalogError, one_line
from lakelib.paths import canonical_location
from lakelib.schema import Table

log = logging.getLogger(__name__)

#: How many times a partition refused with a transient error code is sent again.
MAX_ATTEMPTS = 5
#: Glue calls for different tables in flight at once (creating or updating many typed tables).
PARALLEL_CALLS = 8


def glue_client(region: str | None = None, endpoint_url: str | None = None, session: Any = None) -> Any:
    """A boto3 Glue client with botocore's standard retry mode (throttling is retried with backoff).

    Parameters
    ----------
    region
        The AWS region; boto3's own resolution (``AWS_REGION``...) when ``None``.
    endpoint_url
        Another Glue endpoint (a test server); boto3 also honours ``AWS_ENDPOINT_URL`` when ``None``.
    session
        A ``boto3.Session`` (a profile, say); the default session when ``None``.
    """
    import boto3
    from botocore.config import Config as BotoConfig

    session = session or boto3.session.Session()
    return session.client(
        "glue",
        region_name=region,
        endpoint_url=endpoint_url or None,
        config=BotoConfig(retries={"mode": "standard", "max_attempts": 10}),
    )


def _column_types(storage_descriptor: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple((c.get("Name", ""), c.get("Type", "")) for c in storage_descriptor.get("Columns") or [])


class GlueCatalog(Catalog):
    """``catalog.kind: glue``.

    Parameters
    ----------
    client
        A boto3 Glue client (see :func:`glue_client`).
    database
        The Glue database.
    catalog_id
        The account id of the Data Catalog, sent as ``CatalogId`` on every call; the caller's account when ``None``.
    projection
        Set Athena partition-projection properties on the tables this catalog creates or updates.
    sleep
        Called with the seconds to wait before a retry (tests pass a no-op).
    """

    kind = "glue"

    def __init__(
        self,
        client: Any,
        database: str,
        *,
        catalog_id: str | None = None,
        projection: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.database = database
        self.catalog_id = catalog_id
        self.projection = projection
        self.read_by_path = projection  # Athena reads a projected table's template folders, not its partitions
        self._sleep = sleep

    # -- calls ------------------------------------------------------------------------------------------------

    def _call(
        self, operation: str, what: str, *, allow: tuple[str, ...] = (), **request: Any
    ) -> dict[str, Any] | None:
        """One Glue call; ``None`` when Glue answers with an error code in ``allow``.

        Any other refusal becomes a one-line :class:`CatalogError` naming ``what``.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(**request)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            if err.get("Code") in allow:
                return None
            code, message = err.get("Code", "?"), one_line(err.get("Message", ""))
            raise CatalogError(f"glue {exc.operation_name} on {what} failed: {code}: {message}") from exc
        except BotoCoreError as exc:
            raise CatalogError(f"glue {operation} on {what}: {one_line(str(exc))}") from exc

    def _ids(self) -> dict[str, str]:
        return {"CatalogId": self.catalog_id} if self.catalog_id else {}

    def _name(self, table: Table) -> str:
        return f"{self.database}.{table.name.lower()}"

    def _get_table(self, table: Table) -> dict[str, Any] | None:
        response = self._call("get_table", self._name(table), allow=(gp.NOT_FOUND,),
                              DatabaseName=self.database, Name=table.name.lower(), **self._ids())
        return None if response is None else response["Table"]

    def _batch(
        self,
        operation: str,
        table: Table,
        build: Callable[[list[Any]], dict[str, Any]],
        items: Sequence[Any],
        chunk: int,
        key: Callable[[Any], tuple[str, ...]],
        tolerated: str | None,
    ) -> list[tuple[str, ...]]:
        """Send ``items`` in chunks; retry transient per-item errors; raise on any other.

        Returns
        -------
        list of tuple
            The values of the partitions refused with the ``tolerated`` code.
        """
        refused: list[tuple[str, ...]] = []
        for part in gp.chunks(items, chunk):
            pending = part
            for attempt in range(1, MAX_ATTEMPTS + 1):
                response = self._call(operation, self._name(table), **build(pending))
                ok, retry, fatal = gp.split_batch_errors(response, tolerated=tolerated)
                if fatal:
                    first = fatal[0]
                    more = f" (and {len(fatal) - 1} more)" if len(fatal) > 1 else ""
                    raise CatalogError(
                        f"glue {operation} refused partition {partition_name(table, first.values)} of "
                        f"{self.database}: {first.code}: {one_line(first.message)}{more}"
                    )
                refused.extend(err.values for err in ok)
                if not retry:
                    break
                again = {err.values for err in retry}
                pending = [item for item in pending if key(item) in again]
                if attempt == MAX_ATTEMPTS:
                    raise CatalogError(
                        f"glue {operation} kept refusing partition {partition_name(table, retry[0].values)} "
                        f"of {self.database} after {MAX_ATTEMPTS} attempts: {retry[0].code}"
                    )
                delay = min(20.0, 0.5 * 2 ** (attempt - 1))
                log.warning("glue %s: %d partition(s) of %s throttled (%s), retrying in %.1fs",
                            operation, len(pending), self._name(table), retry[0].code, delay)
                self._sleep(delay)
        return refused

    # -- Catalog ----------------------------------------------------------------------------------------------

    def ensure_database(self) -> None:
        """Create the database if it does not exist."""
        what = f"database {self.database}"
        if self._call("get_database", what, allow=(gp.NOT_FOUND,), Name=self.database, **self._ids()) is not None:
            return
        # AlreadyExists: created meanwhile by a parallel run, which is fine.
        if self._call("create_database", what, allow=(gp.ALREADY_EXISTS,),
                      **gp.create_database_request(self.database, self.catalog_id)) is not None:
            log.info("created Glue database %s", self.database)

    def ensure_table(self, table: Table, location: str) -> None:
        """Create the database and the table; bring an existing table back to lakelib's definition if it drifted."""
        self.ensure_database()
        request = gp.create_table_request(
            self.database, table, location, projection=self.projection, catalog_id=self.catalog_id
        )
        existing = self._get_table(table)
        if existing is None:
            if self._call("create_table", self._name(table), allow=(gp.ALREADY_EXISTS,), **request) is not None:
                log.info("created Glue table %s at %s", self._name(table), canonical_location(location))
                return
            existing = self._get_table(table) or {}
        if not is_marked(existing.get("Parameters")):
            descriptor = existing.get("StorageDescriptor") or {}
            check_adoptable(self._name(table), table, canonical_location(location), descriptor.get("Location", ""),
                            [k.get("Name", "") for k in existing.get("PartitionKeys") or []],
                            {c.get("Name", ""): c.get("Type", "").lower() for c in descriptor.get("Columns") or []})
            log.info("Glue table %s: made by an older lakelib, marked as lakelib's", self._name(table))
        if gp.table_differs(existing, request["TableInput"]):
            update = gp.update_table_request(
                self.database, gp.merged_table_input(existing, request["TableInput"]), catalog_id=self.catalog_id
            )
            self._call("update_table", self._name(table), **update)
            log.info("updated Glue table %s to lakelib's definition", self._name(table))

    def ensure_tables(self, items: Sequence[tuple[Table, str]]) -> None:
        """:meth:`ensure_table` for many tables: ``GetTables`` pages read them all; a marked table that does not
        differ is left alone, the others are created or updated :data:`PARALLEL_CALLS` at a time."""
        if not items:
            return
        self.ensure_database()
        found = {t["Name"].lower(): t for t in self._tables()}
        todo = []
        for table, location in items:
            existing = found.get(table.name.lower())
            wanted = gp.create_table_request(self.database, table, location, projection=self.projection,
                                             catalog_id=self.catalog_id)["TableInput"]
            if existing is None or not is_marked(existing.get("Parameters")) or gp.table_differs(existing, wanted):
                todo.append((table, location))
        if todo:
            with ThreadPoolExecutor(PARALLEL_CALLS) as pool:
                list(pool.map(lambda item: self.ensure_table(*item), todo))

    def _tables(self) -> list[dict[str, Any]]:
        """Every table of the database (``GetTables`` pages); empty when the database does not exist."""
        out: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self._call("get_tables", f"tables of {self.database}", allow=(gp.NOT_FOUND,),
                              DatabaseName=self.database, **({"NextToken": token} if token else {}), **self._ids())
            if page is None:
                return out
            out += page.get("TableList", [])
            token = page.get("NextToken")
            if not token:
                return out

    def foreign_tables(self) -> set[str]:
        """Names of the database's tables without lakelib's mark (none when the database does not exist)."""
        return {t["Name"].lower() for t in self._tables() if not is_marked(t.get("Parameters"))}

    def register_partitions(self, table: Table, partitions: Sequence[Partition]) -> RegisterResult:
        """Create missing partitions, re-point those whose location differs, leave identical ones alone.

        Raises
        ------
        PartialRegistrationError
            Glue refused a call or a partition (the message names it), or kept throttling one. The partitions
            are then read back (``BatchGetPartition``): the error says how many are registered at their folder,
            and which.
        """
        try:
            return self._register(table, partitions)
        except CatalogError as exc:
            wanted = {tuple(gp.partition_values(table, p.values)): canonical_location(p.location) for p in partitions}
            try:
                have = self._locations(table, list(wanted))
                registered: set[tuple[str, ...]] | None = {v for v, loc in wanted.items() if have.get(v) == loc}
            except CatalogError:
                registered = None
            error = partial_registration(self.database, table, [p.values for p in partitions], registered, exc)
            log.error("glue %s: %d of %d partition(s) registered before Glue refused", self._name(table),
                      len(error.registered), len(wanted))
            raise error from exc

    def _register(self, table: Table, partitions: Sequence[Partition]) -> RegisterResult:
        wanted: dict[tuple[str, ...], dict[str, Any]] = {}
        for p in partitions:
            wanted[tuple(gp.partition_values(table, p.values))] = gp.partition_input(table, p.values, p.location)
        inputs = list(wanted.values())

        def key(item: Mapping[str, Any]) -> tuple[str, ...]:
            return tuple(item["Values"])

        existing = set(self._batch(
            "batch_create_partition", table,
            lambda part: gp.batch_create_partition_request(self.database, table, part, self.catalog_id),
            inputs, gp.CREATE_CHUNK, key, tolerated=gp.ALREADY_EXISTS,
        ))
        result = RegisterResult()
        result.created = [dict(zip(table.partition_keys, v)) for v in wanted if v not in existing]

        registered = self._registered(table, sorted(existing))
        # Re-sent: a partition that moved, or whose columns are not the table's any more (a column added or
        # widened: Athena checks a partition's column types against the table's).
        moved = [wanted[v] for v in sorted(existing)
                 if registered.get(v) != (wanted[v]["StorageDescriptor"]["Location"],
                                          _column_types(wanted[v]["StorageDescriptor"]))]
        self._batch(
            "batch_update_partition", table,
            lambda part: gp.batch_update_partition_request(self.database, table, part, self.catalog_id),
            moved, gp.UPDATE_CHUNK, key, tolerated=None,
        )
        result.repointed = [dict(zip(table.partition_keys, p["Values"])) for p in moved]
        result.unchanged = len(existing) - len(moved)
        log.info("glue %s: %d partition(s) created, %d re-pointed, %d unchanged", self._name(table),
                 len(result.created), len(result.repointed), result.unchanged)
        return result

    def _locations(self, table: Table, values: Sequence[tuple[str, ...]]) -> dict[tuple[str, ...], str]:
        """Registered locations of the given partitions (missing ones are absent from the result)."""
        return {v: location for v, (location, _) in self._registered(table, values).items()}

    def _registered(
        self, table: Table, values: Sequence[tuple[str, ...]]
    ) -> dict[tuple[str, ...], tuple[str, tuple[tuple[str, str], ...]]]:
        """Registered location and column types of the given partitions (missing ones are absent)."""
        out: dict[tuple[str, ...], tuple[str, tuple[tuple[str, str], ...]]] = {}
        for part in gp.chunks(list(values), gp.GET_CHUNK):
            pending = part
            for attempt in range(1, MAX_ATTEMPTS + 1):
                response = self._call(
                    "batch_get_partition", self._name(table),
                    **gp.batch_get_partition_request(self.database, table, pending, self.catalog_id),
                )
                for item in response.get("Partitions", []):
                    sd = item.get("StorageDescriptor", {})
                    out[tuple(item["Values"])] = (canonical_location(sd.get("Location", "")), _column_types(sd))
                pending = [tuple(k["Values"]) for k in response.get("UnprocessedKeys") or []]
                if not pending:
                    break
                if attempt == MAX_ATTEMPTS:
                    raise CatalogError(f"glue batch_get_partition on {self._name(table)} left "
                                       f"{len(pending)} partition(s) unprocessed after {MAX_ATTEMPTS} attempts")
                self._sleep(min(20.0, 0.5 * 2 ** (attempt - 1)))
        return out

    def partition_location(self, table: Table, values: Mapping[str, str]) -> str | None:
        """The registered location of one partition (``s3://``), or ``None``."""
        return self._locations(table, [tuple(gp.partition_values(table, values))]).get(
            tuple(gp.partition_values(table, values))
        )

    def list_partitions(
        self, table: Table, sources: Collection[str] | None = None, days: Collection[str] | None = None
    ) -> list[Partition]:
        """The registered partitions of some sources and days (``None``: all); empty when the table does not exist.

        Glue filters on its side (``GetPartitions`` with an ``Expression``, see
        :func:`~lakelib.catalog.glue_payloads.partition_expression`) and leaves the column schema out
        (``ExcludeColumnSchema``): a one-day run fetches that day's partitions, not the table's thousands.
        """
        from botocore.exceptions import ClientError

        sources = None if sources is None else {str(s) for s in sources}
        days = None if days is None else {str(d) for d in days}
        if sources == set() or days == set() or self._get_table(table) is None:
            return []
        request = gp.get_partitions_request(
            self.database, table, gp.partition_expression(table, sources, days), self.catalog_id
        )
        out = []
        try:
            for page in self.client.get_paginator("get_partitions").paginate(**request):
                for item in page.get("Partitions", []):
                    values = dict(zip(table.partition_keys, item["Values"]))
                    if selects(table, values, sources, days):  # the expression may ask for more
                        out.append(Partition(values, item.get("StorageDescriptor", {}).get("Location", "")))
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise CatalogError(f"glue GetPartitions on {self._name(table)} failed: {err.get('Code', '?')}: "
                               f"{one_line(err.get('Message', ''))}") from exc
        return out

    def drop_partitions(self, table: Table, values: Sequence[Mapping[str, str]]) -> None:
        """Remove partitions from Glue (never their files); missing ones are ignored."""
        if not values:
            return
        self._batch(
            "batch_delete_partition", table,
            lambda part: gp.batch_delete_partition_request(self.database, table, part, self.catalog_id),
            [tuple(gp.partition_values(table, v)) for v in values], gp.DELETE_CHUNK, tuple, tolerated=gp.NOT_FOUND,
        )
