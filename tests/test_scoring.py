"""ssae.scoring: eqs. (2), (3), (13), (14), reconstruction padding, Table 4 ensemble."""
import numpy as np
import pytest
import torch
from scipy import ndimage

from ssae import scoring
from ssae.errors import SsaeError


def test_diff_eq2_by_hand():
    x = torch.zeros(1, 3, 1, 2)
    y = torch.tensor([[[[1.0, 0.0]], [[0.5, 0.0]], [[0.0, 0.3]]]])
    d = scoring.diff(x, y)
    assert d.shape == (1, 1, 1, 2)
    assert torch.allclose(d, torch.tensor([[[[(1 + 0.25) / 3, 0.09 / 3]]]]))


@pytest.mark.parametrize("n,k", [(1, 3), (2, 5), (3, 1), (2, 9)])
def test_smooth_is_n_box_filters(n, k):
    d = torch.rand(2, 1, 13, 17, generator=torch.Generator().manual_seed(0))
    ours = scoring.smooth(d, n, k).numpy()
    ref = d.numpy().astype(np.float64)
    for _ in range(n):
        ref = ndimage.uniform_filter(ref, size=(1, 1, k, k), mode="nearest")
    assert ours.shape == d.shape
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_smooth_even_k_and_identity():
    d = torch.rand(1, 1, 6, 7)
    assert scoring.smooth(d, 0, 9) is d
    e = scoring.smooth(d, 2, 4)
    assert e.shape == d.shape
    c = torch.full((1, 1, 5, 5), 0.7)
    assert torch.allclose(scoring.smooth(c, 3, 4), c)          # constants stay constant at borders
    with pytest.raises(SsaeError):
        scoring.smooth(d, 1, 0)


class Identity(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(tuple(x.shape))
        return x


def test_reconstruct_pads_and_crops_back():
    model = Identity().train()
    x = torch.rand(5, 3, 30, 44)
    y = scoring.reconstruct(model, x, batch_size=2)
    assert torch.equal(y, x)
    assert model.seen == [(2, 3, 32, 48), (2, 3, 32, 48), (1, 3, 32, 48)]
    assert model.training                                      # mode restored
    tiny = torch.rand(1, 1, 3, 5)                              # sides under 8: replicate padding
    assert torch.equal(scoring.reconstruct(model, tiny), tiny)


def test_anomap_zero_for_perfect_reconstruction():
    x = torch.rand(2, 3, 16, 16)
    for kind in ("l2", "ssim"):
        m = scoring.anomap(Identity(), x, n=1, k=3, kind=kind)
        assert m.shape == (2, 1, 16, 16) and m.abs().max() < 1e-4
    with pytest.raises(SsaeError, match="unknown difference"):
        scoring.anomap(Identity(), x, 1, 3, kind="l1")


def test_ssim_diff_grows_with_distortion():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 24, 24, generator=g)
    noise = torch.rand(1, 3, 24, 24, generator=g) - 0.5
    small = scoring.ssim_diff(x, (x + 0.05 * noise).clamp(0, 1)).mean()
    large = scoring.ssim_diff(x, (x + 0.5 * noise).clamp(0, 1)).mean()
    assert 0 < small < large <= 2


def test_avgmap_and_weighting_eq13_eq14():
    maps = [torch.tensor([[[[0.0, 2.0]]]]), torch.tensor([[[[2.0, 2.0]]]])]
    avg = scoring.avgmap(maps)
    assert torch.equal(avg, torch.tensor([[[[1.0, 2.0]]]]))
    m = torch.tensor([[[[4.0, 4.0]]]])
    w = scoring.weighted_anomap(m, avg, t=2, rescale=True)     # ours: avg/max = [0.5, 1]
    assert torch.allclose(w, torch.tensor([[[[1.0, 0.0]]]]))
    literal = scoring.weighted_anomap(m, torch.tensor([[[[0.25, 2.0]]]]), t=2)  # eq. (14) as written
    assert torch.allclose(literal, torch.tensor([[[[4 * 0.75 ** 2, 0.0]]]]))    # 1 - avg clamped at 0
    assert scoring.weighted_anomap(m, avg, t=0) is m
    with pytest.raises(SsaeError, match="one size"):
        scoring.avgmap([torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 3, 2)])


