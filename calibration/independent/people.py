"""Real people as textured meshes: the 'james' scan as it is, and real photos on fitted geometry.

A photo person is the scan's geometry re-proportioned (width and height of the face) and posed so
that its five keypoints land on the photo's, found by least squares under a scaled-orthographic
camera; every vertex then takes its colour from the photo pixel it projects to. So the geometry
is a real face's, the texture a real person's.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.optimize import least_squares

from calibration.independent.assets import PHOTOS, FacePhoto, load_photo, load_scan


@dataclass(frozen=True)
class Person:
    """A real person's head: mesh in metres (face frame: x right, y up, z out of the face)."""

    name: str
    vertices: np.ndarray  # N x 3
    triangles: np.ndarray  # M x 3
    corner_uv: np.ndarray  # M x 3 x 2, texture coordinates (u right, v up)
    texture: np.ndarray  # H x W x 3 uint8 RGB
    keypoints: np.ndarray  # 5 x 3 (assets.KEYPOINTS)
    #: the picture an attacker prints or replays of this person (a real photo where one exists)
    photo: np.ndarray
    photo_keypoints: np.ndarray  # 5 x 2 pixels in photo
    source: str


def rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """R = Rz(roll) Ry(yaw) Rx(pitch), in the face frame (y up)."""
    y, p, r = np.radians([yaw_deg, pitch_deg, roll_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _photo_projection(params: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Scaled-orthographic projection into an image (rows down) of re-proportioned face points."""
    yaw, pitch, roll, scale, tx, ty, kx, ky = params
    shaped = points * np.array([kx, ky, 1.0])
    turned = shaped @ rotation(yaw, pitch, roll).T
    return np.stack([scale * turned[:, 0] + tx, -scale * turned[:, 1] + ty], axis=1)


def fit_to_photo(keypoints3d: np.ndarray, keypoints2d: np.ndarray) -> np.ndarray:
    """Pose, scale and face proportions that map the scan's keypoints onto the photo's."""
    span = np.linalg.norm(keypoints2d[1] - keypoints2d[0]) / np.linalg.norm(keypoints3d[1] - keypoints3d[0])
    start = np.array([0.0, 0.0, 0.0, span, *keypoints2d[:2].mean(axis=0), 1.0, 1.0])
    start[5] += span * keypoints3d[:2, 1].mean()

    def residual(params: np.ndarray) -> np.ndarray:
        fit = (_photo_projection(params, keypoints3d) - keypoints2d).ravel() / span
        # weak priors: near-frontal photos, proportions within ~15 % of the scan's
        prior = np.array([params[0] / 40.0, params[1] / 40.0, (params[6] - 1) / 0.15, (params[7] - 1) / 0.15]) * 0.002
        return np.concatenate([fit, prior])

    return least_squares(residual, start).x


def _from_scan() -> Person:
    scan = load_scan()
    # the scan's own "photo" is its texture seen from the front: rendered by the caller when needed
    return Person("james", scan.vertices, scan.triangles, scan.corner_uv, scan.texture, scan.keypoints,
                  np.zeros((1, 1, 3), np.uint8), np.zeros((5, 2)),
                  "menpo3d sample 3D face scan 'james' (BSD-3-Clause)")


def _from_photo(photo: FacePhoto) -> Person:
    scan = load_scan()
    params = fit_to_photo(scan.keypoints, photo.keypoints)
    kx, ky = params[6], params[7]
    vertices = scan.vertices * np.array([kx, ky, 1.0])
    uv_px = _photo_projection(np.concatenate([params[:6], [1.0, 1.0]]), vertices)
    h, w = photo.image.shape[:2]
    uv = np.stack([uv_px[:, 0] / w, 1.0 - uv_px[:, 1] / h], axis=1)
    return Person(photo.name, vertices, scan.triangles, uv[scan.triangles], photo.image,
                  scan.keypoints * np.array([kx, ky, 1.0]), photo.image, photo.keypoints, photo.source)


@lru_cache(maxsize=None)
def load_person(name: str) -> Person:
    if name == "james":
        return _from_scan()
    return _from_photo(load_photo(name))


#: Every real person this renderer knows, in a fixed order (person i of a run is PEOPLE[i % 4]).
PEOPLE = ("james",) + PHOTOS
