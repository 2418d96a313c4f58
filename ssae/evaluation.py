"""From a trained run to anomaly maps, scores and metrics (Figure 3, Section 4.1, Tables 2-4).

- :func:`calibrate` chooses the scoring settings on *validation* data only (no test labels):
  n and k of G_k^n (eq. 3) and the image-score reduction (sum, the paper's, or max), by how well
  they separate clean validation images from corrupted copies (as in training, or the
  held-out corruptions of ``score.proxy_corruption``, :func:`proxy_corruption`); the
  avgmap of eq. (13) (and, ours, the per-pixel spread beside it); and the threshold for binary
  masks (a quantile of clean validation maps).
  It also records the *restoration check*: how well the chosen maps find the corruptions on
  validation images corrupted as in training; a trained model finds them, an undertrained one does not
  (:func:`restoration_warning`).
- :func:`evaluate` computes image AUROC, pixel AUROC and AUPRO on the test split.
- :func:`predict` writes heatmap overlays, binary masks and a CSV of image scores.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import data as D
from . import metrics as M
from . import scoring as S
from .config import Config, CorruptionConfig
from .corruption import corrupt
from .errors import SsaeError
from .precision import precision
from .training import load_model, read_json, read_run_config, read_summary, write_json

CALIBRATION = "calibration.json"
AVGMAP = "avgmap.npy"
STDMAP = "stdmap.npy"
#: image-score reductions compared on validation data; "sum" is the paper's
REDUCTIONS = ("sum", "mean", "max", "contrast")
#: candidate (n, k) pairs for G_k^n; (0, 1) is the raw Diff of eq. (2)
NK_GRID = ((0, 1), (1, 5), (1, 9), (2, 9), (1, 17), (2, 17), (3, 17), (2, 33))
#: ours: below this pixel AUROC on its own training corruptions a model counts as not yet trained
RESTORATION_MIN = 0.75


def hardware(device: str) -> str:
    """A short description of the machine that produced a number."""
    if str(device).startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return f"{cpu_name()} ({platform.machine()}, {os.cpu_count()} cores), torch {torch.__version__}"


def cpu_name() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else "CPU"."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() or "CPU"
    except OSError:
        pass
    return "CPU"


# ----------------------------------------------------------------------------- maps

@dataclasses.dataclass
class ValidationMaps:
    """Per-pixel statistics of the clean validation anomaps at the calibrated n, k (H x W each):
    ``avg`` is eq. (13)'s avgmap, ``std`` their spread (ours; None in run folders from before it)."""
    avg: np.ndarray
    std: np.ndarray | None = None

    @classmethod
    def of(cls, maps: list[np.ndarray]) -> "ValidationMaps":
        """Eq. (13)'s avgmap and the stdmap of H x W validation anomaps of one size."""
        stack = torch.from_numpy(np.stack(maps))[:, None]
        return cls(S.avgmap(stack).numpy()[0, 0], S.stdmap(stack).numpy()[0, 0])


def diff_maps(model, images: list[np.ndarray], kind: str, device: str, batch_size: int = 8,
              progress: bool = False, desc: str = "maps") -> list[torch.Tensor]:
    """Raw difference maps Diff(X, F(X)) (eq. 2, or the SSIM-based one), one 1 x H x W tensor
    per image, on the CPU. Images of equal size are processed in batches."""
    out: list[torch.Tensor | None] = [None] * len(images)
    groups: dict[tuple, list[int]] = {}
    for i, a in enumerate(images):
        groups.setdefault(a.shape, []).append(i)
    bar = tqdm(total=len(images), disable=not progress, desc=desc, unit="img")
    for idx in groups.values():
        for s in range(0, len(idx), batch_size):
            chunk = idx[s:s + batch_size]
            x = torch.from_numpy(np.stack([images[i].transpose(2, 0, 1) for i in chunk])).to(device)
            y = S.reconstruct(model, x, batch_size=batch_size)
            d = S.difference(x, y, kind)
            for j, i in enumerate(chunk):
                out[i] = d[j].float().cpu()
            bar.update(len(chunk))
    bar.close()
    return out  # type: ignore[return-value]


