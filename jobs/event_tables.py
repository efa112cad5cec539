"""Typed tables from ``events``: one per call type and one per track event, properties and traits as columns.

For each requested source and received day, every ``events`` row lands in its type's table (``tracks``,
``identifies``, ``pages``, ``screens``, ``groups``, ``aliases``) and a track call with an event name also in its
event's table (``Order Completed`` -> ``order_completed``), with ``context`` flattened to ``context_*`` columns and
properties (traits for identifies and groups) flattened to typed columns. The rules (names, depth, types,
widening) are in :mod:`lakelib.typed` and ``docs/typed-tables.md``.

    spark-submit jobs/event_tables.py --config conf/local.yaml --date 2026-01-01 --end-date 2026-01-03

How a run goes, whatever the number of event names (one scan of ``events``, not one per table):

1. the events partitions are read once and their rows, flattened but untyped (``attrs``: path -> text), are
   written to a staging folder ``<lake.tables>/_staging/event_tables/<run_id>/_key=<table key>/``;
2. one aggregation over the staging rows gives the value types per table and path; the registry of typed tables
   (``<lake.tables>/_lakelib/event_tables.json``) turns them into new tables, new columns and widenings;
3. each table is written from its own staging folder (dynamic partition overwrite of its ``sourceid``/``dt``
   partitions; several tables at once); a table whose column widened gets its older partitions rewritten
   under the wider type (neither Spark line reads a Parquet INT64 as DOUBLE or STRING);
4. the written partitions are counted back from their files and reconciled with ``events`` (per partition,
   per table); only then are the tables' schemas and partitions registered and the registry saved.

A rerun rewrites the same partitions with the same rows, and removes a typed partition of a requested day whose
events are gone (an event name that no longer occurs that day).
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

if __package__ in (None, ""):  # run as a script by spark-submit from a checkout: the repository root is importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lakelib.catalog.base import Partition
from lakelib.config import Config
from lakelib.errors import UsageError, VerificationError
from lakelib.paths import join
from lakelib.report import RunReport
from lakelib.runner import job_parser, requested_days, requested_sources, run_job
from lakelib.schema import EVENTS
from lakelib.typed import (
    BASE_COLUMNS,
    PARTITION_KEYS,
    TYPE_TABLES,
    Observed,
    Registry,
    TypedTable,
    conform,
    observe,
    registry_uri,
    table_rows,
    typed_rows,
)

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from lakelib.catalog.base import Catalog
    from lakelib.storage import Storage

JOB = "event_tables"
#: Tables written at the same time (Spark jobs submitted from as many driver threads).
PARALLEL_WRITES = 4
#: The ``events`` columns read.
INPUT_COLUMNS = ("type",) + BASE_COLUMNS + ("event", "name", "groupid", "previousid", "context", "properties",
                                             "traits")

log = logging.getLogger(JOB if __name__ == "__main__" else __name__)

Key = tuple[str, str]  # (sourceid, dt)


# --- pure helpers ----------------------------------------------------------------------------------------------


def staging_key(message_type: str, event: str | None) -> str:
    """The staging folder key of a table's rows: 16 hex of sha1 of ``type/event`` (Spark computes the same).

    >>> staging_key("track", None) == staging_key("track", "")
    True
    """
    return hashlib.sha1(f"{message_type}/{event or ''}".encode()).hexdigest()[:16]


def staging_key_column() -> Any:
    """Spark: :func:`staging_key` of each row's ``_type`` and ``_event``."""
    from pyspark.sql import functions as F

    return F.substring(F.sha1(F.concat_ws("/", "_type", F.coalesce("_event", F.lit("")))), 1, 16)


