"""Throughput of ssae's training step and inference, beside a PatchCore-style scorer, in one run.

    python benchmarks/gpu.py [--device cuda] [--size 512] [--batch 16] [--steps N] [--compile]
                             [--quick] [--json PATH] [--peak-tflops T]

What is measured (benchmarks/README.md has the details and the targets):

- training: one optimiser step of the SSAE of Table 1 (width 1) on a batch of ``--batch``
  images of ``--size`` pixels: crops from a training set that lives on the device, 90-degree
  rotations and flips, the corruption of Figure 5 (:func:`ssae.corruption.corrupt`) generated
  on the device, forward pass under bf16 autocast in channels_last layout, objective (1),
  backward pass and Adam. Two input pipelines are timed: ``ssae`` is exactly what
  ``ssae.training.train`` does per step; ``syncfree`` draws the batch and the augmentation
  on the device so the host never waits for the GPU outside of the corruption.
  FLOPs per step are counted with ``torch.utils.flop_counter.FlopCounterMode`` (model
  convolutions forward and backward, on the meta device) and turned into TFLOP/s and a
  fraction of the bf16 dense peak (``--peak-tflops``, by default from the device name).
- inference: anomaly scores end to end and batched: the model, Diff (eq. 2), G_k^n (eq. 3)
  and the image score, images/s and megapixels/s.
- PatchCore-style scorer: WideResNet-50-2 (random weights) layer2 + layer3 features, layer3
  upsampled to layer2's grid, concatenated (1536 channels), 3x3 average pooling, distance of
  every patch to its nearest neighbour in a random 16384 x 1536 memory bank (``torch.cdist``
  + min), the patch-score map upsampled to the image size, image score = its maximum.
- peak memory of each phase, and the ratio of ssae's pixel throughput to the scorer's.

Timing: warm-up iterations first, then ``--repeats`` windows of ``--steps`` iterations, each
closed by a device synchronisation; the median window gives the time per iteration. Nothing
inside a timed window asks the device for a value, except what ``ssae`` itself does.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import functools
import json
import os
import platform
import resource
import shlex
import statistics
import sys
import time
import traceback
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing ssae
    sys.path.insert(0, str(ROOT))
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from ssae import scoring  # noqa: E402
from ssae.config import profile  # noqa: E402
from ssae.corruption import corrupt  # noqa: E402
from ssae.data import augment  # noqa: E402
from ssae.hardware import hardware  # noqa: E402
from ssae.model import SSAE  # noqa: E402
from ssae.objectives import loss as objective_loss  # noqa: E402

import wide_resnet  # noqa: E402

#: dense bf16 Tensor Core peaks (no sparsity) by device name, first match wins
PEAKS = (
    ("H200", 989.4, "NVIDIA H200 datasheet: 1,979 TFLOP/s bf16 with 2:4 sparsity = 989 dense (SXM)"),
    ("H100 PCIe", 756.0, "NVIDIA H100 datasheet: 1,513 TFLOP/s bf16 with sparsity = 756 dense (PCIe)"),
    ("H100", 989.4, "NVIDIA H100 datasheet: 1,979 TFLOP/s bf16 with sparsity = 989 dense (SXM)"),
    ("A100", 312.0, "NVIDIA A100 datasheet: 312 TFLOP/s bf16 dense"),
    ("L40S", 362.0, "NVIDIA L40S datasheet: 733 TFLOP/s bf16 with sparsity = 362 dense"),
    ("L4", 121.0, "NVIDIA L4 datasheet: 242 TFLOP/s bf16 with sparsity = 121 dense"),
)

#: the GPU targets (ours) on one H200 at 512 px
TARGETS = {"train_images_per_s": 430.0, "inference_images_per_s": 1000.0, "pixel_ratio": 3.0}


# ----------------------------------------------------------------------------- arguments

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default=None, help="cuda, cuda:N or cpu (default: cuda if available)")
    p.add_argument("--size", type=int, default=None, help="training and inference side in pixels (512)")
    p.add_argument("--batch", type=int, default=None, help="training batch (16)")
    p.add_argument("--infer-batch", type=int, default=None, help="inference batch of both scorers at --size (32); other sizes get the same pixels per batch")
    p.add_argument("--steps", type=int, default=None, help="iterations per timed window (10)")
    p.add_argument("--warmup", type=int, default=None, help="untimed iterations first (5)")
    p.add_argument("--repeats", type=int, default=None, help="timed windows; the median counts (5)")
    p.add_argument("--width", type=float, default=None, help="SSAE channel multiplier (1.0 = Table 1)")
    p.add_argument("--channels", type=int, default=3, help="image channels (3 colour, 1 grey)")
    p.add_argument("--train-images", type=int, default=None, help="training set kept on the device (64)")
    p.add_argument("--pc-sizes", type=int, nargs="+", default=None,
                   help="sides for the scorer comparison (224 512); ssae inference is timed at each too")
    p.add_argument("--bank", type=int, default=None, help="memory bank rows of the PatchCore-style scorer (16384)")
    p.add_argument("--pipelines", default="ssae,syncfree", help="training input pipelines to time")
    p.add_argument("--compile", action="store_true", help="torch.compile the SSAE (training and inference)")
    p.add_argument("--no-cudnn-benchmark", action="store_true", help="leave cudnn.benchmark off")
    p.add_argument("--no-patchcore", action="store_true", help="skip the PatchCore-style scorer")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="bf16 dense peak of the device in TFLOP/s (default: from the device name)")
    p.add_argument("--strict", action="store_true", help="stop at the first failing measurement")
    p.add_argument("--quick", action="store_true", help="tiny sizes: seconds on a CPU (for the tests)")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's; 1 with --quick, which is fastest on a busy machine)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.threads is None and args.quick:
        args.threads = 1
    full = dict(size=512, batch=16, infer_batch=32, steps=10, warmup=5, repeats=5, width=1.0,
                train_images=64, pc_sizes=[224, 512], bank=16384)
    quick = dict(size=32, batch=2, infer_batch=2, steps=2, warmup=1, repeats=2, width=1 / 16,
                 train_images=4, pc_sizes=[32, 64], bank=256)
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.size % 8:
        p.error(f"--size must be a multiple of 8 (the SSAE pools three times), got {args.size}")
    bad = [s for s in args.pc_sizes if s % 8]
    if bad:
        p.error(f"--pc-sizes must be multiples of 8, got {bad}")
    args.pipelines = [s.strip() for s in args.pipelines.split(",") if s.strip()]
    unknown = set(args.pipelines) - {"ssae", "syncfree"}
    if unknown:
        p.error(f"unknown pipeline(s) {sorted(unknown)}; choose ssae and/or syncfree")
    return args


# ----------------------------------------------------------------------------- device helpers

def is_cuda(device: torch.device) -> bool:
    return device.type == "cuda"


def sync(device: torch.device) -> None:
    if is_cuda(device):
        torch.cuda.synchronize(device)


def peak_for(name: str, override: float | None) -> tuple[float | None, str]:
    """The bf16 dense peak in TFLOP/s and where the number comes from."""
    if override is not None:
        return override, "--peak-tflops"
    for key, value, source in PEAKS:
        if key.lower() in name.lower():
            return value, source
    return None, "unknown device: pass --peak-tflops for a fraction of the peak"


def reset_peak(device: torch.device) -> None:
    if is_cuda(device):
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> tuple[int, str]:
    """Peak bytes since :func:`reset_peak` (CUDA allocator), or the process's max RSS on a CPU."""
    if is_cuda(device):
        return int(torch.cuda.max_memory_allocated(device)), "torch.cuda.max_memory_allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return int(rss * scale), "process max RSS (whole run so far)"


