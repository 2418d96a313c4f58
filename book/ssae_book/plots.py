"""Figures of the paper, as functions that return a :class:`matplotlib.figure.Figure`.

The figures are built on a bare ``Figure`` made by :func:`figure` (no pyplot): at most
:data:`BOOK_WIDTH` inches wide, with the book's defaults :data:`RC` and no text under
:data:`MIN_PT` points (:func:`legible`), so they read at the column width; a notebook shows
the returned object, a script calls :func:`save_figure`. Every function takes a ``label``
naming the data (data set, resolution) that goes into the title. The computations live in
:mod:`ssae.theory` (and the other modules); these functions only draw their results.
matplotlib is imported inside the functions so that importing this module stays cheap.
"""
from __future__ import annotations

import dataclasses
import functools
import math


#: the width of the book's text column in inches: every figure is drawn at most this wide
BOOK_WIDTH = 7.3
#: the smallest font size in points of any text of a figure (shown at its width, <= BOOK_WIDTH)
MIN_PT = 9.0
#: the book's matplotlib defaults (:func:`style`)
RC = {"font.size": 10.0, "axes.titlesize": 10.0, "axes.labelsize": 10.0, "xtick.labelsize": MIN_PT,
      "ytick.labelsize": MIN_PT, "legend.fontsize": MIN_PT, "legend.title_fontsize": MIN_PT,
      "figure.titlesize": 11.0, "figure.figsize": (BOOK_WIDTH, 4.0), "figure.dpi": 100.0,
      "savefig.dpi": 110.0}


def style() -> None:
    """Set the book's matplotlib defaults (:data:`RC`); :func:`figure` calls it."""
    import matplotlib

    matplotlib.rcParams.update(RC)


def _wrap(t, width_in: float) -> None:
    """Break the lines of text ``t`` wider than ``width_in`` inches at spaces (none with mathtext)."""
    import textwrap

    text = t.get_text()
    if "$" in text:
        return
    chars = max(8, int(width_in * 72 / (0.56 * t.get_fontsize())))
    wrapped = "\n".join(textwrap.fill(line, chars, break_long_words=False, break_on_hyphens=False) if len(line) > chars else line for line in text.split("\n"))
    if wrapped != text:
        t.set_text(wrapped)


def legible(fig, min_pt: float = MIN_PT) -> None:
    """Raise every text of ``fig`` (titles, labels, tick labels, legends, annotations) smaller
    than ``min_pt`` points to ``min_pt``, and break the figure's title and the axes' titles
    into lines that fit the figure's and the axes' widths."""
    from matplotlib.text import Text

    for t in fig.findobj(Text):
        if t.get_text() and t.get_fontsize() < min_pt:
            t.set_fontsize(min_pt)
    width = fig.get_figwidth()
    if fig._suptitle is not None:
        _wrap(fig._suptitle, 0.95 * width)
    for ax in fig.axes:
        for t in (ax.title, ax._left_title, ax._right_title):
            if t.get_text():
                _wrap(t, 1.3 * ax.get_position(original=True).width * width)
    for ax in fig.axes:
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            labels = [t for t in axis.get_ticklabels(which="both") if t.get_text()]
            if any(t.get_fontsize() < min_pt for t in labels):
                ax.tick_params(axis=name, which="both", labelsize=min_pt)


@functools.cache
def _book_figure():
    from matplotlib.figure import Figure

    class BookFigure(Figure):
        """A Figure that makes its text :func:`legible` each time it is drawn."""

        def draw(self, renderer):
            legible(self)
            return super().draw(renderer)

    return BookFigure


def figure(width: float, height: float, dpi: float | None = None, layout: str | None = "constrained"):
    """A new figure ``width`` x ``height`` inches, scaled down to :data:`BOOK_WIDTH` when wider
    (its dpi raised by as much, so it keeps its pixels), whose text is drawn at least
    :data:`MIN_PT` points large: legible at the book's column width. Sets :data:`RC`."""
    style()
    scale = min(1.0, BOOK_WIDTH / width)
    dpi = (dpi or RC["figure.dpi"]) / scale
    return _book_figure()(figsize=(width * scale, height * scale), dpi=dpi, layout=layout)


def _figure(ncols: int, width: float = 4.2, height: float = 3.6):
    fig = figure(width * ncols, height)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, axes


def save_figure(fig, path, dpi: int = 110):
    """Write ``fig`` to ``path`` (parents created) under a temporary name, then rename it, so a
    half-written PNG never looks complete. Returns the path."""
    from pathlib import Path

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp" + out.suffix)
    fig.savefig(tmp, dpi=dpi)
    tmp.replace(out)
    return out


def _as_list(x) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


# --- theory figures ---

