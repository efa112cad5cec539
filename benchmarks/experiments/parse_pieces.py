"""The pieces of json_to_parquet's two passes, and the levers tried on them, in one warm session (local[2]).

    spark-submit --driver-memory 2g benchmarks/experiments/parse_pieces.py RAW_DIR [ROUNDS] [OUT_DIR]

Each piece runs once per round, rounds one after another; the last line gives each piece's fastest round (the first
round of a piece pays the JIT warm-up of its code). ``noop`` pieces go to Spark's ``noop`` sink: they run every
expression but write nothing. The ``write`` pieces are the write pass itself (``parse_valid`` then the Parquet write
of every partition, nothing dropped; ``stage_events`` writes the same way into the version folders).
"""
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from pyspark import StorageLevel  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

import jobs.json_to_parquet as job  # noqa: E402
from lakelib import parse  # noqa: E402
from lakelib.raw import find_raw_days, read_raw_lines  # noqa: E402
from lakelib.schema import EVENTS  # noqa: E402
from lakelib.session import REQUIRED_CONF  # noqa: E402
from lakelib.storage import Storage  # noqa: E402


def main(raw: str, rounds: int, out: str) -> None:
    builder = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
    for key, value in REQUIRED_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    days, _ = find_raw_days(Storage(spark), raw, [], None)
    lines = read_raw_lines(spark, days, job.plan_file_counts(days, 256))

    def noop(df):
        df.write.format("noop").mode("overwrite").save()

    def write(sql=None, hadoop_conf=None):
        for key, value in (sql or {}).items():
            spark.conf.set(key, value)
        for key, value in (hadoop_conf or {}).items():
            hadoop.set(key, value)
        shutil.rmtree(out, ignore_errors=True)
        events = lines.transform(parse.parse_valid).join(F.broadcast(spark.createDataFrame([], "pos long")), "pos",
                                                         "left_anti")
        (events.select(*EVENTS.column_names, "sourceid", "dt").write.mode("overwrite").partitionBy("sourceid", "dt")
         .option("compression", "snappy").parquet("file://" + out))
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs if f.endswith(".parquet"))
        print(f"         Parquet written: {size / 1_048_576:.1f} MB", flush=True)
        for key in sql or {}:
            spark.conf.unset(key)
        for key in hadoop_conf or {}:
            hadoop.unset(key)

    def one_parse_on_disk():
        cached = lines.transform(parse.parse_events).persist(StorageLevel.DISK_ONLY)
        cached.groupBy("sourceid", "dt", "reason").count().collect()
        cached.unpersist()

    def naive():
        shutil.rmtree(out, ignore_errors=True)
        spark.read.json([d.uri for d in days]).write.mode("overwrite").parquet(out)

    pieces = {
        "read + gunzip + keys (lines)": lambda: noop(lines),
        "judge_lines (narrow parse + judge)": lambda: noop(lines.transform(parse.judge_lines)),
        "parse_events (judge + every column)": lambda: noop(lines.transform(parse.parse_events)),
        "parse_valid (every column, no judge)": lambda: noop(lines.transform(parse.parse_valid)),
        "parse_events, DISK_ONLY cache + counts": one_parse_on_disk,
        "write pass (parse_valid + Parquet)": write,
        "write pass, dictionary encoding off": lambda: write(hadoop_conf={"parquet.enable.dictionary": "false"}),
        "write pass, page checksums off": lambda: write(hadoop_conf={"parquet.page.write-checksum.enabled": "false"}),
        "write pass, TIMESTAMP_MICROS not INT96": lambda: write({"spark.sql.parquet.outputTimestampType":
                                                                 "TIMESTAMP_MICROS"}),
        "naive in-session (infer + parse + write)": naive,
    }
    best = {}
    for i in range(rounds):
        for name, piece in pieces.items():
            start = time.perf_counter()
            piece()
            took = time.perf_counter() - start
            best[name] = min(best.get(name, took), took)
            print(f"round {i + 1}  {name:<45} {took:6.1f} s", flush=True)
    print("| piece | fastest round |\n|---|---:|")
    for name, took in best.items():
        print(f"| {name} | {took:.1f} s |")


if __name__ == "__main__":
    main(os.path.abspath(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 3,
         os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else "/tmp/parse_pieces_out")
