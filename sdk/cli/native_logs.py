"""Silence the log lines native libraries write straight to file descriptor 2.

mediapipe's LiteRT/TFLite runtime ("Sparsity tensors may not yet be fully supported", "Creating
LiteRT environment"), glog/absl and ONNX Runtime write from C++ to fd 2, below Python's
``sys.stderr``: neither ``logging`` nor ``warnings`` filters reach them. So ``quiet_native_logs``

1. sets the libraries' own verbosity variables (read once, when the library loads: this must run
   before the first import of mediapipe / onnxruntime, which the CLI's handlers import lazily);
2. points fd 2 at a temporary capture file, so whatever the libraries still print goes there;
3. gives Python a ``sys.stderr`` on a duplicate of the real fd 2 (when its own writes to fd 2),
   so Python-level errors, warnings, tracebacks and progress bars stay visible;
4. when the block fails, replays the tail of the captured native output on the real stderr, so a
   native error message that explains the failure is not lost.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from typing import Iterator

#: Verbosity variables of the native libraries (only set when the user has not set them).
QUIET_ENVIRONMENT = {
    "GLOG_minloglevel": "2",  # glog (mediapipe): errors and fatal only
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow Lite / absl: errors only
    "ABSL_MIN_LOG_LEVEL": "2",
    "ORT_LOG_SEVERITY_LEVEL": "3",  # ONNX Runtime's default logger: errors only
}

#: Lines of captured native output replayed when the wrapped block fails.
REPLAY_LINES = 40


def set_quiet_environment() -> None:
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


@contextlib.contextmanager
def quiet_native_logs(replay_lines: int = REPLAY_LINES) -> Iterator[None]:
    """Run a block with native fd-2 output captured (see the module docstring)."""
    set_quiet_environment()
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError):
        pass
    try:
        real_fd = os.dup(2)
    except OSError:  # no fd 2 at all (a detached process): nothing to silence
        yield
        return
    capture = tempfile.TemporaryFile(mode="w+b")
    python_stderr = sys.stderr
    # Python keeps writing to the real stderr; only what bypasses sys.stderr goes to the capture.
    # A sys.stderr that does not write to fd 2 (a test's capture, an embedding app's stream) is
    # left as it is: the capture of fd 2 does not reach it.
    visible = None
    if _writes_to_fd2(python_stderr):
        visible = io.TextIOWrapper(os.fdopen(os.dup(real_fd), "wb", buffering=0), encoding="utf-8",
                                   errors="backslashreplace", line_buffering=True, write_through=True)
    os.dup2(capture.fileno(), 2)
    if visible is not None:
        sys.stderr = visible
    failed = True
    try:
        yield
        failed = False
    finally:
        if visible is not None:
            try:
                visible.flush()
            except ValueError:
                pass
        os.dup2(real_fd, 2)
        os.close(real_fd)
        sys.stderr = python_stderr
        if visible is not None:
            try:
                visible.close()
            except OSError:
                pass
        if failed and replay_lines > 0:
            _replay_tail(capture, replay_lines)
        capture.close()


def _writes_to_fd2(stream: object) -> bool:
    try:
        return stream.fileno() == 2  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return False


def _replay_tail(capture: "io.BufferedRandom", lines: int) -> None:
    capture.seek(0)
    tail = capture.read().decode("utf-8", errors="replace").splitlines()[-lines:]
    if tail:
        print("native library output before the failure:", file=sys.stderr)
        for line in tail:
            print(f"  {line}", file=sys.stderr)


def add_verbose_argument(parser) -> None:  # parser: argparse.ArgumentParser
    """``--verbose`` for a subcommand whose native-library log lines are silenced by default."""
    parser.add_argument("--verbose", action="store_true",
                        help="keep the native libraries' log lines (mediapipe / TFLite / ONNX Runtime)")
    parser.set_defaults(quiet_native_logs=True)
