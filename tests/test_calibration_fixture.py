"""Metrics on the real CASIA-SURF validation scores of the reference solution (shared fixture).

Expected values are the fixture README's (computed there with scikit-learn's roc_curve).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from calibration.io import read_label_list, read_labels, read_many, read_score_table
from calibration.metrics import evaluate
from calibration.threshold import threshold_for_apcer
from sdk.cli import main
from tests.conftest import shared_dir

FIXTURE = shared_dir() / "fixtures" / "casia_surf_val_scores"
pytestmark = pytest.mark.skipif(
    not (FIXTURE / "README.md").is_file(),
    reason=f"CASIA-SURF score fixture not found at {FIXTURE} (set SR300_SHARED to the shared/ folder)",
)
FOLDS = [FIXTURE / "exp1_2stage_seed1" / f"fold{i}_tta_epoch31_val_score.txt" for i in (1, 2, 3)]
LABELS = FIXTURE / "labels" / "phase1_list.txt"
DERIVED = FIXTURE / "derived" / "ensemble_val_scores.csv"
N_LIVE, N_ATTACK = 2994, 6614


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return read_labels(LABELS)


@pytest.fixture(scope="module")
def derived() -> dict[str, np.ndarray]:
    table = np.loadtxt(DERIVED, delimiter=",", skiprows=1)
    names = DERIVED.read_text().splitlines()[0].split(",")
    return {name: table[:, i] for i, name in enumerate(names)}


def test_labels_parse_to_the_published_counts(labels):
    assert labels.shape == (N_LIVE + N_ATTACK,)
    assert int(labels.sum()) == N_LIVE
    assert read_label_list(LABELS).attack_types is None  # Val paths carry no attack type


def test_model_a_files_average_to_the_derived_column(derived):
    # TTA columns first, then the three fold files: the reference ensemble's order.
    assert read_score_table(FOLDS[0]).shape == (N_LIVE + N_ATTACK, 2)
    np.testing.assert_allclose(read_many(FOLDS), derived["modelA_exp1_2stage"], rtol=0, atol=1e-12)


def test_model_a_metrics_match_the_readme(labels):
    e = evaluate(read_many(FOLDS), labels, 0.5)
    assert (e.n_live, e.n_attack) == (N_LIVE, N_ATTACK)
    for key in ("1e-2", "1e-3"):
        assert e.tpr_at_fpr[key].empirical == 1.0 and e.tpr_at_fpr[key].interpolated == 1.0
    assert e.tpr_at_fpr["1e-4"].empirical == pytest.approx(2990 / 2994, abs=1e-15)
    assert e.tpr_at_fpr["1e-4"].interpolated == pytest.approx(2990 / 2994, abs=1e-15)
    assert e.tpr_at_fpr["1e-4"].empirical == pytest.approx(0.9986639947, abs=1e-10)
    assert e.n_attack_accepted == 115 and e.apcer == pytest.approx(115 / 6614, abs=1e-15)
    assert e.apcer == pytest.approx(0.0173873602, abs=1e-10)
    assert e.bpcer == 0.0
    assert e.acer == pytest.approx(0.0086936801, abs=1e-10)
    assert e.eer == pytest.approx(1 / 6614, abs=1e-15)
    assert e.eer_closest_point == pytest.approx(7.5597e-5, abs=1e-9)
    assert e.eer_closest_point == pytest.approx(0.5 / 6614, abs=1e-15)


@pytest.mark.parametrize(
    "column, apcer, bpcer, acer",
    [
        ("ensemble_raw", 161 / 6614, 0.0, 0.0121711521),
        ("ensemble_calibrated", 0.0, 1 / 2994, 0.000167000668),
    ],
)
def test_ensemble_columns_match_the_readme(labels, derived, column, apcer, bpcer, acer):
    e = evaluate(derived[column], labels, 0.5)
    for key in ("1e-2", "1e-3", "1e-4"):
        assert e.tpr_at_fpr[key].empirical == 1.0 and e.tpr_at_fpr[key].interpolated == 1.0
    assert e.apcer == pytest.approx(apcer, abs=1e-15)
    assert e.bpcer == pytest.approx(bpcer, abs=1e-15)
    assert e.acer == pytest.approx((apcer + bpcer) / 2, abs=1e-15)
    assert e.acer == pytest.approx(acer, abs=1e-10)  # the README prints 10 significant digits
    assert e.eer == 0.0 and e.eer_closest_point == 0.0


def test_calibrated_scores_rounded_to_six_decimals_give_zero_errors(labels, derived):
    e = evaluate(np.round(derived["ensemble_calibrated"], 6), labels, 0.5)
    assert e.apcer == 0.0 and e.bpcer == 0.0 and e.acer == 0.0


def test_single_seed_members_reproduce_the_reference_table(labels, derived):
    # Another check on independent columns: the group means still give TPR@1e-4 near the paper.
    tpr = {name: evaluate(derived[name], labels).tpr_at_fpr["1e-4"].empirical for name in ("exp2", "exp3b", "exp3c")}
    assert all(0.98 < value <= 1.0 for value in tpr.values()), tpr


def test_operating_point_on_model_a(labels):
    scores = read_many(FOLDS)
    point = threshold_for_apcer(scores, labels, 1e-3, name="strict")
    assert point.apcer <= 1e-3
    # one attack more would break the target: the threshold sits just above the 7th highest attack
    attacks = np.sort(scores[labels == 0])[::-1]
    assert np.count_nonzero(attacks >= point.threshold) == 6
    assert point.threshold == np.nextafter(attacks[6], np.inf)
    assert point.bpcer == pytest.approx(np.mean(scores[labels == 1] < point.threshold))


def test_cli_json_has_the_documented_shape(capsys):
    code = main(["evaluate", "--scores", *map(str, FOLDS), "--labels", str(LABELS), "--threshold", "0.5", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data["n_live"], int) and isinstance(data["n_attack"], int)
    assert (data["n_live"], data["n_attack"]) == (N_LIVE, N_ATTACK)
    assert set(data["tpr_at_fpr"]) == {"1e-2", "1e-3", "1e-4"}
    for key, point in data["tpr_at_fpr"].items():
        assert isinstance(point["empirical"], float) and isinstance(point["interpolated"], float), key
    assert data["tpr_at_fpr"]["1e-4"]["empirical"] == pytest.approx(2990 / 2994, abs=1e-15)
    for key in ("threshold", "apcer", "bpcer", "acer", "eer"):
        assert isinstance(data[key], float), key
    assert data["apcer"] == pytest.approx(115 / 6614, abs=1e-15)
    assert data["eer"] == pytest.approx(1 / 6614, abs=1e-15)
    assert data["eer_closest_point"] == pytest.approx(0.5 / 6614, abs=1e-15)
    assert data["apcer_upper_95"] > data["apcer"]


def test_cli_human_table_and_report(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    code = main(["evaluate", "--scores", *map(str, FOLDS), "--labels", str(LABELS), "--report", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "115/6614" in out and "TPR@FPR=1e-4" in out
    report = (tmp_path / "report.md").read_text()
    assert "0.9986639947" in report and "(roc.png)" in report
    for name in ("roc.png", "det.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
