"""The cpu-profile benchmark: the method against two references, side by side.

For each data set it trains and evaluates, each in its own process (so peak memory is its own):

- ``ssae``:  the paper's method (corrupted inputs, objective (1)) with the ``cpu`` profile;
- ``plain``: the same network trained as a plain autoencoder (no corruption);
- ``blur``:  no network: the "reconstruction" is a Gaussian-blurred copy of the input,
             Diff = (x - blur(x))^2, scored with the same calibration procedure.

and prints image AUROC, pixel AUROC, AUPRO, training images/s, inference images/s, peak
memory and the restoration check ("restore": pixel AUROC of the maps on validation images
corrupted as in training; below 0.75 the model does not yet restore its own corruptions).
Example (targets of ours: MTD image >= 0.75, pixel >= 0.80; bottle image >= 0.95)::

    python benchmarks/cpu.py --minutes 20
    python benchmarks/cpu.py --data mtd=../shared/data/mtd --methods ssae --minutes 5 \\
        --set data.image_size=None --tag native

Extra settings (levers) apply to every method: ``--settings FILE`` (or a name shipped in
``ssae/settings``, as for ``ssae train``), then ``--set SECTION.FIELD=VALUE``. The plain
autoencoder keeps no corruption over a settings file (not over a ``--set``)::

    python benchmarks/cpu.py --data mtd=../shared/data/mtd --settings mtd-64px --tag px64
"""
from __future__ import annotations

import _checkout  # noqa: F401  (the ssae of this checkout, installed or not)

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = [f"mtd={ROOT.parent / 'shared/data/mtd'}", f"bottle={ROOT.parent / 'shared/data/mvtec_ad/bottle'}"]


def given_settings(args) -> list[str]:
    """The levers of this benchmark as given: settings files (``file:NAME``), then ``--set`` items."""
    return [f"file:{f}" for f in args.settings or []] + (args.set or [])


def child(args) -> dict:
    """Train (unless blur) and evaluate one method on one data set in this process."""
    import torch

    from ssae.cli import build_config
    from ssae.data import load_split
    from ssae.calibration import calibrate_model
    from ssae.evaluation import evaluate, evaluate_model
    from ssae.references import BlurReference
    from ssae.pipeline import train

    torch.set_num_threads(args.threads)
    name, _, spec = args.child.partition("=")
    sets = list(args.set or [])
    if args.minutes is None and args.steps:  # a step count alone: no time budget
        sets.insert(0, "train.max_minutes=None")
    ns = argparse.Namespace(profile=args.profile, objective=None, seed=args.seed, steps=args.steps,
                            minutes=args.minutes, image_size=None, corruption=None, set=sets,
                            settings=args.settings)
    if args.method == "plain":
        ns.corruption = "none"
    cfg = build_config(ns)
    split = load_split(spec, cfg.data, seed=cfg.train.seed)
    run_dir = Path(args.out) / f"{name}-{args.method}{('-' + args.tag) if args.tag else ''}"
    start = time.time()
    if args.method == "blur":
        cfg.model.in_channels = split.channels
        model = BlurReference(sigma=args.blur_sigma)
        cal, stats = calibrate_model(model, cfg, split, "cpu")
        res = evaluate_model(model, cfg, split, cal, stats, "cpu", data_spec=spec, progress=False)
        res.update(train_seconds=0.0, train_images_per_s=None, train_steps=0)
    else:
        train(cfg, split, run_dir, "cpu", data_spec=spec, progress=False)
        res = evaluate(run_dir, spec, "cpu", progress=False)
    res.update(method=args.method, name=name, tag=args.tag, wall_seconds=time.time() - start,
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               settings=given_settings(args), threads=args.threads)
    return res


def fmt(v, spec=".3f"):
    return "  n/a" if v is None else format(v, spec)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", action="append", help="NAME=PATH (default: MTD and bottle from ../shared/data)")
    p.add_argument("--methods", nargs="+", default=["ssae", "plain", "blur"])
    p.add_argument("--profile", default="cpu")
    p.add_argument("--minutes", type=float,
                   help="training budget per run (default: 20; none when --steps is given alone)")
    p.add_argument("--steps", type=int, help="optimiser steps per run (with --minutes: whichever ends first)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", help="config override for every method, SECTION.FIELD=VALUE")
    p.add_argument("--settings", action="append",
                   help="a settings file or shipped name (as `ssae train --settings`), before --set")
    p.add_argument("--tag", default="", help="suffix of the run folders")
    p.add_argument("--out", default=str(ROOT / "runs" / "bench"))
    p.add_argument("--json", help="append results to this JSON-lines file")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--blur-sigma", type=float, default=4.0)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--method", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.minutes is None and not args.steps:
        args.minutes = 20.0
    if args.child:
        print("RESULT " + json.dumps(child(args)), flush=True)
        return 0

    results, failed = [], []
    for item in args.data or DEFAULT_DATA:
        for method in args.methods:
            cmd = [sys.executable, __file__, "--child", item, "--method", method, "--profile", args.profile,
                   "--seed", str(args.seed), "--out", args.out,
                   "--tag", args.tag, "--threads", str(args.threads), "--blur-sigma", str(args.blur_sigma)]
            if args.minutes is not None:
                cmd += ["--minutes", str(args.minutes)]
            if args.steps:
                cmd += ["--steps", str(args.steps)]
            for s in args.settings or []:
                cmd += ["--settings", s]
            for s in args.set or []:
                cmd += ["--set", s]
            print(f"[{time.strftime('%H:%M:%S')}] {item.split('=')[0]} / {method} ...", flush=True)
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not line:
                print(f"  failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:] }", flush=True)
                failed.append(f"{item.split('=')[0]}/{method}")
                continue
            res = json.loads(line[-1][7:])
            results.append(res)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(res) + "\n")
            print(f"  image AUROC {fmt(res['image_auroc'])}  pixel AUROC {fmt(res['pixel_auroc'])}  "
                  f"AUPRO {fmt(res['aupro'])}  score {res['score']}", flush=True)

    print()
    budget = f"{args.minutes} min/run" if args.minutes is not None else "no time limit"
    print(f"profile {args.profile}, budget {budget}{f', {args.steps} steps' if args.steps else ''}, {results[0]['hardware'] if results else ''}")
    print(f"settings: {given_settings(args) or 'profile defaults'}")
    head = f"{'data':8} {'method':6} {'img AUROC':>9} {'pix AUROC':>9} {'AUPRO':>7} {'train img/s':>11} " \
           f"{'infer img/s':>11} {'peak MB':>8} {'steps':>6} {'size':>7} {'restore':>7}"
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r['name']:8} {r['method']:6} {fmt(r['image_auroc']):>9} {fmt(r['pixel_auroc']):>9} "
              f"{fmt(r['aupro']):>7} {fmt(r.get('train_images_per_s'), '.1f'):>11} "
              f"{fmt(r['inference_images_per_s'], '.1f'):>11} {r['peak_rss_mb']:8.0f} "
              f"{r.get('train_steps') or 0:6d} {str(r['image_size']):>7} "
              f"{fmt(r.get('restoration_pixel_auroc')):>7}")
    if failed:  # a missing row must not pass for a finished benchmark
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
