"""The raw side of the lake: which Segment day folders exist for which sources and days.

Segment's S3 destination writes ``<lake.raw>/<sourceId>/<received-day-epoch-ms>/<file>.gz``. :func:`find_raw_days`
lists what is there (through Hadoop's FileSystem, so ``s3://``, ``s3a://`` and ``file://`` alike) and which requested
days have no folder. A :class:`RawDay` is the one source of a partition's keys: the rows, the counts, the
verification, the catalog and the stale-partition removal all take ``(sourceid, dt)`` from it. Every numeric folder
of a source that names the day (``1795478400000``, ``1795478400001``, ``01795478400000``) belongs to it:

>>> from lakelib.storage import Storage                                      # doctest: +SKIP
>>> days, missing = find_raw_days(Storage(spark), config.lake.raw, ["web"], None)   # doctest: +SKIP
"""
from __future__ import annotations

import logging
import re
import zlib
from dataclasses import dataclass, field
from datetime import date
from functools import reduce
from typing import TYPE_CHECKING, Mapping, Sequence

from lakelib.errors import InputError
from lakelib.paths import SOURCE_ID, is_source_id, join, select_days
from lakelib.storage import FileInfo, Storage

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

#: What ends a line in a raw file, as for Hadoop's line reader (and so ``spark.read.text``): LF, CRLF or CR.
_LINE_END = re.compile(rb"\r\n|\r|\n")
#: The same, captured: :func:`lines_with_ends` keeps each line's end.
_LINE_ENDING = re.compile(b"(" + _LINE_END.pattern + b")")
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class RawDay:
    """One source's raw folder for one received day, and the files in it."""

    source: str
    day: date
    uri: str
    files: list[FileInfo] = field(default_factory=list)

    @property
    def folders(self) -> list[str]:
        """The day folders the files come from (more than one when two folder names map to the same day)."""
        return sorted({f.path.rstrip("/").rsplit("/", 1)[0] for f in self.files}) or [self.uri]

    @property
    def bytes(self) -> int:
        """Compressed input size."""
        return sum(f.size for f in self.files)

    @property
    def key(self) -> tuple[str, str]:
        """``(sourceid, dt)`` of the partition it becomes."""
        return self.source, self.day.isoformat()


def find_raw_days(
    storage: Storage, raw: str, sources: Sequence[str], days: Sequence[date] | None
) -> tuple[list[RawDay], list[tuple[str, date]]]:
    """The raw day folders to read, and the requested ``(source, day)`` pairs that have none.

    Parameters
    ----------
    storage
        File-system access.
    raw
        ``lake.raw``.
    sources
        Source ids; empty means every folder under ``raw``.
    days
        Days to read; ``None`` means every day folder found.

    Raises
    ------
    InputError
        A folder under ``raw`` that is not hidden (``_x``, ``.x``) and cannot be a source id, naming it.
    """
    if not sources:
        sources = list_sources(storage, raw)
    found: list[RawDay] = []
    skipped: list[tuple[str, date]] = []
    for source in sources:
        source_uri = join(raw, source)
        if days is None:  # every day: one recursive listing of the source
            by_folder = _files_by_day_folder(storage.walk_files(source_uri), source)
        else:  # the requested days: one listing of the source's day folders, then one per matching folder
            names = [f.name for f in storage.list(source_uri) if f.is_dir]
            by_folder = {}
            for _day, name in select_days(names, days):
                files = [f for f in storage.data_files(join(source_uri, name)) if f.size > 0]
                if files:
                    by_folder[name] = files
        grouped: dict[date, list[str]] = {}
        for day, name in select_days(by_folder, days):
            grouped.setdefault(day, []).append(name)
        for day, names in sorted(grouped.items()):
            if len(names) > 1:
                log.info("source %s, %s: %d folders name the day, all read: %s", source, day, len(names),
                         ", ".join(names))
            files = sorted((f for name in names for f in by_folder[name]), key=lambda f: f.path)
            found.append(RawDay(source, day, join(source_uri, names[0]), files))
        if days is not None:
            skipped += [(source, d) for d in days if d not in grouped]
    return found, skipped


