"""Choosing the scoring on validation data, and the restoration check (Section 4.1; ours where marked).

The paper chooses n and k of G_k^n (eq. 3) and t of eq. (14) as hyperparameters without saying
how. Here they are chosen on *validation* images only, never on test labels:
:func:`calibrate_model` scores every candidate by how well its maps separate clean validation
images from copies with synthetic defects (the proxy, :func:`proxy_corruption`), then
records the avgmap of eq. (13) (and, ours, the per-pixel spread beside it) and the thresholds
for binary masks and image decisions, on clean validation maps weighted without their own
image (leave-one-out, :func:`held_out_maps`), as an unseen image's map is.

It also records the *restoration check* (ours): how well the chosen maps find the corruptions
the model was trained on, on validation images. A trained model finds them; an undertrained
one does not (:func:`restoration_warning`).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from . import data as D
from . import metrics as M
from . import scoring as S
from .config import Config, CorruptionConfig, proxy_patch
from .corruption import corrupt
from .errors import SsaeError
from .precision import INFERENCE
from .runs import load_model, read_run_config, write_calibration


#: candidate (n, k) pairs for G_k^n; (0, 1) is the raw Diff of eq. (2)
NK_GRID = ((0, 1), (1, 5), (1, 9), (2, 9), (1, 17), (2, 17), (3, 17), (2, 33))


#: ours: below this pixel AUROC on its own training corruptions a model counts as not yet trained
RESTORATION_MIN = 0.75

#: what a calibration records about the restoration (check, gain, and the errors the check compares)
RESTORATION_KEYS = ("restoration_pixel_auroc", "restoration_image_auroc", "restoration_gain",
                    "restoration_error", "normal_error")


def calibrate(run_dir, split: D.Split, device: str = "cpu", model=None, progress: bool = True,
              seed: int = 12345, precision: str = INFERENCE, log=None) -> dict:
    """Choose n, k, the reduction and the mask threshold on validation data; write
    ``calibration.json`` (and ``avgmap.npy``, ``stdmap.npy``). Uses no test image. ``log``: see
    :func:`calibrate_model`."""
    run_dir = Path(run_dir)
    cfg, _ = read_run_config(run_dir)
    if model is None:
        model, cfg = load_model(run_dir, device)
    doc, stats = calibrate_model(model, cfg, split, device, seed=seed, precision=precision, log=log)
    write_calibration(run_dir, doc, stats)
    return doc


def calibrate_model(model, cfg: Config, split: D.Split, device: str = "cpu",
                    seed: int = 12345, precision: str = INFERENCE,
                    log=None) -> tuple[dict, S.ValidationMaps | None]:
    """:func:`calibrate` for any model (a trained SSAE or a reference such as
    :class:`ssae.references.BlurReference`): returns ``(calibration, S.ValidationMaps or None)``.

    With ``cfg.calibration.search`` every point of the search space (:func:`search_space`:
    Diff, (n, k) of eq. (3), eq. (14) exponent t, standardised maps or not, image-score
    reduction) is scored by how well it separates the validation images from corrupted
    copies (:func:`proxy_corruption`: as in training unless ``calibration.proxy`` names a
    fixed task of other corruptions, or ``calibration.proxy_patch_*`` other sizes): pixel
    AUROC on the corrupted copies plus image AUROC of clean against corrupted. The avgmap (and
    stdmap) that weights image i is computed without image i (leave-one-out), as a test image is
    never part of it. The same
    separation at the chosen settings, on copies corrupted *as in training*, is the
    restoration check (``restoration_pixel_auroc``, ``restoration_image_auroc``).
    ``score.two_sided`` applies to every standardised candidate; it is not itself chosen.
    The network computes at ``precision`` (float32 by default), recorded as ``precision``.
    ``log`` (a function of one line, e.g. :meth:`ssae.progress.TrainLog.say`) is told each stage.
    """
    say = log or (lambda line: None)
    sc, search = cfg.score, cfg.calibration.search
    val = split.images(split.val, cfg.data.image_size)
    proxy = proxy_corruption(cfg)
    draws = cfg.calibration.proxy_draws
    corrupted, masks = _corrupted(val, proxy, seed, draws)
    space = search_space(cfg)
    kinds = space["diff"] if search else (sc.diff,)
    say(f"calibration: reconstructing {len(val)} validation image(s) and {len(corrupted)} corrupted copies "
        f"({', '.join(kinds)})")
    rescale = bool(sc.avgmap_rescale)
    raw = {kind: (S.diff_maps(model, val, kind, device, precision=precision),
                  S.diff_maps(model, corrupted, kind, device, precision=precision))
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
    weightings = ([(tt, False) for tt in space["t"]] * (False in space["standardize"])
                  + [(0, True)] * (True in space["standardize"])) if one_size else [(0, False)]
    if search:
        best = None
        n_points = len(kinds) * len(space["nk"]) * len(weightings)
        for kind in kinds:
            for nn_, kk in space["nk"]:
                if len(selection):
                    say(f"calibration: {len(selection)} of {n_points} scorings compared")
                clean = S.finish_maps(raw[kind][0], nn_, kk, None, 0)
                bad = S.finish_maps(raw[kind][1], nn_, kk, None, 0)
                for tt, zz in weightings:
                    pix, img = _separation(clean, bad, masks, tt, seed, standardize=zz, two_sided=two,
                                           rescale=rescale)
                    selection.append({"diff": kind, "n": nn_, "k": kk, "t": tt, "standardize": zz,
                                      "pixel_auroc": pix, **{f"image_auroc_{r}": img[r] for r in S.REDUCTIONS}})
                    offered = {r: np.nan_to_num(img[r]) if img[r] is not None else 0.0 for r in space["reduce"]}
                    score = np.nan_to_num(pix) + max(offered.values())
                    if best is None or score > best[0]:
                        best = (score, (kind, nn_, kk, tt, max(offered, key=offered.get), zz))
        diff_kind, n, k, t, reduce, z = best[1]
    say(f"calibration: chose Diff {diff_kind}, n {n}, k {k}, "
        + ("standardised maps" if z else f"t {t}") + f", image score {reduce}; restoration check and thresholds")
    clean_maps = S.finish_maps(raw[diff_kind][0], n, k, None, 0)
    if proxy == training_corruption(cfg):
        like_training, restore_raw, restore_masks = corrupted, raw[diff_kind][1], masks
    else:  # the restoration check is about the training corruption, whatever the proxy
        like_training, restore_masks = _corrupted(val, training_corruption(cfg), seed, draws)
        restore_raw = S.diff_maps(model, like_training, diff_kind, device, precision=precision)
    restore_pix, restore_img = _separation(clean_maps, S.finish_maps(restore_raw, n, k, None, 0),
                                           restore_masks, t if one_size else 0, seed, standardize=z,
                                           two_sided=two, rescale=rescale)
    stats = S.ValidationMaps.of(clean_maps) if one_size else None
    doc = {"n": n, "k": k, "reduce": reduce, "diff": diff_kind, "t": t, "standardize": z,
           "two_sided": bool(z and two), "avgmap_rescale": rescale}
    # thresholds on maps weighted without their own image (leave-one-out), as a test image's
    doc.update(thresholds(clean_maps, doc if one_size else {**doc, "t": 0, "standardize": False},
                          sc.threshold_quantile))
    doc.update({"n_val_images": len(val), "precision": precision,
                "selected_on": "corrupted validation images" if search else "config",
                "proxy_corruption": [proxy.method, *proxy.alternate],
                "proxy_patch": [proxy.patch_min, proxy.patch_max], "proxy_draws": draws,
                "selection": selection,
                # the restoration check: how well the chosen maps find the training corruptions
                "restoration_pixel_auroc": restore_pix, "restoration_image_auroc": restore_img[reduce],
                # and how much of them the model undoes (Section 3's task measured directly), with the
                # errors inside the regions and on clean images that the check compares
                **restoration_errors(model, val, like_training, restore_masks, device, precision)})
    return doc, stats


def restoration_gain(model, clean: list[np.ndarray], corrupted: list[np.ndarray], masks, device: str = "cpu",
                     precision: str = INFERENCE) -> float:
    """The share of the corruption's squared error inside the corrupted regions that the model
    removes (ours): ``1 - sum_S |F(x^) - x|^2 / sum_S |x^ - x|^2`` over validation images. 1: it
    restores the original, 0: it copies its input, < 0: it makes the region worse. This is the
    task of Section 3 measured on its own; the restoration check (pixel AUROC) asks whether the
    maps then single the regions out, which also needs the model's error elsewhere to be small
    (:func:`restoration_errors` gives both errors)."""
    return restoration_errors(model, clean, corrupted, masks, device, precision)["restoration_gain"]


def restoration_errors(model, clean: list[np.ndarray], corrupted: list[np.ndarray], masks,
                       device: str = "cpu", precision: str = INFERENCE) -> dict[str, float]:
    """:func:`restoration_gain`, and the two errors whose contrast the restoration check sees
    (ours; mean squared error per pixel and channel): ``restoration_error``, of ``F(x^)``
    against the original inside the corrupted regions, and ``normal_error``, of ``F(x)``
    against ``x`` on the clean images. Where the first is not clearly above the second, the maps
    cannot single the regions out, however much of the corruption the model undoes.
    ``corrupted`` may hold several copies of each clean image, copy j of image i at index
    ``j * len(clean) + i`` (:func:`_corrupted`)."""
    removed = left = inside = normal = count = 0.0
    for j, (xh, m) in enumerate(zip(corrupted, masks)):
        x = clean[j % len(clean)]
        out = S.reconstruct(model, torch.from_numpy(xh.transpose(2, 0, 1).copy())[None].to(device),
                            precision=precision)
        out = out[0].cpu().numpy().transpose(1, 2, 0)
        left += float(np.square(out - x)[m].sum())
        removed += float(np.square(xh - x)[m].sum())
        inside += float(m.sum()) * x.shape[-1]
    for x in clean:
        out = S.reconstruct(model, torch.from_numpy(x.transpose(2, 0, 1).copy())[None].to(device),
                            precision=precision)
        normal += float(np.square(out[0].cpu().numpy().transpose(1, 2, 0) - x).sum())
        count += x.size
    return {"restoration_gain": 1.0 - left / removed if removed > 0 else float("nan"),
            "restoration_error": left / inside if inside else float("nan"),
            "normal_error": normal / count if count else float("nan")}


def search_space(cfg: Config) -> dict[str, tuple]:
    """The scorings the calibration compares (``cfg.calibration``), one tuple of candidates
    per setting: ``diff``, ``nk`` ((n, k) of eq. (3); default :data:`NK_GRID`), ``t``
    (eq. 14), ``standardize`` (ours; only with t = 0) and ``reduce``. A setting without
    candidates keeps ``cfg.score``'s value, so the paper-fast profile searches n and k alone."""
    sc, cal = cfg.score, cfg.calibration
    return {"diff": tuple(cal.diff or (sc.diff,)),
            "nk": S.nk_pairs(cal.nk) or NK_GRID,
            "t": tuple(cal.t or (sc.t,)),
            "standardize": tuple(bool(z) for z in (cal.standardize or (sc.standardize,))),
            "reduce": tuple(cal.reduce or (sc.reduce,))}


