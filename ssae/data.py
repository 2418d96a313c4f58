"""Data sets in their original layouts, image reading and training augmentation (Sec. 4.1).

Three sources are understood by :func:`load_split`:

- **MVTec AD** (a category folder): ``train/good/*``, ``test/<defect>/*`` with ``test/good``
  the defect-free test images, and optionally ``ground_truth/<defect>/<stem>_mask.png``.
  Without ``ground_truth/`` the split has ``has_masks=False`` and only image-level metrics can
  be computed. With it, every defective test image must have its mask (which pixels count as
  defective: :func:`read_mask`).
- **Magnetic Tile Defects** (the folder holding ``MT_Free/``): ``MT_<class>/Imgs/<name>.jpg``
  is a grey image and ``<name>.png`` beside it its pixel mask. ``differnet_train_split.txt``
  lists one ``MT_Free`` file name per line: these are the training images; the test set is
  the remaining ``MT_Free`` images (label 0) plus every defect image (label 1, with mask;
  some masks are empty).
- ``"embedded:<category>"``: the generated data of :mod:`ssae.datasets.embedded`, in MVTec layout.

The paper uses 5% of the training data as validation set (Sec. 4.1); here the fraction is
``cfg.val_fraction`` (at least one image), drawn deterministically from ``seed``.
Augmentation follows Sec. 4.1: rotations by multiples of 90 degrees and flips "depending on
the category"; :data:`AUGMENTATION` says which, per category (our choices: the paper gives none).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ssae.config import DataConfig
from ssae.errors import SsaeError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
MTD_SPLIT_FILE = "differnet_train_split.txt"
MASK_LEVEL = 128  # mask pixels >= this grey level are defective (MTD masks have soft edges); see read_mask


@dataclass
class TestItem:
    __test__ = False           # not a pytest test class despite the name
    path: Path
    label: int                 # 0 good, 1 defective
    defect: str                # "good" or the defect folder / MTD class (e.g. "Blowhole")
    mask_path: Path | None     # None: no pixel mask (good images, or data set without ground_truth)


@dataclass
class Split:
    name: str                  # e.g. "mtd", "bottle", "embedded:carpet"
    train: list[Path]
    val: list[Path]            # cfg.val_fraction of the training images, deterministic for the seed
    test: list[TestItem]
    channels: int              # 1 for grey data sets, 3 for colour
    has_masks: bool            # pixel masks available for the defective test images

    def images(self, items, size: int | None, progress: bool = False) -> list[np.ndarray]:
        """The images of ``items`` (paths, or :class:`TestItem`) at ``size`` (a run's
        ``data.image_size``; None: native) with the split's channels (:func:`load_images`)."""
        return load_images([getattr(it, "path", it) for it in items], size, self.channels, progress=progress)


# -----------------------------------------------------------------------------
# splits

def load_split(spec: str, cfg: DataConfig, seed: int = 0) -> Split:
    """Read a data set listing (no pixels are decoded) and split off the validation images.

    ``spec`` is a folder in MVTec AD or Magnetic Tile Defects layout, or ``"embedded:<category>"``.
    ``cfg.max_train`` caps the training pool before the validation split; ``cfg.max_test``
    caps the test set, keeping both labels. All random choices derive from ``seed``.
    """
    spec = str(spec)
    if spec.startswith("embedded:"):
        from ssae.datasets import embedded  # lazy: generating data is only needed for this spec
        root = Path(embedded.ensure(spec.split(":", 1)[1]))
        train, test, has_masks = _list_mvtec(root)
        name = spec
    else:
        root = Path(spec)
        if not root.exists():
            raise SsaeError(f"data path not found: {root}")
        if (root / "MT_Free").is_dir():
            train, test, has_masks = _list_mtd(root)
            name = root.name or "mtd"
        elif (root / "train" / "good").is_dir() and (root / "test").is_dir():
            train, test, has_masks = _list_mvtec(root)
            name = root.name
        else:
            raise SsaeError(_unknown_layout(root))

    rng = np.random.default_rng(seed)
    if cfg.max_train is not None and len(train) > cfg.max_train:
        keep = np.sort(rng.choice(len(train), size=max(cfg.max_train, 2), replace=False))
        train = [train[i] for i in keep]
    train, val = _split_validation(train, cfg.val_fraction, rng)
    if cfg.max_test is not None and len(test) > cfg.max_test:
        test = _stratified_cap(test, cfg.max_test, rng)
    channels = training_channels(train + val)
    check_training_sizes(train + val)
    return Split(name=name, train=train, val=val, test=test, channels=channels, has_masks=has_masks)


