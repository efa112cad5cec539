"""Small reads of the lake without Spark: pyarrow reads the partitions, pandas holds the result.

:mod:`lakelib.lake` uses this engine when it is given no SparkSession. It finds partitions as the catalog says:

- ``catalog.kind: glue``: ``GetPartitions`` through boto3, then exactly those locations (after a rewrite a
  partition lives in a version folder the catalog points at; default folders may be stale or empty);
- ``catalog.kind: none``: the default folders ``<root>/<key>=<value>/...``, listed one level at a time;
- ``catalog.kind: spark``: the locations are in Spark's metastore, which only Spark can ask: :class:`NeedsSpark`
  is raised and the caller starts Spark (or says it cannot).

S3 is reached through pyarrow's ``S3FileSystem`` with the usual AWS credential chain; ``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL`` overrides the endpoint (moto, MinIO). pandas and pyarrow come with ``lakelib[notebook]``.
"""
from __future__ import annotations

import gzip
import io
import json
import logging
import os
from typing import TYPE_CHECKING, Any, Callable, Collection, List, Mapping, Sequence
from urllib.parse import urlsplit

from lakelib.catalog.base import Partition
from lakelib.errors import LakelibError, MissingExtraError
from lakelib.paths import partition_dir, unescape_value
from lakelib.schema import type_key
from lakelib.storage import FileInfo, Storage

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa
    from pyarrow.fs import FileSystem

    from lakelib.config import Config
    from lakelib.schema import Table

log = logging.getLogger(__name__)

Keep = Callable[[Mapping[str, str]], bool]


class NeedsSpark(LakelibError):
    """The partitions' locations are in Spark's metastore (``catalog.kind: spark``): only Spark can read them."""


def require_pandas() -> None:
    """Raise :class:`MissingExtraError` (naming the extra) when pandas or pyarrow is missing."""
    try:
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(f"reading the lake without Spark needs {exc.name}: "
                                "pip install 'lakelib[notebook]'") from None


def filesystem(uri: str) -> tuple[FileSystem, str]:
    """pyarrow's file system for a lake URI and the path on it (``bucket/key`` on S3).

    >>> filesystem("file:///tmp/lake")[1]
    '/tmp/lake'
    """
    from pyarrow import fs

    scheme, sep, rest = uri.partition("://")
    if sep and scheme.lower() in ("s3", "s3a"):
        return s3_filesystem(), rest.rstrip("/")
    if sep and scheme.lower() == "file":
        return fs.LocalFileSystem(), rest
    return fs.LocalFileSystem(), os.path.abspath(uri)


def s3_filesystem() -> FileSystem:
    """pyarrow's S3 file system: the AWS credential chain, the region boto3 would use, the endpoint override."""
    import boto3
    from pyarrow import fs

    kwargs: dict[str, Any] = {"region": boto3.session.Session().region_name or "us-east-1"}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint)
        kwargs.update(endpoint_override=parts.netloc or parts.path, scheme=parts.scheme or "https")
    return fs.S3FileSystem(**kwargs)


def find_partitions(config: Config, table: Table, root: str, keep: Keep,
                    sources: Collection[str] | None = None) -> list[Partition]:
    """The partitions of ``table`` that ``keep`` selects, where the catalog says they are (``sources``, when given,
    narrows what Glue is asked for).

    Raises
    ------
    NeedsSpark
        ``catalog.kind: spark``.
    """
    kind = config.catalog.kind
    if kind == "spark":
        raise NeedsSpark(f"catalog.kind spark: the partitions of {table.name} are where Spark's metastore says; "
                         "only Spark can ask it (pass a SparkSession, or install lakelib[spark])")
    if kind == "glue":
        from lakelib.catalog import open_catalog

        listed = open_catalog(config).list_partitions(table, sources)
        return [p for p in listed if keep(p.values)]
    return list_folders(table, root, keep)


def list_folders(table: Table, root: str, keep: Keep, levels: int | None = None) -> list[Partition]:
    """The default partition folders under a table's ``root`` that ``keep`` selects (one listing per level), down
    to ``levels`` keys (all of them by default)."""
    from pyarrow.fs import FileSelector, FileType

    fs, base = filesystem(root)
    found: list[dict[str, str]] = [{}]
    for key in table.partition_keys[:levels]:
        deeper = []
        for values in found:
            folder = "/".join([base] + ([partition_dir(values)] if values else []))
            try:
                entries = fs.get_file_info(FileSelector(folder, allow_not_found=True))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                name, sep, value = entry.base_name.partition("=")
                if entry.type == FileType.Directory and sep and name == key:
                    candidate = {**values, key: unescape_value(value)}
                    if keep(candidate):  # a key not yet filled passes
                        deeper.append(candidate)
        found = deeper
    prefix = root.rstrip("/")
    return [Partition(v, f"{prefix}/{partition_dir(v)}") for v in sorted(found, key=lambda v: tuple(v.values()))]


