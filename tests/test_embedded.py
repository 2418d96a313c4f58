"""The generated texture data set (ssae.datasets.embedded): determinism, MVTec layout, masks that
match the drawn defects, stable normal-image statistics, atomic writes and caching.

Small sizes throughout (32-64 px, a few images) so the whole file runs in seconds.
"""
import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from ssae.datasets import embedded
from ssae.datasets.embedded import CATEGORIES, CHANNELS, DEFECTS, NORMAL_STATS, SUBTLE
from ssae.errors import SsaeError

SMALL = dict(size=64, n_train=2, n_test_good=2, n_test_per_defect=2)

MVTEC_DEFECTS = {
    "carpet": {"color", "cut", "hole", "thread", "metal_contamination"},
    "grid": {"bent", "broken", "glue", "metal_contamination", "thread"},
    "leather": {"color", "cut", "fold", "glue", "poke"},
    "tile": {"crack", "glue_strip", "gray_stroke", "oil", "rough"},
    "wood": {"color", "combined", "hole", "liquid", "scratch"},
}


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_categories_and_defect_types_mirror_mvtec():
    assert CATEGORIES == ("carpet", "grid", "leather", "tile", "wood")
    for category in CATEGORIES:
        assert 3 <= len(DEFECTS[category]) <= 4
        assert set(DEFECTS[category]) <= MVTEC_DEFECTS[category]
        assert set(SUBTLE[category]) <= set(DEFECTS[category])
    assert sum(len(v) for v in SUBTLE.values()) >= 1
    assert CHANNELS["grid"] == 1 and all(CHANNELS[c] == 3 for c in CATEGORIES if c != "grid")
    assert "not MVTec AD" in embedded.__doc__


@pytest.mark.parametrize("category", ["carpet", "grid"])
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, category):
    a = embedded.generate(category, tmp_path / "a", seed=5, **SMALL)
    b = embedded.generate(category, tmp_path / "b", seed=5, **SMALL)
    c = embedded.generate(category, tmp_path / "c", seed=6, **SMALL)
    files_a, files_b, files_c = _files(a), _files(b), _files(c)
    assert files_a == files_b
    assert files_a.keys() == files_c.keys()
    pngs = [k for k in files_a if k.endswith(".png") and "ground_truth" not in k]
    assert all(files_a[k] != files_c[k] for k in pngs)


@pytest.mark.parametrize("category", CATEGORIES)
def test_sample_is_deterministic_and_images_are_not_copies(category):
    one = embedded.sample(category, seed=1, index=0, size=32, split="train")
    again = embedded.sample(category, seed=1, index=0, size=32, split="train")
    other = embedded.sample(category, seed=1, index=1, size=32, split="train")
    assert np.array_equal(one.image, again.image)
    assert np.abs(one.image - other.image).mean() > 0.02       # natural variation, not copies


@pytest.mark.parametrize("category", CATEGORIES)
def test_mvtec_layout(tmp_path, category):
    root = embedded.generate(category, tmp_path, seed=0, **SMALL)
    assert root == tmp_path / category
    mode = "L" if CHANNELS[category] == 1 else "RGB"
    train = sorted((root / "train" / "good").iterdir())
    assert [p.name for p in train] == ["000.png", "001.png"]
    assert sorted(p.name for p in (root / "test").iterdir()) == sorted(("good",) + DEFECTS[category])
    assert sorted(p.name for p in (root / "ground_truth").iterdir()) == sorted(DEFECTS[category])
    assert len(list((root / "test" / "good").iterdir())) == 2
    for path in train + sorted((root / "test" / "good").iterdir()):
        with Image.open(path) as im:
            assert (im.format, im.mode, im.size) == ("PNG", mode, (64, 64))
    for defect in DEFECTS[category]:
        images = sorted((root / "test" / defect).iterdir())
        masks = sorted((root / "ground_truth" / defect).iterdir())
        assert len(images) == 2
        assert [m.name for m in masks] == [p.stem + "_mask.png" for p in images]
        for image_path, mask_path in zip(images, masks):
            with Image.open(image_path) as im, Image.open(mask_path) as mk:
                assert im.mode == mode and mk.mode == "L" and mk.size == im.size
                values = np.unique(np.asarray(mk))
            assert set(values.tolist()) == {0, 255}          # binary and non-empty
    stamp = json.loads((root / "VERSION").read_text())
    assert stamp["version"] == embedded.GENERATOR_VERSION
    assert (stamp["seed"], stamp["size"], stamp["n_train"]) == (0, 64, 2)
    assert (stamp["n_test_good"], stamp["n_test_per_defect"]) == (2, 2)


def test_written_files_are_exactly_the_sampled_images(tmp_path):
    root = embedded.generate("wood", tmp_path, seed=2, **SMALL)
    ex = embedded.sample("wood", "hole", seed=2, index=1, size=64)
    image = np.asarray(Image.open(root / "test" / "hole" / "001.png"))
    mask = np.asarray(Image.open(root / "ground_truth" / "hole" / "001_mask.png"))
    assert np.array_equal(image, np.round(ex.image * 255).astype(np.uint8))
    assert np.array_equal(mask > 0, ex.mask)
    train = np.asarray(Image.open(root / "train" / "good" / "000.png"))
    assert np.array_equal(train, np.round(embedded.sample("wood", seed=2, split="train", size=64).image
                                          * 255).astype(np.uint8))


