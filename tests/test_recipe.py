"""The training recipe: trained at the size it is evaluated at, a schedule that ends with the
time budget, and the start-up of objective (1) (``train.startup``)."""
import json

import pytest
import torch

import ssae.pipeline as P
import ssae.training as T
from ssae.cli import build_config, main as cli_main
from ssae.config import check, override, profile
from ssae.data import load_split
from ssae.errors import SsaeError
from ssae.objectives import flatness, objective1, whole_image


def _final_and_eval(cfg):
    return T.crop_size(1.0, cfg, max_side=cfg.data.image_size), T.evaluated_side(cfg)


def test_crops_that_end_below_the_evaluation_size_leave_weights_untrained():
    """The check itself: 128 px crops never reach the off-centre taps of the d = 16 branches
    (1/8 resolution), which a 256 px evaluation uses."""
    cfg = override(profile("cpu"), model={"in_channels": 1})
    unused = T.untrained_weights(cfg, 128, 256)
    assert unused and all("weight" in n for n in unused)
    assert not T.untrained_weights(cfg, 256, 256)


@pytest.mark.parametrize("name,settings", [("cpu", None), ("paper", None), ("cpu", "mtd-64px"), ("smoke", None)])
def test_every_weight_used_at_the_evaluation_size_is_trained_at_the_final_crop(name, settings):
    import argparse

    args = argparse.Namespace(profile=name, settings=[settings] if settings else None, objective=None, seed=None,
                              steps=None, minutes=None, image_size=None, corruption=None, set=None)
    cfg = build_config(args)
    final, eval_side = _final_and_eval(cfg)
    assert final == eval_side
    assert T.untrained_weights(override(cfg, model={"in_channels": 1}), final, eval_side) == []


def test_a_time_budget_ends_the_learning_rate_and_crop_schedules():
    """Bounded by time, the cosine decay and the crop growth are planned on the clock: at the end
    of the budget the learning rate is 0 and the crop has reached its last size, whatever the
    step count was set to."""
    t = override(profile("cpu"), train={"steps": 1_000_000, "max_minutes": 120.0}).train
    cfg = override(profile("cpu"), train={"steps": 1_000_000, "max_minutes": 120.0})
    end = T.fraction_done(t, 30_000, 120 * 60.0)
    assert end == 1.0 and T.learning_rate(t, end) == pytest.approx(0.0, abs=1e-12)
    assert T.crop_size(end, cfg, max_side=256) == cfg.train.crop_end
    half = T.fraction_done(t, 15_000, 60 * 60.0)
    assert T.learning_rate(t, half) == pytest.approx(t.lr / 2)
    assert T.crop_size(half, cfg, max_side=256) == cfg.train.crop_end  # crops grow over the first half
    assert T.crop_size(0.25, cfg, max_side=256) < cfg.train.crop_end


def test_a_run_stopped_by_its_budget_ends_at_the_end_of_its_schedule(mvtec_grey_dir, tmp_path, monkeypatch):
    """A whole run on a fake clock: the last logged learning rate is near 0 and the last crop is
    the image size although the step count is far off."""
    clock = {"now": 1000.0}

    def tick():
        clock["now"] += 3.0  # every call of time.time() moves the clock by 3 s
        return clock["now"]

    monkeypatch.setattr(T.time, "time", tick)
    cfg = override(profile("smoke"), train={"steps": 100_000, "max_minutes": 1.0, "lr_schedule": "cosine",
                                            "log_every": 1, "crop_start": 32, "crop_end": 64})
    split = load_split(str(mvtec_grey_dir), cfg.data)
    res = T.train(cfg, split, tmp_path / "run", progress=False)
    assert res["stopped_by"] == "time" and res["steps"] < 100
    last = res["history"][-1]
    assert last["lr"] < 0.02 * cfg.train.lr and last["crop"] == 64


