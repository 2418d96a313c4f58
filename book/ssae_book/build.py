"""The papermill runner behind ``ssae-book`` (the notebooks' helpers are :mod:`ssae_book.book`).

``ssae-book`` turns the library into the published reproduction:

1. every notebook in ``notebooks/`` is executed with papermill into ``<out>/book/notebooks/``
   (working directory: that folder); the training and evaluation notebooks once per data set,
   as ``train_<slug>.ipynb`` and ``evaluate_<slug>.ipynb``; each evaluation writes its metrics
   to ``<out>/book/results/<slug>.json``;
2. the tables notebook runs last, on those results and on the kept GPU results in
   ``book/gpu_results/``;
3. ``_config.yml`` (with the build's substitutions), the chapters of ``book/`` and a
   ``_toc.yml`` (the fixed chapters plus a "Categories" part with a page per data set) are
   staged into ``<out>/book/``, every notebook of the TOC is checked for outputs, and
   ``jupyter-book build <out>/book --builder html -W -n --keep-going`` renders the HTML
   (execution off) into ``<out>/book/_build/html``.

A data set whose notebook fails is named at the end and gets a page saying that it failed;
the others still render. The exit status is non-zero if anything failed.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .book import EMBEDDED, LOOKALIKES, REPO, DataSet, dataset, hardware, kept_lookalike, write_result
from ssae.config import PROFILES
from ssae.errors import SsaeError
from .tables import classify, size_text

NOTEBOOKS = {
    "settings": "00_settings.ipynb",
    "method": "01_method.ipynb",
    "reference": "02_reference.ipynb",
    "train": "03_train.ipynb",
    "evaluate": "04_evaluate.ipynb",
    "curves": "05_learning_curves.ipynb",
    "tables": "06_tables.ipynb",
    "findings": "07_findings.ipynb",
    "objective1": "08_objective1.ipynb",
    "proposition2": "09_proposition2.ipynb",
    "theorems": "10_theorems.ipynb",
    "orthogonality": "11_orthogonality.ipynb",
    "geometry": "12_geometry.ipynb",
}
#: Training budget per data set (minutes) when ``--minutes`` is not given.
DEFAULT_MINUTES = {"smoke": None, "cpu": 1.5, "paper": None, "paper-fast": None}
#: Embedded categories compared against objective (4) and cut-out when ``--compare`` is not given.
DEFAULT_COMPARE = ("embedded:wood",)


# =========================================================================== data sets of a build

def shared_data(root: str | Path | None = None) -> list[str]:
    """The data sets found in ``../shared/data`` (relative to the repository) or ``root``:
    ``mtd/`` and every MVTec-layout folder in ``mvtec_ad/``."""
    root = Path(root) if root is not None else REPO.parent / "shared" / "data"
    return expand_data(root) if root.is_dir() else []


def expand_data(path: str | Path) -> list[str]:
    """A data set folder as itself; a collection (holding ``mtd/`` or ``mvtec_ad/`` or MVTec
    category folders) as the data sets inside it."""
    p = Path(path)
    if not p.exists():
        raise SsaeError(f"data path not found: {p}")
    if (p / "MT_Free").is_dir() or ((p / "train" / "good").is_dir() and (p / "test").is_dir()):
        return [str(p)]
    found = []
    if (p / "mtd" / "MT_Free").is_dir():
        found.append(str(p / "mtd"))
    for parent in (p / "mvtec_ad", p):
        if parent.is_dir():
            for sub in sorted(parent.iterdir()):
                if (sub / "train" / "good").is_dir() and (sub / "test").is_dir():
                    found.append(str(sub))
    if not found:
        raise SsaeError(f"no data set in {p}: expected an MVTec AD category folder (train/good, test/), "
                        f"an MTD folder (MT_Free/) or a folder holding them")
    return found


def plan_datasets(categories: list[str] | None = None, data: list[str] | None = None,
                  shared: str | Path | None | bool = True) -> list[DataSet]:
    """The data sets of a book build, in order, with unique slugs.

    ``categories``: embedded categories (``carpet`` or ``embedded:carpet``); None means all five.
    ``data``: extra folders; the value ``none`` switches off the automatic ``../shared/data``.
    ``shared``: True looks in ``../shared/data``; a path looks there; False/None does not.
    """
    data = list(data or [])
    if any(d.lower() == "none" for d in data):
        shared = False
        data = [d for d in data if d.lower() != "none"]
    specs: list[str] = []
    for c in (EMBEDDED if categories is None else categories):
        c = c if c.startswith("embedded:") else f"embedded:{c}"
        if c.split(":", 1)[1] not in EMBEDDED:
            raise SsaeError(f"unknown embedded category {c!r}; choose from {', '.join(EMBEDDED)}")
        specs.append(c)
    if shared:
        specs += shared_data(None if shared is True else shared)
    for d in data:
        specs += expand_data(d)
    out, seen, slugs = [], set(), set()
    for s in specs:
        key = s if s.startswith("embedded:") else str(Path(s).resolve())
        if key in seen:
            continue
        seen.add(key)
        ds = dataset(s)
        slug, i = ds.slug, 2
        while slug in slugs:
            slug, i = f"{ds.slug}-{i}", i + 1
        slugs.add(slug)
        out.append(dataclasses.replace(ds, slug=slug))
    return out


def select_compare(datasets: list[DataSet], compare: list[str] | None) -> set[str]:
    """Slugs of the data sets trained also with objective (4) and cut-out."""
    wanted = DEFAULT_COMPARE if compare is None else compare
    out = set()
    for w in wanted:
        for ds in datasets:
            names = {ds.slug, ds.spec, ds.spec.split(":", 1)[-1], Path(ds.spec).name}
            if w in names or f"embedded:{w}" == ds.spec:
                out.add(ds.slug)
    return out


# =========================================================================== the runner

@dataclass
class Outcome:
    name: str                      # notebook output stem, e.g. "train_embedded-carpet"
    ok: bool
    seconds: float
    error: str = ""
    slug: str | None = None


@dataclass
class BookPlan:
    profile: str
    device: str
    datasets: list[DataSet]
    compare: set[str]
    minutes: float | None
    out: Path
    seed: int = 0
    repo: Path = REPO

    @property
    def book_dir(self) -> Path:
        return self.out / "book"

    @property
    def runs_dir(self) -> Path:
        return self.out / "runs" / self.profile

    @property
    def results_dir(self) -> Path:
        return self.book_dir / "results"

    @property
    def nb_dir(self) -> Path:
        return self.book_dir / "notebooks"


class Progress:
    """Progress lines with the elapsed time: ``[ 3:12] train embedded-carpet ... ok (118 s)``."""

    def __init__(self, log: Callable[[str], None] | None = None):
        self.t0 = time.time()
        self.log = log or (lambda s: print(s, flush=True))

    def __call__(self, msg: str) -> None:
        e = int(time.time() - self.t0)
        self.log(f"[{e // 60:3d}:{e % 60:02d}] {msg}")


def execute_notebook(template: Path, output: Path, parameters: dict[str, Any], cwd: Path,
                     log_file: Path | None = None) -> str:
    """Run one notebook with papermill; return '' on success or a one-line error.

    The kernel process's own stderr (start-up chatter) goes to ``log_file`` when given."""
    import papermill as pm

    output.parent.mkdir(parents=True, exist_ok=True)
    saved = None
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        sys.stderr.flush()
        saved = os.dup(2)
        fd = os.open(str(log_file), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
    try:
        pm.execute_notebook(str(template), str(output), parameters=parameters, cwd=str(cwd),
                            kernel_name="python3", progress_bar=False, log_output=False,
                            request_save_on_cell_execute=False)
    except Exception as e:  # noqa: BLE001 - any failure of a notebook is reported by name
        ename = getattr(e, "ename", type(e).__name__)
        evalue = str(getattr(e, "evalue", str(e))).strip()
        return f"{ename}: {evalue.splitlines()[0][:300] if evalue else ''}"
    finally:
        if saved is not None:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
    return ""


def hide_parameters(path: Path) -> None:
    """Tag the parameters cells of an executed notebook (the template's and papermill's
    injected one) ``remove-cell``, so that the book shows neither."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if ("parameters" in tags or "injected-parameters" in tags) and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, str(path))


def retitle(path: Path, title: str) -> None:
    """Put ``title`` into the first heading of an executed notebook ("# Training one data set"
    becomes "# Training: <title>"), so that each data set's pages have their own names."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("# "):
            first, _, rest = cell.source.lstrip().partition("\n")
            head = first[2:].replace(" one data set", "").strip()
            cell.source = f"# {head}: {title}\n{rest}"
            break
    nbformat.write(nb, str(path))


def has_outputs(path: Path) -> bool:
    """True if the notebook has at least one code cell output."""
    import nbformat

    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception:  # noqa: BLE001
        return False
    return any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


def toc_files(toc: dict) -> list[str]:
    """Every file listed in a jb-book TOC (root, chapters, sections)."""
    out = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                out.append(e["file"])
            walk(e.get("sections"))
            walk(e.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []) or []:
        walk(part.get("chapters"))
    return out


def staged_toc(repo: Path, pages: list[tuple[DataSet, bool]],
               references: list[tuple[str, bool]] = ()) -> dict:
    """The top-level ``_toc.yml`` plus a "Reference models" part (one executed page per kept
    model's data set) and a "Categories" part: one page per data set trained in this build,
    with its training and evaluation notebooks as sections (a failed data set: the page only)."""
    import yaml

    toc = yaml.safe_load((repo / "_toc.yml").read_text(encoding="utf-8"))
    done = [{"file": f"notebooks/reference_{name}"} for name, ok in references if ok]
    if done:
        parts = toc.setdefault("parts", [])
        parts.insert(min(1, len(parts)), {"caption": "Reference models", "chapters": done})
    if pages:
        chapters = []
        for ds, ok in pages:
            entry: dict[str, Any] = {"file": f"book/categories/{ds.slug}"}
            if ok:
                entry["sections"] = [{"file": f"notebooks/train_{ds.slug}"},
                                     {"file": f"notebooks/evaluate_{ds.slug}"}]
            chapters.append(entry)
        parts = toc.setdefault("parts", [])
        parts.insert(min(2 if done else 1, len(parts)), {"caption": "Categories", "chapters": chapters})
    return toc


def category_page(ds: DataSet, result: dict[str, Any] | None, error: str = "", repo: Path = REPO) -> str:
    """Markdown of a data set's page (a summary of its result, or the failure); the data folder
    as :func:`public_path` shows it."""
    lines = [f"# {ds.title}", ""]
    spec = ds.spec if ds.spec.startswith("embedded:") else public_path(ds.spec, repo)
    if error or not result or result.get("status") != "ok":
        lines += [":::{admonition} This run failed", ":class: error", "",
                  f"The run on `{spec}` failed: {error or (result or {}).get('error', 'unknown error')}",
                  "", "Its notebooks are not part of the book; the other data sets are.", ":::", ""]
        return "\n".join(lines)
    kind = classify(result)
    lines += [f"Data: **{kind.label}** (`{spec}`).", ""]
    if kind.kind != "mvtec":
        lines += ["These numbers are not MVTec AD numbers and do not enter the MVTec AD rows "
                  "of the tables.", ""]

    def pct(v):
        return "n/a" if v is None else f"{100 * float(v):.1f}"

    lines += ["| image AUROC (%), calibrated (ours) | image AUROC (%), paper's sum | pixel AUROC (%) | AUPRO (%) "
              "| image size | profile | hardware | date |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |",
              f"| {pct(result.get('image_auroc'))} | {pct(result.get('image_auroc_paper_sum'))} | "
              f"{pct(result.get('pixel_auroc'))} | "
              f"{pct(result.get('aupro'))} | {size_text(result.get('image_size'))} | {result.get('profile')} | "
              f"{result.get('hardware')} | {str(result.get('date', ''))[:19]} |", ""]
    lines += ["Image AUROC, calibrated (ours): with the image score the calibration chose on validation images; "
              "paper's sum: with the paper's image score, the sum of eq. (3)'s map at the same n and k, "
              "unstandardised.", ""]
    comp = result.get("comparison")
    if comp:
        lines += [f"Objective (4): image AUROC {pct(comp['objective4'].get('image_auroc'))}, "
                  f"pixel AUROC {pct(comp['objective4'].get('pixel_auroc'))}; ensemble pixel AUROC "
                  f"{pct(comp['ensemble'].get('pixel_auroc'))}; cut-out: image AUROC "
                  f"{pct(comp['cutout'].get('image_auroc'))}.", ""]
    lines += ["The two sections of this page are the executed notebooks: training, then evaluation.", ""]
    return "\n".join(lines)


def public_path(path: str | Path, repo: Path = REPO) -> str:
    """A path as the book may show it, never a path of the machine: inside the repository
    relative to it, beside it (``../shared/data/mtd``) relative to it too, else by its last
    part (``.../out``)."""
    p = Path(path).resolve()
    for base, prefix in ((repo.resolve(), ""), (repo.resolve().parent, "../")):
        try:
            return prefix + str(p.relative_to(base))
        except ValueError:
            continue
    return f".../{p.name}"


def public_args(args: list[str], repo: Path) -> list[str]:
    """Command-line arguments as the book may show them: absolute paths by :func:`public_path`."""
    return [public_path(a, repo) if os.path.isabs(a) else a for a in args]


#: the line of book/intro.md that the runner replaces by :func:`verdict_box` (its first screen)
VERDICT = "<!-- verdict: filled in by ssae-book from models/ and this build's results -->"
#: the line of book/intro.md that the runner replaces by :func:`glance`
GLANCE = "<!-- results at a glance: filled in by ssae-book from models/ -->"


def verdict_box(references, results=()) -> str:
    """The box at the top of the intro (:func:`ssae_book.models.verdict_box`): what was
    reproduced and what was not, a sentence per kept model's data set and a compact table."""
    from .models import verdict_box as box
    return box(references, list(results))


def glance(references) -> str:
    """The intro's section on the kept models, below its verdict box: the generated paragraph
    over every data set, then the verdict of each, from the numbers recorded in ``models/``."""
    from .models import overview, verdict

    if not references:
        return ("No trained reference model is kept in `models/`, so this build shows early-training "
                "numbers only (the Categories pages).")
    return "\n\n".join([overview(references), *(verdict(r) for r in references)])


def time_substitutions(minutes: float | None) -> dict[str, str]:
    """The training times the book's Markdown pages name, generated: ``build_minutes`` (what this
    build trained each data set), ``cpu_minutes`` (the ``cpu`` profile's budget of ``ssae
    train``), ``paper_steps`` (the ``paper`` profile's steps) and ``reference_hours`` (the kept
    reference models' training, from ``models/``)."""
    from ssae.config import profile as named
    from .models import find, training

    hours = sorted({f"{training(d)['hours']:.1f}" for r in find() for d in r.models.values()})
    return {
        "build_minutes": f"{minutes:g} minutes" if minutes else "the profile's steps",
        "cpu_minutes": f"{named('cpu').train.max_minutes:g} minutes",
        "paper_steps": f"{named('paper').train.steps:,} steps",
        "reference_hours": (" to ".join(dict.fromkeys((hours[0], hours[-1]))) + " h") if hours else "no",
    }


def staged_config(repo: Path, subs: dict[str, str]) -> str:
    """The top-level ``_config.yml`` with the build's MyST substitutions filled in."""
    import yaml

    cfg = yaml.safe_load((repo / "_config.yml").read_text(encoding="utf-8"))
    cfg.setdefault("parse", {}).setdefault("myst_substitutions", {}).update(subs)
    return yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)


