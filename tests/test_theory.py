"""Tests of ssae.theory: Section 3.4 and the supplements of the paper.

Each statement is checked twice: the conclusion must hold whenever premise and conditions
do (property-based, with hypothesis), and a counterexample must be found once a condition
is dropped, which shows that the check can fail and that the condition matters.
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, assume, find, given, settings
from hypothesis import strategies as st

from ssae import theory as T
from ssae.errors import SsaeError

FAST = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
# counterexample search: stop at the first one found (no shrinking, which only costs time)
SEARCH = settings(max_examples=2000, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate])


# --------------------------------------------------------------------------------------
# strategies: hypothesis chooses the structure (dimension, |S|, the position t of x~_S on
# the line, the offset from the line, how well the premise holds, exact boundary values);
# a seeded numpy generator fills in the coordinates, so dimensions up to a few hundred stay fast
# --------------------------------------------------------------------------------------

special_or = lambda lo, hi, specials: st.one_of(st.sampled_from(specials), st.floats(lo, hi))


@st.composite
def prop1_instances(draw):
    n = draw(st.integers(2, 300))
    k = draw(st.integers(1, n - 1))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    t = draw(special_or(-3.0, 3.0, [0.0, 1.0, 0.5, -1.0, 2.0]))
    off = draw(special_or(0.0, 3.0, [0.0]))
    ratio = draw(special_or(0.0, 3.0, [1.0, 0.0]))   # ||x_S' - y_S'|| / ||x_S - y_S||
    scale = draw(st.sampled_from([1e-3, 1.0, 255.0]))
    rng = np.random.default_rng(seed)
    S = np.zeros(n, dtype=bool)
    S[rng.choice(n, k, replace=False)] = True
    x = rng.uniform(0, 1, n) * scale
    y = rng.uniform(0, 1, n) * scale
    d = y[S] - x[S]
    # y outside S at distance ratio * ||x_S - y_S|| from x (premise holds iff ratio >= 1)
    u = rng.standard_normal(n - k)
    y[~S] = x[~S] + ratio * np.linalg.norm(d) * u / np.linalg.norm(u)
    # x^_S = x_S + t (y_S - x_S) + off * (a direction orthogonal to y_S - x_S)
    v = rng.standard_normal(k)
    v -= (v @ d) / (d @ d) * d
    nv = np.linalg.norm(v)
    v = v / nv * np.linalg.norm(d) if nv > 1e-12 and k > 1 else np.zeros(k)
    x_hat = x.copy()
    if t == 1.0 and off == 0.0:
        x_hat[S] = y[S]                 # exact patch swap, the boundary case
    elif t == 0.0 and off == 0.0:
        x_hat[S] = x[S]                 # no corruption
    else:
        x_hat[S] = x[S] + t * d + off * v
    return x, x_hat, y, S


@given(prop1_instances())
@FAST
def test_proposition1_never_fails_when_premise_and_condition6_hold(inst):
    x, x_hat, y, S = inst
    r = T.proposition1(x, x_hat, y, S)
    assume(r.premise and r.condition6)
    assert r.conclusion, r


@given(prop1_instances())
@FAST
def test_condition6_is_the_half_space_t_le_1(inst):
    """Geometric reading of (6): x~_S = x_S + t (y_S - x_S) satisfies (6) iff t <= 1."""
    x, x_hat, y, S = inst
    r = T.proposition1(x, x_hat, y, S)
    assume(abs(r.t - 1.0) > 1e-6)
    assert r.condition6 == (r.t <= 1.0)
    assert (r.case == "none") == (not r.condition6)


def test_proposition1_counterexample_without_condition6():
    found = find(prop1_instances(), lambda inst: (lambda r: r.premise and not r.conclusion)(
        T.proposition1(*inst)), settings=SEARCH)
    r = T.proposition1(*found)
    assert r.premise and not r.conclusion
    assert not r.condition6 and r.case == "none"       # only possible when (6) is violated


def test_proposition1_counterexample_without_premise():
    found = find(prop1_instances(), lambda inst: (lambda r: r.condition6 and not r.conclusion)(
        T.proposition1(*inst)), settings=SEARCH)
    r = T.proposition1(*found)
    assert r.condition6 and not r.premise and not r.conclusion


def test_proposition1_patch_swap_and_known_cases():
    x = np.zeros(3)
    y = np.array([1.0, 0.0, 1.0])                      # ||x_S - y_S|| = ||x_S' - y_S'|| = 1
    swap = T.proposition1(x, np.array([1.0, 0.0, 0.0]), y, [0, 1])
    assert swap.premise and swap.condition6 and swap.conclusion and swap.case == "case1"
    behind = T.proposition1(x, np.array([-0.5, 2.0, 0.0]), y, [0, 1])
    assert behind.case == "case2" and behind.conclusion
    beyond = T.proposition1(x, np.array([1.5, 0.0, 0.0]), y, [0, 1])
    assert beyond.premise and not beyond.condition6 and not beyond.conclusion
    with pytest.raises(SsaeError):
        T.proposition1(x, np.array([0.0, 0.0, 0.5]), y, [0, 1])


def test_fig6_grid_condition_is_tight_when_premise_is_an_equality():
    g = T.fig6_grid(resolution=41, sbar_dist=1.0)
    assert {0, 1, 2} <= set(np.unique(g.case).tolist())           # none, case 1, case 2 all present
    assert np.array_equal(g.condition6, g.conclusion)
    loose = T.fig6_grid(resolution=41, sbar_dist=2.0)   # premise with slack: more x^ allowed
    assert loose.conclusion.sum() > loose.condition6.sum()
    assert np.all(loose.conclusion[loose.condition6])


def test_fig6_path_follows_the_projection_and_the_conclusion_limit():
    ts = [-1.0, -0.4, 0.0, 0.5, 1.0, 1.2, 1.4, 2.0]
    frames = T.fig6_path([(t, 0.7) for t in ts], sbar_dists=(1.0, 1.3))
    assert [f.case for f in frames] == ["case2", "case2", "both", "case1", "case1", "none", "none", "none"]
    for t, f in zip(ts, frames):
        assert math.isclose(f.t, t, abs_tol=1e-12) and np.allclose(f.x_tilde, [t, 0.0])
        assert all(f.premises)
        assert f.conclusions[0] == f.condition6                     # premise an equality: (6) is tight
        assert f.conclusions == tuple(f.dist_x <= dy + 1e-12 for dy in f.dist_y)
        assert f.conclusions[1] == (t <= T.fig6_conclusion_limit(1.3))
    # with slack the conclusion holds a little beyond y_S, where (6) already fails
    assert not frames[5].condition6 and frames[5].conclusions == (False, True)
    assert frames[6].conclusions == (False, False)


# Lemma 1 ------------------------------------------------------------------------------

@st.composite
def vector_pairs(draw, relation):
    n = draw(st.integers(1, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    x = rng.standard_normal(n) * scale
    y = rng.standard_normal(n) * scale * draw(st.floats(0.01, 10.0))
    if relation == "orthogonal":
        if n == 1:
            y[:] = 0.0                  # in one dimension only the zero vector is orthogonal to x
        for _ in range(2):              # Gram-Schmidt, twice for a residual at rounding level
            y -= (y @ x) / (x @ x) * x
    elif relation == "positive multiple":
        y = x / draw(st.floats(1e-3, 1e3))
    elif relation == "negative multiple":
        y = -x / draw(st.floats(1e-3, 1e3))
    return x, y


@given(vector_pairs("orthogonal"))
@FAST
def test_lemma1_holds(pair):
    r = T.lemma1(*pair)
    assert r.premise and r.conclusion


def test_lemma1_counterexample_without_orthogonality():
    found = find(vector_pairs("any"), lambda p: not T.lemma1(*p).conclusion, settings=SEARCH)
    assert not T.lemma1(*found).premise


# Lemma 2 ------------------------------------------------------------------------------

@given(vector_pairs("positive multiple"))
@FAST
def test_lemma2_holds(pair):
    r = T.lemma2(*pair)
    assert r.premise and r.conclusion


def test_lemma2_counterexample_without_positive_multiple():
    found = find(vector_pairs("negative multiple"), lambda p: not T.lemma2(*p).conclusion,
                 settings=SEARCH)
    assert not T.lemma2(*found).premise
    assert not T.lemma2(np.array([2.0, 0.0]), np.array([-1.0, 0.0])).conclusion


# Lemma 3 ------------------------------------------------------------------------------

@st.composite
def lemma3_instances(draw, outside_change):
    x, x_hat, y, S = draw(prop1_instances())
    if outside_change:
        rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
        x_hat = x_hat.copy()
        x_hat[~S] += draw(st.floats(0.1, 5.0)) * rng.standard_normal(int((~S).sum())) * np.abs(x).max()
    return x_hat, x, y, S


@given(lemma3_instances(outside_change=False))
@FAST
def test_lemma3_equivalence_holds(inst):
    r = T.lemma3(*inst)
    assert r.premise and r.conclusion
    # the proof shows more: both margins are the same number
    assert math.isclose(r.margin_left, r.margin_right, rel_tol=1e-9, abs_tol=1e-9 * r.scale)


def test_lemma3_counterexample_when_x_hat_changes_outside_S():
    found = find(lemma3_instances(outside_change=True), lambda inst: not T.lemma3(*inst).conclusion,
                 settings=SEARCH)
    assert not T.lemma3(*found).premise


# --------------------------------------------------------------------------------------
# Figure 8 and Proposition 2
# --------------------------------------------------------------------------------------

def test_sliding_window_stats_match_brute_force():
    rng = np.random.default_rng(0)
    imgs = [rng.random((8, 8)) for _ in range(3)]
    st_ = T.sliding_window_pixel_stats(imgs, size=8, window=5)
    windows = np.stack([im[a:a + 5, b:b + 5] for im in imgs for a in range(4) for b in range(4)])
    np.testing.assert_allclose(st_.mean, windows.mean(0), atol=1e-12)
    np.testing.assert_allclose(st_.std, windows.std(0), atol=1e-7)


def test_fig8_spread_small_for_identically_distributed_pixels_and_large_otherwise():
    rng = np.random.default_rng(1)
    iid = [rng.random((64, 64)) for _ in range(4)]
    s = T.pixel_stats_spread(T.sliding_window_pixel_stats(iid, 64, 32), "texture")
    assert s["mean_spread"] < 0.02 and s["std_spread"] < 0.02
    assert abs(s["std_min"] - math.sqrt(1 / 12)) < 0.02
    ramp = np.linspace(0, 1, 64)[None, :].repeat(64, 0)          # object-like: left dark, right bright
    obj = [np.clip(ramp + 0.05 * rng.standard_normal((64, 64)), 0, 1) for _ in range(4)]
    o = T.pixel_stats_spread(T.sliding_window_pixel_stats(obj, 64, 32), "object")
    assert o["mean_spread"] > 0.3


def test_proposition2_monte_carlo_agrees_within_sampling_error():
    rng = np.random.default_rng(2)
    for fraction in (0.1, 0.25, 0.7):
        x, y = rng.random((3000, 12, 12)), rng.random((3000, 12, 12))
        r = T.proposition2_check(x, y, T.centred_square((12, 12), fraction), sigma2=1 / 12)
        assert abs(r.z) < 4, r
        assert math.isclose(r.predicted, (r.s_size - (r.n - r.s_size)) * 2 / 12)


def test_proposition2_detects_violated_assumptions():
    rng = np.random.default_rng(3)
    S = T.centred_square((12, 12), 0.25)
    # pixels not identically distributed: larger variance inside S than outside
    x, y = rng.random((3000, 12, 12)), rng.random((3000, 12, 12))
    x[:, S] = rng.integers(0, 2, (3000, int(S.sum())))
    y[:, S] = rng.integers(0, 2, (3000, int(S.sum())))
    pooled = T.pooled_variance(np.concatenate([x, y]))
    assert abs(T.proposition2_check(x, y, S, pooled).z) > 10
    # pairs not independent: y is x plus a little noise
    x = rng.random((3000, 12, 12))
    y = np.clip(x + 0.05 * rng.standard_normal(x.shape), 0, 1)
    assert abs(T.proposition2_check(x, y, S, 1 / 12).z) > 10


# --------------------------------------------------------------------------------------
# Theorem 2
# --------------------------------------------------------------------------------------

def test_theorem2_bound_fraction():
    assert math.isclose(T.theorem2_bound_fraction(1 / 12), 1 / 7)
    assert T.theorem2_bound_fraction(0.25) <= 1 / 3 + 1e-12


def test_violating_pairs_counts_and_limit_in_N():
    rng = np.random.default_rng(4)
    fractions = [0.05, 0.12, 0.4, 0.7]
    small = T.violating_pairs(T.uniform_field(rng, 60, 16, 1.0), fractions, 300, rng, sigma2=1 / 12)
    large = T.violating_pairs(T.uniform_field(rng, 60, 64, 1.0), fractions, 300, rng, sigma2=1 / 12)
    for v in (small, large):
        assert np.all(v.superset >= v.violations)                 # eq. (25)
        sides = v.sides()
        assert sides["inside_points"] == 2 and sides["inside_violations"] == 0
        assert v.rates[-1] > 0.95                                 # |S| > |S'|: almost always violated
    # (12): at a fixed ratio the violation rate shrinks with N
    assert small.rates[2] >= 0.02 and large.rates[2] <= small.rates[2] / 3


def test_violating_pairs_edge_cases():
    rng = np.random.default_rng(5)
    imgs = rng.random((5, 8, 8))
    assert T.violating_pairs(imgs, [1.0], 20, rng).violations[0] == 20      # S' empty
    same = np.repeat(imgs[:1], 5, axis=0)
    assert T.violating_pairs(same, [0.5, 1.0], 20, rng).violations.sum() == 0   # x == y


def test_pair_distances_are_the_two_sides_of_the_premise():
    imgs = np.random.default_rng(9).random((6, 16, 16))
    d = T.pair_distances(imgs, [0.1, 0.5, 0.9], 25, np.random.default_rng(3))
    c = T.violating_pairs(imgs, [0.1, 0.5, 0.9], 25, np.random.default_rng(3))
    assert np.array_equal(d.counts().violations, c.violations) and np.array_equal(d.counts().superset, c.superset)
    k, p = 1, 7
    (i, j), side, top, left = d.pairs[p], d.sides[k], d.tops[k, p], d.lefts[k, p]
    S = T.square_mask((16, 16), side, top, left)
    sq = (imgs[i] - imgs[j]) ** 2
    assert math.isclose(d.inside[k, p], sq[S].sum()) and math.isclose(d.outside[k, p], sq[~S].sum())
    assert np.all(d.inside <= (d.sides ** 2)[:, None])         # values in [0, 1]: why (25) holds
    assert np.array_equal(d.example, imgs[d.pairs[0, 0]])


# --------------------------------------------------------------------------------------
# Theorem 3 / Corollary 1
# --------------------------------------------------------------------------------------

def test_gaussian_field_has_the_predicted_correlation():
    rng = np.random.default_rng(6)
    f = T.gaussian_field(rng, 200, 32, 1.5)
    corr = T.field_correlation(32, 1.5)
    assert abs(f.var() - 1.0) < 0.03
    lag1 = np.mean(f[:, :, :-1] * f[:, :, 1:])
    assert abs(lag1 - corr[0, 1]) < 0.03
    assert corr[0, 16] < 1e-10                                      # finite correlation length


def test_corollary1_converges_within_chebyshev_bound():
    rng = np.random.default_rng(7)
    r = T.corollary1_convergence(rng, [2, 8, 32, 64], 400, 64, 2.0, eps=0.5)
    ratio = r.var_observed / r.var_predicted
    assert np.all((ratio > 0.6) & (ratio < 1.6)), ratio
    slack = 3 * np.sqrt(r.chebyshev * (1 - r.chebyshev) / r.n_trials) + 0.02
    assert np.all(r.exceed <= r.chebyshev + slack)
    assert r.mean_abs_dev[-1] < r.mean_abs_dev[0] / 4
    assert np.all(r.proof_bound >= r.chebyshev - 1e-12)             # the proof's estimate is looser


def test_proof_bound_crossing_is_where_the_proofs_chebyshev_bound_drops_below_one():
    eps = 0.5
    n = T.proof_bound_crossing(2.0, eps=eps, field_size=128)
    c2 = T.field_correlation(128, 2.0) ** 2
    assert T._proof_variance_bound(c2, 8.0, n) < eps ** 2 <= T._proof_variance_bound(c2, 8.0, n - 1)
    assert T.proof_bound_crossing(1.0, eps=eps, field_size=128) < n        # shorter correlation: sooner
    assert T.proof_bound_crossing(2.0, eps=1.0, field_size=128) < n        # looser eps: sooner


def test_corollary1_fails_without_vanishing_covariance():
    rng = np.random.default_rng(8)
    r = T.corollary1_convergence(rng, [2, 8, 32, 64], 400, 64, 2.0, eps=0.5, offset_std=1.0)
    assert r.var_observed[-1] > 5 * r.var_predicted[-1]
    assert r.exceed[-1] > 0.5


# --------------------------------------------------------------------------------------
# Figure 9
# --------------------------------------------------------------------------------------

WIDTHS = np.sqrt([0.1, 0.25, 0.4, 0.7, 0.9])


@pytest.fixture(scope="module")
def noise_train():
    return np.random.default_rng(9).random((24, 32, 32)).astype(np.float32)


def test_fig9_identity_reference(noise_train):
    c = T.orthogonality_curve(T.identity_map, noise_train, WIDTHS, np.random.default_rng(0))
    np.testing.assert_array_equal(c.acc_output, c.acc_input)
    np.testing.assert_array_equal(c.acc_input, [1, 1, 1, 0, 0])     # transition at |S|/N = 1/2
    expected = np.sqrt(2 / 12 * c.fractions * c.n_pixels)          # ||X^ - X|| = ||y_S - x_S||
    np.testing.assert_allclose(c.dist_mean, expected, rtol=0.1)


def test_fig9_nearest_neighbour_projection_is_orthogonal(noise_train):
    F = T.NearestNeighbourProjection(noise_train)
    c = T.orthogonality_curve(F, noise_train, WIDTHS, np.random.default_rng(0))
    np.testing.assert_array_equal(c.acc_output, c.acc_input)
    assert np.all(c.dist_mean[c.acc_input == 1] == 0)
    assert np.all(c.dist_mean[c.acc_input == 0] > 0)
    assert c.at_fraction(0.25)["acc_output"] == 1.0


def test_fig9_detects_a_non_orthogonal_map(noise_train):
    train = T.as_batch(noise_train)
    constant = lambda x: train[:1].expand_as(x)                      # always the first image
    c = T.orthogonality_curve(constant, noise_train, WIDTHS[:2], np.random.default_rng(0))
    assert np.all(c.acc_input == 1) and np.all(c.acc_output < 0.1)
    with pytest.raises(SsaeError):
        T.orthogonality_curve(lambda x: x[:, :, :4], noise_train, WIDTHS[:1], np.random.default_rng(0))


def test_patch_swap_and_nearest_index():
    a, b = torch.zeros(1, 6, 6), torch.ones(1, 6, 6)
    out = T.patch_swap(a, b, 2, 1, 3)
    assert out.sum() == 4 and out[0, 1:3, 3:5].eq(1).all() and a.sum() == 0
    train = torch.stack([a, b])
    assert T.nearest_index(torch.stack([out, b * 0.9]), train).tolist() == [0, 1]


def test_theory_figures_are_labelled(noise_train):
    from matplotlib.figure import Figure

    from ssae_book import plots

    rng = np.random.default_rng(10)
    stats = T.sliding_window_pixel_stats(list(noise_train[:2]), size=32, window=16)
    counts = T.violating_pairs(noise_train, [0.1, 0.6], 10, rng)
    conv = T.corollary1_convergence(rng, [2, 8], 20, 16, 1.0)
    curve = T.orthogonality_curve(T.identity_map, noise_train[:4], WIDTHS[:2], rng, label="identity")
    figs = [plots.fig6_cases("toy data", resolution=21), plots.fig8_pixel_stats(stats, "toy data"),
            plots.fig8_pixel_stats(stats, "toy data", kind="object"),
            plots.theorem2_violations([counts], "toy data"), plots.theorem3_convergence(conv, "toy data"),
            plots.fig9_orthogonality([curve], "toy data")]
    for fig in figs:
        assert isinstance(fig, Figure)
        titles = [fig.get_suptitle()] + [a.get_title() for a in fig.axes]
        assert any("toy data" in t for t in titles)
        assert all(a.get_xlabel() and a.get_ylabel() for a in fig.axes)


def _drawn_texts(fig):
    """Every non-empty text of ``fig`` once it is drawn (tick labels included)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    FigureCanvasAgg(fig).draw()
    return [t for t in fig.findobj(Text) if t.get_text() and t.get_visible()]


