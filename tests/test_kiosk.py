"""The kiosk: hints, the shared state, the Flask app (API, offline assets, no listings) and the check loop."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from sdk.errors import InputValidationError
from sdk.kiosk.hints import FALLBACK, hints_for
from sdk.kiosk.state import ATTRACT_AFTER_FRAMES, KioskState
from sdk.types import Decision, FaceBox, LivenessResult, Reason
from tests.conftest import REPO, make_frameset

pytest.importorskip("flask", reason="the kiosk needs the kiosk extra (Flask)")

REQUIRED_STATUS_KEYS = {"state", "decision", "score", "reasons", "fps", "model_version"}


@dataclass(frozen=True)
class Outcome:
    """The FrameOutcome fields the kiosk reads (score or gate reasons, face box, timings)."""

    score: float | None
    reasons: tuple = ()
    face_box: FaceBox | None = None
    timings_ms: dict = field(default_factory=lambda: {"detect": 2.0, "engine": 6.0})


def _state() -> KioskState:
    return KioskState("test-model", "9.9.9", "balanced", 0.5, source="sim")


def _frames(n: int = 1):
    depth = np.full((480, 640), 4800, np.uint16)  # 0.6 m
    depth[:10] = 0
    return make_frameset(color=np.full((480, 640, 3), 90, np.uint8), ir=np.full((480, 640), 120, np.uint8),
                         depth=depth, frame_number=n)


def _result(decision: Decision, score: float, reasons=(), box=None) -> LivenessResult:
    return LivenessResult(decision=decision, score=score, threshold=0.5, operating_point="balanced",
                          reasons=tuple(reasons), face_box=box, frames_used=5, model_name="test-model",
                          model_version="9.9.9")


BOX = FaceBox(250, 150, 390, 320, 0.9)


def test_hints_are_plain_words_for_each_reason_and_fall_back_for_new_ones():
    assert hints_for([Reason.FACE_TOO_FAR]) == ["Move closer"]
    assert hints_for([Reason.TOO_DARK, Reason.IR_TOO_DARK, Reason.MULTIPLE_FACES]) == ["More light, please",
                                                                                      "One face only, please"]
    assert hints_for(["NO_FACE"]) == ["Look at the camera"]
    assert hints_for(["SOMETHING_NEW"]) == [FALLBACK]
    for reason in Reason:  # every reason the SDK knows has a hint of its own
        assert hints_for([reason]) != [FALLBACK] or reason.value in ("TIMEOUT",), reason


def test_state_frames_results_and_attract_screen():
    state = _state()
    assert state.status()["state"] == "starting"
    state.begin_attempt("live (seed 1)", "LIVE")
    state.frame(_frames(), Outcome(0.8, (), BOX), progress=0.4)
    status = state.status()
    assert REQUIRED_STATUS_KEYS <= set(status)
    assert status["state"] == "checking" and status["decision"] is None and status["score"] == 0.8
    assert status["face_box"] == [250.0, 150.0, 390.0, 320.0] and status["progress"] == 0.4
    assert status["timings_ms"] == {"detect": 2.0, "engine": 6.0}
    state.finish_attempt(_result(Decision.LIVE, 0.9, box=BOX), seconds=1.2)
    status = state.status()
    assert (status["state"], status["decision"], status["score"]) == ("result", "LIVE", 0.9)
    assert status["hints"] == ["Verified: welcome"]
    (entry,) = state.results()
    assert entry["correct"] is True and entry["decision"] == "LIVE" and entry["expected"] == "LIVE"
    # nobody in view: the attract screen after a run of NO_FACE frames, not an UNCERTAIN banner
    state.begin_attempt("empty (seed 2)", "NOT_LIVE")
    for n in range(ATTRACT_AFTER_FRAMES):
        assert state.status()["state"] == "checking"
        state.frame(_frames(n + 2), Outcome(None, (Reason.NO_FACE,)), progress=0.0)
    assert state.status()["state"] == "attract"
    state.finish_attempt(_result(Decision.UNCERTAIN, float("nan"), (Reason.TIMEOUT, Reason.NO_FACE)), seconds=5)
    status = state.status()
    assert status["state"] == "attract" and status["decision"] is None and status["score"] is None
    # a print: SPOOF banner with a hint
    state.begin_attempt("print_flat (seed 3)", "NOT_LIVE")
    state.frame(_frames(20), Outcome(0.01, (), BOX), progress=0.2)
    state.finish_attempt(_result(Decision.SPOOF, 0.01, (Reason.SPOOF_SCORE,), BOX), seconds=1)
    status = state.status()
    assert status["decision"] == "SPOOF" and status["hints"] == ["Present your own face, please"]
    assert [r["decision"] for r in state.results()] == ["SPOOF", "UNCERTAIN", "LIVE"]


def test_views_are_jpegs_of_each_stream_with_the_face_box():
    import cv2

    state = _state()
    assert state.jpeg("color") is None  # no frame yet
    state.frame(_frames(), Outcome(0.9, (), BOX), progress=1.0)
    for stream in ("color", "ir", "depth"):
        image = cv2.imdecode(np.frombuffer(state.jpeg(stream), np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (480, 640, 3)
        # the box edge is drawn in the "passing" green (BGR after decoding)
        b, g, r = image[150, 320].astype(int)
        assert g > 150 and r < 120 and b < 150, (stream, (b, g, r))
    depth = cv2.imdecode(np.frombuffer(state.jpeg("depth"), np.uint8), cv2.IMREAD_COLOR)
    assert depth[2, 320].max() < 30  # holes are black
    with pytest.raises(KeyError):
        state.jpeg("thermal")


@pytest.fixture
def client():
    from sdk.kiosk.server import create_app

    state = _state()
    app = create_app(state)
    app.testing = True
    return state, app.test_client()


def test_api_status_and_results(client):
    state, http = client
    response = http.get("/api/status")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    data = response.get_json()
    assert REQUIRED_STATUS_KEYS <= set(data) and data["model_version"] == "9.9.9"
    assert http.get("/api/frame/color.jpg").status_code == 404  # nothing captured yet
    state.begin_attempt("live", "LIVE")
    state.frame(_frames(), Outcome(0.9, (), BOX), progress=1.0)
    frame = http.get("/api/frame/depth.jpg")
    assert frame.status_code == 200 and frame.mimetype == "image/jpeg" and frame.data[:2] == b"\xff\xd8"
    assert http.get("/api/frame/thermal.jpg").status_code == 404
    state.finish_attempt(_result(Decision.LIVE, 0.9, box=BOX), seconds=1.0)
    assert http.get("/api/status").get_json()["decision"] == "LIVE"
    assert http.get("/api/results").get_json()["results"][0]["decision"] == "LIVE"
    assert http.post("/api/status").status_code == 405


def test_pages_use_only_local_assets_and_no_directory_listings(client):
    _, http = client
    for page in ("/", "/operator"):
        response = http.get(page)
        assert response.status_code == 200
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        html = response.get_data(as_text=True)
        references = re.findall(r'(?:src|href)="([^"]*)"', html)
        assert references, page
        assert all(ref.startswith("/") and not ref.startswith("//") for ref in references), references
        for ref in references:
            if ref.startswith("/static/"):
                assert http.get(ref).status_code == 200, ref
    static = Path(REPO / "sdk" / "kiosk" / "static")
    for asset in static.iterdir():
        text = asset.read_text(encoding="utf-8")
        assert not re.search(r"https?://|@import|url\(", text), asset.name
    for path in ("/static/", "/static", "/static/../server.py", "/static/%2e%2e/server.py", "/templates/kiosk.html"):
        assert http.get(path).status_code == 404, path


def test_package_data_ships_the_templates_and_static_files():
    import fnmatch

    setup = (REPO / "setup.py").read_text()
    patterns = re.findall(r'"(kiosk/[^"]+)"', setup)
    files = [p.relative_to(REPO / "sdk").as_posix() for p in (REPO / "sdk" / "kiosk").rglob("*")
             if p.is_file() and p.suffix in (".html", ".css", ".js")]
    assert files and all(any(fnmatch.fnmatch(f, pat) for pat in patterns) for f in files), (files, patterns)


def test_cli_binds_to_loopback_by_default_and_checks_sources(tmp_path):
    from sdk.cli import build_parser
    from sdk.kiosk.runner import parse_source
    from sdk.kiosk.server import is_loopback

    args = build_parser().parse_args(["kiosk"])
    assert (args.host, args.port, args.source, args.open) == ("127.0.0.1", 8300, None, False)
    assert is_loopback(args.host) and not is_loopback("0.0.0.0")
    assert "live" in parse_source(None) and "print_flat" in parse_source("sim")
    assert parse_source("camera") is None
    with pytest.raises(InputValidationError, match="does not exist"):
        parse_source(str(tmp_path / "absent.bag"))
    with pytest.raises(InputValidationError, match="neither a .bag file nor a scenario"):
        parse_source("live,nonsense")


def test_runner_checks_the_simulator_cycle_through_the_session():
    from sdk.engine import ModelBundle
    from sdk.kiosk.runner import KioskRunner

    bundle = ModelBundle.load(None)
    point = bundle.operating_point()
    state = KioskState(bundle.name, bundle.version, point.name, point.threshold, source="live,print_flat")
    # A generous wall-clock timeout: the 20-frame recordings bound each check, and a loaded CI
    # machine must not turn a slow live check into TIMEOUT.
    runner = KioskRunner(state, bundle, "live,print_flat", hold_s=0.0, pace_fps=0.0, frames_per_attempt=20,
                         timeout_s=60.0, operating_point=point.name).start()
    deadline = time.monotonic() + 120
    try:
        while len(state.results()) < 2 and time.monotonic() < deadline:
            assert runner.running
            time.sleep(0.2)
    finally:
        runner.stop()
    assert not runner.running
    results = list(reversed(state.results()))[:2]
    assert [r["expected"] for r in results] == ["LIVE", "NOT_LIVE"]
    assert results[0]["decision"] == "LIVE" and results[1]["decision"] != "LIVE", results
    assert state.status()["frame"] > 0 and state.jpeg("color")[:2] == b"\xff\xd8"


def test_runner_shows_out_of_order_and_keeps_retrying_when_the_source_fails(tmp_path, tiny_bundle):
    from sdk.engine import ModelBundle
    from sdk.kiosk.runner import KioskRunner

    bag = tmp_path / "gone.bag"
    bag.write_bytes(b"not a recording")  # exists when the kiosk starts, cannot be replayed
    state = _state()
    runner = KioskRunner(state, ModelBundle.load(tiny_bundle.path), str(bag), hold_s=0.0, pace_fps=0.0,
                         retry_s=0.05).start()
    deadline = time.monotonic() + 60
    try:
        while state.status()["state"] != "error" and time.monotonic() < deadline:
            time.sleep(0.05)
        status = state.status()
        assert status["state"] == "error" and status["decision"] is None
        assert "gone.bag" in status["message"]
        assert runner.running  # it retries instead of dying
    finally:
        runner.stop()


def test_a_face_that_failed_its_gates_keeps_the_uncertain_banner_with_the_hint():
    state = _state()
    state.begin_attempt("live (far)", "LIVE")
    state.frame(_frames(), Outcome(None, (Reason.FACE_TOO_FAR,), BOX), progress=0.0)
    state.finish_attempt(_result(Decision.UNCERTAIN, float("nan"), (Reason.TIMEOUT, Reason.FACE_TOO_FAR, Reason.NO_FACE)),
                         seconds=5)
    status = state.status()
    assert (status["state"], status["decision"]) == ("result", "UNCERTAIN")
    assert status["hints"][:1] == ["Move closer"]