#: ours: the smallest side of a training image; the network downsamples by 8
MIN_TRAIN_SIDE = 8


def check_training_sizes(paths: list[Path]) -> None:
    """A one-line error naming the first training image with a side under
    :data:`MIN_TRAIN_SIDE` pixels (a 1 x 1 image holds no texture to learn, whatever size it is
    resized to); reads only the headers."""
    for p in paths:
        h, w = native_size(p)
        if min(h, w) < MIN_TRAIN_SIDE:
            raise SsaeError(f"training image {p} is {w} x {h} px: too small to learn a surface from (at least "
                            f"{MIN_TRAIN_SIDE} x {MIN_TRAIN_SIDE} px); remove it from the training folder")


def training_channels(paths: list[Path]) -> int:
    """The channel count (1 grey, 3 colour) shared by all training images ``paths``.

    Images whose channel count differs from the first's are an error naming both files, not a
    silent conversion: in a set of colour images a grey one is usually a file that does not
    belong (a mask, a scan of another part), and converting it would train the model on
    images that differ from the data without a word. Reads only the headers.
    """
    first = image_channels(paths[0])
    for path in paths[1:]:
        channels = image_channels(path)
        if channels != first:
            kind = {1: "grey", 3: "colour"}
            raise SsaeError(f"training image {path} is {kind[channels]} but {paths[0]} is {kind[first]}: the "
                            f"training images must be all grey or all colour; convert the odd ones (e.g. "
                            f"to {kind[first]}) or remove them")
    return first


def _unknown_layout(root: Path) -> str:
    """Why ``root`` is neither an MVTec AD nor a Magnetic Tile Defects folder: what it lacks."""
    if not root.is_dir():
        return f"data path {root} is a file; expected a folder in MVTec AD or Magnetic Tile Defects layout"
    missing = [name for name in ("train/good", "test") if not (root / name).is_dir()]
    return (f"unknown data layout at {root}: it has no {' and no '.join(missing)} folder "
            f"(MVTec AD layout: train/good + test/<defect>) and no MT_Free folder (Magnetic Tile Defects)")


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def image_files(folder) -> list[Path]:
    """The image files directly in ``folder`` (by suffix, :data:`IMAGE_SUFFIXES`), sorted."""
    return _images_in(Path(folder))


def occluder_images(folder, size: int | None, channels: int) -> list[np.ndarray]:
    """The images of ``corruption.occluders`` (every image file below ``folder``), read at
    ``size`` with ``channels`` channels: the "different data source" of occlusion (Sec. 4)."""
    root = Path(folder)
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES) \
        if root.is_dir() else []
    if not paths:
        raise SsaeError(f"corruption.occluders: no image files in {root}")
    return load_images(paths, size, channels, progress=False)


def _list_mvtec(root: Path) -> tuple[list[Path], list[TestItem], bool]:
    """MVTec AD layout: train/good, test/<defect>, optional ground_truth/<defect>/<stem>_mask.png."""
    train = _images_in(root / "train" / "good")
    if not train:
        raise SsaeError(f"no training images in {root / 'train' / 'good'}")
    has_masks = (root / "ground_truth").is_dir()
    test: list[TestItem] = []
    for folder in sorted(p for p in (root / "test").iterdir() if p.is_dir()):
        defect = folder.name
        label = 0 if defect == "good" else 1
        for path in _images_in(folder):
            mask = None
            if label == 1 and has_masks:
                mask = root / "ground_truth" / defect / f"{path.stem}_mask.png"
                if not mask.is_file():
                    raise SsaeError(f"missing mask {mask} for test image {path}")
            test.append(TestItem(path=path, label=label, defect=defect, mask_path=mask))
    if not test:
        raise SsaeError(f"no test images in {root / 'test'}")
    return train, test, has_masks


