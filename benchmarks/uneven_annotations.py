"""What is annotated as a defect, and what do the maps see of it? A check of region annotations.

    python benchmarks/uneven_annotations.py --data ../shared/data/mtd --size 64 [--run RUN ...]
        [--defect Uneven] [--ring 2] [--figure PNG]

Part 1 describes every defect type's masks at their native resolution: the share of the tile
they cover, their connected regions, how many touch the top or bottom border and the left or
right border, and how many span at least 90 % of the tile's width or height.

Part 2 splits the masks of one defect type (MTD's uneven grinding by default) into

* the **step**: the pixels within ``--ring`` pixels (at ``--size``) of the mask's inner
  boundary, on both sides of it. The image border is not a boundary. Where a region annotation
  marks a band of differently ground surface, this is the line where the surface changes;
* the **interior**: the mask without the step.

For each map (the untrained local cues of ``untrained_maps.py``, two cues that look across
the whole tile: the deviation of a row's mean brightness and its change from row to row, and
the calibrated maps of each ``--run``), it prints the median over that type's images of three within-image AUROCs: the
annotated region against the rest of its tile, the step against the rest, and the interior
against the unmasked pixels away from the step. It also prints the pooled AUROC of the step's
and of the interior's pixels against all pixels of the good test tiles.

A map that finds the step but not the interior sees where the surface changes, not the
surface that was annotated.
"""
from __future__ import annotations

import _checkout  # noqa: F401  (the ssae of this checkout, installed or not)

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ssae import data as D
from ssae import metrics as M
from ssae.config import DataConfig
from ssae.errors import SsaeError
from untrained_maps import MAPS


def _per_row(values: np.ndarray, shape) -> np.ndarray:
    return np.broadcast_to(values[:, None], shape).copy()


# cues that look across the whole tile rather than a neighbourhood: a band of other grinding
# that spans the tile's width changes its rows' mean, and its edge is a step in that mean
CONTEXT_MAPS = {
    "|row mean - median row mean|": lambda x: _per_row(np.abs(x.mean(1) - np.median(x.mean(1))), x.shape),
    "|d/dy row mean (box 5)|": lambda x: _per_row(np.abs(np.gradient(ndi.uniform_filter1d(x.mean(1), 5))), x.shape),
}


def mask_geometry(mask: np.ndarray) -> dict[str, float]:
    """Share of the image, number of connected regions, whether the mask touches the top or
    bottom rows / the left or right columns, and its widest extent across a row / down a column
    as a fraction of the image's width / height."""
    rows, cols = mask.any(axis=1), mask.any(axis=0)
    return {"share": float(mask.mean()),
            "regions": int(ndi.label(mask)[1]),
            "touches_top_bottom": bool(mask[0].any() or mask[-1].any()),
            "touches_left_right": bool(mask[:, 0].any() or mask[:, -1].any()),
            "width_span": float(mask.sum(axis=1).max() / mask.shape[1]) if rows.any() else 0.0,
            "height_span": float(mask.sum(axis=0).max() / mask.shape[0]) if cols.any() else 0.0}


def step_and_interior(mask: np.ndarray, ring: int) -> tuple[np.ndarray, np.ndarray]:
    """The step (pixels within ``ring`` px of the mask's inner boundary, both sides; the image
    border does not count as a boundary) and the interior (the mask without the step)."""
    if ring < 1:
        raise ValueError(f"--ring must be at least 1 pixel, got {ring}")
    step = ndi.binary_dilation(mask, iterations=ring) & ndi.binary_dilation(~mask, iterations=ring)
    return step, mask & ~step


def region_aurocs(mask: np.ndarray, step: np.ndarray, interior: np.ndarray,
                  amap: np.ndarray) -> dict[str, float | None]:
    """Within-image AUROCs of one annotated image (``step`` and ``interior`` from
    :func:`step_and_interior`): the annotated region, the step and the interior (against the
    unmasked pixels away from the step); None where a class is empty."""
    outside = ~mask & ~step
    keep = interior | outside
    return {"annotated": M.pixel_auroc([mask], [amap]),
            "step": M.pixel_auroc([step], [amap]),
            "interior": M.pixel_auroc([interior[keep][None]], [amap[keep][None]])}


