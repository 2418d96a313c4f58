"""The package's shape: the library installs and scores alone, the method never imports the
book's machinery, and Table 1's size.

The method (data, corruption, model, objectives, training, scoring, calibration, evaluation,
prediction, metrics, theory, run folders) is the package ``ssae/``; the book's helpers and its
runner (``ssae-book``) are a second package, ``book/ssae_book/``, that only the notebooks, the
benchmarks and the tests import.
"""
import ast
import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "ssae"
METHOD = sorted(PKG.rglob("*.py"))
#: what the book needs and the library must not
BOOK_ONLY = ("papermill", "nbformat", "nbclient", "ipykernel", "seaborn", "jupyter_book", "ssae_book")


def _module(path: Path) -> str:
    return ".".join(path.relative_to(PKG.parent).with_suffix("").parts)


def test_no_module_of_the_library_imports_the_book_or_its_packages():
    for path in METHOD:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in BOOK_ONLY, f"{path.name} imports {name}"


def test_no_module_of_the_library_reads_the_checkout():
    for path in METHOD:
        assert not re.search(r"parents\[\d\]", path.read_text()), f"{path.name} climbs out of the package"


def test_importing_the_method_loads_nothing_of_the_book():
    mods = ", ".join(_module(p) for p in METHOD if p.name != "__main__.py")
    code = (f"import sys, importlib\nfor m in '{mods}'.split(', '): importlib.import_module(m)\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {BOOK_ONLY!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PKG.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_training_and_evaluation_import_without_a_cycle():
    out = subprocess.run([sys.executable, "-c", "import ssae.training, ssae.evaluation"], capture_output=True,
                         text=True, cwd=PKG.parent)
    assert out.returncode == 0, out.stderr[-2000:]


def test_training_imports_neither_calibration_nor_evaluation():
    """The order train -> calibrate lives in ssae.pipeline; training gets the learning curve's
    evaluator as a callback."""
    code = ("import sys, ssae.training\n"
            "print(sorted(m for m in sys.modules if m in ('ssae.calibration', 'ssae.evaluation')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PKG.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_table_1_at_width_1_has_the_paper_s_parameter_count():
    from ssae.model import SSAE

    # Table 1 of the paper: 14,131,459 parameters for RGB input and f = 3
    assert sum(p.numel() for p in SSAE(in_channels=3, f=3, width=1.0).parameters()) == 14_131_459


# ---------------------------------------------------------------- the wheel, installed alone

def _requirements(dist: md.Distribution) -> list[str]:
    """Names of the distributions ``dist`` requires (no extras, markers of this interpreter)."""
    from packaging.requirements import Requirement

    out = []
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            out.append(req.name)
    return out


def _closure(names: list[str]) -> list[md.Distribution]:
    seen, todo, out = set(), list(names), []
    while todo:
        key = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if key in seen:
            continue
        seen.add(key)
        dist = md.distribution(key)
        out.append(dist)
        todo += _requirements(dist)
    return out


def _core_site(dists: list[md.Distribution], into: Path) -> None:
    """A folder holding links to exactly the files of ``dists`` (their packages and metadata)."""
    into.mkdir()
    for dist in dists:
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            src = Path(dist.locate_file(top))
            if src.exists() and not (into / top).exists() and top != "__pycache__":
                (into / top).symlink_to(src)


@pytest.mark.slow
def test_the_wheel_installs_alone_and_scores_an_image(tmp_path):
    """Build the wheel, install it into a fresh virtual environment that holds only the wheel's
    core dependencies (and theirs), and score an image there with a committed packed model."""
    model = REPO / "models" / "aitex-fabric01" / "ssae"
    if not (model / "config.json").is_file():
        pytest.skip("no packed model in models/")
    src, wheels = tmp_path / "src", tmp_path / "wheels"  # built from a copy: nothing lands in the checkout
    shutil.copytree(REPO / "ssae", src / "ssae", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "pyproject.toml", src / "pyproject.toml")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", str(wheels), str(src)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = wheels.glob("ssae-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert all(n.split("/")[0] in ("ssae",) or ".dist-info/" in n for n in names), names
    assert not [n for n in names if "report" in n or "ssae_book" in n]
    core = [line.split(":", 1)[1].strip() for line in meta.splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line]
    core_names = [re.split(r"[<>=!~ ;\[]", c)[0] for c in core]
    assert set(core_names).isdisjoint({"papermill", "nbformat", "nbclient", "ipykernel", "seaborn",
                                       "jupyter-book"}), core_names

    env = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=120)
    py = env / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    _core_site(_closure(core_names), tmp_path / "core")
    (site / "core.pth").write_text(str(tmp_path / "core") + "\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                        "--no-index", str(wheel)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]

    code = f"""
import importlib.util, pathlib, numpy as np, ssae
from ssae import Detector
assert pathlib.Path(ssae.__file__).is_relative_to({str(site)!r}), ssae.__file__
missing = [m for m in {BOOK_ONLY!r} if importlib.util.find_spec(m) is not None]
assert not missing, missing
det = Detector.load({str(model)!r})
img = (np.random.default_rng(0).random((256, 256)) * 255).astype(np.uint8)
(res,) = det.score([img])
assert res.anomaly_map.shape == (256, 256) and np.isfinite(res.score)
print("scored", res.score)
"""
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = subprocess.run([str(py), "-I", "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env=clean, timeout=600)
    assert r.returncode == 0, r.stdout[-1000:] + r.stderr[-3000:]
    assert r.stdout.startswith("scored")
