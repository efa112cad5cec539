"""The line judge and the dedup: every reject reason, stray types, timestamps, spec examples, duplicates."""
from __future__ import annotations

import base64
import json
from datetime import datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakelib.errors import ConfigError
from lakelib.parse import (
    ISO_8601,
    PARTIAL_RESULTS,
    cut_to_micros,
    dedupe_by_message_id,
    judge_lines,
    parse_events,
    parse_valid,
    too_deep,
)
from lakelib.schema import EVENT_COLUMNS

LINE_SCHEMA = "value string, file string, sourceid string, dt string, pos long"
GOOD = {"messageId": "m1", "type": "track", "timestamp": "2015-12-10T04:08:31.909Z", "receivedAt": "2015-12-10T04:08:32Z"}


def _good(**changes):
    message = dict(GOOD)
    for key, value in changes.items():
        if value is _DROP:
            message.pop(key)
        else:
            message[key] = value
    return json.dumps(message, ensure_ascii=False)


_DROP = object()

CASES = {
    # reject reasons, in the contract's order
    "truncated": ('{"messageId":"m1","type":"tr', "invalid_json"),
    "trailing_text": (_good() + " trailing", "invalid_json"),
    "two_objects_glued": (_good() + _good(), "invalid_json"),
    "extra_brace": (_good() + "}", "invalid_json"),
    "forged_old_end_marker": (_good()[:-1] + '},"lakelib_eol":0}', "invalid_json"),
    "trailing_key": (_good() + ',"x":1', "invalid_json"),
    "trailing_bracket": (_good() + "]", "invalid_json"),
    "trailing_bracket_and_object": (_good() + '],{"x":1}', "invalid_json"),
    "trailing_comma": (_good() + ",", "invalid_json"),
    "array_then_key": ('[1],"x":1', "invalid_json"),
    "lone_high_surrogate": (_good(messageId="u\\ud800").replace("\\\\", "\\"), "invalid_json"),
    "lone_low_surrogate": ('{"messageId":"u\\udc00","type":"track","timestamp":"2015-12-10T04:08:31Z"}', "invalid_json"),
    "single_quotes": ("{'messageId': 'm1', 'type': 'track'}", "invalid_json"),
    "nan": ('{"messageId":"m1","type":"track","timestamp":"2015-12-10T04:08:31Z","x":NaN}', "invalid_json"),
    "nan_in_a_map": (_good()[:-1] + ', "context": {"a": NaN}}', "invalid_json"),
    "bad_escape_in_an_unknown_field": (_good()[:-1] + ', "x": "\\q"}', "invalid_json"),
    "raw_tab_in_a_string": (_good()[:-1] + ', "x": "a\tb"}', "invalid_json"),
    "broken_nested_unknown_field": (_good()[:-1] + ', "x": {"y": [1,}}', "invalid_json"),
    "array": ("[1, 2, 3]", "not_an_object"),
    "string": ('"hello"', "not_an_object"),
    "number": ("42", "not_an_object"),
    "null": ("null", "not_an_object"),
    "true": (" true ", "not_an_object"),
    "no_message_id": (_good(messageId=_DROP), "missing_message_id"),
    "null_message_id": (_good(messageId=None), "missing_message_id"),
    "blank_message_id": (_good(messageId="  "), "missing_message_id"),
    "no_id_and_bad_type": (_good(messageId=_DROP, type="click"), "missing_message_id"),
    "no_type": (_good(type=_DROP), "invalid_type"),
    "capital_type": (_good(type="Track"), "invalid_type"),
    "numeric_type": (_good(type=7), "invalid_type"),
    "bad_type_and_timestamp": (_good(type="click", timestamp="soon"), "invalid_type"),
    "no_timestamp": (_good(timestamp=_DROP), "invalid_timestamp"),
    "word_timestamp": (_good(timestamp="yesterday"), "invalid_timestamp"),
    "month_13": (_good(timestamp="2015-13-10T04:08:31Z"), "invalid_timestamp"),
    "feb_30": (_good(timestamp="2015-02-30T04:08:31Z"), "invalid_timestamp"),
    "epoch_number": (_good(timestamp=1449720511), "invalid_timestamp"),
    "timezone_name": (_good(timestamp="2015-12-10T04:08:31 America/Los_Angeles"), "invalid_timestamp"),
    # valid lines
    "plain": (_good(), None),
    "padded": ("   " + _good() + "  ", None),
    "numeric_message_id": (_good(messageId=12345), None),
    "stray_types": (_good(userId=42, anonymousId=True, event={"a": 1}, context="not a map", properties=[1, 2],
                          sentAt="garbage", version=2), None),
    "unicode": (_good(event="Über café 東京 🚀", properties={"città": "Zürich"}), None),
    "surrogate_pair": ('{"messageId":"\\ud83d\\ude80","type":"track","timestamp":"2015-12-10T04:08:31Z"}', None),
    "escaped_backslash_then_u": ('{"messageId":"a\\\\ud800","type":"track","timestamp":"2015-12-10T04:08:31Z"}', None),
    "replacement_char": (_good(messageId="u\ufffd1"), None),
    "duplicate_map_keys": (_good(properties={"a": 1})[:-2] + ',"a":2,"b":3,"a":{"c":4}}}', None),
    "nested": (_good(properties={"a": {"b": [1, 2.5, None]}, "n": None, "t": True}), None),
    "duplicate_key": ('{"messageId":"m1","type":"page","type":"track","timestamp":"2015-12-10T04:08:31Z"}', None),
    "duplicate_key_last_invalid": ('{"messageId":"m1","type":"track","type":"click","timestamp":"2015-12-10T04:08:31Z"}',
                                   "invalid_type"),
    "unknown_fields": (_good(projectId="p1", writeKey="w", _metadata={"bundled": ["x"]}), None),
}

