"""Small state files (markers, registry, locks) under concurrent runs: whole or absent, never half written."""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from lakelib.storage import Storage


def test_a_file_rewritten_while_read_is_always_read_whole_and_leaves_no_temporary_or_checksum_file(spark, tmp_path):
    storage = Storage(spark)
    uri = f"file://{tmp_path}/state/marker.json"
    storage.write_bytes(uri, b"old")  # a file an older lakelib wrote through Hadoop has a .crc beside it
    (tmp_path / "state" / ".marker.json.crc").write_bytes(b"stale")
    bodies = [json.dumps({"n": n, "pad": "x" * 5000 * n}) for n in range(1, 6)]
    storage.write_text(uri, bodies[0])
    stop = threading.Event()
    seen: set[str] = set()

    def read() -> None:
        while not stop.is_set():
            seen.add(storage.read_text(uri))

    with ThreadPoolExecutor(1) as pool:
        reader = pool.submit(read)
        for _ in range(20):
            for body in bodies:
                storage.write_text(uri, body)
        stop.set()
        reader.result()
    assert seen <= set(bodies) and len(seen) > 1
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["marker.json"]


def test_only_one_of_many_writers_creates_a_new_file_and_it_holds_that_writers_whole_text(spark, tmp_path):
    storage = Storage(spark)
    uri = f"file://{tmp_path}/locks/run.lock"
    barrier = threading.Barrier(8)

    def create(n: int) -> bool:
        barrier.wait()
        return storage.create_new(uri, json.dumps({"run_id": n, "pad": "y" * 20000}))

    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(create, range(8)))
    assert won.count(True) == 1
    assert json.loads(storage.read_text(uri))["run_id"] == won.index(True)
    assert [p.name for p in (tmp_path / "locks").iterdir()] == ["run.lock"]


def test_reading_a_missing_file_is_a_file_not_found_error(spark, tmp_path):
    with pytest.raises(FileNotFoundError):
        Storage(spark).read_text(f"file://{tmp_path}/nothing.json")
