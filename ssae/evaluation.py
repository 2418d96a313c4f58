"""From a trained run to metrics on the test split (Section 4.1, Tables 2-4).

- :func:`evaluate` computes image AUROC, pixel AUROC and AUPRO on the test split of a data set
  with the run's calibration (:mod:`ssae.calibration`), and the same per defect type;
- :func:`evaluate_model` does it for any model and calibration (also the blur reference);
- :func:`curve_point` is one point of a learning curve (calibrate, then evaluate);
- :func:`evaluate_ensemble` is Table 4's ensemble across runs.
"""
from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from . import data as D
from . import metrics as M
from . import scoring as S
from .config import Config
from .errors import SsaeError
from .hardware import hardware
from .precision import INFERENCE, check_precision
from .calibration import RESTORATION_KEYS, calibrate_model
from .runs import load_model, read_calibration, read_summary

# ----------------------------------------------------------------------------- maps

# ----------------------------------------------------------------------------- calibration

def empty_masks_warning(res: dict) -> str | None:
    """A one-line warning when defect masks mark no pixel (``res``: :func:`evaluate`'s result),
    else None: such images count for the image metrics only, and with every mask empty there are
    no pixel metrics. The usual cause is a mask file in another convention (see
    :func:`ssae.data.read_mask`)."""
    empty = res.get("empty_defect_masks") or []
    if not empty:
        return None
    n = res.get("n_defective") or len(empty)
    return (f"warning: {len(empty)} of {n} defect masks mark no defect pixel (e.g. {empty[0]}): "
            + ("there are no pixel metrics" if len(empty) >= n else "those images count for image metrics only")
            + f"; mask pixels >= {D.MASK_LEVEL} are defects, or every non-zero pixel in a mask without such pixels")


# ----------------------------------------------------------------------------- evaluation

def anomaly_maps(run_dir, data_spec: str, device: str = "cpu", progress: bool = True, precision: str = INFERENCE):
    """Test split, items, images, anomaly maps (eq. 3/14 with the calibrated settings) and the
    calibration: ``(split, items, images, maps, calibration)``."""
    model, cfg, split, cal, stats = load_run(run_dir, data_spec, device)
    t = model_maps(model, cfg, split, cal, stats, device, progress, precision)
    return split, t.items, t.images, t.maps, cal


def load_run(run_dir, data_spec: str, device: str = "cpu"):
    """The trained model, its Config, the data's split, the calibration and the
    :class:`S.ValidationMaps` (avgmap and stdmap)."""
    model, cfg = load_model(run_dir, device)
    split = D.load_split(data_spec, cfg.data, seed=cfg.train.seed)
    if split.channels != cfg.model.in_channels:
        raise SsaeError(f"{data_spec} has {split.channels} channel(s) but the model in {run_dir} "
                        f"was trained on {cfg.model.in_channels}")
    cal, stats = read_calibration(run_dir)
    return model, cfg, split, cal, stats


class TestMaps(NamedTuple):
    """The test split's anomaly maps (:func:`model_maps`)."""
    items: list            # the test items (path, label, mask path)
    images: list           # the images as the model reads them
    raw: list              # Diff of eq. (2) per image, before smoothing and calibration
    maps: list             # the calibrated anomaly maps (eq. 3/14)
    seconds: float         # time spent on the maps (model, Diff, smoothing; decoding excluded)


def model_maps(model, cfg: Config, split: D.Split, cal: dict, stats, device: str, progress: bool = True,
               precision: str = INFERENCE) -> TestMaps:
    """Anomaly maps of the test split for any model, with the raw differences and the seconds
    spent on them."""
    items = split.test
    images = split.images(items, cfg.data.image_size, progress=progress)
    start = time.time()
    raw = S.diff_maps(model, images, cal["diff"], device, progress=progress, desc="test maps", precision=precision)
    maps = S.calibrated_maps(raw, cal, stats)
    return TestMaps(items, images, raw, maps, time.time() - start)


def ground_truth(split: D.Split, items, maps) -> list[np.ndarray] | None:
    """Boolean masks at each map's resolution (nearest neighbour), or None without masks."""
    if not split.has_masks:
        return None
    out = []
    for it, m in zip(items, maps):
        if it.mask_path is None:
            out.append(np.zeros(m.shape, bool))
        else:
            D.check_mask_size(it.path, it.mask_path)
            out.append(D.read_mask(it.mask_path, m.shape))
    return out


