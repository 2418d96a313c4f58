"""Every setting of a run, in one place, with where its default comes from.

The paper (Bauer, Nakajima, Mueller) fixes only a few settings: the architecture of
Table 1 (f in {3, 5}), Adam with learning rate 1e-4, lambda = 0.5 as "sufficiently good",
5% validation data, 512x512 for textures, augmentation by 90-degree rotations and flips,
elastic deformation as the corruption, optional brightness variation, progressive crops,
the image score as the sum of eq. (3)'s map. Everything else (patch sizes, elastic strength,
number of steps, the crop schedule, the values of n and k) is ours. Each field says which in
its metadata: it is declared with :func:`paper` or :func:`ours`, and :func:`provenance` lists
the settings with their source and note. The ``calibration`` section is the search space over
which the scoring is chosen on validation data (:mod:`ssae.calibration`; ours, off in the
``paper`` profile).

A run is described by a :class:`Config`; :func:`profile` returns the defaults of the
``smoke`` (tests), ``cpu`` (a laptop), ``paper`` (Section 4.1 as written, for a GPU) and
``paper-fast`` (the paper's recipe with our bf16 training and scoring search) profiles.
:func:`check` checks every setting's range before a run starts (the command line and
:func:`ssae.pipeline.train` call it).
"""
from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field, asdict, fields, is_dataclass
from typing import Any

#: Version of the on-disk run format (checkpoints, config.json). Bump on incompatible change;
#: :func:`Config.from_dict` reads older versions listed in :data:`_RENAMED`.
FORMAT_VERSION = 2

#: Version 1 kept the calibration's search space in the score section as paired fields.
_RENAMED = {"select_nk": "search", "nk_candidates": "nk", "diff_candidates": "diff", "t_candidates": "t",
            "standardize_candidates": "standardize", "reduce_candidates": "reduce",
            "proxy_corruption": "proxy", "proxy_patch_min": "proxy_patch_min",
            "proxy_patch_max": "proxy_patch_max"}

PROFILES = ("smoke", "cpu", "paper", "paper-fast")
#: where a setting's default comes from: the paper fixes it, or this reproduction chose it
SOURCES = ("paper", "ours")


def paper(default: Any, note: str):
    """A setting whose default the paper fixes (a dataclass field with its source and note)."""
    return field(default=default, metadata={"source": "paper", "note": note})


def ours(default: Any, note: str):
    """A setting whose default this reproduction chose (a dataclass field with its source and note)."""
    return field(default=default, metadata={"source": "ours", "note": note})


@dataclass(frozen=True)
class Provenance:
    """One setting: its name (``section.field``), its value (the default, or the given
    config's value), whether the default is the paper's or ours, and the note saying why."""
    setting: str
    value: Any
    source: str
    note: str


#: learning-rate schedules of :func:`ssae.training.learning_rate`
LR_SCHEDULES = ("constant", "cosine")


@dataclass
class DataConfig:
    image_size: int | None = paper(512,
        "(textures) images resized to 512x512. None keeps native size (ours)")
    val_fraction: float = paper(0.05,
        "5% of the training data as validation set")
    rot90: bool | None = paper(None,
        "rotations by multiples of 90 degrees \"depending on the category\"; None = data.AUGMENTATION's choice for the category (ours)")
    flips: bool | None = paper(None,
        'horizontal and vertical flips "depending on the category"; None = as for rot90')
    max_train: int | None = ours(None,
        "cap on training images (None = all)")
    max_test: int | None = ours(None,
        "cap on test images, stratified (None = all); smoke only")


