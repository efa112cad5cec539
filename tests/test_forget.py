"""lakelib.forget: the ids file, salted hashes and their store, linked ids, which events, quarantined lines and raw
lines go, the atomic raw rewrite, and noncurrent S3 versions against moto's server."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakelib.errors import ErasureError, IdsFileError, InputError, UsageError
from lakelib.forget import (
    Forgotten,
    delete_noncurrent_versions,
    drop_lines,
    events_to_remove,
    hash_id,
    holds_id_string,
    id_hash,
    json_strings_in,
    lake_salt,
    line_goes,
    linked_ids,
    load_forgotten,
    mark_goes,
    parse_ids,
    read_ids,
    rewrite_raw_file,
    save_forgotten,
    store_uri,
    suppress,
)
from lakelib.parse import parse_events
from lakelib.raw import gunzip, split_lines
from lakelib.storage import Storage

SALT = "5a" * 32
EVENT_SCHEMA = "messageid string, type string, userid string, anonymousid string, previousid string"


# --- the ids file ------------------------------------------------------------------------------------------------

def test_parse_ids_takes_both_fields_integers_as_digits_and_skips_blank_lines():
    text = ('{"userId": "u1", "anonymousId": "a1"}\r\n\n  \n{"anonymousId": "a2", "email": "x@y.z"}\n'
            '{"userId": 1234567890123456789012, "anonymousId": null}\r{"userId": "é日本"}')

    request = parse_ids(text, "s3://b/ids.jsonl")

    assert request.user_ids == {"u1", "1234567890123456789012", "é日本"}
    assert request.anonymous_ids == {"a1", "a2"}
    assert request.ids == request.user_ids | request.anonymous_ids
    assert "u1" not in repr(request)


@pytest.mark.parametrize("line, why", [
    ('{"userId": "secret-42"', "not a JSON object"),
    ('["secret-42"]', "not a JSON object"),
    ('{"userId": NaN}', "not a JSON object"),
    ('{"userId": 1.5, "anonymousId": "secret-42"}', "userId is not a string or an integer"),
    ('{"anonymousId": true, "userId": "secret-42"}', "anonymousId is not a string or an integer"),
    ('{"userId": " ", "anonymousId": "secret-42"}', "userId is blank or not valid Unicode"),
    ('{"userId": "secret-42\\ud800"}', "userId is blank or not valid Unicode"),
    ('{"email": "secret-42@example.com"}', "neither userId nor anonymousId"),
])
def test_a_malformed_line_names_its_number_and_the_uri_never_its_content(line, why):
    text = '{"userId": "u1"}\n\n' + line + '\n{"userId": "u2"}\n'

    with pytest.raises(IdsFileError) as info:
        parse_ids(text, "file:///ids.jsonl")

    assert str(info.value).startswith(f"ids file file:///ids.jsonl, line 3: {why}")
    assert "secret" not in str(info.value) and info.value.exit_code == 1


@pytest.mark.parametrize("text", ["", "\n  \n\r\n"])
def test_an_empty_ids_file_is_a_usage_error(text):
    with pytest.raises(UsageError, match="ids file x.jsonl: no id in it") as info:
        parse_ids(text, "x.jsonl")
    assert info.value.exit_code == 2


def test_read_ids_from_a_local_file_and_from_s3(tmp_path, aws):
    import boto3

    path = tmp_path / "ids.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"userId": "u1"}\n')
    s3 = boto3.client("s3", endpoint_url=aws)
    s3.create_bucket(Bucket="requests")
    s3.put_object(Bucket="requests", Key="gdpr/ids.jsonl", Body=b'{"anonymousId": "a1"}\n')

    assert read_ids(str(path)).user_ids == {"u1"}
    assert read_ids(f"file://{path}").user_ids == {"u1"}
    assert read_ids("s3://requests/gdpr/ids.jsonl", s3).anonymous_ids == {"a1"}
    with pytest.raises(UsageError, match="--ids s3://requests/gdpr/missing.jsonl: cannot read it"):
        read_ids("s3://requests/gdpr/missing.jsonl", s3)
    with pytest.raises(UsageError, match="cannot read it"):
        read_ids(str(tmp_path / "missing.jsonl"))


def test_read_ids_refuses_a_line_that_is_not_utf8_by_number(tmp_path):
    path = tmp_path / "ids.jsonl"
    path.write_bytes(b'{"userId": "u1"}\n{"userId": "secret\xff"}\n')

    with pytest.raises(IdsFileError, match=r"line 2: not UTF-8 text") as info:
        read_ids(str(path))
    assert "secret" not in str(info.value)


# --- hashes and their store --------------------------------------------------------------------------------------

IDS = ["u1", "", "é", "日本語", "emoji \U0001F600", "e\u0301", "a/b", 'quote " and \\ slash', "x" * 1000]


def test_the_spark_hash_is_the_python_hash_for_any_text(spark):
    df = spark.createDataFrame([(i,) for i in IDS] + [(None,)], "id string")

    got = {row.id: row.h for row in df.select("id", id_hash(SALT, "id").alias("h")).collect()}

    assert got == {**{i: hash_id(SALT, i) for i in IDS}, None: None}
    assert hash_id(SALT, "u1") != hash_id("6b" * 32, "u1") and len(hash_id(SALT, "u1")) == 64


def test_the_store_keeps_one_salt_and_every_run_s_hashes_never_an_id_in_clear(spark, tmp_path):
    storage = Storage(spark)
    tables = f"file://{tmp_path}/tables"
    assert lake_salt(storage, tables) is None and load_forgotten(storage, tables) is None

    salt = lake_salt(storage, tables, create=True)
    assert salt is not None and lake_salt(storage, tables, create=True) == salt
    first, second = Forgotten.of(salt, ["alice@example.com", "a1"]), Forgotten.of(salt, ["bob", "a1"])
    save_forgotten(storage, tables, first.hashes, salt, "forget_users-1", "2026-01-01T00:00:00Z")
    save_forgotten(storage, tables, second.hashes, salt, "forget_users-2", "2026-01-02T00:00:00Z")
    assert save_forgotten(storage, tables, frozenset(), salt, "forget_users-3", "2026-01-03T00:00:00Z") is None

    loaded = load_forgotten(storage, tables)
    assert loaded == Forgotten(salt, first.hashes | second.hashes)
    assert loaded.holds("bob") and not loaded.holds("carol")
    store = Path(tmp_path, "tables", "_lakelib", "forget")
    assert sorted(p.name for p in (store / "hashes").iterdir() if not p.name.startswith(".")) == [
        "forget_users-1.jsonl", "forget_users-2.jsonl"]
    every_byte = b"".join(p.read_bytes() for p in store.rglob("*") if p.is_file())
    assert b"alice" not in every_byte and b"bob" not in every_byte and b'"a1"' not in every_byte


def test_hashes_made_with_another_salt_are_refused(spark, tmp_path):
    storage = Storage(spark)
    tables = f"file://{tmp_path}/tables"
    salt = lake_salt(storage, tables, create=True)
    save_forgotten(storage, tables, Forgotten.of(SALT, ["u1"]).hashes, SALT, "forget_users-1", "2026-01-01T00:00:00Z")

    assert salt != SALT
    with pytest.raises(ErasureError, match=r"forget_users-1.jsonl, line 1: made with another salt"):
        load_forgotten(storage, tables)
    assert store_uri(tables) == f"{tables}/_lakelib/forget"


# --- who is forgotten, which events go --------------------------------------------------------------------------

EVENTS = [  # messageid, type, userid, anonymousid, previousid
    ("m1", "track", "U", "A1", None),       # U's device A1
    ("m2", "page", None, "A1", None),       # A1 before U logged in
    ("m3", "track", "V", "A1", None),       # V on U's device (shared): stays
    ("m4", "alias", "U", "A1", "P"),        # U was P before
    ("m5", "identify", "P", "A3", None),    # P's device A3 (found in round 2)
    ("m6", "track", None, "A3", None),
    ("m7", "track", None, "X", None),       # X given as an anonymousId...
    ("m8", "track", "X", "A4", None),       # ...shows up as a userId: its device A4 is linked
    ("m9", "alias", "W", None, "A4"),       # another user aliasing a forgotten id: goes (the alias), W stays
    ("m10", "track", "W", "A9", None),
    ("m11", "track", "V", None, None),
    ("m12", "track", None, None, None),
    ("m13", None, None, None, "A1"),        # no type: not an alias
]
GOES = {"m1", "m2", "m4", "m5", "m6", "m7", "m8", "m9"}


def _forgotten_given() -> Forgotten:
    return Forgotten.of(SALT, ["U", "X"])


def test_linked_ids_follow_devices_and_aliases_to_a_fixed_point(spark):
    events = spark.createDataFrame(EVENTS, EVENT_SCHEMA)

    for isin_limit in (10_000, 0):  # a hash set in the plan, or broadcast joins
        linked = linked_ids(events, _forgotten_given(), isin_limit=isin_limit)
        assert linked == Forgotten.of(SALT, ["U", "X", "A1", "P", "A3", "A4"])


def test_linking_that_does_not_settle_is_an_error(spark):
    events = spark.createDataFrame(EVENTS, EVENT_SCHEMA)

    with pytest.raises(ErasureError, match="still grow after 1 rounds"):
        linked_ids(events, _forgotten_given(), max_rounds=1)


def test_an_event_goes_by_the_rule_and_a_shared_device_stays(spark):
    events = spark.createDataFrame(EVENTS, EVENT_SCHEMA)
    forgotten = linked_ids(events, _forgotten_given())
    expected = spark.createDataFrame([e for e in EVENTS if e[0] in GOES], EVENT_SCHEMA)
    kept = spark.createDataFrame([e for e in EVENTS if e[0] not in GOES], EVENT_SCHEMA)

    for isin_limit in (10_000, 0):
        marked = mark_goes(events, forgotten, "suppressed", isin_limit=isin_limit)
        assert {r.messageid for r in marked.where("suppressed").collect()} == GOES
        assert marked.columns == events.columns + ["suppressed"]
    assert_df_equality(events_to_remove(events, forgotten), expected, ignore_row_order=True)
    assert_df_equality(suppress(events, forgotten), kept, ignore_row_order=True)
    assert suppress(events, None) is events
    assert mark_goes(events, None).where("goes").count() == 0


def test_the_rule_on_typed_tables_without_type_only_aliases_have_previousid(spark):
    forgotten = linked_ids(spark.createDataFrame(EVENTS, EVENT_SCHEMA), _forgotten_given())
    rows = [(m, u, a, p) for m, t, u, a, p in EVENTS if t in ("alias", "track")]
    aliases = spark.createDataFrame([r for r in rows if r[3] is not None], "messageid string, userid string, "
                                    "anonymousid string, previousid string")
    tracks = spark.createDataFrame([r[:3] for r in rows if r[3] is None], "messageid string, userid string, "
                                   "anonymousid string")

    for isin_limit in (10_000, 0):
        for table in (aliases, tracks):
            marked = mark_goes(table, forgotten, isin_limit=isin_limit).collect()
            assert {r.messageid for r in marked if r.goes} == {r.messageid for r in marked} & GOES
    assert {r.messageid for r in aliases.collect()} == {"m4", "m9"}


def test_the_rule_reads_parsed_events_ids_in_either_field_and_numeric_ids(spark):
    lines = [
        {"userId": 42, "anonymousId": "z"},                   # numeric userId, as its digits
        {"anonymousId": "42"},                                 # the same id as an anonymousId, no userId
        {"userId": "keep", "anonymousId": "42"},               # another user on that device
        {"type": "alias", "userId": "keep", "previousId": 42},
    ]
    rows = [(json.dumps({"messageId": f"m{i}", "type": "track", "timestamp": "2026-01-01T00:00:00Z", **line}),
             "f", "s", "2026-01-01", i) for i, line in enumerate(lines)]
    events = parse_events(spark.createDataFrame(rows, "value string, file string, sourceid string, dt string, pos long"))

    marked = mark_goes(events, Forgotten.of(SALT, parse_ids('{"userId": 42}', "ids").ids))

    assert sorted((r.messageid, r.goes) for r in marked.collect()) == [
        ("m0", True), ("m1", True), ("m2", False), ("m3", True)]


# --- quarantined and raw lines -----------------------------------------------------------------------------------

QUARANTINE = [  # raw line, holds a forgotten id ("bob", "a/b", "é", "123") as a JSON string
    ('{"userId":"bob","timestamp":"nope"}', True),
    ('{"userId":"b\\u006fb"}', True),                  # \uXXXX escapes
    ('{"userId":"a\\/b"}', True),                      # an escaped solidus
    ('{"traits":{"name":"\\u00e9"}}', True),           # any field, any depth
    ('{"a":"x, "userId":"bob"', True),                 # broken JSON: every pair of quotes is tried
    ('not json at all "bob" ...', True),
    ('{"x":"bobby","y":"Bob"}', False),                # whole strings only, case matters
    ('{"userId": bob}', False),                        # not a JSON string
    ('{"userId": 123}', False),                        # a number is not a JSON string
    ('{"x":"q\\"bob\\""}', False),                     # bob inside another string
    ('{"x":"q\\"bob"}', False),
    ('{"x":"q\\\\","y":"bob"}', True),                 # an escaped backslash ends a string
    ('{"x":"\\ud800"}', False),
    ('', False),
]


def test_quarantine_lines_that_hold_an_id_as_a_json_string(spark):
    forgotten = Forgotten.of(SALT, ["bob", "a/b", "é", "123"])
    df = spark.createDataFrame([(line,) for line, _ in QUARANTINE], "raw string")

    got = [r.hit for r in df.select(holds_id_string(F.col("raw"), forgotten).alias("hit")).collect()]

    assert got == [hit for _, hit in QUARANTINE]
    assert [any(forgotten.holds(s) for s in json_strings_in(line)) for line, _ in QUARANTINE] == got
    assert df.select(holds_id_string(F.col("raw"), Forgotten(SALT)).alias("h")).where("h").count() == 0


def _event(message_id: str, **fields) -> bytes:
    return json.dumps({"messageId": message_id, "type": "track", "timestamp": "2026-01-01T00:00:00Z",
                       **fields}).encode()


RAW = [  # line, its end, goes
    (_event("m1", userId="U", anonymousId="A1"), b"\n", True),
    (_event("m2", userId="V", anonymousId="A1"), b"\r\n", False),          # shared device
    (_event("m3", anonymousId="A1"), b"\n", True),
    (_event("m4", type="alias", userId="W", previousId="A1"), b"\r", True),
    (b'{"userId":"U", "broken', b"\n", True),                                # invalid JSON holding an id
    (b'{"note":"caf\xe9 \xff"}', b"\n", False),                              # invalid UTF-8, no id: byte for byte
    (b'{"userId":"U" \xff}', b"\n", True),                                   # invalid UTF-8 holding an id
    (b"", b"\n", False),                                                     # blank line kept
    (b"   ", b"\r\n", False),
    (b'["U"]', b"\n", True),                                                  # not an object, holds the id
    (_event("m5", userId="keep", context={"ip": "U"}), b"\n", False),         # a valid event of someone else
    (_event("m6", userId="V"), b"", False),                                   # last line, no end
]


def test_line_goes_is_the_rule_of_the_events_and_the_quarantine():
    forgotten = Forgotten.of(SALT, ["U", "A1"])

    assert [line_goes(line, forgotten) for line, _, _ in RAW] == [goes for _, _, goes in RAW]


def test_the_python_rule_agrees_with_the_spark_rule_on_parsed_lines(spark):
    forgotten = Forgotten.of(SALT, ["U", "A1"])
    valid = [(line.decode(), "f", "s", "2026-01-01", i)
             for i, (line, _, _) in enumerate(RAW) if line.startswith(b'{"messageId')]
    events = parse_events(spark.createDataFrame(valid, "value string, file string, sourceid string, dt string, pos long"))

    spark_says = {r.pos: r.goes for r in mark_goes(events, forgotten).select("pos", "goes").collect()}

    assert spark_says == {pos: line_goes(RAW[pos][0], forgotten) for pos in spark_says}


def test_drop_lines_keeps_every_other_byte():
    content = b"".join(line + end for line, end, _ in RAW)

    kept, removed = drop_lines(content, lambda line: line_goes(line, Forgotten.of(SALT, ["U", "A1"])))

    assert kept == b"".join(line + end for line, end, goes in RAW if not goes)
    assert removed == sum(goes for _, _, goes in RAW)
    assert drop_lines(content, lambda line: False) == (content, 0)
    assert split_lines(kept) == [line for line, _, goes in RAW if not goes]


def test_rewrite_raw_file_swaps_in_a_gzip_file_of_the_kept_lines(spark, tmp_path):
    folder = tmp_path / "raw" / "web" / "1767225600000"
    folder.mkdir(parents=True)
    holds, clean = folder / "a.gz", folder / "b.gz"
    storage = Storage(spark)
    storage.write_bytes(f"file://{holds}", gzip.compress(b"".join(line + end for line, end, _ in RAW)))  # and a .crc
    clean_bytes = gzip.compress(b'{"userId":"V"}\n')
    clean.write_bytes(clean_bytes)
    forgotten = Forgotten.of(SALT, ["U", "A1"])

    assert rewrite_raw_file(storage, f"file:{holds}", forgotten) == 6  # Hadoop's spelling of a listed file
    assert rewrite_raw_file(storage, f"file://{clean}", forgotten) == 0

    assert gunzip(holds.read_bytes()) == b"".join(line + end for line, end, goes in RAW if not goes)
    assert clean.read_bytes() == clean_bytes
    assert sorted(p.name for p in folder.iterdir()) == ["a.gz", "b.gz"]  # no temporary file, no stale .crc
    assert storage.read_bytes(f"file://{holds}") == holds.read_bytes()  # Hadoop reads it (no checksum mismatch)


def test_a_corrupt_raw_file_is_refused_and_left_alone(spark, tmp_path):
    path = tmp_path / "c.gz"
    truncated = gzip.compress(b'{"userId":"U"}\n' * 100)[:-9]
    path.write_bytes(truncated)

    with pytest.raises(InputError, match=r"c.gz: truncated; not rewritten"):
        rewrite_raw_file(Storage(spark), f"file://{path}", Forgotten.of(SALT, ["U"]))
    assert path.read_bytes() == truncated


# --- noncurrent S3 versions --------------------------------------------------------------------------------------

@pytest.fixture
def versioned(aws):
    """A versioned bucket: an overwritten object, a deleted one, an untouched one, and an old version elsewhere."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=aws)
    s3.create_bucket(Bucket="lake")
    s3.put_bucket_versioning(Bucket="lake", VersioningConfiguration={"Status": "Enabled"})
    for key, bodies in {"tables/events/dt=1/a.parquet": [b"old", b"new"], "tables/events/dt=1/b.parquet": [b"gone"],
                        "tables/events/dt=1/c.parquet": [b"same"], "tables/events/dt=10/d.parquet": [b"1", b"2"]}.items():
        for body in bodies:
            s3.put_object(Bucket="lake", Key=key, Body=body)
    s3.delete_object(Bucket="lake", Key="tables/events/dt=1/b.parquet")
    return s3


