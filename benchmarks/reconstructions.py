"""What a trained run reconstructs: input, F(X), Diff (eq. 2) and ground truth for a few
defective test images, as one labelled PNG (used by the book's findings chapter).

    python benchmarks/reconstructions.py RUN_DIR --data ../shared/data/mtd --out book/figures/x.png

The title names the data set, image size, profile, training steps and hardware, as every
reproduced figure must.
"""
from __future__ import annotations

import _checkout  # noqa: F401  (the ssae of this checkout, installed or not)

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ssae import data as D  # noqa: E402
from ssae import scoring as S  # noqa: E402
from ssae.evaluation import hardware, load_run  # noqa: E402
from ssae.plots import save_figure  # noqa: E402
from ssae.training import SUMMARY, read_json  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=4, help="defective test images, one per defect type in turn")
    args = p.parse_args()

    model, cfg, split, _, _ = load_run(args.run_dir, args.data)
    by_defect: dict[str, list] = {}
    for it in split.test:
        if it.label == 1:
            by_defect.setdefault(it.defect, []).append(it)
    items = [v[len(v) // 2] for _, v in sorted(by_defect.items())][: args.n]
    summary = read_json(Path(args.run_dir) / SUMMARY)

    fig, axes = plt.subplots(len(items), 4, figsize=(8, 2.1 * len(items)), squeeze=False)
    for row, it in zip(axes, items):
        a = D.read_image(it.path, cfg.data.image_size, split.channels)
        x = torch.from_numpy(a.transpose(2, 0, 1).copy())[None]
        y = S.reconstruct(model, x)
        d = S.diff(x, y)[0, 0].numpy()
        truth = D.read_mask(it.mask_path, a.shape[:2]) if it.mask_path else np.zeros(a.shape[:2], bool)
        for ax, img, title in zip(row, (a[..., 0] if split.channels == 1 else a, y[0].permute(1, 2, 0).squeeze(-1).numpy(),
                                        d, truth), ("input X", "F(X)", "Diff (eq. 2)", f"ground truth ({it.defect})")):
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=None if title.startswith("Diff") else 1)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    size = cfg.data.image_size or "native"
    fig.suptitle(f"{split.name}: {size} px, profile {cfg.profile}, {summary.get('steps')} steps "
                 f"({summary.get('seconds', 0) / 60:.0f} min), {hardware('cpu')}", fontsize=8)
    fig.tight_layout()
    out = save_figure(fig, args.out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
