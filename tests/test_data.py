"""ssae.data: layouts, splits, reading, errors naming the file, augmentation."""
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import fixtures
from ssae import data
from ssae.config import DataConfig
from ssae.errors import SsaeError

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
MTD = REAL / "mtd"
BOTTLE = REAL / "mvtec_ad" / "bottle"


def cfg(**kw):
    return DataConfig(image_size=None, **kw)


# ---------------------------------------------------------------- layouts

def test_mvtec_with_masks(mvtec_dir):
    s = data.load_split(str(mvtec_dir), cfg())
    n = fixtures.MVTEC_COUNTS
    assert len(s.train) + len(s.val) == n["train"] and len(s.val) == 1
    assert not set(s.train) & set(s.val)
    assert len(s.test) == n["test_good"] + 2 * n["per_defect"]
    assert Counter(t.label for t in s.test) == {0: n["test_good"], 1: 2 * n["per_defect"]}
    assert {t.defect for t in s.test} == {"good", "scratch", "hole"}
    assert s.has_masks and s.channels == 3 and s.name == "widget"
    for t in s.test:
        assert (t.mask_path is not None) == (t.label == 1)
        if t.mask_path:
            assert t.mask_path.name == f"{t.path.stem}_mask.png"
            data.check_mask_size(t.path, t.mask_path)
            m = data.read_mask(t.mask_path, data.native_size(t.path))
            assert m.dtype == bool and m.shape == (40, 48) and m.any()


def test_mvtec_without_masks(mvtec_nomask_dir):
    s = data.load_split(str(mvtec_nomask_dir), cfg())
    assert not s.has_masks
    assert all(t.mask_path is None for t in s.test)
    assert sum(t.label for t in s.test) == 4


def test_mvtec_grey(mvtec_grey_dir):
    s = data.load_split(str(mvtec_grey_dir), cfg())
    assert s.channels == 1
    x = data.read_image(s.train[0], None, s.channels)
    assert x.shape == (32, 32, 1) and x.dtype == np.float32


def test_mtd_layout(mtd_dir):
    s = data.load_split(str(mtd_dir), cfg())
    n = fixtures.MTD_COUNTS
    assert s.channels == 1 and s.has_masks
    assert len(s.train) + len(s.val) == n["train"]
    listed = set((mtd_dir / "differnet_train_split.txt").read_text().split())
    assert {p.name for p in s.train + s.val} == listed
    good = [t for t in s.test if t.label == 0]
    bad = [t for t in s.test if t.label == 1]
    assert len(good) == n["free"] - n["train"] and all(t.mask_path is None for t in good)
    assert not {t.path.name for t in good} & listed
    assert len(bad) == 2 * n["per_class"] and {t.defect for t in bad} == {"Blowhole", "Uneven"}
    sizes = {data.native_size(t.path) for t in s.test}
    assert len(sizes) > 1                                     # native sizes differ
    empties = [t for t in bad if not data.read_mask(t.mask_path, data.native_size(t.path)).any()]
    assert len(empties) == 1                                  # empty masks are allowed


def test_embedded_spec_uses_ensure(monkeypatch, tmp_path):
    import sys
    import types
    made = fixtures.make_mvtec(tmp_path, name="carpet")
    fake = types.ModuleType("ssae.datasets.embedded")
    fake.ensure = lambda category, **kw: made if category == "carpet" else None
    monkeypatch.setitem(sys.modules, "ssae.datasets.embedded", fake)
    monkeypatch.setattr("ssae.datasets.embedded", fake, raising=False)
    s = data.load_split("embedded:carpet", cfg())
    assert s.name == "embedded:carpet" and s.has_masks and len(s.test) == 6