def expected_rows(counts: Iterable[Mapping[str, Any]], plan_registry: Registry) -> dict[Key, dict[str, int]]:
    """Rows each typed table must have per partition, from ``events`` counts by ``type`` and ``event``.

    Parameters
    ----------
    counts
        Rows with ``sourceid``, ``dt``, ``type``, ``event`` (``None`` or blank: a track call without a name)
        and ``n``.
    plan_registry
        The registry holding every table of the run.
    """
    out: dict[Key, dict[str, int]] = {}
    for row in counts:
        tables = out.setdefault((row["sourceid"], row["dt"]), {})
        name = TYPE_TABLES[row["type"]]
        tables[name] = tables.get(name, 0) + int(row["n"])
        event = row["event"]
        if row["type"] == "track" and event is not None and event.strip():
            name = plan_registry.table_for("track", event).name
            tables[name] = tables.get(name, 0) + int(row["n"])
    return out


def reconcile(
    expected: Mapping[Key, Mapping[str, int]], written: Mapping[Key, Mapping[str, int]],
    events: Mapping[Key, Mapping[str, int]],
) -> list[dict[str, Any]]:
    """Per partition: the events by type, the rows of each typed table, and every difference found.

    Returns
    -------
    list of dict
        ``sourceid``, ``dt``, ``events``, ``events_by_type``, ``tracks_without_event``, ``tables`` (table ->
        rows read back), ``mismatches`` (``table``, ``expected``, ``written``); sorted by key.

    >>> reconcile({("web", "d"): {"tracks": 2, "a": 2}}, {("web", "d"): {"tracks": 2, "a": 1}},
    ...           {("web", "d"): {"track": 2}})[0]["mismatches"]
    [{'table': 'a', 'expected': 2, 'written': 1}]
    """
    out = []
    for key in sorted(set(expected) | set(written)):
        want, got = expected.get(key, {}), written.get(key, {})
        by_type = dict(sorted(events.get(key, {}).items()))
        event_rows = sum(n for t, n in want.items() if t not in TYPE_TABLES.values())
        mismatches = [{"table": t, "expected": want.get(t, 0), "written": got.get(t, 0)}
                      for t in sorted(set(want) | set(got)) if want.get(t, 0) != got.get(t, 0)]
        out.append({
            "sourceid": key[0], "dt": key[1], "events": sum(by_type.values()), "events_by_type": by_type,
            "tracks_without_event": by_type.get("track", 0) - event_rows,
            "tables": dict(sorted(got.items())), "mismatches": mismatches,
        })
    return out


# --- I/O steps -------------------------------------------------------------------------------------------------


def load_registry(storage: Storage, tables_root: str) -> Registry:
    """The registry, empty when no run wrote one yet."""
    uri = registry_uri(tables_root)
    return Registry.from_json(storage.read_text(uri) if storage.exists(uri) else None)


def stage_rows(spark: SparkSession, events: DataFrame, staging: str) -> DataFrame:
    """Write the flattened rows once, partitioned by table key; returns them read back (one scan of events)."""
    rows = typed_rows(events).withColumn("_key", staging_key_column())
    rows.repartition("_key", "sourceid", "dt").write.mode("overwrite").partitionBy("_key").parquet(staging)
    return spark.read.schema(rows.drop("_key").schema).parquet(staging)


def write_table(spark: SparkSession, config: Config, staging: str, schema: Any, table: TypedTable,
                keys: Sequence[Key]) -> list[Partition]:
    """Write one typed table's partitions from its staging folder (no shuffle: one file per staging file)."""
    from lakelib.tables import write_partitions

    rows = spark.read.schema(schema).parquet(join(staging, f"_key={staging_key(table.message_type, table.event)}"))
    parts = [dict(zip(PARTITION_KEYS, k)) for k in keys]
    return write_partitions(table_rows(rows, table), table.table(), config.lake.tables, config.write.compression,
                            partitions=parts, one_file_per_partition=False)


