"""Weight-space interpolation (WiSE-FT) of two trainings of one network, and its packaging record."""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch", reason="training needs torch (the train extra)")

from sdk.errors import InputValidationError  # noqa: E402
from tests.conftest import load_tool  # noqa: E402
from training.interpolate import interpolate_runs, interpolate_state  # noqa: E402
from training.models import create_model  # noqa: E402
from training.train import MODEL_NAME, load_trained_model, model_payload, read_model_file  # noqa: E402


def _write(folder, seed, width=0.0625, **records):
    torch.manual_seed(seed)
    net = create_model("mlfa_resnet18", width=width, stem_stride=2)
    with torch.no_grad():  # BatchNorm statistics that differ between the two, as after training
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
                module.num_batches_tracked.fill_(seed)
    folder.mkdir(parents=True)
    torch.save(model_payload(net, trained_by=f"seed{seed}"), folder / MODEL_NAME)
    for name, value in records.items():
        (folder / name).write_text(json.dumps(value))
    return folder / MODEL_NAME


def test_the_ends_are_the_parents_and_the_middle_is_their_mean(tmp_path):
    base = _write(tmp_path / "base", 1)
    tuned = _write(tmp_path / "tuned", 2, **{"config.json": {"name": "Z"}, "init_report.json": {"weights": "base"},
                                            "teacher.json": {"n_members": 24}})
    _, base_state = read_model_file(base)
    _, tuned_state = read_model_file(tuned)
    for alpha, expected in ((0.0, base_state), (1.0, tuned_state)):
        mixed = interpolate_state(base_state, tuned_state, alpha)
        floats = [k for k, v in mixed.items() if v.is_floating_point()]
        assert all(torch.equal(mixed[k], expected[k]) for k in floats)
    record = interpolate_runs(base, tuned, 0.5, tmp_path / "mix")
    meta, mixed = read_model_file(tmp_path / "mix" / MODEL_NAME)
    key = next(k for k in mixed if k.endswith("running_var"))
    assert torch.allclose(mixed[key], (base_state[key] + tuned_state[key]) / 2)
    conv = next(k for k in mixed if k.endswith("weight") and mixed[k].dim() == 4)
    assert torch.allclose(mixed[conv], (base_state[conv] + tuned_state[conv]) / 2)
    counter = next(k for k in mixed if k.endswith("num_batches_tracked"))
    assert int(mixed[counter]) == 2  # integer buffers are the tuned network's
    assert meta["interpolation"] == record and record["alpha"] == 0.5 and len(record["base"]["sha256"]) == 64
    assert meta["trained_by"] == "seed2"  # the rest of the tuned run's meta
    assert json.loads((tmp_path / "mix" / "teacher.json").read_text()) == {"n_members": 24}
    load_trained_model(tmp_path / "mix" / MODEL_NAME)  # a network the packager can export
    with pytest.raises(InputValidationError, match="exists"):
        interpolate_runs(base, tuned, 0.5, tmp_path / "mix")

    provenance = load_tool("package_fine_tune").fine_tune_provenance(
        {"name": "m", "version": "1.0.0", "provenance": {"members": []}}, tmp_path / "mix", "half way", "cmd")
    assert provenance["fine_tune"]["interpolation"]["alpha"] == 0.5
    assert provenance["fine_tune"]["teacher"] == {"n_members": 24}


def test_refuses_two_different_networks_and_an_alpha_outside_0_1(tmp_path):
    base = _write(tmp_path / "base", 1)
    wider = _write(tmp_path / "wider", 2, width=0.125)
    with pytest.raises(InputValidationError, match="model_options differs"):
        interpolate_runs(base, wider, 0.5, tmp_path / "mix")
    _, state = read_model_file(base)
    with pytest.raises(InputValidationError, match="alpha"):
        interpolate_state(state, state, 1.5)
    fewer = dict(state)
    fewer.pop(next(iter(fewer)))
    with pytest.raises(InputValidationError, match="keys differ"):
        interpolate_state(state, fewer, 0.5)


def test_tool_writes_the_folder(tmp_path, capsys):
    base = _write(tmp_path / "base", 1)
    tuned = _write(tmp_path / "tuned", 2)
    assert load_tool("interpolate_weights").main(["--base", str(base), "--tuned", str(tuned), "--alpha", "0.25",
                                                   "--out", str(tmp_path / "mix")]) == 0
    assert json.loads(capsys.readouterr().out)["alpha"] == 0.25
    assert (tmp_path / "mix" / "interpolation.json").is_file()
