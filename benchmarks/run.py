"""``make bench``: generate a fixed input, time lakelib's conversion against the alternatives, write BENCHMARKS.md.

    python -m benchmarks.run [--lines 1000000] [--repeats 3] [--quick] [--skip-read]

Each figure is a whole process (JVM or Python start included), run one after another on the same input with two
cores; the repeats are interleaved (lakelib, naive, duckdb, floor, lakelib, ...) so that a change in the machine's
load hits every figure alike. Outputs go under ``benchmarks/out/`` and the input under ``benchmarks/data/`` (both
ignored by git; the input is reused when its parameters match).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from typing import Any, Sequence

from benchmarks.core import SCALE_DRIVER_MEMORY, SCALE_LINES, BenchParams, raw_day_folders, render_markdown
from benchmarks.measure import Measured, count_files, dir_bytes, run

log = logging.getLogger("benchmarks")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(REPO, "benchmarks")
MASTER = "local[2]"
#: The driver's heap for every Spark figure alike (local mode: the driver is the executor). With spark-submit's
#: default of 1g, lakelib's job died of an OutOfMemoryError (exit 52) on the 1M-line input while caching.
DRIVER_MEMORY = "2g"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="about this many input lines")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (the median is reported)")
    parser.add_argument("--quick", action="store_true", help="100k lines, 1 repeat (while developing)")
    parser.add_argument("--skip-read", action="store_true", help="conversion figures only")
    parser.add_argument("--only", action="append", choices=("lakelib", "naive", "duckdb", "floor", "event_tables"),
                        help="time only these figures (repeatable)")
    parser.add_argument("--scale", action="store_true",
                        help="the scale table instead: lakelib and the naive job once each at 250k, 1M and 4M "
                             "lines with a 1 GB driver (kept in benchmarks/out/scale.json, shown in the report)")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite the report and chart from the last run's benchmarks/out/result.json")
    parser.add_argument("--output", default=os.path.join(REPO, "BENCHMARKS.md"), help="the report to write")
    parser.add_argument("--work", default=os.path.join(HERE, "out"), help="outputs of the timed runs")
    parser.add_argument("--data", default=os.path.join(HERE, "data"), help="the generated input")
    return parser


# --- input ---------------------------------------------------------------------------------------------------


def ensure_input(params: BenchParams, data_root: str) -> dict[str, Any]:
    """The raw input for ``params`` under ``data_root/<key>/raw``, generated unless already there."""
    from lakelib.sample import SampleSpec, generate, source_ids

    folder = os.path.abspath(os.path.join(data_root, params.key))
    meta_path = os.path.join(folder, "input.json")
    if os.path.exists(meta_path):
        with open(meta_path) as handle:
            meta = json.load(handle)
        if meta.get("params") == params.to_dict():
            log.info("reusing input %s", folder)
            return {**meta, "raw": os.path.join(folder, "raw")}
    shutil.rmtree(folder, ignore_errors=True)
    raw = os.path.join(folder, "raw")
    log.info("generating %s lines into %s ...", f"{params.lines:,}", raw)
    spec = SampleSpec(out=raw, sources=params.sources, days=params.days, events_per_day=params.events_per_day,
                      files_per_day=params.files_per_day, start=params.first_day, seed=params.seed,
                      track_names=params.track_names)
    result = generate(spec)
    meta = {
        "params": params.to_dict(), "raw": raw, "sources": source_ids(params.sources), "files": len(result.files),
        "lines": result.lines, "bytes": dir_bytes(raw), "duplicates": result.duplicates,
        "malformed": sum(result.malformed.values()), "blank": result.blank,
    }
    with open(meta_path, "w") as handle:
        json.dump(meta, handle, indent=1)
    return meta


# --- the figures ---------------------------------------------------------------------------------------------


def _env(driver_memory: str | None = None) -> dict[str, str]:
    bin_dir = os.path.dirname(sys.executable)
    return {"PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "PYSPARK_PYTHON": sys.executable,
            "SPARK_DRIVER_MEMORY": driver_memory or os.environ.get("SPARK_DRIVER_MEMORY", DRIVER_MEMORY),
            "PYTHONPATH": REPO + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")}


def _log4j_options() -> list[str]:
    for candidate in ("conf/log4j2-local.properties", "lakelib/resources/log4j2.properties"):
        path = os.path.join(REPO, candidate)
        if os.path.exists(path):
            return ["--driver-java-options", f"-Dlog4j2.configurationFile=file:{path}"]
    return []


def spark_submit(script: str, *args: str) -> list[str]:
    """A spark-submit command line for one of the benchmark's own scripts (local[2], quiet logging)."""
    exe = shutil.which("spark-submit", path=_env()["PATH"]) or "spark-submit"
    return [exe, "--master", MASTER, *_log4j_options(), os.path.join(HERE, script), *args]


