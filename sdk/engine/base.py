"""The Engine interface: a batch of crops in, P(live) out."""
from __future__ import annotations

import abc
from typing import Mapping, Sequence

import numpy as np

from sdk.errors import EngineError, InvalidScoreError
from sdk.preprocess import MODALITIES, crops_to_inputs, hflip_inputs
from sdk.types import CROP_SIZE, FaceCrops
from sdk.validate import check_array


class Engine(abc.ABC):
    """Runs a liveness network. Subclasses implement `_run`; inputs are validated here once."""

    name: str = "engine"

    @abc.abstractmethod
    def _run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Raw network call: {"rgb","ir","depth"} N x 3 x 112 x 112 float32 -> N P(live)."""

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Validated inference. Raises EngineError on a failed run or an invalid output."""
        batch = None
        for modality in MODALITIES:
            if modality not in inputs:
                raise EngineError(f"{self.name}: input {modality!r} is missing")
            array = check_array(f"input {modality}", inputs[modality], shape=(None, 3, CROP_SIZE, CROP_SIZE), dtype=np.float32)
            if batch is None:
                batch = array.shape[0]
            elif array.shape[0] != batch:
                raise EngineError(f"{self.name}: inputs have different batch sizes")
        try:
            scores = np.asarray(self._run(inputs), dtype=np.float64).reshape(-1)
        except EngineError:
            raise
        except Exception as error:  # any runtime failure of the backend becomes one typed error
            raise EngineError(f"{self.name}: inference failed: {error}") from error
        if scores.shape != (batch,):
            raise EngineError(f"{self.name}: expected {batch} scores, got shape {scores.shape}")
        if not np.isfinite(scores).all() or (scores < 0).any() or (scores > 1).any():
            raise InvalidScoreError(f"{self.name}: the model produced scores outside [0, 1] or NaN: {scores}")
        return scores

    def score_crops(self, crops: Sequence[FaceCrops], tta: bool = True) -> np.ndarray:
        """P(live) per FaceCrops; with tta the mean over the crop and its horizontal flip (paper)."""
        inputs = crops_to_inputs(crops)
        if not tta:
            return self.predict(inputs)
        n = len(crops)
        both = {k: np.concatenate([v, hflip_inputs({k: v})[k]]) for k, v in inputs.items()}
        scores = self.predict(both)
        return 0.5 * (scores[:n] + scores[n:])

    def close(self) -> None:
        """Release backend resources (idempotent)."""

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
