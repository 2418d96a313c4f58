"""Run every check of Section 3.4 / Section 4.2 (ssae.theory) on real and generated data.

    python benchmarks/theory.py [--run RUN_DIR] [--mtd PATH] [--bottle PATH]
                                [--embedded CATEGORY] [--n-images 40] [--fig-dir DIR]

Data: MTD (MT_Free training images, grey, texture-like), the embedded generated texture
set (``ssae.datasets.embedded``, if importable) and the MVTec AD bottle copy (object data, for the
middle-row statistics of Figure 8). Prints one labelled table; every number names its data
set and resolution. Figure 9 uses the trained model of ``--run`` as F when it loads, and
otherwise the identity, a Gaussian blur and the exact nearest-neighbour projection as
reference mappings (the printout says which). Small settings: a few minutes on 2 cores.
"""
from __future__ import annotations

import _checkout  # noqa: F401  (the ssae of this checkout, installed or not)

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ssae import theory as T

REPO = Path(__file__).resolve().parents[1]
ROWS: list[tuple[str, str, str, str, str]] = []


def row(section: str, data: str, res: str, quantity: str, value) -> None:
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    ROWS.append((section, data, res, quantity, text))


def print_table() -> None:
    head = ("check", "data", "resolution", "quantity", "value")
    widths = [max(len(r[i]) for r in ROWS + [head]) for i in range(5)]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths))
    print(line)
    print("-" * len(line))
    last = None
    for r in ROWS:
        if last is not None and r[0] != last:
            print()
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
        last = r[0]


# ------------------------------------------------------------------------------ data

def mtd_paths(root: Path, n: int, rng) -> list[Path]:
    free = root / "MT_Free" / "Imgs"
    if not free.is_dir():
        return []
    split = root / "differnet_train_split.txt"
    if split.is_file():
        names = [l.strip() for l in split.read_text().splitlines() if l.strip()]
        paths = [free / name for name in names if (free / name).is_file()]
    else:
        paths = sorted(free.glob("*.jpg"))
    return [paths[i] for i in sorted(rng.choice(len(paths), min(n, len(paths)), replace=False))]


def folder_paths(folder: Path, n: int, rng) -> list[Path]:
    paths = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not paths:
        return []
    return [paths[i] for i in sorted(rng.choice(len(paths), min(n, len(paths)), replace=False))]


def read_colour(paths, size: int) -> np.ndarray:
    """n x size x size x 3 float32 in [0, 1] (for Figure 9 on colour data)."""
    from PIL import Image

    out = []
    for p in paths:
        with Image.open(p) as im:
            out.append(np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR),
                                  dtype=np.float32) / 255.0)
    return np.stack(out)


def downsample(stack: np.ndarray, size: int) -> np.ndarray:
    return np.stack([T.resize_grey(a, size) for a in stack])


# ------------------------------------------------------------------------------ checks

def check_fig8(name: str, grey512: np.ndarray, kind: str, figs: dict) -> None:
    stats = T.sliding_window_pixel_stats(grey512, size=512, window=256)
    s = T.pixel_stats_spread(stats, kind)
    res = f"512->256 win, {stats.n_images} img"
    where = "all pixels" if kind == "texture" else "middle row"
    row("Fig. 8", name, res, f"per-pixel mean: min..max ({where})", f"{s['mean_min']:.3f}..{s['mean_max']:.3f}")
    row("Fig. 8", name, res, "per-pixel mean: spread / average", s["mean_rel_spread"])
    row("Fig. 8", name, res, f"per-pixel std: min..max ({where})", f"{s['std_min']:.3f}..{s['std_max']:.3f}")
    row("Fig. 8", name, res, "per-pixel std: spread / average", s["std_rel_spread"])
    figs[f"fig8_{name}"] = ("fig8_pixel_stats", (stats, f"{name}", kind))


def check_prop2_synthetic(rng) -> None:
    size, n_pairs = 32, 4000
    for f in (0.1, 0.25):
        x, y = rng.random((n_pairs, size, size)), rng.random((n_pairs, size, size))
        r = T.proposition2_check(x, y, T.centred_square((size, size), f), sigma2=1 / 12)
        res = f"{size}x{size}, {n_pairs} pairs"
        row("Prop. 2", "synthetic iid U(0,1)", res, f"rel. deviation at |S|/N={r.fraction:.3f}", r.rel_dev)
        row("Prop. 2", "synthetic iid U(0,1)", res, f"z = dev / stderr at |S|/N={r.fraction:.3f}", r.z)


def all_pairs(n: int) -> np.ndarray:
    i, j = np.triu_indices(n, k=1)
    return np.stack([i, j], 1)


