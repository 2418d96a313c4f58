"""bf16 against float32 on this CPU: training speed side by side, and quality at equal steps.

Part 1 (speed): the ``cpu``-profile network (Table 1 at width 1/4), batches of 16 grey crops,
one training step (forward, objective (1), backward, Adam) timed alternately in float32 and
under bf16 autocast, in one process, at each crop side; prints the median ms per step, the
steps/s and their ratio. On a CPU without native bf16 (see :mod:`ssae.precision`) the bf16 rows
run emulated and say so.

Part 2 (quality, ``--quality``): for each of ``--seeds``, a float32 and a bf16 model of the
same seed and data stream trained for ``--steps`` steps on fixed ``--crop`` px crops; each
evaluated (restoration check, test image AUROC, pixel AUROC, AUPRO) in float32, as the mean
over ``--draws`` calibrations on draws of the validation proxy (so that the chance of one
calibration, which moves the image AUROC most, does not decide the comparison). bf16 costs
nothing measurable when the mean paired difference is within the noise of a draw (the float32
models' spread over the seeds; :func:`paired`). Example::

    python benchmarks/precision.py                     # speed only, a minute
    python benchmarks/precision.py --quality --data ../shared/data/aitex/fabric01 --json out.json
"""
from __future__ import annotations

import _checkout  # noqa: F401  (the ssae of this checkout, installed or not)

import argparse
import datetime as _dt
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def speed(sides, batch: int, repeats: int) -> list[dict]:
    import torch

    from ssae.config import profile
    from ssae.objectives import loss
    from ssae.precision import cpu_has_bf16
    from ssae.runs import build_model

    cfg = profile("cpu")
    cfg.model.in_channels = 1
    rows = []
    for side in sides:
        torch.manual_seed(0)
        models = {p: build_model(cfg).to(memory_format=torch.channels_last) for p in ("fp32", "bf16")}
        opts = {p: torch.optim.Adam(m.parameters(), lr=1e-3) for p, m in models.items()}
        x = torch.rand(batch, 1, side, side).contiguous(memory_format=torch.channels_last)
        mask = (torch.rand(batch, 1, side, side) > 0.8).float()
        times: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for i in range(repeats + 2):  # two warm-up rounds, not counted
            for p in ("fp32", "bf16"):
                t0 = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=p == "bf16"):
                    out = models[p](x)
                value = loss(cfg.train, out.float(), x, x, mask)
                opts[p].zero_grad(set_to_none=True)
                value.backward()
                opts[p].step()
                if i >= 2:
                    times[p].append(time.perf_counter() - t0)
        ms = {p: 1000 * statistics.median(v) for p, v in times.items()}
        rows.append({"crop": side, "batch": batch, "fp32_ms": ms["fp32"], "bf16_ms": ms["bf16"],
                     "fp32_steps_per_s": 1000 / ms["fp32"], "bf16_steps_per_s": 1000 / ms["bf16"],
                     "speedup": ms["fp32"] / ms["bf16"], "native_bf16": cpu_has_bf16()})
    return rows


def quality(data: str, steps: int, seeds=(0, 1, 2), crop: int = 64, draws: int = 8,
            out: Path = ROOT / "runs" / "precision") -> list[dict]:
    """For each seed, a float32 and a bf16 model of the same seed and data stream, trained for
    ``steps`` steps on ``crop`` px crops (fixed, so that every step costs the same) and
    evaluated in float32: each metric is the mean over ``draws`` calibrations
    (:func:`ssae.evaluation.calibration_draws`, seeds 1 to ``draws``; ``<metric>_recorded`` is
    the run's own calibration). The runs are written to ``out``."""
    from ssae.cli import build_config
    from ssae.data import load_split
    from ssae.evaluation import calibration_draws, evaluate
    from ssae.runs import load_model
    from ssae.pipeline import train

    rows = []
    out = Path(out)
    for seed in seeds:
        for prec in ("fp32", "bf16"):
            ns = argparse.Namespace(profile="cpu", objective=None, seed=seed, steps=steps, minutes=None,
                                    image_size=None, corruption=None, settings=None,
                                    set=["train.max_minutes=None", f"train.crop_start={crop}",
                                         f"train.crop_end={crop}"])
            cfg = build_config(ns)
            cfg.train.amp = prec == "bf16"
            split = load_split(data, cfg.data, seed=seed)
            run = out / f"{Path(data).name}-{prec}-seed{seed}-{steps}-crop{crop}"
            t0 = time.time()
            res = train(cfg, split, run, progress=False)
            os.environ["SSAE_PRECISION"] = "fp32"  # every model is evaluated the same way
            try:
                m = evaluate(run, data, progress=False)
                model, _ = load_model(run, "cpu")
                calibrated = calibration_draws(model, cfg, split, range(1, draws + 1)) if draws else [m]
            finally:
                os.environ.pop("SSAE_PRECISION", None)
            rows.append({"model": prec, "seed": seed, "precision": res["precision"], "steps": res["steps"],
                         "crop": crop, "train_seconds": res["seconds"], "wall_seconds": time.time() - t0,
                         "draws": len(calibrated) if draws else 0,
                         **{k: statistics.fmean(r[k] for r in calibrated) for k in QUALITY},
                         **{f"{k}_recorded": m[k] for k in QUALITY}})
    return rows


