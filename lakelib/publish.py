"""The one way the lake's tables change: write a new version, verify it, switch readers to it, clean up later.

Every writer (``json_to_parquet``'s events and quarantine, the counts, the typed tables, compaction, ``lake_runs``,
erasure) hands its rows or files to this module through :class:`lakelib.tables.Tables`; none of them touches a
folder or the catalog itself. For each changed partition:

1. **write** the rows to a new folder no reader looks at: with a catalog, a *version folder*
   ``<home>/_versions/<table>/<key>=<value>/.../v=<run_id>/`` (outside the table's folder, so a reader walking
   ``<home>/<table>`` never sees two versions); without one, ``<home>/_staging/<table>/<run_id>/...``;
2. **verify** it: rows per partition counted from the files (Parquet footers) against what the writer expects,
   and, when the writer asks, the order-independent checksum of every column (:mod:`lakelib.checksum`);
3. **publish**: with a catalog, partitions that no longer exist are dropped first, then new partitions are
   registered and changed ones re-pointed in one batch per table (the backends chunk Glue's batch calls); without a
   catalog, each partition's default folder is moved aside and the new one moved in (path readers may find the
   partition missing between the two moves, never doubled or partial); a marker records every superseded folder;
4. **clean up**, in the same and later runs: a superseded folder (or any version no reader is pointed at) is
   deleted once ``publish.retention_hours`` have passed since it was superseded, so queries that started on it can
   finish.

A crash at any step leaves readers on one complete version: the old one until the switch, the new one after it.
A rerun writes and publishes again and marks what the crashed run left (see ``docs/publishing.md``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import unquote

from lakelib.catalog.base import Catalog, Partition, sources_and_days
from lakelib.errors import LakelibError, PartialRegistrationError, VerificationError
from lakelib.paths import canonical_location, join, partition_dir, same_location
from lakelib.report import RunReport, record_registration
from lakelib.schema import Table
from lakelib.storage import each

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from lakelib.checksum import Checksum
    from lakelib.storage import FileInfo, Storage

log = logging.getLogger(__name__)

#: Under a lake root (``lake.tables``, ``lake.quarantine``): every table's versions, and the runs' staging folders.
VERSIONS_DIR = "_versions"
STAGING_DIR = "_staging"
#: Versions written by compaction before this protocol existed (``<tables>/_compacted/<table>/...``): cleaned too.
LEGACY_VERSIONS_DIRS = ("_compacted",)
MARKERS_DIR = "_superseded"
#: A version folder is ``v=<run_id>``: a key=value name, so that one scan can read many versions of a table.
VERSION_KEY = "v"

#: Test-only fault injection: set to a step name (see :data:`FAULT_STEPS`) to make the writer raise there.
FAULT_ENV = "LAKELIB_FAULT"
FAULT_STEPS = ("after_write", "after_verify", "after_publish", "before_cleanup")

Key = tuple  # a partition's key values, as strings, in the table's key order


class InjectedFault(RuntimeError):
    """Raised at a named step when :data:`FAULT_ENV` names it (tests simulate a killed driver with it)."""


def fault_point(step: str) -> None:
    """Raise :class:`InjectedFault` when the test-only environment variable :data:`FAULT_ENV` is ``step``."""
    if os.environ.get(FAULT_ENV) == step:
        raise InjectedFault(f"injected fault at {step} ({FAULT_ENV})")


# --- where a table lives ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A table as the protocol writes it: its schema, the lake root it lives under, its format and catalog.

    ``events`` is ``Target(EVENTS, config.lake.tables, catalog)``; the quarantine is a table of JSON lines under
    ``lake.quarantine`` that no catalog holds.
    """

    table: Table
    home: str
    catalog: Catalog
    fmt: str = "parquet"
    name: str = ""

    @property
    def label(self) -> str:
        """How messages name it (the table's name unless given)."""
        return self.name or self.table.name

    @property
    def root(self) -> str:
        """The table's folder: ``<home>/<table>``, where its default partition folders are."""
        return join(self.home, self.table.name)

    @property
    def by_path(self) -> bool:
        """Whether partitions stay in their default folders (some readers find them by path: no catalog, or
        Athena's partition projection)."""
        return self.catalog.read_by_path

    def key(self, values: Mapping[str, object]) -> Key:
        """The key values of a partition, as strings in the table's key order."""
        return tuple(str(values[k]) for k in self.table.partition_keys)

    def values(self, key: Key) -> dict[str, str]:
        """The mapping of a key tuple."""
        return dict(zip(self.table.partition_keys, key))

    def default_dir(self, key: Key) -> str:
        """``<home>/<table>/<key>=<value>/...``."""
        return join(self.root, partition_dir(self.values(key)))

    def versions_dir(self, key: Key, base: str = VERSIONS_DIR) -> str:
        """``<home>/_versions/<table>/<key>=<value>/...``: the partition's versions and markers."""
        return join(self.home, base, self.table.name, partition_dir(self.values(key)))

    def version_dir(self, key: Key, run_id: str) -> str:
        """The version folder a run writes for a partition: ``.../v=<run_id>``."""
        return join(self.versions_dir(key), f"{VERSION_KEY}={run_id}")


