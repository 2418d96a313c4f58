"""Helpers of the theory chapters (Section 3.4 and the supplements): what notebooks 05-08 compute
and say, one call per table, figure or generated sentence.

- sizes of the computations per profile (:data:`THEORY`) and the images they read;
- Figure 8 and Proposition 2 (:func:`pixel_stats`, :func:`prop2_results` and their tables and notes);
- Proposition 1 and Figure 6 (:func:`prop1_trials`, :func:`fig6_slider_note`);
- Theorems 2 and 3 and event (25) (:func:`theorem2_note`, :func:`event25_note`, :func:`theorem3_note`, ...);
- Figure 9 (:func:`orthogonality_inputs`, its table and verdict).

The computations themselves are :mod:`ssae.theory`; the figures :mod:`ssae_book.plots`.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ssae.errors import SsaeError
from .book import EMBEDDED, figure_label
from .tables import Table


#: Sizes of the theory computations per profile (images, windows, pairs, trials).
THEORY = {
    "smoke": {"n_images": 6, "size": 64, "window": 32, "n_pairs": 40, "fields": 32, "trials": 40,
              "orth_images": 8, "orth_widths": (0.2, 0.5, 0.8), "sides": (2, 4, 8)},
    "cpu": {"n_images": 24, "size": 256, "window": 128, "n_pairs": 300, "fields": 128, "trials": 300,
            "orth_images": 24, "orth_widths": (0.1, 0.3, 0.5, 0.7, 0.85, 1.0),
            "sides": (2, 4, 8, 16, 32, 64)},
    "paper": {"n_images": 100, "size": 512, "window": 256, "n_pairs": 2000, "fields": 256, "trials": 1000,
              "orth_images": 200, "orth_widths": tuple(round(0.05 * i, 2) for i in range(1, 21)),
              "sides": (2, 4, 8, 16, 32, 64, 128)},
}
THEORY["paper-fast"] = THEORY["paper"]   # the same scale: the profiles differ in precision and scoring only


def theory_settings(profile: str) -> dict[str, Any]:
    if profile not in THEORY:
        raise SsaeError(f"unknown profile {profile!r}; choose one of {', '.join(THEORY)}")
    return dict(THEORY[profile])


def texture_images(category: str, n: int, size: int, seed: int = 0):
    """``n`` defect-free training images of an embedded look-alike, rendered in memory at
    ``size`` (the same pixels :mod:`ssae.datasets.embedded` writes to disk), as ``H x W x C`` arrays."""
    from ssae.datasets import embedded

    return [embedded.sample(category, "good", seed=seed, index=i, size=size, split="train").image
            for i in range(n)]


def folder_images(spec: str, n: int, size: int, seed: int = 0):
    """``n`` training images of a data set folder (or embedded spec) at ``size``."""
    from ssae import data as D
    from ssae.config import DataConfig

    split = D.load_split(spec, DataConfig(image_size=size), seed=seed)
    return split.images(split.train[:n], size)


def grey_stack(images, size: int | None = None):
    """``n x H x W`` grey float64 stack (Section 3.4 treats grey images)."""
    from ssae.theory import stack_grey
    return stack_grey(images, size)


def theory_sizes_note(profile: str) -> str:
    """Markdown: the sizes of the theory chapters' computations in ``profile`` (:data:`THEORY`)."""
    st = theory_settings(profile)
    return (f"Sizes in the {profile} profile: {st['n_images']} training images per data set, resized to "
            f"{st['size']}×{st['size']} px, with sliding windows of {st['window']}×{st['window']} px; "
            f"{st['fields']} random fields; {st['n_pairs']} pairs of images for eq. (9).")


def pixel_stats(categories=EMBEDDED, profile: str = "cpu", seed: int = 0) -> dict[str, Any]:
    """Figure 8's sliding-window statistics for embedded look-alikes: {category: PixelStats}."""
    from ssae.theory import sliding_window_pixel_stats

    st = theory_settings(profile)
    return {c: sliding_window_pixel_stats(texture_images(c, st["n_images"], st["size"], seed),
                                          size=st["size"], window=st["window"]) for c in categories}


