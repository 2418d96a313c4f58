"""The analysis scripts of the findings chapter run on fixtures: benchmarks/untrained_maps.py and
benchmarks/reconstructions.py (their real-data numbers are in book/findings.md)."""
import subprocess
import sys
from pathlib import Path

import fixtures
from ssae.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _run(*args):
    p = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_untrained_maps_prints_every_map(tmp_path):
    out = _run("benchmarks/untrained_maps.py", "--data", fixtures.make_mtd(tmp_path), "--size", "32")
    rows = [ln for ln in out.splitlines() if "box" in ln]
    assert len(rows) == 7
    for ln in rows:  # pixel AUROC, image max, image mean: fractions
        assert all(0.0 <= float(v) <= 1.0 for v in ln.split()[-3:])


def test_reconstructions_figure_is_labelled_and_written(tmp_path):
    data = fixtures.make_mvtec(tmp_path)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--profile", "smoke"]) == 0
    png = tmp_path / "fig" / "r.png"
    out = _run("benchmarks/reconstructions.py", run, "--data", data, "--out", png, "--n", "2")
    assert png.is_file() and png.stat().st_size > 1000 and "wrote" in out
    assert not list(png.parent.glob("*.tmp.png"))
