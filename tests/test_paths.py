"""Raw day folders and partition paths."""
from __future__ import annotations

from datetime import date

import pytest

from lakelib.paths import (
    date_range,
    day_folder,
    folder_day,
    parse_partition_dir,
    partition_dir,
    select_days,
    window_start,
)


@pytest.mark.parametrize("day", [date(1970, 1, 1), date(2016, 2, 29), date(2019, 5, 27), date(2038, 1, 20)])
def test_day_folder_round_trips(day):
    assert folder_day(day_folder(day)) == day


def test_day_folder_is_utc_midnight_in_ms():
    assert day_folder(date(2019, 5, 27)) == "1558915200000"
    assert folder_day("1558915200000") == date(2019, 5, 27)
    assert folder_day("1558915200000") == folder_day("1559001599999")  # still the same UTC day
    with pytest.raises(ValueError):
        folder_day("2019-05-27")


def test_ranges_and_windows_are_inclusive():
    assert date_range(date(2020, 2, 28), date(2020, 3, 1)) == [date(2020, 2, 28), date(2020, 2, 29), date(2020, 3, 1)]
    assert date_range(date(2020, 3, 1), date(2020, 2, 28)) == []
    assert window_start(date(2021, 2, 28), 365) == date(2020, 3, 1)
    assert len(date_range(window_start(date(2021, 2, 28), 365), date(2021, 2, 28))) == 365


def test_partition_paths_build_and_parse():
    assert partition_dir({"sourceid": "web", "dt": "2020-01-02"}) == "sourceid=web/dt=2020-01-02"
    assert parse_partition_dir("s3://b/t/events/sourceid=a%2Fb/dt=2020-01-02/x.parquet") == {
        "sourceid": "a/b", "dt": "2020-01-02"}
    assert partition_dir({"sourceid": "a/b"}) == "sourceid=a%2Fb"


def test_select_days_ignores_other_folders():
    folders = [day_folder(date(2020, 1, 2)), "_temporary", day_folder(date(2020, 1, 1)), "notes"]
    assert list(select_days(folders, None)) == [(date(2020, 1, 1), "1577836800000"), (date(2020, 1, 2), "1577923200000")]
    assert list(select_days(folders, [date(2020, 1, 2), date(2020, 1, 3)])) == [(date(2020, 1, 2), "1577923200000")]