def write_config(path: str, lake: str, raw: str, catalog: str) -> str:
    """A job config for the timed runs: the lake under ``lake``, the shared raw input, local[2]."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(
            f"lake:\n  raw: {raw}\n  tables: {lake}/tables\n  quarantine: {lake}/quarantine\n"
            f"  reports: {lake}/reports\nsources: []\ncatalog:\n  kind: {catalog}\n  database: segment_logs\n"
            "write:\n  target_file_mb: 256\n  compression: snappy\n"
            f"spark:\n  spark.master: \"{MASTER}\"\n  spark.sql.shuffle.partitions: 8\n"
        )
    return path


def _record(measured: Measured, output: str | None, what: str) -> dict[str, Any]:
    if not measured.ok:
        log.warning("%s failed (exit %d):\n%s", what, measured.returncode, measured.stderr[-3000:])
    out = {"seconds": measured.seconds, "rss_mb": measured.rss_mb, "ok": measured.ok, "returncode": measured.returncode}
    if output:
        out["output_bytes"] = dir_bytes(output)
        out["output_files"] = count_files(output)
    log.info("%-8s %6.1f s  peak %5.0f MB%s", what, measured.seconds, measured.rss_mb,
             "" if measured.ok else "  FAILED")
    return out


def run_lakelib(config: str, params: BenchParams, lake: str, driver_memory: str | None = None) -> dict[str, Any]:
    shutil.rmtree(lake, ignore_errors=True)
    cmd = ["bash", os.path.join(REPO, "scripts", "submit.sh"), "local", "json_to_parquet", "--config", config,
           "--date", params.first_day.isoformat(), "--end-date", params.last_day.isoformat()]
    versions = os.path.join(lake, "tables", "_versions", "events")  # with a catalog, the published versions
    output = os.path.join(lake, "tables", "events")
    measured = run(cmd, env=_env(driver_memory), cwd=REPO)
    if os.path.isdir(versions):
        output = versions
    return _record(measured, output, "lakelib")


#: Users the erasure figure forgets (issue 20: 1,000 users of the 1M-event lake).
FORGET_USERS = 1000


def pick_users(raw: str, n: int) -> list[str]:
    """The first ``n`` distinct userIds of the raw input, in file order (the people the erasure figure forgets)."""
    import gzip

    found: dict[str, None] = {}
    for folder, _, names in sorted(os.walk(raw)):
        for name in sorted(names):
            with gzip.open(os.path.join(folder, name), "rt", encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    try:
                        user = json.loads(line).get("userId")
                    except (ValueError, AttributeError):
                        continue
                    if isinstance(user, str) and user:
                        found[user] = None
                        if len(found) >= n:
                            return list(found)
    return list(found)


def run_forget(config: str, meta: dict[str, Any], work: str) -> dict[str, Any]:
    """``forget_users`` of :data:`FORGET_USERS` users from a converted lake (retention 0: the bytes go at once)."""
    ids = os.path.join(work, "forget_ids.jsonl")
    with open(ids, "w") as handle:
        handle.writelines(json.dumps({"userId": u}) + "\n" for u in pick_users(meta["raw"], FORGET_USERS))
    report = os.path.join(work, "forget_report.json")
    cmd = ["bash", os.path.join(REPO, "scripts", "submit.sh"), "local", "forget_users", "--config", config,
           "--ids", ids, "--report", report, "--set", "forget.retention_hours=0"]
    out = _record(run(cmd, env=_env(), cwd=REPO), None, "forget")
    if out["ok"]:
        with open(report) as handle:
            done = json.load(handle)
        out.update({"users": FORGET_USERS, "rows_removed": done["totals"]["rows_removed"],
                    "partitions_rewritten": done["totals"]["partitions_rewritten"],
                    "events_partitions": len(done.get("published", []))})
    return out


#: Track event names per source-day of the event_tables figure (issue 22: typed tables at the width of real sources).
EVENT_TABLE_NAMES = (50, 500)


def event_tables_figure(data_root: str, work: str, lines: int,
                        counts: Sequence[int] = EVENT_TABLE_NAMES) -> dict[str, Any]:
    """Per number of track event names: the conversion of an input with that many names (``catalog.kind: spark``),
    then ``event_tables`` over the same days, each timed; with the job's own time per step from its report."""
    rows = []
    started, load_before = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), load()
    for names in counts:
        params = BenchParams(lines=lines, track_names=names)
        meta = ensure_input(params, data_root)
        lake = os.path.join(work, f"event_tables_{names}")
        config = write_config(os.path.join(work, f"event_tables_{names}.yaml"), lake, meta["raw"], "spark")
        log.info("event_tables with %d track event names: the conversion first ...", names)
        conversion = run_lakelib(config, params, lake)
        report = os.path.join(work, f"event_tables_{names}_report.json")
        cmd = ["bash", os.path.join(REPO, "scripts", "submit.sh"), "local", "event_tables", "--config", config,
               "--date", params.first_day.isoformat(), "--end-date", params.last_day.isoformat(),
               "--report", report]
        typed = _record(run(cmd, env=_env(), cwd=REPO), None, f"event_tables ({names} names)")
        if typed["ok"]:
            with open(report) as handle:
                done = json.load(handle)
            typed.update({"tables": done["totals"]["tables_written"], "rows": done["totals"]["rows_written"],
                          "partitions": done["totals"]["partitions"], "steps": done.get("seconds", {})})
        rows.append({"names": names, "lines": meta["lines"], "conversion": conversion, "event_tables": typed})
    return {"when": started, "load_before": load_before, "load_after": load(), "rows": rows}


