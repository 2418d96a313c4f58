"""Signal against floor: how large are the changes a trained run must find, next to its own error?

For a trained run directory and its data set, one row per kind of anomaly, all as mean
absolute differences per pixel (grey values in [0, 1], averaged over channels):

- ``change``: |X^ - X| inside the anomalous region (what the corruption changed; for real
  defects |X - blur(X)|, the defect's local contrast, with the blur reference's sigma = 4 px);
- ``Diff in``: |F(input) - input| inside the region (what eq. (2) sees there);
- ``Diff out``: the same outside the region, on the same images (the model's floor);
- ``in/out``: their ratio; a region stands out in the anomaly map only where it is well above 1.

Rows: clean validation images (the floor alone), each corruption method of Section 3.2 applied
to the same validation images (patch sizes and strengths of the run's config), and the
defective test images by defect type (when the data set has masks). Example::

    python benchmarks/noise_floor.py RUN_DIR --data ../shared/data/mtd
"""
from __future__ import annotations

import _checkout  # noqa: F401  (the ssae of this checkout, installed or not)

import argparse
import dataclasses
import sys

import numpy as np
import torch

from ssae import data as D
from ssae import scoring as S
from ssae.corruption import corrupt
from ssae.errors import SsaeError
from ssae.evaluation import hardware, load_run
from ssae.references import BlurReference

METHODS = ("elastic", "swap", "occlusion", "cutout")


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


def _absdiff(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    return (a - b).abs().mean(1)[0].numpy()


def _row(name: str, change: list, inside: list, outside: list) -> dict:
    c, i, o = (float(np.concatenate(v).mean()) if v else float("nan") for v in (change, inside, outside))
    return {"what": name, "change": c, "diff_in": i, "diff_out": o, "ratio": i / o if o > 0 else float("nan")}


def measure(model, cfg, split, n_val: int = 32, n_test: int = 20, seed: int = 0) -> list[dict]:
    """The rows of the table (see the module docstring)."""
    size = cfg.data.image_size
    val = D.load_images(split.val[:n_val], size, split.channels, progress=False)
    if not val:
        raise SsaeError(f"{split.name} has no validation images")
    clean = [_tensor(a) for a in val]
    floor = [_absdiff(S.reconstruct(model, x), x).ravel() for x in clean]
    rows = [_row("clean validation images", [], floor, floor)]
    for method in METHODS:
        ccfg = dataclasses.replace(cfg.corruption, method=method, alternate=(), p_clean=0.0)
        gen = torch.Generator().manual_seed(seed)
        change, inside, outside = [], [], []
        for j, x in enumerate(clean):
            source = clean[(j + 1) % len(clean)] if method == "swap" else None  # occlusion: colour noise
            if source is not None and source.shape != x.shape:
                source = None
            xh, m = corrupt(x, ccfg, gen, source=source)
            region = m[0, 0].numpy() > 0.5
            d = _absdiff(S.reconstruct(model, xh), xh)
            change.append(_absdiff(xh, x)[region])
            inside.append(d[region])
            outside.append(d[~region])
        rows.append(_row(f"corruption: {method}", change, inside, outside))
    blur = BlurReference(4.0)
    by_defect: dict[str, list] = {}
    for it in split.test:
        if it.label == 1 and it.mask_path is not None:
            by_defect.setdefault(it.defect, []).append(it)
    for defect, items in sorted(by_defect.items()):
        change, inside, outside = [], [], []
        for it in items[:n_test]:
            a = D.read_image(it.path, size, split.channels)
            mask = D.read_mask(it.mask_path, a.shape[:2])
            if not mask.any():
                continue
            x = _tensor(a)
            d = _absdiff(S.reconstruct(model, x), x)
            change.append(_absdiff(x, blur(x))[mask])
            inside.append(d[mask])
            outside.append(d[~mask])
        rows.append(_row(f"test defects: {defect}", change, inside, outside))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--data", required=True)
    p.add_argument("--n-val", type=int, default=32, help="validation images used")
    p.add_argument("--n-test", type=int, default=20, help="defective test images per defect type")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        model, cfg, split, _, _ = load_run(args.run_dir, args.data)
        rows = measure(model, cfg, split, args.n_val, args.n_test)
    except SsaeError as e:
        print(f"noise_floor: {e}", file=sys.stderr)
        return 1
    print(f"{split.name}, {cfg.data.image_size or 'native'} px, "
          f"profile {cfg.profile}, run {args.run_dir}, {hardware('cpu')}")
    head = f"{'':32} {'change':>7} {'Diff in':>8} {'Diff out':>8} {'in/out':>7}"
    print(head)
    print("-" * len(head))
    for r in rows:
        ch = "      -" if np.isnan(r["change"]) else f"{r['change']:7.4f}"
        print(f"{r['what']:32} {ch} {r['diff_in']:8.4f} {r['diff_out']:8.4f} {r['ratio']:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