@dataclass
class Staged:
    """A verified new version of some partitions of one table, not yet published."""

    target: Target
    run_id: str
    locations: dict[Key, str] = field(default_factory=dict)
    rows: dict[Key, int] = field(default_factory=dict)
    files: dict[Key, int] = field(default_factory=dict)
    bytes: dict[Key, int] = field(default_factory=dict)
    drop: list[Key] = field(default_factory=list)
    staging: str | None = None
    #: Written but not verified yet (:meth:`Publisher.verify`): rows expected per partition, checksums, rows written.
    unverified: tuple[dict[Key, int], Mapping[Key, Checksum] | None, int | None] | None = None


@dataclass
class Published:
    """What the switch did to one partition: the version it published (``None`` when dropped), the one it
    superseded (``None`` when the partition is new)."""

    table: str
    values: dict[str, str]
    version: str | None
    superseded: str | None
    rows: int = 0
    files: int = 0
    bytes: int = 0
    deleted: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report entry."""
        return {"table": self.table, **self.values, "version": self.version, "superseded": self.superseded,
                "rows": self.rows, "deleted": self.deleted}


# --- the protocol ------------------------------------------------------------------------------------------------


class Publisher:
    """The protocol for one run: stage (write and verify) versions, publish them, clean up.

    Parameters
    ----------
    spark, storage
        The run's session and its file-system access.
    run_id
        Names the run's version folders.
    codec
        Parquet codec (``write.codec``).
    retention_hours
        ``publish.retention_hours``: how long a superseded folder is kept.
    clock
        Seconds since the epoch (tests move it).
    """

    def __init__(self, spark: SparkSession, storage: Storage, run_id: str, codec: str = "snappy",
                 retention_hours: float = 6.0, clock: Callable[[], float] = time.time) -> None:
        self.spark = spark
        self.storage = storage
        self.run_id = run_id
        self.codec = codec
        self.retention_hours = retention_hours
        self.clock = clock

    # -- stage ---------------------------------------------------------------------------------------------------

    def stage(
        self,
        target: Target,
        df: DataFrame | None,
        expected: Mapping[Key, int],
        *,
        drop: Iterable[Key] = (),
        one_file_per_partition: bool = False,
        checksums: Mapping[Key, Checksum] | None = None,
        max_rows_per_file: int = 0,
        verify: bool = True,
    ) -> Staged:
        """Write the partitions ``expected`` names from ``df`` into a new version, and verify it.

        Parameters
        ----------
        target
            The table.
        df
            Its data columns and partition keys, holding exactly the partitions of ``expected`` (``None`` when
            nothing is written: a run that only drops partitions).
        expected
            Rows each written partition must hold (keys as :meth:`Target.key`); a partition with 0 rows must be in
            ``drop`` instead.
        drop
            Partitions that no longer exist: removed from readers when published.
        one_file_per_partition
            Shuffle by partition first so each gets one file (small tables); otherwise each task writes its rows.
        checksums
            When given, each partition's rows must also match this checksum over every data column.
        max_rows_per_file
            A task starts a new file after this many rows (files sized to a target); ``0``: no limit.
        verify
            ``False``: only write; :meth:`verify` then checks many staged versions in one Spark job (a run writing
            hundreds of tables), and :meth:`publish` refuses a version until it is verified.

        Raises
        ------
        VerificationError
            A partition with other rows than expected, or one the writer did not announce; nothing is published.
        """
        from pyspark.sql import Observation
        from pyspark.sql import functions as F

        t = target.table
        keys = list(t.partition_keys)
        wanted = {tuple(k): int(n) for k, n in expected.items()}
        empty = [k for k, n in wanted.items() if n <= 0]
        if empty:
            raise LakelibError(f"{t.name}: {len(empty)} partition(s) to write with no rows: drop them instead")
        staged = Staged(target, self.run_id, drop=sorted(set(map(tuple, drop)) - set(wanted)))
        if not wanted:
            return staged
        if df is None:
            raise LakelibError(f"{t.name}: {len(wanted)} partition(s) to write and no rows given")
        out = df.select(*t.column_names, *[F.col(k).cast("string").alias(k) for k in keys])
        if one_file_per_partition:
            out = out.repartition(*keys)
        if target.by_path:
            staged.staging = join(target.home, STAGING_DIR, t.name, self.run_id)
            base, by, locate = staged.staging, keys, (lambda k: join(staged.staging, partition_dir(target.values(k))))
        else:
            out = out.withColumn(VERSION_KEY, F.lit(self.run_id))
            base = join(target.home, VERSIONS_DIR, t.name)
            by, locate = keys + [VERSION_KEY], (lambda k: target.version_dir(k, self.run_id))
        written = Observation(f"publish_{t.name}")
        out = out.observe(written, F.count(F.lit(1)).alias("rows"))
        writer = out.write.mode("overwrite").option("partitionOverwriteMode", "dynamic").partitionBy(*by)
        if max_rows_per_file:
            writer = writer.option("maxRecordsPerFile", max_rows_per_file)
        log.info("%s: writing %d partition(s)", target.label, len(wanted))
        if target.fmt == "json":
            writer.option("compression", "gzip").json(base)
        else:
            writer.option("compression", self.codec).parquet(base)
        staged.locations = {k: locate(k) for k in sorted(wanted)}
        fault_point("after_write")
        staged.unverified = (wanted, checksums, int(written.get["rows"]))
        if verify:
            self.verify(staged)
        return staged

    def stage_written(self, target: Target, locations: Mapping[Key, str], expected: Mapping[Key, int]) -> Staged:
        """A version the writer wrote itself (compaction copies files byte for byte), verified like any other."""
        staged = Staged(target, self.run_id, locations={tuple(k): v for k, v in locations.items()})
        staged.unverified = ({tuple(k): int(n) for k, n in expected.items()}, None, None)
        self.verify(staged)
        return staged

    def verify(self, *stages: Staged) -> None:
        """Verify written versions: their rows per partition counted from the files in one Spark job per format.

        Raises
        ------
        VerificationError
            A partition with other rows than expected (the first such version is named); nothing is published.
        """
        pending = [s for s in stages if s.unverified is not None]
        rows: dict[int, dict[Key, int]] = {}
        for fmt in sorted({s.target.fmt for s in pending}):
            same = [(i, s) for i, s in enumerate(pending) if s.target.fmt == fmt]
            counted = self._count(fmt, {(i, k): loc for i, s in same for k, loc in s.locations.items()})
            for (i, key), n in counted.items():
                rows.setdefault(i, {})[key] = n
        for i, staged in enumerate(pending):
            assert staged.unverified is not None
            expected, checksums, written = staged.unverified
            self._check(staged, rows.get(i, {}), expected, checksums, written)
            staged.unverified = None
        fault_point("after_verify")

    def _check(self, staged: Staged, rows: Mapping[Key, int], expected: Mapping[Key, int],
               checksums: Mapping[Key, Checksum] | None, written: int | None) -> None:
        """Compare one version's counted rows (and checksums) with what it must hold."""
        t = staged.target.table
        if written is not None and written != sum(rows.values()):
            raise VerificationError(
                f"{t.name}: {written} row(s) written, {sum(rows.values())} in the {len(rows)} partition(s) the writer "
                f"expects ({sum(expected.values())} expected): the rows hold other partitions; nothing was published")
        for key, files in zip(staged.locations, each(self.storage.data_files, staged.locations.values())):
            staged.files[key], staged.bytes[key] = len(files), sum(f.size for f in files)
            staged.rows[key] = rows.get(key, 0)
        bad = [k for k in sorted(set(expected) | set(staged.rows)) if staged.rows.get(k, 0) != expected.get(k, 0)]
        if bad:
            k = bad[0]
            raise VerificationError(
                f"{t.name} {partition_dir(staged.target.values(k))}: {staged.rows.get(k, 0)} row(s) in the new "
                f"version, {expected.get(k, 0)} expected ({len(bad)} partition(s) differ); nothing was published")
        if checksums:
            from lakelib.checksum import checksums_by
            from lakelib.tables import read_partitions

            parts = [Partition(staged.target.values(k), staged.locations[k]) for k in sorted(checksums)]
            got = checksums_by(read_partitions(self.spark, t, parts, t.column_names), t.partition_keys)
            bad = [k for k, want in sorted(checksums.items()) if got.get(k) != want]
            if bad:
                raise VerificationError(
                    f"{t.name} {partition_dir(staged.target.values(bad[0]))}: the new version's checksum over every "
                    f"column differs from the rows it must hold ({len(bad)} partition(s)); nothing was published")
        log.info("%s: %d partition(s) verified, %d row(s)", staged.target.label, len(staged.locations),
                 sum(staged.rows.values()))

    def count_rows(self, target: Target, locations: Mapping[Key, str]) -> dict[Key, int]:
        """Rows per partition in the given folders, counted from the files in one Spark job (Parquet: footers)."""
        return self._count(target.fmt, locations)

    def _count(self, fmt: str, locations: Mapping[Any, str]) -> dict[Any, int]:
        """Rows per folder of ``locations`` (any key -> folder) of one format, in one Spark job."""
        from pyspark.sql import functions as F

        if not locations:
            return {}
        folder_key = {canonical_location(loc): key for key, loc in locations.items()}
        if fmt == "json":
            df = self.spark.read.text(list(locations.values()))
        else:
            df = self.spark.read.schema("_lakelib_none string").parquet(*locations.values())
        out: dict[Any, int] = {}
        for row in df.groupBy(F.input_file_name().alias("f")).count().collect():
            key = folder_key[_folder(row["f"].rsplit("/", 1)[0])]
            out[key] = out.get(key, 0) + int(row["count"])
        return out

    # -- publish -------------------------------------------------------------------------------------------------

    def publish(self, *stages: Staged, report: RunReport | None = None) -> list[Published]:
        """Switch readers to the staged versions (one catalog batch per table), then clean up.

        Raises
        ------
        PartialRegistrationError
            The catalog refused part way (the report says which partitions are published); a rerun finishes.
        """
        unverified = [s.target.label for s in stages if s.unverified is not None]
        if unverified:
            raise LakelibError(f"{unverified[0]}: a staged version must be verified before it is published")
        done: list[Published] = []
        self._ensure_tables(stages)
        for staged in stages:
            done += self._switch_by_path(staged, report) if staged.target.by_path else self._switch(staged, report)
        fault_point("after_publish")
        fault_point("before_cleanup")
        for staged in stages:
            current = {k: staged.target.default_dir(k) if staged.target.by_path else loc
                       for k, loc in staged.locations.items()}
            current.update({k: None for k in staged.drop})
            deleted = self.cleanup(staged.target, current)
            for p in done:
                if p.table == staged.target.table.name:
                    p.deleted = deleted.get(staged.target.key(p.values), [])
            if staged.staging:
                self.storage.delete(staged.staging)
        if report is not None and stages:
            record_publication(report, done, stages[0].target.table.name)
        return done

    @staticmethod
    def _ensure_tables(stages: Sequence[Staged]) -> None:
        """Every table's definition first (created, columns added or widened), before any partition switches: a
        catalog that refuses a schema (or a table lakelib did not create) stops the run with nothing published."""
        by_catalog: dict[int, tuple[Any, dict[str, tuple[Table, str]]]] = {}
        for staged in stages:
            target = staged.target
            if staged.locations and target.catalog.holds_locations:
                _, items = by_catalog.setdefault(id(target.catalog), (target.catalog, {}))
                items.setdefault(target.table.name, (target.table, target.root))
        for catalog, items in by_catalog.values():
            catalog.ensure_tables(list(items.values()))

    def _switch(self, staged: Staged, report: RunReport | None) -> list[Published]:
        target = staged.target
        t, catalog = target.table, target.catalog
        touched = list(staged.locations) + staged.drop
        if not touched:
            return []
        listed = catalog.list_partitions(t, *sources_and_days(t, [target.values(k) for k in touched]))
        before = {target.key(p.values): canonical_location(p.location) for p in listed}
        done = []
        gone = [k for k in staged.drop if k in before]
        for key in gone:
            self._mark(target, key, before[key], by=f"dropped by {self.run_id}")
        catalog.drop_partitions(t, [target.values(k) for k in gone])
        done += [Published(t.name, target.values(k), None, before[k]) for k in gone]
        replaced = {k: before[k] for k, loc in staged.locations.items() if k in before
                    and not same_location(before[k], loc)}
        for key, old in replaced.items():
            self._mark(target, key, old, by=staged.locations[key])
        self._register(target, staged.locations, [], report)
        now = self.clock()
        for key, old in [(k, before[k]) for k in gone] + list(replaced.items()):
            self._mark(target, key, old, at=now)
        done += [Published(t.name, target.values(k), loc, replaced.get(k), staged.rows.get(k, 0),
                           staged.files.get(k, 0), staged.bytes.get(k, 0)) for k, loc in staged.locations.items()]
        log.info("%s: published %d partition(s) (%d new), dropped %d", t.name, len(staged.locations),
                 sum(k not in before for k in staged.locations), len(gone))
        return done

    def _switch_by_path(self, staged: Staged, report: RunReport | None) -> list[Published]:
        """Readers by path: per partition, the default folder is moved aside, then the new one moved in; a catalog
        that also records locations (Glue with partition projection) then registers the default folders."""
        target, done = staged.target, []
        for key in sorted(set(staged.locations) | set(staged.drop)):
            default = target.default_dir(key)
            aside = None
            if self.storage.exists(default):
                aside = join(target.versions_dir(key), f"{VERSION_KEY}={self.run_id}.replaced")
                self.storage.mkdirs(target.versions_dir(key))
                if not self.storage.rename(default, aside):
                    raise LakelibError(f"could not move {default} aside to {aside}; nothing else was changed")
                self._mark(target, key, aside, by=self.run_id, at=self.clock())
            new = staged.locations.get(key)
            if new is not None:
                self.storage.mkdirs(default.rsplit("/", 1)[0])
                if not self.storage.rename(new, default):
                    raise LakelibError(f"could not move {new} to {default}: the previous version is at {aside}; "
                                       "rerun the job")
            done.append(Published(target.table.name, target.values(key), default if new else None, aside,
                                  staged.rows.get(key, 0), staged.files.get(key, 0), staged.bytes.get(key, 0)))
        log.info("%s: published %d partition(s) by path, removed %d", target.label, len(staged.locations),
                 len(staged.drop))
        if target.catalog.holds_locations:
            self._register(target, {k: target.default_dir(k) for k in staged.locations}, staged.drop, report)
        return done

    def _register(self, target: Target, locations: Mapping[Key, str], drop: Sequence[Key],
                  report: RunReport | None) -> None:
        """Drop ``drop`` from the catalog, then register ``locations`` in one batch; the report says which made it."""
        t, catalog = target.table, target.catalog
        if drop:
            catalog.drop_partitions(t, [target.values(k) for k in drop])
        parts = [Partition(target.values(k), loc) for k, loc in locations.items()]
        if not parts:
            return
        try:
            catalog.register_partitions(t, parts)
        except PartialRegistrationError as exc:
            if report is not None:
                record_registration(report, t.name, exc.registered, exc.not_registered, exc.unknown)
            raise
        if report is not None:
            record_registration(report, t.name, [p.values for p in parts])

    # -- append (a run's own files added to a partition: lake_runs) ------------------------------------------------

    def append(self, target: Target, df: DataFrame, values: Mapping[str, str], name: str) -> str:
        """Add ``df``'s rows to one partition as a new file ``<name>.parquet``, leaving its other files alone.

        The file is written to a staging folder, verified, then moved into the partition's folder (one rename: a
        reader sees the whole file or none of it), and the partition registered if it is new.
        """
        from pyspark.sql import Observation
        from pyspark.sql import functions as F

        key = target.key(values)
        location = target.default_dir(key)
        if not target.by_path:
            target.catalog.ensure_table(target.table, target.root)
            location = target.catalog.partition_location(target.table, target.values(key)) or location
        staging = join(location, f"_staging-{self.run_id}")  # hidden from readers of the partition
        written = Observation(f"append_{target.table.name}")
        df.select(*target.table.column_names).observe(written, F.count(F.lit(1)).alias("rows")).coalesce(1).write \
            .mode("overwrite").option("compression", self.codec).parquet(staging)
        expected = int(written.get["rows"])
        try:
            files = self.storage.data_files(staging)
            counted = sum(self.count_rows(target, {key: staging}).values())
            if len(files) != 1 or counted != expected:
                raise VerificationError(f"{target.table.name}: {len(files)} file(s) with {counted} row(s) staged, "
                                        f"expected one with {expected}")
            dest = join(location, f"{name}.parquet")
            if not self.storage.rename(files[0].path, dest):
                raise LakelibError(f"could not move {files[0].path} to {dest}")
            if not target.by_path:
                target.catalog.register_partitions(target.table, [Partition(target.values(key), location)])
        finally:
            self.storage.delete(staging)
        return dest

    # -- clean up ------------------------------------------------------------------------------------------------

    def cleanup(self, target: Target, current: Mapping[Key, str | None],
                now: float | None = None) -> dict[Key, list[str]]:
        """Delete the superseded folders of these partitions whose retention has passed; returns them by partition.

        ``current`` is where readers find each partition now (``None``: it no longer exists). Every other version
        folder of the partition (and, with a catalog, its default folder when it holds files) is marked the first
        time it is seen and deleted once :attr:`retention_hours` have passed since its marker's time, if its files
        are still the ones the marker lists.
        """
        now = self.clock() if now is None else now
        items = sorted(current.items())
        deleted = dict(zip([k for k, _ in items],
                           each(lambda item: self._cleanup_partition(target, item[0], item[1], now), items)))
        n = sum(len(v) for v in deleted.values())
        if n:
            log.info("%s: deleted %d superseded folder(s)", target.label, n)
        return deleted

    def _cleanup_partition(self, target: Target, key: Key, current: str | None, now: float) -> list[str]:
        storage = self.storage
        roots = [target.versions_dir(key, base) for base in (VERSIONS_DIR, *LEGACY_VERSIONS_DIRS)]
        markers: dict[str, tuple[str, dict[str, Any]]] = {}
        candidates: list[str] = []
        for root in roots:
            for entry in storage.list(join(root, MARKERS_DIR)):
                data = read_json(storage, entry.path) if entry.name.endswith(".json") else None
                if data and data.get("location"):
                    markers[canonical_location(data["location"])] = (entry.path, data)
            candidates += [e.path for e in storage.list(root) if e.is_dir and e.name != MARKERS_DIR]
        default = target.default_dir(key)
        if not target.by_path and storage.data_files(default):
            candidates.append(default)
        for location in candidates:
            if (current is None or not same_location(location, current)) \
                    and canonical_location(location) not in markers:
                markers[canonical_location(location)] = self._mark(target, key, location, by="unreferenced", at=now)
        deleted = []
        for location, (uri, data) in sorted(markers.items()):
            if current is not None and same_location(location, current):
                storage.delete(uri)  # in use again
                continue
            if data.get("superseded_at") is None:
                data["superseded_at"] = now
                write_json(storage, uri, data)
            if now - float(data["superseded_at"]) < self.retention_hours * 3600:
                continue
            files = storage.data_files(location)
            if files and listing(files) != [list(x) for x in data.get("files", [])]:
                log.warning("%s: changed since it was superseded; left alone", location)
                continue
            if files or storage.exists(location):
                _delete_folder(storage, location, default)
                deleted.append(location)
            storage.delete(uri)
        return deleted

    def _mark(self, target: Target, key: Key, location: str, by: str | None = None,
              at: float | None = None) -> tuple[str, dict[str, Any]]:
        """Write (or time) the marker of a superseded folder: its files, what replaced it, since when."""
        uri = marker_uri(target, key, location)
        data = read_json(self.storage, uri) or {
            "location": canonical_location(location), "files": listing(self.storage.data_files(location)),
            "superseded_at": None, "by": by,
        }
        if at is not None and data.get("superseded_at") is None:
            data["superseded_at"] = at
        write_json(self.storage, uri, data)
        return uri, data