def ensure_mathjax(repo: Path, progress: Progress) -> None:
    target = repo / "book" / "_static" / "mathjax" / "tex-chtml.js"
    if target.is_file():
        return
    progress("vendoring MathJax (scripts/vendor_mathjax.sh)")
    r = subprocess.run(["bash", str(repo / "scripts" / "vendor_mathjax.sh")], cwd=repo,
                       capture_output=True, text=True)
    if r.returncode != 0 or not target.is_file():
        raise SsaeError("MathJax is not vendored (book/_static/mathjax/tex-chtml.js missing) and "
                        f"scripts/vendor_mathjax.sh failed: {(r.stderr or r.stdout).strip()[-300:]}")


#: the jupyter-book command line's own entry point, run by this interpreter
JUPYTER_BOOK_MAIN = "import sys; from jupyter_book.cli.main import main; sys.argv[0] = 'jupyter-book'; sys.exit(main())"


def jupyter_book_command() -> list[str]:
    """The jupyter-book of this Python environment, whatever is on PATH: the ``jupyter-book``
    script beside ``sys.executable`` (run by it), else the command line's entry point
    (:data:`JUPYTER_BOOK_MAIN`); a one-line error when jupyter-book is not installed here."""
    script = Path(sys.executable).parent / "jupyter-book"
    if script.is_file():
        return [sys.executable, str(script)]
    try:
        import jupyter_book.cli.main  # noqa: F401
    except ImportError:
        raise SsaeError(f"jupyter-book is not installed for {sys.executable}: pip install 'jupyter-book==1.0.4.post1' "
                        f"(or bash scripts/install.sh)") from None
    return [sys.executable, "-c", JUPYTER_BOOK_MAIN]