def at_metric_size(maps: list[np.ndarray], size: int | None) -> list[np.ndarray]:
    """The maps resized bilinearly to ``size`` x ``size`` (``score.metric_size``, ours), so that
    pixel metrics of runs at different image sizes count the same pixels; ``None`` leaves them."""
    if size is None:
        return maps
    if int(size) < 1:
        raise SsaeError(f"score.metric_size must be a positive number of pixels or None, got {size!r}")
    return [torch.nn.functional.interpolate(torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32))[None, None],
                                            size=(int(size), int(size)), mode="bilinear",
                                            align_corners=False)[0, 0].numpy() for m in maps]


def evaluate(run_dir, data_spec: str, device: str = "cpu", progress: bool = True,
             precision: str = INFERENCE) -> dict:
    """Image AUROC, pixel AUROC and AUPRO (fractions in [0, 1]) on the test split of
    ``data_spec`` for the run in ``run_dir``, the network at ``precision`` (float32 by default)."""
    run_dir = Path(run_dir)
    model, cfg, split, cal, stats = load_run(run_dir, data_spec, device)
    summary = read_summary(run_dir)
    res = evaluate_model(model, cfg, split, cal, stats, device, data_spec=data_spec, progress=progress,
                         precision=precision)
    res.update({"train_seconds": summary.get("seconds"), "train_steps": summary.get("steps"),
                "train_images_per_s": summary.get("images_per_s"), "run_dir": str(run_dir)})
    return res


def evaluate_model(model, cfg: Config, split: D.Split, cal: dict, stats, device: str = "cpu", *,
                   data_spec: str = "", progress: bool = True, precision: str = INFERENCE) -> dict:
    """:func:`evaluate` for any model and calibration (used for the references too)."""
    check_precision(precision)
    items, images, raw, maps, seconds = model_maps(model, cfg, split, cal, stats, device, progress, precision)
    labels = [it.label for it in items]
    l2 = raw if cal["diff"] == "l2" else S.diff_maps(model, images, "l2", device, precision=precision)
    paper = paper_sum_auroc(labels, l2, cal["n"], cal["k"])
    # image scores from the maps as computed; pixel metrics at score.metric_size when it is set
    size = cfg.score.metric_size
    pix = at_metric_size(maps, size)
    masks = ground_truth(split, items, pix)
    types = defect_types(items)
    scores = S.image_scores(maps)
    per_defect = {d: M.image_auroc([labels[i] for i in sel], [scores[cal["reduce"]][i] for i in sel])
                  for d, sel in types.items()}
    defect_pixels = ({d: int(sum(int(np.count_nonzero(masks[i])) for i in sel if items[i].label == 1))
                      for d, sel in types.items()} if masks is not None else {})
    total = sum(defect_pixels.values())
    empty = [str(it.mask_path) for it, m in zip(items, masks or []) if it.label == 1 and not m.any()]
    return {
        "dataset": split.name,
        "data_spec": data_spec,
        # image_auroc (the calibration's reduction) and image_auroc_<reduction>, pixel_auroc,
        # aupro, and per_defect_pixel: pixel AUROC per defect type (good images and that type's)
        **map_metrics(labels, scores, masks, pix, cal["reduce"], types),
        "metrics_note": ("no ground_truth masks: image-level metrics only" if masks is None else
                         "the defect masks mark no pixel: image-level metrics only" if not total else
                         "pixel metrics at the evaluated image size" if size is None else
                         f"pixel metrics at {int(size)} x {int(size)} px (maps resized bilinearly)"),
        # defect masks that mark no pixel at the size the pixel metrics are computed at
        "empty_defect_masks": empty,
        "metric_size": size,
        "n_test_images": len(items),
        "n_defective": int(sum(labels)),
        "image_size": cfg.data.image_size,   # None: native size
        "profile": cfg.profile,
        "device": str(device),
        "hardware": hardware(device),
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "objective": cfg.train.objective,
        "corruption": cfg.corruption.method,
        "corruption_shape": cfg.corruption.shape,
        "width": cfg.model.width,
        "inference_images_per_s": len(items) / max(seconds, 1e-9),
        "precision": precision,  # of the forward pass (ssae.precision)
        "score": {k: cal[k] for k in ("diff", "n", "k", "t", "standardize", "two_sided", "reduce")},
        # the synthetic defects the scoring was chosen on (older calibrations: not recorded)
        "proxy_corruption": cal.get("proxy_corruption"),
        "proxy_patch": cal.get("proxy_patch"),
        **{k: cal.get(k) for k in RESTORATION_KEYS},
        "per_defect": per_defect,
        # each type's share of all defect pixels, its weight in the pooled pixel AUROC
        "defect_pixel_share": ({d: v / total for d, v in defect_pixels.items()} if masks is not None and total
                               else None),
        **paper,
    }


