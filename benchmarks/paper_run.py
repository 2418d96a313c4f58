"""Train, evaluate and keep the results of one data set: a stage of ``scripts/gpu_paper_run.sh``.

    python benchmarks/paper_run.py --name mtd --data .gpu_data/mtd [--profile paper] [--device cuda]
        [--minutes 2.5] [--steps N|auto] [--benchmark book/gpu_results/benchmark/gpu.json]
        [--image-size N] [--set SECTION.FIELD=VALUE ...] [--runs runs/gpu] [--results book/gpu_results]

1. ``ssae train`` (in this process, through ``ssae.cli.main``) into ``<runs>/<name>``; a run folder
   that holds a checkpoint is resumed, so rerunning the same command continues the training
   up to the new ``--minutes`` (the budget counts the training time of all earlier runs).
2. ``ssae evaluate`` on the test split of the same data.
3. ``<results>/<name>.json``: the metrics exactly as ``ssae evaluate --json`` writes them, plus
   ``gpu_run``: hardware, date, training and evaluation time, the exact commands, git commit,
   torch version, the compact data set's record (``COMPACT.json``) and the training summary.
4. ``<results>/<name>.figures.npz``: what the book's figures need: the loss history, every test
   image's score, label and defect, and a few examples (image, anomaly map, ground truth)
   reduced to at most 128 pixels a side.

``--steps auto`` chooses the number of optimiser steps so that the progressive crop schedule
ends inside the time budget, from the training throughput ``benchmarks/gpu.py`` measured
(``--benchmark``); ``--minutes`` stays the hard limit.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ssae import cli  # noqa: E402
from ssae import scoring  # noqa: E402

EXAMPLE_SIDE = 128
FALLBACK_STEPS = 3000


def git_commit() -> str | None:
    """HEAD of this checkout (and whether it has changes); on a copy without .git (the GPU
    machine), ``$SSAE_GIT_COMMIT``, which ``scripts/gpu_paper_run.sh`` reads from ``.gpu_data/COMMIT``."""
    if os.environ.get("SSAE_GIT_COMMIT"):
        return os.environ["SSAE_GIT_COMMIT"]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def auto_steps(benchmark: Path | None, cfg, minutes: float, image_size: int | None) -> tuple[int, str]:
    """Steps whose expected duration fills ``minutes`` (85%), from the measured throughput.

    Time per step at crop side s is taken as max(floor, t512 * (s / 512)^2), t512 the measured
    seconds per step of the ``ssae`` pipeline at 512 px and the floor 15% of it (small crops do
    not fill a GPU); the crop grows linearly over ``crop_growth`` of the steps, then stays."""
    if benchmark is None or not Path(benchmark).is_file():
        return FALLBACK_STEPS, f"fixed {FALLBACK_STEPS} (no benchmark results)"
    res = json.loads(Path(benchmark).read_text())
    runs = res.get("training", {})
    tr = runs.get("ssae") or next(iter(runs.values()), None)
    if not tr or tr.get("size") is None:
        return FALLBACK_STEPS, f"fixed {FALLBACK_STEPS} (no training throughput in {benchmark})"
    t_ref = tr["ms_per_step"] / 1000 * (cfg.train.batch_size / tr["batch"])
    ref = tr["size"]
    t = cfg.train
    end = min(t.crop_end, image_size or t.crop_end)
    start = min(t.crop_start, end)

    def per_step(side):
        return max(0.15 * t_ref, t_ref * (side / ref) ** 2)

    grid = np.linspace(start, end, 33)
    growing = float(np.mean([per_step(s) for s in grid]))
    mean = t.crop_growth * growing + (1 - t.crop_growth) * per_step(end)
    steps = max(10, int(0.85 * minutes * 60 / mean))
    return steps, (f"auto: {steps} steps from {tr['images_per_s']:.0f} images/s at {ref} px "
                   f"({tr.get('pipeline', '?')} pipeline, {benchmark})")


def figure_data(run_dir: Path, data: str, device: str, history: list) -> dict:
    """Arrays for the book's figures (see the module docstring)."""
    from ssae import evaluation as E

    split, items, images, maps, cal = E.anomaly_maps(run_dir, data, device, progress=False)
    reduce = cal.get("reduce", "sum")
    scores = np.array([float(scoring.image_score(torch.from_numpy(np.asarray(m))[None, None], reduce))
                       for m in maps])
    labels = np.array([it.label for it in items], dtype=np.int8)
    defects = np.array([it.defect for it in items])
    good = np.flatnonzero(labels == 0)
    bad = np.flatnonzero(labels == 1)
    order_bad = bad[np.argsort(-scores[bad])] if bad.size else bad
    order_good = good[np.argsort(-scores[good])] if good.size else good
    chosen: list[int] = []
    chosen += order_bad[:3].tolist()                     # the most anomalous defective images
    chosen += order_bad[-1:].tolist() if bad.size > 3 else []   # the least anomalous one
    chosen += order_good[:1].tolist()                    # the most anomalous good image
    chosen += order_good[len(order_good) // 2:len(order_good) // 2 + 1].tolist()  # a typical one
    chosen = list(dict.fromkeys(chosen))
    truth = E.ground_truth(split, [items[i] for i in chosen], [maps[i] for i in chosen])

    out = {
        "scores": scores.astype(np.float32), "labels": labels, "defects": defects,
        "paths": np.array([_relative(it.path, data) for it in items]),
        "reduce": np.array(reduce), "threshold": np.array(float(cal.get("threshold", np.nan))),
        "example_index": np.array(chosen, dtype=np.int64),
        "history_step": np.array([h["step"] for h in history], dtype=np.int64),
        "history_loss": np.array([h["loss"] for h in history], dtype=np.float32),
        "history_crop": np.array([h.get("crop", 0) for h in history], dtype=np.int64),
        "history_seconds": np.array([h.get("seconds", np.nan) for h in history], dtype=np.float32),
    }
    # examples one key each (sizes may differ between images of native size): image uint8
    # H x W x C, anomaly map float16 H x W, ground truth bool H x W (when the data has masks)
    for j, i in enumerate(chosen):
        img = torch.from_numpy(np.ascontiguousarray(images[i].transpose(2, 0, 1)))[None]
        m = torch.from_numpy(np.asarray(maps[i], dtype=np.float32)).reshape(1, 1, *np.shape(maps[i])[-2:])
        h, w = m.shape[-2:]
        scale = min(1.0, EXAMPLE_SIDE / max(h, w))
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        small = F.interpolate(img, size=size, mode="area")[0].permute(1, 2, 0).numpy()
        out[f"example_image_{j}"] = np.clip(np.rint(small * 255), 0, 255).astype(np.uint8)
        out[f"example_map_{j}"] = F.interpolate(m, size=size, mode="area")[0, 0].numpy().astype(np.float16)
        if truth is not None:
            t = torch.from_numpy(truth[j].astype(np.float32))[None, None]
            out[f"example_mask_{j}"] = F.interpolate(t, size=size, mode="nearest")[0, 0].numpy() > 0.5
    return out


def _relative(path, data: str) -> str:
    path, root = Path(path), Path(data)
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True, help="results name, e.g. mtd, bottle, embedded_carpet")
    p.add_argument("--data", required=True, help="data folder or embedded:<category>")
    p.add_argument("--profile", default="paper")
    p.add_argument("--device", default="cuda")
    p.add_argument("--minutes", type=float, required=True, help="training budget (all runs of this folder together)")
    p.add_argument("--steps", default="auto", help="optimiser steps, or 'auto' (from --benchmark)")
    p.add_argument("--benchmark", help="benchmarks/gpu.py JSON for --steps auto")
    p.add_argument("--image-size", help="override the profile's image size (pixels or 'native')")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    p.add_argument("--runs", default="runs/gpu", help="parent of the run folders (kept for resuming)")
    p.add_argument("--results", default="book/gpu_results", help="where the JSON and figure data go")
    args = p.parse_args(argv)

    run_dir = Path(args.runs) / args.name
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    cfg = cli.build_config(argparse.Namespace(
        profile=args.profile, objective=None, seed=None, steps=None, minutes=None,
        image_size=args.image_size, corruption=None, set=args.set))
    image_size = cfg.data.image_size
    if args.steps == "auto":
        steps, steps_note = auto_steps(Path(args.benchmark) if args.benchmark else None, cfg, args.minutes, image_size)
    else:
        steps, steps_note = int(args.steps), "given"

    train_argv = ["train", "--data", args.data, "--out", str(run_dir), "--profile", args.profile,
                  "--device", args.device, "--minutes", f"{args.minutes:g}", "--steps", str(steps)]
    if args.image_size:
        train_argv += ["--image-size", args.image_size]
    for item in args.set:
        train_argv += ["--set", item]
    eval_json = run_dir / "metrics.json"
    eval_argv = ["evaluate", str(run_dir), "--data", args.data, "--device", args.device, "--json", str(eval_json)]
    train_cmd = "python3 -m ssae.cli " + shlex.join(train_argv)
    eval_cmd = "python3 -m ssae.cli " + shlex.join(eval_argv)
    label = {"name": args.name, "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
             "train_command": train_cmd, "evaluate_command": eval_cmd, "steps_choice": steps_note,
             "stage_command": "python3 benchmarks/paper_run.py " + shlex.join(list(sys.argv[1:] if argv is None else argv)),
             "git_commit": git_commit(), "torch": torch.__version__,
             "cuda": torch.version.cuda, "device": args.device}
    compact = Path(args.data) / "COMPACT.json"
    if compact.is_file():
        label["data_copy"] = json.loads(compact.read_text())
    print(f"[{args.name}] {train_cmd}  ({steps_note})", flush=True)

    t0 = time.time()
    rc = cli.main(train_argv)
    label["train_wall_seconds"] = round(time.time() - t0, 1)
    if rc != 0:
        label["error"] = f"training exited with status {rc}"
        _write(results / f"{args.name}.failed.json", {"gpu_run": label})
        return rc
    print(f"[{args.name}] {eval_cmd}", flush=True)
    t1 = time.time()
    rc = cli.main(eval_argv)
    label["evaluate_wall_seconds"] = round(time.time() - t1, 1)
    if rc != 0:
        label["error"] = f"evaluation exited with status {rc}"
        _write(results / f"{args.name}.failed.json", {"gpu_run": label})
        return rc

    from ssae.hardware import hardware
    from ssae.runs import RunDir, read_summary

    metrics = json.loads(eval_json.read_text())
    label["train_summary"] = read_summary(run_dir) or None
    label["hardware"] = hardware(args.device)
    label["date"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    history = RunDir(run_dir).read_history()
    t2 = time.time()
    figs = figure_data(run_dir, args.data, args.device, history)
    label["figures_wall_seconds"] = round(time.time() - t2, 1)
    metrics["gpu_run"] = label
    _write(results / f"{args.name}.json", metrics)
    tmp = results / f"{args.name}.figures.tmp.npz"
    np.savez_compressed(tmp, **figs)
    os.replace(tmp, results / f"{args.name}.figures.npz")
    (results / f"{args.name}.failed.json").unlink(missing_ok=True)
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    print(f"[{args.name}] image AUROC {fmt(metrics.get('image_auroc'))}, pixel AUROC "
          f"{fmt(metrics.get('pixel_auroc'))}, AUPRO {fmt(metrics.get('aupro'))}; "
          f"wrote {results / (args.name + '.json')}", flush=True)
    return 0


def _write(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
