"""The chapter "What moves the numbers on real defects": its tables and numbers, read from the
result rows kept in ``benchmarks/results/*.jsonl``.

Each row is one trained (or recalibrated) model as ``benchmarks/cpu.py --json`` or
``benchmarks/recalibrate.py --json`` wrote it: data set, method (``ssae``: the method,
objective (1) on corrupted images; ``plain``: the same network trained without corruption;
``blur``: no network, Diff against a Gaussian-blurred copy), a tag naming the draw (seed) and
the changed settings, the test metrics, the restoration check, training steps and seconds,
hardware and date.

Every function that builds a part of the chapter takes a :class:`Results` and returns a
:class:`Part` (a table and a paragraph of generated prose). :class:`Results` records which
rows were read, so that a test can check that every kept row is cited (:meth:`Results.uncited`).
The notebook ``notebooks/07_findings.ipynb`` shows the parts; no number in it is typed by hand.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from .tables import Table, recorded_hardware, size_text

REPO = Path(__file__).resolve().parents[2]
#: the committed result rows
RESULTS = REPO / "benchmarks" / "results"

#: data sets as the rows name them, and as the chapter names them
DATA = {"mtd": "MTD", "bottle": "bottle copy", "embedded:grid": "grid look-alike",
        "embedded:carpet": "carpet look-alike"}
MODELS = {"ssae": "the method", "plain": "plain autoencoder", "blur": "blur reference"}
METRICS = ("image_auroc", "pixel_auroc", "aupro")
METRIC_NAMES = {"image_auroc": "image AUROC", "pixel_auroc": "pixel AUROC", "aupro": "AUPRO"}
#: the MTD defect types in the order of the tables
DEFECTS = ("Blowhole", "Crack", "Break", "Fray", "Uneven")

#: the smaller boxes of eq. (3) (the tags ending in ``_fine``), as offered to the calibration
FINE = "calibration.nk"


# =========================================================================== rows

class Results:
    """The rows of every ``*.jsonl`` file in ``folder``, by file stem.

    A row is found by file, data set, method and tag (``variant`` for rows without a tag).
    Every row handed out is remembered (:meth:`uncited`, :attr:`files_read`)."""

    def __init__(self, folder: str | Path = RESULTS):
        self.folder = Path(folder)
        self.files: dict[str, list[dict[str, Any]]] = {}
        for p in sorted(self.folder.glob("*.jsonl")):
            lines = p.read_text(encoding="utf-8").splitlines()
            self.files[p.stem] = [json.loads(line) for line in lines if line.strip()]
        if not self.files:
            raise FileNotFoundError(f"no result rows (*.jsonl) in {self.folder}")
        self._cited: set[tuple[str, int]] = set()

    @staticmethod
    def key(row: dict) -> str:
        return row["tag"] if row.get("tag") is not None else (row.get("variant") or "")

    def row(self, file: str, tag: str, method: str | None = None, data: str | None = None) -> dict[str, Any]:
        """The one row of ``file`` with this tag (and method and data set, where given)."""
        if file not in self.files:
            raise FileNotFoundError(f"{self.folder / (file + '.jsonl')} is missing")
        hits = [(i, r) for i, r in enumerate(self.files[file])
                if self.key(r) == tag and (method is None or r.get("method") == method)
                and (data is None or r.get("dataset") == data)]
        if len(hits) != 1:
            raise KeyError(f"{len(hits)} rows in {file}.jsonl for tag {tag!r}, method {method!r}, data {data!r}")
        i, r = hits[0]
        self._cited.add((file, i))
        return r

    def draws(self, file: str, method: str, template: str, draws: Iterable[int],
              data: str | None = None) -> list[dict[str, Any]]:
        """One row per draw ``d``, tag ``template.format(d=d)``."""
        return [self.row(file, template.format(d=d), method, data) for d in draws]

    @property
    def files_read(self) -> list[str]:
        return sorted({f for f, _ in self._cited})

    def uncited(self) -> list[str]:
        """``file: tag (method)`` of every row no part of the chapter has read so far."""
        return [f"{f}: {self.key(r)} ({r.get('method')}, {r.get('dataset')})"
                for f, rows in self.files.items() for i, r in enumerate(rows) if (f, i) not in self._cited]

    def cited_rows(self) -> list[dict[str, Any]]:
        return [self.files[f][i] for f, i in sorted(self._cited)]


def load(results_dir: str | Path = "") -> Results:
    return Results(results_dir or RESULTS)


# =========================================================================== numbers

def f3(v: float | None) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def f2(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def signed(v: float | None) -> str:
    return "–" if v is None else f"{v:+.3f}".replace("-", "−")


def mean(xs: Sequence[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def span(xs: Sequence[float], fmt=f2) -> str:
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    lo, hi = fmt(min(xs)), fmt(max(xs))
    return lo if lo == hi else f"{lo}–{hi}"


def pct(v: float) -> str:
    return f"{100 * v:.0f} %"


def metric(row: dict, name: str) -> float | None:
    if name == "check":
        return row.get("restoration_pixel_auroc")
    if name.startswith("pixel:"):
        return (row.get("per_defect_pixel") or {}).get(name[6:])
    if name.startswith("image:"):
        return (row.get("per_defect") or {}).get(name[6:])
    return row.get(name)


def means(rows: Sequence[dict], names: Sequence[str] = METRICS) -> str:
    """``image / pixel AUROC / AUPRO`` means over the rows."""
    return " / ".join(f3(mean([metric(r, m) for r in rows])) for m in names)


def passes(rows: Sequence[dict]) -> int:
    from ssae.calibration import RESTORATION_MIN
    return sum(1 for r in rows if (metric(r, "check") or 0) >= RESTORATION_MIN)


def restoration_min() -> float:
    from ssae.calibration import RESTORATION_MIN
    return RESTORATION_MIN


def steps(rows: Sequence[dict]) -> str:
    xs = [r.get("train_steps") for r in rows if r.get("train_steps")]
    if not xs:
        return "–"
    return str(min(xs)) if min(xs) == max(xs) else f"{min(xs)}–{max(xs)}"


def minutes(rows: Sequence[dict]) -> str:
    xs = sorted({round((r.get("train_seconds") or 0) / 60) for r in rows if r.get("train_seconds")})
    return "–" if not xs else "/".join(str(x) for x in xs) + " min"


@dataclass
class Paired:
    """First minus second over paired draws: mean difference, wins of the first, draws, p
    (two-sided paired t-test; None with fewer than two draws or no spread)."""
    diff: float
    wins: int
    n: int
    p: float | None
    first: float
    second: float

    def text(self) -> str:
        p = "" if self.p is None else f", p = {self.p:.2g}"
        return f"{signed(self.diff)} (ahead in {self.wins} of {self.n}{p})"


def paired(first: Sequence[dict], second: Sequence[dict], name: str) -> Paired:
    a = [metric(r, name) for r in first]
    b = [metric(r, name) for r in second]
    if len(a) != len(b) or not a or any(v is None for v in a + b):
        raise ValueError(f"cannot pair {len(a)} with {len(b)} rows on {name}")
    d = [x - y for x, y in zip(a, b)]
    p = None
    if len(d) > 1 and max(d) - min(d) > 1e-12:
        from scipy import stats
        p = float(stats.ttest_rel(a, b).pvalue)
    return Paired(sum(d) / len(d), sum(1 for x in d if x > 0), len(d), p, sum(a) / len(a), sum(b) / len(b))


# =========================================================================== parts

@dataclass
class Part:
    """A part of the chapter: a table and the generated prose that goes with it."""
    table: Table
    text: str = ""
    figure: Any = None

    def show(self) -> None:
        from IPython.display import Markdown, display
        display(self.table)
        if self.figure is not None:
            display(self.figure)
        if self.text:
            display(Markdown(self.text))


def threshold() -> str:
    """The restoration check's threshold, as ``ssae train`` and ``ssae evaluate`` apply it."""
    return (f"The threshold of the restoration check is {restoration_min():g} "
            f"(`ssae.evaluation.RESTORATION_MIN`): below it `ssae train` and `ssae evaluate` warn that the "
            f"model has not learned to restore its training corruptions.")


