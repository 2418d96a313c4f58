"""Scoring speed: images per second for a packed model, three ways side by side on this CPU.

1. ``library``: :meth:`ssae.Detector.score` on images in memory (maps, scores, verdicts, masks),
   with its default engine (``auto``: the ``onnxruntime`` engine, the export's graph in a
   session the detector builds, where onnxruntime is installed; the row says which) and with
   the ``torch`` engine (the library's own modules);
2. ``ssae predict`` (default engine): the command line on a folder of PNG files, overlays and ``scores.csv``
   written; the rate is taken between a run on one image and a run on all of them, so the
   start-up of the process (importing torch, loading the model) is left out and shown apart;
3. ``onnxruntime``: the graph of ``ssae export`` (network, eq. 2 and 3, calibration) in an
   ``InferenceSession``, batches of the library's size (maps only: no score or mask).

Each way runs on the same images with the same number of threads (``--threads``, default 1),
in float32 (the default precision of inference). The last column is each rate against the
fastest; the goal is the library, as a user gets it (the default engine), within 10 % of it.

    python benchmarks/inference.py                                   # models/aitex-fabric01/ssae
    python benchmarks/inference.py --model models/mtd/ssae --images 64 --threads 2

The images are the model's test images when its data set is on this machine, else random
images of the model's size (the time does not depend on what the images show).
"""
from __future__ import annotations

import _checkout  # noqa: F401  (the ssae of this checkout, installed or not)

import argparse
import datetime as _dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from throughput import timed  # median seconds of a call, after warm-up calls

ROOT = Path(__file__).resolve().parents[1]


def images_for(det, n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` random H x W x C images at the detector's size (256 px when it has none)."""
    side = det.image_size or 256
    rng = np.random.default_rng(seed)
    return [rng.random((side, side, det.channels), dtype=np.float32) for _ in range(n)]


def library_rate(det, images: list[np.ndarray], repeat: int) -> float:
    names = [f"image {i}" for i in range(len(images))]
    return len(images) / timed(lambda: det.score_arrays(names, images), repeat)


def onnx_rate(model: Path, images: list[np.ndarray], threads: int, repeat: int, batch: int = 8) -> float:
    import onnxruntime as ort

    from ssae.export import INPUT, export

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export(model, path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        x = np.stack([a.transpose(2, 0, 1) for a in images]).astype(np.float32)

        def run():
            for s in range(0, len(x), batch):
                sess.run(None, {INPUT: x[s:s + batch]})
        return len(images) / timed(run, repeat)


def predict_seconds(model: Path, folder: Path, out: Path, threads: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ssae.cli", "predict", "--model", str(model), str(folder),
                    "--out", str(out), "--overwrite"], check=True, env=env, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def predict_rate(model: Path, images: list[np.ndarray], threads: int, repeat: int) -> tuple[float, float]:
    """Images per second of ``ssae predict`` between one image and all, and its start-up (s)."""
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        one, many = Path(tmp) / "one", Path(tmp) / "many"
        one.mkdir(), many.mkdir()
        for i, a in enumerate(images):
            img = Image.fromarray(np.clip(a * 255, 0, 255).astype(np.uint8).squeeze(2) if a.shape[2] == 1
                                  else np.clip(a * 255, 0, 255).astype(np.uint8))
            img.save(many / f"{i:04d}.png")
            if i == 0:
                img.save(one / "0000.png")
        t1 = min(predict_seconds(model, one, Path(tmp) / "out1", threads) for _ in range(repeat))
        tn = min(predict_seconds(model, many, Path(tmp) / "outn", threads) for _ in range(repeat))
    return (len(images) - 1) / max(tn - t1, 1e-9), t1


#: the library's rows: the default engine and the torch engine
LIBRARY = ("library (Detector.score)", "library, torch engine")


def main(argv=None) -> int:
    from ssae import Detector
    from ssae.errors import SsaeError
    from ssae.hardware import hardware

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "models" / "aitex-fabric01" / "ssae"))
    p.add_argument("--images", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", help="write the figures here as well")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        det = Detector.load(args.model)
    except SsaeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    images = images_for(det, args.images)
    print(f"{hardware('cpu')}, {args.threads} thread(s), {_dt.date.today()}; "
          f"model {args.model} ({det.image_size} px, {det.channels} channel(s)), {len(images)} random images, "
          f"float32; command: python {' '.join(sys.argv)}", flush=True)
    rates = {"library (Detector.score)": library_rate(det, images, args.repeat),
             "library, torch engine": library_rate(Detector.load(args.model, engine="torch"), images, args.repeat)}
    print(f"the library's default engine here: {det.engine}")
    try:
        rates["onnxruntime (ssae export)"] = onnx_rate(Path(args.model), images, args.threads, args.repeat)
    except ImportError:
        print("onnxruntime is not installed (pip install 'ssae[export]'): its row is left out")
    rate, startup = predict_rate(Path(args.model), images, args.threads, max(1, args.repeat - 1))
    rates["ssae predict (files, overlays)"] = rate
    fastest = max(rates.values())
    print(f"{'way':32} {'images/s':>9} {'ms/image':>9} {'of fastest':>10}")
    for name, r in rates.items():
        print(f"{name:32} {r:9.2f} {1000 / r:9.1f} {100 * r / fastest:9.0f}%")
    print(f"ssae predict's start-up (one image, process start to exit): {startup:.1f} s")
    shares = ", ".join(f"{name} {100 * rates[name] / fastest:.0f} %" for name in LIBRARY)
    lib = rates[LIBRARY[0]]
    print(f"goal: library (default engine, {det.engine}) within 10 % of the fastest: "
          f"{'met' if lib >= 0.9 * fastest else 'MISSED'} ({shares})")
    if args.json:
        from ssae.runs import write_json
        write_json(Path(args.json), {"command": "python " + " ".join(sys.argv), "hardware": hardware("cpu"),
                                     "date": _dt.datetime.now().isoformat(timespec="seconds"),
                                     "torch": torch.__version__, "threads": args.threads,
                                     "model": args.model, "images": len(images), "library_engine": det.engine,
                                     "images_per_s": rates, "predict_startup_s": startup})
    return 0


if __name__ == "__main__":
    sys.exit(main())
