"""json_to_parquet taken apart: each piece timed on its own in one warm session (local[2]).

    spark-submit --master local[2] benchmarks/experiments/pieces.py CONFIG OUT_DIR

Prints ``PIECES {json}``: seconds per piece. The pieces reuse the job's own functions unchanged.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from pyspark import StorageLevel  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

import jobs.json_to_parquet as job  # noqa: E402
from lakelib.config import load_config  # noqa: E402
from lakelib.parse import bucket_for_files, dedupe_by_message_id, parse_events, to_events_table  # noqa: E402
from lakelib.schema import EVENTS  # noqa: E402
from lakelib.session import build_session  # noqa: E402
from lakelib.storage import Storage  # noqa: E402

OUT = {}


def piece(name, fn):
    start = time.perf_counter()
    value = fn()
    OUT[name] = round(time.perf_counter() - start, 2)
    print(f"{name}: {OUT[name]} s ({value})", flush=True)
    return value


def force_all(df):
    """An action that needs every column of ``df`` (so nothing is pruned away)."""
    return df.select(F.sum(F.xxhash64(*df.columns)).alias("h")).collect()[0][0]


def main(config_path, out):
    config = load_config(config_path)
    spark = build_session(config, app_name="pieces")
    spark.conf.set("spark.sql.legacy.allowHashOnMapType", "true")
    raw_days, _ = job.find_raw_days(Storage(spark), config.lake.raw, [], None)
    dirs = [d.uri for d in raw_days]
    plan = job.plan_file_counts(raw_days, config.write.target_file_mb)
    piece("warmup_text_count", lambda: spark.read.text(dirs).count())
    piece("1_gzip_text_count", lambda: spark.read.text(dirs).count())
    lines = job.read_raw_lines(spark, raw_days)
    piece("2_raw_lines_with_metadata", lambda: force_all(lines))
    parsed = lines.transform(parse_events)
    piece("3_parse_all_columns_no_cache", lambda: force_all(parsed))
    piece("3b_parse_reason_only", lambda: parsed.groupBy("reason").count().collect().__len__())
    piece("4_stats_no_cache", lambda: len(job.count_lines(spark, parsed, raw_days)))
    cached = parsed.persist(StorageLevel.MEMORY_AND_DISK)
    piece("5_persist_materialize", lambda: cached.count())
    piece("6_stats_from_cache", lambda: len(job.count_lines(spark, cached, raw_days)))
    piece("6b_stats_from_cache_no_distinct", lambda: len(
        cached.groupBy("sourceid", "dt", "reason").agg(F.count(F.lit(1))).collect()))
    piece("7_write_events_from_cache", lambda: job.write_events(cached, plan, out + "/a", "snappy"))
    nodedup = (cached.where(F.col("reason").isNull()).transform(bucket_for_files(plan)).transform(to_events_table))
    piece("8_write_no_dedup_from_cache", lambda: nodedup.write.mode("overwrite")
          .partitionBy(*EVENTS.partition_keys).parquet(out + "/b"))
    piece("9_quarantine_from_cache", lambda: job.write_quarantine(cached, out + "/q", "x"))
    piece("10_verify", lambda: len(job.verify_written(spark, Storage(spark), out + "/a",
                                                      sorted(d.key for d in raw_days))))
    cached.unpersist()
    piece("11_write_events_no_cache", lambda: job.write_events(parsed, plan, out + "/c", "snappy"))
    dedup_only = parsed.where(F.col("reason").isNull()).transform(bucket_for_files(plan)).transform(
        lambda df: dedupe_by_message_id(df, within=("_bucket",)))
    piece("12_dedup_no_write", lambda: force_all(dedup_only))
    print("PIECES " + json.dumps(OUT))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
