"""FlatAdam: torch's fused Adam over one buffer, the same weights bit for bit, checkpoints in torch's layout."""
import copy

import pytest
import torch

from ssae.config import override, profile
from ssae.flatadam import FlatAdam
from ssae.runs import build_model


def network(width=0.25):  # the cpu profile's width: no tensor shorter than a CPU vector
    cfg = override(profile("cpu"), model={"width": width})
    torch.manual_seed(0)
    return build_model(cfg).to(memory_format=torch.channels_last), cfg.model.in_channels


def steps(model, opt, channels, n, seed=1):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x = torch.rand(4, channels, 32, 32, generator=gen).contiguous(memory_format=torch.channels_last)
        opt.zero_grad(set_to_none=True)
        (model(x) - x).square().mean().backward()
        opt.step()


def test_flat_adam_takes_the_fused_adam_steps_bit_for_bit():
    a, c = network()
    b = copy.deepcopy(a)
    fused = torch.optim.Adam(a.parameters(), lr=1e-3, fused=True)
    flat = FlatAdam(b.parameters(), lr=1e-3)
    assert all(p.stride() == q.stride() for p, q in zip(a.parameters(), b.parameters()))  # channels_last kept
    steps(a, fused, c, 4)
    steps(b, flat, c, 4)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    # the gradients live in the buffer, and zero_grad clears it without dropping them
    assert all(p.grad.untyped_storage().data_ptr() == flat.flat.grad.untyped_storage().data_ptr()
               for p in b.parameters())
    flat.zero_grad()
    assert all(p.grad is not None and not p.grad.any() for p in b.parameters())


def test_flat_adam_differs_only_in_the_last_bits_of_tensors_shorter_than_a_vector():
    a, c = network(width=1 / 16)  # BatchNorms of 4 channels
    b = copy.deepcopy(a)
    steps(a, torch.optim.Adam(a.parameters(), lr=1e-3, fused=True), c, 1)  # one step: no chaos yet
    steps(b, FlatAdam(b.parameters(), lr=1e-3), c, 1)
    differ = [(p.numel(), (p - q).abs().max().item()) for p, q in zip(a.parameters(), b.parameters())
              if not torch.equal(p, q)]
    assert all(n < 16 and d < 1e-6 for n, d in differ), differ


def test_flat_adam_checkpoints_are_torch_adams_and_resume_either_way():
    a, c = network()
    b = copy.deepcopy(a)
    fused = torch.optim.Adam(a.parameters(), lr=1e-3, fused=True)
    flat = FlatAdam(b.parameters(), lr=1e-3)
    steps(a, fused, c, 2)
    steps(b, flat, c, 2)
    sa, sb = fused.state_dict(), flat.state_dict()
    assert sa["param_groups"] == sb["param_groups"] and sa["state"].keys() == sb["state"].keys()
    for i in sa["state"]:
        for k in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(sa["state"][i][k], sb["state"][i][k]), (i, k)
    # cross over: the fused optimiser's state goes on in FlatAdam and the reverse, still equal
    a2, b2 = copy.deepcopy(b), copy.deepcopy(a)
    flat2 = FlatAdam(b2.parameters(), lr=1e-3)
    flat2.load_state_dict(sa)
    fused2 = torch.optim.Adam(a2.parameters(), lr=1e-3, fused=True)
    fused2.load_state_dict(sb)
    steps(a2, fused2, c, 2, seed=2)
    steps(b2, flat2, c, 2, seed=2)
    assert all(torch.equal(p, q) for p, q in zip(a2.state_dict().values(), b2.state_dict().values()))


def test_flat_adam_refuses_what_it_cannot_lay_out():
    with pytest.raises(ValueError, match="dtype"):
        FlatAdam([torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))], 1e-3)
    a, _ = network()
    flat = FlatAdam(a.parameters(), lr=1e-3)
    with pytest.raises(ValueError, match="parameters"):
        flat.load_state_dict({"state": {}, "param_groups": [{**flat.param_groups[0], "params": [0, 1]}]})