def _versions(s3, prefix: str) -> list[tuple[str, bool, bool]]:
    """``(key, is latest, is a delete marker)`` of every version under ``prefix``."""
    page = s3.list_object_versions(Bucket="lake", Prefix=prefix)
    return sorted([(v["Key"].rsplit("/", 1)[1], v["IsLatest"], False) for v in page.get("Versions", [])]
                  + [(v["Key"].rsplit("/", 1)[1], v["IsLatest"], True) for v in page.get("DeleteMarkers", [])])


def test_noncurrent_versions_under_a_folder_are_deleted_and_nothing_else(versioned):
    result = delete_noncurrent_versions(versioned, "s3://lake/tables/events/dt=1")

    assert (result.deleted, result.remaining, result.complete) == (2, [], True)
    assert _versions(versioned, "tables/events/dt=1/") == [
        ("a.parquet", True, False), ("b.parquet", True, True), ("c.parquet", True, False)]
    assert _versions(versioned, "tables/events/dt=10/") == [("d.parquet", False, False), ("d.parquet", True, False)]
    assert versioned.get_object(Bucket="lake", Key="tables/events/dt=1/a.parquet")["Body"].read() == b"new"
    assert delete_noncurrent_versions(versioned, "s3://lake/tables/events/dt=1").deleted == 0