def build_html(book_dir: Path, progress: Progress, command: list[str] | None = None) -> tuple[int, str]:
    """``jupyter-book build <book_dir> --builder html -W -n --keep-going`` with this environment's
    jupyter-book (:func:`jupyter_book_command`, or ``command``); (status, log tail). A build that
    exits 0 without writing ``<book_dir>/_build/html/index.html`` is a failure (status 1)."""
    index = Path(book_dir) / "_build" / "html" / "index.html"
    index.unlink(missing_ok=True)  # an index of an earlier build proves nothing
    cmd = (command or jupyter_book_command()) + ["build", str(book_dir), "--builder", "html", "-W", "-n",
                                                 "--keep-going"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    text = (r.stdout or "") + (r.stderr or "")
    warnings = [ln for ln in text.splitlines() if "WARNING" in ln or "ERROR" in ln]
    tail = "\n".join(warnings[-30:]) if warnings else text[-2000:]
    if r.returncode == 0 and not index.is_file():
        return 1, f"the build exited 0 but wrote no {index} (command: {' '.join(cmd[:3])} ...)\n{tail}"
    return r.returncode, tail


def build_book(profile: str = "cpu", *, categories: list[str] | None = None, data: list[str] | None = None,
               device: str = "cpu", minutes: float | None = None, compare: list[str] | None = None,
               out: str | Path = "_build", shared: str | Path | bool = True, seed: int = 0,
               build: bool = True, log: Callable[[str], None] | None = None, repo: Path = REPO,
               models_dir: str | Path | None = None, argv: list[str] | None = None,
               lookalikes: str | Path = LOOKALIKES) -> int:
    """Run every notebook and build the book; returns the exit status (0: all went well).
    ``argv``: the ``ssae-book`` arguments, shown on the reproducing page. A look-alike with a kept
    model of the build's settings in ``lookalikes`` (:func:`ssae_book.book.kept_lookalike`) is
    evaluated through it instead of being trained.

    The trained reference models in ``models_dir`` (default: the repository's ``models/``)
    get a page each and the learning-curves chapter; a data set found in ``../shared/data``
    that has a reference model is evaluated through it instead of being trained again."""
    from .models import MODELS, find as find_references, thresholds_text
    if profile not in PROFILES:
        raise SsaeError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    progress = Progress(log)
    for name in NOTEBOOKS.values():
        if not (repo / "notebooks" / name).is_file():
            raise SsaeError(f"notebook missing: {repo / 'notebooks' / name} (ssae-book runs from a source checkout)")
    references = find_references(models_dir or MODELS)
    kept = {str(r.data_path()) for r in references if r.data_path() is not None}
    datasets = [ds for ds in plan_datasets(categories, data, shared)
                if ds.spec.startswith("embedded:") or str(Path(ds.spec).resolve()) not in kept]
    plan = BookPlan(profile=profile, device=device, datasets=datasets,
                    compare=select_compare(datasets, compare),
                    minutes=minutes if minutes is not None else DEFAULT_MINUTES.get(profile),
                    out=Path(out).resolve(), seed=seed, repo=repo)
    if build:
        ensure_mathjax(repo, progress)
    progress(f"book: profile {profile}, device {device}, {len(datasets)} data set(s): "
             + ", ".join(d.slug for d in datasets)
             + (f"; objective (4) and cut-out for {', '.join(sorted(plan.compare))}" if plan.compare else "")
             + (f"; {plan.minutes:g} min training per data set" if plan.minutes else "")
             + (f"; reference models: {', '.join(r.name for r in references)}" if references else ""))
    kept_names = [d.slug for d in datasets if kept_lookalike(d.spec, profile, plan.minutes, seed, lookalikes)]
    if kept_names:
        progress(f"kept look-alike models (evaluated, not trained): {', '.join(kept_names)}")

    # fresh staging folders (run directories of the profile too: a book build is reproducible)
    for d in (plan.nb_dir, plan.results_dir, plan.book_dir / "book", plan.book_dir / "_build"):
        shutil.rmtree(d, ignore_errors=True)
    shutil.rmtree(plan.runs_dir, ignore_errors=True)
    plan.nb_dir.mkdir(parents=True)
    plan.results_dir.mkdir(parents=True)

    outcomes: list[Outcome] = []
    common = {"profile": profile, "device": device, "seed": seed}

    def run(key: str, out_name: str, params: dict[str, Any], slug: str | None = None,
            title: str = "") -> Outcome:
        progress(f"run {out_name} ...")
        t0 = time.time()
        err = execute_notebook(repo / "notebooks" / NOTEBOOKS[key], plan.nb_dir / f"{out_name}.ipynb",
                               params, plan.nb_dir, plan.out / "logs" / f"{out_name}.log")
        o = Outcome(out_name, not err, time.time() - t0, err, slug)
        if (plan.nb_dir / f"{out_name}.ipynb").is_file():
            hide_parameters(plan.nb_dir / f"{out_name}.ipynb")
            if title:
                retitle(plan.nb_dir / f"{out_name}.ipynb", title)
        outcomes.append(o)
        progress(f"    {out_name}: {'ok' if o.ok else 'FAILED: ' + err} ({o.seconds:.0f} s)")
        return o

    run("settings", "00_settings", {"profile": profile})
    models_param = str(models_dir or "")
    run("curves", "05_learning_curves", {"models_dir": models_param})
    reference_pages: list[tuple[str, bool]] = []
    for ref in references:
        o = run("reference", f"reference_{ref.name}", {"name": ref.name, "models_dir": models_param,
                                                         "device": device}, ref.name, ref.title)
        reference_pages.append((ref.name, o.ok))

    pages: list[tuple[DataSet, bool]] = []
    errors: dict[str, str] = {}
    for ds in datasets:
        run_dir = plan.runs_dir / ds.slug
        results_json = plan.results_dir / f"{ds.slug}.json"
        kept = kept_lookalike(ds.spec, profile, plan.minutes, seed, lookalikes)
        params = dict(common, data=ds.spec, run_dir=str(run_dir), minutes=plan.minutes or 0.0,
                      results_json=str(results_json), title=ds.title, slug=ds.slug,
                      compare=ds.slug in plan.compare,
                      compare_minutes=(plan.minutes / 2 if plan.minutes else 0.0), kept=str(kept or ""))
        o = run("train", f"train_{ds.slug}", params, ds.slug, ds.title)
        if o.ok:
            o = run("evaluate", f"evaluate_{ds.slug}", params, ds.slug, ds.title)
        if o.ok and not results_json.is_file():
            o.ok, o.error = False, f"{o.name} wrote no {results_json.name}"
        if not o.ok:
            errors[ds.slug] = f"{o.name}: {o.error}"
            write_result(results_json, {"data_spec": ds.spec, "slug": ds.slug, "status": "failed",
                                        "error": errors[ds.slug], "profile": profile, "device": device,
                                        "date": _dt.datetime.now().isoformat(timespec="seconds")})
        pages.append((ds, o.ok))

    ok_sets = [ds for ds, ok in pages if ok]
    ref = next((ds for ds in ok_sets if ds.spec == "embedded:carpet"), ok_sets[0] if ok_sets else None)
    ref_run, ref_data = (str(plan.runs_dir / ref.slug), ref.spec) if ref else ("", "")
    run("method", "01_method", dict(common, run_dir=ref_run, data=ref_data or "embedded:carpet",
                                    models_dir=models_param))
    run("proposition2", "09_proposition2", dict(common, object_data=next(
        (d.spec for d in plan_datasets([], data, shared) if Path(d.spec).name == "bottle"), "")))
    run("theorems", "10_theorems", dict(common))
    # Figure 9 with a trained model: a kept model of a real fabric when its data is here
    fabric = next((r for r in references if r.name.startswith("aitex") and "ssae" in r.models
                   and r.data_path() is not None), None)
    orth_run, orth_data = ((str(fabric.models["ssae"]), str(fabric.data_path())) if fabric
                           else (ref_run, ref_data))
    run("orthogonality", "11_orthogonality", dict(common, run_dir=orth_run, data=orth_data))
    run("geometry", "12_geometry", dict(common))
    run("findings", "07_findings", {"models_dir": models_param})
    run("objective1", "08_objective1", {})
    run("tables", "06_tables", dict(common, results_dir=str(plan.results_dir),
                                    gpu_dir=str(repo / "book" / "gpu_results")))

    # ---- stage the book
    import yaml

    failed_names = [o.name for o in outcomes if not o.ok]
    (plan.book_dir / "book" / "categories").mkdir(parents=True, exist_ok=True)
    for md in (repo / "book").glob("*.md"):
        shutil.copy2(md, plan.book_dir / "book" / md.name)
    intro = plan.book_dir / "book" / "intro.md"
    from .tables import load_results
    measured = load_results(plan.results_dir, repo / "book" / "gpu_results")
    intro.write_text(intro.read_text(encoding="utf-8").replace(VERDICT, verdict_box(references, measured))
                     .replace(GLANCE, glance(references)), encoding="utf-8")
    static = plan.book_dir / "book" / "_static"
    try:
        static.symlink_to(repo / "book" / "_static", target_is_directory=True)
    except OSError:
        shutil.copytree(repo / "book" / "_static", static)
    for ds, ok in pages:
        res = None
        p = plan.results_dir / f"{ds.slug}.json"
        if p.is_file():
            res = json.loads(p.read_text(encoding="utf-8"))
        (plan.book_dir / "book" / "categories" / f"{ds.slug}.md").write_text(
            category_page(ds, res, errors.get(ds.slug, ""), repo), encoding="utf-8")
    toc = staged_toc(repo, pages, reference_pages)
    (plan.book_dir / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False), encoding="utf-8")
    subs = {
        "build_profile": profile,
        "build_data": "; ".join(f"{d.title}" for d in datasets) or "none",
        "build_hardware": hardware(device),
        "build_date": _dt.datetime.now().isoformat(timespec="seconds"),
        "build_command": "`" + ("ssae-book " + " ".join(public_args(argv or [], repo))).strip() + "`",
        "build_failed": ", ".join(failed_names) or "none",
        "threshold_check": thresholds_text(),
        **time_substitutions(plan.minutes),
    }
    (plan.book_dir / "_config.yml").write_text(staged_config(repo, subs), encoding="utf-8")

    # ---- every notebook of the TOC must have outputs
    missing = []
    for f in toc_files(toc):
        if not f.startswith("notebooks/"):
            continue
        path = plan.book_dir / f"{f}.ipynb"
        if not path.is_file():
            template = repo / f"{f}.ipynb"
            if template.is_file():
                shutil.copy2(template, path)
            missing.append(f"{f}.ipynb (not executed)")
        elif not has_outputs(path):
            missing.append(f"{f}.ipynb (no outputs)")
    status = 0
    if missing:
        status = 1
        for m in missing:
            progress(f"ERROR: notebook without outputs in the TOC: {m}")

    if build:
        progress(f"jupyter-book build {plan.book_dir} --builder html -W -n --keep-going ...")
        rc, tail = build_html(plan.book_dir, progress)
        if rc != 0:
            status = 1
            progress(f"ERROR: jupyter-book build failed (status {rc}):\n{tail}")
        else:
            progress(f"book: {plan.book_dir / '_build' / 'html' / 'index.html'}")

    if failed_names:
        status = 1
        progress("FAILED notebooks: " + ", ".join(failed_names))
    if errors:
        progress("FAILED data sets: " + "; ".join(f"{k} ({v})" for k, v in errors.items()))
    progress("done" if status == 0 else "done, with failures (exit status 1)")
    return status


