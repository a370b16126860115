"""Distillation: the loss, the live teacher on the student's own crops, a resumable student run, the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="training needs torch (the train extra)")

from sdk.errors import InputValidationError  # noqa: E402
from training.config import load_config  # noqa: E402
from training.data.fixtures import write_casia_tree  # noqa: E402
from training.distill import DistillStep, distill, distillation_loss  # noqa: E402
from training.ensemble.plan import make_plan, member_dir  # noqa: E402
from training.ensemble.teacher import EnsembleTeacher, OnnxEnsembleTeacher, teacher_engine_name  # noqa: E402
from training.models import create_model  # noqa: E402
from training.train import MODEL_NAME, load_trained_model, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = {"optim.epochs": 1, "optim.batch_size": 4, "model.options.width": 0.0625, "data.max_train_samples": 12,
        "data.max_val_samples": 4, "runtime.progress": False}


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory) -> tuple[Path, Path]:
    """A data tree and an ensemble run with two of its 24 members trained (a few steps each)."""
    base = tmp_path_factory.mktemp("distill")
    root = base / "data"
    write_casia_tree(root, live_subjects=6, attack_subjects=2, frames=2, val_samples=6)
    run = base / "run"
    members = make_plan("cpu_tiny", root, run, overrides=TINY)
    for member in members[:2]:
        train(member.config.replace(**{"runtime.threads": 1}), member_dir(run, member), log=lambda s: None)
    return root, run


def student_config(root: Path, **overrides):
    config = load_config("student_kd").replace(**{
        "data.root": str(root), "data.val_list": "val_list.txt", "optim.epochs": 2, "optim.batch_size": 4,
        "runtime.threads": 1, "runtime.progress": False, "runtime.checkpoint_every_steps": 2, "seed": 3,
        "distill.mixup_alpha": 0.4, "distill.mixup_prob": 0.5, "distill.unlabeled_lists": ["val_list.txt"],
    })
    return config.replace(**overrides) if overrides else config


def test_distillation_loss_is_zero_when_the_student_matches_the_teacher():
    teacher = torch.tensor([[0.9, 0.1], [0.3, 0.7]])
    temperature = 4.0
    matching = temperature * torch.log(teacher)  # softmax(logits / T) == teacher
    assert distillation_loss(matching, teacher, temperature).item() == pytest.approx(0.0, abs=1e-6)
    assert distillation_loss(torch.zeros(2, 2), teacher, temperature).item() > 0.0


def test_teacher_is_the_mean_of_member_probabilities():
    nets = [create_model("mlfa_resnet18", width=0.0625).eval() for _ in range(3)]
    teacher = EnsembleTeacher(nets)
    x = [torch.rand(2, 3, 112, 112) * 255 for _ in range(3)]
    with torch.no_grad():
        expected = torch.stack([torch.softmax(n(*x) / 2.0, dim=1) for n in nets]).mean(dim=0)
        assert torch.allclose(teacher(*x, temperature=2.0), expected, atol=1e-6)
    teacher.train()
    assert not any(m.training for m in teacher.modules())  # a teacher never updates its BatchNorm


def test_onnx_teacher_gives_the_torch_teachers_probabilities(tmp_path):
    pytest.importorskip("onnxruntime", reason="the ONNX teacher needs onnxruntime")
    torch.manual_seed(0)
    nets = [create_model("mlfa_resnet18", width=0.0625).eval() for _ in range(3)]
    teacher = EnsembleTeacher(nets)
    onnx_teacher = OnnxEnsembleTeacher.export(teacher, tmp_path / "teacher.onnx", threads=1)
    assert (tmp_path / "teacher.onnx").is_file() and not (tmp_path / "teacher.onnx.partial").exists()
    x = [torch.rand(5, 3, 112, 112) * 255 for _ in range(3)]  # another batch size than the export's
    with torch.no_grad():
        expected = teacher(*x, temperature=4.0)
    got = onnx_teacher(*x, temperature=4.0)
    assert got.shape == (5, 2) and torch.allclose(got, expected, atol=1e-5)
    assert torch.allclose(got.sum(dim=1), torch.ones(5), atol=1e-5)


def test_teacher_engine_choice():
    pytest.importorskip("onnxruntime", reason="auto picks onnxruntime only when it is installed")
    assert teacher_engine_name("auto", torch.device("cpu")) == "onnxruntime"
    assert teacher_engine_name("auto", torch.device("cuda")) == "torch"
    assert teacher_engine_name("torch", torch.device("cpu")) == "torch"
    with pytest.raises(InputValidationError, match="teacher_engine"):
        teacher_engine_name("tensorrt", torch.device("cpu"))
    with pytest.raises(InputValidationError, match="teacher_engine"):
        load_config("student_kd").replace(**{"runtime.teacher_engine": "tensorrt"})


class _FixedTeacher(torch.nn.Module):
    """A teacher whose probabilities are given."""

    def __init__(self, probs):
        super().__init__()
        self.probs = probs

    def forward(self, rgb, ir, depth, temperature=None):
        return self.probs


class _Spy(torch.nn.Module):
    """Records the inputs it is called with; behaves as a tiny MLFA network."""

    def __init__(self) -> None:
        super().__init__()
        self.net = create_model("mlfa_resnet18", width=0.0625)
        self.config = self.net.config
        self.seen: list[torch.Tensor] = []

    def forward(self, rgb, ir, depth, temperature: float | None = None):
        self.seen.append(rgb.detach().clone())
        logits = self.net(rgb, ir, depth)
        return torch.softmax(logits / temperature, dim=1) if temperature is not None else logits


def test_teacher_runs_live_on_the_students_own_mixed_crops(ensemble_run):
    root, _ = ensemble_run
    config = student_config(root, **{"distill.mixup_prob": 1.0})
    teacher, student = _Spy(), _Spy()
    step = DistillStep(teacher, config)
    inputs = [torch.rand(4, 3, 112, 112) * 255 for _ in range(3)]
    item = {"label": torch.tensor([1, 0, -1, 1])}
    out = step(student, inputs, item, epoch=0, step=5)
    assert torch.isfinite(out.loss) and out.counted == 4
    assert len(teacher.seen) == 1 and torch.equal(teacher.seen[0], student.seen[0])
    assert not torch.equal(student.seen[0], inputs[0])  # the batch really was mixed
    # same (seed, epoch, step): the same mix, so a resumed run repeats it exactly
    again = step(student, inputs, item, epoch=0, step=5)
    assert torch.equal(student.seen[-1], student.seen[0]) and again.loss.item() == pytest.approx(out.loss.item())


def test_distill_needs_a_complete_ensemble_unless_told(ensemble_run, tmp_path):
    root, run = ensemble_run
    with pytest.raises(InputValidationError, match="not trained"):
        distill(run, student_config(root), tmp_path / "student", log=lambda s: None)


def test_distilled_student_resumes_mid_epoch_to_the_same_weights(ensemble_run, tmp_path):
    root, run = ensemble_run
    config = student_config(root)
    full = distill(run, config, tmp_path / "full", require_all=False, log=lambda s: None)
    assert (tmp_path / "full" / MODEL_NAME).is_file()
    teacher = json.loads((tmp_path / "full" / "teacher.json").read_text())
    assert teacher["engine"] == "onnxruntime" and len(teacher["onnx_sha256"]) == 64
    assert (tmp_path / "full" / "teacher.onnx").is_file()
    assert teacher["n_members"] == 2 and all(len(m["model_sha256"]) == 64 for m in teacher["members"])
    assert {"name", "init", "fold", "seed", "config", "model_sha256"} <= set(teacher["members"][0])
    # 12 labelled + 6 unlabelled renders = 18 samples -> 4 steps of 4 per epoch
    assert full.history[0]["train_loss"] > 0 and "val_acer" in full.history[-1]
    cut = distill(run, config, tmp_path / "cut", require_all=False, stop_after_steps=2, log=lambda s: None)
    assert cut.epochs_done == 0
    resumed = distill(run, config, tmp_path / "cut", require_all=False, resume=True, log=lambda s: None)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    meta = json.loads(torch.load(tmp_path / "full" / MODEL_NAME, weights_only=True)["meta"])
    assert meta["n_teacher_members"] == 2 and meta["config"]["distill"]["teacher"] == str(run.resolve())
    assert load_trained_model(tmp_path / "full" / MODEL_NAME).config.name == "mlfa_resnet18"


def test_cli_distill(ensemble_run, tmp_path):
    from sdk.cli import main

    root, run = ensemble_run
    code = main(["distill", "--ensemble", str(run), "--config", "student_kd", "--root", str(root),
                 "--out", str(tmp_path / "s"), "--partial", "--quiet", "--set", "optim.epochs=1",
                 "--set", "optim.batch_size=4", "--set", "runtime.threads=1", "--set", "data.max_train_samples=8",
                 "--set", "data.val_list=null"])
    assert code == 0 and (tmp_path / "s" / MODEL_NAME).is_file()
    assert main(["distill", "--ensemble", str(run), "--config", "student_kd", "--root", str(root),
                 "--out", str(tmp_path / "s2"), "--quiet"]) == 3  # typed error: members missing


def test_compare_student_ensemble_and_best_member(ensemble_run, tmp_path):
    from training.compare import compare, render_markdown

    root, run = ensemble_run
    distill(run, student_config(root, **{"optim.epochs": 1}), tmp_path / "s", require_all=False, log=lambda s: None)
    report = compare(run, tmp_path / "s" / MODEL_NAME, (root, "val_list.txt"),
                     {"in_distribution": [(root, "val_list.txt")], "heldout_demo": [(root, "train_list.txt")]},
                     require_all=False, latency_rounds=3, pools={"pooled": ["in_distribution", "heldout_demo"]},
                     log=lambda s: None)
    assert report["n_members"] == 2 and report["best_member"] in {"resnet34-face_fold1_seed1", "resnet34-face_fold1_seed2"}
    for set_name in ("calibration", "in_distribution", "heldout_demo"):
        for label in ("student", "ensemble", "best_member"):
            m = report["results"][set_name][label]
            assert set(m["tpr_at_fpr"]) == {"1e-2", "1e-3"} and 0 <= m["bpcer"] <= 1
    assert report["results"]["heldout_demo"]["student"]["n_live"] + report["results"]["heldout_demo"]["student"]["n_attack"] == 24
    # a pool is its parts' crops, scored once: its counts are their sums
    pooled = report["results"]["pooled"]["student"]
    parts = [report["results"][name]["student"] for name in ("in_distribution", "heldout_demo")]
    assert pooled["n_live"] == sum(p["n_live"] for p in parts) and pooled["n_attack"] == sum(p["n_attack"] for p in parts)
    with pytest.raises(InputValidationError, match="unknown"):
        compare(run, tmp_path / "s" / MODEL_NAME, (root, "val_list.txt"), {"a": [(root, "val_list.txt")]},
                require_all=False, latency_rounds=1, pools={"p": ["b"]}, log=lambda s: None)
    cost = report["cost"]
    # two members of one architecture: the ensemble costs exactly twice one member
    assert cost["ensemble"]["flops_per_crop"] == 2 * cost["best_member"]["flops_per_crop"]
    assert cost["student"]["flops_per_crop"] > 0 and cost["ensemble"]["cpu_latency"]["median_ms"] > 0
    # the device's engine too: every model timed in ONNX Runtime, and the ratio reported
    assert all(cost[k]["onnxruntime_cpu_latency"]["median_ms"] > 0 for k in ("student", "best_member", "ensemble"))
    assert cost["ratios"]["onnxruntime_latency_ensemble_over_student"] == pytest.approx(
        cost["ensemble"]["onnxruntime_cpu_latency"]["median_ms"] / cost["student"]["onnxruntime_cpu_latency"]["median_ms"])
    assert "in ONNX Runtime" in render_markdown(report)
    assert "MFLOPs per crop" in render_markdown(report)


def test_predict_views_without_flip_is_the_first_view(ensemble_run):
    from training.train import predict_views

    root, _ = ensemble_run
    model = create_model("mlfa_resnet18", width=0.0625).eval()
    both, labels = predict_views(model, root / "val_list.txt", root=root, batch_size=4)
    one, labels_one = predict_views(model, root / "val_list.txt", root=root, batch_size=4, flip=False)
    assert one.shape == (6, 1) and both.shape == (6, 2)
    assert (labels == labels_one).all() and abs(one[:, 0] - both[:, 0]).max() < 1e-6


def test_compare_subsets_lists_the_same_way_every_run():
    from training.compare import _subset_rows

    assert list(_subset_rows(5, None)) == [0, 1, 2, 3, 4] and list(_subset_rows(5, 9)) == [0, 1, 2, 3, 4]
    a = _subset_rows(100, 10)
    assert len(a) == 10 and list(a) == sorted(a) and list(a) == list(_subset_rows(100, 10))
    labels = [1] * 5 + [0] * 95  # a rare class keeps at least one row
    b = _subset_rows(100, 3, labels)
    assert {labels[i] for i in b} == {0, 1} and len(b) <= 4


def test_compare_scores_match_predict_views(ensemble_run):
    from training.compare import _load_inputs, _tta_scores
    from training.data.casia import read_list
    from training.train import predict_views

    root, _ = ensemble_run
    model = create_model("mlfa_resnet18", width=0.0625).eval()
    inputs, labels = _load_inputs(root, read_list(root / "val_list.txt"))
    views, expected_labels = predict_views(model, root / "val_list.txt", root=root, batch_size=4)
    assert (labels == expected_labels).all()
    assert abs(_tta_scores(model, inputs, 4, True) - views.mean(axis=1)).max() < 1e-6
    assert abs(_tta_scores(model, inputs, 4, False) - views[:, 0]).max() < 1e-6


def test_compare_models_side_by_side_each_at_its_own_threshold(ensemble_run, tmp_path):
    from training.compare import compare_models, render_models_markdown

    root, run = ensemble_run
    members = sorted((run / "members").glob("*/model.pt"))[:2]
    assert len(members) == 2
    report = compare_models({"first": members[0], "second": members[1]}, (root, "val_list.txt"),
                            {"a": [(root, "val_list.txt")], "b": [(root, "train_list.txt")]},
                            pools={"both": ["a", "b"]}, log=lambda s: None)
    assert set(report["calibration"]["thresholds"]) == {"first", "second"}
    assert set(report["results"]) == {"calibration", "a", "b", "both"}
    both, parts = report["results"]["both"]["first"], [report["results"][k]["first"] for k in ("a", "b")]
    assert both["n_live"] == sum(p["n_live"] for p in parts)
    # the calibration set is scored at the threshold set on it: APCER at most the target there
    assert report["results"]["calibration"]["second"]["apcer"] <= 0.01 + 1e-9
    text = render_models_markdown(report)
    assert "| first |" in text and "| second |" in text and "**both**" in text
    with pytest.raises(InputValidationError):
        compare_models({}, (root, "val_list.txt"), {}, log=lambda s: None)


def test_compare_models_tool(ensemble_run, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("compare_models_tool", ROOT / "tools" / "compare_models.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    root, run = ensemble_run
    member = sorted((run / "members").glob("*/model.pt"))[0]
    code = tool.main(["--model", f"m={member}", "--calibration", f"{root}:val_list.txt",
                      "--eval", f"x={root}:val_list.txt", "--eval", f"x={root}:train_list.txt",
                      "--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md")])
    report = json.loads((tmp_path / "r.json").read_text())
    assert code == 0 and report["results"]["x"]["m"]["n_live"] + report["results"]["x"]["m"]["n_attack"] > 12
    assert "| m |" in (tmp_path / "r.md").read_text()
    assert tool.main(["--model", f"m={member}", "--calibration", f"{root}:val_list.txt",
                      "--eval", f"x={root}:val_list.txt", "--pool", "p=nope"]) == 3  # typed error, exit 3


def test_a_trained_model_can_teach_in_the_ensembles_place(ensemble_run, tmp_path):
    """A teacher assistant: one member's model.pt teaches; teacher.json records that model, and
    its mean of one equals the model's own softmax."""
    from training.ensemble.plan import load_members
    from training.ensemble.teacher import ModelTeacher

    root, run = ensemble_run
    model_pt = member_dir(run, load_members(run)[0]) / MODEL_NAME
    source = ModelTeacher.load(model_pt)
    net = load_trained_model(model_pt)
    x = [torch.rand(2, 3, 112, 112) * 255 for _ in range(3)]
    with torch.no_grad():
        expected = torch.softmax(net(*x).float() / 2.0, dim=1)
        assert torch.allclose(EnsembleTeacher.from_model(source)(*x, temperature=2.0), expected, atol=1e-6)
    config = student_config(root, **{"optim.epochs": 1})
    result = distill(None, config, tmp_path / "ta", teacher_model=model_pt, log=lambda s: None)
    record = json.loads((tmp_path / "ta" / "teacher.json").read_text())
    assert record["teacher_model"] == str(model_pt.resolve()) and record["n_members"] == 1
    assert "ensemble_run" not in record
    assert record["members"][0]["model_sha256"] == source.record()["model_sha256"]
    assert record["members"][0]["config"]["model"]["name"] == source.config.model.name
    meta = json.loads(torch.load(tmp_path / "ta" / MODEL_NAME, weights_only=True)["meta"])
    assert meta["teacher_model"] == str(model_pt.resolve()) and meta["config"]["distill"]["teacher"] == str(model_pt.resolve())
    assert result.epochs_done == 1
    # resuming that run with another teacher is refused, as with other member weights
    other = member_dir(run, load_members(run)[1]) / MODEL_NAME
    with pytest.raises(InputValidationError, match="other teacher weights"):
        distill(None, config, tmp_path / "ta", teacher_model=other, resume=True, log=lambda s: None)