TIMESTAMPS = {
    "2015-12-10T04:08:31.909Z": datetime(2015, 12, 10, 4, 8, 31, 909000),
    "2015-12-10T04:08:31Z": datetime(2015, 12, 10, 4, 8, 31),
    "2015-12-10T04:08:31.123456Z": datetime(2015, 12, 10, 4, 8, 31, 123456),
    "2015-12-10T04:08:31.123456789Z": datetime(2015, 12, 10, 4, 8, 31, 123456),
    "2015-12-10T04:08:31.500+01:00": datetime(2015, 12, 10, 3, 8, 31, 500000),
    "2015-12-10T04:08:31-0800": datetime(2015, 12, 10, 12, 8, 31),
    "2015-12-10T23:30:00-05:00": datetime(2015, 12, 11, 4, 30),
    "2015-12-10 04:08:31": datetime(2015, 12, 10, 4, 8, 31),
    "2015-12-10": datetime(2015, 12, 10),
    "2016-02-29T12:00:00Z": datetime(2016, 2, 29, 12),
}


def _lines(spark, lines, dt="2015-12-10", file="f.gz", source="src"):
    return spark.createDataFrame([(line, file, source, dt, i) for i, line in enumerate(lines)], LINE_SCHEMA)


@pytest.fixture(scope="module")
def judged(spark):
    names = list(CASES) + [f"ts:{t}" for t in TIMESTAMPS] + ["blank", "spaces"]
    lines = [CASES[n][0] for n in CASES] + [_good(timestamp=t) for t in TIMESTAMPS] + ["", "   \t "]
    rows = parse_events(_lines(spark, lines)).collect()
    by_pos = {row["pos"]: row for row in rows}
    return {name: by_pos.get(i) for i, name in enumerate(names)}


