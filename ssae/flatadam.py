"""Adam over one flat buffer (ours, for speed): the paper's optimiser (Sec. 4.1) unchanged.

Torch's fused Adam makes one pass per parameter tensor; on a CPU core each pass has a fixed
cost, and Table 1's network has about ninety tensors, many of them BatchNorm vectors of a few
dozen numbers. :class:`FlatAdam` lays every parameter, and every gradient, out as a view into
one contiguous tensor, so that one fused pass updates them all. Each number is updated by the
same kernel with the same step count as in ``torch.optim.Adam(..., fused=True)``, so the
weights are those of torch's fused Adam bit for bit, except in tensors shorter than the CPU's
vector (a BatchNorm of 4 channels in a narrow network): torch updates them in its scalar loop,
which can round the last bit differently (about 1e-10 per step). Table 1's network at the cpu
profile's width has none. Checkpoints keep the per-parameter layout of torch's Adam, so either
optimiser resumes the other's.

The parameters keep their shapes and memory formats (channels_last included); only their
storage moves. Gradients accumulate into the views, so :meth:`FlatAdam.zero_grad` zeroes the
buffer instead of dropping the gradients.
"""
from __future__ import annotations

import torch
from torch import nn


def _dense(t: torch.Tensor) -> bool:
    """Whether ``t`` covers its elements exactly once in some order of its dimensions (contiguous,
    channels_last, ...): the layouts a view into a buffer of ``t.numel()`` numbers can take."""
    step = 1
    for size, stride in sorted(((n, s) for n, s in zip(t.shape, t.stride()) if n != 1), key=lambda d: d[1]):
        if stride != step:
            return False
        step *= size
    return True


def _views(flat: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    """Views into ``flat`` with the shapes and strides of ``like``, one after another (each
    tensor of ``like`` is dense: its strides are a permutation of a contiguous layout's)."""
    out, at = [], 0
    for t in like:
        out.append(torch.as_strided(flat, t.shape, t.stride(), at))
        at += t.numel()
    return out


class FlatAdam(torch.optim.Adam):
    """``torch.optim.Adam(params, lr, fused=True)`` with ``params`` moved into one buffer.

    ``params``: dense parameters of one device and dtype (moved: their ``.data`` and ``.grad``
    become views into the buffers ``flat`` and ``flat.grad``)."""

    def __init__(self, params, lr: float):
        self.views = [p for p in params if p.requires_grad]
        if not self.views:
            raise ValueError("FlatAdam needs at least one parameter that requires a gradient")
        first = self.views[0]
        for p in self.views:
            if p.device != first.device or p.dtype != first.dtype or not _dense(p):
                raise ValueError("FlatAdam needs dense parameters of one device and dtype")
        flat = torch.empty(sum(p.numel() for p in self.views), device=first.device, dtype=first.dtype)
        grad = torch.zeros_like(flat)
        for p, v, g in zip(self.views, _views(flat, self.views), _views(grad, self.views)):
            v.copy_(p.detach())
            p.data, p.grad = v, g
        self.flat = nn.Parameter(flat)
        self.flat.grad = grad
        super().__init__([self.flat], lr=lr, fused=True)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero the gradient buffer (the parameters' gradients are views into it and stay)."""
        self.flat.grad.zero_()

    def state_dict(self) -> dict:
        """torch.optim.Adam's state dict over the original parameters (one entry each)."""
        sd = super().state_dict()
        flat_state = sd["state"].get(0)
        state = {}
        if flat_state is not None:
            parts = {k: _views(v, self.views) for k, v in flat_state.items() if k in ("exp_avg", "exp_avg_sq")}
            for i in range(len(self.views)):
                state[i] = {"step": flat_state["step"].clone(), **{k: v[i].clone() for k, v in parts.items()}}
        group = dict(sd["param_groups"][0], params=list(range(len(self.views))))
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load torch.optim.Adam's state dict over the same parameters (as :meth:`state_dict` writes)."""
        groups = state_dict["param_groups"]
        ids = [i for g in groups for i in g["params"]]
        if len(groups) != 1 or len(ids) != len(self.views):
            raise ValueError(f"optimiser state for {len(ids)} parameters in {len(groups)} groups; "
                             f"this model has {len(self.views)} in one")
        flat_state = {}
        if state_dict["state"]:
            per = [state_dict["state"][i] for i in ids]
            flat_state["step"] = torch.as_tensor(per[0]["step"], dtype=torch.float32).clone()
            for k in ("exp_avg", "exp_avg_sq"):
                buf = torch.empty_like(self.flat.detach())
                for v, s in zip(_views(buf, self.views), per):
                    v.copy_(s[k])
                flat_state[k] = buf
        group = dict(groups[0], params=[0])
        super().load_state_dict({"state": {0: flat_state} if flat_state else {}, "param_groups": [group]})