def pooled_against_good(regions: list[np.ndarray], maps: list[np.ndarray], neg: np.ndarray) -> float | None:
    """AUROC of the ``regions``' pixels (of their ``maps``) against ``neg``, every pixel of the
    good tiles' maps (flat)."""
    pos = np.concatenate([m[r] for r, m in zip(regions, maps)])
    labels = np.concatenate([np.ones(pos.size, bool), np.zeros(neg.size, bool)])
    return M.pixel_auroc([labels[None]], [np.concatenate([pos, neg])[None]])


def _median(values) -> float:
    vals = [v for v in values if v is not None]
    return float(np.median(vals)) if vals else float("nan")


def native_mask(path) -> np.ndarray:
    """A mask file at its own size (boolean, the library's threshold)."""
    return D.read_mask(path, D.native_size(path))


def geometry_table(items) -> None:
    by_type: dict[str, list[dict]] = {}
    for it in items:
        if it.label == 1 and it.mask_path is not None:
            by_type.setdefault(it.defect, []).append(mask_geometry(native_mask(it.mask_path)))
    print(f"{'defect':10} {'masks':>5} {'median share':>12} {'median regions':>14} {'top/bottom':>10} "
          f"{'left/right':>10} {'width >= 90%':>12} {'height >= 90%':>13}")
    for defect, gs in sorted(by_type.items()):
        frac = lambda key, cond: sum(cond(g[key]) for g in gs) / len(gs)  # noqa: E731
        print(f"{defect:10} {len(gs):5d} {np.median([g['share'] for g in gs]):12.3f} "
              f"{np.median([g['regions'] for g in gs]):14.1f} {frac('touches_top_bottom', bool):10.0%} "
              f"{frac('touches_left_right', bool):10.0%} {frac('width_span', lambda v: v >= 0.9):12.0%} "
              f"{frac('height_span', lambda v: v >= 0.9):13.0%}")


def run_maps(run_dir: str, data: str, size: int, items) -> tuple[str, list[np.ndarray]]:
    """A run's calibrated maps of the test ``items``, resized to ``size`` px, and its label."""
    from ssae.evaluation import anomaly_maps, at_metric_size
    from ssae.training import SUMMARY, read_json

    _, run_items, _, maps, cal = anomaly_maps(run_dir, data, progress=False)
    if [it.path for it in run_items] != [it.path for it in items]:
        raise SsaeError(f"run {run_dir} evaluates other test images of {data} than the full test split "
                        f"({len(run_items)} against {len(items)}; data.max_test set?)")
    steps = read_json(Path(run_dir) / SUMMARY).get("steps")
    label = f"run {Path(run_dir).name} ({cal['diff']}, {steps} steps)"
    return label, at_metric_size(maps, size)


