"""Compaction planning (pure: sizes in, groups out), checksums and verification."""
from __future__ import annotations

from datetime import datetime

import pytest

from lakelib.checksum import checksum
from lakelib.compaction import MB, DataFile, plan_groups, plan_partition, verify_version
from lakelib.errors import VerificationError
from lakelib.schema import EVENTS, spark_schema


def _members(groups):
    return sorted(i for g in groups for i in g)


def test_small_files_are_packed_up_to_the_target():
    sizes = [30] * 10
    groups = plan_groups(sizes, target_bytes=100)
    assert _members(groups) == list(range(10))
    assert [sum(sizes[i] for i in g) for g in groups] == [90, 90, 90, 30]


def test_files_near_the_target_stay_alone_and_small_ones_are_merged():
    groups = plan_groups([80, 5, 120, 5, 50], target_bytes=100)
    assert groups == [[2], [0], [4], [1, 3]]


def test_first_fit_leaves_at_most_one_group_at_half_the_target():
    sizes = [37, 12, 5, 44, 23, 8, 31, 19, 2, 41, 26, 14, 7, 33]
    groups = plan_groups(sizes, target_bytes=60)
    loads = [sum(sizes[i] for i in g) for g in groups]
    assert max(loads) <= 60
    assert sum(load <= 30 for load in loads) <= 1
    # Replanning the output (same sizes) changes nothing: a second run is a no-op.
    assert len(plan_groups(loads, target_bytes=60)) == len(loads)


def test_plan_compacts_only_when_it_ends_with_fewer_files():
    many = [DataFile(f"f{i}", 6500, footer=6400) for i in range(300)]
    plan = plan_partition({"sourceid": "web", "dt": "2020-01-02"}, "loc", many, 1 * MB)
    assert plan.compact and plan.files_before == 300 and plan.files_after == 1
    assert plan.bytes_before == 300 * 6500
    assert plan.estimated_bytes_after == 300 * 100 + 6400

    near = [DataFile("a", 600_000), DataFile("b", 700_000)]
    assert not plan_partition({}, "loc", near, 1 * MB).compact
    assert not plan_partition({}, "loc", [DataFile("a", 10)], 1 * MB).compact
    assert plan_partition({}, "loc", [], 1 * MB).to_dict()["reason"] == "no data files"


def test_a_partition_compacted_at_this_target_or_more_is_left_alone():
    files = [DataFile("a", 10), DataFile("b", 10)]
    assert not plan_partition({}, "loc", files, 1 * MB, compacted_at_target=1 * MB).compact
    assert plan_partition({}, "loc", files, 2 * MB, compacted_at_target=1 * MB).compact


ROWS = [
    ("m1", "track", "a1", None, "Clicked", None, None, None, "web", datetime(2020, 1, 2, 3, 4, 5), None, None,
     datetime(2020, 1, 2, 3, 4, 6), {"ip": "1.2.3.4", "lib": "x"}, {"k": "1"}, None, None, "2", None),
    ("m2", "identify", None, "u2", None, None, None, None, "web", datetime(2020, 1, 2, 3, 4, 7), None, None,
     datetime(2020, 1, 2, 3, 4, 8), {"ip": "1.2.3.5"}, None, {"email": "x@y"}, None, "2", None),
    ("m3", "page", "a3", None, None, "Home", None, None, "web", datetime(2020, 1, 2, 3, 4, 9), None, None,
     datetime(2020, 1, 2, 3, 4, 10), None, {"path": "/"}, None, None, "2", None),
]


def test_checksum_ignores_order_and_map_entry_order_but_catches_changed_or_doubled_rows(spark):
    schema = spark_schema(EVENTS)
    base = checksum(spark.createDataFrame(ROWS, schema))
    reordered = [ROWS[2], ROWS[0], ROWS[1][:13] + ({"ip": "1.2.3.5"},) + ROWS[1][14:]]
    reordered[1] = ROWS[0][:13] + ({"lib": "x", "ip": "1.2.3.4"},) + ROWS[0][14:]
    assert checksum(spark.createDataFrame(reordered, schema)) == base
    doubled = [ROWS[0], ROWS[0], ROWS[2]]  # same count, one row twice and one missing
    assert checksum(spark.createDataFrame(doubled, schema)).rows == base.rows
    assert checksum(spark.createDataFrame(doubled, schema)) != base
    moved = [ROWS[0][:2] + (None, "a1") + ROWS[0][4:], ROWS[1], ROWS[2]]  # anonymousid value moved to userid
    assert checksum(spark.createDataFrame(moved, schema)) != base
    changed_map = [ROWS[0][:14] + ({"k": "2"},) + ROWS[0][15:], ROWS[1], ROWS[2]]
    assert checksum(spark.createDataFrame(changed_map, schema)) != base


def test_verification_refuses_a_copy_with_a_doubled_row(spark, tmp_path):
    schema = spark_schema(EVENTS)
    old = spark.createDataFrame(ROWS, schema)
    bad = tmp_path / "bad"
    spark.createDataFrame([ROWS[0], ROWS[0], ROWS[2]], schema).coalesce(1).write.parquet(str(bad))
    with pytest.raises(VerificationError, match="different checksum"):
        verify_version(spark, old, f"file://{bad}")
    short = tmp_path / "short"
    spark.createDataFrame(ROWS[:2], schema).coalesce(1).write.parquet(str(short))
    with pytest.raises(VerificationError, match="2 rows written but the old files hold 3"):
        verify_version(spark, old, f"file://{short}")
