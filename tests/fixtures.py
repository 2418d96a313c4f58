"""Tiny generated data sets on disk, in the original layouts, plus ways to break them.

Builders (each writes into ``root`` and returns the data set folder to pass to
``ssae.data.load_split``); every image is a smooth random texture, every defect a bright
square, and each defect mask marks exactly that square:

- :func:`make_mvtec`: MVTec AD layout ``train/good``, ``test/good``, ``test/<defect>`` and,
  with ``masks=True``, ``ground_truth/<defect>/<stem>_mask.png``. ``grey=True`` writes mode
  L images (1 channel), else RGB. Default size 40 x 48 (H x W, non-square).
- :func:`make_mtd`: Magnetic Tile Defects layout ``MT_<class>/Imgs/<name>.jpg`` (grey)
  with ``<name>.png`` masks, ``differnet_train_split.txt`` listing the training MT_Free
  files, image sizes that differ, and one empty defect mask (like MTD's Uneven class).

Breakers (each returns the path it damaged, which the expected error message must name):
:func:`truncate_file`, :func:`remove_mask`, :func:`resize_mask`, :func:`empty_train`,
:func:`make_unknown`.

The pytest fixtures in ``conftest.py`` wrap these: ``mvtec_dir``, ``mvtec_nomask_dir``,
``mvtec_grey_dir``, ``mtd_dir`` (fresh per test, so tests may damage them).
Counts of the defaults: ``MVTEC_COUNTS`` and ``MTD_COUNTS`` below.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

MVTEC_DEFECTS = ("scratch", "hole")
#: make_mvtec defaults: n_train, n_good (test), n_per_defect
MVTEC_COUNTS = {"train": 8, "test_good": 2, "per_defect": 2}
#: make_mtd defaults
MTD_COUNTS = {"free": 10, "train": 6, "per_class": 2}
MTD_CLASSES = ("Blowhole", "Uneven")


def _texture(rng: np.random.Generator, h: int, w: int, channels: int) -> np.ndarray:
    """A smooth random uint8 texture, H x W (x 3)."""
    coarse = rng.random((h // 4 + 2, w // 4 + 2, channels))
    big = np.kron(coarse, np.ones((4, 4, 1)))[:h, :w]
    img = (60 + 120 * big + 20 * rng.random((h, w, channels))).clip(0, 255).astype(np.uint8)
    return img[..., 0] if channels == 1 else img


def _defect_box(rng: np.random.Generator, h: int, w: int) -> tuple[slice, slice]:
    side = max(3, min(h, w) // 5)
    y, x = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
    return slice(y, y + side), slice(x, x + side)


def _save(img: np.ndarray, path: Path, quality: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(img)
    if quality is None:
        im.save(path)
    else:
        im.save(path, quality=quality)


def make_mvtec(root, *, masks: bool = True, grey: bool = False, size: tuple[int, int] = (40, 48),
               n_train: int = MVTEC_COUNTS["train"], n_good: int = MVTEC_COUNTS["test_good"],
               defects: tuple[str, ...] = MVTEC_DEFECTS, n_per_defect: int = MVTEC_COUNTS["per_defect"],
               name: str = "widget", seed: int = 0) -> Path:
    """Write an MVTec-AD-layout category ``root/name`` and return its path.

    Test images of defect ``d`` are ``test/d/000.png, 001.png, ...``; their masks
    ``ground_truth/d/000_mask.png, ...`` (0/255, same size) when ``masks`` is True.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    ch = 1 if grey else 3
    cat = Path(root) / name
    for i in range(n_train):
        _save(_texture(rng, h, w, ch), cat / "train" / "good" / f"{i:03d}.png")
    for i in range(n_good):
        _save(_texture(rng, h, w, ch), cat / "test" / "good" / f"{i:03d}.png")
    for d in defects:
        for i in range(n_per_defect):
            img = _texture(rng, h, w, ch)
            box = _defect_box(rng, h, w)
            img[box] = 250
            _save(img, cat / "test" / d / f"{i:03d}.png")
            if masks:
                m = np.zeros((h, w), np.uint8)
                m[box] = 255
                _save(m, cat / "ground_truth" / d / f"{i:03d}_mask.png")
    return cat


