"""Recompute the thresholds of packed models in place, on held-out validation maps.

    python scripts/rethreshold.py [MODEL_DIR ...]    # default: every model in models/

Only ``threshold``, ``image_threshold`` and how they were obtained (``threshold_method``,
``image_threshold_method``, ``threshold_quantile``) change in each ``calibration.json``
(:func:`ssae.calibration.rethreshold`); the weights, the chosen scoring, ``avgmap.npy`` and
``stdmap.npy`` stay as they are, and so do the anomaly maps and every recorded test metric.
Each model's validation images are read from its data set (``../shared/data``); the network
computes in float32, as ``ssae predict`` does by default.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's ssae


def main(argv=None) -> int:
    import torch

    from ssae.calibration import rethreshold
    from ssae.data import load_split
    from ssae.errors import SsaeError
    from ssae_book import models as R
    from ssae.runs import read_run_config

    torch.set_num_threads(1)
    argv = sys.argv[1:] if argv is None else argv
    folders = [Path(a) for a in argv] or [d for ref in R.find() for d in ref.models.values()]
    try:
        for folder in folders:
            cfg, meta = read_run_config(folder)
            data = (R.REPO / meta["data"]).resolve()
            if not data.is_dir():
                raise SsaeError(f"data set {meta['data']} of {folder} is not on this machine")
            cal = rethreshold(folder, load_split(str(data), cfg.data, seed=cfg.train.seed))
            print(f"{folder}: pixel threshold {cal['threshold']:.4g}, image threshold {cal['image_threshold']:.4g} "
                  f"({cal['threshold_method']}; {cal['image_threshold_method']})", flush=True)
    except SsaeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
