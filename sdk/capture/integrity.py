"""Checks every Source applies to its own FrameSets: what a working SR300 can never deliver.

``Source.__next__`` runs ``StreamIntegrity.check`` on each FrameSet before handing it out, so
the camera, .bag replay, the simulator and any wrapper get the same guard:

* the device, its depth scale or the pixel grid with its intrinsics change mid-stream
  (StreamChangedError): the evidence would mix two cameras, or a depth scale read wrong would
  make every face look too near or too far;
* the clock runs backwards, or leaps ahead, while the frame number advances
  (StreamIntegrityError): timestamps that contradict the frame counter come from a broken
  device or an injector. A restart (frame number AND timestamp back to the start, as when a
  replay loops) is not a fault and starts the checks afresh;
* IR or depth repeats its previous image bit for bit while the frame number advances
  (StreamIntegrityError): both come from one imager with one frame counter, and sensor noise
  makes a repeat impossible for a working sensor. (The frame matcher drops a set whose own IR
  frame was lost instead of filling it with the previous IR image, see SetMatcher, so a dropped
  frame does not look like a frozen sensor.) Colour is not checked: it is matched to depth
  by time and legitimately repeats when its rate is lower than depth's or a colour frame was
  dropped (and synthetic recordings may hold a still colour image). Constant images (a dead or
  covered sensor, an empty room's all-zero depth) are left to the session's MISSING_MODALITY
  handling.

Frames whose number does not advance at all are the session's stuck-stream guard's to judge.
"""
from __future__ import annotations

import numpy as np

from sdk.errors import StreamChangedError, StreamIntegrityError
from sdk.types import FrameSet

#: Bit-identical repeats in a row that make a modality frozen (see above for colour).
FROZEN_AFTER = {"ir": 1, "depth": 1}
_SIGNATURE_NAMES = ("serial", "device name", "depth scale", "grid", "shape", "intrinsics")


def stream_signature(frames: FrameSet) -> tuple[object, ...]:
    """What cannot change between two FrameSets of one stream."""
    return (frames.device.serial, frames.device.name, float(frames.depth_scale), frames.grid,
            frames.shape, frames.intrinsics)


def _same_image(a: np.ndarray, b: np.ndarray) -> bool:
    # a subsample first: different frames differ there, so the full comparison rarely runs
    return a.shape == b.shape and np.array_equal(a[::7, ::7], b[::7, ::7]) and np.array_equal(a, b)


def _constant(a: np.ndarray) -> bool:
    first = a.flat[0] if a.size else 0
    return bool((a[::5, ::5] == first).all()) and bool((a == first).all())


class StreamIntegrity:
    def __init__(self) -> None:
        self.signature: tuple[object, ...] | None = None
        self.previous: FrameSet | None = None
        self.repeats = {name: 0 for name in FROZEN_AFTER}

    def check(self, frames: FrameSet) -> None:
        """Raise StreamChangedError / StreamIntegrityError for a FrameSet no SR300 could send."""
        signature = stream_signature(frames)
        if self.signature is None:
            self.signature = signature
        elif signature != self.signature:
            changed = [(n, a, b) for n, a, b in zip(_SIGNATURE_NAMES, self.signature, signature) if a != b]
            detail = ", ".join(f"{n}: {a!r} -> {b!r}" for n, a, b in changed if n != "intrinsics")
            raise StreamChangedError(f"frame {frames.frame_number}: the stream's "
                                     f"{', '.join(n for n, _, _ in changed)} changed mid-stream ({detail})")
        previous, self.previous = self.previous, frames
        if previous is None:
            return
        steps = int(frames.frame_number) - int(previous.frame_number)
        if steps < 0:  # a restart: numbering (and time) begin again
            self.repeats = {name: 0 for name in FROZEN_AFTER}
            return
        if steps == 0:
            return  # not advancing at all: the session's stuck-stream guard judges that
        elapsed = float(frames.timestamp_ms) - float(previous.timestamp_ms)
        if elapsed < 0:
            raise StreamIntegrityError(f"frame {frames.frame_number}: the clock ran backwards by {-elapsed:.1f} ms "
                                       f"while the frame number advanced by {steps}")
        for name, limit in FROZEN_AFTER.items():
            image = getattr(frames, name)
            if _same_image(image, getattr(previous, name)) and not _constant(image):
                self.repeats[name] += 1
                if self.repeats[name] >= limit:
                    raise StreamIntegrityError(f"frame {frames.frame_number}: the {name} image is frozen "
                                               f"({self.repeats[name]} bit-identical repeat(s) while frames advance)")
            else:
                self.repeats[name] = 0