def make_mtd(root, *, n_free: int = MTD_COUNTS["free"], n_train: int = MTD_COUNTS["train"],
             classes: tuple[str, ...] = MTD_CLASSES, n_per_class: int = MTD_COUNTS["per_class"],
             seed: int = 0) -> Path:
    """Write a Magnetic-Tile-Defects-layout folder ``root/mtd`` and return its path.

    Grey JPEG images of varying size (about 30-44 x 36-52 px), PNG masks beside them
    (MT_Free masks are all zero, as in MTD), the first defect image of the last class has
    an empty mask, and ``differnet_train_split.txt`` lists ``n_train`` MT_Free file names,
    one per line (bare file names, as the real file).
    """
    rng = np.random.default_rng(seed)
    top = Path(root) / "mtd"

    def write(cls: str, stem: str, defect: bool, empty: bool = False):
        h, w = int(rng.integers(30, 45)), int(rng.integers(36, 53))
        img = _texture(rng, h, w, 1)
        m = np.zeros((h, w), np.uint8)
        if defect and not empty:
            box = _defect_box(rng, h, w)
            img[box] = 20
            m[box] = 255
        _save(img, top / f"MT_{cls}" / "Imgs" / f"{stem}.jpg", quality=95)
        _save(m, top / f"MT_{cls}" / "Imgs" / f"{stem}.png")

    free = [f"exp{i % 3}_num_{1000 + i}" for i in range(n_free)]
    for stem in free:
        write("Free", stem, defect=False)
    for c, cls in enumerate(classes):
        for i in range(n_per_class):
            empty = c == len(classes) - 1 and i == 0
            write(cls, f"exp{c}_num_{5000 + 10 * c + i}", defect=True, empty=empty)
    chosen = rng.choice(n_free, size=n_train, replace=False)
    (top / "differnet_train_split.txt").write_text("".join(f"{free[i]}.jpg\n" for i in chosen))
    return top


# -----------------------------------------------------------------------------
# breakers: each returns the damaged path

def truncate_file(path, keep: float = 0.5) -> Path:
    """Cut an image file to ``keep`` of its bytes (a truncated download)."""
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: max(16, int(len(data) * keep))])
    return path


def first_mask(data_dir) -> Path:
    """The first mask file of an MVTec (``ground_truth``) or MTD (defect class) folder."""
    data_dir = Path(data_dir)
    masks = sorted((data_dir / "ground_truth").glob("*/*_mask.png"))
    if not masks:
        masks = sorted(p for p in data_dir.glob("MT_*/Imgs/*.png") if "MT_Free" not in str(p))
    return masks[0]


def remove_mask(data_dir) -> Path:
    """Delete the first defect mask; return its path."""
    mask = first_mask(data_dir)
    mask.unlink()
    return mask


def resize_mask(data_dir) -> Path:
    """Rewrite the first defect mask 3 pixels wider than its image; return its path."""
    mask = first_mask(data_dir)
    m = np.asarray(Image.open(mask))
    wider = np.zeros((m.shape[0], m.shape[1] + 3), np.uint8)
    wider[:, : m.shape[1]] = m
    Image.fromarray(wider).save(mask)
    return mask


def empty_train(data_dir) -> Path:
    """Delete every training image of an MVTec-layout folder; return ``train/good``."""
    folder = Path(data_dir) / "train" / "good"
    for p in folder.iterdir():
        p.unlink()
    return folder


def make_unknown(root) -> Path:
    """A folder with images but neither MVTec nor MTD layout; return it."""
    top = Path(root) / "loose_images"
    _save(np.zeros((8, 8), np.uint8), top / "images" / "a.png")
    return top


class Unsafe:
    """An object that a checkpoint must not hold (loading it would run pickled code)."""