def rewrite_older(
    spark: SparkSession, config: Config, storage: Storage, catalog: Catalog, table: TypedTable,
    skip: Sequence[Key],
) -> tuple[list[Partition], dict[Key, int]]:
    """Rewrite the partitions of ``table`` (other than ``skip``) whose files hold a column narrower than the table's.

    Returns the partitions rewritten and the rows each must hold (from events, else from the old files).

    A partition is rebuilt from its ``events`` partition, as a run over that day would build it now (the same
    values whatever the order the days were run in); one whose events are gone is cast from its own files
    (:func:`lakelib.typed.conform`: numbers then read as Spark writes them, ``12`` as ``12.0`` once a double).
    """
    from functools import reduce

    from pyspark.sql import functions as F

    from lakelib.schema import spark_type
    from lakelib.tables import find_partitions, read_partitions, write_partitions

    t = table.table()
    wanted = {c.name: spark_type(c.type) for c in t.columns}
    stale = []
    for part in find_partitions(t, config.lake.tables, storage, catalog,
                                skip=[dict(zip(PARTITION_KEYS, k)) for k in skip]):
        fields = spark.read.parquet(part.location).schema.fields
        if any(wanted.get(f.name, f.dataType) != f.dataType for f in fields):
            stale.append(part)
    if not stale:
        return [], {}
    keys = {(p.values["sourceid"], p.values["dt"]) for p in stale}
    events_parts = [p for p in find_partitions(EVENTS, config.lake.tables, storage, catalog,
                                               sorted({k[0] for k in keys}), sorted({k[1] for k in keys}))
                    if (p.values["sourceid"], p.values["dt"]) in keys]
    from_events = {(p.values["sourceid"], p.values["dt"]) for p in events_parts}
    frames, expected = [], {}
    if events_parts:
        events = read_partitions(spark, EVENTS, events_parts, INPUT_COLUMNS).where(F.col("type") == table.message_type)
        if table.event is not None:
            events = events.where(F.col("event") == F.lit(table.event))
        expected.update({(r["sourceid"], r["dt"]): int(r["count"]) for r in events.groupBy(*PARTITION_KEYS).count()
                         .collect()})
        frames.append(table_rows(typed_rows(events), table))
    for part in stale:
        key = (part.values["sourceid"], part.values["dt"])
        if key not in from_events:
            df = spark.read.parquet(part.location)
            expected[key] = df.count()  # before the rewrite replaces these files
            frames.append(conform(df.select(*df.columns, *[F.lit(part.values[k]).alias(k) for k in PARTITION_KEYS]), t))
    # A day whose events no longer hold this table's calls: nothing to rewrite, the old files must go.
    gone = [p for p in stale if (p.values["sourceid"], p.values["dt"]) in from_events
            and not expected.get((p.values["sourceid"], p.values["dt"]))]
    for part in gone:
        catalog.drop_partitions(t, [part.values])
        storage.delete(part.location)
        log.info("%s: removed stale partition %s/%s (no such events any more)", t.name, part.values["sourceid"],
                 part.values["dt"])
    stale = [p for p in stale if p not in gone]
    if not stale:
        return [], {}
    log.info("%s: rewriting %d older partition(s) under the wider type(s) (%d from events)", t.name, len(stale),
             len(from_events))
    union = reduce(lambda a, b: a.unionByName(b), frames)
    written = write_partitions(union, t, config.lake.tables, config.write.compression,
                               partitions=[p.values for p in stale])
    return written, {(p.values["sourceid"], p.values["dt"]): expected.get((p.values["sourceid"], p.values["dt"]), 0)
                     for p in stale}


def count_back(spark: SparkSession, partitions: Mapping[str, Sequence[Partition]]) -> dict[Key, dict[str, int]]:
    """Rows per table and partition, counted from the written files in one Spark job."""
    from pyspark.sql import functions as F

    folders = {_folder_key(p.location): (table, p.values) for table, parts in partitions.items() for p in parts}
    if not folders:
        return {}
    files = (spark.read.schema("messageid string").option("recursiveFileLookup", "true")
             .parquet(*[p.location for parts in partitions.values() for p in parts])
             .groupBy(F.input_file_name().alias("file")).count().collect())
    out: dict[Key, dict[str, int]] = {}
    for row in files:
        table, values = folders[_folder_key(row["file"].rsplit("/", 1)[0])]
        tables = out.setdefault((values["sourceid"], values["dt"]), {})
        tables[table] = tables.get(table, 0) + int(row["count"])
    return out


