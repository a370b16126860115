"""Model registry (timm-style): every network is registered with its default configuration.

``create_model("mlfa_resnet34", se_fusion=True)`` builds a network; ``model_config(name)``
returns the frozen defaults (backbone, blocks, input size, normalisation) a manifest records.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch.nn as nn


@dataclass(frozen=True)
class ModelConfig:
    """Defaults a registered model is built with; options passed to create_model override them."""

    name: str
    backbone: str  # "resnet_caffe" or "ir"
    blocks: tuple[int, ...]
    input_size: int = 112
    #: Normalisation applied inside the network: x -> (x - mean) / std, x in [0, 255].
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (128.0, 128.0, 128.0)
    num_classes: int = 2
    #: Index of the "live" class in the logits.
    live_class: int = 1
    #: Initialisation slots this architecture accepts (see training.pretrain).
    init_slots: tuple[str, ...] = ()
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, tuple[ModelConfig, Callable[..., nn.Module]]] = {}


def register_model(config: ModelConfig) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if config.name in _REGISTRY:
            raise ValueError(f"model {config.name!r} registered twice")
        _REGISTRY[config.name] = (config, fn)
        return fn

    return decorator


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_config(name: str) -> ModelConfig:
    try:
        return _REGISTRY[name][0]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(list_models())}") from None


def create_model(name: str, **options: Any) -> nn.Module:
    """Build a registered model; options (se_fusion, aggregation, modality, width) override defaults."""
    config = model_config(name)
    builder = _REGISTRY[name][1]
    model = builder(config, **options)
    return model
