"""The one label of the machine that produced a number (result rows, benchmarks, figures)."""
from __future__ import annotations

import os
import platform

import torch

from .precision import cpu_info


def hardware(device: str = "cpu") -> str:
    """A short description of the machine behind ``device``: the GPU's name and CUDA version
    (``"NVIDIA H100 80GB HBM3 (CUDA 12.8)"``), or the CPU's model, architecture, cores and the
    torch version (``"CPU: AMD EPYC 7B13 (x86_64, 2 cores), torch 2.13.0+cpu"``)."""
    device = str(device)
    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device) if ":" in device else None
        return f"{torch.cuda.get_device_name(index)} (CUDA {torch.version.cuda})"
    return f"CPU: {cpu_name()} ({platform.machine()}, {os.cpu_count()} cores), torch {torch.__version__}"


def cpu_name() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else "CPU"."""
    return cpu_info().get("model name") or "CPU"
