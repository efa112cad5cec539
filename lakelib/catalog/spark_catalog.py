"""The ``spark`` backend: the session's Hive metastore, through Spark SQL.

Locally that is Spark's embedded Derby metastore (see :mod:`lakelib.session`); on EMR it is whatever the cluster's
Hive metastore is, the AWS Glue Data Catalog when the cluster has the ``spark-hive-site`` classification
``hive.metastore.client.factory.class = ...AWSGlueDataCatalogHiveClientFactory`` (see ``docs/catalog.md``).

Tables are external Hive-format Parquet tables (``STORED AS PARQUET LOCATION ...``) partitioned by string keys,
which Spark reads with its native Parquet reader and Athena reads through Glue. Partitions are added with
``ALTER TABLE ... ADD PARTITION ... LOCATION`` and re-pointed with ``ALTER TABLE ... PARTITION ... SET LOCATION``;
after every registration the table's cached metadata and file listings are refreshed, so ``spark.table(...)``
sees what was just written.

>>> catalog = SparkCatalog(spark, "segment_logs")                         # doctest: +SKIP
>>> catalog.ensure_table(EVENTS, "file:///tmp/lake/tables/events")       # doctest: +SKIP
>>> spark.table("segment_logs.events").count()                           # doctest: +SKIP
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Collection, Mapping, Sequence

from lakelib import paths
from lakelib.catalog.base import (
    Catalog,
    Partition,
    RegisterResult,
    check_adoptable,
    partial_registration,
    partition_name,
    selects,
    sources_and_days,
)
from lakelib.errors import CatalogError, one_line
from lakelib.schema import MARK, Table, create_table_ddl, type_key
from lakelib.typed import is_widening

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

#: Partitions per ``ALTER TABLE ... ADD PARTITION`` statement.
ADD_CHUNK = 100
S3A_FILE_SYSTEM = "org.apache.hadoop.fs.s3a.S3AFileSystem"


def sql_string(value: str) -> str:
    """A Spark SQL string literal.

    >>> print(sql_string("it's"))
    'it\\'s'
    """
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_ident(name: str) -> str:
    """A back-quoted Spark SQL identifier.

    >>> quote_ident("events")
    '`events`'
    """
    return "`" + name.replace("`", "``") + "`"


def partition_spec(table: Table, values: Mapping[str, str]) -> str:
    """``PARTITION (`sourceid`='web', `dt`='2020-01-02')`` in the table's key order.

    >>> from lakelib.schema import EVENTS
    >>> partition_spec(EVENTS, {"dt": "2020-01-02", "sourceid": "web"})
    "PARTITION (`sourceid`='web', `dt`='2020-01-02')"
    """
    missing = [k for k in table.partition_keys if k not in values]
    if missing:
        raise KeyError(f"partition of {table.name} has no value for {', '.join(missing)}")
    pairs = ", ".join(f"{quote_ident(k)}={sql_string(values[k])}" for k in table.partition_keys)
    return f"PARTITION ({pairs})"




class SparkCatalog(Catalog):
    """``catalog.kind: spark``.

    Parameters
    ----------
    spark
        The job's session; it must have Hive support for the tables to outlive it.
    database
        The metastore database.
    """

    kind = "spark"

    def __init__(self, spark: SparkSession, database: str) -> None:
        self.spark = spark
        self.database = database
        s3_impl = spark.sparkContext._jsc.hadoopConfiguration().get("fs.s3.impl")
        self._s3_is_s3a = s3_impl == S3A_FILE_SYSTEM

    def _location(self, uri: str) -> str:
        return paths.canonical_location(uri, s3a_is_s3=self._s3_is_s3a)

    def _name(self, table: Table) -> str:
        return f"{quote_ident(self.database)}.{quote_ident(table.name.lower())}"

    def _sql(self, statement: str, what: str):
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException

        log.debug("spark sql: %s", statement)
        try:
            return self.spark.sql(statement)
        except (PySparkException, Py4JError) as exc:
            raise CatalogError(f"spark metastore: {what} failed: {one_line(exc)}") from exc

    def _exists(self, table: Table) -> bool:
        return bool(self.spark.catalog.tableExists(f"{self.database}.{table.name.lower()}"))

    def ensure_table(self, table: Table, location: str) -> None:
        """Create the database and the external Parquet table; add columns the schema gained since.

        Raises
        ------
        CatalogError
            The metastore refused, or the registered table has a column of another type (change it by hand).
        """
        self._sql(f"CREATE DATABASE IF NOT EXISTS {quote_ident(self.database)}", f"creating database {self.database}")
        name = f"{self.database}.{table.name.lower()}"
        location = self._location(location)
        if not self._exists(table):
            ddl = create_table_ddl(table, location, self.database, literal=sql_string)
            self._sql(ddl, f"creating table {name}")
            log.info("created table %s at %s", name, location)
            return
        listed = self.spark.catalog.listColumns(f"{self.database}.{table.name.lower()}")
        have = {c.name.lower(): c for c in listed if not c.isPartition}
        meta = self._external_catalog().getTable(self.database, table.name.lower())
        mark = meta.properties().get(MARK[0])
        if not (mark.isDefined() and mark.get() == MARK[1]):
            check_adoptable(name, table, location, self._folder(meta.location()),
                            [c.name for c in listed if c.isPartition],
                            {n: type_key(c.dataType) for n, c in have.items()})
            self._sql(f"ALTER TABLE {self._name(table)} SET TBLPROPERTIES ({sql_string(MARK[0])}="
                      f"{sql_string(MARK[1])})", f"marking {name} as lakelib's")
            log.info("table %s: made by an older lakelib, marked as lakelib's", name)
        widened = []
        for col in table.columns:
            got = have.get(col.name)
            registered = None if got is None else type_key(got.dataType)
            if registered is not None and registered != type_key(col.type):
                if not is_widening(registered, col.type):
                    raise CatalogError(f"spark metastore: table {name} has column {col.name} as {got.dataType}, "
                                       f"lakelib writes {col.type}")
                widened.append(f"{col.name} {registered} -> {col.type}")
        added = [c for c in table.columns if c.name not in have]
        if widened:
            self._set_data_schema(table, have, widened)
            log.info("widened column(s) of %s: %s%s", name, ", ".join(widened),
                     f"; added {', '.join(c.name for c in added)}" if added else "")
        elif added:
            cols = ", ".join(f"{quote_ident(c.name)} {c.type}" for c in added)
            self._sql(f"ALTER TABLE {self._name(table)} ADD COLUMNS ({cols})", f"adding columns to {name}")
            log.info("added column(s) %s to %s", ", ".join(c.name for c in added), name)
        registered = self._folder(self._external_catalog().getTable(self.database, table.name.lower()).location())
        if not paths.same_location(registered, location, s3a_is_s3=False):
            self._sql(f"ALTER TABLE {self._name(table)} SET LOCATION {sql_string(location)}",
                      f"setting the location of {name}")
            log.info("re-pointed table %s from %s to %s", name, registered, location)

    def ensure_tables(self, items: Sequence[tuple[Table, str]]) -> None:
        """:meth:`ensure_table` for many tables: one metastore call reads them all; a table that is lakelib's, at
        its location, with every column at its type is left alone, the others go through :meth:`ensure_table`."""
        if not items:
            return
        self._sql(f"CREATE DATABASE IF NOT EXISTS {quote_ident(self.database)}", f"creating database {self.database}")
        jvm = self.spark._jvm
        names = jvm.java.util.ArrayList()
        for table, _ in items:
            names.add(table.name.lower())
        found = {}
        it = self._external_catalog().getTablesByName(self.database, jvm.PythonUtils.toSeq(names)).iterator()
        while it.hasNext():
            meta = it.next()
            found[str(meta.identifier().table()).lower()] = meta
        for table, location in items:
            meta = found.get(table.name.lower())
            if meta is None or not self._up_to_date(table, location, meta):
                self.ensure_table(table, location)

    def _up_to_date(self, table: Table, location: str, meta: Any) -> bool:
        """Whether a table's metadata already is what :meth:`ensure_table` would make it."""
        mark = meta.properties().get(MARK[0])
        if not (mark.isDefined() and mark.get() == MARK[1]):
            return False
        have = {}
        fields = meta.dataSchema().fields()
        for i in range(len(fields)):
            have[str(fields[i].name()).lower()] = type_key(str(fields[i].dataType().catalogString()))
        if any(have.get(c.name) != type_key(c.type) for c in table.columns):
            return False
        return paths.same_location(self._folder(meta.location()), self._location(location), s3a_is_s3=False)

    def _set_data_schema(self, table: Table, have: Mapping[str, object], widened: Sequence[str]) -> None:
        """Replace the table's data columns with ``table``'s (wider types, new columns appended).

        Spark SQL cannot change a Hive table's column type (``ALTER TABLE ... CHANGE COLUMN`` accepts comments
        only, ``REPLACE COLUMNS`` needs a v2 table), so the session's external catalog is asked directly. A Hive
        metastore refuses ``boolean`` to ``string`` while its ``hive.metastore.disallow.incompatible.col.type.changes``
        is on; lakelib's sessions turn it off (:data:`lakelib.session.HIVE_TYPE_CHANGES`), which a remote metastore
        does not see: then the error says what to set, and the table is left as it was.
        """
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException

        from lakelib.schema import spark_schema

        unknown = sorted(set(have) - set(table.column_names))
        if unknown:
            raise CatalogError(f"spark metastore: table {self.database}.{table.name} has column(s) lakelib does not "
                               f"write ({', '.join(unknown)}): widen it by hand")
        schema = self.spark._jsparkSession.parseDataType(spark_schema(table).json())
        try:
            self._external_catalog().alterTableDataSchema(self.database, table.name.lower(), schema)
        except (PySparkException, Py4JError) as exc:
            name = f"{self.database}.{table.name}"
            if "incompatible" in str(exc):
                raise CatalogError(
                    f"spark metastore refused to widen {name} ({', '.join(widened)}): set "
                    "hive.metastore.disallow.incompatible.col.type.changes=false in the metastore's hive-site "
                    "(lakelib rewrites every older partition under the wider type first) or use Glue as the "
                    "metastore; the table is as it was") from exc
            raise CatalogError(f"spark metastore: widening {name} failed: {one_line(exc)}") from exc
        self.refresh(table)

    def foreign_tables(self) -> set[str]:
        """Names of the database's tables without lakelib's mark (none when the database does not exist)."""
        if not self.spark.catalog.databaseExists(self.database):
            return set()
        external = self._external_catalog()
        names = external.listTables(self.database)
        if names.isEmpty():
            return set()
        out = set()
        it = external.getTablesByName(self.database, names).iterator()
        while it.hasNext():
            meta = it.next()
            mark = meta.properties().get(MARK[0])
            if not (mark.isDefined() and mark.get() == MARK[1]):
                out.add(str(meta.identifier().table()).lower())
        return out

    def register_partitions(self, table: Table, partitions: Sequence[Partition]) -> RegisterResult:
        """Add missing partitions, re-point moved ones, then refresh the table so readers see the change.

        Raises
        ------
        PartialRegistrationError
            The metastore refused a statement; the partitions are read back and the error says which are
            registered at their folder.
        """
        try:
            return self._register(table, partitions)
        except CatalogError as exc:
            keys = table.partition_keys
            try:
                listed = self.list_partitions(table, *sources_and_days(table, [p.values for p in partitions]))
                have = {tuple(p.values[k] for k in keys): p.location for p in listed}
                registered: set[tuple[str, ...]] | None = {
                    key for key, p in ((tuple(str(p.values[k]) for k in keys), p) for p in partitions)
                    if key in have and paths.same_location(have[key], self._location(p.location), s3a_is_s3=False)
                }
                self.refresh(table)
            except CatalogError:
                registered = None
            raise partial_registration(self.database, table, [p.values for p in partitions], registered, exc) from exc

    def _register(self, table: Table, partitions: Sequence[Partition]) -> RegisterResult:
        name = f"{self.database}.{table.name.lower()}"
        keys = table.partition_keys
        registered = {
            tuple(p.values[k] for k in keys): p.location
            for p in self.list_partitions(table, *sources_and_days(table, [p.values for p in partitions]))
        }
        wanted = {tuple(str(p.values[k]) for k in keys): Partition(p.values, self._location(p.location))
                  for p in partitions}
        result = RegisterResult()
        new = [p for key, p in wanted.items() if key not in registered]
        moved = [p for key, p in wanted.items()
                 if key in registered and not paths.same_location(registered[key], p.location, s3a_is_s3=False)]
        result.unchanged = len(wanted) - len(new) - len(moved)
        for start in range(0, len(new), ADD_CHUNK):
            specs = " ".join(f"{partition_spec(table, p.values)} LOCATION {sql_string(p.location)}"
                             for p in new[start:start + ADD_CHUNK])
            self._sql(f"ALTER TABLE {self._name(table)} ADD IF NOT EXISTS {specs}", f"adding partitions to {name}")
        for p in moved:
            spec = partition_spec(table, p.values)
            self._sql(f"ALTER TABLE {self._name(table)} {spec} SET LOCATION {sql_string(p.location)}",
                      f"re-pointing partition {partition_name(table, p.values)} of {self.database}")
        result.created = [{k: str(p.values[k]) for k in table.partition_keys} for p in new]
        result.repointed = [{k: str(p.values[k]) for k in table.partition_keys} for p in moved]
        self.refresh(table)
        log.info("spark metastore %s: %d partition(s) created, %d re-pointed, %d unchanged", name,
                 len(result.created), len(result.repointed), result.unchanged)
        return result

    def refresh(self, table: Table) -> None:
        """Drop Spark's cached metadata and file listings of a table (its files may have been rewritten)."""
        if self._exists(table):
            self.spark.catalog.refreshTable(f"{self.database}.{table.name.lower()}")

    def _folder(self, uri) -> str:
        """A location the metastore holds (a ``java.net.URI``, percent-encoded: ``sourceid=my%20source``) as the
        folder's name, which is how the rest of lakelib spells it (``sourceid=my source``)."""
        return str(self.spark._jvm.org.apache.hadoop.fs.Path(uri).toString())

    def _external_catalog(self):
        return self.spark._jsparkSession.sharedState().externalCatalog()

    def list_partitions(
        self, table: Table, sources: Collection[str] | None = None, days: Collection[str] | None = None
    ) -> list[Partition]:
        """The registered partitions of some sources and days (``None``: all), with their locations as the
        metastore stores them (``file:/...``, ``s3://...``).

        The metastore is asked with a partial partition spec, one call per requested source (with the day when
        one day is asked), so that a Hive or Glue metastore returns those partitions only; the answer is filtered
        again here for the other days.
        """
        from py4j.protocol import Py4JError

        sources = None if sources is None else sorted({str(s) for s in sources})
        days = None if days is None else sorted({str(d) for d in days})
        if sources == [] or days == [] or not self._exists(table):
            return []
        source_key, day_key = table.source_key, table.day_key
        specs = [{source_key: s} for s in sources] if sources is not None else [{}]
        if day_key is not None and days is not None and len(days) == 1:
            specs = [dict(spec, **{day_key: days[0]}) for spec in specs]
        out = []
        try:
            for spec in specs:
                for values, location in self._list(table, spec):
                    if selects(table, values, sources, days):
                        out.append(Partition(values, location))
        except Py4JError as exc:
            raise CatalogError(f"spark metastore: listing partitions of {self.database}.{table.name} failed: "
                               f"{one_line(exc)}") from exc
        return out

    def _list(self, table: Table, spec: Mapping[str, str]) -> list[tuple[dict[str, str], str]]:
        """``(values, location)`` of the partitions matching a partial spec (``{}``: all), in one metastore call."""
        jvm = self.spark._jvm
        option = jvm.scala.Option.empty()
        if spec:
            java_map = jvm.java.util.HashMap()
            for key, value in spec.items():
                java_map.put(key, value)
            option = jvm.scala.Option.apply(jvm.PythonUtils.toScalaMap(java_map))
        parts = self._external_catalog().listPartitions(self.database, table.name.lower(), option)
        out = []
        it = parts.iterator()
        while it.hasNext():
            p = it.next()
            values = {k: p.spec().get(k).get() for k in table.partition_keys}
            out.append((values, self._folder(p.location())))
        return out

    def partition_location(self, table: Table, values: Mapping[str, str]) -> str | None:
        """The registered folder of one partition, or ``None``."""
        key = [str(values[k]) for k in table.partition_keys]
        for p in self.list_partitions(table, sources=[key[0]], days=key[1:] or None):
            if [p.values[k] for k in table.partition_keys] == key:
                return p.location
        return None

    def drop_partitions(self, table: Table, values: Sequence[Mapping[str, str]]) -> None:
        """Remove partitions from the metastore (external table: the files stay); missing ones are ignored."""
        if not values or not self._exists(table):
            return
        specs = ", ".join(partition_spec(table, v) for v in values)
        self._sql(f"ALTER TABLE {self._name(table)} DROP IF EXISTS {specs}",
                  f"dropping partitions of {self.database}.{table.name}")
        self.refresh(table)