def check_prop2_real(name: str, grey: np.ndarray) -> None:
    n, h, w = grey.shape
    pairs = all_pairs(n)
    sigma2 = T.pooled_variance(grey)
    res = f"{h}x{w}, {len(pairs)} pairs"
    row("Prop. 2", name, res, "sigma^2 (pooled pixel variance)", sigma2)
    for f in (0.1, 0.25):
        r = T.proposition2_check(grey[pairs[:, 0]], grey[pairs[:, 1]], T.centred_square((h, w), f), sigma2)
        row("Prop. 2", name, res, f"rel. deviation at |S|/N={r.fraction:.3f} (centred S)", r.rel_dev)
        row("Prop. 2", name, res, f"  E||x_S-y_S||^2 / (2 sigma^2 |S|) at {r.fraction:.3f}",
            r.term_s / (2 * sigma2 * r.s_size))


FRACTIONS = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.8]


def check_theorem2(name: str, stacks: dict[int, np.ndarray], rng, n_pairs: int, figs: dict) -> None:
    counts = []
    for size, grey in sorted(stacks.items()):
        c = T.violating_pairs(grey, FRACTIONS, n_pairs, rng)
        counts.append(c)
        s = c.sides()
        res = f"{size}x{size}, {c.n_pairs} pairs"
        row("Thm. 2", name, res, "bound (11): |S|/N <= 2s^2/(1+2s^2)", c.bound_fraction)
        row("Thm. 2", name, res, "violations inside bound (pairs x grid pts)",
            f"{s['inside_violations']}/{s['inside_pairs']}")
        row("Thm. 2", name, res, "violations outside bound (pairs x grid pts)",
            f"{s['outside_violations']}/{s['outside_pairs']}")
        rates = "  ".join(f"{f:.2f}:{r:.2f}" for f, r in zip(c.fractions, c.rates) if 0.3 <= f <= 0.62)
        row("Thm. 2", name, res, "violation rate near |S|/N = 0.5", rates)
    figs[f"theorem2_{name}"] = ("theorem2_violations", (counts, name))


def check_theorem3(rng, figs: dict) -> None:
    r = T.corollary1_convergence(rng, [2, 4, 8, 16, 32, 64, 128], n_trials=300, field_size=128,
                                 corr_length=2.0, eps=0.5)
    name, res = "Gaussian field, corr 2px", f"128x128, {r.n_trials} pairs"
    for k in range(len(r.s_sizes)):
        row("Cor. 1", name, res, f"|S|={r.s_sizes[k]}: mean|m-2s^2|, P(>0.5), Chebyshev, proof",
            f"{r.mean_abs_dev[k]:.3f}, {r.exceed[k]:.3f}, {r.chebyshev[k]:.3f}, {r.proof_bound[k]:.3f}")
    bad = T.corollary1_convergence(rng, [8, 128], n_trials=300, field_size=128, corr_length=2.0,
                                   eps=0.5, offset_std=1.0)
    row("Cor. 1", "same + shared offset (cov. not vanishing)", res,
        f"|S|={bad.s_sizes[-1]}: mean|m-2s^2|, P(>0.5)", f"{bad.mean_abs_dev[-1]:.3f}, {bad.exceed[-1]:.3f}")
    figs["theorem3_gaussian_field"] = ("theorem3_convergence", (r, name))


FIG9_FRACTIONS = [0.02, 0.05, 0.1, 0.175, 0.25, 0.375, 0.5, 0.625, 0.8]


def check_fig9(name: str, train: np.ndarray, mappings: dict, rng, figs: dict) -> None:
    widths = np.sqrt(FIG9_FRACTIONS)
    size = train.shape[1]
    curves = []
    for fname, F in mappings.items():
        t0 = time.time()
        c = T.orthogonality_curve(F, train, widths, rng, n_repeats=1, label=fname)
        curves.append(c)
        res = f"{size}x{size}, {c.n_trials} img/width"
        for f in (0.1, 0.25, 0.5):
            a = c.at_fraction(f)
            row("Fig. 9", name, res, f"F={fname}: |S|/N={a['fraction']:.3f} acc(X^), acc(F(X^)), ||F(X^)-X||",
                f"{a['acc_input']:.2f}, {a['acc_output']:.2f}, {a['dist_mean']:.2f}+-{a['dist_std']:.2f}")
        print(f"  [fig9 {name} F={fname}: {time.time() - t0:.1f}s]", file=sys.stderr)
    figs[f"fig9_{name}"] = ("fig9_orthogonality", (curves, f"{name}, {size}x{size}"))