def list_sources(storage: Storage, raw: str) -> list[str]:
    """The source folders under ``raw`` (hidden ``_x`` and ``.x`` folders aside, logged).

    Raises
    ------
    InputError
        A folder that cannot be a source id (:data:`lakelib.paths.SOURCE_ID`), naming every such folder.
    """
    names = [f.name for f in storage.list(raw) if f.is_dir]
    hidden = [n for n in names if n.startswith(("_", "."))]
    if hidden:
        log.info("hidden folders under %s not read: %s", raw, ", ".join(hidden))
    bad = [n for n in names if n not in hidden and not is_source_id(n)]
    if bad:
        raise InputError(
            f"folder(s) under {raw} that cannot be a source id: {', '.join(repr(n) for n in bad)}; a source id is "
            f"letters, digits, '_', '-', '.' and inner spaces ({SOURCE_ID.pattern}): rename or move them, "
            "nothing was written"
        )
    return [n for n in names if n not in hidden]


def gunzip(data: bytes) -> bytes:
    """The content of a gzip file (every member of it), or an error that says what is wrong with it.

    Stricter than Python's :mod:`gzip`: anything after the last member, zero padding included, is an error, as it
    is for Hadoop's reader.

    Raises
    ------
    ValueError
        ``truncated``, ``not a gzip file`` or ``trailing data after the gzip stream``.
    """
    out = []
    rest = data
    while True:
        if rest[:2] != _GZIP_MAGIC:
            raise ValueError("not a gzip file" if not out else "trailing data after the gzip stream")
        inflater = zlib.decompressobj(wbits=31)
        try:
            out.append(inflater.decompress(rest))
        except zlib.error as exc:
            raise ValueError(f"corrupt ({exc})") from None
        if not inflater.eof:
            raise ValueError("truncated")
        rest = inflater.unused_data
        if not rest:
            return b"".join(out)


def split_lines(data: bytes) -> list[bytes]:
    """The lines of a file's content as Hadoop's line reader splits them (LF, CRLF or CR; no final empty line)."""
    lines = _LINE_END.split(data)
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def lines_with_ends(data: bytes) -> list[tuple[bytes, bytes]]:
    """Each line of a file's content with the bytes that end it, split as :func:`split_lines` splits (the last
    line's end may be ``b""``), so that ``b"".join(line + end ...)`` is ``data`` again.

    >>> lines_with_ends(b"a\\r\\nb\\rc")
    [(b'a', b'\\r\\n'), (b'b', b'\\r'), (b'c', b'')]
    """
    pieces = _LINE_ENDING.split(data)
    pairs = list(zip(pieces[0::2], pieces[1::2] + [b""]))
    if pairs and pairs[-1] == (b"", b""):
        pairs.pop()
    return pairs


def _files_by_day_folder(files: Sequence[FileInfo], source: str) -> dict[str, list[FileInfo]]:
    """Group a source's recursive listing by day folder: only ``<source>/<day>/<file>``, no hidden or empty files."""
    by_folder: dict[str, list[FileInfo]] = {}
    for info in files:
        parts = info.path.rstrip("/").split("/")
        if info.name.startswith(("_", ".")) or info.size == 0 or len(parts) < 3 or parts[-3] != source:
            continue
        by_folder.setdefault(parts[-2], []).append(info)
    return by_folder


# --- reading raw lines with Spark ---------------------------------------------------------------------------

#: What :func:`_read_gzip_by_content` says about a file that is not a complete gzip stream.
NOT_GZIP_SIGN = "lakelib: not a complete gzip stream:"


