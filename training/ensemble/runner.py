"""Train every ensemble member that is not done yet, each as a Ray task with its own resources.

``ray.init()`` starts a local cluster on this machine by default (nothing to set up); with
``address`` the driver joins an existing cluster (every node must see RUN at the same path, e.g.
a shared file system, and have this package installed). Each member is one task: ``num_gpus=1``
when the cluster has GPUs, else ``cpus_per_member`` CPUs (that many torch threads). Members of
presets that ask for several DDP workers (``ddp_workers`` > 1) run through Ray Train's
TorchTrainer instead, one member at a time (training.ensemble.ddp).

Nothing is lost when the driver dies: members write checkpoints inside epochs
(``runtime.checkpoint_every_steps``) and every run of ``ensemble train`` skips members that are
done and resumes the others from their checkpoints.
"""
from __future__ import annotations

import os
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from sdk.errors import InputValidationError
from training.ensemble.plan import Member, load_members, member_dir, sha256_file, write_plan
from training.ensemble.status import member_status, write_worker_status

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Checkpoint this often inside an epoch unless the member's config says otherwise.
DEFAULT_CHECKPOINT_EVERY = 20
START_ATTEMPTS = 3


def _match_priority(niceness: int | None) -> None:
    """Ray starts workers at niceness 15 (to keep its own daemons responsive); on a machine shared
    with other jobs that starves the training, so a member runs at the driver's priority."""
    if niceness is None:
        return
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) > niceness:
            os.setpriority(os.PRIO_PROCESS, 0, niceness)
    except (OSError, AttributeError):  # not allowed to raise it back (unprivileged user), or no such call
        pass


def run_member(run: str, name: str, threads: int, device: str | None = None, niceness: int | None = None) -> dict[str, Any]:
    """Train (or resume) one member in this process; never raises (the error goes into status.json)."""
    from training.train import MODEL_NAME, train

    _match_priority(niceness)

    run_path = Path(run)
    member = next(m for m in load_members(run_path) if m.name == name)
    folder = member_dir(run_path, member)
    overrides: dict[str, Any] = {"runtime.progress": False}
    if threads > 0:
        overrides["runtime.threads"] = threads
    if device:
        overrides["runtime.device"] = device
    if member.config.runtime.checkpoint_every_steps == 0:
        overrides["runtime.checkpoint_every_steps"] = DEFAULT_CHECKPOINT_EVERY
    config = member.config.replace(**overrides)
    write_worker_status(folder, "running")
    started = time.perf_counter()
    log_path = folder / "train.log"
    try:
        with open(log_path, "a", encoding="utf-8") as log_file:
            def log(line: str) -> None:
                log_file.write(line + "\n")
                log_file.flush()

            result = train(config, folder, resume=True, log=log)
        model_sha = sha256_file(folder / MODEL_NAME)
        record = {"name": name, "state": "done", "epochs": result.epochs_done, "seconds": round(time.perf_counter() - started, 1),
                  "model_sha256": model_sha}
        write_worker_status(folder, "done", epochs=result.epochs_done, model_sha256=model_sha,
                            seconds=record["seconds"])
        return record
    except BaseException as error:  # noqa: BLE001 - recorded, reported by the driver
        message = f"{type(error).__name__}: {error}"
        write_worker_status(folder, "failed", error=message, traceback=traceback.format_exc()[-4000:])
        return {"name": name, "state": "failed", "error": message}


def run_member_ddp(run: Path, member: Member, *, use_gpu: bool, threads: int) -> dict[str, Any]:
    """One member with runtime.ddp_workers DDP ranks through Ray Train; never raises."""
    from training.ensemble.ddp import train_member_ddp
    from training.train import MODEL_NAME

    folder = member_dir(run, member)
    config = member.config
    if config.runtime.checkpoint_every_steps == 0:
        config = config.replace(**{"runtime.checkpoint_every_steps": DEFAULT_CHECKPOINT_EVERY})
    write_worker_status(folder, "running", ddp_workers=config.runtime.ddp_workers)
    started = time.perf_counter()
    try:
        train_member_ddp(config, folder, num_workers=config.runtime.ddp_workers, use_gpu=use_gpu, threads=threads)
        if not (folder / MODEL_NAME).is_file():
            raise RuntimeError("the DDP run ended without model.pt")
        seconds = round(time.perf_counter() - started, 1)
        model_sha = sha256_file(folder / MODEL_NAME)
        write_worker_status(folder, "done", model_sha256=model_sha, seconds=seconds)
        return {"name": member.name, "state": "done", "seconds": seconds, "model_sha256": model_sha}
    except BaseException as error:  # noqa: BLE001 - recorded, reported by the driver
        message = f"{type(error).__name__}: {error}"
        write_worker_status(folder, "failed", error=message, traceback=traceback.format_exc()[-4000:])
        return {"name": member.name, "state": "failed", "error": message}


