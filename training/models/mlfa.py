"""MLFA: three modality branches + multi-level feature aggregation (Parkin & Grinchuk 2019).

Layout (design.md section 2), for the caffe ResNet-34 at 112x112:

    branch (rgb, depth, ir):  conv1 32x110x110 -> stage1 64x54x54 -> stage2 128x26x26 -> stage3 256x12x12
    main:  cat(stage3 x3) 768 -> stage4 512x5x5 -> GAP
    agg1:  cat(stage1 x3) 192 -> 1x1 64 + ReLU -> stage (like stage2) 128x26x26
    agg2:  cat(stage2 x3) 384 -> 1x1 128 + ReLU, + agg1 -> stage 256x12x12
    agg3:  cat(stage3 x3) 768 -> 1x1 256 + ReLU, + agg2 -> stage 512x5x5 -> GAP
    logits = Linear(512, 2)(GAP(main) + GAP(agg3));  P(live) = softmax(logits)[:, 1]

Inputs are raw pixel values in [0, 255] (sdk.preprocess.crops_to_inputs); the network
normalises them itself with fixed buffers, so an exported ONNX graph takes the SDK's arrays as is.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from training.models.blocks import CaffeBasicBlock, IRUnit, SEGate, caffe_stage, ir_stage, scaled
from training.models.registry import ModelConfig, register_model

#: Branch order inside the network; forward() takes (rgb, ir, depth) like the SDK's inputs.
BRANCHES: tuple[str, ...] = ("rgb", "depth", "ir")
MODALITY_CHOICES = ("all", "rgb", "ir", "depth")
#: Options added after models were first saved, with the value every older model file was built with.
LATER_OPTION_DEFAULTS: dict[str, Any] = {"stem_stride": 1}


def with_option_defaults(options: dict[str, Any]) -> dict[str, Any]:
    """A saved model's options with the later-added ones filled in as older files were built."""
    return {**LATER_OPTION_DEFAULTS, **options}


class CaffeBranch(nn.Module):
    """Caffe ResNet up to stage 3; attribute names = the face checkpoint's (conv1, bn1, relu, layerN)."""

    def __init__(self, blocks: tuple[int, ...], width: float, stem_stride: int = 1) -> None:
        super().__init__()
        c0, c1, c2, c3 = (scaled(c, width) for c in (32, 64, 128, 256))
        self.conv1 = nn.Conv2d(3, c0, 3, stride=stem_stride, padding=0, bias=False)
        self.bn1 = nn.BatchNorm2d(c0)
        self.relu = nn.PReLU(c0)
        self.layer1 = caffe_stage(c0, c1, blocks[0])
        self.layer2 = caffe_stage(c1, c2, blocks[1])
        self.layer3 = caffe_stage(c2, c3, blocks[2])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        x1 = self.layer1(x)
        x2 = self.layer2(x1)
        return x1, x2, self.layer3(x2)


class IRBranch(nn.Module):
    """ArcFace IR backbone up to stage 3 (input_layer, layer1..3)."""

    def __init__(self, blocks: tuple[int, ...], width: float, stem_stride: int = 1) -> None:
        super().__init__()
        c0, c1, c2, c3 = (scaled(c, width) for c in (64, 64, 128, 256))
        self.input_layer = nn.Sequential(nn.Conv2d(3, c0, 3, stem_stride, 1, bias=False), nn.BatchNorm2d(c0), nn.PReLU(c0))
        self.layer1 = ir_stage(c0, c1, blocks[0])
        self.layer2 = ir_stage(c1, c2, blocks[1])
        self.layer3 = ir_stage(c2, c3, blocks[2])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.input_layer(x)
        x1 = self.layer1(x)
        x2 = self.layer2(x1)
        return x1, x2, self.layer3(x2)


class AggBlock(nn.Module):
    """Concat of one level of the three branches -> 1x1 conv + ReLU (+ previous agg output) -> stage."""

    def __init__(self, in_channels: int, stage: nn.Sequential) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(3 * in_channels, in_channels, 1)
        self.stage = stage

    def forward(self, features: list[torch.Tensor], previous: torch.Tensor | None) -> torch.Tensor:
        x = torch.relu(self.reduce(torch.cat(features, dim=1)))
        if previous is not None:
            x = x + previous
        return self.stage(x)


