"""Anomaly maps for your own images as files: overlays, binary masks and a CSV of image scores
(``ssae predict``), a thin shell over :class:`ssae.detector.Detector`.

The maps are computed as in evaluation (eq. 3, or eq. 14 / standardised with the run's
calibration) at the run's image size and resized to each input's own size.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from . import data as D
from .detector import Detector, image_paths
from .errors import SsaeError
from .runs import write_json


def predict(run_dir, paths, out_dir, device: str = "cpu", progress: bool = True, precision: str = "fp32",
            overwrite: bool = False, engine: str = "auto") -> Path:
    """Heatmap overlay PNG and binary mask PNG per image, and ``scores.csv`` in ``out_dir``.

    ``run_dir`` is a run folder, a packed model folder or a reference model's name, and
    ``paths`` images or folders of images (:class:`ssae.detector.Detector`, which computes the
    maps at the model's image size and resizes them to each input's own size; a non-square
    input is thus stretched to the model's square size, :func:`stretch_note` says so). Outputs
    are named after the input (``<stem>_overlay.png``, ``<stem>_mask.png``); inputs that share
    a stem get their folder's name in front (``<folder>_<stem>``), and a number if that is not
    enough. ``scores.csv`` has one row per image: the image score (the calibrated reduction),
    whether it exceeds the image threshold, and the names of both PNGs; ``predict.json``
    beside it the model, the precision of the forward pass (``precision``, float32 by default)
    and the thresholds. An ``out_dir`` that holds a ``scores.csv`` already is refused unless
    ``overwrite``. ``engine``: what computes the maps (:data:`ssae.detector.ENGINES`; ``predict.json``
    records the one that did)."""
    import matplotlib

    out_dir = Path(out_dir)
    check_out(out_dir, overwrite)
    det = Detector.load(run_dir, device, precision, engine)
    paths = image_paths(paths)
    if not paths:
        raise SsaeError("no images given to predict")
    names, originals = det.read(paths)
    results = det.score_arrays(names, originals, progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    cmap = matplotlib.colormaps["jet"]
    scale = max(det.threshold * 2, 1e-12)
    rows = []
    for p, name, img, res in zip(paths, output_names(paths), originals, results):
        rgb = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img
        heat = cmap(np.clip(res.anomaly_map / scale, 0, 1))[..., :3]
        overlay = (0.5 * rgb + 0.5 * heat).clip(0, 1)
        _save_png(out_dir / f"{name}_overlay.png", (overlay * 255).astype(np.uint8))
        _save_png(out_dir / f"{name}_mask.png", (res.mask * 255).astype(np.uint8))
        rows.append({"image": str(p), "score": res.score, "anomalous": res.anomalous,
                     "overlay": f"{name}_overlay.png", "mask": f"{name}_mask.png"})
    tmp = out_dir / "scores.csv.tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image", "score", "anomalous", "overlay", "mask"])
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, out_dir / "scores.csv")
    write_json(out_dir / "predict.json", {"model": str(det.folder), "precision": precision, "engine": det.engine,
                                          "images": len(rows),
                                          **{k: det.calibration.get(k) for k in
                                             ("threshold", "image_threshold", "reduce", "threshold_method")}})
    return out_dir


def check_out(out_dir, overwrite: bool = False) -> None:
    """Refuse (one line) to write predictions over earlier ones (``scores.csv`` in ``out_dir``)
    unless ``overwrite``, and an ``out_dir`` that is a file."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise SsaeError(f"--out {out_dir} is a file; name a folder for the predictions")
    if (out_dir / "scores.csv").exists() and not overwrite:
        raise SsaeError(f"{out_dir / 'scores.csv'} exists: earlier predictions are not overwritten; "
                        f"name another --out folder or pass --overwrite")


def stretch_note(paths, size: int | None) -> str | None:
    """A one-line note when :func:`predict` stretches inputs: images that are not square, read
    at a square ``size`` (the run's ``data.image_size``; None keeps each image's size), else None."""
    if size is None:
        return None
    paths = [Path(p) for p in paths]
    shapes = {p: D.native_size(p) for p in paths}
    odd = [p for p in paths if shapes[p][0] != shapes[p][1]]
    if not odd:
        return None
    h, w = shapes[odd[0]]
    return (f"note: {len(odd)} of {len(paths)} images are not square (e.g. {odd[0]}, {w} x {h}): the model reads "
            f"them stretched to {size} x {size}, its training size, and their maps are resized back; crop them "
            f"square for undistorted maps")


def output_names(paths: list[Path]) -> list[str]:
    """A distinct output name per input path: its stem, ``<folder>_<stem>`` where stems repeat
    (``test/good/000.png`` and ``test/crack/000.png``), and ``_2``, ``_3`` ... beyond that."""
    stems = [p.stem for p in paths]
    names = [f"{p.parent.name}_{p.stem}" if stems.count(p.stem) > 1 else p.stem for p in paths]
    out, seen = [], {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def _save_png(path: Path, arr: np.ndarray) -> None:
    from PIL import Image
    tmp = path.with_name(path.stem + ".tmp.png")
    Image.fromarray(arr).save(tmp)
    os.replace(tmp, path)
