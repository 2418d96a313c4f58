"""The order of the method: train -> calibrate -> evaluate -> pack (:func:`run`).

1. train (:mod:`ssae.training`): Adam steps into the run folder, checkpoints, and the learning
   curve, whose points :func:`ssae.evaluation.curve_point` computes (``train.curve``);
2. calibrate (:mod:`ssae.calibration`): the scoring chosen on validation images, then the run
   is marked finished (``calibration.json``, ``avgmap.npy``, ``train_summary.json``, ``done``
   last), all while the folder is locked;
3. retrain while the restoration check fails (:func:`train_until_restored`, ``--retries``);
4. evaluate (``ssae evaluate``, :func:`ssae.evaluation.evaluate`) and pack (``ssae pack``,
   :func:`ssae.release.pack`, which evaluates the finished run and keeps its metrics).

:func:`run` does all four; ``ssae train`` the first three.

Training knows nothing of scoring: calibration and the learning curve's evaluation are
passed to it from here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import calibration, training
from .calibration import calibrate_model
from .config import Config, override
from .data import Split
from .errors import SsaeError
from .evaluation import curve_point
from .runs import RunDir

#: Retry k of :func:`train_until_restored` uses initial weights seeded with base + k * RETRY_SEED_STEP.
RETRY_SEED_STEP = 1000


def train(cfg: Config, split: Split, run_dir, device="cpu", *, data_spec: str | None = None,
          progress: bool | str = True, calibrate: bool = True) -> dict:
    """Train a model for ``split`` into ``run_dir`` (resuming from its checkpoint), with its
    learning curve at the steps of ``train.curve``; with ``calibrate`` (default) choose the
    scoring on validation data afterwards (:func:`ssae.calibration.calibrate_model`). ``cfg``
    is left untouched; ``config.json`` records the settings as used
    (:func:`ssae.training.prepare`). ``progress`` and the result: :func:`ssae.training.train`.

    A finished run trained again keeps its ``done``, scoring and summary until a new
    checkpoint replaces its weights or a new scoring is ready (:func:`ssae.training.retire`).
    """
    with training.session(cfg, split, run_dir, device, data_spec=data_spec, progress=progress) as state:
        used, where = state.cfg, str(state.device)
        result = training.loop(state, on_curve=lambda model: curve_point(model, used, split, where))
        if state.rank == 0:
            scoring = None
            if calibrate:
                state.log.calibrating(len(split.val))
                scoring = calibrate_model(state.network.eval(), used, split, where, log=state.log.say)
            training.finish(state, result, scoring)
    return result


def retry_dir(run_dir, k: int) -> Path:
    """Run directory of retry ``k`` of ``run_dir``: a sibling ``<name>-retry<k>``."""
    run_dir = Path(run_dir)
    return run_dir.with_name(f"{run_dir.name}-retry{k}")


def train_until_restored(cfg: Config, split: Split, run_dir, retries: int, device="cpu", *,
                         data_spec: str | None = None, progress: bool | str = True) -> tuple[Path, list[dict]]:
    """Train into ``run_dir`` (:func:`train`); while the model fails the restoration check (ours:
    pixel AUROC of its maps on validation images corrupted as in training below
    :data:`ssae.calibration.RESTORATION_MIN`), train again with other initial weights, at most
    ``retries`` times: retry k uses ``train.init_seed`` = (init_seed or seed) + k x
    :data:`RETRY_SEED_STEP` and the same data stream, into :func:`retry_dir` (run_dir, k).

    The rule uses validation data only (see the book's chapter 'What moves the numbers on real
    defects'). Returns the run directory to use
    (the first that passes, else the one with the highest check) and one dict per attempt:
    ``run_dir``, ``init_seed``, ``restoration`` (None without a calibration), ``steps``,
    ``seconds``, ``stopped_by``. A retry directory that finished earlier is not trained again,
    so rerunning the same command resumes where it stopped.
    """
    if retries < 0:
        raise SsaeError(f"retries must be >= 0, got {retries}")
    if retries and training.rank_and_world()[1] > 1:
        raise SsaeError("retries are not supported under torchrun; retrain with --set train.init_seed=N")
    base = cfg.train.init_seed if cfg.train.init_seed is not None else cfg.train.seed
    attempts: list[dict] = []
    for k in range(retries + 1):
        out = Path(run_dir) if k == 0 else retry_dir(run_dir, k)
        kcfg = cfg if k == 0 else override(cfg, train={"init_seed": base + k * RETRY_SEED_STEP})
        if k:
            print(f"restoration check {attempts[-1]['restoration']:.2f} < {calibration.RESTORATION_MIN}: "
                  f"training again with train.init_seed={kcfg.train.init_seed} into {out}", flush=True)
        run = RunDir(out)
        if k == 0 or not run.is_done():
            res = train(kcfg, split, out, device, data_spec=data_spec, progress=progress)
        else:
            res = run.read_summary()
        check = run.read_calibration()[0].get("restoration_pixel_auroc") if run.is_calibrated() else None
        attempts.append({"run_dir": out, "init_seed": kcfg.train.init_seed,
                         "restoration": check, "steps": res.get("steps"), "seconds": res.get("seconds"),
                         "stopped_by": res.get("stopped_by")})
        if check is None or not np.isfinite(check) or check >= calibration.RESTORATION_MIN:
            return out, attempts
    best = max(attempts, key=lambda a: a["restoration"])
    return best["run_dir"], attempts


def run(cfg: Config, split: Split, run_dir, data_spec: str, device="cpu", *, retries: int = 0,
        out_dir=None, progress: bool | str = True) -> dict:
    """The whole order for one data set: train and calibrate into ``run_dir``
    (:func:`train_until_restored` with ``retries``), evaluate the model on the test split of
    ``data_spec``, and, with ``out_dir``, pack it there (:func:`ssae.release.pack`, float16
    weights calibrated and evaluated again, with stored samples). Returns ``{"run_dir": the
    attempt used, "attempts": [...], "metrics": the test metrics, "packed": out_dir or None}``."""
    from .evaluation import evaluate
    from .release import pack

    used, attempts = train_until_restored(cfg, split, run_dir, retries, device, data_spec=data_spec,
                                          progress=progress)
    if out_dir is None:
        metrics = evaluate(used, data_spec, device=device, progress=progress is True)
    else:
        metrics = pack(used, out_dir, data_spec, device=device, progress=progress is True)
    return {"run_dir": used, "attempts": attempts, "metrics": metrics,
            "packed": None if out_dir is None else Path(out_dir)}