def pixel_stats_table(stats: dict[str, Any], kind: str = "texture", label: str = "") -> Table:
    from ssae.theory import pixel_stats_spread

    rows = []
    for name, s in stats.items():
        sp = pixel_stats_spread(s, kind)
        rows.append([name, f"{sp['mean_min']:.3f} – {sp['mean_max']:.3f}", f"{sp['mean_rel_spread']:.1%}",
                     f"{sp['std_min']:.3f} – {sp['std_max']:.3f}", f"{sp['std_rel_spread']:.1%}",
                     f"{s.n_images} × {s.image_size} px, {s.window} px windows"])
    return Table(f"Figure 8 in numbers: spread of the per-pixel statistics {label}".strip(),
                 ["data", "per-pixel mean (min – max)", "relative spread", "per-pixel std (min – max)",
                  "relative spread", "images"], rows,
                 caption="Identically distributed pixels (Proposition 2's assumption) mean small spreads.")


def _share(v: float) -> str:
    """A share as a whole percentage: '45 %'."""
    return f"{100 * v:.0f} %"


def object_pixel_note(textures: dict[str, Any], obj: Any, name: str) -> str:
    """Markdown: Figure 8's object panel against the textures, along the middle row of the
    window for both (what :func:`ssae.theory.pixel_stats_spread` measures with ``kind="object"``)."""
    from ssae.theory import pixel_stats_spread

    tex = {k: pixel_stats_spread(v, "object")["mean_rel_spread"] for k, v in textures.items()}
    worst = max(tex, key=tex.get)
    o = pixel_stats_spread(obj, "object")
    ratio = o["mean_rel_spread"] / max(tex[worst], 1e-12)
    return (f"**The paper** assumes identically distributed pixels for textures and shows in Figure 8 that "
            f"objects break this assumption. **Here**, along the middle row of the window the per-pixel mean "
            f"of the {name} images runs from {o['mean_min']:.3f} to {o['mean_max']:.3f}, a relative spread of "
            f"{_share(o['mean_rel_spread'])}; on the same row the texture look-alikes spread by at most "
            f"{_share(tex[worst])} ({worst}), {ratio:.0f} times less. **This is why**: every training image shows "
            f"the object at about the same place, so the mean at a pixel follows the object's outline "
            f"and so does the per-pixel standard deviation ({o['std_min']:.3f} to {o['std_max']:.3f}). The pixels "
            f"are not identically distributed, so Proposition 2 and Theorem 2 do not apply to this object.")


def prop2_results(images, fractions=(0.05, 0.1, 0.25, 0.5, 0.75), n_pairs: int = 200, seed: int = 0,
                  sigma2: float | None = None) -> list:
    """Eq. (9) on pairs of independent images, one :class:`ssae.theory.Prop2Result` per
    fraction ``|S|/N`` (``S`` a centred square); ``sigma2`` defaults to the pooled variance."""
    import numpy as np
    from ssae.theory import centred_square, distinct_pairs, pooled_variance, proposition2_check

    g = np.asarray(images, dtype=np.float64)
    s2 = pooled_variance(g) if sigma2 is None else float(sigma2)
    pairs = distinct_pairs(g.shape[0], n_pairs, np.random.default_rng(seed))
    return [proposition2_check(g[pairs[:, 0]], g[pairs[:, 1]], centred_square(g.shape[1:], f), s2)
            for f in fractions]