@dataclass
class CorruptionConfig:
    method: str = paper("elastic",
        "elastic deformation worked best. Also: cutout | swap | occlusion | none")
    alternate: tuple[str, ...] = paper((),
        '(objects) extra methods applied alternately, e.g. ("occlusion",)')
    patch_min: float = ours(0.05,
        "smallest patch side as a fraction of the crop side")
    patch_max: float = ours(0.35,
        "largest patch side (|S|/N <= 0.12 < 0.5, Figure 9's safe range)")
    n_patches: int = ours(1,
        "patches per image")
    elastic_alpha: float = ours(0.15,
        "displacement amplitude as a fraction of the patch side")
    elastic_sigma: float = ours(0.08,
        "smoothing of the displacement field, fraction of the patch side")
    shape: str = paper("blob",
        '"random smooth real-valued shape mask" (blob). Ours: "band", a hard-edged stripe across the patch')
    shape_sigma: float = ours(0.15,
        "smoothness of the random shape mask X2, fraction of the patch side")
    band_min: float = ours(0.2,
        '(shape "band") narrowest stripe, fraction of the patch side')
    band_max: float = ours(0.6,
        '(shape "band") widest stripe')
    brightness: float = ours(0.1,
        "the paper mentions a brightness variation; ours: its amount, the max relative brightness change of the patch")
    rotation: bool = paper(False,
        "(transistor) rotate corrupted images around the centre")
    occluders: str | None = ours(None,
        '(objects) occlusion shapes take "content from a different data source": a folder of such images (ours); None = smooth colour noise')


@dataclass
class ModelConfig:
    in_channels: int = paper(3,
        "colour images; 1 for grey data sets (ours: set from the data)")
    f: int = paper(3,
        "SDC kernel width f in {3, 5}; f = 3 for textures")
    width: float = ours(1.0,
        "channel multiplier (1.0 = Table 1)")


@dataclass
class TrainConfig:
    objective: int = paper(1,
        "objective (1) (default) or (4)")
    lam: float = paper(0.5,
        "lambda = 0.5 \"sufficiently good in many cases\"; must lie in [0, 1]. Smaller values: see the book's chapter 'What moves the numbers on real defects'")
    startup: str = paper("literal",
        "\"literal\", the objective from the first step as written. Ours: \"whole\", the whole-image error until the output leaves the flat state, then the objective (objectives.py; book: 'Reading objective (1)')")
    escape_ratio: float = ours(0.5,
        "with startup \"whole\", hand over once the error on clean pixels (running mean) falls below this share of the crops' pixel variance")
    lr: float = paper(1e-4,
        "Adam, initial learning rate 1e-4")
    lr_schedule: str = paper("constant",
        'the paper gives an "initial" lr and no schedule: constant. Ours: "cosine" decays to 0 by the end')
    lr_warmup: float = ours(0.0,
        "fraction of training over which the lr rises linearly from 0 (0 = none)")
    batch_size: int = ours(16,
        "images per optimiser step")
    steps: int = ours(20000,
        "optimiser steps")
    crop_start: int = ours(128,
        "progressive training, first crop side (pixels at fixed resolution)")
    crop_end: int = ours(512,
        "last crop side (capped by the image size); at least the evaluation size (the image size, or the tile with score.tiled), so that every weight used there is trained (training.untrained_weights)")
    crop_growth: float = ours(0.5,
        "fraction of training (steps or time budget) over which the crop grows")
    seed: int = ours(0,
        "seeds the initial weights, the batches and corruptions, and the validation split")
    init_seed: int | None = ours(None,
        "seed of the initial weights alone (None = seed); lets an experiment give one seed's data stream another seed's initial weights")
    amp: bool = paper(False,
        "float32 training: the paper names no other precision. True (ours): bf16 autocast on CUDA and on CPUs with native bf16 (ssae.precision), float32 elsewhere")
    curve: tuple[int, ...] = ours((),
        "steps at which the run evaluates itself on its test split (learning curve, curve.jsonl); () = none")
    channels_last: bool = ours(True,
        "NHWC memory layout (faster on CUDA and on CPU)")
    compile: bool = ours(False,
        "torch.compile")
    checkpoint_every: int = ours(500,
        "steps between checkpoints")
    log_every: int = ours(50,
        "steps between progress lines")
    max_minutes: float | None = ours(None,
        "wall-clock budget; training stops (and checkpoints) when reached; the schedules then follow the clock, so a seed repeats a run exactly only without it")