def provenance(R: Results) -> str:
    """Where the numbers come from: files, hardware, profile and run dates of the cited rows."""
    rows = R.cited_rows()
    hw = sorted({r.get("hardware") for r in rows if r.get("hardware")})
    prof = sorted({r.get("profile") for r in rows if r.get("profile")})
    dates = sorted(str(r.get("date", ""))[:10] for r in rows if r.get("date"))
    width = sorted({r.get("width") for r in rows if r.get("width")})
    named = sorted({recorded_hardware(h) for h in hw})
    return (f"The tables of this chapter read {len(rows)} result rows from {len(R.files_read)} files in "
            f"`benchmarks/results/`. Hardware recorded in the rows: {'; '.join(named)}; profile "
            f"`{', '.join(prof)}`, Table 1 at width {' or '.join(_frac(w) for w in width)}; runs dated "
            f"{dates[0]} to {dates[-1]}.")


def _frac(w: float) -> str:
    return {0.25: "1/4", 0.5: "1/2", 1.0: "1"}.get(w, str(w))


# --------------------------------------------------------------------------- where things stand

def _glance_groups(R: Results) -> list[tuple[str, str, str, list[dict]]]:
    """(data set, setting, model, rows): the current scoring on each data set."""
    g = []
    mtd64 = "`mtd-64px` file (64 px)"
    for m, t in (("ssae", "s{d}_px64_swap_norot_lam0.05_2t_p05_fine"), ("plain", "s{d}_px64_norot_2t_p05_fine"),
                 ("blur", "s{d}_px64_norot_p05_fine")):
        g.append(("MTD", mtd64, m, R.draws("mtd_same_proxy", m, t, range(6))))
    cpu256 = "`cpu` profile (256 px)"
    g.append(("MTD", cpu256, "ssae", [R.row("contrast_recal", "s0_norot_c", "ssae")]))
    g.append(("MTD", cpu256, "plain", [R.row("contrast_recal", "s0_norot_c", "plain")]))
    g.append(("MTD", cpu256, "blur", [R.row("fine_boxes_256", "s0_256", "blur", "mtd")]))
    grid = "`cpu` profile (256 px)"
    for m in ("ssae", "plain"):
        g.append(("grid look-alike", grid, m, R.draws("contrast_recal", m, "s{d}_c", range(10), "embedded:grid")))
    g.append(("grid look-alike", grid, "blur", [R.row("fine_boxes_256", "s0_256", "blur", "embedded:grid")]))
    for m in ("ssae", "plain"):
        g.append(("bottle copy", grid, m, _bottle(R, m)))
    g.append(("bottle copy", grid, "blur", [R.row("fine_boxes_256", "s0_256", "blur", "bottle")]))
    return g


def _bottle(R: Results, method: str) -> list[dict]:
    """The three bottle draws of the `cpu` profile as it is (seeds 0, 1, 2)."""
    return [R.row("contrast_recal", "s0_s15_c", method, "bottle"), R.row("bottle_draws", "s1_s15", method),
            R.row("fine_boxes_256", "s2_s19", method, "bottle")]


def _mtd64(R: Results) -> dict[str, list[dict]]:
    return {m: rows for d, s, m, rows in _glance_groups(R)[:3]}


def glance(R: Results) -> Part:
    rows = []
    for data, setting, m, rs in _glance_groups(R):
        img = [metric(r, "image_auroc") for r in rs]
        rows.append([data, setting, MODELS[m], str(len(rs)), steps(rs),
                     f"{passes(rs)} of {len(rs)}" if m != "blur" else "–",
                     f"{f3(mean(img))} ({span(img, f3)})" if len(rs) > 1 else f3(img[0]),
                     f3(mean([metric(r, "pixel_auroc") for r in rs])), f3(mean([metric(r, "aupro") for r in rs]))])
    table = Table("Where the method stands: 20 minutes of training per model",
                  ["data", "setting", "model", "draws", "steps", "restoration check passed",
                   "image AUROC (range)", "pixel AUROC", "AUPRO"], rows,
                  notes=["`mtd-64px`: the settings file shipped in `ssae/settings/` (whole tiles at 64 px, "
                         "swapped patches of 20–70 % of the side, λ = 0.05, smaller boxes for eq. (3)); one model "
                         "at a time on two threads. `cpu` profile: 256 px images, crops growing from 64 to 128 px, "
                         "the paper's elastic corruption, λ = 0.5; one thread per model, two side by side. "
                         "Means over draws (seeds); the blur reference needs no training. The bottle copy has "
                         "image labels only."])
    m = _mtd64(R)
    vs_plain = [paired(m["ssae"], m["plain"], k) for k in METRICS]
    vs_blur = [paired(m["ssae"], m["blur"], k) for k in METRICS]
    best = {k: max(metric(r, "image_auroc") for r in v) for k, v in m.items()}
    text = (f"On MTD with the `mtd-64px` setting, over {vs_plain[0].n} paired draws, the method minus the plain "
            f"autoencoder is {vs_plain[0].text()} image AUROC, {vs_plain[1].text()} pixel AUROC and "
            f"{vs_plain[2].text()} AUPRO; minus the blur reference {vs_blur[0].text()}, {vs_blur[1].text()} and "
            f"{vs_blur[2].text()}. Best single draws, image AUROC: the method {f3(best['ssae'])}, the plain "
            f"autoencoder {f3(best['plain'])}, the blur reference {f3(best['blur'])}.")
    return Part(table, text)


