"""Training: progressive crops, checkpoints, resume after interruption, NaN losses, run folders."""
import json

import numpy as np
import pytest
import torch

import ssae.pipeline as P
import ssae.runs as R
import ssae.training as T
from ssae.runs import load_model
from ssae.config import override, profile
from ssae.data import load_split
from ssae.errors import SsaeError


def smoke(**train):
    return override(profile("smoke"), train=train) if train else profile("smoke")


def test_crop_size_grows_at_fixed_resolution():
    cfg = override(profile("cpu"), train={"steps": 100, "crop_start": 64, "crop_end": 256, "crop_growth": 0.5})
    sides = [T.crop_size(T.fraction_done(cfg.train, s), cfg, max_side=256) for s in range(0, 101, 5)]
    assert sides[0] == 64 and sides[-1] == 256 and sides[10] == 256 and sides[9] < 256  # full size at half-way
    assert all(a <= b for a, b in zip(sides, sides[1:]))
    assert all(s % 8 == 0 for s in sides)
    assert T.crop_size(1.0, cfg, max_side=200) == 200  # capped by the smallest image side


def test_fraction_done_counts_steps_or_the_time_budget_whichever_is_further():
    t = profile("cpu").train  # 4000 steps, 20 minutes
    assert T.fraction_done(t, 0, 0.0) == 0.0 and T.fraction_done(t, 2000, 60.0) == 0.5
    assert T.fraction_done(t, 100, 600.0) == 0.5       # half the minutes gone: half-way
    assert T.fraction_done(t, 100, 600.0) > T.fraction_done(t, 100, None)  # None: steps only (torchrun)
    assert T.fraction_done(t, 9999, 1e9) == 1.0


def test_train_writes_a_complete_run(mvtec_dir, tmp_path):
    cfg = smoke()
    split = load_split(str(mvtec_dir), cfg.data)
    run = tmp_path / "run"
    res = P.train(cfg, split, run, progress=False)
    assert res["steps"] == cfg.train.steps and res["stopped_by"] == "steps"
    for name in ("config.json", "checkpoint.pt", "history.json", "calibration.json", "done"):
        assert (run / name).is_file(), name
    assert not list(run.glob("*.tmp*"))
    model, cfg2 = load_model(run)
    assert cfg2.model.in_channels == 3 and not model.training
    assert (cfg2.data.rot90, cfg2.data.flips) == (True, True)  # unknown category: both, as used


