"""Synthetic CASIA-SURF-format dataset: region crops of simulated SR300 frames, with lists.

Layout (as the CASIA-SURF challenge): Training/real_part/<subject>/real.rssdk/{color,depth,ir}/<k>.jpg,
Training/fake_part/<subject>/0<t>_<name>.rssdk/{color,depth,ir}/<k>.jpg, Val/<block>/<id>-{color,depth,ir}.jpg
(and Test/ likewise), list files of `color depth ir label` lines (label 1 = live), a manifest and
a per-row metadata CSV. Subjects (simulator seeds) are partitioned by split, so no identity is
shared between Training, Val and Test.
"""
from __future__ import annotations

import csv
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from sdk.preprocess import PREPROCESS_VERSION
from sdk.sim.holdout import HELD_OUT_ATTACKS, HOLDOUT_FAMILIES, TRAINING_OPTIONS, get_holdout, holdout_subjects
from sdk.sim.scenarios import SCENARIOS

#: Seed ranges per split: subjects never cross splits.
SPLIT_SEED_BASE = {"Training": 1_000_000, "Val": 2_000_000, "Test": 3_000_000, "TestExtra": 4_000_000}
TRAIN_ATTACKS = ("cut_eyes_nose_curved", "cut_eyes_nose_mouth_flat", "cut_eyes_nose_mouth_curved")  # 4, 5, 6
EVAL_ATTACKS = ("cut_eyes_flat", "cut_eyes_curved", "cut_eyes_nose_flat")  # 1, 2, 3
#: Extra test attacks; held-out attack families (sdk.sim.holdout) are never rendered by default.
EXTRA_ATTACKS = tuple(a for a in ("screen_replay", "mask_3d", "print_flat", "print_curved") if a not in HELD_OUT_ATTACKS)
LIST_NAMES = {"Training": "train_list.txt", "Val": "val_list.txt", "Test": "test_list.txt", "TestExtra": "test_extra_list.txt"}
#: Frames k of a subject are taken this many frames apart (different pose, blink state).
FRAME_STRIDE = 7


@dataclass(frozen=True)
class Job:
    split: str  # Training, Val, Test or TestExtra
    scenario: str
    subject: int  # simulator seed
    subject_index: int  # running number inside the split (for paths)
    frames: int
    row_start: int  # first row number of this job inside its split (Val/Test file ids)
    holdout: str | None = None  # the held-out family it belongs to (None: in-distribution)

    def options(self) -> dict:
        """Simulator keyword arguments: outside every held-out family unless it is one."""
        if self.holdout is None:
            return dict(TRAINING_OPTIONS)
        return dict(HOLDOUT_FAMILIES[self.holdout].options)


