"""Partition compaction: plan from file sizes, rewrite to a new folder, verify, re-point the catalog, clean up.

A partition's small files are rewritten into files near a target size without any reader of the catalog ever
seeing a missing or a doubled row:

1. **plan** (pure, :func:`plan_groups` / :func:`plan_partition`): the partition's file sizes in, groups of files
   out (first-fit-decreasing bin packing to the target); a partition is compacted only when it would end with
   fewer files;
2. **write** each group as one file into a NEW version folder,
   ``<lake.tables>/_compacted/<table>/<key>=<value>/.../<run_id>/`` (outside the table's own folder, so readers
   of ``<lake.tables>/<table>`` by path never see two copies);
3. **verify** the new folder against the old files: same row count and the same order-independent checksum over
   every column (:func:`checksum`), else :class:`~lakelib.errors.VerificationError` and nothing is published;
4. **publish**: one re-point of the catalog partition (Glue ``UpdatePartition`` / ``ALTER TABLE ... SET
   LOCATION``);
5. **clean up** old versions once ``compaction.retention_hours`` have passed since they stopped being the
   catalog's location, decided from small markers this module writes (``_superseded/<hash>.json``).

Crash safety: the catalog only ever moves from one complete, verified folder to another; every file an
interrupted run leaves behind is either a finished version (a rerun publishes it) or an unreferenced folder (a
rerun marks it and deletes it after the retention). See ``docs/compaction.md``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from functools import reduce
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from lakelib.catalog.base import Catalog, Partition
from lakelib.errors import CatalogError, VerificationError
from lakelib.paths import canonical_location, join, partition_dir, same_location
from lakelib.schema import Table

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column, DataFrame, SparkSession

    from lakelib.storage import FileInfo, Storage

log = logging.getLogger(__name__)

MB = 1024 * 1024

#: A file at least this fraction of the target is "near the target": it is never merged again.
NEAR_TARGET = 0.5

#: Folder (under ``lake.tables``) that holds the compacted versions of every table's partitions.
VERSIONS_DIR = "_compacted"
MARKERS_DIR = "_superseded"
MANIFEST = "_lakelib_compaction.json"

#: Test-only fault injection: set to a step name (see :data:`FAULT_STEPS`) to make the job raise there.
FAULT_ENV = "LAKELIB_COMPACTION_FAULT"
FAULT_STEPS = ("after_write", "after_verify", "after_publish", "before_cleanup", "after_cleanup")


class InjectedFault(RuntimeError):
    """Raised at a named step when :data:`FAULT_ENV` names it (tests simulate a killed driver with it)."""


def fault_point(step: str) -> None:
    """Raise :class:`InjectedFault` when the test-only environment variable :data:`FAULT_ENV` is ``step``."""
    if os.environ.get(FAULT_ENV) == step:
        raise InjectedFault(f"injected fault at {step} ({FAULT_ENV})")


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


# --- checksums (pure transforms + one aggregate) ---------------------------------------------------------------


@dataclass(frozen=True)
class Checksum:
    """Row count and two order-independent sums of per-row hashes over every column."""

    rows: int
    xxhash_sum: str
    murmur_sum: str


def _canonical(name: str, data_type) -> Column:
    """A hashable, order-stable form of a column (maps as their entries sorted by key)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    col = F.col(f"`{name}`")
    if isinstance(data_type, T.MapType):
        return F.array_sort(F.map_entries(col))
    if isinstance(data_type, (T.StructType, T.ArrayType)) and "map<" in data_type.simpleString():
        return F.to_json(col)
    return col


