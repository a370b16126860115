"""Per-session renderer randomisation: the camera's response and the room's NIR conditions.

A model trained on one renderer's exact constants (one IR gain, one noise level, one blur) can
key on them. Every session therefore draws its own camera response from ranges wider than one
SR300 unit shows, from a stream that depends only on (scenario, seed): live people and every
attack draw from the SAME ranges, so none of these values separates the classes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdk.sim.rng import make_rng

#: Share of sessions in strong ambient NIR (sunlight through a window, outdoors in the shade).
SUNLIGHT_RATE = 0.08
#: Share of sessions with a bright window or lamp behind the subject (backlight).
BACKLIGHT_RATE = 0.1


@dataclass(frozen=True)
class SensorProfile:
    # infrared camera and emitter
    ir_gain: float  # emitter power x sensor gain (multiplies the NIR level)
    ir_gamma: float  # response curve of the IR image (1 = linear)
    ir_noise: float  # read/shot noise sigma of the IR image (8-bit units)
    ir_offset: float  # black level of the IR image
    # colour camera
    rgb_noise: float  # multiplies the colour noise level
    rgb_blur: float  # lens/focus blur sigma in pixels
    white_balance: tuple[float, float, float]  # per-channel gain error of the auto white balance
    exposure_bias: float  # auto-exposure's bias (under/over exposes every scene by this factor)
    # depth (coded light)
    depth_noise: float  # multiplies the depth noise sigma
    depth_corr: float  # share of the depth noise that is spatially correlated (0..1)
    hole_threshold: float  # minimum emitter return (8-bit IR units) for a depth value
    warp_m: float  # low-frequency plane warp at the image corner, metres at 0.3 m
    warp_shape: tuple[float, float, float, float]  # bowl weight, wave kx, ky, phase
    flicker_m: float  # frame-to-frame global depth jitter, metres at 0.5 m
    # room NIR
    sunlight: float  # ambient NIR level added on every surface (0 = indoors)
    backlight: bool  # a bright window / lamp behind the subject

    @property
    def is_sunlit(self) -> bool:
        return self.sunlight > 0.0


#: The centre of every range: a nominal SR300 in an ordinary room (physics tests, figures).
NOMINAL_PROFILE = SensorProfile(
    ir_gain=1.0, ir_gamma=1.0, ir_noise=1.6, ir_offset=0.0, rgb_noise=1.0, rgb_blur=0.65,
    white_balance=(1.0, 1.0, 1.0), exposure_bias=1.0, depth_noise=1.0, depth_corr=0.3, hole_threshold=6.0,
    warp_m=0.0, warp_shape=(0.0, 0.0, 0.0, 0.0), flicker_m=0.0, sunlight=0.0, backlight=False)


def draw_profile(scenario: str, seed: int, *, sunlight: bool | None = None, nominal: bool = False) -> SensorProfile:
    """The session's camera response; ``sunlight`` forces strong ambient NIR on (True) or off
    (False) — held-out families use it — while every other value stays what the seed draws.
    ``nominal`` gives NOMINAL_PROFILE (with ``sunlight`` applied)."""
    if nominal:
        if sunlight:
            from dataclasses import replace

            return replace(NOMINAL_PROFILE, sunlight=150.0)
        return NOMINAL_PROFILE
    rng = make_rng("sensor-profile", scenario, int(seed))
    wb = np.clip(rng.normal(1.0, 0.06, 3), 0.85, 1.15)
    sunlit_draw = rng.random() < SUNLIGHT_RATE
    sun_level = float(rng.uniform(60.0, 320.0))
    backlight = bool(rng.random() < BACKLIGHT_RATE)
    values = dict(
        ir_gain=float(np.exp(rng.uniform(np.log(0.6), np.log(1.6)))),
        ir_gamma=float(rng.uniform(0.8, 1.25)),
        ir_noise=float(rng.uniform(0.8, 2.8)),
        ir_offset=float(rng.uniform(0.0, 6.0)),
        rgb_noise=float(np.exp(rng.uniform(np.log(0.6), np.log(2.2)))),
        rgb_blur=float(rng.uniform(0.4, 1.3)),
        white_balance=tuple(float(v) for v in wb),
        exposure_bias=float(np.exp(rng.uniform(np.log(0.7), np.log(1.4)))),
        depth_noise=float(np.exp(rng.uniform(np.log(0.6), np.log(2.5)))),
        depth_corr=float(rng.uniform(0.2, 0.8)),
        hole_threshold=float(rng.uniform(4.0, 12.0)),
        warp_m=float(rng.uniform(0.0, 0.012)),
        warp_shape=(float(rng.uniform(-1.0, 1.0)), float(rng.uniform(-0.006, 0.006)),
                    float(rng.uniform(-0.006, 0.006)), float(rng.uniform(0, 2 * np.pi))),
        flicker_m=float(rng.uniform(0.0, 0.0008)),
        backlight=backlight,
    )
    lit = sunlit_draw if sunlight is None else bool(sunlight)
    return SensorProfile(sunlight=sun_level if lit else 0.0, **values)