def prop2_table(results, label: str = "") -> Table:
    """The observed mean of ``||x_S - y_S||^2 - ||x_S' - y_S'||^2`` against
    ``(|S| - |S'|) 2 sigma^2`` of eq. (9), per fraction (:func:`prop2_results`)."""
    rows = [[f"{r.fraction:.3f}", f"{r.predicted:.1f}", f"{r.observed:.1f} ± {r.stderr:.1f}", f"{r.z:+.1f}",
             "consistent" if abs(r.z) < 3 else "differs"] for r in results]
    # z, not a relative deviation: near |S|/N = 0.5 the prediction is near 0 and a ratio explodes
    r = results[0]
    side = int(round(r.n ** 0.5))
    return Table(f"Proposition 2, eq. (9): {label}".strip(),
                 ["|S|/N", "predicted (|S|−|S̄|)·2σ²", "observed mean ± s.e.", "z = (observed − predicted) / s.e.",
                  "at |z| < 3"],
                 rows, caption=f"σ² = {r.sigma2:.4g}, {r.n_pairs} pairs of distinct images, N = "
                               f"{side}×{side}, S a centred square.")


def prop2_note(results: dict[str, list], n_images: dict[str, int]) -> str:
    """Markdown: what the tables of eq. (9) show, per data set ``{label: prop2_results}``;
    ``n_images`` gives the number of images the pairs of each data set were drawn from."""
    found, caveat = [], []
    for label, res in results.items():
        ok = sum(abs(r.z) < 3 for r in res)
        worst = max(res, key=lambda r: abs(r.z))
        inside = worst.term_s / worst.s_size
        outside = worst.term_sbar / (worst.n - worst.s_size)
        found.append(f"on the {label}, |z| < 3 at {ok} of {len(res)} sizes; the largest gap, z = {worst.z:+.1f} "
                     f"at |S|/N = {worst.fraction:.2f}, comes from a mean squared difference per pixel of "
                     f"{inside:.4f} inside S and {outside:.4f} outside, against 2σ² = {2 * worst.sigma2:.4f}")
        n = n_images.get(label)
        if n and 2 * worst.n_pairs > n:
            caveat.append(f"the {worst.n_pairs} pairs of the {label} are drawn from {n} images, each image in about "
                          f"{2 * worst.n_pairs / n:.0f} pairs")
    return ("**Eq. (9)** predicts the mean exactly when all pixels share one variance σ² and the two images are "
            "independent; sampling noise alone keeps |z| below 3. **Here**, " + "; ".join(found) + ". "
            "**This is why**: a per-pixel value that departs from 2σ² inside or outside S beyond sampling noise "
            "means that the pixels there do not have the variance σ² of the whole image, or that two images are "
            "more (or less) alike than independent draws: an assumption of Proposition 2 fails by that much."
            + (" A caveat: " + "; ".join(caveat) + ". Pairs that share an image are not independent, and the "
               "standard error, which treats them as independent, is then too small, so |z| overstates the "
               "evidence somewhat." if caveat else ""))


def fig6_slider_note(ts, sbar_dists=(1.0, 1.3), height: float = 0.7) -> str:
    """Markdown: Proposition 1 along the path of :func:`ssae_book.plots.fig6_slider`,
    counted from :func:`ssae.theory.fig6_path`."""
    from ssae.theory import fig6_conclusion_limit, fig6_path

    frames = fig6_path([(t, height) for t in ts], sbar_dists)
    cond = [f for f in frames if f.condition6]
    parts = [f"**Proposition 1** says: where the premise of (5) and condition (6) hold, the conclusion holds. "
             f"**Along this path** (6) holds at {len(cond)} of {len(frames)} positions."]
    for i, d in enumerate(sbar_dists):
        holds = [f for f in frames if f.conclusions[i]]
        extra = [f"{f.t:+.1f}" for f in holds if not f.condition6]
        broken = [f"{f.t:+.1f}" for f in cond if not f.conclusions[i]]
        where = (f"wherever (6) holds and also at t = {', '.join(extra)}, where (6) fails" if extra and not broken
                 else "exactly where (6) holds" if not broken
                 else f"but not at t = {', '.join(broken)}, where (6) holds: a counterexample")
        parts.append(f"With ‖x_S̄ − y_S̄‖ = {d:g} the conclusion holds at {len(holds)} positions, {where} "
                     f"(its limit is t = {fig6_conclusion_limit(d):.3f}).")
    parts.append("**This is why**: by Lemma 3 the conclusion reads (2t − 1)‖x_S − y_S‖² ≤ ‖x_S̄ − y_S̄‖², so only "
                 "the position t of the projection matters and the height of x̂_S above the line cancels "
                 "(Lemma 1). Condition (6) is t ≤ 1: what the inequality needs in the worst case that the premise "
                 "allows, ‖x_S̄ − y_S̄‖ = ‖x_S − y_S‖. With an equal premise (6) is therefore exactly the region "
                 "of the conclusion; with slack it is sufficient and leaves room beyond y_S.")
    return " ".join(parts)


