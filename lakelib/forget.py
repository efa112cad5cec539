"""Erasure's building blocks: the ids file, the salted hashes the lake keeps, who is forgotten, which events,
quarantined lines and raw lines go, and the S3 object versions left behind.

``forget_users`` calls them to erase people; ``json_to_parquet`` and ``event_tables`` call :func:`suppress` so that
the people never come back. An id in clear lives only in the memory of the run that reads the ids file: every Spark
expression here compares salted SHA-256 hashes (:func:`id_hash`), so no id reaches a Spark plan, an event log or
the lake. One set of hashes holds userIds and anonymousIds alike (a forgotten id counts in whichever field it shows
up). docs/erasure.md says what is matched and where the hashes live.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Iterator, Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakelib.catalog.glue_payloads import chunks
from lakelib.config import read_uri_bytes
from lakelib.emr import split_s3_uri
from lakelib.errors import ErasureError, IdsFileError, InputError, UsageError, aws_error, one_line
from lakelib.parse import JSON_OPTIONS
from lakelib.paths import S3_URI, canonical_location, join
from lakelib.raw import gunzip, lines_with_ends
from lakelib.storage import Storage

log = logging.getLogger(__name__)

#: The fields of a line of the ids file (the shape of Segment's deletion requests).
ID_FIELDS = ("userId", "anonymousId")

#: Where the store of forgotten ids lives, under ``lake.tables``: ``salt`` and ``hashes/<run_id>.jsonl``.
STORE_PATH = "_lakelib/forget"

#: Up to this many hashes, membership is an ``isin`` (a hash set in the plan); above, a broadcast join.
ISIN_LIMIT = 10_000

#: The content of the JSON string that would start at each double quote not after a backslash (Java regex;
#: possessive, so that a long string does not recurse): every pair of neighbouring unescaped quotes is tried, so a
#: broken line is searched too, in linear time.
_STRING_AT_QUOTE = r'(?<!\\)"(?=([^"\\]*+(?:\\.[^"\\]*+)*+)")'
_PY_STRING_AT_QUOTE = re.compile(r'(?<!\\)"(?=([^"\\]*(?:\\.[^"\\]*)*)")')
_SALT = re.compile(r"[0-9a-f]{64}")
_GOES, _USER, _ANON, _PREV = "_forget_goes", "_forget_user", "_forget_anon", "_forget_prev"


# --- the ids file ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ForgetRequest:
    """The ids file of a run: the ids to forget, in clear (only ever in the run's memory), and its URI."""

    uri: str
    user_ids: frozenset[str]
    anonymous_ids: frozenset[str]

    @property
    def ids(self) -> frozenset[str]:
        """Every id of the file, whichever field named it."""
        return self.user_ids | self.anonymous_ids

    def __repr__(self) -> str:  # never the ids themselves
        return f"ForgetRequest({self.uri!r}, {len(self.user_ids)} userId(s), {len(self.anonymous_ids)} anonymousId(s))"


def read_ids(uri: str, s3_client: Any = None) -> ForgetRequest:
    """Read and parse the ids file at ``uri`` (local, ``file://``, ``s3://``), before Spark starts.

    Raises
    ------
    UsageError
        The file cannot be read, or holds no id.
    IdsFileError
        A line is not UTF-8 or not a valid request (:func:`parse_ids`).
    """
    try:
        data = read_uri_bytes(uri, s3_client)
    except OSError as exc:
        raise UsageError(f"--ids {uri}: cannot read it ({one_line(exc)})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise IdsFileError(f"ids file {uri}, line {line}: not UTF-8 text; nothing was read or erased") from None
    return parse_ids(text, uri)


def parse_ids(text: str, uri: str) -> ForgetRequest:
    """The ids of an ids file: JSON lines, each an object with ``userId`` and/or ``anonymousId`` (a string, or an
    integer as its digits, as ``events`` holds it); blank lines skipped. Errors name the line, never its content.

    Raises
    ------
    IdsFileError
        A malformed line: not such an object, or an id blank, not text or not valid Unicode.
    UsageError
        No id at all.
    """
    found: dict[str, set[str]] = {name: set() for name in ID_FIELDS}
    for number, line in enumerate(re.split(r"\r\n|\r|\n", text), 1):
        if line.strip():
            for name, value in _line_ids(line, f"ids file {uri}, line {number}").items():
                found[name].add(value)
    if not any(found.values()):
        raise UsageError(f"ids file {uri}: no id in it (expected JSON lines like {{\"userId\": \"...\"}})")
    return ForgetRequest(uri, frozenset(found["userId"]), frozenset(found["anonymousId"]))


def _line_ids(line: str, where: str) -> dict[str, str]:
    """The ids of one line of the ids file; ``where`` names the line in errors."""
    try:
        message = json.loads(line, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        message = None
    if not isinstance(message, dict):
        raise IdsFileError(f"{where}: not a JSON object; nothing was read or erased")
    ids = {}
    for name in ID_FIELDS:
        if message.get(name) is None:
            continue
        value = id_text(message[name])
        if value is None:
            raise IdsFileError(f"{where}: {name} is not a string or an integer; nothing was read or erased")
        if not value.strip() or not _is_unicode(value):
            raise IdsFileError(f"{where}: {name} is blank or not valid Unicode; nothing was read or erased")
        ids[name] = value
    if not ids:
        raise IdsFileError(f"{where}: neither userId nor anonymousId; nothing was read or erased")
    return ids


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (``"\\ud800"``): no event can hold it
        return False
    return True


def id_text(value: object) -> str | None:
    """An id's text as the events columns hold it: a string as it is, an integer as its digits, else ``None``.

    >>> id_text("u1"), id_text(42), id_text(1.5), id_text(True)
    ('u1', '42', None, None)
    """
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


# --- salted hashes and their store -------------------------------------------------------------------------------

def new_salt() -> str:
    """A lake's salt: 32 random bytes as 64 hex digits."""
    return secrets.token_hex(32)


def hash_id(salt: str, value: str) -> str:
    """The salted SHA-256 of an id, hex: ``sha256(utf8(salt + value))``, the same as :func:`id_hash`."""
    return hashlib.sha256((salt + value).encode("utf-8")).hexdigest()


def id_hash(salt: str, column: Column | str) -> Column:
    """:func:`hash_id` of a string column (``null`` for ``null``)."""
    value = F.col(column) if isinstance(column, str) else column
    return F.sha2(F.concat(F.lit(salt), value), 256)


@dataclass(frozen=True)
class Forgotten:
    """Forgotten ids as salted hashes, and the salt that made them."""

    salt: str
    hashes: frozenset[str] = frozenset()

    @classmethod
    def of(cls, salt: str, ids: Iterable[str]) -> Forgotten:
        """The hashes of ``ids``."""
        return cls(salt, frozenset(hash_id(salt, i) for i in ids))

    def holds(self, value: str | None) -> bool:
        """Whether the id ``value`` is forgotten."""
        if value is None or not _is_unicode(value):
            return False
        return hash_id(self.salt, value) in self.hashes

    def __repr__(self) -> str:
        return f"Forgotten({len(self.hashes)} hash(es))"


def store_uri(tables_root: str) -> str:
    """The folder of the store of forgotten ids.

    >>> store_uri("s3://b/tables")
    's3://b/tables/_lakelib/forget'
    """
    return join(tables_root, STORE_PATH)


def salt_id(salt: str) -> str:
    """A fingerprint of a salt (not the salt), recorded beside every hash it made."""
    return hashlib.sha256(salt.encode("ascii")).hexdigest()[:16]


def lake_salt(storage: Storage, tables_root: str, create: bool = False) -> str | None:
    """The lake's salt; with ``create``, made by the first run that needs it. ``None``: no salt and not ``create``.

    Raises
    ------
    ErasureError
        The salt file holds something else than a salt.
    """
    uri = join(store_uri(tables_root), "salt")
    if not storage.exists(uri):
        if not create:
            return None
        write_whole(storage, uri, new_salt().encode("ascii"))
        log.info("made the lake's erasure salt at %s", uri)
    salt = storage.read_text(uri).strip()
    if not _SALT.fullmatch(salt):
        raise ErasureError(f"{uri}: not a lakelib salt (64 hex digits); restore it from a backup, never edit it")
    return salt


def load_forgotten(storage: Storage, tables_root: str) -> Forgotten | None:
    """Every hash the lake's store holds, or ``None`` when no one was ever forgotten.

    Raises
    ------
    ErasureError
        A hash file made with another salt, or a line that is not a hash record (named by file and line).
    """
    salt = lake_salt(storage, tables_root)
    files = [f for f in storage.data_files(join(store_uri(tables_root), "hashes")) if f.name.endswith(".jsonl")]
    if salt is None:
        if files:
            raise ErasureError(f"{store_uri(tables_root)}: hashes of forgotten ids but no salt; restore the salt")
        return None
    hashes: set[str] = set()
    for info in files:
        for number, line in enumerate(storage.read_text(info.path).splitlines(), 1):
            if line.strip():
                hashes.add(_hash_record(line, salt, f"{info.path}, line {number}"))
    return Forgotten(salt, frozenset(hashes))


def _hash_record(line: str, salt: str, where: str) -> str:
    """The hash of one store line, checked."""
    try:
        record = json.loads(line)
        value, made_by = record["hash"], record["salt_id"]
    except (ValueError, TypeError, KeyError):
        raise ErasureError(f"{where}: not a hash record of the erasure store") from None
    if made_by != salt_id(salt):
        raise ErasureError(f"{where}: made with another salt than the lake's (two first erasures at once?), so "
                           "suppression would miss it: rerun forget_users with that run's ids file, then delete the file")
    return str(value)


def save_forgotten(storage: Storage, tables_root: str, hashes: Collection[str], salt: str, run_id: str,
                   added_at: str) -> str | None:
    """Add ``hashes`` to the store as ``hashes/<run_id>.jsonl`` (one file per run: no run overwrites another).

    Returns
    -------
    str or None
        The file written; ``None`` when ``hashes`` is empty.
    """
    if not hashes:
        return None
    made_by = salt_id(salt)
    lines = [json.dumps({"hash": h, "salt_id": made_by, "run_id": run_id, "added_at": added_at}) for h in sorted(hashes)]
    uri = join(store_uri(tables_root), "hashes", f"{run_id}.jsonl")
    write_whole(storage, uri, ("\n".join(lines) + "\n").encode("utf-8"))
    log.info("stored %d hash(es) of forgotten ids in %s", len(hashes), uri)
    return uri


def write_whole(storage: Storage, uri: str, data: bytes) -> None:
    """Write a file so that readers see the old content or the new one, never a missing or partial file.

    S3: one PUT (the object appears whole when the upload completes). A local file: a hidden file beside it, then
    ``os.replace`` over it (Hadoop's local file system would leave a ``.crc`` file beside it).
    """
    if S3_URI.match(uri):
        storage.write_bytes(uri, data)
        return
    path = Path(canonical_location(uri)[len("file://"):] if uri.startswith("file:") else uri)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp.write_bytes(data)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    path.with_name(f".{path.name}.crc").unlink(missing_ok=True)  # Hadoop's checksum of the old content


# --- who is forgotten, and which events go -------------------------------------------------------------------------

def id_links(events: DataFrame, salt: str) -> DataFrame:
    """``user_hash, linked_hash``: the ids each event ties to its userId (its anonymousId; an alias's previousId).

    Parameters
    ----------
    events
        ``type, userid, anonymousid, previousid``.
    """
    alias_previous = F.when(F.col("type") == "alias", id_hash(salt, "previousid"))
    linked = F.array(id_hash(salt, "anonymousid"), alias_previous)
    return (
        events.where(F.col("userid").isNotNull())
        .select(id_hash(salt, "userid").alias("user_hash"), F.explode(linked).alias("linked_hash"))
        .where(F.col("linked_hash").isNotNull())
    )


def linked_ids(events: DataFrame, forgotten: Forgotten, max_rounds: int = 20,
               isin_limit: int = ISIN_LIMIT) -> Forgotten:
    """``forgotten`` and every id the events tie to a forgotten userId, repeated until no new id appears.

    Each round looks up only the ids the round before added (one filtered scan of ``events``' id columns; persist
    them when they are costly to read).

    Raises
    ------
    ErasureError
        Still new ids after ``max_rounds`` rounds.
    """
    links = id_links(events, forgotten.salt)
    known, frontier = set(forgotten.hashes), frozenset(forgotten.hashes)
    for round_number in range(1, max_rounds + 1):
        hits = _with_flags(links, frontier, {_USER: F.col("user_hash")}, isin_limit)
        found = {row[0] for row in hits.where(F.col(_USER)).select("linked_hash").distinct().collect()}
        frontier = frozenset(found - known)
        log.info("linking ids, round %d: %d new id(s)", round_number, len(frontier))
        if not frontier:
            return Forgotten(forgotten.salt, frozenset(known))
        known |= frontier
    raise ErasureError(f"linked ids still grow after {max_rounds} rounds; nothing was erased")


def goes_rule(user: Column, anonymous: Column, previous: Column, alias: Column) -> Column:
    """Whether an event goes, from whether its ids are forgotten and it is an alias (booleans): its userId is
    forgotten; or its anonymousId is and its userId is null; or it is an alias whose previousId is."""
    anonymous_counts = F.when(F.col("userid").isNull(), anonymous).otherwise(F.lit(False))  # lazy: no hash when set
    return user | anonymous_counts | F.when(alias, previous).otherwise(F.lit(False))


def is_alias(columns: Collection[str]) -> Column:
    """Whether a row is an alias: its ``type``; in a typed table (no ``type``), whether the table has
    ``previousid`` (only ``aliases`` has it)."""
    if "type" in columns:
        return F.coalesce(F.col("type") == "alias", F.lit(False))
    return F.lit("previousid" in columns)


def goes(forgotten: Forgotten, columns: Collection[str] = ("type", "userid", "anonymousid", "previousid")) -> Column:
    """:func:`goes_rule` as one column over a table with ``columns`` (``isin`` of hashes: for small sets)."""
    hashes = sorted(forgotten.hashes)

    def member(column: str) -> Column:
        if not hashes or column not in columns:
            return F.lit(False)
        return F.coalesce(id_hash(forgotten.salt, column).isin(hashes), F.lit(False))

    return goes_rule(member("userid"), member("anonymousid"), member("previousid"), is_alias(columns))


def mark_goes(events: DataFrame, forgotten: Forgotten | None, column: str = "goes",
              isin_limit: int = ISIN_LIMIT) -> DataFrame:
    """``events`` (or a typed table) with a boolean ``column``: the row goes (:func:`goes_rule`). No shuffle: a hash
    set in the plan, or broadcast joins on the hashes when there are more than ``isin_limit``.
    """
    if forgotten is None or not forgotten.hashes:
        return events.withColumn(column, F.lit(False))
    if len(forgotten.hashes) <= isin_limit:
        return events.withColumn(column, goes(forgotten, events.columns))
    ids = {f: c for f, c in ((_USER, "userid"), (_ANON, "anonymousid"), (_PREV, "previousid")) if c in events.columns}
    flagged = _with_flags(events, forgotten.hashes, {f: id_hash(forgotten.salt, c) for f, c in ids.items()}, isin_limit)
    user, anonymous, previous = (F.col(f) if f in ids else F.lit(False) for f in (_USER, _ANON, _PREV))
    return flagged.withColumn(column, goes_rule(user, anonymous, previous, is_alias(events.columns))).drop(*ids)


def events_to_remove(events: DataFrame, forgotten: Forgotten) -> DataFrame:
    """The events that go."""
    return mark_goes(events, forgotten, _GOES).where(F.col(_GOES)).drop(_GOES)


def suppress(events: DataFrame, forgotten: Forgotten | None) -> DataFrame:
    """The events that stay: what later conversions keep (count the others with :func:`mark_goes`)."""
    if forgotten is None or not forgotten.hashes:
        return events
    return mark_goes(events, forgotten, _GOES).where(~F.col(_GOES)).drop(_GOES)


def _with_flags(df: DataFrame, hashes: Collection[str], columns: Mapping[str, Column], isin_limit: int) -> DataFrame:
    """``df`` with one boolean column per entry of ``columns`` (name -> hash column): the hash is in ``hashes``."""
    if len(hashes) <= isin_limit:
        listed = sorted(hashes)
        return df.select("*", *[F.coalesce(c.isin(listed), F.lit(False)).alias(n) for n, c in columns.items()])
    table = df.sparkSession.createDataFrame([(h,) for h in sorted(hashes)], "hash string")
    for name, column in columns.items():
        key = f"{name}_hash"
        df = (df.join(F.broadcast(table.withColumnRenamed("hash", key)), column == F.col(key), "left")
              .withColumn(name, F.col(key).isNotNull()).drop(key))
    return df


# --- quarantined and raw lines -------------------------------------------------------------------------------------

def json_strings(text: Column) -> Column:
    """Every JSON string of a line (decoded: ``\\/`` and ``\\uXXXX`` escapes resolved), as ``array<string>``.

    Each pair of neighbouring unescaped double quotes is tried, so a line that is not valid JSON is searched too;
    a candidate with an invalid escape is skipped. :func:`json_strings_in` is the same search in Python.
    """
    found = F.regexp_extract_all(text, F.lit(_STRING_AT_QUOTE), 1)
    decode = T.ArrayType(T.StringType())
    return F.transform(found, lambda s: F.when(
        s.contains("\\"), F.from_json(F.concat(F.lit('["'), s, F.lit('"]')), decode, JSON_OPTIONS)[0]
    ).otherwise(s))


def holds_id_string(text: Column, forgotten: Forgotten) -> Column:
    """Whether a line holds a forgotten id as a JSON string (for the quarantine's ``raw``; an ``isin`` of hashes)."""
    hashes = sorted(forgotten.hashes)
    if not hashes:
        return F.lit(False)
    return F.coalesce(F.exists(json_strings(text), lambda s: id_hash(forgotten.salt, s).isin(hashes)), F.lit(False))


def json_strings_in(text: str) -> Iterator[str]:
    """:func:`json_strings` in Python."""
    for match in _PY_STRING_AT_QUOTE.finditer(text):
        value = match.group(1)
        if "\\" in value:
            try:
                value = json.loads(f'"{value}"')
            except ValueError:
                continue
        yield value


def line_goes(line: bytes, forgotten: Forgotten) -> bool:
    """Whether a raw line goes: a JSON object whose event goes (:func:`goes_rule`), or any other line (not JSON,
    not an object) that holds a forgotten id as a JSON string.
    """
    message = _json_object(line)
    if message is None:
        return any(forgotten.holds(s) for s in json_strings_in(line.decode("utf-8", "replace")))
    user, anonymous, previous = (forgotten.holds(id_text(message.get(k))) for k in ("userId", "anonymousId", "previousId"))
    user_null = message.get("userId") is None
    return user or (anonymous and user_null) or (message.get("type") == "alias" and previous)


def _json_object(line: bytes) -> dict[str, Any] | None:
    """The line as a JSON object (strict UTF-8 and JSON, as the lake's parse), else ``None``."""
    try:
        message = json.loads(line.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return message if isinstance(message, dict) else None


def drop_lines(data: bytes, goes_: Callable[[bytes], bool]) -> tuple[bytes, int]:
    """``data`` without the lines for which ``goes_`` is true (each with its line end); every other byte kept.

    Returns
    -------
    tuple
        The new content and the number of lines removed.
    """
    kept, removed = [], 0
    for line, end in lines_with_ends(data):
        if goes_(line):
            removed += 1
        else:
            kept.append(line + end)
    return b"".join(kept), removed


def rewrite_raw_file(storage: Storage, uri: str, forgotten: Forgotten) -> int:
    """Rewrite one gzip raw file without the lines that go (:func:`line_goes`), every other line byte for byte,
    swapped in whole (:func:`write_whole`); a file without such a line is left alone. Returns the lines removed.

    Raises
    ------
    InputError
        Not a sound gzip file (left as it is).
    """
    try:
        content = gunzip(storage.read_bytes(uri))
    except ValueError as exc:
        raise InputError(f"{uri}: {exc}; not rewritten") from None
    kept, removed = drop_lines(content, lambda line: line_goes(line, forgotten))
    if removed:
        write_whole(storage, uri, gzip.compress(kept))
        log.info("%s: %d line(s) removed", uri, removed)
    return removed


# --- S3 object versions ----------------------------------------------------------------------------------------

@dataclass
class VersionCleanup:
    """What :func:`delete_noncurrent_versions` did under one prefix."""

    uri: str
    deleted: int = 0
    remaining: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def complete(self) -> bool:
        """Whether no noncurrent version is known to remain."""
        return self.error is None and not self.remaining

    def summary(self) -> str:
        """One plain line for the log and the report."""
        if self.complete:
            return f"{self.uri}: {self.deleted} noncurrent object version(s) deleted"
        left = f"{len(self.remaining)} noncurrent version(s)" if self.remaining else "its noncurrent versions"
        return (f"{self.uri}: {self.deleted} noncurrent version(s) deleted, but {left} still hold erased bytes "
                f"({self.error}); allow s3:ListBucketVersions and s3:DeleteObjectVersion, or expire noncurrent "
                "versions with a lifecycle rule")


def delete_noncurrent_versions(client: Any, uri: str, objects: Collection[str] | None = None) -> VersionCleanup:
    """Delete the noncurrent versions (old versions and old delete markers) of the objects under the folder
    ``uri`` (all, or only ``objects``, given as URIs), for a bucket that keeps versions. Current objects and
    current delete markers stay. A refusal (AccessDenied) is reported, not raised.

    Parameters
    ----------
    client
        A boto3 S3 client.
    """
    bucket, key = split_s3_uri(uri)
    prefix = f"{key}/" if key else ""
    wanted = None if objects is None else {split_s3_uri(o)[1] for o in objects}
    result = VersionCleanup(uri)
    versions: list[dict[str, str]] = []
    try:
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
                if not entry["IsLatest"] and (wanted is None or entry["Key"] in wanted):
                    versions.append({"Key": entry["Key"], "VersionId": entry["VersionId"]})
    except Exception as exc:  # noqa: BLE001 - botocore's errors: reported, the caller decides
        result.error = "cannot list object versions: {}: {}".format(*aws_error(exc))
        return result
    for chunk in chunks(versions, 1000):
        result.deleted += _delete_versions(client, bucket, chunk, result)
    log.info("%s", result.summary())
    return result


def _delete_versions(client: Any, bucket: str, versions: list[dict[str, str]], result: VersionCleanup) -> int:
    """One ``DeleteObjects`` call; the versions it refuses go to ``result.remaining``. Returns how many went."""
    try:
        response = client.delete_objects(Bucket=bucket, Delete={"Objects": versions, "Quiet": True})
    except Exception as exc:  # noqa: BLE001 - reported
        result.error = "{}: {}".format(*aws_error(exc))
        result.remaining += [f"s3://{bucket}/{v['Key']}?versionId={v['VersionId']}" for v in versions]
        return 0
    errors = response.get("Errors", [])
    for error in errors:
        result.remaining.append(f"s3://{bucket}/{error['Key']}?versionId={error.get('VersionId', '')}")
        result.error = result.error or f"{error.get('Code', 'Error')}: {one_line(error.get('Message', ''))}"
    return len(versions) - len(errors)