@pytest.mark.parametrize("name", list(CASES))
def test_each_line_gets_the_contract_reason(judged, name):
    line, reason = CASES[name]
    row = judged[name]
    assert row["reason"] == reason, line
    if reason is None:
        assert row["raw"] is None and row["messageid"] is not None
    else:
        assert row["raw"] == line, "a rejected line keeps its exact text"
        assert all(row[c.name] is None for c in EVENT_COLUMNS)


def test_the_narrow_judge_agrees_with_the_full_parse_on_every_line(spark):
    lines = [line for line, _ in CASES.values()] + ["", "  "]
    full = parse_events(_lines(spark, lines)).select("pos", "reason", "raw", "messageid")
    narrow = judge_lines(_lines(spark, lines)).select("pos", "reason", "raw", "messageid")
    assert_df_equality(narrow, full, ignore_row_order=True)


def test_the_parse_without_the_judge_gives_every_valid_line_the_same_columns(spark, spec_examples):
    lines = [line for line, _ in CASES.values()] + [_good(timestamp=t) for t in TIMESTAMPS] + spec_examples + ["", " "]
    columns = ["pos", *[c.name for c in EVENT_COLUMNS]]
    full = parse_events(_lines(spark, lines)).where("reason is null").select(*columns)
    valid_pos = [r["pos"] for r in full.select("pos").collect()]
    assert len(valid_pos) > len(spec_examples) + len(TIMESTAMPS)
    fast = parse_valid(_lines(spark, lines)).where(F.col("pos").isin(valid_pos)).select(*columns)
    by_pos = lambda df: {r["pos"]: r.asDict() for r in df.collect()}  # noqa: E731 - maps do not sort in Spark
    assert by_pos(fast) == by_pos(full)


ZULU = ["2015-12-10T04:08:31.909Z", "2015-12-10T04:08:31z", "2015-12-10Z", "2015-12-10T04Z", "2015-12-10T04:08Z",
        "2015-12-10 04:08:31Z", "0001-01-01T00:00:00Z", "1899-12-31T23:59:59.999999Z", "2015-12-10T04:08:31.123456789Z",
        "2015-02-30T04:08:31Z", "2015-12-10T04:08:31ZZ", "Z", "", "2015-12-10T04:08:31+00:00", "2015-12-10T04:08:31-0800",
        "2015-12-10T04:08:31.Z", "2015-12-10T04:08:31 Z", "2015-12-10T4:08:31Z", "2015-12-10T04:08:31"]


@pytest.mark.parametrize("zone", ["UTC", "America/Los_Angeles"])
def test_timestamps_read_in_a_utc_session_are_the_instants_sparks_own_cast_gives(spark, zone):
    """The ``Z`` shortcut of a UTC session (``lakelib.parse._iso_to_timestamp``) changes no value, here or in a
    session elsewhere (where it is off)."""
    lines = [_good(timestamp=t, sentAt=t) for t in ZULU]
    micros = F.unix_micros  # an instant, whatever the session's zone
    spark.conf.set("spark.sql.session.timeZone", zone)
    try:
        rows = parse_events(_lines(spark, lines)).select(
            "pos", micros("timestamp").alias("timestamp"), micros("sentat").alias("sentat")
        ).collect()
        frame = spark.createDataFrame([(i, t) for i, t in enumerate(ZULU)], "pos long, t string")
        spark_cast = frame.select(
            "pos", micros(F.when(F.col("t").rlike(ISO_8601), F.try_to_timestamp("t"))).alias("spark")
        ).collect()
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    want = {r["pos"]: r["spark"] for r in spark_cast}
    got = {r["pos"]: r for r in rows}
    for pos, text in enumerate(ZULU):
        assert (got[pos]["timestamp"], got[pos]["sentat"]) == (want[pos], want[pos]), text
    assert sum(v is not None for v in want.values()) == 8


def test_the_parse_refuses_a_session_without_partial_json_results(spark):
    spark.conf.set(PARTIAL_RESULTS, "false")
    try:
        with pytest.raises(ConfigError, match=PARTIAL_RESULTS):
            parse_events(_lines(spark, [_good()]))
    finally:
        spark.conf.unset(PARTIAL_RESULTS)