# --- helpers -----------------------------------------------------------------------------------------------------


def marker_uri(target: Target, key: Key, location: str) -> str:
    """The marker file of a superseded folder of a partition: ``<versions>/_superseded/<16 hex>.json``."""
    digest = hashlib.sha1(canonical_location(location).encode("utf-8")).hexdigest()[:16]
    return join(target.versions_dir(key), MARKERS_DIR, f"{digest}.json")


def record_publication(report: RunReport, published: Sequence[Published], table: str) -> None:
    """Record on the report, per partition, which version was published and which one it superseded.

    Entries of ``report.partitions`` with the key values of a partition of ``table`` (the run's main table) get
    ``version`` and ``superseded``; ``published`` in the report lists every partition of every table.
    """
    entries = report.extra.setdefault("published", [])
    entries += [p.to_dict() for p in published]
    for p in published:
        if p.table == table:
            for entry in report.partitions:
                if entry.get("table", p.table) == p.table and all(str(entry.get(k)) == v for k, v in p.values.items()):
                    entry["version"], entry["superseded"] = p.version, p.superseded


def _folder(uri: str) -> str:
    """A folder as a comparable key (``input_file_name`` percent-encodes; ``file:/x`` and ``/x`` are the same)."""
    return canonical_location(unquote(uri))


