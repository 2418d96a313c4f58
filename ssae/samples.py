"""A packed model's stored samples: a few test images with the model's outputs, for figures
drawn where the data set is not.

``MODEL/samples/`` holds, for each chosen test image of the split the model was evaluated on:

- ``NN_image.<png|jpg>``: the image as the model sees it (resized to ``data.image_size``),
  8-bit; PNG when the whole set fits in :data:`BUDGET` bytes, else JPEG at the first quality
  of :data:`CHOICES` that fits (the maps below are computed from the full-precision image);
- ``NN_mask.png``: its ground-truth mask at the map's size (black where it has none);
- ``NN_reconstruction.<png|jpg>``: F(X), the network's output (Sec. 3.1), 8-bit;
- ``NN_map.png``: the calibrated anomaly map (eq. (3), weighted by eq. (14) or standardised as
  the calibration chose), quantised to 8 bits linearly over ``map_range`` of ``samples.json``:
  from the smallest value of the stored maps to :data:`MAP_SPAN` times its distance to the pixel
  threshold (larger values are stored as that upper end), so that the levels near the
  threshold, which the binary masks and overlays show, stay fine; where the set would not fit
  in :data:`BUDGET` otherwise, at every second or fourth pixel (``map_step``; read back
  bilinearly at the full size);

and ``samples.json``: per image its name, label, defect type, why it was chosen, the image score
with the calibrated scoring (``score``) and with the paper's sum of eq. (3)'s map at the same n
and k, unstandardised (``score_paper_sum``); the pixel and image thresholds of the calibration;
and under ``test_scores`` the labels, defect types and both scores of every test image, from
which ranks and ROC curves can be drawn.

The images are chosen by :func:`choose`: for each defect type its highest and its lowest scored
image (the best and the worst case), and the highest and the lowest scored good image (the
worst false alarm and the calmest image). Ties go to the earlier image of the split, so the
choice is deterministic. The weights, config and recorded metrics of the model are not touched.
"""
from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import SsaeError

SAMPLES = "samples"
INDEX = "samples.json"
FORMAT = 1
#: the most bytes a model's samples take (ours: 40 MB of models/ shared by about ten models)
BUDGET = 300_000
#: (map_step, quality) tried in turn until the set fits in BUDGET: maps stored at every
#: ``map_step``-th pixel (box-averaged; G_k^n has smoothed them over k pixels already), images and
#: reconstructions as PNG (quality None) or JPEG of that quality
CHOICES = ((1, None), (1, 92), (1, 85), (1, 75), (2, 85), (2, 75), (2, 65), (2, 50), (4, 50))
#: the stored maps cover MAP_SPAN times the distance from their minimum to the pixel threshold
MAP_SPAN = 4.0


@dataclass
class Sample:
    """One stored test image: ``image`` and ``reconstruction`` H x W x C float32 in [0, 1],
    ``mask`` H x W bool, ``anomaly_map`` H x W float32 (dequantised), and its metadata."""
    name: str
    label: int
    defect: str
    chosen: list[str]
    score: float
    score_paper_sum: float
    image: np.ndarray
    mask: np.ndarray
    reconstruction: np.ndarray
    anomaly_map: np.ndarray


def choose(labels: list[int], defects: list[str], scores: list[float]) -> dict[int, list[str]]:
    """Indices of the test images to store, each with why it was chosen: per defect type the
    highest scored ("best") and the lowest scored ("worst") image, and among good images the
    highest scored ("worst", a false alarm) and the lowest ("best"). Ties: the earlier index."""
    picks: dict[int, list[str]] = {}
    for defect in sorted(set(defects)):
        idx = [i for i in range(len(labels)) if defects[i] == defect]
        hi = min(idx, key=lambda i: (-scores[i], i))
        lo = min(idx, key=lambda i: (scores[i], i))
        good = all(labels[i] == 0 for i in idx)
        picks.setdefault(hi, []).append(f"{defect}: {'worst' if good else 'best'}")
        picks.setdefault(lo, []).append(f"{defect}: {'best' if good else 'worst'}")
    return dict(sorted(picks.items()))


def _to8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(a, np.float32) * 255), 0, 255).astype(np.uint8)


