"""Tables 2, 3 and 4 of the paper beside the numbers this reproduction measured.

The paper's numbers live in ``paper_results.csv`` next to this module, one row per cell
(columns ``table, category, method, metric, value``), transcribed from the paper's text:

- Table 2: pixel-level AUROC on MVTec AD, 13 methods, 15 categories and 3 averages;
- Table 3: image-level AUROC on MVTec AD, same layout;
- Table 4: objective (1) against objective (4) on the textures, image- and pixel-level,
  plus the pixel-wise maximum ensemble ("Ens.").

Our results are the JSON files written by the evaluation notebook (one per category that was
run, see :func:`ssae_book.book.write_result`) and, optionally, the files kept in ``book/gpu_results/``
from a paper-profile run on a GPU.

Honesty rule: a reproduced number is placed in an MVTec AD row only when it was measured on
real MVTec AD data of that category with its ground-truth masks (see :func:`classify`).
Results on the embedded look-alike textures, on Magnetic Tile Defects or on the resized bottle
copy without masks go into :func:`substitute_table`, which is labelled as not comparable.
"""
from __future__ import annotations

import csv
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

PAPER_CSV = Path(__file__).with_name("paper_results.csv")

#: hardware strings of result rows recorded before the CPU's name was part of them
#: (:func:`ssae.hardware.hardware`), with the name: they all ran on this 2-core AMD EPYC
NAMED_HARDWARE = {"CPU x86_64, 2 cores, torch 2.13.0+cpu": "CPU: AMD EPYC (x86_64, 2 cores), torch 2.13.0+cpu"}


def recorded_hardware(label: str) -> str:
    """A result row's hardware label as shown: older rows' labels named (:data:`NAMED_HARDWARE`)."""
    return NAMED_HARDWARE.get(label, label)

#: Column order of Tables 2 and 3 (reference numbers as printed in the paper).
METHODS = ("AnoGAN", "CNNFD", "VAE", "AE_SSIM", "FCDD", "LSR", "RIAD", "CutPaste", "InTra",
           "DRAEM", "PatchCore", "PNI", "Ours")
METHOD_REFS = {"AnoGAN": 6, "CNNFD": 7, "VAE": 9, "AE_SSIM": 2, "FCDD": 48, "LSR": 3, "RIAD": 74,
               "CutPaste": 49, "InTra": 50, "DRAEM": 51, "PatchCore": 10, "PNI": 52}
TEXTURES = ("carpet", "grid", "leather", "tile", "wood")
OBJECTS = ("bottle", "cable", "capsule", "hazelnut", "metal nut", "pill", "screw", "toothbrush",
           "transistor", "zipper")
AVERAGES = {"avg. textures": TEXTURES, "avg. objects": OBJECTS, "avg. all": TEXTURES + OBJECTS}
#: Row order of Tables 2 and 3.
ROWS_2_3 = TEXTURES + ("avg. textures",) + OBJECTS + ("avg. objects", "avg. all")
#: Row order of Table 4 (textures only).
ROWS_4 = TEXTURES + ("avg. all",)
#: Columns of Table 4: (method, metric, heading).
COLUMNS_4 = (("Obj. (1)", "image_auroc", "image-level, Obj. (1)"),
             ("Obj. (4)", "image_auroc", "image-level, Obj. (4)"),
             ("Obj. (1)", "pixel_auroc", "pixel-level, Obj. (1)"),
             ("Obj. (4)", "pixel_auroc", "pixel-level, Obj. (4)"),
             ("Ens.", "pixel_auroc", "pixel-level, Ens."))
TABLE_METRIC = {2: "pixel_auroc", 3: "image_auroc"}
TABLE_TITLE = {
    2: "Table 2: anomaly segmentation, pixel-level AUROC (%) on MVTec AD",
    3: "Table 3: anomaly recognition, image-level AUROC (%) on MVTec AD",
    4: "Table 4: objective (1) against objective (4), AUROC (%) on the MVTec AD textures",
}
NOT_RUN = "not run"
GPU_NOT_RUN = "paper profile not run on a GPU yet"


