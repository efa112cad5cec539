"""The raw side of the lake: which Segment day folders exist for which sources and days.

Segment's S3 destination writes ``<lake.raw>/<sourceId>/<received-day-epoch-ms>/<file>.gz``. :func:`find_raw_days`
lists what is there (through Hadoop's FileSystem, so ``s3://``, ``s3a://`` and ``file://`` alike) and which requested
days have no folder:

>>> from lakelib.storage import Storage                                      # doctest: +SKIP
>>> days, missing = find_raw_days(Storage(spark), config.lake.raw, ["web"], None)   # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Sequence

from lakelib.paths import day_folder, join, select_days
from lakelib.storage import FileInfo, Storage


@dataclass
class RawDay:
    """One source's raw folder for one received day, and the files in it."""

    source: str
    day: date
    uri: str
    files: list[FileInfo] = field(default_factory=list)

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
    """
    if not sources:
        sources = [f.name for f in storage.list(raw) if f.is_dir and not f.name.startswith(("_", "."))]
    found: list[RawDay] = []
    skipped: list[tuple[str, date]] = []
    for source in sources:
        source_uri = join(raw, source)
        if days is None:  # every day: one recursive listing of the source
            by_folder = _files_by_day_folder(storage.walk_files(source_uri), source)
        else:  # the requested days only: one listing per day, however much history the source has
            by_folder = {}
            for day in days:
                files = [f for f in storage.data_files(join(source_uri, day_folder(day))) if f.size > 0]
                if files:
                    by_folder[day_folder(day)] = files
        selected = {day: name for day, name in select_days(by_folder, days)}
        for day, name in sorted(selected.items()):
            found.append(RawDay(source, day, join(source_uri, name), by_folder[name]))
        if days is not None:
            skipped += [(source, d) for d in days if d not in selected]
    return found, skipped


def _files_by_day_folder(files: Sequence[FileInfo], source: str) -> dict[str, list[FileInfo]]:
    """Group a source's recursive listing by day folder: only ``<source>/<day>/<file>``, no hidden or empty files."""
    by_folder: dict[str, list[FileInfo]] = {}
    for info in files:
        parts = info.path.rstrip("/").split("/")
        if info.name.startswith(("_", ".")) or info.size == 0 or len(parts) < 3 or parts[-3] != source:
            continue
        by_folder.setdefault(parts[-2], []).append(info)
    return by_folder
