"""Write a compact copy of a data set in MVTec AD layout, small enough to send to a GPU machine.

    python scripts/compact_data.py SPEC --out .gpu_data/NAME [--size N|native] [--format png|jpg]
                                   [--quality Q] [--max-mib M]

SPEC is anything ``ssae.data.load_split`` reads: a folder in MVTec AD layout (e.g.
``../shared/data/mvtec_ad/bottle``), a folder in Magnetic Tile Defects layout (``../shared/data/mtd``)
or ``embedded:<category>``. The copy has ``train/good``, ``test/<defect>`` and, where the source
has pixel masks, ``ground_truth/<defect>/<stem>_mask.png``; ``ssae train --data .gpu_data/NAME``
reads it with the normal MVTec AD reader.

- The training images are the source's (for MTD: the DifferNet split's 761 MT_Free images);
  file stems are kept, so the validation images that ssae draws for a seed are the same as on
  the source.
- Images are resized to ``--size`` x ``--size`` exactly as ``ssae.data.read_image`` resizes
  (bilinear), then stored with 8 bits per channel; ``native`` keeps each image's size, and a
  source file that already has the requested format is copied byte for byte.
- Masks go through ``ssae.data.read_mask`` (grey level >= 128 is defective, nearest-neighbour
  resize) and are stored as 1-bit PNGs; MTD's empty masks stay empty.
- ``COMPACT.json`` at the top records the source, the settings and the byte count.

The total size is printed; above ``--max-mib`` (default 60: the device tool sends at most 64 MiB
with the working tree) the script fails, so lower ``--size`` or use ``--format jpg``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing ssae
    sys.path.insert(0, str(ROOT))

from ssae import data as D  # noqa: E402
from ssae.config import DataConfig  # noqa: E402
from ssae.errors import SsaeError  # noqa: E402

MARKER = "COMPACT.json"
SUFFIX = {"png": ".png", "jpg": ".jpg"}


def _encode(arr: np.ndarray, path: Path, fmt: str, quality: int) -> None:
    """Write an H x W x C float image in [0, 1] with 8 bits per channel."""
    img = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    img = img[..., 0] if img.shape[2] == 1 else img
    im = Image.fromarray(img)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jpg":
        extra = {"subsampling": 0} if img.ndim == 3 else {}  # colour: full-resolution chroma (4:4:4)
        im.save(path, "JPEG", quality=quality, **extra)
    else:
        im.save(path, "PNG", optimize=True)


def _copy_image(src: Path, dst: Path, size: int | None, channels: int, fmt: str, quality: int) -> tuple[int, int]:
    """One image into the copy; returns its (H, W) there."""
    if size is None and src.suffix.lower() in ((".png",) if fmt == "png" else (".jpg", ".jpeg")):
        with Image.open(src) as im:
            same_mode = (im.mode == "L") if channels == 1 else (im.mode == "RGB")
            w, h = im.size
        if same_mode:  # already what we would write: keep the original bytes
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            return h, w
    arr = D.read_image(src, size, channels)
    _encode(arr, dst, fmt, quality)
    return arr.shape[0], arr.shape[1]


def _copy_mask(src_mask: Path, src_image: Path, dst: Path, shape: tuple[int, int]) -> None:
    D.check_mask_size(src_image, src_mask)
    m = D.read_mask(src_mask, shape)
    dst.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(m).save(dst, "PNG", optimize=True)  # mode "1": 0 / 255 when read as L


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def compact(spec: str, out, *, size: int | None, fmt: str = "png", quality: int = 95,
            max_mib: float | None = 60.0, progress: bool = True) -> dict:
    """Write the compact copy of ``spec`` to ``out`` and return its record (``COMPACT.json``)."""
    if fmt not in SUFFIX:
        raise SsaeError(f"unknown format {fmt!r}; choose png or jpg")
    out = Path(out)
    if out.exists():
        if not (out / MARKER).is_file():
            raise SsaeError(f"{out} exists and is not a compact copy (no {MARKER}); choose another --out")
        shutil.rmtree(out)
    split = D.load_split(spec, DataConfig(image_size=None, max_train=None, max_test=None), seed=0)
    train = sorted(split.train + split.val)
    ext = SUFFIX[fmt]
    seen: set[Path] = set()

    def target(rel: Path) -> Path:
        if rel in seen:
            raise SsaeError(f"two source images map to {out / rel}; file stems must be unique per folder")
        seen.add(rel)
        return out / rel

    n = 0
    total = len(train) + len(split.test)
    for path in train:
        _copy_image(path, target(Path("train") / "good" / (path.stem + ext)), size, split.channels, fmt, quality)
        n += 1
        if progress and n % 200 == 0:
            print(f"  {n}/{total} images", flush=True)
    n_masks = 0
    for item in split.test:
        dst = target(Path("test") / item.defect / (item.path.stem + ext))
        shape = _copy_image(item.path, dst, size, split.channels, fmt, quality)
        if split.has_masks and item.label == 1:
            if item.mask_path is None:
                raise SsaeError(f"defective test image {item.path} has no mask")
            _copy_mask(item.mask_path, item.path,
                       out / "ground_truth" / item.defect / f"{item.path.stem}_mask.png", shape)
            n_masks += 1
        n += 1
        if progress and n % 200 == 0:
            print(f"  {n}/{total} images", flush=True)

    nbytes = folder_bytes(out)
    record = {"source": spec, "name": split.name, "size": size, "format": fmt,
              "quality": quality if fmt == "jpg" else None, "channels": split.channels,
              "n_train": len(train), "n_test": len(split.test),
              "n_defective": sum(it.label for it in split.test), "n_masks": n_masks,
              "has_masks": split.has_masks, "bytes": nbytes}
    (out / MARKER).write_text(json.dumps(record, indent=2) + "\n")
    if max_mib is not None and nbytes > max_mib * 2**20:
        raise SsaeError(f"{out} is {nbytes / 2**20:.1f} MiB, over --max-mib {max_mib:g}; "
                        f"lower --size or use --format jpg")
    return record


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("spec", help="data folder (MVTec AD or MTD layout) or embedded:<category>")
    p.add_argument("--out", required=True, help="folder to write (replaced if it is an earlier compact copy)")
    p.add_argument("--size", default="native", help="side in pixels (square, bilinear) or 'native'")
    p.add_argument("--format", choices=sorted(SUFFIX), default="png")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality (with --format jpg)")
    p.add_argument("--max-mib", type=float, default=60.0, help="fail above this size (0: no limit)")
    args = p.parse_args(argv)
    size = None if args.size == "native" else int(args.size)
    try:
        rec = compact(args.spec, args.out, size=size, fmt=args.format, quality=args.quality,
                      max_mib=args.max_mib or None)
    except SsaeError as e:
        print(f"compact_data: error: {e}", file=sys.stderr)
        return 2
    print(f"{args.out}: {rec['n_train']} train, {rec['n_test']} test ({rec['n_defective']} defective, "
          f"{rec['n_masks']} masks), {rec['channels']} channel(s), size {rec['size'] or 'native'}, "
          f"{rec['format']}: {rec['bytes'] / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
