"""jobs/message_type_counts.py: the pure counting and window steps, and both periods end to end."""
from __future__ import annotations

import json
import shutil
import uuid
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.message_type_counts import main
from lakelib.counts import count_by_type, in_window, sum_daily, window_days
from lakelib.schema import EVENTS

EVENT_ROWS = T.StructType([T.StructField(n, T.StringType()) for n in ("messageid", "type", "sourceid", "dt")])
DAILY_ROWS = T.StructType(
    [
        T.StructField("sourceid", T.StringType()),
        T.StructField("dt", T.StringType()),
        T.StructField("type", T.StringType()),
        T.StructField("message_count", T.LongType()),
    ]
)
YEARLY_ROWS = T.StructType([DAILY_ROWS["sourceid"], T.StructField("end_dt", T.StringType()), *DAILY_ROWS.fields[2:]])
D = date.fromisoformat


def daily_df(spark, rows):
    return spark.createDataFrame(rows, DAILY_ROWS)


# --- pure transforms -------------------------------------------------------------------------------------------


def test_count_by_type_counts_distinct_message_ids_per_source_day_and_type(spark):
    events = spark.createDataFrame(
        [
            ("m1", "track", "web", "2020-01-01"),
            ("m1", "track", "web", "2020-01-01"),  # the same message twice counts once
            ("m2", "track", "web", "2020-01-01"),
            ("m3", "page", "web", "2020-01-01"),
            ("m1", "track", "web", "2020-01-02"),  # another day: counted there
            ("m9", "identify", "ios", "2020-01-01"),  # another source; no page on ios: no row, not a zero
        ],
        EVENT_ROWS,
    )
    expected = daily_df(spark, [("web", "2020-01-01", "track", 2), ("web", "2020-01-01", "page", 1),
                                ("web", "2020-01-02", "track", 1), ("ios", "2020-01-01", "identify", 1)])
    assert_df_equality(count_by_type(events), expected, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.parametrize(
    "end, first_in, last_out",
    [
        ("2021-06-30", "2020-07-01", "2020-06-30"),  # day 365 in, day 366 out
        ("2020-12-31", "2020-01-02", "2020-01-01"),  # leap year: 2020 has 366 days
        ("2021-02-28", "2020-03-01", "2020-02-29"),  # the window starts just after 29 February
        ("2020-02-29", "2019-03-02", "2019-03-01"),  # ending on 29 February
    ],
)
def test_in_window_keeps_exactly_the_365_days_ending_with_end(spark, end, first_in, last_out):
    after = (D(end) + timedelta(days=1)).isoformat()
    days = [last_out, first_in, end, after]
    daily = daily_df(spark, [("web", d, "track", 1) for d in days])
    got = daily.transform(in_window(D(end)))
    assert_df_equality(got, daily_df(spark, [("web", first_in, "track", 1), ("web", end, "track", 1)]),
                       ignore_row_order=True)
    assert len(window_days([D(end)])) == 365 and window_days([D(end)])[0] == D(first_in)


def test_sum_daily_sums_each_window_per_source_and_type_with_empty_days_absent(spark):
    daily = daily_df(
        spark,
        [
            ("web", "2020-01-01", "track", 5),  # only in the window ending 2020-12-30
            ("web", "2020-06-01", "track", 2),
            ("web", "2020-06-01", "page", 1),
            ("web", "2020-12-31", "track", 10),  # only in the window ending 2020-12-31
            ("ios", "2020-03-03", "alias", 4),
            ("old", "2019-01-01", "track", 9),  # no data in either window: no row at all
        ],
    )
    got = sum_daily(daily, [D("2020-12-31"), D("2020-12-30")])
    expected = spark.createDataFrame(
        [
            ("web", "2020-12-30", "track", 7), ("web", "2020-12-30", "page", 1), ("ios", "2020-12-30", "alias", 4),
            ("web", "2020-12-31", "track", 12), ("web", "2020-12-31", "page", 1), ("ios", "2020-12-31", "alias", 4),
        ],
        YEARLY_ROWS,
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


# --- the job ---------------------------------------------------------------------------------------------------


def write_config(tmp_path: Path, catalog: str) -> None:
    for name in ("raw", "tables", "quarantine", "reports"):
        (tmp_path / name).mkdir(exist_ok=True)
    (tmp_path / "lake.yaml").write_text(
        "lake:\n"
        + "".join(f"  {name}: {tmp_path / name}\n" for name in ("raw", "tables", "quarantine", "reports"))
        + f"catalog: {catalog}\n",
        encoding="utf-8",
    )


@pytest.fixture
def lake(tmp_path: Path):
    """A config (catalog none) and the lake's roots under tmp_path."""
    write_config(tmp_path, "{kind: none}")
    return tmp_path


def write_events(spark, lake: Path, rows):
    """Write ``events`` as json_to_parquet does: every column of the schema, partitionBy(sourceid, dt)."""
    df = spark.createDataFrame(rows, EVENT_ROWS)
    for column in EVENTS.columns[2:]:
        df = df.withColumn(column.name, F.lit(None).cast(column.type))
    df.select(*EVENTS.column_names, "sourceid", "dt").write.mode("overwrite").option(
        "partitionOverwriteMode", "dynamic"
    ).partitionBy("sourceid", "dt").parquet(f"file://{lake}/tables/events")


def read_table(spark, lake: Path, table: str, key: str = "dt"):
    schema = T.StructType([T.StructField("type", T.StringType()), T.StructField("message_count", T.LongType()),
                           T.StructField("sourceid", T.StringType()), T.StructField(key, T.StringType())])
    return spark.read.schema(schema).parquet(f"file://{lake}/tables/{table}").select("sourceid", key, "type",
                                                                                       "message_count")


def run(lake: Path, *args: str) -> tuple[int, dict]:
    report = lake / "report.json"
    code = main(["--config", str(lake / "lake.yaml"), "--report", str(report), *args])
    return code, json.loads(report.read_text()) if report.exists() else {}


def independent_daily(rows):
    """Distinct messageIds per (source, day, type), counted in plain Python."""
    ids = defaultdict(set)
    for messageid, type_, source, dt in rows:
        ids[(source, dt, type_)].add(messageid)
    return [(s, d, t, len(m)) for (s, d, t), m in ids.items()]


def spread_events(sources, days, seed: int = 7):
    """Irregular events: types, repeats and gaps differ per source and day (nobody tuned them to the result)."""
    import random

    rnd = random.Random(seed)
    rows = []
    for source in sources:
        for day in days:
            if rnd.random() < 0.3:
                continue  # an empty day
            for _i in range(rnd.randint(1, 6)):
                mid = f"{source}-{day}-{rnd.randint(0, 4)}"
                rows.append((mid, rnd.choice(("track", "page", "identify", "screen", "group", "alias")), source, day))
    return rows


def test_day_counts_each_requested_source_and_day(spark, lake):
    days = [f"2020-03-0{i}" for i in range(1, 6)]
    rows = spread_events(["web", "ios"], days) + [("dup", "track", "web", "2020-03-02")] * 3
    write_events(spark, lake, rows)

    code, report = run(lake, "--period", "day", "--date", "2020-03-02", "--end-date", "2020-03-04")
    assert code == 0
    wanted = [r for r in independent_daily(rows) if "2020-03-02" <= r[1] <= "2020-03-04"]
    assert_df_equality(read_table(spark, lake, "message_type_counts_daily"), daily_df(spark, wanted),
                       ignore_row_order=True, ignore_nullable=True)
    assert report["status"] == "succeeded" and report["period"] == "day"
    assert {(p["sourceid"], p["dt"]) for p in report["partitions"]} == {(r[0], r[1]) for r in wanted}
    assert report["totals"]["message_count"] == sum(r[3] for r in wanted)
    assert report["totals"]["rows"] == len(wanted)


def test_day_with_a_source_and_no_events_is_not_an_error(spark, lake):
    write_events(spark, lake, [("m1", "track", "web", "2020-03-01"), ("m2", "page", "ios", "2020-03-01")])
    code, report = run(lake, "--period", "day", "--date", "2020-03-01", "--end-date", "2020-03-02",
                       "--source", "ios", "--source", "gone")
    assert code == 0
    assert_df_equality(read_table(spark, lake, "message_type_counts_daily"),
                       daily_df(spark, [("ios", "2020-03-01", "page", 1)]), ignore_nullable=True)
    assert report["days_without_events"] == ["ios/2020-03-02", "gone/2020-03-01", "gone/2020-03-02"]

    code, report = run(lake, "--period", "day", "--date", "2021-01-01", "--source", "web")
    assert (code, report["status"], report["partitions"]) == (0, "nothing_to_do", [])


def test_year_sums_exactly_the_365_days_ending_with_date_computing_missing_daily_first(spark, lake):
    # Two years of data for two sources; the window ending 2021-06-30 cuts it in half.
    days = [(date(2020, 1, 1) + timedelta(days=i)).isoformat() for i in range(0, 730, 9)]
    days += ["2020-06-30", "2020-07-01", "2021-06-30", "2021-07-01"]  # both edges and the day after
    rows = spread_events(["web", "ios"], sorted(set(days)), seed=11)
    rows += [(f"edge{i}", "alias", "web", d) for i, d in enumerate(["2020-06-30", "2020-07-01", "2021-06-30",
                                                                     "2021-07-01"])]
    rows += [("p1", "track", "web", "2020-09-01"), ("p2", "page", "web", "2020-09-01")]
    write_events(spark, lake, rows)
    # Some daily partitions already exist; one of them (on purpose) disagrees with events: the year must use it.
    assert run(lake, "--period", "day", "--date", "2020-07-01", "--end-date", "2020-12-31")[0] == 0
    planted = daily_df(spark, [("web", "2020-09-01", "track", 1000)])
    planted.select("type", "message_count").write.mode("overwrite").parquet(
        f"file://{lake}/tables/message_type_counts_daily/sourceid=web/dt=2020-09-01")

    code, report = run(lake, "--period", "year", "--date", "2021-06-30")
    assert code == 0

    daily = [r for r in independent_daily(rows) if not (r[0], r[1]) == ("web", "2020-09-01")]
    daily.append(("web", "2020-09-01", "track", 1000))
    totals = defaultdict(int)
    for source, dt, type_, n in daily:
        if "2020-07-01" <= dt <= "2021-06-30":
            totals[(source, type_)] += n
    expected = spark.createDataFrame([(s, "2021-06-30", t, n) for (s, t), n in totals.items()], YEARLY_ROWS)
    assert_df_equality(read_table(spark, lake, "message_type_counts_yearly", "end_dt"), expected,
                       ignore_row_order=True, ignore_nullable=True)

    computed = {(p["sourceid"], p["dt"]) for p in report["daily_computed"]}
    event_days = {(r[2], r[3]) for r in rows if "2020-07-01" <= r[3] <= "2021-06-30"}
    assert computed == {(s, d) for s, d in event_days if d > "2020-12-31"}
    assert report["events_partitions_read"] == len(computed)
    assert report["daily_partitions_read"] == len(event_days)
    # The daily partitions the year computed are the independent count too.
    new_daily = read_table(spark, lake, "message_type_counts_daily").where(F.col("dt") > "2020-12-31")
    assert_df_equality(new_daily, daily_df(spark, [r for r in independent_daily(rows)
                                                   if "2020-12-31" < r[1] <= "2021-06-30"]),
                       ignore_row_order=True, ignore_nullable=True)


def test_rerunning_changes_nothing_and_recounts_nothing(spark, lake):
    rows = spread_events(["web"], [f"2020-05-{i:02d}" for i in range(1, 20)], seed=3)
    write_events(spark, lake, rows)
    args = ("--period", "year", "--date", "2020-05-10", "--end-date", "2020-05-12")
    code, first = run(lake, *args)
    assert code == 0 and first["daily_computed"]
    before = read_table(spark, lake, "message_type_counts_yearly", "end_dt").collect()
    daily_before = read_table(spark, lake, "message_type_counts_daily").collect()
    def current_files():  # superseded versions are kept aside (under _versions) for the retention
        return [p for p in (lake / "tables").rglob("*.parquet") if not {"lake_runs", "_versions"} & set(p.parts)]

    files = sorted(p.name for p in current_files())

    code, second = run(lake, *args)
    assert code == 0
    assert second["daily_computed"] == [] and second["events_partitions_read"] == 0
    assert [(p["end_dt"], p["message_count"]) for p in second["partitions"]] == [
        (p["end_dt"], p["message_count"]) for p in first["partitions"]]
    assert_df_equality(read_table(spark, lake, "message_type_counts_yearly", "end_dt"),
                       spark.createDataFrame(before, YEARLY_ROWS), ignore_row_order=True, ignore_nullable=True)
    assert sorted(read_table(spark, lake, "message_type_counts_daily").collect()) == sorted(daily_before)
    assert len(current_files()) == len(files)
    assert [p["end_dt"] for p in second["partitions"]] == ["2020-05-10", "2020-05-11", "2020-05-12"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--period", "day"], "--date is required"),
        (["--period", "year", "--date", "2020-13-01"], "not a date"),
    ],
)
def test_usage_errors_exit_2_with_one_line(lake, capsys, args, message):
    assert main(["--config", str(lake / "lake.yaml"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and err[-1].startswith("message_type_counts: error:")


def test_period_is_required(lake, capsys):
    assert main(["--config", str(lake / "lake.yaml"), "--date", "2020-01-01"]) == 2
    assert "--period" in capsys.readouterr().err


def test_with_the_spark_catalog_both_tables_are_registered_and_a_moved_daily_partition_is_read_there(
    spark, tmp_path
):
    database = f"mtc_{uuid.uuid4().hex[:8]}"
    write_config(tmp_path, f"{{kind: spark, database: {database}}}")
    rows = [("a", "track", "web", "2020-02-28"), ("b", "track", "web", "2020-02-29"),
            ("c", "page", "web", "2020-03-01")]
    write_events(spark, tmp_path, rows)
    code, daily = run(tmp_path, "--period", "day", "--date", "2020-02-28", "--end-date", "2020-03-01")
    assert code == 0
    published = {p["dt"]: p["location"] for p in daily["partitions"]}
    assert all("/_versions/message_type_counts_daily/" in loc for loc in published.values())
    assert_df_equality(
        spark.table(f"{database}.message_type_counts_daily").select("sourceid", "dt", "type", "message_count"),
        daily_df(spark, independent_daily(rows)), ignore_row_order=True, ignore_nullable=True,
    )
    # A compaction moved web/2020-02-29 and re-pointed the catalog; the old folder is gone.
    moved = f"file://{tmp_path}/compacted/web-2020-02-29"
    daily_df(spark, [("web", "2020-02-29", "track", 40)]).select("type", "message_count").write.parquet(moved)
    spark.sql(f"ALTER TABLE {database}.message_type_counts_daily PARTITION (sourceid='web', dt='2020-02-29') "
              f"SET LOCATION '{moved}'")
    shutil.rmtree(published["2020-02-29"][len("file://"):])

    code, report = run(tmp_path, "--period", "year", "--date", "2020-03-01")
    assert code == 0 and report["daily_computed"] == []
    expected = spark.createDataFrame([("web", "2020-03-01", "track", 41), ("web", "2020-03-01", "page", 1)],
                                     YEARLY_ROWS)
    spark.catalog.refreshTable(f"{database}.message_type_counts_yearly")
    assert_df_equality(
        spark.table(f"{database}.message_type_counts_yearly").select("sourceid", "end_dt", "type", "message_count"),
        expected, ignore_row_order=True, ignore_nullable=True,
    )
