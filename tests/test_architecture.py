"""The layers hold: import contracts (import-linter), a clean linter (ruff), and a core that runs without Qt."""

import shutil
import subprocess
import sys

import pytest
from tiny_data import REPO

QT_MODULES = ("PySide6", "pyqtgraph", "PyQt5", "PyQt6", "shiboken6")


def tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path=str(REPO.parent))
    if path is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return path


def test_import_contracts_are_kept():
    result = subprocess.run([tool("lint-imports")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout and "3 kept, 0 broken" in result.stdout


def test_the_qt_contract_covers_every_core_module():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    headless = next(c for c in config if "headless" in c["name"])
    listed = set(headless["source_modules"])
    package = REPO / "draw_studio"
    core = {f"draw_studio.{p.stem}" for p in package.glob("*.py") if p.stem not in ("__init__", "__main__")}
    core |= {f"draw_studio.{p.name}" for p in package.iterdir() if (p / "__init__.py").is_file() and p.name != "gui"}
    assert core - listed == set(), "add these core modules to the headless contract in pyproject.toml"


def test_the_linter_is_clean():
    result = subprocess.run([tool("ruff"), "check", "draw_studio", "tests", "main.py"], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:]


def test_importing_every_core_module_loads_no_qt():
    code = (
        "import importlib, pkgutil, sys, draw_studio\n"
        "for m in pkgutil.walk_packages(draw_studio.__path__, 'draw_studio.'):\n"
        "    if not m.name.startswith('draw_studio.gui') and not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "from draw_studio.cli import build_parser; build_parser()\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}]\n"
        "assert not bad, bad\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