def row_hashes(df: DataFrame) -> DataFrame:
    """One row per input row: ``h64`` (xxhash64) and ``h32`` (murmur3) over every column.

    Each column is preceded by its null flag, so a value moved from one column to a null neighbour changes the
    hash (Spark's hashes skip nulls).
    """
    from pyspark.sql import functions as F

    parts = []
    for field_ in df.schema.fields:
        parts += [F.col(f"`{field_.name}`").isNull(), _canonical(field_.name, field_.dataType)]
    if not parts:
        parts = [F.lit(0)]
    return df.select(F.xxhash64(*parts).alias("h64"), F.hash(*parts).alias("h32"))


def checksum(df: DataFrame) -> Checksum:
    """Count and checksum of a DataFrame in one Spark job; equal for the same rows in any order and split.

    A changed row changes a hash; a doubled row (even with another one missing) changes the sums.
    """
    from pyspark.sql import functions as F

    row = (
        row_hashes(df)
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.coalesce(F.sum(F.col("h64").cast("decimal(38,0)")), F.lit(0).cast("decimal(38,0)")).alias("s64"),
            F.coalesce(F.sum(F.col("h32").cast("decimal(38,0)")), F.lit(0).cast("decimal(38,0)")).alias("s32"),
        )
        .collect()[0]
    )
    return Checksum(int(row["rows"]), str(row["s64"]), str(row["s32"]))


# --- locations, manifests, markers -----------------------------------------------------------------------------


def versions_root(tables_root: str, table: Table, values: Mapping[str, str]) -> str:
    """``<tables_root>/_compacted/<table>/<key>=<value>/...``: where a partition's compacted versions live.

    >>> from lakelib.schema import EVENTS
    >>> versions_root("s3://b/tables", EVENTS, {"sourceid": "web", "dt": "2020-01-02"})
    's3://b/tables/_compacted/events/sourceid=web/dt=2020-01-02'
    """
    return join(tables_root, VERSIONS_DIR, table.name, partition_dir(values))


def marker_uri(tables_root: str, table: Table, values: Mapping[str, str], location: str) -> str:
    """The marker file that records when ``location`` stopped being the partition's catalog location."""
    key = hashlib.sha1(canonical_location(location).encode("utf-8")).hexdigest()[:16]
    return join(versions_root(tables_root, table, values), MARKERS_DIR, f"{key}.json")


def is_expired(superseded_at: float | None, now: float, retention_hours: float) -> bool:
    """Whether an old version superseded at ``superseded_at`` (epoch seconds) may be deleted at ``now``.

    >>> is_expired(0.0, 6 * 3600, 6), is_expired(0.0, 6 * 3600 - 1, 6), is_expired(None, 1e12, 0)
    (True, False, False)
    """
    return superseded_at is not None and now - superseded_at >= retention_hours * 3600


def _listing(files: Sequence[FileInfo]) -> list[list[Any]]:
    return sorted([f.name, f.size] for f in files)


def _read_json(storage: Storage, uri: str) -> dict[str, Any] | None:
    if not storage.exists(uri):
        return None
    try:
        return json.loads(storage.read_text(uri))
    except ValueError:
        log.warning("ignoring unreadable compaction file %s", uri)
        return None


def _write_json(storage: Storage, uri: str, data: Mapping[str, Any]) -> None:
    storage.write_text(uri, json.dumps(data, indent=1, sort_keys=True) + "\n")


def read_manifest(storage: Storage, location: str) -> dict[str, Any] | None:
    """The manifest of a compacted version folder (``None`` for any other folder)."""
    return _read_json(storage, join(location, MANIFEST))


# --- file access -------------------------------------------------------------------------------------------------


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


def write_version(
    spark: SparkSession, plan: PartitionPlan, new_location: str, compression: str = "snappy"
) -> DataFrame:
    """Write the plan's groups into ``new_location`` (one file per group) and return the old data as read.

    Groups of several files are read and written in one Spark job (a union of one-partition scans); a lone
    file is copied byte for byte. The old files are read with their merged schema so no column is lost.
    """
    paths = [join(plan.location, f.name) for f in plan.files]
    old = spark.read.option("mergeSchema", "true").parquet(*paths)
    merged = [g for g in plan.groups if len(g) > 1]
    if merged:
        frames = [spark.read.schema(old.schema).parquet(*[paths[i] for i in g]).coalesce(1) for g in merged]
        codec = "uncompressed" if compression == "none" else compression
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