def _shape(c) -> str:
    return f"{c.image_shape[0]}×{c.image_shape[1]}"


def _first_fraction(c, rates, level: float) -> str:
    """``|S|/N`` of the first grid point whose rate exceeds ``level`` (or 'never')."""
    hit = [f for f, r in zip(c.fractions, rates) if r > level]
    return f"{hit[0]:.2f}" if hit else "never"


def theorem2_note(counts) -> str:
    """Markdown: Theorem 2 on fields of growing size (a list of :class:`ssae.theory.ViolationCounts`
    with one sigma^2): violations inside and outside the bound (11)."""
    b = counts[0].bound_fraction
    inside = sum(int(c.violations[c.fractions <= b].sum()) for c in counts)
    tested = sum(int((c.fractions <= b).sum()) * c.n_pairs for c in counts)
    first = ", ".join(f"{_first_fraction(c, c.rates, 0)} ({_shape(c)})" for c in counts)
    half = ", ".join(f"{_first_fraction(c, c.rates, 0.5)} ({_shape(c)})" for c in counts)
    return (f"**The paper** says (12): inside the bound (11), here |S|/N ≤ {b:.3f}, the share of pairs that "
            f"violate the premise of Theorem 1 tends to 0 as N grows. **Here** {inside} of the {tested} pairs "
            f"tested inside the bound violate it. The first violations appear only at |S|/N = {first}, and more "
            f"than half of the pairs violate from |S|/N = {half}. **This is why**: eq. (9) puts the mean of "
            f"‖x_S − y_S‖² − ‖x_S̄ − y_S̄‖² at (|S| − |S̄|)·2σ², below 0 for every |S|/N < 0.5, and both norms "
            f"concentrate around their means as the images grow (Corollary 1). The bound (11) is sufficient for "
            f"(12) but far from necessary; the next section shows where it comes from.")


def event25_note(counts) -> str:
    """Markdown: the proof's event (25), ``||x_S' - y_S'||^2 < |S|``, just inside and just
    outside the bound (11), per image size (a list of :class:`ssae.theory.ViolationCounts`)."""
    b = counts[0].bound_fraction
    near_in, near_out = [], []
    for c in counts:
        share = c.superset / c.n_pairs
        inside, outside = c.fractions <= b, c.fractions > b
        if inside.any():
            k = int(inside.nonzero()[0][-1])
            near_in.append(f"{_share(share[k])} at N = {_shape(c)} (|S|/N = {c.fractions[k]:.2f})")
        if outside.any():
            k = int(outside.nonzero()[0][0])
            near_out.append(f"{_share(share[k])} (|S|/N = {c.fractions[k]:.2f})")
    s2 = counts[0].sigma2
    return (f"**The proof** bounds the probability of a violation by that of event (25), the dash-dotted curves. "
            f"**Here**, at the largest grid point inside the bound, event (25) holds for "
            f"{'; '.join(near_in) or 'no grid point'}; at the first grid point outside it, for "
            f"{', '.join(near_out) or 'no grid point'}. The violations themselves start only at the larger |S|/N "
            f"given above. **This is why**: event (25) says m = ‖x_S̄ − y_S̄‖²/|S̄| < |S|/|S̄|, and m concentrates "
            f"at 2σ² = {2 * s2:.3f} (Corollary 1). The event is rare when |S|/|S̄| is below 2σ², inside (11), and "
            f"almost certain above it. The proof can therefore not reach beyond (11): replacing ‖x_S − y_S‖² by "
            f"its largest value |S|, instead of its typical value 2σ²|S|, costs a factor 1/(2σ²) = "
            f"{1 / (2 * s2):.1f} in the admissible |S|.")