def plan(live: int, per_attack: int, frames_per_subject: int, seed: int = 0, holdout: str | None = None) -> list[Job]:
    """Jobs for ``live`` live subjects and ``per_attack`` subjects per attack type, per split.

    Counts are subjects x frames; Val and Test get a third of Training's subjects (CASIA-like).
    Every session lies outside all held-out families. With ``holdout`` NAME, only that family
    is rendered, as one Test split of ``live`` live subjects and ``per_attack`` subjects per
    attack scenario of the family (seeds from ``sdk.sim.holdout.holdout_subjects``).
    """
    jobs: list[Job] = []
    k = max(1, int(frames_per_subject))
    if holdout is not None:
        family = get_holdout(holdout)
        counter = rows = 0
        for scenario in family.scenarios():
            n = live if scenario == "live" else per_attack
            for subject in holdout_subjects(family.name, scenario, n, dataset_seed=seed):
                jobs.append(Job("Test", scenario, subject.seed, counter, k, rows, family.name))
                counter += 1
                rows += k
        return jobs
    splits = {
        "Training": (live, per_attack, TRAIN_ATTACKS),
        "Val": (max(1, live // 3), max(1, per_attack // 3), EVAL_ATTACKS),
        "Test": (max(1, live // 3), max(1, per_attack // 3), EVAL_ATTACKS),
        "TestExtra": (0, max(1, per_attack // 3), EXTRA_ATTACKS),
    }
    for split, (n_live, n_attack, attacks) in splits.items():
        base = SPLIT_SEED_BASE[split] + int(seed) * 10_000_000
        counter = 0
        rows = 0
        entries = [("live", n_live)] + [(a, n_attack) for a in attacks]
        for scenario, n in entries:
            for _ in range(n):
                jobs.append(Job(split, scenario, base + counter, counter, k, rows))
                counter += 1
                rows += k
    return jobs


def _subject_name(job: Job) -> str:
    return f"SIM_{job.split[:2].upper()}{job.subject_index:05d}"


def _rel_paths(job: Job, k: int, ext: str) -> dict[str, str]:
    spec = SCENARIOS[job.scenario]
    if job.split == "Training":
        if spec.label == 1:
            folder = f"Training/real_part/{_subject_name(job)}/real.rssdk"
        else:
            tag = f"0{spec.attack_type}" if spec.attack_type else "00"
            folder = f"Training/fake_part/{_subject_name(job)}/{tag}_{job.scenario}.rssdk"
        return {m: f"{folder}/{m}/{k + 1}.{ext}" for m in ("color", "depth", "ir")}
    row = job.row_start + k
    block = f"{row // 1000:04d}"
    top = "Test" if job.split == "TestExtra" else job.split
    prefix = "x" if job.split == "TestExtra" else ""
    return {m: f"{top}/{block}/{prefix}{row:06d}-{m}.{ext}" for m in ("color", "depth", "ir")}


def run_job(args: tuple[Job, str, str]) -> list[dict]:
    """Render one subject's frames and write their crops; returns one metadata row per frame."""
    from sdk.sim.simulator import Simulator

    job, out_dir, ext = args
    out = Path(out_dir)
    sim = Simulator(job.scenario, job.subject, **job.options())
    params = [int(cv2.IMWRITE_JPEG_QUALITY), 95] if ext == "jpg" else [int(cv2.IMWRITE_PNG_COMPRESSION), 1]
    rows = []
    for k in range(job.frames):
        index = k * FRAME_STRIDE
        crops, truth = sim.render_region_crops(index)
        paths = _rel_paths(job, k, ext)
        for modality, image in (("color", cv2.cvtColor(np.asarray(crops.rgb), cv2.COLOR_RGB2BGR)),
                                ("depth", np.asarray(crops.depth)), ("ir", np.asarray(crops.ir))):
            target = out / paths[modality]
            target.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(target), image, params):
                raise OSError(f"could not write {target}")
        spec = SCENARIOS[job.scenario]
        rows.append({
            "split": job.split, "color": paths["color"], "depth": paths["depth"], "ir": paths["ir"],
            "label": spec.label, "scenario": job.scenario, "attack_type": spec.attack_type or "",
            "subject": job.subject, "frame_index": index, "distance_m": round(truth.distance_m, 4),
            "yaw_deg": round(truth.yaw_deg, 2), "content_identity_differs": int(not getattr(sim.scene, "same_identity", True)),
            "holdout": job.holdout or "",
        })
    return rows


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_dataset(out_dir: str | Path, live: int = 100, per_attack: int = 100, frames_per_subject: int = 10,
                  seed: int = 0, workers: int = 1, fmt: str = "jpg", progress: bool = True,
                  holdout: str | None = None) -> dict:
    """Render and write the whole tree; returns the manifest."""
    if fmt not in ("jpg", "png"):
        raise ValueError(f"format must be jpg or png, got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = plan(live, per_attack, frames_per_subject, seed, holdout)
    tasks = [(job, str(out), fmt) for job in jobs]
    total = sum(j.frames for j in jobs)
    rows: list[dict] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="triplet", desc="synth-dataset")

    def consume(results: Iterable[list[dict]]) -> None:
        for part in results:
            rows.extend(part)
            if bar is not None:
                bar.update(len(part))

    if workers > 1:
        import multiprocessing as mp

        ctx = mp.get_context("fork") if hasattr(os, "fork") else mp.get_context()
        with ctx.Pool(workers) as pool:
            consume(pool.imap(run_job, tasks, chunksize=1))
    else:
        consume(map(run_job, tasks))
    if bar is not None:
        bar.close()
    # Lists, metadata and manifest are written last, atomically: a list never names a missing file.
    for split, name in LIST_NAMES.items():
        if holdout is not None and split != "Test":
            continue
        lines = [f"{r['color']} {r['depth']} {r['ir']} {r['label']}" for r in rows if r["split"] == split]
        _atomic_write(out / name, "\n".join(lines) + ("\n" if lines else ""))
    fields = ["split", "color", "depth", "ir", "label", "scenario", "attack_type", "subject", "frame_index",
              "distance_m", "yaw_deg", "content_identity_differs", "holdout"]
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    _atomic_write(out / "metadata.csv", buf.getvalue())
    manifest = {
        "format": "casia-surf-challenge",
        "label_live": 1,
        "preprocess_version": PREPROCESS_VERSION,
        "image_format": fmt,
        "crop": "make_region_crops(true face box) 125x125",
        "seed": seed,
        "frames_per_subject": frames_per_subject,
        "frame_stride": FRAME_STRIDE,
        "holdout": holdout,
        "excluded_holdouts": [] if holdout else list(HOLDOUT_FAMILIES),
        "simulator_options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in
                              (TRAINING_OPTIONS if holdout is None else HOLDOUT_FAMILIES[holdout].options).items()},
        "splits": {},
    }
    for split in LIST_NAMES:
        if holdout is not None and split != "Test":
            continue
        split_rows = [r for r in rows if r["split"] == split]
        split_jobs = [j for j in jobs if j.split == split]
        manifest["splits"][split] = {
            "list": LIST_NAMES[split],
            "triplets": len(split_rows),
            "live": sum(r["label"] == 1 for r in split_rows),
            "attack": sum(r["label"] == 0 for r in split_rows),
            "scenarios": sorted({j.scenario for j in split_jobs}),
            "subject_seeds": [min((j.subject for j in split_jobs), default=None), max((j.subject for j in split_jobs), default=None)],
            "subjects": len(split_jobs),
        }
    _atomic_write(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def iter_list(path: str | Path) -> Iterator[tuple[str, str, str, int]]:
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            c, d, i, label = line.split()
            yield c, d, i, int(label)
