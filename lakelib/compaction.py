"""Partition compaction: plan from file sizes, rewrite to a new folder, verify, re-point the catalog, clean up.

A partition's small files are rewritten into files near a target size without any reader of the catalog ever
seeing a missing or a doubled row:

1. **plan** (pure, :func:`plan_groups` / :func:`plan_partition`): the partition's file sizes in, groups of files
   out (first-fit-decreasing bin packing to the target); a partition is compacted only when it would end with
   fewer files;
2. **write** each group as one file into a new version folder of the publish protocol (:mod:`lakelib.publish`),
   ``<lake.tables>/_versions/<table>/<key>=<value>/.../v=<run_id>/``;
3. **verify** the new folder against the old files: same row count and the same order-independent checksum over
   every column (:func:`lakelib.checksum.checksum`), else :class:`~lakelib.errors.VerificationError` and nothing is
   published;
4. **publish** and **clean up** through the protocol: one re-point of the catalog partition, old versions deleted
   once ``publish.retention_hours`` have passed since they were superseded.

Crash safety: the catalog only ever moves from one complete, verified folder to another; every file an
interrupted run leaves behind is either a finished version (a rerun publishes it) or an unreferenced folder (a
rerun marks it and deletes it after the retention). See ``docs/compaction.md`` and ``docs/publishing.md``.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from functools import reduce
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from lakelib.checksum import Checksum, checksum
from lakelib.errors import VerificationError
from lakelib.paths import canonical_location, join, partition_dir, same_location
from lakelib.publish import MARKERS_DIR, Target, fault_point, listing, read_json, write_json

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from lakelib.storage import Storage
    from lakelib.tables import Tables

log = logging.getLogger(__name__)

MB = 1024 * 1024

#: A file at least this fraction of the target is "near the target": it is never merged again.
NEAR_TARGET = 0.5

MANIFEST = "_lakelib_compaction.json"


# --- planning (pure) -------------------------------------------------------------------------------------------


def plan_groups(sizes: Sequence[int], target_bytes: int, near_target: float = NEAR_TARGET) -> list[list[int]]:
    """Group files so that each group, rewritten as one file, is at most ``target_bytes``.

    Files of at least ``near_target * target_bytes`` stay alone (they are near the target already); the others
    are packed first-fit-decreasing. First fit leaves at most one group at half the target or less, so the
    output of a compaction is not merged again by a second plan.

    Parameters
    ----------
    sizes
        The (estimated payload) size of each file, in bytes.
    target_bytes
        The target size of an output file.
    near_target
        Fraction of the target from which a file is left alone.

    Returns
    -------
    list[list[int]]
        Indexes into ``sizes``; every index in exactly one group; groups and their members in a stable order
        (largest first, ties by index).

    Examples
    --------
    >>> plan_groups([10, 10, 10, 90], target_bytes=100)
    [[3], [0, 1, 2]]
    >>> plan_groups([60, 60], target_bytes=100)
    [[0], [1]]
    """
    if target_bytes <= 0:
        raise ValueError(f"target_bytes must be positive, not {target_bytes}")
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i], i))
    big = [[i] for i in order if sizes[i] >= near_target * target_bytes]
    bins: list[list[int]] = []
    loads: list[int] = []
    for i in order:
        if sizes[i] >= near_target * target_bytes:
            continue
        for b, load in enumerate(loads):
            if load + sizes[i] <= target_bytes:
                bins[b].append(i)
                loads[b] += sizes[i]
                break
        else:
            bins.append([i])
            loads.append(sizes[i])
    return big + bins


@dataclass(frozen=True)
class DataFile:
    """A data file of a partition: name, size, and the size of its Parquet footer (0 when unknown)."""

    name: str
    size: int
    footer: int = 0

    @property
    def payload(self) -> int:
        """The bytes that remain when the file is merged with others (its own footer is not repeated)."""
        return max(self.size - self.footer, 0)


@dataclass
class PartitionPlan:
    """What compaction would do to one partition."""

    values: dict[str, str]
    location: str
    files: list[DataFile]
    groups: list[list[int]]
    target_bytes: int
    reason: str = ""

    @property
    def compact(self) -> bool:
        """Whether the partition is rewritten (it ends with fewer files and nothing said to leave it)."""
        return not self.reason and len(self.groups) < len(self.files)

    @property
    def files_before(self) -> int:
        return len(self.files)

    @property
    def bytes_before(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def files_after(self) -> int:
        return len(self.groups) if self.compact else len(self.files)

    @property
    def estimated_bytes_after(self) -> int:
        """Sizes of the files after, estimated: merged groups repeat one footer, lone files are copied."""
        if not self.compact:
            return self.bytes_before
        total = 0
        for group in self.groups:
            members = [self.files[i] for i in group]
            total += members[0].size if len(members) == 1 else sum(f.payload for f in members) + max(
                f.footer for f in members
            )
        return total

    def to_dict(self) -> dict[str, Any]:
        """The plan as a report entry."""
        return {
            **self.values,
            "location": self.location,
            "action": "compact" if self.compact else "leave",
            "reason": self.reason or ("" if self.compact else "would not end with fewer files"),
            "files_before": self.files_before,
            "bytes_before": self.bytes_before,
            "files_after": self.files_after,
            "estimated_bytes_after": self.estimated_bytes_after,
            "target_bytes": self.target_bytes,
        }


def plan_partition(
    values: Mapping[str, str],
    location: str,
    files: Sequence[DataFile],
    target_bytes: int,
    compacted_at_target: int | None = None,
) -> PartitionPlan:
    """Plan one partition from its files.

    Parameters
    ----------
    values
        Its key values.
    location
        The folder the catalog points at.
    files
        Its data files (sizes and footer sizes).
    target_bytes
        Target file size.
    compacted_at_target
        When ``location`` is a version this module wrote, the target it was written with: a partition already
        compacted at this target or a larger one is left alone (merging makes Parquet smaller than the sum of
        its inputs, so sizes alone could ask for one more round).

    Examples
    --------
    >>> plan = plan_partition({"dt": "d"}, "loc", [DataFile("a", 10), DataFile("b", 10)], 100)
    >>> plan.compact, plan.files_before, plan.files_after
    (True, 2, 1)
    """
    groups = plan_groups([f.payload if f.footer else f.size for f in files], target_bytes)
    reason = ""
    if not files:
        reason = "no data files"
    elif compacted_at_target is not None and compacted_at_target >= target_bytes:
        reason = f"already compacted at {compacted_at_target / MB:g} MB"
    return PartitionPlan(dict(values), location, list(files), groups, target_bytes, reason)


# --- manifests ----------------------------------------------------------------------------------------------------


def read_manifest(storage: Storage, location: str) -> dict[str, Any] | None:
    """The manifest of a compacted version folder (``None`` for any other folder)."""
    return read_json(storage, join(location, MANIFEST))


# --- file access -------------------------------------------------------------------------------------------------


def plan_partitions(tables: Tables, partitions: Sequence[Any], target_bytes: int) -> list[PartitionPlan]:
    """Plan each registered partition (:class:`~lakelib.tables.Partition`) from its files and its manifest."""
    plans = []
    for part in partitions:
        manifest = read_manifest(tables.storage, part.location)
        compacted_at = manifest.get("target_bytes") if manifest else None
        files = list_data_files(tables.spark, tables.storage, part.location, target_bytes)
        plans.append(plan_partition(part.values, part.location, files, target_bytes, compacted_at))
    return plans


def list_data_files(spark: SparkSession, storage: Storage, location: str, target_bytes: int) -> list[DataFile]:
    """The data files of a folder with their sizes; the footer size is read for the files that may be merged."""
    out = []
    for info in storage.data_files(location):
        footer = _footer_length(spark, info.path, info.size) if info.size < NEAR_TARGET * target_bytes else 0
        out.append(DataFile(info.name, info.size, footer))
    return out


def _footer_length(spark: SparkSession, uri: str, size: int) -> int:
    """Bytes of a Parquet file that a merge does not repeat: footer, its length, both magics (0: not Parquet)."""
    if size < 12:
        return 0
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    stream = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).open(path)
    try:
        stream.seek(size - 8)
        length = int(jvm.java.lang.Integer.reverseBytes(stream.readInt()))  # little-endian in the file
        magic = int(stream.readInt())
    finally:
        stream.close()
    if magic != 0x50415231 or length <= 0:  # "PAR1"
        return 0
    return min(length + 12, size)  # + its length, the closing and the opening "PAR1"


def _copy(spark: SparkSession, src: str, dst: str) -> None:
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    s, d = jvm.org.apache.hadoop.fs.Path(src), jvm.org.apache.hadoop.fs.Path(dst)
    if not jvm.org.apache.hadoop.fs.FileUtil.copy(s.getFileSystem(conf), s, d.getFileSystem(conf), d, False, conf):
        raise OSError(f"could not copy {src} to {dst}")


# --- one partition -----------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What happened to one partition, for the run report."""

    values: dict[str, str]
    action: str
    location_before: str
    location_after: str
    files_before: int
    bytes_before: int
    files_after: int
    bytes_after: int
    rows: int | None = None
    reason: str = ""
    deleted_versions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        values = out.pop("values")
        return {**values, **out}


