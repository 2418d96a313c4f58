"""The trained reference models kept in the repository (``models/<data set>/<model>/``).

Each model folder is a packed run (:mod:`ssae.release`): float16 weights, the run's config,
training log and learning curve (``curve.jsonl``), its scoring and the test metrics recorded
when it was packed (``metrics.json``), and for the method the blur reference's metrics
(``blur.json``). The model kinds are ``ssae`` (the method, objective (1) on corrupted
images) and ``plain`` (the same network and settings, no corruption: a plain autoencoder).

The book reads the curves and the recorded metrics as they are, labelled with the hardware and
date of the run, and re-evaluates a model at build time when its data set is on the machine
(:func:`evaluate`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ssae.calibration import RESTORATION_MIN
from ssae.release import BLUR, EARLIER, METRICS
from ssae.runs import RunDir
from .tables import Table, paper_value, recorded_hardware, size_text

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"
#: model kinds, in the order the book shows them, with their names in tables and legends
KINDS = {"ssae": "the method (objective 1)", "plain": "plain autoencoder"}
#: the same, short, for README.md's table
GLANCE_KINDS = {"ssae": "the method", "plain": "plain AE"}
#: the test metrics, by key, as the pages name them
METRIC_NAMES = {"image_auroc": "image AUROC", "pixel_auroc": "pixel AUROC", "aupro": "AUPRO"}
#: what the two image AUROCs beside each other are
SCORES_TEXT = ("Image AUROC, calibrated (ours): with the image score the calibration chose on validation images "
               "(standardised maps or not, the max or the contrast of the map); paper's sum: with the paper's "
               "image score, the sum of eq. (3)'s map at the same n and k, unstandardised. Every other metric "
               "uses the calibrated maps.")
#: where each data set can be had, by the first part of a reference name
SOURCES = {
    "aitex": "the AITEX Fabric Image Database (Silvestre-Blanes et al., Autex Research Journal 2019), "
             "cut into 256 x 256 tiles in MVTec AD layout as `../shared/data/aitex/<fabric>`",
    "mtd": "Magnetic Tile Defects (Huang et al., The Visual Computer 2020; github.com/abin24/"
           "Magnetic-tile-defect-datasets) in its original layout as `../shared/data/mtd`, with "
           "DifferNet's `differnet_train_split.txt`",
    "mvtec": "MVTec AD (mvtec.com, CC BY-NC-SA 4.0), one category folder as "
             "`../shared/data/mvtec_ad/<category>`",
}


@dataclass
class Reference:
    """The models of one data set: ``name`` (folder name, e.g. ``aitex-fabric01``), ``folder``,
    ``models`` (kind -> model folder) and ``data`` (the data folder, relative to the repository)."""
    name: str
    folder: Path
    models: dict[str, Path] = field(default_factory=dict)
    data: str = ""

    @property
    def title(self) -> str:
        kind, _, rest = self.name.partition("-")
        return {"aitex": f"AITEX {rest}", "mtd": "Magnetic Tile Defects",
                "mvtec": f"MVTec AD {rest} (resized copy)"}.get(kind, self.name)

    def data_path(self, repo: Path = REPO) -> Path | None:
        """The data folder when it exists on this machine, else None."""
        p = (repo / self.data).resolve() if self.data else None
        return p if p is not None and p.is_dir() else None

    def source(self) -> str:
        return SOURCES.get(self.name.split("-", 1)[0], "its publisher")


def find(models_dir: str | Path = MODELS) -> list[Reference]:
    """Every data set with at least one packed model in ``models_dir``, sorted by name."""
    root = Path(models_dir)
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        ref = Reference(folder.name, folder)
        for kind in KINDS:
            if (folder / kind / METRICS).is_file():
                ref.models[kind] = folder / kind
        if ref.models:
            _, meta = RunDir(next(iter(ref.models.values()))).read_config()
            ref.data = meta.get("data", "")
            out.append(ref)
    return out


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def curve(model_dir: Path) -> list[dict]:
    """The learning curve of a model folder ([] when it has none)."""
    from ssae.runs import read_curve
    return read_curve(model_dir)


def recorded(model_dir: Path) -> dict:
    """The metrics recorded when the model was packed (``metrics.json``)."""
    return json.loads((Path(model_dir) / METRICS).read_text())


def blur(ref: Reference) -> dict | None:
    """The blur reference's recorded metrics (in the method's folder, else any model's)."""
    for d in ref.models.values():
        row = _read(d / BLUR)
        if row is not None:
            return row
    return None


def training(model_dir: Path) -> dict:
    """Steps, hours, precision and hardware of a model's training run."""
    s = RunDir(model_dir).read_summary()
    rows = curve(model_dir)
    last = rows[-1] if rows else {}
    hardware = last.get("hardware") or recorded(model_dir).get("hardware")
    return {"steps": s.get("steps"), "hours": (s.get("seconds") or 0) / 3600, "precision": s.get("precision"),
            "hardware": recorded_hardware(hardware),
            "date": str(last.get("date") or recorded(model_dir).get("date", ""))[:10]}


def restoration_text(m: dict) -> str:
    """What the restoration check (and, where recorded, the restoration gain and the two errors
    it compares) of a model's metrics say, in words: whether its maps single out the corruptions
    it was trained on, how much of them it undoes, and how its error left inside them compares
    with its error on clean images."""
    check, gain = m.get("restoration_pixel_auroc"), m.get("restoration_gain")
    left, normal = m.get("restoration_error"), m.get("normal_error")
    errors = (f" (mean squared error per pixel: {left:.2g} left inside the corrupted regions, {normal:.2g} "
              f"on clean images, {left / normal:.1f} times as much)") if left is not None and normal else ""
    undo = "" if gain is None else f"it undoes {gain:.0%} of their squared error (restoration gain {gain:.2f})"
    if check >= RESTORATION_MIN:
        return f"restoration check {check:.2f}: its maps find the corruptions it was trained on" + (
            f"; {undo}" if undo else "") + errors
    text = f"restoration check {check:.2f}: its maps do **not** single out the corruptions it was trained on"
    if check < 0.45:
        text += " (they are even *lower* there than elsewhere)"
    elif check <= 0.55:
        text += " (no better than chance)"
    if gain is None:
        return text + errors
    if gain > 0.1:
        return text + f", although {undo}: it learned the task, but not by enough to stand out from its " \
                      "reconstruction error on normal texture" + errors
    if gain >= 0:
        return text + f", and it undoes only {gain:.0%} of their squared error (restoration gain {gain:.2f})" + errors
    return text + f", and it does not undo them (restoration gain {gain:.2f}: its output is farther from the " \
                  "original than its input)" + errors


