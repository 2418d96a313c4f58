"""Learning curves: a run evaluates itself at fixed steps, resumes, and continues its curve."""

import pytest

import ssae.pipeline as P
import ssae.runs as R
import ssae.training as T
from ssae.cli import build_config, make_parser
from ssae.config import override, profile
from ssae.data import load_split


def test_curve_grid_is_geometric_and_stops_before_the_budget():
    assert T.curve_grid(4000) == (250, 500, 1000, 2000)
    assert T.curve_grid(250) == ()
    assert T.curve_grid(20, first=5) == (5, 10)


def test_cli_curve_flag_fills_the_grid_from_the_step_budget():
    args = make_parser().parse_args(["train", "--data", "x", "--out", "y", "--steps", "2000", "--curve"])
    assert build_config(args).train.curve == (250, 500, 1000)
    args = make_parser().parse_args(["train", "--data", "x", "--out", "y", "--curve", "--set", "train.curve=(3,)"])
    assert build_config(args).train.curve == (3,)  # an explicit --set wins


def test_a_run_evaluates_itself_at_its_curve_steps_and_at_the_end(mvtec_dir, tmp_path):
    cfg = override(profile("smoke"), train={"steps": 5, "curve": (2, 4)})
    split = load_split(str(mvtec_dir), cfg.data)
    run = tmp_path / "run"
    P.train(cfg, split, run, progress=False)
    rows = R.read_curve(run)
    assert [r["step"] for r in rows] == [2, 4, 5]  # the grid, then the last step
    for r in rows:
        for key in ("image_auroc", "pixel_auroc", "aupro", "restoration_pixel_auroc", "train_seconds",
                    "eval_seconds", "precision", "hardware", "per_defect"):
            assert key in r, key
        assert 0.0 <= r["image_auroc"] <= 1.0
    assert rows[0]["train_seconds"] <= rows[1]["train_seconds"] <= rows[2]["train_seconds"]
    assert not list(run.glob("*.tmp"))


def test_a_continued_run_extends_its_curve(mvtec_dir, tmp_path):
    split = load_split(str(mvtec_dir), profile("smoke").data)
    run = tmp_path / "run"
    P.train(override(profile("smoke"), train={"steps": 3, "curve": (2,)}), split, run, progress=False)
    first = R.read_curve(run)
    assert [r["step"] for r in first] == [2, 3]
    # a larger budget and a longer grid: the run resumes at step 3 and the curve goes on
    res = P.train(override(profile("smoke"), train={"steps": 8, "curve": (2, 4)}), split, run, progress=False)
    assert res["steps"] == 8
    rows = R.read_curve(run)
    assert [r["step"] for r in rows] == [2, 3, 4, 8]
    assert rows[0] == first[0]  # earlier points are kept as they were


def test_an_interrupted_curve_evaluation_is_redone_on_resume(mvtec_dir, tmp_path, monkeypatch):
    cfg = override(profile("smoke"), train={"steps": 4, "curve": (2,), "checkpoint_every": 100})
    split = load_split(str(mvtec_dir), cfg.data)
    run = tmp_path / "run"
    real = P.curve_point

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(P, "curve_point", interrupted)
    with pytest.raises(KeyboardInterrupt):
        P.train(cfg, split, run, progress=False)
    assert R.read_curve(run) == []
    monkeypatch.setattr(P, "curve_point", real)
    P.train(cfg, split, run, progress=False)
    assert [r["step"] for r in R.read_curve(run)] == [2, 4]


def test_a_damaged_curve_file_is_a_one_line_error(tmp_path):
    (tmp_path / "curve.jsonl").write_text('{"step": 1}\nnot json\n')
    with pytest.raises(T.SsaeError, match=r"curve.jsonl:2"):
        R.read_curve(tmp_path)
