"""Section 3.4 and the supplements of the paper, as computations that can be checked.

Every statement of the geometric interpretation gets a function that evaluates its premise,
its condition and its conclusion separately, so that a test (or a notebook) can show both
that the conclusion holds whenever the premise does, and that it fails once a condition is
dropped. Plots of these results live in :mod:`ssae_book.plots`.

Contents, in the order of the paper:

* Lemmas 1-3 (supplement, eqs. (15)-(17)) and Proposition 1 (eqs. (5), (6)):
  :func:`lemma1`, :func:`lemma2`, :func:`lemma3`, :func:`proposition1`,
  :func:`project_onto_line`, :func:`fig6_grid` (the two cases of Figure 6),
  :func:`fig6_path` and :func:`fig6_conclusion_limit` (Figure 6 along a path).
* Figure 8 and Proposition 2 (eq. (9)): :func:`sliding_window_pixel_stats`,
  :func:`pixel_stats_spread`, :func:`proposition2_check`, :func:`pooled_variance`.
* Theorem 2 (eqs. (11), (12), (25)): :func:`theorem2_bound_fraction`, :func:`pair_distances`,
  :func:`violating_pairs`.
* Theorem 3 / Corollary 1 (eqs. (19), (23)): :func:`gaussian_field`, :func:`uniform_field`,
  :func:`field_correlation`, :func:`corollary1_convergence`, :func:`proof_bound_crossing`.
* Figure 9 (orthogonality of a mapping F): :func:`patch_swap`, :func:`nearest_index`,
  :class:`NearestNeighbourProjection`, :func:`orthogonality_curve`.

Conventions: images are numpy arrays (``n x H x W`` grey, or ``H x W x C`` per image as in
the rest of ``ssae``); an index set ``S`` is either a boolean mask of the image's shape or
an iterable of flat indices. Random numbers come from a ``numpy.random.Generator`` passed
in by the caller; nothing here keeps state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ssae.errors import SsaeError

# Relative slack for comparisons whose two sides can be equal in exact arithmetic
# (boundary cases such as x^_S = y_S). Premises and conditions are evaluated strictly;
# only conclusions get this slack, so rounding can never turn a true statement false.
RTOL = 1e-9


def _leq(a: float, b: float, rtol: float) -> bool:
    """``a <= b`` up to ``rtol`` relative to the size of both sides."""
    return a <= b + rtol * (abs(a) + abs(b)) + 1e-300


def _vec(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).reshape(-1)


def _index_mask(S, n: int) -> np.ndarray:
    """A boolean mask of length ``n`` for ``S`` (a boolean mask of any shape with ``n``
    entries, or an iterable of flat indices)."""
    arr = np.asarray(S)
    if arr.dtype == bool:
        if arr.size != n:
            raise SsaeError(f"index mask has {arr.size} entries, vectors have {n}")
        return arr.reshape(-1).copy()
    idx = arr.reshape(-1).astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise SsaeError(f"index set S has indices outside 0..{n - 1}")
    mask = np.zeros(n, dtype=bool)
    mask[idx] = True
    return mask


# ---------------------------------------------------------------------------------------
# Lemmas 1-3 and Proposition 1 (supplement Sec. 1, paper eqs. (5), (6), (15)-(17))
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImplicationCheck:
    """Premise and conclusion of a statement ``premise => conclusion`` evaluated on one input.

    ``holds`` is the implication itself; it is False only for a counterexample.
    """
    premise: bool
    conclusion: bool

    @property
    def holds(self) -> bool:
        return (not self.premise) or self.conclusion


def lemma1(x, y, rtol: float = RTOL) -> ImplicationCheck:
    """Lemma 1, eq. (15): ``x^T y = 0  =>  ||x||^2 + ||y||^2 = ||x - y||^2 = ||x + y||^2``.

    The premise is orthogonality up to ``rtol`` (``|x.y| <= rtol ||x|| ||y||``); the
    conclusion allows the rounding that this slack implies.
    """
    x, y = _vec(x), _vec(y)
    nx2, ny2, dot = float(x @ x), float(y @ y), float(x @ y)
    premise = abs(dot) <= rtol * math.sqrt(nx2 * ny2)
    total = nx2 + ny2
    tol = 2 * rtol * total + 1e-300
    minus = float(np.sum((x - y) ** 2))
    plus = float(np.sum((x + y) ** 2))
    conclusion = abs(minus - total) <= tol and abs(plus - total) <= tol
    return ImplicationCheck(premise, conclusion)


def lemma2(x, y, rtol: float = RTOL) -> ImplicationCheck:
    """Lemma 2, eq. (16): ``x = lambda y`` for some ``lambda > 0``  =>
    ``| ||x||^2 - ||y||^2 | <= ||x + y||^2``.

    The premise is tested as: ``y != 0``, ``lambda := x.y / ||y||^2 > 0`` and
    ``||x - lambda y|| <= rtol ||x||``.
    """
    x, y = _vec(x), _vec(y)
    ny2 = float(y @ y)
    premise = False
    if ny2 > 0:
        lam = float(x @ y) / ny2
        premise = lam > 0 and float(np.linalg.norm(x - lam * y)) <= rtol * float(np.linalg.norm(x))
    lhs = abs(float(x @ x) - ny2)
    rhs = float(np.sum((x + y) ** 2))
    return ImplicationCheck(premise, _leq(lhs, rhs, rtol))


@dataclass(frozen=True)
class Lemma3Check:
    """Lemma 3, eq. (17), on one input: both sides of the equivalence and their margins.

    ``margin_left = ||x^ - y||^2 - ||x^ - x||^2`` (left side true iff >= 0),
    ``margin_right = ||x_S' - y_S'||^2 - (||x^_S - x_S||^2 - ||x^_S - y_S||^2)``.
    """
    premise: bool          # S non-empty and x^ = x outside S
    left: bool             # ||x^ - x|| <= ||x^ - y||
    right: bool            # ||x^_S - x_S||^2 - ||x^_S - y_S||^2 <= ||x_S' - y_S'||^2
    margin_left: float
    margin_right: float
    scale: float

    @property
    def conclusion(self) -> bool:
        """The equivalence; sides whose margins are both within rounding of 0 count as equal."""
        near_zero = max(abs(self.margin_left), abs(self.margin_right)) <= 4 * RTOL * self.scale
        return self.left == self.right or near_zero

    @property
    def holds(self) -> bool:
        return (not self.premise) or self.conclusion


def lemma3(x_hat, x, y, S) -> Lemma3Check:
    """Lemma 3, eq. (17): for ``x^_S' = x_S'`` with ``S`` non-empty,
    ``||x^ - x|| <= ||x^ - y||  <=>  ||x^_S - x_S||^2 - ||x^_S - y_S||^2 <= ||x_S' - y_S'||^2``.

    The premise is checked exactly (``x^`` and ``x`` must agree bit for bit outside ``S``).
    """
    x_hat, x, y = _vec(x_hat), _vec(x), _vec(y)
    if not (x_hat.size == x.size == y.size):
        raise SsaeError("lemma3: x_hat, x and y must have the same number of entries")
    s = _index_mask(S, x.size)
    premise = bool(s.any()) and bool(np.array_equal(x_hat[~s], x[~s]))
    d_hx = float(np.sum((x_hat - x) ** 2))
    d_hy = float(np.sum((x_hat - y) ** 2))
    d_s = float(np.sum((x_hat[s] - x[s]) ** 2)) - float(np.sum((x_hat[s] - y[s]) ** 2))
    d_sbar = float(np.sum((x[~s] - y[~s]) ** 2))
    margin_left, margin_right = d_hy - d_hx, d_sbar - d_s
    scale = d_hx + d_hy + d_sbar + 1e-300
    return Lemma3Check(premise, margin_left >= 0, margin_right >= 0, margin_left, margin_right, scale)


def project_onto_line(p, a, b) -> tuple[np.ndarray, float]:
    """Orthogonal projection of ``p`` onto the line through ``a`` and ``b`` (Proposition 1's
    ``x~_S``). Returns ``(p~, t)`` with ``p~ = a + t (b - a)``; ``t`` is NaN and ``p~ = a``
    when ``a == b`` (the line degenerates to a point)."""
    p, a, b = _vec(p), _vec(a), _vec(b)
    d = b - a
    dd = float(d @ d)
    if dd == 0.0:
        return a.copy(), float("nan")
    t = float((p - a) @ d) / dd
    return a + t * d, t


def fig6_case(t: float) -> str:
    """Which case of Figure 6 a projection parameter ``t`` (``x~_S = x_S + t (y_S - x_S)``)
    belongs to: ``"case1"`` (x~_S on the segment, 0 < t <= 1), ``"case2"`` (x_S between
    x~_S and y_S, t < 0), ``"both"`` (t = 0, footnote 4, or a degenerate line) or
    ``"none"`` (t > 1: beyond y_S, condition (6) violated)."""
    if math.isnan(t) or t == 0.0:
        return "both"
    if t < 0.0:
        return "case2"
    return "case1" if t <= 1.0 else "none"


@dataclass(frozen=True)
class Prop1Check:
    """Proposition 1 evaluated on one input ``(x, x^, y, S)``.

    ``premise``: the premise of (5), ``||x_S - y_S|| <= ||x_S' - y_S'||``;
    ``condition6``: condition (6), ``||x_S - x~_S|| <= max(||x_S - y_S||, ||y_S - x~_S||)``;
    ``conclusion``: ``||x^ - x|| <= ||x^ - y||``; ``t`` and ``case`` locate ``x~_S`` on the
    line through ``x_S`` and ``y_S`` (Figure 6).
    """
    premise: bool
    condition6: bool
    conclusion: bool
    t: float
    case: str

    @property
    def holds(self) -> bool:
        """Proposition 1 as a whole: (premise and (6)) => conclusion."""
        return not (self.premise and self.condition6) or self.conclusion


def proposition1(x, x_hat, y, S, rtol: float = RTOL) -> Prop1Check:
    """Evaluate Proposition 1 (eqs. (5) and (6)) for vectors ``x, x^, y`` and index set ``S``.

    ``x^`` must equal ``x`` outside ``S`` (else :class:`SsaeError`). Premise and condition
    (6) are evaluated exactly as written in the paper (condition (6) through the orthogonal
    projection ``x~_S`` of ``x^_S`` onto the line through ``x_S`` and ``y_S``); the
    conclusion ``||x^ - x|| <= ||x^ - y||`` gets a relative slack ``rtol`` for rounding.

    Geometrically, (6) holds iff ``t <= 1`` where ``x~_S = x_S + t (y_S - x_S)``, and the
    conclusion is equivalent (Lemma 3) to ``(2t - 1) ||x_S - y_S||^2 <= ||x_S' - y_S'||^2``.
    """
    x, x_hat, y = _vec(x), _vec(x_hat), _vec(y)
    if not (x.size == x_hat.size == y.size):
        raise SsaeError("proposition1: x, x_hat and y must have the same number of entries")
    s = _index_mask(S, x.size)
    if not np.array_equal(x_hat[~s], x[~s]):
        raise SsaeError("proposition1: x_hat differs from x outside S")
    xs, ys, hs = x[s], y[s], x_hat[s]
    premise = float(np.linalg.norm(xs - ys)) <= float(np.linalg.norm(x[~s] - y[~s]))
    x_tilde, t = project_onto_line(hs, xs, ys)
    cond6 = float(np.linalg.norm(xs - x_tilde)) <= max(float(np.linalg.norm(xs - ys)),
                                                        float(np.linalg.norm(ys - x_tilde)))
    conclusion = _leq(float(np.linalg.norm(x_hat - x)), float(np.linalg.norm(x_hat - y)), rtol)
    return Prop1Check(premise, cond6, conclusion, t, fig6_case(t))


@dataclass
class Fig6Grid:
    """Figure 6 on a 2-D grid of corrupted regions ``x^_S`` (one per grid point).

    ``x_s = (0, 0)``, ``y_s = (1, 0)``; ``sbar_dist = ||x_S' - y_S'||``. Arrays are
    ``resolution x resolution``: ``t`` (projection parameter), ``case`` (0 none, 1 case 1,
    2 case 2, 3 both), ``condition6`` and ``conclusion`` (``||x^ - x|| <= ||x^ - y||`` for
    the full vectors, with the premise of (5) true iff ``sbar_dist >= 1``).
    """
    xx: np.ndarray
    yy: np.ndarray
    t: np.ndarray
    case: np.ndarray
    condition6: np.ndarray
    conclusion: np.ndarray
    sbar_dist: float


def fig6_grid(extent: float = 2.5, resolution: int = 201, sbar_dist: float = 1.0) -> Fig6Grid:
    """Evaluate :func:`proposition1` on a grid of 2-D corrupted regions (Figure 6).

    The vectors have ``N = 3`` entries: ``S = {0, 1}`` (the plane of the figure) and
    ``S' = {2}`` with ``x_S' - y_S' = sbar_dist``. With ``sbar_dist = 1`` the premise of (5)
    holds with equality, and the region where the conclusion holds coincides with the
    feasible region of condition (6) (the half-plane ``t <= 1``): the condition is tight.
    """
    xs = np.array([0.0, 0.0])
    ys = np.array([1.0, 0.0])
    grid = np.linspace(-extent + 0.5, extent + 0.5, resolution)
    xx, yy = np.meshgrid(grid, grid - 0.5)
    codes = {"none": 0, "case1": 1, "case2": 2, "both": 3}
    t = np.empty_like(xx)
    case = np.empty(xx.shape, dtype=np.int64)
    cond = np.empty(xx.shape, dtype=bool)
    concl = np.empty(xx.shape, dtype=bool)
    x = np.array([xs[0], xs[1], 0.0])
    y = np.array([ys[0], ys[1], sbar_dist])
    for idx in np.ndindex(xx.shape):
        x_hat = np.array([xx[idx], yy[idx], 0.0])
        r = proposition1(x, x_hat, y, [0, 1])
        t[idx], case[idx], cond[idx], concl[idx] = r.t, codes[r.case], r.condition6, r.conclusion
    return Fig6Grid(xx, yy, t, case, cond, concl, float(sbar_dist))


def fig6_conclusion_limit(sbar_dist: float) -> float:
    """Largest projection parameter ``t`` at which the conclusion of (5) still holds in the
    plane of Figure 6 (``x_S = (0, 0)``, ``y_S = (1, 0)``): by Lemma 3 the conclusion is
    ``(2t - 1) ||x_S - y_S||^2 <= ||x_S' - y_S'||^2``, i.e. ``t <= (1 + sbar_dist^2) / 2``.
    With the premise of (5) an equality (``sbar_dist = 1``) this is ``t <= 1``, condition (6)."""
    return (1.0 + float(sbar_dist) ** 2) / 2.0


@dataclass(frozen=True)
class Fig6Frame:
    """Proposition 1 for one corrupted region ``x^_S`` in the plane of Figure 6.

    ``x_hat`` and its projection ``x_tilde`` are 2-D points (``x_S = (0, 0)``,
    ``y_S = (1, 0)``); ``t``, ``case`` and ``condition6`` as in :class:`Prop1Check`. Per
    entry of ``sbar_dists`` (``||x_S' - y_S'||``): the premise of (5), its conclusion, and
    the two distances ``||x^ - x||`` (``dist_x``, the same for all) and ``||x^ - y||``.
    """
    x_hat: np.ndarray
    x_tilde: np.ndarray
    t: float
    case: str
    condition6: bool
    sbar_dists: tuple[float, ...]
    premises: tuple[bool, ...]
    conclusions: tuple[bool, ...]
    dist_x: float
    dist_y: tuple[float, ...]


def fig6_path(points, sbar_dists: Sequence[float] = (1.0, 1.3)) -> list[Fig6Frame]:
    """Evaluate :func:`proposition1` along a path of corrupted regions ``x^_S`` (an iterable
    of 2-D points) in the plane of Figure 6, once per distance ``||x_S' - y_S'||`` in
    ``sbar_dists`` (``N = 3``: ``S = {0, 1}``, ``S' = {2}``, as in :func:`fig6_grid`)."""
    frames = []
    for p in points:
        p = _vec(p)
        x_hat = np.array([p[0], p[1], 0.0])
        checks = [proposition1(np.zeros(3), x_hat, np.array([1.0, 0.0, d]), [0, 1]) for d in sbar_dists]
        x_tilde, t = project_onto_line(p, [0.0, 0.0], [1.0, 0.0])
        frames.append(Fig6Frame(
            x_hat=p.copy(), x_tilde=x_tilde, t=t, case=checks[0].case, condition6=checks[0].condition6,
            sbar_dists=tuple(float(d) for d in sbar_dists), premises=tuple(c.premise for c in checks),
            conclusions=tuple(c.conclusion for c in checks), dist_x=float(np.linalg.norm(p)),
            dist_y=tuple(float(np.sqrt(np.sum((p - [1.0, 0.0]) ** 2) + d * d)) for d in sbar_dists)))
    return frames


# ---------------------------------------------------------------------------------------
# Figure 8 (pixel statistics) and Proposition 2 (eq. (9))
# ---------------------------------------------------------------------------------------

def to_grey(image) -> np.ndarray:
    """``H x W`` float64 from an ``H x W`` or ``H x W x C`` array (mean over channels;
    Section 3.4 treats grey images without loss of generality)."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 3:
        a = a.mean(axis=2)
    if a.ndim != 2:
        raise SsaeError(f"expected an H x W or H x W x C image, got shape {a.shape}")
    return a


def resize_grey(image, size: int) -> np.ndarray:
    """Bilinear resize of a grey image to ``size x size`` (float64)."""
    from PIL import Image

    a = to_grey(image).astype(np.float32)
    if a.shape == (size, size):
        return a.astype(np.float64)
    img = Image.fromarray(a, mode="F").resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.float64)


def read_grey(paths: Iterable, size: int) -> np.ndarray:
    """Read image files as grey ``n x size x size`` float64 in ``[0, 1]`` (bilinear resize)."""
    from PIL import Image

    out = []
    for p in paths:
        p = Path(p)
        try:
            with Image.open(p) as im:
                a = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
        except (OSError, ValueError) as err:
            raise SsaeError(f"cannot read image {p}: {err}") from None
        out.append(resize_grey(a, size))
    if not out:
        raise SsaeError("read_grey: no image paths given")
    return np.stack(out)


def stack_grey(images, size: int | None = None) -> np.ndarray:
    """``n x H x W`` float64 from a list/array of grey or colour images, optionally resized."""
    if isinstance(images, np.ndarray) and images.ndim == 3 and size is None:
        return images.astype(np.float64)
    out = [resize_grey(im, size) if size is not None else to_grey(im) for im in images]
    shapes = {a.shape for a in out}
    if len(shapes) != 1:
        raise SsaeError(f"images have different shapes {sorted(shapes)}; pass size= to resize")
    return np.stack(out)


@dataclass
class PixelStats:
    """Per-pixel mean and standard deviation over all sliding windows (Figure 8)."""
    mean: np.ndarray      # window x window
    std: np.ndarray       # window x window
    n_images: int
    image_size: int
    window: int


def _box_sums(a: np.ndarray, box: int) -> np.ndarray:
    """Sums of ``a`` over all ``box x box`` boxes, indexed by their top-left corner."""
    c = np.zeros((a.shape[0] + 1, a.shape[1] + 1))
    c[1:, 1:] = a.cumsum(0).cumsum(1)
    return c[box:, box:] - c[:-box, box:] - c[box:, :-box] + c[:-box, :-box]


def sliding_window_pixel_stats(images, size: int = 512, window: int = 256) -> PixelStats:
    """Figure 8's procedure: resize each image to ``size x size`` and compute, for every
    pixel position ``(u, v)`` of a ``window x window`` crop, the mean and standard deviation
    of its value over all sliding windows (all ``(size - window + 1)^2`` offsets) of all
    images. Pixel ``(u, v)`` of the window at offset ``(a, b)`` is image pixel
    ``(a + u, b + v)``, so the sums are box sums of width ``size - window + 1`` (computed
    with integral images). Colour images are averaged over channels first.
    """
    if not 0 < window <= size:
        raise SsaeError(f"window {window} must be in 1..size ({size})")
    box = size - window + 1
    s1 = np.zeros((window, window))
    s2 = np.zeros((window, window))
    n = 0
    for im in images:
        a = resize_grey(im, size)
        s1 += _box_sums(a, box)
        s2 += _box_sums(a * a, box)
        n += 1
    if n == 0:
        raise SsaeError("sliding_window_pixel_stats: no images")
    count = n * box * box
    mean = s1 / count
    var = np.maximum(s2 / count - mean ** 2, 0.0)
    return PixelStats(mean, np.sqrt(var), n, size, window)


def pixel_stats_spread(stats: PixelStats, kind: str = "texture") -> dict:
    """Spread of Figure 8's per-pixel statistics: over all pixels for ``kind="texture"``,
    over the middle row for ``kind="object"``. If all pixels are identically distributed
    (the assumption of Proposition 2) both spreads are close to 0.

    Returns ``mean_min/max/spread`` (spread = max - min of the per-pixel means),
    ``mean_rel_spread`` (spread / average mean) and the same for ``std``.
    """
    if kind == "texture":
        m, s = stats.mean.ravel(), stats.std.ravel()
    elif kind == "object":
        r = stats.mean.shape[0] // 2
        m, s = stats.mean[r], stats.std[r]
    else:
        raise SsaeError(f"kind must be 'texture' or 'object', got {kind!r}")
    out = {}
    for name, v in (("mean", m), ("std", s)):
        out[f"{name}_min"] = float(v.min())
        out[f"{name}_max"] = float(v.max())
        out[f"{name}_spread"] = float(v.max() - v.min())
        out[f"{name}_rel_spread"] = float((v.max() - v.min()) / max(abs(v.mean()), 1e-12))
    return out


def pooled_variance(images) -> float:
    """``sigma^2`` of Proposition 2 estimated from all pixels of all images (the estimator
    that is consistent when all pixels are identically distributed)."""
    a = np.asarray(images, dtype=np.float64)
    return float(a.var())


def square_mask(shape: tuple[int, int], side: int, top: int, left: int) -> np.ndarray:
    """Boolean ``H x W`` mask of a ``side x side`` square at ``(top, left)``."""
    h, w = shape
    if not (1 <= side <= min(h, w)) or not (0 <= top <= h - side) or not (0 <= left <= w - side):
        raise SsaeError(f"square of side {side} at ({top}, {left}) does not fit in {shape}")
    m = np.zeros(shape, dtype=bool)
    m[top:top + side, left:left + side] = True
    return m


def side_for_fraction(shape: tuple[int, int], fraction: float) -> int:
    """Side of the square patch with ``|S|/N`` closest to ``fraction`` (at least 1 pixel)."""
    h, w = shape
    return int(min(max(round(math.sqrt(fraction * h * w)), 1), min(h, w)))


def centred_square(shape: tuple[int, int], fraction: float) -> np.ndarray:
    """The centred square patch with ``|S|/N`` as close to ``fraction`` as pixels allow."""
    side = side_for_fraction(shape, fraction)
    return square_mask(shape, side, (shape[0] - side) // 2, (shape[1] - side) // 2)


@dataclass
class Prop2Result:
    """Eq. (9) measured on pairs: ``D = ||x_S - y_S||^2 - ||x_S' - y_S'||^2``.

    ``rel_dev = (observed - predicted) / |predicted|``; ``z = (observed - predicted) /
    stderr`` (the standard error treats pairs as independent). ``term_s`` / ``term_sbar``
    are the observed means of the two squared norms with predictions ``2 sigma^2 |S|`` and
    ``2 sigma^2 |S'|``.
    """
    observed: float
    stderr: float
    predicted: float
    sigma2: float
    s_size: int
    n: int
    n_pairs: int
    term_s: float
    term_sbar: float

    @property
    def z(self) -> float:
        return (self.observed - self.predicted) / max(self.stderr, 1e-300)

    @property
    def rel_dev(self) -> float:
        return (self.observed - self.predicted) / max(abs(self.predicted), 1e-300)

    @property
    def fraction(self) -> float:
        return self.s_size / self.n


def proposition2_expected(s_size: int, n: int, sigma2: float) -> float:
    """Right-hand side of eq. (9): ``(|S| - |S'|) * 2 sigma^2``."""
    return (s_size - (n - s_size)) * 2.0 * sigma2


def proposition2_check(x_images, y_images, S, sigma2: float) -> Prop2Result:
    """Compare the sample mean of ``||x_S - y_S||^2 - ||x_S' - y_S'||^2`` over the pairs
    ``(x_images[k], y_images[k])`` with eq. (9). ``S`` is a boolean mask of the image shape
    (or flat indices); ``sigma2`` is the pixel variance (known for synthetic data,
    :func:`pooled_variance` for real data)."""
    x = np.asarray(x_images, dtype=np.float64)
    y = np.asarray(y_images, dtype=np.float64)
    if x.shape != y.shape or x.ndim < 2:
        raise SsaeError(f"x_images {x.shape} and y_images {y.shape} must be equal stacks of images")
    p = x.shape[0]
    if p < 2:
        raise SsaeError("proposition2_check needs at least 2 pairs")
    x = x.reshape(p, -1)
    y = y.reshape(p, -1)
    s = _index_mask(S, x.shape[1])
    sq = (x - y) ** 2
    a = sq[:, s].sum(1)
    b = sq[:, ~s].sum(1)
    d = a - b
    return Prop2Result(
        observed=float(d.mean()), stderr=float(d.std(ddof=1) / math.sqrt(p)),
        predicted=proposition2_expected(int(s.sum()), x.shape[1], sigma2), sigma2=float(sigma2),
        s_size=int(s.sum()), n=int(x.shape[1]), n_pairs=p,
        term_s=float(a.mean()), term_sbar=float(b.mean()))


def distinct_pairs(n_images: int, n_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """``n_pairs x 2`` random index pairs ``(i, j)`` with ``i != j`` (independent images)."""
    if n_images < 2:
        raise SsaeError("need at least 2 images to form pairs")
    i = rng.integers(0, n_images, n_pairs)
    j = (i + rng.integers(1, n_images, n_pairs)) % n_images
    return np.stack([i, j], axis=1)


# ---------------------------------------------------------------------------------------
# Theorem 2 (eqs. (11), (12)): pairs violating the premise of (7)
# ---------------------------------------------------------------------------------------

def theorem2_bound_fraction(sigma2: float) -> float:
    """``|S|/N`` at the bound (11) ``|S| = 2 sigma^2 |S'|``, i.e. ``2 sigma^2 / (1 + 2 sigma^2)``.

    For pixel values in ``[0, 1]``, ``sigma^2 <= 1/4`` so the bound never exceeds 1/3; for
    typical images (``sigma^2 ~ 0.01``) it allows only ``|S|/N ~ 0.02``.
    """
    return 2.0 * sigma2 / (1.0 + 2.0 * sigma2)


@dataclass
class ViolationCounts:
    """Counts of pairs with ``||x_S - y_S|| > ||x_S' - y_S'||`` per patch fraction.

    ``superset`` counts the larger event ``||x_S' - y_S'||^2 < |S|`` of the proof's eq. (25)
    (for values in [0, 1] it contains every violating pair).
    """
    fractions: np.ndarray          # actual |S|/N of each grid point
    violations: np.ndarray         # int, per fraction
    superset: np.ndarray           # int, per fraction
    n_pairs: int
    sigma2: float
    image_shape: tuple[int, int]

    @property
    def bound_fraction(self) -> float:
        return theorem2_bound_fraction(self.sigma2)

    @property
    def rates(self) -> np.ndarray:
        return self.violations / self.n_pairs

    def sides(self) -> dict:
        """Violations and pairs summed over the grid points on each side of the bound (11):
        ``inside`` (``|S| <= 2 sigma^2 |S'|``) and ``outside``."""
        inside = self.fractions <= self.bound_fraction
        return {
            "inside_points": int(inside.sum()),
            "inside_violations": int(self.violations[inside].sum()),
            "inside_pairs": int(inside.sum() * self.n_pairs),
            "outside_points": int((~inside).sum()),
            "outside_violations": int(self.violations[~inside].sum()),
            "outside_pairs": int((~inside).sum() * self.n_pairs),
        }


@dataclass
class PairDistances:
    """Both sides of the premise of (7), pair by pair, per patch fraction (Theorem 2).

    ``inside[k, p] = ||x_S - y_S||^2`` and ``outside[k, p] = ||x_S' - y_S'||^2`` for pair
    ``p`` with the square ``S`` of side ``sides[k]`` at ``(tops[k, p], lefts[k, p])``.
    ``example`` is the first image ``x`` of pair 0 (for drawing its ``S``).
    """
    fractions: np.ndarray          # actual |S|/N of each grid point
    sides: np.ndarray              # int, per fraction
    inside: np.ndarray             # fractions x pairs
    outside: np.ndarray            # fractions x pairs
    tops: np.ndarray               # int, fractions x pairs
    lefts: np.ndarray              # int, fractions x pairs
    pairs: np.ndarray              # pairs x 2 image indices
    sigma2: float
    image_shape: tuple[int, int]
    example: np.ndarray            # H x W

    @property
    def bound_fraction(self) -> float:
        return theorem2_bound_fraction(self.sigma2)

    def counts(self) -> ViolationCounts:
        """The pairs violating the premise (``inside > outside``) and those in the proof's
        event (25) (``outside < |S|``), counted per fraction."""
        violations = (self.inside > self.outside).sum(1)
        superset = (self.outside < (self.sides ** 2)[:, None]).sum(1)
        return ViolationCounts(self.fractions.copy(), violations, superset, len(self.pairs), self.sigma2,
                               self.image_shape)


def pair_distances(images, fractions: Sequence[float], n_pairs: int, rng: np.random.Generator,
                   sigma2: float | None = None, pairs: np.ndarray | None = None) -> PairDistances:
    """Theorem 2 on data: for random pairs of distinct images ``(x, y)`` and square patches
    ``S`` at random positions with ``|S|/N`` on the grid ``fractions``, the two sides
    ``||x_S - y_S||^2`` and ``||x_S' - y_S'||^2`` of the premise of (7) (squared, footnote 6).

    ``images``: ``n x H x W`` grey stack. ``sigma2`` defaults to :func:`pooled_variance`.
    The same pairs are used at every grid point (new patch positions at each). Box sums
    over the squared difference images (integral images) keep this cheap.
    """
    imgs = np.asarray(images, dtype=np.float64)
    if imgs.ndim != 3:
        raise SsaeError(f"pair_distances expects an n x H x W stack, got shape {imgs.shape}")
    _, h, w = imgs.shape
    if pairs is None:
        pairs = distinct_pairs(imgs.shape[0], n_pairs, rng)
    n_pairs = len(pairs)
    sigma2 = pooled_variance(imgs) if sigma2 is None else float(sigma2)
    sq = (imgs[pairs[:, 0]] - imgs[pairs[:, 1]]) ** 2               # P x H x W
    total = sq.reshape(n_pairs, -1).sum(1)
    integral = np.zeros((n_pairs, h + 1, w + 1))
    integral[:, 1:, 1:] = sq.cumsum(1).cumsum(2)
    sides, inside, tops, lefts = [], [], [], []
    rows = np.arange(n_pairs)
    for f in fractions:
        side = side_for_fraction((h, w), f)
        top = rng.integers(0, h - side + 1, n_pairs)
        left = rng.integers(0, w - side + 1, n_pairs)
        inside.append(integral[rows, top + side, left + side] - integral[rows, top, left + side]
                      - integral[rows, top + side, left] + integral[rows, top, left])
        sides.append(side)
        tops.append(top)
        lefts.append(left)
    sides_arr, inside_arr = np.array(sides), np.array(inside).reshape(len(sides), n_pairs)
    return PairDistances(
        fractions=sides_arr ** 2 / (h * w), sides=sides_arr, inside=inside_arr, outside=total[None, :] - inside_arr,
        tops=np.array(tops).reshape(len(sides), n_pairs), lefts=np.array(lefts).reshape(len(sides), n_pairs),
        pairs=np.asarray(pairs), sigma2=sigma2, image_shape=(h, w), example=imgs[pairs[0, 0]].copy())


def violating_pairs(images, fractions: Sequence[float], n_pairs: int, rng: np.random.Generator,
                    sigma2: float | None = None, pairs: np.ndarray | None = None) -> ViolationCounts:
    """Theorem 2 on data: count the pairs with ``||x_S - y_S|| > ||x_S' - y_S'||`` (the
    premise of (7) violated) per patch fraction; :func:`pair_distances` gives the pairs,
    patches and arguments."""
    return pair_distances(images, fractions, n_pairs, rng, sigma2, pairs).counts()


# ---------------------------------------------------------------------------------------
# Theorem 3 / Corollary 1 (eqs. (18)-(23)): law of large numbers for random fields
# ---------------------------------------------------------------------------------------

def _spectral_filter(size: int, corr_length: float) -> np.ndarray:
    """Transfer function of a periodic Gaussian blur with standard deviation ``corr_length``
    pixels (``corr_length = 0``: white noise)."""
    k = np.fft.fftfreq(size)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    return np.exp(-2.0 * (math.pi * corr_length) ** 2 * k2)


def field_correlation(size: int, corr_length: float) -> np.ndarray:
    """Correlation ``Corr[x_i, x_j]`` of :func:`gaussian_field` as a function of the periodic
    displacement ``j - i`` (``size x size``, entry ``[0, 0] = 1``). For ``corr_length > 0``
    it is close to ``exp(-|d|^2 / (4 corr_length^2))``: finite correlation length, so the
    covariance vanishes with distance as required by (10)/(18)."""
    h2 = _spectral_filter(size, corr_length) ** 2
    c = np.fft.ifft2(h2).real
    return c / c[0, 0]


def gaussian_field(rng: np.random.Generator, n: int, size: int, corr_length: float,
                   offset_std: float = 0.0) -> np.ndarray:
    """``n`` stationary Gaussian random fields of ``size x size`` pixels: white noise smoothed
    by a periodic Gaussian of width ``corr_length``, scaled to unit variance.

    They stand in for the MRFs of Theorems 2 and 3 (identically distributed pixels, vanishing
    covariance (10)). ``offset_std > 0`` adds one random constant per field, which makes the
    covariance *not* vanish (``Cov[x_i, x_j] >= offset_std^2`` at any distance): the
    counterexample for Theorem 3. The pixel variance is then ``1 + offset_std^2``.
    """
    hf = _spectral_filter(size, corr_length)
    noise = rng.standard_normal((n, size, size))
    f = np.fft.ifft2(np.fft.fft2(noise) * hf).real
    f /= math.sqrt(float(np.mean(hf ** 2)))
    if offset_std > 0:
        f += offset_std * rng.standard_normal((n, 1, 1))
    return f


def uniform_field(rng: np.random.Generator, n: int, size: int, corr_length: float) -> np.ndarray:
    """:func:`gaussian_field` pushed through the normal CDF: values in ``[0, 1]`` with uniform
    marginals (``sigma^2 = 1/12`` exactly), the same finite correlation length. Used for
    Theorem 2, whose proof needs values in ``[0, 1]``."""
    from scipy.special import ndtr

    return ndtr(gaussian_field(rng, n, size, corr_length))


@dataclass
class ConvergenceResult:
    """Corollary 1 (eq. (23)) observed on simulated fields, per patch size ``|S|``.

    For each ``|S|``: ``m = (1/|S|) ||x_S - y_S||^2`` over ``n_trials`` independent pairs.
    ``exceed`` is the observed ``P(|m - 2 sigma^2| > eps)``; ``chebyshev`` the bound
    ``Var[m] / eps^2`` of the proof of Theorem 3 (step (*)) with the exact ``Var[m]``;
    ``proof_bound`` the same with the proof's variance estimate
    ``Var[w]/n + 2 L(L+1) Var[w]/n + 2 eps_L`` minimised over ``L``.
    """
    s_sizes: np.ndarray
    mean_abs_dev: np.ndarray
    var_observed: np.ndarray
    var_predicted: np.ndarray
    exceed: np.ndarray
    chebyshev: np.ndarray
    proof_bound: np.ndarray
    eps: float
    sigma2: float
    n_trials: int
    corr_length: float
    field_size: int


def _patch_sum_c2(c2: np.ndarray, side: int) -> float:
    """``sum_{i, j in S} c2[j - i]`` for a ``side x side`` square ``S`` in a periodic field."""
    size = c2.shape[0]
    d = np.arange(-(side - 1), side)
    weight = side - np.abs(d)
    sub = c2[np.ix_(d % size, d % size)]
    return float(weight @ sub @ weight)


def _proof_eps(c2: np.ndarray, var_w: float) -> np.ndarray:
    """``eps_L`` of the proof of Theorem 3 for ``L = 0, 1, ...``: the largest covariance
    ``var_w * c2`` between nodes more than ``L`` edges apart on the (periodic) 2-D grid."""
    size = c2.shape[0]
    d = np.minimum(np.arange(size), size - np.arange(size))
    manhattan = d[:, None] + d[None, :]
    cov = var_w * c2
    top = int(manhattan.max())
    at = np.full(top + 2, 0.0)                           # largest covariance at each distance
    np.maximum.at(at, manhattan.ravel(), cov.ravel())
    beyond = np.maximum.accumulate(at[::-1])[::-1]       # largest at distance >= index
    return beyond[1:]                                    # eps_L: distance > L, L = 0..top


def _proof_variance_bound(c2: np.ndarray, var_w: float, n: int) -> float:
    """The proof of Theorem 3: ``Var[sum w]/n^2 < Var[w]/n + 2 L(L+1) Var[w]/n + 2 eps_L``
    where ``L(L+1)`` bounds the number of later nodes within graph distance ``L`` on a 2-D
    grid and ``eps_L`` is the largest covariance beyond it; minimised over ``L``."""
    eps_l = _proof_eps(c2, var_w)
    L = np.arange(eps_l.size)
    return float(np.min(var_w / n + 2 * L * (L + 1) * var_w / n + 2 * eps_l))


def proof_bound_crossing(corr_length: float, eps: float = 0.5, sigma2: float = 1.0,
                         field_size: int = 256) -> int:
    """Smallest ``|S|`` at which the Chebyshev bound with the proof's variance estimate
    (:func:`_proof_variance_bound`, Theorem 3's proof) falls below 1, for the Gaussian fields
    of :func:`corollary1_convergence` (``Var[w] = 8 sigma^4``). Below this size that bound
    says only ``P <= 1``. ``field_size`` only has to exceed the correlation length by far.

    For each ``L`` with ``2 eps_L < eps^2`` the bound is below 1 once
    ``|S| > (1 + 2 L (L+1)) Var[w] / (eps^2 - 2 eps_L)``; the answer is the least such size.
    """
    var_w = 8.0 * sigma2 ** 2
    eps_l = _proof_eps(field_correlation(field_size, corr_length) ** 2, var_w)
    L = np.arange(eps_l.size)
    room = eps ** 2 - 2 * eps_l
    ok = room > 0
    if not ok.any():
        raise SsaeError("the proof's bound never falls below 1 on this field: enlarge field_size")
    need = (1 + 2 * L[ok] * (L[ok] + 1)) * var_w / room[ok]
    return int(np.min(np.floor(need))) + 1


def corollary1_convergence(rng: np.random.Generator, sides: Sequence[int], n_trials: int,
                           field_size: int, corr_length: float, eps: float = 0.5,
                           offset_std: float = 0.0) -> ConvergenceResult:
    """Simulate Corollary 1: ``(1/|S|) ||x_S - y_S||^2 -> 2 sigma^2`` as ``|S| -> inf``.

    ``x, y`` are independent :func:`gaussian_field` samples; ``S`` is the ``side x side``
    square in the top-left corner (the fields are stationary, so the position does not
    matter). For Gaussian fields ``w_i = (x_i - y_i)^2`` has ``Var[w_i] = 8 sigma^4`` and
    ``Cov[w_i, w_j] = 8 sigma^4 Corr[x_i, x_j]^2``, which gives ``Var[m]`` exactly and
    hence the Chebyshev bound of the proof of Theorem 3. With ``offset_std > 0`` the fields
    violate (18) and the predictions (which assume vanishing covariance) do not apply.
    """
    sides = [int(s) for s in sides]
    if not sides or min(sides) < 1 or max(sides) > field_size:
        raise SsaeError(f"patch sides must be in 1..{field_size}")
    sigma2 = 1.0 + offset_std ** 2
    x = gaussian_field(rng, n_trials, field_size, corr_length, offset_std)
    y = gaussian_field(rng, n_trials, field_size, corr_length, offset_std)
    w = (x - y) ** 2
    c2 = field_correlation(field_size, corr_length) ** 2
    var_w = 8.0 * sigma2 ** 2
    out = {k: [] for k in ("mad", "vo", "vp", "ex", "ch", "pb")}
    for s in sides:
        n = s * s
        m = w[:, :s, :s].reshape(n_trials, -1).mean(1)
        dev = m - 2.0 * sigma2
        vp = var_w * _patch_sum_c2(c2, s) / n ** 2
        out["mad"].append(float(np.abs(dev).mean()))
        out["vo"].append(float(m.var(ddof=1)))
        out["vp"].append(vp)
        out["ex"].append(float(np.mean(np.abs(dev) > eps)))
        out["ch"].append(min(1.0, vp / eps ** 2))
        out["pb"].append(min(1.0, _proof_variance_bound(c2, var_w, n) / eps ** 2))
    return ConvergenceResult(
        s_sizes=np.array([s * s for s in sides]), mean_abs_dev=np.array(out["mad"]),
        var_observed=np.array(out["vo"]), var_predicted=np.array(out["vp"]),
        exceed=np.array(out["ex"]), chebyshev=np.array(out["ch"]), proof_bound=np.array(out["pb"]),
        eps=float(eps), sigma2=sigma2, n_trials=int(n_trials), corr_length=float(corr_length),
        field_size=int(field_size))


# ---------------------------------------------------------------------------------------
# Figure 9: how orthogonal is a mapping F on patch-swapped images
# ---------------------------------------------------------------------------------------

def as_batch(images):
    """``B x C x H x W`` float32 torch tensor from a tensor of that layout, an ``n x H x W``
    grey stack or an ``n x H x W x C`` numpy array."""
    import torch

    if isinstance(images, torch.Tensor):
        t = images
    else:
        a = np.asarray(images, dtype=np.float32)
        if a.ndim == 3:
            a = a[:, None]
        elif a.ndim == 4:
            a = a.transpose(0, 3, 1, 2)
        else:
            raise SsaeError(f"expected n x H x W or n x H x W x C images, got shape {a.shape}")
        t = torch.from_numpy(np.ascontiguousarray(a))
    if t.ndim != 4:
        raise SsaeError(f"expected a B x C x H x W tensor, got shape {tuple(t.shape)}")
    return t.float()


def nearest_index(queries, train, chunk: int = 64):
    """``argmin_Y ||q - Y||`` over the rows of ``train`` for every query (a LongTensor).

    Distances are computed in float64 as ``||q||^2 - 2 q.Y + ||Y||^2``."""
    import torch

    q = queries.reshape(queries.shape[0], -1).double()
    t = train.reshape(train.shape[0], -1).double()
    tn = (t * t).sum(1)
    out = []
    for start in range(0, q.shape[0], chunk):
        qc = q[start:start + chunk]
        d = (qc * qc).sum(1, keepdim=True) - 2.0 * qc @ t.T + tn[None, :]
        out.append(torch.argmin(d, dim=1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


class NearestNeighbourProjection:
    """The exact orthogonal projection onto a finite training set (footnote 3 of the paper):
    ``F(x^) = argmin_{Y in D} ||x^ - Y||``. A reference F whose Figure 9 curves are known."""

    def __init__(self, train):
        self.train = as_batch(train)

    def __call__(self, x):
        return self.train[nearest_index(x, self.train)]


def identity_map(x):
    """The identity as a reference F: ``F(x^) = x^``."""
    return x


def patch_swap(x, donor, side: int, top: int, left: int,
               donor_top: int | None = None, donor_left: int | None = None):
    """Figure 9's corruption: copy of ``x`` (``C x H x W``) whose ``side x side`` square at
    ``(top, left)`` is replaced by the square of ``donor`` at ``(donor_top, donor_left)``
    (default: the same position, i.e. ``x^_S = y_S``, the boundary case of Proposition 1)."""
    donor_top = top if donor_top is None else donor_top
    donor_left = left if donor_left is None else donor_left
    out = x.clone()
    out[:, top:top + side, left:left + side] = donor[:, donor_top:donor_top + side,
                                                     donor_left:donor_left + side]
    return out


@dataclass
class OrthogonalityCurve:
    """Figure 9 for one mapping F: per normalised width ``sqrt(|S|/N)``, the frequency with
    which ``X`` is ``argmin_Y ||X^ - Y||`` (``acc_input``) and ``argmin_Y ||F(X^) - Y||``
    (``acc_output``) over the training set, and mean / std of ``||F(X^) - X||``."""
    widths: np.ndarray        # actual sqrt(|S|/N)
    acc_input: np.ndarray
    acc_output: np.ndarray
    dist_mean: np.ndarray
    dist_std: np.ndarray
    n_trials: int             # corrupted images per width
    n_pixels: int             # N = H * W (per channel)
    label: str = ""

    @property
    def fractions(self) -> np.ndarray:
        return self.widths ** 2

    def at_fraction(self, fraction: float) -> dict:
        """The grid point whose ``|S|/N`` is closest to ``fraction``."""
        k = int(np.argmin(np.abs(self.fractions - fraction)))
        return {"fraction": float(self.fractions[k]), "acc_input": float(self.acc_input[k]),
                "acc_output": float(self.acc_output[k]), "dist_mean": float(self.dist_mean[k]),
                "dist_std": float(self.dist_std[k])}


def orthogonality_curve(F: Callable, train, widths: Sequence[float], rng: np.random.Generator,
                        n_repeats: int = 1, batch_size: int = 16, donor_position: str = "same",
                        label: str = "") -> OrthogonalityCurve:
    """Figure 9: for every training image ``X`` (``n_repeats`` times per width) build ``X^``
    by swapping a random square patch of normalised width ``sqrt(|S|/N)`` with the patch of
    another random training image, then evaluate ``F`` on the batch of ``X^``.

    ``F`` maps a ``B x C x H x W`` float tensor to the same shape (e.g.
    ``lambda x: ssae.scoring.reconstruct(model, x)``). ``train``: anything :func:`as_batch`
    accepts. ``donor_position``: ``"same"`` (donor patch from the same place) or
    ``"random"``. Widths are rounded to whole pixels; the actual widths are returned.
    """
    import torch

    if donor_position not in ("same", "random"):
        raise SsaeError(f"donor_position must be 'same' or 'random', got {donor_position!r}")
    data = as_batch(train)
    m, _, h, w = data.shape
    if m < 2:
        raise SsaeError("orthogonality_curve needs at least 2 training images")
    act, acc_in, acc_out, d_mean, d_std = [], [], [], [], []
    with torch.no_grad():
        for width in widths:
            side = side_for_fraction((h, w), float(width) ** 2)
            targets = np.repeat(np.arange(m), n_repeats)
            donors = (targets + rng.integers(1, m, targets.size)) % m
            hits_in = hits_out = 0
            dists = []
            for start in range(0, targets.size, batch_size):
                idx = targets[start:start + batch_size]
                corrupted = []
                for i, j in zip(idx, donors[start:start + batch_size]):
                    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
                    if donor_position == "random":
                        dt, dl = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
                    else:
                        dt, dl = top, left
                    corrupted.append(patch_swap(data[i], data[j], side, top, left, dt, dl))
                x_hat = torch.stack(corrupted)
                out = F(x_hat)
                if tuple(out.shape) != tuple(x_hat.shape):
                    raise SsaeError(f"F returned shape {tuple(out.shape)} for input {tuple(x_hat.shape)}")
                out = out.detach().float().cpu()
                tgt = torch.from_numpy(idx)
                hits_in += int((nearest_index(x_hat, data) == tgt).sum())
                hits_out += int((nearest_index(out, data) == tgt).sum())
                dists.append((out - data[tgt]).reshape(len(idx), -1).double().norm(dim=1).numpy())
            dist = np.concatenate(dists)
            act.append(side / math.sqrt(h * w))
            acc_in.append(hits_in / targets.size)
            acc_out.append(hits_out / targets.size)
            d_mean.append(float(dist.mean()))
            d_std.append(float(dist.std()))
    return OrthogonalityCurve(np.array(act), np.array(acc_in), np.array(acc_out),
                              np.array(d_mean), np.array(d_std), int(m * n_repeats), h * w, label)
