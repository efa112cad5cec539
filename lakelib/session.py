"""The one place a SparkSession is built, for jobs and notebooks alike.

>>> from lakelib.config import load_config                  # doctest: +SKIP
>>> spark = build_session(load_config("conf/local.yaml"))   # doctest: +SKIP
>>> spark.table("segment_logs.events").groupBy("type").count().show()   # doctest: +SKIP

The session always runs in UTC, overwrites only the partitions a write produces (dynamic partition overwrite) and
stores ancient dates and timestamps exactly (:data:`REQUIRED_CONF`, whatever the config's ``spark:`` says).
With ``catalog.kind: spark`` it has Hive support:
the cluster's metastore on EMR (Glue when the cluster is configured so), and locally an embedded Derby metastore
under ``catalog.metastore`` (default ``<lake.tables>/_metastore``).
"""
from __future__ import annotations

import logging
import os
from importlib import resources
from typing import TYPE_CHECKING, Mapping

from lakelib.config import Config
from lakelib.paths import join

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

#: Settings every lakelib session gets; ``spark:`` in the config and ``extra`` override them.
#: The session's Hive client lets a metastore in the session (Spark's embedded one, or Glue through the Hive
#: client) take every widening of a typed table: with it on, Hive refuses ``boolean`` to ``string``. Safe here,
#: since a widening rewrites every older partition under the wider type before it changes the table.
HIVE_TYPE_CHANGES = "spark.hadoop.hive.metastore.disallow.incompatible.col.type.changes"

BASE_CONF: dict[str, str] = {
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
    HIVE_TYPE_CHANGES: "false",
}

#: Settings lakelib's results depend on: applied over the config's ``spark:`` (a copied setting that would misfile
#: rows, reject old timestamps or overwrite a whole table is replaced, with a warning). Timestamps are read and
#: written in UTC; Parquet stores dates and timestamps before 1900 (and before the 1582 calendar switch) exactly,
#: in the proleptic Gregorian calendar, instead of failing the write (``WRITE_ANCIENT_DATETIME``); a write replaces
#: only the partitions it produces. Spark 3.5 also knows the rebase settings under ``spark.sql.legacy.parquet.*``
#: names, which these replace.
REQUIRED_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInRead": "CORRECTED",
}

#: Older names of required settings: a config that sets one is overridden like the setting itself.
_LEGACY_NAMES = {
    "spark.sql.legacy.parquet.datetimeRebaseModeInWrite": "spark.sql.parquet.datetimeRebaseModeInWrite",
    "spark.sql.legacy.parquet.datetimeRebaseModeInRead": "spark.sql.parquet.datetimeRebaseModeInRead",
    "spark.sql.legacy.parquet.int96RebaseModeInWrite": "spark.sql.parquet.int96RebaseModeInWrite",
    "spark.sql.legacy.parquet.int96RebaseModeInRead": "spark.sql.parquet.int96RebaseModeInRead",
}

#: The quiet log4j2 configuration ``scripts/submit.sh local`` passes to the driver, also used when
#: :func:`build_session` starts the JVM itself (a notebook, ``lake sql``).
LOG4J2_QUIET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resources", "log4j2.properties")


def quiet_logger_levels(path: str | None = None) -> dict[str, str]:
    """Logger name -> level of the ``logger.<id>.name`` / ``logger.<id>.level`` pairs of a log4j2 properties file
    (default: the packaged one, read with ``importlib.resources`` so it works from a ``--py-files`` zip): the
    loggers that warn about things that are normal for lakelib, raised to ERROR (the one list of them).
    """
    if path is None:
        text = resources.files("lakelib").joinpath("resources/log4j2.properties").read_text(encoding="utf-8")
    else:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    entries: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        parts = key.strip().split(".")
        if sep and len(parts) == 3 and parts[0] == "logger" and parts[2] in ("name", "level"):
            entries.setdefault(parts[1], {})[parts[2]] = value.strip()
    return {e["name"]: e["level"].upper() for e in entries.values() if "name" in e and "level" in e}


