"""event_tables with many track event names in one source-day (docs/typed-tables.md, "Many event names").

    python benchmarks/experiments/event_tables_names.py LAKE_DIR [NAMES] [EVENTS_PER_NAME]

Writes an ``events`` partition (web, 2026-01-01) with NAMES track event names (default 500) of EVENTS_PER_NAME calls
each (default 20; six properties drawn from 40 keys, a nested ``product`` object, a flattened ``context``) plus 2,000
identifies and pages, then runs the job twice on it (``catalog.kind: spark``, the embedded metastore) and prints
both durations: the first run creates every table, the second is a rerun.
"""
import os
import random
import sys
import time
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import jobs.event_tables as job  # noqa: E402
from lakelib.config import load_config  # noqa: E402
from lakelib.schema import EVENTS, spark_schema  # noqa: E402
from lakelib.session import build_session  # noqa: E402

CONTEXT = {"library": '{"name":"analytics.js","version":"4.1.0"}', "page": '{"path":"/x","title":"X"}', "ip": "1.2.3.4"}


def rows(names: int, per_name: int, seed: int = 5) -> list[tuple]:
    """The events rows (schema of ``events`` plus sourceid, dt)."""
    rnd, ts, out = random.Random(seed), datetime(2026, 1, 1, 12), []

    def row(n: int, **fields) -> tuple:
        values = {c.name: None for c in EVENTS.columns}
        values.update(messageid=f"m{n}", timestamp=ts, receivedat=ts, context=CONTEXT, **fields)
        return tuple(values[c.name] for c in EVENTS.columns) + ("web", "2026-01-01")

    for i in range(names):
        name = f"Event Number {i} {rnd.choice(['Viewed', 'Clicked', 'Completed'])}"
        keys = [f"prop_{rnd.randint(0, 40)}" for _ in range(6)]
        for j in range(per_name):
            props = {k: str(rnd.randint(0, 100)) for k in keys}
            props["product"] = f'{{"sku":"S{j}","price":{j}.5}}'
            out.append(row(len(out), type="track", event=name, userid=f"u{j}", properties=props))
    for j in range(2000):
        if j % 2:
            out.append(row(len(out), type="identify", userid=f"u{j}", traits={"email": f"u{j}@x.io", "age": str(j)}))
        else:
            out.append(row(len(out), type="page", name="X", properties={"path": "/x", "title": "X"}))
    return out


def main(lake: str, names: int = 500, per_name: int = 20) -> None:
    os.makedirs(lake, exist_ok=True)
    config_path = os.path.join(lake, "lake.yaml")
    with open(config_path, "w", encoding="utf-8") as handle:
        handle.write("lake:\n" + "".join(f"  {k}: {os.path.abspath(lake)}/{k}\n"
                                         for k in ("raw", "tables", "quarantine", "reports"))
                     + "catalog: {kind: spark, database: bench_event_tables}\n")
    os.makedirs(os.path.join(lake, "raw"), exist_ok=True)
    config = load_config(config_path)
    spark = build_session(config, "event_tables_names")
    data = rows(names, per_name)
    (spark.createDataFrame(data, spark_schema(EVENTS, with_partitions=True)).repartition(1).write.mode("overwrite")
     .partitionBy("sourceid", "dt").parquet(config.lake.tables + "/events"))
    for label in ("first run", "rerun"):
        started = time.monotonic()
        code = job.main(["--config", config_path, "--date", "2026-01-01"])
        print(f"{label}: exit {code}, {time.monotonic() - started:.1f} s, {len(data)} events, {names} event names",
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:4]))
