"""The floor: read the gzip files as text and count the lines (decompression and line splitting only).

    spark-submit benchmarks/floor_job.py RAW_DAY_DIR...
"""
import sys

from pyspark.sql import SparkSession

if __name__ == "__main__":
    spark = SparkSession.builder.appName("floor_count_lines").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    print(spark.read.text(sys.argv[1:]).count())
    spark.stop()