def publish(
    storage: Storage,
    catalog: Catalog,
    table: Table,
    tables_root: str,
    values: Mapping[str, str],
    old_location: str,
    new_location: str,
) -> None:
    """Re-point the catalog partition from ``old_location`` to ``new_location``, recording the old one.

    A pending marker for the old folder is written first (so a crash right after the re-point cannot leave it
    unaccounted for), then the partition is re-pointed, then the marker gets its time.

    Raises
    ------
    CatalogError
        The catalog does not point at ``new_location`` afterwards.
    """
    files = storage.data_files(old_location)
    marker = marker_uri(tables_root, table, values, old_location)
    record = {
        "location": canonical_location(old_location), "files": _listing(files), "superseded_at": None, "by": new_location,
    }
    _write_json(storage, marker, record)
    catalog.register_partitions(table, [Partition(dict(values), new_location)])
    now_at = catalog.partition_location(table, values)
    if now_at is None or not same_location(now_at, new_location):
        raise CatalogError(f"{table.name} {partition_dir(values)}: catalog points at {now_at}, not {new_location}")
    fault_point("after_publish")
    record["superseded_at"] = time.time()
    _write_json(storage, marker, record)


def cleanup(
    storage: Storage,
    table: Table,
    tables_root: str,
    values: Mapping[str, str],
    current: str,
    retention_hours: float,
    now: float | None = None,
) -> list[str]:
    """Delete the partition's old versions whose retention has passed; returns the folders deleted.

    Every version folder under :func:`versions_root` that the catalog does not point at gets a marker the first
    time it is seen (an interrupted run's leftovers, or a version left when ``json_to_parquet`` rewrote the
    default folder). A marked folder is deleted once ``retention_hours`` have passed since its marker's time,
    and only if it still holds exactly the files the marker lists (a folder rewritten since is left alone).
    A marker of the current location is dropped: that folder is in use again.
    """
    now = time.time() if now is None else now
    root = versions_root(tables_root, table, values)
    markers_dir = join(root, MARKERS_DIR)
    markers = {}
    for entry in storage.list(markers_dir):
        if entry.name.endswith(".json"):
            data = _read_json(storage, entry.path)
            if data and data.get("location"):
                markers[canonical_location(data["location"])] = (entry.path, data)
    for entry in storage.list(root):
        if entry.is_dir and entry.name != MARKERS_DIR and not same_location(entry.path, current):
            location = canonical_location(entry.path)
            if location not in markers:
                data = {
                    "location": location,
                    "files": _listing(storage.data_files(entry.path)),
                    "superseded_at": now,
                    "by": "unreferenced when first seen",
                }
                uri = marker_uri(tables_root, table, values, location)
                _write_json(storage, uri, data)
                markers[location] = (uri, data)
    deleted = []
    for location, (uri, data) in sorted(markers.items()):
        if same_location(location, current):
            storage.delete(uri)
            continue
        if data.get("superseded_at") is None:
            data["superseded_at"] = now
            _write_json(storage, uri, data)
        if not is_expired(data["superseded_at"], now, retention_hours):
            continue
        files = storage.data_files(location)
        if files and _listing(files) != [list(x) for x in data.get("files", [])]:
            log.warning("%s: changed since it was superseded; left alone", location)
        elif files or storage.exists(location):
            _delete_version(storage, location, files, under=root)
            deleted.append(location)
        storage.delete(uri)
    return deleted


