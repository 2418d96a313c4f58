"""Table 1 layer by layer, plus small real forwards and the blur baseline."""
import pytest
import torch

from ssae.errors import SsaeError
from ssae.model import SDC, SSAE, channels, layer_table
from ssae.references import BlurReference

# Table 1 of the paper at 512 x 512, width 1: (type, filters, output side). The 3x3 conv after
# each SDC (Sec. 3.3 text, not a row of the table) is marked with POST.
POST = ("Conv", 384, 64)
TABLE1 = [
    ("Conv", 64, 512), ("Conv", 64, 512), ("MaxPool", 64, 256),
    ("Conv", 128, 256), ("Conv", 128, 256), ("MaxPool", 128, 128),
    ("Conv", 256, 128), ("Conv", 256, 128), ("MaxPool", 256, 64),
    ("SDC", 384, 64), POST, ("SDC", 384, 64), POST, ("SDC", 384, 64), POST, ("SDC", 384, 64), POST,
    ("Transp. Conv", 256, 128), ("Conv", 256, 128), ("Conv", 256, 128),
    ("Transp. Conv", 128, 256), ("Conv", 128, 256), ("Conv", 128, 256),
    ("Transp. Conv", 64, 512), ("Conv", 64, 512), ("Conv", 64, 512),
    ("Conv", 3, 512),
]


@pytest.mark.parametrize("f", [3, 5])
def test_table1_shapes_at_512(f):
    with torch.device("meta"):
        model = SSAE(in_channels=3, f=f, width=1.0)
    rows = layer_table(model, 512, 512)
    assert rows == [(kind, ch, (side, side)) for kind, ch, side in TABLE1]


def test_table1_modules():
    with torch.device("meta"):
        model = SSAE()
    sdcs = [m for m in model.modules() if isinstance(m, SDC)]
    assert len(sdcs) == 4
    for sdc in sdcs:
        assert [c.dilation for c in sdc.branches] == [(d, d) for d in (1, 2, 4, 8, 16, 32)]
        assert all(c.kernel_size == (3, 3) and c.out_channels == 64 for c in sdc.branches)
    pools = [m for m in model.modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 3 and all(p.kernel_size == 2 and p.stride == 2 for p in pools)
    ups = [m for m in model.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [u.out_channels for u in ups] == [256, 128, 64]
    assert all(u.kernel_size == (3, 3) and u.stride == (2, 2) for u in ups)
    # every conv but the last is followed by BN + ReLU; the last by a sigmoid only
    for layer in model.layers[:-1]:
        kinds = [type(m).__name__ for m in layer.modules()]
        assert layer.kind == "MaxPool" or ("BatchNorm2d" in kinds and "ReLU" in kinds)
    last = model.layers[-1]
    assert [type(m).__name__ for m in last] == ["Conv2d", "Sigmoid"]
    assert last[0].kernel_size == (1, 1)


def test_width_multiplier_and_grey():
    with torch.device("meta"):
        model = SSAE(in_channels=1, width=0.25)
    rows = layer_table(model, 64, 96)
    assert rows[0] == ("Conv", 16, (64, 96))
    assert rows[9] == ("SDC", 96, (8, 12))
    assert rows[-1] == ("Conv", 1, (64, 96))
    assert channels(64, 1 / 128) == 1


@pytest.mark.parametrize("in_channels,f", [(3, 3), (3, 5), (1, 3)])
def test_tiny_forward(in_channels, f):
    torch.manual_seed(0)
    model = SSAE(in_channels=in_channels, f=f, width=1 / 16)
    x = torch.rand(2, in_channels, 32, 32)
    y = model(x)
    assert y.shape == x.shape
    assert float(y.detach().min()) >= 0 and float(y.detach().max()) <= 1
    y.mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_sdc_block():
    sdc = SDC(4, 2, f=5, dilations=(1, 2, 4))
    y = sdc(torch.rand(1, 4, 8, 8))
    assert y.shape == (1, 6, 8, 8) and float(y.detach().min()) >= 0


def test_bad_input_size():
    model = SSAE(width=1 / 16)
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.rand(1, 3, 30, 32))
    with pytest.raises(SsaeError):
        model(torch.rand(1, 1, 32, 32))
    with pytest.raises(SsaeError):
        layer_table(model, 20, 32)


def test_blur_reference():
    blur = BlurReference(sigma=2.0)
    x = torch.full((2, 3, 20, 24), 0.3)
    assert torch.allclose(blur(x), x)
    impulse = torch.zeros(1, 1, 31, 31)
    impulse[0, 0, 15, 15] = 1
    y = blur(impulse)
    assert y.shape == impulse.shape
    assert abs(float(y.sum()) - 1) < 1e-5 and float(y[0, 0, 15, 15]) < 0.1
    assert torch.allclose(y, y.flip(-1)) and torch.allclose(y, y.transpose(-1, -2))
    assert torch.equal(BlurReference(0.0)(impulse), impulse)
    assert list(blur.parameters()) == []


def test_folding_batchnorm_keeps_the_function_and_leaves_the_model_alone():
    import copy

    from ssae.model import SDC, fold_batchnorm

    torch.manual_seed(0)
    model = SSAE(in_channels=1, width=0.125)
    model.train()
    for _ in range(3):  # running statistics away from their initial 0 and 1
        model(torch.rand(4, 1, 32, 32))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.2, 0.2)
    model.eval()
    before = copy.deepcopy(model.state_dict())
    folded = fold_batchnorm(model)
    x = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), atol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert all(isinstance(layer.bn, torch.nn.Identity) for layer in folded.layers if isinstance(layer, SDC))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