def test_whole_image_and_flatness():
    target = torch.rand(2, 1, 16, 16)
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, 4:8, 4:8] = 1
    flat = target.mean(dim=(2, 3), keepdim=True).expand_as(target)
    assert flatness(flat, target, mask) == pytest.approx(1.0, rel=0.2)   # the flat start
    assert float(flatness(target, target, mask)) == 0.0                   # a copy
    assert float(whole_image(target, target)) == 0.0
    assert float(whole_image(flat, target)) == pytest.approx(float(target.var(dim=(2, 3), unbiased=False).mean()), rel=1e-5)


def test_objective1_weighs_a_small_region_far_above_a_clean_pixel():
    """Why the literal objective can stay flat: with a small region, its pixels' gradient
    dwarfs the clean pixels'."""
    target = torch.rand(1, 1, 64, 64)
    out = target.mean().expand_as(target).clone().requires_grad_(True)
    mask = torch.zeros(1, 1, 64, 64)
    mask[:, :, 10:12, 10:12] = 1
    objective1(out, target, mask, 0.5).backward()
    g = out.grad.abs()[0, 0]
    assert g[mask[0, 0] > 0].mean() > 50 * g[mask[0, 0] == 0].mean()


def test_startup_settings_are_checked():
    with pytest.raises(SsaeError, match="train.startup"):
        check(override(profile("cpu"), train={"startup": "warm"}))
    with pytest.raises(SsaeError, match="train.escape_ratio"):
        check(override(profile("cpu"), train={"escape_ratio": 1.5}))
    assert profile("paper").train.startup == "literal" and profile("cpu").train.startup == "whole"


def _train(cfg, split, run, monkeypatch, calls):
    real = T.objective_loss

    def spy(t, out, target, corrupted, mask, starting=False):
        calls.append(starting)
        return real(t, out, target, corrupted, mask, starting=starting)

    monkeypatch.setattr(T, "objective_loss", spy)
    return T.train(cfg, split, run, progress=False)


def test_the_whole_image_start_hands_over_once_the_output_leaves_the_flat_state(mvtec_grey_dir, tmp_path,
                                                                                monkeypatch):
    """With escape_ratio just under 1 the hand-over comes at the first log step below it; the
    step is recorded, the history says which phase each row was in, and the objective is used
    from the hand-over on. The literal start-up never uses the whole-image term."""
    cfg = override(profile("smoke"), train={"steps": 40, "log_every": 2, "startup": "whole", "escape_ratio": 0.999})
    split = load_split(str(mvtec_grey_dir), cfg.data)
    # a flatness of 2 for 5 steps, then 0: its running mean falls below the ratio 14 steps later
    values = iter([2.0] * 5 + [0.0] * 100)
    monkeypatch.setattr(T, "flatness", lambda out, target, mask: torch.tensor(next(values)))
    calls: list[bool] = []
    res = _train(cfg, split, tmp_path / "whole", monkeypatch, calls)
    k = res["handover_step"]
    assert k == 20
    assert calls == [True] * k + [False] * (40 - k)
    phases = {h["step"]: h["phase"] for h in res["history"]}
    assert phases[k] == "start-up" and all(p == "objective" for s, p in phases.items() if s > k)
    state = torch.load(tmp_path / "whole" / T.CHECKPOINT, weights_only=True)
    assert state["escape"]["step"] == k

    calls.clear()
    literal = override(cfg, train={"startup": "literal"})
    res = _train(literal, split, tmp_path / "literal", monkeypatch, calls)
    assert not any(calls) and res["handover_step"] is None


def test_the_handover_survives_a_resumption(mvtec_grey_dir, tmp_path, monkeypatch):
    cfg = override(profile("smoke"), train={"steps": 4, "log_every": 1, "checkpoint_every": 1,
                                            "startup": "whole", "escape_ratio": 0.999})
    split = load_split(str(mvtec_grey_dir), cfg.data)
    monkeypatch.setattr(T, "flatness", lambda out, target, mask: torch.tensor(0.0))
    first = T.train(cfg, split, tmp_path / "run", progress=False)
    assert first["handover_step"] == 1
    calls: list[bool] = []
    res = _train(override(cfg, train={"steps": 8}), split, tmp_path / "run", monkeypatch, calls)
    assert calls == [False] * 4 and res["handover_step"] == 1


