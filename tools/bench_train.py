#!/usr/bin/env python3
"""Training throughput (samples/s) per preset on this machine.

Three figures per preset:
  * data:  CASIA-format JPEG loading + resize 125 + paired augmentation + to_chw3, one worker
  * step:  forward + backward + Adam step on random inputs (model compute only)
  * loop:  the real training loop (training.train.train) on a generated CASIA tree, data included

    python tools/bench_train.py                         # cpu_tiny, cpu_small, student_small, paper presets
    python tools/bench_train.py --presets cpu_tiny --steps 10
    python tools/bench_train.py --paper-batch 8         # full-size models at a CPU-sized batch

Output is a markdown table for docs/training.md. Full-size models (paper presets) are only
timed with the model-only step at --paper-batch (a batch of 128 of a 61 M model does not fit a
small CPU box's time budget); say which batch was used when quoting the numbers.
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from training.config import load_config  # noqa: E402
from training.data.augment import PairedAugment  # noqa: E402
from training.data.casia import CasiaDataset  # noqa: E402
from training.data.fixtures import write_casia_tree  # noqa: E402
from training.models import create_model  # noqa: E402
from training.train import make_optimizer, train  # noqa: E402

PAPER = ("paper_resnet34", "paper_ir50")


def bench_data(root: Path, n: int) -> float:
    ds = CasiaDataset(root, root / "train_list.txt", augment=PairedAugment())
    n = min(n, len(ds))
    ds[0]
    start = time.perf_counter()
    for i in range(n):
        ds[i]
    return n / (time.perf_counter() - start)


def bench_step(name: str, options: dict, batch: int, steps: int, device: torch.device) -> float:
    torch.manual_seed(0)
    model = create_model(name, **options).to(device).train()
    optimizer = make_optimizer(model, load_config("cpu_tiny"))
    x = [torch.rand(batch, 3, 112, 112, device=device) * 255 for _ in range(3)]
    y = torch.randint(0, 2, (batch,), device=device)

    def step() -> None:
        loss = F.cross_entropy(model(*x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up (allocations, kernel selection)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def bench_loop(preset: str, root: Path, samples: int, out: Path) -> float:
    config = load_config(preset).replace(**{
        "data.root": str(root), "data.val_list": None, "data.max_train_samples": samples,
        "optim.epochs": 1, "runtime.progress": False, "runtime.threads": torch.get_num_threads(),
    })
    result = train(config, out, log=lambda s: None)
    return float(result.history[-1]["samples_per_s"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="*", default=["cpu_tiny", "cpu_small", "student_small", *PAPER])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--paper-batch", type=int, default=8)
    parser.add_argument("--loop-samples", type=int, default=240)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    machine = (torch.cuda.get_device_name(0) if device.type == "cuda"
               else f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads")
    print(f"machine: {machine}; torch {torch.__version__}\n")
    print("| preset | model | options | batch | step samples/s | loop samples/s | data samples/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "casia"
        write_casia_tree(root, live_subjects=24, attack_subjects=12, frames=4, val_samples=4)
        data_rate = bench_data(root, 60)
        for n, preset in enumerate(args.presets):
            config = load_config(preset)
            paper = preset in PAPER and device.type == "cpu"
            batch = args.paper_batch if paper else config.optim.batch_size
            step_rate = bench_step(config.model.name, dict(config.model.options), batch, args.steps, device)
            loop = "-" if paper else f"{bench_loop(preset, root, args.loop_samples, Path(tmp) / f'run{n}'):.1f}"
            print(f"| {preset} | {config.model.name} | {dict(config.model.options) or '-'} | {batch} | "
                  f"{step_rate:.1f} | {loop} | {data_rate:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
