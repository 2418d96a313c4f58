"""Numeric precision of the forward pass: bf16 autocast where the hardware computes it natively.

Not from the paper (which trains on a GPU). On CUDA and on CPUs with native bf16 instructions
(AVX512-BF16 or AMX) the network runs under ``torch.autocast(..., dtype=torch.bfloat16)``; the
loss, the anomaly maps and everything after them stay in float32. Elsewhere bf16 is emulated
and slower than float32, so float32 is used. The choice is made at run time and recorded in the
run (``train_summary.json``: ``precision``). ``SSAE_PRECISION=fp32`` forces float32.

Inference (calibration, evaluation, prediction, export) computes in float32 unless asked
otherwise (:data:`INFERENCE`, ``--precision bf16``; :func:`inference_autocast`), so that the
same model gives the same maps and thresholds on every machine; what was used is recorded
with the results (``precision``).
"""
from __future__ import annotations

import functools
import os
from contextlib import nullcontext

import torch

from .errors import SsaeError

PRECISIONS = ("bf16", "fp32")
#: the precision of inference unless asked otherwise
INFERENCE = "fp32"


@functools.lru_cache(maxsize=None)
def cpu_info() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (``model name``, ``flags``, ...); empty
    where that file cannot be read (not Linux)."""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the end of the first processor's block
                key, sep, value = line.partition(":")
                if sep:
                    info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 matrix instructions (``avx512_bf16`` or ``amx_bf16``
    among its flags); False where that cannot be read."""
    return bool({"avx512_bf16", "amx_bf16"} & set(cpu_info().get("flags", "").split()))


def precision(device, enabled: bool = True) -> str:
    """``"bf16"`` or ``"fp32"``: the precision of the forward pass on ``device`` (``enabled``:
    the run's ``train.amp``)."""
    if not enabled or os.environ.get("SSAE_PRECISION", "").lower() == "fp32":
        return "fp32"
    kind = torch.device(device).type
    if kind == "cuda":
        return "bf16"
    return "bf16" if kind == "cpu" and cpu_has_bf16() else "fp32"


def check_precision(name: str) -> str:
    """``name`` if it is one of :data:`PRECISIONS`, else a one-line error."""
    if name not in PRECISIONS:
        raise SsaeError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    return name


def inference_autocast(device, name: str = INFERENCE):
    """A context for an inference forward pass at precision ``name`` (``fp32``: none; ``bf16``:
    bf16 autocast, emulated and slower where the hardware lacks it)."""
    if check_precision(name) == "fp32":
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def autocast(device, enabled: bool = True):
    """A context for the forward pass at :func:`precision` (a no-op context for float32)."""
    if precision(device, enabled) == "fp32":
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