def figure(path, items, steps, named_maps, title: str, n: int = 4) -> None:
    """``n`` evenly spaced tiles of ``items``: the tile at its native size and aspect with its
    annotation, then each named map (at the analysis size) with the step (of ``steps``) marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ssae.plots import save_figure

    picks = np.linspace(0, len(items) - 1, n).round().astype(int)
    cols = 1 + len(named_maps)
    fig, axes = plt.subplots(n, cols, figsize=(2.4 * cols + 1.2, 2.0 * n), squeeze=False,
                             gridspec_kw={"width_ratios": [1.5] + [1] * len(named_maps)})
    for row, i in zip(axes, picks):
        tile = D.read_image(items[i].path, None, 1)[..., 0]
        native = native_mask(items[i].mask_path)
        step = steps[i]
        row[0].imshow(tile, cmap="gray", vmin=0, vmax=1)
        row[0].contour(native, levels=[0.5], colors="red", linewidths=0.8)
        row[0].set_title(f"{items[i].path.name}, native size\nannotation (red)", fontsize=7)
        for ax, (name, maps) in zip(row[1:], named_maps):
            ax.imshow(maps[i], cmap="inferno")
            ax.contour(step, levels=[0.5], colors="cyan", linewidths=0.5)
            ax.set_title(f"{name[:38]}\nstep (cyan)", fontsize=7)
        for ax in row:
            ax.axis("off")
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    print(f"wrote {save_figure(fig, path)}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="MVTec AD or MTD folder with pixel masks")
    p.add_argument("--size", type=int, default=64, help="image size of the maps and masks in part 2")
    p.add_argument("--defect", default="Uneven", help="defect type whose annotation is split")
    p.add_argument("--ring", type=int, default=2, help="half-width of the step in pixels at --size")
    p.add_argument("--run", action="append", default=[], help="run directory whose maps to add (repeatable)")
    p.add_argument("--figure", help="also write a PNG of a few annotated tiles and maps")
    args = p.parse_args()
    try:
        return report(args)
    except SsaeError as e:
        print(f"uneven_annotations: {e}", file=sys.stderr)
        return 1


def report(args) -> int:
    split = D.load_split(args.data, DataConfig(image_size=args.size))
    if not split.has_masks:
        raise SsaeError(f"{args.data} has no pixel masks")
    items = split.test
    print(f"{split.name}: annotation geometry at native resolution ({len(items)} test images)")
    geometry_table(items)

    sel = [i for i, it in enumerate(items) if it.defect == args.defect]
    good = [i for i, it in enumerate(items) if it.label == 0]
    if not sel:
        raise SsaeError(f"no test images of defect type {args.defect!r}; types: "
                f"{sorted({it.defect for it in items if it.label == 1})}")
    images = [a.mean(axis=2) for a in D.load_images([it.path for it in items], args.size, split.channels, progress=False)]
    masks = [D.read_mask(items[i].mask_path, images[i].shape) for i in sel]
    steps = [step_and_interior(m, args.ring) for m in masks]
    inside = sum(int((s & m).sum()) for (s, _), m in zip(steps, masks)) / max(sum(int(m.sum()) for m in masks), 1)
    print(f"\n{args.defect}: {len(sel)} images at {args.size} px; step = {args.ring} px either side of the "
          f"mask's inner boundary (its inner half: {inside:.0%} of the annotated pixels)")

    named = [(name, [f(a) for a in images]) for name, f in {**MAPS, **CONTEXT_MAPS}.items()]
    named += [run_maps(r, args.data, args.size, items) for r in args.run]
    print(f"{'map':52} {'within: annotated':>17} {'step':>6} {'interior':>8} | "
          f"{'vs good: step':>13} {'interior':>8}")
    for name, maps in named:
        within = [region_aurocs(m, s, t, maps[i]) for m, (s, t), i in zip(masks, steps, sel)]
        neg = np.concatenate([maps[g].ravel() for g in good])
        print(f"{name[:52]:52} {_median(w['annotated'] for w in within):17.3f} "
              f"{_median(w['step'] for w in within):6.3f} {_median(w['interior'] for w in within):8.3f} | "
              f"{pooled_against_good([s for s, _ in steps], [maps[i] for i in sel], neg):13.3f} "
              f"{pooled_against_good([t for _, t in steps], [maps[i] for i in sel], neg):8.3f}",
              flush=True)
    if args.figure:
        from ssae.evaluation import hardware
        shown = [named[0]] + named[len(MAPS) + len(CONTEXT_MAPS):] if args.run else named[:2]
        figure(args.figure, [items[i] for i in sel], [s for s, _ in steps], shown,
               f"{split.name}, {args.defect} test tiles; maps at {args.size} px (runs: profile cpu); {hardware('cpu')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