def test_same_seed_same_weights(mvtec_grey_dir, tmp_path):
    cfg = smoke(steps=2)
    split = load_split(str(mvtec_grey_dir), cfg.data)
    T.train(cfg, split, tmp_path / "a", progress=False)
    T.train(smoke(steps=2), split, tmp_path / "b", progress=False)
    a = torch.load(tmp_path / "a" / T.CHECKPOINT, weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / T.CHECKPOINT, weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def interrupt_third_step(monkeypatch):
    """Make training's third loss call raise KeyboardInterrupt (as Ctrl-C would); returns a
    function that undoes it."""
    real, calls = T.objective_loss, {"n": 0}

    def interrupt_at_third(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(T, "objective_loss", interrupt_at_third)
    return lambda: monkeypatch.setattr(T, "objective_loss", real)


def test_interrupted_training_resumes_from_last_checkpoint(mvtec_dir, tmp_path, monkeypatch):
    cfg = smoke(steps=4, checkpoint_every=1)
    split = load_split(str(mvtec_dir), cfg.data)
    run = tmp_path / "run"
    undo = interrupt_third_step(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        P.train(cfg, split, run, progress=False)
    assert not (run / R.DONE).exists()  # an interrupted run does not look complete
    assert torch.load(run / T.CHECKPOINT, weights_only=True)["step"] == 2

    undo()
    res = P.train(smoke(steps=4, checkpoint_every=1), split, run, progress=False)
    assert res["steps"] == 4 and (run / R.DONE).exists()
    assert [h["step"] for h in res["history"]] == [1, 2, 3, 4]


def test_a_resumed_run_has_the_weights_of_an_uninterrupted_one(mvtec_grey_dir, tmp_path, monkeypatch):
    split = load_split(str(mvtec_grey_dir), smoke().data)
    T.train(smoke(steps=4, checkpoint_every=1), split, tmp_path / "whole", progress=False)
    undo = interrupt_third_step(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        T.train(smoke(steps=4, checkpoint_every=1), split, tmp_path / "resumed", progress=False)
    undo()
    T.train(smoke(steps=4, checkpoint_every=1), split, tmp_path / "resumed", progress=False)
    a = torch.load(tmp_path / "whole" / T.CHECKPOINT, weights_only=True)
    b = torch.load(tmp_path / "resumed" / T.CHECKPOINT, weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    # the optimiser's state in torch's per-parameter layout (ssae.flatadam keeps it)
    n_params = sum(1 for k in a["model"] if not ("running_" in k or "num_batches" in k))
    assert len(b["optimiser"]["state"]) == n_params


def test_nan_loss_is_a_clear_error(mvtec_dir, tmp_path, monkeypatch):
    cfg = smoke()
    split = load_split(str(mvtec_dir), cfg.data)
    monkeypatch.setattr(T, "objective_loss", lambda *a, **k: torch.tensor(float("nan"), requires_grad=True))
    with pytest.raises(SsaeError, match="diverged at step 0 at learning rate .*: loss became nan"):
        P.train(cfg, split, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / R.DONE).exists()


def test_weights_that_blow_up_between_log_steps_stop_the_run_by_the_next_log_step(mvtec_dir, tmp_path):
    """The norms are taken at log steps only; a run whose weights explode at step 0 still stops
    with the one-line message by the first log step, and writes nothing that looks finished."""
    cfg = smoke(steps=12, log_every=4, checkpoint_every=100, lr=1e6, lr_warmup=0.0)
    split = load_split(str(mvtec_dir), cfg.data)
    with pytest.raises(SsaeError, match=r"diverged at step [0-3] at learning rate .*(weight norm|loss became)"):
        P.train(cfg, split, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / R.DONE).exists() and not (tmp_path / "run" / T.CHECKPOINT).exists()


def test_resume_refuses_other_settings(mvtec_dir, tmp_path):
    cfg = smoke(steps=1)
    split = load_split(str(mvtec_dir), cfg.data)
    T.train(cfg, split, tmp_path / "run", progress=False)
    other = override(smoke(steps=1), model={"width": 1 / 8})
    with pytest.raises(SsaeError, match="other settings"):
        P.train(other, split, tmp_path / "run", progress=False)


def test_incompatible_run_directory(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"config": {"format_version": 99}, "meta": {}}))
    with pytest.raises(SsaeError, match="incompatible run directory"):
        load_model(tmp_path)
    with pytest.raises(SsaeError, match="not a run directory"):
        load_model(tmp_path / "missing")


def test_stored_settings_are_type_checked(tmp_path):
    doc = {"config": smoke().to_dict(), "meta": {}}
    cfg, _ = R.read_run_config(_write_config(tmp_path / "ok", doc))        # JSON lists become tuples
    assert cfg == smoke()
    doc["config"]["train"]["steps"] = "many"                               # e.g. a hand-edited file
    with pytest.raises(SsaeError, match="incompatible run directory .*train.steps must be int"):
        R.read_run_config(_write_config(tmp_path / "bad", doc))


def _write_config(run_dir, doc):
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps(doc))
    return run_dir


class _NotAWeight:
    pass


def test_checkpoints_load_with_weights_only(tmp_path):
    """A checkpoint holding an arbitrary pickled object is refused (weights_only=True), with a
    one-line error naming the file; tensors and plain containers load."""
    torch.save({"model": {"w": torch.ones(2)}, "step": 3}, tmp_path / T.CHECKPOINT)
    assert T.read_checkpoint(tmp_path)["step"] == 3
    torch.save({"model": {}, "step": 3, "payload": _NotAWeight()}, tmp_path / T.CHECKPOINT)
    with pytest.raises(SsaeError, match="cannot read checkpoint .*checkpoint.pt"):
        T.read_checkpoint(tmp_path)


def test_an_interrupted_resumption_leaves_no_old_scoring_behind(mvtec_dir, tmp_path, monkeypatch):
    """Resumed for more steps and interrupted after its first new checkpoint, a finished run
    no longer looks finished: its old scoring does not sit beside the new weights. (Interrupted
    before it, the run is left as it was: tests/test_misuse.py.)"""
    from ssae.runs import read_calibration

    split = load_split(str(mvtec_dir), smoke().data)
    run = tmp_path / "run"
    P.train(smoke(steps=2, checkpoint_every=1), split, run, progress=False)
    assert (run / "calibration.json").is_file() and (run / "avgmap.npy").is_file()

    real, calls = T.objective_loss, []

    def interrupt_at_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(T, "objective_loss", interrupt_at_second)
    with pytest.raises(KeyboardInterrupt):  # step 3 is checkpointed, step 4 interrupted
        P.train(smoke(steps=4, checkpoint_every=1), split, run, progress=False)
    assert torch.load(run / T.CHECKPOINT, weights_only=True)["step"] == 3
    for name in ("done", "calibration.json", "avgmap.npy", "stdmap.npy", "train_summary.json"):
        assert not (run / name).exists(), name
    with pytest.raises(SsaeError, match="training did not finish"):
        read_calibration(run)


def test_learning_rate_schedules():
    t = profile("paper").train
    assert t.lr_schedule == "constant" and profile("cpu").train.lr_schedule == "cosine"
    assert T.learning_rate(t, 0.0) == t.lr == T.learning_rate(t, 0.7)  # constant (the paper's)
    t.lr_schedule = "cosine"
    lrs = [T.learning_rate(t, p / 8) for p in range(9)]
    assert lrs[0] == pytest.approx(t.lr) and lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    assert lrs[4] == pytest.approx(t.lr / 2)
    t.lr_schedule = "linear"
    with pytest.raises(SsaeError, match="lr_schedule"):
        T.learning_rate(t, 0.0)


def test_learning_rate_warmup():
    t = profile("cpu").train
    t.lr_warmup = 0.1
    cosine = lambda p: t.lr * 0.5 * (1 + np.cos(np.pi * p))  # noqa: E731
    assert T.learning_rate(t, 0.0) == 0.0
    assert T.learning_rate(t, 0.05) == pytest.approx(0.5 * cosine(0.05))  # halfway up the ramp
    assert T.learning_rate(t, 0.1) == pytest.approx(cosine(0.1))  # ramp over: the plain schedule
    assert T.learning_rate(t, 0.6) == pytest.approx(cosine(0.6))
    for bad in (-0.1, 1.0):
        t.lr_warmup = bad
        with pytest.raises(SsaeError, match="lr_warmup"):
            T.learning_rate(t, 0.5)


def test_init_seed_sets_the_initial_weights_alone(mvtec_grey_dir, tmp_path, monkeypatch):
    split = load_split(str(mvtec_grey_dir), smoke().data)
    runs = {"s0": smoke(steps=1), "s1": smoke(steps=1, seed=1), "s1_init0": smoke(steps=1, seed=1, init_seed=0)}
    real, built = T.build_model, []

    def build_and_keep_the_initial_weights(cfg):
        model = real(cfg)
        built.append({k: v.clone() for k, v in model.state_dict().items()})
        return model

    monkeypatch.setattr(T, "build_model", build_and_keep_the_initial_weights)
    w = {}
    for name, cfg in runs.items():
        T.train(cfg, split, tmp_path / name, progress=False)
        w[name] = built[-1]
    assert all(torch.equal(w["s0"][k], w["s1_init0"][k]) for k in w["s0"])
    assert not all(torch.equal(w["s0"][k], w["s1"][k]) for k in w["s0"])


def version_1(cfg) -> dict:
    """``cfg`` stored as a run folder of format version 1 did: the search space as paired
    fields of the score section."""
    doc = cfg.to_dict()
    cal = doc.pop("calibration")
    assert cal.pop("proxy_draws") == 1  # newer than version 1, whose runs drew the proxy once
    old = {"search": "select_nk", "nk": "nk_candidates", "diff": "diff_candidates", "t": "t_candidates",
           "standardize": "standardize_candidates", "reduce": "reduce_candidates", "proxy": "proxy_corruption"}
    doc["score"].update({old.get(k, k): v for k, v in cal.items()})
    doc["corruption"]["p_clean"] = 0.0
    doc["format_version"] = 1
    return doc


def test_a_version_1_run_folder_keeps_its_scoring():
    """A version-1 config reads back with the same search space; one written before
    score.reduce_candidates / score.avgmap_rescale existed was calibrated by comparing every
    reduction and rescaling the avgmap, and still is."""
    from ssae.config import Config

    for name in ("cpu", "paper"):
        assert Config.from_dict(version_1(profile(name))) == profile(name)
    doc = version_1(profile("cpu"))
    for key in ("reduce_candidates", "avgmap_rescale"):
        doc["score"].pop(key)
    old = Config.from_dict(doc)
    assert old.calibration.reduce == ("sum", "mean", "max", "contrast") and old.score.avgmap_rescale
    assert old.calibration.proxy == ("cutout", "swap", "occlusion") and old.calibration.standardize == (False, True)
    doc = version_1(profile("paper"))
    doc["corruption"]["p_clean"] = 0.5
    with pytest.raises(ValueError, match="p_clean"):
        Config.from_dict(doc)


def test_train_leaves_its_config_untouched(mvtec_grey_dir, tmp_path):
    """The channels and the augmentation used are recorded in config.json, not written into the caller's config."""
    cfg = smoke(steps=1)
    before = cfg.to_dict()
    split = load_split(str(mvtec_grey_dir), cfg.data)
    T.train(cfg, split, tmp_path / "run", progress=False)
    assert cfg.to_dict() == before
    used, _ = R.read_run_config(tmp_path / "run")
    assert used.model.in_channels == 1 != cfg.model.in_channels and used.data.rot90 is not None


def test_run_dir_names_every_file_of_a_run(tmp_path):
    run = R.RunDir(tmp_path / "r")
    names = [getattr(run, f).name for f in ("config", "checkpoint", "history", "summary", "curve", "calibration",
                                            "avgmap", "stdmap", "done", "lock")]
    assert names == [R.CONFIG, R.CHECKPOINT, R.HISTORY, R.SUMMARY, R.CURVE, R.CALIBRATION, R.AVGMAP, R.STDMAP,
                     R.DONE, "lock"] and sorted(names) == sorted(R.RUN_FILES)
    assert not run.is_done() and not run.has_weights() and run.read_history() == [] and run.read_curve() == []
    assert str(tmp_path / "r") == __import__("os").fspath(run)


def test_the_pipeline_runs_train_calibrate_evaluate_and_pack_in_order(mvtec_dir, tmp_path):
    cfg = smoke()
    split = load_split(str(mvtec_dir), cfg.data)
    res = P.run(cfg, split, tmp_path / "run", str(mvtec_dir), out_dir=tmp_path / "packed", progress=False)
    assert res["run_dir"] == tmp_path / "run" and len(res["attempts"]) == 1
    assert R.RunDir(tmp_path / "run").is_done() and R.RunDir(tmp_path / "packed").is_done()
    assert 0 <= res["metrics"]["image_auroc"] <= 1 and res["metrics"]["image_auroc_paper_sum"] is not None
    assert json.loads((tmp_path / "packed" / "metrics.json").read_text())["image_auroc"] == res["metrics"]["image_auroc"]
    again = P.run(cfg, split, tmp_path / "run", str(mvtec_dir), progress=False)  # finished: evaluated only
    assert again["packed"] is None and again["metrics"]["n_test_images"] == res["metrics"]["n_test_images"]
