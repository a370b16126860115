"""Export a trained network to ONNX and package it as a verified model bundle.

The exported graph takes the three crops as raw 0-255 float32 (normalisation is inside the
network) with a dynamic batch, and outputs P(live) directly, so every engine computes exactly
what training evaluated.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from sdk.errors import ModelError
from sdk.preprocess import MODALITIES, crops_to_inputs
from sdk.types import CROP_SIZE, FaceCrops

DEFAULT_OPSET = 17


class LiveProbability(nn.Module):
    """Wraps a 2-class liveness network so that its output is softmax(logits)[:, 1] = P(live)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, rgb: torch.Tensor, ir: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        logits = self.network(rgb, ir, depth)
        return torch.softmax(logits, dim=1)[:, 1]


def export_onnx(
    network: nn.Module,
    path: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    check_crops: Sequence[FaceCrops] | None = None,
    tolerance: float = 1e-4,
) -> dict[str, Any]:
    """Write `network` as ONNX, validate it with onnx.checker, and compare with torch.

    `check_crops` are real crops to compare on (random inputs otherwise); the largest absolute
    difference of P(live) between ONNX Runtime and torch must be <= tolerance. Returns a report.
    """
    import onnx
    import onnxruntime as ort

    if opset < 17:
        raise ModelError(f"opset {opset} is too old: the bundle format needs >= 17")
    wrapper = LiveProbability(network).eval()
    if check_crops:
        inputs_np = crops_to_inputs(check_crops)
    else:
        rng = np.random.default_rng(0)
        inputs_np = {m: rng.uniform(0, 255, (4, 3, CROP_SIZE, CROP_SIZE)).astype(np.float32) for m in MODALITIES}
    example = tuple(torch.from_numpy(inputs_np[m][:2].copy()) for m in MODALITIES)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.with_suffix(".onnx.tmp")
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            example,
            str(temp),
            input_names=list(MODALITIES),
            output_names=["p_live"],
            dynamic_axes={**{m: {0: "batch"} for m in MODALITIES}, "p_live": {0: "batch"}},
            opset_version=opset,
            dynamo=False,  # the TorchScript exporter needs no onnxscript and keeps the graph plain
        )
    model = onnx.load(str(temp))
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(str(temp), providers=["CPUExecutionProvider"])
    onnx_scores = session.run(["p_live"], {m: inputs_np[m] for m in MODALITIES})[0]
    with torch.no_grad():
        torch_scores = wrapper(*(torch.from_numpy(inputs_np[m]) for m in MODALITIES)).numpy()
    max_diff = float(np.abs(onnx_scores - torch_scores).max())
    if not max_diff <= tolerance:
        temp.unlink(missing_ok=True)
        raise ModelError(f"ONNX and torch disagree by {max_diff:.3g} > {tolerance} on the check inputs")
    os.replace(temp, out)
    return {
        "path": str(out),
        "opset": opset,
        "max_abs_diff_vs_torch": max_diff,
        "checked_on": "real crops" if check_crops else "random inputs",
        "n_checked": int(len(onnx_scores)),
        "bytes": out.stat().st_size,
    }


def export_bundle(
    network: nn.Module,
    out_dir: str | os.PathLike[str],
    *,
    name: str,
    version: str,
    operating_points: Mapping[str, Mapping[str, Any]],
    default_operating_point: str,
    metrics: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    check_crops: Sequence[FaceCrops] | None = None,
    opset: int = DEFAULT_OPSET,
):
    """Network -> ONNX -> bundle folder (model.onnx + manifest.json with hashes)."""
    import tempfile

    from sdk.engine.bundle import MANIFEST_NAME, check_operating_points, write_bundle

    # Refuse bad operating points (e.g. a threshold of 0 or 1) before the export does any work;
    # write_bundle validates the whole bundle again and writes it atomically.
    check_operating_points(Path(out_dir) / MANIFEST_NAME, operating_points, default_operating_point)
    with tempfile.TemporaryDirectory() as scratch:
        onnx_path = Path(scratch) / "model.onnx"
        report = export_onnx(network, onnx_path, opset=opset, check_crops=check_crops)
        full_provenance = {**dict(provenance or {}), "export": {k: v for k, v in report.items() if k != "path"}}
        return write_bundle(
            out_dir,
            onnx_path,
            name=name,
            version=version,
            operating_points=operating_points,
            default_operating_point=default_operating_point,
            metrics=metrics,
            provenance=full_provenance,
        )
