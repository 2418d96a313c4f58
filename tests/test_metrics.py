"""ssae.metrics: AUROC and AUPRO against hand-computed cases and a brute-force sweep."""
import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from ssae import metrics
from ssae.errors import SsaeError


def test_image_auroc():
    assert metrics.image_auroc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert metrics.image_auroc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert metrics.image_auroc([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4]) == 0.75
    assert metrics.image_auroc([1, 1], [0.1, 0.2]) is None


def test_pixel_auroc_matches_sklearn_and_mixes_sizes():
    rng = np.random.default_rng(0)
    masks = [rng.random((5, 7)) < 0.3, rng.random((4, 4)) < 0.3]
    maps = [np.round(rng.random((5, 7)), 1), torch.tensor(np.round(rng.random((1, 4, 4)), 1))]
    y = np.concatenate([m.ravel() for m in masks])
    s = np.concatenate([maps[0].ravel(), maps[1].numpy().ravel()])
    assert metrics.pixel_auroc(masks, maps) == pytest.approx(roc_auc_score(y, s))
    assert metrics.pixel_auroc([np.zeros((2, 2), bool)], [np.zeros((2, 2))]) is None
    with pytest.raises(SsaeError, match="mask is"):
        metrics.pixel_auroc([np.zeros((2, 2), bool)], [np.zeros((2, 3))])


def two_images():
    """Two 4x4 images: A has a 2x2 region (4 px), B a 1x2 region (2 px); 26 ok pixels."""
    ma, mb = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    ma[:2, :2] = True
    mb[3, 2:] = True
    sa, sb = np.zeros((4, 4)), np.zeros((4, 4))
    sa[0, :2], sa[1, :2] = 4, 2          # region A: half at 4, half at 2
    sb[3, 2], sb[3, 3] = 3, 1            # region B: half at 3, half at 1
    sb[0, 0] = 3                         # one false positive, tied with B's 3
    return [ma, mb], [sa, sb]


def test_aupro_hand_case():
    masks, maps = two_images()
    # vertices: (0, 0) (0, .25) (1/26, .5) (1/26, 1) (1, 1)
    fpr, pro = metrics.pro_curve(masks, maps)
    assert fpr[-1] == 1 and pro[-1] == 1
    expected = (1 / 26 * (0.25 + 0.5) / 2 + (0.3 - 1 / 26) * 1.0) / 0.3
    assert metrics.aupro(masks, maps) == pytest.approx(expected)
    expected_full = 1 / 26 * 0.375 + (1 - 1 / 26)
    assert metrics.aupro(masks, maps, fpr_limit=1.0) == pytest.approx(expected_full)


def test_aupro_perfect_inverted_and_undefined():
    masks, _ = two_images()
    perfect = [m.astype(float) for m in masks]
    assert metrics.aupro(masks, perfect) == pytest.approx(1.0)
    assert metrics.aupro(masks, [1 - p for p in perfect]) == pytest.approx(0.0)
    empty = [np.zeros((3, 3), bool)]
    assert metrics.aupro(empty, [np.zeros((3, 3))]) is None
    with pytest.raises(SsaeError):
        metrics.aupro(masks, perfect, fpr_limit=0)


def test_aupro_eight_connectivity_and_empty_masks():
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    mask[2, 2] = True                                 # touches the block diagonally
    score = np.zeros((4, 4))
    score[2, 2] = 1.0
    fpr, pro = metrics.pro_curve([mask], [score])
    # 8-connected: one region of 5 px, 1 found -> PRO 0.2 (4-connected would give 0.5)
    assert pro[fpr == 0].max() == pytest.approx(0.2)
    # a good image (empty mask) only adds negatives: 11 + 16 ok pixels, one false positive
    good = np.zeros((4, 4))
    good[3, 3] = 1.0
    fpr2, pro2 = metrics.pro_curve([mask, np.zeros((4, 4), bool)], [score, good])
    assert (fpr2[2], pro2[2]) == (pytest.approx(1 / 27), pytest.approx(0.2))


def brute_force_aupro(masks, maps, limit):
    """Sweep every distinct threshold over full arrays (slow, obviously correct)."""
    regions, ok = [], []
    for m, s in zip(masks, maps):
        lab, n = ndimage.label(m, structure=np.ones((3, 3)))
        regions += [s[lab == i] for i in range(1, n + 1)]
        ok.append(s[lab == 0])
    ok = np.concatenate(ok)
    xs, ys = [0.0], [0.0]
    for t in np.unique(np.concatenate([s.ravel() for s in maps]))[::-1]:
        xs.append(np.mean(ok >= t))
        ys.append(np.mean([np.mean(r >= t) for r in regions]))
    xs, ys = xs + [1.0], ys + [1.0]
    area = 0.0
    for x0, y0, x1, y1 in zip(xs[:-1], ys[:-1], xs[1:], ys[1:]):
        if x1 <= x0 or x0 >= limit:
            continue
        if x1 > limit:
            y1, x1 = y0 + (y1 - y0) * (limit - x0) / (x1 - x0), limit
        area += (x1 - x0) * (y0 + y1) / 2
    return area / limit


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aupro_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    masks, maps = [], []
    for shape in [(6, 8), (7, 5), (6, 6)]:
        m = ndimage.binary_dilation(rng.random(shape) < 0.08)
        masks.append(m)
        maps.append(np.round(rng.random(shape) + 0.5 * m, 1))   # rounding makes ties
    masks.append(np.zeros((4, 4), bool))
    maps.append(np.round(rng.random((4, 4)), 1))
    for limit in (0.3, 1.0):
        assert metrics.aupro(masks, maps, limit) == pytest.approx(
            brute_force_aupro(masks, maps, limit), rel=1e-9)
