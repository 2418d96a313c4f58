"""The page "Reading objective (1)": why eq. (1) as written can keep a network at its flat
start, what the start-up of ``train.startup="whole"`` changes, and the measurements behind
the choice (``benchmarks/escape.py``'s rows, kept in ``benchmarks/results/escape/``).

Every number of the page comes from a function here: the gradients of eq. (1)'s two terms at
initialisation (computed when the page is built) and the escape table (read from the kept rows).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .tables import Table

REPO = Path(__file__).resolve().parents[2]
#: the rows benchmarks/escape.py wrote (one per run)
ESCAPE_ROWS = REPO / "benchmarks" / "results" / "escape" / "rows.jsonl"
#: data sets as the rows name them, and as the page names them
DATA = {"aitex-fabric01": "AITEX fabric01", "aitex-fabric02": "AITEX fabric02",
        "aitex-fabric03": "AITEX fabric03", "mtd": "Magnetic Tile Defects", "mvtec-bottle": "MVTec AD bottle (copy)",
        "embedded:grid": "grid look-alike", "embedded:carpet": "carpet look-alike"}
STARTUP_NAMES = {"literal": "eq. (1) as written", "whole": "whole-image start, then eq. (1)"}


def term_gradients(model, target: torch.Tensor, corrupted: torch.Tensor, mask: torch.Tensor,
                   lam: float) -> dict[str, float]:
    """Gradients of eq. (1)'s two terms with respect to the weights of ``model``, at its current
    weights: their norms, the ratio corrupted / clean, and the cosine between them. Also the
    largest per-pixel weight of the corrupted term relative to a clean pixel's
    (``(lam / |M|) / ((1 - lam) / |M_bar|)`` for the smallest region of the batch)."""
    from ssae.objectives import terms1

    model.train()
    clean, bad = (term.mean() for term in terms1(model(corrupted).float(), target, mask, lam))
    params = [p for p in model.parameters() if p.requires_grad]
    g_clean = torch.cat([g.flatten() for g in torch.autograd.grad(clean, params, retain_graph=True)])
    g_bad = torch.cat([g.flatten() for g in torch.autograd.grad(bad, params)])
    n_clean, n_bad = float(g_clean.norm()), float(g_bad.norm())
    area = mask.flatten(1).sum(1)
    small = float(area[area > 0].min()) if bool((area > 0).any()) else float("nan")
    total = float(mask[0].numel())
    return {"clean_norm": n_clean, "corrupted_norm": n_bad, "ratio": n_bad / n_clean,
            "cosine": float(torch.dot(g_clean, g_bad) / (n_clean * n_bad)),
            "pixel_weight": (lam / small) / ((1 - lam) / (total - small)) if small == small else float("nan")}


def gradient_rows(datasets: dict[str, str], seeds=(0, 1, 2), crop: int = 64, batch: int = 16) -> list[dict]:
    """:func:`term_gradients` at initialisation for each data set (``name -> data spec``), with
    the ``cpu`` profile's network and corruption, on crops of ``crop`` px, one row per seed."""
    from ssae.config import override, profile
    from ssae.corruption import corrupt
    from ssae.data import load_split
    from ssae.runs import build_model
    from ssae.training import TrainingImages

    rows = []
    for name, spec in datasets.items():
        cfg = profile("cpu")
        split = load_split(spec, cfg.data)
        cfg = override(cfg, model={"in_channels": split.channels})
        images = TrainingImages(split.images(split.train[:64], cfg.data.image_size),
                                torch.device("cpu"))
        for seed in seeds:
            gen = torch.Generator().manual_seed(seed)
            torch.manual_seed(seed)
            model = build_model(cfg)
            target = images.sample(batch, crop, gen)
            corrupted, mask = corrupt(target, cfg.corruption, gen)
            rows.append({"data": name, "seed": seed, **term_gradients(model, target, corrupted, mask, cfg.train.lam)})
    return rows


def gradient_table(rows: list[dict]) -> Table:
    out = []
    for name in dict.fromkeys(r["data"] for r in rows):
        mine = [r for r in rows if r["data"] == name]
        ratio = [r["ratio"] for r in mine]
        cos = [r["cosine"] for r in mine]
        weight = [r["pixel_weight"] for r in mine]
        out.append([DATA.get(name, name), f"{min(ratio):.0f}–{max(ratio):.0f}", f"{min(cos):+.2f} to {max(cos):+.2f}",
                    f"{min(weight):,.0f}–{max(weight):,.0f}"])
    return Table("Eq. (1)'s two terms at initialisation (λ = 0.5, 64 px crops, the cpu profile's network)",
                 ["data set", "gradient norm, corrupted / clean term", "cosine between them",
                  "weight of a pixel of the smallest region / of a clean pixel"], out,
                 caption=f"{len(rows)} batches of 16 crops, one per seed and data set, each with fresh initial weights.")