def run_naive(meta: dict[str, Any], out: str, driver_memory: str | None = None) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    dirs = [os.path.join(meta["raw"], s, d) for s, d in raw_day_folders(BenchParams(**_pp(meta)), meta["sources"])]
    return _record(run(spark_submit("naive_job.py", out, *dirs), env=_env(driver_memory), cwd=REPO), out, "naive")


def scale(data_root: str, work: str) -> dict[str, Any]:
    """lakelib and the naive job once each per size of :data:`SCALE_LINES`, with a 1 GB driver."""
    rows = []
    for n in SCALE_LINES:
        params = BenchParams(lines=n)
        meta = ensure_input(params, data_root)
        lake = os.path.join(work, "scale", "lakelib")
        config = write_config(os.path.join(work, "scale.yaml"), lake, meta["raw"], "none")
        log.info("scale: %s lines", f"{meta['lines']:,}")
        row = {"target_lines": n, "lines": meta["lines"], "bytes": meta["bytes"], "load_before": load()}
        row["lakelib"] = run_lakelib(config, params, lake, SCALE_DRIVER_MEMORY)
        row["naive"] = run_naive(meta, os.path.join(work, "scale", "naive"), SCALE_DRIVER_MEMORY)
        rows.append(row)
    shutil.rmtree(os.path.join(work, "scale"), ignore_errors=True)
    return {"when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "driver_memory": SCALE_DRIVER_MEMORY,
            "rows": rows}