def test_stdmap_and_standardized_anomap_by_hand():
    maps = torch.tensor([[[[0.0, 1.0, 5.0]]], [[[2.0, 1.0, 5.0]]]])   # spreads 1, 0, 0
    avg, std = scoring.avgmap(maps), scoring.stdmap(maps)
    assert torch.equal(std, torch.tensor([[[[1.0, 0.0, 0.0]]]]))
    m = torch.tensor([[[[3.0, 1.5, 5.0]]]])
    z = scoring.standardized_anomap(m, avg, std)
    floor = scoring.STD_FLOOR * (1.0 / 3.0)                   # where every validation map agreed
    assert torch.allclose(z, torch.tensor([[[[2.0, 0.5 / floor, 0.0]]]]))
    # the same raw error ranks higher where normal images rarely err
    assert z[0, 0, 0, 0] > scoring.standardized_anomap(torch.full_like(m, 3.0), avg, std)[0, 0, 0, 2]
    with pytest.raises(SsaeError, match="must match"):
        scoring.standardized_anomap(m, avg[..., :2], std)
    # two-sided: less error than usual counts as much as more (|z|)
    low = torch.tensor([[[[-1.0, 1.0, 5.0]]]])                 # z = -2 at the first pixel
    assert scoring.standardized_anomap(low, avg, std)[0, 0, 0, 0] == pytest.approx(-2.0)
    two = scoring.standardized_anomap(low, avg, std, two_sided=True)
    assert torch.allclose(two, scoring.standardized_anomap(low, avg, std).abs()) and two[0, 0, 0, 0] == 2.0


def test_image_score_ensemble_threshold():
    m = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]], [[[0.0, 0.0], [0.0, 5.0]]]])
    assert scoring.image_score(m).tolist() == [10.0, 5.0]
    assert scoring.image_score(m, "max").tolist() == [4.0, 5.0]
    a, b = torch.tensor([1.0, 5.0]), torch.tensor([3.0, 2.0])
    assert scoring.ensemble(a, b).tolist() == [3.0, 5.0]
    vals = [torch.arange(50.0).reshape(1, 1, 5, 10), np.arange(50.0, 101.0)]
    assert scoring.threshold_from_validation(vals, 0.5) == pytest.approx(50.0)
    assert scoring.threshold_from_validation(vals, 1.0) == pytest.approx(100.0)
    assert scoring.image_score(m, "mean").tolist() == [2.5, 1.25]
    with pytest.raises(SsaeError):
        scoring.image_score(m, "median")


def test_contrast_score_is_the_max_against_the_image_s_own_median_and_mad():
    # 3 x 3 map: values 1..9, median 5, |m - 5| = 4 3 2 1 0 1 2 3 4 -> MAD 2; (9 - 5) / 2 = 2
    m = torch.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    assert scoring.image_score(m, "contrast").tolist() == [2.0]
    # a tile that errs twice as much everywhere, plus a constant, scores the same ...
    assert scoring.image_score(2 * m + 7, "contrast").tolist() == [2.0]
    # ... where the sum and the max rank it first
    rough = 2 * m + 7
    assert scoring.image_score(rough, "max") > scoring.image_score(m, "max")
    # a spot that stands out of an otherwise even tile outranks a rough tile with a higher max
    spot = torch.full((1, 1, 3, 3), 1.0) + torch.tensor([0.0, 0.1, 0.0, 0.1, 0.0, 0.1, 0.0, 0.1, 3.0]).reshape(1, 1, 3, 3)
    assert scoring.image_score(spot, "max") < scoring.image_score(rough, "max")
    assert scoring.image_score(spot, "contrast") > scoring.image_score(rough, "contrast")
    # a constant map but for one pixel: MAD 0 is floored, the score large and finite
    one = torch.zeros(1, 1, 4, 4)
    one[0, 0, 1, 2] = 3.0
    assert scoring.image_score(one, "contrast").item() == pytest.approx(3.0 / scoring.MAD_FLOOR)
    assert scoring.image_score(torch.zeros(1, 1, 4, 4), "contrast").tolist() == [0.0]


def test_lowpass_diff_cancels_zero_mean_texture_and_keeps_a_brightness_shift():
    from ssae.scoring import difference, lowpass_diff

    y = torch.full((1, 1, 48, 48), 0.5)
    ii, jj = torch.meshgrid(torch.arange(48), torch.arange(48), indexing="ij")
    checker = 0.2 * (((ii + jj) % 2) * 2 - 1).float()  # +-0.2, zero mean
    x = y + checker
    x[..., 24:40, 24:40] += 0.1  # a consistent brightness change over a region
    l2, low = difference(x, y, "l2"), lowpass_diff(x, y, k=9)
    assert torch.allclose(difference(x, y, "lowpass"), low)
    # eq. (2) is dominated by the texture; the low-pass Diff is not
    # (a 9 x 9 box holds one more pixel of one sign than of the other)
    assert l2[0, 0, 8, 8] == pytest.approx(0.04, rel=1e-4)
    assert low[0, 0, 8, 8] == pytest.approx((0.2 / 81) ** 2, rel=1e-3)
    assert low[0, 0, 32, 32] == pytest.approx((0.1 - 0.2 / 81) ** 2, rel=1e-3)  # centre pixel is -0.2
    assert low[0, 0, 32, 32] > 100 * low[0, 0, 8, 8]
    with pytest.raises(SsaeError, match="lowpass"):
        difference(x, y, "nosuch")