def test_figures_are_legible_at_the_column_width(noise_train):
    import matplotlib

    from ssae_book import plots

    rng = np.random.default_rng(10)
    counts = T.violating_pairs(noise_train, [0.1, 0.6], 10, rng)
    curve = T.orthogonality_curve(T.identity_map, noise_train[:4], WIDTHS[:2], rng, label="identity")
    figs = [plots.fig6_cases("toy data", resolution=21), plots.theorem2_violations([counts], "toy data"),
            plots.fig9_orthogonality([curve], "toy data"), plots.mrf_grid(5, (2, 2), order=1)]
    for name, value in plots.RC.items():
        assert matplotlib.rcParams[name] == (list(value) if isinstance(value, tuple) else value), name
    for fig in figs:
        assert fig.get_figwidth() <= plots.BOOK_WIDTH + 1e-9
        texts = _drawn_texts(fig)
        assert texts and min(t.get_fontsize() for t in texts) >= plots.MIN_PT
        ticks = [t for ax in fig.axes for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]
        assert all(t.get_fontsize() >= plots.MIN_PT for t in ticks)
    # a figure asked for wider than the column keeps its pixels and its text reads at the column width
    wide = plots.figure(14.6, 3.0, dpi=50)
    ax = wide.subplots()
    ax.set_title("a long title " * 12, fontsize=6)
    ax.tick_params(labelsize=5)
    assert wide.get_figwidth() == pytest.approx(plots.BOOK_WIDTH) and wide.dpi == pytest.approx(100)
    assert min(t.get_fontsize() for t in _drawn_texts(wide)) >= plots.MIN_PT
    assert "\n" in ax.get_title()  # broken into lines that fit
