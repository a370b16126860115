"""ROC and DET plots (PNG) and a Markdown report of one evaluation.

matplotlib (the ``train`` extra) is imported inside the plotting function with the Agg backend,
so importing this module, and the metrics, needs numpy only.
"""
from __future__ import annotations

import os
from pathlib import Path
from statistics import NormalDist
from typing import Any, Sequence

import numpy as np

from calibration.metrics import Evaluation, check_scores_labels, roc_curve
from sdk.errors import DependencyMissingError

ROC_PNG = "roc.png"
DET_PNG = "det.png"
REPORT_MD = "report.md"
#: DET axes are probit-scaled; rates are clipped to this floor so zeros stay on the plot.
_DET_FLOOR = 1e-5
_DET_TICKS = (1e-5, 1e-4, 1e-3, 1e-2, 5e-2, 0.2, 0.5)


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise DependencyMissingError(
            "plots need matplotlib: pip install 'sr300-liveness[train]' (or matplotlib>=3.8)"
        ) from None
    matplotlib.use("Agg", force=True)  # no display on servers; must precede pyplot
    import matplotlib.pyplot as plt

    return plt


def _probit(values: np.ndarray) -> np.ndarray:
    normal = NormalDist()
    clipped = np.clip(values, _DET_FLOOR, 1.0 - _DET_FLOOR)
    return np.array([normal.inv_cdf(float(v)) for v in clipped])


def plot_curves(scores: Any, labels: Any, out_dir: str | os.PathLike[str], title: str = "") -> tuple[Path, Path]:
    """Write roc.png (TPR vs log FPR) and det.png (BPCER vs APCER, probit axes) into out_dir."""
    s, y = check_scores_labels(scores, labels)
    fpr, tpr, _ = roc_curve(s, y)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()

    n_attack = int((y == 0).sum())
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=120)
    # A log axis cannot show FPR = 0: draw it at half of one attack, the smallest non-zero FPR.
    floor = 0.5 / n_attack
    ax.step(np.maximum(fpr, floor), tpr, where="post", lw=1.5)
    for target in (1e-4, 1e-3, 1e-2):
        ax.axvline(target, color="grey", lw=0.7, ls=":")
    ax.set_xscale("log")
    ax.set_xlim(floor, 1.0)
    ax.set_xlabel(f"FPR = APCER (log; 0 drawn at {floor:.1e})")
    ax.set_ylabel("TPR = 1 - BPCER")
    ax.set_title(f"ROC {title}".strip())
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    roc_path = out / ROC_PNG
    fig.savefig(roc_path)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=120)
    ax.plot(_probit(fpr), _probit(1.0 - tpr), lw=1.5)
    ticks = _probit(np.array(_DET_TICKS))
    labels_text = [f"{100 * t:g}%" for t in _DET_TICKS]
    ax.set_xticks(ticks, labels_text)
    ax.set_yticks(ticks, labels_text)
    lo, hi = _probit(np.array([_DET_FLOOR, 0.5]))
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.7, ls=":")  # EER line
    ax.set_xlabel(f"APCER (probit; 0 drawn at {_DET_FLOOR:g})")
    ax.set_ylabel("BPCER (probit)")
    ax.set_title(f"DET {title}".strip())
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    det_path = out / DET_PNG
    fig.savefig(det_path)
    plt.close(fig)
    return roc_path, det_path


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.10g}"


def markdown_report(evaluation: Evaluation, *, title: str = "Evaluation", sources: Sequence[str] = (),
                    images: Sequence[str] = (ROC_PNG, DET_PNG)) -> str:
    """The report as Markdown text: all metrics, per-attack-type APCER, links to the plots."""
    e = evaluation
    lines = [f"# {title}", ""]
    if sources:
        lines += ["Scores: " + ", ".join(f"`{s}`" for s in sources), ""]
    lines += [
        f"{e.n_live} live (bona fide) and {e.n_attack} attack presentations. Scores are P(live); a "
        "sample is accepted as live when score >= threshold.",
        "",
        "| metric | value |",
        "| --- | --- |",
    ]
    for key, point in e.tpr_at_fpr.items():
        lines.append(f"| TPR @ FPR={key} (empirical / interpolated) | {_fmt(point.empirical)} / {_fmt(point.interpolated)} |")
    lines += [
        f"| threshold | {_fmt(e.threshold)} |",
        f"| APCER | {_fmt(e.apcer)} ({e.n_attack_accepted}/{e.n_attack}) |",
        f"| APCER one-sided 95% upper bound (Clopper-Pearson) | {_fmt(e.apcer_upper_95)} |",
        f"| BPCER | {_fmt(e.bpcer)} ({e.n_live_rejected}/{e.n_live}) |",
        f"| BPCER one-sided 95% upper bound (Clopper-Pearson) | {_fmt(e.bpcer_upper_95)} |",
        f"| ACER | {_fmt(e.acer)} |",
        f"| EER (ROC/diagonal crossing) | {_fmt(e.eer)} |",
        f"| EER (closest point, mean of FPR and FNR) | {_fmt(e.eer_closest_point)} |",
        f"| AUC | {_fmt(e.auc)} |",
        f"| rule of three, 3/n_attack | {_fmt(e.rule_of_three_apcer)} |",
        f"| max APCER over attack types | {_fmt(e.max_apcer_per_attack_type)} |",
        "",
        "Empirical TPR@FPR is the largest TPR over ROC points with FPR <= target; interpolated is "
        "`np.interp(target, fpr, tpr)`.",
        "",
        "## APCER per attack type",
        "",
    ]
    if e.apcer_per_attack_type:
        lines += ["| attack type | attacks | accepted | APCER | 95% upper bound |", "| --- | --- | --- | --- | --- |"]
        for key, rate in e.apcer_per_attack_type.items():
            mark = " (worst)" if key == e.worst_attack_type else ""
            lines.append(f"| {key}{mark} | {rate.n_attack} | {rate.n_accepted} | {_fmt(rate.apcer)} | {_fmt(rate.apcer_upper_95)} |")
    else:
        lines.append("Attack types are not known for these samples.")
    lines.append("")
    if images:
        lines += ["## Curves", ""] + [f"![{Path(i).stem}]({i})" for i in images] + [""]
    return "\n".join(lines)


def write_report(out_dir: str | os.PathLike[str], scores: Any, labels: Any, evaluation: Evaluation,
                 *, title: str = "Evaluation", sources: Sequence[str] = ()) -> Path:
    """Write roc.png, det.png and report.md into out_dir; returns the report's path."""
    out = Path(out_dir)
    roc_path, det_path = plot_curves(scores, labels, out, title="")
    text = markdown_report(evaluation, title=title, sources=sources, images=(roc_path.name, det_path.name))
    path = out / REPORT_MD
    path.write_text(text, encoding="utf-8")
    return path