@dataclass
class ScoreConfig:
    diff: str = paper("l2",
        'eq. (2) squared difference; "ssim" for the SSIM-based Diff; "lowpass" (ours): the signed difference box-averaged (9 px) before squaring')
    n: int = ours(1,
        "G_k^n smoothing of eq. (3), n repetitions: a hyperparameter in the paper, which gives no value; 1 is ours")
    k: int = ours(9,
        "box size k of G_k (eq. 3): a hyperparameter in the paper, which gives no value; 9 is ours")
    t: int = paper(0,
        "avgmap exponent of eq. (14); 0 disables the weighting")
    reduce: str = paper("sum",
        "image score = sum over the map. \"mean\", \"max\" and \"contrast\" ((max - median) / MAD of the image's own map) are ours")
    standardize: bool = ours(False,
        "anomap -> (anomap - avgmap) / stdmap of the validation maps (variant of eq. 14)")
    avgmap_rescale: bool = ours(False,
        "divide the avgmap by its maximum before eq. (14), so that 1 - avgmap spans [0, 1] for any Diff; False = eq. (14) as written (1 - avgmap clamped at 0)")
    tiled: bool = ours(False,
        "the network sees images larger than the last training crop (train.crop_end) in overlapping tiles of that side (ssae.tiling); False = whole images, the paper's")
    two_sided: bool = ours(False,
        "standardised maps scored by |z|, so that less error than usual (a defect smoother than the texture) counts too; never chosen by the calibration")
    threshold_quantile: float = ours(0.999,
        "binary masks at this quantile of validation-map pixels")
    metric_size: int | None = ours(None,
        "pixel AUROC and AUPRO on maps resized (bilinear) to this square size, masks read at it (nearest); None = the evaluated image size. Lets runs at different image sizes be compared on the same pixels")


@dataclass
class CalibrationConfig:
    """The calibration's search space (:mod:`ssae.calibration`): the scorings compared on
    validation data, and the proxy task they are compared on. A setting with no candidates
    keeps the score section's value."""
    search: bool = paper(False,
        "n and k of eq. (3) are hyperparameters and the paper does not say how they were chosen: False scores with the score section as set. True (ours): chosen on corrupted validation images, never on test labels")
    nk: tuple[tuple[int, int], ...] = ours((),
        "(n, k) pairs of G_k^n compared, e.g. ((0, 1), (1, 3), (1, 5)); () = calibration.NK_GRID (sized for 256 px)")
    diff: tuple[str, ...] = ours((),
        'Diffs compared, e.g. ("l2", "ssim"); () = score.diff alone')
    t: tuple[int, ...] = ours((),
        "eq. (14) exponents compared, e.g. (0, 1, 2); () = score.t alone")
    standardize: tuple[bool, ...] = ours((),
        "standardised maps compared with plain ones, e.g. (False, True); () = score.standardize alone")
    reduce: tuple[str, ...] = ours((),
        'image-score reductions compared, e.g. ("sum", "max"); () = score.reduce alone (the paper: the sum)')
    proxy: tuple[str, ...] = ours((),
        'corruption methods of the validation proxy, e.g. ("cutout", "swap", "occlusion"), at the default corruption settings whatever the model trained on; () = the training corruption')
    proxy_patch_min: float | None = ours(None,
        "smallest patch side of the proxy corruptions, fraction of the image side; None = that of the proxy's corruption")
    proxy_patch_max: float | None = ours(None,
        "largest patch side of the proxy corruptions; None = as above")
    proxy_draws: int = ours(1,
        "corrupted copies of each validation image in the proxy and the restoration check, each drawn anew; more copies, less chance in the choice")