def _delete_version(storage: Storage, location: str, files: Sequence[FileInfo], under: str) -> None:
    if same_location(location, under) or canonical_location(location).startswith(canonical_location(under) + "/"):
        storage.delete(location)
        return
    # A default Hive-style folder: delete its data files, then the folder if only hidden files remain.
    for f in files:
        storage.delete(f.path, recursive=False)
    if all(not e.is_dir for e in storage.list(location)):
        storage.delete(location)
    log.info("deleted old version %s", location)


def changed_since_plan(storage: Storage, catalog: Catalog, table: Table, plan: PartitionPlan) -> tuple[str, str]:
    """Whether the partition is still what ``plan`` was made from: ``("", location)``, or why not and where the
    catalog points now.

    The catalog is asked again for the partition's location (a rerun of ``json_to_parquet`` re-points a compacted
    partition to its default folder, or drops a partition that became empty), and the planned folder is listed
    again (a rerun rewrites the default folder in place, with new file names).
    """
    now_at = catalog.partition_location(table, plan.values)
    if now_at is None:
        return f"it is no longer registered (it was at {plan.location})", plan.location
    if not same_location(now_at, plan.location):
        return f"the catalog moved it from {plan.location} to {now_at}", now_at
    if _listing(storage.data_files(plan.location)) != sorted([f.name, f.size] for f in plan.files):
        return f"its files at {plan.location} were rewritten", now_at
    return "", now_at


def compact_partition(
    spark: SparkSession,
    storage: Storage,
    catalog: Catalog,
    table: Table,
    tables_root: str,
    plan: PartitionPlan,
    run_id: str,
    compression: str = "snappy",
) -> Outcome:
    """Write, verify and publish one planned partition (the plan must say ``compact``).

    A verified version of exactly these files left by an interrupted run is published instead of written again.
    Right before publishing, the partition is checked against the plan (:func:`changed_since_plan`); when it
    changed, nothing is published and the outcome is ``stopped``, with the reason.

    Raises
    ------
    VerificationError
        The rewrite does not match; the catalog is untouched.
    """
    values = plan.values
    source = {"location": canonical_location(plan.location), "files": sorted([f.name, f.size] for f in plan.files)}
    new_location, rows = _finished_version(storage, table, tables_root, values, source)
    if new_location is None:
        new_location = join(versions_root(tables_root, table, values), run_id)
        log.info(
            "%s: %d files -> %d into %s", partition_dir(values), plan.files_before, plan.files_after, new_location
        )
        old = write_version(spark, plan, new_location, compression)
        fault_point("after_write")
        check = verify_version(spark, old, new_location)
        rows = check.rows
        manifest = {
            "run_id": run_id,
            "table": table.name,
            "values": values,
            "source": source,
            "target_bytes": plan.target_bytes,
            "checksum": asdict(check),
            "files": _listing(storage.data_files(new_location)),
            "verified_at": time.time(),
        }
        _write_json(storage, join(new_location, MANIFEST), manifest)
        fault_point("after_verify")
    else:
        log.info("%s: publishing %s, verified by an interrupted run", partition_dir(values), new_location)
    changed, now_at = changed_since_plan(storage, catalog, table, plan)
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
    publish(storage, catalog, table, tables_root, values, plan.location, new_location)
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
    )


def _finished_version(
    storage: Storage, table: Table, tables_root: str, values: Mapping[str, str], source: Mapping[str, Any]
) -> tuple[str | None, int | None]:
    """A version folder whose manifest says it verified exactly ``source`` and whose files are intact, and its
    verified row count; ``(None, None)`` when there is none."""
    for entry in storage.list(versions_root(tables_root, table, values)):
        if not entry.is_dir or entry.name == MARKERS_DIR:
            continue
        manifest = read_manifest(storage, entry.path)
        if not manifest or manifest.get("source") != json.loads(json.dumps(source)):
            continue
        if _listing(storage.data_files(entry.path)) == [list(x) for x in manifest.get("files", [])]:
            return entry.path, int(manifest.get("checksum", {}).get("rows", 0))
    return None, None