def read_raw_lines(
    spark: SparkSession, raw_days: Sequence[RawDay], plan: Mapping[tuple[str, str], int] | None = None
) -> DataFrame:
    """The raw lines of the given day folders' files: ``value``, ``file``, ``file_idx``, ``sourceid``, ``dt``,
    ``pos``.

    Exactly the files the listing found are read, and each line gets ``sourceid``/``dt`` from its file's
    :class:`RawDay` (never from a path Spark reports, never through the session's time zone). ``value`` holds the
    line's bytes as they are (invalid UTF-8 included; ``lakelib.parse`` rejects it). Files whose name ends in ``.gz``
    in another case (``.GZ``) are decompressed here, by content. ``file_idx`` sorts like ``file`` within a day.
    ``pos`` identifies the line in the run and grows with its position in its file; two reads of the same
    DataFrame give every line the same ``pos``.

    Each day is its own scan, so that a task holds one day; with ``plan`` (files per ``(sourceid, dt)``) a day's
    files are packed into that many tasks (never fewer than one file per task: a gzip file is not split).
    """
    from pyspark.sql import functions as F

    storage = Storage(spark)
    listed = [(d, f) for d in raw_days for f in d.files]
    keys = spark.createDataFrame(
        [(storage.spark_uri(f.path), f.path, i, d.source, d.day.isoformat()) for i, (d, f) in enumerate(listed)],
        "_uri string, file string, file_idx int, sourceid string, dt string",
    )
    parts = []
    for day in raw_days:
        plain = [f.path for f in day.files if not _gzip_in_other_case(f.name)]
        if plain:
            scan = spark.read.text(plain).select("value", F.col("_metadata.file_path").alias("_uri"))
            if plan:
                scan = scan.coalesce(max(1, plan.get(day.key, 1)))
            parts.append(scan)
    other_case = [f.path for d in raw_days for f in d.files if _gzip_in_other_case(f.name)]
    if other_case:
        parts.append(_read_gzip_by_content(spark, other_case))
    lines = reduce(lambda a, b: a.unionByName(b), parts).withColumn("pos", F.monotonically_increasing_id())
    joined = lines.join(F.broadcast(keys), "_uri", "left")
    unlisted = F.raise_error(F.concat(F.lit("lakelib: a line from a file the listing does not hold: "), F.col("_uri")))
    return joined.select(
        "value",
        F.when(F.col("file").isNull(), unlisted).otherwise(F.col("file")).alias("file"),
        "file_idx",
        "sourceid",
        "dt",
        "pos",
    )


def _gzip_in_other_case(name: str) -> bool:
    """A gzip suffix Hadoop's codec lookup (case-sensitive ``.gz``) would miss."""
    return name.lower().endswith(".gz") and not name.endswith(".gz")


def _read_gzip_by_content(spark: SparkSession, paths: Sequence[str]) -> DataFrame:
    """Lines of gzip files Spark would read as plain text, in order: ``value``, ``_uri``. A bad file fails the read."""
    from pyspark.sql import functions as F

    @F.udf(returnType="array<binary>")
    def lines_of(content, uri):  # no type hints: Spark 4 would take them for a pandas UDF's
        try:
            return split_lines(gunzip(bytes(content)))
        except ValueError as exc:
            raise ValueError(f"{NOT_GZIP_SIGN} {uri}: {exc}") from None

    files = spark.read.format("binaryFile").load(list(paths)).select(
        "content", F.col("_metadata.file_path").alias("_uri")
    )
    exploded = files.select("_uri", F.explode(lines_of("content", "_uri")).alias("line"))
    return exploded.select(F.col("line").cast("string").alias("value"), "_uri")


def find_corrupt_gzip(spark: SparkSession, paths: Sequence[str]) -> list[tuple[str, str]]:
    """Which of ``paths`` (``.gz`` in any case) are not complete gzip streams: ``(path, reason)``.

    Decompresses each file once, as strictly as Hadoop's reader (:func:`lakelib.raw.gunzip`).
    """
    from pyspark.sql import functions as F

    gz = [p for p in paths if p.lower().endswith(".gz")]
    if not gz:
        return []
    storage = Storage(spark)
    path_of = {storage.spark_uri(p): p for p in gz}

    @F.udf(returnType="string")
    def problem(content):  # no type hints: Spark 4 would take them for a pandas UDF's
        try:
            gunzip(bytes(content))
        except ValueError as exc:
            return str(exc)
        return None

    files = spark.read.format("binaryFile").load(gz).select(
        F.col("_metadata.file_path").alias("uri"), problem("content").alias("why")
    )
    return sorted((path_of.get(r["uri"], r["uri"]), r["why"]) for r in files.where("why is not null").collect())