def finish_maps(raw: list[torch.Tensor], n: int, k: int, stats: ValidationMaps | None, t: int,
                standardize: bool = False, two_sided: bool = False) -> list[np.ndarray]:
    """anomap (eq. 3) from raw Diff maps (1 x H x W each), weighted by the avgmap (eq. 14) when
    ``t > 0``, or standardised per pixel (ours, :func:`ssae.scoring.standardized_anomap`, by
    ``|z|`` when ``two_sided``) when ``standardize``; returns H x W arrays. Without ``stats``
    (images of several sizes) both are skipped."""
    if standardize and t:
        raise SsaeError("choose either the avgmap weighting (t > 0) or standardised maps, not both")
    if standardize and stats is not None and stats.std is None:
        raise SsaeError("standardised maps need the validation stdmap; recalibrate the run")
    def plane(a):  # an H x W array as a 1 x 1 x H x W tensor
        return None if a is None else torch.from_numpy(a)[None, None]

    avg, std = (None, None) if stats is None else (plane(stats.avg), plane(stats.std))
    return [finish_map(d[None], n, k, avg, std, t, standardize, two_sided)[0, 0].numpy() for d in raw]


def finish_map(d: torch.Tensor, n: int, k: int, avg: torch.Tensor | None, std: torch.Tensor | None, t: int,
               standardize: bool = False, two_sided: bool = False) -> torch.Tensor:
    """:func:`finish_maps` on a B x 1 x H x W tensor of raw Diff maps, with the avgmap ``avg``
    and stdmap ``std`` as 1 x 1 x H x W tensors (None: no weighting); a traceable function of
    ``d``, which :mod:`ssae.export` puts into an ONNX graph."""
    m = S.smooth(d, n, k)
    if avg is not None and t:  # eq. (14)
        return S.weighted_anomap(m, avg, t)
    if avg is not None and standardize:
        return S.standardized_anomap(m, avg, std, two_sided)
    return m


# ----------------------------------------------------------------------------- calibration

def calibrate(run_dir, split: D.Split, device: str = "cpu", model=None, progress: bool = True,
              seed: int = 12345) -> dict:
    """Choose n, k, the reduction and the mask threshold on validation data; write
    ``calibration.json`` (and ``avgmap.npy``, ``stdmap.npy``). Uses no test image."""
    run_dir = Path(run_dir)
    cfg, _ = read_run_config(run_dir)
    if model is None:
        model, cfg = load_model(run_dir, device)
    doc, stats = calibrate_model(model, cfg, split, device, seed=seed)
    write_calibration(run_dir, doc, stats)
    return doc


def write_calibration(run_dir, doc: dict, stats: ValidationMaps | None) -> None:
    """Write a calibration (:func:`calibrate_model`) into ``run_dir``: ``avgmap.npy`` and
    ``stdmap.npy`` (removed when there are none: images of several sizes), then
    ``calibration.json``; each under a temporary name, then renamed."""
    run_dir = Path(run_dir)
    if stats is None:
        for name in (AVGMAP, STDMAP):
            (run_dir / name).unlink(missing_ok=True)
    else:
        _save_npy(run_dir / AVGMAP, stats.avg)
        _save_npy(run_dir / STDMAP, stats.std)
    write_json(run_dir / CALIBRATION, doc)