def _f(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{float(v):.{digits}f}"


def draws(model_dir: Path) -> list[dict]:
    """The test metrics of the model's calibrations: the recorded one first, then those on other
    draws of the validation proxy made when it was packed
    (:func:`ssae.evaluation.calibration_draws`); [] if none were made."""
    m = recorded(model_dir)
    others = m.get("calibration_draws") or []
    return [m, *others] if others else []


def draws_range(rows: list[dict], key: str) -> str:
    """``min–max`` of ``key`` over the calibrations ``rows``, or an en dash."""
    v = [r[key] for r in rows if r.get(key) is not None]
    return f"{min(v):.3f}–{max(v):.3f}" if v else "–"


def draws_text(model_dir: Path) -> str | None:
    """A sentence on the spread of the model's test metrics over its calibrations."""
    rows = draws(model_dir)
    if not rows:
        return None
    keys = [k for k in METRIC_NAMES if any(r.get(k) is not None for r in rows)]
    return (f"calibrated on {len(rows)} draws of its validation proxy (the recorded one and "
            f"{len(rows) - 1} others), the same weights reach "
            + ", ".join(f"{METRIC_NAMES[k]} {draws_range(rows, k)}" for k in keys)
            + ": differences within these ranges are chance in the calibration, not the model")


def draws_table(ref: Reference) -> Table:
    """Per model kind: the recorded metrics and their range over the other calibrations, and
    how often each image-score reduction was chosen."""
    from collections import Counter

    rows = []
    for kind, d in ref.models.items():
        rr = draws(d)
        if not rr:
            continue
        m = rr[0]  # the recorded calibration
        chosen = Counter(r["score"]["reduce"] for r in rr)
        rows.append([KINDS[kind], str(len(rr))]
                    + [f"{_f(m.get(k))} ({draws_range(rr, k)})" for k in METRIC_NAMES]
                    + [f"{m['score']['reduce']} ({', '.join(f'{r} {c}×' for r, c in chosen.most_common())})"])
    return Table("Chance in the calibration: recorded metrics (range over draws of the validation proxy)",
                 ["model", "draws", *METRIC_NAMES.values(), "image score (times chosen)"],
                 rows, notes=["The scoring is chosen on validation images with synthetic defects drawn at "
                              "random; each draw (the recorded one and the others) calibrates the same weights "
                              "and is evaluated on the same test images. Recorded when the model was packed."])


def summary_table(refs: list[Reference]) -> Table:
    """One row per data set and model: training (steps, hours, hardware), the restoration
    check and the recorded test metrics; the blur reference beside them."""
    rows = []
    for ref in refs:
        for kind, d in ref.models.items():
            m, t = recorded(d), training(d)
            rows.append([ref.title, KINDS[kind], f"{t['steps']:,}", f"{t['hours']:.1f}", t["precision"] or "fp32",
                         _f(m.get("restoration_pixel_auroc"), 2), _f(m.get("restoration_gain"), 2),
                         *image_auroc_cells(m), _f(m.get("pixel_auroc")), _f(m.get("aupro"))])
        b = blur(ref)
        if b:
            rows.append([ref.title, "blur reference (no training)", "–", "–", "–",
                         _f(b.get("restoration_pixel_auroc"), 2), _f(b.get("restoration_gain"), 2),
                         *image_auroc_cells(b), _f(b.get("pixel_auroc")), _f(b.get("aupro"))])
    hw = sorted({training(d)["hardware"] for ref in refs for d in ref.models.values()} - {None})
    return Table("Reference models: test metrics recorded when each model was packed",
                 ["data set", "model", "steps", "hours", "precision", "restoration check", "restoration gain",
                  "image AUROC, calibrated (ours)", "image AUROC, paper's sum", "pixel AUROC", "AUPRO"], rows,
                 notes=["Trained on one CPU core each; hardware: " + "; ".join(hw) + ". "
                        "Restoration check: pixel AUROC of the maps on validation images corrupted as in "
                        f"training (below {RESTORATION_MIN:g} the maps do not single such corruptions out); "
                        "restoration gain: the share of those corruptions' squared error the model undoes "
                        "(1: restored, 0: copied, below 0: made worse). " + SCORES_TEXT] if hw else [SCORES_TEXT])


def curve_figure(ref: Reference, label: str = ""):
    """Image AUROC, pixel AUROC and AUPRO (and the restoration check) against training steps on
    a log axis, one line per model kind, the blur reference as a dashed horizontal line; beside
    each last point, a bar over the packed weights' calibrations (:func:`draws`), where recorded."""
    from .plots import figure

    b = blur(ref)
    curves = {kind: curve(d) for kind, d in ref.models.items()}
    seen = [r for kind, d in ref.models.items() for r in (*curves[kind], recorded(d))]
    panels = [(k, n) for k, n in (*METRIC_NAMES.items(), ("restoration_pixel_auroc", "restoration check"))
              if any(r.get(k) is not None for r in seen)]  # without masks, no pixel panels
    cols = min(2, len(panels))
    rows_ = -(-len(panels) // cols)
    fig = figure(3.6 * cols + 0.2, 2.9 * rows_ + 1.4)
    grid = np.atleast_1d(fig.subplots(rows_, cols, squeeze=False)).ravel()
    axes = list(grid[:len(panels)])
    for ax in grid[len(panels):]:
        ax.set_axis_off()
    spreads = {kind: draws(d) for kind, d in ref.models.items()}
    for ax, (key, name) in zip(axes, panels):
        for i, kind in enumerate(ref.models):
            rows = [r for r in curves[kind] if r.get(key) is not None]
            if rows:
                ax.plot([r["step"] for r in rows], [r[key] for r in rows], "o-", ms=3, color=f"C{i}",
                        label=KINDS[kind])
            earlier = [r for r in curve(ref.models[kind] / EARLIER) if r.get(key) is not None]
            if earlier:  # the model this one replaced, trained with the earlier recipe
                ax.plot([r["step"] for r in earlier], [r[key] for r in earlier], "x:", ms=3, color=f"C{i}",
                        alpha=0.6, label=f"{KINDS[kind]}, earlier recipe")
            spread = [r[key] for r in spreads[kind] if r.get(key) is not None]
            if rows and spread:  # the packed weights over draws of the validation proxy, at the last step
                ax.vlines(rows[-1]["step"] * (1.08 + 0.08 * i), min(spread), max(spread), color=f"C{i}", lw=3,
                          alpha=0.45, label="over calibrations" if i == 0 and key == "image_auroc" else None)
        if b and b.get(key) is not None and key != "restoration_pixel_auroc":
            ax.axhline(b[key], ls="--", color="0.4", lw=1, label="blur reference")
        ax.set_xscale("log")
        ax.set_xlabel("training step")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=2)
    fig.suptitle(f"Learning curves: {ref.title}" + (f"\n{label}" if label else ""))
    return fig


def training_sentence(ref: Reference, kind: str) -> str:
    """'The method (objective 1) trained at 256 px (Table 1 at width 0.25) for 30,464 steps,
    2.0 h on one core of <hardware> (bf16), recorded <date>.' for a kept model."""
    d = ref.models[kind]
    cfg, _ = RunDir(d).read_config()
    t = training(d)
    name = KINDS[kind][0].upper() + KINDS[kind][1:]
    return (f"{name} trained at {cfg.data.image_size} px (Table 1 at width {cfg.model.width:g}) "
            f"for {t['steps']:,} steps, {t['hours']:.1f} h on one core of {t['hardware']} "
            f"({t['precision'] or 'fp32'}), recorded {t['date']}.")


def curve_label(ref: Reference) -> str:
    """Data set, image size, training and hardware of a reference's curves, for figure titles."""
    d = next(iter(ref.models.values()))
    cfg, _ = RunDir(d).read_config()
    t = training(d)
    size = cfg.data.image_size
    return (f"{size} px · Table 1 at width {cfg.model.width:g} · {t['hours']:.1f} h on one core of "
            f"{t['hardware']} ({t['precision']}), recorded {t['date']}")


def evaluate(ref: Reference, kind: str, device: str = "cpu") -> dict:
    """The model re-evaluated on its test split now (needs the data on this machine), with the
    image AUROC of the paper's image score beside the calibrated one."""
    from ssae.evaluation import evaluate as _evaluate
    return _evaluate(ref.models[kind], str(ref.data_path()), device=device, progress=False)


def per_defect_table(results: dict[str, dict]) -> Table:
    """Image AUROC and pixel AUROC per defect type, one column pair per model kind."""
    kinds = list(results)
    types = sorted({d for r in results.values() for d in (r.get("per_defect") or {})})
    rows = []
    for d in types:
        row = [d]
        for k in kinds:
            r = results[k]
            row += [_f((r.get("per_defect") or {}).get(d)), _f((r.get("per_defect_pixel") or {}).get(d))]
        rows.append(row)
    cols = ["defect type"] + [f"{KINDS.get(k, k)}: {m}" for k in kinds for m in ("image AUROC", "pixel AUROC")]
    return Table("Per defect type (each type's images against the good test images)", cols, rows)


@dataclass
class Case:
    """One row of the gallery: a test image with the model's outputs (see :func:`draw_gallery`)."""
    title: str
    image: np.ndarray
    truth: np.ndarray
    reconstruction: np.ndarray
    anomaly_map: np.ndarray


def _share_above(score: float, good: list[float]) -> str:
    return f"above {100 * float(np.mean([g < score for g in good])):.0f}% of good" if good else "no good images"


def draw_gallery(cases: list[Case], threshold: float, masks: bool, title: str):
    """One row per case: image, ground-truth mask (when the data set has masks), reconstruction,
    anomaly map over the image, and the binary mask (map > ``threshold``) coloured as in Figure 10
    (hits green, false alarms blue, misses red) or, without masks, alone."""
    from .plots import _grid, _show_image, evaluation_map, heat_overlay

    fig, axes = _grid(len(cases), 5 if masks else 4, cell=1.9)
    scale = 2 * float(threshold)
    for row, c in zip(axes, cases):
        panels = iter(row)
        _show_image(next(panels), c.image, c.title)
        if masks:
            _show_image(next(panels), c.truth.astype(float), "ground truth")
        _show_image(next(panels), c.reconstruction, "reconstruction")
        _show_image(next(panels), heat_overlay(c.image, c.anomaly_map, scale), "anomaly map")
        marked = c.anomaly_map > threshold
        _show_image(next(panels), evaluation_map(marked, c.truth, c.image) if masks else marked.astype(float),
                    "mask: hit, false\nalarm, miss" if masks else "binary mask")
    fig.suptitle(title)
    return fig


def gallery(ref: Reference, kind: str = "ssae", device: str = "cpu", stored: bool | None = None):
    """For each defect type, its best and its worst test image by the model's image score:
    image, ground-truth mask, reconstruction, anomaly map, and the binary mask (map > the
    validation threshold) over the image: hits green, false alarms blue, misses red. Data
    without masks get no mask column, and the binary mask alone.

    Computed from the data set when it is on this machine, else (or with ``stored``) drawn from
    the model's stored samples (:mod:`ssae.samples`, with the worst false alarm and the calmest
    good image too); None when neither is there."""
    if stored is None:
        stored = ref.data_path() is None
    if stored:
        return gallery_from_samples(ref, kind)
    import torch

    from ssae import scoring as S
    from ssae.data import read_mask
    from ssae.evaluation import anomaly_maps
    from ssae.runs import load_model

    d = ref.models[kind]
    split, items, images, maps, cal = anomaly_maps(d, str(ref.data_path()), device, progress=False)
    scores = S.image_scores(maps)[cal["reduce"]]
    good = [scores[i] for i, it in enumerate(items) if it.label == 0]
    picks = []
    for defect in sorted({it.defect for it in items if it.label == 1}):
        idx = sorted((i for i, it in enumerate(items) if it.defect == defect), key=lambda i: scores[i])
        picks += [(defect, "best", idx[-1])] + ([(defect, "worst", idx[0])] if len(idx) > 1 else [])
    model, _ = load_model(d, device)
    cases = []
    for defect, which, i in picks:
        x = torch.from_numpy(images[i].transpose(2, 0, 1).copy())[None].to(device)
        recon = S.reconstruct(model, x)[0].cpu().numpy().transpose(1, 2, 0)
        truth = (read_mask(items[i].mask_path, maps[i].shape) if items[i].mask_path is not None
                 else np.zeros(maps[i].shape, bool))
        cases.append(Case(f"{defect}\n{which},\n{_share_above(scores[i], good)}", images[i], truth, recon, maps[i]))
    return draw_gallery(cases, cal["threshold"], split.has_masks,
                        f"{ref.title}, {KINDS[kind]}: the best and the worst test image of each defect type "
                        f"(by image score)")


def gallery_from_samples(ref: Reference, kind: str = "ssae"):
    """:func:`gallery` drawn from the samples stored in the model folder when it was packed (the
    images, the model's reconstructions and calibrated maps, quantised to 8 bits), with the
    good test images the model scores highest and lowest as the last rows; None without samples."""
    from ssae.samples import has_samples, read_samples

    d = ref.models[kind]
    if not has_samples(d):
        return None
    samples, index = read_samples(d)
    ts = index["test_scores"]
    good = [s for s, label in zip(ts["score"], ts["labels"]) if label == 0]
    rows = []
    for s in samples:
        for why in s.chosen:
            defect, _, which = why.rpartition(": ")
            if s.label == 0 and which == "worst":
                which = "worst"
            rows.append((s.label == 0, defect, which, s))
    rows.sort(key=lambda r: (r[0], r[1], r[2] != "best"))
    seen, cases = set(), []
    for is_good, defect, which, s in rows:
        if s.name in seen:  # the only image of its type is its best and its worst: shown once
            continue
        seen.add(s.name)
        cases.append(Case(f"{defect}\n{which},\n{_share_above(s.score, good)}", s.image, s.mask,
                          s.reconstruction, s.anomaly_map))
    return draw_gallery(cases, index["threshold"], index["has_masks"],
                        f"{ref.title}, {KINDS[kind]}: the best and the worst test image of each defect type and "
                        f"of the good ones (by image score), from the model's stored samples (8-bit)")


def stored_image_scores(ref: Reference) -> dict[str, tuple[list[int], list[float]]]:
    """Test labels and calibrated image scores of each kept model as stored with its samples
    when it was packed (no blur reference); {} when no model has samples."""
    from ssae.samples import has_samples, read_index

    out = {}
    for kind, d in ref.models.items():
        if has_samples(d):
            ts = read_index(d)["test_scores"]
            out[KINDS[kind]] = (ts["labels"], ts["score"])
    return out


def data_note(ref: Reference) -> str:
    """Markdown said on a page whose data set is not on this machine."""
    return (f"The data set of this page is not on this machine, so its model was not evaluated in this "
            f"build: the numbers and curves below are those recorded when the model was trained and "
            f"packed. To evaluate it here, get {ref.source()} (relative to this repository: "
            f"`{ref.data}`), then rebuild the book or run "
            f"`ssae evaluate models/{ref.name}/ssae --data {ref.data}`.")


def recorded_results(ref: Reference) -> dict[str, dict[str, Any]]:
    return {kind: recorded(d) for kind, d in ref.models.items()}


#: targets for a trained reference model, by data set family (ours): image AUROC, pixel AUROC
TARGETS = {"aitex": (0.90, 0.95)}


#: the training time of a short run (ours): what a model reaches in 20 minutes on one core
SHORT_RUN_S = 1200


def _at_seconds(rows: list[dict], seconds: float) -> dict | None:
    """The last curve point reached within ``seconds`` of training, or None."""
    rows = [r for r in rows if r.get("train_seconds") is not None and r["train_seconds"] <= seconds]
    return rows[-1] if rows else None


def _moved(rows: list[dict], key: str) -> tuple[int, int, float] | None:
    """(first step, last step, change of ``key``) over the curve's last doubling of steps."""
    rows = [r for r in rows if r.get(key) is not None]
    if len(rows) < 2:
        return None
    last = rows[-1]
    earlier = [r for r in rows[:-1] if r["step"] <= last["step"] / 2] or rows[:1]
    first = earlier[-1]
    return first["step"], last["step"], last[key] - first[key]


def paper_scale(ref: Reference, m: dict) -> str | None:
    """For a copy of an MVTec AD category (a reference named ``mvtec-<category>``): the paper's
    own numbers for that category (Table 3 image AUROC, Table 2 pixel AUROC where this model has
    one; its method "Ours"), as printed, beside this model's; None for any other data set."""
    kind, _, category = ref.name.partition("-")
    if kind != "mvtec":
        return None
    category = category.replace("_", " ")
    pairs = []
    for table, key in ((3, "image_auroc"), (2, "pixel_auroc")):
        try:
            cell = paper_value(table, category)
        except KeyError:
            continue
        if m.get(key) is not None:
            pairs.append(f"{METRIC_NAMES[key]} {cell.text} % (Table {table}) against {100 * m[key]:.1f} % here")
    if not pairs:
        return None
    return (f"for scale only, the paper's own numbers on MVTec AD {category}: " + ", ".join(pairs)
            + "; not the same experiment (the paper trained at an input size it chose among 256, 384 and "
            "512 px, with the average heatmap of Section 4; this model trained on a resized copy on one CPU core)")


def verdict(ref: Reference, results: dict[str, dict] | None = None) -> str:
    """Markdown on one data set, generated from its numbers: a headline, then bullets on where
    the method ends against the plain autoencoder and the blur, the restoration check, the
    targets, what the hours of training added to a 20-minute run, and how far the method was
    still moving over the last doubling of its steps.
    ``results``: metrics per model kind (default: as recorded)."""
    results = results or recorded_results(ref)
    m = results.get("ssae")
    if m is None:
        return f"**{ref.title}:** no model of the method is kept for this data set."

    t = training(ref.models["ssae"])
    others = [("the plain autoencoder", results.get("plain")), ("the blur reference", blur(ref))]
    count = (f" on {m['n_test_images']} test images ({m['n_defective']} defective)"
             if m.get("n_test_images") and m.get("n_defective") is not None else "")
    keys = tuple(k for k in METRIC_NAMES if m.get(k) is not None)  # no pixel metrics without masks
    paper = (f" ({_f(m['image_auroc_paper_sum'])} with the paper's sum)"
             if m.get("image_auroc_paper_sum") is not None else " (the paper's sum not recorded)")
    lines = [f"**{ref.title}**, the method after {t['steps']:,} steps ({t['hours']:.1f} h on one CPU core){count}: "
             + ", ".join(f"{METRIC_NAMES[k]} {_f(m.get(k))}" + (" calibrated (ours)" + paper if k == "image_auroc" else "")
                         for k in keys) + "."]
    for other, o in others:
        if o is not None:
            lines.append(f"- against {other}: " + ", ".join(
                f"{VERDICT_KEYS.get(k, METRIC_NAMES.get(k))} {(m.get(k) or 0) - (o.get(k) or 0):+.3f}"
                for k in (*keys, "image_auroc_paper_sum") if m.get(k) is not None and o.get(k) is not None) + ";")
    spread = draws_text(ref.models["ssae"])
    if spread:
        lines.append(f"- {spread};")
    if m.get("restoration_pixel_auroc") is not None:
        lines.append(f"- {restoration_text(m)};")
    plain = results.get("plain") or {}
    if m.get("normal_error") and plain.get("normal_error"):
        lines.append(f"- on clean images its reconstructions err {m['normal_error'] / plain['normal_error']:.1f} "
                     f"times as much as the plain autoencoder's (mean squared error per pixel "
                     f"{m['normal_error']:.2g} against {plain['normal_error']:.2g});")
    target = TARGETS.get(ref.name.split("-", 1)[0])
    if target and m.get("pixel_auroc") is not None:
        img_ok, pix_ok = (m.get("image_auroc") or 0) >= target[0], m["pixel_auroc"] >= target[1]
        ahead = all(o is not None and (m.get(k) or 0) > (o.get(k) or 0)
                    for _, o in others for k in ("pixel_auroc", "aupro"))
        lines.append(f"- targets (ours): image AUROC ≥ {target[0]:.2f} {'met' if img_ok else 'not met'}; "
                     f"pixel AUROC ≥ {target[1]:.2f} {'met' if pix_ok else 'not met'}; ahead of both "
                     f"references on pixel AUROC and AUPRO: {'yes' if ahead else 'no'};")
    scale = paper_scale(ref, m)
    if scale:
        lines.append(f"- {scale};")
    rows = curve(ref.models["ssae"])
    early = _at_seconds(rows, SHORT_RUN_S)
    if early is not None and early["step"] < rows[-1]["step"]:
        lines.append(f"- at its last curve point within {SHORT_RUN_S // 60} minutes of training (step "
                     f"{early['step']:,}, {early['train_seconds'] / 60:.0f} min) it stood at "
                     + ", ".join(f"{METRIC_NAMES[k]} {_f(early.get(k))}" for k in keys if early.get(k) is not None)
                     + f"; by its last point (step {rows[-1]['step']:,}) these moved "
                     + ", ".join(f"{rows[-1][k] - early[k]:+.3f}" for k in keys
                                 if early.get(k) is not None and rows[-1].get(k) is not None) + ";")
    moved = {k: v for k in ("pixel_auroc", "image_auroc") if (v := _moved(rows, k))}
    first = next(iter(moved.values()), None)
    if first and (early is None or first[0] != early["step"]):
        a, z, _ = first
        lines.append(f"- from step {a:,} to step {z:,}: " + ", ".join(
            f"{METRIC_NAMES[k]} {v[2]:+.3f}" for k, v in moved.items() if v) + ".")
    if lines[-1].endswith(";"):
        lines[-1] = lines[-1][:-1] + "."
    return "\n".join(lines[:1] + [""] + lines[1:])


def overview(refs: list[Reference]) -> str:
    """One generated paragraph over every kept data set: on how many the method is ahead of the
    plain autoencoder and of the blur on each metric, how many image AUROC differences lie
    within the calibration's spread, and the AITEX targets counted over the fabrics."""
    pairs = {"the plain autoencoder": [], "the blur reference": []}
    unclear = within = 0
    for ref in refs:
        if "ssae" not in ref.models:
            continue
        m = recorded(ref.models["ssae"])
        plain = recorded(ref.models["plain"]) if "plain" in ref.models else None
        for other, o in (("the plain autoencoder", plain), ("the blur reference", blur(ref))):
            if o is not None:
                pairs[other].append((m, o))
        mine, theirs = draws(ref.models["ssae"]), draws(ref.models["plain"]) if plain else []
        if mine and theirs:
            unclear += 1
            lo = max(min(r["image_auroc"] for r in mine), min(r["image_auroc"] for r in theirs))
            hi = min(max(r["image_auroc"] for r in mine), max(r["image_auroc"] for r in theirs))
            within += lo <= hi
    n = sum(1 for r in refs if "ssae" in r.models)
    if not n:
        return ""
    parts = []
    for other, got in pairs.items():
        if got:
            parts.append(f"ahead of {other} on " + ", ".join(
                f"{name} in {sum((m.get(k) or 0) > (o.get(k) or 0) for m, o in got if m.get(k) is not None)}"
                f" of {sum(1 for m, o in got if m.get(k) is not None and o.get(k) is not None)}"
                for k, name in METRIC_NAMES.items() if any(m.get(k) is not None and o.get(k) is not None for m, o in got)))
    hours = sorted(training(r.models["ssae"])["hours"] for r in refs if "ssae" in r.models)
    span = f"{hours[0]:.1f} h" if f"{hours[0]:.1f}" == f"{hours[-1]:.1f}" else f"{hours[0]:.1f}–{hours[-1]:.1f} h"
    text = (f"**Over the {n} data set{'s' if n > 1 else ''} with a kept model**, the method (objective (1), "
            f"trained for {span} on one CPU core) is " + "; ".join(parts) + ".")
    if unclear:
        text += (f" On {within} of {unclear}, the image AUROC ranges of the method and the plain autoencoder "
                 "over draws of the validation proxy overlap: there the calibration's chance alone can "
                 "reverse their order.")
    fabrics = [recorded(r.models["ssae"]) for r in refs if r.name.startswith("aitex") and "ssae" in r.models]
    if fabrics:
        img, pix = TARGETS["aitex"]
        text += (f" Targets (ours) on the AITEX fabrics: image AUROC ≥ {img:.2f} on "
                 f"{sum((m.get('image_auroc') or 0) >= img for m in fabrics)} of {len(fabrics)}, pixel AUROC "
                 f"≥ {pix:.2f} on {sum((m.get('pixel_auroc') or 0) >= pix for m in fabrics)} of {len(fabrics)} "
                 "(wanted: the image AUROC on every fabric, the pixel AUROC on at least two of the three).")
    return text


def glance_markdown(refs: list[Reference]) -> str:
    """README.md's compact results table (Markdown) of the kept models, from their recorded
    numbers: per data set the test metrics of the method, the plain autoencoder and the blur
    reference, the calibrated image AUROC beside the paper's sum; one line below says how the
    models were trained. The book's pages have the rest (training, spreads, restoration check)."""
    if not refs:
        return "_No trained reference model is kept in `models/` yet._"
    lines = ["| data set | model | image AUROC, calibrated | image AUROC, paper's sum | pixel AUROC | AUPRO |",
             "| --- | --- | --- | --- | --- | --- |"]
    hardware, hours, precision = set(), [], set()
    for ref in refs:
        size = RunDir(next(iter(ref.models.values()))).read_config()[0].data.image_size
        rows = []
        for kind, d in ref.models.items():
            t = training(d)
            hardware.add(t["hardware"])
            hours.append(t["hours"])
            precision.add(t["precision"] or "fp32")
            rows.append((GLANCE_KINDS[kind], recorded(d)))
        b = blur(ref)
        if b:
            rows.append(("blur", b))
        for i, (name, m) in enumerate(rows):
            title = f"{short_title(ref)}, {size_text(size)}" if i == 0 else ""
            lines.append(f"| {title} | {name} | {_f(m.get('image_auroc'))} | {_f(m.get('image_auroc_paper_sum'))} | "
                         f"{_f(m.get('pixel_auroc'))} | {_f(m.get('aupro'))} |")
    span = f"{min(hours):.1f}" if f"{min(hours):.1f}" == f"{max(hours):.1f}" else f"{min(hours):.1f}-{max(hours):.1f}"
    lines += ["", f"Each trained model ran {span} h ({', '.join(sorted(precision))}) on one core of "
              + "; ".join(sorted(h for h in hardware if h)) + ". Calibrated: the image score chosen on validation "
              "images; paper's sum: the sum of eq. (3)'s map. The paper reports none of these data sets."]
    return "\n".join(lines)


def image_scores(ref: Reference, device: str = "cpu") -> dict[str, tuple[list[int], list[float]]]:
    """Test labels and image scores (each model's calibrated reduction) of every kept model and
    of the blur reference, calibrated like the method; needs the data on this machine."""
    from ssae import scoring as S
    from ssae.calibration import calibrate_model
    from ssae.evaluation import load_run, model_maps
    from ssae.references import BlurReference

    def scored(model, cfg, split, cal, stats):
        t = model_maps(model, cfg, split, cal, stats, device, progress=False)
        return [it.label for it in t.items], S.image_scores(t.maps)[cal["reduce"]]

    out = {}
    cfg = split = None
    for kind, d in ref.models.items():
        model, cfg, split, cal, stats = load_run(d, str(ref.data_path()), device)
        out[KINDS[kind]] = scored(model, cfg, split, cal, stats)
    if cfg is not None:
        blur_model = BlurReference(4.0).to(device).eval()
        out["blur reference"] = scored(blur_model, cfg, split, *calibrate_model(blur_model, cfg, split, device))
    return out


def fpr_at_recall(labels, scores, recall: float = 0.95) -> float:
    """The smallest false-positive rate at which at least ``recall`` of the defective images
    are found (a threshold an inspection line could run at)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    return float(fpr[np.argmax(tpr >= recall)])


def roc_figure(ref: Reference, scores: dict[str, tuple[list[int], list[float]]]):
    """Image-level ROC curves of the kept models and the blur reference, with the false-positive
    rate at 95 % recall in the legend."""
    from .plots import figure
    from sklearn.metrics import roc_auc_score, roc_curve

    fig = figure(4.8, 4.2)
    ax = fig.subplots()
    for i, (name, (labels, s)) in enumerate(scores.items()):
        fpr, tpr, _ = roc_curve(labels, s)
        ax.plot(fpr, tpr, color=f"C{i}" if name != "blur reference" else "0.4",
                ls="--" if name == "blur reference" else "-",
                label=f"{name}: AUROC {roc_auc_score(labels, s):.3f}, FPR@95% {fpr_at_recall(labels, s):.2f}")
    ax.axhline(0.95, color="0.7", lw=0.8, ls=":")
    ax.plot([0, 1], [0, 1], color="0.85", lw=0.8)
    ax.set_xlabel("false-positive rate (good images flagged)")
    ax.set_ylabel("recall (defective images found)")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"{ref.title}: image-level ROC", fontsize=10)
    return fig


#: the bf16 check behind the kept models (benchmarks/precision.py --quality --json)
PRECISION = REPO / "benchmarks" / "results" / "precision_aitex-fabric01.json"
_PRECISION_KEYS = {"restoration_pixel_auroc": "restoration check", **METRIC_NAMES}


def precision_check(path: str | Path = PRECISION) -> tuple[list[Table], str]:
    """Why the kept models trained under bf16 autocast: training steps per second in float32
    and bf16 side by side, and float32 and bf16 models of the same seeds at equal steps, with
    their mean paired difference against the float32 models' spread over seeds (the rule of
    ``benchmarks/precision.py``). Tables and generated text; no tables when the file is missing."""
    doc = _read(Path(path))
    if doc is None:
        return [], f"The bf16 check has not been run here (`{Path(path).name}` is missing)."
    hw = recorded_hardware(doc["hardware"])
    speed = Table(f"Training steps per second on one thread ({hw})",
                  ["crop", "batch", "float32 steps/s", "bf16 steps/s", "bf16 / float32"],
                  [[f"{r['crop']} px", str(r["batch"]), f"{r['fp32_steps_per_s']:.2f}",
                    f"{r['bf16_steps_per_s']:.2f}", f"{r['speedup']:.2f}"] for r in doc["speed"]],
                  notes=["The `cpu`-profile network (Table 1 at width 1/4), float32 and bf16 steps timed "
                         "alternately in one process: the network alone, no data loading."])
    ratios = [r["speedup"] for r in doc["speed"]]
    text = (f"On one thread ({hw}), bf16 autocast runs {min(ratios):.2f}–{max(ratios):.2f} times as many "
            f"training steps per second as float32.")
    q = doc.get("quality") or []
    if not q:
        return [speed], text + " The paired quality check was not run."
    data = Path(doc.get("data", ""))
    where = f"AITEX {data.name}" if data.parent.name == "aitex" else (data.name or "its data")
    rows = [[str(r["seed"]), r["model"].replace("fp32", "float32"), f"{r['train_seconds']:.0f}",
             *(_f(r.get(k)) for k in _PRECISION_KEYS)] for r in sorted(q, key=lambda r: (r["seed"], r["model"] != "fp32"))]
    p = doc["paired"]
    rows.append(["all", "bf16 − float32", "", *(f"{p[k]['mean_diff']:+.3f} ± {p[k]['sd_diff']:.3f}" for k in _PRECISION_KEYS)])
    rows.append(["all", "float32 spread over seeds", "", *(f"{p[k]['seed_sd']:.3f}" for k in _PRECISION_KEYS)])
    steps, crop, draws_n = q[0]["steps"], q[0]["crop"], q[0].get("draws")
    quality = Table(f"float32 against bf16 at {steps:,} steps, {crop} px crops of {where}",
                    ["seed", "precision", "training s", *_PRECISION_KEYS.values()], rows,
                    notes=[f"Each pair shares its seed, initial weights and data stream; all models evaluated "
                           f"in float32, each metric the mean over {draws_n} calibrations. Recorded {doc.get('date', '')[:10]}."])
    secs = {m: sum(r["train_seconds"] for r in q if r["model"] == m) for m in ("fp32", "bf16")}
    off = [name for k, name in _PRECISION_KEYS.items() if not p[k]["within"]]
    text += (f" In the whole training loop, data loading and corruption included, the {len(q) // 2} pairs of "
             f"{steps:,}-step runs took {secs['fp32'] / secs['bf16']:.2f} times as long in float32. At equal steps, "
             "bf16 minus float32 is " + ", ".join(
                 f"{p[k]['mean_diff']:+.3f} on the {name}" for k, name in _PRECISION_KEYS.items()) + "; "
             + (f"each difference lies within the float32 models' spread over seeds, so training in bf16 "
               f"costs nothing this check can see; with {len(q) // 2} seeds it cannot see a cost smaller than "
               "that spread." if not off else
                f"on the {', '.join(off)} the difference exceeds the float32 models' spread over seeds."))
    return [speed, quality], text


#: how the reference models' thresholds hold on images the calibration never saw
#: (benchmarks/thresholds.py --json)
THRESHOLDS = REPO / "benchmarks" / "results" / "thresholds.json"


def concentrated_alarms(row: dict, worst_good: str | None = None) -> str:
    """A sentence when most of a model's flagged good test images are tiles of one photograph
    (``good_flagged_sources`` of ``benchmarks/thresholds.py``), with the share flagged among the
    other photographs' tiles; '' otherwise. ``worst_good``: the stored sample name of the good
    test image the model scores highest (the gallery's last row), named when it is one of them."""
    sources = row.get("good_flagged_sources") or {}
    flagged = sum(n for n, _ in sources.values())
    if not sources or flagged < 2:
        return ""
    top, (n, tiles) = max(sources.items(), key=lambda kv: kv[1][0])
    if 2 * n <= flagged:
        return ""
    rest = (flagged - n) / max(row["n_good_test"] - tiles, 1)
    return (f" On {row['model']}, {n} of the {flagged} flagged good test images are tiles of one photograph "
            f"(`{top}`: {n} of its {tiles} tiles), one of the {row.get('n_good_sources', '?')} that the good test "
            f"images were cut from; of the other photographs' tiles it flags {100 * rest:.1f} %."
            + (f" The gallery's last row below, `{worst_good}`, the good test image it scores highest, is one "
               f"of them: judge there whether it shows an irregularity that the data set calls good."
               if worst_good and Path(worst_good).stem.startswith(top) else ""))


def worst_good_sample(model_dir) -> str | None:
    """The name of the stored sample chosen as the good test image the model scores highest
    (``good: worst``), None without samples."""
    from ssae.samples import has_samples, read_index

    if not has_samples(model_dir):
        return None
    return next((s["name"] for s in read_index(model_dir)["samples"] if "good: worst" in s["chosen"]), None)


def threshold_check(ref: Reference, path: str | Path = THRESHOLDS) -> str:
    """What ``benchmarks/thresholds.py`` measured for this reference's models at their calibrated
    thresholds, one sentence per model; says so when they were not measured."""
    path = Path(path)
    doc = json.loads(path.read_text()) if path.is_file() else {"rows": []}
    rows = {r["model"]: r for r in doc["rows"]}
    pct = lambda v, d=1: "n/a" if v is None else f"{100 * v:.{d}f} %"  # noqa: E731
    out, dates = [], []
    for kind in ref.models:
        r = rows.get(f"{ref.name}/{kind}")
        name = SHORT_KINDS.get(kind, kind)
        if r is None:
            out.append(f"The {name}'s thresholds were not measured (`python benchmarks/thresholds.py`).")
            continue
        s = (f"At its calibrated image threshold the {name} flags {pct(r['good_above'])} of the "
             f"{r['n_good_test']} good test images and {pct(r['train_above'])} of the {r['n_train']} training "
             f"images, and finds {pct(r['defective_above'])} of the {r['n_defective']} defective ones")
        if r.get("mask_area_true") is not None:
            s += (f"; its masks cover a median {pct(r['mask_area_predicted'], 2)} of a defective image (true "
                  f"defects: {pct(r['mask_area_true'], 2)}) and {pct(r['mask_area_good'], 2)} of a good one")
        out.append(s + "." + concentrated_alarms(r, worst_good_sample(ref.models[kind]) if kind == "ssae" else None))
        dates.append(str(r.get("date", doc.get("date", "")))[:10])
    when = ", ".join(sorted(set(dates)))
    return " ".join(out) + (f" (`benchmarks/thresholds.py`, {when}, {doc.get('hardware', '')}.)" if dates else "")


def thresholds_text(path: str | Path = THRESHOLDS) -> str:
    """What ``benchmarks/thresholds.py`` measured on the kept models, in words: the share of
    training images and of good test images above each model's image threshold, and the mask
    areas on defective images; a sentence saying it was not measured when the file is missing."""
    path = Path(path)
    if not path.is_file():
        return (f"How often the thresholds of the reference models flag clean images has not been measured "
                f"here (`benchmarks/thresholds.py --json {path.name}` measures it).")
    doc = json.loads(path.read_text())
    rows = [r for r in doc["rows"] if r.get("good_above") is not None and r.get("train_above") is not None]
    if not rows:
        return "The kept measurement of the reference models' thresholds holds no model."
    pct = lambda v: f"{100 * v:.1f} %"  # noqa: E731
    worst_good = max(rows, key=lambda r: r["good_above"])
    worst_train = max(rows, key=lambda r: r["train_above"])
    masked = [r for r in rows if r.get("mask_area_true") is not None and r.get("mask_area_predicted") is not None]
    found = [r["defective_above"] for r in rows if r.get("defective_above") is not None]
    over = [r for r in masked if r["mask_area_predicted"] > 2 * r["mask_area_true"]]
    text = (f"Measured on the {len(rows)} reference models kept in `models/` (`benchmarks/thresholds.py`, "
            f"{str(doc.get('date', ''))[:10]}): the image threshold flagged at most {pct(worst_train['train_above'])} "
            f"of a model's training images ({worst_train['model']}), clean images from the same folder as the "
            f"validation images that the calibration never saw, and between {pct(min(r['good_above'] for r in rows))} "
            f"and {pct(worst_good['good_above'])} of a model's good test images (the most: {worst_good['model']}); "
            f"{sum(r['good_above'] <= 0.05 for r in rows)} of the {len(rows)} models flag at most 5 % of them. "
            + (f"The same thresholds flag between {pct(min(found))} and {pct(max(found))} of a model's defective "
               f"test images (median {pct(float(np.median(found)))}): a threshold that few clean images cross "
               f"lets defects that score like clean images pass. " if found else "") +
            f"Where more good test images than training images cross it, the test folder's good images "
            f"score unlike the training folder's, which no validation image can show.")
    text += concentrated_alarms(worst_good)
    area = lambda v: f"{100 * v:.2f} %"  # noqa: E731
    if masked:
        text += (f" On defective test images the binary masks cover a median share of the image at most twice "
                 f"that of the true defect masks on {len(masked) - len(over)} of {len(masked)} models with masks"
                 + (f"; more on {', '.join(r['model'] for r in over)} (e.g. "
                    f"{area(over[0]['mask_area_predicted'])} against {area(over[0]['mask_area_true'])})" if over else "")
                 + ".")
    return text


# --------------------------------------------------------------------------- the intro's verdict box

#: the two image scores the pages show side by side, by metrics key
IMAGE_SCORES = {"image_auroc": "calibrated (ours)", "image_auroc_paper_sum": "paper's sum"}
#: the comparisons of the verdict, by metrics key
VERDICT_KEYS = {"pixel_auroc": "pixel AUROC", "aupro": "AUPRO", "image_auroc": "image AUROC (ours)",
                "image_auroc_paper_sum": "image AUROC (paper's sum)"}
SHORT_KINDS = {"ssae": "method", "plain": "plain AE"}
#: the paper profile's training (Sec. 4.1: 512 px on the textures, Table 1 at full width)
PAPER_SIZE = 512


def image_auroc_cells(m: dict | None) -> tuple[str, str]:
    """The image AUROC of a metrics dict with the calibrated score and with the paper's sum."""
    m = m or {}
    return _f(m.get("image_auroc")), _f(m.get("image_auroc_paper_sum"))


def short_title(ref: Reference) -> str:
    kind, _, rest = ref.name.partition("-")
    return {"aitex": f"AITEX {rest}", "mtd": "MTD", "mvtec": f"MVTec AD {rest} (copy)"}.get(kind, ref.name)


def standing(m: dict, o: dict | None, name: str = "it", keys=tuple(VERDICT_KEYS)) -> str:
    """'ahead of NAME on pixel AUROC and AUPRO, behind it on image AUROC (ours)' for the method's
    metrics ``m`` against another model's ``o`` (called ``name``), over the metrics both have
    ('' when they share none)."""
    if o is None:
        return ""
    both = [k for k in keys if m.get(k) is not None and o.get(k) is not None]
    ahead = [VERDICT_KEYS[k] for k in both if m[k] > o[k]]
    behind = [VERDICT_KEYS[k] for k in both if m[k] <= o[k]]

    def join(names):
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    if not both:
        return ""
    if not behind or not ahead:
        word = f"ahead of {name}" if not behind else f"behind {name}"
        return f"{word} on {join(ahead or behind)}" if len(both) < 3 else f"{word} on every metric"
    return f"ahead of {name} on {join(ahead)}, behind it on {join(behind)}"


def verdict_sentence(ref: Reference) -> str:
    """One sentence on a data set's kept method: its training, whether it passed the restoration
    check, and where it stands against the plain autoencoder and the blur reference."""
    if "ssae" not in ref.models:
        return f"**{ref.title}**: no model of the method is kept."
    m, t = recorded(ref.models["ssae"]), training(ref.models["ssae"])
    size = RunDir(ref.models["ssae"]).read_config()[0].data.image_size
    check = m.get("restoration_pixel_auroc")
    passed = ("no restoration check recorded" if check is None else
              f"restoration check {'passed' if check >= RESTORATION_MIN else '**not** passed'} ({check:.2f})")
    parts = []
    for name, o in (("the plain autoencoder", recorded(ref.models["plain"]) if "plain" in ref.models else None),
                    ("the blur reference", blur(ref))):
        s = standing(m, o, name)
        if s:
            parts.append(s)
    masks = "" if m.get("pixel_auroc") is not None else "; no masks, so image-level metrics only"
    return (f"**{ref.title}** ({size} px, {t['hours']:.1f} h): {passed}; "
            + ("; ".join(parts) if parts else "nothing kept to compare it with") + masks + ".")


def compact_table(refs: list[Reference]) -> str:
    """The verdict box's results table (Markdown in a ``{table}`` directive of class
    ``ssae-verdict``, narrow enough for the text column): per data set and model, the
    restoration check, pixel AUROC, AUPRO and the image AUROC with both image scores."""
    lines = ["```{table} Recorded test metrics of the kept models (" + PAPER_SUM_LABEL + ")",
             ":class: ssae-verdict", "",
             "| data set | model | restoration check | pixel AUROC | AUPRO | image AUROC, calibrated (ours) "
             "| image AUROC, paper's sum |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for ref in refs:
        rows = [(SHORT_KINDS[k], recorded(d)) for k, d in ref.models.items()]
        b = blur(ref)
        if b:
            rows.append(("blur", b))
        for i, (name, m) in enumerate(rows):
            cal, paper = image_auroc_cells(m)
            check = _f(m.get("restoration_pixel_auroc"), 2) if name != "blur" else "–"
            lines.append(f"| {short_title(ref) if i == 0 else ''} | {name} | {check} | {_f(m.get('pixel_auroc'))} "
                         f"| {_f(m.get('aupro'))} | {cal} | {paper} |")
    lines.append("```")
    return "\n".join(lines)


#: how the verdict table and the README name the two image scores
PAPER_SUM_LABEL = ("image AUROC: *calibrated (ours)* is the image score the calibration chose on validation "
                   "images, *paper's sum* the sum of eq. (3)'s map at the calibrated n and k, unstandardised")


def verdict_box(refs: list[Reference], results: list[dict] | None = None) -> str:
    """The box at the top of the intro: what this reproduction did and did not reproduce (and
    why), one sentence per kept model's data set, and a compact results table; generated from
    ``models/`` and from this build's results (``results``: the tables chapter's results of this
    build and the kept GPU results, :func:`ssae_book.tables.load_results`)."""
    from .tables import OBJECTS, TEXTURES, mvtec_results

    results = results or []
    mv = mvtec_results(results)
    gpu = [r for r in results if r.get("status", "ok") == "ok" and r.get("profile") == "paper"
           and "cuda" in str(r.get("device", "")).lower()]
    with_model = [r for r in refs if "ssae" in r.models]
    hours = sorted({f"{training(r.models['ssae'])['hours']:.1f}" for r in with_model})
    span = f"{hours[0]} h" if len(hours) == 1 else f"{hours[0]}–{hours[-1]} h"
    lines = ["::::{admonition} In short: what was reproduced, and what was not", ":class: important", ""]
    widths = sorted({RunDir(r.models["ssae"]).read_config()[0].model.width for r in with_model})
    width = ("a quarter of its width" if widths == [0.25] else "its full width" if widths == [1.0] else
             "width " + ", ".join(f"{w:g}" for w in widths))
    if with_model:
        lines.append(
            f"**Reproduced:** the paper's method end to end (the network of Table 1 at {width}, "
            f"objective (1) on images corrupted as in Section 3.2, the anomaly maps of eqs. (2) and (3)), "
            f"trained for {span} per model on one CPU core on {len(with_model)} real data set"
            f"{'s' if len(with_model) > 1 else ''} with defect images: "
            + ", ".join(r.title for r in with_model) + "; and the theory of Section 3.4, checked numerically.")
    else:
        lines.append("**Reproduced:** the method and the theory of Section 3.4 on this build's data only; no "
                     "trained reference model is kept in `models/`.")
    lines.append("")
    missing_tex = [c for c in TEXTURES if c not in mv]
    missing_obj = [c for c in OBJECTS if c not in mv]
    why = []
    if missing_tex:
        why.append("the MVTec AD textures are not on the machine that built this book"
                   if len(missing_tex) == len(TEXTURES) else
                   f"the MVTec AD textures {', '.join(missing_tex)} are not on this machine")
    if "bottle" in missing_obj and any(r.name == "mvtec-bottle" for r in refs):
        why.append("the bottle is here only as a copy resized to 256 px without masks, which cannot fill "
                   "the paper's rows")
    if not gpu:
        why.append(f"no paper-profile run ({PAPER_SIZE} px, the full-width network, on a GPU) has been made, so "
                   f"every model here is a network at {width} trained for {span} on one CPU core")
    got = len(mv)
    lines.append(f"**Not reproduced:** the paper's MVTec AD numbers (Tables 2–4): {got} of "
                 f"{len(TEXTURES) + len(OBJECTS)} categories measured in this build"
                 + (", because " + "; ".join(why) if why else "") + ". The paper's own numbers stand beside "
                 "every measured cell in the chapter on Tables 2, 3 and 4, labelled as the paper's.")
    if with_model:
        lines += ["", "What each trained model of the method shows (a restoration check of "
                  f"{RESTORATION_MIN:g} or more, passed, says that its maps find the corruptions it was trained on):", ""]
        lines += [f"- {verdict_sentence(r)}" for r in with_model]
        lines += ["", compact_table(refs)]
    lines.append("::::")
    return "\n".join(lines)
