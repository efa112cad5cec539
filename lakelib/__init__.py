"""lakelib: turn Segment's raw S3 logs into a Parquet data lake on EMR, and query it from notebooks.

Modules, one concern each: :mod:`lakelib.config` (YAML), :mod:`lakelib.schema` (the message and the tables),
:mod:`lakelib.paths` (raw day folders and partition paths), :mod:`lakelib.raw` (which raw day folders exist),
:mod:`lakelib.parse` (judging and deduplicating lines), :mod:`lakelib.json_udfs` (its JSON UDFs in the JVM),
:mod:`lakelib.session` (the SparkSession), :mod:`lakelib.storage` (files through Hadoop's FileSystem),
:mod:`lakelib.tables` (reading, writing and registering table partitions), :mod:`lakelib.catalog` (Spark metastore,
Glue), :mod:`lakelib.compaction`, :mod:`lakelib.report` (run reports), :mod:`lakelib.redact` (secret values hidden),
:mod:`lakelib.runner` (what every job's main shares), :mod:`lakelib.emr` (EMR steps), :mod:`lakelib.sample` (sample
data), :mod:`lakelib.errors` (exceptions).
"""
__version__ = "0.1.0"