@dataclass
class Config:
    profile: str = "paper"
    data: DataConfig = field(default_factory=DataConfig)
    corruption: CorruptionConfig = field(default_factory=CorruptionConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        """Rebuild a config; unknown keys are an error (an incompatible run directory)."""
        d = dict(d)
        version = d.get("format_version")
        if version == 1:
            d = _from_version_1(d)
        elif version != FORMAT_VERSION:
            raise ValueError(f"run format version {version!r}, this ssae reads versions 1 and {FORMAT_VERSION}")
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key in SECTIONS:
                kwargs[key] = _build(key, value)
            elif key in ("profile", "format_version"):
                kwargs[key] = value
            else:
                raise ValueError(f"unknown config key {key!r}")
        return cls(**kwargs)


def _from_version_1(d: dict[str, Any]) -> dict[str, Any]:
    """A version-1 config as version 2: the score section's candidate fields become the
    calibration section; settings that version 1 lacked get the values its runs used."""
    score = dict(d.get("score", {}))
    cal = {new: score.pop(old) for old, new in _RENAMED.items() if old in score}
    cal.setdefault("reduce", ["sum", "mean", "max", "contrast"] if cal.get("search") else [])
    score.setdefault("avgmap_rescale", True)
    corruption = dict(d.get("corruption", {}))
    if corruption.pop("p_clean", 0.0):
        raise ValueError("this run left some training images uncorrupted (corruption.p_clean), "
                         "which this ssae no longer supports")
    return {**d, "score": score, "calibration": cal, "corruption": corruption,
            "format_version": FORMAT_VERSION}


#: The sections of a Config and their classes (``--set SECTION.FIELD=VALUE``).
SECTIONS = {"data": DataConfig, "corruption": CorruptionConfig, "model": ModelConfig,
            "train": TrainConfig, "score": ScoreConfig, "calibration": CalibrationConfig}


def provenance(cfg: Any) -> list[Provenance]:
    """Where each setting's default comes from: one :class:`Provenance` per field of ``cfg``,
    a :class:`Config` or one of its sections, given as a class (values: the defaults) or an
    instance (values: its own). A field declared without :func:`paper` or :func:`ours` is a
    ValueError naming it."""
    if cfg is Config or isinstance(cfg, Config):
        return [row for name, klass in SECTIONS.items()
                for row in _rows(name, klass if cfg is Config else getattr(cfg, name))]
    if not is_dataclass(cfg):
        raise ValueError(f"provenance needs a Config or one of its sections, got {cfg!r}")
    klass = cfg if isinstance(cfg, type) else type(cfg)
    names = [name for name, k in SECTIONS.items() if k is klass]
    return _rows(names[0] if names else klass.__name__, cfg)


def _rows(section: str, cfg: Any) -> list[Provenance]:
    rows = []
    for f in fields(cfg):
        source = f.metadata.get("source")
        if source not in SOURCES:
            raise ValueError(f"setting {section}.{f.name} declares no source (paper or ours): "
                             "declare it with config.paper(...) or config.ours(...)")
        value = getattr(cfg, f.name) if not isinstance(cfg, type) else f.default
        rows.append(Provenance(f"{section}.{f.name}", value, source, f.metadata.get("note", "")))
    return rows


def _build(section: str, values: dict[str, Any]):
    """Section ``section`` rebuilt from its stored dict, each value checked against its
    field's type (JSON lists become tuples)."""
    klass = SECTIONS[section]
    hints = typing.get_type_hints(klass)
    unknown = set(values) - set(hints)
    if unknown:
        raise ValueError(f"unknown {klass.__name__} keys: {sorted(unknown)}")
    return klass(**{k: _checked(f"{section}.{k}", hints[k], v) for k, v in values.items()})


def profile(name: str) -> Config:
    """Defaults of a named profile.

    - ``smoke``: seconds, for tests. Tiny network, 64 px, a handful of steps.
    - ``cpu``: a laptop (2 cores): Table 1 at width 1/4, 256 px images, 64-128 px crops,
      learning rate 1e-3 with a cosine decay, at most 20 minutes of training (the book uses
      less per category), crops growing from 64 to 128 px over the first half and 256 px images
      seen in 128 px tiles (``score.tiled``), and the whole-image start-up before objective (1)
      (``train.startup="whole"``), bf16 where the hardware has it (``train.amp``);
      the calibration chooses n and k on validation images and may choose standardised anomaps
      (ours) over the paper's, on validation images with cut-outs, swaps and occlusions (ours),
      not the training corruption.
    - ``paper``: Section 4.1 as written, for a GPU: Table 1 at width 1, 512 px images, Adam at
      1e-4, objective (1) with lambda = 0.5 from the first step, float32, and the paper's
      scoring: eq. (3)'s map at the score section's n and k (the paper leaves their values
      open), summed to the image score, no search, no standardisation.
    - ``paper-fast``: ``paper`` with two of our departures: bf16 autocast (``train.amp``) and
      n and k chosen on corrupted validation images (``calibration.search``).
    """
    if name == "smoke":
        return Config(
            profile="smoke",
            data=DataConfig(image_size=64, max_train=24, max_test=24),
            model=ModelConfig(width=1 / 16),
            train=TrainConfig(batch_size=4, steps=4, crop_start=32, crop_end=64,
                              checkpoint_every=2, log_every=1, amp=True),
            score=ScoreConfig(n=1, k=3),
            calibration=CalibrationConfig(search=False),
        )
    if name == "cpu":
        # Sized for 2 CPU cores: training cost depends on the crop, not on the image size, so
        # images keep 256 px while crops grow from 64 to 128 px (progressive training), and the
        # network sees the 256 px images in 128 px tiles (score.tiled): whole 256 px images
        # would use weights of the widest dilations that no 128 px crop trains
        # (training.untrained_weights), and crops of 256 px cost four times as much per step. A
        # learning rate of 1e-3 (not the paper's 1e-4) because a CPU budget allows only a few
        # thousand steps; at 1e-4 the network still outputs blurred means after 250 steps.
        return Config(
            profile="cpu",
            data=DataConfig(image_size=256),
            model=ModelConfig(width=0.25),
            # The learning rate decays along a cosine to 0 by the end of the budget (ours).
            # Training starts on the whole-image error and hands over to objective (1) once the
            # output leaves the flat start (ours; objectives.py).
            train=TrainConfig(batch_size=16, lr=1e-3, lr_schedule="cosine", steps=4000, crop_start=64,
                              crop_end=128, checkpoint_every=250, log_every=25, max_minutes=20.0,
                              startup="whole", amp=True),
            # Standardised maps compete with plain ones on validation data (ours). The scoring
            # is chosen on corruptions that no model trained on (ours), at the default corruption
            # settings whatever the model trained on, so that the method and its references are
            # scored alike (book: chapter 'What moves the numbers on real defects').
            score=ScoreConfig(n=1, k=9, tiled=True),
            calibration=CalibrationConfig(search=True, standardize=(False, True),
                                          reduce=("sum", "mean", "max", "contrast"),
                                          proxy=("cutout", "swap", "occlusion"),
                                          proxy_patch_min=0.05, proxy_patch_max=0.35),
        )
    if name == "paper":
        return Config(profile="paper")
    if name == "paper-fast":
        return Config(profile="paper-fast", train=TrainConfig(amp=True),
                      calibration=CalibrationConfig(search=True))
    raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")


def override(cfg: Config, **sections: dict[str, Any]) -> Config:
    """Return a copy of ``cfg`` with fields replaced, e.g. ``override(cfg, train={"steps": 10})``."""
    out = Config.from_dict(cfg.to_dict())
    for section, values in sections.items():
        if section == "profile":
            out.profile = values
            continue
        if section not in SECTIONS:
            raise ValueError(f"unknown settings section {section!r}; choose one of {', '.join(SECTIONS)}")
        target = getattr(out, section)
        hints = typing.get_type_hints(SECTIONS[section])
        for key, value in values.items():
            if key not in hints:
                raise ValueError(f"unknown setting {section}.{key}")
            setattr(target, key, _checked(f"{section}.{key}", hints[key], value))
    return out


def _checked(name: str, hint, value):
    """``value`` as the type ``hint`` of a field (``int``, ``float``, ``bool``, ``str``,
    ``tuple[X, ...]``, ``X | None``), or a ValueError naming the setting.

    A single item given for a tuple becomes a one-item tuple (``--set calibration.diff=ssim``);
    an int is accepted for a float."""
    args = typing.get_args(hint)
    if type(None) in args:  # X | None
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)]
        return _checked(name, inner[0], value)
    origin = typing.get_origin(hint)
    if origin is tuple:
        items = [value] if not isinstance(value, (list, tuple)) else list(value)
        return tuple(_checked(name, args[0], v) for v in items)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is bool and isinstance(value, bool) or hint in (int, str) and type(value) is hint:
        return value
    raise ValueError(f"setting {name} must be {getattr(hint, '__name__', hint)}, got {value!r}")


