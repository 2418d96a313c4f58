"""From reconstructions to anomaly maps and image scores: eqs. (2), (3), (13), (14), Table 4.

Given a trained autoencoder F and an image X (B x C x H x W, values in [0, 1]):

- eq. (2): ``Diff(X, F(X)) = avg_c (X - F(X))^2``, one value per pixel (:func:`diff`);
  Sec. 4.1 alternatively uses 1 - SSIM as the distance (:func:`ssim_diff`);
- ours: the squared *low-pass* difference ``avg_c (box_k(X - F(X)))^2`` (:func:`lowpass_diff`),
  in which zero-mean texture errors cancel and a consistent change of brightness remains;
- eq. (3): ``anomap^{n,k} = G_k^n(Diff)``, n successive k x k averaging filters (:func:`smooth`);
- image score: the sum of the anomap over the pixels (Sec. 3.1; :func:`image_score`); ours: the
  mean, the max, and the contrast of the max against the image's own median and spread;
- eq. (13): ``avgmap`` = mean anomap over the validation images (:func:`avgmap`);
- eq. (14): ``anomap * (1 - avgmap)^t`` (:func:`weighted_anomap`);
- ours, a variant of eqs. (13)-(14): ``(anomap - avgmap) / stdmap``, the anomap standardised
  per pixel by the mean and spread of the validation anomaps (:func:`stdmap`,
  :func:`standardized_anomap`), optionally two-sided (its absolute value);
- Table 4: the ensemble of two models is the pixel-wise maximum (:func:`ensemble`).

All maps are B x 1 x H x W float32 tensors at the resolution of the input.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ssae.errors import SsaeError
from ssae.precision import INFERENCE, inference_autocast


def diff(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Eq. (2): squared difference averaged over the colour channels, B x 1 x H x W."""
    return (x.float() - y.float()).pow(2).mean(dim=1, keepdim=True)


