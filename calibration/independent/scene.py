"""Scenes of real people and of attacks made from their pictures, rendered as SR300 FrameSets.

A scene is (kind, person, seed): the seed draws the room, light, distance, pose and motion; frame
i is a pure function of the scene and i. Kinds: ``live`` (the person's head, neck and shoulders),
``print_flat`` / ``print_curved`` (a life-size print of the person's photo held in front of the
camera), ``phone_replay`` / ``tablet_replay`` (the photo shown on a screen).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from calibration.independent import sensor
from calibration.independent.people import Person, load_person, rotation
from calibration.independent.raster import Camera, Raster, rasterize, vertex_normals
from sdk.errors import InputValidationError
from sdk.types import SR300_NAME, DeviceInfo, FrameSet, Intrinsics, Stream, StreamIntrinsics

KINDS = ("live", "print_flat", "print_curved", "phone_replay", "tablet_replay")
ATTACK_KINDS = KINDS[1:]
WIDTH, HEIGHT = 640, 480
#: SR300-like depth imager intrinsics (colour is delivered registered to this grid).
INTRINSICS = Intrinsics(WIDTH, HEIGHT, 476.0, 476.0, 314.2, 245.8)
CAMERA = Camera(WIDTH, HEIGHT, INTRINSICS.fx, INTRINSICS.fy, INTRINSICS.ppx, INTRINSICS.ppy)
FPS = 30


@dataclass
class Surface:
    """A mesh in camera space with its look: texture by corner UV, and a material name."""

    vertices: np.ndarray
    triangles: np.ndarray
    corner_uv: np.ndarray
    texture: np.ndarray  # uint8 RGB
    material: str  # skin, cloth, wall, print, screen, bezel
    nir: float = 0.5  # NIR albedo for cloth, wall and bezel
    two_sided: bool = False


def _grid(nx: int, ny: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A (nx+1) x (ny+1) vertex grid on [0,1]^2: (uv N x 2, triangles, corner uv)."""
    u, v = np.meshgrid(np.linspace(0, 1, nx + 1), np.linspace(0, 1, ny + 1))
    uv = np.stack([u.ravel(), v.ravel()], axis=1)
    idx = np.arange((nx + 1) * (ny + 1)).reshape(ny + 1, nx + 1)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    tris = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    return uv, tris, uv[tris]


