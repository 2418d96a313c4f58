"""Training (Sections 3.2 and 4.1): Adam on corrupted crops, progressive crop sizes, checkpoints.

One step:

1. sample a batch of training images and a random crop of side ``crop_size(fraction_done)`` from each
   (progressive training: the crop grows during training at a *fixed* pixel resolution; the
   images are never resized for it, Section 3.2),
2. augment (rotations by 90 degrees, flips; Section 4.1),
3. corrupt (:func:`ssae.corruption.corrupt`, Figure 5) to get ``(X^, M)``,
4. minimise objective (1) or (4) (:mod:`ssae.objectives`) with Adam (lr 1e-4, Section 4.1;
   optionally decayed, :func:`learning_rate`; on one CPU process over one parameter buffer,
   :mod:`ssae.flatadam`).

The whole training set is decoded once and kept on the device, so a GPU is not starved by
image decoding. Checkpoints hold the model, the optimiser, the step, the random states and
the full config; they are written to a temporary name and renamed, and :func:`train` resumes
from the last one after an interruption. ``done`` (:class:`ssae.runs.RunDir`) is written last.

A run folder is written by one training at a time (``RUN/lock``, :mod:`ssae.runlock`), and a
training run again on a folder changes nothing in it until it has something new to write:
the first new checkpoint retires the old run's scoring and ``done`` (so old scoring never
sits beside new weights), and a new scoring replaces the old one only once it is computed.
A run diverges when its loss, its gradients' norm or its weights' norm stops being finite, or
the weights' norm passes :data:`WEIGHT_NORM_LIMIT` (the loss is checked at every step, the two
norms at log and checkpoint steps); it then stops with one line naming the step and the
learning rate, keeping its last good checkpoint.

Multi-GPU (or multi-process CPU) training runs under ``torchrun``: each process draws its own
batches, gradients are averaged by DistributedDataParallel, rank 0 writes the run directory.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from . import __version__
from .config import LR_SCHEDULES, Config, check, eval_tile, override
from .corruption import corrupt, random_rotation
from .data import Split, augment, occluder_images, resolve_augmentation
from .errors import SsaeError
from .flatadam import FlatAdam
from .heap import keep_freed_memory
from .objectives import flatness, loss as objective_loss
from .progress import TrainLog
from .precision import autocast as precision_autocast, precision as forward_precision
from .runlock import lock_run
from .runs import (CHECKPOINT, WEIGHTS, RunDir, append_curve, build_model, read_checkpoint, save_checkpoint,
                   write_calibration, write_json)

#: first step of the geometric learning-curve grid (:func:`curve_grid`)
CURVE_FIRST = 250
#: ours: weights whose overall L2 norm passes this have diverged (trained models here: about
#: 50; the paper's network at its initial weights: about 85)
WEIGHT_NORM_LIMIT = 1e6


# ----------------------------------------------------------------------------- helpers

def fraction_done(t, step: int, elapsed: float | None = None) -> float:
    """Fraction of training done (``t``: a TrainConfig): the larger of ``step / steps`` and
    ``elapsed / max_minutes``, in [0, 1]. A run stopped by its time budget thus goes through
    its whole crop and learning-rate schedules too. ``elapsed=None`` counts steps only (used
    under torchrun, where every process must take the same schedule)."""
    p = step / max(1, t.steps)
    if t.max_minutes and elapsed is not None:
        p = max(p, elapsed / (60.0 * t.max_minutes))
    return min(1.0, max(0.0, p))


def crop_size(p: float, cfg: Config, max_side: int) -> int:
    """Progressive training (Sec. 3.2): crop side at progress ``p`` (:func:`fraction_done`),
    growing linearly from ``crop_start`` to ``crop_end`` over the first ``crop_growth``
    fraction of training; a multiple of 8 and at most ``max_side`` (the smallest image side,
    rounded down to a multiple of 8). The images keep their resolution."""
    t = cfg.train
    frac = min(1.0, p / t.crop_growth) if t.crop_growth > 0 else 1.0
    side = t.crop_start + frac * (t.crop_end - t.crop_start)
    side = int(side) // 8 * 8
    return int(max(8, min(side, max_side)))




def untrained_weights(cfg: Config, train_side: int, eval_side: int) -> list[str]:
    """Names of the parameters some of whose entries get a gradient on ``eval_side`` px images
    but none on ``train_side`` px crops (ours). Zero padding hides the off-centre taps of a
    dilated convolution whose dilation reaches past a small feature map (Table 1's d = 16
    branch at 1/8 resolution, for crops up to 128 px): training never moves them, and an
    evaluation at a larger size uses them with their initial values. Measured with the
    network of ``cfg`` at width at most 1/16 (the pattern depends on sizes and dilations only)."""
    mcfg = override(cfg, model={"width": min(cfg.model.width, 1 / 16)})
    gen = torch.Generator().manual_seed(0)
    model = build_model(mcfg)

    def touched(side: int) -> dict[str, torch.Tensor]:
        model.zero_grad(set_to_none=True)
        x = torch.rand(2, mcfg.model.in_channels, side, side, generator=gen)
        model(x).square().sum().backward()
        return {n: (p.grad != 0) for n, p in model.named_parameters() if p.grad is not None}

    at_train, at_eval = touched(train_side), touched(eval_side)
    return [n for n, used in at_eval.items() if bool((used & ~at_train.get(n, torch.zeros_like(used))).any())]


def evaluated_side(cfg: Config) -> int | None:
    """The side of what the network sees at evaluation: the image size, or the tile of
    ``score.tiled`` where that is smaller (None: images of native size)."""
    side, tile = cfg.data.image_size, eval_tile(cfg)
    return min(side, tile) if side and tile else side


def learning_rate(t, p: float) -> float:
    """Learning rate at progress ``p`` (:func:`fraction_done`; ``t``: a TrainConfig).

    The paper gives Adam's *initial* learning rate (1e-4, Sec. 4.1) and no schedule.
    ``"constant"`` keeps it; ``"cosine"`` (ours) decays it as ``lr (1 + cos(pi p)) / 2``, so a
    run ends at a small learning rate whether its steps or its time budget end it.
    ``t.lr_warmup`` (ours) multiplies either by ``p / lr_warmup`` while ``p < lr_warmup``: a
    linear warm-up from 0.
    """
    if t.lr_schedule not in LR_SCHEDULES:
        raise SsaeError(f"train.lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {t.lr_schedule!r}")
    if not 0.0 <= t.lr_warmup < 1.0:
        raise SsaeError(f"train.lr_warmup must be a fraction of training in [0, 1), got {t.lr_warmup!r}")
    lr = t.lr
    if t.lr_schedule == "cosine":
        lr *= 0.5 * (1.0 + float(np.cos(np.pi * min(1.0, p))))
    if p < t.lr_warmup:
        lr *= max(0.0, p) / t.lr_warmup
    return lr


def curve_grid(steps: int, first: int = CURVE_FIRST) -> tuple[int, ...]:
    """The geometric learning-curve grid ``first * 2**i`` up to ``steps`` (250, 500, 1000, ...);
    a run with a curve also evaluates itself at its last step, wherever its budget ends it."""
    grid, s = [], first
    while s < steps:
        grid.append(s)
        s *= 2
    return tuple(grid)


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (0 and 1 outside ``torchrun``)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class TrainingImages:
    """The decoded training set on the device, and random crops from it.

    Images of one size are stacked in one tensor; images of varying native size (e.g. the
    Magnetic Tile Defects) are kept as a list. A crop larger than an image is reflect-padded.
    """

    def __init__(self, arrays: list[np.ndarray], device: torch.device):
        tensors = [torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))) for a in arrays]
        self.same_size = len({t.shape for t in tensors}) == 1
        if self.same_size:
            self.stack = torch.stack(tensors).to(device)
            self.images = list(self.stack)
        else:
            self.images = [t.to(device) for t in tensors]
        self.n = len(self.images)
        self.min_side = min(min(t.shape[1:]) for t in self.images)

    def sample(self, batch: int, side: int, gen: torch.Generator) -> torch.Tensor:
        idx = torch.randint(self.n, (batch,), generator=gen).tolist()
        crops = []
        for i in idx:
            img = self.images[i]
            _, h, w = img.shape
            if h < side or w < side:
                ph, pw = max(0, side - h), max(0, side - w)
                img = torch.nn.functional.pad(img[None], (0, pw, 0, ph), mode="reflect" if
                                              (ph < h and pw < w) else "replicate")[0]
                _, h, w = img.shape
            y = int(torch.randint(h - side + 1, (1,), generator=gen))
            x = int(torch.randint(w - side + 1, (1,), generator=gen))
            crops.append(img[:, y:y + side, x:x + side])
        return torch.stack(crops)


# ----------------------------------------------------------------------------- processes

def init_distributed(device: str) -> str:
    """Under ``torchrun`` (WORLD_SIZE > 1): join the process group (NCCL on CUDA, gloo on CPU)
    and return this process's device; otherwise return ``device`` unchanged."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or (dist.is_available() and dist.is_initialized()):
        return device
    cuda = str(device).startswith("cuda")
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return f"cuda:{local}"
    return device


