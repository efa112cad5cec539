"""Where things live: raw day folders, Hive-style partition folders, date ranges. Pure functions, no I/O.

Segment's S3 destination writes ``<raw>/<sourceId>/<received-day-epoch-ms>/<file>.gz``, the folder name being the
UTC midnight of the day Segment received the events, in milliseconds since the epoch. lakelib's tables use
Hive-style folders: ``<tables>/<table>/sourceid=<id>/dt=<YYYY-MM-DD>/``.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Iterable, Iterator, Mapping

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DAY_MS = 86_400_000


def day_folder(day: date) -> str:
    """The raw folder name of a UTC day: its midnight in epoch milliseconds.

    >>> day_folder(date(2019, 5, 27))
    '1558915200000'
    """
    return str((day - _EPOCH.date()).days * _DAY_MS)


def folder_day(name: str) -> date:
    """The UTC day of a raw folder name (epoch milliseconds); inverse of :func:`day_folder`.

    Raises
    ------
    ValueError
        ``name`` is not a whole number of milliseconds.

    >>> folder_day("1558915200000")
    datetime.date(2019, 5, 27)
    """
    name = name.strip("/")
    if not name.isdigit():
        raise ValueError(f"{name!r} is not an epoch-milliseconds day folder")
    return (_EPOCH + timedelta(milliseconds=int(name))).date()


def parse_date(text: str) -> date:
    """``YYYY-MM-DD`` to a date.

    Raises
    ------
    ValueError
        With a message naming the text.
    """
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except (TypeError, ValueError):
        raise ValueError(f"{text!r} is not a date of the form YYYY-MM-DD") from None


def date_range(start: date, end: date) -> list[date]:
    """Every day from ``start`` to ``end``, both included (empty when ``end`` is before ``start``)."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def window_start(end: date, days: int) -> date:
    """The first day of the ``days``-day window that ends with ``end`` inclusive.

    >>> window_start(date(2020, 12, 30), 365)
    datetime.date(2020, 1, 1)
    """
    return end - timedelta(days=days - 1)


def join(root: str, *parts: str) -> str:
    """Join URI parts with single slashes."""
    out = root.rstrip("/")
    for part in parts:
        out += "/" + part.strip("/")
    return out


def partition_dir(values: Mapping[str, str]) -> str:
    """Hive-style relative folder of a partition, keys in the given order.

    >>> partition_dir({"sourceid": "web", "dt": "2020-01-02"})
    'sourceid=web/dt=2020-01-02'
    """
    return "/".join(f"{key}={escape_value(str(value))}" for key, value in values.items())


def parse_partition_dir(path: str) -> dict[str, str]:
    """The ``key=value`` segments of a path, in order (other segments are ignored).

    >>> parse_partition_dir("s3://b/tables/events/sourceid=web/dt=2020-01-02/part-0.parquet")
    {'sourceid': 'web', 'dt': '2020-01-02'}
    """
    out: dict[str, str] = {}
    for segment in path.split("/"):
        key, sep, value = segment.partition("=")
        if sep and key and "." not in key:
            out[key] = unescape_value(value)
    return out


#: The characters Spark (``ExternalCatalogUtils.escapePathName``, as Hive) writes as ``%XX`` in a partition folder.
_ESCAPED = frozenset([chr(c) for c in range(0x01, 0x20)] + list('"#%\'*/:=?\\\x7f{[]^'))
_ESCAPE_SEQUENCE = re.compile(r"%([0-9A-Fa-f]{2})")

#: A source id: letters or digits of any script first, then letters, digits, ``_``, ``-``, ``.`` or spaces, not
#: ending with a space. Nothing Spark escapes in a folder name, nothing Hadoop reads as a glob, never ``.``/``..``.
SOURCE_ID = re.compile(r"[^\W_](?:[\w .-]*[\w.-])?")
#: :data:`SOURCE_ID` for people, in error messages.
SOURCE_ID_RULE = "letters, digits, '_', '-', '.' and inner spaces, starting with a letter or digit"


def escape_value(value: str) -> str:
    """Escape a partition value exactly as Spark and Hive do (``ExternalCatalogUtils.escapePathName``).

    >>> escape_value("a b/c%d=e")
    'a b%2Fc%25d%3De'
    """
    return "".join(f"%{ord(c):02X}" if c in _ESCAPED else c for c in value)


def unescape_value(value: str) -> str:
    """The inverse of :func:`escape_value` (``ExternalCatalogUtils.unescapePathName``).

    >>> unescape_value("a b%2Fc%25d%3De")
    'a b/c%d=e'
    """
    return _ESCAPE_SEQUENCE.sub(lambda m: chr(int(m.group(1), 16)), value)


def is_source_id(name: str) -> bool:
    """Whether ``name`` can be a source id (:data:`SOURCE_ID`): a plain folder name, the same in every layout.

    >>> is_source_id("web-1"), is_source_id("my source"), is_source_id(".."), is_source_id("pct%41")
    (True, True, False, False)
    """
    return SOURCE_ID.fullmatch(name) is not None


def raw_day_dir(raw: str, source: str, day: date) -> str:
    """``<raw>/<source>/<epoch-ms>`` for one source and received day."""
    return join(raw, source, day_folder(day))


def table_dir(tables: str, table: str) -> str:
    """The root folder of a table."""
    return join(tables, table)


def select_days(folders: Iterable[str], days: Iterable[date] | None) -> Iterator[tuple[date, str]]:
    """Pick the raw day folders to read: ``(day, folder name)`` for each folder that is a day in ``days``.

    ``days=None`` takes every day folder. Folder names that are not epoch milliseconds are passed over.
    """
    wanted = None if days is None else set(days)
    for name in sorted(folders):
        try:
            day = folder_day(name)
        except ValueError:
            continue
        if wanted is None or day in wanted:
            yield day, name


#: An S3 URI (``s3://`` or ``s3a://``) with a valid bucket name: group 1 the scheme, 2 the bucket, 3 the key part.
S3_URI = re.compile(r"^(s3a?)://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(/.*)?$")


def canonical_location(uri: str, s3a_is_s3: bool = True) -> str:
    """A folder URI in one spelling: no trailing slash, ``file:///x`` (also ``file:/x``, ``/x``) as ``file:///x``, and
    with ``s3a_is_s3`` ``s3a://`` as ``s3://`` (both name the same S3 objects).

    >>> canonical_location("file:/tmp/t/dt=1/"), canonical_location("s3a://b/t"), canonical_location("s3a://b/t", False)
    ('file:///tmp/t/dt=1', 's3://b/t', 's3a://b/t')
    """
    uri = uri.rstrip("/") or uri
    if uri.startswith("/"):
        uri = "file://" + uri
    elif uri.startswith("file:") and not uri.startswith("file://"):
        uri = "file://" + uri[len("file:"):]
    if s3a_is_s3 and uri.startswith("s3a://"):
        uri = "s3://" + uri[len("s3a://"):]
    return uri


def same_location(a: str, b: str, s3a_is_s3: bool = True) -> bool:
    """Whether two URIs name the same folder (see :func:`canonical_location`).

    >>> same_location("file:///tmp/t/dt=1/", "file:/tmp/t/dt=1"), same_location("s3a://b/t", "s3://b/t", False)
    (True, False)
    """
    return canonical_location(a, s3a_is_s3) == canonical_location(b, s3a_is_s3)


def is_within(uri: str, root: str) -> bool:
    """Whether ``uri`` is ``root`` or below it (``s3://`` and ``s3a://`` name the same place)."""
    a, b = canonical_location(uri), canonical_location(root)
    return a == b or a.startswith(b + "/")
