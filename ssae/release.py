"""Trained models kept small: a run folder packed for sharing (and for this repository's ``models/``).

A packed model folder is a run folder without the training checkpoint. It holds what
``ssae evaluate`` and ``ssae predict`` read, with the weights as half-precision safetensors (no
pickle, a few MB) instead of ``checkpoint.pt``:

- ``model.safetensors``: the network's weights in float16 (read back as float32);
- ``config.json``: the run's config and metadata, written in the current run format;
- ``history.json`` (the training log), ``train_summary.json``, ``curve.jsonl`` (the learning
  curve, when the run had one), ``done``: copied from the run;
- ``calibration.json``, ``avgmap.npy``, ``stdmap.npy``: the scoring chosen on validation data
  again, for the float16 weights;
- ``metrics.json``: the test metrics of these weights, recorded when the folder was packed
  (with the hardware, the date and the data it was evaluated on), and under
  ``calibration_draws`` the same metrics after calibrations on other draws of the validation
  proxy (:func:`ssae.evaluation.calibration_draws`), the spread that chance in the
  calibration alone gives;
- ``blur.json`` (optional): the blur reference's test metrics with the same settings, the flat
  line beside the model's learning curve;
- ``samples/``: a few test images with the model's reconstruction, calibrated anomaly map and
  both image scores (:mod:`ssae.samples`), from which figures are drawn where the data set is
  not; :func:`ssae.samples.add_samples` adds them to a folder packed without them;
- ``earlier/`` (optional): when a folder packed from another training run is replaced, its
  learning curve, metrics, training summary and config, kept for comparison (the model pages
  draw that curve beside the new one as the earlier recipe). A folder that already holds an
  ``earlier/`` passes it on unchanged, so it always holds the first model replaced.

Both ``metrics.json`` and ``blur.json`` also hold ``image_auroc_paper_sum``: the image AUROC
with the paper's own image score (:func:`ssae.evaluation.paper_sum`), the sum over the pixels of eq. (3)'s map
at the calibrated n and k, without the avgmap weighting or our standardisation, beside the
calibrated score (``image_auroc``) that the rest of the metrics use.

:func:`pack` writes the folder under a temporary name and renames it, so a half-written folder
never looks complete; an earlier folder of the same name is replaced only then.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from .errors import SsaeError
from .runs import CONFIG, CURVE, HISTORY, SUMMARY, RunDir, load_weights, save_weights

METRICS = "metrics.json"
BLUR = "blur.json"
#: files copied as they are from a run folder (those that exist)
COPIED = (HISTORY, SUMMARY, CURVE)
#: the folder of a packed model that keeps the replaced model's curve and metrics
EARLIER = "earlier"
#: what :data:`EARLIER` keeps of the replaced model
KEPT_EARLIER = (CURVE, METRICS, SUMMARY, CONFIG)


def keep_earlier(old: Path, new: Path) -> None:
    """Copy into ``new/earlier/`` what the replaced folder ``old`` says about its model, when
    ``old`` was packed from another training run than ``new`` (their training summaries
    differ); an ``old/earlier/`` is passed on instead."""
    if (old / EARLIER).is_dir():
        shutil.copytree(old / EARLIER, new / EARLIER)
        return
    old_summary, new_summary = RunDir(old).summary, RunDir(new).summary
    if not old_summary.is_file() or (new_summary.is_file() and old_summary.read_bytes() == new_summary.read_bytes()):
        return
    (new / EARLIER).mkdir()
    for name in KEPT_EARLIER:
        if (old / name).is_file():
            shutil.copy2(old / name, new / EARLIER / name)



def pack(run_dir, out_dir, data_spec: str | None = None, device: str = "cpu", blur: bool = False,
         progress: bool = False, draws: int = 8, precision: str = "fp32", samples: bool = True) -> dict:
    """Pack the finished run ``run_dir`` into ``out_dir`` (see the module docstring).

    The float16 weights are calibrated on the run's validation data and evaluated on the test
    split of ``data_spec`` (default: the data the run was trained on); ``blur`` also records the
    blur reference (:class:`ssae.references.BlurReference`, sigma 4) with the same settings;
    ``draws`` other calibrations (seeds 1 to ``draws``) are evaluated beside the recorded one.
    ``precision`` is the network's in calibration and evaluation (float32 by default);
    ``samples`` stores the sample images (False: none, e.g. for generated data that the
    reader can generate again). Returns the metrics."""
    from .data import load_split
    from .calibration import calibrate, calibrate_model
    from .evaluation import calibration_draws, evaluate, evaluate_model
    from .references import BlurReference
    from .samples import write_samples
    from .runs import build_model, load_model, read_run_config, write_json

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if not RunDir(run_dir).is_done():
        raise SsaeError(f"{run_dir} has not finished training; finish it with `ssae train` before packing")
    cfg, meta = read_run_config(run_dir)
    data_spec = data_spec or meta.get("data")
    model, _ = load_model(run_dir, "cpu")
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in COPIED:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, tmp / name)
    write_json(RunDir(tmp).config, {"config": cfg.to_dict(), "meta": meta})  # an older run format, written as today's
    packed = RunDir(tmp)
    save_weights(model, packed.weights)
    half = build_model(cfg)
    half.load_state_dict(load_weights(packed.weights))
    packed.done.write_text("ok\n")
    split = load_split(data_spec, cfg.data, seed=cfg.train.seed)
    calibrate(tmp, split, device=device, model=half.to(device).eval(), progress=progress, precision=precision)
    res = evaluate(tmp, data_spec, device=device, progress=progress, precision=precision)
    res["run_dir"] = str(out_dir)
    if draws:
        res["calibration_draws"] = calibration_draws(half, cfg, split, range(1, draws + 1), device, precision)
    write_json(tmp / METRICS, res)
    if samples:
        write_samples(tmp, half, cfg, split, device, precision)
    if blur:
        ref = BlurReference(4.0).to(device).eval()
        cal, stats = calibrate_model(ref, cfg, split, device, precision=precision)
        ref_res = evaluate_model(ref, cfg, split, cal, stats, device, data_spec=data_spec, progress=progress,
                                 precision=precision)
        ref_res["model"] = "BlurReference(sigma=4)"
        write_json(tmp / BLUR, ref_res)
    if out_dir.exists():
        keep_earlier(out_dir, tmp)
        old = out_dir.with_name(out_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old)
    else:
        tmp.rename(out_dir)
    return res
