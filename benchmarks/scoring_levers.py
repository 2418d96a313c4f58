"""Scoring levers on a trained run: how Diff, G_k^n, the avgmap weighting (or standardised
maps) and the reduction move the test metrics, with the network fixed (one reconstruction per
test image). The ``|std|`` rows score the standardised maps two-sided, by the absolute value,
so that a region where the model errs *less* than usual (a defect smoother than the normal
texture) counts as well (``score.two_sided``; findings section 14).

This is an *analysis* of levers, not model selection: it reports test metrics for every
variant, so the best row is an oracle choice. ``ssae evaluate`` chooses n, k and the reduction
on validation data only (``ssae.evaluation.calibrate``); its choice is marked with ``*``.

    python benchmarks/scoring_levers.py runs/bench/mtd-ssae --data ../shared/data/mtd
"""
from __future__ import annotations

import _checkout  # noqa: F401  (the ssae of this checkout, installed or not)

import argparse
import sys

from ssae import data as D
from ssae import metrics as M
from ssae.evaluation import (ValidationMaps, defect_types, diff_maps, finish_maps, ground_truth, image_scores,
                             load_run, per_type_pixel_auroc)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--data", required=True)
    p.add_argument("--nk", default="0,1;1,9;2,17;3,17;2,33", help="n,k pairs separated by ';'")
    p.add_argument("--t", default="0,1,2", help="avgmap exponents of eq. (14)")
    p.add_argument("--per-type", action="store_true", help="also the pixel AUROC per defect type (as in ssae evaluate)")
    args = p.parse_args()
    model, cfg, split, cal, _ = load_run(args.run_dir, args.data)
    items = split.test
    images = D.load_images([it.path for it in items], cfg.data.image_size, split.channels, progress=False)
    val = D.load_images(split.val, cfg.data.image_size, split.channels, progress=False)
    labels = [it.label for it in items]
    nks = [tuple(int(v) for v in pair.split(",")) for pair in args.nk.split(";")]
    ts = [int(v) for v in args.t.split(",")]
    print(f"run {args.run_dir} on {split.name} ({len(items)} test images, image size "
          f"{cfg.data.image_size or 'native'}); calibrated choice: "
          f"{ {k: cal.get(k) for k in ('diff', 'n', 'k', 't', 'standardize', 'two_sided', 'reduce', 'restoration_pixel_auroc')} }")
    print(f"{'diff':5} {'n':>2} {'k':>3} {'weighting':>9} {'img sum':>8} {'img max':>8} {'contrast':>8} {'pixel':>7} {'AUPRO':>7}")
    masks = ground_truth(split, items, [a[..., 0] for a in images])  # maps have the images' H x W
    types = defect_types(items)
    # eq. (14) with each exponent t, and (ours) maps standardised by the validation maps,
    # one-sided (the library's) and two-sided (|std|)
    weightings = [(t, False) for t in ts] + [(0, True), (0, "two-sided")]
    for kind in ("l2", "ssim"):
        raw = diff_maps(model, images, kind, "cpu")
        raw_val = diff_maps(model, val, kind, "cpu")
        for n, k in nks:
            vm = finish_maps(raw_val, n, k, None, 0)
            stats = ValidationMaps.of(vm) if len({m.shape for m in vm}) == 1 else None
            for t, z in weightings:
                if (t or z) and stats is None:
                    continue
                maps = finish_maps(raw, n, k, stats, t, standardize=bool(z), two_sided=z == "two-sided")
                scores = image_scores(maps)
                img = {r: M.image_auroc(labels, scores[r]) for r in ("sum", "max", "contrast")}
                pix = M.pixel_auroc(masks, maps) if masks is not None else None
                pro = M.aupro(masks, maps) if masks is not None else None
                chosen = (cal["diff"], cal["n"], cal["k"], cal["t"],
                          "two-sided" if cal["two_sided"] else cal["standardize"])
                mark = "*" if (kind, n, k, t, z) == chosen else " "
                f = lambda v: "   n/a" if v is None else f"{v:.3f}"  # noqa: E731
                label = {True: "std", "two-sided": "|std|"}.get(z, f"t={t}")
                per_type = ("  " + " ".join(f"{d}={v:.3f}" for d, v in per_type_pixel_auroc(types, masks, maps).items())
                         if args.per_type and masks is not None else "")
                print(f"{kind:5} {n:2d} {k:3d} {label:>9} {f(img['sum']):>8} {f(img['max']):>8} {f(img['contrast']):>8} "
                      f"{f(pix):>7} {f(pro):>7} {mark}{per_type}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
