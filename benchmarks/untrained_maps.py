"""How visible are a data set's defects without any training? Anomaly maps from plain filters.

    python benchmarks/untrained_maps.py --data ../shared/data/mtd --size 128

Each map is scored like a model's (pixel AUROC; image AUROC of the map's max and mean) on the
test split, and, with pixel masks, by the pixel AUROC per defect type (that type's images and
the good ones). Used in the book's findings chapter to show how hard MTD's defects are to see
without learning what a whole tile looks like, and which cue a defect type carries.

With ``--within``, a second table gives per map and defect type the median *within-image*
AUROC: each defective image's defect pixels against the other pixels of the same image, so
the contrast of a defect with its own tile, free of differences between tiles.
"""
from __future__ import annotations

import _checkout  # noqa: F401  (the ssae of this checkout, installed or not)

import argparse

import numpy as np
from scipy import ndimage as ndi

from ssae import data as D
from ssae import metrics as M
from ssae.config import DataConfig
from ssae.evaluation import defect_types, per_type_pixel_auroc


def low_rank(x: np.ndarray, rank: int) -> np.ndarray:
    """Best rank-``rank`` approximation of a grey image (truncated SVD)."""
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    return (u[:, :rank] * s[:rank]) @ vt[:rank]


MAPS = {
    "(x - gaussian blur s=2)^2, box 9": lambda x: ndi.uniform_filter((x - ndi.gaussian_filter(x, 2)) ** 2, 9),
    "(x - gaussian blur s=4)^2, box 33": lambda x: ndi.uniform_filter((x - ndi.gaussian_filter(x, 4)) ** 2, 33),
    "(x - gaussian blur s=2)^2, box 33": lambda x: ndi.uniform_filter((x - ndi.gaussian_filter(x, 2)) ** 2, 33),
    "local standard deviation, box 9": lambda x: np.sqrt(np.maximum(
        ndi.uniform_filter(x * x, 9) - ndi.uniform_filter(x, 9) ** 2, 0)),
    "|box 9 - tile mean|": lambda x: np.abs(ndi.uniform_filter(x, 9) - x.mean()),
    "|x - column mean|, box 9": lambda x: ndi.uniform_filter(np.abs(x - x.mean(0, keepdims=True)), 9),
    "|x - row mean|, box 9": lambda x: ndi.uniform_filter(np.abs(x - x.mean(1, keepdims=True)), 9),
    "(x - rank-1 SVD)^2, box 9": lambda x: ndi.uniform_filter((x - low_rank(x, 1)) ** 2, 9),
    "(x - rank-4 SVD)^2, box 9": lambda x: ndi.uniform_filter((x - low_rank(x, 4)) ** 2, 9),
    "|x - median filter 11|, box 5": lambda x: ndi.uniform_filter(np.abs(ndi.median_filter(x, 11) - x), 5),
}


def within_image_auroc(types, items, masks, maps) -> dict[str, float]:
    """Per defect type, the median over its images of the AUROC of the image's own defect pixels
    against its other pixels (images whose mask is empty or full are left out; nan if none)."""
    out = {}
    for defect, sel in types.items():
        vals = [M.pixel_auroc([masks[i]], [maps[i]]) for i in sel
                if items[i].label == 1 and 0 < masks[i].mean() < 1]
        out[defect] = float(np.median(vals)) if vals else float("nan")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="MVTec AD or MTD folder with pixel masks")
    p.add_argument("--size", default="128", help="image size in pixels, or 'native'")
    p.add_argument("--within", action="store_true",
                   help="also print the median within-image AUROC per map and defect type")
    args = p.parse_args()
    size = None if args.size == "native" else int(args.size)
    split = D.load_split(args.data, DataConfig(image_size=size))
    items = split.test
    images = [a.mean(axis=2) for a in D.load_images([it.path for it in items], size, split.channels, progress=False)]
    labels = [it.label for it in items]
    masks = None
    if split.has_masks:
        masks = [np.zeros(a.shape, bool) if it.mask_path is None else D.read_mask(it.mask_path, a.shape)
                 for it, a in zip(items, images)]
    print(f"{split.name}: {len(items)} test images at {args.size} px; no training")
    types = defect_types(items)
    within: dict[str, dict[str, float]] = {}
    head = f"{'map':40} {'pixel AUROC':>11} {'image max':>9} {'image mean':>10}"
    if masks:
        head += " | pixel AUROC per type: " + " ".join(f"{d[:9]:>9}" for d in types)
    print(head)
    for name, f in MAPS.items():
        maps = [f(a) for a in images]
        pix = M.pixel_auroc(masks, maps) if masks else None
        img_max = M.image_auroc(labels, [m.max() for m in maps])
        img_mean = M.image_auroc(labels, [m.mean() for m in maps])
        row = f"{name:40} {'n/a' if pix is None else f'{pix:.3f}':>11} {img_max:9.3f} {img_mean:10.3f}"
        if masks:
            per_type = per_type_pixel_auroc(types, masks, maps)
            row += " | " + " " * 22 + " ".join(f"{per_type[d]:9.3f}" for d in types)
        print(row, flush=True)
        if masks and args.within:
            within[name] = within_image_auroc(types, items, masks, maps)
    if within:
        print("\nmedian within-image AUROC (defect pixels against the rest of their own image)")
        print(f"{'map':40} " + " ".join(f"{d[:9]:>9}" for d in types))
        for name, per_type in within.items():
            print(f"{name:40} " + " ".join(f"{per_type[d]:9.3f}" for d in types))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
