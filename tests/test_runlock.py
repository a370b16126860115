"""One writer per run folder: a second process (or thread) writing the same --out is refused."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sdk.errors import RunFolderBusyError
from training.runlock import LOCK_NAME, run_folder_lock

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="advisory flock is POSIX only")

#: A child that holds the folder's lock until its stdin closes.
HOLDER = """
import sys
sys.path.insert(0, {root!r})
from training.runlock import run_folder_lock
with run_folder_lock({folder!r}):
    print("held", flush=True)
    sys.stdin.read()
"""


def hold_in_child(folder: Path) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", HOLDER.format(root=str(ROOT), folder=str(folder))],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def test_another_process_is_refused_with_its_pid_and_the_lock_frees_when_it_dies(tmp_path):
    child = hold_in_child(tmp_path / "run")
    try:
        with pytest.raises(RunFolderBusyError, match=rf"pid {child.pid}\b.*another --out"):
            with run_folder_lock(tmp_path / "run"):
                pass
    finally:
        child.kill()  # a killed writer must not block its own --resume
        child.wait()
    with run_folder_lock(tmp_path / "run"):
        assert (tmp_path / "run" / LOCK_NAME).is_file()


def test_reentrant_in_one_thread_refused_in_another(tmp_path):
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            with run_folder_lock(tmp_path):
                pass
        except BaseException as error:  # noqa: BLE001 - handed to the main thread's assert
            errors.append(error)

    with run_folder_lock(tmp_path):
        with run_folder_lock(tmp_path):  # distill holds it, then train takes it again
            pass
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
    assert len(errors) == 1 and isinstance(errors[0], RunFolderBusyError)
    with run_folder_lock(tmp_path):  # the inner exit did not drop the outer hold's bookkeeping wrongly
        pass


def test_different_folders_do_not_block_each_other(tmp_path):
    child = hold_in_child(tmp_path / "a")
    try:
        with run_folder_lock(tmp_path / "b"):
            pass
    finally:
        child.stdin.close()
        child.wait(timeout=30)
