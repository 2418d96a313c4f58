"""The backbone of the PatchCore-style scorer in ``benchmarks/gpu.py``: WideResNet-50-2.

WideResNet-50-2 (Zagoruyko and Komodakis 2016, in the form torchvision ships) is a ResNet-50
whose bottleneck blocks are twice as wide inside: stem (7x7 convolution, stride 2, max-pooling),
then four stages of [3, 4, 6, 3] bottleneck blocks. A bottleneck block of ``planes`` has a 1x1
convolution to ``2 * planes`` channels, a 3x3 convolution (carrying the stage's stride) and a
1x1 convolution to ``4 * planes`` channels, each followed by batch normalisation, with a
residual connection (a strided 1x1 projection where the shape changes).

PatchCore (Roth et al., CVPR 2022) uses the outputs of stages 2 and 3 ("layer2": 512 channels
at stride 8, "layer3": 1024 channels at stride 16), so only the stem and the first three stages
are run here; stage 4 would be computed and thrown away.

The weights are random: the benchmark measures speed, not accuracy, and needs no download.
:func:`build` uses torchvision's ``wide_resnet50_2`` when torchvision imports (on a GPU
machine it usually does) and the plain-torch definition below otherwise; both have the same
layers, so they cost the same.
"""
from __future__ import annotations

import _checkout  # noqa: F401  (the ssae of this checkout, installed or not)

import torch
from torch import nn

#: blocks per stage of WideResNet-50-2 (the ResNet-50 layout)
BLOCKS = (3, 4, 6, 3)
#: inner width of a bottleneck relative to ResNet-50 (width_per_group 128 instead of 64)
WIDTH_FACTOR = 2
EXPANSION = 4


def _init(module: nn.Module) -> None:
    """Random weights as torchvision initialises a fresh ResNet (He init, unit batch norm)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand, each with batch norm; ReLU after the sum."""

    def __init__(self, in_ch: int, planes: int, stride: int = 1):
        super().__init__()
        inner = planes * WIDTH_FACTOR
        out_ch = planes * EXPANSION
        self.conv1 = nn.Conv2d(in_ch, inner, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv3 = nn.Conv2d(inner, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(y + skip)


def _stage(in_ch: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [Bottleneck(in_ch, planes, stride)]
    layers += [Bottleneck(planes * EXPANSION, planes) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class WideResNet50x2Features(nn.Module):
    """Stem and stages 1-3 of WideResNet-50-2; ``forward`` returns ``(layer2, layer3)``:
    B x 512 x H/8 x W/8 and B x 1024 x H/16 x W/16."""

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        self.layer1 = _stage(64, 64, BLOCKS[0], 1)
        self.layer2 = _stage(64 * EXPANSION, 128, BLOCKS[1], 2)
        self.layer3 = _stage(128 * EXPANSION, 256, BLOCKS[2], 2)
        _init(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f2 = self.layer2(self.layer1(self.stem(x)))
        return f2, self.layer3(f2)


class TorchvisionFeatures(nn.Module):
    """torchvision's ``wide_resnet50_2`` (random weights) cut after layer3."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3 = net.layer1, net.layer2, net.layer3

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f2 = self.layer2(self.layer1(self.stem(x)))
        return f2, self.layer3(f2)


def build(prefer_torchvision: bool = True) -> tuple[nn.Module, str]:
    """The layer2 + layer3 feature extractor (eval mode) and a line saying which one it is."""
    if prefer_torchvision:
        try:
            import torchvision  # noqa: PLC0415 - optional; absent or broken on many CPU installs
            net = torchvision.models.wide_resnet50_2(weights=None)
            return TorchvisionFeatures(net).eval(), f"torchvision {torchvision.__version__} wide_resnet50_2 (random weights)"
        except Exception as e:  # noqa: BLE001 - any import or build failure falls back
            reason = f"{type(e).__name__}: {str(e).splitlines()[0][:80]}" if str(e) else type(e).__name__
            return WideResNet50x2Features().eval(), f"plain-torch WideResNet-50-2 (random weights; torchvision unavailable: {reason})"
    return WideResNet50x2Features().eval(), "plain-torch WideResNet-50-2 (random weights)"


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