def test_distill_takes_exactly_one_teacher(ensemble_run, tmp_path):
    root, run = ensemble_run
    model_pt = next(run.glob(f"members/*/{MODEL_NAME}"))
    config = student_config(root)
    with pytest.raises(InputValidationError, match="exactly one"):
        distill(run, config, tmp_path / "a", teacher_model=model_pt, log=lambda s: None)
    with pytest.raises(InputValidationError, match="exactly one"):
        distill(None, config, tmp_path / "b", log=lambda s: None)
    with pytest.raises(InputValidationError, match="does not exist"):
        distill(None, config, tmp_path / "c", teacher_model=tmp_path / "missing.pt", log=lambda s: None)
    not_a_model = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(1)}, not_a_model)
    with pytest.raises(InputValidationError, match="not a model.pt"):
        distill(None, config, tmp_path / "d", teacher_model=not_a_model, log=lambda s: None)


def test_a_teacher_model_must_have_trained_on_the_students_composites(ensemble_run, tmp_path):
    """The cpu_tiny members trained without colour_swap_live: a student that uses it is refused."""
    root, run = ensemble_run
    model_pt = next(run.glob(f"members/*/{MODEL_NAME}"))
    config = student_config(root, **{"augment.colour_swap_live": 0.25})
    with pytest.raises(InputValidationError, match="colour_swap_live .*1 of the 1"):
        distill(None, config, tmp_path / "s", teacher_model=model_pt, log=lambda s: None)