def write_version(spark: SparkSession, plan: PartitionPlan, new_location: str, codec: str = "snappy") -> DataFrame:
    """Write the plan's groups into ``new_location`` (one file per group) and return the old data as read.

    Groups of several files are read and written in one Spark job (a union of one-partition scans); a lone
    file is copied byte for byte. The old files are read with their merged schema so no column is lost.
    """
    paths = [join(plan.location, f.name) for f in plan.files]
    old = spark.read.option("mergeSchema", "true").parquet(*paths)
    merged = [g for g in plan.groups if len(g) > 1]
    if merged:
        frames = [spark.read.schema(old.schema).parquet(*[paths[i] for i in g]).coalesce(1) for g in merged]
        reduce(lambda a, b: a.union(b), frames).write.mode("errorifexists").option("compression", codec).parquet(
            new_location
        )
    for group in plan.groups:
        if len(group) == 1:
            _copy(spark, paths[group[0]], join(new_location, plan.files[group[0]].name))
    return old


def verify_version(spark: SparkSession, old: DataFrame, new_location: str) -> Checksum:
    """Compare the new folder, read as a catalog reader would, with the old files.

    Raises
    ------
    VerificationError
        Different row counts, or the same count with different checksums (a changed or doubled row).
    """
    new = spark.read.schema(old.schema).parquet(new_location)
    before, after = checksum(old), checksum(new)
    if before.rows != after.rows:
        raise VerificationError(
            f"{new_location}: {after.rows} rows written but the old files hold {before.rows}; nothing published"
        )
    if before != after:
        raise VerificationError(
            f"{new_location}: same row count ({after.rows}) but a different checksum over all columns "
            "(a changed or doubled row); nothing published"
        )
    return after


