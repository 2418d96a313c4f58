"""ssae.heap: a training step's freed memory stays in the process instead of being faulted in again."""
import platform
import subprocess
import sys

import pytest

from ssae.heap import keep_freed_memory

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# the cpu profile's network, bf16 forward and backward on 8 crops of 32 px; prints the minor
# page faults per step after two warm-up steps
STEPS = """
import resource, sys, torch
torch.set_num_threads(1)
if sys.argv[1] == "keep":
    from ssae.heap import keep_freed_memory
    assert keep_freed_memory()
from ssae.config import profile
from ssae.runs import build_model
cfg = profile("cpu")
model = build_model(cfg)
x = torch.rand(8, cfg.model.in_channels, 32, 32)
def step():
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    (out.float() - x).square().mean().backward()
    model.zero_grad(set_to_none=True)
step(); step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(6):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 6)
"""


def faults_per_step(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, check=True)
    return float(out.stdout)


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt")
def test_a_step_reuses_kept_memory_instead_of_faulting_it_in_again():
    default, kept = faults_per_step("default"), faults_per_step("keep")
    # measured: 270-980 page faults per step with glibc's defaults (its thresholds adapt as it
    # runs), 13-38 with memory kept
    assert default > 100 and kept < default / 4, (default, kept)


def test_keep_freed_memory_says_whether_it_took():
    assert keep_freed_memory() is GLIBC