def calibrate_model(model, cfg: Config, split: D.Split, device: str = "cpu",
                    seed: int = 12345) -> tuple[dict, ValidationMaps | None]:
    """:func:`calibrate` for any model (a trained SSAE or a reference such as
    :class:`ssae.references.BlurReference`): returns ``(calibration, ValidationMaps or None)``.

    With ``cfg.score.select_nk`` every combination of Diff (``diff_candidates``, default: the
    configured one), (n, k) (``nk_candidates``, default :data:`NK_GRID`), eq. (14) exponent t (``t_candidates``, default:
    the configured one), standardised maps or not (``standardize_candidates``, default: the
    configured choice; only with t = 0) and reduction is scored by how well it separates the
    validation images from corrupted copies (:func:`proxy_corruption`: as in training unless
    ``score.proxy_corruption`` names a fixed task of other corruptions, or
    ``score.proxy_patch_*`` other sizes): pixel AUROC on the corrupted copies plus image AUROC
    of clean against corrupted. The avgmap (and stdmap) that weights image i is computed
    without image i (leave-one-out), as a test image is never part of it. The same
    separation at the chosen settings, on copies corrupted *as in training*, is the
    restoration check (``restoration_pixel_auroc``, ``restoration_image_auroc``).
    ``score.two_sided`` applies to every standardised candidate; it is not itself chosen.
    """
    sc = cfg.score
    val = D.load_images(split.val, cfg.data.image_size, split.channels, progress=False)
    proxy = proxy_corruption(cfg)
    corrupted, masks = _corrupted(val, proxy, seed)
    kinds = tuple(sc.diff_candidates or (sc.diff,)) if sc.select_nk else (sc.diff,)
    exponents = tuple(sc.t_candidates or (sc.t,))
    nk_grid = S.nk_pairs(sc.nk_candidates) or NK_GRID
    standardizations = tuple(bool(z) for z in (sc.standardize_candidates or (sc.standardize,)))
    raw = {kind: (diff_maps(model, val, kind, device), diff_maps(model, corrupted, kind, device))
           for kind in kinds}
    one_size = len({a.shape for a in val}) == 1  # eq. (13) needs maps of one size
    diff_kind, n, k, t, reduce, z = sc.diff, sc.n, sc.k, sc.t, sc.reduce, bool(sc.standardize)
    if z and t:
        raise SsaeError("score.standardize and score.t > 0 exclude each other; set one of them")
    if not one_size:
        z = False
    two = bool(sc.two_sided)
    selection = []
    # eq. (14) exponents without standardising, and standardised maps (t = 0); one size only
    weightings = ([(tt, False) for tt in exponents] * (False in standardizations)
                  + [(0, True)] * (True in standardizations)) if one_size else [(0, False)]
    if sc.select_nk:
        best = None
        for kind in kinds:
            for nn_, kk in nk_grid:
                clean = finish_maps(raw[kind][0], nn_, kk, None, 0)
                bad = finish_maps(raw[kind][1], nn_, kk, None, 0)
                for tt, zz in weightings:
                    pix, img = _separation(clean, bad, masks, tt, seed, standardize=zz, two_sided=two)
                    selection.append({"diff": kind, "n": nn_, "k": kk, "t": tt, "standardize": zz,
                                      "pixel_auroc": pix, **{f"image_auroc_{r}": img[r] for r in REDUCTIONS}})
                    score = np.nan_to_num(pix) + max(np.nan_to_num(v) if v is not None else 0.0
                                                     for v in img.values())
                    if best is None or score > best[0]:
                        best = (score, (kind, nn_, kk, tt, max(img, key=lambda r: img[r] or 0.0), zz))
        diff_kind, n, k, t, reduce, z = best[1]
    clean_maps = finish_maps(raw[diff_kind][0], n, k, None, 0)
    if proxy == training_corruption(cfg):
        restore_raw, restore_masks = raw[diff_kind][1], masks
    else:  # the restoration check is about the training corruption, whatever the proxy
        like_training, restore_masks = _corrupted(val, training_corruption(cfg), seed)
        restore_raw = diff_maps(model, like_training, diff_kind, device)
    restore_pix, restore_img = _separation(clean_maps, finish_maps(restore_raw, n, k, None, 0),
                                           restore_masks, t if one_size else 0, seed, standardize=z,
                                           two_sided=two)
    stats = ValidationMaps.of(clean_maps) if one_size else None
    final = finish_maps(raw[diff_kind][0], n, k, stats, t, standardize=z, two_sided=two)
    threshold = S.threshold_from_validation([torch.from_numpy(m) for m in final], sc.threshold_quantile)
    val_scores = [float(S.image_score(torch.from_numpy(m)[None], reduce)) for m in final]
    doc = {"n": n, "k": k, "reduce": reduce, "diff": diff_kind, "t": t, "standardize": z,
           "two_sided": bool(z and two),
           "threshold": float(threshold),
           "image_threshold": float(np.quantile(val_scores, 0.99)) if val_scores else None,
           "n_val_images": len(val), "selected_on": "corrupted validation images" if sc.select_nk else "config",
           "proxy_corruption": [proxy.method, *proxy.alternate],
           "proxy_patch": [proxy.patch_min, proxy.patch_max],
           "selection": selection,
           # the restoration check: how well the chosen maps find the training corruptions
           "restoration_pixel_auroc": restore_pix, "restoration_image_auroc": restore_img[reduce]}
    return doc, stats