# --------------------------------------------------------------------------- corruption

def _corruption_groups(R: Results) -> list[tuple[str, str, str, list[dict]]]:
    """(corruption, patch side, model, rows) on MTD, whole tiles at 64 px, λ = 0.5."""
    f = "mtd_whole_tile"
    return [
        ("elastic deformation (the paper's)", "5–35 %", "ssae", [R.row(f, f"s{d}_px64", "ssae") for d in (0, 1)]),
        ("shading (brightness only)", "30–90 %", "ssae", [R.row(f, "s0_px64_shade", "ssae")]),
        ("shading in a sharp-edged band", "50–100 %", "ssae", [R.row(f, "s0_px64_bandshade", "ssae")]),
        ("swapped patch from another tile", "20–70 %", "ssae", R.draws(f, "ssae", "s{d}_px64_swap", range(3))),
        ("swapped patch, larger", "30–90 %", "ssae", [R.row(f, "s0_px64_swapbig", "ssae")]),
        ("swapped patch in a sharp-edged band", "50–100 %", "ssae", [R.row(f, "s0_px64_bandswap", "ssae")]),
        ("none (plain autoencoder)", "–", "plain", R.draws(f, "plain", "s{d}_px64", range(3))),
        ("none (blur reference)", "–", "blur", R.draws(f, "blur", "s{d}_px64", range(3))),
    ]


def _swap_or_not(groups) -> tuple[list[dict], list[dict]]:
    """The method's rows trained on swapped patches, and those trained on elastic deformation or shading."""
    return groups[3][3] + groups[4][3] + groups[5][3], groups[0][3] + groups[1][3] + groups[2][3]


def corruption(R: Results) -> Part:
    """MTD, whole tiles at 64 px, λ = 0.5, quarter turns on: the training corruption."""
    groups = _corruption_groups(R)
    rows = []
    for name, size, m, rs in groups:
        rows.append([name, size, str(len(rs)), steps(rs), span([metric(r, "check") for r in rs]),
                     means(rs), f2(mean([metric(r, "pixel:Fray") for r in rs])),
                     f2(mean([metric(r, "pixel:Uneven") for r in rs]))])
    table = Table("MTD: what the method is trained to undo (whole tiles at 64 px, λ = 0.5)",
                  ["training corruption", "patch side", "runs", "steps", "restoration check",
                   "image / pixel AUROC / AUPRO", "fray pixel AUROC", "uneven pixel AUROC"], rows,
                  notes=["Means over runs (seeds); quarter turns and mirror images on; one thread per model, "
                         "two models side by side; scoring chosen on validation data among the sum, the mean "
                         "and the max (the contrast reduction was not among the choices for these runs)."])
    swap, other = _swap_or_not(groups)
    text = (f"Every model trained on swapped patches passes the restoration check ({passes(swap)} of {len(swap)}, "
            f"{span([metric(r, 'check') for r in swap])}); of those trained on the elastic deformation or on "
            f"shading, {passes(other)} of {len(other)} do ({span([metric(r, 'check') for r in other])}). "
            f"The swap models find fray (pixel AUROC {span([metric(r, 'pixel:Fray') for r in swap])}, against "
            f"{span([metric(r, 'pixel:Fray') for r in groups[6][3] + groups[7][3]])} for the references), while "
            f"uneven grinding stays at {span([metric(r, 'pixel:Uneven') for _, _, _, rs in groups for r in rs])} "
            f"for every model in the table.")
    return Part(table, text)


# --------------------------------------------------------------------------- image size and crops

def image_size(R: Results) -> Part:
    c, s = "contrast_recal", "mtd_settings_file"
    spec = [
        ("ssae", 256, "64–128 px crops", "elastic", "0.5", [R.row(c, "s0_norot_c", "ssae")]),
        ("plain", 256, "64–128 px crops", "–", "–", [R.row(c, "s0_norot_c", "plain")]),
        ("ssae", 128, "whole tile", "swap", "0.5", [R.row(c, "s0_px128_swap_c", "ssae")]),
        ("plain", 128, "whole tile", "–", "–", [R.row(c, "s0_px128_c", "plain")]),
        ("ssae", 64, "whole tile", "swap", "0.5", [R.row(c, "s0_px64_swap_norot_c", "ssae")]),
        ("plain", 64, "whole tile", "–", "–", [R.row(c, "s0_px64_norot_c", "plain")]),
        ("ssae", 128, "64 px crops", "swap", "0.05", [R.row(s, "s0_px128c64_swap_norot_lam0.05_2t", "ssae")]),
        ("ssae", 96, "whole tile", "swap", "0.05", [R.row(s, "s5_settings_mtd64px_at96", "ssae")]),
        ("ssae", 64, "whole tile", "swap", "0.05", [R.row(s, "s5_settings_mtd64px", "ssae")]),
        ("plain", 96, "whole tile", "–", "–", [R.row(s, "s5_settings_mtd64px_at96", "plain")]),
        ("plain", 64, "whole tile", "–", "–", [R.row(s, "s5_settings_mtd64px", "plain")]),
        ("blur", 96, "–", "–", "–", [R.row(s, "s5_settings_mtd64px_at96", "blur")]),
        ("blur", 64, "–", "–", "–", [R.row(s, "s5_settings_mtd64px", "blur")]),
    ]
    rows = []
    for m, size, crop, corr, lam, rs in spec:
        r = rs[0]
        rows.append([MODELS[m], size_text(r['image_size']), crop, corr, lam, str(r.get("threads") or _threads(r)),
                     steps(rs), f2(metric(r, "check")) if m != "blur" else "–", means(rs)])
    table = Table("MTD: image size, and whole tiles against crops (one draw per row)",
                  ["model", "image size", "training input", "corruption", "λ", "threads", "steps",
                   "restoration check", "image / pixel AUROC / AUPRO"], rows,
                  notes=["20 minutes per model. The first six rows: one thread per model, two models side by side, "
                         "seed 0; the others: one model at a time on two threads (seed 0 for the crops, "
                         "seed 5 otherwise). Pixel metrics at each model's image size."])
    crops = [spec[0][5][0], spec[6][5][0]]
    whole = [rs[0] for m, _, crop, _, _, rs in spec if m == "ssae" and crop == "whole tile"]
    text = (f"Every method model that sees whole tiles passes the restoration check ({passes(whole)} of "
            f"{len(whole)}, {span([metric(r, 'check') for r in whole])}, at 64, 96 and 128 px); neither method model "
            f"trained on crops does ({span([metric(r, 'check') for r in crops])}), and the model trained on "
            f"64 px crops of 128 px tiles, which costs per step what a whole 64 px tile costs, is at chance "
            f"(image / pixel AUROC / AUPRO {means([crops[1]])}).")
    return Part(table, text)


