"""Shared pytest fixtures: tiny generated data sets (see tests/fixtures.py).

Each fixture writes a fresh copy under the test's ``tmp_path`` and returns the folder to
pass to ``ssae.data.load_split``; a test may damage it with the breakers of
``tests/fixtures.py`` (``truncate_file``, ``remove_mask``, ``resize_mask``, ``empty_train``).

- ``mvtec_dir``: MVTec AD layout with ground_truth, RGB, 40 x 48 (H x W), 8 train,
  2 good + 2 x 2 defective test images ("scratch", "hole").
- ``mvtec_nomask_dir``: the same without ground_truth/ (has_masks False).
- ``mvtec_grey_dir``: grey (mode L), 32 x 32, with ground_truth.
- ``mtd_dir``: Magnetic Tile Defects layout, grey JPEGs of varying size, 10 MT_Free
  (6 listed in differnet_train_split.txt), classes Blowhole and Uneven with 2 images each,
  one empty Uneven mask.

``smoke_run`` (once per test module): ``(data, run)``, the ``mvtec_dir`` fixture and a
smoke-profile run trained on it, for tests that only read a trained run (copy it to damage it).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `import fixtures` from any test

import fixtures  # noqa: E402


@pytest.fixture
def mvtec_dir(tmp_path) -> Path:
    return fixtures.make_mvtec(tmp_path)


@pytest.fixture
def mvtec_nomask_dir(tmp_path) -> Path:
    return fixtures.make_mvtec(tmp_path, masks=False)


@pytest.fixture
def mvtec_grey_dir(tmp_path) -> Path:
    return fixtures.make_mvtec(tmp_path, grey=True, size=(32, 32))


@pytest.fixture
def mtd_dir(tmp_path) -> Path:
    return fixtures.make_mtd(tmp_path)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> tuple[Path, Path]:
    from ssae.cli import main

    root = tmp_path_factory.mktemp("smoke_run")
    data = fixtures.make_mvtec(root)
    run = root / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--profile", "smoke"]) == 0
    return data, run
