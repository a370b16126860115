"""The virtual SR300: a scenario and a seed in, deterministic FrameSets and ground truth out."""
from __future__ import annotations

import dataclasses
from typing import Iterator

import cv2
import numpy as np

from sdk.errors import InputValidationError
from sdk.preprocess import make_region_crops, square_region
from sdk.sim import camera
from sdk.sim.content import FrameContent
from sdk.sim.identity import Identity
from sdk.sim.profile import SensorProfile, draw_profile
from sdk.sim.render import (Layer, Shading, View, compose, concat_points, crop_layer, masked_copy, shade_full, splat,
                            union_box, view_layer, wall_layer)
from sdk.sim.rng import make_rng
from sdk.sim.scenarios import ScenarioSpec, get_scenario
from sdk.sim.scene import random_background, random_lighting, skin_luminance
from sdk.sim import sensor
from sdk.types import DeviceInfo, Extrinsics, FaceBox, FaceCrops, FrameSet, FrameTruth, Stream, StreamIntrinsics

DEFAULT_DISTANCE_RANGE = (0.25, 1.1)
DEFAULT_MAX_YAW = 30.0
#: Pixels rendered around a requested window so neighbourhood steps (pinhole filling) match.
_MARGIN = 6
#: Truth-box calibration against mediapipe's short-range BlazeFace on live frames.
BOX_WIDEN = 1.2
BOX_RAISE = 0.03