def init_ray(address: str | None = None, num_cpus: int | None = None, quiet: bool = True) -> Any:
    """Join ``address`` or start a light local cluster (no dashboard, small object store)."""
    import ray

    if ray.is_initialized():
        return ray
    # Workers must import THIS checkout's training package (an editable install may point elsewhere).
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": not quiet, "configure_logging": not quiet,
                              "runtime_env": {"env_vars": env}}
    if quiet:
        import logging

        kwargs["logging_level"] = logging.WARNING
    if address:
        ray.init(address=address, **kwargs)
        return ray
    # Ray starts its workers at niceness 15; on a shared machine that starves them (see
    # _match_priority): a local cluster's workers start at the driver's niceness instead.
    if hasattr(os, "getpriority"):
        os.environ.setdefault("RAY_worker_niceness", str(os.getpriority(os.PRIO_PROCESS, 0)))
    # Ray gives its raylet a fixed 30 s to register; on a machine loaded by other jobs that can
    # pass, so a local start is tried a few times before giving up.
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, object_store_memory=96 * 1024 * 1024, **kwargs)
            return ray
        except Exception as error:  # noqa: BLE001 - Ray raises a bare Exception for this
            ray.shutdown()
            if attempt == START_ATTEMPTS or "timed out during startup" not in str(error):
                raise
            time.sleep(2.0 * attempt)
    return ray


def train_ensemble(
    run: str | Path,
    *,
    address: str | None = None,
    max_parallel: int | None = None,
    num_cpus: int | None = None,
    cpus_per_member: int = 1,
    only: list[str] | None = None,
    wait_held_s: float = 60.0,
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the members of RUN that are not done; returns {"trained", "skipped", "failed", ...}."""
    from tqdm import tqdm

    run = Path(run).resolve()
    members = load_members(run)
    if only:
        unknown = set(only) - {m.name for m in members}
        if unknown:
            raise InputValidationError(f"unknown member(s): {sorted(unknown)}")
        members = [m for m in members if m.name in only]
    if max_parallel is not None and max_parallel < 1:
        raise InputValidationError("--max-parallel must be >= 1")
    todo: list[Member] = []
    skipped: dict[str, str] = {}
    statuses = {m.name: member_status(run, m)["status"] for m in members}
    # A member held by a live process on this host is usually a worker of a driver that was just
    # killed (Ray ends those within seconds): wait for it a little before calling it held.
    deadline = time.monotonic() + wait_held_s
    while any(s == "running" for s in statuses.values()) and time.monotonic() < deadline:
        time.sleep(1.0)
        statuses = {m.name: member_status(run, m)["status"] for m in members}
    for member in members:
        status = statuses[member.name]
        if status in ("done", "running"):
            skipped[member.name] = status
        else:
            todo.append(member)
    summary: dict[str, Any] = {"trained": [], "failed": {}, "skipped": skipped, "seconds": 0.0}
    for name, status in skipped.items():
        if status == "running":
            log(f"{name}: held by another worker (status.json names a live process): not started again")
    if not todo:
        write_plan(run, load_members(run))
        return summary
    started = time.perf_counter()
    ray = init_ray(address, num_cpus)
    gpus = float(ray.cluster_resources().get("GPU", 0))
    options: dict[str, Any] = {"num_gpus": 1, "num_cpus": cpus_per_member} if gpus >= 1 else {"num_cpus": cpus_per_member}
    threads = cpus_per_member
    # Members that ask for DDP run one at a time through Ray Train (each takes ddp_workers devices).
    for member in [m for m in todo if m.config.runtime.ddp_workers > 1]:
        todo.remove(member)
        record = run_member_ddp(run, member, use_gpu=gpus >= 1, threads=threads)
        if record["state"] == "done":
            summary["trained"].append(member.name)
            log(f"{member.name}: done with {member.config.runtime.ddp_workers} DDP workers in {record['seconds']} s")
        else:
            summary["failed"][member.name] = record["error"]
            log(f"{member.name}: FAILED {record['error']}")
        write_plan(run, load_members(run))
    if not todo:
        summary["seconds"] = round(time.perf_counter() - started, 1)
        return summary
    limit = max_parallel or len(todo)
    driver_niceness = os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else None
    remote = ray.remote(max_retries=1)(run_member)
    pending = list(todo)
    in_flight: dict[Any, str] = {}
    bar = tqdm(total=len(todo), desc="ensemble members", disable=not progress, dynamic_ncols=True)
    try:
        while pending or in_flight:
            while pending and len(in_flight) < limit:
                member = pending.pop(0)
                ref = remote.options(**options, name=f"member:{member.name}").remote(str(run), member.name, threads,
                                                                                    None, driver_niceness)
                in_flight[ref] = member.name
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                name = in_flight.pop(ref)
                try:
                    record = ray.get(ref)
                except Exception as error:  # the worker process died (OOM, node lost)
                    record = {"name": name, "state": "failed", "error": f"{type(error).__name__}: {error}"}
                if record["state"] == "done":
                    summary["trained"].append(name)
                    log(f"{name}: done in {record['seconds']} s")
                else:
                    summary["failed"][name] = record["error"]
                    log(f"{name}: FAILED {record['error']}")
                bar.update(1)
                write_plan(run, load_members(run))
    finally:
        bar.close()
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return summary


def shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