def test_blank_lines_are_neither_rows_nor_rejects(judged):
    assert judged["blank"] is None and judged["spaces"] is None


@pytest.mark.parametrize("text", list(TIMESTAMPS))
def test_iso_timestamps_are_stored_in_utc(judged, text):
    row = judged[f"ts:{text}"]
    assert row["reason"] is None
    assert row["timestamp"] == TIMESTAMPS[text]


def test_stray_types_never_reject_and_keep_their_json_text(judged):
    row = judged["stray_types"]
    assert row["userid"] == "42"
    assert row["anonymousid"] == "true"
    assert json.loads(row["event"]) == {"a": 1}
    assert row["context"] is None and row["properties"] is None
    assert row["sentat"] is None
    assert row["version"] == "2"
    assert judged["numeric_message_id"]["messageid"] == "12345"


def test_nested_values_are_json_text_and_unicode_survives(judged):
    nested = judged["nested"]["properties"]
    assert json.loads(nested["a"]) == {"b": [1, 2.5, None]}
    assert nested["n"] is None and nested["t"] == "true"
    unicode = judged["unicode"]
    assert unicode["event"] == "Über café 東京 🚀"
    assert unicode["properties"] == {"città": "Zürich"}


def test_a_repeated_top_level_key_resolves_to_its_last_value(judged):
    assert judged["duplicate_key"]["type"] == "track"


def test_a_repeated_key_inside_a_map_resolves_to_its_last_value(spark):
    line, _ = CASES["duplicate_map_keys"]
    props = parse_events(_lines(spark, [line, CASES["nested"][0]])).select("pos", "properties")
    got = props.select("pos", F.size("properties"), F.col("properties")["a"], F.col("properties")["b"]).collect()
    assert sorted(tuple(r) for r in got) == [(0, 2, '{"c":4}', "3"), (1, 3, '{"b":[1,2.5,null]}', None)]


def test_a_repeated_key_in_extras_resolves_to_its_last_value(spark):
    extras = parse_events(_lines(spark, [_good()[:-1] + ', "x": 1, "x": 2}'])).select("extras")
    assert [tuple(r) for r in extras.select(F.size("extras"), F.col("extras")["x"]).collect()] == [(1, "2")]


def test_numeric_message_ids_keep_the_digits_the_client_sent(spark):
    ids = ["1e400", "2e400", "-1E+400", "0.1000000000000000001", "0.1", "12345678.9", '"123"', '"\\"Infinity\\""']
    lines = [f'{{"type":"track", "messageId" : {i},"timestamp":"2015-12-10T04:08:31Z"}}' for i in ids]
    for judge in (parse_events, judge_lines):
        got = [r["messageid"] for r in sorted(judge(_lines(spark, lines)).collect(), key=lambda r: r["pos"])]
        assert got == ["1e400", "2e400", "-1E+400", "0.1000000000000000001", "0.1", "12345678.9", "123",
                       '"Infinity"']


def test_a_numeric_message_id_is_read_from_the_top_level_and_its_last_copy(spark):
    """A nested ``messageId`` earlier in the line is not the message's id (it would merge different messages)."""
    lines = ['{"properties":{"messageId":7},"type":"track","messageId":12,"timestamp":"2015-12-10T04:08:31Z"}',
             '{"context":{"x":{"messageId" : 7}},"messageId":1e400,"type":"track","timestamp":"2015-12-10T04:08:31Z"}',
             '{"messageId":1e400,"type":"track","timestamp":"2015-12-10T04:08:31Z","messageId":2e400}',
             '{"messageId":1e400,"type":"track","timestamp":"2015-12-10T04:08:31Z","messageId":"12"}']
    for judge in (parse_events, judge_lines):
        got = [r["messageid"] for r in sorted(judge(_lines(spark, lines)).collect(), key=lambda r: r["pos"])]
        assert got == ["12", "1e400", "2e400", "12"]