def _unwrap(model):
    """The network inside DistributedDataParallel (or the network itself)."""
    return model.module if hasattr(model, "module") else model


def _distribute(model, device: torch.device, world: int):
    """The model wrapped in DistributedDataParallel under ``torchrun``: gradients are averaged
    over the processes."""
    if world <= 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def _all_stop(out_of_time: bool, device) -> bool:
    """Whether any process is out of time (all processes stop at the same log step)."""
    flag = torch.tensor([float(out_of_time)], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def _mean_over_processes(x: torch.Tensor, world: int) -> torch.Tensor:
    """``x`` averaged over the processes, in place (every process hands over at the same step)."""
    dist.all_reduce(x, op=dist.ReduceOp.SUM)
    x /= world
    return x


# ----------------------------------------------------------------------------- training

#: what the learning curve's evaluator gets (the network, in eval mode) and returns (test metrics)
CurveFn = Callable[[torch.nn.Module], dict]


@dataclass
class State:
    """Everything one training holds between its steps; made by :func:`setup`."""
    cfg: Config                      # the settings as used (a copy, see prepare)
    split: Split
    run: RunDir
    device: torch.device
    rank: int
    world: int
    model: torch.nn.Module           # wrapped in DistributedDataParallel under torchrun
    forward: Callable                # the model, or its torch.compile'd version
    optimiser: torch.optim.Optimizer
    gens: dict[str, torch.Generator]  # "sample" (which images, where to crop), "device" (augmentation, corruption)
    images: TrainingImages
    occluders: torch.Tensor | None
    max_side: int                    # crops never exceed it
    precision: str                   # "bf16" or "fp32"
    autocast: object
    progress: bool | str
    data_spec: str | None
    step: int = 0
    history: list = field(default_factory=list)
    seconds_before: float = 0.0      # training seconds of earlier sessions
    escape: dict = field(default_factory=lambda: {"flat": None, "step": None})  # the start-up's hand-over
    flat_mean: torch.Tensor | None = None
    saved_step: int = 0              # the step of the weights in checkpoint.pt
    retired: bool = False            # whether the old run's done, scoring and summary are gone (retire)
    curve_at: set = field(default_factory=set)    # the steps of train.curve
    on_curve: set = field(default_factory=set)    # the steps curve.jsonl holds
    fraction: float = 0.0            # fraction_done at the current step
    side: int = 8                    # crop side at the current step
    start: float = 0.0               # time.time() when this session's steps began (moved on by curve points)
    stopped_by: str = "steps"
    bad: torch.Tensor | None = None  # whether any step since the last check diverged (on the device)
    log: TrainLog | None = None
    bar: object = None

    @property
    def network(self) -> torch.nn.Module:
        return _unwrap(self.model)

    def phase(self) -> str:
        """Where training stands: "start-up" (whole-image error, train.startup) or "objective"."""
        return "start-up" if self.cfg.train.startup == "whole" and self.escape["step"] is None else "objective"


@dataclass
class Metrics:
    """What one step measured: the loss, its health ((loss,), or (loss, gradient norm, weight
    norm) once :func:`with_norms` added them), whether it diverged, and the learning rate."""
    loss: torch.Tensor
    health: torch.Tensor
    diverged: torch.Tensor
    lr: float
    starting: bool


def prepare(cfg: Config, split: Split) -> Config:
    """A copy of ``cfg`` as a training on ``split`` uses it (``cfg`` stays untouched): the
    data's channels, the augmentation of the category (:func:`ssae.data.resolve_augmentation`),
    every setting checked (:func:`ssae.config.check`)."""
    cfg = copy.deepcopy(cfg)
    cfg.model.in_channels = split.channels
    resolve_augmentation(cfg.data, split.name)  # written to config.json as used
    return check(cfg)


def train(cfg: Config, split: Split, run_dir, device="cpu", *, data_spec: str | None = None,
          progress: bool | str = True, on_curve: CurveFn | None = None) -> dict:
    """Train a model for ``split`` into ``run_dir``, resuming from its checkpoint; no scoring
    (:func:`ssae.pipeline.train` adds the calibration).

    ``progress``: True draws progress bars (a terminal), ``"lines"`` prints a plain line every
    ``train.log_every`` steps (a pipe or a log, :mod:`ssae.progress`), False prints nothing.
    ``on_curve``: the learning curve's evaluator, called with the network at the steps of
    ``train.curve`` and at the last step (None: no curve).

    Returns ``{"history": [...], "seconds": float, "steps": int, "stopped_by": "steps"|"time", ...}``.
    """
    with session(cfg, split, run_dir, device, data_spec=data_spec, progress=progress) as state:
        result = loop(state, on_curve)
        if state.rank == 0:
            finish(state, result)
    return result


@contextlib.contextmanager
def session(cfg: Config, split: Split, run_dir, device="cpu", *, data_spec: str | None = None,
            progress: bool | str = True):
    """The :class:`State` of a training into ``run_dir``, for a ``with`` block.

    Every setting is checked (:func:`prepare`) before anything is written. The folder is
    locked for the whole block (:func:`ssae.runlock.lock_run`; another training into it is
    refused with one line naming the holder); a folder made for a training that failed before
    it wrote anything is removed again. Under ``torchrun`` only rank 0 locks and writes."""
    cfg = prepare(cfg, split)
    run_dir = Path(run_dir)
    if rank_and_world()[0] != 0:
        yield setup(cfg, split, run_dir, device, data_spec, progress)
        return
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with lock_run(run_dir):
            yield setup(cfg, split, run_dir, device, data_spec, progress)
    finally:
        if created and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()


def setup(cfg: Config, split: Split, run_dir: Path, device, data_spec: str | None = None,
          progress: bool | str = True) -> State:
    """The network at its initial weights (or the checkpoint's), Adam, the random generators
    and the decoded training set on ``device``; ``cfg`` as :func:`prepare` returns it."""
    device = torch.device(device)
    rank, world = rank_and_world()
    t = cfg.train
    run = RunDir(run_dir)
    resuming = run.checkpoint.is_file()
    if rank == 0:
        _check_folder(run, cfg, resuming)

    if device.type == "cpu":
        keep_freed_memory()  # each step's activations reused, not faulted in again (ssae.heap)
    torch.manual_seed(t.seed if t.init_seed is None else t.init_seed)  # the initial weights
    model = build_model(cfg).to(device)
    cuda = device.type == "cuda"
    if t.channels_last:  # faster on CUDA (tensor cores) and on CPU (oneDNN) alike
        model = model.to(memory_format=torch.channels_last)
    if cuda:
        torch.backends.cudnn.benchmark = True
    # the fused kernel on CUDA and CPU alike: one pass over all parameters, about a quarter of the
    # per-tensor loop's time on one CPU core; its sums round differently (about 1e-8 per step). On
    # one CPU process the parameters share one buffer, so that the pass is one call, not ninety
    # (FlatAdam: the same weights bit for bit, a third of the time)
    if device.type == "cpu" and world == 1:
        optimiser = FlatAdam(model.parameters(), lr=t.lr)
    else:
        optimiser = torch.optim.Adam(model.parameters(), lr=t.lr, fused=device.type in ("cuda", "cpu"))
    gens = {"sample": torch.Generator().manual_seed(t.seed * 1000 + rank),
            "device": torch.Generator(device=device).manual_seed(t.seed * 1000 + 7 + rank)}
    state = dict(step=0, history=[], seconds_before=0.0, escape={"flat": None, "step": None})
    if resuming:
        state = _resume(run, model, optimiser, gens, device)
        if progress and rank == 0:
            print(f"resuming {run.path} from step {state['step']}", flush=True)  # on a terminal and in a pipe alike

    model = _distribute(model, device, world)
    images = TrainingImages(split.images(split.train, cfg.data.image_size, progress=progress is True and rank == 0),
                            device)
    # crops never exceed a same-size training set; images of varying size are padded instead
    max_side = max(8, images.min_side // 8 * 8) if images.same_size else t.crop_end
    occluders = _occluders(cfg, split, device)
    if rank == 0 and not resuming:
        _warn_untrained(cfg, images, max_side)
    s = State(cfg=cfg, split=split, run=run, device=device, rank=rank, world=world, model=model,
              forward=torch.compile(model) if t.compile else model, optimiser=optimiser, gens=gens, images=images,
              occluders=occluders, max_side=max_side,
              precision=forward_precision(device, t.amp), autocast=precision_autocast(device, t.amp),
              progress=progress, data_spec=data_spec, **state)
    s.saved_step = s.step
    s.curve_at = set(t.curve)
    s.on_curve = {r["step"] for r in run.read_curve()} if rank == 0 else set()
    s.fraction = fraction_done(t, s.step, s.seconds_before)
    s.side = crop_size(s.fraction, cfg, max_side)
    s.flat_mean = None if s.escape["flat"] is None else torch.tensor(s.escape["flat"], device=device)
    return s


def step(s: State) -> Metrics:
    """One optimiser step at the crop side ``s.side`` (the module docstring's steps 1-4); the
    running mean of the flatness (the start-up's hand-over) moves on."""
    t, cfg = s.cfg.train, s.cfg
    target = s.images.sample(t.batch_size, s.side, s.gens["sample"])
    target = augment(target, s.gens["device"], rot90=cfg.data.rot90, flips=cfg.data.flips)
    if cfg.corruption.rotation:
        target = random_rotation(target, s.gens["device"])
    corrupted, mask = corrupt(target, cfg.corruption, s.gens["device"], occluders=s.occluders)
    if t.channels_last:
        corrupted = corrupted.contiguous(memory_format=torch.channels_last)
    with s.autocast:
        out = s.forward(corrupted)
    starting = s.phase() == "start-up"
    out = out.float()
    value = objective_loss(t, out, target, corrupted, mask, starting=starting)
    flat = flatness(out, target, mask)
    s.flat_mean = flat if s.flat_mean is None else 0.95 * s.flat_mean + 0.05 * flat
    s.optimiser.zero_grad(set_to_none=True)
    value.backward()
    lr = learning_rate(t, s.fraction)
    for group in s.optimiser.param_groups:
        group["lr"] = lr
    s.optimiser.step()
    health = value.detach().float()[None]
    return Metrics(loss=value.detach(), health=health, lr=lr, starting=starting, diverged=~torch.isfinite(health[0]))


def with_norms(s: State, m: Metrics) -> Metrics:
    """``m`` with the gradients' and the weights' norms of the step just taken added to its
    health (the gradients stay in place until the next step). Every step checks its loss; the
    norms, a pass over every parameter, are taken at log and checkpoint steps only (a weight
    that became infinite makes the next step's loss infinite in any case)."""
    params = list(s.model.parameters())
    grad_norm = _norm([p.grad for p in params if p.grad is not None], s.device)
    health = torch.cat([m.health[:1], torch.stack([grad_norm, _norm(params, s.device)])])
    return replace(m, health=health, diverged=m.diverged | ~torch.isfinite(health).all()
                               | (health[2] > WEIGHT_NORM_LIMIT))


def loop(s: State, on_curve: CurveFn | None = None) -> dict:
    """Steps until ``train.steps`` or the time budget, with log lines, checkpoints and
    learning-curve points (``on_curve``), then the last checkpoint and curve point. Returns
    what :func:`train` returns."""
    t = s.cfg.train
    if _curve_due(s, on_curve):  # interrupted during an evaluation
        _curve_point(s, s.seconds_before, on_curve)
    s.start = time.time()
    # a run that its time budget stopped takes no further step when run again with that budget
    s.stopped_by = "time" if (s.step < t.steps and t.max_minutes is not None
                              and s.seconds_before > 60 * t.max_minutes) else "steps"
    s.log = TrainLog(t.steps, t.log_every, start=s.step, enabled=s.progress == "lines" and s.rank == 0)
    s.bar = tqdm(total=t.steps, initial=s.step, disable=s.progress is not True or s.rank != 0,
                 desc=f"train {s.split.name}", unit="step")
    s.model.train()
    while s.step < t.steps and s.stopped_by == "steps":
        s.fraction = fraction_done(t, s.step, s.seconds_before + time.time() - s.start if s.world == 1 else None)
        s.side = crop_size(s.fraction, s.cfg, s.max_side)
        m = step(s)
        s.step += 1
        s.bar.update(1)
        elapsed = s.seconds_before + time.time() - s.start
        log_step = s.step % t.log_every == 0 or s.step == t.steps
        out_of_time = t.max_minutes is not None and elapsed > 60 * t.max_minutes
        if s.world > 1 and t.max_minutes is not None:  # all processes stop at the same (log) step
            out_of_time = out_of_time and log_step
            if log_step:
                out_of_time = _all_stop(out_of_time, s.device)
        saving = s.rank == 0 and (s.step % t.checkpoint_every == 0 or s.step == t.steps or out_of_time)
        if log_step or saving or s.step in s.curve_at:
            m = with_norms(s, m)
        s.bad = m.diverged if s.bad is None else s.bad | m.diverged
        writing = saving or (s.rank == 0 and s.step in s.curve_at)   # a curve point saves its step too
        if s.device.type != "cuda" or log_step or writing:  # (on CUDA, reading the flag waits for the GPU)
            _check_divergence(s, m)
        if log_step:
            _record(s, m, elapsed)
        if writing:
            save(s, elapsed)
        if _curve_due(s, on_curve):
            s.start += _curve_point(s, elapsed, on_curve)
        if out_of_time:
            s.stopped_by = "time"
            break
    s.bar.close()
    seconds = s.seconds_before + time.time() - s.start
    result = {"history": s.history, "seconds": seconds, "steps": s.step, "stopped_by": s.stopped_by,
              "world_size": s.world, "batch_size": t.batch_size, "precision": s.precision,
              "images_per_s": s.step * t.batch_size * s.world / max(seconds, 1e-9),
              "startup": t.startup, "handover_step": s.escape["step"], "flatness": s.escape["flat"]}
    if s.rank == 0:
        if s.step != s.saved_step:
            save(s, seconds)
        if on_curve is not None and s.curve_at and s.step not in s.on_curve:
            _curve_point(s, seconds, on_curve)  # a curve ends at the last step, wherever the budget ended
    return result


def finish(s: State, result: dict, scoring: tuple | None = None) -> None:
    """Mark the run finished (rank 0): the scoring (``(calibration, ValidationMaps)`` of
    :func:`ssae.calibration.calibrate_model`, if any), ``train_summary.json``, then ``done``."""
    retire(s)  # (without new steps, only now: the new scoring is ready)
    if scoring is not None:
        write_calibration(s.run.path, *scoring)
    write_json(s.run.summary, {k: v for k, v in result.items() if k != "history"})
    s.run.done.write_text("ok\n")


# ----------------------------------------------------------------------------- the steps' parts

def _record(s: State, m: Metrics, elapsed: float) -> None:
    """A log step: the start-up's hand-over, a row of the loss history, the log line."""
    t = s.cfg.train
    if s.world > 1:  # every process hands over at the same step
        _mean_over_processes(s.flat_mean, s.world)
    s.escape["flat"] = float(s.flat_mean)
    if m.starting and s.escape["flat"] < t.escape_ratio:
        s.escape["step"] = s.step
        if s.progress and s.rank == 0:
            tqdm.write(f"step {s.step}: the output left the flat start (error on clean pixels "
                       f"{s.escape['flat']:.2f} of the crops' variance); objective ({t.objective}) from here")
    s.history.append({"step": s.step, "loss": float(m.loss), "crop": s.side,
                      "seconds": round(elapsed, 2), "lr": m.lr, "flat": round(s.escape["flat"], 4),
                      "phase": "start-up" if m.starting else "objective"})
    s.bar.set_postfix(loss=f"{s.history[-1]['loss']:.4f}", crop=s.side)
    s.log.step(s.step, s.history[-1]["loss"], None if t.max_minutes is None else 60 * t.max_minutes - elapsed)


def _curve_due(s: State, on_curve: CurveFn | None) -> bool:
    return on_curve is not None and s.rank == 0 and s.step in s.curve_at and s.step not in s.on_curve


def _curve_point(s: State, elapsed: float, on_curve: CurveFn) -> float:
    """Evaluate the network at this step for the learning curve (rank 0) into ``curve.jsonl``;
    returns the seconds spent, which do not count against the training budget."""
    began = time.time()
    row = on_curve(s.network.eval())
    s.network.train()
    row.update({"step": s.step, "train_seconds": round(elapsed, 1), "precision": s.precision,
                "phase": s.phase(), "lr": learning_rate(s.cfg.train, s.fraction), "crop": s.side})
    append_curve(s.run.path, row)
    s.on_curve.add(s.step)
    if s.progress:
        tqdm.write(f"curve at step {s.step}: restoration {row['restoration_pixel_auroc']:.3f}, image AUROC "
                   f"{row['image_auroc']:.3f}" + (f", pixel AUROC {row['pixel_auroc']:.3f}"
                                                  if row.get("pixel_auroc") is not None else ""))
    return time.time() - began


def _occluders(cfg: Config, split: Split, device) -> torch.Tensor | None:
    """Occlusion content from another data source (Sec. 4): one stack of the top-left squares."""
    if not cfg.corruption.occluders:
        return None
    arrays = occluder_images(cfg.corruption.occluders, cfg.data.image_size, split.channels)
    side = min(min(a.shape[:2]) for a in arrays)
    return torch.stack([torch.from_numpy(np.ascontiguousarray(a[:side, :side].transpose(2, 0, 1)))
                        for a in arrays]).to(device)


def _warn_untrained(cfg: Config, images: TrainingImages, max_side: int) -> None:
    """Warn when the last crops are smaller than what the network sees at evaluation and some
    weights used there get no gradient (:func:`untrained_weights`)."""
    eval_side = evaluated_side(cfg) if images.same_size else None
    final_side = crop_size(1.0, cfg, max_side)
    if eval_side and final_side < eval_side:
        unused = untrained_weights(cfg, final_side, eval_side)
        if unused:
            print(f"warning: crops end at {final_side} px but the model is evaluated at {eval_side} px, where "
                  f"{len(unused)} parameters ({unused[0]}, ...) have entries that no crop trains; "
                  f"set train.crop_end={eval_side} or score.tiled=true", flush=True)


# ----------------------------------------------------------------------------- divergence

def _norm(tensors, device) -> torch.Tensor:
    """The overall L2 norm of ``tensors`` as a float32 scalar on ``device`` (0 for none)."""
    if not tensors:
        return torch.zeros((), device=device)
    return torch.nn.utils.get_total_norm([x.detach() for x in tensors]).float().to(device)


def _check_divergence(s: State, m: Metrics) -> None:
    """Stop with one line when a step since the last check diverged. The flag is kept on the
    device and read back here: every step on the CPU, on CUDA only at log and checkpoint steps
    (no host synchronisation per step)."""
    if bool(s.bad):
        raise SsaeError(_divergence(m.health, s.step - 1, exact=s.device.type != "cuda", lr=m.lr,
                                    run=s.run))


def _divergence(health: torch.Tensor, step: int, *, exact: bool, lr: float, run: RunDir) -> str:
    """The one-line message of a diverged training: which of the loss, the gradients' norm and
    the weights' norm (``health``) went wrong, at which step and learning rate, and which
    checkpoint is kept."""
    loss, *norms = health.tolist()  # the norms only where they were taken (:func:`with_norms`)
    grad_norm, weight_norm = norms or (0.0, 0.0)
    signs = [f"loss became {loss}" if not math.isfinite(loss) else "",
             f"gradient norm became {grad_norm}" if not math.isfinite(grad_norm) else "",
             f"weight norm reached {weight_norm:.3g} (limit {WEIGHT_NORM_LIMIT:g})"
             if not (math.isfinite(weight_norm) and weight_norm <= WEIGHT_NORM_LIMIT) else ""]
    when = f"at step {step}" if exact else f"at or before step {step}"
    path = run.checkpoint
    kept = f"the last good checkpoint {path} is kept" if path.is_file() else "no checkpoint was written"
    return (f"training diverged {when} at learning rate {lr:.3g}: {', '.join(s for s in signs if s)}; "
            f"{kept}; lower train.lr (--set train.lr=...)")


# ----------------------------------------------------------------------------- the run folder

def save(s: State, seconds: float) -> None:
    """Write the checkpoint and ``history.json`` (rank 0), retiring the old run first."""
    retire(s)
    save_checkpoint(s.run.path, s.model, s.optimiser, s.step, s.history, s.gens, s.cfg, seconds,
                    extra={"escape": dict(s.escape)})
    write_json(s.run.history, s.history)
    s.saved_step = s.step


def retire(s: State) -> None:
    """Before the first new file replaces part of the old run (once): the old run stops looking
    finished (``done``, the scoring and the summary go, ``done`` first) and ``config.json``
    takes the new settings, so that old scoring never sits beside new weights."""
    if not s.retired:
        for path in (s.run.done, s.run.calibration, s.run.avgmap, s.run.stdmap, s.run.summary):
            path.unlink(missing_ok=True)
        _write_config(s.run, s.cfg, s.split, s.data_spec)
        s.retired = True


def _resume(run: RunDir, model, optimiser, gens: dict, device: torch.device) -> dict:
    """Load the checkpoint's weights, optimiser and random states; return its step, history,
    training seconds and start-up state."""
    state = read_checkpoint(run.path, device)
    model.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    for k, g in gens.items():
        if k in state.get("rng", {}):
            g.set_state(state["rng"][k].cpu() if k == "sample" or device.type != "cuda" else state["rng"][k])
    return {"step": state["step"], "history": list(state["history"]), "seconds_before": state.get("seconds", 0.0),
            "escape": {"flat": None, "step": None, **state.get("escape", {})}}


def _check_folder(run: RunDir, cfg: Config, resuming: bool) -> None:
    """Refuse a packed model folder, and a run trained with other settings (the budget and the
    scoring may change between resumptions)."""
    if not resuming:
        if run.weights.is_file():
            raise SsaeError(f"{run.path} is a packed model folder ({WEIGHTS}, no {CHECKPOINT}); "
                            f"train into another --out folder")
        return
    old_cfg, _ = run.read_config()
    a, b = old_cfg.to_dict(), cfg.to_dict()
    for d in (a, b):
        d["train"].pop("steps"), d["train"].pop("max_minutes"), d["train"].pop("curve", None)
        d["score"] = None
    if a != b:
        raise SsaeError(f"{run.path} holds a run with other settings; use a new --out folder")


def _write_config(run: RunDir, cfg: Config, split: Split, data_spec: str | None) -> None:
    """Write ``config.json``: the settings and the data they were used on."""
    meta = {"data": data_spec or split.name, "name": split.name, "channels": split.channels,
            "has_masks": split.has_masks, "ssae_version": __version__}
    write_json(run.config, {"config": cfg.to_dict(), "meta": meta})