def fig6_cases(label: str = "Proposition 1, 2-D illustration", resolution: int = 121,
               sbar_dist: float = 1.0):
    """Figure 6: the two feasible cases of condition (6) in the plane of ``x_S, y_S``.

    Left: case 1 (``x~_S`` on the segment between ``x_S`` and ``y_S``); middle: case 2
    (``x_S`` between ``x~_S`` and ``y_S``); each with an example ``x^_S`` and its
    projection. Right: where ``||x^ - x|| <= ||x^ - y||`` actually holds when
    ``||x_S' - y_S'|| = sbar_dist`` (with ``sbar_dist = 1`` the premise of (5) is an equality
    and the region coincides with the union of the two cases: (6) is tight).
    """
    import numpy as np
    from matplotlib.colors import ListedColormap

    from ssae.theory import fig6_grid

    g = fig6_grid(resolution=resolution, sbar_dist=sbar_dist)
    fig, axes = _figure(3)
    extent = (g.xx.min(), g.xx.max(), g.yy.min(), g.yy.max())
    xs, ys = np.array([0.0, 0.0]), np.array([1.0, 0.0])
    panels = [
        ("case 1: $\\tilde x_S$ between $x_S$ and $y_S$", (g.t >= 0) & (g.t <= 1), np.array([0.6, 0.9])),
        ("case 2: $x_S$ between $\\tilde x_S$ and $y_S$", g.t <= 0, np.array([-0.8, 0.7])),
        (f"conclusion holds ($\\|x_{{\\bar S}}-y_{{\\bar S}}\\|$={sbar_dist:g})", g.conclusion, None),
    ]
    for ax, (title, region, example) in zip(axes, panels):
        ax.imshow(region.astype(float), origin="lower", extent=extent, vmin=0, vmax=1,
                  cmap=ListedColormap(["white", "#9ecae1"]), aspect="equal")
        ax.axline(xs, ys, color="grey", lw=0.8)
        ax.plot(*zip(xs, ys), "k-", lw=1.5)
        ax.plot(*xs, "ko")
        ax.plot(*ys, "ks")
        ax.annotate("$x_S$", xs, textcoords="offset points", xytext=(-14, -14))
        ax.annotate("$y_S$", ys, textcoords="offset points", xytext=(4, -14))
        if example is not None:
            proj = np.array([example[0], 0.0])
            ax.plot(*example, "r^")
            ax.plot([example[0], proj[0]], [example[1], proj[1]], "r--", lw=1)
            ax.plot(*proj, "rx")
            ax.annotate("$\\hat x_S$", example, textcoords="offset points", xytext=(4, 4), color="r")
            ax.annotate("$\\tilde x_S$", proj, textcoords="offset points", xytext=(4, 4), color="r")
        else:
            ax.contour(g.xx, g.yy, g.condition6.astype(float), levels=[0.5], colors="k",
                       linestyles="dotted", linewidths=1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("coordinate 1 of $S$")
        ax.set_ylabel("coordinate 2 of $S$")
    fig.suptitle(f"Figure 6, condition (6) - {label}")
    return fig


_FIG6_CASES = {"case1": "case 1: $\\tilde x_S$ between $x_S$ and $y_S$",
               "case2": "case 2: $x_S$ between $\\tilde x_S$ and $y_S$",
               "both": "both cases: $\\tilde x_S = x_S$",
               "none": "neither case: $\\tilde x_S$ beyond $y_S$, (6) fails"}


def _premise_name(sbar_dist: float, short: bool = False) -> str:
    """How the premise of (5) holds in the plane of Figure 6 (``||x_S - y_S|| = 1``)."""
    if sbar_dist == 1.0:
        return "equality" if short else "premise of (5) an equality"
    if short:
        return f"slack {sbar_dist:g}"
    return f"premise with slack ($\\|x_{{\\bar S}}-y_{{\\bar S}}\\|$={sbar_dist:g})"


def _fig6_plane(ax, frame, limits, small: bool = False):
    """One frame of :func:`fig6_slider` in the plane of ``x_S = (0, 0)``, ``y_S = (1, 0)``:
    the feasible regions of (6), the limits of the conclusion, ``x^_S`` and its projection."""
    from ssae.theory import fig6_conclusion_limit

    (x0, x1), (y0, y1) = limits
    ax.axvspan(x0, 0.0, color="#deebf7", lw=0)
    ax.axvspan(0.0, 1.0, color="#9ecae1", lw=0)
    for d, style in zip(frame.sbar_dists, ("-", "--", ":")):
        ax.axvline(fig6_conclusion_limit(d), color="tab:green", ls=style, lw=1.2,
                   label=None if small else f"conclusion holds left of this line: {_premise_name(d)}")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.plot([0, 1], [0, 0], "k-", lw=1.5)
    ax.plot(0, 0, "ko")
    ax.plot(1, 0, "ks")
    (hx, hy), (tx, ty) = frame.x_hat, frame.x_tilde
    ax.plot([hx, tx], [hy, ty], "r--", lw=1)
    ax.plot(hx, hy, "r^", ms=7)
    ax.plot(tx, ty, "rx", ms=7)
    if not small:
        ax.annotate("$x_S$", (0, 0), textcoords="offset points", xytext=(-14, -14))
        ax.annotate("$y_S$", (1, 0), textcoords="offset points", xytext=(4, -14))
        ax.annotate("$\\hat x_S$", (hx, hy), textcoords="offset points", xytext=(5, 4), color="r")
        ax.annotate("$\\tilde x_S$", (tx, ty), textcoords="offset points", xytext=(5, -14), color="r")
        ax.text(-0.5, y1 - 0.15, "case 2", ha="center", fontsize=8)
        ax.text(0.5, y1 - 0.15, "case 1", ha="center", fontsize=8)
        ax.text(min(x1 - 0.5, 1.9), y1 - 0.15, "(6) fails", ha="center", fontsize=8)
        ax.legend(loc="lower left", fontsize=7)
        ax.set_xlabel("coordinate 1 of $S$")
        ax.set_ylabel("coordinate 2 of $S$")
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")


def _player(fig, draw, n_frames: int, interval: int = 900) -> str:
    """matplotlib's JavaScript player for ``draw(k)``, ``k < n_frames``, with no network resource."""
    from matplotlib import animation

    anim = animation.FuncAnimation(fig, draw, frames=n_frames, interval=interval, blit=False)
    return _offline_player(anim.to_jshtml(default_mode="once"))


def fig6_slider(ts=None, height: float = 0.7, sbar_dists=(1.0, 1.3),
                label: str = "Proposition 1, 2-D illustration"):
    """Figure 6 / Proposition 1 with a slider that works offline (no kernel): the corrupted
    region ``x^_S`` moves parallel to the line through ``x_S`` and ``y_S`` at ``height``,
    its projection ``x~_S`` at ``t`` (``x~_S = x_S + t (y_S - x_S)``, default 16 steps
    from -1 to 2). Each frame: the plane with the cases of condition (6) shaded and the
    limit ``t = (1 + ||x_S' - y_S'||^2) / 2`` of the conclusion of (5) for every entry of
    ``sbar_dists`` (1: the premise of (5) is an equality, > 1: slack); beside it the
    distances ``||x^ - x||`` and ``||x^ - y||`` that the conclusion compares.
    Returns ``(html, still)``: the player and a static figure of every frame."""
    import numpy as np
    from ssae.theory import fig6_path

    ts = np.round(np.linspace(-1.0, 2.0, 16), 6) if ts is None else np.asarray(ts, float)
    frames = fig6_path([(t, height) for t in ts], sbar_dists)
    limits = ((min(-1.2, ts.min() - 0.3), max(2.3, ts.max() + 0.3)), (-0.8, max(1.3, height + 0.5)))
    top = 1.1 * max(max(f.dist_x, *f.dist_y) for f in frames)
    fig = figure(9.0, 3.8, dpi=70)
    plane, bars = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1]})

    def draw(k):
        f = frames[k]
        plane.clear()
        bars.clear()
        _fig6_plane(plane, f, limits)
        plane.set_title(f"t = {f.t:+.2f}: {_FIG6_CASES[f.case]}", fontsize=9)
        x = np.arange(len(f.sbar_dists))
        bars.bar(x - 0.2, [f.dist_x] * len(x), 0.4, color="tab:blue", label="$\\|\\hat x - x\\|$")
        bars.bar(x + 0.2, f.dist_y, 0.4, color="tab:orange", label="$\\|\\hat x - y\\|$")
        bars.set_xticks(x, [f"{_premise_name(d, short=True)}:\n{'holds' if ok else 'fails'}"
                            for d, ok in zip(f.sbar_dists, f.conclusions)], fontsize=8)
        bars.set_ylim(0, top)
        bars.legend(fontsize=7, loc="upper left")
        bars.set_title("conclusion: blue $\\leq$ orange?", fontsize=9)
        fig.suptitle(f"Figure 6 with a slider - {label}", fontsize=10)
        return []

    draw(0)
    html = _player(fig, draw, len(frames))
    cols = 4
    rows = -(-len(frames) // cols)
    still = figure(2.6 * cols, 1.45 * rows + 0.5)
    axes = still.subplots(rows, cols, squeeze=False)
    for ax, f in zip(axes.ravel(), frames):
        _fig6_plane(ax, f, limits, small=True)
        ax.set_title(f"t = {f.t:+.2f}, {f.case}\n" + ", ".join(
            f"{_premise_name(d, short=True)}: {'holds' if ok else 'fails'}"
            for d, ok in zip(f.sbar_dists, f.conclusions)), fontsize=7)
    for ax in axes.ravel()[len(frames):]:
        ax.set_axis_off()
    still.suptitle(f"The same frames, for print (shaded: cases 2 and 1 of (6); green: where the conclusion "
                   f"of (5) stops holding) - {label}", fontsize=8)
    return html, still


def fig8_pixel_stats(stats, label: str, kind: str = "texture"):
    """Figure 8: per-pixel mean and standard deviation over all sliding windows
    (:func:`ssae.theory.sliding_window_pixel_stats`), against the pixel's position in the
    flattened window (``kind="texture"``) or along the middle row (``kind="object"``)."""
    import numpy as np

    from ssae.theory import pixel_stats_spread

    if kind == "texture":
        mean, std = stats.mean.ravel(), stats.std.ravel()
        xlabel = "pixel index in the flattened window"
    else:
        row = stats.mean.shape[0] // 2
        mean, std = stats.mean[row], stats.std[row]
        xlabel = "pixel column on the middle row"
    spread = pixel_stats_spread(stats, kind)
    fig, axes = _figure(1, width=7.0)
    ax = axes[0]
    idx = np.arange(mean.size)
    ax.plot(idx, mean, lw=0.6, label=f"mean (spread {spread['mean_spread']:.3f})", rasterized=True)
    ax.plot(idx, std, lw=0.6, label=f"std (spread {spread['std_spread']:.3f})", rasterized=True)
    ax.set_ylim(0, max(1.0, float(mean.max()) * 1.05))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("pixel value")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"Figure 8: {label} ({kind}; {stats.n_images} images at "
                 f"{stats.image_size}x{stats.image_size}, {stats.window}x{stats.window} windows)",
                 fontsize=9)
    return fig


