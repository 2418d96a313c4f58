"""The run folder: every file a training run writes and every reader of it, in one place.

A run folder (``ssae train --out RUN``) holds:

- ``config.json``: the run's :class:`ssae.config.Config` and metadata (data, channels);
- ``checkpoint.pt``: model, optimiser, step, random states (read with ``weights_only=True``);
  a packed model folder (:mod:`ssae.release`) holds ``model.safetensors`` instead;
- ``history.json``: the training log (loss, crop side, learning rate per logged step);
- ``curve.jsonl``: the learning curve, one row per evaluated step (``train.curve``);
- ``calibration.json``, ``avgmap.npy``, ``stdmap.npy``: the scoring chosen on validation
  data (:mod:`ssae.calibration`) and the validation maps' mean (eq. 13) and spread;
- ``train_summary.json`` and ``done``: written last, when training and calibration finished;
- ``lock``: held while a process trains into the folder (:mod:`ssae.runlock`).

Every file is written under a temporary name and renamed, so a reader never sees half a file.
Training (:mod:`ssae.training`) writes the folder; calibration, evaluation, prediction, packing
and export read it through this module, so none of them imports the training loop.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .config import eval_tile, Config
from .errors import SsaeError
from .model import SSAE
from .runlock import LOCK
from .scoring import ValidationMaps

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
HISTORY = "history.json"
DONE = "done"
SUMMARY = "train_summary.json"
CURVE = "curve.jsonl"
CALIBRATION = "calibration.json"
AVGMAP = "avgmap.npy"
STDMAP = "stdmap.npy"
WEIGHTS = "model.safetensors"


#: the files a run folder may hold (and ``*.tmp`` files of an interrupted write)
RUN_FILES = (CHECKPOINT, CONFIG, HISTORY, DONE, SUMMARY, CURVE, CALIBRATION, AVGMAP, STDMAP, LOCK)


def _file(name: str) -> property:
    return property(lambda self: self.path / name, doc=f"the path of ``{name}``")


class RunDir:
    """A run folder (or a packed model folder, :mod:`ssae.release`): the paths of its files and
    their readers, so that no caller types a file name. ``os.fspath(run)`` is its path."""

    config = _file(CONFIG)
    checkpoint = _file(CHECKPOINT)
    weights = _file(WEIGHTS)
    history = _file(HISTORY)
    summary = _file(SUMMARY)
    curve = _file(CURVE)
    calibration = _file(CALIBRATION)
    avgmap = _file(AVGMAP)
    stdmap = _file(STDMAP)
    done = _file(DONE)
    lock = _file(LOCK)

    def __init__(self, path):
        self.path = Path(path)

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def is_done(self) -> bool:
        """Training and calibration finished (``done`` is written last)."""
        return self.done.is_file()

    def is_packed(self) -> bool:
        """A packed model folder: float16 weights and no checkpoint."""
        return self.weights.is_file() and not self.checkpoint.is_file()

    def has_weights(self) -> bool:
        """A checkpoint or packed weights to load (:func:`load_model`)."""
        return self.checkpoint.is_file() or self.weights.is_file()

    def is_calibrated(self) -> bool:
        return self.calibration.is_file()

    def read_config(self) -> tuple[Config, dict]:
        """:func:`read_run_config`."""
        return read_run_config(self.path)

    def read_history(self) -> list[dict]:
        """The loss per logged step (``history.json``), ``[]`` without one."""
        return read_json(self.history) if self.history.is_file() else []

    def read_summary(self) -> dict:
        """:func:`read_summary`."""
        return read_summary(self.path)

    def read_curve(self) -> list[dict]:
        """:func:`read_curve`."""
        return read_curve(self.path)

    def read_calibration(self):
        """:func:`read_calibration`."""
        return read_calibration(self.path)


def check_train_folder(out) -> None:
    """Refuse (one line) an ``ssae train --out`` that is not a new path, an empty folder or an
    ssae run folder: a file, or a folder holding anything else, is never written into. Whether a
    run folder's settings match is checked when training resumes it."""
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise SsaeError(f"--out {out} is a file, not a run folder; name a new or empty folder")
    names = sorted(p.name for p in out.iterdir())
    if WEIGHTS in names and CHECKPOINT not in names:
        raise SsaeError(f"--out {out} is a packed model folder ({WEIGHTS}, no {CHECKPOINT}); "
                        f"train into another --out folder")
    if CONFIG in names or CHECKPOINT in names:
        return
    other = [n for n in names if n not in RUN_FILES and not n.endswith(".tmp")]
    if other:
        raise SsaeError(f"--out {out} is a folder of other files (e.g. {other[0]}), not an ssae run folder; "
                        f"name a new or empty folder")