def test_cli_distill_from_a_teacher_model(ensemble_run, tmp_path):
    from sdk.cli import main

    root, run = ensemble_run
    model_pt = next(run.glob(f"members/*/{MODEL_NAME}"))
    code = main(["distill", "--teacher-model", str(model_pt), "--config", "student_kd", "--root", str(root),
                 "--out", str(tmp_path / "s"), "--quiet", "--set", "optim.epochs=1", "--set", "optim.batch_size=4",
                 "--set", "runtime.threads=1", "--set", "data.max_train_samples=8", "--set", "data.val_list=null"])
    assert code == 0 and json.loads((tmp_path / "s" / "teacher.json").read_text())["n_members"] == 1
    with pytest.raises(SystemExit):  # argparse: --ensemble and --teacher-model exclude each other
        main(["distill", "--ensemble", str(run), "--teacher-model", str(model_pt), "--config", "student_kd",
              "--out", str(tmp_path / "s3")])


def test_composites_the_teacher_never_saw_are_taught_by_their_label(ensemble_run):
    """With distill.unseen_composites "label", a colour-swapped live row takes cross-entropy on its
    label in place of its KD share: the teacher's opinion of that row no longer moves the loss,
    while every other row is still distilled as before."""
    from training.distill import composite_of, composites_unseen_by
    from training.ensemble.plan import Member

    root, _ = ensemble_run
    config = student_config(root, **{"distill.unseen_composites": "label", "augment.colour_swap_live": 0.25,
                                     "distill.mixup_alpha": 0.0})
    student = _Spy()
    inputs = [torch.rand(3, 3, 112, 112) * 255 for _ in range(3)]
    item = {"label": torch.tensor([1, 1, 0]), "swapped": ["", "rgb_live", ""]}

    def loss_with(teacher_probs, label_only, batch=item):
        return DistillStep(_FixedTeacher(teacher_probs), config, label_only)(student, inputs, batch, epoch=0, step=0).loss.item()

    probs = torch.tensor([[0.2, 0.8], [0.3, 0.7], [0.9, 0.1]])
    other = probs.clone()
    other[1] = torch.tensor([0.95, 0.05])  # the teacher changes its mind about the composite only
    assert loss_with(probs, ("colour_swap_live",)) == pytest.approx(loss_with(other, ("colour_swap_live",)), abs=1e-6)
    assert loss_with(probs, ()) != pytest.approx(loss_with(other, ()), abs=1e-4)
    # every row distilled: the gated path gives the plain loss when no row is label-only
    plain = {"label": item["label"], "swapped": ["", "", ""]}
    assert loss_with(probs, ("colour_swap_live",), plain) == pytest.approx(loss_with(probs, ()), abs=1e-6)

    assert [composite_of(t) for t in ("", "relief", "rgb_live", "rgb+ir")] == [
        None, "relief_negative", "colour_swap_live", "modality_swap"]
    member = Member("m", "ir50-face", 1, 1, config.replace(**{"augment.colour_swap_live": 0.0}))
    assert composites_unseen_by(config, [member]) == ("colour_swap_live",)
    # "refuse" (the default) still refuses such a teacher; "label" with mixup is refused
    from training.config import validate_config
    from training.distill import check_teacher_saw_composites
    check_teacher_saw_composites(config, [member])
    with pytest.raises(InputValidationError, match="colour_swap_live"):
        check_teacher_saw_composites(config.replace(**{"distill.unseen_composites": "refuse"}), [member])
    with pytest.raises(InputValidationError, match="mixup"):
        validate_config(config.replace(**{"distill.mixup_alpha": 0.4}))
    with pytest.raises(InputValidationError, match="unseen_composites"):
        validate_config(config.replace(**{"distill.unseen_composites": "ask"}))
    validate_config(config)


