"""Tiny CASIA-format trees of JPEGs for tests and smoke runs (until the simulator's exporter is used).

Layout written (the real dataset's):
    Training/real_part/<subject>/real.rssdk/{color,depth,ir}/<k>.jpg
    Training/fake_part/<subject>/0<t>_enm_b.rssdk/{color,depth,ir}/<k>.jpg   (t = 4, 5, 6)
    Val/<block>/<id>-{color,depth,ir}.jpg
plus train_list.txt / val_list.txt (space-separated, label 1 = live unless live_label says
otherwise). Live faces get a rounded depth blob and textured IR, attacks a flat depth plane and
flat IR, so a small network can learn the task in a few steps. Depth and IR crops are written
at other sizes than colour, as in CASIA-SURF.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from training.data.casia import Sample, write_list

ATTACK_FOLDERS = {4: "04_enm_b.rssdk", 5: "05_enm_b.rssdk", 6: "06_enm_b.rssdk"}


def _images(live: bool, rng: np.random.Generator, sizes: tuple[int, int, int]) -> dict[str, np.ndarray]:
    c, d, i = sizes
    yy, xx = np.mgrid[0:c, 0:c].astype(np.float32) / c - 0.5
    base = rng.uniform(90, 170, size=3)
    color = np.clip(base[None, None, :] + rng.normal(0, 12, (c, c, 3)) - 80 * (xx**2 + yy**2)[..., None], 0, 255)
    yd, xd = np.mgrid[0:d, 0:d].astype(np.float32) / d - 0.5
    if live:
        depth = 200 * np.exp(-(xd**2 + yd**2) / 0.05) + rng.normal(0, 4, (d, d))
    else:
        depth = 110 + 30 * xd + rng.normal(0, 4, (d, d))
    yi, xi = np.mgrid[0:i, 0:i].astype(np.float32) / i - 0.5
    ir = (120 + 60 * np.cos(10 * xi) * np.cos(10 * yi) if live else 90 + 0 * xi) + rng.normal(0, 6, (i, i))
    to_u8 = lambda a: np.clip(np.round(a), 0, 255).astype(np.uint8)  # noqa: E731
    return {"color": to_u8(color), "depth": to_u8(depth), "ir": to_u8(ir)}


def _write(root: Path, rel: dict[str, str], images: dict[str, np.ndarray]) -> None:
    for stream, path in rel.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        image = images[stream]
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(target), image, [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise OSError(f"cannot write {target}")


def write_casia_tree(
    root: str | Path,
    *,
    live_subjects: int = 6,
    attack_subjects: int = 6,
    frames: int = 2,
    val_samples: int = 8,
    live_label: int = 1,
    seed: int = 0,
    sizes: tuple[int, int, int] = (125, 110, 100),
) -> tuple[Path, Path]:
    """Write a tiny CASIA-format tree; returns (train_list, val_list) paths (relative entries)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    train: list[Sample] = []
    for s in range(live_subjects):
        subject = f"LIVE_{s:04d}"
        for k in range(1, frames + 1):
            rel = {m: f"Training/real_part/{subject}/real.rssdk/{m}/{k}.jpg" for m in ("color", "depth", "ir")}
            _write(root, rel, _images(True, rng, sizes))
            train.append(Sample(rel["color"], rel["depth"], rel["ir"], 1))
    for s in range(attack_subjects):
        subject = f"FAKE_{s:04d}"
        for attack_type, folder in ATTACK_FOLDERS.items():
            for k in range(1, frames + 1):
                rel = {m: f"Training/fake_part/{subject}/{folder}/{m}/{k}.jpg" for m in ("color", "depth", "ir")}
                _write(root, rel, _images(False, rng, sizes))
                train.append(Sample(rel["color"], rel["depth"], rel["ir"], 0))
    val: list[Sample] = []
    for n in range(val_samples):
        live = n % 2 == 0
        rel = {m: f"Val/{n // 100:04d}/{n:06d}-{m}.jpg" for m in ("color", "depth", "ir")}
        _write(root, rel, _images(live, rng, sizes))
        val.append(Sample(rel["color"], rel["depth"], rel["ir"], 1 if live else 0))
    return write_list(root / "train_list.txt", train, live_label), write_list(root / "val_list.txt", val, live_label)