def training_corruption(cfg: Config) -> CorruptionConfig:
    """The corruption of training, which the restoration check uses; a plain autoencoder
    (method "none") gets the paper's elastic corruption, so that it too has anomalies to find,
    with the config's other corruption settings (patch sizes, shape, brightness), so that its
    restoration check, and without ``score.proxy_corruption`` its proxy, uses the sizes it is
    given."""
    if cfg.corruption.method != "none":
        return cfg.corruption
    return dataclasses.replace(cfg.corruption, method=CorruptionConfig.method)


def proxy_corruption(cfg: Config) -> CorruptionConfig:
    """The corruption of the validation proxy that chooses the scoring (ours; the paper does
    not say how it chose n and k).

    By default :func:`training_corruption`. With ``score.proxy_corruption`` the proxy is a
    fixed task instead: those methods (one per image at random) with the default corruption
    settings of :class:`CorruptionConfig`, whatever the model trained on, so that the method and
    its references are scored alike and the choice does not favour whatever the training taught
    the model to find. ``score.proxy_patch_min`` and ``score.proxy_patch_max`` set the proxy's
    patch sizes (the `cpu` profile: 0.05-0.35 of the side, the defaults); larger proxy patches
    choose coarser maps (see the book's chapter 'What moves the numbers on real defects')."""
    sc = cfg.score
    if sc.proxy_corruption:
        methods = sc.proxy_corruption
        ccfg = CorruptionConfig(method=methods[0], alternate=tuple(methods[1:]), p_clean=0.0)
    else:
        ccfg = training_corruption(cfg)
    if sc.proxy_patch_min is not None or sc.proxy_patch_max is not None:
        lo = ccfg.patch_min if sc.proxy_patch_min is None else sc.proxy_patch_min
        hi = ccfg.patch_max if sc.proxy_patch_max is None else sc.proxy_patch_max
        if not 0 < lo <= hi <= 1:
            raise SsaeError(f"need 0 < score.proxy_patch_min <= score.proxy_patch_max <= 1, got {lo}, {hi}")
        ccfg = dataclasses.replace(ccfg, patch_min=lo, patch_max=hi)
    return ccfg


def _corrupted(images: list[np.ndarray], ccfg: CorruptionConfig, seed: int):
    """Validation images corrupted by ``ccfg``: ``(corrupted, masks)``."""
    gen = torch.Generator().manual_seed(seed)
    out, masks = [], []
    for a in images:
        x = torch.from_numpy(a.transpose(2, 0, 1).copy())[None]
        xh, m = corrupt(x, ccfg, gen)
        out.append(xh[0].numpy().transpose(1, 2, 0))
        masks.append(m[0, 0].numpy() > 0.5)
    return out, masks


def _pixel_auroc_subsampled(maps, masks, seed, max_pixels=400_000) -> float:
    scores = np.concatenate([m.ravel() for m in maps])
    truth = np.concatenate([m.ravel() for m in masks])
    if truth.all() or not truth.any():
        return float("nan")
    if scores.size > max_pixels:
        idx = np.random.default_rng(seed).choice(scores.size, max_pixels, replace=False)
        scores, truth = scores[idx], truth[idx]
    return float(M.pixel_auroc([truth[None]], [scores[None]]))


def _save_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, path)


