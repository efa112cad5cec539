"""One run at a time where two would lose each other's work: a lock file under ``<lake.tables>/_lakelib/``.

``event_tables`` reads its registry of typed tables at the start and writes it at the end; two runs at once would
each save what they saw and lose the other's new tables and columns. The second run waits for the first:

>>> with hold(storage, "s3://lake/tables/_lakelib/event_tables.lock", run_id, log):   # doctest: +SKIP
...     registry = read_registry()   # read after the lock is taken
"""
from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

from lakelib.errors import LockError
from lakelib.progress import elapsed

if TYPE_CHECKING:  # pragma: no cover
    from lakelib.storage import Storage

#: Longest wait for another run's lock, in seconds.
WAIT_SECONDS = 3600.0
#: Seconds between two looks at the lock while waiting.
POLL_SECONDS = 5.0
#: A lock older than this (seconds) was left by a run that died: it is taken over, with a warning.
STALE_SECONDS = 24 * 3600.0


def _holder(storage: Storage, uri: str) -> dict[str, Any]:
    from py4j.protocol import Py4JJavaError

    try:
        return json.loads(storage.read_text(uri))
    except (ValueError, OSError, Py4JJavaError):  # gone between the look and the read
        return {}


@contextmanager
def hold(storage: Storage, uri: str, run_id: str, log: logging.Logger, wait: float | None = None,
         poll: float | None = None, clock: Callable[[], float] = time.time, stale: float | None = None
         ) -> Iterator[None]:
    """Take the lock file ``uri`` for the block, waiting (up to ``wait`` seconds) while another run holds it; a lock
    older than ``stale`` seconds (default :data:`STALE_SECONDS`) was left by a run that died and is taken over.

    Raises
    ------
    LockError
        Still held by another run after the wait: the message names the run and the file to remove if it died.
    """
    wait = WAIT_SECONDS if wait is None else wait
    poll = POLL_SECONDS if poll is None else poll
    stale = STALE_SECONDS if stale is None else stale
    start = time.monotonic()
    said = False
    while not storage.create_new(uri, json.dumps({"run_id": run_id, "since": clock()})):
        holder = _holder(storage, uri)
        age = clock() - float(holder.get("since", clock()))
        if age > stale:
            log.warning("lock %s of run %s is %s old: taken over (that run died)", uri, holder.get("run_id"),
                        elapsed(age))
            storage.delete(uri)
            continue
        waited = time.monotonic() - start
        if waited >= wait:
            raise LockError(f"another run ({holder.get('run_id', 'unknown')}) has held {uri} for {elapsed(age)}: "
                            f"rerun when it has finished, or delete the file if that run died")
        if not said or int(waited) // 30 != int(waited - poll) // 30:
            log.info("waiting for run %s to finish (it holds %s, %s so far)", holder.get("run_id", "unknown"),
                     uri, elapsed(waited))
            said = True
        time.sleep(poll)
    try:
        yield
    finally:
        storage.delete(uri, recursive=False)
