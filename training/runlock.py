"""One writer per run folder.

Two `train` or `distill` processes given the same --out would interleave checkpoints, metrics and
teacher.onnx.partial and leave a run that neither wrote (it happened once: two distillations
raced into one folder). The writer holds an advisory ``flock`` on ``<run>/.writer.lock``; the
kernel drops it when the process ends, killed or not, so a crashed run never blocks its own
``--resume``. Re-entrant within one thread (distill takes the lock, then calls train), and a second
thread of the same process is refused like another process.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sdk.errors import RunFolderBusyError

try:
    import fcntl
except ImportError:  # not POSIX: no advisory locks, so no guard (the SDK's targets are Linux)
    fcntl = None  # type: ignore[assignment]

#: The lock file inside a run folder; it holds the writer's pid for the error message.
LOCK_NAME = ".writer.lock"

_held_lock = threading.Lock()
#: (run folder, thread id) -> nesting depth of this process's own holds.
_held: dict[tuple[Path, int], int] = {}


def _holder_pid(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


@contextmanager
def run_folder_lock(folder: str | Path) -> Iterator[None]:
    """Hold the run folder ``folder`` (created if missing) for writing, or raise RunFolderBusyError."""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    key = (folder, threading.get_ident())
    with _held_lock:
        if key in _held:
            _held[key] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _held_lock:
                _held[key] -= 1
        return
    if fcntl is None:
        yield
        return
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunFolderBusyError(
            f"{folder} is being written by another process (pid {_holder_pid(path)}); wait for it to "
            "finish or choose another --out") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        with _held_lock:
            _held[key] = 1
        yield
    finally:
        with _held_lock:
            _held.pop(key, None)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
