"""CASIA-SURF challenge lists and a torch Dataset over them.

List formats (both read by ``read_list``):
  * space-separated ``color depth ir [label]`` lines (the 2019 challenge lists), and
  * CSV with the header ``rgb,depth,ir,label`` (the fixture / reference repo style).
Labels are mapped to the project's convention (1 = live, 0 = attack) through ``live_label``:
the 2019 lists use 1 = live, later CASIA lists flip it (live_label=0). A list without labels
gives label -1.

Images go through the ONE preprocessing module: each crop is resized to the 125x125 region
size (``sdk.preprocess.resize_square``; CASIA depth and IR crops differ in size from colour),
then either the training augmentation or the centre crop 112 (``sdk.preprocess.center_crop``),
then ``sdk.preprocess.to_chw3`` (every modality as 3 channels, float32 in [0, 255]).
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from sdk.errors import InputValidationError
from sdk.preprocess import MODALITIES, center_crop, center_crop_crops, resize_square, to_chw3
from sdk.relief import random_sheet
from sdk.types import CROP_SIZE, REGION_SIZE, FaceCrops

#: Column order of a CASIA list line.
LIST_COLUMNS: tuple[str, ...] = ("rgb", "depth", "ir")

_ATTACK_RE = re.compile(r"fake_part/(?P<subject>[^/]+)/0?(?P<type>\d)_[^/]*\.rssdk/")
_REAL_RE = re.compile(r"real_part/(?P<subject>[^/]+)/")


@dataclass(frozen=True)
class Sample:
    """One line of a list: three paths (relative to the data root) and the label (1 live, 0 attack)."""

    rgb: str
    depth: str
    ir: str
    label: int

    @property
    def subject(self) -> str | None:
        """CASIA subject id from a Training path, None for Val/Test paths."""
        match = _ATTACK_RE.search(self.rgb) or _REAL_RE.search(self.rgb)
        return match.group("subject") if match else None

    @property
    def attack_type(self) -> int | None:
        """CASIA attack type (4, 5, 6 in training) from a fake_part path; None for live or unknown."""
        match = _ATTACK_RE.search(self.rgb)
        return int(match.group("type")) if match else None

    def path(self, modality: str) -> str:
        return getattr(self, modality)


def _map_label(raw: str, live_label: int, where: str) -> int:
    try:
        number = float(raw)
    except ValueError:
        raise InputValidationError(f"{where}: label {raw!r} is not a number") from None
    # Compare the float itself: int() would truncate 1.7 to 1 and overflow on inf.
    if number not in (0.0, 1.0):
        raise InputValidationError(f"{where}: label {raw!r} must be 0 or 1")
    return 1 if int(number) == live_label else 0


def read_list(path: str | Path, live_label: int = 1) -> list[Sample]:
    """Read a CASIA list (space-separated or CSV with header rgb,depth,ir,label)."""
    if live_label not in (0, 1):
        raise InputValidationError(f"live_label must be 0 or 1, got {live_label}")
    path = Path(path)
    if not path.is_file():
        raise InputValidationError(f"list file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputValidationError(f"{path}: list file is not UTF-8 text ({error.reason} at byte {error.start})") from None
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    samples: list[Sample] = []
    if lines and "," in lines[0]:
        reader = csv.DictReader(lines)
        missing = {"rgb", "depth", "ir"} - set(reader.fieldnames or ())
        if missing:
            raise InputValidationError(f"{path}: CSV header lacks {sorted(missing)} (want rgb,depth,ir,label)")
        for n, row in enumerate(reader, start=2):
            # DictReader fills the columns a short row lacks with None: refuse it, not a None path.
            empty = [key for key in ("rgb", "depth", "ir") if not row.get(key)]
            if empty:
                raise InputValidationError(f"{path}:{n}: CSV row has no {', '.join(empty)} path")
            label = _map_label(row["label"], live_label, f"{path}:{n}") if row.get("label") not in (None, "") else -1
            samples.append(Sample(row["rgb"], row["depth"], row["ir"], label))
        return samples
    for n, line in enumerate(lines, start=1):
        parts = line.split()
        if len(parts) not in (3, 4):
            raise InputValidationError(f"{path}:{n}: want 'color depth ir [label]', got {len(parts)} fields")
        label = _map_label(parts[3], live_label, f"{path}:{n}") if len(parts) == 4 else -1
        samples.append(Sample(parts[0], parts[1], parts[2], label))
    return samples


def write_list(path: str | Path, samples: Sequence[Sample], live_label: int = 1) -> Path:
    """Write samples as a space-separated challenge list (label written in ``live_label`` polarity)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in samples:
        fields = [s.rgb, s.depth, s.ir]
        if s.label >= 0:
            fields.append(str(live_label if s.label == 1 else 1 - live_label))
        rows.append(" ".join(fields))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def load_modality(path: str | Path, modality: str) -> np.ndarray:
    """A crop from disk: RGB as HxWx3 (RGB order), IR and depth as HxW uint8."""
    flag = cv2.IMREAD_COLOR if modality == "rgb" else cv2.IMREAD_GRAYSCALE
    image = cv2.imread(str(path), flag)
    if image is None:
        raise InputValidationError(f"cannot read image {path}")
    if modality == "rgb":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image