def session_conf(config: Config | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The Spark settings :func:`build_session` applies, as a plain dict (no Spark needed).

    Parameters
    ----------
    config
        The job config, or ``None`` for lakelib's defaults only.
    extra
        Settings that win over everything else (tests use it for ``spark.sql.shuffle.partitions``).
    """
    conf = dict(BASE_CONF)
    if config is not None:
        conf["spark.sql.parquet.compression.codec"] = config.write.compression
        if config.catalog.kind == "spark" and config.lake.tables.startswith("file://"):
            metastore = config.catalog.metastore or join(config.lake.tables, "_metastore")
            conf["spark.sql.warehouse.dir"] = join(metastore, "warehouse")
            conf["spark.hadoop.javax.jdo.option.ConnectionURL"] = (
                f"jdbc:derby:;databaseName={metastore[len('file://'):]}/metastore_db;create=true"
            )
        conf.update(config.spark)
    conf.update(extra or {})
    for key, value in list(conf.items()):
        required = _LEGACY_NAMES.get(key, key)
        if required in REQUIRED_CONF and str(value) != REQUIRED_CONF[required]:
            log.warning("spark setting %s=%s replaced by %s=%s (lakelib needs it)", key, value, required,
                        REQUIRED_CONF[required])
            if key != required:
                del conf[key]
    conf.update(REQUIRED_CONF)
    return conf


def build_session(
    config: Config | None = None,
    app_name: str = "lakelib",
    *,
    master: str | None = None,
    extra: Mapping[str, str] | None = None,
    hive: bool | None = None,
) -> SparkSession:
    """Build (or join) the SparkSession for a job or a notebook.

    Parameters
    ----------
    config
        The job config; its ``spark:`` mapping and ``write.compression`` become Spark settings.
    app_name
        The application name shown by YARN and the Spark UI.
    master
        Only for tests and notebooks; jobs leave it to ``spark-submit``.
    extra
        Settings that win over the config's.
    hive
        Hive support (the session's metastore); by default on when ``catalog.kind`` is ``spark``.

    Returns
    -------
    SparkSession

    Notes
    -----
    Spark's INFO logging is turned down to WARN before the context starts, so a job's console shows the job's
    own progress; set ``LAKELIB_SPARK_LOG_LEVEL=INFO`` to see Spark's.
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    level = os.environ.get("LAKELIB_SPARK_LOG_LEVEL", "WARN").upper()
    starting_jvm = SparkContext._gateway is None and "PYSPARK_GATEWAY_PORT" not in os.environ
    quiet_file = os.path.isfile(LOG4J2_QUIET)  # not when lakelib is imported from a zip
    if starting_jvm and quiet_file and level == "WARN" and "PYSPARK_SUBMIT_ARGS" not in os.environ:
        os.environ["PYSPARK_SUBMIT_ARGS"] = (
            f'--driver-java-options "-Dlog4j2.configurationFile=file:{LOG4J2_QUIET}" pyspark-shell'
        )
    SparkContext._ensure_initialized()
    _set_jvm_log_levels(SparkContext._jvm, level)

    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    conf = session_conf(config, extra)
    for key, value in conf.items():
        builder = builder.config(key, value)
    if hive is None:
        hive = config is not None and config.catalog.kind == "spark"
    if hive:
        metastore_url = conf.get("spark.hadoop.javax.jdo.option.ConnectionURL", "")
        if metastore_url:
            home = metastore_url.split("databaseName=", 1)[1].rsplit("/metastore_db", 1)[0]
            os.makedirs(home, exist_ok=True)
            SparkContext._jvm.java.lang.System.setProperty("derby.system.home", home)
        builder = builder.enableHiveSupport()
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(level)
    _set_jvm_log_levels(spark.sparkContext._jvm, level)
    log.debug("Spark %s session %s ready", spark.version, app_name)
    return spark


def without_codegen(spark: SparkSession) -> SparkSession:
    """A clone of ``spark`` (its settings, catalog and cached data) that runs queries without whole-stage code
    generation: for many small writes of different schemas (hundreds of typed tables), where compiling each plan
    costs more than it saves on a few thousand rows."""
    from pyspark.sql import SparkSession

    clone = SparkSession(spark.sparkContext, spark._jsparkSession.cloneSession())
    clone.conf.set("spark.sql.codegen.wholeStage", "false")
    return clone


def _set_jvm_log_levels(jvm, level: str) -> None:
    try:
        configurator = jvm.org.apache.logging.log4j.core.config.Configurator
        levels = jvm.org.apache.logging.log4j.Level
        configurator.setRootLevel(levels.toLevel(level))
        quiet = level in ("WARN", "ERROR", "FATAL", "OFF")
        for name, quiet_level in quiet_logger_levels().items():  # -v: the packaged file's quiet loggers speak again
            configurator.setLevel(name, levels.toLevel(quiet_level if quiet else level))
    except Exception:  # pragma: no cover - a cluster with another logging backend
        log.debug("could not set the JVM log level", exc_info=True)
