"""Fault injection: wrappers that fail on cue around the SDK's real parts. A TESTING AID.

Nothing in the device path imports this module. The reliability tests (tests/test_faults_*.py)
and tools/fault_table.py use it to prove that every fault ends in a typed error or in a SPOOF /
UNCERTAIN result with a specific reason, never in LIVE. The wrappers are thin: the frames,
scores and boxes they pass on come from the real simulator / .bag replay, the real ONNX Runtime
engine and the real BlazeFace detector; only the fault itself is made up.

- ``FaultPlan``: when a fault fires (after N good calls, for M calls or for ever) and how often it did.
- ``FaultySource``: a Source around a Source (SimulatorSource, BagReplay, a camera).
- ``FaultyEngine``: an Engine around an Engine; the session builds it through the engine
  registry: ``SessionConfig(engine="faulty", engine_options={"plan": FaultPlan("nan")})``.
- ``FaultyDetector``: a Detector around a Detector (``SessionConfig(detector=FaultyDetector(...))``).
- ``damage_bag`` / ``write_bag_with``: broken recordings; ``tamper_bundle``: broken model bundles.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from sdk.capture.base import Source, StreamProfile
from sdk.detect.base import Detection, Detections, Detector
from sdk.engine import ENGINES, Engine, create_engine
from sdk.errors import DeviceDisconnectedError, FrameTimeoutError, InputValidationError
from sdk.types import DeviceInfo, FaceBox, FrameSet


@dataclass
class FaultPlan:
    """Fire ``fault`` on calls ``after`` .. ``after + times - 1`` (0-based; ``times=None``: for ever)."""

    fault: str
    after: int = 0
    times: int | None = None
    #: free parameters of the fault (e.g. {"factor": 8.0} for a depth scale change)
    options: Mapping[str, Any] = field(default_factory=dict)
    calls: int = 0
    injected: int = 0

    def fire(self) -> bool:
        """Count one call; True when the fault applies to it."""
        index = self.calls
        self.calls += 1
        hit = index >= self.after and (self.times is None or index < self.after + self.times)
        self.injected += hit
        return hit


def _plan(fault: str | FaultPlan, after: int, times: int | None, known: tuple[str, ...]) -> FaultPlan:
    plan = fault if isinstance(fault, FaultPlan) else FaultPlan(fault, after, times)
    if plan.fault not in known:
        raise InputValidationError(f"unknown fault {plan.fault!r}; choose one of {', '.join(known)}")
    return plan


# -- sources ---------------------------------------------------------------------------------
def _with(frames: FrameSet, **changes: Any) -> FrameSet:
    """A copy of ``frames`` with some fields replaced (arrays are read-only: copy before changing)."""
    fields = {name: getattr(frames, name) for name in
              ("color", "ir", "depth", "depth_scale", "intrinsics", "timestamp_ms", "frame_number", "device", "grid",
               "color_native")}
    fields.update(changes)
    return FrameSet(**fields)


SOURCE_FAULTS = (
    "disconnect",  # DeviceDisconnectedError: the camera is unplugged
    "timeout",  # FrameTimeoutError: frames stop arriving
    "crash",  # RuntimeError: a driver binding fails in an unforeseen way
    "end",  # the stream ends early (StopIteration)
    "freeze",  # the whole FrameSet repeats: same pixels, frame number and timestamp
    "freeze_color", "freeze_ir", "freeze_depth",  # one modality repeats its last image, the rest moves on
    "zero_color", "zero_ir", "zero_depth",  # a dead sensor: all zeros
    "constant_color", "constant_ir", "constant_depth",  # a modality stuck at one value
    "depth_scale",  # the depth scale changes (options: factor, default 8)
    "clock_back",  # the timestamp jumps back by a second
    "clock_forward",  # the timestamp jumps ahead by 10 s (frame numbers still consecutive)
    "clock_stall",  # timestamp and frame number stop advancing while pixels change
    "device_swap",  # a different camera (serial) appears mid-stream
)


class FaultySource(Source):
    """Passes the inner source's FrameSets on and applies the planned fault on cue.

    The fault counts FrameSets: ``FaultySource(SimulatorSource("live", 1), "disconnect", after=5)``
    delivers five good frames, then raises DeviceDisconnectedError. Closing it closes the inner one.
    """

    def __init__(self, inner: Source, fault: str | FaultPlan, after: int = 0, times: int | None = None) -> None:
        self.inner = inner
        self.plan = _plan(fault, after, times, SOURCE_FAULTS)
        self._last: FrameSet | None = None
        self._offset_ms = 0.0

    @property
    def device_info(self) -> DeviceInfo:
        return self.inner.device_info

    @property
    def profiles(self) -> list[StreamProfile]:
        return self.inner.profiles

    def _next_frameset(self) -> FrameSet:
        frames = next(self.inner)
        if not self.plan.fire():
            self._last = frames
            return _with(frames, timestamp_ms=frames.timestamp_ms + self._offset_ms) if self._offset_ms else frames
        if self._last is None:
            self._last = frames
        out = self._apply(frames)
        if not self.plan.fault.startswith("freeze"):  # a frozen stream keeps repeating one image
            self._last = frames
        return out

    def _apply(self, frames: FrameSet) -> FrameSet:
        fault = self.plan.fault
        last = self._last if self._last is not None else frames
        if fault == "disconnect":
            raise DeviceDisconnectedError("fault injection: the SR300 was unplugged mid-check")
        if fault == "timeout":
            raise FrameTimeoutError("fault injection: no frame for 5.0 s")
        if fault == "crash":
            raise RuntimeError("fault injection: librealsense binding failed")
        if fault == "end":
            raise StopIteration
        if fault == "freeze":
            return last
        if fault.startswith("freeze_"):
            name = fault.split("_", 1)[1]
            return _with(frames, **{name: getattr(last, name)})
        if fault.startswith("zero_"):
            name = fault.split("_", 1)[1]
            return _with(frames, **{name: np.zeros_like(getattr(frames, name))})
        if fault.startswith("constant_"):
            name = fault.split("_", 1)[1]
            value = {"color": 128, "ir": 128, "depth": 4000}[name]
            return _with(frames, **{name: np.full_like(getattr(frames, name), value)})
        if fault == "depth_scale":
            return _with(frames, depth_scale=frames.depth_scale * float(self.plan.options.get("factor", 8.0)))
        if fault == "clock_back":
            return _with(frames, timestamp_ms=frames.timestamp_ms - 1000.0)
        if fault == "clock_forward":
            self._offset_ms = 10_000.0  # every later frame keeps the jumped clock
            return _with(frames, timestamp_ms=frames.timestamp_ms + self._offset_ms)
        if fault == "clock_stall":
            return _with(frames, timestamp_ms=last.timestamp_ms, frame_number=last.frame_number)
        if fault == "device_swap":
            return _with(frames, device=replace(frames.device, serial=(frames.device.serial or "") + "-OTHER"))
        raise AssertionError(fault)  # _plan refused unknown faults

    def _release(self) -> None:
        self.inner.close()


# -- engines ---------------------------------------------------------------------------------
ENGINE_FAULTS = (
    "raise",  # the backend raises (ONNX Runtime error, CUDA failure)
    "nan", "inf", "negative", "above_one",  # invalid probabilities
    "wrong_shape",  # one score too many
    "empty",  # no scores at all
    "slow",  # each call takes options["seconds"] (default 0.5 s) longer
    "closed",  # the inner engine was closed under the session
)


class FaultyEngine(Engine):
    """Runs the inner engine's raw network call, then spoils its output on cue.

    It overrides ``_run`` only, so the inputs and outputs go through the real validation of
    ``Engine.predict`` like any backend's.
    """

    def __init__(self, inner: Engine, fault: str | FaultPlan, after: int = 0, times: int | None = None) -> None:
        self.inner = inner
        self.plan = _plan(fault, after, times, ENGINE_FAULTS)
        self.name = f"faulty({inner.name})"

    def _run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        fire = self.plan.fire()
        fault = self.plan.fault
        if fire and fault == "closed":
            self.inner.close()
        if fire and fault == "raise":
            raise RuntimeError("fault injection: [ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION")
        if fire and fault == "slow":
            time.sleep(float(self.plan.options.get("seconds", 0.5)))
        scores = np.array(self.inner._run(inputs), dtype=np.float32).reshape(-1)
        if not fire:
            return scores
        if fault == "nan":
            return np.full_like(scores, np.nan)
        if fault == "inf":
            return np.full_like(scores, np.inf)
        if fault == "negative":
            return scores - 2.0
        if fault == "above_one":
            return scores + 2.0
        if fault == "wrong_shape":
            return np.concatenate([scores, scores[:1]])
        if fault == "empty":
            return scores[:0]
        return scores  # slow, closed: the output itself is untouched

    def close(self) -> None:
        self.inner.close()


def _faulty_engine(model_path: str | os.PathLike[str], *, plan: FaultPlan | str, inner: str = "onnxruntime",
                   **options: Any) -> Engine:
    return FaultyEngine(create_engine(inner, model_path, **options), plan)


# The session builds engines by name; "faulty" lets a test put a FaultyEngine inside a real
# session without touching the session's internals. Registered only when this module is imported.
ENGINES.setdefault("faulty", _faulty_engine)


# -- detectors -------------------------------------------------------------------------------
DETECTOR_FAULTS = (
    "raise",  # mediapipe raises
    "no_face",  # finds nothing
    "box_outside",  # the face box lies outside the image
    "box_whole_frame",  # the box covers the whole image
    "jitter",  # the box jumps by a face width every frame
)


class FaultyDetector(Detector):
    """Runs the inner detector, then spoils its result on cue (per FrameSet)."""

    def __init__(self, inner: Detector, fault: str | FaultPlan, after: int = 0, times: int | None = None) -> None:
        self.inner = inner
        self.plan = _plan(fault, after, times, DETECTOR_FAULTS)
        self.name = f"faulty({inner.name})"

    def detect(self, frames: FrameSet) -> Detections:
        result = Detections(image_size=(frames.shape[1], frames.shape[0]))
        for result in self.detect_stages(frames):
            if result.accepted:
                break
        return result

    def detect_stages(self, frames: FrameSet) -> Iterator[Detections]:
        fire = self.plan.fire()
        fault = self.plan.fault
        if fire and fault == "raise":
            raise RuntimeError("fault injection: mediapipe graph failed")
        for stage in self.inner.detect_stages(frames):
            yield self._spoil(frames, stage) if fire else stage

    def _spoil(self, frames: FrameSet, found: Detections) -> Detections:
        h, w = frames.shape
        fault = self.plan.fault
        if fault == "no_face":
            return Detections(stage="", image_size=found.image_size)
        if fault == "box_whole_frame":
            return Detections((Detection(FaceBox(0.0, 0.0, float(w), float(h), 0.99)),), (), found.stage, found.image_size)
        if not found.accepted:
            return found
        box = found.accepted[0].box
        if fault == "box_outside":
            moved = FaceBox(w + 10.0, h + 10.0, w + 10.0 + box.width, h + 10.0 + box.height, box.score)
            return Detections((Detection(moved),), (), found.stage, found.image_size)
        if fault == "jitter":
            dx = box.width * (1 if self.plan.calls % 2 else -1)
            x0 = min(max(0.0, box.x0 + dx), w - box.width - 1.0)
            moved = FaceBox(x0, box.y0, x0 + box.width, box.y1, box.score)
            return Detections((Detection(moved),), (), found.stage, found.image_size)
        raise AssertionError(fault)

    def close(self) -> None:
        self.inner.close()


# -- recordings ------------------------------------------------------------------------------
BAG_DAMAGE = (
    "truncate_half",  # cut at half its length
    "truncate_tail",  # the last bytes of the index are missing
    "unindexed",  # the bag header says no index was written (a recorder that was killed)
    "flip_magic",  # a byte of the '#ROSBAG V2.0' line
    "flip_header",  # a byte inside the bag header record
    "flip_index",  # a byte inside the header of the index's first record
    "zero_block",  # 4 KiB of zeros among the chunks (pixels carry no checksum: may play, see docs)
    "empty",  # zero bytes
    "not_a_bag",  # random bytes
)


def damage_bag(source: str | os.PathLike[str], out: str | os.PathLike[str], damage: str, seed: int = 0) -> Path:
    """Write a damaged copy of the .bag ``source`` to ``out`` (see BAG_DAMAGE)."""
    from sdk.capture.bagfile import MAGIC, check_bag

    if damage not in BAG_DAMAGE:
        raise InputValidationError(f"unknown damage {damage!r}; choose one of {', '.join(BAG_DAMAGE)}")
    data = bytearray(Path(source).read_bytes())
    summary = check_bag(source)
    rng = np.random.default_rng(seed)
    if damage == "truncate_half":
        data = data[: len(data) // 2]
    elif damage == "truncate_tail":
        data = data[: len(data) - 1 - int(rng.integers(0, 16))]
    elif damage == "unindexed":
        # index_pos is the first header field the librealsense recorder writes as 0 until closing
        at = data.find(b"index_pos=")
        data[at + 10 : at + 18] = bytes(8)
    elif damage == "flip_magic":
        data[int(rng.integers(0, len(MAGIC)))] ^= 0xFF
    elif damage == "flip_header":
        data[len(MAGIC) + 4 + int(rng.integers(0, 40))] ^= 0xFF
    elif damage == "flip_index":
        # a byte of the first index record's header (its op, connection id or topic)
        header_len = int.from_bytes(data[summary.index_pos : summary.index_pos + 4], "little")
        data[summary.index_pos + 4 + int(rng.integers(0, header_len))] ^= 0xFF
    elif damage == "zero_block":
        start = int(rng.integers(len(MAGIC) + 4200, max(len(MAGIC) + 4201, summary.index_pos - 4096)))
        data[start : start + 4096] = bytes(min(4096, len(data) - start))
    elif damage == "empty":
        data = bytearray()
    elif damage == "not_a_bag":
        data = bytearray(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    path = Path(out)
    path.write_bytes(bytes(data))
    return path


def write_bag_with(path: str | os.PathLike[str], frames: list[FrameSet], *, streams: tuple[str, ...] = ("depth", "ir", "color"),
                   ir_format: str = "y8", depth_format: str = "z16", color_format: str = "rgb8",
                   color_size: tuple[int, int] | None = None) -> Path:
    """A recording librealsense itself writes (software device + recorder), with chosen streams,
    pixel formats and colour size: for 'stream missing' and 'wrong format or size' faults."""
    import gc

    from sdk.capture._rs import import_rs, intrinsics_to_rs
    from sdk.types import Intrinsics

    rs = import_rs()
    grid = frames[0].intrinsics.depth
    color_w, color_h = color_size or (grid.width, grid.height)
    color_intr = grid if color_size is None else Intrinsics(color_w, color_h, grid.fx * color_w / grid.width,
                                                            grid.fy * color_h / grid.height, color_w / 2, color_h / 2)
    bpp = {"z16": 2, "y8": 1, "y16": 2, "rgb8": 3, "bgr8": 3, "yuyv": 2, "disparity16": 2}
    device = rs.software_device()
    device.update_info(rs.camera_info.name, "Intel RealSense SR300")
    depth_sensor = device.add_sensor("Coded-Light Depth Sensor")
    color_sensor = device.add_sensor("RGB Camera")

    def add(sensor: Any, kind: Any, index: int, uid: int, fmt: str, intr: Any) -> Any:
        stream = rs.video_stream()
        stream.type, stream.index, stream.uid = kind, index, uid
        stream.width, stream.height, stream.fps, stream.bpp = intr.width, intr.height, 30, bpp[fmt]
        stream.fmt = getattr(rs.format, fmt)
        stream.intrinsics = intrinsics_to_rs(rs, intr)
        return sensor.add_video_stream(stream)

    profiles = {
        "depth": (depth_sensor, add(depth_sensor, rs.stream.depth, 0, 0, depth_format, grid), depth_format),
        "ir": (depth_sensor, add(depth_sensor, rs.stream.infrared, 1, 1, ir_format, grid), ir_format),
        "color": (color_sensor, add(color_sensor, rs.stream.color, 0, 2, color_format, color_intr), color_format),
    }
    depth_sensor.add_read_only_option(rs.option.depth_units, float(frames[0].depth_scale))
    identity = rs.extrinsics()
    identity.rotation, identity.translation = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], [0.0, 0.0, 0.0]
    names = list(profiles)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            profiles[a][1].register_extrinsics_to(profiles[b][1], identity)
            profiles[b][1].register_extrinsics_to(profiles[a][1], identity)
    recorder = rs.recorder(str(path), device)
    opened = []
    for sensor in (depth_sensor, color_sensor):
        mine = [profiles[n][1] for n in streams if profiles[n][0] is sensor]
        if mine:
            sensor.open(mine)
            sensor.start(lambda frame: None)
            opened.append(sensor)
    for frameset in frames:
        for name in streams:
            sensor, profile, fmt = profiles[name]
            video = profile.as_video_stream_profile()
            width, height = video.width(), video.height()
            pixels = _pixels_for(frameset, name, fmt, width, height)
            frame = rs.software_video_frame()
            frame.pixels, frame.stride, frame.bpp = pixels, width * bpp[fmt], bpp[fmt]
            frame.timestamp, frame.domain = float(frameset.timestamp_ms), rs.timestamp_domain.hardware_clock
            frame.frame_number, frame.profile = int(frameset.frame_number), video
            sensor.on_video_frame(frame)
    for sensor in opened:
        sensor.stop()
        sensor.close()
    del recorder
    gc.collect()
    return Path(path)


def _pixels_for(frames: FrameSet, name: str, fmt: str, width: int, height: int) -> np.ndarray:
    source = getattr(frames, name)
    if source.shape[:2] != (height, width):  # nearest-neighbour resize for an odd colour size
        ys = np.arange(height) * source.shape[0] // height
        xs = np.arange(width) * source.shape[1] // width
        source = source[ys][:, xs]
    if fmt in ("z16", "y16", "disparity16"):
        return np.ascontiguousarray(source.astype(np.uint16) if source.ndim == 2 else source[..., 0].astype(np.uint16))
    if fmt == "y8":
        return np.ascontiguousarray(source if source.ndim == 2 else source[..., 0])
    if fmt == "yuyv":
        grey = source if source.ndim == 2 else source[..., 1]
        return np.ascontiguousarray(np.stack([grey.astype(np.uint8), np.full_like(grey, 128, dtype=np.uint8)], -1))
    rgb = source if source.ndim == 3 else np.repeat(source[..., None], 3, -1)
    return np.ascontiguousarray(rgb[..., ::-1] if fmt == "bgr8" else rgb).astype(np.uint8)


# -- bundles ---------------------------------------------------------------------------------
def _edit_manifest(folder: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    edit(manifest)
    path.write_text(json.dumps(manifest, indent=1), encoding="utf-8")


def _set_default_threshold(value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(manifest: dict[str, Any]) -> None:
        points = manifest["operating_points"]
        points["points"][points["default"]]["threshold"] = value
    return edit


def _escape_model_file(manifest: dict[str, Any]) -> None:
    manifest["model_file"] = "../outside/model.onnx"


def _escape_files(manifest: dict[str, Any]) -> None:
    manifest["files"]["../outside/model.onnx"] = dict(manifest["files"]["model.onnx"])


BUNDLE_TAMPERING: dict[str, Callable[[Path], None]] = {
    "flip_model_byte": lambda b: _flip_byte(b / "model.onnx"),
    "missing_model": lambda b: (b / "model.onnx").unlink(),
    "missing_manifest": lambda b: (b / "manifest.json").unlink(),
    "manifest_not_json": lambda b: (b / "manifest.json").write_text("{not json", encoding="utf-8"),
    "manifest_not_object": lambda b: (b / "manifest.json").write_text("[]", encoding="utf-8"),
    "threshold_0": lambda b: _edit_manifest(b, _set_default_threshold(0.0)),
    "threshold_1": lambda b: _edit_manifest(b, _set_default_threshold(1.0)),
    "threshold_above_1": lambda b: _edit_manifest(b, _set_default_threshold(1.5)),
    "threshold_negative": lambda b: _edit_manifest(b, _set_default_threshold(-0.2)),
    "threshold_nan": lambda b: _edit_manifest(b, _set_default_threshold(float("nan"))),
    "threshold_text": lambda b: _edit_manifest(b, _set_default_threshold("0.5")),
    "threshold_bool": lambda b: _edit_manifest(b, _set_default_threshold(True)),
    "unknown_format": lambda b: _edit_manifest(b, lambda m: m.update(format="sr300-liveness-bundle/99")),
    "unknown_preprocess": lambda b: _edit_manifest(b, lambda m: m.update(preprocess_version="crops/0")),
    "model_file_outside": lambda b: (_copy_outside(b), _edit_manifest(b, _escape_model_file)),
    "file_entry_outside": lambda b: (_copy_outside(b), _edit_manifest(b, _escape_files)),
    "absolute_model_file": lambda b: _edit_manifest(b, lambda m: m.update(model_file=str((b / "model.onnx").resolve()))),
    "symlink_outside": lambda b: _symlink_outside(b),
    "hash_not_text": lambda b: _edit_manifest(b, lambda m: m["files"]["model.onnx"].update(sha256=12)),
    "points_not_object": lambda b: _edit_manifest(b, lambda m: m["operating_points"].update(points=[])),
    "model_not_onnx": lambda b: _replace_model(b, b"this is not an ONNX graph"),
}


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _copy_outside(bundle: Path) -> None:
    outside = bundle.parent / "outside"
    outside.mkdir(exist_ok=True)
    shutil.copy2(bundle / "model.onnx", outside / "model.onnx")


def _symlink_outside(bundle: Path) -> None:
    _copy_outside(bundle)
    (bundle / "model.onnx").unlink()
    (bundle / "model.onnx").symlink_to(bundle.parent / "outside" / "model.onnx")


def _replace_model(bundle: Path, data: bytes) -> None:
    """A model file that is not ONNX, with its hash updated (an attacker who rewrote both)."""
    from sdk.engine.bundle import sha256_file

    (bundle / "model.onnx").write_bytes(data)
    _edit_manifest(bundle, lambda m: m["files"]["model.onnx"].update(sha256=sha256_file(bundle / "model.onnx"),
                                                                     bytes=len(data)))


def tamper_bundle(source: str | os.PathLike[str], out: str | os.PathLike[str], tampering: str) -> Path:
    """Copy the bundle folder ``source`` to ``out`` and apply one of BUNDLE_TAMPERING to the copy."""
    if tampering not in BUNDLE_TAMPERING:
        raise InputValidationError(f"unknown tampering {tampering!r}; choose one of {', '.join(BUNDLE_TAMPERING)}")
    target = Path(out)
    shutil.copytree(source, target)
    BUNDLE_TAMPERING[tampering](target)
    return target


__all__ = [
    "BAG_DAMAGE", "BUNDLE_TAMPERING", "DETECTOR_FAULTS", "ENGINE_FAULTS", "SOURCE_FAULTS", "FaultPlan",
    "FaultyDetector", "FaultyEngine", "FaultySource", "damage_bag", "tamper_bundle", "write_bag_with",
]
