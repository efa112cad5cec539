"""A lever that did not pay: dedup without shuffling the wide rows.

    spark-submit --driver-memory 2g benchmarks/experiments/no_shuffle_dedup.py RAW_DIR OUT_DIR

The losers (every copy but the earliest of a messageId) are found on a narrow parse (messageId, receivedAt) with a
window; the full parse then drops them with a broadcast anti-join and writes without a shuffle. Timed against
``write_events`` as it is, two rounds, same session; the row counts per partition must agree.
"""
import os
import sys
import time
from functools import reduce

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from pyspark.sql import SparkSession, Window  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402
from pyspark.sql import types as T  # noqa: E402

import jobs.json_to_parquet as job  # noqa: E402
from lakelib import parse  # noqa: E402
from lakelib.raw import find_raw_days  # noqa: E402
from lakelib.schema import EVENTS  # noqa: E402
from lakelib.storage import Storage  # noqa: E402

NARROW = T.StructType([T.StructField(f, T.StringType()) for f in parse.JUDGED_FIELDS + ("receivedAt",)])


def timed(name, fn):
    start = time.perf_counter()
    value = fn()
    print(f"{name:<28} {time.perf_counter() - start:6.1f} s {'' if value is None else value}", flush=True)


def main(raw: str, out: str) -> None:
    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.sources.partitionOverwriteMode", "dynamic").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    days, _ = find_raw_days(Storage(spark), raw, [], None)
    plan = job.plan_file_counts(days, 256)
    lines = job.read_raw_lines(spark, days)
    per_day = reduce(lambda a, b: a.unionByName(b), [
        spark.read.text([f.path for f in d.files]).select(
            "value", F.col("_metadata.file_path").alias("file"), F.lit(d.source).alias("sourceid"),
            F.lit(d.day.isoformat()).alias("dt"))
        for d in days
    ]).withColumn("pos", F.monotonically_increasing_id())
    valid = parse._judge(per_day, NARROW).where("reason is null").select(
        "sourceid", "dt", "file", "pos", F.col("_msg.messageId").alias("messageid"),
        parse.parse_timestamp(F.col("_msg.receivedAt")).alias("receivedat"))
    order = Window.partitionBy("sourceid", "dt", "messageid").orderBy(F.col("receivedat").asc_nulls_last(), "file", "pos")
    timed("warm-up", lambda: lines.count())
    for i in (1, 2):
        timed(f"write_events, round {i}", lambda: job.write_events(
            lines.transform(parse.parse_events), plan, out + "/shuffle", "snappy"))
        losers = valid.withColumn("r", F.row_number().over(order)).where("r > 1").select("file", "pos").cache()
        timed(f"losers, round {i}", losers.count)
        kept = per_day.transform(parse.parse_events).where("reason is null").join(
            F.broadcast(losers), ["file", "pos"], "left_anti").select(*EVENTS.all_names)
        timed(f"anti-join write, round {i}",
              lambda kept=kept: kept.write.mode("overwrite").partitionBy("sourceid", "dt").parquet(out + "/no_shuffle"))
        losers.unpersist()
    count = lambda p: sorted(spark.read.parquet(p).groupBy("sourceid", "dt").count().collect())  # noqa: E731
    print("same rows per partition:", count(out + "/shuffle") == count(out + "/no_shuffle"))


if __name__ == "__main__":
    main(os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]))
