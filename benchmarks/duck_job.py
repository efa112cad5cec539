"""DuckDB's single-node conversion: the same columns as ``events``, partitioned by sourceid and dt, 2 threads.

    python -m benchmarks.duck_job OUT RAW_ROOT [THREADS]

``sourceid`` and ``dt`` come from each file's folders, as in lakelib. Nested objects are kept as JSON text
(lakelib writes map<string,string>). Malformed lines are skipped (``ignore_errors``): no quarantine, no dedup.
"""
import sys

STRING_FIELDS = ("messageId", "type", "anonymousId", "userId", "event", "name", "groupId", "previousId", "channel")
TIME_FIELDS = ("timestamp", "originalTimestamp", "sentAt", "receivedAt")
JSON_FIELDS = ("context", "properties", "traits")


def query(raw_root: str, out: str) -> str:
    """The COPY statement."""
    columns = {f: "VARCHAR" for f in STRING_FIELDS + TIME_FIELDS}
    columns.update({f: "JSON" for f in JSON_FIELDS})
    spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
    select = [f'"{f}" AS {f.lower()}' for f in STRING_FIELDS]
    select += [f'TRY_CAST("{f}" AS TIMESTAMPTZ) AS {f.lower()}' for f in TIME_FIELDS]
    select += [f'CAST("{f}" AS VARCHAR) AS {f.lower()}' for f in JSON_FIELDS]
    select += [
        "split_part(filename, '/', -3) AS sourceid",
        "strftime(make_timestamp(CAST(split_part(filename, '/', -2) AS BIGINT) * 1000), '%Y-%m-%d') AS dt",
    ]
    return (
        f"COPY (SELECT {', '.join(select)} FROM read_json('{raw_root}/*/*/*.gz', format='newline_delimited', "
        f"columns={spec}, filename=true, ignore_errors=true, compression='gzip')) "
        f"TO '{out}' (FORMAT parquet, COMPRESSION snappy, PARTITION_BY (sourceid, dt), OVERWRITE_OR_IGNORE)"
    )


def main(out: str, raw_root: str, threads: int = 2) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads={int(threads)}")
    con.execute("SET TimeZone='UTC'")
    con.execute(query(raw_root, out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4]))