class MLFANet(nn.Module):
    """Three-branch liveness network; forward(rgb, ir, depth) -> logits N x 2 (class 1 = live)."""

    def __init__(
        self,
        config: ModelConfig,
        *,
        se_fusion: bool = False,
        aggregation: bool = True,
        modality: str = "all",
        width: float = 1.0,
        se_reduction: int = 16,
        stem_stride: int = LATER_OPTION_DEFAULTS["stem_stride"],
    ) -> None:
        super().__init__()
        if modality not in MODALITY_CHOICES:
            raise ValueError(f"modality must be one of {MODALITY_CHOICES}, got {modality!r}")
        if not 0.0 < width <= 4.0:
            raise ValueError(f"width must lie in (0, 4], got {width}")
        # The stem's stride: 2 halves every later feature map, so ~4x fewer FLOPs and a face
        # checkpoint (trained at stride 1) no longer matches its receptive fields; students only.
        stem_stride = int(stem_stride)
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride}")
        self.config = config
        self.options = dict(
            se_fusion=bool(se_fusion), aggregation=bool(aggregation), modality=modality, width=float(width),
            se_reduction=int(se_reduction), stem_stride=stem_stride,
        )
        self.modality = modality
        blocks = config.blocks
        c1, c2, c3, c4 = (scaled(c, width) for c in (64, 128, 256, 512))
        if config.backbone == "resnet_caffe":
            branch = lambda: CaffeBranch(blocks, width, stem_stride)  # noqa: E731
            stage = caffe_stage
        elif config.backbone == "ir":
            branch = lambda: IRBranch(blocks, width, stem_stride)  # noqa: E731
            stage = ir_stage
        else:
            raise ValueError(f"unknown backbone {config.backbone!r}")
        self.branches = nn.ModuleDict({name: branch() for name in BRANCHES})
        self.se = nn.ModuleDict({name: SEGate(c3, se_reduction) for name in BRANCHES}) if se_fusion else None
        self.layer4 = stage(3 * c3, c4, blocks[3])
        if aggregation:
            self.agg1: AggBlock | None = AggBlock(c1, stage(c1, c2, blocks[1]))
            self.agg2: AggBlock | None = AggBlock(c2, stage(c2, c3, blocks[2]))
            self.agg3: AggBlock | None = AggBlock(c3, stage(c3, c4, blocks[3]))
        else:
            self.agg1 = self.agg2 = self.agg3 = None
        self.fc = nn.Linear(c4, config.num_classes)
        self.register_buffer("pixel_mean", torch.tensor(config.mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(config.std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Residual branches start near zero so a deep random network trains from scratch too.
        for m in self.modules():
            if isinstance(m, CaffeBasicBlock):
                nn.init.zeros_(m.bn2.weight)
            elif isinstance(m, IRUnit):
                nn.init.zeros_(m.res_layer[4].weight)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.pixel_mean) / self.pixel_std

    def features(self, rgb: torch.Tensor, ir: torch.Tensor, depth: torch.Tensor) -> dict[str, Any]:
        """Every intermediate output (per-branch stage outputs, main, agg levels, pooled feature)."""
        inputs = {"rgb": rgb, "ir": ir, "depth": depth}
        if self.modality != "all":
            # Modality ablation: one modality feeds all three branches (the paper's table).
            inputs = {name: inputs[self.modality] for name in BRANCHES}
        levels: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {
            name: self.branches[name](self.normalize(inputs[name])) for name in BRANCHES
        }
        stage1 = [levels[n][0] for n in BRANCHES]
        stage2 = [levels[n][1] for n in BRANCHES]
        stage3 = [levels[n][2] for n in BRANCHES]
        if self.se is not None:
            stage3 = [self.se[n](x) for n, x in zip(BRANCHES, stage3)]
        out: dict[str, Any] = {"branches": levels, "stage3_fused": stage3}
        main = self.layer4(torch.cat(stage3, dim=1))
        out["main"] = main
        pooled = main.mean(dim=(2, 3))
        if self.agg1 is not None and self.agg2 is not None and self.agg3 is not None:
            a1 = self.agg1(stage1, None)
            a2 = self.agg2(stage2, a1)
            a3 = self.agg3(stage3, a2)
            out.update(agg1=a1, agg2=a2, agg3=a3)
            pooled = pooled + a3.mean(dim=(2, 3))
        out["pooled"] = pooled
        return out

    def forward(self, rgb: torch.Tensor, ir: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(rgb, ir, depth)["pooled"])

    @torch.no_grad()
    def predict_live(self, rgb: torch.Tensor, ir: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """P(live) = softmax(logits)[:, live_class] (no grad; caller chooses train/eval mode)."""
        return torch.softmax(self.forward(rgb, ir, depth).float(), dim=1)[:, self.config.live_class]


def predict_live(model: nn.Module, rgb: torch.Tensor, ir: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """P(live) of any registered model (also a DataParallel-wrapped one)."""
    inner = getattr(model, "module", model)
    with torch.no_grad():
        logits = model(rgb, ir, depth)
    return torch.softmax(logits.float(), dim=1)[:, inner.config.live_class]


FACE_SLOTS_RESNET = ("resnet34-face", "resnet34-gender")
FACE_SLOTS_IR = ("ir50-face", "ir50-face-asian")


@register_model(
    ModelConfig(
        name="mlfa_resnet34",
        backbone="resnet_caffe",
        blocks=(1, 2, 5, 3),
        init_slots=FACE_SLOTS_RESNET,
        description="MLFA on the caffe ResNet-34 (reference solution, ~61 M parameters)",
    )
)
def mlfa_resnet34(config: ModelConfig, **options: Any) -> MLFANet:
    return MLFANet(config, **options)


@register_model(
    ModelConfig(
        name="mlfa_resnet18",
        backbone="resnet_caffe",
        blocks=(1, 2, 2, 2),
        description="MLFA on a shallower caffe ResNet (blocks 1,2,2,2) for students and quick runs",
    )
)
def mlfa_resnet18(config: ModelConfig, **options: Any) -> MLFANet:
    return MLFANet(config, **options)


@register_model(
    ModelConfig(
        name="mlfa_ir50",
        backbone="ir",
        blocks=(3, 4, 14, 3),
        init_slots=FACE_SLOTS_IR,
        description="MLFA on the ArcFace IR-50 (~99 M parameters)",
    )
)
def mlfa_ir50(config: ModelConfig, **options: Any) -> MLFANet:
    return MLFANet(config, **options)
