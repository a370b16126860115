"""Which face to analyse when there are several: the closest one, then the largest.

Policy: every accepted face gets a depth (measured here if the detector did not). The primary
face is the nearest one; faces whose depth lies within ``similar_depth_m`` of the nearest count
as equally near, and among those the largest box wins (the person in front of the camera fills
the frame; a face in a photo on the wall behind is further and smaller). Faces without valid
depth rank after all faces with depth, largest first. The other faces are reported, and those
within ``similar_depth_m`` of the primary are counted as "similar": two people side by side,
which the quality gates can refuse (sdk.quality).
"""
from __future__ import annotations

import math
from sdk.detect.depth import measure_face_depth
from sdk.types import Detection, Detections, FaceSelection, FrameSet

#: Depth difference under which two faces count as equally near (metres).
SIMILAR_DEPTH_M = 0.15


def _depth_key(det: Detection) -> float:
    return det.depth.depth_m if det.depth is not None and det.depth.has_depth else math.inf


def select_face(frames: FrameSet, detections: Detections, similar_depth_m: float = SIMILAR_DEPTH_M) -> FaceSelection:
    """Apply the policy above to ``detections`` of ``frames``."""
    faces = [d if d.depth is not None else Detection(d.box, measure_face_depth(frames, d.box)) for d in detections.accepted]
    if not faces:
        return FaceSelection(None, (), 0, detections.rejected)
    nearest = min(_depth_key(d) for d in faces)
    if math.isfinite(nearest):
        near = [d for d in faces if _depth_key(d) <= nearest + similar_depth_m]
    else:
        near = faces
    primary = max(near, key=lambda d: (d.box.area, d.score))
    others = tuple(sorted((d for d in faces if d is not primary), key=lambda d: (_depth_key(d), -d.box.area)))
    here = _depth_key(primary)
    similar = sum(1 for d in others if not math.isfinite(here) or not math.isfinite(_depth_key(d))
                  or abs(_depth_key(d) - here) <= similar_depth_m)
    return FaceSelection(primary, others, similar, detections.rejected)