def _list_mtd(root: Path) -> tuple[list[Path], list[TestItem], bool]:
    """Magnetic Tile Defects original layout with the DifferNet training split."""
    split_file = root / MTD_SPLIT_FILE
    if not split_file.is_file():
        raise SsaeError(f"missing training split {split_file} (one MT_Free file name per line)")
    free = {p.name: p for p in sorted((root / "MT_Free" / "Imgs").glob("*.jpg"))}
    names = [Path(line.strip()).name for line in split_file.read_text().splitlines() if line.strip()]
    unknown = [n for n in names if n not in free]
    if unknown:
        raise SsaeError(f"{split_file} lists {unknown[0]!r}, which is not in {root / 'MT_Free' / 'Imgs'}")
    chosen = set(names)
    train = [p for n, p in free.items() if n in chosen]
    if not train:
        raise SsaeError(f"no training images: {split_file} is empty")
    test = [TestItem(path=p, label=0, defect="good", mask_path=None)
            for n, p in free.items() if n not in chosen]
    classes = sorted(p for p in root.glob("MT_*") if p.is_dir() and p.name != "MT_Free")
    for folder in classes:
        for path in sorted((folder / "Imgs").glob("*.jpg")):
            mask = path.with_suffix(".png")
            if not mask.is_file():
                raise SsaeError(f"missing mask {mask} for test image {path}")
            test.append(TestItem(path=path, label=1, defect=folder.name[3:], mask_path=mask))
    return train, test, True


def _split_validation(paths: list[Path], fraction: float, rng: np.random.Generator):
    """Hold out ``fraction`` of the training images (at least one, Sec. 4.1: 5%)."""
    if len(paths) < 2:
        raise SsaeError(f"need at least 2 training images for a validation split, found {len(paths)}"
                        + (f" in {paths[0].parent}" if paths else ""))
    n_val = min(max(1, int(round(fraction * len(paths)))), len(paths) - 1)
    held = set(rng.choice(len(paths), size=n_val, replace=False).tolist())
    train = [p for i, p in enumerate(paths) if i not in held]
    val = [p for i, p in enumerate(paths) if i in held]
    return train, val


def _stratified_cap(test: list[TestItem], cap: int, rng: np.random.Generator) -> list[TestItem]:
    """Keep ``cap`` test items, both labels in proportion (at least one each), original order."""
    groups = [[i for i, t in enumerate(test) if t.label == lab] for lab in (0, 1)]
    groups = [g for g in groups if g]
    cap = max(cap, len(groups))
    counts = [max(1, int(round(cap * len(g) / len(test)))) for g in groups]
    while sum(counts) > cap:  # rounding can overshoot by one: take it from the larger group
        counts[int(np.argmax(counts))] -= 1
    keep = []
    for g, c in zip(groups, counts):
        keep.extend(g[i] for i in rng.choice(len(g), size=min(c, len(g)), replace=False))
    return [test[i] for i in sorted(keep)]


# -----------------------------------------------------------------------------
# pixels

def _open(path) -> Image.Image:
    """Open and fully decode an image; unreadable or truncated files raise SsaeError.

    Pillow raises on truncated data as long as ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` is
    False (its default); nothing in ssae changes that setting.
    """
    im = None
    try:
        im = Image.open(path)
        im.load()
    except FileNotFoundError:
        raise SsaeError(f"image not found: {path}") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        if im is not None:
            im.close()
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SsaeError(f"cannot read image {path}: {reason}") from None
    return im


def image_channels(path) -> int:
    """1 for grey images (PIL modes L, I;16, ...), 3 otherwise; reads only the header."""
    try:
        with Image.open(path) as im:
            mode = im.mode
    except (OSError, ValueError, SyntaxError) as err:
        raise SsaeError(f"cannot read image {path}: {str(err).splitlines()[0]}") from None
    return 1 if mode in GREY_MODES else 3


