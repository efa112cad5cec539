"""Where json_to_parquet's seconds go: runs the unchanged job with its phases wrapped in timers.

    spark-submit --master local[2] benchmarks/experiments/profile_job.py --config C --date D --end-date E

Prints ``PROFILE {json}`` at the end: seconds from process start (``T0`` env, set by the caller, in epoch
seconds) to Python's start, then per phase (find_raw_days, build_session, count_lines = the judge pass: read +
gzip + narrow parse + cache + counts, write_quarantine from that cache, write_events = the write pass: read + full
parse + dedup + write, verify_written, catalog), and Spark's own stage durations from the status tracker.
"""
import json
import os
import sys
import time

T_PY = time.time()
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import jobs.json_to_parquet as job  # noqa: E402

PHASES = {}


def wrap(name):
    original = getattr(job, name)

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            PHASES[name] = PHASES.get(name, 0.0) + time.perf_counter() - start

    setattr(job, name, timed)


STAGES = []
_summary = job.print_summary


def _summary_then_stages(report):
    STAGES.extend(stage_times())
    return _summary(report)


job.print_summary = _summary_then_stages

for _name in ("build_session", "find_raw_days", "count_lines", "judge_pass", "stage_events", "open_tables",
              "print_summary"):
    wrap(_name)


def stage_times():
    """Completed stages with their wall time, from the JVM status store (works with the UI off)."""
    from pyspark import SparkContext

    sc = SparkContext._active_spark_context
    if sc is None:
        return []
    store = sc._jsc.sc().statusStore()
    out = []
    stages = store.stageList(None)
    it = stages.iterator()
    while it.hasNext():
        s = it.next()
        sub, done = s.submissionTime(), s.completionTime()
        if sub.isDefined() and done.isDefined():
            out.append({"stage": s.stageId(), "name": s.name()[:60], "tasks": s.numTasks(),
                        "seconds": (done.get().getTime() - sub.get().getTime()) / 1000,
                        "input_mb": s.inputBytes() / 1e6, "shuffle_write_mb": s.shuffleWriteBytes() / 1e6,
                        "shuffle_read_mb": s.shuffleReadBytes() / 1e6, "output_mb": s.outputBytes() / 1e6,
                        "spill_mb": s.diskBytesSpilled() / 1e6, "cpu_s": s.executorCpuTime() / 1e9,
                        "run_s": s.executorRunTime() / 1e3})
    return sorted(out, key=lambda r: r["stage"])


if __name__ == "__main__":
    start = time.perf_counter()
    status = job.main(sys.argv[1:])
    total = time.perf_counter() - start
    t0 = float(os.environ.get("T0", T_PY))
    print("PROFILE " + json.dumps({"status": status, "to_python_s": T_PY - t0, "main_s": total, "phases": PHASES,
                                   "stages": STAGES}))
    sys.exit(status)
