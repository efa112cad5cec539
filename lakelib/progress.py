"""A line at least every 30 seconds while a long step runs, so a console never goes quiet for minutes.

>>> import logging
>>> with progress(logging.getLogger("job"), "writing typed tables", total=3) as done:   # doctest: +SKIP
...     for table in tables:
...         write(table)
...         done.add()
job: still writing typed tables: 2 of 3 done (1m30s)
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Iterator

#: Longest silence of a job's console during a long step, in seconds.
EVERY_SECONDS = 30.0


class Done:
    """How many of a step's items are finished (threads may add)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        #: How long the step took, once it has ended.
        self.seconds = 0.0

    def add(self, n: int = 1) -> None:
        """Count ``n`` more finished items."""
        with self._lock:
            self.count += n


def elapsed(seconds: float) -> str:
    """Seconds as ``45s``, ``2m05s`` or ``1h02m``.

    >>> elapsed(45.2), elapsed(125), elapsed(3725)
    ('45s', '2m05s', '1h02m')
    """
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


@contextmanager
def progress(logger: logging.Logger, what: str, total: int | None = None,
             every: float | None = None) -> Iterator[Done]:
    """Log ``still <what>: <done> of <total> done (<elapsed>)`` every ``every`` seconds until the block ends.

    Parameters
    ----------
    logger
        The job's logger.
    what
        The step, as a gerund phrase (``writing 503 typed tables``).
    total
        The step's item count, when it has one; the block calls :meth:`Done.add` as items finish.
    every
        Seconds between lines (:data:`EVERY_SECONDS` by default).
    """
    done, stop, start = Done(), threading.Event(), time.monotonic()
    interval = EVERY_SECONDS if every is None else every

    def beat() -> None:
        while not stop.wait(interval):
            counted = f": {done.count} of {total} done" if total is not None else ""
            logger.info("still %s%s (%s)", what, counted, elapsed(time.monotonic() - start))

    thread = threading.Thread(target=beat, name=f"progress: {what}", daemon=True)
    thread.start()
    try:
        yield done
    finally:
        stop.set()
        thread.join()
        done.seconds = time.monotonic() - start