def native_size(path) -> tuple[int, int]:
    """(H, W) of an image file, from its header."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, ValueError, SyntaxError) as err:
        raise SsaeError(f"cannot read image {path}: {str(err).splitlines()[0]}") from None
    return h, w


def check_mask_size(image_path, mask_path) -> None:
    """Raise SsaeError naming the mask if its native size differs from its image's."""
    hi, wi = native_size(image_path)
    hm, wm = native_size(mask_path)
    if (hi, wi) != (hm, wm):
        raise SsaeError(f"mask {mask_path} is {wm}x{hm} but its image {image_path} is {wi}x{hi}")


def _to_float(im: Image.Image, channels: int) -> np.ndarray:
    """PIL image -> H x W x channels float32 in [0, 1]."""
    if im.mode.startswith("I;16") or im.mode == "I":
        grey = np.asarray(im, dtype=np.float32) / 65535.0
        return np.repeat(grey[..., None], channels, axis=2)
    if im.mode == "F":
        grey = np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0)
        return np.repeat(grey[..., None], channels, axis=2)
    im = im.convert("L" if channels == 1 else "RGB")
    arr = np.asarray(im, dtype=np.float32) / 255.0
    return arr[..., None] if channels == 1 else arr


def pil_to_float(im: Image.Image, channels: int) -> np.ndarray:
    """A PIL image as H x W x ``channels`` float32 in [0, 1], converted as :func:`read_image` does."""
    return np.ascontiguousarray(_to_float(im, channels), dtype=np.float32)


def read_image(path, size: int | None, channels: int) -> np.ndarray:
    """Read an image as H x W x C float32 in [0, 1].

    ``size`` None keeps the native resolution; an int resizes to ``size x size`` (bilinear).
    ``channels`` 1 converts colour to grey (PIL luma); 3 repeats a grey image.
    """
    return resize_image(_to_float(_open(path), channels), size)


def resize_image(arr: np.ndarray, size: int | None) -> np.ndarray:
    """An H x W x C float image resized to ``size x size`` (bilinear per channel, clipped to
    [0, 1]); ``size`` None or the same size returns it unchanged (as float32)."""
    if size is not None and arr.shape[:2] != (size, size):
        planes = [Image.fromarray(np.ascontiguousarray(arr[..., c])).resize((size, size), Image.BILINEAR)
                  for c in range(arr.shape[2])]
        arr = np.clip(np.stack([np.asarray(p) for p in planes], axis=2), 0.0, 1.0)
    return np.ascontiguousarray(arr, dtype=np.float32)


def read_mask(path, shape: tuple[int, int]) -> np.ndarray:
    """Read a pixel mask as H x W bool at ``shape = (H, W)`` (nearest-neighbour resize).

    Which pixels are defective: those whose grey level is at least 128 (:data:`MASK_LEVEL`),
    as in MVTec AD's 0/255 masks; MTD's masks have soft, anti-aliased edges whose faint pixels
    (grey levels 1-127, about 7 % of its marked pixels) are not counted. A mask with no pixel
    that bright, such as a 0/1 export, is read as *non-zero is defective*, and so is every
    16-bit mask. A mask without a non-zero pixel marks no defect: its image counts for the image
    metrics only (``ssae evaluate`` warns about such masks).
    Use :func:`check_mask_size` to verify that the mask matches its image's native size.
    """
    im = _open(path)
    if im.mode.startswith("I;16") or im.mode == "I":
        im = Image.fromarray((np.asarray(im) > 0).astype(np.uint8) * 255)
    im = im.convert("L")
    level = MASK_LEVEL if int(np.asarray(im).max(initial=0)) >= MASK_LEVEL else 1
    h, w = shape
    if im.size != (w, h):
        im = im.resize((w, h), Image.NEAREST)
    return np.asarray(im) >= level


def load_images(paths, size: int | None, channels: int, progress: bool = True) -> list[np.ndarray]:
    """:func:`read_image` for each path, with a tqdm progress bar."""
    paths = list(paths)
    return [read_image(p, size, channels)
            for p in tqdm(paths, desc="reading images", unit="img", disable=not progress, leave=False)]