def load_trained(run_dir: str | None):
    """(F, channels, description) of a trained model, or None."""
    if not run_dir:
        return None
    try:
        from ssae.scoring import reconstruct
        from ssae.runs import load_model

        model, cfg = load_model(run_dir, "cpu")
    except Exception as err:  # noqa: BLE001 - any failure means: fall back to references
        print(f"note: could not load a model from {run_dir} ({err}); using references only")
        return None
    channels = int(getattr(getattr(cfg, "model", None), "in_channels", 3))
    return (lambda x: reconstruct(model, x)), channels, f"trained model {run_dir}"


def reference_mappings(train) -> dict:
    maps = {"identity": T.identity_map}
    try:
        from ssae.references import BlurReference

        blur = BlurReference(2.0)
        maps["blur s=2"] = lambda x: blur(x)
    except ImportError:
        pass
    maps["NN projection"] = T.NearestNeighbourProjection(train)
    return maps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=None, help="run directory of a trained model (F for Figure 9)")
    ap.add_argument("--mtd", default=str(REPO / ".." / "shared" / "data" / "mtd"))
    ap.add_argument("--bottle", default=str(REPO / ".." / "shared" / "data" / "mvtec_ad" / "bottle"))
    ap.add_argument("--embedded", default="carpet", help="category of ssae.datasets.embedded ('' to skip)")
    ap.add_argument("--n-images", type=int, default=40, help="images per data set")
    ap.add_argument("--n-pairs", type=int, default=300, help="pairs per grid point (Theorem 2)")
    ap.add_argument("--fig9-size", type=int, default=64, help="resolution for Figure 9")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fig-dir", default=None, help="also save every figure as PNG here")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    t_start = time.time()

    # data: grey stacks at 512 (Figure 8) and smaller sizes; colour for Figure 9
    data: dict[str, dict] = {}
    mtd = mtd_paths(Path(args.mtd), args.n_images, rng)
    if mtd:
        data["MTD"] = {"paths": mtd, "kind": "texture", "colour": False}
    else:
        print(f"note: no MTD at {args.mtd}; skipped")
    if args.embedded:
        try:
            import ssae.datasets.embedded as embedded

            folder = Path(embedded.ensure(args.embedded)) / "train" / "good"
            data[f"embedded:{args.embedded}"] = {"paths": folder_paths(folder, args.n_images, rng),
                                                 "kind": "texture", "colour": True}
        except Exception as err:  # noqa: BLE001
            print(f"note: embedded data not available ({err}); skipped")
    bottle = folder_paths(Path(args.bottle) / "train" / "good", args.n_images, rng)
    if bottle:
        data["MVTec bottle"] = {"paths": bottle, "kind": "object", "colour": True}
    else:
        print(f"note: no MVTec bottle at {args.bottle}; skipped")
    for d in data.values():
        d["grey512"] = T.read_grey(d["paths"], 512)

    figs: dict = {}
    for name, d in data.items():
        check_fig8(name, d["grey512"], d["kind"], figs)
    check_prop2_synthetic(rng)
    for name, d in data.items():
        check_prop2_real(name, downsample(d["grey512"], 128))
    synth = {s: T.uniform_field(rng, args.n_images, s, 1.0) for s in (32, 64, 128)}
    check_theorem2("uniform field, corr 1px", synth, rng, args.n_pairs, figs)
    for name, d in data.items():
        if d["kind"] == "texture":
            check_theorem2(name, {s: downsample(d["grey512"], s) for s in (32, 64, 128)}, rng,
                           args.n_pairs, figs)
    check_theorem3(rng, figs)

    trained = load_trained(args.run)
    print("Figure 9 mappings: " + (trained[2] + " (plus the identity)" if trained else
                                   "no trained model: identity, Gaussian blur (sigma 2 px) and the "
                                   "exact nearest-neighbour projection as references"))
    for name, d in data.items():
        if d["kind"] != "texture":
            continue
        colour = d["colour"] and (trained is None or trained[1] == 3)
        size = args.fig9_size
        train = read_colour(d["paths"], size) if colour else downsample(d["grey512"], size).astype(np.float32)
        if trained is not None and trained[1] == 3 and not colour:
            train = np.repeat(train[..., None], 3, axis=-1)
        maps = {"model": trained[0], "identity": T.identity_map} if trained else reference_mappings(train)
        check_fig9(name + (" (RGB)" if train.ndim == 4 else " (grey)"), train, maps, rng, figs)

    print()
    print_table()
    print(f"\n[{time.time() - t_start:.0f}s]")
    if args.fig_dir:
        from ssae_book import plots

        out = Path(args.fig_dir)
        plots.save_figure(plots.fig6_cases(), out / "fig6_cases.png")
        for key, (fn, fargs) in figs.items():
            plots.save_figure(getattr(plots, fn)(*fargs), out / (key.replace(" ", "_").replace(":", "_") + ".png"))
        print(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
