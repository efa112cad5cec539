"""File-system operations on lake URIs through Hadoop's FileSystem, the one Spark itself uses.

The same calls work for ``file://``, ``s3://`` (EMRFS on EMR 7) and ``s3a://`` (EMR 8), with the cluster's
credentials, so jobs never need a second S3 client for listing, moving or deleting files.
"""
from __future__ import annotations

import logging
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, List

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

#: File-system round trips (listings, small files) in flight at once: a run publishing hundreds of typed tables
#: lists thousands of folders, each a round trip on S3.
PARALLEL_FILE_CALLS = 8


@dataclass(frozen=True)
class FileInfo:
    """One entry of a listing."""

    path: str
    name: str
    size: int
    is_dir: bool
    modified_ms: int


class Storage:
    """Hadoop FileSystem calls bound to a SparkSession's Hadoop configuration.

    Parameters
    ----------
    spark
        A live session; only its JVM and Hadoop configuration are used.
    """

    def __init__(self, spark: SparkSession) -> None:
        self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _path(self, uri: str):
        return self._jvm.org.apache.hadoop.fs.Path(uri)

    def _fs(self, path):
        return path.getFileSystem(self._conf)

    def spark_uri(self, path: str) -> str:
        """How Spark's file sources name the file at ``path`` (``_metadata.file_path``): its URI, percent-encoded."""
        return str(self._path(path).toUri().toString())

    def exists(self, uri: str) -> bool:
        """Whether a file or folder exists at ``uri``."""
        path = self._path(uri)
        return bool(self._fs(path).exists(path))

    def list(self, uri: str) -> List[FileInfo]:
        """The entries directly under ``uri``, sorted by name; empty when ``uri`` does not exist."""
        path = self._path(uri)
        fs = self._fs(path)
        if not fs.exists(path):
            return []
        return sorted((_info(st) for st in fs.listStatus(path)), key=lambda f: f.name)

    def data_files(self, uri: str) -> List[FileInfo]:
        """The files directly under ``uri`` that readers see (not ``_SUCCESS``, ``.crc`` or other hidden ones)."""
        return [f for f in self.list(uri) if not f.is_dir and not f.name.startswith(("_", "."))]

    def walk_files(self, uri: str) -> List[FileInfo]:
        """Every file below ``uri``, recursively, in one paginated listing (cheap on S3); empty if it does not exist."""
        path = self._path(uri)
        fs = self._fs(path)
        if not fs.exists(path):
            return []
        out = []
        files = fs.listFiles(path, True)
        while files.hasNext():
            out.append(_info(files.next()))
        return sorted(out, key=lambda f: f.path)

    def delete(self, uri: str, recursive: bool = True) -> bool:
        """Delete ``uri``; returns whether something was deleted."""
        path = self._path(uri)
        fs = self._fs(path)
        if not fs.exists(path):
            return False
        log.debug("deleting %s", uri)
        return bool(fs.delete(path, recursive))

    def mkdirs(self, uri: str) -> None:
        """Create a folder and its parents."""
        path = self._path(uri)
        self._fs(path).mkdirs(path)

    def rename(self, src: str, dst: str) -> bool:
        """Move ``src`` to ``dst`` (a copy and delete on S3)."""
        s, d = self._path(src), self._path(dst)
        return bool(self._fs(s).rename(s, d))

    # Small files (state, markers, locks) are written whole: a reader sees the old content or the new, never a
    # half-written file. On S3 a PUT is atomic already. Hadoop's local file system writes in place and keeps a
    # ``.crc`` beside each file, so a reader racing a writer could read half a file or a checksum error: ``file:``
    # URIs, which only a driver on the machine itself uses, are written to a temporary sibling and renamed instead.

    def _local(self, path) -> str | None:
        """The driver's own path of a ``file:`` URI; ``None`` for other file systems."""
        fs = self._fs(path)
        if str(fs.getScheme()) != "file":
            return None
        return str(fs.pathToFile(path).getPath())

    def write_text(self, uri: str, text: str) -> None:
        """Write ``text`` (UTF-8) to a file, replacing it whole."""
        self.write_bytes(uri, text.encode("utf-8"))

    def create_new(self, uri: str, text: str) -> bool:
        """Write ``text`` to a file that must not exist yet; ``False`` when it does (the file is left alone).

        Exclusive on a local file system (the file appears whole, with a hard link); on S3 the existence check and
        the write are two requests, so two writers starting in the same instant may both succeed.
        """
        from py4j.protocol import Py4JJavaError

        path = self._path(uri)
        local = self._local(path)
        if local is not None:
            tmp = _write_temporary(local, text.encode("utf-8"))
            try:
                os.link(tmp, local)
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
            return True
        try:
            stream = self._fs(path).create(path, False)
        except Py4JJavaError as exc:
            if "FileAlreadyExists" in str(exc.java_exception.getClass().getName()) or self.exists(uri):
                return False
            raise
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()
        return True

    def read_text(self, uri: str) -> str:
        """The whole content of a small file as UTF-8 text."""
        return self.read_bytes(uri).decode("utf-8")

    def read_bytes(self, uri: str) -> bytes:
        """The whole content of a file, byte for byte; :class:`FileNotFoundError` when there is none."""
        path = self._path(uri)
        local = self._local(path)
        if local is not None:
            with open(local, "rb") as handle:
                return handle.read()
        from py4j.protocol import Py4JJavaError

        try:
            stream = self._fs(path).open(path)
        except Py4JJavaError as exc:
            if "FileNotFound" in str(exc.java_exception.getClass().getName()):
                raise FileNotFoundError(uri) from None
            raise
        try:
            return bytes(stream.readAllBytes())
        finally:
            stream.close()

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write ``data`` to a file, replacing it whole (on S3 the object appears when the stream closes)."""
        path = self._path(uri)
        local = self._local(path)
        if local is not None:
            folder, name = os.path.split(local)
            crc = os.path.join(folder, f".{name}.crc")  # left by a Hadoop write: it would not match the new content
            if os.path.exists(crc):
                os.unlink(crc)
            os.replace(_write_temporary(local, data), local)
            return
        stream = self._fs(path).create(path, True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()


def each(call: Callable[[Any], Any], items: Iterable[Any], width: int = PARALLEL_FILE_CALLS) -> list[Any]:
    """``call`` on every item, ``width`` at a time (file-system round trips from driver threads), results in order."""
    items = list(items)
    if len(items) < 2:
        return [call(item) for item in items]
    with ThreadPoolExecutor(min(width, len(items))) as pool:
        return list(pool.map(call, items))


def _write_temporary(local: str, data: bytes) -> str:
    """Write ``data`` to a new hidden sibling of the local file ``local`` (its folders created); returns its path."""
    folder, name = os.path.split(local)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
    return tmp


def _info(status) -> FileInfo:
    path = status.getPath()
    return FileInfo(
        path=str(path.toString()),
        name=str(path.getName()),
        size=int(status.getLen()),
        is_dir=bool(status.isDirectory()),
        modified_ms=int(status.getModificationTime()),
    )