class Simulator:
    """Frames of one simulated sequence: ``scenario`` says what is in front of the camera,
    ``seed`` which subject, room, light and motion. Frame ``i`` is a pure function of
    (scenario, seed, i) and the constructor's options."""

    def __init__(self, scenario: str, seed: int, *, fps: float = 30.0,
                 distance_range_m: tuple[float, float] | None = None, max_yaw_deg: float | None = None,
                 zero_color_without_depth: bool = True, min_yaw_deg: float = 0.0, sunlight: bool | None = None,
                 appearance: str | None = None, clean: bool = False, exposure_scale: float = 1.0):
        self.spec: ScenarioSpec = get_scenario(scenario)
        if not (np.isfinite(fps) and fps > 0):
            raise InputValidationError(f"fps must be positive, got {fps}")
        # Colour auto-exposure scaled beyond the camera profile's own bias (calibration
        # recordings that cover brighter faces; training sets never use it): 1 = as drawn.
        if not (np.isfinite(exposure_scale) and 0.25 <= exposure_scale <= 16.0):
            raise InputValidationError(f"exposure_scale must lie in 0.25..16, got {exposure_scale}")
        self.exposure_scale = float(exposure_scale)
        dr = tuple(float(v) for v in (distance_range_m or DEFAULT_DISTANCE_RANGE))
        if len(dr) != 2 or not (0.15 <= dr[0] <= dr[1] <= 3.0):
            raise InputValidationError(f"distance_range_m must be (near, far) within 0.15..3 m, got {distance_range_m}")
        yaw = float(DEFAULT_MAX_YAW if max_yaw_deg is None else max_yaw_deg)
        if not 0.0 <= yaw <= 60.0:
            raise InputValidationError(f"max_yaw_deg must lie in 0..60, got {max_yaw_deg}")
        min_yaw = float(min_yaw_deg)
        if not 0.0 <= min_yaw <= yaw:
            raise InputValidationError(f"min_yaw_deg must lie in 0..max_yaw_deg, got {min_yaw_deg}")
        from sdk.sim.identity import APPEARANCES

        if appearance not in APPEARANCES:
            raise InputValidationError(f"appearance must be one of {APPEARANCES}, got {appearance!r}")
        self.appearance = appearance
        self.seed = int(seed)
        self.fps = float(fps)
        # rs.align(rs.stream.depth) leaves colour black wherever depth has no value; False keeps
        # the colour there (as if aligned with a hole-free depth map).
        self.zero_color_without_depth = bool(zero_color_without_depth)
        self.distance_range_m = dr
        self.max_yaw_deg = yaw
        self.min_yaw_deg = min_yaw
        self.view = View(camera.DEPTH_INTRINSICS.fx, camera.DEPTH_INTRINSICS.fy, camera.DEPTH_INTRINSICS.ppx,
                         camera.DEPTH_INTRINSICS.ppy, camera.WIDTH, camera.HEIGHT)
        self._device = camera.device_info(self.seed)
        # Independent streams so that, e.g., the room does not change when the distance range does.
        rng_bg = make_rng("background", self.spec.name, self.seed)
        rng_light = make_rng("lighting", self.spec.name, self.seed)
        rng_scene = make_rng("scene", self.spec.name, self.seed)
        self.background = random_background(rng_bg)
        # The camera's response and the room's NIR: same ranges for every scenario.
        # ``clean``: a nominal camera, no sunlight or backlight unless asked, no hand, hat, collar
        # or chair (physics tests and figures; datasets never use it).
        self.clean = bool(clean)
        self.profile: SensorProfile = draw_profile(self.spec.name, self.seed, sunlight=sunlight, nominal=self.clean)
        yaw_range = (min_yaw, yaw)
        if self.spec.kind in ("live", "empty"):
            self.scene = _scene_class(self.spec)(rng_scene, self.seed, self.view, dr, yaw_range, self.fps,
                                                 appearance=appearance, accessories=not self.clean)
        else:
            self.scene = _scene_class(self.spec)(rng_scene, self.seed, self.view, dr, yaw_range, self.fps, self.spec,
                                                 appearance=appearance, accessories=not self.clean)
        idn: Identity | None = getattr(self.scene, "idn", None)
        lighting, noise_level = random_lighting(rng_light, skin_luminance(idn) if idn else 0.3)
        prof = self.profile
        # Auto-exposure meters a bright window behind the subject: the face comes out dark.
        exposure = lighting.exposure * prof.exposure_bias * (0.45 if prof.backlight else 1.0) * self.exposure_scale
        self.lighting = dataclasses.replace(
            lighting, exposure=float(exposure), ir_gain=float(lighting.ir_gain * prof.ir_gain),
            ir_ambient=float(lighting.ir_ambient + prof.sunlight),
            paper_gloss=float(getattr(self.scene, "paper_gloss", 0.0)))
        self.noise_level = float(noise_level * prof.rgb_noise)
        self._bg: tuple[Layer, Shading] | None = None

    # ---- the API others code against -----------------------------------------------------
    @property
    def device_info(self) -> DeviceInfo:
        return self._device

    @property
    def intrinsics(self) -> StreamIntrinsics:
        return camera.INTRINSICS

    @property
    def depth_scale(self) -> float:
        return camera.DEPTH_SCALE

    @property
    def depth_to_color(self) -> Extrinsics:
        return camera.DEPTH_TO_COLOR

    def render(self, frame_index: int) -> tuple[FrameSet, FrameTruth]:
        content = self._content(frame_index)
        colour, ir, depth = self._render_window(frame_index, content, self.view)
        return self._frameset(frame_index, colour, ir, depth), self._truth(frame_index, content)

    def frames(self, n: int | None = None) -> Iterator[tuple[FrameSet, FrameTruth]]:
        i = 0
        while n is None or i < n:
            yield self.render(i)
            i += 1

    def render_region_crops(self, frame_index: int) -> tuple[FaceCrops, FrameTruth]:
        """Region crops of the true face box, rendering only the pixels they need.

        Equal, bit for bit, to ``make_region_crops(render(i)[0], truth.face_box)``.
        """
        content = self._content(frame_index)
        truth = self._truth(frame_index, content)
        if truth.face_box is None:
            raise InputValidationError(f"scenario {self.spec.name!r} has no face to crop")
        x0, y0, side = square_region(truth.face_box)
        view = self.view.window(x0, y0, x0 + side, y0 + side)
        colour, ir, depth = self._render_window(frame_index, content, view)
        h, w = camera.HEIGHT, camera.WIDTH
        full_c = np.zeros((h, w, 3), np.uint8)
        full_i = np.zeros((h, w), np.uint8)
        full_d = np.zeros((h, w), np.uint16)
        full_c[view.y0:view.y1, view.x0:view.x1] = colour
        full_i[view.y0:view.y1, view.x0:view.x1] = ir
        full_d[view.y0:view.y1, view.x0:view.x1] = depth
        return make_region_crops(self._frameset(frame_index, full_c, full_i, full_d), truth.face_box), truth

    def landmarks(self, frame_index: int) -> dict[str, tuple[float, float, float]]:
        """Pixel position and depth (u, v, z metres) of the presented face's landmarks."""
        content = self._content(frame_index)
        out = {}
        for name, p in content.landmarks.items():
            u, v = self.view.project(p[None, :])[0]
            out[name] = (float(u), float(v), float(p[2]))
        return out

    # ---- internals -------------------------------------------------------------------------
    def _content(self, frame_index: int) -> FrameContent:
        if int(frame_index) < 0:
            raise InputValidationError(f"frame_index must be >= 0, got {frame_index}")
        return self.scene.content(int(frame_index))

    def _frameset(self, index: int, colour: np.ndarray, ir: np.ndarray, depth: np.ndarray) -> FrameSet:
        return FrameSet(color=colour, ir=ir, depth=depth, depth_scale=camera.DEPTH_SCALE, intrinsics=camera.INTRINSICS,
                        timestamp_ms=index * 1000.0 / self.fps, frame_number=index + 1, device=self._device,
                        grid=Stream.DEPTH)

    def _truth(self, index: int, content: FrameContent) -> FrameTruth:
        box = None
        if content.contour is not None:
            uv = self.view.project(content.contour)
            (x0, y0), (x1, y1) = uv.min(axis=0), uv.max(axis=0)
            # BlazeFace's boxes are ~20 % wider than the cheek-to-cheek contour and sit a little
            # higher (measured on live frames, see docs/simulator.md): follow its convention.
            cx, half_w, h = (x0 + x1) / 2, (x1 - x0) * BOX_WIDEN / 2, y1 - y0
            x0, x1 = cx - half_w, cx + half_w
            y0, y1 = y0 - BOX_RAISE * h, y1 - BOX_RAISE * h
            x0, x1 = float(np.clip(x0, 0, camera.WIDTH - 1)), float(np.clip(x1, 0, camera.WIDTH - 1))
            y0, y1 = float(np.clip(y0, 0, camera.HEIGHT - 1)), float(np.clip(y1, 0, camera.HEIGHT - 1))
            if x1 - x0 >= 2 and y1 - y0 >= 2:
                box = FaceBox(float(x0), float(y0), float(x1), float(y1), 1.0)
        return FrameTruth(frame_number=index + 1, face_box=box, scenario=self.spec.name, label=self.spec.label,
                          attack_type=self.spec.attack_type, distance_m=float(content.distance_m),
                          yaw_deg=float(content.yaw), pitch_deg=float(content.pitch), roll_deg=float(content.roll))

    def _background(self) -> tuple[Layer, Shading]:
        """The static room as a full-frame layer and its shading (built once per sequence)."""
        if self._bg is None:
            bg = self.background
            if bg.wall_distance is not None:
                layer = wall_layer(self.view, bg.wall_distance, bg.wall_normal, bg.image, bg.wall_ir)
            else:  # far beyond the SR300's range: no depth, colour zeroed like rs.align does
                layer = wall_layer(self.view, 6.0, (0.0, 0.0, 1.0), bg.image, bg.wall_ir)
            shading = shade_full(layer, self.lighting)
            if self.profile.backlight:
                # A bright window behind the subject: over-exposed colour, saturated NIR, no depth.
                rng = make_rng("backlight", self.spec.name, self.seed)
                x0 = int(rng.integers(-200, 400))
                y0 = int(rng.integers(-200, 200))
                w, h = int(rng.integers(250, 640)), int(rng.integers(250, 480))
                win = np.zeros((camera.HEIGHT, camera.WIDTH), bool)
                win[max(0, y0):max(0, y0 + h), max(0, x0):max(0, x0 + w)] = True
                shading.colour[win] = np.float32(rng.uniform(2.0, 6.0))
                shading.ir[win] = np.float32(rng.uniform(200.0, 400.0))
                shading.signal[win] = 0.0
            self._bg = (layer, shading)
        return self._bg

    def _render_window(self, index: int, content: FrameContent, view: View) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = make_rng("frame", self.spec.name, self.seed, int(index))
        offsets = sensor.draw_offsets(rng, 8, camera.HEIGHT, camera.WIDTH)
        flicker = float(rng.standard_normal()) * self.profile.flicker_m
        prof = self.profile
        big = view.window(view.x0 - _MARGIN, view.y0 - _MARGIN, view.x1 + _MARGIN, view.y1 + _MARGIN)
        bg_layer, bg = self._background()
        rows, cols = slice(big.y0, big.y1), slice(big.x0, big.x1)
        room = view_layer(bg_layer, big.y0, big.y1, big.x0, big.x1)
        layers = [l for l in content.layers(big) if l is not None]
        if content.points:
            splatted = splat(concat_points(content.points), big)
            if splatted is not None:
                layers.append(splatted)
        colour_lin, ir_level = bg.colour[rows, cols].copy(), bg.ir[rows, cols].copy()
        cos_v, signal = bg.cos_v[rows, cols].copy(), bg.signal[rows, cols].copy()
        z_all, mat_all = room.z.copy(), room.mat
        ub = union_box(layers)
        if ub is not None:
            # Compose and shade only the box the layers cover, and write back only the pixels a
            # layer covers: the room keeps its own shading (with the backlight window, which
            # re-shading the room here used to drop around the person).
            r0, r1, c0, c1 = ub
            box = (slice(r0, r1), slice(c0, c1))
            surf = compose(crop_layer(room, r0, r1, c0, c1), layers, origin=(r0, c0))
            covered = surf.z < room.z[box]
            z_all[box] = surf.z
            if content.moire is not None:
                mat_all = room.mat.copy()
                mat_all[box] = surf.mat
            part = shade_full(surf, self.lighting)
            masked_copy(colour_lin[box], part.colour, covered)
            masked_copy(ir_level[box], part.ir, covered)
            masked_copy(cos_v[box], part.cos_v, covered)
            masked_copy(signal[box], part.signal, covered)
        # Lens blur softens splat edges as a real camera would (its width varies by camera).
        colour_lin = cv2.GaussianBlur(colour_lin, (0, 0), prof.rgb_blur)
        edges = sensor.depth_edges(z_all)
        # Crop the margin away: everything below is strictly per pixel.
        cy0, cx0 = view.y0 - big.y0, view.x0 - big.x0
        sl = (slice(cy0, cy0 + view.shape[0]), slice(cx0, cx0 + view.shape[1]))
        colour_lin, ir_level, cos_v, z = colour_lin[sl], ir_level[sl], cos_v[sl], z_all[sl]
        signal, edges = signal[sl], edges[sl]
        if content.moire is not None:
            colour_lin = _apply_moire(colour_lin, mat_all[sl], view, content.moire)
        win = (view.y0, view.y1, view.x0, view.x1)
        noise_rgb = [sensor.bank_window(offsets[c], *win) for c in range(3)]
        colour = sensor.to_srgb8(colour_lin, noise_rgb, self.noise_level, prof.white_balance)
        ir = sensor.to_ir8(ir_level, sensor.bank_window(offsets[3], *win), prof.ir_noise, prof.ir_gamma, prof.ir_offset)
        depth = sensor.to_depth16(
            z, cos_v, sensor.bank_window(offsets[4], *win), sensor.bank_window(offsets[5], *win, uniform=True),
            sensor.bank_window(offsets[6], *win, blob=True), corr=sensor.bank_window(offsets[7], *win, correlated=True),
            signal=signal, ambient=ir_level - signal, saturated=ir_level >= np.float32(sensor.SATURATION_LEVEL),
            edges=edges, warp=self._warp(view, z), flicker=flicker, noise_scale=prof.depth_noise,
            corr_share=prof.depth_corr, hole_threshold=prof.hole_threshold)
        if self.zero_color_without_depth:
            colour[depth == 0] = 0
        return colour, ir, depth

    def _warp(self, view: View, z: np.ndarray) -> np.ndarray:
        """Low-frequency depth warp of this camera (metres) at the window's pixels."""
        bowl, kx, ky, phase = self.profile.warp_shape
        u = np.arange(view.x0, view.x1, dtype=np.float32)[None, :]
        v = np.arange(view.y0, view.y1, dtype=np.float32)[:, None]
        r2 = ((u - np.float32(self.view.ppx)) ** 2 + (v - np.float32(self.view.ppy)) ** 2) / np.float32(320.0**2 + 240.0**2)
        wave = np.cos(np.float32(kx) * u + np.float32(ky) * v + np.float32(phase))
        shape = np.float32(bowl) * r2 + np.float32(1.0 - abs(bowl)) * wave
        # Calibration errors show more at close range (relative to the baseline) in metres.
        scale = np.clip(np.float32(0.3) / np.where(np.isfinite(z), z, np.float32(1.0)), 0.3, 1.5)
        return (np.float32(self.profile.warp_m) * shape * scale).astype(np.float32)