def test_numbers_in_maps_are_stored_as_text_that_casts_back_to_the_same_double(spark):
    numbers = ["12345678.9", "0.000123", "1e400", "-1e400", "1.50", "7", "123456789012345678901234567890"]
    props = ",".join(f'"k{i}":{n}' for i, n in enumerate(numbers))
    line = f'{{"messageId":"m","type":"track","timestamp":"2015-12-10T04:08:31Z","properties":{{{props}}},"x":1e400}}'
    quoted = '{"messageId":"q","type":"track","timestamp":"2015-12-10T04:08:31Z","properties":{"s":"\\"Infinity\\""}}'
    rows = sorted(parse_events(_lines(spark, [line, quoted])).collect(), key=lambda r: r["pos"])
    stored = [rows[0]["properties"][f"k{i}"] for i in range(len(numbers))]
    assert stored == ["1.23456789E7", "1.23E-4", "Infinity", "-Infinity", "1.5", "7", numbers[-1]]
    assert [float(text) for text in stored] == [float(n) for n in numbers]
    assert rows[0]["extras"] == {"x": "Infinity"}
    assert rows[1]["properties"] == {"s": '"Infinity"'}, "a string that holds the quotes keeps them"


def _byte_lines(spark, lines: list[bytes]):
    rows = [(line, "f.gz", "src", "2015-12-10", i) for i, line in enumerate(lines)]
    df = spark.createDataFrame(rows, "bytes binary, file string, sourceid string, dt string, pos long")
    return df.select(F.col("bytes").cast("string").alias("value"), "file", "sourceid", "dt", "pos")


def test_lines_that_are_not_utf8_are_invalid_json_with_their_bytes_kept(spark):
    good = _good(messageId="u1").encode()
    lines = [good.replace(b'"u1"', b'"u\xff1"'), good.replace(b'"u1"', b'"u\xfe1"'),
             good.replace(b'"u1"', b'"u\xed\xa0\x801"'), good.replace(b'"u1"', b'"u\xef\xbf\xbd1"')]
    for judge in (parse_events, judge_lines):
        rows = sorted(judge(_byte_lines(spark, lines)).collect(), key=lambda r: r["pos"])
        assert [r["reason"] for r in rows] == ["invalid_json"] * 3 + [None], "a real U+FFFD is valid text"
        assert [base64.b64decode(r["raw_base64"]) for r in rows[:3]] == lines[:3]
        assert rows[3]["raw_base64"] is None and rows[3]["messageid"] == "u\ufffd1"


def test_a_line_nested_2000_deep_is_invalid_json_and_says_why(spark):
    deep = '{"messageId":"m","type":"track","timestamp":"2015-12-10T04:08:31Z","p":' + "[" * 2000 + "]" * 2000 + "}"
    shallow = _good()[:-1] + ', "p": "' + "[" * 2000 + '"}'
    parsed = parse_events(_lines(spark, [deep, shallow, "[" * 1500]))
    rows = parsed.select("pos", "reason", too_deep(F.coalesce("raw", F.lit(""))))
    assert [tuple(r) for r in sorted(rows.collect())] == [(0, "invalid_json", True), (1, None, False),
                                                          (2, "invalid_json", True)]


def test_unknown_top_level_fields_are_kept_in_extras(judged):
    extras = judged["unknown_fields"]["extras"]
    assert extras["projectId"] == "p1" and extras["writeKey"] == "w"
    assert json.loads(extras["_metadata"]) == {"bundled": ["x"]}
    assert judged["plain"]["extras"] is None


def _expected_text(value):
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _same_json_text(got, want):
    if want is None or isinstance(want, str):
        return got == want
    return json.loads(got) == want


