"""Learning curve: does more training time move the restoration check and the test metrics?

Trains one run in segments, resuming from its checkpoint, and evaluates after each: the run
stops at each wall-clock budget in ``--minutes`` (training time only, evaluation is not
counted), is calibrated on validation data as usual, then evaluated on the test split. One
row per budget: steps, training seconds, restoration check (pixel AUROC of the maps on
validation images corrupted as in training), image AUROC (with the reduction chosen on
validation data, and with the sum and the max), pixel AUROC, AUPRO. Example::

    python benchmarks/learning_curve.py --data mtd=../shared/data/mtd --minutes 10,20,40,75 \\
        --threads 1 --steps 8000 --set train.crop_growth=0.25

``--steps`` caps the run. The crop and learning-rate schedules follow the training's progress,
the larger of steps / ``--steps`` and minutes / the *current* budget, so each segment re-reads
its budget: with budgets that at most double, the crop stays at its full size after the first
segment. The learning rate is held constant here (``train.lr_schedule=constant`` is set before
any ``--set``), because a decay would restart with every segment. The third session's curve
(book, findings section 8) ran before these schedules followed the time budget: its crop grew
over the first 2000 of 8000 steps (``--set train.crop_growth=0.25``).
"""
from __future__ import annotations

import _checkout  # noqa: F401  (the ssae of this checkout, installed or not)

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fmt(v, spec=".3f"):
    return "  n/a" if v is None else format(v, spec)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="NAME=PATH or PATH")
    p.add_argument("--minutes", required=True, help="comma-separated training budgets, increasing")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--steps", type=int, help="total steps of the crop schedule")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", help="config override, SECTION.FIELD=VALUE")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "runs" / "curve"))
    p.add_argument("--json", help="append one JSON line per budget to this file")
    args = p.parse_args(argv)

    import torch

    from ssae.cli import build_config
    from ssae.data import load_split
    from ssae.errors import SsaeError
    from ssae.evaluation import evaluate
    from ssae.training import train

    torch.set_num_threads(args.threads)
    name, sep, spec = args.data.partition("=")
    if not sep:
        name, spec = Path(args.data).name, args.data
    try:
        budgets = [float(m) for m in args.minutes.split(",")]
    except ValueError:
        print(f"learning_curve: --minutes must be numbers separated by commas, got {args.minutes!r}",
              file=sys.stderr)
        return 2
    if budgets != sorted(budgets):
        print(f"learning_curve: --minutes must increase, got {args.minutes!r}", file=sys.stderr)
        return 2
    run_dir = Path(args.out) / name
    rows = []
    try:
        sets = ["train.lr_schedule=constant", *(args.set or [])]  # a decay would restart per segment
        ns = argparse.Namespace(profile=args.profile, objective=None, seed=args.seed, steps=args.steps,
                                minutes=None, image_size=None, corruption=None, set=sets)
        cfg = build_config(ns)
        split = load_split(spec, cfg.data, seed=cfg.train.seed)
        for minutes in budgets:
            cfg.train.max_minutes = minutes  # the budget is the only setting that changes between segments
            tr = train(cfg, split, run_dir, "cpu", data_spec=spec, progress=False)
            start = time.time()
            res = evaluate(run_dir, spec, "cpu", progress=False)
            row = {"name": name, "minutes": minutes, "steps": tr["steps"], "train_seconds": tr["seconds"],
                   "eval_seconds": time.time() - start, "settings": args.set or [], "threads": args.threads,
                   **{k: res.get(k) for k in ("image_auroc", "image_auroc_sum", "image_auroc_max", "pixel_auroc",
                                              "aupro", "restoration_pixel_auroc", "image_size", "profile",
                                              "hardware", "score", "per_defect", "per_defect_pixel")}}
            rows.append(row)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(row) + "\n")
            print(f"[{time.strftime('%H:%M:%S')}] {minutes:g} min: {tr['steps']} steps, restore "
                  f"{fmt(row['restoration_pixel_auroc'])}, image {fmt(row['image_auroc'])}, pixel "
                  f"{fmt(row['pixel_auroc'])}, AUPRO {fmt(row['aupro'])}", flush=True)
    except SsaeError as e:
        print(f"learning_curve: {e}", file=sys.stderr)
        return 1

    print()
    print(f"{name}, profile {args.profile}, settings {args.set or 'profile defaults'}, "
          f"{rows[0]['hardware'] if rows else ''}, {args.threads} thread(s)")
    head = (f"{'minutes':>7} {'steps':>6} {'train s':>8} {'restore':>7} {'img AUROC':>9} {'(sum)':>6} {'(max)':>6} "
            f"{'pix AUROC':>9} {'AUPRO':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['minutes']:7g} {r['steps']:6d} {r['train_seconds']:8.0f} {fmt(r['restoration_pixel_auroc']):>7} "
              f"{fmt(r['image_auroc']):>9} {fmt(r['image_auroc_sum']):>6} {fmt(r['image_auroc_max']):>6} "
              f"{fmt(r['pixel_auroc']):>9} {fmt(r['aupro']):>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
