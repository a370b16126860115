"""Nothing executes from data: no loader in the repository can run code stored in a file.

An AST scan of every Python file of the shipped packages and tools looks for the ways a file's
content can become code: pickle (and its relatives marshal, shelve, dill, joblib,
pandas.read_pickle), torch.load without weights_only=True, numpy.load with allow_pickle=True,
yaml.load (unsafe loader), eval / exec, and TorchScript loading. The scanner is tested on
snippets first, so a clean result means something. Bundle member paths that leave the bundle
folder are refused by the loader (tests/test_faults_bundles.py has every variant).
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCANNED = ("sdk", "calibration", "training", "tools", "examples")
FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "joblib", "cloudpickle"}
#: attribute calls that deserialise code-carrying formats
FORBIDDEN_CALLS = {("pd", "read_pickle"), ("pandas", "read_pickle"), ("jit", "load"), ("torch.jit", "load"),
                   ("np", "loads"), ("numpy", "loads")}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def findings(source: str, where: str = "<snippet>") -> list[str]:
    """Every construct of the list above in ``source``, as 'where:line: what'."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            found += [f"{where}:{line}: import {a.name}" for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FORBIDDEN_MODULES:
            found.append(f"{where}:{line}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            head, _, attr = name.rpartition(".")
            if name in ("eval", "exec", "builtins.eval", "builtins.exec"):
                found.append(f"{where}:{line}: {name}()")
            elif attr == "load" and head in ("torch",) and not _is_true(_keyword(node, "weights_only")):
                found.append(f"{where}:{line}: torch.load without weights_only=True")
            elif attr == "load" and head in ("np", "numpy") and _keyword(node, "allow_pickle") is not None \
                    and not (isinstance(_keyword(node, "allow_pickle"), ast.Constant)
                             and _keyword(node, "allow_pickle").value is False):
                found.append(f"{where}:{line}: numpy.load with allow_pickle")
            elif attr in ("load", "load_all") and head == "yaml":
                found.append(f"{where}:{line}: yaml.{attr} (use yaml.safe_load)")
            elif (head.rpartition(".")[2] if "." in head else head, attr) in FORBIDDEN_CALLS or (head, attr) in FORBIDDEN_CALLS:
                found.append(f"{where}:{line}: {name}()")
    return found


@pytest.mark.parametrize(
    "snippet",
    [
        "import pickle",
        "from pickle import loads",
        "import dill as d",
        "x = torch.load(p)",
        "x = torch.load(p, weights_only=False)",
        "x = np.load(p, allow_pickle=True)",
        "x = numpy.load(p, allow_pickle=flag)",
        "x = yaml.load(text)",
        "eval(text)",
        "exec(code)",
        "df = pd.read_pickle(p)",
        "m = torch.jit.load(p)",
    ],
)
def test_scanner_catches(snippet):
    assert findings(snippet), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        "x = torch.load(p, map_location='cpu', weights_only=True)",
        "x = np.load(p)",
        "x = np.load(p, allow_pickle=False)",
        "x = yaml.safe_load(text)",
        "model.eval()",
        "json.loads(text)",
    ],
)
def test_scanner_allows(snippet):
    assert findings(snippet) == [], snippet


def python_files() -> list[Path]:
    return sorted(p for folder in SCANNED for p in (REPO / folder).rglob("*.py") if "__pycache__" not in p.parts)


def test_no_loader_executes_data():
    files = python_files()
    assert len(files) > 50  # the scan really covers the packages
    problems = [f for path in files for f in findings(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))]
    assert problems == []


def test_shipped_bundle_holds_no_pickled_files():
    """The shipped model is ONNX and JSON only: no .pt/.pth/.pkl/.npy that a loader could unpickle."""
    bundles = REPO / "sdk" / "bundles"
    suffixes = {p.suffix for p in bundles.rglob("*") if p.is_file()}
    assert suffixes <= {".onnx", ".json", ".md", ".txt"}, suffixes
    for manifest in bundles.rglob("manifest.json"):
        names = json.loads(manifest.read_text())["files"]
        assert all(Path(n).suffix in (".onnx", ".json") for n in names)