def test_every_spec_example_reaches_the_table_with_every_field(spark, spec_examples):
    rows = sorted(parse_events(_lines(spark, spec_examples)).collect(), key=lambda r: r["pos"])
    assert len(rows) == len(spec_examples) == 7
    for row, line in zip(rows, spec_examples):
        message = json.loads(line)
        assert row["reason"] is None, line
        seen = set()
        for column in EVENT_COLUMNS:
            if column.field is None or column.field not in message:
                continue
            seen.add(column.field)
            want = message[column.field]
            got = row[column.name]
            if column.type == "timestamp":
                assert got == datetime.strptime(want, "%Y-%m-%dT%H:%M:%S.%fZ"), column.name
            elif column.type.startswith("map"):
                assert set(got) == set(want), column.name
                for key, value in want.items():
                    assert _same_json_text(got[key], value), (column.name, key)
            else:
                assert got == _expected_text(want), column.name
        assert seen == set(message), "every field of the example has a column"
        assert row["extras"] is None


DEDUP_SCHEMA = "sourceid string, dt string, file string, pos long, messageid string, receivedat timestamp, type string"


@pytest.mark.parametrize("order", ["earliest_first", "earliest_last"])
def test_dedup_keeps_the_earliest_received_copy_in_either_order(spark, order):
    early = ("s", "2015-12-10", "a.gz", 1, "m1", datetime(2015, 12, 10, 1), "track")
    late = ("s", "2015-12-10", "a.gz", 2, "m1", datetime(2015, 12, 10, 2), "page")
    rows = [early, late] if order == "earliest_first" else [late, early]
    other_day = ("s", "2015-12-11", "b.gz", 1, "m1", datetime(2015, 12, 11, 3), "alias")
    other_source = ("t", "2015-12-10", "c.gz", 1, "m1", datetime(2015, 12, 10, 3), "group")
    got = dedupe_by_message_id(spark.createDataFrame(rows + [other_day, other_source], DEDUP_SCHEMA))
    expected = spark.createDataFrame([early, other_day, other_source], DEDUP_SCHEMA)
    assert_df_equality(got, expected, ignore_row_order=True)


def test_dedup_ties_go_to_the_first_file_then_the_first_line_and_null_received_loses(spark):
    when = datetime(2015, 12, 10, 1)
    rows = [
        ("s", "d", "b.gz", 1, "m1", when, "page"),
        ("s", "d", "a.gz", 9, "m1", when, "track"),
        ("s", "d", "a.gz", 3, "m1", when, "identify"),
        ("s", "d", "a.gz", 0, "m1", None, "alias"),
        ("s", "d", "a.gz", 1, "m2", None, "group"),
    ]
    got = dedupe_by_message_id(spark.createDataFrame(rows, DEDUP_SCHEMA))
    expected = spark.createDataFrame([rows[2], rows[4]], DEDUP_SCHEMA)
    assert_df_equality(got, expected, ignore_row_order=True)


@pytest.mark.parametrize("text, cut", [
    ("2015-12-10T04:08:31.1234567Z", True), ("2015-12-10 04:08:31.123456789+01:00", True),
    ("2015-12-10T04:08:31.0000001-0500", True), ("2015-12-10T04:08:31.1234560Z", False),
    ("2015-12-10T04:08:31.123456000Z", False), ("2015-12-10T04:08:31.123456Z", False),
    ("2015-12-10T04:08:31.909+0200", False), ("2015-12-10T04:08:31Z", False), ("2015-12-10", False),
    ("2015-13-10T04:08:31.1234567Z", False), ("not a time:00.1234567", False), ("", False), (None, False),
])
def test_cut_to_micros_says_when_a_timestamp_loses_digits_beyond_the_microsecond(spark, text, cut):
    df = spark.createDataFrame([(text,)], "t string")
    assert df.select(cut_to_micros(F.col("t"), True), cut_to_micros(F.col("t"))).first() == (cut, cut)