def read_curve(run_dir) -> list[dict]:
    """The learning-curve rows of a run (``curve.jsonl``), ordered by step; ``[]`` without one."""
    path = Path(run_dir) / CURVE
    if not path.is_file():
        return []
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as e:
                raise SsaeError(f"cannot read {path}:{i}: {e}")
    return sorted(rows, key=lambda r: r["step"])


def append_curve(run_dir, row: dict) -> None:
    """Add one row to ``curve.jsonl`` (replacing a row of the same step); the file is rewritten
    under a temporary name and renamed, so a reader never sees half a row."""
    path = Path(run_dir) / CURVE
    rows = [r for r in read_curve(run_dir) if r["step"] != row["step"]] + [row]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, default=_json_default) + "\n"
                           for r in sorted(rows, key=lambda r: r["step"])))
    os.replace(tmp, path)


def write_json(path: Path, obj) -> None:
    """Write JSON to a temporary name, then rename: a reader never sees half a file. A file
    that cannot be written (``path`` is a folder, the disk is full) is a one-line
    :class:`SsaeError` naming ``path``, and leaves no temporary file behind."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "it is a folder")
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default))
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise SsaeError(f"cannot write {path}: {e.strerror or e}") from None


def read_json(path: Path, advice: str = ""):
    """The JSON document at ``path``, or a one-line :class:`SsaeError` naming the file (and
    ``advice``) when it is not valid JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise SsaeError(f"cannot read {path}: {e}{'; ' + advice if advice else ''}")


def read_summary(run_dir) -> dict:
    """The run's ``train_summary.json`` (steps, seconds, images/s), ``{}`` when training has
    not finished; a damaged file is a one-line error."""
    path = Path(run_dir) / SUMMARY
    return read_json(path) if path.is_file() else {}


def _json_default(o):
    if isinstance(o, (np.floating, np.integer, np.ndarray)):
        return o.tolist() if isinstance(o, np.ndarray) else o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def build_model(cfg: Config) -> SSAE:
    """The network of ``cfg`` (Table 1 at ``model.width``), seeing larger images in tiles of the
    last training crop where ``score.tiled`` says so (:func:`ssae.config.eval_tile`)."""
    m = cfg.model
    return SSAE(in_channels=m.in_channels, f=m.f, width=m.width, tile=eval_tile(cfg))


def save_checkpoint(run_dir: Path, model, optimiser, step: int, history: list, gens: dict,
                    cfg: Config, seconds: float, extra: dict | None = None) -> None:
    state = {
        **(extra or {}),
        "model": getattr(model, "module", model).state_dict(),  # unwrapped from DistributedDataParallel
        "optimiser": optimiser.state_dict(),
        "step": step,
        "history": history,
        "seconds": seconds,
        "rng": {k: g.get_state() for k, g in gens.items()},
        "config": json.dumps(cfg.to_dict()),
        "ssae_version": __version__,
    }
    tmp = run_dir / (CHECKPOINT + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, run_dir / CHECKPOINT)


def read_checkpoint(run_dir: Path, device="cpu") -> dict:
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise SsaeError(f"no checkpoint in {run_dir} (expected {path}); train first with `ssae train`")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad run directory
        if "weights only load failed" in str(e).lower() or "weightsunpickler" in str(e).lower():
            reason = "it holds objects other than tensors and plain values, which ssae never loads"
        else:  # torch's own first line, unless it advises loading the file unsafely
            first = (str(e).splitlines() or [""])[0][:200]
            reason = f"{type(e).__name__}" + ("" if "weights_only" in first else f": {first}")
        raise SsaeError(f"cannot read checkpoint {path}: {reason}; the file is damaged or not ssae's: delete it "
                        f"and run `ssae train` again to train from the start, or train into another --out folder")


