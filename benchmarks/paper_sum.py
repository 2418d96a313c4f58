"""Add the image AUROC with the paper's image score to the kept reference models' records.

The kept models' calibrations chose their own image score (standardised maps, the max or the
contrast); the paper scores an image by the sum of eq. (3)'s map. For every model folder in
``models/`` whose data set is on this machine, this script computes the image AUROC with the
paper's score (:func:`ssae.evaluation.paper_sum`: eq. (2)'s Diff, G_k^n at the n and k the model's
calibration chose, summed over the pixels; no avgmap weighting, no standardisation) and adds it
to ``metrics.json`` as ``image_auroc_paper_sum`` with the scoring under ``paper_sum_score``;
for the blur reference (``blur.json``) likewise, at the n and k of its own calibration.

It only adds these two keys: every other key of the files, the weights and ``calibration.json``
stay as they are. ``ssae pack`` records the same keys for models packed from now on.

    python benchmarks/paper_sum.py [--models models] [--only mtd] [--threads 1]
"""
from __future__ import annotations

import _checkout  # noqa: F401  (the ssae of this checkout, installed or not)

import argparse
import json
import sys
from pathlib import Path

import torch


def main(argv=None) -> int:
    from ssae.data import load_split
    from ssae.references import BlurReference
    from ssae.evaluation import PAPER_SUM, PAPER_SUM_SCORE, paper_sum
    from ssae.release import BLUR, METRICS
    from ssae.runs import load_model, read_calibration, read_run_config, write_json

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=str(Path(__file__).resolve().parents[1] / "models"))
    p.add_argument("--only", action="append", default=[], help="a data set folder of --models (repeatable)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    root = Path(args.models)
    repo = root.resolve().parent
    status = 0
    for folder in sorted(d for d in root.iterdir() if d.is_dir()):
        if args.only and folder.name not in args.only:
            continue
        for model_dir in sorted(d for d in folder.iterdir() if (d / METRICS).is_file()):
            cfg, meta = read_run_config(model_dir)
            data = repo / meta.get("data", "")
            if not meta.get("data") or not data.is_dir():
                print(f"{model_dir}: data {meta.get('data')!r} not on this machine, skipped", file=sys.stderr)
                status = 1
                continue
            split = load_split(str(data), cfg.data, seed=cfg.train.seed)
            cal, _ = read_calibration(model_dir)
            model, _ = load_model(model_dir, "cpu")
            targets = [(model_dir / METRICS, model, cal["n"], cal["k"])]
            blur_file = model_dir / BLUR
            if blur_file.is_file():
                score = json.loads(blur_file.read_text())["score"]
                targets.append((blur_file, BlurReference(4.0).eval(), score["n"], score["k"]))
            for path, net, n, k in targets:
                added = paper_sum(net, cfg, split, n, k)
                doc = json.loads(path.read_text())
                doc[PAPER_SUM], doc[PAPER_SUM_SCORE] = added[PAPER_SUM], added[PAPER_SUM_SCORE]
                write_json(path, doc)
                print(f"{path}: image AUROC {doc.get('image_auroc'):.3f} calibrated ({doc['score']['reduce']}), "
                      f"{added[PAPER_SUM]:.3f} with the paper's sum (n={n}, k={k})", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