def read_calibration(run_dir) -> tuple[dict, ValidationMaps | None]:
    """The calibration of a run and its validation-map statistics (None for images of several sizes)."""
    run_dir = Path(run_dir)
    path = run_dir / CALIBRATION
    if not path.is_file():
        raise SsaeError(f"{run_dir} has no {CALIBRATION}: training did not finish; rerun `ssae train` to resume")
    cal = read_json(path, "rerun `ssae train` with the same settings to recalibrate")
    missing = [key for key in ("n", "k", "reduce", "diff", "t", "threshold") if key not in cal] \
        if isinstance(cal, dict) else ["all"]
    if missing:
        raise SsaeError(f"{path} lacks {', '.join(missing)} (another version of ssae?); "
                        "rerun `ssae train` with the same settings to recalibrate")
    cal.setdefault("standardize", False)  # calibrations written before standardised maps existed
    cal.setdefault("two_sided", False)    # ... and before two-sided ones
    if not (run_dir / AVGMAP).is_file():
        return cal, None
    std = _load_npy(run_dir / STDMAP) if (run_dir / STDMAP).is_file() else None
    if cal["standardize"] and std is None:
        raise SsaeError(f"{run_dir} is calibrated for standardised maps but has no {STDMAP}; recalibrate it")
    return cal, ValidationMaps(_load_npy(run_dir / AVGMAP), std)


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path)
    except (ValueError, OSError, EOFError) as e:
        raise SsaeError(f"cannot read {path}: {str(e).splitlines()[0][:200]}; rerun `ssae train` to recalibrate")


def _separation(clean: list[np.ndarray], bad: list[np.ndarray], masks, t: int, seed: int,
                standardize: bool = False, two_sided: bool = False) -> tuple[float, dict]:
    """Pixel AUROC of the maps of corrupted validation images against their corruption masks,
    and image AUROC (per reduction) of clean against corrupted validation images.

    With ``t > 0`` both maps of image i are weighted by eq. (14) with the avgmap (eq. 13) of the
    *other* clean validation maps (leave-one-out); with ``standardize`` they are standardised by
    the mean and spread of the other clean validation maps (by ``|z|`` when ``two_sided``)."""
    if (t or standardize) and len(clean) > 1:
        n = len(clean)
        total, total_sq = np.sum(clean, axis=0), np.sum(np.square(clean), axis=0)
        loo = [(total - c) / (n - 1) for c in clean]
        if standardize:
            loo_std = [np.sqrt(np.maximum((total_sq - c * c) / (n - 1) - a * a, 0.0)) for c, a in zip(clean, loo)]
            weigh = lambda m, a, s: S.standardized_anomap(  # noqa: E731
                torch.from_numpy(m), torch.from_numpy(a), torch.from_numpy(s), two_sided).numpy()
        else:
            loo_std = [None] * n
            weigh = lambda m, a, s: S.weighted_anomap(torch.from_numpy(m), torch.from_numpy(a), t).numpy()  # noqa: E731
        clean, bad = ([weigh(c, a, s) for c, a, s in zip(clean, loo, loo_std)],
                      [weigh(b, a, s) for b, a, s in zip(bad, loo, loo_std)])
    labels = [0] * len(clean) + [1] * len(bad)
    img = {r: M.image_auroc(labels, s) for r, s in image_scores(clean + bad).items()}
    return _pixel_auroc_subsampled(bad, masks, seed), img


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


def restoration_warning(cal: dict) -> str | None:
    """A one-line warning when the model does not yet find its own training corruptions on
    validation images (pixel AUROC below :data:`RESTORATION_MIN`), else None.

    A model that has learned the task of Section 3 restores corrupted regions, so its Diff is
    high exactly there. Below the threshold its maps are mostly the reconstruction's blur, and
    its test numbers say little about the method: train longer, retrain with other initial weights
    (``train.init_seed``, ``ssae train --retries``), or use corruptions that change the image by
    more than the model's own reconstruction error, e.g. swapped patches (see the book's chapter
    'What moves the numbers on real defects')."""
    pix = cal.get("restoration_pixel_auroc")
    if pix is None or not np.isfinite(pix) or pix >= RESTORATION_MIN:
        return None
    return (f"warning: on validation images corrupted as in training the anomaly maps find the corrupted "
            f"regions only with pixel AUROC {pix:.2f} (< {RESTORATION_MIN}): the model does not (yet) "
            f"restore such corruptions, so its maps mostly show reconstruction error; train longer (on a GPU), "
            f"retrain with other initial weights (ssae train --retries 1), or use corruptions larger than the "
            f"model's own error (e.g. --corruption swap)")