def _gaussian_window(window: int, sigma: float, channels: int, device, dtype) -> torch.Tensor:
    r = torch.arange(window, device=device, dtype=dtype) - (window - 1) / 2
    g = torch.exp(-(r ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, window, window).contiguous()


def ssim_diff(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """1 - SSIM(x, y) per pixel, averaged over channels (the SSIM-based Diff of Sec. 4.1).

    SSIM of Wang et al. (2004) with a ``window x window`` Gaussian window (std ``sigma``),
    data range 1 (C1 = 0.01^2, C2 = 0.03^2). Borders are replicate-padded so the output has
    the input's size. Values lie in [0, 2]; 0 where the images agree.
    """
    x, y = x.float(), y.float()
    c = int(x.shape[1])  # a constant when traced into an ONNX graph (ssae.export)
    w = _gaussian_window(window, sigma, c, x.device, x.dtype)
    p = window // 2

    def blur(t):
        return F.conv2d(F.pad(t, (p, window - 1 - p, p, window - 1 - p), mode="replicate"), w, groups=c)

    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cov = blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    ssim = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return (1.0 - ssim).mean(dim=1, keepdim=True)


def lowpass_diff(x: torch.Tensor, y: torch.Tensor, k: int = 9) -> torch.Tensor:
    """Ours: ``avg_c (box_k(X - F(X)))^2``, the *signed* difference averaged over a k x k box
    before it is squared, B x 1 x H x W.

    Eq. (2) squares first, so a reconstruction that cannot predict a stochastic texture (random
    streaks, grain) leaves its full error energy in the map, and smoothing by eq. (3) keeps it.
    Averaging the signed difference first cancels such zero-mean errors and keeps what the
    model changes consistently over a region, such as the brightness of a large low-contrast
    defect that the model restores to the normal level. Borders replicate-padded, as in
    :func:`smooth`.
    """
    return smooth(x.float() - y.float(), 1, k).pow(2).mean(dim=1, keepdim=True)


#: the Diffs of eq. (2) and Sec. 4.1, and ours
DIFFS = ("l2", "ssim", "lowpass")


def difference(x: torch.Tensor, y: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """Diff(X, F(X)) of the named ``kind``: ``l2`` (eq. 2), ``ssim`` (Sec. 4.1) or ``lowpass`` (ours)."""
    if kind == "l2":
        return diff(x, y)
    if kind == "ssim":
        return ssim_diff(x, y)
    if kind == "lowpass":
        return lowpass_diff(x, y)
    raise SsaeError(f"unknown difference {kind!r}; choose {', '.join(DIFFS)}")


def smooth(d: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """G_k^n of eq. (3): n successive k x k averaging filters with weights 1/k^2.

    The output has the input's size: each filter pads the borders by replicating the edge
    pixels (our choice; the paper does not say how borders are treated). For even k the
    window covers (k-1)//2 pixels before and k//2 after the centre. n = 0 is the identity.
    A k x k mean is a k x 1 mean followed by a 1 x k mean, so each filter runs as those two
    passes (2k instead of k^2 additions per pixel; the same numbers up to float rounding).
    """
    if n < 0 or k < 1:
        raise SsaeError(f"smoothing needs n >= 0 and k >= 1, got n={n}, k={k}")
    if n == 0 or k == 1:
        return d
    before, after = (k - 1) // 2, k // 2
    for _ in range(n):
        d = F.pad(d, (before, after, before, after), mode="replicate")
        d = F.avg_pool2d(F.avg_pool2d(d, (k, 1), stride=1), (1, k), stride=1)
    return d


def nk_pairs(pairs) -> tuple[tuple[int, int], ...]:
    """``pairs`` (``calibration.nk``) as a tuple of (n, k) pairs of G_k^n (eq. 3), each
    checked: a pair with n >= 0 and k >= 1, else a one-line :class:`SsaeError`. Empty stays
    empty (the calibration then uses its own grid)."""
    pairs = tuple(tuple(p) if isinstance(p, (tuple, list)) else (p,) for p in pairs)
    for p in pairs:
        if len(p) != 2 or p[0] < 0 or p[1] < 1:
            raise SsaeError(f"calibration.nk must hold (n, k) pairs with n >= 0 and k >= 1, got {p!r}")
    return pairs


def reconstruct(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 8,
                precision: str = INFERENCE) -> torch.Tensor:
    """F(X) for a batch of images of any size, without gradients, in eval mode.

    The network downsamples by 8, so H and W are padded at the bottom/right to a multiple of
    8 (reflect; replicate for sides under 8 pixels) and the output is cropped back. The forward
    pass computes in float32, or under bf16 autocast with ``precision="bf16"``
    (:mod:`ssae.precision`); the result is float32 on ``x.device``.
    """
    was_training = model.training
    model.eval()
    h, w = x.shape[-2:]
    outs = []
    try:
        with torch.no_grad(), inference_autocast(x.device, precision):
            for chunk in x.split(batch_size):
                chunk = pad_to_8(chunk).contiguous(memory_format=torch.channels_last)
                outs.append(model(chunk)[..., :h, :w].float().contiguous())
    finally:
        model.train(was_training)
    return torch.cat(outs)


def pad_to_8(x: torch.Tensor) -> torch.Tensor:
    """``x`` (B x C x H x W) padded at the bottom and right to H and W multiples of 8, the
    network's downsampling factor: reflect, or replicate for sides under 8 pixels (unchanged
    when both are multiples already)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % 8, (-w) % 8
    if not (ph or pw):
        return x
    return F.pad(x, (0, pw, 0, ph), mode="reflect" if (ph < h and pw < w) else "replicate")


def anomap(model: torch.nn.Module, x: torch.Tensor, n: int, k: int, kind: str = "l2",
           batch_size: int = 8, precision: str = INFERENCE) -> torch.Tensor:
    """Eq. (3): G_k^n(Diff(X, F(X))) with Diff the squared error (eq. 2), 1 - SSIM or the
    low-pass difference (:func:`difference`)."""
    return smooth(difference(x, reconstruct(model, x, batch_size, precision), kind), n, k)


def avgmap(maps) -> torch.Tensor:
    """Eq. (13): the mean anomap over the validation images, 1 x 1 x H x W.

    ``maps`` is a B x 1 x H x W tensor or a list of such tensors of one size.
    """
    if isinstance(maps, (list, tuple)):
        shapes = {tuple(m.shape[-2:]) for m in maps}
        if len(shapes) != 1:
            raise SsaeError(f"avgmap needs maps of one size, got sizes {sorted(shapes)}")
        maps = torch.cat([m.reshape(-1, 1, *m.shape[-2:]) for m in maps])
    return maps.float().mean(dim=0, keepdim=True)


def weighted_anomap(m: torch.Tensor, avg: torch.Tensor, t: int, rescale: bool = False) -> torch.Tensor:
    """Eq. (14): ``m * (1 - avg)^t``, as written; ``1 - avg`` is clamped at 0 where the avgmap
    exceeds 1 (a Diff such as SSIM's can). ``rescale`` (ours, ``score.avgmap_rescale``) divides
    the avgmap by its maximum first, so that ``1 - avg`` spans [0, 1] for any Diff.
    t = 0 returns m unchanged."""
    if t == 0:
        return m
    if avg.shape[-2:] != m.shape[-2:]:
        raise SsaeError(f"avgmap is {tuple(avg.shape[-2:])} but the anomap is {tuple(m.shape[-2:])}")
    a = avg
    if rescale:
        top = avg.max()
        a = avg / top if top > 0 else torch.zeros_like(avg)
    return m * (1.0 - a).clamp(min=0.0).pow(t)


def stdmap(maps: torch.Tensor) -> torch.Tensor:
    """Ours: the per-pixel standard deviation of the validation anomaps, 1 x 1 x H x W
    (the spread beside eq. (13)'s mean; ``maps`` is B x 1 x H x W)."""
    return maps.float().std(dim=0, keepdim=True, unbiased=False)


#: ours: the stdmap is floored at this fraction of its mean, so that pixels where every
#: validation map happened to agree do not turn tiny differences into huge scores
STD_FLOOR = 0.1


def standardized_anomap(m: torch.Tensor, avg: torch.Tensor, std: torch.Tensor,
                        two_sided: bool = False) -> torch.Tensor:
    """Ours, a variant of eq. (14): ``z = (m - avg) / max(std, STD_FLOOR * mean(std))`` per pixel;
    ``|z|`` when ``two_sided``.

    Eq. (14) multiplies the anomap by ``(1 - avgmap)^t`` to damp places where the model errs on
    every normal image (the rim of a bottle). Standardising asks instead how unusual the error
    at each pixel is *for that pixel*: on MTD nearly every good tile has its largest error at
    the tile's edges, and the max over a standardised map no longer lands there.

    The paper's maps flag only *more* error than usual. A defect that is smoother than the
    normal texture (glue on a tile) is reconstructed *better* than its surroundings while the
    model's own error on the texture is large; ``two_sided`` scores such a region by how far
    its error falls below the usual, too. The calibration never chooses it: its synthetic
    defects all add error.
    """
    if avg.shape[-2:] != m.shape[-2:] or std.shape[-2:] != m.shape[-2:]:
        raise SsaeError(f"avgmap {tuple(avg.shape[-2:])} and stdmap {tuple(std.shape[-2:])} must match the "
                        f"anomap {tuple(m.shape[-2:])}")
    floor = STD_FLOOR * float(std.mean())
    z = (m - avg) / std.clamp_min(max(floor, 1e-12))
    return z.abs() if two_sided else z


#: ours: the MAD of the ``contrast`` score is floored here, so that a map that is constant but
#: for a few pixels gives a large finite score rather than a division by zero
MAD_FLOOR = 1e-12


def image_score(m: torch.Tensor, reduce: str = "sum") -> torch.Tensor:
    """Anomaly score per image: the sum over the anomap's pixels (Sec. 3.1), or (ours) the mean
    (the sum divided by the pixel count: the same ranking for images of one size, comparable
    across images of different sizes), the maximum, or the ``contrast``
    ``(max(m) - median(m)) / MAD(m)`` with ``MAD(m) = median(|m - median(m)|)`` over the image's
    own pixels (floored at :data:`MAD_FLOOR`; for an even pixel count the median is the lower
    of the two middle values, as ``torch.median`` gives it).

    The contrast asks how far the worst place of an image stands out from the rest of *that
    image*, so it does not change when a whole map is scaled or shifted: a tile whose texture is
    rougher than usual everywhere, which raises its sum and its max, does not score higher
    for it (see the book's chapter 'What moves the numbers on real defects')."""
    flat = m.reshape(m.shape[0], -1)
    if reduce == "sum":
        return flat.sum(dim=1)
    if reduce == "mean":
        return flat.mean(dim=1)
    if reduce == "max":
        return flat.amax(dim=1)
    if reduce == "contrast":
        flat = flat.float()
        med = flat.median(dim=1, keepdim=True).values
        mad = (flat - med).abs().median(dim=1, keepdim=True).values
        return ((flat.amax(dim=1, keepdim=True) - med) / mad.clamp_min(MAD_FLOOR))[:, 0]
    raise SsaeError(f"unknown score reduction {reduce!r}; choose sum, mean, max or contrast")


def ensemble(*maps: torch.Tensor) -> torch.Tensor:
    """Table 4: anomap_Ens = max{anomap_1, anomap_2, ...}, pixel-wise."""
    if not maps:
        raise SsaeError("ensemble needs at least one anomaly map")
    out = maps[0]
    for m in maps[1:]:
        out = torch.maximum(out, m)
    return out


def threshold_from_validation(val_maps, quantile: float) -> float:
    """The ``quantile`` of all validation-map pixels: a threshold for binary masks (ours).

    ``val_maps`` is a tensor or a list of tensors / arrays (sizes may differ).
    """
    if isinstance(val_maps, torch.Tensor):
        val_maps = [val_maps]
    flat = [np.asarray(m.detach().cpu() if isinstance(m, torch.Tensor) else m, dtype=np.float64).ravel()
            for m in val_maps]
    values = np.concatenate(flat) if flat else np.empty(0)
    if values.size == 0:
        raise SsaeError("no validation maps to choose a threshold from")
    return float(np.quantile(values, quantile))


#: ours: the share of clean images the image threshold aims to pass (:func:`score_threshold`)
IMAGE_LEVEL = 0.99


def score_threshold(scores, level: float = IMAGE_LEVEL) -> tuple[float, str]:
    """An image-score threshold that about ``level`` of unseen clean images stay below, from
    the scores of a few clean images that the scoring did not see (held out): ``(threshold,
    how it was obtained)``.

    A few validation images cannot give a 99th percentile by counting (with 10 images any
    quantile above 0.9 is their maximum), so the threshold is the upper prediction bound of a
    normal distribution fitted to them, ``mean + t_{n-1, level} * sd * sqrt(1 + 1/n)``, on the
    logarithms of the scores when all are positive (scores such as the maximum of a map are
    skewed to the right), else on the scores. One score is its own threshold."""
    from scipy import stats as st

    s = np.asarray([float(v) for v in scores], dtype=np.float64)
    if s.size == 0 or not np.isfinite(s).all():
        raise SsaeError("no finite validation scores to choose an image threshold from")
    if s.size == 1:
        return float(s[0]), "the one validation score"
    factor = float(st.t.ppf(level, s.size - 1) * np.sqrt(1 + 1 / s.size))
    if (s > 0).all():
        lg = np.log(s)
        return float(np.exp(lg.mean() + factor * lg.std(ddof=1))), \
            f"log-normal {level:.0%} prediction bound of {s.size} held-out validation scores"
    return float(s.mean() + factor * s.std(ddof=1)), \
        f"normal {level:.0%} prediction bound of {s.size} held-out validation scores"


#: image-score reductions compared on validation data; "sum" is the paper's
REDUCTIONS = ("sum", "mean", "max", "contrast")


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
        return cls(avgmap(stack).numpy()[0, 0], stdmap(stack).numpy()[0, 0])


def diff_maps(model, images: list[np.ndarray], kind: str, device: str, batch_size: int = 8,
              progress: bool = False, desc: str = "maps", precision: str = INFERENCE) -> list[torch.Tensor]:
    """Raw difference maps Diff(X, F(X)) (eq. 2, or the SSIM-based one), one 1 x H x W tensor
    per image, on the CPU. Images of equal size are processed in batches; the forward pass at
    ``precision`` (:func:`reconstruct`)."""
    out: list[torch.Tensor | None] = [None] * len(images)
    groups: dict[tuple, list[int]] = {}
    for i, a in enumerate(images):
        groups.setdefault(a.shape, []).append(i)
    bar = tqdm(total=len(images), disable=not progress, desc=desc, unit="img")
    for idx in groups.values():
        for s in range(0, len(idx), batch_size):
            chunk = idx[s:s + batch_size]
            x = torch.from_numpy(np.stack([images[i].transpose(2, 0, 1) for i in chunk])).to(device)
            y = reconstruct(model, x, batch_size=batch_size, precision=precision)
            d = difference(x, y, kind)
            for j, i in enumerate(chunk):
                out[i] = d[j].float().cpu()
            bar.update(len(chunk))
    bar.close()
    return out  # type: ignore[return-value]


def finish_maps(raw: list[torch.Tensor], n: int, k: int, stats: ValidationMaps | None, t: int,
                standardize: bool = False, two_sided: bool = False, rescale: bool = False) -> list[np.ndarray]:
    """anomap (eq. 3) from raw Diff maps (1 x H x W each), weighted by the avgmap (eq. 14) when
    ``t > 0``, or standardised per pixel (ours, :func:`ssae.scoring.standardized_anomap`, by
    ``|z|`` when ``two_sided``) when ``standardize``; returns H x W arrays. Without ``stats``
    (images of several sizes) both are skipped. ``rescale``: see :func:`weighted_anomap`."""
    if standardize and t:
        raise SsaeError("choose either the avgmap weighting (t > 0) or standardised maps, not both")
    if standardize and stats is not None and stats.std is None:
        raise SsaeError("standardised maps need the validation stdmap; recalibrate the run")
    def plane(a):  # an H x W array as a 1 x 1 x H x W tensor
        return None if a is None else torch.from_numpy(a)[None, None]

    avg, std = (None, None) if stats is None else (plane(stats.avg), plane(stats.std))
    return [finish_map(d[None], n, k, avg, std, t, standardize, two_sided, rescale)[0, 0].numpy() for d in raw]


def calibrated_maps(raw: list[torch.Tensor], cal: dict, stats: ValidationMaps | None) -> list[np.ndarray]:
    """:func:`finish_maps` with the settings of a run's calibration (``calibration.json``)."""
    return finish_maps(raw, cal["n"], cal["k"], stats, cal["t"], cal["standardize"], cal["two_sided"],
                       cal.get("avgmap_rescale", False))


def finish_map(d: torch.Tensor, n: int, k: int, avg: torch.Tensor | None, std: torch.Tensor | None, t: int,
               standardize: bool = False, two_sided: bool = False, rescale: bool = False) -> torch.Tensor:
    """:func:`finish_maps` on a B x 1 x H x W tensor of raw Diff maps, with the avgmap ``avg``
    and stdmap ``std`` as 1 x 1 x H x W tensors (None: no weighting); a traceable function of
    ``d``, which :mod:`ssae.export` puts into an ONNX graph."""
    m = smooth(d, n, k)
    if avg is not None and t:  # eq. (14)
        return weighted_anomap(m, avg, t, rescale)
    if avg is not None and standardize:
        return standardized_anomap(m, avg, std, two_sided)
    return m


def image_scores(maps: list[np.ndarray]) -> dict[str, list[float]]:
    """Each map's image score under every reduction of :data:`REDUCTIONS` (the paper's sum, and
    ours: mean, max and contrast)."""
    return {r: [float(image_score(torch.from_numpy(m)[None], r)) for m in maps] for r in REDUCTIONS}
