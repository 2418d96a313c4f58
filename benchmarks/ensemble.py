"""The pixel-wise maximum ensemble (Table 4) of several trained runs, on the same pixels.

Each run's calibrated anomaly maps (the scoring its own validation data chose) are resized to
``--size`` x ``--size`` and combined by the pixel-wise maximum; the script prints every member
and the ensemble, scored on the same pixels, so that runs trained at different image sizes
can be compared and combined. The findings chapter (section 17) combines a whole-tile model at
64 px with a 256 px one on MTD:

    python benchmarks/ensemble.py RUN_64 RUN_256 --data ../shared/data/mtd --size 256

Combine standardised maps (z-scores, ``standardized`` in the output) only: raw Diffs of two
models are on different scales.
"""
from __future__ import annotations

import _checkout  # noqa: F401  (the ssae of this checkout, installed or not)

import argparse
import json
import sys

import torch


def main(argv=None) -> int:
    from ssae.errors import SsaeError
    from ssae.evaluation import evaluate_ensemble, hardware

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--data", required=True)
    p.add_argument("--size", type=int, default=256, help="side of the maps the metrics are computed on")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="append the result as one JSON line to this file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        res = evaluate_ensemble(args.run_dirs, args.data, args.size, progress=False)
    except SsaeError as e:
        print(f"ensemble: {e}", file=sys.stderr)
        return 1
    f = lambda v: "   n/a" if v is None else f"{v:6.3f}"  # noqa: E731
    print(f"{res['dataset']}: {res['n_test_images']} test images, metrics at {res['metric_size']} px, "
          f"{hardware('cpu')}")
    print(f"{'maps':48} {'size':>6} {'std':>4} {'reduce':>6} {'image':>6} {'pixel':>6} {'AUPRO':>6}")
    for m in res["members"]:
        print(f"{m['run_dir'][-48:]:48} {str(m['image_size']):>6} {'yes' if m['standardized'] else 'no':>4} "
              f"{m['reduce']:>6} {f(m['image_auroc'])} {f(m.get('pixel_auroc'))} {f(m.get('aupro'))}")
    print(f"{'ensemble (pixel-wise max)':48} {'':>6} {'':>4} {res['reduce']:>6} {f(res['image_auroc'])} "
          f"{f(res.get('pixel_auroc'))} {f(res.get('aupro'))}")
    if res.get("per_defect_pixel"):
        print("pixel AUROC per defect type: " + ", ".join(
            f"{d} {v:.3f}" for d, v in res["per_defect_pixel"].items()))
    if not all(m["standardized"] for m in res["members"]):
        print("warning: some members' maps are not standardised; their maximum mixes scales")
    if args.json:
        with open(args.json, "a") as fh:
            fh.write(json.dumps(res) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