def _threads(row: dict) -> str:
    """Recalibrated rows do not record threads; their training rows (one thread) do."""
    return "1" if row.get("recalibrated_from_tag") else "–"


# --------------------------------------------------------------------------- lambda

def _lam_mtd(R: Results) -> dict[str, list[dict]]:
    t = "s{d}_px64_swap_norot_lam"
    return {"0.5": R.draws("contrast_recal", "ssae", "s{d}_px64_swap_norot_c", range(3)),
            "0.2": R.draws("mtd_lambda", "ssae", t + "0.2", range(3)),
            "0.05": R.draws("mtd_lambda", "ssae", t + "0.05", range(3)),
            "0.01": R.draws("mtd_lambda_small", "ssae", t + "0.01", range(3)),
            "0": R.draws("mtd_lambda_small", "ssae", t + "0", range(3))}


def lam(R: Results) -> Part:
    mtd = _lam_mtd(R)
    plain = R.draws("contrast_recal", "plain", "s{d}_px64_norot_c", range(3))
    grid = {"0.5": R.draws("contrast_recal", "ssae", "s{d}_c", range(10), "embedded:grid"),
            "0.05": R.draws("grid_lambda", "ssae", "s{d}_lam0.05", range(10))}
    gplain = R.draws("contrast_recal", "plain", "s{d}_c", range(10), "embedded:grid")
    bottle = {"0.5": [R.row("contrast_recal", "s0_s15_c", "ssae", "bottle"), R.row("bottle_draws", "s1_s15", "ssae")],
              "0.05": R.draws("bottle_lambda", "ssae", "s{d}_s15_lam0.05", range(2))}
    rows = []

    def add(data, name, rs, base):
        ks = [k for k in METRICS if all(metric(r, k) is not None for r in rs + base)]
        vs = " / ".join(signed(paired(rs, base, k).diff) for k in ks) if rs is not base else "–"
        wins = ", ".join(f"{paired(rs, base, k).wins}" for k in ks) if rs is not base else "–"
        rows.append([data, name, str(len(rs)), steps(rs), f"{passes(rs)} of {len(rs)}",
                     span([metric(r, "check") for r in rs]), means(rs), vs, wins])

    for k, rs in mtd.items():
        add("MTD, whole tiles at 64 px, swaps", f"λ = {k}", rs, mtd["0.5"])
    add("MTD, whole tiles at 64 px", "plain autoencoder", plain, mtd["0.5"])
    for k, rs in grid.items():
        add("grid look-alike, 256 px", f"λ = {k}", rs, grid["0.5"])
    add("grid look-alike, 256 px", "plain autoencoder", gplain, grid["0.5"])
    for k, rs in bottle.items():
        add("bottle copy, 256 px", f"λ = {k}", rs, bottle["0.5"])
    table = Table("λ of eq. (1): the weight of restoring the corrupted region against reproducing the rest",
                  ["data", "model", "draws", "steps", "check passed", "restoration check",
                   "image / pixel AUROC / AUPRO", "minus λ = 0.5, same draws", "draws ahead (of each)"], rows,
                  notes=["Means over draws; the bottle copy has image labels only (image AUROC). One thread per "
                         "model, two side by side, 20 minutes; the λ ≤ 0.01 runs reached fewer steps within "
                         "them (the steps column)."])
    d05 = [paired(mtd["0.05"], mtd["0.5"], k) for k in METRICS]
    g = grid["0.05"]
    failed05 = [i for i, r in enumerate(grid["0.5"]) if metric(r, "check") < restoration_min()]
    trained = [i for i in range(10) if i not in failed05]
    sharp = paired([grid["0.05"][i] for i in trained], [grid["0.5"][i] for i in trained], "image_auroc")
    text = (f"On MTD, λ = 0.05 against the paper's 0.5 gains {d05[0].text()} image AUROC, {d05[1].text()} pixel "
            f"AUROC and {d05[2].text()} AUPRO, and λ = 0.01 or 0 change little more (table). Even λ = 0, which "
            f"never asks the network to restore the swapped patch, passes the restoration check in "
            f"{passes(mtd['0'])} of {len(mtd['0'])} draws. On the grid look-alike λ = 0.05 fails the check in "
            f"{len(g) - passes(g)} of {len(g)} draws where λ = 0.5 fails in {len(failed05)}, but in the "
            f"{len(trained)} draws where λ = 0.5 trains it is less sharp ({sharp.text()} image AUROC).")
    return Part(table, text)


# --------------------------------------------------------------------------- learning rate

def learning_rate(R: Results) -> Part:
    default = {d: R.row("grid_draws", f"s{d}", "ssae") for d in range(10)}
    plain = {d: R.row("grid_draws", f"s{d}", "plain") for d in range(10)}
    variants = [("linear warm-up over the first 10 % (`train.lr_warmup=0.1`)", "wu0.1", (0, 1, 2, 5, 6, 7, 8, 9)),
                ("learning rate 3e-4 instead of 1e-3", "lr3e-4", (5, 7, 8, 9)),
                ("the default again (a rerun)", "rerun", (5, 7))]
    rows = []
    out = {}
    for name, v, seeds in variants:
        rs = [R.row("grid_lr_variants", f"s{d}_{v}", "ssae") for d in seeds]
        base = [default[d] for d in seeds]
        out[v] = (rs, base, seeds)
        rows.append([name, ", ".join(map(str, seeds)), steps(rs), f"{passes(rs)} of {len(rs)}",
                     f"{passes(base)} of {len(base)}", means(rs), means(base), means([plain[d] for d in seeds])])
    table = Table("Grid look-alike: the learning-rate schedule (the method only; 256 px, 20 minutes)",
                  ["change to the `cpu` profile", "seeds", "steps", "check passed", "default: check passed",
                   "image / pixel AUROC / AUPRO", "default, same seeds", "plain autoencoder, same seeds"], rows,
                  notes=["The `cpu` profile decays the learning rate from 1e-3 along a cosine. One thread per "
                         "model, two side by side; the default and plain rows are the ten draws of the next "
                         "table."])
    rs, base, seeds = out["wu0.1"]
    ok = [i for i, r in enumerate(base) if metric(r, "check") >= restoration_min()]
    bad = [i for i in range(len(base)) if i not in ok]
    on_ok = paired([rs[i] for i in ok], [base[i] for i in ok], "aupro")
    on_bad = paired([rs[i] for i in bad], [base[i] for i in bad], "pixel_auroc")
    text = (f"With the warm-up, every draw passes the restoration check ({passes(rs)} of {len(rs)}); on the "
            f"{len(bad)} seeds where the default fails it the pixel AUROC changes by {on_bad.text()}, but on the "
            f"{len(ok)} where the default trains the AUPRO changes by {on_ok.text()}. Reruns of the default "
            f"for seeds {', '.join(map(str, out['rerun'][2]))} reach a restoration check of "
            f"{', '.join(f2(metric(r, 'check')) for r in out['rerun'][0])} against "
            f"{', '.join(f2(metric(r, 'check')) for r in out['rerun'][1])} the first time.")
    return Part(table, text)


