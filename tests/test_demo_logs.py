"""`demo` is quiet by default: native libraries' fd-2 log lines are silenced, Python errors are not."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import REPO

#: Lines mediapipe 1.2.3's LiteRT runtime prints from C++ while the BlazeFace models load.
NATIVE_MARKERS = ("Sparsity tensors", "LiteRT", "XNNPACK")


def _cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sdk.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def test_quiet_native_logs_hides_fd2_writes_but_keeps_python_stderr():
    code = textwrap.dedent("""
        import os, sys
        from sdk.cli.native_logs import quiet_native_logs
        with quiet_native_logs():
            os.write(2, b"NATIVE-LINE from C++\\n")
            print("PYTHON-LINE on sys.stderr", file=sys.stderr)
        os.write(2, b"AFTER-BLOCK native\\n")
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "NATIVE-LINE" not in out.stderr
    assert "PYTHON-LINE on sys.stderr" in out.stderr
    assert "AFTER-BLOCK native" in out.stderr  # fd 2 is restored after the block


def test_quiet_native_logs_replays_native_output_when_the_block_fails():
    code = textwrap.dedent("""
        import os
        from sdk.cli.native_logs import quiet_native_logs
        with quiet_native_logs():
            os.write(2, b"native: cannot open model file\\n")
            raise RuntimeError("model load failed")
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "native: cannot open model file" in out.stderr
    assert "RuntimeError: model load failed" in out.stderr


def test_demo_prints_no_native_log_lines_by_default_and_keeps_them_with_verbose():
    # A long check timeout: this test is about the log lines, and a loaded machine must not matter.
    quiet = _cli("demo", "--checks", "1", "--timeout", "120")
    assert quiet.returncode == 0, quiet.stderr
    assert "[ 1] live" in quiet.stdout and "checks gave the expected decision" in quiet.stdout
    native = [line for line in quiet.stderr.splitlines() if any(m in line for m in NATIVE_MARKERS)]
    assert native == []
    verbose = _cli("demo", "--checks", "1", "--verbose", "--timeout", "120")
    assert verbose.returncode == 0, verbose.stderr
    assert any(m in verbose.stderr for m in NATIVE_MARKERS), verbose.stderr[-2000:]


def test_demo_errors_stay_visible_when_quiet(tmp_path):
    out = _cli("demo", "--checks", "1", "--model", str(tmp_path / "no-such-bundle"))
    assert out.returncode == 3
    assert "no-such-bundle" in out.stderr


def test_check_is_quiet_too_and_its_json_stays_clean():
    """`check` is the integrator's command: the result alone, native log lines only with --verbose."""
    import json

    quiet = _cli("check", "--source", "live", "--seed", "1", "--timeout", "120", "--json")
    assert quiet.returncode in (0, 1, 2), quiet.stderr
    assert json.loads(quiet.stdout)["decision"] in ("LIVE", "SPOOF", "UNCERTAIN")
    assert [line for line in quiet.stderr.splitlines() if any(m in line for m in NATIVE_MARKERS)] == []
    verbose = _cli("check", "--source", "live", "--seed", "1", "--timeout", "120", "--verbose")
    assert any(m in verbose.stderr for m in NATIVE_MARKERS), verbose.stderr[-2000:]
