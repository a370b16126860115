"""Recover a trainable model.pt from a model bundle whose training checkpoint is gone.

The bundle's ONNX graph has every BatchNorm folded into its convolution; `training.recover`
rebuilds a network of the bundle's architecture (from the newest training record of its
provenance) that computes the graph's P(live), with BatchNorm statistics read on calibration
crops so that it also trains like the original. The model.pt it writes is one of
`training.train` (weights + the training config of the record), so it can warm-start a
fine-tune (`init.weights`) or teach (`sr300-liveness distill --teacher-model`); its meta says it
was recovered, from which bundle and graph hash, and how closely it matches.

    python tools/recover_checkpoint.py --bundle sdk/bundles/mlfa_student_sim \\
        --data runs/s4 --list runs/s4/lists/student_train.txt --out runs/recovered/S_2.38.0/model.pt
    # an older shipped network, straight from git (N: 2.29.0-2.34.0's graph):
    python tools/recover_checkpoint.py --bundle sdk/bundles/mlfa_student_sim --git-rev 733689e ...

Exit status: 0 written, 2 the graph and the recovered network disagree or do not map, 3 bad input.
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdk.errors import InputValidationError, ModelError, ModelIntegrityError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def extract_bundle_at(rev: str, bundle: Path, into: Path) -> Path:
    """The bundle folder as committed at ``rev`` (git archive), written under ``into``."""
    try:
        relative = bundle.resolve().relative_to(REPO)
    except ValueError as error:
        raise InputValidationError(f"--git-rev needs a bundle inside the repository {REPO}, got {bundle}") from error
    result = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev, str(relative)],
                            capture_output=True, check=False)
    if result.returncode != 0:
        raise InputValidationError(f"git archive {rev} {relative}: {result.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=BytesIO(result.stdout)) as archive:
        archive.extractall(into, filter="data")
    folder = into / relative
    if not folder.is_dir():
        raise InputValidationError(f"{relative} does not exist at {rev}")
    return folder


def recover(bundle_dir: Path, data_root: Path, list_path: Path, max_crops: int, seed: int,
            **extra: Any) -> tuple[Any, dict]:
    """(model.pt payload, report) for the bundle in ``bundle_dir``; ``extra`` joins the report."""
    from sdk.engine.bundle import ModelBundle
    from sdk.preprocess import crops_to_inputs
    from training.config import config_from_dict
    from training.data.casia import load_model_crops, read_list
    from training.models.registry import create_model
    from training.recover import newest_training_record, recover_network
    from training.train import model_payload

    bundle = ModelBundle.load(bundle_dir)  # refuses files that do not match the manifest's hashes
    key, record = newest_training_record(bundle.manifest)
    config = config_from_dict(record["config"])
    samples = read_list(list_path)
    if len(samples) < 2:
        raise InputValidationError(f"{list_path} lists {len(samples)} crops; the statistics need at least 2")
    random.Random(seed).shuffle(samples)
    chosen = samples[:max_crops]
    inputs = crops_to_inputs([load_model_crops(data_root, s) for s in chosen])
    network = create_model(config.model.name, **config.model.options)
    report = recover_network(bundle.model_path, network, inputs)
    recovered_from = {
        "bundle": bundle.name, "version": bundle.version, "model_sha256": bundle.model_sha256,
        "training_record": key, "statistics_list": str(list_path), "statistics_root": str(data_root),
        "statistics_seed": seed, **report, **extra,
    }
    return model_payload(network, config, recovered_from=recovered_from), recovered_from


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, type=Path, help="model bundle folder (manifest.json + graph)")
    parser.add_argument("--git-rev", help="take the bundle folder as committed at this git revision")
    parser.add_argument("--data", required=True, type=Path, help="data root the list's paths are relative to")
    parser.add_argument("--list", required=True, type=Path, help="CASIA-style list of crops for the BatchNorm statistics")
    parser.add_argument("--max-crops", type=int, default=512, help="crops drawn from the list (default 512)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    parser.add_argument("--out", required=True, type=Path, help="model.pt to write (its report beside it)")
    args = parser.parse_args(argv)

    from training.train import atomic_save, atomic_write_text

    try:
        if args.max_crops < 2:
            raise InputValidationError("--max-crops must be at least 2")
        if args.out.exists():
            raise InputValidationError(f"{args.out} exists; recovery never overwrites a model file")
        with tempfile.TemporaryDirectory() as scratch:
            folder = extract_bundle_at(args.git_rev, args.bundle, Path(scratch)) if args.git_rev else args.bundle
            payload, report = recover(folder, args.data, args.list, args.max_crops, args.seed,
                                      **({"git_rev": args.git_rev} if args.git_rev else {}))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_save(payload, args.out)
        atomic_write_text(args.out.with_name(args.out.stem + "_recovery.json"), json.dumps(report, indent=2) + "\n")
    except (InputValidationError, ModelIntegrityError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    except ModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.out}: {report['bundle']} {report['version']} recovered; "
          f"{report['n_batchnorms_refolded']} BatchNorms refolded on {report['n_calibration_crops']} crops; "
          f"|P(live) - graph| <= {report['max_abs_diff_eval_vs_graph']:.2g} (eval), "
          f"{report['max_abs_diff_train_mode_first_batch']:.2g} (train mode, first batch)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