# --------------------------------------------------------------------------- retries

def _retry_rule(R: Results) -> tuple[list[dict], list[dict], list[dict]]:
    """Ten grid draws of the method with a failed draw replaced by its retry, the defaults, plain."""
    retries = {7: R.row("grid_init_swap", "s7_init5", "ssae"), 8: R.row("grid_retry", "s8_init108", "ssae"),
               9: R.row("grid_retry", "s9_init109", "ssae")}
    default = [R.row("grid_draws", f"s{d}", "ssae") for d in range(10)]
    rule = [retries[d] if metric(r, "check") < restoration_min() and d in retries else r
            for d, r in enumerate(default)]
    return rule, default, [R.row("grid_draws", f"s{d}", "plain") for d in range(10)]


def retries(R: Results) -> Part:
    rule, default, plain = _retry_rule(R)
    runs = [("grid", 7, "seed 7 (default)", R.row("grid_draws", "s7", "ssae")),
            ("grid", 7, "seed 7, run again", R.row("grid_lr_variants", "s7_rerun", "ssae")),
            ("grid", 7, "seed 7, run again with `ssae train --retries 1`", R.row("grid_cli_retries", "")),
            ("grid", 7, "seed 5's (`train.init_seed=5`)", R.row("grid_init_swap", "s7_init5", "ssae")),
            ("grid", 5, "seed 5 (default)", R.row("grid_draws", "s5", "ssae")),
            ("grid", 5, "seed 7's (`train.init_seed=7`)", R.row("grid_init_swap", "s5_init7", "ssae")),
            ("grid", 8, "seed 8 (default)", R.row("grid_draws", "s8", "ssae")),
            ("grid", 8, "new (`train.init_seed=108`)", R.row("grid_retry", "s8_init108", "ssae")),
            ("grid", 9, "seed 9 (default)", R.row("grid_draws", "s9", "ssae")),
            ("grid", 9, "new (`train.init_seed=109`)", R.row("grid_retry", "s9_init109", "ssae")),
            ("carpet", 0, "seed 0 (default)", R.row("carpet_retry", "s0", "ssae")),
            ("carpet", 0, "new (`train.init_seed=1000`)", R.row("carpet_retry", "s0_init1000", "ssae"))]
    rows = [[f"{data} look-alike", str(d), w, str(r.get("train_steps")), f2(metric(r, "check")), means([r]),
             means([plain[d]]) if data == "grid" else "–"] for data, d, w, r in runs]
    table = Table("Retraining with other initial weights (the method, 256 px, 20 minutes per run)",
                  ["data", "data stream and validation split of seed", "initial weights", "steps",
                   "restoration check", "image / pixel AUROC / AUPRO", "plain autoencoder, same seed"], rows,
                  notes=["`train.init_seed` seeds the initial weights alone; the seed of the run fixes the batches, "
                         "corruptions and validation split. No plain autoencoder of the carpet draw is kept."])
    st = [paired(rule, plain, k) for k in METRICS]
    s0 = [paired(default, plain, k) for k in METRICS]
    text = (f"Applied to the ten grid draws as a rule that needs no test label (retrain once with other initial "
            f"weights when the check fails), the method minus the plain autoencoder is {st[0].text()} image "
            f"AUROC, {st[1].text()} pixel AUROC and {st[2].text()} AUPRO; without the rule it is {s0[0].text()}, "
            f"{s0[1].text()} and {s0[2].text()}. The {10 - passes(default)} retrained draws cost a second "
            f"training budget. On the carpet look-alike both runs fail the check.")
    from .plots import paired_draws
    hw = sorted({r.get("hardware") for r in rule + plain})
    fig = paired_draws({k: ([metric(r, k) for r in rule], [metric(r, k) for r in plain]) for k in METRICS},
                       f"grid look-alike (generated), 256 px, cpu profile, 20 min, {'; '.join(hw)}",
                       names=("method, retry rule", "plain autoencoder"))
    return Part(table, text, fig)


# --------------------------------------------------------------------------- orientation

def orientation(R: Results) -> Part:
    f = "mtd_whole_tile"
    pairs = [("the method, swaps", R.draws(f, "ssae", "s{d}_px64_swap", range(3)),
              R.draws(f, "ssae", "s{d}_px64_swap_norot", range(3))),
             ("plain autoencoder", R.draws(f, "plain", "s{d}_px64", range(3)),
              R.draws(f, "plain", "s{d}_px64_norot", range(3)))]
    rows = []
    for name, on, off in pairs:
        rows.append([name, "on", steps(on), span([metric(r, "check") for r in on]), means(on),
                     f2(mean([metric(r, "pixel:Uneven") for r in on])), "–"])
        rows.append([name, "off", steps(off), span([metric(r, "check") for r in off]), means(off),
                     f2(mean([metric(r, "pixel:Uneven") for r in off])),
                     " / ".join(paired(off, on, k).text() for k in METRICS)])
    table = Table("MTD: quarter turns in the augmentation (whole tiles at 64 px, λ = 0.5, three draws)",
                  ["model", "quarter turns", "steps", "restoration check", "image / pixel AUROC / AUPRO",
                   "uneven pixel AUROC", "off minus on, paired (image / pixel / AUPRO)"], rows,
                  notes=["Mirror images on in all runs; one thread per model, two side by side, 20 minutes."])
    ds = [paired(off, on, "pixel_auroc") for _, on, off in pairs]
    text = (f"Without quarter turns the pixel AUROC changes by {ds[0].text()} for the method and by "
            f"{ds[1].text()} for the plain autoencoder.")
    return Part(table, text)


# --------------------------------------------------------------------------- scoring

def standardised(R: Results) -> Part:
    groups = _glance_groups(R)
    by: dict[str, list[dict]] = {}
    for data, _, m, rs in groups:
        if m != "blur":
            by.setdefault(data, []).extend(rs)
    for data, _, m, rs in groups:
        if m == "blur":
            by.setdefault(data, []).extend(rs)
    rows = [[data, str(len(rs)), str(sum(1 for r in rs if r["score"].get("standardize"))),
             str(sum(1 for r in rs if not r["score"].get("standardize")))] for data, rs in by.items()]
    table = Table("Standardised maps: what the validation data chose",
                  ["data", "models", "standardised maps chosen", "plain maps chosen"], rows,
                  notes=["The models of the first table (all three kinds). The calibration compares the paper's "
                         "maps with standardised ones on validation images with synthetic defects."])
    chosen = R.row("bottle_lambda_std", "")
    forced = R.row("bottle_lambda_std", "score.standardize_candidates=(True,)")
    bottle = {r["run_dir"]: r for f in R.files.values() for r in f
              if r.get("dataset") == "bottle" and r.get("method") in ("ssae", "plain")}
    plain_maps = [r for r in bottle.values() if not r["score"].get("standardize")]
    text = (f"Of the {len(bottle)} trained bottle models kept in the result files, {len(plain_maps)} took plain "
            f"maps on "
            f"validation data: the λ = 0.05 model of draw 0 (in the λ table), with an image AUROC "
            f"of {f3(chosen['image_auroc'])}. Recalibrated with standardised maps as the only candidate it "
            f"reaches {f3(forced['image_auroc'])}; that second number is read off the test set after seeing the "
            f"first, so it diagnoses the choice and is not a result.")
    return Part(table, text)


