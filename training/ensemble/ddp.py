"""DDP inside one ensemble member through Ray Train's TorchTrainer (the paper presets on GPU nodes).

Every worker runs the ordinary training loop (training.train.train): Ray Train sets up the
process group (NCCL on GPUs, gloo on CPUs), the loop sees it and wraps the model in
DistributedDataParallel, gives each rank its slice of every global batch, and lets rank 0 alone
write checkpoints, metrics and model.pt. Resuming works as for a plain member (all ranks load
rank 0's checkpoint), so a killed DDP member loses nothing either.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


def _worker_loop(loop_config: dict[str, Any]) -> None:
    import ray.train.torch

    from training.config import config_from_dict
    from training.train import train

    device = ray.train.torch.get_device()
    config = config_from_dict(loop_config["config"]).replace(**{
        "runtime.device": str(device), "runtime.multi_gpu": False, "runtime.progress": False,
    })
    train(config, Path(loop_config["out"]), resume=True, log=lambda line: None)


def train_member_ddp(config: Any, out: str | Path, *, num_workers: int, use_gpu: bool, threads: int = 1) -> None:
    """Fit one member with ``num_workers`` DDP ranks (one GPU each when ``use_gpu``)."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    out = Path(out).resolve()
    config = config.replace(**{"runtime.threads": threads})
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={"config": config.to_dict(), "out": str(out)},
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu,
                                     resources_per_worker=None if use_gpu else {"CPU": threads}),
        run_config=RunConfig(name="ddp", storage_path=str(out / "ray_train")),
    )
    trainer.fit()