def test_live_rows_taught_by_label_copy_the_teachers_attacks_only(ensemble_run):
    """With distill.live_rows "label", the teacher's opinion of a labelled live row no longer moves
    the loss (its KD share is cross-entropy on "live"); attacks and unlabelled renders are still
    distilled; the default is the old loss."""
    from training.config import validate_config

    root, _ = ensemble_run
    config = student_config(root, **{"distill.live_rows": "label", "distill.mixup_alpha": 0.0})
    student = _Spy()
    inputs = [torch.rand(4, 3, 112, 112) * 255 for _ in range(3)]
    item = {"label": torch.tensor([1, 0, -1, 1])}

    def loss_with(teacher_probs, cfg=config):
        return DistillStep(_FixedTeacher(teacher_probs), cfg)(student, inputs, item, epoch=0, step=0).loss.item()

    probs = torch.tensor([[0.2, 0.8], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    doubts_live = probs.clone()
    doubts_live[[0, 3]] = torch.tensor([0.9, 0.1])  # the teacher doubts both live faces
    assert loss_with(probs) == pytest.approx(loss_with(doubts_live), abs=1e-6)
    for row in (1, 2):  # an attack, an unlabelled render: still the teacher's
        changed = probs.clone()
        changed[row] = torch.tensor([0.1, 0.9])
        assert loss_with(changed) != pytest.approx(loss_with(probs), abs=1e-4)
    teacher_default = config.replace(**{"distill.live_rows": "teacher"})
    assert loss_with(probs, teacher_default) != pytest.approx(loss_with(doubts_live, teacher_default), abs=1e-4)
    with pytest.raises(InputValidationError, match="live_rows"):
        validate_config(config.replace(**{"distill.live_rows": "both"}))
    with pytest.raises(InputValidationError, match="mixup"):
        validate_config(config.replace(**{"distill.mixup_alpha": 0.4}))


def test_a_live_floor_raises_only_the_teachers_doubts_about_live_rows(ensemble_run):
    """distill.live_floor: a live row the teacher doubts below the floor is taught the floor (moved
    to temperature T); a confident live row, an attack and an unlabelled render keep the teacher's
    target, and every row keeps the KD loss (no cross-entropy swap)."""
    from training.config import validate_config
    from training.distill import raise_live_targets

    root, _ = ensemble_run
    config = student_config(root, **{"distill.live_floor": 0.95, "distill.mixup_alpha": 0.0})
    student = _Spy()
    inputs = [torch.rand(4, 3, 112, 112) * 255 for _ in range(3)]
    item = {"label": torch.tensor([1, 0, -1, 1])}

    def loss_with(teacher_probs, cfg=config):
        return DistillStep(_FixedTeacher(teacher_probs), cfg)(student, inputs, item, epoch=0, step=0).loss.item()

    temperature = config.distill.temperature
    floor_at_t = torch.sigmoid(torch.logit(torch.tensor(0.95, dtype=torch.float64)) / temperature).item()
    confident = floor_at_t + 0.05
    probs = torch.tensor([[0.5, 0.5], [0.9, 0.1], [0.6, 0.4], [1 - confident, confident]])  # row 0: below
    doubted = probs.clone()
    doubted[0] = torch.tensor([0.9, 0.1])  # the teacher doubts that live face more
    assert loss_with(probs) == pytest.approx(loss_with(doubted), abs=1e-6)  # both raised to the floor
    for row in (1, 2, 3):  # an attack, an unlabelled render, a live row above the floor: the teacher's
        changed = probs.clone()
        changed[row] = torch.tensor([0.02, 0.98])
        assert loss_with(changed) != pytest.approx(loss_with(probs), abs=1e-4)
    off = config.replace(**{"distill.live_floor": None})
    assert loss_with(probs, off) != pytest.approx(loss_with(doubted, off), abs=1e-4)

    raised = raise_live_targets(probs, item["label"], floor_at_t)
    assert raised[0, 1].item() == pytest.approx(floor_at_t) and raised.sum(dim=1).allclose(torch.ones(4))
    assert torch.equal(raised[1:], probs[1:]) and torch.equal(probs[0], torch.tensor([0.5, 0.5]))  # no in-place edit
    for bad in (0.5, 1.0, "high", True):
        with pytest.raises(InputValidationError, match="live_floor"):
            validate_config(config.replace(**{"distill.live_floor": bad}))
    with pytest.raises(InputValidationError, match="mixup"):
        validate_config(config.replace(**{"distill.mixup_alpha": 0.4}))
    with pytest.raises(InputValidationError, match="no effect"):
        validate_config(config.replace(**{"distill.live_rows": "label"}))


def test_a_run_folder_another_process_writes_is_refused_before_anything_is_written(ensemble_run, tmp_path):
    """Two distillations (or trainings) given one --out once raced into a teacher.onnx.partial:
    the second is refused, and the folder holds nothing of its own."""
    from sdk.errors import RunFolderBusyError
    from tests.test_runlock import hold_in_child

    root, run = ensemble_run
    out = tmp_path / "student"
    holder = hold_in_child(out)
    try:
        config = student_config(root, **{"optim.epochs": 1})
        with pytest.raises(RunFolderBusyError, match="another process"):
            distill(run, config, out, require_all=False, log=lambda s: None)
        with pytest.raises(RunFolderBusyError, match="another process"):
            train(config, out, log=lambda s: None)
        assert sorted(p.name for p in out.iterdir()) == [".writer.lock"]
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    distill(run, config, out, require_all=False, log=lambda s: None)  # free again once the writer is gone
    assert (out / MODEL_NAME).is_file()