def test_split_is_deterministic_and_capped(mvtec_dir):
    a = data.load_split(str(mvtec_dir), cfg(val_fraction=0.25), seed=3)
    b = data.load_split(str(mvtec_dir), cfg(val_fraction=0.25), seed=3)
    assert a.val == b.val and len(a.val) == 2
    c = data.load_split(str(mvtec_dir), cfg(max_train=4, max_test=3), seed=1)
    assert len(c.train) + len(c.val) == 4 and len(c.test) == 3
    assert {t.label for t in c.test} == {0, 1}


# ---------------------------------------------------------------- real data (listing only)

@pytest.mark.skipif(not MTD.is_dir(), reason="real MTD data not present")
def test_real_mtd_counts():
    s = data.load_split(str(MTD), cfg())
    assert len(s.train) + len(s.val) == 761 and len(s.val) == 38
    assert Counter(t.label for t in s.test) == {0: 191, 1: 392}
    assert Counter(t.defect for t in s.test if t.label) == {
        "Blowhole": 115, "Break": 85, "Crack": 57, "Fray": 32, "Uneven": 103}
    assert s.channels == 1 and s.has_masks


@pytest.mark.skipif(not BOTTLE.is_dir(), reason="real MVTec bottle data not present")
def test_real_bottle_counts():
    s = data.load_split(str(BOTTLE), cfg())
    assert len(s.train) + len(s.val) == 209
    assert len(s.test) == 83 and sum(t.label == 0 for t in s.test) == 20
    assert s.channels == 3 and not s.has_masks and s.name == "bottle"


# ---------------------------------------------------------------- reading

def test_read_image_resize_and_range(mvtec_dir):
    path = sorted((mvtec_dir / "train" / "good").iterdir())[0]
    x = data.read_image(path, None, 3)
    assert x.shape == (40, 48, 3) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 1
    y = data.read_image(path, 16, 3)
    assert y.shape == (16, 16, 3) and 0 <= y.min() and y.max() <= 1
    g = data.read_image(path, None, 1)                        # colour -> grey
    assert g.shape == (40, 48, 1)
    imgs = data.load_images([path, path], 8, 3, progress=False)
    assert len(imgs) == 2 and imgs[0].shape == (8, 8, 3)


def test_read_image_16bit(tmp_path):
    from PIL import Image
    arr = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    p = tmp_path / "deep.png"
    Image.fromarray(arr).save(p)
    assert data.image_channels(p) == 1
    x = data.read_image(p, None, 1)
    assert x.shape == (2, 2, 1) and x[0, 1, 0] == pytest.approx(1.0) and x[0, 0, 0] == 0


def test_read_mask_nearest(mvtec_dir):
    mask = fixtures.first_mask(mvtec_dir)
    m = data.read_mask(mask, (20, 24))
    assert m.shape == (20, 24) and set(np.unique(m)) <= {False, True} and m.any()


# ---------------------------------------------------------------- errors name the file

@pytest.mark.parametrize("which", ["png", "jpg"])
def test_truncated_image_names_file(which, mvtec_dir, mtd_dir):
    if which == "png":
        path = sorted((mvtec_dir / "train" / "good").iterdir())[0]
    else:
        path = sorted((mtd_dir / "MT_Free" / "Imgs").glob("*.jpg"))[0]
    fixtures.truncate_file(path)
    with pytest.raises(SsaeError, match=path.name) as e:
        data.read_image(path, None, 1)
    assert "\n" not in str(e.value)


def test_missing_mask_names_mask(mvtec_dir):
    gone = fixtures.remove_mask(mvtec_dir)
    with pytest.raises(SsaeError, match=str(gone).replace("\\", "\\\\")):
        data.load_split(str(mvtec_dir), cfg())


def test_missing_mtd_mask_names_mask(mtd_dir):
    gone = fixtures.remove_mask(mtd_dir)
    with pytest.raises(SsaeError, match=gone.name):
        data.load_split(str(mtd_dir), cfg())