def theorem2_sides_table(c, label: str = "") -> Table:
    """Violations summed over the grid points inside and outside the bound (11)
    (:meth:`ssae.theory.ViolationCounts.sides`)."""
    sd = c.sides()
    inside = c.fractions <= c.bound_fraction
    rows = []
    for name, mask, key in (("inside (11)", inside, "inside"), ("outside (11)", ~inside, "outside")):
        span = f"{c.fractions[mask].min():.3f} – {c.fractions[mask].max():.3f}" if mask.any() else "—"
        pairs, viol = sd[f"{key}_pairs"], sd[f"{key}_violations"]
        rows.append([name, str(sd[f"{key}_points"]), span, str(pairs), str(viol),
                     _share(viol / pairs) if pairs else "—"])
    return Table(f"Theorem 2: violating pairs inside and outside the bound (11) {label}".strip(),
                 ["grid points", "number", "|S|/N", "pairs tested", "violating", "share"], rows,
                 caption=f"σ² = {c.sigma2:.4g}, so (11) allows |S|/N ≤ {c.bound_fraction:.4f}; "
                         f"N = {_shape(c)}, {c.n_pairs} pairs per grid point.")


def theorem2_sides_note(c, name: str) -> str:
    """Markdown: footnote 7 of the paper (no violations within the bound on MVTec AD textures)
    against the counts on one texture."""
    sd = c.sides()
    b = c.bound_fraction
    return (f"**Footnote 7 of the paper** reports no violating pairs within the bound on the MVTec AD textures. "
            f"**On the {name}**, σ² = {c.sigma2:.4f} puts the bound at |S|/N ≤ {b:.4f}, a square of "
            f"{_share(b ** 0.5)} of the image side; inside it {sd['inside_violations']} of {sd['inside_pairs']} pairs "
            f"violate the premise, and the first violations appear at |S|/N = {_first_fraction(c, c.rates, 0)}. "
            f"**This is why**: the bound is small because the texture varies little (small σ²), not because "
            f"larger patches break the premise: by eq. (9) the premise fails on average only from "
            f"|S|/N = 0.5 on.")


def theorem3_note(res, crossing: int) -> str:
    """Markdown: what the Theorem 3 figure shows (a :class:`ssae.theory.ConvergenceResult`):
    the observed share, the Chebyshev bound with the exact variance, and the flat bound with
    the proof's variance estimate, which falls below 1 only from ``crossing`` pixels
    (:func:`ssae.theory.proof_bound_crossing`)."""
    sizes = [int(n) for n in res.s_sizes]
    below = [n for n, v in zip(sizes, res.proof_bound) if v < 1]
    exact = [n for n, v in zip(sizes, res.chebyshev) if v < 1]
    under = sum(o <= c for o, c in zip(res.exceed, res.chebyshev))
    side = math.ceil(crossing ** 0.5)
    proof = (f"it stays at 1 for every |S| from {sizes[0]} to {sizes[-1]}" if not below else
             f"it stays at 1 up to |S| = {max([n for n in sizes if n < below[0]] or [0])} and reaches "
             f"{res.proof_bound[-1]:.2f} at |S| = {sizes[-1]}")
    return (f"**The proof of Theorem 3** bounds P(|m − 2σ²| > ε) by Chebyshev's inequality, Var[m]/ε², and "
            f"estimates Var[m] from above by Var[w]/|S| + 2L(L+1)·Var[w]/|S| + 2ε_L, where ε_L is the largest "
            f"covariance between pixels more than L edges apart (the paper bounds the number of these near "
            f"neighbours by L; on a 2-D grid there are up to 2L(L+1)). The dotted curve is this estimate, minimised "
            f"over L and capped at 1 (where both bounds are 1 it lies under the dashed one). **Here** {proof}. **This is why**: the term 2ε_L does not shrink as |S| "
            f"grows, so L must be large enough that 2ε_L < ε² = {res.eps ** 2:g}, and then the term with "
            f"2L(L+1) needs a large |S| to fall below ε² as well. For these fields (correlation length {res.corr_length:g} px, "
            f"ε = {res.eps:g}) the estimate falls below 1 only from |S| = {crossing} pixels, a square of side "
            f"{side} or more. The dashed curve, Chebyshev's bound with the exact variance, "
            + (f"is below 1 from |S| = {exact[0]}" if exact else "stays at 1 at these sizes too")
            + f"; the observed share (solid) is at or below it at {under} of {len(sizes)} sizes and is "
            f"{_share(res.exceed[-1])} at |S| = {sizes[-1]}. So the flat curve shows that the proof's chain of "
            f"inequalities is valid and tends to 0 as |S| → ∞, which is all that Theorem 3 claims. It does not "
            f"show how large a patch must be for m to be close to 2σ²; for that, read the observed share and "
            f"the exact bound.")


