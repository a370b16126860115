"""Status of ensemble members, read from their run folders (the files are the truth, not a database).

    pending      nothing trained yet
    running      a worker holds the member (status.json names a live process on this host, or
                 another host: then it is trusted until it says otherwise)
    interrupted  a checkpoint exists but no worker holds it (the driver or worker was killed):
                 the next ``ensemble train`` resumes it from that checkpoint
    failed       the last attempt raised (status.json has the error); retried by the next train
    done         model.pt exists with every epoch trained
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Sequence

STATUS_FILE = "status.json"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_worker_status(folder: Path, state: str, **fields: Any) -> None:
    from training.train import atomic_write_text

    record = {"state": state, "host": socket.gethostname(), "pid": os.getpid(), "time": time.time(), **fields}
    atomic_write_text(folder / STATUS_FILE, json.dumps(record, indent=2) + "\n")


def read_worker_status(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def member_status(run: str | Path, member: Any) -> dict[str, Any]:
    """{"status", "epochs_done", "epochs", "step", "steps_per_epoch", "error"?} of one member."""
    from training.ensemble.plan import member_dir

    folder = member_dir(run, member)
    epochs = member.config.optim.epochs
    info: dict[str, Any] = {"status": "pending", "epochs_done": 0, "epochs": epochs, "step": 0}
    if (folder / "checkpoint.pt").is_file():
        # progress.json is written right after each checkpoint (cheap to read, unlike the checkpoint)
        try:
            progress = json.loads((folder / "progress.json").read_text(encoding="utf-8"))
            info.update(epochs_done=int(progress["epoch"]), step=int(progress["step"]),
                        steps_per_epoch=int(progress["steps_per_epoch"]))
        except (OSError, ValueError, KeyError):
            pass
        info["status"] = "interrupted"
    if (folder / "model.pt").is_file() and info["epochs_done"] >= epochs:
        info["status"] = "done"
        return info
    worker = read_worker_status(folder)
    if worker:
        if worker["state"] == "running":
            alive = worker.get("host") != socket.gethostname() or _pid_alive(int(worker.get("pid", -1)))
            if alive:
                info["status"] = "running"
        elif worker["state"] == "failed":
            info["status"] = "failed"
            info["error"] = worker.get("error")
    return info


def ensemble_status(run: str | Path, members: Sequence[Any] | None = None) -> dict[str, Any]:
    """Every member's status plus counts; also refreshes plan.json."""
    from training.ensemble.plan import load_members, write_plan

    members = list(members) if members is not None else load_members(run)
    rows = []
    counts: dict[str, int] = {}
    for member in members:
        info = member_status(run, member)
        rows.append({**member.row(info["status"]), **{k: v for k, v in info.items() if k != "status"}})
        counts[info["status"]] = counts.get(info["status"], 0) + 1
    write_plan(run, members)
    return {"members": rows, "counts": counts, "total": len(rows)}
