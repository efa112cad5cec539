"""Read-side queries, timed inside one Spark session; prints one JSON object on the last stdout line.

    spark-submit benchmarks/read_side.py queries RAW_ROOT EVENTS_ROOT DAILY_ROOT SOURCE DAY_FOLDER DT REPEATS
    spark-submit benchmarks/read_side.py small-files CONFIG SOURCE DT N_FILES   # write + register N small files
    spark-submit benchmarks/read_side.py catalog-query CONFIG SOURCE DT REPEATS # count by type via the catalog

Bytes read are the delta of Hadoop's FileSystem statistics for the ``file`` scheme around each query: in local
mode every task runs in this JVM, so they see every byte a scan read (AQE is left on: it does not matter here).
"""
import json
import sys
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def bytes_read(spark) -> int:
    fs = spark.sparkContext._jvm.org.apache.hadoop.fs.FileSystem
    total = 0
    for stat in fs.getAllStatistics():
        if stat.getScheme() == "file":
            total += stat.getBytesRead()
    return total


def timed(spark, label, build, repeats, with_files=False):
    """Run ``build()`` (a DataFrame) ``repeats`` times: seconds, bytes read by the last run, result rows."""
    runs, read, rows, files = [], None, None, None
    for _ in range(repeats):
        before = bytes_read(spark)
        start = time.perf_counter()
        df = build()
        result = df.collect()
        runs.append(time.perf_counter() - start)
        read = bytes_read(spark) - before
        rows = len(result)
        # inputFiles() lists the relation's files before partition pruning: only meaningful for a read of
        # exactly the files a query scans (a day folder, a catalog table with one partition).
        files = len(df.inputFiles()) if with_files else None
    return {"label": label, "runs": runs, "bytes_read": read, "rows": rows, "files": files}


def count_by_type(df):
    return df.groupBy("type").agg(F.count(F.lit(1)).alias("message_count"))


def queries(spark, raw_root, events_root, daily_root, source, day_folder, dt, repeats):
    out = []
    day_dir = f"{raw_root}/{source}/{day_folder}"
    out.append(timed(spark, f"daily: raw JSON ({source}, {dt}): spark.read.json(day folder) + count by type",
                     lambda: count_by_type(spark.read.json(day_dir).where(F.col("type").isNotNull())), repeats,
                     with_files=True))
    out.append(timed(spark, "daily: raw JSON, all sources and days read, filtered on the path",
                     lambda: count_by_type(
                         spark.read.json(raw_root + "/*/*/").withColumn("_f", F.input_file_name())
                         .where(F.col("_f").contains(f"/{source}/{day_folder}/"))), repeats, with_files=True))
    events = lambda: spark.read.parquet(events_root)  # noqa: E731
    out.append(timed(spark, f"daily: events Parquet, partition-pruned (sourceid={source}, dt={dt})",
                     lambda: count_by_type(events().where((F.col("sourceid") == source) & (F.col("dt") == dt))),
                     repeats))
    # The daily table, as message_type_counts writes it (one small file per partition), written once here.
    daily = events().groupBy("sourceid", "dt", "type").agg(F.count(F.lit(1)).alias("message_count"))
    daily.coalesce(1).write.mode("overwrite").partitionBy("sourceid", "dt").parquet(daily_root)
    out.append(timed(spark, f"yearly ({source}): events Parquet, every day of the year",
                     lambda: count_by_type(events().where(F.col("sourceid") == source)), repeats))
    out.append(timed(spark, f"yearly ({source}): sum of message_type_counts_daily",
                     lambda: spark.read.parquet(daily_root).where(F.col("sourceid") == source)
                     .groupBy("type").agg(F.sum("message_count").alias("message_count")), repeats))
    return {"queries": out}


def _config_session(config_path):
    from lakelib.config import load_config
    from lakelib.session import build_session

    config = load_config(config_path)
    return config, build_session(config, app_name="bench_read_side")


def main(argv):
    mode = argv[0]
    if mode == "queries":
        raw_root, events_root, daily_root, source, day_folder, dt, repeats = argv[1:8]
        spark = SparkSession.builder.appName("bench_read_side").getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        result = queries(spark, raw_root, events_root, daily_root, source, day_folder, dt, int(repeats))
    elif mode == "small-files":
        config_path, events_root, source, dt, n_files = argv[1:6]
        from lakelib.catalog import Partition, open_catalog
        from lakelib.paths import join, partition_dir
        from lakelib.schema import EVENTS

        config, spark = _config_session(config_path)
        part = spark.read.parquet(events_root).where((F.col("sourceid") == source) & (F.col("dt") == dt))
        target_root = join(config.lake.tables, EVENTS.name)
        location = join(target_root, partition_dir({"sourceid": source, "dt": dt}))
        part.drop("sourceid", "dt").repartition(int(n_files)).write.mode("overwrite").parquet(location)
        catalog = open_catalog(config, spark)
        catalog.ensure_table(EVENTS, target_root)
        catalog.register_partitions(EVENTS, [Partition({"sourceid": source, "dt": dt}, location)])
        result = {"location": location}
    elif mode == "catalog-query":
        config_path, source, dt, repeats, label = argv[1:6]
        config, spark = _config_session(config_path)
        table = f"{config.catalog.database}.events"
        build = lambda: count_by_type(  # noqa: E731
            spark.table(table).where((F.col("sourceid") == source) & (F.col("dt") == dt)))
        result = timed(spark, label, build, int(repeats), with_files=True)
        result["dirs"] = sorted({f.rsplit("/", 1)[0] for f in build().inputFiles()})
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
