"""File-system operations on lake URIs through Hadoop's FileSystem, the one Spark itself uses.

The same calls work for ``file://``, ``s3://`` (EMRFS on EMR 7) and ``s3a://`` (EMR 8), with the cluster's
credentials, so jobs never need a second S3 client for listing, moving or deleting files.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, List

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


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

    def write_text(self, uri: str, text: str) -> None:
        """Write ``text`` (UTF-8) to a file, replacing it."""
        path = self._path(uri)
        stream = self._fs(path).create(path, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()

    def create_new(self, uri: str, text: str) -> bool:
        """Write ``text`` to a file that must not exist yet; ``False`` when it does (the file is left alone).

        Exclusive on a local or HDFS file system; on S3 the existence check and the write are two requests, so two
        writers starting in the same instant may both succeed.
        """
        from py4j.protocol import Py4JJavaError

        path = self._path(uri)
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
        path = self._path(uri)
        stream = self._fs(path).open(path)
        try:
            reader = self._jvm.java.io.BufferedReader(
                self._jvm.java.io.InputStreamReader(stream, self._jvm.java.nio.charset.StandardCharsets.UTF_8)
            )
            lines = []
            line = reader.readLine()
            while line is not None:
                lines.append(line)
                line = reader.readLine()
            return "\n".join(lines)
        finally:
            stream.close()

    def read_bytes(self, uri: str) -> bytes:
        """The whole content of a file, byte for byte."""
        path = self._path(uri)
        stream = self._fs(path).open(path)
        try:
            return bytes(stream.readAllBytes())
        finally:
            stream.close()

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write ``data`` to a file, replacing it (on S3 the object appears whole when the stream closes)."""
        path = self._path(uri)
        stream = self._fs(path).create(path, True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()


def _info(status) -> FileInfo:
    path = status.getPath()
    return FileInfo(
        path=str(path.toString()),
        name=str(path.getName()),
        size=int(status.getLen()),
        is_dir=bool(status.isDirectory()),
        modified_ms=int(status.getModificationTime()),
    )