def theorem2_violations(counts, label: str):
    """Theorem 2: fraction of pairs with ``||x_S - y_S|| > ||x_S' - y_S'||`` against
    ``|S|/N``, one line per image size ``N`` (a list of
    :class:`ssae.theory.ViolationCounts`), with the bound (11) ``|S| = 2 sigma^2 |S'|``
    (dashed) and ``|S|/N = 0.5`` (dotted). The dash-dotted lines are the proof's larger
    event (25) ``||x_S' - y_S'||^2 < |S|``."""
    fig, axes = _figure(1, width=6.0)
    ax = axes[0]
    for c in _as_list(counts):
        h, w = c.image_shape
        line, = ax.plot(c.fractions, c.rates, "o-", ms=3, label=f"N = {h}x{w}")
        ax.plot(c.fractions, c.superset / c.n_pairs, "-.", lw=0.8, color=line.get_color())
        ax.axvline(c.bound_fraction, color=line.get_color(), ls="--", lw=0.8)
    ax.axvline(0.5, color="red", ls=":", lw=1, label="|S|/N = 0.5")
    first = _as_list(counts)[0]
    ax.plot([], [], "k--", lw=0.8, label=f"bound (11), sigma^2 = {first.sigma2:.3g}")
    ax.plot([], [], "k-.", lw=0.8, label="event (25) of the proof")
    ax.set_xlabel("|S| / N")
    ax.set_ylabel("fraction of violating pairs")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    ax.set_title(f"Theorem 2: violating pairs - {label}", fontsize=9)
    return fig