def changed_since_plan(storage: Storage, target: Target, plan: PartitionPlan) -> tuple[str, str]:
    """Whether the partition is still what ``plan`` was made from: ``("", location)``, or why not and where the
    catalog points now.

    The catalog is asked again for the partition's location (a rerun of ``json_to_parquet`` re-points a compacted
    partition to its default folder, or drops a partition that became empty), and the planned folder is listed
    again (a rerun rewrites the default folder in place, with new file names).
    """
    now_at = target.catalog.partition_location(target.table, plan.values)
    if now_at is None:
        return f"it is no longer registered (it was at {plan.location})", plan.location
    if not same_location(now_at, plan.location):
        return f"the catalog moved it from {plan.location} to {now_at}", now_at
    if listing(storage.data_files(plan.location)) != sorted([f.name, f.size] for f in plan.files):
        return f"its files at {plan.location} were rewritten", now_at
    return "", now_at


def compact_partition(tables: Tables, target: Target, plan: PartitionPlan) -> Outcome:
    """Write, verify and publish one planned partition (the plan must say ``compact``).

    A verified version of exactly these files left by an interrupted run is published instead of written again.
    Right before publishing, the partition is checked against the plan (:func:`changed_since_plan`); when it
    changed, nothing is published and the outcome is ``stopped``, with the reason.

    Raises
    ------
    VerificationError
        The rewrite does not match; the catalog is untouched.
    """
    spark, storage, values = tables.spark, tables.storage, plan.values
    key = target.key(values)
    source = {"location": canonical_location(plan.location), "files": sorted([f.name, f.size] for f in plan.files)}
    new_location, rows = _finished_version(storage, target, key, source)
    if new_location is None:
        new_location = target.version_dir(key, tables.run_id)
        log.info(
            "%s: %d files -> %d into %s", partition_dir(values), plan.files_before, plan.files_after, new_location
        )
        old = write_version(spark, plan, new_location, tables.config.write.codec)
        fault_point("after_write")
        check = verify_version(spark, old, new_location)
        rows = check.rows
        manifest = {
            "run_id": tables.run_id,
            "table": target.table.name,
            "values": values,
            "source": source,
            "target_bytes": plan.target_bytes,
            "checksum": asdict(check),
            "files": listing(storage.data_files(new_location)),
            "verified_at": time.time(),
        }
        write_json(storage, join(new_location, MANIFEST), manifest)
        fault_point("after_verify")
    else:
        log.info("%s: publishing %s, verified by an interrupted run", partition_dir(values), new_location)
    changed, now_at = changed_since_plan(storage, target, plan)
    if changed:
        # A rerun of json_to_parquet (or someone) changed the partition while it was rewritten: publishing would
        # put the catalog back on the older rows. The version left behind is removed by cleanup, as any other.
        reason = f"{changed} since the plan; not published (run compaction again to compact the new files)"
        log.warning("%s: %s", partition_dir(values), reason)
        return Outcome(
            values=dict(values),
            action="stopped",
            location_before=plan.location,
            location_after=now_at,
            files_before=plan.files_before,
            bytes_before=plan.bytes_before,
            files_after=plan.files_before,
            bytes_after=plan.bytes_before,
            rows=rows,
            reason=reason,
        )
    staged = tables.publisher.stage_written(target, {key: new_location}, {key: int(rows or 0)})
    published = tables.publish(staged)
    after = storage.data_files(new_location)
    return Outcome(
        values=dict(values),
        action="compacted",
        location_before=plan.location,
        location_after=new_location,
        files_before=plan.files_before,
        bytes_before=plan.bytes_before,
        files_after=len(after),
        bytes_after=sum(f.size for f in after),
        rows=rows,
        deleted_versions=published[0].deleted if published else [],
    )


def _finished_version(
    storage: Storage, target: Target, key: tuple, source: Mapping[str, Any]
) -> tuple[str | None, int | None]:
    """A version folder whose manifest says it verified exactly ``source`` and whose files are intact, and its
    verified row count; ``(None, None)`` when there is none."""
    for entry in storage.list(target.versions_dir(key)):
        if not entry.is_dir or entry.name == MARKERS_DIR:
            continue
        manifest = read_manifest(storage, entry.path)
        if not manifest or manifest.get("source") != json.loads(json.dumps(source)):
            continue
        if listing(storage.data_files(entry.path)) == [list(x) for x in manifest.get("files", [])]:
            return entry.path, int(manifest.get("checksum", {}).get("rows", 0))
    return None, None
