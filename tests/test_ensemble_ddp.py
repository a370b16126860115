"""DDP inside a member: batch sharding, a 2-rank gloo run of the real loop, Ray Train's TorchTrainer."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="training needs torch (the train extra)")

from training.config import load_config  # noqa: E402
from training.data.fixtures import write_casia_tree  # noqa: E402
from training.train import CHECKPOINT_NAME, MODEL_NAME, load_trained_model, rank_order  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("casia_ddp")
    write_casia_tree(root, live_subjects=6, attack_subjects=2, frames=2, val_samples=4)
    return root


def ddp_config(root: Path, **overrides):
    config = load_config("cpu_tiny").replace(**{
        "data.root": str(root), "data.val_list": "val_list.txt", "optim.batch_size": 8, "optim.epochs": 1,
        "runtime.progress": False, "model.options.width": 0.0625, "seed": 2, "runtime.threads": 1,
        "runtime.checkpoint_every_steps": 1, "runtime.device": "cpu",
    })
    return config.replace(**overrides) if overrides else config


def test_rank_order_splits_every_global_batch():
    order = list(range(20, 0, -1))
    ranks = [rank_order(order, 8, r, 2) for r in range(2)]
    assert ranks[0][:4] + ranks[1][:4] == order[:8]  # the first global batch, split in two
    assert sorted(ranks[0] + ranks[1]) == sorted(order[:16])  # the last partial batch is dropped
    assert not set(ranks[0]) & set(ranks[1])
    assert rank_order(order, 8, 0, 1) == order


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, config_dict: dict, jobs: list) -> None:
    """Every rank runs the same sequence of train() calls: (out folder, stop_after_steps or None)."""
    import torch.distributed as dist

    from training.config import config_from_dict
    from training.train import train

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        for out, stop_after in jobs:
            train(config_from_dict(config_dict), out, resume=True, stop_after_steps=stop_after, log=lambda s: None)
            if stop_after is not None and rank == 0:
                state = torch.load(Path(out) / CHECKPOINT_NAME, weights_only=True)
                Path(out, "stopped_at.json").write_text(json.dumps([state["epoch"], state["step"], state["steps_per_epoch"]]))
            dist.barrier()
    finally:
        dist.destroy_process_group()


def test_two_rank_ddp_run_trains_and_resumes_mid_epoch(tree, tmp_path):
    """One spawn of 2 gloo ranks: an uninterrupted run, and a run stopped mid-epoch then resumed."""
    import torch.multiprocessing as mp

    config = ddp_config(tree)
    jobs = [(str(tmp_path / "full"), None), (str(tmp_path / "cut"), 1), (str(tmp_path / "cut"), None)]
    mp.spawn(_ddp_worker, args=(2, _free_port(), config.to_dict(), jobs), nprocs=2, join=True)
    # 24 samples, global batch 8 (4 per rank): stopped after step 1 of 3
    assert json.loads((tmp_path / "cut" / "stopped_at.json").read_text()) == [0, 1, 3]
    full = load_trained_model(tmp_path / "full" / MODEL_NAME).state_dict()
    resumed = load_trained_model(tmp_path / "cut" / MODEL_NAME).state_dict()
    for key in full:  # resuming a DDP run lands on the uninterrupted DDP run's weights
        assert torch.allclose(full[key].float(), resumed[key].float(), atol=1e-6), key
    rows = (tmp_path / "full" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2 and "val_acer" in rows[0]  # rank 0 validated and wrote one row
    assert json.loads((tmp_path / "full" / "config.json").read_text())["seed"] == 2


def test_ray_train_torchtrainer_cpu_path(tree, tmp_path):
    """The member DDP path as the paper presets use it on GPU nodes, here with 2 CPU workers (gloo).

    34 s on the shared 2-core VM: small enough for CI."""
    ray = pytest.importorskip("ray", reason="needs ray[train] (the ensemble extra)")
    from training.ensemble.ddp import train_member_ddp
    from training.ensemble.runner import init_ray

    init_ray(num_cpus=2)
    try:
        train_member_ddp(ddp_config(tree), tmp_path / "member", num_workers=2, use_gpu=False)
    finally:
        ray.shutdown()
    assert (tmp_path / "member" / MODEL_NAME).is_file()
    assert load_trained_model(tmp_path / "member" / MODEL_NAME).config.name == "mlfa_resnet18"