def _t2_image(ax, d, k, title: str = ""):
    """Theorem 2 sweep: the example image of ``d`` (a :class:`ssae.theory.PairDistances`) with
    its region ``S`` at grid point ``k`` outlined."""
    from matplotlib.patches import Rectangle

    _show_image(ax, d.example, title)
    side, top, left = int(d.sides[k]), int(d.tops[k, 0]), int(d.lefts[k, 0])
    ax.add_patch(Rectangle((left - 0.5, top - 0.5), side, side, fill=False, ec="red", lw=1.5))


def _t2_scatter(ax, d, k, lim: float, small: bool = False):
    """Theorem 2 sweep: ``||x_S - y_S||^2`` against ``||x_S' - y_S'||^2`` for every pair at grid
    point ``k``, violators (above the diagonal) in red; the event (25) ``||x_S' - y_S'||^2 < |S|``
    shaded; + the expectation ``(2 sigma^2 |S'|, 2 sigma^2 |S|)`` of (9)."""
    inside, outside = d.inside[k], d.outside[k]
    bad = inside > outside
    s_size = int(d.sides[k]) ** 2
    n = d.image_shape[0] * d.image_shape[1]
    ax.scatter(outside[~bad], inside[~bad], s=6, c="tab:blue", label="premise holds")
    ax.scatter(outside[bad], inside[bad], s=6, c="tab:red", label="premise violated")
    ax.plot([0, lim], [0, lim], "k-", lw=0.8)
    ax.axvspan(0, min(s_size, lim), color="tab:orange", alpha=0.15, lw=0, label="event (25): $<|S|$")
    ax.plot(2 * d.sigma2 * (n - s_size), 2 * d.sigma2 * s_size, "k+", ms=10, mew=2, label="mean, eq. (9)")
    ax.set_xlim(0, lim)
    ax.set_ylim(0, lim)
    if small:
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        ax.set_xlabel("$\\|x_{\\bar S}-y_{\\bar S}\\|^2$")
        ax.set_ylabel("$\\|x_S-y_S\\|^2$")
        ax.legend(fontsize=6, loc="upper right")


def _t2_title(name: str, d, k) -> str:
    v = int((d.inside[k] > d.outside[k]).sum())
    where = "inside" if d.fractions[k] <= d.bound_fraction else "outside"
    return (f"{name}: |S|/N = {d.fractions[k]:.2f}, {v} of {len(d.pairs)} pairs violate the premise "
            f"({v / len(d.pairs):.0%}), {where} bound (11)")


