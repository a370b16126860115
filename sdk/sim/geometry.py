"""Small vector helpers written column by column: numpy's matmul on (N, 3) float32 arrays goes
through BLAS and is 10-30x slower here than three fused multiply-adds per row."""
from __future__ import annotations

import numpy as np


def transform(p: np.ndarray, m: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
    """(..., 3) points -> m @ p + t, float32."""
    m = np.asarray(m, np.float32)
    out = np.empty(p.shape, np.float32)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    for i in range(3):
        col = x * m[i, 0] + y * m[i, 1] + z * m[i, 2]
        if t is not None:
            col += np.float32(t[i])
        out[..., i] = col
    return out


def dot3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot product of (..., 3) arrays (b may be a single 3-vector)."""
    b = np.asarray(b, np.float32) if not isinstance(b, np.ndarray) else b
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]