def timed(fn, device: torch.device, *, warmup: int, iters: int, repeats: int) -> dict:
    """Median seconds per call of ``fn`` over ``repeats`` windows of ``iters`` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    windows = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iters):
            fn()
        sync(device)
        windows.append((time.perf_counter() - start) / iters)
    return {"seconds": statistics.median(windows), "windows": windows}


def count_host_syncs(fn, device: torch.device) -> int | None:
    """How many times one call of ``fn`` makes the host wait for the GPU (CUDA only)."""
    if not is_cuda(device):
        return None
    sync(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    sync(device)
    return sum("synchroniz" in str(w.message).lower() for w in caught)


# ----------------------------------------------------------------------------- FLOPs

@functools.lru_cache(maxsize=None)
def ssae_flops(channels: int, width: float, size: int, batch: int, train: bool, f: int = 3) -> int:
    """FLOPs of the SSAE's forward (and with ``train`` also backward) pass on ``batch`` images of
    ``size`` x ``size``, counted by FlopCounterMode on the meta device (no arithmetic is done)."""
    with torch.device("meta"):
        model = SSAE(in_channels=channels, f=f, width=width)
        x = torch.empty(batch, channels, size, size)
    model.train(train)
    counter = FlopCounterMode(display=False)
    with counter:
        if train:
            model(x).float().mean().backward()
        else:
            with torch.no_grad():
                model(x)
    return int(counter.get_total_flops())


@functools.lru_cache(maxsize=None)
def backbone_flops(size: int, channels: int = 3) -> int:
    """FLOPs of the PatchCore-style feature extractor (WideResNet-50-2 to layer3) for one image."""
    with torch.device("meta"):
        net = wide_resnet.WideResNet50x2Features(channels)
        x = torch.empty(1, channels, size, size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(x)
    return int(counter.get_total_flops())


def measured_matmul_tflops(device: torch.device, n: int = 8192) -> float | None:
    """bf16 n x n x n matrix products per second on this device: a measured ceiling (CUDA only)."""
    if not is_cuda(device):
        return None
    gen = torch.Generator(device=device).manual_seed(1)
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16, generator=gen)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16, generator=gen)
    r = timed(lambda: a @ b, device, warmup=3, iters=10, repeats=3)
    a = b = None  # free the device memory
    return 2 * n ** 3 / r["seconds"] / 1e12


# ----------------------------------------------------------------------------- training

def training_set(n: int, channels: int, size: int, device: torch.device, gen: torch.Generator) -> torch.Tensor:
    """``n`` smooth random images (B x C x size x size, float32 in [0, 1]) on the device.

    Low-resolution noise upsampled bicubically: image-like content for the elastic
    corruption; the pixel values do not change the amount of work."""
    low = torch.rand(n, channels, max(2, size // 16), max(2, size // 16), device=device, generator=gen)
    return F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp_(0, 1).contiguous()


def dihedral_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Rotations by multiples of 90 degrees and flips without a host synchronisation.

    A random element of the symmetry group of the square per image, as a transpose (square
    images only) followed by a horizontal and a vertical flip, each chosen by ``torch.where``:
    every element of the group is reached, each with probability 1/8."""
    b = x.shape[0]
    r = torch.randint(0, 8, (b,), device=x.device, generator=gen)
    pick = lambda bit: (r & bit).bool()[:, None, None, None]  # noqa: E731
    if x.shape[-1] == x.shape[-2]:
        x = torch.where(pick(1), x.transpose(-1, -2), x)
    x = torch.where(pick(2), x.flip(-1), x)
    return torch.where(pick(4), x.flip(-2), x)


