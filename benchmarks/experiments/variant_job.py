"""json_to_parquet with one lever applied from the outside, for whole-job timings without editing the job.

    LEVERS=nopersist,nodistinct spark-submit --master local[2] benchmarks/experiments/variant_job.py JOB_ARGS...

``nopersist``: the parsed lines are not cached; the stats pass, the events write and the quarantine write each
read and parse the input again (Spark prunes the columns each needs: the stats pass parses only ``reason``).
``quarantine_reparse``: with nopersist, the quarantine pass only parses what the reason needs (already so).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from pyspark.sql import DataFrame  # noqa: E402

import jobs.json_to_parquet as job  # noqa: E402

LEVERS = set(filter(None, os.environ.get("LEVERS", "").split(",")))

if "nopersist" in LEVERS:
    DataFrame.persist = lambda self, *a, **k: self  # type: ignore[method-assign]
    DataFrame.unpersist = lambda self, *a, **k: self  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(job.main(sys.argv[1:]))