def reductions(R: Results) -> Part:
    rows = []
    for data, setting, m, rs in _glance_groups(R):
        if "256 px images" in setting:
            continue
        ch = [r["score"]["reduce"] for r in rs]
        rows.append([data, MODELS[m], str(len(rs)),
                     *(f3(mean([r.get(f"image_auroc_{k}") for r in rs])) for k in ("sum", "max", "contrast")),
                     f3(mean([r["image_auroc"] for r in rs])),
                     ", ".join(f"{k} {ch.count(k)}" for k in ("sum", "max", "contrast") if ch.count(k))])
    table = Table("The image score's reduction: the same maps reduced three ways (image AUROC)",
                  ["data", "model", "models", "sum (the paper's)", "max", "contrast", "chosen on validation data",
                   "chosen"], rows,
                  notes=["Contrast: (max − median) / MAD of the image's own map. The sum, max and contrast "
                         "columns are read off the test set for the same maps (what each reduction would have "
                         "given); only the chosen column is a result. The MTD rows are the `mtd-64px` setting."])
    mtd = [r for d, s, m, rs in _glance_groups(R)[:3] for r in rs]
    gain = mean([r["image_auroc_contrast"] - r["image_auroc_max"] for r in mtd])
    text = (f"On MTD the contrast beats the max for the same maps by {signed(gain)} image AUROC on average over "
            f"the {len(mtd)} models of the `mtd-64px` setting, and the validation data chose it for "
            f"{sum(1 for r in mtd if r['score']['reduce'] == 'contrast')} of them.")
    return Part(table, text)


def _nk(row: dict) -> tuple[int, int]:
    return row["score"]["n"], row["score"]["k"]


def boxes(R: Results) -> Part:
    pairs = []
    for m, t in (("ssae", "s{d}_px64_swap_norot_lam0.05_2t_p05"), ("plain", "s{d}_px64_norot_2t_p05"),
                 ("blur", "s{d}_px64_norot_p05")):
        a = R.draws("mtd_same_proxy", m, t, range(5))
        b = R.draws("mtd_same_proxy", m, t + "_fine", range(5))
        pairs.append(("MTD, 64 px", MODELS[m], a, b))
    for data, m, t in (("mtd", "blur", "s0_256"), ("embedded:grid", "blur", "s0_256"), ("bottle", "blur", "s0_256"),
                       ("bottle", "ssae", "s2_s19"), ("bottle", "plain", "s2_s19")):
        pairs.append((f"{DATA[data]}, 256 px", MODELS[m], [R.row("fine_boxes_256", t, m, data)],
                      [R.row("fine_boxes_256", t + "_fine", m, data)]))
    rows = []
    for name, m, a, b in pairs:
        changed = sum(1 for x, y in zip(a, b) if _nk(x) != _nk(y))
        chosen = sorted({f"({y['score']['n']}, {y['score']['k']})" for y in b})
        rows.append([name, m, str(len(a)), f"{changed} of {len(a)}", ", ".join(chosen),
                     *(signed(mean([metric(y, k) - metric(x, k) for x, y in zip(a, b) if metric(x, k) is not None]))
                       for k in METRICS)])
    table = Table("Box sizes of eq. (3): smaller, repeated boxes offered to the calibration",
                  ["data", "model", "models", "choice changed", "(n, k) chosen with them",
                   "Δ image AUROC", "Δ pixel AUROC", "Δ AUPRO"], rows,
                  notes=[f"The default grid of (n, k) pairs of G_k^n is sized for 256 px; `{FINE}` adds (1, 3), "
                         "(2, 3), (2, 5) and (3, 5). Same trained models, recalibrated on validation data; Δ is "
                         "with minus without, averaged over the models."])
    m64 = [p for p in pairs if p[0] == "MTD, 64 px"]
    a = [x for p in m64 for x in p[2]]
    b = [y for p in m64 for y in p[3]]
    text = (f"At 64 px the new boxes change the AUPRO by {paired(b, a, 'aupro').text()} over the {len(a)} MTD "
            f"models (paired by model) and the image AUROC by {paired(b, a, 'image_auroc').text()}; at 256 px "
            f"the calibration keeps its earlier choice in "
            f"{sum(1 for p in pairs[3:] if p[2][0]['score']['k'] == p[3][0]['score']['k'])} of {len(pairs) - 3} "
            f"models.")
    return Part(table, text)


def proxy(R: Results) -> Part:
    rows = []
    diffs = {}
    for m, t in (("ssae", "s{d}_px64_swap_norot_lam0.05_2t_"), ("plain", "s{d}_px64_norot_2t_"),
                 ("blur", "s{d}_px64_norot_")):
        small = R.draws("mtd_same_proxy", m, t + "p05", range(5))
        large = R.draws("mtd_same_proxy", m, t + "p20", range(5))
        diffs[m] = [paired(small, large, k) for k in METRICS]
        ks_small = sorted({r["score"]["k"] for r in small})
        ks_large = sorted({r["score"]["k"] for r in large})
        rows.append([MODELS[m], "5–35 %", means(small), ", ".join(map(str, ks_small)), "–"])
        rows.append([MODELS[m], "20–70 %", means(large), ", ".join(map(str, ks_large)),
                     " / ".join(d.text() for d in diffs[m])])
    table = Table("The validation proxy: patch sizes of the synthetic defects the scoring is chosen on (MTD, 64 px)",
                  ["model", "proxy patch side", "image / pixel AUROC / AUPRO", "box sizes k chosen",
                   "5–35 % minus 20–70 % (image / pixel / AUPRO)"], rows,
                  notes=["Five draws of each model (the `mtd-64px` training, one model at a time on two threads), "
                         "each recalibrated on both proxies (cut-outs, swaps and occlusions; "
                         "`calibration.proxy_patch_min`, `calibration.proxy_patch_max`) with the default boxes."])
    text = (f"The small proxy patches give the plain autoencoder {diffs['plain'][0].text()} image AUROC over the "
            f"large ones, the blur reference {diffs['blur'][0].text()} and the method {diffs['ssae'][0].text()}: "
            f"the method's maps depend least on the validation task.")
    return Part(table, text)


