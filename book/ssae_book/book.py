"""Helpers the book's notebooks call: one call per table, figure or run.

The notebooks in ``notebooks/`` hold narrative and calls; whatever they compute lives here (or
in the library modules these helpers call), where the tests reach it:

- the settings chapter (:func:`settings_table`: every config field, its default per profile
  and whether the value is the paper's or ours);
- one data set's page: :func:`train_category`, :func:`evaluate_category`, the metrics, per-defect
  and objective-comparison tables, example maps and reconstructions;
- the method chapter (:func:`method_inputs`, :func:`as_batch`, :func:`model_table`);
- the theory chapters: :mod:`ssae_book.theory_pages`;
- the GPU figures kept in ``book/gpu_results/``.

Running the notebooks and building the HTML is :mod:`ssae_book.build` (``ssae-book``).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssae.config import Config, override, profile as make_profile, provenance
from ssae.hardware import hardware  # noqa: F401  (the notebooks call book.hardware)
from .tables import Table, classify, size_text

REPO = Path(__file__).resolve().parents[2]

EMBEDDED = ("carpet", "grid", "leather", "tile", "wood")


# =========================================================================== settings chapter

def settings_table(profiles: tuple[str, ...] = ("paper", "paper-fast", "cpu", "smoke")) -> Table:
    """Every config field with its default in each profile and whether the paper fixes it
    (the fields' metadata, :func:`ssae.config.provenance`)."""
    cfgs = {p: make_profile(p).to_dict() for p in profiles}
    rows = []
    for row in provenance(Config):
        section, name = row.setting.split(".")
        # a profile that departs from a value the paper fixes says so in its own cell
        values = [_show(cfgs[p][section][name])
                  + (" (ours)" if row.source == "paper" and cfgs[p][section][name] != row.value else "")
                  for p in profiles]
        rows.append([row.setting, *values, row.source, row.note])
    return Table("Every setting, its default per profile, and where it comes from",
                 ["Setting", *[f"{p} profile" for p in profiles], "Source", "Note (ssae/config.py)"],
                 rows, caption="'paper': the paper fixes the default; 'ours': this reproduction chose it; "
                         "a profile's value marked (ours) departs from the paper's for that profile.")


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
    """A :class:`DataSet` for a data spec, titled by what it is (see :func:`ssae_book.tables.classify`)."""
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


def figure_label(data: str, image_size: Any, profile: str, device: str = "cpu",
                 has_masks: bool | None = None) -> str:
    """'embedded look-alike 'carpet' (generated, not MVTec AD) · 256 px · cpu profile · CPU ...'
    for figure titles: data set, resolution, profile and hardware."""
    if has_masks is None:
        has_masks = str(data).startswith("embedded:") or (Path(data) / "ground_truth").is_dir()
    kind = classify({"data_spec": data, "has_masks": has_masks, "image_size": image_size})
    size = "" if kind.kind == "mvtec-copy" else f" · {size_text(image_size)}"
    return f"{kind.label}{size} · {profile} profile · {hardware(device)}"


#: Packed models of the generated look-alikes kept beside the book, trained with the book's own
#: settings by ``scripts/train_lookalikes.py``: a build with those settings evaluates them instead
#: of training again (a notebook rerun by hand trains from scratch).
LOOKALIKES = REPO / "book" / "lookalikes"


def kept_lookalike(data: str, profile: str, minutes: float | None = None, seed: int = 0,
                   folder: str | Path = LOOKALIKES, name: str = "ssae", **settings) -> Path | None:
    """The kept packed model ``<folder>/<slug>/<name>`` of the look-alike ``data``
    (``embedded:<category>``) when it was trained with exactly the settings :func:`run_config`
    gives for ``profile``, ``minutes``, ``seed`` and ``settings`` (objective, corruption: the
    comparison models of :data:`VARIANTS` are kept as ``objective4`` and ``cutout``); else None
    (the build then trains it)."""
    from ssae.runs import RunDir

    if not str(data).startswith("embedded:"):
        return None
    path = Path(folder) / dataset(data).slug / name
    if not RunDir(path).config.is_file():
        return None
    have = RunDir(path).read_config()[0].to_dict()
    want = run_config(profile, minutes=minutes, seed=seed, **settings).to_dict()
    have["model"]["in_channels"] = want["model"]["in_channels"]  # set from the data by training
    for section, fields in want.items():  # None: decided from the data at training (e.g. augmentation)
        if isinstance(fields, dict):
            have[section].update({k: None for k, v in fields.items() if v is None})
    return path if want == have else None


def train_category(data: str, profile: str, run_dir: str | Path, device: str = "cpu", seed: int = 0,
                   minutes: float | None = None, objective: int = 1, corruption: str | None = None,
                   progress: bool = False, kept: str | Path | None = None) -> dict[str, Any]:
    """Train one data set (:func:`ssae.pipeline.train` with :func:`run_config`'s settings) and
    return what the notebook shows (:func:`training_run`).

    ``kept``: a packed model of the same settings (:func:`kept_lookalike`) that is copied to
    ``run_dir`` (:func:`show_kept`) and shown instead of training one here."""
    from ssae.data import load_split
    from ssae.pipeline import train

    cfg = run_config(profile, minutes=minutes, seed=seed, objective=objective, corruption=corruption)
    split = load_split(data, cfg.data, seed=seed)
    if kept:
        show_kept(kept, run_dir)
    else:
        train(cfg, split, run_dir, device=device, data_spec=data, progress=progress)
    return training_run(run_dir, split, data, profile, device, kept)


def show_kept(kept: str | Path, run_dir: str | Path) -> None:
    """Copy the kept packed model ``kept`` to ``run_dir`` (replacing it) to be shown and
    evaluated like a model trained there."""
    import shutil

    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.copytree(kept, run_dir)


def training_run(run_dir: str | Path, split, data: str, profile: str, device: str = "cpu",
                 kept: str | Path | None = None) -> dict[str, Any]:
    """What the training page shows of the finished run in ``run_dir``: its settings as used,
    summary, loss history and the figure label."""
    from ssae.runs import RunDir

    run = RunDir(run_dir)
    cfg, _ = run.read_config()
    result = {**run.read_summary(), "history": run.read_history()}
    return {"cfg": cfg, "split": split, "result": result, "history": result["history"],
            "run_dir": str(run_dir), "kept": str(kept or ""),
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
        ["training time", f"{res['seconds'] / 60:.1f} min"
         + (" (before this build: the kept look-alike model, trained by scripts/train_lookalikes.py)"
            if run.get("kept") else "")],
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
    """:func:`ssae.evaluation.evaluate` (with the paper's sum beside the calibrated score) plus
    the book's fields (:func:`page_result`); written to ``results_json``."""
    from ssae.evaluation import evaluate

    res = page_result(evaluate(run_dir, data, device=device, progress=False), data, slug)
    if results_json:
        write_result(results_json, res)
    return res


def page_result(res: dict[str, Any], data: str, slug: str | None = None) -> dict[str, Any]:
    """An evaluation result with the fields the book's tables read (``slug``, ``status``,
    ``has_masks``); returns ``res``."""
    res["slug"] = slug or dataset(data).slug
    res["status"] = "ok"
    res["has_masks"] = res.get("pixel_auroc") is not None
    return res


def write_result(path: str | Path, result: dict[str, Any]) -> Path:
    """Write a result JSON (temporary name, then rename)."""
    from ssae.runs import write_json
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
    from ssae.calibration import RESTORATION_MIN
    from ssae.runs import read_calibration, read_run_config, read_summary

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
    from ssae.calibration import RESTORATION_MIN

    if v is None:
        return "not recorded"
    verdict = "restores its training corruptions" if v >= RESTORATION_MIN else \
        f"below {100 * RESTORATION_MIN:.0f}: not yet trained to restore; maps are mostly reconstruction error"
    return f"{100 * float(v):.1f} (pixel AUROC on validation images corrupted as in training; {verdict})"


def metrics_table(res: dict[str, Any]) -> Table:
    """The evaluation's numbers, named with data, size, profile and hardware."""
    sc = res.get("score") or {}
    rows = [
        ["image AUROC (%), calibrated (ours)", _pct(res.get("image_auroc"))],
        ["image AUROC (%), paper's sum", "not computed" if res.get("image_auroc_paper_sum") is None
         else _pct(res["image_auroc_paper_sum"])],
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
                 caption=str(res.get("metrics_note", "")),
                 notes=[SCORES_NOTE])


#: what the two image AUROCs of a page are
SCORES_NOTE = ("Image AUROC, calibrated (ours): with the image score and maps the calibration chose on "
               "validation images (the scoring row). Paper's sum: with the paper's image score, the sum of "
               "eq. (3)'s map over the pixels at the same n and k, without standardisation or avgmap weighting. "
               "The per-defect image AUROCs use the calibrated score.")


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
    from ssae import data as D
    from ssae.scoring import calibrated_maps, diff_maps
    from ssae.runs import read_calibration
    from ssae.runs import load_model

    model, cfg = load_model(run_dir, device)
    split = D.load_split(data, cfg.data, seed=cfg.train.seed)
    cal, stats = read_calibration(run_dir)
    items = pick_items(split.test, n, good, seed)
    images = split.images(items, cfg.data.image_size)
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
    from ssae.scoring import reconstruct
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
                   minutes: float | None = None, kept: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Train the comparison models of Table 4 and Figure 11 beside ``run_dir``: objective (4)
    with elastic deformation and objective (1) with cut-out ("zeros"). ``kept``: the kept
    objective (1) model of :func:`kept_lookalike`; a comparison model kept beside it with these
    settings is shown instead of trained."""
    folder = Path(kept).parents[1] if kept else None
    return {name: train_category(data, profile, variant_dir(run_dir, name), device=device, seed=seed,
                                 minutes=minutes, **kw,
                                 kept=folder and kept_lookalike(data, profile, minutes, seed, folder, name, **kw))
            for name, kw in VARIANTS.items()}


def compare_objectives(run_dir: str | Path, data: str, device: str = "cpu", seed: int = 0,
                       n_examples: int = 3) -> dict[str, Any]:
    """Table 4 and Figure 11 for one data set: evaluate the models of :func:`train_variants`
    beside the objective (1) run in ``run_dir``, and the pixel-wise maximum ensemble of the
    objective (1) and (4) heatmaps (Table 4, "Ens.")."""
    import torch
    from ssae import metrics as M
    from ssae import scoring as S
    from ssae.evaluation import anomaly_maps, evaluate, ground_truth, map_metrics
    from ssae.scoring import image_scores
    from ssae.runs import read_run_config, read_summary

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
    """Rows for :func:`ssae_book.plots.reconstructions` (Figures 2 and 4): defective test images
    and their reconstructions, validation images corrupted as in training with the clean
    original (the target) beside them, and clean validation images (which the network should
    copy)."""
    import numpy as np
    import torch
    from ssae import data as D
    from ssae.corruption import corrupt
    from ssae.scoring import reconstruct
    from ssae.runs import load_model

    model, cfg = load_model(run_dir, device)
    split = D.load_split(data, cfg.data, seed=cfg.train.seed)
    rows: list[dict[str, Any]] = []
    bad = pick_items(split.test, n_defective, 0, seed)
    for it, img in zip(bad, split.images(bad, cfg.data.image_size)):
        mask = D.read_mask(it.mask_path, img.shape[:2]) if (split.has_masks and it.mask_path) else None
        rows.append({"input": img, "mask": mask, "name": f"test: {it.defect}"})
    val = (split.val + split.train)[:n_corrupted]
    gen = torch.Generator().manual_seed(seed)
    for img in split.images(val, cfg.data.image_size):
        x = torch.from_numpy(img.transpose(2, 0, 1).copy())[None]
        xh, m = corrupt(x, cfg.corruption, gen)
        rows.append({"input": xh[0].numpy().transpose(1, 2, 0), "clean": img,
                     "mask": m[0, 0].numpy(), "name": f"corrupted ({cfg.corruption.method})"})
    clean = (split.val + split.train)[n_corrupted:n_corrupted + n_clean]
    for img in split.images(clean, cfg.data.image_size):
        rows.append({"input": img, "clean": img, "mask": None, "name": "clean"})
    for row in rows:
        x = torch.from_numpy(np.ascontiguousarray(row["input"].transpose(2, 0, 1)))[None].float().to(device)
        row["output"] = reconstruct(model, x)[0].cpu().numpy().transpose(1, 2, 0)
    return rows


#: fewer training steps than this and a network counts as barely trained (ours): the kept models'
#: learning curves start at a few hundred steps, and a network this young still mostly blurs
BARELY_TRAINED_STEPS = 1000


def training_amount(run_dir: str | Path, short: bool = False) -> str:
    """How long the network in ``run_dir`` was trained, for figure titles: steps and time, and
    for a barely trained network (under :data:`BARELY_TRAINED_STEPS` steps) what that means
    (``short``: only that it is barely trained)."""
    from ssae.runs import read_summary

    s = read_summary(run_dir) if Path(run_dir).is_dir() else {}
    steps, seconds = s.get("steps"), s.get("seconds") or 0
    if not steps:
        return "untrained" if short else "untrained network: its output is what random weights give, not the method's"
    took = f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"
    text = f"trained {steps:,} steps ({took})"
    if steps < BARELY_TRAINED_STEPS and short:
        text += ", barely trained"
    elif steps < BARELY_TRAINED_STEPS:
        text += (": barely trained, so its output is still close to a blurred copy of its input and the "
                 "figure shows that, not what a trained model does")
    return text


def kept_model_example(models_dir: str | Path | None = None, device: str = "cpu") -> dict[str, Any] | None:
    """Figures 2 and 3 with a kept, trained reference model (``models/``): its stored samples
    (:mod:`ssae.samples`, so no data set is needed) through the model again. Prefers an AITEX
    fabric model of the method. Returns the pipeline of the defective sample whose binary mask
    overlaps its ground truth best (then: the highest score) (image, reconstruction, Diff (eq. 2),
    calibrated anomap, threshold, truth) and Figure 2's rows (that sample, the next of another
    defect type and the calmest good sample), with a label naming the model and its training; None without one."""
    import numpy as np
    import torch

    from ssae import scoring as S
    from ssae.runs import load_model, read_calibration
    from ssae.samples import has_samples, read_samples
    from . import models as R

    refs = [r for r in R.find(models_dir or R.MODELS) if "ssae" in r.models and has_samples(r.models["ssae"])]
    refs.sort(key=lambda r: (not r.name.startswith("aitex"), r.name))
    if not refs:
        return None
    ref = refs[0]
    d = ref.models["ssae"]
    samples, index = read_samples(d)
    model, cfg = load_model(d, device)
    cal, stats = read_calibration(d)
    def overlap(s):  # intersection over union of the stored map's mask and the ground truth
        marked = s.anomaly_map > index["threshold"]
        return float((marked & s.mask).sum() / max(1, (marked | s.mask).sum()))

    bad = sorted((s for s in samples if s.label == 1), key=lambda s: (-overlap(s), -s.score))
    good = sorted((s for s in samples if s.label == 0), key=lambda s: s.score)
    if not bad:
        return None
    picked = [bad[0]] + [s for s in bad if s.defect != bad[0].defect][:1] + good[:1]
    x = torch.from_numpy(np.stack([s.image for s in picked]).transpose(0, 3, 1, 2).copy()).to(device)
    rec = S.reconstruct(model, x)
    raw = [S.difference(x[i:i + 1], rec[i:i + 1], cal["diff"])[0].cpu() for i in range(len(picked))]
    maps = S.calibrated_maps(raw, cal, stats)
    recs = rec.cpu().numpy().transpose(0, 2, 3, 1)
    rows = [{"input": s.image, "output": recs[i], "mask": s.mask if s.label else None,
             "name": f"test: {s.defect}"} for i, s in enumerate(picked)]
    return {"image": picked[0].image, "reconstruction": recs[0], "diff": raw[0][0].numpy(), "anomap": maps[0],
            "threshold": float(cal["threshold"]), "truth": picked[0].mask, "n": cal["n"], "k": cal["k"],
            "defect": picked[0].defect, "rows": rows, "model": d,
            "label": (f"{ref.title}, kept model of the method, {training_amount(d)}; its stored test "
                      f"samples ({index['image_format']}), {cfg.data.image_size} px"
                      + ("; step 3 standardised with the validation maps, as calibrated" if cal.get("standardize")
                         else ""))}


def method_inputs(data: str = "embedded:carpet", run_dir: str | Path | None = None, profile: str = "cpu",
                  device: str = "cpu", seed: int = 0) -> dict[str, Any]:
    """What the method chapter puts through Figure 5 (the corruption) and Figure 3 (the
    detection pipeline): a defective test image of ``data`` (``image``, its mask ``truth``), a
    clean training image (``clean``), and the ``network`` with the ``n``, ``k`` and
    ``threshold`` to score with. The network is the trained model in ``run_dir`` when given
    (with its calibrated n, k and threshold), else :class:`ssae.references.BlurReference`
    (a no-network stand-in, said so in ``model``; threshold None)."""
    from ssae import data as D
    from ssae.runs import RunDir

    cfg = make_profile(profile)
    network, n, k, threshold, what = None, cfg.score.n, cfg.score.k, None, ""
    if run_dir and RunDir(run_dir).has_weights():
        from ssae.runs import load_model, read_calibration
        network, cfg = load_model(run_dir, device)
        cal, _ = read_calibration(run_dir)
        n, k, threshold = cal["n"], cal["k"], cal["threshold"]
        what = f"model {Path(run_dir).name}, {training_amount(run_dir)}"
    else:
        from ssae.references import BlurReference
        network = BlurReference(4.0).to(device).eval()
        what = "BlurReference(sigma=4): no trained model was given"
    split = D.load_split(data, cfg.data, seed=seed)
    item = (pick_items(split.test, 1, 0, seed) or split.test[:1])[0]
    img = D.read_image(item.path, cfg.data.image_size, split.channels)
    truth = D.read_mask(item.mask_path, img.shape[:2]) if (split.has_masks and item.mask_path) else None
    return {"image": img, "truth": truth, "defect": item.defect,
            "clean": D.read_image(split.train[0], cfg.data.image_size, split.channels),
            "network": network, "n": n, "k": k, "threshold": threshold, "model": what, "cfg": cfg,
            "label": figure_label(data, cfg.data.image_size, cfg.profile, device, split.has_masks)}


def as_batch(image, device: str = "cpu"):
    """An H x W x C image as the 1 x C x H x W tensor the network and ``ssae.scoring`` take."""
    import numpy as np
    import torch
    return torch.from_numpy(np.ascontiguousarray(np.asarray(image, dtype=np.float32).transpose(2, 0, 1)))[None].to(device)


def as_image(batch):
    """The first image of a 1 x C x H x W tensor as an H x W x C array (for plotting)."""
    return batch[0].detach().float().cpu().numpy().transpose(1, 2, 0)


def model_table(f: int = 3, width: float = 1.0, size: int = 512, in_channels: int = 3) -> Table:
    """Table 1 computed from :class:`ssae.model.SSAE` (layer, filters, output size)."""
    import torch
    from ssae.model import SSAE, layer_table

    with torch.device("meta"):   # no weights allocated: instant even at width 1
        model = SSAE(in_channels=in_channels, f=f, width=width)
    rows = [[kind, str(ch), f"{h} × {w} × {ch}"] for kind, ch, (h, w) in layer_table(model, size, size)]
    params = sum(p.numel() for p in model.parameters())
    return Table(f"Table 1 from the code: SSAE(f={f}, width={width:g}) on {size} × {size} × {in_channels}",
                 ["Layer type", "Filters", "Output size"], rows,
                 caption=f"{params:,} parameters. The 3×3 convolution after each SDC stack "
                         "(Sec. 3.3) appears as its own Conv row.")


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
