"""The three camera views the kiosk shows: colour, IR and depth on the shared grid, with the face box."""
from __future__ import annotations

import numpy as np

#: Depth shown from NEAR_M (warm) to FAR_M (cold): the SR300's working range at a kiosk.
NEAR_M, FAR_M = 0.2, 1.2
#: Box colours (RGB): scored and passing / scored and failing / not scored (a gate failed).
BOX_PASS, BOX_FAIL, BOX_GATE = (40, 200, 90), (230, 50, 50), (240, 190, 40)
STREAMS = ("color", "ir", "depth")
JPEG_QUALITY = 80


def render(frames, stream: str, box=None, box_colour: tuple[int, int, int] = BOX_GATE) -> np.ndarray:
    """An RGB uint8 image of one stream of a FrameSet, with the face box drawn when given."""
    import cv2

    if stream == "color":
        image = np.array(frames.color, dtype=np.uint8, copy=True)
    elif stream == "ir":
        image = cv2.cvtColor(np.asarray(frames.ir), cv2.COLOR_GRAY2RGB)
    elif stream == "depth":
        depth_m = frames.depth_m()
        scaled = np.clip((FAR_M - depth_m) / (FAR_M - NEAR_M), 0.0, 1.0)
        image = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1].copy()
        image[depth_m <= 0] = 0  # holes are black, not "far"
    else:
        raise ValueError(f"unknown stream {stream!r}; one of {STREAMS}")
    if box is not None:
        thickness = max(2, image.shape[1] // 200)
        cv2.rectangle(image, (int(box.x0), int(box.y0)), (int(box.x1), int(box.y1)), box_colour, thickness)
    return image


def encode_jpeg(image_rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", image_rgb[..., ::-1], [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()