def test_a_curve_point_says_its_phase(mvtec_grey_dir, tmp_path):
    cfg = override(profile("smoke"), train={"steps": 2, "curve": (1,), "startup": "whole"})
    split = load_split(str(mvtec_grey_dir), cfg.data)
    P.train(cfg, split, tmp_path / "run", progress=False, calibrate=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "curve.jsonl").read_text().splitlines()]
    assert rows and all(r["phase"] in ("start-up", "objective") and "lr" in r and "crop" in r for r in rows)


def test_training_warns_when_crops_end_below_the_evaluation_size(mvtec_grey_dir, tmp_path, capsys):
    cfg = override(profile("smoke"), data={"image_size": 256}, train={"steps": 1, "crop_start": 32, "crop_end": 128})
    split = load_split(str(mvtec_grey_dir), cfg.data)
    T.train(cfg, split, tmp_path / "run", progress=False)
    assert "train.crop_end=256" in capsys.readouterr().out


def test_tiles_cover_the_image_and_stitch_back_exactly():
    from ssae.tiling import tile_starts, tiled

    assert tile_starts(256, 128) == [0, 64, 128] and tile_starts(128, 128) == [0] and tile_starts(64, 128) == [0]
    starts = tile_starts(200, 64)
    assert starts[0] == 0 and starts[-1] == 136 and all(s % 8 == 0 for s in starts)
    x = torch.rand(2, 1, 256, 192)
    seen = []

    def record(t):
        seen.append(tuple(t.shape))
        return t * 2
    assert torch.equal(tiled(record, x, 128), x * 2)  # a pointwise network: stitched exactly
    assert seen == [(2 * 3 * 2, 1, 128, 128)]  # one batch of 3 x 2 tiles per image


def test_a_tiled_model_sees_tiles_in_eval_mode_only():
    from ssae.runs import build_model

    cfg = override(profile("cpu"), model={"in_channels": 1, "width": 1 / 16})
    model = build_model(cfg)
    assert model.tile == 128 and build_model(profile("paper")).tile is None
    sizes = []
    model.layers.register_forward_pre_hook(lambda m, args: sizes.append(tuple(args[0].shape[-2:])))
    model.eval()
    with torch.no_grad():
        model(torch.rand(1, 1, 256, 256))
    model.train()
    model(torch.rand(1, 1, 256, 256))
    assert sizes == [(128, 128), (256, 256)]


def test_a_tiled_model_exports_to_onnx_with_a_free_batch_axis(tmp_path):
    import warnings

    import numpy as np
    import onnxruntime as ort
    from ssae.runs import build_model

    model = build_model(override(profile("cpu"), model={"in_channels": 1, "width": 1 / 16})).eval()
    path = tmp_path / "tiled.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.rand(2, 1, 256, 256),), str(path), dynamo=False, input_names=["x"],
                          output_names=["y"], opset_version=17, dynamic_axes={"x": {0: "b"}, "y": {0: "b"}})
    session = ort.InferenceSession(str(path))
    for batch in (1, 3):
        x = torch.rand(batch, 1, 256, 256)
        with torch.no_grad():
            ref = model(x).numpy()
        assert np.abs(session.run(None, {"x": x.numpy()})[0] - ref).max() < 1e-5


def test_training_into_a_pipe_prints_plain_lines(mvtec_grey_dir, tmp_path):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "ssae.cli", "train", "--data", str(mvtec_grey_dir), "--out", str(tmp_path / "run"),
           "--profile", "smoke", "--steps", "4", "--set", "train.log_every=2"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert "step 2/4 (50%) loss" in out and "step 4/4 (100%)" in out and "calibrating the scoring" in out
    assert "\r" not in out
    out = subprocess.run(cmd[:-4] + ["--steps", "6", "--set", "train.log_every=2"], capture_output=True, text=True,
                         check=True).stdout
    assert "from step 4" in out and "step 6/6" in out