def _folder_key(uri: str) -> str:
    """A folder as a comparable key: ``file:/x``, ``file:///x`` and ``/x`` are the same folder."""
    from urllib.parse import unquote

    return re.sub(r"^file:/*", "/", unquote(uri)).rstrip("/")


def remove_stale(
    config: Config, storage: Storage, catalog: Catalog, registry: Registry, written: Mapping[str, Sequence[Key]],
    sources: Sequence[str] | None, days: Sequence[Any],
) -> list[dict[str, str]]:
    """Drop the partitions of the requested source-days that a typed table holds but this run did not write."""
    from lakelib.tables import find_partitions

    removed = []
    for name, table in sorted(registry.tables.items()):
        t = table.table()
        keep = set(written.get(name, ()))
        for part in find_partitions(t, config.lake.tables, storage, catalog, sources, days):
            key = (part.values["sourceid"], part.values["dt"])
            if key in keep:
                continue
            catalog.drop_partitions(t, [part.values])
            storage.delete(part.location)
            removed.append({"table": name, "sourceid": key[0], "dt": key[1]})
            log.info("%s: removed stale partition %s/%s (no such events any more)", name, *key)
    return removed


def build_tables(args: argparse.Namespace, config: Config, report: RunReport) -> str:
    """The job body for :func:`lakelib.runner.run_job`."""
    from pyspark.sql import functions as F

    from lakelib.catalog import open_catalog
    from lakelib.session import build_session
    from lakelib.storage import Storage
    from lakelib.tables import find_partitions, read_partitions, register

    days = requested_days(args)
    if days is None:
        raise UsageError("--date is required (the received day to build, or the first one with --end-date)")
    sources = requested_sources(args, config)
    report.extra.update({"sources": sources or "all", "dates": [days[0].isoformat(), days[-1].isoformat()]})
    spark = build_session(config, app_name=JOB)
    storage = Storage(spark)
    catalog = open_catalog(config, spark)
    root = config.lake.tables

    parts = find_partitions(EVENTS, root, storage, catalog, sources or None, days)
    log.info("events: %d partition(s) for %s, %s .. %s", len(parts), ", ".join(sources) or "every source",
             days[0], days[-1])
    registry = load_registry(storage, root)
    if not parts:
        report.totals = {"partitions": 0, "events": 0, "tables_written": 0, "rows_written": 0}
        return "nothing_to_do"
    events = read_partitions(spark, EVENTS, parts, INPUT_COLUMNS)
    staging = join(root, "_staging", JOB, report.run_id)
    try:
        staged = stage_rows(spark, events, staging)
        counts = [r.asDict() for r in events.groupBy("sourceid", "dt", "type", "event").agg(
            F.count(F.lit(1)).alias("n")).collect()]
        observed = [Observed(r["_type"], r["_event"], tuple(r["path"]), frozenset(r["kinds"]))
                    for r in observe(staged).collect()]
        names = {r["event"] for r in counts if r["type"] == "track" and r["event"] and r["event"].strip()}
        plan = registry.plan(observed, events=names)
        expected = expected_rows(counts, plan.registry)
        keys_by_table: dict[str, list[Key]] = {}
        for key, tables in expected.items():
            for name in tables:
                keys_by_table.setdefault(name, []).append(key)
        log.info("%d typed table(s) to write (%d new), %d column(s) added, %d widened", len(keys_by_table),
                 len(plan.new_tables), len(plan.added), len(plan.widened))
        for w in plan.widened:
            log.info("  widening %s.%s: %s -> %s", w["table"], w["column"], w["from"], w["to"])

        def write(name: str) -> tuple[str, list[Partition]]:
            table = plan.registry.tables[name]
            return name, write_table(spark, config, staging, staged.schema, table, sorted(keys_by_table[name]))

        with ThreadPoolExecutor(PARALLEL_WRITES) as pool:
            written = dict(pool.map(write, sorted(keys_by_table)))
        rewritten: dict[str, list[Partition]] = {}
        rewritten_rows: dict[Key, dict[str, int]] = {}
        for name in sorted({w["table"] for w in plan.widened}):
            rewritten[name], rows = rewrite_older(spark, config, storage, catalog, plan.registry.tables[name],
                                                  keys_by_table.get(name, []))
            for key, n in rows.items():
                rewritten_rows.setdefault(key, {})[name] = n
        for w in plan.widened:
            w["partitions_rewritten"] = len(rewritten.get(w["table"], []))

        events_by_type: dict[Key, dict[str, int]] = {}
        for r in counts:
            by_type = events_by_type.setdefault((r["sourceid"], r["dt"]), {})
            by_type[r["type"]] = by_type.get(r["type"], 0) + int(r["n"])
        back = count_back(spark, {n: written.get(n, []) + rewritten.get(n, []) for n in set(written) | set(rewritten)})
        summary = reconcile(expected, {k: v for k, v in back.items() if k in expected}, events_by_type)
        report.partitions = summary
        # Older partitions rewritten under a wider type: the same check, against their own events (or old files).
        older = reconcile(rewritten_rows, {k: {t: v.get(t, 0) for t in rewritten_rows[k]} for k, v in back.items()
                                           if k in rewritten_rows}, {})
        report.extra["rewritten_partitions"] = [
            {"sourceid": p["sourceid"], "dt": p["dt"], "tables": p["tables"], "mismatches": p["mismatches"]}
            for p in older]
        bad = [(p["sourceid"], p["dt"], m) for p in summary + older for m in p["mismatches"]]
        if bad:
            s, d, m = bad[0]
            raise VerificationError(
                f"{m['table']} {s}/{d}: {m['written']} row(s) written, {m['expected']} expected from events "
                f"({len(bad)} mismatch(es)); nothing was registered")

        for name in sorted(set(written) | set(rewritten)):
            register(catalog, plan.registry.tables[name].table(), root, written.get(name, []) + rewritten.get(name, []))
        storage.write_text(registry_uri(root), plan.registry.to_json())
        removed = remove_stale(config, storage, catalog, plan.registry, keys_by_table,
                               sorted({p.values["sourceid"] for p in parts}), days)
    finally:
        storage.delete(staging)

    report.extra.update({
        "event_tables": {t.event: t.name for t in plan.registry.tables.values() if t.event in names},
        "new_tables": plan.new_tables, "columns_added": plan.added, "widened": plan.widened,
        "stale_partitions_removed": removed,
    })
    report.totals = {
        "partitions": len(summary), "events": sum(p["events"] for p in summary),
        "tables_written": len(written), "rows_written": sum(sum(p["tables"].values()) for p in summary),
        "new_tables": len(plan.new_tables), "columns_added": len(plan.added), "widenings": len(plan.widened),
        "partitions_rewritten": sum(len(v) for v in rewritten.values()),
    }
    for p in summary:
        log.info("  %s %s: %d events -> %d typed table(s), reconciled", p["sourceid"], p["dt"], p["events"],
                 len(p["tables"]))
    return "succeeded"


# --- main ------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The common job arguments."""
    return job_parser(JOB, "Typed tables per call type and per track event, from events.")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; returns the exit status (0 ok, 1 failed, 2 usage or config error)."""
    return run_job(JOB, build_parser(), argv, build_tables)


if __name__ == "__main__":
    sys.exit(main())
