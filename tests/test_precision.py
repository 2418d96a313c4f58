"""Precision of the forward pass: bf16 where the hardware has it, recorded in the run."""
import pytest
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


def test_inference_is_float32_unless_asked_and_says_so(smoke_run, tmp_path, monkeypatch):
    """Evaluation and prediction compute in float32 by default, whatever the hardware offers;
    --precision bf16 runs the network under autocast; both record what they used."""
    import json

    from ssae.cli import main
    from ssae.errors import SsaeError
    from ssae.evaluation import evaluate
    from ssae.runs import load_model
    from ssae.scoring import reconstruct

    monkeypatch.setattr(P, "cpu_has_bf16", lambda: True)  # training would choose bf16 here
    data, run = smoke_run
    model, _ = load_model(run)
    x = torch.rand(1, 3, 16, 16)
    seen = []
    hook = model.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    reconstruct(model, x)
    reconstruct(model, x, precision="bf16")
    hook.remove()
    assert seen == [torch.float32, torch.bfloat16]
    assert evaluate(run, str(data), progress=False)["precision"] == "fp32"
    assert evaluate(run, str(data), progress=False, precision="bf16")["precision"] == "bf16"
    with pytest.raises(SsaeError, match="precision must be one of"):
        evaluate(run, str(data), progress=False, precision="fp16")
    img = next((data / "test" / "good").glob("*.png"))
    assert main(["predict", str(run), str(img), "--out", str(tmp_path / "p"), "--precision", "bf16"]) == 0
    meta = json.loads((tmp_path / "p" / "predict.json").read_text())
    assert (meta["precision"], meta["engine"]) == ("bf16", "torch")  # auto: onnxruntime runs float32 only
    assert main(["evaluate", str(run), "--json", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["precision"] == "fp32"
