"""Parse-side levers measured in one warm session: each variant's rows go to Spark's ``noop`` sink (no write cost).

    spark-submit --master local[2] benchmarks/experiments/parse_variants.py CONFIG

``job``: lakelib.parse.parse_events as it is. ``extras_once``: the same, with the ``map_filter`` of the extras
computed once (it appears twice, in ``size()`` and as the value, and lambdas are not shared by Spark's
subexpression elimination). ``no_extras``: without the extras column (the cost of keeping unknown keys).
``no_maps``: context/properties/traits/integrations left as JSON text (the cost of the second from_json).
``struct_schema``: one from_json of the line into a struct of the known fields (strings, and map<string,string>
for the nested objects) instead of map-then-reparse: the ceiling of a one-parse design (it does not judge lines
nor keep extras, so it is not a drop-in). ``text_only``: the lines read, nothing parsed.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from pyspark.sql import functions as F  # noqa: E402
from pyspark.sql import types as T  # noqa: E402

import jobs.json_to_parquet as job  # noqa: E402
import lakelib.parse as parse  # noqa: E402
from lakelib.config import load_config  # noqa: E402
from lakelib.schema import EVENT_COLUMNS, MAP, TIMESTAMP  # noqa: E402
from lakelib.session import build_session  # noqa: E402
from lakelib.storage import Storage  # noqa: E402


def variant_parse(lines, extras_mode="twice", maps=True):
    """parse.parse_events with the extras and maps steps switchable (same judging)."""
    wrapped = lambda schema: F.from_json(  # noqa: E731
        F.concat(F.lit('{"v":'), F.col("value"), F.lit(f',"{parse._EOL}":0}}')), schema, parse.JSON_OPTIONS)
    parsed = lines.where(~F.col("value").rlike(r"^\s*$")).withColumn("_obj", wrapped(parse._AS_OBJECT))
    is_object = F.col("_obj").isNotNull() & F.col(f"_obj.{parse._EOL}").isNotNull() & F.col("_obj.v").isNotNull()
    is_json = wrapped(parse._AS_ANY)[parse._EOL].isNotNull()
    msg = F.col("_obj.v")
    reason = (F.when(is_object, parse._message_reason(msg, msg.getItem("messageId")))
              .when(is_json, F.lit("not_an_object")).otherwise(F.lit("invalid_json")))
    judged = parsed.withColumn("reason", reason).withColumn("_msg", F.when(F.col("reason").isNull(), msg))
    cols = []
    for c in EVENT_COLUMNS:
        if not c.field:
            continue
        if c.type == MAP and not maps:
            cols.append(F.col("_msg").getItem(c.field).alias(c.name))
        else:
            cols.append(parse._column_from(F.col("_msg"), c.field, c.type).alias(c.name))
    base = ["sourceid", "dt", "file", "pos", "reason", F.when(F.col("reason").isNotNull(), F.col("value")).alias("raw")]
    if extras_mode == "none":
        return judged.select(*base, *cols)
    if extras_mode == "once":
        judged = judged.withColumn("_ex", F.map_filter(F.col("_msg"), lambda k, _v: ~k.isin(*parse.KNOWN_FIELDS)))
        return judged.select(*base, *cols, F.when(F.size("_ex") > 0, F.col("_ex")).alias("extras"))
    extras = F.map_filter(F.col("_msg"), lambda k, _v: ~k.isin(*parse.KNOWN_FIELDS))
    return judged.select(*base, *cols, F.when(F.size(extras) > 0, extras).alias("extras"))


def struct_parse(lines):
    fields = []
    for c in EVENT_COLUMNS:
        if not c.field:
            continue
        fields.append(T.StructField(c.field, T.MapType(T.StringType(), T.StringType()) if c.type == MAP
                                    else T.StringType()))
    obj = F.from_json(F.col("value"), T.StructType(fields), parse.JSON_OPTIONS)
    cols = [(parse.parse_timestamp(obj[c.field]) if c.type == TIMESTAMP else obj[c.field]).alias(c.name)
            for c in EVENT_COLUMNS if c.field]
    return lines.select("sourceid", "dt", "file", "pos", *cols)


def main(config_path, repeats=2):
    config = load_config(config_path)
    spark = build_session(config, app_name="parse_variants")
    raw_days, _ = job.find_raw_days(Storage(spark), config.lake.raw, [], None)
    lines = job.read_raw_lines(spark, raw_days)
    variants = {
        "text_only": lambda: lines,
        "job": lambda: lines.transform(parse.parse_events),
        "extras_once": lambda: variant_parse(lines, "once"),
        "no_extras": lambda: variant_parse(lines, "none"),
        "no_maps": lambda: variant_parse(lines, "twice", maps=False),
        "struct_schema": lambda: struct_parse(lines),
    }
    lines.write.format("noop").mode("overwrite").save()  # warm-up
    out = {}
    for _ in range(repeats):
        for name, build in variants.items():
            start = time.perf_counter()
            build().write.format("noop").mode("overwrite").save()
            out.setdefault(name, []).append(round(time.perf_counter() - start, 2))
            print(name, out[name][-1], flush=True)
    print("VARIANTS " + json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