def listing(files: Sequence[FileInfo]) -> list[list[Any]]:
    """A folder's files as ``[name, size]`` pairs, sorted: what a marker or a manifest records of a version."""
    return sorted([f.name, f.size] for f in files)


def read_json(storage: Storage, uri: str) -> dict[str, Any] | None:
    """A small JSON object lakelib wrote (a marker, a manifest); ``None`` when absent or unreadable (logged)."""
    if not storage.exists(uri):
        return None
    try:
        data = json.loads(storage.read_text(uri))
    except FileNotFoundError:  # deleted by another run between the look and the read
        return None
    except ValueError:
        log.warning("ignoring unreadable file %s", uri)
        return None
    return data if isinstance(data, dict) else None


def write_json(storage: Storage, uri: str, data: Mapping[str, Any]) -> None:
    """Write a small JSON object (a marker, a manifest)."""
    storage.write_text(uri, json.dumps(data, indent=1, sort_keys=True) + "\n")


def _delete_folder(storage: Storage, location: str, default: str) -> None:
    """Delete a superseded folder; a default folder loses its data files (and itself once only hidden files remain)."""
    if not same_location(location, default):
        storage.delete(location)
    else:
        for f in storage.data_files(location):
            storage.delete(f.path, recursive=False)
        if all(not e.is_dir for e in storage.list(location)):
            storage.delete(location)
    log.debug("deleted superseded folder %s", location)  # the table's line counts them
