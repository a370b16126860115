"""Face-recognition / gender backbones whose checkpoints initialise the MLFA networks.

Key layouts match the public checkpoints the reference solution started from, so such a file
maps without renaming:
  * caffe ResNet-34: conv1, bn1, relu, layer1..layer4 (stage = conv, BN, PReLU, max-pool, blocks)
  * ArcFace IR-50 (face.evoLVe): input_layer, body.0..23, output_layer
Only the convolutional trunk is used by the mapping; the embedding heads serve pretraining.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from training.models.blocks import caffe_stage, ir_stage, scaled

#: Same normalisation as training.models.registry.ModelConfig defaults (mean 127.5, std 128).
PIXEL_MEAN = 127.5
PIXEL_STD = 128.0

FACE_ARCHS: dict[str, tuple[str, tuple[int, ...]]] = {
    "resnet34": ("resnet_caffe", (1, 2, 5, 3)),
    "resnet18": ("resnet_caffe", (1, 2, 2, 2)),
    "ir50": ("ir", (3, 4, 14, 3)),
}


def normalize_pixels(x: torch.Tensor) -> torch.Tensor:
    """Raw [0, 255] pixels -> the range the MLFA networks feed their branches (same constants)."""
    return (x - PIXEL_MEAN) / PIXEL_STD


class FaceResNetCaffe(nn.Module):
    """caffe ResNet trunk (112 -> 512x5x5) + GAP -> Linear -> BN1d embedding."""

    def __init__(self, blocks: tuple[int, ...] = (1, 2, 5, 3), width: float = 1.0, embedding: int = 512) -> None:
        super().__init__()
        c0, c1, c2, c3, c4 = (scaled(c, width) for c in (32, 64, 128, 256, 512))
        self.conv1 = nn.Conv2d(3, c0, 3, padding=0, bias=False)
        self.bn1 = nn.BatchNorm2d(c0)
        self.relu = nn.PReLU(c0)
        self.layer1 = caffe_stage(c0, c1, blocks[0])
        self.layer2 = caffe_stage(c1, c2, blocks[1])
        self.layer3 = caffe_stage(c2, c3, blocks[2])
        self.layer4 = caffe_stage(c3, c4, blocks[3])
        self.fc = nn.Linear(c4, embedding)
        self.bn_embedding = nn.BatchNorm1d(embedding)
        self.embedding_size = embedding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(normalize_pixels(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.bn_embedding(self.fc(x.mean(dim=(2, 3))))


class FaceIR(nn.Module):
    """ArcFace IR trunk (112 -> 512x7x7) + BN-Dropout-Flatten-Linear-BN1d output layer."""

    def __init__(self, blocks: tuple[int, ...] = (3, 4, 14, 3), width: float = 1.0, embedding: int = 512,
                 input_size: int = 112) -> None:
        super().__init__()
        c0, c1, c2, c3, c4 = (scaled(c, width) for c in (64, 64, 128, 256, 512))
        self.input_layer = nn.Sequential(nn.Conv2d(3, c0, 3, 1, 1, bias=False), nn.BatchNorm2d(c0), nn.PReLU(c0))
        units: list[nn.Module] = []
        for cin, cout, n in zip((c0, c1, c2, c3), (c1, c2, c3, c4), blocks):
            units += list(ir_stage(cin, cout, n))
        self.body = nn.Sequential(*units)
        side = input_size // 16
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(c4), nn.Dropout(0.4), nn.Flatten(), nn.Linear(c4 * side * side, embedding),
            nn.BatchNorm1d(embedding),
        )
        self.embedding_size = embedding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_layer(self.body(self.input_layer(normalize_pixels(x))))


def create_face_model(arch: str, width: float = 1.0, embedding: int = 512) -> nn.Module:
    try:
        family, blocks = FACE_ARCHS[arch]
    except KeyError:
        raise KeyError(f"unknown face architecture {arch!r}; known: {sorted(FACE_ARCHS)}") from None
    if family == "resnet_caffe":
        return FaceResNetCaffe(blocks, width, embedding)
    return FaceIR(blocks, width, embedding)
