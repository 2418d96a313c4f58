"""Corruption of Section 3.2 / Figure 5: masks, boxes, exactness, determinism, methods."""
import dataclasses

import pytest
import torch
from hypothesis import given, settings, strategies as st

from ssae.config import CorruptionConfig
from ssae.corruption import METHODS, corrupt, random_rotation
from ssae.errors import SsaeError


def images(b=4, c=3, h=48, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, h, w, generator=g)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def check_invariants(x, x_hat, mask, boxes):
    b, c, h, w = x.shape
    assert x_hat.shape == x.shape and mask.shape == (b, 1, h, w)
    assert float(mask.min()) >= 0 and float(mask.max()) <= 1
    assert float(x_hat.min()) >= 0 and float(x_hat.max()) <= 1
    inside = torch.zeros(b, 1, h, w, dtype=torch.bool)
    for i in range(b):
        for y0, x0, y1, x1 in boxes[i].tolist():
            assert 0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w and y1 - y0 == x1 - x0
            inside[i, :, y0:y1, x0:x1] = True
    assert torch.all(mask[~inside] == 0)                      # support inside the sampled patches
    untouched = (mask == 0).expand_as(x)
    assert torch.equal(x_hat[untouched], x[untouched])        # bit for bit where M = 0


@pytest.mark.parametrize("method", ["elastic", "cutout", "swap", "occlusion"])
def test_methods_change_only_the_masked_region(method):
    x = images()
    cfg = CorruptionConfig(method=method, n_patches=2, patch_min=0.2, patch_max=0.4)
    x_hat, mask, boxes = corrupt(x, cfg, gen(), return_boxes=True)
    assert boxes.shape == (4, 2, 4)
    check_invariants(x, x_hat, mask, boxes)
    assert torch.all(mask.flatten(1).amax(1) > 0.5)           # every image got a nonempty shape
    assert torch.all((x_hat - x).abs().flatten(1).amax(1) > 0.05)


def test_none_is_identity():
    x = images()
    x_hat, mask = corrupt(x, CorruptionConfig(method="none"), gen())
    assert torch.equal(x_hat, x) and torch.all(mask == 0)


def test_alternate_is_chosen_per_image():
    x = images(b=16, h=16, w=16)
    cfg = CorruptionConfig(method="cutout", alternate=("none",))
    _, mask = corrupt(x, cfg, gen())
    touched = mask.flatten(1).amax(1) > 0
    assert 0 < int(touched.sum()) < 16


def test_source_images():
    x, other = images(b=2), images(b=1, seed=5)
    cfg = CorruptionConfig(method="swap", patch_min=0.3, patch_max=0.3, brightness=0.0)
    x_hat, mask = corrupt(x, cfg, gen(), source=other)
    full = (mask > 0.999).expand_as(x)                        # where M ~ 1 the content is the source's
    assert full.any()
    assert torch.allclose(x_hat[full], other.expand_as(x)[full], atol=2e-3)
    with pytest.raises(SsaeError):
        corrupt(x, CorruptionConfig(method="swap"), gen(), source=images(b=1, h=32))


def test_single_image_swap_still_changes():
    x = images(b=1)
    x_hat, mask = corrupt(x, CorruptionConfig(method="swap", patch_min=0.3), gen())
    assert (x_hat - x).abs().max() > 0.05