#: keys of the image AUROC with the paper's image score and of that score's settings
PAPER_SUM, PAPER_SUM_SCORE = "image_auroc_paper_sum", "paper_sum_score"


def paper_sum_auroc(labels, raw_l2, n: int, k: int) -> dict:
    """The image AUROC with the paper's image score: eq. (2)'s Diff (squared difference, mean
    over channels; ``raw_l2``, one 1 x H x W tensor per image), smoothed by G_k^n (eq. 3) at
    ``n``, ``k`` (those the calibration chose), summed over the pixels; no avgmap weighting
    (eq. 14, t = 0) and no standardisation. Returns ``{PAPER_SUM: auroc, PAPER_SUM_SCORE: the
    scoring}``."""
    scores = S.image_scores(S.finish_maps(raw_l2, int(n), int(k), None, 0))["sum"]
    auroc = M.image_auroc(list(labels), scores)
    return {PAPER_SUM: None if auroc is None else float(auroc),
            PAPER_SUM_SCORE: {"diff": "l2", "n": int(n), "k": int(k), "t": 0, "standardize": False,
                              "reduce": "sum"}}


def paper_sum(model, cfg: Config, split: D.Split, n: int, k: int, device: str = "cpu",
              precision: str = INFERENCE) -> dict:
    """:func:`paper_sum_auroc` of ``model`` on the test split of ``split`` (:func:`evaluate`
    reports it with every evaluation)."""
    items = split.test
    raw = S.diff_maps(model, split.images(items, cfg.data.image_size), "l2", device, precision=precision)
    return paper_sum_auroc([it.label for it in items], raw, n, k)


def curve_point(model, cfg: Config, split: D.Split, device: str = "cpu", precision: str = INFERENCE) -> dict:
    """One point of a learning curve: ``model`` calibrated on validation data as at the end of
    training (:func:`calibrate_model`), then evaluated on the test split (:func:`evaluate_model`);
    the restoration check, image AUROC, pixel AUROC, AUPRO and the per-defect image AUROC."""
    began = time.time()
    cal, stats = calibrate_model(model, cfg, split, device, precision=precision)
    res = evaluate_model(model, cfg, split, cal, stats, device, progress=False, precision=precision)
    keys = ("image_auroc", "pixel_auroc", "aupro", *RESTORATION_KEYS, "per_defect", "score", "n_test_images",
            "hardware")
    row = {k: res.get(k) for k in keys}
    row.update({"eval_seconds": round(time.time() - began, 1),
                "date": _dt.datetime.now().isoformat(timespec="seconds")})
    return row


def calibration_draws(model, cfg: Config, split: D.Split, seeds=range(1, 9), device: str = "cpu",
                      precision: str = INFERENCE) -> list[dict]:
    """What chance in the calibration does to the test metrics (ours): ``model`` calibrated again
    with each of ``seeds`` (other draws of the validation proxy's corruptions, :func:`calibrate_model`),
    each calibration evaluated on the test split. A row per seed: the scoring it chose, the
    restoration check and gain, image AUROC, pixel AUROC and AUPRO. The spread says how much of
    a difference between models the proxy's draw alone can make; it uses test labels, so it is
    reported, never used to choose."""
    items = split.test
    images = split.images(items, cfg.data.image_size)
    labels = [it.label for it in items]
    raw, rows, truth = {}, [], None
    for seed in seeds:
        cal, stats = calibrate_model(model, cfg, split, device, seed=seed, precision=precision)
        if cal["diff"] not in raw:
            raw[cal["diff"]] = S.diff_maps(model, images, cal["diff"], device, progress=False, precision=precision)
        maps = S.calibrated_maps(raw[cal["diff"]], cal, stats)
        pix = at_metric_size(maps, cfg.score.metric_size)
        if not rows:  # the masks at the maps' size (every calibration's maps have it), read once
            truth = ground_truth(split, items, pix)
        out = map_metrics(labels, S.image_scores(maps), truth, pix, cal["reduce"])
        rows.append({"seed": int(seed), "score": {k: cal[k] for k in ("diff", "n", "k", "t", "standardize", "reduce")},
                     **{k: cal.get(k) for k in RESTORATION_KEYS},
                     **{k: (None if out[k] is None else float(out[k])) for k in ("image_auroc", "pixel_auroc", "aupro")}})
    return rows


