"""The pieces of json_to_parquet's two passes, each to Spark's ``noop`` sink, in one warm session (local[2]).

    spark-submit --driver-memory 2g benchmarks/experiments/parse_pieces.py RAW_DIR [ROUNDS] [OUT_DIR]

Each piece runs once per round, rounds one after another, so that the first run's JIT warm-up shows as such.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

import jobs.json_to_parquet as job  # noqa: E402
from lakelib import parse  # noqa: E402
from lakelib.raw import find_raw_days  # noqa: E402
from lakelib.schema import EVENTS  # noqa: E402
from lakelib.storage import Storage  # noqa: E402


def main(raw: str, rounds: int, out: str) -> None:
    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    days, _ = find_raw_days(Storage(spark), raw, [], None)
    plan = job.plan_file_counts(days, 256)
    lines = job.read_raw_lines(spark, days, plan)
    noop = lambda df: df.write.format("noop").mode("overwrite").save()  # noqa: E731
    pieces = {
        "gunzip + split lines": lambda: noop(spark.read.text([d.uri for d in days])),
        "+ file path, sourceid, dt, pos": lambda: noop(lines),
        "judge_lines (3 fields)": lambda: noop(lines.transform(parse.judge_lines)),
        "json_object_keys alone": lambda: noop(lines.select(F.json_object_keys("value"))),
        "parse_events without extras": lambda: noop(lines.transform(parse.parse_events).drop("extras")),
        "parse_events": lambda: noop(lines.transform(parse.parse_events)),
        "parse_events -> Parquet (no shuffle)": lambda: lines.transform(parse.parse_events).where("reason is null")
        .select(*EVENTS.all_names).write.mode("overwrite").partitionBy("sourceid", "dt").parquet(out),
    }
    for i in range(rounds):
        for name, piece in pieces.items():
            start = time.perf_counter()
            piece()
            print(f"round {i + 1}  {name:<40} {time.perf_counter() - start:6.1f} s", flush=True)


if __name__ == "__main__":
    main(os.path.abspath(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 2,
         os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else "/tmp/parse_pieces_out")