def make_parser() -> argparse.ArgumentParser:
    b = argparse.ArgumentParser(prog="ssae-book", description="Run the notebooks with papermill and build "
                                "the Jupyter Book (from a source checkout of ssae).")
    b.add_argument("--profile", choices=PROFILES, default="cpu")
    b.add_argument("--data", action="append", help="extra data folders (MVTec AD or MTD layout)")
    b.add_argument("--categories", nargs="*", help="embedded categories (default: all five)")
    b.add_argument("--device", default="cpu")
    b.add_argument("--minutes", type=float, help="training budget per category")
    b.add_argument("--compare", nargs="*", help="categories also trained with objective (4) and cut-out")
    b.add_argument("--out", default="_build", help="build folder")
    b.add_argument("--models", help="folder of packed reference models (default: the repository's models/)")
    return b


def main(argv=None) -> int:
    """Entry point of ``ssae-book``."""
    from ssae.cli import check_device

    args = make_parser().parse_args(argv)
    try:
        check_device(args.device)
        return build_book(
            profile=args.profile, categories=args.categories, data=args.data, device=args.device,
            minutes=args.minutes, compare=args.compare, out=args.out, shared=True, seed=0,
            models_dir=args.models, argv=list(sys.argv[1:] if argv is None else argv))
    except SsaeError as e:
        print(f"ssae-book: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