# --------------------------------------------------------------------------- the restoration check

def restoration(R: Results) -> Part:
    grid_default = [R.row("grid_draws", f"s{d}", "ssae") for d in range(10)]
    lmin = restoration_min()
    ok = [r for r in grid_default if metric(r, "check") >= lmin]
    bad = [r for r in grid_default if metric(r, "check") < lmin]
    mtd64 = _mtd64(R)
    groups = [
        ("grid look-alike", "the method, check passed", ok),
        ("grid look-alike", "the method, check failed", bad),
        ("grid look-alike", "plain autoencoder", [R.row("grid_draws", f"s{d}", "plain") for d in range(10)]),
        ("MTD, 64 px", "the method, swaps (λ = 0.5)", R.draws("mtd_whole_tile", "ssae", "s{d}_px64_swap", range(3))),
        ("MTD, 64 px", "the method, elastic", [R.row("mtd_whole_tile", f"s{d}_px64", "ssae") for d in (0, 1)]),
        ("MTD, 64 px", "the method, swaps, λ = 0", _lam_mtd(R)["0"]),
        ("MTD, 64 px", "the method, `mtd-64px`", mtd64["ssae"]),
        ("MTD, 64 px", "plain autoencoder, `mtd-64px`", mtd64["plain"]),
        ("MTD, 64 px", "blur reference, checked on elastic patches", mtd64["blur"][:5]),
        ("MTD, 64 px", "blur reference, checked on `mtd-64px` swaps",
         [R.row("mtd_settings_file", "s5_settings_mtd64px", "blur")]),
        ("bottle copy", "the method", _bottle(R, "ssae")),
        ("bottle copy", "plain autoencoder", _bottle(R, "plain")),
    ]
    rows = [[d, name, str(len(rs)), span([metric(r, "check") for r in rs]), f"{passes(rs)} of {len(rs)}",
             f3(mean([metric(r, "image_auroc") for r in rs])), f3(mean([metric(r, "pixel_auroc") for r in rs]))]
            for d, name, rs in groups]
    table = Table("The restoration check beside the test metrics",
                  ["data", "models", "runs", "restoration check", f"passed (≥ {lmin:g})", "image AUROC",
                   "pixel AUROC"], rows,
                  notes=["The check is the pixel AUROC of a model's maps on validation images corrupted as in its "
                         "training; a plain autoencoder is checked on the paper's elastic corruption, the blur "
                         "reference on the corruption of the settings it is run with."])
    text = (f"On the grid look-alike the check separates the method's draws cleanly: pixel AUROC "
            f"{f3(mean([metric(r, 'pixel_auroc') for r in ok]))} where it passes, "
            f"{f3(mean([metric(r, 'pixel_auroc') for r in bad]))} where it fails. On MTD the plain autoencoder "
            f"never passes ({span([metric(r, 'check') for r in mtd64['plain']])}) and is level with the method "
            f"on image AUROC; the blur reference, which learns nothing, passes when it is checked on the "
            f"`mtd-64px` swaps ({f2(metric(R.row('mtd_settings_file', 's5_settings_mtd64px', 'blur'), 'check'))}).")
    return Part(table, text)


# --------------------------------------------------------------------------- budget

def budget(R: Results) -> Part:
    t = "s{d}_px64_swap_norot_lam"
    one = R.draws("mtd_lambda", "ssae", t + "0.05", range(3))
    two = R.draws("mtd_two_threads", "ssae", t + "0.05_2t", range(3))
    p_one = R.draws("contrast_recal", "plain", "s{d}_px64_norot_c", range(3))
    p_two = R.draws("mtd_two_threads", "plain", "s{d}_px64_norot_2t", range(3))
    spec = [("40 instead of 20 minutes", "the method, λ = 0.01",
             [R.row("mtd_lambda_small", "s0_px64_swap_norot_lam0.01", "ssae")],
             [R.row("mtd_lambda_small", "s0_px64_swap_norot_lam0.01_40min", "ssae")]),
            ("40 instead of 20 minutes", "plain autoencoder",
             [R.row("mtd_lambda_small", "s0_px64_norot_today", "plain")],
             [R.row("mtd_lambda_small", "s0_px64_norot_40min", "plain")]),
            ("width 1/2 instead of 1/4", "the method, λ = 0.05", [one[0]],
             [R.row("mtd_lambda_small", "s0_px64_swap_norot_lam0.05_w0.5", "ssae")]),
            ("one model alone on two threads", "the method, λ = 0.05", one, two),
            ("one model alone on two threads", "plain autoencoder", p_one, p_two)]
    rows = [[change, m, str(len(a)), f"{steps(a)} → {steps(b)}", f"{minutes(a)} → {minutes(b)}",
             f"{means(a)} → {means(b)}"] for change, m, a, b in spec]
    table = Table("MTD, whole tiles at 64 px: more compute per model",
                  ["change", "model", "draws", "steps", "training time",
                   "image / pixel AUROC / AUPRO, before → after"],
                  rows, notes=["Before: one thread per model, two models side by side, Table 1 at width 1/4. "
                               "Pixel metrics at 64 px."])
    d = [paired(two, one, k) for k in METRICS]
    text = (f"Twice the time lifts the method's image AUROC from {f3(spec[0][2][0]['image_auroc'])} to "
            f"{f3(spec[0][3][0]['image_auroc'])} and the plain autoencoder's from {f3(spec[1][2][0]['image_auroc'])} "
            f"to {f3(spec[1][3][0]['image_auroc'])} (one draw each). Training alone on two threads gives "
            f"{steps(two)} steps instead of {steps(one)} and changes the method's metrics by {d[0].text()}, "
            f"{d[1].text()} and {d[2].text()}.")
    return Part(table, text)


# --------------------------------------------------------------------------- the cap on MTD's pixel AUROC

def _uneven(R: Results) -> tuple[list[dict], float, float, float]:
    """MTD's rows with a per-type pixel AUROC, uneven grinding's share of the defect pixels, the
    best uneven pixel AUROC among the rows, and the pooled pixel AUROC that caps."""
    share = _mtd64(R)["ssae"][0]["defect_pixel_share"]["Uneven"]
    mtd_rows = [r for rows in R.files.values() for r in rows
                if r.get("dataset") == "mtd" and metric(r, "pixel:Uneven") is not None]
    best = max(metric(r, "pixel:Uneven") for r in mtd_rows)
    return mtd_rows, share, best, (1 - share) + share * best


