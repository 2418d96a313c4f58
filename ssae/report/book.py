"""Helpers the book's notebooks call: one call per table, figure or run.

The notebooks in ``notebooks/`` hold narrative and calls; whatever they compute lives here (or
in the library modules these helpers call), where the tests reach it:

- the settings chapter (:func:`settings_table`: every config field, its default per profile
  and whether the value is the paper's or ours);
- one data set's page: :func:`train_category`, :func:`evaluate_category`, the metrics, per-defect
  and objective-comparison tables, example maps and reconstructions;
- the method chapter (:func:`method_example`, :func:`model_table`);
- the theory chapters (pixel statistics, Proposition 1 and 2, orthogonality curves);
- the GPU figures kept in ``book/gpu_results/``.

Running the notebooks and building the HTML is :mod:`ssae.report.build` (``ssae book``).
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import SECTIONS, Config, override, profile as make_profile
from ..errors import SsaeError
from .tables import Table, classify, size_text

REPO = Path(__file__).resolve().parents[2]

EMBEDDED = ("carpet", "grid", "leather", "tile", "wood")


# =========================================================================== settings chapter

def config_comments() -> dict[tuple[str, str], str]:
    """{(section, field): comment} from the source of :mod:`ssae.config` (the ``# paper: ...``
    and ``# ours: ...`` comment on each field's line)."""
    from .. import config as C

    out: dict[tuple[str, str], str] = {}
    for section, klass in C.SECTIONS.items():
        src = inspect.getsource(klass)
        for line in src.splitlines():
            m = re.match(r"\s+(\w+)\s*:\s*[^=]+=\s*.*?#\s*(.*)$", line)
            if m:
                out[(section, m.group(1))] = m.group(2).strip()
    return out


def source_of(comment: str) -> str:
    """'paper', 'ours' or 'paper + ours' from a field comment."""
    c = comment.lower()
    paper = c.startswith("paper")
    ours = c.startswith("ours") or "ours" in c
    if paper and ours:
        return "paper + ours"
    return "paper" if paper else "ours" if ours else "?"


def settings_table(profiles: tuple[str, ...] = ("paper", "cpu", "smoke")) -> Table:
    """Every config field with its default in each profile and whether the paper fixes it."""
    comments = config_comments()
    cfgs = {p: make_profile(p).to_dict() for p in profiles}
    rows = []
    for section in SECTIONS:
        for name in cfgs[profiles[0]][section]:
            comment = comments.get((section, name), "")
            source = source_of(comment)
            paper_value = make_profile("paper").to_dict()[section][name]
            # a profile that departs from a value the paper fixes says so in its own cell
            values = [_show(cfgs[p][section][name])
                      + (" (ours)" if source.startswith("paper") and cfgs[p][section][name] != paper_value else "")
                      for p in profiles]
            rows.append([f"{section}.{name}", *values, source, comment])
    return Table("Every setting, its default per profile, and where it comes from",
                 ["Setting", *[f"{p} profile" for p in profiles], "Source", "Note (ssae/config.py)"],
                 rows, caption="'paper': fixed by the paper; 'ours': chosen by this reproduction; a profile's value "
                         "marked (ours) departs from the paper's for that profile.")


def _show(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(map(str, v)) + ")" if v else "()"
    return str(v)


# =========================================================================== data sets

@dataclass(frozen=True)
class DataSet:
    spec: str       # what load_split reads: a folder or "embedded:<category>"
    slug: str       # file-name-safe name: "embedded-carpet", "mtd", "bottle"
    title: str      # heading of the category page


def slugify(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return s or "data"


def dataset(spec: str) -> DataSet:
    """A :class:`DataSet` for a data spec, titled by what it is (see :func:`ssae.report.tables.classify`)."""
    spec = str(spec)
    if spec.startswith("embedded:"):
        cat = spec.split(":", 1)[1]
        return DataSet(spec, f"embedded-{slugify(cat)}", f"{cat} (embedded look-alike)")
    path = Path(spec)
    kind = classify({"data_spec": spec, "has_masks": (path / "ground_truth").is_dir()})
    if kind.kind == "mtd":
        title = "Magnetic Tile Defects"
    elif kind.kind == "mvtec-copy":
        title = f"{kind.category} (MVTec AD images, resized copy without masks)"
    elif kind.kind == "mvtec":
        title = f"{kind.category} (MVTec AD)"
    else:
        title = path.name
    return DataSet(spec, slugify(path.name or spec), title)


# =========================================================================== notebook helpers

def run_config(profile: str, *, minutes: float | None = None, seed: int = 0, objective: int = 1,
               corruption: str | None = None) -> Config:
    """The profile's Config for one book run (time budget, seed, objective, corruption)."""
    cfg = make_profile(profile)
    train: dict[str, Any] = {"seed": int(seed), "objective": int(objective)}
    if minutes is not None and minutes > 0:
        train["max_minutes"] = float(minutes)
    sections: dict[str, dict] = {"train": train}
    if corruption:
        sections["corruption"] = {"method": corruption}
    return override(cfg, **sections)


def hardware(device: str = "cpu") -> str:
    from ..evaluation import hardware as _hw
    return _hw(device)


def figure_label(data: str, image_size: Any, profile: str, device: str = "cpu",
                 has_masks: bool | None = None) -> str:
    """'embedded look-alike 'carpet' (generated, not MVTec AD) · 256 px · cpu profile · CPU ...'
    for figure titles: data set, resolution, profile and hardware."""
    if has_masks is None:
        has_masks = str(data).startswith("embedded:") or (Path(data) / "ground_truth").is_dir()
    kind = classify({"data_spec": data, "has_masks": has_masks, "image_size": image_size})
    size = "" if kind.kind == "mvtec-copy" else f" · {size_text(image_size)}"
    return f"{kind.label}{size} · {profile} profile · {hardware(device)}"


def train_category(data: str, profile: str, run_dir: str | Path, device: str = "cpu", seed: int = 0,
                   minutes: float | None = None, objective: int = 1, corruption: str | None = None,
                   progress: bool = False) -> dict[str, Any]:
    """Train one data set (:func:`ssae.training.train`) and return what the notebook shows."""
    from ..data import load_split
    from ..training import train

    cfg = run_config(profile, minutes=minutes, seed=seed, objective=objective, corruption=corruption)
    split = load_split(data, cfg.data, seed=seed)
    t0 = time.time()
    result = train(cfg, split, run_dir, device=device, data_spec=data, progress=progress)
    return {"cfg": cfg, "split": split, "result": result, "history": result["history"],
            "run_dir": str(run_dir), "wall_seconds": time.time() - t0,
            "label": figure_label(data, cfg.data.image_size, profile, device, split.has_masks)}


def training_table(run: dict[str, Any]) -> Table:
    cfg, split, res = run["cfg"], run["split"], run["result"]
    rows = [
        ["data", run["label"].split(" · ")[0]],
        ["training / validation / test images", f"{len(split.train)} / {len(split.val)} / {len(split.test)}"],
        ["channels", str(split.channels)],
        ["pixel masks", "yes" if split.has_masks else "no (image-level metrics only)"],
        ["image size", size_text(cfg.data.image_size)],
        ["model", f"Table 1 at width {cfg.model.width:g}, f = {cfg.model.f}"],
        ["objective", f"({cfg.train.objective}), λ = {cfg.train.lam:g}"],
        ["corruption", cfg.corruption.method],
        ["optimiser steps", f"{res['steps']} of {cfg.train.steps} planned (stopped by {res.get('stopped_by', '?')})"],
        ["crop side", f"{cfg.train.crop_start} → {cfg.train.crop_end} px (progressive)"],
        ["training time", f"{res['seconds'] / 60:.1f} min"],
        ["profile", cfg.profile],
        ["hardware", run["label"].split(" · ")[-1]],
    ]
    notes = []
    if res.get("stopped_by") == "time" and res["steps"] < cfg.train.steps:
        notes.append(f"The time budget stopped training after {res['steps']} of {cfg.train.steps} steps "
                     f"({100 * res['steps'] / cfg.train.steps:.0f}%): the numbers of this data set are those "
                     "of an under-trained model.")
    return Table("Training run", ["quantity", "value"], rows, notes=notes)


def evaluate_category(run_dir: str | Path, data: str, device: str = "cpu",
                      results_json: str | Path | None = None, slug: str | None = None) -> dict[str, Any]:
    """:func:`ssae.evaluation.evaluate` plus the book's fields; written to ``results_json``."""
    from ..evaluation import evaluate

    res = evaluate(run_dir, data, device=device, progress=False)
    res["slug"] = slug or dataset(data).slug
    res["status"] = "ok"
    res["has_masks"] = res.get("pixel_auroc") is not None
    if results_json:
        write_result(results_json, res)
    return res


def write_result(path: str | Path, result: dict[str, Any]) -> Path:
    """Write a result JSON (temporary name, then rename)."""
    from ..runs import write_json
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, result)
    return path


def _pct(v) -> str:
    return "n/a (no masks)" if v is None else f"{100 * float(v):.1f}"


def training_note(run_dir: str | Path) -> str:
    """A MyST admonition for a page that shows a model: how far it trained (steps of the
    planned steps, minutes, hardware) and whether it passed the restoration check, generated
    from its run folder."""
    from ..calibration import RESTORATION_MIN
    from ..runs import read_calibration, read_run_config, read_summary

    cfg, _ = read_run_config(run_dir)
    summary = read_summary(run_dir)
    check = read_calibration(run_dir)[0].get("restoration_pixel_auroc")
    steps, planned = summary.get("steps") or 0, cfg.train.steps
    passed = check is not None and check >= RESTORATION_MIN
    text = (f"This model trained for {steps:,} of {planned:,} planned steps "
            f"({100 * steps / max(planned, 1):.0f} %, {(summary.get('seconds') or 0) / 60:.1f} min, "
            f"{summary.get('precision', 'fp32')}, {hardware()}). Restoration check: "
            + ("not recorded." if check is None else f"{check:.2f}, " + (
               "it restores the corruptions it was trained on." if passed else
               f"below {RESTORATION_MIN}: it is not yet trained to restore them, so its maps are mostly "
               "reconstruction error and its numbers are early-training numbers; the reference models "
               "(trained for hours) show what training does.")))
    kind = "tip" if passed else "warning"
    return f":::{{admonition}} How far this model was trained\n:class: {kind}\n\n{text}\n:::"


def _restoration(v) -> str:
    from ..calibration import RESTORATION_MIN

    if v is None:
        return "not recorded"
    verdict = "restores its training corruptions" if v >= RESTORATION_MIN else \
        f"below {100 * RESTORATION_MIN:.0f}: not yet trained to restore; maps are mostly reconstruction error"
    return f"{100 * float(v):.1f} (pixel AUROC on validation images corrupted as in training; {verdict})"


def metrics_table(res: dict[str, Any]) -> Table:
    """The evaluation's numbers, named with data, size, profile and hardware."""
    sc = res.get("score") or {}
    rows = [
        ["image AUROC (%)", _pct(res.get("image_auroc"))],
        ["pixel AUROC (%)", _pct(res.get("pixel_auroc"))],
        ["AUPRO (%, FPR ≤ 0.3)", _pct(res.get("aupro"))],
        ["test images (defective)", f"{res.get('n_test_images')} ({res.get('n_defective', '?')})"],
        ["restoration check (%)", _restoration(res.get("restoration_pixel_auroc"))],
        ["scoring", f"Diff = {sc.get('diff')}, n = {sc.get('n')}, k = {sc.get('k')}, t = {sc.get('t')}, "
                    + (("two-sided " if sc.get("two_sided") else "") + "standardised maps, "
                       if sc.get("standardize") else "")
                    + f"image score = {sc.get('reduce')} (chosen on validation data"
                    + (f" with {', '.join(res['proxy_corruption'])} corruptions" if res.get("proxy_corruption")
                       else "")
                    + (" of {:.0%}-{:.0%} of the side".format(*res["proxy_patch"]) if res.get("proxy_patch")
                       else "") + ")"],
        ["data", classify(res).label],
        ["image size", size_text(res.get("image_size"))],
        ["profile", str(res.get("profile"))],
        ["hardware", str(res.get("hardware"))],
        ["date", str(res.get("date"))],
    ]
    return Table("Evaluation (objective (%s))" % res.get("objective", 1), ["quantity", "value"], rows,
                 caption=str(res.get("metrics_note", "")))


def per_defect_table(res: dict[str, Any]) -> Table:
    """Per defect type, against all good test images: image AUROC and, with masks, pixel AUROC
    and the type's share of all defect pixels (its weight in the pooled pixel AUROC)."""
    pix, share = res.get("per_defect_pixel"), res.get("defect_pixel_share")
    if not pix:
        rows = [[d, _pct(v)] for d, v in sorted((res.get("per_defect") or {}).items())]
        return Table("Image AUROC (%) per defect type (each against all good test images)",
                     ["defect", "image AUROC (%)"], rows)
    rows = [[d, _pct(v), _pct(pix.get(d)), _pct((share or {}).get(d))]
            for d, v in sorted((res.get("per_defect") or {}).items())]
    return Table("AUROC (%) per defect type (each against all good test images)",
                 ["defect", "image AUROC (%)", "pixel AUROC (%)", "share of defect pixels (%)"], rows)


def example_maps(run_dir: str | Path, data: str, device: str = "cpu", n: int = 4, good: int = 1,
                 seed: int = 0) -> dict[str, Any]:
    """Anomaly maps for a few test images (defective ones of different types first), for
    Figures 1, 3 and 10, without mapping the whole test set."""
    import numpy as np
    from .. import data as D
    from ..scoring import calibrated_maps, diff_maps
    from ..runs import read_calibration
    from ..runs import load_model

    model, cfg = load_model(run_dir, device)
    split = D.load_split(data, cfg.data, seed=cfg.train.seed)
    cal, stats = read_calibration(run_dir)
    items = pick_items(split.test, n, good, seed)
    images = D.load_images([it.path for it in items], cfg.data.image_size, split.channels, progress=False)
    raw = diff_maps(model, images, cal["diff"], device)
    maps = calibrated_maps(raw, cal, stats)
    masks = []
    for it, m in zip(items, maps):
        if split.has_masks and it.mask_path is not None:
            masks.append(D.read_mask(it.mask_path, m.shape))
        elif split.has_masks:
            masks.append(np.zeros(m.shape, bool))
        else:
            masks.append(None)
    import torch
    from ..scoring import reconstruct
    recon = []
    for a in images:
        x = torch.from_numpy(a.transpose(2, 0, 1).copy())[None].to(device)
        recon.append(reconstruct(model, x)[0].cpu().numpy().transpose(1, 2, 0))
    return {"items": items, "images": images, "reconstructions": recon, "maps": maps, "masks": masks,
            "threshold": float(cal["threshold"]), "calibration": cal, "has_masks": split.has_masks,
            "titles": [f"{it.defect}" for it in items], "cfg": cfg}


def pick_items(test: list, n: int, good: int = 1, seed: int = 0) -> list:
    """``n`` defective test items spread over the defect types (round robin), then ``good`` good ones."""
    by_defect: dict[str, list] = {}
    for it in test:
        if it.label == 1:
            by_defect.setdefault(it.defect, []).append(it)
    picked, i = [], 0
    while len(picked) < n and any(len(v) > i for v in by_defect.values()):
        for d in sorted(by_defect):
            if len(by_defect[d]) > i and len(picked) < n:
                picked.append(by_defect[d][i])
        i += 1
    picked += [it for it in test if it.label == 0][:good]
    return picked


VARIANTS = {"objective4": {"objective": 4}, "cutout": {"objective": 1, "corruption": "cutout"}}


def variant_dir(run_dir: str | Path, name: str) -> Path:
    """Run directory of a comparison model next to ``run_dir``: ``<run_dir>_objective4``, ..."""
    base = Path(run_dir)
    return base.with_name(f"{base.name}_{name}")


def train_variants(run_dir: str | Path, data: str, profile: str, device: str = "cpu", seed: int = 0,
                   minutes: float | None = None) -> dict[str, dict[str, Any]]:
    """Train the comparison models of Table 4 and Figure 11 beside ``run_dir``: objective (4)
    with elastic deformation and objective (1) with cut-out ("zeros")."""
    return {name: train_category(data, profile, variant_dir(run_dir, name), device=device, seed=seed,
                                 minutes=minutes, **kw)
            for name, kw in VARIANTS.items()}


def compare_objectives(run_dir: str | Path, data: str, device: str = "cpu", seed: int = 0,
                       n_examples: int = 3) -> dict[str, Any]:
    """Table 4 and Figure 11 for one data set: evaluate the models of :func:`train_variants`
    beside the objective (1) run in ``run_dir``, and the pixel-wise maximum ensemble of the
    objective (1) and (4) heatmaps (Table 4, "Ens.")."""
    import torch
    from .. import metrics as M
    from .. import scoring as S
    from ..evaluation import anomaly_maps, evaluate, ground_truth, map_metrics
    from ..scoring import image_scores
    from ..runs import read_run_config, read_summary

    out: dict[str, Any] = {}
    maps: dict[str, list] = {}
    cals: dict[str, dict] = {}
    split, items, images, maps["objective1"], cals["objective1"] = anomaly_maps(run_dir, data, device,
                                                                               progress=False)
    _, _, _, maps["objective4"], cals["objective4"] = anomaly_maps(variant_dir(run_dir, "objective4"), data,
                                                                   device, progress=False)
    masks = ground_truth(split, items, maps["objective1"])
    labels = [it.label for it in items]

    for name in VARIANTS:
        vdir = variant_dir(run_dir, name)
        summary = read_summary(vdir)
        vcfg, _ = read_run_config(vdir)
        if name in maps:
            r = map_metrics(labels, image_scores(maps[name]), masks, maps[name], cals[name]["reduce"])
        else:
            r = evaluate(vdir, data, device=device, progress=False)
        out[name] = {"image_auroc": r.get("image_auroc"), "pixel_auroc": r.get("pixel_auroc"),
                     "aupro": r.get("aupro"), "train_seconds": summary.get("seconds"),
                     "train_steps": summary.get("steps"), "objective": vcfg.train.objective,
                     "corruption": vcfg.corruption.method}
    ens = [S.ensemble(torch.from_numpy(a), torch.from_numpy(b)).numpy()
           for a, b in zip(maps["objective1"], maps["objective4"])]
    out["ensemble"] = {"pixel_auroc": M.pixel_auroc(masks, ens) if masks is not None else None,
                       "aupro": M.aupro(masks, ens, fpr_limit=0.3) if masks is not None else None}
    out["run_dirs"] = {name: str(variant_dir(run_dir, name)) for name in VARIANTS}
    picked = pick_items(items, n_examples, 0, seed)
    idx = [items.index(it) for it in picked]
    cut = example_maps(variant_dir(run_dir, "cutout"), data, device, n=n_examples, good=0, seed=seed)
    out["figure11"] = {
        "images": [images[i] for i in idx],
        "masks": [masks[i] if masks is not None else None for i in idx],
        "objective1": [maps["objective1"][i] for i in idx],
        "objective4": [maps["objective4"][i] for i in idx],
        "cutout": cut["maps"],
        "titles": [items[i].defect for i in idx],
        "thresholds": {"objective1": cals["objective1"]["threshold"], "objective4": cals["objective4"]["threshold"],
                       "cutout": cut["threshold"]},
    }
    return out


def comparison_table(res: dict[str, Any], comp: dict[str, Any]) -> Table:
    rows = [
        ["objective (1), elastic deformation", _pct(res.get("image_auroc")), _pct(res.get("pixel_auroc"))],
        ["objective (4), elastic deformation", _pct(comp["objective4"].get("image_auroc")),
         _pct(comp["objective4"].get("pixel_auroc"))],
        ["ensemble: max of (1) and (4) maps", "—", _pct(comp["ensemble"].get("pixel_auroc"))],
        ["objective (1), cut-out (zeros)", _pct(comp["cutout"].get("image_auroc")),
         _pct(comp["cutout"].get("pixel_auroc"))],
    ]
    return Table("Objective (1) against objective (4) and cut-out training (Table 4, Figure 11)",
                 ["model", "image AUROC (%)", "pixel AUROC (%)"], rows,
                 caption=f"{classify(res).label}; {size_text(res.get('image_size'))}; "
                         f"{res.get('profile')} profile; {res.get('hardware')}.")


def public_comparison(comp: dict[str, Any]) -> dict[str, Any]:
    """The JSON-safe part of :func:`compare_objectives` (no images) for the results file."""
    return {k: v for k, v in comp.items() if k not in ("figure11",)}


def reconstruction_rows(run_dir: str | Path, data: str, device: str = "cpu", n_defective: int = 2,
                        n_corrupted: int = 2, n_clean: int = 1, seed: int = 0) -> list[dict[str, Any]]:
    """Rows for :func:`ssae.report.plots.reconstructions` (Figures 2 and 4): defective test images
    and their reconstructions, validation images corrupted as in training with the clean
    original (the target) beside them, and clean validation images (which the network should
    copy)."""
    import numpy as np
    import torch
    from .. import data as D
    from ..corruption import corrupt
    from ..scoring import reconstruct
    from ..runs import load_model

    model, cfg = load_model(run_dir, device)
    split = D.load_split(data, cfg.data, seed=cfg.train.seed)
    rows: list[dict[str, Any]] = []
    bad = pick_items(split.test, n_defective, 0, seed)
    for it, img in zip(bad, D.load_images([it.path for it in bad], cfg.data.image_size, split.channels,
                                          progress=False)):
        mask = D.read_mask(it.mask_path, img.shape[:2]) if (split.has_masks and it.mask_path) else None
        rows.append({"input": img, "mask": mask, "name": f"test: {it.defect}"})
    val = (split.val + split.train)[:n_corrupted]
    gen = torch.Generator().manual_seed(seed)
    for img in D.load_images(val, cfg.data.image_size, split.channels, progress=False):
        x = torch.from_numpy(img.transpose(2, 0, 1).copy())[None]
        xh, m = corrupt(x, cfg.corruption, gen)
        rows.append({"input": xh[0].numpy().transpose(1, 2, 0), "clean": img,
                     "mask": m[0, 0].numpy(), "name": f"corrupted ({cfg.corruption.method})"})
    clean = (split.val + split.train)[n_corrupted:n_corrupted + n_clean]
    for img in D.load_images(clean, cfg.data.image_size, split.channels, progress=False):
        rows.append({"input": img, "clean": img, "mask": None, "name": "clean"})
    for row in rows:
        x = torch.from_numpy(np.ascontiguousarray(row["input"].transpose(2, 0, 1)))[None].float().to(device)
        row["output"] = reconstruct(model, x)[0].cpu().numpy().transpose(1, 2, 0)
    return rows


def method_example(data: str = "embedded:carpet", run_dir: str | Path | None = None, profile: str = "cpu",
                   device: str = "cpu", seed: int = 0) -> dict[str, Any]:
    """One image through Figure 5 (the corruption) and Figure 3 (the detection pipeline).

    The image is a defective test image of ``data``. The reconstruction comes from the trained
    model in ``run_dir`` when given (with its calibrated n, k and threshold), else from
    :class:`ssae.references.BlurReference` (a no-network stand-in, said so in the label)."""
    import numpy as np
    import torch
    from .. import data as D
    from ..corruption import corrupt
    from ..scoring import diff, reconstruct, smooth

    cfg = make_profile(profile)
    model, n, k, threshold, what = None, cfg.score.n, cfg.score.k, None, ""
    if run_dir and any((Path(run_dir) / f).is_file() for f in ("checkpoint.pt", "model.safetensors")):
        from ..runs import read_calibration
        from ..runs import load_model
        model, cfg = load_model(run_dir, device)
        cal, _ = read_calibration(run_dir)
        n, k, threshold = cal["n"], cal["k"], cal["threshold"]
        what = f"trained model ({Path(run_dir).name})"
    split = D.load_split(data, cfg.data, seed=seed)
    item = (pick_items(split.test, 1, 0, seed) or split.test[:1])[0]
    img = D.read_image(item.path, cfg.data.image_size, split.channels)
    truth = D.read_mask(item.mask_path, img.shape[:2]) if (split.has_masks and item.mask_path) else None
    clean = D.read_image(split.train[0], cfg.data.image_size, split.channels)
    gen = torch.Generator().manual_seed(seed)
    ccfg = dataclasses.replace(cfg.corruption, patch_min=0.3, patch_max=0.4)   # a visible patch
    xh, m, boxes = corrupt(torch.from_numpy(clean.transpose(2, 0, 1).copy())[None], ccfg, gen,
                           return_boxes=True)
    if model is None:
        from ..references import BlurReference
        model = BlurReference(4.0).to(device).eval()
        what = "BlurReference(sigma=4): no trained model was given"
    x = torch.from_numpy(img.transpose(2, 0, 1).copy())[None].to(device)
    with torch.no_grad():
        rec = reconstruct(model, x)
        d = diff(x, rec)
        a = smooth(d, n, k)
    anomap = a[0, 0].cpu().numpy()
    if threshold is None:
        threshold = float(np.quantile(anomap, 0.98))
    return {"image": img, "truth": truth, "defect": item.defect,
            "reconstruction": rec[0].cpu().numpy().transpose(1, 2, 0), "diff": d[0, 0].cpu().numpy(),
            "anomap": anomap, "threshold": float(threshold), "n": n, "k": k, "model": what,
            "clean": clean, "corrupted": xh[0].numpy().transpose(1, 2, 0), "mask": m[0, 0].numpy(),
            "box": [int(v) for v in boxes[0, 0].tolist()], "cfg": cfg,
            "label": figure_label(data, cfg.data.image_size, cfg.profile, device, split.has_masks)}


def model_table(f: int = 3, width: float = 1.0, size: int = 512, in_channels: int = 3) -> Table:
    """Table 1 computed from :class:`ssae.model.SSAE` (layer, filters, output size)."""
    import torch
    from ..model import SSAE, layer_table

    with torch.device("meta"):   # no weights allocated: instant even at width 1
        model = SSAE(in_channels=in_channels, f=f, width=width)
    rows = [[kind, str(ch), f"{h} × {w} × {ch}"] for kind, ch, (h, w) in layer_table(model, size, size)]
    params = sum(p.numel() for p in model.parameters())
    return Table(f"Table 1 from the code: SSAE(f={f}, width={width:g}) on {size} × {size} × {in_channels}",
                 ["Layer type", "Filters", "Output size"], rows,
                 caption=f"{params:,} parameters. The 3×3 convolution after each SDC stack "
                         "(Sec. 3.3) appears as its own Conv row.")


#: Sizes of the theory computations per profile (images, windows, pairs, trials).
THEORY = {
    "smoke": {"n_images": 6, "size": 64, "window": 32, "n_pairs": 40, "fields": 32, "trials": 40,
              "orth_images": 8, "orth_widths": (0.2, 0.5, 0.8), "sides": (2, 4, 8)},
    "cpu": {"n_images": 24, "size": 256, "window": 128, "n_pairs": 300, "fields": 128, "trials": 300,
            "orth_images": 24, "orth_widths": (0.1, 0.3, 0.5, 0.7, 0.85, 1.0),
            "sides": (2, 4, 8, 16, 32, 64)},
    "paper": {"n_images": 100, "size": 512, "window": 256, "n_pairs": 2000, "fields": 256, "trials": 1000,
              "orth_images": 200, "orth_widths": tuple(round(0.05 * i, 2) for i in range(1, 21)),
              "sides": (2, 4, 8, 16, 32, 64, 128)},
}


def theory_settings(profile: str) -> dict[str, Any]:
    if profile not in THEORY:
        raise SsaeError(f"unknown profile {profile!r}; choose one of {', '.join(THEORY)}")
    return dict(THEORY[profile])


def texture_images(category: str, n: int, size: int, seed: int = 0):
    """``n`` defect-free training images of an embedded look-alike, rendered in memory at
    ``size`` (the same pixels :mod:`ssae.datasets.embedded` writes to disk), as ``H x W x C`` arrays."""
    from ..datasets import embedded

    return [embedded.sample(category, "good", seed=seed, index=i, size=size, split="train").image
            for i in range(n)]


def folder_images(spec: str, n: int, size: int, seed: int = 0):
    """``n`` training images of a data set folder (or embedded spec) at ``size``."""
    from .. import data as D
    from ..config import DataConfig

    split = D.load_split(spec, DataConfig(image_size=size), seed=seed)
    return D.load_images(split.train[:n], size, split.channels, progress=False)


def grey_stack(images, size: int | None = None):
    """``n x H x W`` grey float64 stack (Section 3.4 treats grey images)."""
    from ..theory import stack_grey
    return stack_grey(images, size)


def theory_sizes_note(profile: str) -> str:
    """Markdown: the sizes of the theory chapters' computations in ``profile`` (:data:`THEORY`)."""
    st = theory_settings(profile)
    return (f"Sizes in the {profile} profile: {st['n_images']} training images per data set, resized to "
            f"{st['size']}×{st['size']} px, with sliding windows of {st['window']}×{st['window']} px; "
            f"{st['fields']} random fields; {st['n_pairs']} pairs of images for eq. (9).")


def pixel_stats(categories=EMBEDDED, profile: str = "cpu", seed: int = 0) -> dict[str, Any]:
    """Figure 8's sliding-window statistics for embedded look-alikes: {category: PixelStats}."""
    from ..theory import sliding_window_pixel_stats

    st = theory_settings(profile)
    return {c: sliding_window_pixel_stats(texture_images(c, st["n_images"], st["size"], seed),
                                          size=st["size"], window=st["window"]) for c in categories}


def pixel_stats_table(stats: dict[str, Any], kind: str = "texture", label: str = "") -> Table:
    from ..theory import pixel_stats_spread

    rows = []
    for name, s in stats.items():
        sp = pixel_stats_spread(s, kind)
        rows.append([name, f"{sp['mean_min']:.3f} – {sp['mean_max']:.3f}", f"{sp['mean_rel_spread']:.1%}",
                     f"{sp['std_min']:.3f} – {sp['std_max']:.3f}", f"{sp['std_rel_spread']:.1%}",
                     f"{s.n_images} × {s.image_size} px, {s.window} px windows"])
    return Table(f"Figure 8 in numbers: spread of the per-pixel statistics {label}".strip(),
                 ["data", "per-pixel mean (min – max)", "relative spread", "per-pixel std (min – max)",
                  "relative spread", "images"], rows,
                 caption="Identically distributed pixels (Proposition 2's assumption) mean small spreads.")


def _share(v: float) -> str:
    """A share as a whole percentage: '45 %'."""
    return f"{100 * v:.0f} %"


def object_pixel_note(textures: dict[str, Any], obj: Any, name: str) -> str:
    """Markdown: Figure 8's object panel against the textures, along the middle row of the
    window for both (what :func:`ssae.theory.pixel_stats_spread` measures with ``kind="object"``)."""
    from ..theory import pixel_stats_spread

    tex = {k: pixel_stats_spread(v, "object")["mean_rel_spread"] for k, v in textures.items()}
    worst = max(tex, key=tex.get)
    o = pixel_stats_spread(obj, "object")
    ratio = o["mean_rel_spread"] / max(tex[worst], 1e-12)
    return (f"**The paper** assumes identically distributed pixels for textures and shows in Figure 8 that "
            f"objects break this assumption. **Here**, along the middle row of the window the per-pixel mean "
            f"of the {name} images runs from {o['mean_min']:.3f} to {o['mean_max']:.3f}, a relative spread of "
            f"{_share(o['mean_rel_spread'])}; on the same row the texture look-alikes spread by at most "
            f"{_share(tex[worst])} ({worst}), {ratio:.0f} times less. **This is why**: every training image shows "
            f"the object at about the same place, so the mean at a pixel follows the object's outline "
            f"and so does the per-pixel standard deviation ({o['std_min']:.3f} to {o['std_max']:.3f}). The pixels "
            f"are not identically distributed, so Proposition 2 and Theorem 2 do not apply to this object.")


def prop2_results(images, fractions=(0.05, 0.1, 0.25, 0.5, 0.75), n_pairs: int = 200, seed: int = 0,
                  sigma2: float | None = None) -> list:
    """Eq. (9) on pairs of independent images, one :class:`ssae.theory.Prop2Result` per
    fraction ``|S|/N`` (``S`` a centred square); ``sigma2`` defaults to the pooled variance."""
    import numpy as np
    from ..theory import centred_square, distinct_pairs, pooled_variance, proposition2_check

    g = np.asarray(images, dtype=np.float64)
    s2 = pooled_variance(g) if sigma2 is None else float(sigma2)
    pairs = distinct_pairs(g.shape[0], n_pairs, np.random.default_rng(seed))
    return [proposition2_check(g[pairs[:, 0]], g[pairs[:, 1]], centred_square(g.shape[1:], f), s2)
            for f in fractions]


def prop2_table(results, label: str = "") -> Table:
    """The observed mean of ``||x_S - y_S||^2 - ||x_S' - y_S'||^2`` against
    ``(|S| - |S'|) 2 sigma^2`` of eq. (9), per fraction (:func:`prop2_results`)."""
    rows = [[f"{r.fraction:.3f}", f"{r.predicted:.1f}", f"{r.observed:.1f} ± {r.stderr:.1f}", f"{r.z:+.1f}",
             "consistent" if abs(r.z) < 3 else "differs"] for r in results]
    # z, not a relative deviation: near |S|/N = 0.5 the prediction is near 0 and a ratio explodes
    r = results[0]
    side = int(round(r.n ** 0.5))
    return Table(f"Proposition 2, eq. (9): {label}".strip(),
                 ["|S|/N", "predicted (|S|−|S̄|)·2σ²", "observed mean ± s.e.", "z = (observed − predicted) / s.e.",
                  "at |z| < 3"],
                 rows, caption=f"σ² = {r.sigma2:.4g}, {r.n_pairs} pairs of distinct images, N = "
                               f"{side}×{side}, S a centred square.")


def prop2_note(results: dict[str, list], n_images: dict[str, int]) -> str:
    """Markdown: what the tables of eq. (9) show, per data set ``{label: prop2_results}``;
    ``n_images`` gives the number of images the pairs of each data set were drawn from."""
    found, caveat = [], []
    for label, res in results.items():
        ok = sum(abs(r.z) < 3 for r in res)
        worst = max(res, key=lambda r: abs(r.z))
        inside = worst.term_s / worst.s_size
        outside = worst.term_sbar / (worst.n - worst.s_size)
        found.append(f"on the {label}, |z| < 3 at {ok} of {len(res)} sizes; the largest gap, z = {worst.z:+.1f} "
                     f"at |S|/N = {worst.fraction:.2f}, comes from a mean squared difference per pixel of "
                     f"{inside:.4f} inside S and {outside:.4f} outside, against 2σ² = {2 * worst.sigma2:.4f}")
        n = n_images.get(label)
        if n and 2 * worst.n_pairs > n:
            caveat.append(f"the {worst.n_pairs} pairs of the {label} are drawn from {n} images, each image in about "
                          f"{2 * worst.n_pairs / n:.0f} pairs")
    return ("**Eq. (9)** predicts the mean exactly when all pixels share one variance σ² and the two images are "
            "independent; sampling noise alone keeps |z| below 3. **Here**, " + "; ".join(found) + ". "
            "**This is why**: a per-pixel value that departs from 2σ² inside or outside S beyond sampling noise "
            "means that the pixels there do not have the variance σ² of the whole image, or that two images are "
            "more (or less) alike than independent draws: an assumption of Proposition 2 fails by that much."
            + (" A caveat: " + "; ".join(caveat) + ". Pairs that share an image are not independent, and the "
               "standard error, which treats them as independent, is then too small, so |z| overstates the "
               "evidence somewhat." if caveat else ""))


def fig6_slider_note(ts, sbar_dists=(1.0, 1.3), height: float = 0.7) -> str:
    """Markdown: Proposition 1 along the path of :func:`ssae.report.plots.fig6_slider`,
    counted from :func:`ssae.theory.fig6_path`."""
    from ..theory import fig6_conclusion_limit, fig6_path

    frames = fig6_path([(t, height) for t in ts], sbar_dists)
    cond = [f for f in frames if f.condition6]
    parts = [f"**Proposition 1** says: where the premise of (5) and condition (6) hold, the conclusion holds. "
             f"**Along this path** (6) holds at {len(cond)} of {len(frames)} positions."]
    for i, d in enumerate(sbar_dists):
        holds = [f for f in frames if f.conclusions[i]]
        extra = [f"{f.t:+.1f}" for f in holds if not f.condition6]
        broken = [f"{f.t:+.1f}" for f in cond if not f.conclusions[i]]
        where = (f"wherever (6) holds and also at t = {', '.join(extra)}, where (6) fails" if extra and not broken
                 else "exactly where (6) holds" if not broken
                 else f"but not at t = {', '.join(broken)}, where (6) holds: a counterexample")
        parts.append(f"With ‖x_S̄ − y_S̄‖ = {d:g} the conclusion holds at {len(holds)} positions, {where} "
                     f"(its limit is t = {fig6_conclusion_limit(d):.3f}).")
    parts.append("**This is why**: by Lemma 3 the conclusion reads (2t − 1)‖x_S − y_S‖² ≤ ‖x_S̄ − y_S̄‖², so only "
                 "the position t of the projection matters and the height of x̂_S above the line cancels "
                 "(Lemma 1). Condition (6) is t ≤ 1: what the inequality needs in the worst case that the premise "
                 "allows, ‖x_S̄ − y_S̄‖ = ‖x_S − y_S‖. With an equal premise (6) is therefore exactly the region "
                 "of the conclusion; with slack it is sufficient and leaves room beyond y_S.")
    return " ".join(parts)


def _shape(c) -> str:
    return f"{c.image_shape[0]}×{c.image_shape[1]}"


def _first_fraction(c, rates, level: float) -> str:
    """``|S|/N`` of the first grid point whose rate exceeds ``level`` (or 'never')."""
    hit = [f for f, r in zip(c.fractions, rates) if r > level]
    return f"{hit[0]:.2f}" if hit else "never"


def theorem2_note(counts) -> str:
    """Markdown: Theorem 2 on fields of growing size (a list of :class:`ssae.theory.ViolationCounts`
    with one sigma^2): violations inside and outside the bound (11)."""
    b = counts[0].bound_fraction
    inside = sum(int(c.violations[c.fractions <= b].sum()) for c in counts)
    tested = sum(int((c.fractions <= b).sum()) * c.n_pairs for c in counts)
    first = ", ".join(f"{_first_fraction(c, c.rates, 0)} ({_shape(c)})" for c in counts)
    half = ", ".join(f"{_first_fraction(c, c.rates, 0.5)} ({_shape(c)})" for c in counts)
    return (f"**The paper** says (12): inside the bound (11), here |S|/N ≤ {b:.3f}, the share of pairs that "
            f"violate the premise of Theorem 1 tends to 0 as N grows. **Here** {inside} of the {tested} pairs "
            f"tested inside the bound violate it. The first violations appear only at |S|/N = {first}, and more "
            f"than half of the pairs violate from |S|/N = {half}. **This is why**: eq. (9) puts the mean of "
            f"‖x_S − y_S‖² − ‖x_S̄ − y_S̄‖² at (|S| − |S̄|)·2σ², below 0 for every |S|/N < 0.5, and both norms "
            f"concentrate around their means as the images grow (Corollary 1). The bound (11) is sufficient for "
            f"(12) but far from necessary; the next section shows where it comes from.")


def event25_note(counts) -> str:
    """Markdown: the proof's event (25), ``||x_S' - y_S'||^2 < |S|``, just inside and just
    outside the bound (11), per image size (a list of :class:`ssae.theory.ViolationCounts`)."""
    b = counts[0].bound_fraction
    near_in, near_out = [], []
    for c in counts:
        share = c.superset / c.n_pairs
        inside, outside = c.fractions <= b, c.fractions > b
        if inside.any():
            k = int(inside.nonzero()[0][-1])
            near_in.append(f"{_share(share[k])} at N = {_shape(c)} (|S|/N = {c.fractions[k]:.2f})")
        if outside.any():
            k = int(outside.nonzero()[0][0])
            near_out.append(f"{_share(share[k])} (|S|/N = {c.fractions[k]:.2f})")
    s2 = counts[0].sigma2
    return (f"**The proof** bounds the probability of a violation by that of event (25), the dash-dotted curves. "
            f"**Here**, at the largest grid point inside the bound, event (25) holds for "
            f"{'; '.join(near_in) or 'no grid point'}; at the first grid point outside it, for "
            f"{', '.join(near_out) or 'no grid point'}. The violations themselves start only at the larger |S|/N "
            f"given above. **This is why**: event (25) says m = ‖x_S̄ − y_S̄‖²/|S̄| < |S|/|S̄|, and m concentrates "
            f"at 2σ² = {2 * s2:.3f} (Corollary 1). The event is rare when |S|/|S̄| is below 2σ², inside (11), and "
            f"almost certain above it. The proof can therefore not reach beyond (11): replacing ‖x_S − y_S‖² by "
            f"its largest value |S|, instead of its typical value 2σ²|S|, costs a factor 1/(2σ²) = "
            f"{1 / (2 * s2):.1f} in the admissible |S|.")


def theorem2_sides_table(c, label: str = "") -> Table:
    """Violations summed over the grid points inside and outside the bound (11)
    (:meth:`ssae.theory.ViolationCounts.sides`)."""
    sd = c.sides()
    inside = c.fractions <= c.bound_fraction
    rows = []
    for name, mask, key in (("inside (11)", inside, "inside"), ("outside (11)", ~inside, "outside")):
        span = f"{c.fractions[mask].min():.3f} – {c.fractions[mask].max():.3f}" if mask.any() else "—"
        pairs, viol = sd[f"{key}_pairs"], sd[f"{key}_violations"]
        rows.append([name, str(sd[f"{key}_points"]), span, str(pairs), str(viol),
                     _share(viol / pairs) if pairs else "—"])
    return Table(f"Theorem 2: violating pairs inside and outside the bound (11) {label}".strip(),
                 ["grid points", "number", "|S|/N", "pairs tested", "violating", "share"], rows,
                 caption=f"σ² = {c.sigma2:.4g}, so (11) allows |S|/N ≤ {c.bound_fraction:.4f}; "
                         f"N = {_shape(c)}, {c.n_pairs} pairs per grid point.")


def theorem2_sides_note(c, name: str) -> str:
    """Markdown: footnote 7 of the paper (no violations within the bound on MVTec AD textures)
    against the counts on one texture."""
    sd = c.sides()
    b = c.bound_fraction
    return (f"**Footnote 7 of the paper** reports no violating pairs within the bound on the MVTec AD textures. "
            f"**On the {name}**, σ² = {c.sigma2:.4f} puts the bound at |S|/N ≤ {b:.4f}, a square of "
            f"{_share(b ** 0.5)} of the image side; inside it {sd['inside_violations']} of {sd['inside_pairs']} pairs "
            f"violate the premise, and the first violations appear at |S|/N = {_first_fraction(c, c.rates, 0)}. "
            f"**This is why**: the bound is small because the texture varies little (small σ²), not because "
            f"larger patches break the premise: by eq. (9) the premise fails on average only from "
            f"|S|/N = 0.5 on.")


def theorem3_note(res, crossing: int) -> str:
    """Markdown: what the Theorem 3 figure shows (a :class:`ssae.theory.ConvergenceResult`):
    the observed share, the Chebyshev bound with the exact variance, and the flat bound with
    the proof's variance estimate, which falls below 1 only from ``crossing`` pixels
    (:func:`ssae.theory.proof_bound_crossing`)."""
    sizes = [int(n) for n in res.s_sizes]
    below = [n for n, v in zip(sizes, res.proof_bound) if v < 1]
    exact = [n for n, v in zip(sizes, res.chebyshev) if v < 1]
    under = sum(o <= c for o, c in zip(res.exceed, res.chebyshev))
    side = math.ceil(crossing ** 0.5)
    proof = (f"it stays at 1 for every |S| from {sizes[0]} to {sizes[-1]}" if not below else
             f"it stays at 1 up to |S| = {max([n for n in sizes if n < below[0]] or [0])} and reaches "
             f"{res.proof_bound[-1]:.2f} at |S| = {sizes[-1]}")
    return (f"**The proof of Theorem 3** bounds P(|m − 2σ²| > ε) by Chebyshev's inequality, Var[m]/ε², and "
            f"estimates Var[m] from above by Var[w]/|S| + 2L(L+1)·Var[w]/|S| + 2ε_L, where ε_L is the largest "
            f"covariance between pixels more than L edges apart (the paper bounds the number of these near "
            f"neighbours by L; on a 2-D grid there are up to 2L(L+1)). The dotted curve is this estimate, minimised "
            f"over L and capped at 1 (where both bounds are 1 it lies under the dashed one). **Here** {proof}. **This is why**: the term 2ε_L does not shrink as |S| "
            f"grows, so L must be large enough that 2ε_L < ε² = {res.eps ** 2:g}, and then the term with "
            f"2L(L+1) needs a large |S| to fall below ε² as well. For these fields (correlation length {res.corr_length:g} px, "
            f"ε = {res.eps:g}) the estimate falls below 1 only from |S| = {crossing} pixels, a square of side "
            f"{side} or more. The dashed curve, Chebyshev's bound with the exact variance, "
            + (f"is below 1 from |S| = {exact[0]}" if exact else "stays at 1 at these sizes too")
            + f"; the observed share (solid) is at or below it at {under} of {len(sizes)} sizes and is "
            f"{_share(res.exceed[-1])} at |S| = {sizes[-1]}. So the flat curve shows that the proof's chain of "
            f"inequalities is valid and tends to 0 as |S| → ∞, which is all that Theorem 3 claims. It does not "
            f"show how large a patch must be for m to be close to 2σ²; for that, read the observed share and "
            f"the exact bound.")


def theorem3_offset_note(res, offset) -> str:
    """Markdown: Corollary 1 on fields with a random offset (covariance that does not vanish,
    ``offset``) against the same run without it (``res``)."""
    ratio = (offset.var_observed[-1] / offset.var_predicted[-1]) ** 0.5
    return (f"**Theorem 3 needs** covariances that vanish with distance (18). **With a random offset** per field "
            f"the share of deviations larger than ε at |S| = {int(offset.s_sizes[-1])} is {_share(offset.exceed[-1])} "
            f"(without the offset: {_share(res.exceed[-1])}), and the standard deviation of m is {ratio:.1f} times "
            f"the one predicted for vanishing covariance. **This is why**: the offset is shared by all pixels of "
            f"a field, so (18) fails, and averaging over more pixels does not remove it.")


def prop1_trials(n_trials: int = 2000, dim: int = 12, s_size: int = 4, seed: int = 0) -> Table:
    """Proposition 1 on random vectors: how often premise, condition (6) and conclusion hold,
    and that (premise and (6)) never occurs without the conclusion."""
    import numpy as np
    from ..theory import proposition1

    rng = np.random.default_rng(seed)
    S = np.zeros(dim, bool)
    S[:s_size] = True
    counts = {"premise and (6)": [0, 0], "premise, not (6)": [0, 0], "no premise": [0, 0]}
    for _ in range(n_trials):
        x, y = rng.random(dim), rng.random(dim)
        x_hat = x.copy()
        x_hat[S] = rng.normal(0.5, 0.6, s_size)
        r = proposition1(x, x_hat, y, S)
        key = "no premise" if not r.premise else "premise and (6)" if r.condition6 else "premise, not (6)"
        counts[key][0] += 1
        counts[key][1] += int(r.conclusion)
    rows = [[k, str(n), str(c), str(n - c)] for k, (n, c) in counts.items()]
    return Table(f"Proposition 1 on {n_trials} random triples (N = {dim}, |S| = {s_size})",
                 ["case", "triples", "conclusion holds", "conclusion fails"], rows,
                 caption="Proposition 1 says the first row has no failures; without condition (6) "
                         "or without the premise the conclusion can fail.")


def orthogonality_curves(run_dir: str | Path | None, data: str, profile: str = "cpu", device: str = "cpu",
                         seed: int = 0) -> tuple[list, str]:
    """Figure 9's curves for the trained model in ``run_dir`` (when given) and two reference
    mappings with known behaviour: the exact nearest-neighbour projection onto the training
    images and the identity. Returns ``(curves, label)``."""
    import numpy as np
    from .. import data as D
    from ..theory import NearestNeighbourProjection, identity_map, orthogonality_curve

    st = theory_settings(profile)
    rng = np.random.default_rng(seed)
    curves = []
    if run_dir and any((Path(run_dir) / f).is_file() for f in ("checkpoint.pt", "model.safetensors")):
        from ..scoring import reconstruct
        from ..runs import load_model
        model, cfg = load_model(run_dir, device)
        split = D.load_split(data, cfg.data, seed=cfg.train.seed)
        size = cfg.data.image_size
        imgs = D.load_images(split.train[:st["orth_images"]], size, split.channels, progress=False)

        def F(x):
            return reconstruct(model, x.to(device)).cpu()

        from ..runs import read_summary
        steps = read_summary(run_dir).get("steps")
        curves.append(orthogonality_curve(F, np.stack(imgs), st["orth_widths"], rng,
                                          label=f"trained F ({cfg.profile} profile"
                                                + (f", {steps:,} steps)" if steps else ")")))
        label = figure_label(data, size, cfg.profile, device, split.has_masks)
    else:
        size = st["size"]
        imgs = folder_images(data or "embedded:carpet", st["orth_images"], size, seed) if data else \
            texture_images("carpet", st["orth_images"], size, seed)
        label = figure_label(data or "embedded:carpet", size, profile, device, True) + " · no trained model"
    train = np.stack(imgs)
    curves.append(orthogonality_curve(NearestNeighbourProjection(train), train, st["orth_widths"], rng,
                                      label="nearest neighbour in D (exact projection)"))
    curves.append(orthogonality_curve(identity_map, train, st["orth_widths"], rng, label="identity"))
    return curves, label


def orthogonality_table(curves, fractions=(0.1, 0.25, 0.5)) -> Table:
    rows = []
    for c in curves:
        for f in fractions:
            a = c.at_fraction(f)
            rows.append([c.label, f"{a['fraction']:.3f}", f"{a['acc_input']:.2f}", f"{a['acc_output']:.2f}",
                         f"{a['dist_mean']:.2f} ± {a['dist_std']:.2f}"])
    return Table("Figure 9 in numbers", ["mapping F", "|S|/N", "argmin ||X^−Y|| = X", "argmin ||F(X^)−Y|| = X",
                                         "||F(X^) − X||"], rows)


def orthogonality_verdict(curves, fractions=(0.1, 0.25)) -> str:
    """Markdown: what Figure 9 shows here against what the paper reports (both accuracies near
    1 below |S|/N = 0.5 for its trained carpet model), generated from the curves."""
    trained = [c for c in curves if c.label.startswith("trained")]
    ident = next((c for c in curves if c.label == "identity"), None)
    if not trained:
        return ("No trained model was given, so the figure shows only the two reference mappings: the "
                "nearest-neighbour projection is orthogonal by construction, and the identity leaves the "
                "corrupted image where it is.")
    c = trained[0]
    parts = ["**The paper** reports for its trained carpet model that, for |S|/N below 0.5, both the "
             "corrupted image and the network's output lie nearest to their source among the training "
             "images (accuracies near 1) and that the output is close to the source. **Here**:"]
    for f in fractions:
        a = c.at_fraction(f)
        i = ident.at_fraction(f) if ident else None
        better = a["acc_output"] - a["acc_input"]
        parts.append(f"at |S|/N = {a['fraction']:.2f} the output F(X^) is nearest to its source X in "
                     f"{100 * a['acc_output']:.0f} % of cases, the corrupted input X^ itself in "
                     f"{100 * a['acc_input']:.0f} % ({'+' if better >= 0 else ''}{100 * better:.0f} points"
                     + (f"; the identity: {100 * i['acc_output']:.0f} %" if i else "") + ");")
    last = c.at_fraction(fractions[-1])
    if last["acc_output"] >= max(0.9, last["acc_input"]):
        why = ("so the trained network behaves like the projection that Theorem 1 describes on these "
               "images.")
    elif last["acc_output"] >= last["acc_input"]:
        why = ("so the output keeps its source's identity as well as the input does, but below what an "
               "orthogonal projection gives: a partial projection at this amount of training.")
    else:
        why = ("so the output is *less* often nearest to its source than the corrupted input: the network "
               "does not act as a projection onto the normal images here. A network that has not learned to "
               "restore (a low restoration check) may blur the texture so much that the training images "
               "look alike to the nearest-neighbour test.")
    parts.append(why)
    return " ".join(parts)


def gpu_figures(gpu_dir: str | Path | None) -> list[tuple[str, list]]:
    """Figures of the kept paper-profile GPU results (``book/gpu_results/<name>.json`` with
    ``<name>.figures.npz``, written by ``benchmarks/paper_run.py``): per result a title naming
    data, size, profile, hardware and date, and the loss curve, Figure 1 and (with masks)
    Figure 10 drawn from the stored arrays. Empty when nothing is kept."""
    import numpy as np
    from . import plots

    out: list[tuple[str, list]] = []
    if not gpu_dir or not Path(gpu_dir).is_dir():
        return out
    for npz in sorted(Path(gpu_dir).glob("*.figures.npz")):
        name = npz.name[: -len(".figures.npz")]
        meta = Path(gpu_dir) / f"{name}.json"
        if not meta.is_file():
            continue
        res = json.loads(meta.read_text(encoding="utf-8"))
        run = res.get("gpu_run") or {}
        label = " · ".join(str(x) for x in (classify(res).label, size_text(res.get("image_size")),
                                             f"{res.get('profile', '?')} profile",
                                             res.get("hardware") or run.get("hardware", "GPU"),
                                             str(res.get("date") or run.get("date", "?"))[:10]))
        figs = []
        with np.load(npz, allow_pickle=False) as z:
            if "history_step" in z and len(z["history_step"]):
                hist = [{"step": int(a), "loss": float(b), "crop": int(c)}
                        for a, b, c in zip(z["history_step"], z["history_loss"], z["history_crop"])]
                figs.append(plots.loss_curve(hist, label))
            n = len(z["example_index"]) if "example_index" in z else 0
            if n:
                images = [z[f"example_image_{j}"].astype(np.float32) / 255 for j in range(n)]
                images = [a[..., None] if a.ndim == 2 else a for a in images]
                maps = [z[f"example_map_{j}"].astype(np.float32) for j in range(n)]
                defects = z["defects"] if "defects" in z else np.array(["?"] * (max(z["example_index"]) + 1))
                titles = [str(defects[i]) for i in z["example_index"]]
                threshold = float(z["threshold"])
                figs.append(plots.detection_examples(images, maps, threshold, titles, label))
                if all(f"example_mask_{j}" in z for j in range(n)):
                    masks = [z[f"example_mask_{j}"] for j in range(n)]
                    figs.append(plots.evaluation_maps(images, maps, masks, threshold, titles, label))
        out.append((label, figs))
    return out
