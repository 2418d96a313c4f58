"""Training throughput on this CPU, measured against the core's own peak.

One run prints, for the machine at hand (every ratio from numbers measured side by side here):

1. ``peak``: the core's practical peak, one thread: a large matmul and a large 3 x 3
   convolution (channels last), float32 and bf16;
2. ``network``: the bare network of the ``cpu`` profile (Table 1 at width 1/4), a batch of 16
   crops, forward + loss + backward (no optimiser, no data): ms per step and GFLOP/s (counted by
   ``torch.utils.flop_counter``) at 64, 128 and 256 px, float32 and bf16 autocast, and the
   network's share of the convolution peak;
3. ``loop``: the whole training loop (:func:`ssae.training.train` at a fixed crop: crops,
   corruption, augmentation, loss, Adam, logging), steps/s and its share of the bare network's
   (the network paced over a block of steps just before and after each loop, as the loop's pace
   is read, so that a drift of the machine's speed between the parts does not enter the share;
   in bf16 three rounds, the median share kept);
4. ``step_profile``: where one bf16 training step's time goes (crops, augmentation, corruption,
   loss, norms, Adam, the network), at the loop's sides; ``interleaved``: one bf16 training step
   against one bare network step, in alternating blocks in one process (the same ratio as
   ``loop``, without the process start-up, logging and drift between the parts);
5. ``heap``: the bare network at 64 and 128 px bf16 with glibc's default heap and with freed
   memory kept (:mod:`ssae.heap`, as training and every other part here run), ms and page
   faults per step, each in a process of its own;
6. ``threads``: the bare network at 64 px bf16 on one and on two threads, and two one-thread
   processes side by side against one two-thread process (images/s in total).

Example::

    python benchmarks/throughput.py                       # about ten minutes on 2 cores
    python benchmarks/throughput.py --sides 64 128 --json benchmarks/results/throughput.json

Run it on an idle machine: the goals it reports against (loop >= 95 % of the network's steps/s in
bf16 at 64 and 128 px; network >= 50 % of the bf16 convolution peak at 128 px) are ratios, but
another process on the same core moves them.
"""
from __future__ import annotations

import _checkout  # noqa: F401  (the ssae of this checkout, installed or not)

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from ssae.config import override, profile
from ssae.data import load_split
from ssae.hardware import hardware
from ssae.heap import keep_freed_memory
from ssae.runs import build_model
from ssae.training import train

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "aitex" / "fabric01"


