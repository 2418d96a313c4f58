"""The package's shape: the method never imports the book's machinery, and Table 1's size.

The method (data, corruption, model, objectives, training, scoring, calibration, evaluation,
prediction, metrics, theory, run folders) lives in ``ssae/``; the book's helpers live in
``ssae/report/``, which only the command line (``ssae book``) and the notebooks import.
"""
import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "ssae"
METHOD = sorted(p for p in PKG.rglob("*.py") if "report" not in p.parts and p.name not in ("cli.py", "__init__.py"))


def _module(path: Path) -> str:
    return ".".join(path.relative_to(PKG.parent).with_suffix("").parts)


def test_no_module_of_the_method_imports_the_report_package():
    for path in METHOD:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                name = ("." * node.level) + (node.module or "")
                assert "report" not in name.split("."), f"{path.name} imports {name}"
            elif isinstance(node, ast.Import):
                assert not any("ssae.report" in a.name for a in node.names), path.name


def test_importing_the_method_loads_nothing_of_the_report_package():
    mods = ", ".join(_module(p) for p in METHOD)
    code = (f"import sys, importlib\nfor m in '{mods}'.split(', '): importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m.startswith('ssae.report')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PKG.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_training_and_evaluation_import_without_a_cycle():
    out = subprocess.run([sys.executable, "-c", "import ssae.training, ssae.evaluation"], capture_output=True,
                         text=True, cwd=PKG.parent)
    assert out.returncode == 0, out.stderr[-2000:]


def test_table_1_at_width_1_has_the_paper_s_parameter_count():
    from ssae.model import SSAE

    # Table 1 of the paper: 14,131,459 parameters for RGB input and f = 3
    assert sum(p.numel() for p in SSAE(in_channels=3, f=3, width=1.0).parameters()) == 14_131_459
