"""The naive conversion a user writes first: infer the schema, add sourceid/dt from the path, write Parquet.

    spark-submit benchmarks/naive_job.py OUT RAW_DAY_DIR...

No judging of lines, no dedup, no quarantine, no report: what lakelib's job must beat while doing more.
"""
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def main(out, paths):
    spark = SparkSession.builder.appName("naive_json_to_parquet").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    df = spark.read.json(paths)
    folders = F.split(F.input_file_name(), "/")
    day_ms = F.element_at(folders, -2).cast("long")
    df = df.withColumn("sourceid", F.element_at(folders, -3)).withColumn(
        "dt", F.date_format(F.timestamp_millis(day_ms), "yyyy-MM-dd")
    )
    # The lowercase column names of the events table (the user's Athena table); nested objects stay structs.
    df = df.toDF(*[c.lower() for c in df.columns])
    df.write.mode("overwrite").partitionBy("sourceid", "dt").parquet(out)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