def run_duckdb(meta: dict[str, Any], out: str) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "benchmarks.duck_job", out, meta["raw"], "2"]
    return _record(run(cmd, env=_env(), cwd=REPO), out, "duckdb")


def run_floor(meta: dict[str, Any]) -> dict[str, Any]:
    dirs = [os.path.join(meta["raw"], s, d) for s, d in raw_day_folders(BenchParams(**_pp(meta)), meta["sources"])]
    measured = run(spark_submit("floor_job.py", *dirs), env=_env(), cwd=REPO)
    rec = _record(measured, None, "floor")
    lines = measured.stdout.strip().splitlines()
    rec["lines_counted"] = int(lines[-1]) if measured.ok and lines else None
    return rec


def _pp(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta["params"].items() if k != "events_per_day"}


# --- read side -----------------------------------------------------------------------------------------------


def _last_json(measured: Measured, what: str) -> dict[str, Any]:
    if not measured.ok:
        log.warning("%s failed (exit %d):\n%s", what, measured.returncode, measured.stderr[-3000:])
        return {}
    return json.loads(measured.stdout.strip().splitlines()[-1])


def read_side(meta: dict[str, Any], work: str, repeats: int) -> dict[str, Any]:
    """The daily and yearly queries on raw JSON, events and the daily table; a 300-file partition compacted."""
    from lakelib.paths import folder_day

    params = BenchParams(**_pp(meta))
    source, day_folder = raw_day_folders(params, meta["sources"])[0]
    dt = folder_day(day_folder).isoformat()
    events_root = os.path.join(work, "lakelib", "tables", "events")
    daily_root = os.path.join(work, "read", "message_type_counts_daily")
    log.info("read side: queries ...")
    result = _last_json(run(spark_submit("read_side.py", "queries", meta["raw"], events_root, daily_root, source,
                                         day_folder, dt, str(repeats)), env=_env(), cwd=REPO), "read queries")
    result.setdefault("queries", [])

    lake = os.path.join(work, "compaction")
    shutil.rmtree(lake, ignore_errors=True)
    config = write_config(os.path.join(work, "compaction.yaml"), lake, meta["raw"], "spark")
    log.info("read side: a partition of 300 small files, before and after compaction ...")
    made = _last_json(run(spark_submit("read_side.py", "small-files", config, events_root, source, dt, "300"),
                          env=_env(), cwd=REPO), "small files")
    if not made:
        return result
    location = made["location"].replace("file://", "")
    files_before, bytes_before = count_files(location), dir_bytes(location)
    before = _last_json(run(spark_submit("read_side.py", "catalog-query", config, source, dt, str(repeats),
                                         f"daily on events, one partition of {files_before} small files"),
                            env=_env(), cwd=REPO), "query before compaction")
    cmd = ["bash", os.path.join(REPO, "scripts", "submit.sh"), "local", "compact_partitions", "--config", config,
           "--table", "events", "--source", source, "--date", dt]
    compacted = run(cmd, env=_env(), cwd=REPO)
    if not compacted.ok:
        log.warning("compaction failed:\n%s", compacted.stderr[-3000:])
    after = _last_json(run(spark_submit("read_side.py", "catalog-query", config, source, dt, str(repeats),
                                        "daily on events, the same partition after compact_partitions"),
                           env=_env(), cwd=REPO), "query after compaction")
    after_dir = (after.get("dirs") or [location])[0].replace("file://", "").replace("file:", "")
    result["queries"] += [{k: v for k, v in q.items() if k != "dirs"} for q in (before, after) if q]
    result["compaction"] = {
        "seconds": compacted.seconds, "ok": compacted.ok, "files_before": files_before, "bytes_before": bytes_before,
        "files_after": count_files(after_dir), "bytes_after": dir_bytes(after_dir),
    }
    return result


# --- the machine ---------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_gb": mem, "load_before": load()}


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def versions() -> dict[str, str]:
    import duckdb
    import pyspark

    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    return {"Python": platform.python_version(), "Spark (PySpark)": pyspark.__version__,
            "DuckDB": duckdb.__version__, "Java": java[0] if java else "unknown"}