def theorem3_offset_note(res, offset) -> str:
    """Markdown: Corollary 1 on fields with a random offset (covariance that does not vanish,
    ``offset``) against the same run without it (``res``)."""
    ratio = (offset.var_observed[-1] / offset.var_predicted[-1]) ** 0.5
    return (f"**Theorem 3 needs** covariances that vanish with distance (18). **With a random offset** per field "
            f"the share of deviations larger than ε at |S| = {int(offset.s_sizes[-1])} is {_share(offset.exceed[-1])} "
            f"(without the offset: {_share(res.exceed[-1])}), and the standard deviation of m is {ratio:.1f} times "
            f"the one predicted for vanishing covariance. **This is why**: the offset is shared by all pixels of "
            f"a field, so (18) fails, and averaging over more pixels does not remove it.")


def prop1_trials(n_trials: int = 2000, dim: int = 12, s_size: int = 4, seed: int = 0) -> Table:
    """Proposition 1 on random vectors: how often premise, condition (6) and conclusion hold,
    and that (premise and (6)) never occurs without the conclusion."""
    import numpy as np
    from ssae.theory import proposition1

    rng = np.random.default_rng(seed)
    S = np.zeros(dim, bool)
    S[:s_size] = True
    counts = {"premise and (6)": [0, 0], "premise, not (6)": [0, 0], "no premise": [0, 0]}
    for _ in range(n_trials):
        x, y = rng.random(dim), rng.random(dim)
        x_hat = x.copy()
        x_hat[S] = rng.normal(0.5, 0.6, s_size)
        r = proposition1(x, x_hat, y, S)
        key = "no premise" if not r.premise else "premise and (6)" if r.condition6 else "premise, not (6)"
        counts[key][0] += 1
        counts[key][1] += int(r.conclusion)
    rows = [[k, str(n), str(c), str(n - c)] for k, (n, c) in counts.items()]
    return Table(f"Proposition 1 on {n_trials} random triples (N = {dim}, |S| = {s_size})",
                 ["case", "triples", "conclusion holds", "conclusion fails"], rows,
                 caption="Proposition 1 says the first row has no failures; without condition (6) "
                         "or without the premise the conclusion can fail.")