def theorem2_sweep(sweeps, label: str = ""):
    """Theorem 2 with a slider over ``|S|/N`` that works offline (no kernel). ``sweeps``:
    ``{name: ssae.theory.PairDistances}`` (one row each, same fraction grid). Each frame
    shows per data set the example image with its square ``S`` outlined, the scatter of
    ``||x_S - y_S||^2`` against ``||x_S' - y_S'||^2`` over the pairs (above the diagonal: the
    premise of Theorem 1 violated) and the violation rate against ``|S|/N`` with the bound
    (11) ``|S|/N <= 2 sigma^2 / (1 + 2 sigma^2)`` (dashed) and the current ``|S|/N``.
    Returns ``(html, still)``: the player and a static figure of every frame."""
    names = list(sweeps)
    n_frames = len(sweeps[names[0]].fractions)
    lims = {nm: 1.05 * max(d.inside.max(), d.outside.max()) for nm, d in sweeps.items()}
    fig = figure(9.5, 3.1 * len(names), dpi=55)
    axes = fig.subplots(len(names), 3, squeeze=False, gridspec_kw={"width_ratios": [1, 1.3, 1.3]})

    def draw(k):
        for row, nm in zip(axes, names):
            d = sweeps[nm]
            for ax in row:
                ax.clear()
            _t2_image(row[0], d, k, "example $x$ with $S$")
            _t2_scatter(row[1], d, k, lims[nm])
            row[1].set_title(_t2_title(nm, d, k), fontsize=8, loc="left")
            c = d.counts()
            row[2].plot(c.fractions, c.rates, "o-", ms=3, label="premise violated")
            row[2].plot(c.fractions, c.superset / c.n_pairs, "-.", lw=0.8, label="event (25)")
            row[2].axvline(c.bound_fraction, color="k", ls="--", lw=0.8,
                           label=f"bound (11): {c.bound_fraction:.3f}")
            row[2].axvline(0.5, color="red", ls=":", lw=1)
            row[2].axvline(c.fractions[k], color="tab:green", lw=2, alpha=0.6, label="this frame")
            row[2].set_ylim(-0.02, 1.02)
            row[2].set_xlabel("|S| / N")
            row[2].set_ylabel("fraction of pairs")
            row[2].legend(fontsize=6, loc="center right")
        fig.suptitle("Theorem 2: the premise of Theorem 1 as |S|/N grows" + (f" - {label}" if label else ""),
                     fontsize=10)
        return []

    draw(0)
    html = _player(fig, draw, n_frames)
    still = figure(1.55 * n_frames, 3.3 * len(names) + 0.5)
    grid = still.subplots(2 * len(names), n_frames, squeeze=False)
    for r, nm in enumerate(names):
        d = sweeps[nm]
        for k in range(n_frames):
            v = int((d.inside[k] > d.outside[k]).sum())
            _t2_image(grid[2 * r, k], d, k, f"{nm}\n|S|/N = {d.fractions[k]:.2f}" if k == 0
                      else f"|S|/N = {d.fractions[k]:.2f}")
            _t2_scatter(grid[2 * r + 1, k], d, k, lims[nm], small=True)
            grid[2 * r + 1, k].set_title(f"{v}/{len(d.pairs)} violate", fontsize=7)
    still.suptitle("The same frames, for print: per data set the region S, then the pairs "
                   "(red: premise violated, shaded: event (25))" + (f" - {label}" if label else ""), fontsize=8)
    return html, still


def theorem3_convergence(result, label: str):
    """Theorem 3 / Corollary 1: ``(1/|S|) ||x_S - y_S||^2 -> 2 sigma^2``. Left: mean absolute
    deviation and the observed / predicted standard deviation of the average; right: the
    observed ``P(|m - 2 sigma^2| > eps)`` beside the Chebyshev bound (exact variance) and
    the bound from the proof's variance estimate."""
    import numpy as np

    fig, axes = _figure(2)
    ax = axes[0]
    ax.loglog(result.s_sizes, result.mean_abs_dev, "o-", label="mean |m - 2 sigma^2|")
    ax.loglog(result.s_sizes, np.sqrt(result.var_observed), "s--", label="std of m, observed")
    ax.loglog(result.s_sizes, np.sqrt(result.var_predicted), "k:", label="std of m, predicted")
    ax.set_xlabel("|S| (pixels)")
    ax.set_ylabel("deviation from 2 sigma^2")
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.semilogx(result.s_sizes, result.exceed, "o-", label="observed")
    # the proof's bound wide and coloured beneath the exact one: where both are capped at 1 both show
    ax.semilogx(result.s_sizes, result.proof_bound, ":", color="C3", lw=3, label="Chebyshev, proof's estimate")
    ax.semilogx(result.s_sizes, result.chebyshev, "k--", label="Chebyshev, exact Var")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("|S| (pixels)")
    ax.set_ylabel(f"P(|m - 2 sigma^2| > {result.eps:g})")
    ax.legend(fontsize=8)
    fig.suptitle(f"Corollary 1: {label} (corr. length {result.corr_length:g} px, "
                 f"{result.n_trials} pairs, 2 sigma^2 = {2 * result.sigma2:g})", fontsize=10)
    return fig


