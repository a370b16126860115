"""MLFA liveness networks and the face-recognition backbones they are initialised from."""
from training.models.registry import ModelConfig, create_model, list_models, model_config, register_model
from training.models import mlfa as _mlfa  # noqa: F401  (registers the models)
from training.models.mlfa import BRANCHES, MLFANet, predict_live

__all__ = [
    "BRANCHES",
    "MLFANet",
    "ModelConfig",
    "create_model",
    "list_models",
    "model_config",
    "predict_live",
    "register_model",
]
