"""Typed tables from ``events``: one per call type and one per track event, properties and traits as columns.

For each requested source and received day, every ``events`` row lands in its type's table (``tracks``,
``identifies``, ``pages``, ``screens``, ``groups``, ``aliases``) and a track call with an event name also in its
event's table (``Order Completed`` -> ``order_completed``), with ``context`` flattened to ``context_*`` columns and
properties (traits for identifies and groups) flattened to typed columns. The rules (names, depth, types,
widening) are in :mod:`lakelib.typed` and ``docs/typed-tables.md``.

    spark-submit jobs/event_tables.py --config conf/local.yaml --date 2026-01-01 --end-date 2026-01-03
    spark-submit jobs/event_tables.py --config conf/local.yaml --changed

``--changed`` builds exactly the ``events`` partitions converted since this job's last ``--changed`` run
(:func:`lakelib.changes.changed_partitions`; ``docs/operations.md``).

How a run goes, whatever the number of event names (one scan of ``events``, not one per table):

1. the events partitions are read once and their rows, flattened but untyped (``attrs``: path -> text), are
   written to a scratch folder ``<lake.tables>/_staging/event_tables/<run_id>/_key=<table key>/``;
2. one aggregation over the scratch rows gives the value types per table and path; the registry of typed tables
   (``<lake.tables>/_lakelib/event_tables.json``) turns them into new tables, new columns and widenings;
3. each table's new version is staged from its own scratch folder through the publish protocol (several tables
   at once) and verified against the rows ``events`` holds for it, per partition; a table whose column widened
   gets its older partitions staged again under the wider type (neither Spark line reads a Parquet INT64 as
   DOUBLE or STRING);
4. only when every table verified are they all published (schemas, then partitions, one catalog batch per table)
   and the registry saved.

A rerun publishes the same partitions with the same rows, and removes a typed partition of a requested day whose
events are gone (an event name that no longer occurs that day).
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

if __package__ in (None, ""):  # run as a script by spark-submit from a checkout: the repository root is importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lakelib.changes import add_changed_arguments, changed_partitions, mark_followed
from lakelib.config import Config
from lakelib.errors import UsageError
from lakelib.forget import Forgotten, load_forgotten, mark_goes
from lakelib.paths import join
from lakelib.progress import progress
from lakelib.publish import Staged
from lakelib.report import RunReport
from lakelib.runner import job_parser, requested_days, requested_sources, run_job
from lakelib.schema import EVENTS
from lakelib.session import without_codegen
from lakelib.typed import (
    BASE_COLUMNS,
    PARTITION_KEYS,
    REGISTRY_NAME,
    TYPE_TABLES,
    Observed,
    Plan,
    Registry,
    TypedTable,
    conform,
    observe,
    table_rows,
    typed_rows,
)

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from lakelib.tables import Tables

JOB = "event_tables"
#: The lock two runs take in turn: each reads the registry of typed tables at its start and saves it at its end.
LOCK_NAME = "event_tables.lock"
MB = 1024 * 1024
#: Tables written at the same time (Spark jobs submitted from as many driver threads).
PARALLEL_WRITES = 4
#: A typed table with fewer rows than this in a run is written without whole-stage code generation
#: (:func:`lakelib.session.without_codegen`): compiling each table's plan costs more than it saves.
SMALL_TABLE_ROWS = 100_000
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


def rows_per_file(partition_bytes: Mapping[Key, int], rows: int, target_bytes: int) -> int:
    """Rows a typed table's file holds at most, so files land near ``target_bytes`` as ``events`` files do: the
    ``events`` bytes per row of the run's partitions, applied to every table (a typed row carries the same values,
    flattened).

    >>> rows_per_file({("web", "d"): 4_000}, 100, 1_000)
    25
    """
    total = sum(partition_bytes.values())
    return max(1, int(target_bytes * rows / total)) if total and rows else 0


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


def stage_rows(spark: SparkSession, events: DataFrame, scratch: str) -> DataFrame:
    """Write the flattened rows once, partitioned by table key; returns them read back (one scan of events)."""
    rows = typed_rows(events).withColumn("_key", staging_key_column())
    rows.repartition("_key", "sourceid", "dt").write.mode("overwrite").partitionBy("_key").parquet(scratch)
    return spark.read.schema(rows.drop("_key").schema).parquet(scratch)


def stage_table(tables: Tables, scratch: str, schema: Any, table: TypedTable, expected: Mapping[Key, int],
                drop: Sequence[Key], max_rows: int = 0, spark: SparkSession | None = None) -> Staged:
    """Write one typed table's partitions from its scratch folder (no shuffle: one file per scratch file, and
    another each ``max_rows`` rows) with ``spark`` (the run's session by default); verified later with the others
    (:meth:`lakelib.tables.Tables.verify`)."""
    rows = None
    if expected:
        folder = join(scratch, f"_key={staging_key(table.message_type, table.event)}")
        rows = table_rows((spark or tables.spark).read.schema(schema).parquet(folder), table)
    return tables.stage(table.table(), rows, expected, drop=drop, max_rows_per_file=max_rows, verify=False)


def narrower_partitions(tables: Tables, table: TypedTable, skip: Sequence[Key]) -> list[Any]:
    """The partitions of ``table`` (other than ``skip``) whose files hold a column narrower than the table's."""
    from lakelib.schema import spark_type

    t = table.table()
    wanted = {c.name: spark_type(c.type) for c in t.columns}
    out = []
    for part in tables.find(t, skip=[dict(zip(PARTITION_KEYS, k)) for k in skip]):
        fields = tables.spark.read.parquet(part.location).schema.fields
        if any(wanted.get(f.name, f.dataType) != f.dataType for f in fields):
            out.append(part)
    return out


def stage_older(tables: Tables, table: TypedTable, skip: Sequence[Key]) -> tuple[Staged | None, dict[Key, int]]:
    """Stage again the partitions of ``table`` (other than ``skip``) whose files hold a column narrower than the
    table's; returns the staged version (``None``: nothing to do) and the rows each partition holds.

    A partition is rebuilt from its ``events`` partition, as a run over that day would build it now (the same
    values whatever the order the days were run in); one whose events are gone is cast from its own files
    (:func:`lakelib.typed.conform`: numbers then read as Spark writes them, ``12`` as ``12.0`` once a double); one
    whose events no longer hold this table's calls is dropped.
    """
    from functools import reduce

    from pyspark.sql import functions as F

    spark, t = tables.spark, table.table()
    stale = narrower_partitions(tables, table, skip)
    if not stale:
        return None, {}
    keys = {(p.values["sourceid"], p.values["dt"]) for p in stale}
    events_parts = [p for p in tables.find(EVENTS, sorted({k[0] for k in keys}), sorted({k[1] for k in keys}))
                    if (p.values["sourceid"], p.values["dt"]) in keys]
    from_events = {(p.values["sourceid"], p.values["dt"]) for p in events_parts}
    frames, expected = [], {}
    if events_parts:
        events = tables.read(EVENTS, events_parts, INPUT_COLUMNS).where(F.col("type") == table.message_type)
        if table.event is not None:
            events = events.where(F.col("event") == F.lit(table.event))
        expected.update({(r["sourceid"], r["dt"]): int(r["count"]) for r in events.groupBy(*PARTITION_KEYS).count()
                         .collect()})
        frames.append(table_rows(typed_rows(events), table))
    for part in stale:
        key = (part.values["sourceid"], part.values["dt"])
        if key not in from_events:
            df = spark.read.parquet(part.location)
            expected[key] = df.count()
            frames.append(conform(df.select(*df.columns, *[F.lit(part.values[k]).alias(k) for k in PARTITION_KEYS]), t))
    gone = sorted(k for k in keys if not expected.get(k))
    expected = {k: n for k, n in expected.items() if n and k in keys}
    log.info("%s: rewriting %d older partition(s) under the wider type(s) (%d from events), removing %d", t.name,
             len(expected), len(from_events), len(gone))
    union = reduce(lambda a, b: a.unionByName(b), frames) if expected else None
    return tables.stage(t, union, expected, drop=gone, one_file_per_partition=True), expected


def events_bytes(tables: Tables, location: str) -> int:
    """Bytes of an ``events`` partition's data files (to size the typed tables' files)."""
    return tables.data_bytes(location)


def drop_erased(events: DataFrame, forgotten: Forgotten | None) -> tuple[DataFrame, dict[Key, int] | None]:
    """``events`` without erased people's events (:func:`lakelib.forget.mark_goes`), and how many went per partition
    (``None`` when no one was ever erased)."""
    from pyspark.sql import functions as F

    if forgotten is None:
        return events, None
    marked = mark_goes(events, forgotten, "_erased")
    gone = {(r["sourceid"], r["dt"]): int(r["count"])
            for r in marked.where(F.col("_erased")).groupBy("sourceid", "dt").count().collect()}
    if gone:
        log.info("%d event(s) of erased people suppressed", sum(gone.values()))
    return marked.where(~F.col("_erased")).drop("_erased"), gone


def read_run(tables: Tables, parts: Sequence[Any]) -> tuple[Registry, DataFrame, dict[Key, int] | None]:
    """What a run (or its dry run) starts from: the registry of typed tables, the ``events`` partitions' rows
    without erased people's, and how many of those went per partition (``None``: no one was ever erased)."""
    registry = Registry.from_json(tables.read_state(REGISTRY_NAME))
    events, suppressed = drop_erased(tables.read(EVENTS, parts, INPUT_COLUMNS),
                                     load_forgotten(tables.storage, tables.config.lake.tables))
    return registry, events, suppressed


def plan_run(tables: Tables, registry: Registry, rows: DataFrame, names: Iterable[str]) -> Plan:
    """The registry's plan for flattened ``rows`` (:func:`lakelib.typed.typed_rows`): the value kinds per table and
    path in one aggregation, the run's track event names, the catalog's tables lakelib did not create."""
    observed = [Observed(r["_type"], r["_event"], tuple(r["path"]), frozenset(r["kinds"]))
                for r in observe(rows).collect()]
    return registry.plan(observed, events=names, taken=tables.foreign_tables())


def stale_partitions(tables: Tables, registry: Registry, written: Mapping[str, Sequence[Key]],
                     sources: Sequence[str] | None, days: Sequence[Any]) -> dict[str, list[Key]]:
    """Per table, the partitions of the requested source-days it holds but this run does not write."""
    items = sorted(registry.tables.items())   # one listing (or catalog call) per table
    out: dict[str, list[Key]] = {}
    for (name, _), found in zip(items, tables.find_each([t.table() for _, t in items], sources, days,
                                                         PARALLEL_WRITES)):
        keep = set(written.get(name, ()))
        gone = [k for k in ((p.values["sourceid"], p.values["dt"]) for p in found) if k not in keep]
        if gone:
            out[name] = gone
    return out


def build_tables(args: argparse.Namespace, config: Config, report: RunReport) -> str:
    """The job body for :func:`lakelib.runner.run_job`."""
    from lakelib.session import build_session
    from lakelib.tables import open_tables

    days = requested_days(args)
    if days is None and not args.changed:
        raise UsageError("--date is required (the received day to build, or the first one with --end-date), "
                         "unless --changed")
    sources = requested_sources(args, config)
    spark = build_session(config, app_name=JOB)
    tables = open_tables(spark, config, report.run_id)

    followed, only = None, None
    if args.changed:  # the events partitions converted since the last --changed run, and only those
        followed = changed_partitions(tables, JOB, sources, days)
        only = set(followed.keys)
        report.extra["changed_partitions"] = [{"sourceid": s, "dt": d} for s, d in followed.keys]
        sources, days = sorted({s for s, _ in only}), sorted({date.fromisoformat(d) for _, d in only})
    report.extra.update({"sources": sources or "all", "dates": [days[0].isoformat(), days[-1].isoformat()]
                         if days else []})
    parts = [p for p in tables.find(EVENTS, sources or None, days) if only is None
             or (p.values["sourceid"], p.values["dt"]) in only] if days else []
    log.info("events: %d partition(s) for %s, %s", len(parts), ", ".join(sources) or "every source",
             f"{days[0]} .. {days[-1]}" if days else "no day changed")
    if not parts:
        report.totals = {"partitions": 0, "events": 0, "tables_written": 0, "rows_written": 0}
        if followed is not None:
            mark_followed(tables, followed)
        return "nothing_to_do"
    if args.dry_run:
        return print_plan(tables, report, parts)
    with tables.hold(tables.state_uri(LOCK_NAME)):
        return write_typed_tables(tables, report, parts, days, only, followed)


def write_typed_tables(tables: Tables, report: RunReport, parts: Sequence[Any], days: Sequence[Any],
                       only: set[Key] | None = None, followed: Any = None) -> str:
    """The job's work once it holds the registry's lock: read the registry, write and publish, save the registry
    (``only``, ``followed``: the partitions a ``--changed`` run follows, marked followed once published)."""
    from pyspark.sql import functions as F

    spark, config = tables.spark, tables.config
    registry, events, suppressed = read_run(tables, parts)
    scratch = tables.scratch(JOB)
    seconds: dict[str, float] = {}   # per step, in the report (where a run's time goes)
    try:
        with progress(log, f"reading {len(parts)} events partition(s) and flattening them") as step:
            counts = [r.asDict() for r in events.groupBy("sourceid", "dt", "type", "event").agg(
                F.count(F.lit(1)).alias("n")).collect()]
            sizes = {(p.values["sourceid"], p.values["dt"]): events_bytes(tables, p.location) for p in parts}
            max_rows = rows_per_file(sizes, sum(int(r["n"]) for r in counts), config.write.target_file_mb * MB)
            staged_rows = stage_rows(spark, events, scratch)
            names = {r["event"] for r in counts if r["type"] == "track" and r["event"] and r["event"].strip()}
            plan = plan_run(tables, registry, staged_rows, names)
        seconds["read_and_plan"] = step.seconds
        expected = expected_rows(counts, plan.registry)
        by_table: dict[str, dict[Key, int]] = {}
        for key, per_table in expected.items():
            for name, n in per_table.items():
                by_table.setdefault(name, {})[key] = n
        with progress(log, f"looking for stale partitions of {len(plan.registry.tables)} typed table(s)") as step:
            stale = stale_partitions(tables, plan.registry, {n: list(v) for n, v in by_table.items()},
                                     sorted({p.values["sourceid"] for p in parts}), days)
        seconds["stale"] = step.seconds
        if only is not None:  # --changed: not the other pairs of those sources and days
            stale = {n: [k for k in keys if k in only] for n, keys in stale.items() if any(k in only for k in keys)}
        log.info("%d typed table(s) to write (%d new), %d column(s) added, %d widened", len(by_table),
                 len(plan.new_tables), len(plan.added), len(plan.widened))
        for w in plan.widened:
            log.info("  widening %s.%s: %s -> %s", w["table"], w["column"], w["from"], w["to"])

        to_write = sorted(set(by_table) | set(stale))
        small = without_codegen(spark)
        with progress(log, f"writing {len(to_write)} typed table(s)", total=len(to_write)) as done:
            def stage(name: str) -> Staged:
                rows = sum(by_table.get(name, {}).values())
                version = stage_table(tables, scratch, staged_rows.schema, plan.registry.tables[name],
                                      by_table.get(name, {}), stale.get(name, []), max_rows,
                                      small if rows < SMALL_TABLE_ROWS else spark)
                done.add()
                return version

            with ThreadPoolExecutor(PARALLEL_WRITES) as pool:
                staged = dict(zip(to_write, pool.map(stage, to_write)))
        seconds["write"] = done.seconds
        with progress(log, f"verifying {len(staged)} typed table(s)") as step:
            tables.verify(*staged.values())
        seconds["verify"] = step.seconds
        older: dict[str, Staged] = {}
        rewritten_rows: dict[Key, dict[str, int]] = {}
        widened_tables = sorted({w["table"] for w in plan.widened})
        with progress(log, f"rewriting older partitions of {len(widened_tables)} widened table(s)",
                      total=len(widened_tables)) as done:
            for name in widened_tables:
                version, rows = stage_older(tables, plan.registry.tables[name], list(by_table.get(name, {})))
                if version is not None:
                    older[name] = version
                for key, n in rows.items():
                    rewritten_rows.setdefault(key, {})[name] = n
                done.add()
        seconds["rewrite_older"] = done.seconds
        for w in plan.widened:
            w["partitions_rewritten"] = len(older[w["table"]].locations) if w["table"] in older else 0

        events_by_type: dict[Key, dict[str, int]] = {}
        for r in counts:
            by_type = events_by_type.setdefault((r["sourceid"], r["dt"]), {})
            by_type[r["type"]] = by_type.get(r["type"], 0) + int(r["n"])
        written = {key: {name: v.rows[key] for name, v in staged.items() if key in v.rows} for key in expected}
        summary = reconcile(expected, written, events_by_type)
        if suppressed is not None:
            for p in summary:
                p["suppressed"] = suppressed.get((p["sourceid"], p["dt"]), 0)
        report.partitions = summary
        older_written = {key: {name: v.rows[key] for name, v in older.items() if key in v.rows}
                         for key in rewritten_rows}
        report.extra["rewritten_partitions"] = [
            {"sourceid": p["sourceid"], "dt": p["dt"], "tables": p["tables"], "mismatches": p["mismatches"]}
            for p in reconcile(rewritten_rows, older_written, {})]
        with progress(log, f"publishing {len(staged)} typed table(s)") as step:
            tables.publish(*staged.values(), *older.values(), report=report)
        seconds["publish"] = step.seconds
        tables.write_state(REGISTRY_NAME, plan.registry.to_json())
        if followed is not None:
            mark_followed(tables, followed)
    finally:
        tables.remove(scratch)

    removed = [{"table": name, "sourceid": k[0], "dt": k[1]} for name, keys in sorted(stale.items()) for k in keys]
    for r in removed:
        log.info("%s: removed stale partition %s/%s (no such events any more)", r["table"], r["sourceid"], r["dt"])
    report.extra.update({
        "event_tables": {t.event: t.name for t in plan.registry.tables.values() if t.event in names},
        "new_tables": plan.new_tables, "columns_added": plan.added, "widened": plan.widened,
        "stale_partitions_removed": removed, "seconds": {k: round(v, 1) for k, v in seconds.items()},
    })
    report.totals = {
        "partitions": len(summary), "events": sum(p["events"] for p in summary),
        "tables_written": len(by_table), "rows_written": sum(sum(p["tables"].values()) for p in summary),
        "new_tables": len(plan.new_tables), "columns_added": len(plan.added), "widenings": len(plan.widened),
        "partitions_rewritten": sum(len(v.locations) for v in older.values()),
    }
    if suppressed is not None:
        report.totals["suppressed"] = sum(suppressed.values())
    for p in summary:
        log.info("  %s %s: %d events -> %d typed table(s), reconciled", p["sourceid"], p["dt"], p["events"],
                 len(p["tables"]))
    return "succeeded"


def print_plan(tables: Tables, report: RunReport, parts: Sequence[Any]) -> str:
    """``--dry-run``: the tables to create, the columns to add, the widenings and the older partitions each one
    would rewrite, on stdout and in the report; nothing is written (one read of events, no staging)."""
    from pyspark.sql import functions as F

    registry, events, _ = read_run(tables, parts)
    with progress(log, f"reading {len(parts)} events partition(s) and flattening them"):
        names = {r["event"] for r in events.where(F.col("type") == "track").select("event").distinct().collect()
                 if r["event"] and r["event"].strip()}
        plan = plan_run(tables, registry, typed_rows(events), names)
    run_keys = sorted((p.values["sourceid"], p.values["dt"]) for p in parts)
    for w in plan.widened:
        older = narrower_partitions(tables, plan.registry.tables[w["table"]], run_keys)
        w["partitions_rewritten"] = len(older)
        w["partitions"] = [f"{p.values['sourceid']}/{p.values['dt']}" for p in older]
    report.extra.update({"dry_run": True, "new_tables": plan.new_tables, "columns_added": plan.added,
                         "widened": plan.widened})
    report.totals = {"partitions": len(parts), "new_tables": len(plan.new_tables), "columns_added": len(plan.added),
                     "widenings": len(plan.widened),
                     "partitions_rewritten": sum(w["partitions_rewritten"] for w in plan.widened)}
    print(f"event_tables plan for {len(parts)} events partition(s) (dry run, nothing changed):")
    for name in plan.new_tables:
        print(f"  create table {name}")
    for a in plan.added:
        print(f"  add column {a['table']}.{a['column']} {a['type']}")
    for w in plan.widened:
        where = f" ({', '.join(w['partitions'])})" if w["partitions"] else ""
        print(f"  widen {w['table']}.{w['column']} {w['from']} -> {w['to']}: rewrites {w['partitions_rewritten']} "
              f"older partition(s){where}")
    t = report.totals
    print(f"{t['new_tables']} table(s) to create, {t['columns_added']} column(s) to add, {t['widenings']} "
          f"widening(s) rewriting {t['partitions_rewritten']} older partition(s)")
    return "dry_run"


# --- main ------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The common job arguments, ``--changed`` and ``--dry-run``."""
    parser = job_parser(JOB, "Typed tables per call type and per track event, from events.")
    add_changed_arguments(parser)
    parser.add_argument("--dry-run", action="store_true",
                        help="print the tables to create, columns to add and widenings (with the older partitions "
                             "each rewrites); change nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; returns the exit status (0 ok, 1 failed, 2 usage or config error)."""
    return run_job(JOB, build_parser(), argv, build_tables)


if __name__ == "__main__":
    sys.exit(main())
