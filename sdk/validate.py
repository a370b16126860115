"""The one helper that checks shapes, dtypes and numbers at package boundaries.

Stages call these on what enters them from outside (a user array, a file, a device buffer);
inside the pipeline the frozen types in sdk.types already guarantee the contract.
"""
from __future__ import annotations

import json
import math
import numbers
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sdk.errors import InputValidationError


def check_array(
    name: str,
    value: object,
    *,
    shape: Sequence[int | None] | None = None,
    dtype: type | np.dtype | Sequence[type | np.dtype] | None = None,
    finite: bool = False,
) -> np.ndarray:
    """Raise InputValidationError unless ``value`` is an ndarray of this shape and dtype.

    ``shape`` entries of None (or -1) match any length. Returns the array unchanged.
    """
    if not isinstance(value, np.ndarray):
        raise InputValidationError(f"{name} must be a numpy array, got {type(value).__name__}")
    if shape is not None:
        ok = value.ndim == len(shape) and all(
            want is None or want < 0 or have == want for have, want in zip(value.shape, shape)
        )
        if not ok:
            wanted = "x".join("?" if s is None or s < 0 else str(s) for s in shape)
            raise InputValidationError(f"{name} must have shape {wanted}, got {'x'.join(map(str, value.shape))}")
    if dtype is not None:
        allowed = tuple(np.dtype(d) for d in (dtype if isinstance(dtype, (list, tuple)) else [dtype]))
        if value.dtype not in allowed:
            raise InputValidationError(
                f"{name} must have dtype {' or '.join(str(d) for d in allowed)}, got {value.dtype}"
            )
    if finite and value.dtype.kind == "f" and not np.isfinite(value).all():
        raise InputValidationError(f"{name} contains NaN or infinite values")
    return value


def check_finite(name: str, value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputValidationError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InputValidationError(f"{name} must be finite, got {value!r}")
    return number


def check_positive(name: str, value: object) -> float:
    number = check_finite(name, value)
    if number <= 0:
        raise InputValidationError(f"{name} must be > 0, got {value!r}")
    return number


def check_real(name: str, value: object) -> float:
    """A finite real number (Python or numpy), returned as float. Unlike check_finite, a string,
    a bool or None is refused: a field typed as a number must hold one, not its text."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InputValidationError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    return check_finite(name, value)


def check_integer(name: str, value: object) -> int:
    """An integer (Python or numpy, or a float with no fractional part), returned as int."""
    if isinstance(value, (bool, np.bool_)):
        raise InputValidationError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = check_finite(name, value)
        if number.is_integer():
            return int(number)
    raise InputValidationError(f"{name} must be an integer, got {type(value).__name__} {value!r}")


def read_json_in_folder(folder: Path, name: str, error: type[Exception], what: str, hint: str = "") -> Any:
    """The JSON document ``folder/name``; ``error`` (a typed error) when the folder or the file is
    missing or the file is not readable JSON. ``what`` names the folder in messages ("model
    bundle", "suite"); ``hint`` is appended when the file is missing."""
    path = folder / name
    if not folder.is_dir():
        raise error(f"{folder}: {what} folder does not exist")
    if not path.is_file():
        raise error(f"{folder}: no {name} in the {what}{hint}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path}: unreadable ({exc})") from None
