"""json_to_parquet's stage table, from Spark's event log of one run.

    spark-submit --master local[2] --conf spark.eventLog.enabled=true --conf spark.eventLog.dir=file:///tmp/ev \\
        jobs/json_to_parquet.py --config C --date D --end-date E
    python -m benchmarks.experiments.stages /tmp/ev/<the log file>

Prints a Markdown table: each phase of the job (the stages between two passes are summed), its wall time, the CPU
time of its tasks (both cores), and for the two passes the slowest and the fastest task, which shows the JIT warm-up
(the first tasks of a pass run before the JVM has compiled its code).
"""
from __future__ import annotations

import json
import sys
from typing import Any, Iterable


def read_events(path: str) -> Iterable[dict[str, Any]]:
    with open(path) as handle:
        for line in handle:
            yield json.loads(line)


def stage_table(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stages in order: start (s after the application's start), wall, CPU, task count, task times."""
    start, end = None, None
    stages: dict[int, dict[str, Any]] = {}
    tasks: dict[int, list[float]] = {}
    for e in events:
        kind = e["Event"]
        if kind == "SparkListenerApplicationStart":
            start = e["Timestamp"]
        elif kind == "SparkListenerApplicationEnd":
            end = e["Timestamp"]
        elif kind == "SparkListenerTaskEnd":
            info = e["Task Info"]
            tasks.setdefault(e["Stage ID"], []).append((info["Finish Time"] - info["Launch Time"]) / 1000)
        elif kind == "SparkListenerStageCompleted":
            s = e["Stage Info"]
            acc = {a["Name"]: a.get("Value") for a in s.get("Accumulables", [])}
            stages[s["Stage ID"]] = {
                "id": s["Stage ID"], "name": s["Stage Name"], "tasks": s["Number of Tasks"],
                "submitted": s["Submission Time"], "completed": s["Completion Time"],
                "cpu": float(acc.get("internal.metrics.executorCpuTime") or 0) / 1e9,
            }
    if start is None:
        raise SystemExit("not a Spark event log (no application start)")
    rows = []
    for s in sorted(stages.values(), key=lambda s: s["submitted"]):
        times = sorted(tasks.get(s["id"], []))
        rows.append({**s, "start": (s["submitted"] - start) / 1000, "wall": (s["completed"] - s["submitted"]) / 1000,
                     "task_min": times[0] if times else None, "task_max": times[-1] if times else None})
    total = ((end or max(s["completed"] for s in stages.values())) - start) / 1000
    return [{"total": total}, *rows]


def phases(rows: list[dict[str, Any]]) -> list[tuple[str, float, float, str]]:
    """The job's phases: before the judge pass, the judge pass, between the passes, the write pass, after it."""
    total, stages = rows[0]["total"], rows[1:]
    long = sorted(stages, key=lambda s: s["wall"], reverse=True)[:2]
    judge, write = sorted(long, key=lambda s: s["start"])
    between = [s for s in stages if judge["start"] < s["start"] < write["start"]]
    after = [s for s in stages if s["start"] > write["start"]]

    def tasks(s: dict[str, Any]) -> str:
        return f"{s['tasks']} tasks, {s['task_max']:.1f} s the slowest, {s['task_min']:.1f} s the fastest"

    return [
        ("session start, listing, the file keys", judge["start"],
         sum(s["cpu"] for s in stages if s["start"] < judge["start"]), ""),
        ("judge pass: read, gunzip, narrow parse, cache, counts", judge["wall"], judge["cpu"], tasks(judge)),
        ("losers, lines to drop, quarantine (from the cache)", write["start"] - judge["start"] - judge["wall"],
         sum(s["cpu"] for s in between), f"{len(between)} small stages"),
        ("write pass: read, gunzip, full parse, anti-join, Parquet", write["wall"], write["cpu"], tasks(write)),
        ("footer check, report", total - write["start"] - write["wall"], sum(s["cpu"] for s in after), ""),
    ]


def main(argv: list[str]) -> int:
    rows = stage_table(read_events(argv[0]))
    print("| phase | wall | CPU (both cores) | tasks |")
    print("|---|---:|---:|---|")
    for name, wall, cpu, note in phases(rows):
        print(f"| {name} | {wall:.1f} s | {cpu:.1f} s | {note} |")
    print(f"| total (Spark application, JVM start not included) | {rows[0]['total']:.1f} s | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