def test_mis_sized_mask_names_mask(mvtec_dir):
    bad = fixtures.resize_mask(mvtec_dir)
    s = data.load_split(str(mvtec_dir), cfg())
    item = next(t for t in s.test if t.mask_path == bad)
    with pytest.raises(SsaeError, match=bad.name) as e:
        data.check_mask_size(item.path, item.mask_path)
    assert "mask" in str(e.value)


def test_empty_train_names_folder(mvtec_dir):
    folder = fixtures.empty_train(mvtec_dir)
    with pytest.raises(SsaeError, match="train/good"):
        data.load_split(str(mvtec_dir), cfg())
    assert folder.is_dir()


def test_unknown_layout_and_missing_path(tmp_path):
    odd = fixtures.make_unknown(tmp_path)
    with pytest.raises(SsaeError, match="unknown data layout at .*loose_images"):
        data.load_split(str(odd), cfg())
    with pytest.raises(SsaeError, match="not found: .*nowhere"):
        data.load_split(str(tmp_path / "nowhere"), cfg())


def test_bad_split_file_names_file(mtd_dir):
    (mtd_dir / "differnet_train_split.txt").write_text("no_such_file.jpg\n")
    with pytest.raises(SsaeError, match="differnet_train_split.txt.*no_such_file"):
        data.load_split(str(mtd_dir), cfg())


def test_unreadable_file_names_file(tmp_path):
    p = tmp_path / "junk.png"
    p.write_bytes(b"not an image at all")
    with pytest.raises(SsaeError, match="junk.png"):
        data.read_image(p, None, 3)
    with pytest.raises(SsaeError, match="junk.png"):
        data.read_mask(p, (4, 4))


# ---------------------------------------------------------------- augmentation

def test_augment_square_covers_dihedral_group():
    x = torch.arange(9.0).reshape(1, 1, 3, 3).repeat(64, 1, 1, 1)
    g = torch.Generator().manual_seed(0)
    y = data.augment(x, g)
    assert y.shape == x.shape
    seen = {tuple(v.flatten().tolist()) for v in y}
    assert len(seen) == 8                                     # all 4 rotations x 2 mirror images
    assert torch.equal(data.augment(x, torch.Generator().manual_seed(0)), y)
    assert torch.equal(data.augment(x, g, rot90=False, flips=False), x)


def test_augmentation_depends_on_the_category():
    def resolved(name, **given):
        cfg = DataConfig(**given)
        data.resolve_augmentation(cfg, name)
        return cfg.rot90, cfg.flips

    assert resolved("wood") == resolved("embedded:wood") == (False, True)
    assert resolved("mtd") == (False, True)                      # its streaks always run top to bottom
    assert resolved("metal_nut") == (True, False)                # "flip" is a defect type there
    assert resolved("transistor") == (False, False)
    assert resolved("my_parts") == (True, True)                  # unknown: the paper's texture setting
    assert resolved("wood", rot90=True) == (True, True)          # an explicit setting wins
    assert resolved("bottle", flips=False) == (True, False)


def test_augment_non_square_keeps_shape():
    x = torch.rand(16, 2, 4, 6)
    y = data.augment(x, torch.Generator().manual_seed(1), rot90=True, flips=False)
    assert y.shape == x.shape
    for a, b in zip(x, y):                                    # identity or rotation by 180 only
        assert torch.equal(a, b) or torch.equal(a.flip(-1).flip(-2), b)


def test_a_split_loads_its_images_at_a_size_with_its_channels(mvtec_grey_dir):
    from ssae.config import DataConfig
    from ssae.data import load_images, load_split

    split = load_split(str(mvtec_grey_dir), DataConfig(image_size=16))
    items = split.test[:3]
    images = split.images(items, 16)
    assert [a.shape for a in images] == [(16, 16, 1)] * 3
    direct = load_images([it.path for it in items], 16, 1, progress=False)
    assert all((a == b).all() for a, b in zip(images, direct))
    assert split.images(split.train[:1], None)[0].shape == (32, 32, 1)  # native size
