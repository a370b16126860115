"""Score/label file reading, operating points, and CLI errors (small files written here)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calibration.io import read_label_list, read_labels, read_many, read_score_table, read_scores
from calibration.threshold import OperatingPoint, threshold_for_apcer
from sdk.cli import EXIT_ERROR, main
from sdk.errors import InputValidationError


def _write(path, text):
    path.write_text(text)
    return path


def test_score_files_with_and_without_header_and_separators(tmp_path):
    a = _write(tmp_path / "a.csv", "crop0,crop0_hflip\n0.1,0.3\n0.5,0.7\n")
    b = _write(tmp_path / "b.txt", "0.2 0.4\n0.9\t0.7\n")
    c = _write(tmp_path / "c.txt", "# one view only\n0.3\n0.8\n")
    np.testing.assert_allclose(read_scores(a), [0.2, 0.6])
    np.testing.assert_allclose(read_scores(b), [0.3, 0.8])
    assert read_score_table(c).shape == (2, 1)
    np.testing.assert_allclose(read_many([a, b, c]), [(0.2 + 0.3 + 0.3) / 3, (0.6 + 0.8 + 0.8) / 3])


def test_score_file_errors(tmp_path):
    short = _write(tmp_path / "short.csv", "0.1,0.2\n")
    long = _write(tmp_path / "long.csv", "0.1,0.2\n0.3,0.4\n")
    with pytest.raises(InputValidationError, match="short.csv \\(1 rows\\).*long.csv \\(2 rows\\)"):
        read_many([short, long])
    with pytest.raises(InputValidationError, match="row 2 has 1 columns"):
        read_scores(_write(tmp_path / "ragged.csv", "0.1,0.2\n0.3\n"))
    with pytest.raises(InputValidationError, match="not numeric"):
        read_scores(_write(tmp_path / "text.csv", "0.1\nabc\n"))
    with pytest.raises(InputValidationError, match="NaN"):
        read_scores(_write(tmp_path / "nan.csv", "0.1\nnan\n"))
    with pytest.raises(InputValidationError, match="empty"):
        read_scores(_write(tmp_path / "empty.csv", "\n"))
    with pytest.raises(InputValidationError, match="cannot read"):
        read_scores(tmp_path / "missing.csv")
    with pytest.raises(InputValidationError, match="no score files"):
        read_many([])


def test_label_lists_in_both_challenge_formats_and_polarity(tmp_path):
    csv = _write(tmp_path / "l.csv", "rgb,depth,ir,label\nV/0-color.jpg,V/0-depth.jpg,V/0-ir.jpg,0\nV/1-color.jpg,V/1-depth.jpg,V/1-ir.jpg,1\n")
    txt = _write(tmp_path / "l.txt", "V/0-color.jpg V/0-depth.jpg V/0-ir.jpg 0.0\nV/1-color.jpg V/1-depth.jpg V/1-ir.jpg 1.0\n")
    np.testing.assert_array_equal(read_labels(csv), [0, 1])
    np.testing.assert_array_equal(read_labels(txt), [0, 1])
    np.testing.assert_array_equal(read_labels(txt, live_label=0), [1, 0])
    assert read_label_list(csv).paths[0] == "V/0-color.jpg"
    with pytest.raises(InputValidationError, match="not 0 or 1"):
        read_labels(_write(tmp_path / "bad.txt", "a b c 2\n"))
    with pytest.raises(InputValidationError, match="live_label"):
        read_labels(txt, live_label=2)


def test_attack_types_from_casia_paths_and_from_a_column(tmp_path):
    rows = [
        "Training/real_part/CLKJ_AS0005/real.rssdk/color/1.jpg d i 1",
        "Training/fake_part/CLKJ_AS0005/04_en_b.rssdk/color/1.jpg d i 0",
        "Training/fake_part/CLKJ_AS0137/06_enm_b.rssdk/color/9.jpg d i 0",
    ]
    listing = read_label_list(_write(tmp_path / "train.txt", "\n".join(rows) + "\n"))
    assert listing.attack_types.tolist() == ["", "4", "6"]
    column = _write(tmp_path / "typed.csv", "rgb,depth,ir,label,attack_type\nr,d,i,1,\nr,d,i,0,print\n")
    assert read_label_list(column).attack_types.tolist() == ["", "print"]
    # one attack without a type: no per-type figures at all rather than misleading ones
    rows.append("Val/0000/000001-color.jpg d i 0")
    assert read_label_list(_write(tmp_path / "mixed.txt", "\n".join(rows) + "\n")).attack_types is None


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 1)), min_size=2, max_size=50).filter(
        lambda r: 0 < sum(l for _, l in r) < len(r)
    ),
    st.sampled_from([0.0, 0.01, 0.1, 0.25, 0.5, 1.0]),
)
def test_threshold_for_apcer_is_the_smallest_admissible(rows, target):
    scores = np.array([s / 30.0 for s, _ in rows])
    labels = np.array([l for _, l in rows])
    point = threshold_for_apcer(scores, labels, target)
    attack, live = scores[labels == 0], scores[labels == 1]
    assert point.apcer == np.mean(attack >= point.threshold) <= target
    assert point.bpcer == np.mean(live < point.threshold)
    below = np.nextafter(point.threshold, -np.inf)
    if point.threshold > scores.min():
        assert np.mean(attack >= below) > target  # one float lower breaks the target
    assert point.apcer_upper_95 >= point.apcer


def test_operating_point_round_trips_through_json():
    scores = np.array([0.1, 0.2, 0.35, 0.6, 0.7, 0.9])
    labels = np.array([0, 0, 1, 0, 1, 1])
    point = threshold_for_apcer(scores, labels, 0.0, name="strict")
    assert point.threshold == np.nextafter(0.6, 1.0) and point.apcer == 0.0 and point.bpcer == pytest.approx(1 / 3)
    again = OperatingPoint.from_dict(json.loads(json.dumps(point.to_dict())))
    assert again == point
    data = point.to_dict()
    del data["name"]
    assert OperatingPoint.from_dict(data, name="strict") == point
    with pytest.raises(InputValidationError, match="lacks"):
        OperatingPoint.from_dict({"name": "x", "threshold": 0.5})
    with pytest.raises(InputValidationError, match="finite"):
        OperatingPoint.from_dict({**point.to_dict(), "threshold": float("nan")})
    with pytest.raises(InputValidationError, match=r"\[0, 1\]"):
        threshold_for_apcer(scores, labels, 1.5)


def test_cli_errors_are_exit_code_3(tmp_path, capsys):
    scores = _write(tmp_path / "s.csv", "0.1\n0.9\n0.3\n")
    labels = _write(tmp_path / "l.csv", "rgb,depth,ir,label\nr,d,i,0\nr,d,i,1\n")
    assert main(["evaluate", "--scores", str(scores), "--labels", str(labels)]) == EXIT_ERROR
    assert "2 rows but the score file(s) have 3" in capsys.readouterr().err
    labels3 = _write(tmp_path / "l3.csv", "rgb,depth,ir,label\nr,d,i,1\nr,d,i,1\nr,d,i,1\n")
    assert main(["evaluate", "--scores", str(scores), "--labels", str(labels3)]) == EXIT_ERROR
    assert "no attack" in capsys.readouterr().err
    # flipped polarity turns the same list into all attacks
    assert main(["evaluate", "--scores", str(scores), "--labels", str(labels3), "--live-label", "0"]) == EXIT_ERROR
    assert "no live" in capsys.readouterr().err


def test_cli_json_on_small_files(tmp_path, capsys):
    scores = _write(tmp_path / "s.csv", "a,b\n0.1,0.3\n0.9,0.7\n0.6,0.6\n")
    labels = _write(tmp_path / "l.txt", "r d i 0\nr d i 1\nr d i 0\n")
    assert main(["evaluate", "--scores", str(scores), "--labels", str(labels), "--json", "--threshold", "0.7"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["apcer"] == 0.0 and data["bpcer"] == 0.0 and data["threshold"] == 0.7
    assert data["tpr_at_fpr"]["1e-4"] == {"empirical": 1.0, "interpolated": 1.0, "empirical_threshold": 0.8}


@pytest.mark.parametrize("n_attack, k", [(3, 1), (6614, 115), (7, 3), (10, 1)])
def test_target_equal_to_k_over_n_allows_exactly_k(n_attack, k):
    attack = np.linspace(0.0, 0.5, n_attack)
    scores = np.r_[attack, 0.9]
    labels = np.r_[np.zeros(n_attack, int), 1]
    point = threshold_for_apcer(scores, labels, k / n_attack)
    assert point.apcer == k / n_attack
    assert point.threshold == np.nextafter(attack[-1 - k], np.inf)


def test_threshold_with_margin_sits_inside_the_admissible_interval():
    from calibration.threshold import threshold_with_margin

    attack = np.array([0.001, 0.002, 0.01, 0.05])
    live = np.array([0.95, 0.99, 0.999, 0.9999])
    scores = np.concatenate([attack, live])
    labels = np.array([0] * 4 + [1] * 4)
    point = threshold_with_margin(scores, labels, 0.0, 0.0, name="balanced")
    assert 0.05 < point.threshold < 0.95  # strictly inside the gap, not on its edge
    assert point.apcer == 0.0 and point.bpcer == 0.0 and point.rule == "centred_in_admissible_interval"
    assert OperatingPoint.from_dict(point.to_dict()) == point
    # overlapping classes: the APCER target wins over the BPCER budget
    overlap = threshold_with_margin(np.array([0.2, 0.9, 0.5, 0.6]), np.array([0, 0, 1, 1]), 0.0, 0.0)
    assert overlap.threshold == threshold_for_apcer(np.array([0.2, 0.9, 0.5, 0.6]), np.array([0, 0, 1, 1]), 0.0).threshold
    assert overlap.apcer == 0.0 and overlap.bpcer == 1.0
