"""The process heap on the CPU (ours, for speed): freed memory kept for the next step.

A training step allocates its activations and gradients, frees them, and allocates them again
in the next step. With glibc's defaults, freed blocks above a threshold go back to the kernel
(``munmap``, or a trim of the heap's top), so every step faults the same memory in again as
fresh zeroed pages: measured on the cpu profile's network at 64 px in bf16, about 7,000 page
faults and 7 % of each step spent in the kernel, more at 128 px. :func:`keep_freed_memory`
raises glibc's mmap threshold to its largest value and its trim threshold to 1 GiB, so that
blocks of the sizes a step frees stay in the process and are reused (about 50 faults per step).
The process keeps its peak heap instead of returning it between steps; numbers are unchanged.

Training (:func:`ssae.training.setup`), the command line and :class:`ssae.detector.Detector`
call it on the CPU; elsewhere than glibc (macOS, Windows, musl) it does nothing.
"""
from __future__ import annotations

import ctypes
import sys

#: mallopt's parameter numbers (glibc's malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: ours: glibc's largest mmap threshold on 64-bit systems (larger values are refused), 32 MiB
MMAP_THRESHOLD = 32 << 20
#: ours: free memory at the heap's top that glibc keeps before it trims, 1 GiB
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Keep freed blocks of up to :data:`MMAP_THRESHOLD` in the process (glibc's ``mallopt``);
    True when both settings took, False where there is no glibc. Process-wide; once is enough."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
