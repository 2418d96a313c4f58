"""Leaving the flat start: objective (1) as written against the whole-image start-up.

Every network here starts by putting out each crop's mean grey level. This benchmark trains
short runs of the ``cpu`` profile with ``train.startup`` = ``literal`` (objective (1) from the first
step, the paper's text) and ``whole`` (the whole-image error until the output leaves the flat
state, then objective (1); ``ssae/objectives.py``) on several data sets and seeds, side by side
(one thread each). Each run makes a fixed number of steps on crops of one size (default 1,500
steps of 64 px crops, the cosine decay over the steps; the network sees the images in tiles of
that size, ``score.tiled``), so that runs side by side do the same work however busy the
machine is. It prints for each run:

- ``left at``: the first logged step at which the running mean of ``objectives.flatness`` (error
  on clean pixels over the crops' pixel variance) fell below ``train.escape_ratio``; "never"
  if it did not within the run;
- ``clean/var``: on the validation images at the evaluation size, the error of the model's
  output on clean images over the images' pixel variance (about 1: a flat output);
- the restoration check of its calibration (pixel AUROC of the maps on validation images
  corrupted as in training; ``calibration.RESTORATION_MIN`` passes) and the restoration gain.

Only validation images are used, never test labels. Example::

    python benchmarks/escape.py --steps 1500 --seeds 0,1,2 --jobs 2 --json benchmarks/results/escape/rows.jsonl

Each run trains into ``runs/escape/NAME/STARTUP-sSEED`` (a finished run is not trained again);
``--json`` appends one row per run as it finishes; run again, the command skips the runs
that have a row and resumes the others from their checkpoints.
"""
from __future__ import annotations

import _checkout  # noqa: F401  (the ssae of this checkout, installed or not)

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
#: NAME=PATH[@SETTINGS]: the data sets of the comparison (MTD with its 64 px settings file)
DEFAULT_DATA = [f"aitex-fabric0{i}={SHARED / f'aitex/fabric0{i}'}" for i in (1, 2, 3)] + [
    f"mtd={SHARED / 'mtd'}@mtd-64px", f"mvtec-bottle={SHARED / 'mvtec_ad/bottle'}"]


def parse_data(spec: str) -> tuple[str, str, str | None]:
    name, sep, rest = spec.partition("=")
    if not sep:
        raise SystemExit(f"--data expects NAME=PATH[@SETTINGS], got {spec!r}")
    path, _, settings = rest.partition("@")
    return name, path, settings or None