def _apply_moire(colour: np.ndarray, mat: np.ndarray, view: View, moire: tuple[float, float, float, float]) -> np.ndarray:
    from sdk.sim.face import MAT_SCREEN

    kx, ky, phase, amount = moire
    u = np.arange(view.x0, view.x1, dtype=np.float32)[None, :]
    v = np.arange(view.y0, view.y1, dtype=np.float32)[:, None]
    wave = np.cos(np.float32(kx) * u + np.float32(ky) * v + np.float32(phase))
    wave2 = np.cos(np.float32(ky * 0.9) * u - np.float32(kx * 1.1) * v + np.float32(phase * 0.7))
    gain = np.float32(1.0) + np.float32(amount) * (np.float32(0.6) * wave + np.float32(0.4) * wave2)
    tint = np.array([1.0, 0.97, 1.03], np.float32)
    out = colour.copy()
    sel = mat == MAT_SCREEN
    out[sel] = colour[sel] * (gain[..., None] * tint)[sel] if sel.any() else colour[sel]
    return out


def _scene_class(spec: ScenarioSpec):
    from sdk.sim.live import EmptyScene, LiveScene

    if spec.kind == "live":
        return LiveScene
    if spec.kind == "empty":
        return EmptyScene
    from sdk.sim import attacks

    return {"print": attacks.PrintScene, "screen": attacks.ScreenScene, "mask": attacks.MaskScene}[spec.kind]
