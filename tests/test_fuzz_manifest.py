"""Fuzzing the bundle manifest parser: the shipped manifest with parts replaced by arbitrary JSON.
Loading gives a verified ModelBundle whose accessors work, or a ModelIntegrityError; never
another exception, never a path outside the bundle folder, never a threshold outside (0, 1)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdk.engine.bundle import ModelBundle
from sdk.errors import ModelIntegrityError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**64) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8) | st.sampled_from(["model.onnx", "../model.onnx", "/etc/passwd", "balanced", "0" * 64]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
#: where in the manifest a value is replaced (a path of keys); () replaces the whole manifest
PLACES = [(), ("format",), ("name",), ("version",), ("model_file",), ("inputs",), ("inputs", 0), ("inputs", 0, "name"),
          ("output",), ("preprocess_version",), ("operating_points",), ("operating_points", "default"),
          ("operating_points", "points"), ("operating_points", "points", "balanced"),
          ("operating_points", "points", "balanced", "threshold"), ("files",), ("files", "model.onnx"),
          ("files", "model.onnx", "sha256"), ("files", "model.onnx", "bytes"), ("files", "extra.bin")]


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory, ) -> Path:
    from sdk.engine.bundle import write_bundle
    from tests.conftest import tiny_onnx_model

    folder = tmp_path_factory.mktemp("fuzz_bundle")
    return write_bundle(folder / "bundle", tiny_onnx_model(folder / "m.onnx"), name="fuzz", version="1",
                        operating_points={"balanced": {"threshold": 0.5}}, default_operating_point="balanced").path


def replaced(manifest: object, place: tuple, value: object) -> object:
    if not place:
        return value
    data = json.loads(json.dumps(manifest))
    node = data
    for key in place[:-1]:
        node = node[key]
    node[place[-1]] = value
    return data


@FUZZ
@given(place=st.sampled_from(PLACES), value=json_values)
def test_manifest_with_any_part_replaced(bundle_dir, tmp_path_factory, place, value):
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    folder = tmp_path_factory.mktemp("m") / "bundle"
    shutil.copytree(bundle_dir, folder)
    (folder / "manifest.json").write_text(json.dumps(replaced(manifest, place, value)), encoding="utf-8")
    try:
        bundle = ModelBundle.load(folder)
    except ModelIntegrityError:
        return
    # it loaded: everything the session asks of it works and stays inside the folder
    assert bundle.model_path.resolve().parent == folder.resolve()
    assert all(isinstance(name, str) for name in bundle.input_names)
    for name in bundle.manifest["operating_points"]["points"]:
        assert 0.0 < bundle.operating_point(name).threshold < 1.0
    assert bundle.operating_point().name == bundle.default_operating_point


@FUZZ
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_manifest_bytes(bundle_dir, tmp_path_factory, raw):
    folder = tmp_path_factory.mktemp("b") / "bundle"
    shutil.copytree(bundle_dir, folder)
    (folder / "manifest.json").write_bytes(raw)
    with pytest.raises(ModelIntegrityError):
        ModelBundle.load(folder)