def timed(fn, repeat: int, warmup: int = 2) -> float:
    """Median seconds of ``fn()`` over ``repeat`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak(repeat: int) -> dict:
    """GFLOP/s of a 2048^2 matmul and of a 3 x 3 convolution (16 x 64 x 128 x 128, 64 filters)."""
    out = {}
    for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        n = 2048
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        out[f"matmul_{name}"] = 2 * n ** 3 / timed(lambda: a @ b, repeat) / 1e9
        x = torch.randn(16, 64, 128, 128, dtype=dtype).to(memory_format=torch.channels_last)
        w = torch.randn(64, 64, 3, 3, dtype=dtype).to(memory_format=torch.channels_last)
        flops = 2 * 16 * 64 * 128 * 128 * 64 * 9
        with torch.no_grad():
            out[f"conv_{name}"] = flops / timed(lambda: torch.nn.functional.conv2d(x, w, padding=1), repeat) / 1e9
    return out


def network_step(model, x, bf16: bool):
    """One forward + loss + backward of the bare network (the part of a training step that is
    the network's)."""
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()

    def step():
        with ctx:
            out = model(x)
        loss = ((out.float() - x) ** 2).mean()
        loss.backward()
        model.zero_grad(set_to_none=True)
    return step


def step_flops(model, x) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        network_step(model, x, False)()
    return float(counter.get_total_flops())


def bare_model(channels: int, side: int):
    cfg = profile("cpu")
    cfg.model.in_channels = channels
    model = build_model(cfg).train()
    x = torch.rand(cfg.train.batch_size, channels, side, side)
    if cfg.train.channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    return model, x


def compiled(channels: int, side: int, repeat: int) -> dict:
    """The bare network's bf16 step at ``side`` px eager and under ``torch.compile`` (inductor),
    side by side, with the seconds the first compiled step took (the compilation)."""
    model, x = bare_model(channels, side)
    eager = timed(network_step(model, x, True), repeat)
    fast = torch.compile(model)
    t0 = time.perf_counter()
    network_step(fast, x, True)()
    compile_s = time.perf_counter() - t0
    return {"side": side, "precision": "bf16", "eager_ms": 1e3 * eager,
            "compiled_ms": 1e3 * timed(network_step(fast, x, True), repeat), "compile_s": compile_s}


def network(channels: int, sides: list[int], repeat: int) -> list[dict]:
    rows = []
    for side in sides:
        model, x = bare_model(channels, side)
        flops = step_flops(model, x)
        for name in ("fp32", "bf16"):
            s = timed(network_step(model, x, name == "bf16"), max(2, repeat if side < 256 else repeat // 2))
            rows.append({"side": side, "precision": name, "ms_per_step": 1e3 * s, "steps_per_s": 1 / s,
                         "gflop_per_step": flops / 1e9, "gflop_per_s": flops / s / 1e9,
                         "images_per_s": x.shape[0] / s})
    return rows


def log_every(steps: int) -> int:
    """The cpu profile's log interval (a log step also takes the norms of the divergence check),
    shorter for runs of fewer than four such intervals, so that the pace has log rows to read."""
    return max(1, min(profile("cpu").train.log_every, steps // 4))


def fixed_crop_config(side: int, steps: int, amp: bool, log_every: int | None = None):
    """The cpu profile training ``steps`` steps at crops fixed at ``side`` px, without curve,
    checkpoints or time budget (``log_every``: the profile's own when None)."""
    train = {"steps": steps, "crop_start": side, "crop_end": side, "curve": (), "checkpoint_every": 10 ** 9,
             "max_minutes": None, "amp": amp}
    if log_every is not None:
        train["log_every"] = log_every
    cfg = override(profile("cpu"), train=train)
    cfg.data.image_size = max(side, cfg.data.image_size or side)
    return cfg


def paced(fn, steps: int, warmup: int = 2) -> float:
    """Steps/s of ``fn`` over ``steps`` consecutive calls after ``warmup`` calls: one block's
    elapsed time, the way the loop's pace is read from its log rows (a median of single steps
    would leave out the slow steps that a block, and the loop, include)."""
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return steps / (time.perf_counter() - t0)


def loop(data: str, sides: list[int], steps: int, repeat: int = 5, rounds: int = 3) -> list[dict]:
    """Steps/s of :func:`ssae.training.train` at a fixed crop, from its own log rows (the first
    logged interval, which holds the start-up, is left out), and the bare network's steps/s at
    the same side and precision, paced over a block of steps just before and just after it
    (``network_steps_per_s``, their mean): the loop's share of the network comes from numbers
    taken a minute apart at most, which a machine whose speed drifts over the run moves less.
    Each bf16 row is measured ``rounds`` times (fp32 once) and keeps the round of the median
    share, with every round's share beside it (``shares``)."""
    rows = []
    block = max(repeat, steps // 4)
    for side in sides:
        for name in ("fp32", "bf16"):
            cfg = fixed_crop_config(side, steps, name == "bf16", log_every(steps))
            split = load_split(data, cfg.data, seed=0)
            bare, x = bare_model(split.channels, side)
            measured = []
            for _ in range(rounds if name == "bf16" else 1):
                before = paced(network_step(bare, x, name == "bf16"), block)
                with tempfile.TemporaryDirectory() as tmp:
                    res = train(cfg, split, Path(tmp) / "run", progress=False)  # training alone: no calibration
                hist = [h for h in res["history"] if "seconds" in h]
                first, last = hist[1], hist[-1]
                pace = (last["step"] - first["step"]) / max(last["seconds"] - first["seconds"], 1e-9)
                after = paced(network_step(bare, x, name == "bf16"), block)
                measured.append({"side": side, "precision": name, "steps_per_s": pace, "steps": res["steps"],
                                 "network_steps_per_s": (before + after) / 2, "network_block": block})
            shares = [m["steps_per_s"] / m["network_steps_per_s"] for m in measured]
            row = measured[sorted(range(len(shares)), key=shares.__getitem__)[len(shares) // 2]]
            rows.append({**row, "shares": shares})
    return rows


def interleaved(data: str, side: int, rounds: int = 6, block: int = 15) -> dict:
    """One bf16 training step of :func:`ssae.training.step` (crops, corruption, augmentation,
    objective, Adam) against one step of the bare network, timed in alternating blocks of
    ``block`` steps in one process, ``rounds`` times (after 30 training steps): the ratio of the
    median block times, which neither the machine's drift nor a second process's start-up moves."""
    import ssae.training as T

    cfg = fixed_crop_config(side, 10 ** 6, True)
    split = load_split(data, cfg.data, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        s = T.setup(T.prepare(cfg, split), split, Path(tmp) / "run", "cpu", progress=False)
        for _ in range(30):
            T.step(s)
        bare, x = bare_model(split.channels, side)
        parts = {"loop": lambda: T.step(s), "network": network_step(bare, x, True)}
        ms: dict[str, list[float]] = {k: [] for k in parts}
        for _ in range(rounds):
            for name, fn in parts.items():
                ms[name].append(1e3 / paced(fn, block, warmup=1))
    loop_ms, net_ms = statistics.median(ms["loop"]), statistics.median(ms["network"])
    return {"side": side, "rounds": rounds, "block": block, "loop_ms": loop_ms, "network_ms": net_ms,
            "share": net_ms / loop_ms, "loop_ms_rounds": ms["loop"], "network_ms_rounds": ms["network"]}


def step_profile(data: str, side: int, steps: int) -> dict:
    """Where a bf16 training step's time goes at ``side`` px: milliseconds per step in each part
    of :func:`ssae.training.step` (the functions it calls are wrapped with timers while
    :func:`ssae.training.train` runs ``steps`` steps), the network (forward and backward: the rest
    of the step), and the norms of the gradients and weights (taken after the step at log steps,
    :func:`log_every`: spread over all steps); means over the steps after the first five."""
    import collections

    import ssae.training as T

    times: dict[str, list[float]] = collections.defaultdict(list)
    counting = [False]

    def timer(owner, name: str, label: str):
        inner = getattr(owner, name)

        def call(*a, **k):
            t0 = time.perf_counter()
            out = inner(*a, **k)
            if counting[0]:
                times[label].append(time.perf_counter() - t0)
            return out
        setattr(owner, name, call)
        return owner, name, inner

    parts = [("sample", "crops"), ("augment", "augmentation"), ("random_rotation", "augmentation"),
             ("corrupt", "corruption"), ("objective_loss", "loss"), ("flatness", "loss"), ("with_norms", "norms"),
             ("learning_rate", "schedule")]
    step, n = T.step, [0]

    def timed_step(s):
        if not n[0]:  # the state's own parts, once it exists
            patched.extend([timer(s.images, "sample", "crops"), timer(s.optimiser, "step", "adam"),
                            timer(s.optimiser, "zero_grad", "adam")])
        counting[0] = n[0] >= 5
        t0 = time.perf_counter()
        m = step(s)
        if counting[0]:
            times["step"].append(time.perf_counter() - t0)
        n[0] += 1
        return m
    patched = [timer(T, name, label) for name, label in parts if name != "sample"]
    T.step = timed_step
    cfg = fixed_crop_config(side, steps + 5, True, log_every(steps))
    split = load_split(data, cfg.data, seed=0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            train(cfg, split, Path(tmp) / "run", progress=False)
            wall = time.perf_counter() - t0
    finally:
        T.step = step
        for owner, name, inner in reversed(patched):
            if owner is T:
                setattr(owner, name, inner)
    k = len(times["step"])
    ms = {label: 1e3 * sum(v) / k for label, v in times.items() if label != "step"}
    # the norms are taken after the step, at log and checkpoint steps only: spread over all steps
    per_step = 1e3 * sum(times["step"]) / k + ms.get("norms", 0.0)
    ms["network (forward, backward)"] = per_step - sum(ms.values())
    return {"side": side, "steps": k, "ms_per_step": per_step, "ms": ms,
            "outside_network_share": 1 - ms["network (forward, backward)"] / per_step,
            "train_wall_s": wall}


def worker(threads: int, seconds: float) -> float:
    """Images/s of the bare network at 64 px bf16 on ``threads`` threads for about ``seconds``."""
    torch.set_num_threads(threads)
    model, x = bare_model(1, 64)
    step = network_step(model, x, True)
    step(), step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n * x.shape[0] / (time.perf_counter() - t0)


def heap_worker(mode: str, side: int, repeat: int) -> dict:
    """The bare network's bf16 step at ``side`` px with glibc's default heap (``mode`` "default")
    or with freed memory kept (:func:`ssae.heap.keep_freed_memory`, "kept"): ms and minor page
    faults per step, in a process of its own (the setting is process-wide)."""
    import resource

    if mode == "kept":
        keep_freed_memory()
    torch.set_num_threads(1)
    model, x = bare_model(1, side)
    step = network_step(model, x, True)
    step(), step()
    f0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    for _ in range(repeat):
        step()
    seconds, faults = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    return {"ms_per_step": 1e3 * seconds / repeat, "faults_per_step": faults / repeat}


def heap_part(sides: list[int], repeat: int) -> list[dict]:
    """:func:`heap_worker` in both modes, alternating, twice each per side: the faster of each."""
    rows = []
    for side in sides:
        runs: dict[str, list[dict]] = {"default": [], "kept": []}
        for mode in ("default", "kept", "kept", "default"):
            out = subprocess.run([sys.executable, __file__, "--heap-worker", mode, str(side), str(repeat)],
                                 capture_output=True, text=True, check=True).stdout
            runs[mode].append(json.loads(out))
        best = {m: min(r, key=lambda d: d["ms_per_step"]) for m, r in runs.items()}
        rows.append({"side": side, **{f"{m}_{k}": v for m, d in best.items() for k, v in d.items()}})
    return rows


def threads_part(seconds: float) -> dict:
    me = [sys.executable, __file__, "--worker"]
    one = float(subprocess.run(me + ["1", str(seconds)], capture_output=True, text=True, check=True).stdout)
    two = float(subprocess.run(me + ["2", str(seconds)], capture_output=True, text=True, check=True).stdout)
    procs = [subprocess.Popen(me + ["1", str(seconds)], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    pair = sum(float(p.communicate()[0]) for p in procs)
    return {"one_thread": one, "two_threads": two, "two_processes_one_thread_each": pair}


def loop_share(lp: dict, nw: dict) -> float:
    """The loop's steps/s over the bare network's: the network as timed around the loop where
    the row has it, else the ``network`` part's figure (results from before it did)."""
    return lp["steps_per_s"] / lp.get("network_steps_per_s", nw["steps_per_s"])


def report(res: dict) -> str:
    pk, lines = res["peak"], [f"hardware: {res['hardware']}; {res['date']}; data {res['data']}", ""]
    lines.append("peak (one thread, GFLOP/s): " + ", ".join(f"{k} {v:.1f}" for k, v in pk.items()))
    lines += ["", "side  prec  network ms/step  GFLOP/s  of conv peak | loop steps/s  loop/network"]
    loops = {(r["side"], r["precision"]): r for r in res["loop"]}
    for r in res["network"]:
        lp = loops.get((r["side"], r["precision"]))
        share = r["gflop_per_s"] / pk[f"conv_{r['precision']}"]
        tail = f"{lp['steps_per_s']:12.2f}  {loop_share(lp, r):12.1%}" if lp else "  (not run)"
        if lp and len(lp.get("shares", [])) > 1:
            tail += " (rounds: " + ", ".join(f"{v:.1%}" for v in lp["shares"]) + ")"
        lines.append(f"{r['side']:4d}  {r['precision']}  {r['ms_per_step']:15.1f}  {r['gflop_per_s']:7.1f}  "
                     f"{share:12.1%} |{tail}")
    for h in res.get("heap", []):
        lines += ["", f"heap, bare network bf16 {h['side']} px: {h['default_ms_per_step']:.1f} ms per step with glibc's "
                  f"default, {h['kept_ms_per_step']:.1f} with freed memory kept "
                  f"({h['default_ms_per_step'] / h['kept_ms_per_step']:.2f}x); page faults per step "
                  f"{h['default_faults_per_step']:.0f} against {h['kept_faults_per_step']:.0f}"]
    th = res.get("threads")
    if th:
        lines += ["", "bare network, 64 px bf16, images/s: one thread {one_thread:.0f}; two threads "
                  "{two_threads:.0f} ({:.2f}x); two one-thread processes side by side {two_processes_one_thread_each:.0f} "
                  "({:.2f}x)".format(th["two_threads"] / th["one_thread"],
                                     th["two_processes_one_thread_each"] / th["one_thread"], **th)]
    for pr in res.get("step_profile", []):
        parts = sorted(pr["ms"].items(), key=lambda kv: -kv[1])
        lines += ["", f"one bf16 training step at {pr['side']} px ({pr['ms_per_step']:.1f} ms, mean of {pr['steps']} "
                  f"steps): " + ", ".join(f"{k} {v:.1f} ms ({v / pr['ms_per_step']:.1%})" for k, v in parts)
                  + f"; outside the network {pr['outside_network_share']:.1%}"]
    for r in res.get("interleaved", []):
        lines += ["", f"bf16 training step against the bare network at {r['side']} px, alternating blocks of {r['block']} "
                  f"steps in one process ({r['rounds']} rounds): {r['loop_ms']:.1f} against {r['network_ms']:.1f} ms, "
                  f"the loop at {r['share']:.1%} of the network's pace"]
    cp = res.get("compiled")
    if cp:
        lines += ["", f"torch.compile, bare network bf16 {cp['side']} px: {cp['compiled_ms']:.1f} ms per step against "
                  f"{cp['eager_ms']:.1f} eager ({cp['eager_ms'] / cp['compiled_ms']:.2f}x), after {cp['compile_s']:.0f} s "
                  f"of compilation"]
    goals = []
    for side in (64, 128):
        lp, nw = loops.get((side, "bf16")), next((r for r in res["network"] if r["side"] == side
                                                  and r["precision"] == "bf16"), None)
        if lp and nw:
            ratio = loop_share(lp, nw)
            text = f"loop/network bf16 {side} px {ratio:.1%} ({'met' if ratio >= 0.95 else 'missed'}: >= 95 %)"
            il = next((r for r in res.get("interleaved", []) if r["side"] == side), None)
            if il:
                text += f", interleaved steps {il['share']:.1%} ({'met' if il['share'] >= 0.95 else 'missed'})"
            goals.append(text)
    nw = next((r for r in res["network"] if r["side"] == 128 and r["precision"] == "bf16"), None)
    if nw:
        share = nw["gflop_per_s"] / pk["conv_bf16"]
        goals.append(f"network/conv peak bf16 128 px {share:.1%} ({'met' if share >= 0.5 else 'missed'}: >= 50 %)")
    return "\n".join(lines + ["", "goals: " + "; ".join(goals)])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sides", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--loop-sides", type=int, nargs="+", default=[64, 128])
    p.add_argument("--data", default=str(DEFAULT_DATA) if DEFAULT_DATA.is_dir() else "embedded:carpet")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--steps", type=int, default=100, help="training steps per loop measurement")
    p.add_argument("--rounds", type=int, default=3,
                   help="bf16 loop measurements per side (the median share is kept, all are printed)")
    p.add_argument("--thread-seconds", type=float, default=15.0, help="0 leaves out the thread comparison")
    p.add_argument("--compile", action="store_true",
                   help="also time the bare network under torch.compile at 64 px (compiling takes minutes)")
    p.add_argument("--json", help="write the figures here as well")
    p.add_argument("--heap-sides", type=int, nargs="*", default=[64, 128],
                   help="sides for the heap comparison (none: leave it out)")
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--heap-worker", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.heap_worker:
        mode, side, repeat = args.heap_worker
        print(json.dumps(heap_worker(mode, int(side), int(repeat))))
        return 0
    keep_freed_memory()  # as training does (ssae.heap): the network is timed as the loop runs it
    if args.worker:
        print(worker(int(args.worker[0]), float(args.worker[1])))
        return 0
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import datetime as _dt

    channels = load_split(args.data, profile("cpu").data, seed=0).channels
    res = {"hardware": hardware("cpu"), "date": _dt.datetime.now().isoformat(timespec="seconds"),
           "data": args.data, "channels": channels, "peak": peak(args.repeat),
           "network": network(channels, args.sides, args.repeat),
           "loop": loop(args.data, args.loop_sides, args.steps, args.repeat, args.rounds),
           "step_profile": [step_profile(args.data, side, args.steps) for side in args.loop_sides],
           "interleaved": [interleaved(args.data, side, args.rounds * 2) for side in args.loop_sides]}
    if args.heap_sides:
        res["heap"] = heap_part(args.heap_sides, args.repeat)
    if args.thread_seconds > 0:
        res["threads"] = threads_part(args.thread_seconds)
    if args.compile:
        res["compiled"] = compiled(channels, 64, args.repeat)
    print(report(res))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(args.json).with_suffix(".tmp")
        tmp.write_text(json.dumps(res, indent=1))
        tmp.replace(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
