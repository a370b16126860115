import subprocess
import sys

from sdk.cli import build_parser, main
from tests.conftest import REPO

EXPECTED = {"benchmark", "check", "demo", "devices", "evaluate", "export", "pretrain", "record", "synth-bag",
            "synth-dataset", "train"}


def test_every_subcommand_is_registered():
    parser = build_parser()
    names = set(parser._subparsers._group_actions[0].choices)  # argparse keeps them here
    assert EXPECTED <= names


def test_device_path_never_imports_torch():
    code = ("import sys, sdk, sdk.session, sdk.capture, sdk.engine, sdk.preprocess, sdk.cli; "
            "sdk.cli.build_parser(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_check_reports_errors_with_exit_code_3(tmp_path, capsys):
    code = main(["check", "--source", str(tmp_path / "absent.bag"), "--model", str(tmp_path / "no-bundle")])
    assert code == 3
    assert "no-bundle" in capsys.readouterr().err


def test_benchmark_json_has_every_stage(tiny_bundle, capsys):
    import json

    import pytest

    pytest.importorskip("pyrealsense2", reason="the benchmark replays a bag: needs the camera extra")
    assert main(["benchmark", "--model", str(tiny_bundle.path), "--frames", "4", "--warmup", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for stage in ("capture", "detect", "crops", "engine", "fusion", "end_to_end"):
        assert set(report[stage]) == {"median_ms", "p95_ms"}
        assert 0 <= report[stage]["median_ms"] <= report[stage]["p95_ms"]
    assert report["end_to_end"]["median_ms"] >= report["engine"]["median_ms"]
    assert report["meta"]["frames"] == 4