def read_escape(path: str | Path = ESCAPE_ROWS) -> list[dict]:
    """The kept rows of ``benchmarks/escape.py`` (empty when none are kept)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def escape_table(rows: list[dict]) -> Table:
    body = []
    for r in sorted(rows, key=lambda r: (r["data"], r["startup"] != "literal", r["seed"])):
        left = "never" if r["left_flat_at"] is None else f"{r['left_flat_at']:,}"
        body.append([DATA.get(r["data"], r["data"]), STARTUP_NAMES.get(r["startup"], r["startup"]), str(r["seed"]),
                     f"{r['steps']:,}", left, f"{r['clean_over_variance']:.2f}", f"{r['restoration_pixel_auroc']:.2f}",
                     f"{r['restoration_gain']:.2f}"])
    first = rows[0] if rows else {}
    caption = (f"Each run: the cpu profile for {first.get('steps', 0):,} steps of {first.get('crop', '?')} px crops (images "
               f"seen in tiles of that size), on one thread of {first.get('hardware', '?')}, two runs side by side "
               f"({first.get('date', '?')}); validation images only. \"left the flat state\": first "
               f"logged step at which the running mean of the error on clean pixels fell below "
               f"{_ratio()} of the crops' variance. \"clean error / variance\": the trained model on clean validation "
               f"images at the evaluation size (about 1: a flat output).") if rows else "No runs are kept."
    return Table("Leaving the flat start: eq. (1) as written against the whole-image start-up",
                 ["data set", "start-up", "seed", "steps", "left the flat state at step", "clean error / variance",
                  "restoration check", "restoration gain"], body, caption=caption)


def _ratio() -> str:
    from ssae.config import TrainConfig

    return f"{TrainConfig().escape_ratio:g}"


def summary(rows: list[dict]) -> dict[str, dict[str, int]]:
    """Per start-up: runs, runs that left the flat state, runs that passed the restoration check."""
    from ssae.calibration import RESTORATION_MIN

    out: dict[str, dict[str, int]] = {}
    for r in rows:
        s = out.setdefault(r["startup"], {"runs": 0, "left": 0, "passed": 0})
        s["runs"] += 1
        s["left"] += r["left_flat_at"] is not None
        s["passed"] += r["restoration_pixel_auroc"] >= RESTORATION_MIN
    return out


def choice_text(rows: list[dict]) -> str:
    """The generated sentences that state the outcome of the comparison."""
    if not rows:
        return "No escape runs are kept in this build, so the comparison is not shown."
    from ssae.calibration import RESTORATION_MIN

    s = summary(rows)
    parts = []
    for key in ("literal", "whole"):
        if key in s:
            v = s[key]
            parts.append(f"{STARTUP_NAMES[key]}: left the flat state in {v['left']} of {v['runs']} runs and passed the "
                         f"restoration check (≥ {RESTORATION_MIN}) in {v['passed']} of {v['runs']}")
    per_data = []
    for name in dict.fromkeys(r["data"] for r in rows):
        mine = [r for r in rows if r["data"] == name and r["startup"] == "whole"]
        if mine:
            per_data.append(f"{DATA.get(name, name)} {sum(r['left_flat_at'] is not None for r in mine)}/{len(mine)}")
    text = "; ".join(parts) + "."
    if per_data:
        text += " With the whole-image start, runs that left the flat state per data set: " + ", ".join(per_data) + "."
    neither = [DATA.get(name, name) for name in dict.fromkeys(r["data"] for r in rows)
               if {r["startup"] for r in rows if r["data"] == name} >= {"literal", "whole"}
               and all(r["restoration_pixel_auroc"] < RESTORATION_MIN for r in rows if r["data"] == name)]
    if neither:
        text += (f" On {', '.join(neither)} no run passed the restoration check within its steps with either "
                 f"start-up, although every run left the flat state: there the check measures what so short a run "
                 f"has learned of the task, not the start.")
    return text


def gradient_datasets() -> dict[str, str]:
    """The data sets of the gradient table: the real ones under ``../shared/data`` where this
    build has them, else two generated look-alikes (a fine and a coarse texture)."""
    shared = REPO.parent / "shared" / "data"
    real = {"aitex-fabric01": shared / "aitex" / "fabric01", "aitex-fabric02": shared / "aitex" / "fabric02",
            "aitex-fabric03": shared / "aitex" / "fabric03", "mtd": shared / "mtd",
            "mvtec-bottle": shared / "mvtec_ad" / "bottle"}
    found = {k: str(v) for k, v in real.items() if v.is_dir()}
    return found or {"embedded:grid": "embedded:grid", "embedded:carpet": "embedded:carpet"}


def gradient_text(rows: list[dict]) -> str:
    ratios = [r["ratio"] for r in rows]
    cos = [abs(r["cosine"]) for r in rows]
    return (f"At the first step the corrupted region's term has a gradient {min(ratios):.0f} to {max(ratios):.0f} "
            f"times as large as the clean term's, and the two are nearly orthogonal (|cosine| at most "
            f"{max(cos):.2f}): the first steps follow the corrupted term almost alone.")