# ----------------------------------------------------------------------------- evaluation

def anomaly_maps(run_dir, data_spec: str, device: str = "cpu", progress: bool = True):
    """Test split, items, images, anomaly maps (eq. 3/14 with the calibrated settings) and the
    calibration: ``(split, items, images, maps, calibration)``."""
    model, cfg, split, cal, stats = load_run(run_dir, data_spec, device)
    items, images, maps, _ = model_maps(model, cfg, split, cal, stats, device, progress)
    return split, items, images, maps, cal


def load_run(run_dir, data_spec: str, device: str = "cpu"):
    """The trained model, its Config, the data's split, the calibration and the
    :class:`ValidationMaps` (avgmap and stdmap)."""
    model, cfg = load_model(run_dir, device)
    split = D.load_split(data_spec, cfg.data, seed=cfg.train.seed)
    if split.channels != cfg.model.in_channels:
        raise SsaeError(f"{data_spec} has {split.channels} channel(s) but the model in {run_dir} "
                        f"was trained on {cfg.model.in_channels}")
    cal, stats = read_calibration(run_dir)
    return model, cfg, split, cal, stats


def model_maps(model, cfg: Config, split: D.Split, cal: dict, stats, device: str, progress: bool = True):
    """Anomaly maps of the test split for any model; also returns the seconds spent on the maps
    (model, Diff, smoothing; image decoding excluded)."""
    items = split.test
    images = D.load_images([it.path for it in items], cfg.data.image_size, split.channels, progress=progress)
    start = time.time()
    raw = diff_maps(model, images, cal["diff"], device, progress=progress, desc="test maps")
    maps = finish_maps(raw, cal["n"], cal["k"], stats, cal["t"], cal["standardize"], cal["two_sided"])
    return items, images, maps, time.time() - start


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


def evaluate(run_dir, data_spec: str, device: str = "cpu", progress: bool = True) -> dict:
    """Image AUROC, pixel AUROC and AUPRO (fractions in [0, 1]) on the test split of
    ``data_spec`` for the run in ``run_dir``."""
    run_dir = Path(run_dir)
    model, cfg, split, cal, stats = load_run(run_dir, data_spec, device)
    summary = read_summary(run_dir)
    res = evaluate_model(model, cfg, split, cal, stats, device, data_spec=data_spec, progress=progress)
    res.update({"train_seconds": summary.get("seconds"), "train_steps": summary.get("steps"),
                "train_images_per_s": summary.get("images_per_s"), "run_dir": str(run_dir)})
    return res


def evaluate_model(model, cfg: Config, split: D.Split, cal: dict, stats, device: str = "cpu", *,
                   data_spec: str = "", progress: bool = True) -> dict:
    """:func:`evaluate` for any model and calibration (used for the references too)."""
    items, images, maps, seconds = model_maps(model, cfg, split, cal, stats, device, progress)
    labels = [it.label for it in items]
    # image scores from the maps as computed; pixel metrics at score.metric_size when it is set
    size = cfg.score.metric_size
    pix = at_metric_size(maps, size)
    masks = ground_truth(split, items, pix)
    types = defect_types(items)
    scores = image_scores(maps)
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
        "image_size": cfg.data.image_size if cfg.data.image_size else "native",
        "profile": cfg.profile,
        "device": str(device),
        "hardware": hardware(device),
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "objective": cfg.train.objective,
        "corruption": cfg.corruption.method,
        "corruption_shape": cfg.corruption.shape,
        "width": cfg.model.width,
        "inference_images_per_s": len(items) / max(seconds, 1e-9),
        "precision": precision(device),  # of the forward pass (ssae.precision)
        "score": {k: cal[k] for k in ("diff", "n", "k", "t", "standardize", "two_sided", "reduce")},
        # the synthetic defects the scoring was chosen on (older calibrations: not recorded)
        "proxy_corruption": cal.get("proxy_corruption"),
        "proxy_patch": cal.get("proxy_patch"),
        "restoration_pixel_auroc": cal.get("restoration_pixel_auroc"),
        "restoration_image_auroc": cal.get("restoration_image_auroc"),
        "per_defect": per_defect,
        # each type's share of all defect pixels, its weight in the pooled pixel AUROC
        "defect_pixel_share": ({d: v / total for d, v in defect_pixels.items()} if masks is not None and total
                               else None),
    }