def test_only_the_named_objects_versions_when_asked(versioned):
    result = delete_noncurrent_versions(versioned, "s3a://lake/tables/events/dt=1",
                                        objects=["s3://lake/tables/events/dt=1/b.parquet"])

    assert result.deleted == 1
    assert ("a.parquet", False, False) in _versions(versioned, "tables/events/dt=1/")


def _refuse(client, operation: str, body: bytes, status: int) -> None:
    """S3 answers ``operation`` with ``body`` (injected at the HTTP layer: boto3 parses a real response)."""
    from botocore.awsrequest import AWSResponse

    class Raw:
        def stream(self, **kwargs):
            yield body

    client.meta.events.register(f"before-send.s3.{operation}",
                                lambda request, **kwargs: AWSResponse(request.url, status, {}, Raw()))


def test_a_refused_delete_says_plainly_what_remains(versioned):
    listed = versioned.list_object_versions(Bucket="lake", Prefix="tables/events/dt=1/")
    old = next(v for v in listed["Versions"] if not v["IsLatest"])
    body = (b'<?xml version="1.0" encoding="UTF-8"?><DeleteResult><Error><Key>' + old["Key"].encode()
            + b"</Key><VersionId>" + old["VersionId"].encode()
            + b"</VersionId><Code>AccessDenied</Code><Message>Access Denied</Message></Error></DeleteResult>")
    _refuse(versioned, "DeleteObjects", body, 200)

    result = delete_noncurrent_versions(versioned, "s3://lake/tables/events/dt=1", objects=[f"s3://lake/{old['Key']}"])

    assert (result.deleted, result.complete) == (0, False)
    assert result.remaining == [f"s3://lake/{old['Key']}?versionId={old['VersionId']}"]
    assert "1 noncurrent version(s) still hold erased bytes (AccessDenied: Access Denied)" in result.summary()


def test_a_refused_listing_is_reported_not_raised(versioned):
    _refuse(versioned, "ListObjectVersions", b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied'
            b"</Code><Message>Access Denied</Message></Error>", 403)

    result = delete_noncurrent_versions(versioned, "s3://lake/tables/events/dt=1")

    assert (result.deleted, result.complete) == (0, False)
    assert result.error == "cannot list object versions: AccessDenied: Access Denied"
    assert "its noncurrent versions still hold erased bytes" in result.summary()