#: the metrics of the quality check
QUALITY = ("restoration_pixel_auroc", "image_auroc", "pixel_auroc", "aupro")


def paired(rows: list[dict]) -> dict:
    """Per metric: the mean and spread of bf16 - fp32 over the seeds (paired by seed), and the
    spread of the float32 models over the seeds (the noise of a draw). bf16 costs nothing
    measurable on a metric when the mean paired difference is at most that spread (or 0.01):
    on average a bf16 model differs from its float32 twin less than float32 draws differ."""
    import numpy as np

    by = {(r["seed"], r["model"]): r for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    out = {}
    for k in QUALITY:
        d = np.array([by[s, "bf16"][k] - by[s, "fp32"][k] for s in seeds])
        fp = np.array([by[s, "fp32"][k] for s in seeds])
        noise = float(fp.std(ddof=1)) if len(seeds) > 1 else 0.0
        out[k] = {"mean_diff": float(d.mean()), "sd_diff": float(d.std(ddof=1)) if len(seeds) > 1 else 0.0,
                  "seed_sd": noise, "within": bool(abs(d.mean()) <= max(noise, 0.01))}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sides", default="64,128", help="crop sides, comma-separated")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=10, help="timed steps per precision and side")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quality", action="store_true", help="also train and evaluate the paired models")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "aitex" / "fabric01"))
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seeds", default="0,1,2", help="seeds of the paired models, comma-separated")
    p.add_argument("--crop", type=int, default=64, help="crop side of the quality models (fixed)")
    p.add_argument("--draws", type=int, default=8,
                   help="calibrations each quality model's metrics are averaged over (0: its own only)")
    p.add_argument("--out", default=str(ROOT / "runs" / "precision"), help="folder of the quality runs")
    p.add_argument("--json", help="write the rows to this file")
    args = p.parse_args(argv)

    import torch

    from ssae.hardware import hardware

    torch.set_num_threads(args.threads)
    print(f"{hardware('cpu')}, {args.threads} thread(s)")
    rows = speed([int(s) for s in args.sides.split(",")], args.batch, args.repeats)
    print("crop  batch  fp32 ms/step  bf16 ms/step  fp32 steps/s  bf16 steps/s  bf16/fp32 speed")
    for r in rows:
        print(f"{r['crop']:4d}  {r['batch']:5d}  {r['fp32_ms']:12.1f}  {r['bf16_ms']:12.1f}  "
              f"{r['fp32_steps_per_s']:12.2f}  {r['bf16_steps_per_s']:12.2f}  {r['speedup']:14.2f}"
              + ("" if r["native_bf16"] else "  (bf16 emulated: no native bf16 on this CPU)"))
    doc = {"hardware": hardware("cpu"), "threads": args.threads,
           "date": _dt.datetime.now().isoformat(timespec="seconds"), "speed": rows}
    if args.quality:
        seeds = tuple(int(v) for v in args.seeds.split(","))
        q = quality(args.data, args.steps, seeds, args.crop, args.draws, Path(args.out))
        print(f"\nquality at {args.steps} steps on {args.crop} px crops of {args.data} (evaluated in float32"
              + (f", mean over {args.draws} calibrations):" if args.draws else "):"))
        print("model  seed  steps  train s  restoration  image AUROC  pixel AUROC  AUPRO")
        for r in q:
            print(f"{r['model']:5s}  {r['seed']:4d}  {r['steps']:5d}  {r['train_seconds']:7.0f}"
                  f"  {r['restoration_pixel_auroc']:11.3f}  {r['image_auroc']:11.3f}  {r['pixel_auroc']:11.3f}"
                  f"  {r['aupro']:.3f}")
        summary = paired(q)
        print("metric                   bf16 - fp32 (mean ± sd over seeds)  fp32 seed-to-seed sd  within noise")
        for k, v in summary.items():
            print(f"{k:24s} {v['mean_diff']:+.3f} ± {v['sd_diff']:.3f}{'':20s} {v['seed_sd']:.3f}"
                  f"{'':16s} {'yes' if v['within'] else 'no'}")
        within = all(v["within"] for v in summary.values())
        print("bf16 is within the noise of a draw on every metric" if within else
              "bf16 differs from fp32 by more than the noise of a draw on some metric")
        doc.update({"data": args.data, "quality": q, "paired": summary, "within_noise": within})
    if args.json:
        from ssae.runs import write_json
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_json(Path(args.json), doc)  # under a temporary name, then renamed
    return 0


if __name__ == "__main__":
    sys.exit(main())