# --------------------------------------------------------------------------- the paper

@dataclass(frozen=True)
class PaperCell:
    table: int
    category: str
    method: str
    metric: str
    value: float
    text: str          # as printed in the paper, e.g. "99.7" or "100"


def load_paper_results(path: str | Path | None = None) -> list[PaperCell]:
    """Every cell of Tables 2, 3 and 4 as transcribed in ``paper_results.csv``."""
    path = Path(path) if path is not None else PAPER_CSV
    cells = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            cells.append(PaperCell(int(row["table"]), row["category"], row["method"], row["metric"],
                                   float(row["value"]), row["value"]))
    return cells


def paper_value(table: int, category: str, method: str = "Ours", metric: str | None = None,
                cells: list[PaperCell] | None = None) -> PaperCell:
    """The paper's cell; ``metric`` defaults to the table's metric (Table 4 needs it)."""
    metric = metric or TABLE_METRIC.get(table)
    for c in cells if cells is not None else _paper_cells():
        if c.table == table and c.category == category and c.method == method and c.metric == metric:
            return c
    raise KeyError(f"no paper cell for table {table}, {category!r}, {method!r}, {metric!r}")


_CACHE: list[PaperCell] | None = None


def _paper_cells() -> list[PaperCell]:
    global _CACHE
    if _CACHE is None:
        _CACHE = load_paper_results()
    return _CACHE


# --------------------------------------------------------------------------- display

