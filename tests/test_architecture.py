"""The core runs headless: nothing outside draw_studio/gui imports Qt."""

import ast
import subprocess
import sys

from tiny_data import REPO

QT_MODULES = ("PySide6", "pyqtgraph", "PyQt5", "PyQt6", "shiboken6")


def test_no_core_file_imports_qt():
    offenders = []
    for path in (REPO / "draw_studio").rglob("*.py"):
        if "gui" in path.relative_to(REPO / "draw_studio").parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in QT_MODULES]
    assert offenders == []


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
