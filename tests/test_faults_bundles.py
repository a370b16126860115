"""Tampered model bundles, made on the fly from the shipped bundle: loading refuses each with a
ModelIntegrityError, or (a model file that is not ONNX but carries its own valid hash) the
check fails closed as MODEL_ERROR. Nothing in a manifest can make the loader read a file outside
the bundle folder."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sdk import Decision, Reason
from sdk.capture import SimulatorSource
from sdk.engine.bundle import DEFAULT_BUNDLE, SHIPPED_DIR, ModelBundle, check_manifest_safety
from sdk.errors import ModelIntegrityError
from sdk.faults import BUNDLE_TAMPERING, tamper_bundle
from sdk.session import LivenessSession, SessionConfig

REPO = Path(__file__).resolve().parent.parent
SHIPPED = SHIPPED_DIR / DEFAULT_BUNDLE
REFUSED_AT_LOAD = [name for name in BUNDLE_TAMPERING if name != "model_not_onnx"]


def test_the_shipped_bundle_passes_the_hardened_loader():
    bundle = ModelBundle.load(SHIPPED)
    assert 0.0 < bundle.operating_point().threshold < 1.0


@pytest.mark.parametrize("tampering", REFUSED_AT_LOAD)
def test_tampered_bundle_is_refused_at_load(tmp_path, tampering):
    bundle = tamper_bundle(SHIPPED, tmp_path / "bundle", tampering)
    with pytest.raises(ModelIntegrityError):
        ModelBundle.load(bundle)
    with pytest.raises(ModelIntegrityError):
        LivenessSession("live", bundle)


@pytest.mark.parametrize(
    "tampering, words",
    [("model_file_outside", "leaves the bundle"), ("file_entry_outside", "leaves the bundle"),
     ("absolute_model_file", "leaves the bundle"), ("symlink_outside", "outside the bundle"),
     ("threshold_0", "strictly between 0 and 1"), ("threshold_1", "strictly between 0 and 1"),
     ("threshold_bool", "strictly between 0 and 1"), ("unknown_format", "bundle format")],
)
def test_refusals_say_why(tmp_path, tampering, words):
    with pytest.raises(ModelIntegrityError, match=words):
        ModelBundle.load(tamper_bundle(SHIPPED, tmp_path / "bundle", tampering))


def test_model_that_is_not_onnx_fails_closed_in_the_check(tmp_path):
    bundle = tamper_bundle(SHIPPED, tmp_path / "bundle", "model_not_onnx")
    session = LivenessSession(SimulatorSource("live", 1), bundle, SessionConfig(max_frames=3))
    try:
        result = session.check()
    finally:
        session.close()
    assert result.decision is Decision.UNCERTAIN and result.reasons == (Reason.MODEL_ERROR,)


@pytest.mark.parametrize("name", ["../x.onnx", "a/../../x.onnx", "/etc/passwd", "a\\..\\x", "", "a\x00b", "./../x"])
def test_member_names_that_leave_the_folder(tmp_path, name):
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    manifest["files"][name] = dict(manifest["files"]["model.onnx"])
    with pytest.raises(ModelIntegrityError):
        check_manifest_safety(tmp_path, manifest)


def test_cli_check_with_a_tampered_bundle_is_a_clean_error(tmp_path):
    bundle = tamper_bundle(SHIPPED, tmp_path / "bundle", "model_file_outside")
    run = subprocess.run([sys.executable, "-m", "sdk.cli", "check", "--source", "live", "--model", str(bundle)],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert run.returncode == 3, run.stderr[-2000:]
    assert "Traceback" not in run.stderr and "leaves the bundle folder" in run.stderr


def test_a_copy_of_the_shipped_bundle_still_loads(tmp_path):
    """The checks refuse tampering, not copies: a verbatim copy elsewhere loads."""
    shutil.copytree(SHIPPED, tmp_path / "copy")
    assert ModelBundle.load(tmp_path / "copy").version == ModelBundle.load(SHIPPED).version


@pytest.mark.parametrize("threshold", [0.0, 1.0, float("nan"), -0.5])
def test_write_bundle_refuses_a_bad_bundle_and_leaves_nothing_behind(tmp_path, threshold):
    """write_bundle validates before anything appears at its destination; a good bundle already
    there is kept as it was."""
    from sdk.engine.bundle import write_bundle
    from tests.conftest import tiny_onnx_model

    model = tiny_onnx_model(tmp_path / "m.onnx")
    good = write_bundle(tmp_path / "out" / "b", model, name="b", version="1.0.0",
                        operating_points={"default": {"threshold": 0.5}}, default_operating_point="default")
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    manifest_before = (good.path / "manifest.json").read_bytes()
    for target in (tmp_path / "out" / "new", tmp_path / "out" / "b"):
        with pytest.raises(ModelIntegrityError, match="threshold"):
            write_bundle(target, model, name="b", version="1.0.0",
                         operating_points={"default": {"threshold": threshold}}, default_operating_point="default")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before == ["b"]
    assert (good.path / "manifest.json").read_bytes() == manifest_before
    ModelBundle.load(good.path)
