"""Building blocks of the two backbone families (written here: torchvision is unusable with this torch).

Module and attribute names follow the public face-model checkpoints the networks are initialised
from (the "caffe" ResNet-34 of the reference solution and the ArcFace IR-50 of face.evoLVe), so a
checkpoint's keys map onto a branch by prefix alone (see training.pretrain).
"""
from __future__ import annotations

import torch
import torch.nn as nn


def scaled(channels: int, width: float) -> int:
    """Channel count under a width multiplier (at least 4 so SE reductions stay >= 1)."""
    return max(4, int(round(channels * width)))


# --- "caffe" ResNet (reference ResNet-34: blocks 1,2,5,3) -----------------------------------
class CaffeBasicBlock(nn.Module):
    """3x3 conv-BN-PReLU twice, then the identity added (PReLU before the sum, as the caffe model)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu2 = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        return out + x


def caffe_stage(in_channels: int, out_channels: int, blocks: int) -> nn.Sequential:
    """Stage = 3x3 conv (no padding) + BN + PReLU + 2x2 max-pool, then ``blocks`` basic blocks.

    Indices 0-3 are the transition, 4.. the blocks: the checkpoint layout ``layerN.<i>.``.
    """
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, 3, padding=0, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.PReLU(out_channels),
        nn.MaxPool2d(2, 2),
    ]
    layers += [CaffeBasicBlock(out_channels) for _ in range(blocks)]
    return nn.Sequential(*layers)


# --- ArcFace IR (IR-50: units 3,4,14,3) -------------------------------------------------------
class IRUnit(nn.Module):
    """Bottleneck-IR unit: BN-conv3x3-PReLU-conv3x3(stride)-BN on the residual path (ArcFace)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if in_channels == out_channels:
            # A 1x1 max-pool with the unit's stride: subsampling without parameters.
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False),
            nn.PReLU(out_channels),
            nn.Conv2d(out_channels, out_channels, 3, stride, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


def ir_stage(in_channels: int, out_channels: int, units: int) -> nn.Sequential:
    """IR stage: first unit halves the resolution, the rest keep it."""
    layers = [IRUnit(in_channels, out_channels, 2)]
    layers += [IRUnit(out_channels, out_channels, 1) for _ in range(units - 1)]
    return nn.Sequential(*layers)


# --- fusion ---------------------------------------------------------------------------------
class SEGate(nn.Module):
    """Squeeze-and-excitation re-weighting of one branch: GAP -> FC -> ReLU -> FC -> sigmoid."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * weights[:, :, None, None]