def curve_point(model, cfg: Config, split: D.Split, device: str = "cpu") -> dict:
    """One point of a learning curve: ``model`` calibrated on validation data as at the end of
    training (:func:`calibrate_model`), then evaluated on the test split (:func:`evaluate_model`);
    the restoration check, image AUROC, pixel AUROC, AUPRO and the per-defect image AUROC."""
    began = time.time()
    cal, stats = calibrate_model(model, cfg, split, device)
    res = evaluate_model(model, cfg, split, cal, stats, device, progress=False)
    keys = ("image_auroc", "pixel_auroc", "aupro", "restoration_pixel_auroc", "restoration_image_auroc",
            "per_defect", "score", "n_test_images", "hardware")
    row = {k: res.get(k) for k in keys}
    row.update({"eval_seconds": round(time.time() - began, 1),
                "date": _dt.datetime.now().isoformat(timespec="seconds")})
    return row


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
    members = []
    for run_dir in run_dirs:
        model, cfg, split, cal, stats = load_run(run_dir, data_spec, device)
        items, _, maps, _ = model_maps(model, cfg, split, cal, stats, device, progress)
        if members and [it.path for it in items] != [it.path for it in first_items]:
            raise SsaeError(f"{run_dir} is evaluated on other test images than {run_dirs[0]} "
                            "(its data settings differ); an ensemble needs the same test images")
        if not members:
            first_items, first_split, reduce = items, split, cal["reduce"]
        members.append({"run_dir": str(run_dir), "image_size": cfg.data.image_size or "native",
                        "standardized": bool(cal["standardize"]), "maps": at_metric_size(maps, size),
                        "reduce": cal["reduce"]})
    ensemble_maps = [S.ensemble(*(torch.from_numpy(m["maps"][i]) for m in members)).numpy()
                     for i in range(len(first_items))]
    labels = [it.label for it in first_items]
    masks = ground_truth(first_split, first_items, ensemble_maps)
    types = defect_types(first_items)

    def scored(maps, reduce):
        return map_metrics(labels, image_scores(maps), masks, maps, reduce, types)

    return {"dataset": first_split.name, "data_spec": data_spec, "metric_size": int(size),
            "n_test_images": len(first_items), "reduce": reduce, **scored(ensemble_maps, reduce),
            "members": [{k: v for k, v in m.items() if k != "maps"} | scored(m["maps"], m["reduce"])
                        for m in members]}


def image_scores(maps: list[np.ndarray]) -> dict[str, list[float]]:
    """Each map's image score under every reduction of :data:`REDUCTIONS` (the paper's sum, and
    ours: mean, max and contrast)."""
    return {r: [float(S.image_score(torch.from_numpy(m)[None], r)) for m in maps] for r in REDUCTIONS}