def test_determinism():
    x = images()
    cfg = CorruptionConfig(alternate=("occlusion", "cutout"), n_patches=2)
    a = corrupt(x, cfg, gen(1))
    b = corrupt(x, cfg, gen(1))
    c = corrupt(x, cfg, gen(2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


@settings(max_examples=12, deadline=None)
@given(c=st.sampled_from([1, 3]), h=st.integers(8, 40), w=st.integers(8, 40),
       method=st.sampled_from(METHODS), seed=st.integers(0, 1000))
def test_shapes_property(c, h, w, method, seed):
    x = images(b=2, c=c, h=h, w=w, seed=seed)
    cfg = CorruptionConfig(method=method, patch_min=0.1, patch_max=1.0)
    x_hat, mask, boxes = corrupt(x, cfg, gen(seed), return_boxes=True)
    check_invariants(x, x_hat, mask, boxes)


def test_bad_config():
    with pytest.raises(SsaeError, match="method"):
        corrupt(images(), CorruptionConfig(method="blur"), gen())
    with pytest.raises(SsaeError):
        corrupt(images(), dataclasses.replace(CorruptionConfig(), patch_min=0.5, patch_max=0.2), gen())


def test_random_rotation():
    x = images(b=3, h=32, w=48)
    r = random_rotation(x, gen(), max_degrees=180)
    assert r.shape == x.shape and float(r.min()) >= 0 and float(r.max()) <= 1
    assert torch.equal(r, random_rotation(x, gen(), max_degrees=180))
    assert (r - x).abs().mean() > 0.05
    assert torch.allclose(random_rotation(x, gen(), max_degrees=0), x, atol=1e-5)


def test_elastic_without_displacement_keeps_the_image():
    x = images(b=2)
    cfg = CorruptionConfig(method="elastic", elastic_alpha=0.0, brightness=0.0, patch_min=0.4, patch_max=0.5)
    x_hat, mask = corrupt(x, cfg, gen())
    assert mask.max() > 0.5
    assert torch.allclose(x_hat, x, atol=1e-5)                # X3 = X1, so X4 = X1


def test_real_valued_mask_blends_and_brightness_is_bounded():
    # On a flat grey image X1 = X3 before the gain, so Figure 5's X4 = X2 X3 + (1 - X2) X1
    # gives x_hat - x = M * x * (gain - 1): the same gain for every pixel of an image,
    # including the shape mask's soft edge, with |gain - 1| <= brightness.
    x = torch.full((8, 1, 32, 32), 0.5)
    cfg = CorruptionConfig(method="elastic", brightness=0.4, patch_min=0.5, patch_max=0.6)
    x_hat, mask = corrupt(x, cfg, gen(3))
    soft = (mask > 0.05) & (mask < 0.95)
    assert soft.any()                                          # real-valued, not a binary mask
    gains = []
    for d, m in zip(x_hat - x, mask):
        on = m > 0.05
        g = d[on] / (0.5 * m[on])                              # gain - 1, pixel by pixel
        assert torch.allclose(g, g.mean().expand_as(g), atol=1e-4)
        gains.append(float(g.mean()))
    assert max(abs(g) for g in gains) <= 0.4 + 1e-6
    assert max(gains) - min(gains) > 0.1                       # drawn per image


def test_band_shape_is_a_hard_edged_stripe_across_the_patch():
    # shape="band" (ours): X2 is 1 on a stripe that spans the patch along one axis and
    # covers a fraction in [band_min, band_max] of it along the other, 0 elsewhere.
    x = images(b=16, c=1, h=40, w=40)
    cfg = CorruptionConfig(method="swap", shape="band", band_min=0.25, band_max=0.5,
                           patch_min=0.5, patch_max=1.0, brightness=0.2)
    x_hat, mask, boxes = corrupt(x, cfg, gen(1), return_boxes=True)
    check_invariants(x, x_hat, mask, boxes)
    assert set(torch.unique(mask).tolist()) <= {0.0, 1.0}     # binary: sharp edges
    orientations = set()
    for m, (y0, x0, y1, x1) in zip(mask[:, 0], boxes[:, 0].tolist()):
        side = y1 - y0
        rows, cols = m.any(1).nonzero().flatten(), m.any(0).nonzero().flatten()
        on = m[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert torch.all(on == 1)                              # a solid rectangle
        extent = (len(rows), len(cols))
        assert side in extent                                  # spans the patch one way
        other = extent[0] if extent[1] == side and extent[0] != side else extent[1]
        assert 0.25 * side - 1 <= other <= 0.5 * side + 1      # its width the other way
        orientations.add(extent.index(side) if extent[0] != extent[1] else -1)
    assert {0, 1} <= orientations                              # horizontal and vertical bands
    tiny = dataclasses.replace(cfg, patch_min=0.05, patch_max=0.05, band_min=0.01, band_max=0.01)
    _, small = corrupt(x, tiny, gen(2))                       # 2 px patches, stripes under a pixel
    assert torch.all(small.flatten(1).amax(1) == 1)           # still one pixel wide, never empty
    with pytest.raises(SsaeError, match="shape"):
        corrupt(x, dataclasses.replace(cfg, shape="star"), gen())
    with pytest.raises(SsaeError, match="band_min"):
        corrupt(x, dataclasses.replace(cfg, band_min=0.7), gen())


def test_swap_and_occlusion_differ_when_a_source_is_given():
    """Swap takes the same region of another image; occlusion a random region of another data
    source (Sec. 4), so the two never give the same image."""
    from ssae.config import CorruptionConfig
    from ssae.corruption import corrupt

    x = torch.zeros(4, 1, 32, 32)
    ramp = torch.linspace(0, 1, 32)
    source = (ramp[None, :] + ramp[:, None]).div(2).expand(4, 1, 32, 32).contiguous()
    occl = torch.full((3, 1, 48, 40), 0.7)
    cfg = dict(patch_min=0.5, patch_max=0.5, brightness=0.0)
    swapped, ms = corrupt(x, CorruptionConfig(method="swap", **cfg), torch.Generator().manual_seed(1),
                          source=source, occluders=occl)
    occluded, mo = corrupt(x, CorruptionConfig(method="occlusion", **cfg), torch.Generator().manual_seed(1),
                           source=source, occluders=occl)
    full = ms > 0.999
    assert full.any() and torch.allclose(swapped[full.expand_as(swapped)], source[full.expand_as(source)], atol=2e-3)
    full = mo > 0.999
    assert full.any() and torch.allclose(occluded[full.expand_as(occluded)], torch.tensor(0.7), atol=2e-3)
    assert not torch.allclose(swapped, occluded)


def test_occlusion_without_occluders_is_colour_noise_not_a_swap():
    from ssae.config import CorruptionConfig
    from ssae.corruption import corrupt

    x = torch.zeros(2, 3, 32, 32)
    source = torch.ones(2, 3, 32, 32)
    out, m = corrupt(x, CorruptionConfig(method="occlusion", patch_min=0.5, patch_max=0.5, brightness=0.0),
                     torch.Generator().manual_seed(0), source=source)
    inside = (m > 0.999).expand_as(out)
    assert inside.any() and not torch.allclose(out[inside], torch.tensor(1.0))


def test_training_reads_the_occluders_folder(mvtec_dir, tmp_path):
    import numpy as np
    from PIL import Image

    from ssae.config import override, profile
    from ssae.data import load_split
    from ssae.training import train

    folder = tmp_path / "occluders"
    folder.mkdir()
    for i in range(3):
        Image.fromarray((np.random.default_rng(i).random((50, 60, 3)) * 255).astype("uint8")).save(folder / f"{i}.png")
    cfg = override(profile("smoke"), corruption={"method": "occlusion", "occluders": str(folder)}, train={"steps": 2})
    split = load_split(str(mvtec_dir), cfg.data)
    assert train(cfg, split, tmp_path / "run", progress=False)["steps"] == 2
    bad = override(cfg, corruption={"occluders": str(tmp_path / "empty")})
    with pytest.raises(Exception, match="no image files"):
        train(bad, split, tmp_path / "run2", progress=False)