@dataclass
class Table:
    """A small table of strings that renders as HTML in a notebook (and as Markdown)."""
    title: str
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    notes: list[str] = field(default_factory=list)
    css_class: str = "ssae-table"

    def column(self, name: str) -> list[str]:
        i = self.columns.index(name)
        return [r[i] for r in self.rows]

    def row(self, first: str) -> dict[str, str]:
        """The row whose first cell is ``first``, as {column: cell}."""
        for r in self.rows:
            if r[0] == first:
                return dict(zip(self.columns, r))
        raise KeyError(first)

    def rows_where(self, **match: str) -> list[dict[str, str]]:
        out = []
        for r in self.rows:
            d = dict(zip(self.columns, r))
            if all(d.get(k) == v for k, v in match.items()):
                out.append(d)
        return out

    def to_html(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{esc(c)}</th>" for c in self.columns)
        body = []
        for r in self.rows:
            cells = []
            for c in r:
                cls = ' class="ssae-not-run"' if c.startswith(NOT_RUN) else ""
                cells.append(f"<td{cls}>{esc(c)}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        parts = [f'<div class="{self.css_class}-wrap">']
        if self.title:
            parts.append(f'<p class="{self.css_class}-title"><strong>{esc(self.title)}</strong></p>')
        parts.append(f'<table class="{self.css_class}">')
        if self.caption:
            parts.append(f"<caption>{esc(self.caption)}</caption>")
        parts.append(f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
        for n in self.notes:
            parts.append(f'<p class="{self.css_class}-note">{esc(n)}</p>')
        parts.append("</div>")
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_markdown(self) -> str:
        def line(cells):
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
        out = []
        if self.title:
            out.append(f"**{self.title}**\n")
        out.append(line(self.columns))
        out.append("|" + "|".join(" --- " for _ in self.columns) + "|")
        out.extend(line(r) for r in self.rows)
        if self.caption:
            out.append(f"\n{self.caption}")
        out.extend(f"\n{n}" for n in self.notes)
        return "\n".join(out)

    def __str__(self) -> str:
        return self.to_markdown()


def method_heading(method: str) -> str:
    ref = METHOD_REFS.get(method)
    return f"{method} [{ref}]" if ref else method


def paper_table(table: int) -> Table:
    """The paper's Table 2 or 3 with all 13 methods, or Table 4, exactly as transcribed."""
    cells = _paper_cells()
    if table in (2, 3):
        metric = TABLE_METRIC[table]
        rows = [[cat] + [paper_value(table, cat, m, metric, cells).text for m in METHODS]
                for cat in ROWS_2_3]
        return Table(TABLE_TITLE[table] + " (as published)",
                     ["Category"] + [method_heading(m) for m in METHODS], rows,
                     caption="Transcribed from the paper; 'Ours' is the paper's method.")
    if table == 4:
        rows = [[cat] + [paper_value(4, cat, m, metric, cells).text for m, metric, _ in COLUMNS_4]
                for cat in ROWS_4]
        return Table(TABLE_TITLE[4] + " (as published)", ["Category"] + [h for _, _, h in COLUMNS_4],
                     rows, caption="Transcribed from the paper.")
    raise ValueError(f"the paper has Tables 2, 3 and 4, not {table!r}")


# --------------------------------------------------------------------------- our results

@dataclass(frozen=True)
class DataKind:
    kind: str          # "mvtec" | "mvtec-copy" | "mtd" | "embedded" | "other"
    category: str      # paper category name for MVTec-layout data ("metal nut"), else the data name
    label: str         # what was run, in words


def load_results(*dirs: str | Path | None) -> list[dict[str, Any]]:
    """Read every ``*.json`` result in the given folders (missing folders are skipped).

    Each result gets ``_source`` (the file it came from). Files that are not result objects
    (no ``data_spec``) are skipped.
    """
    out = []
    for d in dirs:
        if d is None:
            continue
        d = Path(d)
        if not d.is_dir():
            continue
        for p in sorted(d.glob("*.json")):
            try:
                r = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(r, dict) and "data_spec" in r:
                r = dict(r)
                r["_source"] = str(p)
                out.append(r)
    return out


#: the kept reference models (``ssae_book.models``)
MODELS = Path(__file__).resolve().parents[2] / "models"
REFERENCE = "kept reference model"


def reference_results(models_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """The test metrics recorded for the kept reference models of the method
    (``models/<name>/ssae/metrics.json``), as result rows: each with ``_source`` naming its
    folder and ``_reference`` set; the plain autoencoders are not the paper's method and are left out."""
    root = Path(models_dir) if models_dir else MODELS
    out = []
    for p in sorted(root.glob("*/ssae/metrics.json")) if root.is_dir() else []:
        r = json.loads(p.read_text(encoding="utf-8"))
        r.update({"_source": f"models/{p.parent.parent.name}/ssae", "_reference": True, "status": "ok",
                  "has_masks": r.get("pixel_auroc") is not None})
        out.append(r)
    return out


def source_text(result: dict[str, Any]) -> str:
    """Where a result row comes from: a kept reference model, a kept GPU result or this build."""
    if result.get("_reference"):
        return f"{REFERENCE} ({result['_source']})"
    return "kept GPU result" if "gpu_results" in str(result.get("_source", "")) else "this build"


def _has_masks(result: dict[str, Any]) -> bool:
    if "has_masks" in result:
        return bool(result["has_masks"])
    return result.get("pixel_auroc") is not None


def classify(result: dict[str, Any]) -> DataKind:
    """What data a result was measured on.

    Only an MVTec-layout folder named after a paper category *with* ground-truth masks counts
    as MVTec AD (``kind == "mvtec"``). The same layout without masks (such as the resized
    bottle copy in ``../shared/data``) is ``mvtec-copy`` and never enters the MVTec AD rows.
    """
    spec = str(result.get("data_spec", ""))
    dataset = str(result.get("dataset", ""))
    size = result.get("image_size")
    if spec.startswith("embedded:"):
        cat = spec.split(":", 1)[1]
        return DataKind("embedded", spec, f"embedded look-alike '{cat}' (generated, not MVTec AD)")
    path = Path(spec)
    name = path.name.lower()
    if dataset.lower() == "mtd" or name in ("mtd", "magnetic-tile-defect-datasets") \
            or (path / "MT_Free").is_dir():
        return DataKind("mtd", "mtd", "Magnetic Tile Defects (DifferNet split)")
    cat = name.replace("_", " ")
    if cat in TEXTURES + OBJECTS:
        if _has_masks(result):
            return DataKind("mvtec", cat, f"MVTec AD {cat}")
        return DataKind("mvtec-copy", cat,
                        f"MVTec AD {cat} images, resized copy without masks ({size_text(size)})")
    title = f"AITEX {name}" if path.parent.name.lower() == "aitex" else (dataset or name or spec)
    return DataKind("other", dataset or name or spec, f"{title} (not part of the paper)")  # never the path


def _pct(v: Any) -> float | None:
    """AUROC as a percentage (our metrics are fractions in [0, 1])."""
    if v is None:
        return None
    v = float(v)
    return 100.0 * v if v <= 1.0 else v


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f}"


def _diff(ours: float | None, paper: float) -> str:
    if ours is None:
        return ""
    d = round(ours, 1) - paper
    if abs(d) < 0.05:
        return "0.0"
    return f"{d:+.1f}".replace("-", "\u2212")


def size_text(size: Any) -> str:
    """'256 px' for an int size, 'native size' otherwise: None, or "native" in result files
    written before native size was None there too."""
    return f"{size} px" if isinstance(size, int) and not isinstance(size, bool) else "native size"


def run_label(result: dict[str, Any], with_data: bool = True) -> str:
    """'MVTec AD carpet, 512 px, paper profile, NVIDIA H200, 2025-01-01' for the data column."""
    parts = []
    if with_data:
        parts.append(classify(result).label)
    parts.append(size_text(result.get("image_size")))
    parts.append(f"{result.get('profile', '?')} profile")
    hw = result.get("hardware") or result.get("device")
    if hw:
        parts.append(str(hw))
    date = result.get("date")
    if date:
        parts.append(str(date)[:10])
    return ", ".join(parts)


def _ok(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in results if r.get("status", "ok") == "ok"]


def _best(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Prefer the paper profile, then the most recent run."""
    return sorted(results, key=lambda r: (r.get("profile") == "paper", str(r.get("date", ""))))[-1]


def mvtec_results(results: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{paper category: result} for results on real MVTec AD data with masks only."""
    by_cat: dict[str, list[dict[str, Any]]] = {}
    for r in _ok(results):
        k = classify(r)
        if k.kind == "mvtec":
            by_cat.setdefault(k.category, []).append(r)
    return {cat: _best(rs) for cat, rs in by_cat.items()}


def _metric_from(result: dict[str, Any], method: str, metric: str) -> float | None:
    """Our value for a Table 4 column (method 'Obj. (1)', 'Obj. (4)' or 'Ens.')."""
    objective = int(result.get("objective", 1) or 1)
    comp = result.get("comparison") or {}
    if method == "Ens.":
        return _pct((comp.get("ensemble") or {}).get(metric))
    want = 1 if method == "Obj. (1)" else 4
    if objective == want:
        return _pct(result.get(metric))
    other = comp.get("objective1" if want == 1 else "objective4") or {}
    return _pct(other.get(metric))


def _average(values: list[float | None], n_total: int) -> tuple[float | None, str]:
    got = [v for v in values if v is not None]
    if not got:
        return None, NOT_RUN
    if len(got) < n_total:
        return None, f"{NOT_RUN} ({len(got)} of {n_total} categories run)"
    return sum(got) / len(got), ""


def comparison_table(table: int, results: Iterable[dict[str, Any]]) -> Table:
    """Table 2 or 3: the paper's 'Ours' beside our number on MVTec AD, per paper category."""
    if table not in (2, 3):
        raise ValueError("comparison_table handles Tables 2 and 3; use table4_comparison")
    metric = TABLE_METRIC[table]
    mv = mvtec_results(results)
    image = table == 3  # the image AUROC: the calibrated score and the paper's sum side by side
    rows = []
    ours_by_cat: dict[str, float | None] = {}
    for cat in ROWS_2_3:
        paper = paper_value(table, cat, "Ours", metric)
        if cat in AVERAGES:
            members = AVERAGES[cat]
            avg, why = _average([ours_by_cat.get(c) for c in members], len(members))
            data = f"mean over {len(members)} categories" if avg is not None else ""
            rows.append([cat, paper.text, _fmt(avg) if avg is not None else why,
                         *([""] if image else []), _diff(avg, paper.value), data])
            continue
        r = mv.get(cat)
        ours = _pct(r.get(metric)) if r else None
        ours_by_cat[cat] = ours
        summed = [_fmt(_pct(r.get("image_auroc_paper_sum"))) if r else ""] if image else []
        if r is None:
            rows.append([cat, paper.text, NOT_RUN, *summed, "", copy_note(cat, results)])
        elif ours is None:
            rows.append([cat, paper.text, f"{NOT_RUN} (no masks)", *summed, "", run_label(r)])
        else:
            rows.append([cat, paper.text, _fmt(ours), *summed, _diff(ours, paper.value), run_label(r)])
    columns = (["Category", "Paper (Ours)", "Reproduced, calibrated (ours)", "Reproduced, paper's sum",
                "Difference", "Data"] if image else ["Category", "Paper (Ours)", "Reproduced", "Difference", "Data"])
    return Table(TABLE_TITLE[table] + ": paper beside reproduction", columns, rows,
                 caption="Reproduced numbers appear only for real MVTec AD data with ground-truth "
                         "masks; difference = reproduced − paper" + (" (calibrated). " + SCORES_CAPTION if image
                                                                     else "."))


#: what the two image AUROC columns of the tables are
SCORES_CAPTION = ("Image AUROC, calibrated (ours): the image score the calibration chose on validation "
                  "images; paper's sum: the paper's image score, the sum of eq. (3)'s map at the same n and k, "
                  "unstandardised.")


def copy_note(cat: str, results: Iterable[dict[str, Any]]) -> str:
    """For a category not measured on MVTec AD with masks: where a copy of it stands instead
    (the resized copy without masks in the substitute table), else ''."""
    copies = [r for r in _ok(results) if classify(r).kind == "mvtec-copy" and classify(r).category == cat]
    if not copies:
        return ""
    return (f"a {size_text(copies[0].get('image_size'))} copy without masks was run: see the substitute "
            "table below and the reference model pages")


def table4_comparison(results: Iterable[dict[str, Any]]) -> Table:
    """Table 4 in long form: one row per (category, column) with paper, ours and difference."""
    mv = mvtec_results(results)
    rows = []
    for method, metric, heading in COLUMNS_4:
        per_cat: dict[str, float | None] = {}
        for cat in ROWS_4:
            paper = paper_value(4, cat, method, metric)
            if cat == "avg. all":
                avg, why = _average([per_cat.get(c) for c in TEXTURES], len(TEXTURES))
                rows.append([cat, heading, paper.text, _fmt(avg) if avg is not None else why,
                             _diff(avg, paper.value), "mean over 5 textures" if avg is not None else ""])
                continue
            r = mv.get(cat)
            ours = _metric_from(r, method, metric) if r else None
            per_cat[cat] = ours
            if r is None:
                rows.append([cat, heading, paper.text, NOT_RUN, "", ""])
            elif ours is None:
                rows.append([cat, heading, paper.text, NOT_RUN, "", run_label(r)])
            else:
                rows.append([cat, heading, paper.text, _fmt(ours), _diff(ours, paper.value),
                             run_label(r)])
    return Table(TABLE_TITLE[4] + ": paper beside reproduction",
                 ["Category", "Column", "Paper", "Reproduced", "Difference", "Data"], rows,
                 caption="Obj. (4) and the ensemble are measured only for categories named in "
                         "--compare; others say 'not run'.")


def _reference_note(kind: DataKind) -> str:
    if kind.kind == "mvtec-copy":
        try:
            p = paper_value(3, kind.category, "Ours", "image_auroc").text
            return f"paper, full MVTec AD {kind.category}: image AUROC {p} (different setting)"
        except KeyError:
            return ""
    if kind.kind == "mtd":
        return "DifferNet (other method, ImageNet features): image AUROC 97.7"
    if kind.kind == "embedded":
        return "none (generated data)"
    return ""


def substitute_table(results: Iterable[dict[str, Any]]) -> Table:
    """Everything not measured on real MVTec AD with masks: labelled as not comparable."""
    rows = []
    for r in _ok(results):
        k = classify(r)
        if k.kind == "mvtec":
            continue
        comp = r.get("comparison") or {}
        obj4 = comp.get("objective4") or {}
        ens = comp.get("ensemble") or {}
        rows.append([
            k.label,
            _fmt(_pct(r.get("image_auroc"))),
            _fmt(_pct(r.get("image_auroc_paper_sum"))),
            _fmt(_pct(r.get("pixel_auroc"))),
            _fmt(_pct(r.get("aupro"))),
            _fmt(_pct(obj4.get("image_auroc"))) + " / " + _fmt(_pct(obj4.get("pixel_auroc")))
            if obj4 else NOT_RUN,
            _fmt(_pct(ens.get("pixel_auroc"))) if ens else NOT_RUN,
            training_text(r),
            run_label(r, with_data=False),
            _reference_note(k),
        ])
    return Table("Substitute data, not comparable to MVTec AD",
                 ["Data", "Image AUROC (%), calibrated (ours)", "Image AUROC (%), paper's sum",
                  "Pixel AUROC (%)", "AUPRO (%)",
                  "Obj. (4) image / pixel", "Ens. pixel", "Training", "Run", "Reference (not comparable)"],
                 rows,
                 caption="Objective (1) unless stated. These data sets are stand-ins (generated "
                         "look-alikes, Magnetic Tile Defects, a resized MVTec AD bottle copy "
                         "without masks); their numbers are never placed in the MVTec AD rows. "
                         + SCORES_CAPTION,
                 notes=[] if rows else ["No substitute data set was run."])


def training_text(result: dict[str, Any]) -> str:
    """'120 min, kept reference model' or '1.5 min, this build': how long the model behind a row
    trained, and where the row comes from."""
    secs = result.get("train_seconds")
    took = (f"{secs / 3600:.1f} h" if secs >= 3600 else f"{secs / 60:.1f} min") if isinstance(secs, (int, float)) \
        else "—"
    return f"{took}, {REFERENCE if result.get('_reference') else source_text(result)}"


def gpu_status(results: Iterable[dict[str, Any]]) -> str:
    """One line saying whether paper-profile results from a GPU are shown."""
    gpu = [r for r in _ok(results)
           if r.get("profile") == "paper" and "cuda" in str(r.get("device", "")).lower()]
    if not gpu:
        return GPU_NOT_RUN + "."
    parts = sorted({f"{classify(r).label} ({r.get('hardware', 'GPU')}, {str(r.get('date', '?'))[:10]})"
                    for r in gpu})
    return "Paper-profile GPU results shown for: " + "; ".join(parts) + "."


def failed_runs(results: Iterable[dict[str, Any]]) -> list[str]:
    """Names of categories whose run failed (status != ok)."""
    return [str(r.get("slug") or r.get("data_spec")) for r in results if r.get("status", "ok") != "ok"]


def runs_table(results: Iterable[dict[str, Any]]) -> Table:
    """Every run shown on the Tables page: data, size, profile, hardware, date, time, source."""
    rows = []
    for r in results:
        k = classify(r)
        secs = r.get("train_seconds")
        rows.append([
            k.label,
            str(r.get("status", "ok")),
            size_text(r.get("image_size")),
            str(r.get("profile", "?")),
            str(r.get("hardware") or r.get("device") or "?"),
            str(r.get("date", "?"))[:19],
            f"{secs / 60:.1f}" if isinstance(secs, (int, float)) else "—",
            source_text(r),
        ])
    return Table("Runs shown on this page",
                 ["Data", "Status", "Image size", "Profile", "Hardware", "Date", "Training (min)",
                  "Source"], rows,
                 notes=[] if rows else ["No category was run."])