def fig9_orthogonality(curves, label: str):
    """Figure 9: for each mapping F (a list of :class:`ssae.theory.OrthogonalityCurve`), the
    frequency of ``argmin_Y ||X^ - Y|| = X`` and of ``argmin_Y ||F(X^) - Y|| = X``, and the
    mean +- std of ``||F(X^) - X||``, against the normalised width ``sqrt(|S|/N)``; the red
    dotted line marks ``|S|/N = 0.5``."""
    curves = _as_list(curves)
    fig, axes = _figure(3)
    for c in curves:
        name = c.label or "F"
        axes[0].plot(c.widths, c.acc_input, "o-", ms=3, label=name)
        axes[1].plot(c.widths, c.acc_output, "o-", ms=3, label=name)
        axes[2].errorbar(c.widths, c.dist_mean, yerr=c.dist_std, fmt="o-", ms=3, capsize=2, label=name)
    titles = ["argmin$_Y$ ||X^ - Y|| = X", "argmin$_Y$ ||F(X^) - Y|| = X", "||F(X^) - X||"]
    ylabels = ["accuracy", "accuracy", "L2 distance"]
    for ax, title, ylabel in zip(axes, titles, ylabels):
        ax.axvline(math.sqrt(0.5), color="red", ls=":", lw=1)
        ax.set_xlabel("normalised patch width sqrt(|S|/N)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    for ax in axes[:2]:
        ax.set_ylim(-0.02, 1.02)
    fig.suptitle(f"Figure 9: orthogonality of F - {label}", fontsize=10)
    return fig


# --- method and evaluation figures ---
# Figures 1, 2/4, 3, 5, 10, 11 and the loss curves, for the book's method, training and
# evaluation notebooks. Images are H x W x C float arrays in [0, 1] (C = 1 or 3); maps are
# H x W float arrays; masks H x W bool (or None without ground truth).

def _show_image(ax, img, title: str = ""):
    import numpy as np

    a = np.asarray(img, dtype=float)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    ax.imshow(np.clip(a, 0, 1), cmap="gray" if a.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def _grid(rows: int, cols: int, cell: float = 2.0):
    fig = figure(cell * cols, cell * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _rgb(img):
    import numpy as np

    a = np.asarray(img, dtype=float)
    if a.ndim == 2:
        a = a[..., None]
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a[..., :3]


def heat_overlay(img, amap, scale: float, alpha: float = 0.5):
    """``img`` blended with the ``jet`` colouring of ``amap / scale`` (clipped to [0, 1])."""
    import numpy as np
    import matplotlib

    heat = matplotlib.colormaps["jet"](np.clip(np.asarray(amap) / max(scale, 1e-12), 0, 1))[..., :3]
    return np.clip((1 - alpha) * _rgb(img) + alpha * heat, 0, 1)


def evaluation_map(pred, truth, image=None):
    """Figure 10's colouring: true positives green, false positives blue, false negatives red
    (``pred`` and ``truth`` H x W bool), drawn over ``image`` (true negatives show the image),
    or on black without one."""
    import numpy as np

    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    colours = np.zeros(pred.shape + (3,))
    colours[pred & truth] = (0.0, 0.8, 0.0)
    colours[pred & ~truth] = (0.1, 0.3, 1.0)
    colours[~pred & truth] = (1.0, 0.0, 0.0)
    if image is None:
        return colours
    under = _rgb(image)
    return np.where((pred | truth)[..., None], 0.35 * under + 0.65 * colours, under)


def loss_curve(history, label: str, title: str = "Training loss"):
    """Loss per logged step (log scale) with the crop side of progressive training."""
    fig, axes = _figure(1, width=6.5, height=3.4)
    ax = axes[0]
    steps = [h["step"] for h in history]
    loss = [h["loss"] for h in history]
    ax.plot(steps, loss, "-", lw=1.0, color="C0", label="loss")
    if loss and min(loss) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss", color="C0")
    if history and "crop" in history[0]:
        ax2 = ax.twinx()
        ax2.plot(steps, [h["crop"] for h in history], "--", lw=0.8, color="C1")
        ax2.set_ylabel("crop side (px)", color="C1")
    ax.set_title(f"{title} - {label}", fontsize=9)
    return fig


def corruption_steps(image, corrupted, mask, box, label: str):
    """Figure 5: the patch location, the patch X1, the shape mask X2, the transformed patch
    X3 (recovered from X4 where X2 > 0.1), the glued patch X4 = X2 X3 + (1 - X2) X1, the
    corrupted image and the global mask M. ``box`` = (y0, x0, y1, x1)."""
    import numpy as np
    from matplotlib.patches import Rectangle

    y0, x0, y1, x1 = (int(v) for v in box)
    img, cor = np.asarray(image, float), np.asarray(corrupted, float)
    m = np.asarray(mask, float)
    if m.ndim == 3:
        m = m[..., 0]
    p1, p4, p2 = img[y0:y1, x0:x1], cor[y0:y1, x0:x1], m[y0:y1, x0:x1]
    w = p2[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        p3 = np.where(w > 0.1, (p4 - (1 - w) * p1) / np.maximum(w, 1e-6), 0.5)
    fig, axes = _grid(1, 7, cell=2.0)
    axes = axes[0]
    _show_image(axes[0], img, "1. patch location")
    axes[0].add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="red", lw=1.2))
    _show_image(axes[1], p1, "X1: patch")
    _show_image(axes[2], p2, "X2: shape mask")
    _show_image(axes[3], np.clip(p3, 0, 1), "X3: deformed\n(where X2 > 0.1)")
    _show_image(axes[4], p4, "X4 = X2 X3 + (1-X2) X1")
    _show_image(axes[5], cor, "corrupted image X^")
    _show_image(axes[6], m, "global mask M")
    fig.suptitle(f"Figure 5: generating a corrupted training input - {label}", fontsize=9)
    return fig


def pipeline(image, reconstruction, diff, anomap, threshold: float, label: str, truth=None):
    """Figure 3: input X^, reconstruction F(X^), Diff (eq. 2), anomap (eq. 3) and the binary
    mask anomap > threshold (with the ground truth outlined when given)."""
    import numpy as np

    cols = 5
    fig, axes = _grid(1, cols, cell=2.3)
    axes = axes[0]
    _show_image(axes[0], image, "1. input X^")
    _show_image(axes[1], reconstruction, "F(X^)")
    d = np.asarray(diff, float)
    axes[2].imshow(d, cmap="inferno")
    axes[2].set_title("2. Diff(X^, F(X^))", fontsize=8)
    a = np.asarray(anomap, float)
    axes[3].imshow(a, cmap="jet")
    axes[3].set_title("3. anomap = G_k^n(Diff)", fontsize=8)
    axes[4].imshow(a > threshold, cmap="gray", vmin=0, vmax=1)
    axes[4].set_title("4. mask: anomap > threshold", fontsize=8)
    if truth is not None and np.asarray(truth).any():
        axes[4].contour(np.asarray(truth, float), levels=[0.5], colors="red", linewidths=0.8)
    for ax in axes[2:]:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"Figure 3: the detection pipeline - {label}", fontsize=9)
    return fig


def reconstructions(rows, label: str, title: str = "Figure 2: reconstructions"):
    """Figures 2 and 4: each row a dict with ``input`` (a corrupted or defective image),
    ``output`` (its reconstruction), optional ``clean`` (the uncorrupted original) and
    ``mask`` (corruption or defect mask), and ``name``."""
    import numpy as np

    cols = 4
    fig, axes = _grid(len(rows), cols, cell=2.1)
    for r, row in zip(axes, rows):
        _show_image(r[0], row["input"], f"input ({row.get('name', '')})")
        _show_image(r[1], row["output"], "reconstruction F(input)")
        if row.get("clean") is not None:
            _show_image(r[2], row["clean"], "original (target)")
        else:
            r[2].set_axis_off()
        m = row.get("mask")
        if m is not None:
            _show_image(r[3], np.asarray(m, float), "mask")
        else:
            d = ((np.asarray(row["input"], float) - np.asarray(row["output"], float)) ** 2).mean(axis=-1)
            r[3].imshow(d, cmap="inferno")
            r[3].set_title("Diff(input, F(input))", fontsize=8)
            r[3].set_xticks([])
            r[3].set_yticks([])
    fig.suptitle(f"{title} - {label}", fontsize=9)
    return fig


def detection_examples(images, maps, threshold: float, titles, label: str):
    """Figure 1: per row the input image, the heatmap overlay, and the predicted mask."""
    import numpy as np

    n = len(images)
    fig, axes = _grid(n, 3, cell=2.2)
    scale = 2 * threshold
    for r, img, m, t in zip(axes, images, maps, titles):
        _show_image(r[0], img, f"input ({t})")
        _show_image(r[1], heat_overlay(img, m, scale), "anomaly heatmap")
        _show_image(r[2], (np.asarray(m) > threshold).astype(float), "predicted mask")
    fig.suptitle(f"Figure 1: detection results - {label}", fontsize=9)
    return fig


def evaluation_maps(images, maps, masks, threshold: float, titles, label: str):
    """Figure 10: per row the input, the predicted mask, and the evaluation map against the
    ground truth over the input (TP green, FP blue, FN red). Rows without a mask show 'no ground truth'."""
    import numpy as np

    n = len(images)
    fig, axes = _grid(n, 3, cell=2.2)
    for r, img, m, gt, t in zip(axes, images, maps, masks, titles):
        pred = np.asarray(m) > threshold
        _show_image(r[0], img, f"input ({t})")
        _show_image(r[1], pred.astype(float), "predicted mask")
        if gt is None:
            r[2].set_axis_off()
            r[2].text(0.5, 0.5, "no ground truth", ha="center", va="center", fontsize=8,
                      transform=r[2].transAxes)
        else:
            _show_image(r[2], evaluation_map(pred, gt, img), "hit green / false alarm blue / miss red")
    fig.suptitle(f"Figure 10: evaluation maps - {label}", fontsize=9)
    return fig


def objective_comparison(ex, label: str):
    """Figure 11: per row the input, the ground-truth mask, and the heatmaps of objective (4)
    with elastic deformation, objective (1) with elastic deformation and objective (1) with
    cut-out ("zeros"). ``ex`` is the ``figure11`` dict of :func:`ssae_book.book.compare_objectives`;
    each heatmap is scaled by twice its model's calibrated threshold."""
    import numpy as np

    n = len(ex["images"])
    fig, axes = _grid(n, 5, cell=2.1)
    th = ex["thresholds"]
    for i, r in enumerate(axes):
        _show_image(r[0], ex["images"][i], f"input ({ex['titles'][i]})")
        gt = ex["masks"][i]
        if gt is None:
            r[1].set_axis_off()
            r[1].text(0.5, 0.5, "no ground truth", ha="center", va="center", fontsize=8,
                      transform=r[1].transAxes)
        else:
            _show_image(r[1], np.asarray(gt, float), "label mask")
        for ax, key, name in ((r[2], "objective4", "obj. (4), ED"), (r[3], "objective1", "obj. (1), ED"),
                              (r[4], "cutout", "obj. (1), zeros")):
            a = np.asarray(ex[key][i], float)
            ax.imshow(np.clip(a / max(2 * th[key], 1e-12), 0, 1), cmap="jet", vmin=0, vmax=1)
            ax.set_title(name, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"Figure 11: objective (4) against objective (1) and cut-out - {label}", fontsize=9)
    return fig


def score_histogram(scores_good, scores_bad, label: str):
    """Image anomaly scores of good and defective test images."""
    fig, axes = _figure(1, width=6.0, height=3.2)
    ax = axes[0]
    ax.hist(scores_good, bins=20, alpha=0.6, label="good")
    ax.hist(scores_bad, bins=20, alpha=0.6, label="defective")
    ax.set_xlabel("image score")
    ax.set_ylabel("images")
    ax.legend(fontsize=8)
    ax.set_title(f"Image scores - {label}", fontsize=9)
    return fig


def mrf_grid(n: int = 5, centre: tuple[int, int] = (2, 2), order: int = 1,
             label: str = "Figure 7: a Markov random field on the pixel grid"):
    """Figure 7: an ``n x n`` MRF; the neighbourhood of order ``order`` (graph distance) of
    the node ``centre`` is shaded, the node itself highlighted."""
    fig, axes = _figure(1, width=4.2, height=4.2)
    ax = axes[0]
    for i in range(n):
        ax.plot([0, n - 1], [i, i], color="grey", lw=0.8, zorder=0)
        ax.plot([i, i], [0, n - 1], color="grey", lw=0.8, zorder=0)
    cy, cx = centre
    for y in range(n):
        for x in range(n):
            dist = abs(y - cy) + abs(x - cx)
            colour = "orange" if dist == 0 else "#6baed6" if dist <= order else "white"
            ax.scatter([x], [n - 1 - y], s=420, c=colour, edgecolors="black", zorder=2)
            ax.text(x, n - 1 - y, f"{y + 1},{x + 1}", ha="center", va="center", fontsize=6, zorder=3)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(label, fontsize=9)
    return fig


def paired_draws(values, label: str, reference=None, names=("ssae", "plain autoencoder")):
    """One metric per panel over paired draws: a line per draw from the second method to the first.

    ``values``: {metric: (first, second)}, two equally long sequences (one value per draw,
    the same draw at the same index). ``reference``: optional {metric: value} of a method
    without training (drawn as a dashed line). ``label`` names data, size, profile, hardware.
    """
    metrics = list(values)
    fig, axes = _figure(len(metrics), width=3.0, height=3.4)
    for ax, m in zip(axes, metrics):
        a, b = (list(v) for v in values[m])
        for ya, yb in zip(a, b):
            ax.plot([0, 1], [yb, ya], color="tab:green" if ya > yb else "tab:red", alpha=0.6, marker="o", ms=3)
        ax.plot([0, 1], [sum(b) / len(b), sum(a) / len(a)], color="black", lw=2.5, marker="s", label="mean")
        if reference and m in reference:
            ax.axhline(reference[m], color="grey", ls="--", label="blur reference")
        ax.set_xticks([0, 1], [names[1], names[0]], fontsize=8)
        ax.set_xlim(-0.3, 1.3)
        ax.set_title({"image_auroc": "image AUROC", "pixel_auroc": "pixel AUROC", "aupro": "AUPRO"}.get(m, m),
                     fontsize=9)
    axes[0].set_ylabel("AUROC / AUPRO")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{names[0]} against {names[1]} over {len(a)} paired draws - {label}", fontsize=9)
    return fig


def corruption_explorer(image, cfg, sizes=(0.05, 0.1, 0.2, 0.3, 0.4, 0.5), methods=("elastic", "swap", "cutout"),
                        seed: int = 0, label: str = ""):
    """An interactive figure that works in the offline HTML with no kernel: a slider over the
    patch size (fraction of the image side) for each corruption method, drawn with matplotlib's
    JavaScript animation player (frames embedded as images, no script from the network).
    Returns ``(html, fallback)``: the player's HTML and a static figure of the same frames."""
    import numpy as np
    import torch
    from ssae.corruption import corrupt

    x = torch.from_numpy(np.ascontiguousarray(np.asarray(image, dtype=np.float32).transpose(2, 0, 1)))[None]
    x = x.repeat(2, 1, 1, 1)  # a second image for swap: the first shifted by half its side
    x[1] = x[0].roll((x.shape[2] // 2, x.shape[3] // 2), dims=(1, 2))
    frames = []
    for size in sizes:
        row = []
        for m in methods:
            c = dataclasses.replace(cfg, method=m, alternate=(), patch_min=size, patch_max=size)
            xh, mask = corrupt(x, c, torch.Generator().manual_seed(seed))
            row.append((xh[0].numpy().transpose(1, 2, 0), mask[0, 0].numpy()))
        frames.append(row)
    fig = figure(2.4 * len(methods), 2.8)
    axes = fig.subplots(1, len(methods), squeeze=False)[0]
    shown = []
    for ax, m, (img, _) in zip(axes, methods, frames[0]):
        _show_image(ax, img, m)
        shown.append(ax.images[0])

    def draw(k):
        for im, (img, _) in zip(shown, frames[k]):
            a = np.clip(img[..., 0] if img.shape[2] == 1 else img, 0, 1)
            im.set_data(a)
        fig.suptitle(f"patch side {sizes[k]:.0%} of the image" + (f" · {label}" if label else ""), fontsize=9)
        return shown

    html = _player(fig, draw, len(sizes))
    still, axes = _grid(len(sizes), len(methods), cell=1.6)
    for r, (size, row) in enumerate(zip(sizes, frames)):
        for ax, m, (img, _) in zip(axes[r], methods, row):
            _show_image(ax, img, f"{m}, {size:.0%}")
    still.suptitle("The same frames, for print" + (f" · {label}" if label else ""), fontsize=9)
    return html, still


#: the player's Font Awesome icons as plain characters that common fonts have (the book loads nothing
#: from the network)
_ICONS = {"fa-minus": "−", "fa-fast-backward": "«", "fa-step-backward": "◀|", "fa-play fa-flip-horizontal": "◀",
          "fa-pause": "||", "fa-play": "▶", "fa-step-forward": "|▶", "fa-fast-forward": "»", "fa-plus": "+"}


def _offline_player(html: str) -> str:
    """matplotlib's JavaScript player without its Font Awesome stylesheet link (a network
    resource): the icons become plain characters."""
    import re

    html = re.sub(r"<link[^>]*font-awesome[^>]*>", "", html)
    for cls, char in _ICONS.items():
        html = html.replace(f'<i class="fa {cls}"></i>', char)
    return html