def training_corruption(cfg: Config) -> CorruptionConfig:
    """The corruption of training, which the restoration check uses; a plain autoencoder
    (method "none") gets the paper's elastic corruption, so that it too has anomalies to find,
    with the config's other corruption settings (patch sizes, shape, brightness), so that its
    restoration check, and without ``calibration.proxy`` its proxy, uses the sizes it is
    given."""
    if cfg.corruption.method != "none":
        return cfg.corruption
    return dataclasses.replace(cfg.corruption, method=CorruptionConfig.method)


def proxy_corruption(cfg: Config) -> CorruptionConfig:
    """The corruption of the validation proxy that chooses the scoring (ours; the paper does
    not say how it chose n and k).

    By default :func:`training_corruption`. With ``calibration.proxy`` the proxy is a
    fixed task instead: those methods (one per image at random) with the default corruption
    settings of :class:`CorruptionConfig`, whatever the model trained on, so that the method and
    its references are scored alike and the choice does not favour whatever the training taught
    the model to find. ``calibration.proxy_patch_min`` and ``calibration.proxy_patch_max`` set the proxy's
    patch sizes (the `cpu` profile: 0.05-0.35 of the side, the defaults); larger proxy patches
    choose coarser maps (see the book's chapter 'What moves the numbers on real defects')."""
    methods = cfg.calibration.proxy
    if methods:
        ccfg = CorruptionConfig(method=methods[0], alternate=tuple(methods[1:]))
    else:
        ccfg = training_corruption(cfg)
    lo, hi = proxy_patch(cfg)
    if not 0 < lo <= hi <= 1:
        raise SsaeError(f"need 0 < calibration.proxy_patch_min <= calibration.proxy_patch_max <= 1, got {lo}, {hi}")
    return dataclasses.replace(ccfg, patch_min=lo, patch_max=hi)