def _ellipsoid(centre: np.ndarray, axes: np.ndarray, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    uv, tris, _ = _grid(n, n // 2)
    theta, phi = uv[:, 0] * 2 * np.pi, uv[:, 1] * np.pi
    points = np.stack([np.sin(phi) * np.cos(theta), np.cos(phi), np.sin(phi) * np.sin(theta)], axis=1)
    return centre + points * axes, tris


def _to_camera(points: np.ndarray, pose: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Face-frame points (y up, z out of the face) -> camera frame (y down, z away from the camera)."""
    turned = points @ pose.T
    return np.stack([turned[:, 0], -turned[:, 1], -turned[:, 2]], axis=1) + position


def _solid(rgb: tuple[float, float, float]) -> np.ndarray:
    return np.full((2, 2, 3), np.clip(np.array(rgb) * 255, 0, 255), np.uint8)


@lru_cache(maxsize=8)
def _room_texture(index: int) -> np.ndarray:
    from skimage import data as skdata

    name = ("coffee", "rocket", "colorwheel", "chelsea", "hubble_deep_field")[index % 5]
    image = np.ascontiguousarray(getattr(skdata, name)()[:, :, :3])
    return cv2.GaussianBlur(cv2.resize(image, (640, 480)), (0, 0), 3.0)


@lru_cache(maxsize=8)
def portrait(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(photo, 5 keypoints): the person's real photo, or for the scan a studio render of it."""
    person = load_person(name)
    if person.photo.shape[0] > 1:
        return person.photo, person.photo_keypoints
    cam = Camera(480, 600, 1500.0, 1500.0, 240.0, 300.0)
    head = _to_camera(person.vertices, np.eye(3), np.array([0.0, 0.02, 0.6]))
    raster = rasterize(cam, [(head, person.triangles)])
    mask = raster.surface == 0
    image = np.full((600, 480, 3), 215, np.uint8)
    albedo = _sample(person.corner_uv, person.texture, raster, 0, person.triangles)
    image[mask] = np.clip(albedo * 255, 0, 255).astype(np.uint8)
    keypoints = cam.project(_to_camera(person.keypoints, np.eye(3), np.array([0.0, 0.02, 0.6])))
    return image, keypoints


def _sample(corner_uv: np.ndarray, texture: np.ndarray, raster: Raster, sid: int, triangles: np.ndarray) -> np.ndarray:
    """Texture colour (0..1, sRGB) at the pixels of surface sid."""
    mask = raster.surface == sid
    tri = raster.triangle[mask]
    uv = (corner_uv[tri] * raster.bary[mask][:, :, None]).sum(axis=1)
    h, w = texture.shape[:2]
    # remap wants a 2-D map under 32k on a side: lay the K samples out in rows of 1024
    k = len(uv)
    rows = max(1, -(-k // 1024))
    maps = np.zeros((2, rows * 1024), np.float32)
    maps[0, :k] = uv[:, 0] * w - 0.5
    maps[1, :k] = (1.0 - uv[:, 1]) * h - 0.5
    sampled = cv2.remap(texture, maps[0].reshape(rows, 1024), maps[1].reshape(rows, 1024), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
    return sampled.reshape(-1, 3)[:k].astype(np.float64) / 255.0


class Scene:
    """One recording's worth of frames: ``kind`` of presentation of ``person``, drawn from ``seed``."""

    def __init__(self, kind: str, person: str, seed: int) -> None:
        if kind not in KINDS:
            raise InputValidationError(f"unknown scene kind {kind!r}; known: {', '.join(KINDS)}")
        self.kind, self.seed = kind, int(seed)
        self.person: Person = load_person(person)
        rng = np.random.default_rng([self.seed, KINDS.index(kind), 7])
        self.distance = float(rng.uniform(0.38, 0.75) if kind in ("live", "print_flat", "print_curved", "tablet_replay")
                              else rng.uniform(0.28, 0.42))
        self.offset = rng.uniform(-0.03, 0.03, 2)
        self.yaw, self.pitch, self.roll = rng.uniform(-18, 18), rng.uniform(-10, 8), rng.uniform(-6, 6)
        self.phase = rng.uniform(0, 2 * np.pi, 4)
        light = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.8, -0.1), -1.0])
        self.light = light / np.linalg.norm(light)  # direction towards the light, camera frame
        self.ambient = float(rng.uniform(0.25, 0.55))
        self.colour_target = float(rng.uniform(0.07, 0.18))
        self.ir_gain = float(rng.uniform(55.0, 85.0))
        self.ir_ambient = float(rng.uniform(1.0, 10.0))
        self.wall = (_room_texture(int(rng.integers(0, 5))), float(rng.uniform(1.0, 2.2)), rng.uniform(-0.25, 0.25, 2),
                     float(rng.uniform(0.35, 0.8)))
        self.cloth = (tuple(rng.uniform(0.03, 0.7, 3)), float(rng.uniform(0.1, 0.7)))
        self.glass_loss = float(rng.uniform(0.1, 0.7))
        self.device = DeviceInfo(SR300_NAME, f"IND{self.seed:07d}", "3.26.1.0", "SR300", origin="simulator")

    # ---- geometry ------------------------------------------------------------------------
    def _motion(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(pose rotation, face-centre position) at time t seconds."""
        p = self.phase
        if self.kind == "live":  # a person: slow head turns and sway
            yaw = self.yaw + 3.0 * np.sin(2 * np.pi * t / 2.3 + p[0])
            pitch = self.pitch + 2.0 * np.sin(2 * np.pi * t / 3.1 + p[1])
            sway = 0.006
        else:  # a hand: small tremor
            yaw = self.yaw * 0.6 + 1.2 * np.sin(2 * np.pi * t * 1.7 + p[0])
            pitch = self.pitch * 0.6 + 1.0 * np.sin(2 * np.pi * t * 2.3 + p[1])
            sway = 0.003
        pos = np.array([self.offset[0] + sway * np.sin(2 * np.pi * t / 1.9 + p[2]),
                        self.offset[1] + sway * np.sin(2 * np.pi * t / 2.7 + p[3]), self.distance])
        return rotation(yaw, pitch, self.roll), pos

    def _wall(self) -> Surface:
        texture, depth, tilt, nir = self.wall
        uv, tris, corner = _grid(1, 1)
        half = np.array([1.4, 1.05]) * depth * 1.3
        flat = np.stack([(uv[:, 0] - 0.5) * 2 * half[0], (0.5 - uv[:, 1]) * 2 * half[1], np.zeros(len(uv))], axis=1)
        points = _to_camera(flat, rotation(tilt[0] * 40, tilt[1] * 30, 0.0), np.array([0.0, 0.0, depth]))
        return Surface(points, tris, corner, texture, "wall", nir, two_sided=True)

    def _live_surfaces(self, pose: np.ndarray, pos: np.ndarray) -> list[Surface]:
        person = self.person
        head = _to_camera(person.vertices, pose, pos)
        chin = person.keypoints[4]
        neck, neck_tris = _ellipsoid(chin + np.array([0.0, -0.06, -0.07]), np.array([0.06, 0.09, 0.055]))
        body, body_tris = _ellipsoid(chin + np.array([0.0, -0.24, -0.09]), np.array([0.21, 0.13, 0.11]))
        skin = np.median(person.texture.reshape(-1, 3), axis=0) / 255.0
        # neck and shoulders face the camera; only the head turns
        body_pose = np.eye(3)
        cloth_rgb, cloth_nir = self.cloth
        return [
            Surface(head, person.triangles, person.corner_uv, person.texture, "skin"),
            Surface(_to_camera(neck, body_pose, pos), neck_tris, np.zeros((len(neck_tris), 3, 2)) + 0.5, _solid(tuple(skin)), "skin"),
            Surface(_to_camera(body, body_pose, pos), body_tris, np.zeros((len(body_tris), 3, 2)) + 0.5, _solid(cloth_rgb), "cloth", cloth_nir),
        ]

    def _sheet_surfaces(self, pose: np.ndarray, pos: np.ndarray) -> list[Surface]:
        photo, keys = portrait(self.person.name)
        eye_px = np.linalg.norm(keys[1] - keys[0])
        metres_per_px = 0.063 / eye_px  # life-size print: 63 mm between the eyes
        screen = self.kind.endswith("replay")
        if self.kind == "phone_replay":
            metres_per_px = 0.014 / eye_px  # a face filling a phone screen is small
        centre_px = keys[:4].mean(axis=0)
        h, w = photo.shape[:2]
        size_m = np.array([w, h]) * metres_per_px
        if screen:
            size_m = np.minimum(size_m, np.array([0.065, 0.13]) if self.kind == "phone_replay" else np.array([0.15, 0.2]))
        else:
            size_m = np.minimum(size_m, np.array([0.21, 0.297]))
        # the sheet / screen shows a window of the photo around the face
        half_px = size_m / metres_per_px / 2
        lo = centre_px - half_px
        uv, tris, _ = _grid(24, 32)
        px = lo + uv * (2 * half_px)
        corner = np.stack([px[:, 0] / w, 1.0 - px[:, 1] / h], axis=1)[tris]
        x = (uv[:, 0] - 0.5) * size_m[0]
        y = (0.5 - uv[:, 1]) * size_m[1]
        z = np.zeros_like(x)
        if self.kind == "print_curved":  # bent round a vertical axis, radius ~12 cm
            radius = 0.12
            angle = x / radius
            x, z = radius * np.sin(angle), radius * (np.cos(angle) - 1.0)
        sheet = _to_camera(np.stack([x, y, z], axis=1), pose, pos)
        if not screen:
            return [Surface(sheet, tris, corner, photo, "print", two_sided=True)]
        bezel_flat, bezel_tris, bezel_uv = _grid(1, 1)
        border = 0.008
        bx = (bezel_flat[:, 0] - 0.5) * (size_m[0] + 2 * border)
        by = (0.5 - bezel_flat[:, 1]) * (size_m[1] + 2 * border)
        bezel = _to_camera(np.stack([bx, by, np.full_like(bx, -0.002)], axis=1), pose, pos)
        return [Surface(sheet, tris, corner, photo, "screen", 0.25, two_sided=True),
                Surface(bezel, bezel_tris, bezel_uv, _solid((0.03, 0.03, 0.035)), "bezel", 0.15, two_sided=True)]

    # ---- rendering -----------------------------------------------------------------------
    def render(self, index: int) -> FrameSet:
        rng = np.random.default_rng([self.seed, KINDS.index(self.kind), 11, int(index)])
        pose, pos = self._motion(index / FPS)
        surfaces = [self._wall()]
        surfaces += self._live_surfaces(pose, pos) if self.kind == "live" else self._sheet_surfaces(pose, pos)
        raster = rasterize(CAMERA, [(s.vertices, s.triangles) for s in surfaces])
        hit = raster.surface >= 0
        albedo = np.zeros((HEIGHT, WIDTH, 3))
        nir = np.zeros((HEIGHT, WIDTH))
        normal = np.zeros((HEIGHT, WIDTH, 3))
        normal[..., 2] = -1.0
        emissive = np.zeros((HEIGHT, WIDTH, 3))
        skin = np.zeros((HEIGHT, WIDTH), bool)
        glass = np.zeros((HEIGHT, WIDTH), bool)
        for sid, surf in enumerate(surfaces):
            mask = raster.surface == sid
            if not mask.any():
                continue
            rgb = _sample(surf.corner_uv, surf.texture, raster, sid, surf.triangles)
            lin = np.power(rgb, 2.2)
            tri = surf.triangles[raster.triangle[mask]]
            vn = vertex_normals(surf.vertices, surf.triangles)
            n = (vn[tri] * raster.bary[mask][:, :, None]).sum(axis=1)
            n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
            # face the camera (sheets are two-sided; closed meshes' front faces face it anyway)
            view = raster_points(raster, mask)
            flip = (n * view).sum(axis=1) > 0
            n[flip] *= -1
            normal[mask] = n
            if surf.material == "skin":
                albedo[mask] = lin
                nir[mask] = 0.08 + 0.62 * np.power(lin[:, 0], 0.6)
                skin[mask] = True
            elif surf.material == "print":
                printed = 0.04 + 0.84 * lin  # ink on paper: no deep blacks, no paper-white highlights
                albedo[mask] = printed
                black = 1.0 - rgb.max(axis=1)  # carbon black is the only ink that absorbs NIR
                nir[mask] = 0.55 * (1.0 - 0.85 * np.clip(black - 0.2, 0, 1) / 0.8)
            elif surf.material == "screen":
                albedo[mask] = 0.03
                emissive[mask] = lin * 0.9
                nir[mask] = surf.nir
                glass[mask] = True
            else:
                albedo[mask] = lin
                nir[mask] = surf.nir
        points = raster_points(raster, hit)
        cos_light = np.zeros((HEIGHT, WIDTH))
        cos_light[hit] = np.clip((normal[hit] * -self.light).sum(axis=1) * -1, 0, 1)
        shading = self.ambient + (1 - self.ambient) * cos_light
        cos_view = np.zeros((HEIGHT, WIDTH))
        cos_view[hit] = np.clip(-(normal[hit] * points).sum(axis=1), 0, 1)
        # auto-exposure meters on the presented face: the head, or the sheet / screen (surface 1)
        face_mask = skin if self.kind == "live" else raster.surface == 1
        # a screen's brightness is set relative to the room, not by the room's light on it
        colour = sensor.colour_image(albedo, shading, face_mask, rng, self.colour_target,
                                     emissive=emissive * self.ambient * 1.6)
        specular = None
        if glass.any():  # the cover glass mirrors the emitter back where it faces the camera
            specular = np.where(glass, 3.0 * np.exp(-((1 - cos_view) / 0.0008) ** 2) / self.distance ** 2, 0.0)
        metres_per_px = self.distance / INTRINSICS.fx
        ir, returned = sensor.nir_image(nir, cos_view, raster.z, skin, self.ir_gain, self.ir_ambient, metres_per_px, rng,
                                        specular)
        # glossy glass loses the pattern in patches; how much depends on the screen (matte films keep some)
        patches = cv2.GaussianBlur(rng.random((HEIGHT, WIDTH)).astype(np.float32), (0, 0), 6.0)
        ranks = np.empty(patches.size, np.float32)  # uniform by rank: glass_loss is the share lost
        ranks[np.argsort(patches, axis=None, kind="stable")] = np.linspace(0, 1, patches.size, dtype=np.float32)
        patches = ranks.reshape(patches.shape)
        depth = sensor.depth_image(raster.z, cos_view, returned, ir, glass & (patches < self.glass_loss), rng)
        colour[depth == 0] = 0  # rs.align leaves colour black where depth has no value
        intr = StreamIntrinsics(INTRINSICS, INTRINSICS, INTRINSICS)
        return FrameSet(color=colour, ir=ir, depth=depth, depth_scale=sensor.DEPTH_UNIT_M, intrinsics=intr,
                        timestamp_ms=index * 1000.0 / FPS, frame_number=index + 1, device=self.device, grid=Stream.DEPTH)


def raster_points(raster: Raster, mask: np.ndarray) -> np.ndarray:
    """Unit view directions from the camera to the pixels of mask (K x 3)."""
    rays = CAMERA.rays()[mask]
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)