# -----------------------------------------------------------------------------
# augmentation

#: Which symmetries of a category's images are still normal images: ``(rot90, flips)``. The
#: paper augments "depending on the category" (Sec. 4.1) without saying how; these choices
#: are ours, read off what each category's test set calls a defect. A category not listed
#: (your own data) gets both, the paper's setting for textures; set ``data.rot90`` and
#: ``data.flips`` for objects whose orientation or handedness matters.
AUGMENTATION: dict[str, tuple[bool, bool]] = {
    # MVTec AD textures: no preferred direction, except wood's grain
    "carpet": (True, True), "grid": (True, True), "leather": (True, True), "tile": (True, True),
    "wood": (False, True),        # the grain runs one way: a quarter turn is not a normal board
    # MVTec AD objects
    "bottle": (True, True),       # seen from above, round
    "hazelnut": (True, True),     # lies at any angle, either way up
    "screw": (True, False),       # lies at any angle; a mirror image reverses the thread
    "metal_nut": (True, False),   # "flip" (upside down, i.e. mirrored) is one of its defect types
    "cable": (False, False),      # the three wires' colours come in a fixed order
    "capsule": (False, False), "pill": (False, False),  # printed text
    "toothbrush": (False, False), "transistor": (False, False),  # fixed upright pose
    "zipper": (False, False),     # fixed vertical pose
    # Magnetic Tile Defects: the grinding streaks run top to bottom in the tiles, so a quarter
    # turn makes a tile that does not occur; mirror images keep the streaks' direction
    "mtd": (False, True),
    # AITEX woven fabrics (line-scan, warp top to bottom): a quarter turn swaps warp and weft,
    # and a mirror image turns fabric02's twill diagonal the other way; neither occurs
    "fabric01": (False, False), "fabric02": (False, False), "fabric03": (False, False),
}


def resolve_augmentation(cfg: DataConfig, name: str) -> None:
    """Fill ``cfg.rot90`` / ``cfg.flips`` left at ``None`` from :data:`AUGMENTATION` for the
    data set ``name`` (``"wood"``, ``"embedded:wood"``, ``"mtd"``; unknown names get both)."""
    rot90, flips = AUGMENTATION.get(name.split(":", 1)[-1].lower(), (True, True))
    if cfg.rot90 is None:
        cfg.rot90 = rot90
    if cfg.flips is None:
        cfg.flips = flips


def augment(x: torch.Tensor, generator: torch.Generator, rot90: bool = True,
            flips: bool = True) -> torch.Tensor:
    """Random per-image rotations by multiples of 90 degrees and flips (Sec. 4.1).

    ``x`` is B x C x H x W. Each image gets a random element of the square's symmetry group:
    each transform is selected per image with ``torch.where``, so the device never waits for
    the host. With ``rot90`` and ``flips`` all eight symmetries are equally likely; ``rot90``
    alone draws the four rotations; non-square images get no 90-degree turns.
    Random numbers come from ``generator`` only.
    """
    b, _, h, w = x.shape
    bits = torch.randint(0, 8, (b,), generator=generator, device=generator.device).to(x.device)

    def pick(bit):
        return (bits & bit).bool()[:, None, None, None]

    square = h == w
    if rot90 and flips:  # transpose x flips: all eight symmetries of the square
        if square:
            x = torch.where(pick(1), x.transpose(-1, -2), x)
        x = torch.where(pick(2), x.flip(-1), x)
        x = torch.where(pick(4), x.flip(-2), x)
    elif rot90:  # rotations only: 90 degrees (transpose then flip) and 180 degrees (both flips)
        if square:
            x = torch.where(pick(1), x.transpose(-1, -2).flip(-1), x)
        x = torch.where(pick(2), x.flip(-1).flip(-2), x)
    elif flips:
        x = torch.where(pick(2), x.flip(-1), x)
        x = torch.where(pick(4), x.flip(-2), x)
    return x