def _corrupted(images: list[np.ndarray], ccfg: CorruptionConfig, seed: int, draws: int = 1):
    """Validation images corrupted by ``ccfg``, ``draws`` copies of each, drawn anew:
    ``(corrupted, masks)``, copy j of image i at index ``j * len(images) + i``."""
    gen = torch.Generator().manual_seed(seed)
    out, masks = [], []
    for a in images * draws:
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


def _separation(clean: list[np.ndarray], bad: list[np.ndarray], masks, t: int, seed: int,
                standardize: bool = False, two_sided: bool = False, rescale: bool = False) -> tuple[float, dict]:
    """Pixel AUROC of the maps of corrupted validation images against their corruption masks,
    and image AUROC (per reduction) of clean against corrupted validation images.

    With ``t > 0`` both maps of image i are weighted by eq. (14) with the avgmap (eq. 13) of the
    *other* clean validation maps (leave-one-out); with ``standardize`` they are standardised by
    the mean and spread of the other clean validation maps (by ``|z|`` when ``two_sided``).
    ``bad`` may hold several corrupted copies of each clean image (:func:`_corrupted`), copy j
    of image i at index ``j * len(clean) + i``."""
    if (t or standardize) and len(clean) > 1:
        n = len(clean)
        loo, loo_std = _leave_one_out(clean)
        weigh = _weighing(t, standardize, two_sided, rescale)
        clean, bad = ([weigh(c, a, s) for c, a, s in zip(clean, loo, loo_std)],
                      [weigh(b, loo[j % n], loo_std[j % n]) for j, b in enumerate(bad)])
    labels = [0] * len(clean) + [1] * len(bad)
    img = {r: M.image_auroc(labels, s) for r, s in S.image_scores(clean + bad).items()}
    return _pixel_auroc_subsampled(bad, masks, seed), img