def uneven_cap(R: Results) -> Part:
    m = _mtd64(R)
    share = m["ssae"][0]["defect_pixel_share"]
    rows = []
    for t in DEFECTS:
        rows.append([t.lower(), pct(share[t]),
                     *(f2(mean([metric(r, f"pixel:{t}") for r in m[k]])) for k in ("ssae", "plain", "blur"))])
    weighted = {k: mean([sum(share[t] * metric(r, f"pixel:{t}") for t in DEFECTS) for r in m[k]]) for k in m}
    rows.append(["share-weighted mean of the rows above", "100 %",
                 *(f3(weighted[k]) for k in ("ssae", "plain", "blur"))])
    rows.append(["pooled pixel AUROC (measured)", "100 %",
                 *(f3(mean([metric(r, "pixel_auroc") for r in m[k]])) for k in ("ssae", "plain", "blur"))])
    table = Table("MTD: pixel AUROC per defect type (`mtd-64px` setting, six draws)",
                  ["defect type", "share of defect pixels", "the method", "plain autoencoder", "blur reference"],
                  rows, notes=["Per type: that type's test images and the good ones. The pooled value is close to "
                               "the mean of the per-type values weighted by each type's share of the defect pixels."])
    mtd_rows, su, best, cap = _uneven(R)
    text = (f"Uneven grinding holds {pct(su)} of MTD's defect pixels. The best uneven pixel AUROC among all "
            f"{len(mtd_rows)} MTD result rows kept (models and their recalibrations) is {f2(best)}; with that, "
            f"even a perfect score on every other type would give a pooled pixel AUROC of about {f2(cap)}. The "
            f"best pooled pixel AUROC among those rows is {f3(max(metric(r, 'pixel_auroc') for r in mtd_rows))}.")
    return Part(table, text)


# --------------------------------------------------------------------------- the chapter in brief

def summary(R: Results) -> str:
    """At most five sentences on what moves the numbers, each computed from the rows the parts
    below read: the training corruption, λ of eq. (1), the image score's reduction, retraining
    on a failed restoration check, and what caps MTD's pixel AUROC."""
    swap, other = _swap_or_not(_corruption_groups(R))
    mtd = _lam_mtd(R)
    d05 = [paired(mtd["0.05"], mtd["0.5"], k) for k in METRICS]
    groups = [(d, m, rs) for d, s, m, rs in _glance_groups(R)]
    lowest = [all(mean([r.get("image_auroc_sum") for r in rs]) <= mean([r.get(f"image_auroc_{k}") for r in rs])
                  for k in ("max", "contrast")) for _, _, rs in groups]
    rule, default, plain = _retry_rule(R)
    before, after = paired(default, plain, "image_auroc"), paired(rule, plain, "image_auroc")
    _, su, best, cap = _uneven(R)
    return " ".join([
        f"The training corruption decides whether the method learns its task on MTD: {passes(swap)} of {len(swap)} models trained "
        f"on swapped patches pass the restoration check, against {passes(other)} of {len(other)} trained on the "
        f"paper's elastic deformation or on shading.",
        f"With swapped patches, λ = 0.05 in eq. (1) instead of the paper's 0.5 moves MTD's image AUROC by "
        f"{signed(d05[0].diff)}, its pixel AUROC by {signed(d05[1].diff)} and its AUPRO by {signed(d05[2].diff)} "
        f"({d05[0].n} paired draws).",
        f"The paper's sum is the weakest image score of the same maps, below the max and the contrast, for "
        f"{sum(lowest)} of the {len(groups)} groups of models of the first table.",
        f"On the grid look-alike, retraining a draw that fails its restoration check with other initial weights "
        f"turns the method's image AUROC lead over the plain autoencoder from {signed(before.diff)} into "
        f"{signed(after.diff)}.",
        f"No lever lifts MTD's pixel AUROC past uneven grinding: it holds {pct(su)} of the defect pixels, its best "
        f"pixel AUROC in any row is {f2(best)}, and that caps the pooled value near {f2(cap)}.",
    ])


def reconcile(R: Results, models_dir: str | Path | None = None) -> str:
    """A paragraph on which numbers come from where: this chapter's 20-minute rows against the
    kept reference models of ``models_dir`` (default ``models/``), trained for hours, on the
    data sets they share, with each kept model's learning curve at 20 minutes beside it."""
    from . import models as K

    refs = {r.name: r for r in K.find(models_dir or K.MODELS)}
    rows = [r for rs in R.files.values() for r in rs]
    mins = sorted({round((r.get("train_seconds") or 0) / 60) for r in rows if r.get("train_seconds")})
    parts = [f"The tables of this chapter come from short runs, {mins[0]} to {mins[-1]} minutes of training per model "
             f"(`benchmarks/results/`); the numbers that stand for what the method reaches are those of the kept "
             f"reference models in `models/`, each trained for hours on one core and evaluated when packed "
             f"(`models/<data set>/<model>/metrics.json`)."] if mins else []
    shared = [("mtd", "MTD", "the `mtd-64px` setting", _mtd64(R)),
              ("mvtec-bottle", "the bottle copy", "the `cpu` profile", {m: _bottle(R, m) for m in ("ssae", "plain")})]
    for name, title, setting, short in shared:
        ref = refs.get(name)
        if ref is None or "ssae" not in ref.models:
            continue
        d = ref.models["ssae"]
        kept, t = K.recorded(d), K.training(d)
        at20 = [r for r in K.curve(d) if r.get("train_seconds") is not None and r["train_seconds"] <= 1200]
        keys = [k for k in METRICS if kept.get(k) is not None and all(metric(r, k) is not None for r in short["ssae"])]
        names = ", ".join(METRIC_NAMES[k] for k in keys)
        text = (f"On {title}, the kept model of the method ({t['steps']:,} steps, {t['hours']:.1f} h, "
                f"{kept.get('image_size')} px) reaches {' / '.join(f3(kept[k]) for k in keys)} ({names}), "
                f"where this chapter's {len(short['ssae'])} short runs of the method with {setting} average "
                f"{' / '.join(f3(mean([metric(r, k) for r in short['ssae']])) for k in keys)}")
        if at20:
            text += (f"; its own learning curve stood at {' / '.join(f3(at20[-1].get(k)) for k in keys)} after "
                     f"{at20[-1]['train_seconds'] / 60:.0f} minutes (step {at20[-1]['step']:,})")
        parts.append(text + ".")
    only = sorted(r.title for n, r in refs.items() if n not in {s[0] for s in shared})
    if only:
        parts.append(f"{', '.join(only)} have kept models only and no short runs here.")
    parts.append("A difference between two settings in the tables below says which way a choice moves a short "
                 "run, not how far a trained model ends from the paper.")
    return " ".join(parts)


#: every part of the chapter, in its order
PARTS = (glance, corruption, image_size, lam, learning_rate, retries, orientation, standardised, reductions,
         boxes, proxy, restoration, budget, uneven_cap)


def all_parts(R: Results) -> dict[str, Part]:
    return {f.__name__: f(R) for f in PARTS}