def evaluate_ensemble(run_dirs, data_spec: str, size: int, device: str = "cpu",
                      progress: bool = True) -> dict:
    """Table 4 across runs: the pixel-wise maximum (:func:`scoring.ensemble`) of the calibrated
    anomaly maps of several runs on the same test split, each resized to ``size`` x ``size``
    (:func:`at_metric_size`), so that models trained at different image sizes can be combined
    (ours: e.g. a whole-tile model at 64 px beside a 256 px one).

    The maximum is only meaningful when the members' maps share a scale, as standardised maps
    (z-scores against each run's own validation maps) do; ``standardized`` records it per run.
    The image score uses the reduction chosen by the first run's calibration (no test labels);
    the other reductions are reported beside it. Each member is scored on the same pixels."""
    if len(run_dirs) < 1:
        raise SsaeError("an ensemble needs at least one run directory")
    members, first_items = [], []
    for run_dir in run_dirs:
        model, cfg, split, cal, stats = load_run(run_dir, data_spec, device)
        test = model_maps(model, cfg, split, cal, stats, device, progress)
        items, maps = test.items, test.maps
        if members and [it.path for it in items] != [it.path for it in first_items]:
            raise SsaeError(f"{run_dir} is evaluated on other test images than {run_dirs[0]} "
                            "(its data settings differ); an ensemble needs the same test images")
        if not members:
            first_items, first_split, reduce = items, split, cal["reduce"]
        members.append({"run_dir": str(run_dir), "image_size": cfg.data.image_size,
                        "standardized": bool(cal["standardize"]), "maps": at_metric_size(maps, size),
                        "reduce": cal["reduce"]})
    ensemble_maps = [S.ensemble(*(torch.from_numpy(m["maps"][i]) for m in members)).numpy()
                     for i in range(len(first_items))]
    labels = [it.label for it in first_items]
    masks = ground_truth(first_split, first_items, ensemble_maps)
    types = defect_types(first_items)

    def scored(maps, reduce):
        return map_metrics(labels, S.image_scores(maps), masks, maps, reduce, types)

    return {"dataset": first_split.name, "data_spec": data_spec, "metric_size": int(size),
            "n_test_images": len(first_items), "reduce": reduce, **scored(ensemble_maps, reduce),
            "members": [{k: v for k, v in m.items() if k != "maps"} | scored(m["maps"], m["reduce"])
                        for m in members]}


def map_metrics(labels, scores: dict[str, list[float]], masks, maps, reduce: str,
                types: dict[str, list[int]] | None = None) -> dict:
    """The metrics of one set of anomaly maps: image AUROC under the chosen reduction
    ``reduce`` (and under each of ``scores``' reductions beside it), and, when there are
    ground-truth ``masks``, pixel AUROC, AUPRO to FPR 0.3, and the pixel AUROC per defect type.

    ``scores``: :func:`S.image_scores` of the maps the image score is taken from; ``maps``: the
    maps the pixel metrics are computed on (the same maps, or maps resized to
    ``score.metric_size``), each the size of its mask."""
    out = {"image_auroc": M.image_auroc(labels, scores[reduce]),
           **{f"image_auroc_{r}": M.image_auroc(labels, s) for r, s in scores.items()}}
    pixels = masks is not None
    out.update(pixel_auroc=M.pixel_auroc(masks, maps) if pixels else None,
               aupro=M.aupro(masks, maps, fpr_limit=0.3) if pixels else None,
               per_defect_pixel=per_type_pixel_auroc(types or {}, masks, maps) if pixels else None)
    return out


def defect_types(items) -> dict[str, list[int]]:
    """Per defect type, the indices of the good test images and of that type's images."""
    return {defect: [i for i, it in enumerate(items) if it.label == 0 or it.defect == defect]
            for defect in sorted({it.defect for it in items if it.label == 1})}


def per_type_pixel_auroc(types: dict[str, list[int]], masks, maps) -> dict[str, float]:
    """Pixel AUROC per defect type (``types`` from :func:`defect_types`): that type's defect
    pixels against every other pixel of the good test images and of that type's images."""
    return {defect: M.pixel_auroc([masks[i] for i in sel], [maps[i] for i in sel])
            for defect, sel in types.items()}


# ----------------------------------------------------------------------------- prediction