# --- main ----------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.scale:
        os.makedirs(args.work, exist_ok=True)
        with open(os.path.join(args.work, "scale.json"), "w") as handle:
            json.dump(scale(args.data, args.work), handle, indent=1)
        if not os.path.exists(os.path.join(args.work, "result.json")):
            log.info("wrote benchmarks/out/scale.json; the report shows it after the next run")
            return 0
        args.render_only = True
    if args.render_only:
        with open(os.path.join(args.work, "result.json")) as handle:
            return write_report(json.load(handle), args.output, args.work)
    lines, repeats = (100_000, 1) if args.quick else (args.lines, args.repeats)
    params = BenchParams(lines=lines)
    meta = ensure_input(params, args.data)
    work = args.work
    os.makedirs(work, exist_ok=True)
    info = machine()
    log.info("load average: %s", info["load_before"])
    config = write_config(os.path.join(work, "lakelib.yaml"), os.path.join(work, "lakelib"), meta["raw"], "none")
    only = args.only or ["lakelib", "naive", "duckdb", "floor", "event_tables"]
    conversion: dict[str, list] = {k: [] for k in only if k != "event_tables"}
    for i in range(repeats):
        log.info("round %d/%d", i + 1, repeats)
        if "lakelib" in only:
            conversion["lakelib"].append(run_lakelib(config, params, os.path.join(work, "lakelib")))
        if "naive" in only:
            conversion["naive"].append(run_naive(meta, os.path.join(work, "naive")))
        if "duckdb" in only:
            conversion["duckdb"].append(run_duckdb(meta, os.path.join(work, "duckdb")))
        if "floor" in only:
            conversion["floor"].append(run_floor(meta))
    result: dict[str, Any] = {
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "argv": " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": info, "versions": versions(), "driver_memory": _env()["SPARK_DRIVER_MEMORY"],
        "params": params.to_dict(), "repeats": repeats,
        "input": {k: meta[k] for k in ("files", "lines", "bytes", "duplicates", "malformed", "blank")},
        "conversion": conversion,
    }
    if "lakelib" in only:
        log.info("once with catalog.kind spark ...")
        cat_lake = os.path.join(work, "lakelib_catalog")
        cat_config = write_config(os.path.join(work, "lakelib_catalog.yaml"), cat_lake, meta["raw"], "spark")
        once = run_lakelib(cat_config, params, cat_lake)
        if once["ok"]:
            result["catalog_overhead"] = once
            log.info("forget_users of %d users from that lake ...", FORGET_USERS)
            result["erasure"] = run_forget(cat_config, meta, work)
        if not args.skip_read:
            result["read_side"] = read_side(meta, work, max(repeats, 3))
    if "event_tables" in only:
        result["event_tables"] = event_tables_figure(args.data, work, lines)
    info["load_after"] = load()
    with open(os.path.join(work, "result.json"), "w") as handle:
        json.dump(result, handle, indent=1)
    return write_report(result, args.output, work)


def write_report(result: dict[str, Any], output: str, work: str | None = None) -> int:
    """BENCHMARKS.md (with the last scale runs and ``benchmarks/levers.md``) and the chart, from one run's result."""
    from benchmarks.chart import conversion_chart

    scale_path = os.path.join(work or os.path.join(HERE, "out"), "scale.json")
    if os.path.exists(scale_path):
        with open(scale_path) as handle:
            result["scale"] = json.load(handle)
    levers = os.path.join(HERE, "levers.md")
    if os.path.exists(levers):
        with open(levers) as handle:
            result["notes"] = handle.read()
    conversion_chart(result["conversion"], os.path.join(HERE, "conversion.png"),
                     f"{result['input']['lines']:,} lines, {result['input']['files']} gzip files, local[2], "
                     f"{result['when']}")
    with open(output, "w") as handle:
        handle.write(render_markdown(result))
    log.info("wrote %s and benchmarks/conversion.png", output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