def _leave_one_out(clean: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """For each clean validation map i, the mean (eq. 13) and spread of the *other* maps."""
    n = len(clean)
    total, total_sq = np.sum(clean, axis=0), np.sum(np.square(clean), axis=0)
    loo = [(total - c) / (n - 1) for c in clean]
    return loo, [np.sqrt(np.maximum((total_sq - c * c) / (n - 1) - a * a, 0.0)) for c, a in zip(clean, loo)]


def _weighing(t: int, standardize: bool, two_sided: bool, rescale: bool):
    """``f(map, avg, std)``: eq. (14)'s weighting (t > 0) or the standardised map, on arrays."""
    if standardize:
        return lambda m, a, s: S.standardized_anomap(
            torch.from_numpy(m), torch.from_numpy(a), torch.from_numpy(s), two_sided).numpy()
    return lambda m, a, s: S.weighted_anomap(torch.from_numpy(m), torch.from_numpy(a), t, rescale).numpy()


def held_out_maps(clean: list[np.ndarray], t: int, standardize: bool, two_sided: bool = False,
                  rescale: bool = False) -> tuple[list[np.ndarray], str]:
    """The clean validation maps (eq. 3, H x W) as a test image's map is computed, for choosing
    thresholds: ``(maps, method)``.

    A map weighted (eq. 14) or standardised by an avgmap and stdmap that include it is tamer
    than any unseen image's: standardised by n images that include it, no pixel can exceed
    ``sqrt(n - 1)``. So map i is weighted with the mean and spread of the *other* validation
    maps (leave-one-out), as a test image is weighted with statistics it took no part in.
    Unweighted maps (t = 0, not standardised) do not depend on the other images and are
    returned as they are."""
    if not (t or standardize):
        return list(clean), "validation maps (unweighted: no statistics to hold out)"
    if len(clean) < 2:  # nothing to hold out: the one map weighted by itself (a test image never is)
        stats = S.ValidationMaps.of(list(clean))
        weigh = _weighing(t, standardize, two_sided, rescale)
        return [weigh(c, stats.avg, stats.std) for c in clean], "the one validation map (not held out)"
    loo, loo_std = _leave_one_out(clean)
    weigh = _weighing(t, standardize, two_sided, rescale)
    return [weigh(c, a, s) for c, a, s in zip(clean, loo, loo_std)], "leave-one-out"


def thresholds(clean: list[np.ndarray], cal: dict, quantile: float) -> dict:
    """The pixel threshold (``quantile`` of the held-out validation maps' pixels, for binary
    masks) and the image threshold (:func:`ssae.scoring.score_threshold` of their image scores)
    for the scoring in ``cal`` (``t``, ``standardize``, ``two_sided``, ``avgmap_rescale``,
    ``reduce``), from the unweighted clean validation maps ``clean`` (:func:`held_out_maps`):
    the entries ``calibration.json`` records about them."""
    held, method = held_out_maps(clean, cal["t"], cal["standardize"], cal["two_sided"],
                                 cal.get("avgmap_rescale", False))
    scores = [float(S.image_score(torch.from_numpy(m)[None], cal["reduce"])) for m in held]
    image_threshold, image_method = S.score_threshold(scores) if scores else (None, None)
    return {"threshold": S.threshold_from_validation([torch.from_numpy(m) for m in held], quantile),
            "threshold_quantile": quantile, "image_threshold": image_threshold,
            "threshold_method": method, "image_threshold_method": image_method}


def rethreshold(run_dir, split: D.Split, device: str = "cpu", precision: str = INFERENCE) -> dict:
    """Recompute only the thresholds of a calibrated run or packed model (:func:`thresholds`)
    with its recorded scoring, avgmap and stdmap unchanged; rewrites ``calibration.json`` and
    returns it. The maps, and so every test metric, stay as they were."""
    from .runs import RunDir, read_calibration, write_json

    run_dir = Path(run_dir)
    model, cfg = load_model(run_dir, device)
    cal, _ = read_calibration(run_dir)
    val = split.images(split.val, cfg.data.image_size)
    raw = S.diff_maps(model, val, cal["diff"], device, precision=precision)
    cal.update(thresholds(S.finish_maps(raw, cal["n"], cal["k"], None, 0), cal, cfg.score.threshold_quantile))
    cal["threshold_precision"] = precision
    write_json(RunDir(run_dir).calibration, cal)
    return cal


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
    gain = cal.get("restoration_gain")
    if gain is None or not np.isfinite(gain):
        undone = ""
    elif gain >= 0:
        undone = f" (it undoes {gain:.0%} of their squared error)"
    else:  # its output there is further from the original than the corrupted input
        undone = f" (it undoes none of their squared error: its output there is {1 - gain:.3g} times as far off)"
    return (f"warning: on validation images corrupted as in training the anomaly maps find the corrupted "
            f"regions only with pixel AUROC {pix:.2f} (< {RESTORATION_MIN}): they do not single out such "
            f"corruptions{undone}, so they mostly show reconstruction error; train longer (on a GPU), "
            f"retrain with other initial weights (ssae train --retries 1), or use corruptions larger than the "
            f"model's own error (e.g. --corruption swap)")