def eval_tile(cfg: Config) -> int | None:
    """The side of the tiles in which the network sees larger images (``score.tiled``): the
    last training crop, rounded down to a multiple of 8; None for whole images."""
    return max(8, cfg.train.crop_end // 8 * 8) if cfg.score.tiled else None


def proxy_patch(cfg: Config) -> tuple[float, float]:
    """The patch sizes of the validation proxy (``calibration.proxy_patch_min``/``max``; where
    None, those of the proxy's corruption: the defaults with ``calibration.proxy``, else the
    training corruption's)."""
    base = CorruptionConfig() if cfg.calibration.proxy else cfg.corruption
    lo, hi = cfg.calibration.proxy_patch_min, cfg.calibration.proxy_patch_max
    return (base.patch_min if lo is None else lo), (base.patch_max if hi is None else hi)


def _ranges(cfg: Config):
    """``(setting, within its range, what it must be)`` for each setting :func:`check` checks
    itself; the names of the Diffs and reductions come from the modules that define them."""
    from .corruption import METHODS
    from .scoring import DIFFS, REDUCTIONS

    d, c, m, t, s, cal = cfg.data, cfg.corruption, cfg.model, cfg.train, cfg.score, cfg.calibration

    def optional(value, lo):
        return value is None or value >= lo

    def fraction(value, low_open=False, high_open=False):
        return (0 < value if low_open else 0 <= value) and (value < 1 if high_open else value <= 1)

    yield "data.image_size", optional(d.image_size, 8), "a number of pixels >= 8, or None (native size)"
    yield "data.val_fraction", fraction(d.val_fraction, True, True), "a fraction in (0, 1)"
    yield "data.max_train", optional(d.max_train, 2), "at least 2 (one to train on, one to validate), or None"
    yield "data.max_test", optional(d.max_test, 1), "at least 1, or None"
    yield "corruption.elastic_alpha", c.elastic_alpha >= 0, ">= 0"
    yield "corruption.elastic_sigma", c.elastic_sigma > 0, "> 0"
    yield "corruption.shape_sigma", c.shape_sigma > 0, "> 0"
    yield "corruption.brightness", fraction(c.brightness), "a fraction in [0, 1]"
    yield "model.in_channels", m.in_channels in (1, 3), "1 (grey) or 3 (colour)"
    yield "model.f", m.f >= 1 and m.f % 2 == 1, "an odd kernel width >= 1 (the paper: 3 or 5)"
    yield "model.width", math.isfinite(m.width) and m.width > 0, "a channel multiplier > 0"
    yield "train.lr", math.isfinite(t.lr) and t.lr > 0, "a learning rate > 0"
    yield "train.lr_schedule", t.lr_schedule in LR_SCHEDULES, f"one of {', '.join(LR_SCHEDULES)}"
    yield "train.lr_warmup", fraction(t.lr_warmup, high_open=True), "a fraction of training in [0, 1)"
    yield "train.batch_size", t.batch_size >= 1, ">= 1"
    yield "train.steps", t.steps >= 1, ">= 1"
    yield "train.crop_start", t.crop_start >= 8, "a crop side >= 8 pixels"
    yield "train.crop_end", t.crop_end >= 8, "a crop side >= 8 pixels"
    yield "train.crop_growth", fraction(t.crop_growth), "a fraction of training in [0, 1]"
    yield "train.seed", t.seed >= 0, ">= 0"
    yield "train.init_seed", optional(t.init_seed, 0), ">= 0, or None"
    yield "train.curve", all(step >= 1 for step in t.curve), "steps >= 1"
    yield "train.checkpoint_every", t.checkpoint_every >= 1, "a number of steps >= 1"
    yield "train.log_every", t.log_every >= 1, "a number of steps >= 1"
    yield "train.max_minutes", t.max_minutes is None or (math.isfinite(t.max_minutes) and t.max_minutes > 0), \
        "a number of minutes > 0, or None"
    yield "score.diff", s.diff in DIFFS, f"one of {', '.join(DIFFS)}"
    yield "score.reduce", s.reduce in REDUCTIONS, f"one of {', '.join(REDUCTIONS)}"
    yield "score.n", s.n >= 0, ">= 0 (box filters of eq. 3)"
    yield "score.k", s.k >= 1, ">= 1 (box side of eq. 3)"
    yield "score.t", s.t >= 0, ">= 0 (exponent of eq. 14)"
    yield "score.standardize", not (s.standardize and s.t), "False when score.t > 0 (they exclude each other)"
    yield "score.threshold_quantile", fraction(s.threshold_quantile), "a quantile in [0, 1]"
    yield "score.metric_size", optional(s.metric_size, 1), "a number of pixels >= 1, or None"
    yield "calibration.diff", set(cal.diff) <= set(DIFFS), f"some of {', '.join(DIFFS)}"
    yield "calibration.t", all(v >= 0 for v in cal.t), "exponents >= 0"
    yield "calibration.reduce", set(cal.reduce) <= set(REDUCTIONS), f"some of {', '.join(REDUCTIONS)}"
    yield "calibration.proxy", set(cal.proxy) <= set(METHODS) - {"none"}, \
        f"some of {', '.join(m for m in METHODS if m != 'none')}"
    yield "calibration.proxy_draws", cal.proxy_draws >= 1, "a number of copies >= 1"
    lo, hi = proxy_patch(cfg)
    yield "calibration.proxy_patch_min", 0 < lo <= 1, "a fraction of the image side in (0, 1], or None"
    yield "calibration.proxy_patch_max", 0 < hi <= 1 and lo <= hi, \
        f"a fraction of the image side in (0, 1], at least the proxy's smallest patch {lo}, or None"


def check(cfg: Config) -> Config:
    """Check every setting of ``cfg`` before anything is written; return ``cfg``.

    The first setting out of its range is a one-line :class:`ssae.errors.SsaeError` naming it,
    what it must be and the value given (e.g. ``setting train.lr must be a learning rate > 0,
    got -0.001``). The ranges are listed in :func:`_ranges`; the rules that the code using a
    setting enforces itself are called from here rather than repeated: the objective and its
    lambda (:func:`ssae.objectives.check`), the corruption's patch and band sizes
    (:func:`ssae.corruption.check_settings`) and the smoothing grid (:func:`ssae.scoring.nk_pairs`).
    Types are checked earlier, when a setting is
    given (:func:`override`).
    """
    from .corruption import check_settings
    from .errors import SsaeError
    from .objectives import check as check_objective
    from .scoring import nk_pairs

    for name, ok, want in _ranges(cfg):
        if not ok:
            section, field_name = name.split(".")
            raise SsaeError(f"setting {name} must be {want}, got {getattr(getattr(cfg, section), field_name)!r}")
    check_objective(cfg.train)
    check_settings(cfg.corruption)
    nk_pairs(cfg.calibration.nk)
    return cfg
