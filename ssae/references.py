"""No-network baselines that stand in for the autoencoder F.

``BlurReference`` "reconstructs" an image by blurring it, so Diff(X, F(X)) of eq. (2) is
``(X - blur(X))^2``: a high-pass filter that flags any fine detail. Scoring it like a trained
model shows how much of a result comes from the network rather than from local contrast.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ssae.errors import SsaeError


class BlurReference(nn.Module):
    """Gaussian blur with standard deviation ``sigma`` pixels, per channel, same size output.

    Separable kernel of radius ``ceil(3 sigma)``, edges padded by repeating the border.
    ``sigma = 0`` is the identity. It has no parameters and no training.
    """

    def __init__(self, sigma: float = 4.0):
        super().__init__()
        if sigma < 0:
            raise SsaeError(f"blur sigma must be >= 0, got {sigma}")
        self.sigma = float(sigma)
        radius = math.ceil(3 * self.sigma)
        t = torch.arange(-radius, radius + 1, dtype=torch.float32)
        k = torch.exp(-0.5 * (t / self.sigma) ** 2) if self.sigma > 0 else (t == 0).float()
        self.register_buffer("kernel", k / k.sum(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise SsaeError(f"BlurReference expects B x C x H x W input, got {tuple(x.shape)}")
        b, c, h, w = x.shape
        r = (self.kernel.numel() - 1) // 2
        k = self.kernel.to(x.dtype)
        y = x.reshape(b * c, 1, h, w)
        y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
        y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
        return y.reshape(b, c, h, w)
