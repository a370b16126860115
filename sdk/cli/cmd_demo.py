"""`sr300-liveness demo`: the SDK at work on the default source with the shipped model.

With an SR300 connected it checks whoever stands in front of it; without one it runs the
virtual SR300 through live and attack scenarios and prints a line per check.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from sdk.cli.argtypes import positive_float
from sdk.cli.native_logs import add_verbose_argument

#: Scenario sequence of the no-camera demo: (scenario, seed). Seeds are outside the training range.
DEMO_SEQUENCE: tuple[tuple[str, int], ...] = (
    ("live", 900001),
    ("print_flat", 900002),
    ("cut_eyes_flat", 900003),
    ("live", 900004),
    ("cut_eyes_nose_curved", 900005),
    ("screen_replay", 900006),
    ("mask_3d", 900007),
    ("live", 900008),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="watch the SDK tell live faces from attacks (camera if present, else the simulator)",
    )
    parser.add_argument("--source", default=None, help="a .bag file or scenario instead of the default source")
    parser.add_argument("--model", default=None, help="model bundle folder (default: the shipped model)")
    parser.add_argument("--checks", type=int, default=len(DEMO_SEQUENCE), help="number of simulator checks")
    parser.add_argument("--headless", action="store_true", help="no window (the only mode on a machine without a screen)")
    parser.add_argument("--output", default=None, help="write annotated frames to this .mp4 file")
    parser.add_argument("--timeout", type=positive_float, default=5.0)
    add_verbose_argument(parser)
    parser.set_defaults(handler=run)


def _camera_connected() -> bool:
    try:
        from sdk.capture import list_devices

        return bool(list_devices())
    except Exception:  # no pyrealsense2 / libusb: no camera either
        return False


def run(args: argparse.Namespace) -> int:
    from sdk.capture import SimulatorSource
    from sdk.engine import ModelBundle
    from sdk.session import LivenessSession, SessionConfig
    from sdk.sim import get_scenario

    bundle = ModelBundle.load(args.model)
    config = SessionConfig(timeout_s=args.timeout)
    writer = _VideoWriter(Path(args.output)) if args.output else None
    if args.source is not None:
        plan = [(args.source, None)]
    elif _camera_connected():
        plan = [(None, None)] * max(1, args.checks)
    else:
        print("No RealSense camera connected: running the virtual SR300 (simulator).")
        plan = [DEMO_SEQUENCE[i % len(DEMO_SEQUENCE)] for i in range(args.checks)]
    print(f"Model {bundle.name} {bundle.version}, operating point "
          f"{bundle.default_operating_point} (threshold {bundle.operating_point().threshold:.3f})")
    correct = 0
    try:
        for index, (spec, seed) in enumerate(plan, start=1):
            source = SimulatorSource(spec, seed) if seed is not None else spec
            label = spec or "camera"
            start = time.perf_counter()
            with LivenessSession(source, bundle, config) as session:
                result = session.check(on_frame=writer.frame_hook(label) if writer else None)
            elapsed = (time.perf_counter() - start) * 1e3
            score = "  n/a" if result.score != result.score else f"{result.score:5.3f}"
            reasons = ",".join(r.value for r in result.reasons) or "-"
            verdict = ""
            if seed is not None:
                expected_live = get_scenario(spec).label == 1
                ok = result.is_live == expected_live
                correct += ok
                verdict = "ok " if ok else "WRONG"
            print(f"[{index:2d}] {label:<28s} -> {result.decision.value:<9s} score {score} "
                  f"{result.frames_used:3d} frames {elapsed:7.1f} ms  {verdict} {reasons}")
            if writer:
                writer.hold(result)
    finally:
        if writer:
            writer.close()
            print(f"annotated video: {writer.path}")
    if all(seed is not None for _, seed in plan):
        print(f"{correct}/{len(plan)} checks gave the expected decision (attacks must never be LIVE).")
    return 0


class _VideoWriter:
    """Annotated colour frames (box, per-frame score, final decision) into an .mp4 file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = None
        self._last = None

    def frame_hook(self, label: str):
        def hook(frames, outcome) -> None:
            import cv2

            image = cv2.cvtColor(frames.color, cv2.COLOR_RGB2BGR)
            if outcome.face_box is not None:
                b = outcome.face_box
                colour = (0, 200, 0) if outcome.score is not None and outcome.score >= 0.5 else (0, 0, 230)
                cv2.rectangle(image, (int(b.x0), int(b.y0)), (int(b.x1), int(b.y1)), colour, 2)
            text = f"{label}  " + (f"P(live) {outcome.score:.2f}" if outcome.score is not None
                                   else ",".join(r.value for r in outcome.reasons))
            cv2.putText(image, text, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
            self._write(image)
            self._last = image

        return hook

    def hold(self, result) -> None:
        """Show the decision for half a second at the end of each check."""
        import cv2

        if self._last is None:
            return
        image = self._last.copy()
        colour = {"LIVE": (0, 200, 0), "SPOOF": (0, 0, 230)}.get(result.decision.value, (0, 200, 230))
        cv2.putText(image, result.decision.value, (10, 460), cv2.FONT_HERSHEY_SIMPLEX, 1.2, colour, 3)
        for _ in range(15):
            self._write(image)

    def _write(self, image) -> None:
        import cv2

        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = image.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
            if not self._writer.isOpened():
                from sdk.errors import LivenessError

                raise LivenessError(f"{self.path}: OpenCV cannot write an .mp4 file here")
        self._writer.write(image)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