def data_files(location: str) -> tuple[FileSystem, list[str]]:
    """The data files of one partition folder (names starting with ``_`` or ``.`` are not data)."""
    from pyarrow.fs import FileSelector, FileType

    fs, path = filesystem(location)
    try:
        entries = fs.get_file_info(FileSelector(path, allow_not_found=True))
    except NotADirectoryError:
        return fs, []
    files = [e.path for e in entries if e.type == FileType.File and not e.base_name.startswith(("_", "."))]
    return fs, sorted(files)


def arrow_type(hive_type: str) -> pa.DataType:
    """The Arrow type of a lake column's Hive type.

    >>> str(arrow_type("map<string,string>"))
    'map<string, string>'
    """
    import pyarrow as pa

    simple = {"string": pa.string(), "bigint": pa.int64(), "double": pa.float64(), "boolean": pa.bool_(),
              "timestamp": pa.timestamp("us", tz="UTC"), "array<string>": pa.list_(pa.string()),
              "map<string,string>": pa.map_(pa.string(), pa.string()), "int": pa.int32()}
    return simple.get(type_key(hive_type), pa.string())


def arrow_schema(table: Table, names: Sequence[str]) -> pa.Schema:
    """The asked columns with their Arrow types, then the partition keys as strings."""
    import pyarrow as pa

    types = {c.name: c.type for c in table.columns}
    return pa.schema([pa.field(n, arrow_type(types[n])) for n in names]
                     + [pa.field(k, pa.string()) for k in table.partition_keys])


def read_parquet(table: Table, partitions: Sequence[Partition], names: Sequence[str]) -> pd.DataFrame:
    """The asked columns of exactly these partitions, typed as the schema says, keys added as strings."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    schema = arrow_schema(table, names)
    pieces = []
    for part in partitions:
        fs, files = data_files(part.location)
        if not files:
            continue
        data = ds.dataset(files, filesystem=fs, format="parquet")
        present = [n for n in names if n in data.schema.names]
        got = data.to_table(columns=present)
        columns = [got.column(n) if n in present else pa.nulls(got.num_rows) for n in names]
        columns += [pa.array([str(part.values[k])] * got.num_rows, pa.string()) for k in table.partition_keys]
        pieces.append(pa.Table.from_arrays([c.cast(f.type) for c, f in zip(columns, schema)], schema=schema))
    log.debug("read %d of %d partition(s) of %s", len(pieces), len(partitions), table.name)
    return (pa.concat_tables(pieces) if pieces else schema.empty_table()).to_pandas()


def read_json_lines(table: Table, partitions: Sequence[Partition], names: Sequence[str],
                    limit: int | None = None) -> pd.DataFrame:
    """Fields ``names`` of the JSON lines (gzipped or not) of these partitions, keys added; at most ``limit`` rows."""
    import pyarrow as pa

    schema = arrow_schema(table, names)
    rows: list[dict[str, Any]] = []
    for part in partitions:
        fs, files = data_files(part.location)
        for path in files:
            with fs.open_input_file(path) as handle:
                body = handle.read()
            text = gzip.decompress(body) if path.endswith(".gz") else body
            for line in io.TextIOWrapper(io.BytesIO(text), encoding="utf-8"):
                if line.strip():
                    record = json.loads(line)
                    rows.append({**{n: record.get(n) for n in names}, **part.values})
                    if limit is not None and len(rows) >= limit:
                        return pa.Table.from_pylist(rows, schema=schema).to_pandas()
    return pa.Table.from_pylist(rows, schema=schema).to_pandas()


class ArrowListing(Storage):
    """The listing calls of :class:`lakelib.storage.Storage` (``list``, ``data_files``, ``walk_files``) through
    pyarrow, so :func:`lakelib.raw.find_raw_days` lists raw folders without Spark (``lake backfill``'s estimate).
    Listing only: the other calls need a SparkSession."""

    def __init__(self) -> None:  # no session: nothing of Hadoop's is used
        pass

    def _entries(self, uri: str, recursive: bool) -> List[FileInfo]:
        from pyarrow.fs import FileSelector, FileType

        fs, path = filesystem(uri)
        try:
            entries = fs.get_file_info(FileSelector(path, allow_not_found=True, recursive=recursive))
        except NotADirectoryError:
            return []
        root = uri.rstrip("/")
        return [FileInfo(f"{root}/{e.path[len(path):].lstrip('/')}", e.base_name, int(e.size or 0),
                         e.type == FileType.Directory, int((e.mtime_ns or 0) // 1_000_000)) for e in entries]

    def list(self, uri: str) -> List[FileInfo]:
        """The entries directly under ``uri``, sorted by name; empty when it does not exist."""
        return sorted(self._entries(uri, False), key=lambda f: f.name)

    def walk_files(self, uri: str) -> List[FileInfo]:
        """Every file below ``uri``, recursively, sorted by path."""
        return sorted((f for f in self._entries(uri, True) if not f.is_dir), key=lambda f: f.path)
