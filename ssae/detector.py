"""A trained model as a detector for any images, in three lines:

```python
from ssae import Detector
det = Detector.load("models/aitex-fabric01/ssae")     # a packed model or a run folder
result = det.score(images)                             # paths, a folder, PIL images or arrays
```

Each image gets a :class:`Result`: its anomaly map (eq. 3, weighted or standardised as the
model was calibrated), its image score (the calibrated reduction of that map), the verdict
against the calibrated image threshold and the binary mask at the pixel threshold. The maps are
computed at the model's image size, as in training and evaluation, and resized (bilinear) to
each input's own size; a non-square input is thus read stretched to the model's square size.
``ssae predict`` writes these results as overlays, masks and ``scores.csv`` (:mod:`ssae.predict`).
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from . import data as D
from . import scoring as S
from .errors import SsaeError
from .heap import keep_freed_memory
from .model import fold_batchnorm
from .precision import INFERENCE, check_precision
from .runs import CONFIG, RunDir, load_model, read_calibration

#: the model kind a bare data-set name means (``aitex-fabric01`` -> ``models/aitex-fabric01/ssae``)
DEFAULT_KIND = "ssae"


@dataclasses.dataclass
class Result:
    """What :meth:`Detector.score` says about one image.

    ``name``: the input's path, or ``image <i>`` for an image given in memory;
    ``anomaly_map``: H x W float32 at the input's own size; ``score``: the image score (the
    model's calibrated reduction of its map at the model's size); ``anomalous``: whether the
    score exceeds the calibrated image threshold (None for a model calibrated without one);
    ``mask``: H x W bool, the map above the calibrated pixel threshold."""
    name: str
    anomaly_map: np.ndarray
    score: float
    anomalous: bool | None
    mask: np.ndarray


def models_dirs() -> list[Path]:
    """Where reference models are looked up by name: ``models/`` in the current folder (a source
    checkout), then the folder named by the environment variable ``SSAE_MODELS``."""
    out = [Path.cwd() / "models"] + ([Path(os.environ["SSAE_MODELS"])] if os.environ.get("SSAE_MODELS") else [])
    return [p for i, p in enumerate(out) if p.is_dir() and p.resolve() not in [q.resolve() for q in out[:i]]]


def resolve(model) -> Path:
    """The model folder that ``model`` names: a run folder or packed model folder as given, or
    the name of a reference model kept in a source checkout's ``models/`` (``aitex-fabric01``
    for its ``ssae`` model, ``aitex-fabric01/plain`` for another kind); else a one-line error
    saying where the reference models are."""
    path = Path(model)
    if RunDir(path).config.is_file():
        return path
    if path.exists():
        raise SsaeError(f"{path} is not a model folder (no {CONFIG}): pass a run folder of `ssae train` or a "
                        f"packed model folder of `ssae pack`")
    name = str(model).strip("/")
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "models":  # models/<name>/<kind> of a checkout, from elsewhere
        parts = parts[1:]
    if len(parts) in (1, 2) and all(parts) and not path.is_absolute():
        candidates = [d / parts[0] / (parts[1] if len(parts) == 2 else DEFAULT_KIND) for d in models_dirs()]
        for c in candidates:
            if RunDir(c).config.is_file():
                return c
    folders = [c.parent for d in models_dirs() for c in d.glob(f"*/*/{CONFIG}")]
    known = sorted({f.parent.name if f.name == DEFAULT_KIND else f"{f.parent.name}/{f.name}" for f in folders})
    where = (f"reference models here: {', '.join(known)}" if known else
             "no models/ folder is here: the reference models are kept in the source repository's models/ "
             "folder, not in the installed package; run from a checkout of it, set SSAE_MODELS to that folder, "
             "or pass a model folder")
    raise SsaeError(f"no model {model!r}: not a model folder and not a reference model name ({where})")


def image_paths(items) -> list[Path]:
    """Image paths with each folder among ``items`` replaced by its images (sorted, not
    recursive); a folder without images is a one-line error."""
    out = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = D.image_files(path)
            if not found:
                raise SsaeError(f"no images in {path} (image files end in {', '.join(D.IMAGE_SUFFIXES)})")
            out += found
        else:
            out.append(path)
    return out


#: what computes the anomaly maps: torch (the library's own modules) or onnxruntime (the graph
#: of ``ssae export``, built in memory; the same maps up to float rounding, faster on a CPU);
#: ``auto`` (the default) takes onnxruntime where it can run the model (:func:`pick_engine`)
ENGINES = ("auto", "torch", "onnxruntime")


def pick_engine(device, precision: str, fixed_size: bool) -> str:
    """The engine ``auto`` means: onnxruntime for float32 on the CPU at one image size when the
    onnxruntime package is installed (the same maps up to float rounding, faster than torch on a
    CPU: benchmarks/inference.py measures both), else torch (a GPU, bf16, images read at their
    native sizes, or no onnxruntime)."""
    if str(device) != "cpu" or precision != "fp32" or not fixed_size:
        return "torch"
    import importlib.util

    return "onnxruntime" if importlib.util.find_spec("onnxruntime") is not None else "torch"


class Detector:
    """A trained model (run folder or packed model folder) with its calibration; see the
    module docstring. ``precision``: the network's (float32 by default, :mod:`ssae.precision`).
    The network's batch normalisations are folded into its convolutions
    (:func:`ssae.model.fold_batchnorm`: the same maps up to float rounding, faster).
    ``engine``: what computes the maps (:data:`ENGINES`): ``"onnxruntime"`` runs the graph of
    ``ssae export`` (network, Diff, G_k^n and the calibrated weighting; float32 on the CPU,
    for models with one image size) in an onnxruntime session built when the detector loads;
    ``"auto"`` takes it where it can run the model, else torch (also, with a
    warning, when the graph cannot be built). The attribute ``engine`` says which one computes."""

    def __init__(self, folder, device: str = "cpu", precision: str = INFERENCE, engine: str = "auto"):
        self.folder = Path(folder)
        self.device, self.precision = device, check_precision(precision)
        if engine not in ENGINES:
            raise SsaeError(f"unknown engine {engine!r}; choose {', '.join(ENGINES[:-1])} or {ENGINES[-1]}")
        if engine == "onnxruntime" and (str(device) != "cpu" or self.precision != "fp32"):
            raise SsaeError(f"the onnxruntime engine computes in float32 on the CPU; got device {device}, "
                            f"precision {self.precision}")
        if str(device) == "cpu":
            keep_freed_memory()  # each batch's activations reused, not faulted in again (ssae.heap)
        model, self.cfg = load_model(self.folder, device)
        self.model = fold_batchnorm(model)
        self.calibration, self.stats = read_calibration(self.folder)
        auto = engine == "auto"
        if auto:
            fixed = self.cfg.data.image_size is not None or self.stats is not None
            engine = pick_engine(device, self.precision, fixed)
        self.session = None
        if engine == "onnxruntime":
            from .export import image_size, session

            try:
                self.session = session(self.model, self.calibration, self.stats, self.channels,
                                       image_size(self.folder, self.cfg, self.stats))
            except Exception as e:  # auto falls back to torch; a chosen engine fails as it fails
                if not auto:
                    raise
                warnings.warn(f"{self.folder}: the onnxruntime engine could not be built ({e}); "
                              f"scoring with torch", stacklevel=2)
                engine = "torch"
        self.engine = engine

    @classmethod
    def load(cls, model, device: str = "cpu", precision: str = INFERENCE, engine: str = "auto") -> "Detector":
        """The detector of a run folder, a packed model folder, or a reference model's name
        (:func:`resolve`)."""
        return cls(resolve(model), device, precision, engine)

    @property
    def channels(self) -> int:
        return self.cfg.model.in_channels

    @property
    def image_size(self) -> int | None:
        """The side the model reads images at (None: each image's own size)."""
        return self.cfg.data.image_size

    @property
    def threshold(self) -> float:
        """The pixel threshold of the binary masks."""
        return float(self.calibration["threshold"])

    @property
    def image_threshold(self) -> float | None:
        """The image-score threshold of the verdict (None for a model calibrated without one)."""
        t = self.calibration.get("image_threshold")
        return None if t is None else float(t)

    def read(self, images) -> tuple[list[str], list[np.ndarray]]:
        """``(names, arrays)``: the inputs as H x W x C float32 arrays in [0, 1] at their own
        size, with the model's channels. ``images``: one or a list of image paths, folders (their
        images, sorted), PIL images, or arrays (H x W or H x W x C; uint8 0-255 or floats in
        [0, 1])."""
        items = list(images) if isinstance(images, (list, tuple)) else [images]
        names, arrays = [], []
        for i, item in enumerate(items):
            if isinstance(item, (str, Path)):
                paths = image_paths([item])
                names += [str(p) for p in paths]
                arrays += [D.read_image(p, None, self.channels) for p in paths]
            else:
                names.append(f"image {i}")
                arrays.append(self._array(item, i))
        if not arrays:
            raise SsaeError("no images given to score")
        return names, arrays

    def _array(self, item, i: int) -> np.ndarray:
        from PIL import Image

        if isinstance(item, Image.Image):
            return D.pil_to_float(item, self.channels)
        a = np.asarray(item.detach().cpu() if isinstance(item, torch.Tensor) else item)
        if a.ndim == 2:
            a = a[..., None]
        if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or min(a.shape[:2]) < 1:
            raise SsaeError(f"image {i}: expected an H x W or H x W x C array (C 1, 3 or 4), got shape {a.shape}")
        if a.dtype == np.uint8:
            a = a.astype(np.float32) / 255.0
        else:
            a = a.astype(np.float32)
            if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
                raise SsaeError(f"image {i}: a float array must hold values in [0, 1] (uint8 arrays 0-255), "
                                f"got {float(np.nanmin(a)):.3g} to {float(np.nanmax(a)):.3g}")
        a = a[..., :3]
        if a.shape[2] != self.channels:
            a = (np.repeat(a, 3, axis=2) if self.channels == 3 else  # grey to RGB; RGB to grey as PIL's luma
                 (a @ np.array([0.299, 0.587, 0.114], np.float32))[..., None])
        return np.ascontiguousarray(a, dtype=np.float32)

    def score(self, images, progress: bool = False) -> list[Result]:
        """A :class:`Result` per image (see :meth:`read` for what ``images`` may be)."""
        names, originals = self.read(images)
        return self.score_arrays(names, originals, progress)

    def score_arrays(self, names: list[str], originals: list[np.ndarray], progress: bool = False) -> list[Result]:
        """:meth:`score` for H x W x C float32 arrays in [0, 1] with the model's channels."""
        cal = self.calibration
        at_size = [D.resize_image(a, self.image_size) for a in originals]
        if self.session is not None:
            maps = self._session_maps(at_size)
        else:
            raw = S.diff_maps(self.model, at_size, cal["diff"], self.device, progress=progress, desc="score",
                              precision=self.precision)
            maps = S.calibrated_maps(raw, cal, self.stats)
        out = []
        for name, img, m in zip(names, originals, maps):
            score = float(S.image_score(torch.from_numpy(m)[None], cal["reduce"]))
            big = m if m.shape == img.shape[:2] else torch.nn.functional.interpolate(
                torch.from_numpy(m)[None, None], size=img.shape[:2], mode="bilinear",
                align_corners=False)[0, 0].numpy()
            out.append(Result(name=name, anomaly_map=np.ascontiguousarray(big, dtype=np.float32), score=score,
                              anomalous=None if self.image_threshold is None else score > self.image_threshold,
                              mask=big > self.threshold))
        return out

    def _session_maps(self, images: list[np.ndarray], batch_size: int = 8) -> list[np.ndarray]:
        """The calibrated maps of H x W x C images at the model's size, from the onnxruntime graph."""
        from .export import INPUT

        maps = []
        for i in range(0, len(images), batch_size):
            x = np.stack([a.transpose(2, 0, 1) for a in images[i:i + batch_size]]).astype(np.float32)
            maps += list(self.session.run(None, {INPUT: x})[0])
        return maps
