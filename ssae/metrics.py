"""Evaluation metrics (Sec. 4.1): image AUROC, pixel AUROC and AUPRO.

- image AUROC: the ROC area of the image scores against the labels (0 good, 1 defective);
- pixel AUROC: the ROC area over all pixels of all test images together;
- AUPRO: the area under the per-region-overlap curve up to a false positive rate of 0.3,
  divided by 0.3, as defined with MVTec AD (Bergmann et al., IJCV 2021). The paper reports
  AUROC; AUPRO is the field's complement for small defects.

Each function returns None when the metric is undefined (only one class present), so a
report can print "n/a" instead of failing. Masks and maps may differ in size between
images but must agree with each other per image. Maps may be numpy arrays or tensors,
H x W or with leading singleton dimensions (1 x H x W, 1 x 1 x H x W).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from ssae.errors import SsaeError

#: 8-connectivity for the ground-truth regions of AUPRO, as MVTec AD's evaluation code
#: (scipy.ndimage.label with a 3 x 3 structuring element of ones).
PRO_STRUCTURE = np.ones((3, 3), dtype=int)


def _plane(a) -> np.ndarray:
    """A tensor or array -> 2-D numpy array (leading singleton dimensions dropped)."""
    if hasattr(a, "detach"):
        a = a.detach().float().cpu().numpy()
    a = np.asarray(a)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise SsaeError(f"expected an H x W map or mask, got shape {a.shape}")
    return a


def _pairs(masks, maps):
    masks, maps = list(masks), list(maps)
    if len(masks) != len(maps):
        raise SsaeError(f"{len(masks)} masks but {len(maps)} anomaly maps")
    for i, (mask, amap) in enumerate(zip(masks, maps)):
        mask, amap = _plane(mask).astype(bool, copy=False), _plane(amap).astype(np.float32, copy=False)
        if mask.shape != amap.shape:
            raise SsaeError(f"test image {i}: mask is {mask.shape} but anomaly map is {amap.shape}")
        yield mask, amap


def image_auroc(labels, scores) -> float | None:
    """ROC area of image scores against labels; None if only one label occurs."""
    labels = np.asarray(labels).astype(int).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if len(labels) != len(scores):
        raise SsaeError(f"{len(labels)} labels but {len(scores)} scores")
    if len(np.unique(labels)) < 2:
        return None
    return float(roc_auc_score(labels, scores))


def pixel_auroc(masks, maps) -> float | None:
    """ROC area over the pixels of all images together; None without both pixel classes.

    Computed as the Mann-Whitney statistic P(score_defect > score_ok) + 0.5 P(equal), which
    equals sklearn's roc_auc_score (tested) but needs one plain sort of the non-defect pixels
    instead of an argsort of all pixels: seconds rather than a minute for 600 x 256^2 pixels.
    """
    pairs = list(_pairs(masks, maps))
    if not pairs:
        return None
    pos = np.concatenate([a[m] for m, a in pairs])
    neg = np.sort(np.concatenate([a[~m] for m, a in pairs]))
    if pos.size == 0 or neg.size == 0:
        return None
    below = np.searchsorted(neg, pos, side="left").sum(dtype=np.float64)
    ties = np.searchsorted(neg, pos, side="right").sum(dtype=np.float64) - below
    return float((below + 0.5 * ties) / (pos.size * float(neg.size)))


def _pro_steps(masks, maps, fpr_limit: float):
    """The PRO curve's sloped segments, one per distinct non-defect score u (descending):
    ``(fpr_gt, fpr_ge, pro_gt, pro_ge, complete)``, i.e. FPR and PRO at thresholds just above
    u and at u. Between segments the curve rises vertically (no area). Only the segments up
    to the first with FPR > ``fpr_limit`` are built; ``complete`` says whether that was all of
    them. None if there is no region or no non-defect pixel. Memory: a few arrays of the
    size of the non-defect pixels above the limit, no interleaved copies (standardised maps
    have a distinct score at nearly every pixel)."""
    ok_scores, region_scores, region_weights = [], [], []
    n_regions = 0
    for mask, amap in _pairs(masks, maps):
        labels, n = ndimage.label(mask, structure=PRO_STRUCTURE)
        ok_scores.append(amap[labels == 0])
        if n:
            inside = labels > 0
            sizes = np.bincount(labels[inside], minlength=n + 1)
            region_scores.append(amap[inside])
            region_weights.append(1.0 / sizes[labels[inside]])
            n_regions += n
    ok_asc = np.concatenate(ok_scores) if ok_scores else np.empty(0, np.float32)
    del ok_scores
    ok_asc.sort()
    n_ok = ok_asc.size
    if n_regions == 0 or n_ok == 0:
        return None
    # the highest scores up to one past fpr_limit, with all ties of the last one
    need = min(n_ok, int(np.floor(fpr_limit * n_ok)) + 1)
    need = n_ok - int(np.searchsorted(ok_asc, ok_asc[n_ok - need], side="left"))
    ok = ok_asc[n_ok - need:][::-1]
    complete = need == n_ok
    # non-defect pixels: distinct scores u (descending) and how many are >= each
    last = np.flatnonzero(np.append(ok[1:] != ok[:-1], True))
    u_asc = np.ascontiguousarray(ok[last][::-1])             # searchsorted is fastest on sorted keys
    del ok_asc, ok
    fpr_ge = (last + 1) / n_ok
    del last
    fpr_gt = np.concatenate(([0.0], fpr_ge[:-1]))
    # region pixels: PRO(>= u) and PRO(> u) from suffix sums over ascending scores
    rs = np.concatenate(region_scores)
    order = np.argsort(rs, kind="stable")
    rs = rs[order]
    rw = np.concatenate(region_weights)[order] / n_regions
    tail = np.append(np.cumsum(rw[::-1])[::-1], 0.0)      # tail[i] = sum of rw[i:]
    pro_ge = np.clip(tail[np.searchsorted(rs, u_asc, side="left")][::-1], 0.0, 1.0)
    pro_gt = np.clip(tail[np.searchsorted(rs, u_asc, side="right")][::-1], 0.0, 1.0)
    return fpr_gt, fpr_ge, pro_gt, pro_ge, complete


def pro_curve(masks, maps, fpr_limit: float = 1.0) -> tuple[np.ndarray, np.ndarray] | None:
    """The PRO curve as vertices (fpr, pro), nondecreasing, from (0, 0) to (1, 1).

    At a threshold tau a pixel is predicted defective where its score is >= tau.
    FPR = predicted-defective non-defect pixels / all non-defect pixels of all images
    (defect-free images and empty masks included). PRO = mean over all ground-truth regions
    of all images (8-connected components, as MVTec AD) of the fraction of the region
    predicted defective. Each distinct non-defect score s contributes two vertices:
    (FPR just above s, PRO(> s)) and (FPR(>= s), PRO(>= s)); between them the curve is
    linear, exactly as when all pixels are swept in order of their score. Vertical steps
    (region pixels alone crossing the threshold) add no area and need no vertices.
    With ``fpr_limit < 1`` the curve stops at the first vertex with FPR > fpr_limit (all
    an area up to the limit needs; a third of the work for the default 0.3).
    None if there is no region or no non-defect pixel.
    """
    steps = _pro_steps(masks, maps, fpr_limit)
    if steps is None:
        return None
    fpr_gt, fpr_ge, pro_gt, pro_ge, complete = steps
    end = [1.0] if complete else []
    fpr = np.concatenate(([0.0], np.column_stack((fpr_gt, fpr_ge)).ravel(), end))
    pro = np.concatenate(([0.0], np.column_stack((pro_gt, pro_ge)).ravel(), end))
    return np.minimum(fpr, 1.0), pro


def aupro(masks, maps, fpr_limit: float = 0.3) -> float | None:
    """Area under the PRO curve for FPR in [0, fpr_limit], divided by fpr_limit (MVTec AD).

    1.0 for a perfect map; about 0 for an inverted one. Images with empty masks contribute
    only non-defect pixels. None if there are no defect regions (see :func:`pro_curve`).
    """
    if not 0 < fpr_limit <= 1:
        raise SsaeError(f"fpr_limit must lie in (0, 1], got {fpr_limit}")
    steps = _pro_steps(masks, maps, fpr_limit)
    if steps is None:
        return None
    fpr_gt, fpr_ge, pro_gt, pro_ge, _ = steps
    # trapezoids of the sloped segments that end within the limit (the vertical steps
    # between them add nothing) ...
    inside = fpr_ge <= fpr_limit
    area = float(np.sum(0.5 * (pro_gt[inside] + pro_ge[inside]) * (fpr_ge[inside] - fpr_gt[inside])))
    # ... and the part of the first one that crosses the limit, interpolated linearly
    cross = np.flatnonzero(~inside)
    if cross.size and fpr_gt[cross[0]] < fpr_limit:
        i = cross[0]
        x0, x1, y0, y1 = fpr_gt[i], fpr_ge[i], pro_gt[i], pro_ge[i]
        y_at = y0 + (y1 - y0) * (fpr_limit - x0) / (x1 - x0)
        area += 0.5 * (y0 + y_at) * (fpr_limit - x0)
    return area / fpr_limit