def load_region_crops(root: str | Path, sample: Sample, size: int = REGION_SIZE) -> dict[str, np.ndarray]:
    """The three crops of a sample, each resized to the square region size (125)."""
    root = Path(root)
    return {m: resize_square(load_modality(root / sample.path(m), m), size) for m in MODALITIES}


def load_model_crops(root: str | Path, sample: Sample) -> FaceCrops:
    """A sample's crops exactly as the device's engine takes them (centre 112 of the 125 regions)."""
    region = load_region_crops(root, sample)
    stored = FaceCrops(region["rgb"], region["ir"], region["depth"], float("nan"), 1.0, "stored crops")
    return center_crop_crops(stored)


#: The two cross-modal negatives of ``modality_swap``, drawn with equal odds: the modalities a
#: live sample takes from an attack sample. Relief without skin (a mask's physics: the live
#: depth, the attack's printed colour and NIR) and skin without relief (live colour and NIR on
#: the attack's depth).
SWAPS: tuple[tuple[str, ...], ...] = (("rgb", "ir"), ("depth",))


class CasiaDataset:
    """torch-style Dataset: item -> dict(rgb, ir, depth: 3x112x112 float32 tensors in [0,255], label, index).

    ``augment`` (a training.data.augment.PairedAugment) is applied with one set of random
    parameters to all three modalities; without it the test transform (centre crop) is used.
    Augmentation randomness comes from (seed, epoch, index), so a resumed run sees exactly the
    images an uninterrupted one would.

    ``modality_swap`` (training only, with ``augment``): the share of live samples turned into
    cross-modal negatives (SWAPS) labelled attack, so that a network accepts a face only when
    every modality is live: relief in depth AND skin-like NIR and colour, not either alone.
    The partner attack and the swap come from (seed, epoch, index) too.

    ``relief_negative`` (training only, with ``augment``): the share of the live samples not
    swapped whose depth becomes a relief-free sheet through the face's depth (flat or bent round
    a vertical axis, holes and outline kept; sdk.relief), labelled attack: the live colour and NIR
    with a print's shape, so that a network accepts a face only when its depth has a face's relief.

    ``colour_swap_live`` (training only, with ``augment``): the share of the live samples neither
    swapped nor flattened that take an attack sample's colour crop and stay labelled live: with
    ``modality_swap`` (attack colour and NIR on live depth = attack), NIR is the material cue and
    depth the shape cue, and a print-like colour texture on a live face is no spoof cue.
    """

    def __init__(
        self,
        root: str | Path,
        samples: Sequence[Sample] | str | Path,
        *,
        live_label: int = 1,
        augment: Any = None,
        seed: int = 0,
        crop_size: int = CROP_SIZE,
        modality_swap: float = 0.0,
        relief_negative: float = 0.0,
        colour_swap_live: float = 0.0,
    ) -> None:
        self.root = Path(root)
        self.samples = list(read_list(samples, live_label) if isinstance(samples, (str, Path)) else samples)
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        self.crop_size = crop_size
        if not 0.0 <= modality_swap <= 1.0:
            raise InputValidationError(f"modality_swap must be in [0, 1], got {modality_swap}")
        self.modality_swap = float(modality_swap) if augment is not None else 0.0
        if not 0.0 <= relief_negative <= 1.0:
            raise InputValidationError(f"relief_negative must be in [0, 1], got {relief_negative}")
        self.relief_negative = float(relief_negative) if augment is not None else 0.0
        if not 0.0 <= colour_swap_live <= 1.0:
            raise InputValidationError(f"colour_swap_live must be in [0, 1], got {colour_swap_live}")
        self.colour_swap_live = float(colour_swap_live) if augment is not None else 0.0
        self._attacks = [i for i, s in enumerate(self.samples) if s.label == 0]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], dtype=np.int64)

    def swap_of(self, index: int) -> tuple[int, tuple[str, ...]] | None:
        """(partner attack index, modalities taken from it) when this draw makes a cross-modal negative."""
        drawn = self._attack_partner(index, self.modality_swap, 0x5A4B)
        if drawn is None:
            return None
        partner, rng = drawn
        return partner, SWAPS[int(rng.integers(len(SWAPS)))]

    def colour_partner_of(self, index: int) -> int | None:
        """The attack sample whose colour this live draw takes, staying live (colour_swap_live)."""
        drawn = self._attack_partner(index, self.colour_swap_live, 0xC01F)
        return None if drawn is None else drawn[0]

    def _attack_partner(self, index: int, share: float, salt: int) -> tuple[int, np.random.Generator] | None:
        """For ``share`` of the live draws: a random attack sample (and the generator, for further
        draws), repeatable for (seed, epoch, index); ``salt`` keeps each composite's draws apart."""
        if share <= 0 or self.samples[index].label != 1 or not self._attacks:
            return None
        rng = np.random.default_rng([self.seed, self.epoch, index, salt])
        if rng.random() >= share:
            return None
        return self._attacks[int(rng.integers(len(self._attacks)))], rng

    def crops(self, index: int) -> dict[str, np.ndarray]:
        """The HxW(x3) uint8 crops of one item after the (train or test) transform."""
        return self._crops_and_label(index)[0]

    def _crops_and_label(self, index: int) -> tuple[dict[str, np.ndarray], int, str]:
        sample = self.samples[index]
        region = load_region_crops(self.root, sample)
        if self.augment is None:
            return {m: center_crop(region[m], self.crop_size) for m in MODALITIES}, int(sample.label), ""
        label, swapped = int(sample.label), ""
        swap = self.swap_of(index)
        if swap is not None:
            # Both crops are cut around their face boxes, so the faces of the two line up.
            partner, taken = swap
            other = load_region_crops(self.root, self.samples[partner])
            region = {m: other[m] if m in taken else region[m] for m in MODALITIES}
            label, swapped = 0, "+".join(taken)
        else:
            if self.relief_negative > 0 and label == 1:
                relief_rng = np.random.default_rng([self.seed, self.epoch, index, 0x7E1F])
                if relief_rng.random() < self.relief_negative:
                    region = {**region, "depth": random_sheet(region["depth"], relief_rng)}
                    label, swapped = 0, "relief"
            partner = self.colour_partner_of(index) if not swapped else None
            if partner is not None:
                # Faces line up (both crops are cut around their face boxes); the label stays live.
                region = {**region, "rgb": load_region_crops(self.root, self.samples[partner])["rgb"]}
                swapped = "rgb_live"
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return self.augment(region, rng), label, swapped

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        crops, label, swapped = self._crops_and_label(index)
        item: dict[str, Any] = {m: torch.from_numpy(to_chw3(crops[m])) for m in MODALITIES}
        item["label"] = label
        item["index"] = int(index)
        item["swapped"] = swapped
        return item