def orthogonality_inputs(run_dir: str | Path | None, data: str, profile: str = "cpu", device: str = "cpu",
                         seed: int = 0) -> dict:
    """What Figure 9 is computed on: the training images (``images``, N x H x W x C), the
    trained network as a function of a batch (``F``, None without a trained model in
    ``run_dir``) with its curve label (``name``), the patch ``widths`` and the figure ``label``."""
    import numpy as np
    from ssae import data as D
    from ssae.runs import RunDir

    st = theory_settings(profile)
    out = {"F": None, "name": "", "widths": st["orth_widths"]}
    if run_dir and RunDir(run_dir).has_weights():
        from ssae.runs import load_model
        from ssae.scoring import reconstruct

        from .book import training_amount
        model, cfg = load_model(run_dir, device)
        split = D.load_split(data, cfg.data, seed=cfg.train.seed)
        size = cfg.data.image_size
        imgs = split.images(split.train[:st["orth_images"]], size)
        out["F"] = lambda x: reconstruct(model, x.to(device)).cpu()
        out["name"] = (f"trained F ({cfg.profile} profile, "
                       f"{training_amount(run_dir, short=True).removeprefix('trained ')})")
        out["label"] = figure_label(data, size, cfg.profile, device, split.has_masks)
    else:
        size = st["size"]
        imgs = folder_images(data or "embedded:carpet", st["orth_images"], size, seed) if data else \
            texture_images("carpet", st["orth_images"], size, seed)
        out["label"] = figure_label(data or "embedded:carpet", size, profile, device, True) + " · no trained model"
    out["images"] = np.stack(imgs)
    return out


def orthogonality_table(curves, fractions=(0.1, 0.25, 0.5)) -> Table:
    rows = []
    for c in curves:
        for f in fractions:
            a = c.at_fraction(f)
            rows.append([c.label, f"{a['fraction']:.3f}", f"{a['acc_input']:.2f}", f"{a['acc_output']:.2f}",
                         f"{a['dist_mean']:.2f} ± {a['dist_std']:.2f}"])
    return Table("Figure 9 in numbers", ["mapping F", "|S|/N", "argmin ||X^−Y|| = X", "argmin ||F(X^)−Y|| = X",
                                         "||F(X^) − X||"], rows)


def orthogonality_verdict(curves, fractions=(0.1, 0.25)) -> str:
    """Markdown: what Figure 9 shows here against what the paper reports (both accuracies near
    1 below |S|/N = 0.5 for its trained carpet model), generated from the curves."""
    trained = [c for c in curves if c.label.startswith("trained")]
    ident = next((c for c in curves if c.label == "identity"), None)
    if not trained:
        return ("No trained model was given, so the figure shows only the two reference mappings: the "
                "nearest-neighbour projection is orthogonal by construction, and the identity leaves the "
                "corrupted image where it is.")
    c = trained[0]
    parts = ["**The paper** reports for its trained carpet model that, for |S|/N below 0.5, both the "
             "corrupted image and the network's output lie nearest to their source among the training "
             f"images (accuracies near 1) and that the output is close to the source. **Here**, for the "
             f"{c.label}:"]
    for f in fractions:
        a = c.at_fraction(f)
        i = ident.at_fraction(f) if ident else None
        better = a["acc_output"] - a["acc_input"]
        parts.append(f"at |S|/N = {a['fraction']:.2f} the output F(X^) is nearest to its source X in "
                     f"{100 * a['acc_output']:.0f} % of cases, the corrupted input X^ itself in "
                     f"{100 * a['acc_input']:.0f} % ({'+' if better >= 0 else ''}{100 * better:.0f} points"
                     + (f"; the identity: {100 * i['acc_output']:.0f} %" if i else "") + ");")
    last = c.at_fraction(fractions[-1])
    if last["acc_output"] >= max(0.9, last["acc_input"]):
        why = ("so the trained network behaves like the projection that Theorem 1 describes on these "
               "images.")
    elif last["acc_output"] >= last["acc_input"]:
        why = ("so the output keeps its source's identity as well as the input does, but below what an "
               "orthogonal projection gives: a partial projection at this amount of training.")
    else:
        why = ("so the output is *less* often nearest to its source than the corrupted input: the network "
               "does not act as a projection onto the normal images here. A network that has not learned to "
               "restore (a low restoration check) may blur the texture so much that the training images "
               "look alike to the nearest-neighbour test.")
    parts.append(why)
    return " ".join(parts)
