"""Precision of the forward pass: bf16 where the hardware has it, recorded in the run."""
import torch

import ssae.precision as P


def test_precision_follows_the_hardware_and_the_switches(monkeypatch):
    monkeypatch.delenv("SSAE_PRECISION", raising=False)
    monkeypatch.setattr(P, "cpu_has_bf16", lambda: True)
    assert P.precision("cpu") == "bf16" and P.precision("cpu", enabled=False) == "fp32"
    monkeypatch.setattr(P, "cpu_has_bf16", lambda: False)
    assert P.precision("cpu") == "fp32"
    assert P.precision("cuda") == "bf16"
    monkeypatch.setenv("SSAE_PRECISION", "fp32")
    assert P.precision("cuda") == "fp32"


def test_autocast_runs_the_forward_pass_in_bf16_only_when_chosen(monkeypatch):
    monkeypatch.delenv("SSAE_PRECISION", raising=False)
    lin = torch.nn.Linear(4, 4)
    x = torch.rand(2, 4)
    monkeypatch.setattr(P, "cpu_has_bf16", lambda: True)
    with P.autocast("cpu"):
        assert lin(x).dtype == torch.bfloat16
    monkeypatch.setattr(P, "cpu_has_bf16", lambda: False)
    with P.autocast("cpu"):
        assert lin(x).dtype == torch.float32


def test_the_run_records_its_precision(smoke_run):
    import json

    _, run = smoke_run
    assert json.loads((run / "train_summary.json").read_text())["precision"] in P.PRECISIONS
