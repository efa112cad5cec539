"""Run a command and measure it: wall-clock seconds and the peak RSS summed over its process tree."""
from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Mapping, Sequence

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass
class Measured:
    """One run of a command."""

    seconds: float
    rss_mb: float
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(name))
    return tree


def tree_rss_bytes(pid: int) -> int:
    """The summed resident set size of ``pid`` and all its descendants, now."""
    tree = _children()
    todo, total = [pid], 0
    while todo:
        p = todo.pop()
        todo += tree.get(p, [])
        try:
            with open(f"/proc/{p}/statm") as handle:
                total += int(handle.read().split()[1]) * _PAGE
        except OSError:
            pass
    return total


def run(cmd: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None,
        interval: float = 0.1) -> Measured:
    """Run ``cmd`` to completion, polling its process tree's RSS every ``interval`` seconds."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    start = time.perf_counter()
    proc = subprocess.Popen(list(cmd), env=full_env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    peak = [0]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_bytes(proc.pid))
            done.wait(interval)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    done.set()
    poller.join()
    return Measured(seconds, peak[0] / 1_048_576, proc.returncode, out, err)


def dir_bytes(path: str, data_only: bool = True) -> int:
    """Bytes of the files under ``path`` (data files only: no ``_``/``.`` names such as ``_SUCCESS``, ``.crc``)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            if data_only and name.startswith(("_", ".")):
                continue
            total += os.path.getsize(os.path.join(root, name))
    return total


def count_files(path: str) -> int:
    """Data files under ``path``."""
    return sum(1 for _r, _d, files in os.walk(path) for n in files if not n.startswith(("_", ".")))
