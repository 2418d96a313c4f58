"""Does a data set's texture run one way? A check for the quarter-turn augmentation.

    python benchmarks/orientation.py --data ../shared/data/mtd [--split train|test]

For every image of the split, at its native resolution: the mean absolute change of the grey
level from column to column over that from row to row (|d/dx| / |d/dy|). Streaks that run top
to bottom give ratios above 1, streaks across give ratios below 1, a texture without a
direction gives ratios around 1. If every image is on the same side of 1, a quarter turn
(``data.rot90``) makes images that never occur, and the model spends capacity learning them as
normal. The training split is the default: the choice is made without test labels.
"""
from __future__ import annotations

import _checkout  # noqa: F401  (the ssae of this checkout, installed or not)

import argparse
import sys

import numpy as np
from tqdm import tqdm

from ssae import data as D
from ssae.config import DataConfig
from ssae.errors import SsaeError


def gradient_ratio(grey: np.ndarray) -> float:
    """Mean |change from column to column| over mean |change from row to row| of an H x W image."""
    dx = np.abs(np.diff(grey, axis=1)).mean()
    dy = np.abs(np.diff(grey, axis=0)).mean()
    return float(dx / max(dy, 1e-12))


def verdict(ratios: np.ndarray, margin: float = 1.1) -> str:
    """One line: does every image lean the same way by more than ``margin``?"""
    if (ratios > margin).all():
        return (f"every image's streaks run top to bottom (ratio > {margin}): a quarter turn makes "
                "images that do not occur; train with --set data.rot90=false")
    if (ratios < 1 / margin).all():
        return (f"every image's streaks run across (ratio < 1/{margin}): a quarter turn makes "
                "images that do not occur; train with --set data.rot90=false")
    return "no common direction: quarter turns make plausible images"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="MVTec AD category or MTD folder")
    p.add_argument("--split", choices=("train", "test"), default="train",
                   help="train: training and validation images (default); test: the test images")
    args = p.parse_args()
    try:
        split = D.load_split(args.data, DataConfig(image_size=None))
        paths = split.train + split.val if args.split == "train" else [it.path for it in split.test]
        ratios = np.array([gradient_ratio(D.read_image(path, None, 1)[..., 0])
                           for path in tqdm(paths, desc="reading images", unit="img", leave=False,
                                          disable=not sys.stderr.isatty())])
    except SsaeError as e:
        print(f"orientation: {e}", file=sys.stderr)
        return 1
    q = np.quantile(ratios, [0.0, 0.01, 0.5, 0.99, 1.0])
    print(f"{split.name}, {args.split} split: {len(ratios)} images at native resolution")
    print("|d/dx| / |d/dy|: min {:.2f}, 1 % {:.2f}, median {:.2f}, 99 % {:.2f}, max {:.2f}; "
          "above 1 in {:.1%} of the images".format(*q, float((ratios > 1).mean())))
    print(verdict(ratios))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