def map_metrics(labels, scores: dict[str, list[float]], masks, maps, reduce: str,
                types: dict[str, list[int]] | None = None) -> dict:
    """The metrics of one set of anomaly maps: image AUROC under the chosen reduction
    ``reduce`` (and under each of ``scores``' reductions beside it), and, when there are
    ground-truth ``masks``, pixel AUROC, AUPRO to FPR 0.3, and the pixel AUROC per defect type.

    ``scores``: :func:`image_scores` of the maps the image score is taken from; ``maps``: the
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

def predict(run_dir, paths, out_dir, device: str = "cpu", progress: bool = True) -> Path:
    """Heatmap overlay PNG and binary mask PNG per image, and ``scores.csv`` in ``out_dir``.

    Maps are computed at the run's image size (as in training and evaluation) and resized
    (bilinear) to each input's own size for the overlay and the mask; a non-square input is
    thus stretched to the run's square size (:func:`stretch_note` says so). Outputs are named after
    the input (``<stem>_overlay.png``, ``<stem>_mask.png``); inputs that share a stem get their
    folder's name in front (``<folder>_<stem>``), and a number if that is not enough.
    ``scores.csv`` has one row per image: the image score (the calibrated reduction), whether it
    exceeds the validation threshold, and the names of both PNGs."""
    import matplotlib

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    model, cfg = load_model(run_dir, device)
    cal, stats = read_calibration(run_dir)
    paths = [Path(p) for p in paths]
    if not paths:
        raise SsaeError("no images given to predict")
    originals = D.load_images(paths, None, cfg.model.in_channels, progress=False)  # each at its own size
    images = [D.resize_image(a, cfg.data.image_size) for a in originals]
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = diff_maps(model, images, cal["diff"], device, progress=progress, desc="predict")
    maps = finish_maps(raw, cal["n"], cal["k"], stats, cal["t"], cal["standardize"], cal["two_sided"])
    cmap = matplotlib.colormaps["jet"]
    scale = max(cal["threshold"] * 2, 1e-12)
    rows = []
    for p, name, img, m in zip(paths, output_names(paths), originals, maps):
        big = torch.nn.functional.interpolate(torch.from_numpy(m)[None, None], size=img.shape[:2],
                                              mode="bilinear", align_corners=False)[0, 0].numpy()
        rgb = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img
        heat = cmap(np.clip(big / scale, 0, 1))[..., :3]
        overlay = (0.5 * rgb + 0.5 * heat).clip(0, 1)
        _save_png(out_dir / f"{name}_overlay.png", (overlay * 255).astype(np.uint8))
        _save_png(out_dir / f"{name}_mask.png", ((big > cal["threshold"]) * 255).astype(np.uint8))
        score = float(S.image_score(torch.from_numpy(m)[None], cal["reduce"]))
        rows.append({"image": str(p), "score": score,
                     "anomalous": None if cal.get("image_threshold") is None else score > cal["image_threshold"],
                     "overlay": f"{name}_overlay.png", "mask": f"{name}_mask.png"})
    tmp = out_dir / "scores.csv.tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image", "score", "anomalous", "overlay", "mask"])
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, out_dir / "scores.csv")
    return out_dir


def stretch_note(paths, size: int | None) -> str | None:
    """A one-line note when :func:`predict` stretches inputs: images that are not square, read
    at a square ``size`` (the run's ``data.image_size``; None keeps each image's size), else None."""
    if size is None:
        return None
    paths = [Path(p) for p in paths]
    shapes = {p: D.native_size(p) for p in paths}
    odd = [p for p in paths if shapes[p][0] != shapes[p][1]]
    if not odd:
        return None
    h, w = shapes[odd[0]]
    return (f"note: {len(odd)} of {len(paths)} images are not square (e.g. {odd[0]}, {w} x {h}): the model reads "
            f"them stretched to {size} x {size}, its training size, and their maps are resized back; crop them "
            f"square for undistorted maps")


def output_names(paths: list[Path]) -> list[str]:
    """A distinct output name per input path: its stem, ``<folder>_<stem>`` where stems repeat
    (``test/good/000.png`` and ``test/crack/000.png``), and ``_2``, ``_3`` ... beyond that."""
    stems = [p.stem for p in paths]
    names = [f"{p.parent.name}_{p.stem}" if stems.count(p.stem) > 1 else p.stem for p in paths]
    out, seen = [], {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def _save_png(path: Path, arr: np.ndarray) -> None:
    from PIL import Image
    tmp = path.with_name(path.stem + ".tmp.png")
    Image.fromarray(arr).save(tmp)
    os.replace(tmp, path)