def read_run_config(run_dir: Path) -> tuple[Config, dict]:
    """The run's Config and its metadata (data spec, channels, ...) from ``config.json``."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise SsaeError(f"not a run directory: {run_dir} has no {CONFIG}")
    try:
        doc = json.loads(path.read_text())
        cfg = Config.from_dict(doc["config"])
    except (ValueError, KeyError, TypeError) as e:
        raise SsaeError(f"incompatible run directory {path}: {e}")
    return cfg, doc.get("meta", {})


def load_model(run_dir, device="cpu") -> tuple[SSAE, Config]:
    """The trained model of a run directory (eval mode) and its Config: from ``checkpoint.pt``,
    or from ``model.safetensors`` in a packed model folder (:mod:`ssae.release`)."""
    run_dir = Path(run_dir)
    cfg, _ = read_run_config(run_dir)
    packed = not (run_dir / CHECKPOINT).is_file() and (run_dir / WEIGHTS).is_file()  # ssae.release
    source = run_dir / (WEIGHTS if packed else CHECKPOINT)
    weights = load_weights(source) if packed else read_checkpoint(run_dir, device)["model"]
    model = build_model(cfg)
    try:
        model.load_state_dict(weights)
    except (RuntimeError, KeyError) as e:
        raise SsaeError(f"weights {source} do not fit the model in {CONFIG}: "
                        f"{str(e).splitlines()[0][:200]}")
    model = model.to(device).eval()
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, cfg


def write_calibration(run_dir, doc: dict, stats: ValidationMaps | None) -> None:
    """Write a calibration (:func:`calibrate_model`) into ``run_dir``: ``avgmap.npy`` and
    ``stdmap.npy`` (removed when there are none: images of several sizes), then
    ``calibration.json``; each under a temporary name, then renamed."""
    run_dir = Path(run_dir)
    if stats is None:
        for name in (AVGMAP, STDMAP):
            (run_dir / name).unlink(missing_ok=True)
    else:
        _save_npy(run_dir / AVGMAP, stats.avg)
        _save_npy(run_dir / STDMAP, stats.std)
    write_json(run_dir / CALIBRATION, doc)


def _save_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, path)


def read_calibration(run_dir) -> tuple[dict, ValidationMaps | None]:
    """The calibration of a run and its validation-map statistics (None for images of several sizes)."""
    run_dir = Path(run_dir)
    path = run_dir / CALIBRATION
    if not path.is_file():
        raise SsaeError(f"{run_dir} has no {CALIBRATION}: training did not finish; rerun `ssae train` to resume")
    cal = read_json(path, "rerun `ssae train` with the same settings to recalibrate")
    missing = [key for key in ("n", "k", "reduce", "diff", "t", "threshold") if key not in cal] \
        if isinstance(cal, dict) else ["all"]
    if missing:
        raise SsaeError(f"{path} lacks {', '.join(missing)} (another version of ssae?); "
                        "rerun `ssae train` with the same settings to recalibrate")
    cal.setdefault("standardize", False)  # calibrations written before standardised maps existed
    cal.setdefault("two_sided", False)    # ... and before two-sided ones
    cal.setdefault("avgmap_rescale", True)  # ... and before eq. (14) was applied as written
    if not (run_dir / AVGMAP).is_file():
        return cal, None
    std = _load_npy(run_dir / STDMAP) if (run_dir / STDMAP).is_file() else None
    if cal["standardize"] and std is None:
        raise SsaeError(f"{run_dir} is calibrated for standardised maps but has no {STDMAP}; recalibrate it")
    return cal, ValidationMaps(_load_npy(run_dir / AVGMAP), std)


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path)
    except (ValueError, OSError, EOFError) as e:
        raise SsaeError(f"cannot read {path}: {str(e).splitlines()[0][:200]}; rerun `ssae train` to recalibrate")


def save_weights(model: torch.nn.Module, path) -> None:
    """The model's weights as float16 safetensors at ``path`` (written, then renamed)."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata={"format": "ssae", "dtype": "float16"})
    tmp.replace(path)


def load_weights(path) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` (safetensors), as float32 tensors; a one-line error naming the
    file when it cannot be read."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except Exception as e:  # noqa: BLE001 - any failure is a bad model file
        raise SsaeError(f"cannot read weights {path}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    return {k: v.float() for k, v in state.items()}
