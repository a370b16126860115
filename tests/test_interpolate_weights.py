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


def test_a_soup_of_two_runs_is_their_mean_and_each_must_start_from_the_base(tmp_path):
    from training.ensemble.plan import sha256_file
    from training.interpolate import soup_state

    base = _write(tmp_path / "base", 1)
    started = {"init_report.json": {"weights": str(base), "sha256": sha256_file(base)}}
    first = _write(tmp_path / "z", 2, **started, **{"config.json": {"name": "Z"}, "data.json": {"train": {"count": 4}}})
    second = _write(tmp_path / "z2", 3, **started, **{"config.json": {"name": "Z2"}, "data.json": {"train": {"count": 5}}})
    states = [read_model_file(path)[1] for path in (base, first, second)]
    exit_code = load_tool("interpolate_weights").main(["--base", str(base), "--tuned", str(first), "--tuned",
                                                        str(second), "--alpha", "0.5", "--out", str(tmp_path / "ab")])
    assert exit_code == 0
    meta, mixed = read_model_file(tmp_path / "ab" / MODEL_NAME)
    conv = next(k for k in mixed if k.endswith("weight") and mixed[k].dim() == 4)
    expected = 0.5 * states[0][conv] + 0.25 * states[1][conv] + 0.25 * states[2][conv]
    assert torch.allclose(mixed[conv], expected, atol=1e-6)
    assert not torch.allclose(mixed[conv], 0.5 * states[0][conv] + 0.5 * states[1][conv], atol=1e-4)
    written = json.loads((tmp_path / "ab" / "interpolation.json").read_text())
    assert [part["sha256"] for part in written["soup"]] == [sha256_file(first), sha256_file(second)]
    assert "tuned" not in written and meta["interpolation"] == written
    assert [part["data"]["train"]["count"] for part in written["soup"]] == [4, 5]  # each run's own lists
    provenance = load_tool("package_fine_tune").fine_tune_provenance(
        {"name": "m", "version": "1.0.0", "provenance": {"members": []}}, tmp_path / "ab", "soup", "cmd")
    assert provenance["fine_tune"]["data"] == {"train": {"count": 4}}
    assert len(provenance["fine_tune"]["interpolation"]["soup"]) == 2
    assert json.loads((tmp_path / "ab" / "config.json").read_text()) == {"name": "Z"}  # the first run's records

    soup = soup_state(states[1:])
    assert torch.allclose(soup[conv], (states[1][conv] + states[2][conv]) / 2)
    with pytest.raises(InputValidationError, match="at least one"):
        soup_state([])
    with pytest.raises(InputValidationError, match="given twice"):
        interpolate_runs(base, [first, first], 0.5, tmp_path / "twice")
    elsewhere = _write(tmp_path / "other", 4, **{"init_report.json": {"sha256": "0" * 64}})
    with pytest.raises(InputValidationError, match="not the base"):
        interpolate_runs(base, [first, elsewhere], 0.5, tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere").exists()  # nothing written on a refusal
