"""Training (Sections 3.2 and 4.1): Adam on corrupted crops, progressive crop sizes, checkpoints.

One step:

1. sample a batch of training images and a random crop of side ``crop_size(fraction_done)`` from each
   (progressive training: the crop grows during training at a *fixed* pixel resolution; the
   images are never resized for it, Section 3.2),
2. augment (rotations by 90 degrees, flips; Section 4.1),
3. corrupt (:func:`ssae.corruption.corrupt`, Figure 5) to get ``(X^, M)``,
4. minimise objective (1) or (4) (:mod:`ssae.objectives`) with Adam (lr 1e-4, Section 4.1;
   optionally decayed, :func:`learning_rate`).

The whole training set is decoded once and kept on the device, so a GPU is not starved by
image decoding. Checkpoints hold the model, the optimiser, the step, the random states and
the full config; they are written to a temporary name and renamed, and :func:`train` resumes
from the last one after an interruption. ``run_dir/done`` is written last.

A run folder is written by one training at a time (``RUN/lock``, :mod:`ssae.runlock`), and a
training run again on a folder changes nothing in it until it has something new to write:
the first new checkpoint retires the old run's scoring and ``done`` (so old scoring never
sits beside new weights), and a new scoring replaces the old one only once it is computed.
A run diverges when its loss, its gradients' norm or its weights' norm stops being finite, or
the weights' norm passes :data:`WEIGHT_NORM_LIMIT`; it then stops with one line naming the
step and the learning rate, keeping its last good checkpoint.

Multi-GPU (or multi-process CPU) training runs under ``torchrun``: each process draws its own
batches, gradients are averaged by DistributedDataParallel, rank 0 writes the run directory.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from . import __version__
from .config import LR_SCHEDULES, Config, check, eval_tile, override
from .corruption import corrupt, random_rotation
from .data import Split, augment, load_images, occluder_images, resolve_augmentation
from .errors import SsaeError
from .objectives import flatness, loss as objective_loss
from .progress import TrainLog
from .precision import autocast as precision_autocast, precision as forward_precision
from .runlock import lock_run
from .calibration import calibrate_model
from .evaluation import curve_point
from .runs import (CHECKPOINT, CONFIG, DONE, HISTORY, SUMMARY, WEIGHTS, append_curve, build_model, read_checkpoint,
                   read_curve, read_run_config, read_summary, save_checkpoint, write_calibration, write_json)

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


def _dist_info() -> tuple[int, int]:
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


# ----------------------------------------------------------------------------- checkpoints

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
    return model.module if hasattr(model, "module") else model


# ----------------------------------------------------------------------------- training

def train(cfg: Config, split: Split, run_dir, device="cpu", *, data_spec: str | None = None,
          progress: bool | str = True, calibrate: bool = True) -> dict:
    """Train a model for ``split`` into ``run_dir``; resume if ``run_dir`` holds a checkpoint.

    ``progress``: True draws progress bars (a terminal), ``"lines"`` prints a plain line every
    ``train.log_every`` steps and at calibration (a pipe or a log, :mod:`ssae.progress`), False
    prints nothing.

    Returns ``{"history": [...], "seconds": float, "steps": int, "stopped_by": "steps"|"time"}``.
    ``cfg.model.in_channels`` is set from the data. With ``calibrate`` (default) the scoring
    settings are chosen on validation data afterwards (:func:`ssae.evaluation.calibrate_model`).

    Every setting is checked (:func:`ssae.config.check`) before anything is written. The folder
    is locked for the whole training (:func:`ssae.runlock.lock_run`; another training into it
    is refused with one line naming the holder). A finished run trained again keeps its
    ``done``, scoring and summary until a new checkpoint replaces its weights or a new scoring
    is ready (see the module docstring); a folder made for a training that failed before it
    wrote anything is removed again.
    """
    run_dir = Path(run_dir)
    cfg.model.in_channels = split.channels
    resolve_augmentation(cfg.data, split.name)  # written to config.json as used
    check(cfg)
    if _dist_info()[0] != 0:  # under torchrun only rank 0 writes the folder
        return _train(cfg, split, run_dir, device, data_spec, progress, calibrate)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with lock_run(run_dir):
            return _train(cfg, split, run_dir, device, data_spec, progress, calibrate)
    finally:
        if created and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()


def _train(cfg: Config, split: Split, run_dir: Path, device, data_spec: str | None, progress: bool | str,
           calibrate: bool) -> dict:
    """:func:`train` once its settings are checked and its folder is locked."""
    device = torch.device(device)
    rank, world = _dist_info()
    t = cfg.train
    resuming = (run_dir / CHECKPOINT).is_file()
    if rank == 0:
        if resuming:
            _check_same_settings(run_dir, cfg)
        elif (run_dir / WEIGHTS).is_file():
            raise SsaeError(f"{run_dir} is a packed model folder ({WEIGHTS}, no {CHECKPOINT}); "
                            f"train into another --out folder")

    torch.manual_seed(t.seed if t.init_seed is None else t.init_seed)  # the initial weights
    model = build_model(cfg).to(device)
    cuda = device.type == "cuda"
    if t.channels_last:  # faster on CUDA (tensor cores) and on CPU (oneDNN) alike
        model = model.to(memory_format=torch.channels_last)
    if cuda:
        torch.backends.cudnn.benchmark = True
    optimiser = torch.optim.Adam(model.parameters(), lr=t.lr, fused=cuda)
    gens = {"sample": torch.Generator().manual_seed(t.seed * 1000 + rank),
            "device": torch.Generator(device=device).manual_seed(t.seed * 1000 + 7 + rank)}

    step, history, seconds_before = 0, [], 0.0
    # the start-up (train.startup): running mean of objectives.flatness and the step of the hand-over
    escape = {"flat": None, "step": None}
    if resuming:
        state = read_checkpoint(run_dir, device)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        step, history, seconds_before = state["step"], list(state["history"]), state.get("seconds", 0.0)
        escape.update(state.get("escape", {}))
        for k, g in gens.items():
            if k in state.get("rng", {}):
                g.set_state(state["rng"][k].cpu() if k == "sample" or not cuda else state["rng"][k])
        if progress and rank == 0:
            print(f"resuming {run_dir} from step {step}", flush=True)  # on a terminal and in a pipe alike
    saved_step = step   # the step of the weights in checkpoint.pt
    retired = False     # whether the old run's done, scoring and summary are gone (retire())

    def retire() -> None:
        """Before the first new file replaces part of the old run (once): the old run stops
        looking finished and config.json takes the new settings."""
        nonlocal retired
        if not retired:
            _retire_finished_run(run_dir)
            _write_config(run_dir, cfg, split, data_spec)
            retired = True

    def save(seconds: float) -> None:
        nonlocal saved_step
        retire()
        save_checkpoint(run_dir, model, optimiser, step, history, gens, cfg, seconds, extra={"escape": dict(escape)})
        write_json(run_dir / HISTORY, history)
        saved_step = step

    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    step_fn = model
    if t.compile:
        step_fn = torch.compile(model)
    params = [p for p in model.parameters()]

    images = TrainingImages(load_images(split.train, cfg.data.image_size, split.channels,
                                        progress=progress is True and rank == 0), device)
    occluders = None
    if cfg.corruption.occluders:  # occlusion content from another data source (Sec. 4)
        arrays = occluder_images(cfg.corruption.occluders, cfg.data.image_size, split.channels)
        side = min(min(a.shape[:2]) for a in arrays)  # one stack: the top-left squares
        occluders = torch.stack([torch.from_numpy(np.ascontiguousarray(a[:side, :side].transpose(2, 0, 1)))
                                 for a in arrays]).to(device)
    # crops never exceed a same-size training set; images of varying size are padded instead
    max_side = max(8, images.min_side // 8 * 8) if images.same_size else t.crop_end

    eval_side = evaluated_side(cfg) if images.same_size else None
    final_side = crop_size(1.0, cfg, max_side)
    if rank == 0 and not resuming and eval_side and final_side < eval_side:
        unused = untrained_weights(cfg, final_side, eval_side)
        if unused:
            print(f"warning: crops end at {final_side} px but the model is evaluated at {eval_side} px, where "
                  f"{len(unused)} parameters ({unused[0]}, ...) have entries that no crop trains; "
                  f"set train.crop_end={eval_side} or score.tiled=true", flush=True)

    autocast = precision_autocast(device, t.amp)
    precision = forward_precision(device, t.amp)
    curve_at = set(t.curve)
    on_curve = {r["step"] for r in read_curve(run_dir)} if rank == 0 else set()

    def curve(elapsed: float) -> float:
        """Evaluate the model at this step for the learning curve (rank 0); returns the seconds
        spent, which do not count against the training budget."""
        began = time.time()
        row = curve_point(_unwrap(model).eval(), cfg, split, str(device))
        _unwrap(model).train()
        row.update({"step": step, "train_seconds": round(elapsed, 1), "precision": precision,
                    "phase": phase(), "lr": learning_rate(t, done), "crop": side})
        append_curve(run_dir, row)
        on_curve.add(step)
        if progress:
            tqdm.write(f"curve at step {step}: restoration {row['restoration_pixel_auroc']:.3f}, image AUROC "
                       f"{row['image_auroc']:.3f}" + (f", pixel AUROC {row['pixel_auroc']:.3f}"
                                                      if row.get("pixel_auroc") is not None else ""))
        return time.time() - began

    def phase() -> str:
        """Where training stands: "start-up" (whole-image error, train.startup) or "objective"."""
        return "start-up" if t.startup == "whole" and escape["step"] is None else "objective"

    done = fraction_done(t, step, seconds_before)
    side = crop_size(done, cfg, max_side)
    flat_mean = None if escape["flat"] is None else torch.tensor(escape["flat"], device=device)
    if rank == 0 and step in curve_at and step not in on_curve:  # interrupted during an evaluation
        curve(seconds_before)
    start = time.time()
    # a run that its time budget stopped takes no further step when run again with that budget
    stopped_by = "time" if (step < t.steps and t.max_minutes is not None
                            and seconds_before > 60 * t.max_minutes) else "steps"
    bad = None
    plain = TrainLog(t.steps, t.log_every, start=step, enabled=progress == "lines" and rank == 0)
    bar = tqdm(total=t.steps, initial=step, disable=progress is not True or rank != 0,
               desc=f"train {split.name}", unit="step")
    model.train()
    while step < t.steps and stopped_by == "steps":
        done = fraction_done(t, step, seconds_before + time.time() - start if world == 1 else None)
        side = crop_size(done, cfg, max_side)
        target = images.sample(t.batch_size, side, gens["sample"])
        target = augment(target, gens["device"], rot90=cfg.data.rot90, flips=cfg.data.flips)
        if cfg.corruption.rotation:
            target = random_rotation(target, gens["device"])
        corrupted, mask = corrupt(target, cfg.corruption, gens["device"], occluders=occluders)
        if t.channels_last:
            corrupted = corrupted.contiguous(memory_format=torch.channels_last)
        with autocast:
            out = step_fn(corrupted)
        starting = phase() == "start-up"
        out = out.float()
        value = objective_loss(t, out, target, corrupted, mask, starting=starting)
        flat = flatness(out, target, mask)
        flat_mean = flat if flat_mean is None else 0.95 * flat_mean + 0.05 * flat
        optimiser.zero_grad(set_to_none=True)
        value.backward()
        grad_norm = _norm([p.grad for p in params if p.grad is not None], device)
        lr = learning_rate(t, done)
        for group in optimiser.param_groups:
            group["lr"] = lr
        optimiser.step()
        # divergence is flagged on the device and read back on the CPU every step, on CUDA only
        # at log and checkpoint steps (no host synchronisation per step)
        health = torch.stack([value.detach().float(), grad_norm, _norm(params, device)])
        diverged = ~torch.isfinite(health).all() | (health[2] > WEIGHT_NORM_LIMIT)
        bad = diverged if bad is None else bad | diverged
        step += 1
        bar.update(1)
        elapsed = seconds_before + time.time() - start
        log_step = step % t.log_every == 0 or step == t.steps
        out_of_time = t.max_minutes is not None and elapsed > 60 * t.max_minutes
        if world > 1 and t.max_minutes is not None:  # all processes stop at the same (log) step
            out_of_time = out_of_time and log_step
            if log_step:
                flag = torch.tensor([float(out_of_time)], device=device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                out_of_time = bool(flag.item())
        saving = rank == 0 and (step % t.checkpoint_every == 0 or step == t.steps or out_of_time)
        if (not cuda or log_step or saving) and bool(bad):
            raise SsaeError(_divergence(health, step - 1, exact=not cuda, lr=lr, run_dir=run_dir))
        if log_step:
            if world > 1:  # every process hands over at the same step
                dist.all_reduce(flat_mean, op=dist.ReduceOp.SUM)
                flat_mean /= world
            escape["flat"] = float(flat_mean)
            if starting and escape["flat"] < t.escape_ratio:
                escape["step"] = step
                if progress and rank == 0:
                    tqdm.write(f"step {step}: the output left the flat start (error on clean pixels "
                               f"{escape['flat']:.2f} of the crops' variance); objective ({t.objective}) from here")
            history.append({"step": step, "loss": float(value.detach()), "crop": side,
                            "seconds": round(elapsed, 2), "lr": lr, "flat": round(escape["flat"], 4),
                            "phase": "start-up" if starting else "objective"})
            bar.set_postfix(loss=f"{history[-1]['loss']:.4f}", crop=side)
            plain.step(step, history[-1]["loss"],
                       None if t.max_minutes is None else 60 * t.max_minutes - elapsed)
        if saving or (rank == 0 and step in curve_at):
            save(elapsed)
        if rank == 0 and step in curve_at and step not in on_curve:
            start += curve(elapsed)
        if out_of_time:
            stopped_by = "time"
            break
    bar.close()
    seconds = seconds_before + time.time() - start
    result = {"history": history, "seconds": seconds, "steps": step, "stopped_by": stopped_by,
              "world_size": world, "batch_size": t.batch_size, "precision": precision,
              "images_per_s": step * t.batch_size * world / max(seconds, 1e-9),
              "startup": t.startup, "handover_step": escape["step"], "flatness": escape["flat"]}
    if rank == 0:
        if step != saved_step:
            save(seconds)
        if curve_at and step not in on_curve:  # a curve ends at the last step, wherever the budget ended
            curve(seconds)
        if calibrate:
            plain.calibrating(len(split.val))
        scoring = calibrate_model(_unwrap(model).eval(), cfg, split, str(device), log=plain.say) if calibrate else None
        retire()  # (without new steps, only now: the new scoring is ready)
        if scoring is not None:
            write_calibration(run_dir, *scoring)
        write_json(run_dir / SUMMARY, {k: v for k, v in result.items() if k != "history"})
        (run_dir / DONE).write_text("ok\n")
    return result


def _norm(tensors, device) -> torch.Tensor:
    """The overall L2 norm of ``tensors`` as a float32 scalar on ``device`` (0 for none)."""
    if not tensors:
        return torch.zeros((), device=device)
    return torch.nn.utils.get_total_norm([x.detach() for x in tensors]).float().to(device)


def _divergence(health: torch.Tensor, step: int, *, exact: bool, lr: float, run_dir: Path) -> str:
    """The one-line message of a diverged training: which of the loss, the gradients' norm and
    the weights' norm (``health``) went wrong, at which step and learning rate, and which
    checkpoint is kept."""
    loss, grad_norm, weight_norm = health.tolist()
    signs = [f"loss became {loss}" if not math.isfinite(loss) else "",
             f"gradient norm became {grad_norm}" if not math.isfinite(grad_norm) else "",
             f"weight norm reached {weight_norm:.3g} (limit {WEIGHT_NORM_LIMIT:g})"
             if not (math.isfinite(weight_norm) and weight_norm <= WEIGHT_NORM_LIMIT) else ""]
    when = f"at step {step}" if exact else f"at or before step {step}"
    path = run_dir / CHECKPOINT
    kept = f"the last good checkpoint {path} is kept" if path.is_file() else "no checkpoint was written"
    return (f"training diverged {when} at learning rate {lr:.3g}: {', '.join(s for s in signs if s)}; "
            f"{kept}; lower train.lr (--set train.lr=...)")


#: Retry k of :func:`train_until_restored` uses initial weights seeded with base + k * RETRY_SEED_STEP.
RETRY_SEED_STEP = 1000


def retry_dir(run_dir, k: int) -> Path:
    """Run directory of retry ``k`` of ``run_dir``: a sibling ``<name>-retry<k>``."""
    run_dir = Path(run_dir)
    return run_dir.with_name(f"{run_dir.name}-retry{k}")


def train_until_restored(cfg: Config, split: Split, run_dir, retries: int, device="cpu", *,
                         data_spec: str | None = None, progress: bool | str = True) -> tuple[Path, list[dict]]:
    """Train into ``run_dir``; while the model fails the restoration check (ours: pixel AUROC
    of its maps on validation images corrupted as in training below
    :data:`ssae.evaluation.RESTORATION_MIN`), train again with other initial weights, at most
    ``retries`` times: retry k uses ``train.init_seed`` = (init_seed or seed) + k x
    :data:`RETRY_SEED_STEP` and the same data stream, into :func:`retry_dir` (run_dir, k).

    The rule uses validation data only (see the book's chapter 'What moves the numbers on real
    defects'). Returns the run directory to use
    (the first that passes, else the one with the highest check) and one dict per attempt:
    ``run_dir``, ``init_seed``, ``restoration`` (None without a calibration), ``steps``,
    ``seconds``, ``stopped_by``. A retry directory that finished earlier is not trained again,
    so rerunning the same command resumes where it stopped.
    """
    from .runs import CALIBRATION, read_calibration
    from .calibration import RESTORATION_MIN

    if retries < 0:
        raise SsaeError(f"retries must be >= 0, got {retries}")
    if retries and _dist_info()[1] > 1:
        raise SsaeError("retries are not supported under torchrun; retrain with --set train.init_seed=N")
    base = cfg.train.init_seed if cfg.train.init_seed is not None else cfg.train.seed
    attempts: list[dict] = []
    for k in range(retries + 1):
        out = Path(run_dir) if k == 0 else retry_dir(run_dir, k)
        kcfg = cfg if k == 0 else override(cfg, train={"init_seed": base + k * RETRY_SEED_STEP})
        if k:
            print(f"restoration check {attempts[-1]['restoration']:.2f} < {RESTORATION_MIN}: training again "
                  f"with train.init_seed={kcfg.train.init_seed} into {out}", flush=True)
        if k == 0 or not (out / DONE).is_file():
            res = train(kcfg, split, out, device, data_spec=data_spec, progress=progress)
        else:
            res = read_summary(out)
        check = read_calibration(out)[0].get("restoration_pixel_auroc") if (out / CALIBRATION).is_file() else None
        attempts.append({"run_dir": out, "init_seed": kcfg.train.init_seed,
                         "restoration": check, "steps": res.get("steps"), "seconds": res.get("seconds"),
                         "stopped_by": res.get("stopped_by")})
        if check is None or not np.isfinite(check) or check >= RESTORATION_MIN:
            return out, attempts
    best = max(attempts, key=lambda a: a["restoration"])
    return best["run_dir"], attempts


def _check_same_settings(run_dir: Path, cfg: Config) -> None:
    """Refuse to resume a run trained with other settings (the budget and the scoring may change
    between resumptions)."""
    old_cfg, _ = read_run_config(run_dir)
    a, b = old_cfg.to_dict(), cfg.to_dict()
    for d in (a, b):
        d["train"].pop("steps"), d["train"].pop("max_minutes"), d["train"].pop("curve", None)
        d["score"] = None
    if a != b:
        raise SsaeError(f"{run_dir} holds a run with other settings; use a new --out folder")


def _write_config(run_dir: Path, cfg: Config, split: Split, data_spec: str | None) -> None:
    """Write ``config.json``: the settings and the data they were used on."""
    meta = {"data": data_spec or split.name, "name": split.name, "channels": split.channels,
            "has_masks": split.has_masks, "ssae_version": __version__}
    write_json(run_dir / CONFIG, {"config": cfg.to_dict(), "meta": meta})


def _retire_finished_run(run_dir: Path) -> None:
    """Remove ``done`` (first), the scoring (calibration, avgmap, stdmap) and the summary: what
    says that the run's weights are finished and scored. Called just before a new checkpoint or a
    new scoring replaces them, so that old scoring never sits beside new weights."""
    from .runs import AVGMAP, CALIBRATION, STDMAP  # evaluation imports this module

    for name in (DONE, CALIBRATION, AVGMAP, STDMAP, SUMMARY):
        (run_dir / name).unlink(missing_ok=True)