def _encode(a: np.ndarray, quality: int | None) -> bytes:
    """An H x W x C array in [0, 1] (or an H x W uint8 plane) as PNG (``quality`` None) or JPEG."""
    from PIL import Image

    if a.dtype != np.uint8:
        a = _to8(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    buf = io.BytesIO()
    if quality is None:
        Image.fromarray(a).save(buf, "PNG", optimize=True)
    else:
        Image.fromarray(a).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _resize(a: np.ndarray, step: int, shape: tuple[int, int] | None = None) -> np.ndarray:
    """An H x W float map box-averaged to every ``step``-th pixel, or (``shape`` given) resized
    back to ``shape`` bilinearly; ``step`` 1 and no ``shape`` leave it."""
    from PIL import Image

    if shape is None and step == 1:
        return a
    h, w = a.shape
    size = (shape[1], shape[0]) if shape is not None else (max(1, w // step), max(1, h // step))
    method = Image.BILINEAR if shape is not None else Image.BOX
    return np.asarray(Image.fromarray(np.asarray(a, np.float32), mode="F").resize(size, method), np.float32)


def _decode(path: Path, channels: int | None) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            a = np.asarray(im)
    except OSError as e:
        raise SsaeError(f"cannot read stored sample {path}: {e}") from None
    if channels is None:
        return a
    a = a.astype(np.float32) / 255
    return a[..., None] if a.ndim == 2 else a[..., :channels]


def write_samples(model_dir, model, cfg, split, device: str = "cpu", precision: str | None = None) -> dict:
    """Compute and write ``model_dir/samples/`` (see the module docstring) for ``model`` on the
    test split ``split``, with the calibration in ``model_dir``; replaces an earlier set only
    once the new one is complete. Returns the index (``samples.json``)."""
    import torch

    from . import data as D
    from . import scoring as S
    from .precision import INFERENCE
    from .runs import read_calibration, write_json

    precision = precision or INFERENCE
    model_dir = Path(model_dir)
    cal, stats = read_calibration(model_dir)
    items = split.test
    if not items:
        raise SsaeError(f"the test split of {split.name} is empty: no samples to store for {model_dir}")
    images = D.load_images([it.path for it in items], cfg.data.image_size, split.channels, progress=False)
    raw = S.diff_maps(model, images, cal["diff"], device, precision=precision)
    maps = S.calibrated_maps(raw, cal, stats)
    scores = S.image_scores(maps)[cal["reduce"]]
    l2 = raw if cal["diff"] == "l2" else S.diff_maps(model, images, "l2", device, precision=precision)
    paper = S.image_scores(S.finish_maps(l2, int(cal["n"]), int(cal["k"]), None, 0))["sum"]
    labels, defects = [int(it.label) for it in items], [it.defect for it in items]
    picks = choose(labels, defects, scores)
    chosen = list(picks)
    lo = float(min(maps[i].min() for i in chosen))
    hi = float(max(maps[i].max() for i in chosen))
    if cal["threshold"] > lo:  # keep the levels near the threshold, where the figures look
        hi = min(hi, lo + MAP_SPAN * (float(cal["threshold"]) - lo))
    span = hi - lo if hi > lo else 1.0
    planes = {}
    for i in chosen:
        x = torch.from_numpy(images[i].transpose(2, 0, 1).copy())[None].to(device)
        recon = S.reconstruct(model, x, precision=precision)[0].cpu().numpy().transpose(1, 2, 0)
        truth = (D.read_mask(items[i].mask_path, maps[i].shape) if items[i].mask_path is not None
                 else np.zeros(maps[i].shape, bool))
        planes[i] = (images[i], np.clip(recon, 0, 1), truth.astype(np.uint8) * 255,
                     np.clip((maps[i] - lo) / span, 0, 1))
    for step, quality in CHOICES:
        files = {}
        for n, i in enumerate(chosen):
            image, recon, truth, amap = planes[i]
            ext = "png" if quality is None else "jpg"
            files[f"{n:02d}_image.{ext}"] = _encode(image, quality)
            files[f"{n:02d}_mask.png"] = _encode(truth, None)
            files[f"{n:02d}_reconstruction.{ext}"] = _encode(recon, quality)
            files[f"{n:02d}_map.png"] = _encode(_resize(amap, step), None)
        if sum(map(len, files.values())) <= BUDGET:
            break
    index = {
        "format": FORMAT, "data": split.name, "image_size": cfg.data.image_size, "channels": split.channels,
        "has_masks": bool(split.has_masks),
        "image_format": "png" if quality is None else f"jpeg (quality {quality})", "map_step": step,
        "map_range": [lo, hi], "threshold": float(cal["threshold"]),
        "image_threshold": None if cal.get("image_threshold") is None else float(cal["image_threshold"]),
        "score": {k: cal[k] for k in ("diff", "n", "k", "t", "standardize", "two_sided", "reduce")},
        "paper_sum_score": {"diff": "l2", "n": int(cal["n"]), "k": int(cal["k"]), "t": 0,
                            "standardize": False, "reduce": "sum"},
        "samples": [{"file": f"{n:02d}", "name": f"{defects[i]}/{items[i].path.name}",
                     "label": labels[i], "defect": defects[i], "chosen": picks[i],
                     "score": float(scores[i]), "score_paper_sum": float(paper[i]),
                     "image": f"{n:02d}_image.{'png' if quality is None else 'jpg'}"}
                    for n, i in enumerate(chosen)],
        "test_scores": {"labels": labels, "defects": defects, "score": [float(s) for s in scores],
                        "score_paper_sum": [float(s) for s in paper]},
    }
    out = model_dir / SAMPLES
    tmp = model_dir / (SAMPLES + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for fname, blob in files.items():
        (tmp / fname).write_bytes(blob)
    write_json(tmp / INDEX, index)
    old = model_dir / (SAMPLES + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return index


def add_samples(model_dir, data_spec: str | None = None, device: str = "cpu") -> dict:
    """Store samples in an already packed model folder (or a run folder) without changing its
    weights, config or metrics: the model evaluated on the test split of ``data_spec`` (default:
    the data it was trained on). Returns the index."""
    from .evaluation import load_run
    from .runs import read_run_config

    model_dir = Path(model_dir)
    if not (model_dir / "calibration.json").is_file():
        raise SsaeError(f"{model_dir} has no calibration.json: pack or finish the run before adding samples")
    _, meta = read_run_config(model_dir)
    data_spec = data_spec or meta.get("data")
    if not data_spec:
        raise SsaeError(f"{model_dir}/config.json names no data set: give --data")
    model, cfg, split, _, _ = load_run(model_dir, str(data_spec), device)
    return write_samples(model_dir, model, cfg, split, device)


def has_samples(model_dir) -> bool:
    return (Path(model_dir) / SAMPLES / INDEX).is_file()


def read_index(model_dir) -> dict:
    """``samples.json`` of a model folder; a one-line error when it is missing or damaged."""
    path = Path(model_dir) / SAMPLES / INDEX
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SsaeError(f"cannot read {path}: {e}") from None
    if doc.get("format") != FORMAT:
        raise SsaeError(f"{path} has format {doc.get('format')!r}; this ssae reads format {FORMAT}")
    return doc


def read_samples(model_dir) -> tuple[list[Sample], dict]:
    """The stored samples of a model folder and their index (``samples.json``)."""
    folder = Path(model_dir) / SAMPLES
    doc = read_index(model_dir)
    lo, hi = doc["map_range"]
    out = []
    for s in doc["samples"]:
        ext = Path(s["image"]).suffix
        f = s["file"]
        mask = _decode(folder / f"{f}_mask.png", None) > 127
        shape = mask.shape
        out.append(Sample(
            name=s["name"], label=int(s["label"]), defect=s["defect"], chosen=list(s["chosen"]),
            score=float(s["score"]), score_paper_sum=float(s["score_paper_sum"]),
            image=_decode(folder / s["image"], doc["channels"]),
            mask=mask,
            reconstruction=_decode(folder / f"{f}_reconstruction{ext}", doc["channels"]),
            anomaly_map=lo + _resize(_decode(folder / f"{f}_map.png", None).astype(np.float32) / 255, 1,
                                     shape) * (hi - lo),
        ))
    return out, doc