def make_model(args, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(args.seed)
    model = SSAE(in_channels=args.channels, f=3, width=args.width).to(device)
    if is_cuda(device):
        model = model.to(memory_format=torch.channels_last)
    return model


def bench_training(args, device: torch.device, pipeline: str, images: torch.Tensor) -> dict:
    """One training step as ``ssae.training.train`` takes it, timed; see the module docstring."""
    from ssae.training import TrainingImages  # the trainer's own crop sampler

    cfg = profile("paper")
    cuda = is_cuda(device)
    model = make_model(args, device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    step_fn = torch.compile(model) if args.compile else model
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
    host_gen = torch.Generator().manual_seed(args.seed)
    dev_gen = torch.Generator(device=device).manual_seed(args.seed + 7)
    side = args.size
    bad = torch.zeros((), dtype=torch.bool, device=device)

    if pipeline == "ssae":
        arrays = [a.permute(1, 2, 0).contiguous().cpu().numpy() for a in images]
        sampler = TrainingImages(arrays, device)

        def batch():
            target = sampler.sample(args.batch, side, host_gen)
            return augment(target, dev_gen, rot90=cfg.data.rot90, flips=cfg.data.flips)
    else:
        def batch():
            idx = torch.randint(images.shape[0], (args.batch,), device=device, generator=dev_gen)
            return dihedral_augment(images.index_select(0, idx), dev_gen)

    def step():
        nonlocal bad
        target = batch()
        corrupted, mask = corrupt(target, cfg.corruption, dev_gen)
        if cuda:
            corrupted = corrupted.contiguous(memory_format=torch.channels_last)
        with autocast:
            out = step_fn(corrupted)
        value = objective_loss(cfg.train, out.float(), target, corrupted, mask)
        if pipeline == "ssae":  # the trainer checks every loss on the host
            if not torch.isfinite(value):
                raise RuntimeError(f"loss became {value.item()} in the benchmark")
        else:
            bad = bad | ~torch.isfinite(value)
        optimiser.zero_grad(set_to_none=True)
        value.backward()
        optimiser.step()

    reset_peak(device)
    t0 = time.perf_counter()
    step()  # first step: cuDNN autotuning, compilation
    sync(device)
    first = time.perf_counter() - t0
    syncs = count_host_syncs(step, device)
    r = timed(step, device, warmup=args.warmup, iters=args.steps, repeats=args.repeats)
    if bool(bad):
        raise RuntimeError("the loss became non-finite during the benchmark")
    mem, mem_kind = peak_memory(device)
    flops = ssae_flops(args.channels, args.width, side, args.batch, train=True)
    sec = r["seconds"]
    return {
        "pipeline": pipeline, "size": side, "batch": args.batch, "width": args.width,
        "images_per_s": args.batch / sec, "ms_per_step": 1000 * sec,
        "ms_per_step_windows": [1000 * w for w in r["windows"]],
        "flops_per_step": flops, "flops_per_image": flops / args.batch,
        "tflops_achieved": flops / sec / 1e12,
        "first_step_s": first, "host_syncs_per_step": syncs,
        "peak_memory_bytes": mem, "peak_memory_kind": mem_kind,
    }


# ----------------------------------------------------------------------------- inference

def bench_ssae_inference(args, device: torch.device, model, size: int, batch: int) -> dict:
    """Scores end to end: model, Diff (eq. 2), G_k^n (eq. 3), image score; batched."""
    cuda = is_cuda(device)
    sc = profile("paper").score
    gen = torch.Generator(device=device).manual_seed(args.seed + 11)
    x = training_set(batch, args.channels, size, device, gen)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()

    def infer():
        with torch.inference_mode():
            with autocast:
                y = model(x)
            m = scoring.smooth(scoring.diff(x, y), sc.n, sc.k)
            return scoring.image_score(m, sc.reduce)

    reset_peak(device)
    infer()
    r = timed(infer, device, warmup=args.warmup, iters=args.steps, repeats=args.repeats)
    mem, mem_kind = peak_memory(device)
    sec = r["seconds"]
    flops = ssae_flops(args.channels, args.width, size, 1, train=False)
    ips = batch / sec
    return {"size": size, "batch": batch, "images_per_s": ips,
            "megapixels_per_s": ips * size * size / 1e6, "ms_per_batch": 1000 * sec,
            "flops_per_image": flops, "tflops_achieved": flops * ips / 1e12,
            "score": {"diff": "l2", "n": sc.n, "k": sc.k, "reduce": sc.reduce},
            "peak_memory_bytes": mem, "peak_memory_kind": mem_kind}


def patchcore_scorer(backbone, bank: torch.Tensor, size: int, cuda: bool, nn_precision: str):
    """A function from a batch of images to (image scores, pixel score maps), PatchCore-style."""
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()

    def score(x):
        with torch.inference_mode():
            with autocast:
                f2, f3 = backbone(x)
                f3 = F.interpolate(f3, size=f2.shape[-2:], mode="bilinear", align_corners=False)
                feats = F.avg_pool2d(torch.cat([f2, f3], dim=1), 3, stride=1, padding=1)
            b, d, h, w = feats.shape
            patches = feats.float().permute(0, 2, 3, 1).reshape(b * h * w, d)
            if nn_precision == "bf16":
                dist = torch.cdist(patches.bfloat16(), bank.bfloat16()).float()
            else:
                dist = torch.cdist(patches, bank)
            nearest = dist.amin(dim=1).view(b, 1, h, w)
            pixel = F.interpolate(nearest, size=(size, size), mode="bilinear", align_corners=False)
            return pixel.flatten(1).amax(dim=1), pixel

    return score


def bench_patchcore(args, device: torch.device, backbone, bank, size: int, nn_precision: str = "fp32",
                    batch: int | None = None) -> dict:
    cuda = is_cuda(device)
    batch = batch or args.infer_batch
    gen = torch.Generator(device=device).manual_seed(args.seed + 13)
    x = training_set(batch, 3, size, device, gen)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    score = patchcore_scorer(backbone, bank, size, cuda, nn_precision)
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = nn_precision == "tf32"
    try:
        reset_peak(device)
        score(x)
        r = timed(lambda: score(x), device, warmup=args.warmup, iters=args.steps, repeats=args.repeats)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    mem, mem_kind = peak_memory(device)
    sec = r["seconds"]
    ips = batch / sec
    patches = (size // 8) ** 2
    flops = backbone_flops(size) + 2 * patches * bank.shape[0] * bank.shape[1]
    return {"size": size, "batch": batch, "nn_precision": nn_precision,
            "images_per_s": ips, "megapixels_per_s": ips * size * size / 1e6, "ms_per_batch": 1000 * sec,
            "flops_per_image": flops, "tflops_achieved": flops * ips / 1e12,
            "peak_memory_bytes": mem, "peak_memory_kind": mem_kind}


# ----------------------------------------------------------------------------- run

def run(args) -> dict:
    device = torch.device(args.device)
    cuda = is_cuda(device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if cuda:
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
    name = hardware(str(device))
    peak, peak_source = peak_for(name, args.peak_tflops)
    command = "python benchmarks/gpu.py" + ("" if not args.argv else " " + shlex.join(args.argv))
    meta = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": str(device), "device_name": name, "threads": torch.get_num_threads(), "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None, "python": platform.python_version(),
        "host": platform.node(), "command": command, "quick": args.quick, "compile": args.compile,
        "precision": "bf16 autocast, channels_last" if cuda else "float32 (CPU)",
        "cudnn_benchmark": bool(cuda and not args.no_cudnn_benchmark),
        "peak_tflops": peak, "peak_source": peak_source,
    }
    t_start = time.perf_counter()
    result: dict = {"meta": meta, "training": {}, "inference": {}, "patchcore": {}, "pixel_ratio": {}, "errors": {}}

    def attempt(label, fn):
        """Run one measurement; a failure is recorded and reported, the others still run."""
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - one failed phase must not lose the others
            if args.strict:
                raise
            result["errors"][label] = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
            traceback.print_exc()
            if cuda:
                torch.cuda.empty_cache()
            return None

    meta["matmul_tflops_measured"] = attempt("matmul", lambda: measured_matmul_tflops(device))
    gen = torch.Generator(device=device).manual_seed(args.seed)
    images = training_set(args.train_images, args.channels, args.size, device, gen)
    for pipeline in args.pipelines:
        tr = attempt(f"training {pipeline}", lambda: bench_training(args, device, pipeline, images))
        if tr is None:
            continue
        tr["fraction_of_peak"] = tr["tflops_achieved"] / peak if peak else None
        mm = meta["matmul_tflops_measured"]
        tr["fraction_of_measured_matmul"] = tr["tflops_achieved"] / mm if mm else None
        result["training"][pipeline] = tr
    images = None

    model = make_model(args, device).eval()
    if args.compile:
        model = torch.compile(model)
    sizes = list(dict.fromkeys([args.size, *([] if args.no_patchcore else args.pc_sizes)]))
    for size in sizes:
        r = attempt(f"inference {size}", lambda: bench_ssae_inference(args, device, model, size, batch_for(args, size)))
        if r is not None:
            result["inference"][str(size)] = r
    model = None

    if not args.no_patchcore:
        backbone, source = wide_resnet.build()
        print(f"PatchCore-style backbone: {source}", flush=True)
        backbone = backbone.to(device)
        if cuda:
            backbone = backbone.to(memory_format=torch.channels_last)
        bank_gen = torch.Generator(device=device).manual_seed(args.seed + 17)
        bank = torch.rand(args.bank, 1536, device=device, generator=bank_gen)
        result["patchcore"]["backbone"] = source
        result["patchcore"]["bank"] = [args.bank, 1536]
        variants = ["fp32", "tf32"] if cuda else ["fp32"]
        for size in args.pc_sizes:
            for v in variants:
                key = str(size) if v == "fp32" else f"{size}_{v}"
                r = attempt(f"patchcore {key}",
                            lambda: bench_patchcore(args, device, backbone, bank, size, v, batch_for(args, size)))
                if r is None:
                    continue
                result["patchcore"][key] = r
                ours = result["inference"].get(str(size), {}).get("megapixels_per_s")
                if ours:
                    result["pixel_ratio"][key] = ours / r["megapixels_per_s"]
        del backbone, bank

    result["targets"] = targets(result, args, name)
    meta["seconds"] = time.perf_counter() - t_start
    return result


def batch_for(args, size: int) -> int:
    """Inference batch at ``size``: ``--infer-batch`` at ``--size``, scaled to the same pixels per
    batch at other sizes (a 224 px batch is as much work as a 512 px one; at most 4x the images)."""
    scaled = round(args.infer_batch * (args.size / size) ** 2)
    return int(max(1, min(scaled, 4 * args.infer_batch)))


def targets(result: dict, args, name: str) -> dict:
    """The GPU targets, judged only where they apply (an H200 at 512 px, Table 1 width)."""
    applies = "h200" in name.lower() and args.size == 512 and args.width == 1.0 and not args.quick
    out = {"applies": applies, "note": "targets are for one H200 at 512 px, Table 1 width 1"}
    best = max((t["images_per_s"] for t in result["training"].values()), default=None)
    inf = result["inference"].get(str(args.size), {}).get("images_per_s")
    ratio = result["pixel_ratio"].get(str(args.size))
    for key, value in (("train_images_per_s", best), ("inference_images_per_s", inf), ("pixel_ratio", ratio)):
        out[key] = {"target": TARGETS[key], "value": value,
                    "met": (value >= TARGETS[key]) if (applies and value is not None) else None}
    return out


# ----------------------------------------------------------------------------- report

def _mem(b: int | None) -> str:
    return "n/a" if b is None else f"{b / 2**30:.2f} GiB"


def _opt(v, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


def report(res: dict) -> str:
    m = res["meta"]
    lines = [
        f"ssae benchmark  {m['date']}  {m['device_name']}  torch {m['torch']}"
        + (f" (CUDA {m['cuda']})" if m["cuda"] else ""),
        f"command: {m['command']}",
        f"precision: {m['precision']}; cudnn.benchmark {'on' if m['cudnn_benchmark'] else 'off'}; "
        f"torch.compile {'on' if m['compile'] else 'off'}",
        f"bf16 dense peak: {_opt(m['peak_tflops'], '.1f')} TFLOP/s ({m['peak_source']}); "
        f"measured bf16 matmul 8192^3: {_opt(m['matmul_tflops_measured'], '.0f')} TFLOP/s",
    ]
    if res["training"]:
        any_tr = next(iter(res["training"].values()))
        lines += ["", f"training: SSAE width {any_tr['width']:g}, {any_tr['size']} px, batch {any_tr['batch']}, "
                      f"corruption on the device, objective (1), Adam; "
                      f"{any_tr['flops_per_image'] / 1e9:.4g} GFLOP per image (fwd+bwd, FlopCounterMode)",
                  f"  {'pipeline':<9} {'img/s':>9} {'ms/step':>8} {'TFLOP/s':>8} {'%peak':>6} {'%matmul':>7} "
                  f"{'syncs':>5} {'peak mem':>10}"]
        for name, t in res["training"].items():
            frac = _opt(None if t["fraction_of_peak"] is None else 100 * t["fraction_of_peak"], ".1f")
            fmm = _opt(None if t["fraction_of_measured_matmul"] is None else 100 * t["fraction_of_measured_matmul"], ".1f")
            lines.append(f"  {name:<9} {t['images_per_s']:>9.1f} {t['ms_per_step']:>8.2f} {t['tflops_achieved']:>8.2f} "
                         f"{frac:>6} {fmm:>7} {_opt(t['host_syncs_per_step'], 'd'):>5} {_mem(t['peak_memory_bytes']):>10}")
    if res["inference"]:
        sc = next(iter(res["inference"].values()))["score"]
        lines += ["", f"inference: model + Diff + G_k^n (n={sc['n']}, k={sc['k']}) + image score ({sc['reduce']})",
                  f"  {'size':>5} {'batch':>5} {'img/s':>9} {'MP/s':>9} {'ms/batch':>9} {'TFLOP/s':>8} {'peak mem':>10}"]
        for size, r in res["inference"].items():
            lines.append(f"  {size:>5} {r['batch']:>5} {r['images_per_s']:>9.1f} {r['megapixels_per_s']:>9.2f} "
                         f"{r['ms_per_batch']:>9.2f} {r['tflops_achieved']:>8.2f} {_mem(r['peak_memory_bytes']):>10}")
    pc = res["patchcore"]
    if pc:
        lines += ["", f"PatchCore-style: {pc['backbone']}; layer2+layer3 (1536 ch), 3x3 avg pool, "
                      f"torch.cdist to a {pc['bank'][0]} x {pc['bank'][1]} bank + min",
                  f"  {'size':>9} {'batch':>5} {'img/s':>9} {'MP/s':>9} {'ms/batch':>9} {'TFLOP/s':>8} {'peak mem':>10}"]
        for key, r in pc.items():
            if not isinstance(r, dict) or "images_per_s" not in r:
                continue
            label = f"{r['size']} {r['nn_precision']}"
            lines.append(f"  {label:>9} {r['batch']:>5} {r['images_per_s']:>9.1f} {r['megapixels_per_s']:>9.2f} "
                         f"{r['ms_per_batch']:>9.2f} {r['tflops_achieved']:>8.2f} {_mem(r['peak_memory_bytes']):>10}")
        lines.append("  pixel throughput ssae / PatchCore-style (fp32, and tf32 nearest neighbours): "
                     + ", ".join(f"{k}: {v:.2f}x" for k, v in res["pixel_ratio"].items()))
    for label, err in res.get("errors", {}).items():
        lines.append(f"FAILED {label}: {err}")
    t = res["targets"]
    lines.append("")
    if t["applies"]:
        def verdict(key, unit):
            e = t[key]
            return f"{key} {_opt(e['value'], '.1f')}{unit} (target >= {e['target']:g}): {'met' if e['met'] else 'NOT met'}"
        lines.append("targets: " + "; ".join(
            [verdict("train_images_per_s", ""), verdict("inference_images_per_s", ""), verdict("pixel_ratio", "x")]))
    else:
        lines.append("targets: not judged here (" + t["note"] + ")")
    lines.append(f"benchmark took {m['seconds']:.1f} s")
    return "\n".join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    res = run(args)
    print(report(res), flush=True)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(res, indent=2, default=str))
        os.replace(tmp, path)
    return res


if __name__ == "__main__":
    main()