def train_one(name: str, path: str, settings: str | None, startup: str, seed: int, steps: int, crop: int,
              out_root: Path) -> Path:
    """Train one run with the ``ssae train`` command line, one thread, into its own folder."""
    from ssae.runs import RunDir

    run = out_root / name / f"{startup}-s{seed}"
    if RunDir(run).is_done():
        return run
    cmd = [sys.executable, "-m", "ssae.cli", "train", "--data", path, "--out", str(run), "--profile", "cpu",
           "--steps", str(steps), "--seed", str(seed)]
    if settings:
        cmd += ["--settings", settings]
    cmd += ["--set", f"train.startup={startup}", "--set", "train.max_minutes=None", "--set", f"train.crop_start={crop}",
            "--set", f"train.crop_end={crop}", "--set", "score.tiled=true"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    run.parent.mkdir(parents=True, exist_ok=True)
    with open(run.parent / f"{run.name}.log", "a") as log:
        subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
    return run


def measure(run: Path, path: str) -> dict:
    """The row of one finished run: its escape, flatness on validation images, restoration check."""
    import numpy as np

    from ssae.data import load_split
    from ssae.runs import RunDir, read_calibration, read_run_config, read_summary

    cfg, meta = read_run_config(run)
    history = RunDir(run).read_history()
    summary = read_summary(run)
    cal, _ = read_calibration(run)
    ratio = cfg.train.escape_ratio
    left = next((h["step"] for h in history if h.get("flat") is not None and h["flat"] < ratio), None)
    handover = next((h["step"] for h in history if h.get("phase") == "objective"), None) \
        if cfg.train.startup == "whole" else None
    split = load_split(path, cfg.data, seed=cfg.train.seed)
    val = split.images(split.val, cfg.data.image_size)
    variance = float(np.mean([a.var(axis=(0, 1)).mean() for a in val]))
    return {"steps": summary["steps"], "seconds": round(summary["seconds"], 1),
            "left_flat_at": left, "handover_at": handover,
            "final_flat_train": history[-1].get("flat") if history else None,
            "clean_error": cal["normal_error"], "texture_variance": variance,
            "clean_over_variance": cal["normal_error"] / variance if variance > 0 else None,
            "restoration_pixel_auroc": cal["restoration_pixel_auroc"],
            "restoration_gain": cal["restoration_gain"], "image_size": cfg.data.image_size,
            "crop_end": cfg.train.crop_end, "lam": cfg.train.lam, "precision": summary.get("precision")}


def table(rows: list[dict]) -> str:
    head = (f"{'data set':<14} {'start-up':<8} {'seed':>4} {'steps':>6} {'left at':>8} {'clean/var':>9} "
            f"{'restoration':>11} {'gain':>6}")
    lines = [head]
    for r in rows:
        left = "never" if r["left_flat_at"] is None else str(r["left_flat_at"])
        lines.append(f"{r['data']:<14} {r['startup']:<8} {r['seed']:>4} {r['steps']:>6} {left:>8} "
                     f"{r['clean_over_variance']:>9.2f} {r['restoration_pixel_auroc']:>11.3f} {r['restoration_gain']:>6.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", action="append", help="NAME=PATH[@SETTINGS] (repeatable); default: AITEX 1-3, MTD, bottle")
    ap.add_argument("--startups", default="literal,whole")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=1500, help="training steps of each run")
    ap.add_argument("--crop", type=int, default=64, help="crop side of every step (and the evaluation tile)")
    ap.add_argument("--jobs", type=int, default=2, help="runs side by side, one thread each")
    ap.add_argument("--out", default=str(ROOT / "runs" / "escape"))
    ap.add_argument("--json", help="append one row per run to this JSONL file")
    args = ap.parse_args(argv)

    from ssae.hardware import hardware

    data = [parse_data(d) for d in (args.data or DEFAULT_DATA)]
    startups = args.startups.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(d, st, s) for s in seeds for d in data for st in startups]
    if args.json and Path(args.json).is_file():  # rows already written: not again (a rerun resumes)
        done = {(r["data"], r["startup"], r["seed"]) for r in map(json.loads, Path(args.json).read_text().splitlines())}
        jobs = [j for j in jobs if (j[0][0], j[1], j[2]) not in done]
    machine = hardware("cpu")
    print(f"{machine}, one thread per run, {args.jobs} runs side by side, {args.steps} steps of {args.crop} px crops each; "
          f"command: python benchmarks/{Path(__file__).name} {' '.join(argv if argv is not None else sys.argv[1:])}",
          flush=True)
    rows: list[dict] = []

    def work(job):
        (name, path, settings), startup, seed = job
        run = train_one(name, path, settings, startup, seed, args.steps, args.crop, Path(args.out))
        row = {"data": name, "startup": startup, "seed": seed, "settings": settings, **measure(run, path),
               "crop": args.crop, "hardware": machine, "date": time.strftime("%Y-%m-%d")}
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")
        print(table([row]).splitlines()[1], flush=True)
        return row

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(work, jobs))
    print()
    print(table(sorted(rows, key=lambda r: (r["data"], r["startup"], r["seed"]))))
    for st in startups:
        mine = [r for r in rows if r["startup"] == st]
        left = sum(r["left_flat_at"] is not None for r in mine)
        passed = sum(r["restoration_pixel_auroc"] >= 0.75 for r in mine)
        print(f"start-up {st}: left the flat state in {left} of {len(mine)} runs; restoration check passed in "
              f"{passed} of {len(mine)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