@pytest.mark.parametrize("category", CATEGORIES)
def test_masks_are_exactly_the_drawn_defect(category):
    """Each defective image is drawn on a clean base: inside the mask the pixels change,
    everything the defect changed lies in the mask (up to its soft border), and far from
    the mask the image equals the clean one (up to a few grey levels)."""
    for defect in DEFECTS[category]:
        for index in range(2):
            ex = embedded.sample(category, defect, seed=0, index=index, size=64)
            assert ex.mask.shape == ex.image.shape[:2] and ex.mask.any(), (defect, index)
            diff = np.abs(ex.image - ex.clean).max(-1)
            assert diff[ex.mask].mean() >= 0.02, (defect, index)
            near = ndimage.binary_dilation(ex.mask, iterations=2)
            far = ~ndimage.binary_dilation(ex.mask, iterations=3)
            assert diff[near].sum() >= 0.97 * diff.sum(), (defect, index)
            assert diff[far].max() <= 6 / 255, (defect, index)


def test_subtle_defects_are_low_contrast_and_obvious_ones_are_not():
    """Mean change inside the mask: subtle types stay below ~0.09, obvious ones average more."""
    for category in CATEGORIES:
        for defect in DEFECTS[category]:
            changes = []
            for index in range(2):
                ex = embedded.sample(category, defect, seed=1, index=index, size=48)
                changes.append(np.abs(ex.image - ex.clean).mean(-1)[ex.mask].mean())
            if defect in SUBTLE[category]:
                assert np.mean(changes) < 0.09, (category, defect, changes)
            else:
                assert np.mean(changes) > 0.06, (category, defect, changes)


@pytest.mark.parametrize("category", CATEGORIES)
def test_normal_image_statistics_stay_in_the_stated_range(category):
    (mean_lo, mean_hi), (std_lo, std_hi) = NORMAL_STATS[category]
    for seed in (0, 1, 2):
        for index in range(2):
            grey = embedded.sample(category, seed=seed, index=index, size=64, split="train").image.mean(-1)
            assert mean_lo <= grey.mean() <= mean_hi, (seed, index, grey.mean())
            assert std_lo <= grey.std() <= std_hi, (seed, index, grey.std())


def test_a_failed_write_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    good = embedded.generate("tile", tmp_path, seed=0, **SMALL)
    before = _files(good)
    calls = {"n": 0}
    real_save = embedded._save_png

    def failing_save(array, path):
        calls["n"] += 1
        if calls["n"] > 5:
            raise RuntimeError("disk on fire")
        real_save(array, path)

    monkeypatch.setattr(embedded, "_save_png", failing_save)
    with pytest.raises(RuntimeError):
        embedded.generate("carpet", tmp_path, seed=0, **SMALL)
    assert not (tmp_path / "carpet").exists()
    calls["n"] = 0
    with pytest.raises(RuntimeError):                          # replacing an existing set
        embedded.generate("tile", tmp_path, seed=1, **SMALL)
    assert _files(good) == before                              # the old set is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tile"]   # no temporary leftovers


def test_ensure_reuses_a_matching_set_and_regenerates_otherwise(tmp_path, monkeypatch):
    monkeypatch.setenv("SSAE_CACHE", str(tmp_path))
    kw = dict(size=32, n_train=1, n_test_good=1, n_test_per_defect=1)
    path = embedded.ensure("grid", **kw)
    assert path.is_dir() and path.name == "grid"
    assert tmp_path / "embedded" in path.parents
    stamp = path / "VERSION"
    written = stamp.stat().st_mtime_ns

    def no_writing(*args, **kwargs):
        raise AssertionError("regenerated a cached set")

    monkeypatch.setattr(embedded, "_write_set", no_writing)
    assert embedded.ensure("grid", **kw) == path
    assert stamp.stat().st_mtime_ns == written
    monkeypatch.undo()
    monkeypatch.setenv("SSAE_CACHE", str(tmp_path))

    data = json.loads(stamp.read_text())                       # a stale stamp: regenerate
    data["version"] = -1
    stamp.write_text(json.dumps(data))
    assert embedded.ensure("grid", **kw) == path
    assert json.loads(stamp.read_text())["version"] == embedded.GENERATOR_VERSION

    other = embedded.ensure("grid", cache_dir=tmp_path / "elsewhere", seed=3, **kw)
    assert tmp_path / "elsewhere" in other.parents and other != path


def test_expected_errors_are_one_line_ssae_errors(tmp_path):
    with pytest.raises(SsaeError, match="carpet, grid, leather, tile, wood"):
        embedded.ensure("bottle", cache_dir=tmp_path)
    with pytest.raises(SsaeError, match="unknown embedded category"):
        embedded.generate("bottle", tmp_path)
    with pytest.raises(SsaeError, match="size"):
        embedded.generate("wood", tmp_path, size=8)
    with pytest.raises(SsaeError, match="n_train"):
        embedded.ensure("wood", cache_dir=tmp_path, n_train=0)
    with pytest.raises(SsaeError, match="colour"):
        embedded.ensure("wood", cache_dir=tmp_path, colour=1)
    with pytest.raises(SsaeError, match="crack"):
        embedded.sample("wood", "crack")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SsaeError, match="cannot write") as err:
        embedded.generate("wood", blocker, **SMALL)
    assert "\n" not in str(err.value)


def test_gallery_from_memory_and_from_disk(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    fig = embedded.gallery("leather", size=32, n_normal=2)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert "fold (subtle)" in titles and "poke" in titles
    embedded.generate("grid", tmp_path, **SMALL)
    fig = embedded.gallery("grid", tmp_path, n_normal=2)
    assert sum(bool(ax.get_images()) for ax in fig.axes) == 2 + 2 * len(DEFECTS["grid"])
    with pytest.raises(SsaeError, match="no embedded:wood set"):
        embedded.gallery("wood", tmp_path)
