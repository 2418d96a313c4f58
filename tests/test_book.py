"""The book: `ssae-book` in the smoke profile on one embedded category, rendered with Jupyter
Book and loaded in headless Chromium; and the runner's failure handling.

The Chromium test installs the Debian package ``chromium`` with apt-get when it is missing;
it is skipped only when that is impossible, with the reason.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
import yaml

from ssae_book import book, build as bookbuild

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking"]


# ----------------------------------------------------------------------------- helpers

def ensure_chromium() -> str:
    """Path of chromium; installs the Debian package with apt-get when missing."""
    for name in ("chromium", "chromium-browser"):
        exe = shutil.which(name)
        if exe:
            return exe
    if not shutil.which("apt-get"):
        pytest.skip("chromium is not installed and apt-get is not available to install it")
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        pytest.skip("chromium is not installed and installing it with apt-get needs root")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log = []
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        log.append((r.stdout + r.stderr)[-400:])
        if r.returncode != 0:
            pytest.skip(f"chromium is missing and `{' '.join(cmd)}` failed: {log[-1].strip()}")
    exe = shutil.which("chromium")
    if not exe:
        pytest.skip("apt-get install chromium succeeded but no chromium executable was found")
    return exe


def chromium(exe: str, args: list[str], profile_dir: Path, timeout: int = 120) -> str:
    profile_dir.mkdir(parents=True, exist_ok=True)
    cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return r.stdout


class Links(HTMLParser):
    """Collects the resources a page loads (script src, stylesheet/preload href, img src)."""

    def __init__(self):
        super().__init__()
        self.resources: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.resources.append(a["src"])
        elif tag == "link" and a.get("href") and (a.get("rel") or "") in ("stylesheet", "preload", "icon",
                                                                           "modulepreload"):
            self.resources.append(a["href"])
        elif tag == "img" and a.get("src"):
            self.images.append(a["src"])
            self.resources.append(a["src"])


def parse(html: str) -> Links:
    p = Links()
    p.feed(html)
    return p


def png_outputs(path: Path) -> int:
    nb = nbformat.read(str(path), as_version=4)
    return sum(1 for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", []) if "image/png" in o.get("data", {}))


def bookbuild_refs():
    from ssae_book import models as R
    return R.find()


#: appended to a copy of the built intro: after loading, writes where the verdict box and its
#: table lie (CSS pixels) into an element that --dump-dom shows
MEASURE = """<script>
window.addEventListener('load', () => setTimeout(() => {
  const t = document.querySelector('table.ssae-verdict');
  const box = document.querySelector('div.admonition.important');
  const col = t && (t.closest('article') || t.closest('main'));
  const out = document.createElement('pre');
  out.id = 'ssae-measure';
  out.textContent = JSON.stringify(t ? {right: t.getBoundingClientRect().right, viewport: window.innerWidth,
    column: col.getBoundingClientRect().right, box_top: box.getBoundingClientRect().top,
    scroll: document.documentElement.scrollWidth} : {missing: true});
  document.body.appendChild(out);
}, 500));
</script>"""


def test_the_intro_opens_with_the_generated_verdict():
    """book/intro.md holds the verdict box's marker before its first section, and the counting
    sentences' marker after it; both are filled in from models/ at build time."""
    text = (REPO / "book" / "intro.md").read_text(encoding="utf-8")
    assert bookbuild.VERDICT in text, "the intro has lost its verdict box"
    assert text.index(bookbuild.VERDICT) < text.index("\n## ")
    assert bookbuild.GLANCE in text and text.index(bookbuild.GLANCE) > text.index(bookbuild.VERDICT)


# ----------------------------------------------------------------------------- the real build

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    cmd = [sys.executable, "-m", "ssae_book.build", "--profile", "smoke", "--categories", "carpet",
           "--data", "none", "--out", str(out)]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1500)
    return {"out": out, "rc": r.returncode, "log": r.stdout + r.stderr,
            "html": out / "book" / "_build" / "html", "book": out / "book"}


@pytest.mark.slow
def test_runner_builds_the_book(built):
    assert built["rc"] == 0, built["log"][-4000:]
    log = built["log"]
    assert re.search(r"\[\s*\d+:\d\d\] run train_embedded-carpet", log), log[-2000:]
    assert "jupyter-book build" in log and "index.html" in log
    nbs = built["book"] / "notebooks"
    names = sorted(p.stem for p in nbs.glob("*.ipynb"))
    assert "train_embedded-carpet" in names and "evaluate_embedded-carpet" in names
    for p in nbs.glob("*.ipynb"):
        assert bookbuild.has_outputs(p), p.name
    res = json.loads((built["book"] / "results" / "embedded-carpet.json").read_text())
    assert res["status"] == "ok" and res["profile"] == "smoke" and res["data_spec"] == "embedded:carpet"
    toc = yaml.safe_load((built["book"] / "_toc.yml").read_text())
    assert "book/categories/embedded-carpet" in bookbuild.toc_files(toc)
    intro = (built["html"] / "book" / "intro.html").read_text(encoding="utf-8")
    words = re.sub(r"<[^>]+>", "", intro)
    assert "{{ build" not in words and "ssae-book --profile smoke" in words
    # the intro opens with the verdict box, before its first section: what was and was not
    # reproduced, a sentence per kept model and the table with both image scores
    start = intro.index("<h1", intro.index("<article"))  # the page's heading, not the print TOC's
    first = intro[start:intro.index("<section", start)]
    assert re.search(r'<div class="(?=[^"]*\badmonition\b)(?=[^"]*\bimportant\b)', first), first[:2000]
    shown = re.sub(r"<[^>]+>", "", first).replace("\u2019", "'")  # the book's typographic apostrophes
    assert "Reproduced:" in shown and "Not reproduced:" in shown
    models = book.REPO / "models"
    if any(models.glob("*/*/metrics.json")):
        assert "ssae-verdict" in first and "paper's sum" in shown and "calibrated (ours)" in shown
        for ref in bookbuild_refs():
            assert ref.title in shown, ref.title
    # below it, the counting sentences and each data set's verdict
    body = re.search(r'<section id="what-the-trained-models-show-data-set-by-data-set">(.*?)</section>',
                     intro, re.S).group(1)
    section = re.sub(r"<[^>]+>", "", body)
    if any(models.glob("*/*/metrics.json")):
        assert "restoration check" in section and "image AUROC" in section
        assert section.split("#", 1)[1].lstrip().startswith("Over the")  # the overview over every data set first
    else:
        assert "No trained reference model is kept" in section
    for page in built["html"].rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        # no parameters cell is shown, and no page names a path of the machine that built it
        assert "tag_parameters" not in text and "tag_injected-parameters" not in text, page.name
        shown = re.sub(r"<[^>]+>", " ", text)
        assert not re.search(r"(?<![\w.])/(tmp|work|root|home)/", shown), (page.name, re.findall(
            r"\S*/(?:tmp|work|root|home)/\S*", shown)[:3])
    # no file of the HTML folder, sources and scripts included, holds a path of the machine
    for f in built["html"].rglob("*"):
        if f.is_file():
            found = re.search(rb"(?<![\w.])/(tmp|work|root|home)/[\w.-]", f.read_bytes())
            assert not found, (str(f.relative_to(built["html"])), found.group(0))
    assert not list(built["html"].rglob("*.ipynb")), "notebook sources are copied into the HTML folder"
    cfg = yaml.safe_load((built["book"] / "_config.yml").read_text())
    assert cfg["execute"]["execute_notebooks"] == "off"
    assert cfg["parse"]["myst_substitutions"]["build_profile"] == "smoke"


@pytest.mark.slow
def test_book_is_offline(built):
    """No page loads a script, stylesheet, font or image from the network; MathJax is local."""
    html_dir = built["html"]
    assert built["rc"] == 0, built["log"][-3000:]
    pages = list(html_dir.rglob("*.html"))
    assert len(pages) >= 12
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for res in parse(text).resources:
            assert not re.match(r"^(https?:)?//", res), f"{page.relative_to(html_dir)} loads {res}"
    intro = (html_dir / "book" / "intro.html").read_text(encoding="utf-8")
    assert re.search(r'<script[^>]+src="[^"]*_static/mathjax/tex-chtml\.js', intro)
    assert (html_dir / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert (html_dir / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
    from jupyter_book.config import get_final_config
    sphinx_cfg, _ = get_final_config(user_yaml=built["book"] / "_config.yml", cli_config={"latex_individualpages": False},
                                     sourcedir=built["book"])
    assert "sphinx.ext.intersphinx" not in sphinx_cfg["extensions"]
    assert sphinx_cfg["mathjax_path"] == "mathjax/tex-chtml.js"
    for css in html_dir.rglob("*.css"):
        text = css.read_text(encoding="utf-8", errors="replace")
        for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", text):
            assert not re.match(r"^(https?:)?//", url), f"{css.name} loads {url}"
        assert not re.search(r"@import\s+(url\()?['\"]?(https?:)?//", text), css.name


@pytest.mark.slow
def test_chromium_renders_every_chapter(built, tmp_path):
    assert built["rc"] == 0, built["log"][-3000:]
    exe = ensure_chromium()
    html_dir = built["html"]
    toc = yaml.safe_load((built["book"] / "_toc.yml").read_text())
    for i, f in enumerate(bookbuild.toc_files(toc)):
        page = html_dir / f"{f}.html"
        assert page.is_file(), f
        dom = chromium(exe, ["--virtual-time-budget=5000", "--dump-dom", page.as_uri()], tmp_path / f"p{i}")
        assert "<h1" in dom, f"{f}: no heading in the rendered page"
        static = page.read_text(encoding="utf-8")
        if 'class="math' in static:
            assert "mjx-container" in dom, f"{f}: maths not typeset by MathJax"
        if f.startswith("notebooks/"):
            n_png = png_outputs(built["book"] / f"{f}.ipynb")
            imgs = [s for s in parse(dom).images if "_images/" in s]
            assert len(imgs) >= n_png, f"{f}: {len(imgs)} images shown, {n_png} figures in the notebook"
            for src in imgs:
                assert (page.parent / src.split("?")[0]).resolve().is_file(), f"{f}: missing image {src}"
    tables = chromium(exe, ["--virtual-time-budget=5000", "--dump-dom",
                            (html_dir / "notebooks" / "06_tables.html").as_uri()], tmp_path / "tables")
    for needle in ("99.7", "100", "98.3", "not run", "Substitute data, not comparable to MVTec AD",
                   "paper profile not run on a GPU yet", "look-alike"):
        assert needle in tables, f"Tables page lacks {needle!r}"
    shots = built["out"] / "screenshots"
    shots.mkdir(exist_ok=True)
    for name, rel in (("tables", "notebooks/06_tables.html"),
                      ("category", "notebooks/evaluate_embedded-carpet.html")):
        png = shots / f"{name}.png"
        chromium(exe, ["--virtual-time-budget=5000", "--window-size=1400,2400", "--hide-scrollbars",
                       f"--screenshot={png}", (html_dir / rel).as_uri()], tmp_path / f"shot-{name}")
        assert png.is_file() and png.stat().st_size > 20_000, f"screenshot of {rel} missing or empty"


@pytest.mark.slow
def test_chromium_shows_the_verdict_table_inside_the_column_at_1280px(built, tmp_path):
    """The intro's verdict box starts on the first screen and its table's right edge lies inside
    the text column (and the viewport) of a 1280 px wide window."""
    assert built["rc"] == 0, built["log"][-3000:]
    if not any((book.REPO / "models").glob("*/*/metrics.json")):
        pytest.skip("no reference model is kept in models/, so the intro has no verdict table")
    exe = ensure_chromium()
    intro = built["html"] / "book" / "intro.html"
    probe = intro.with_name("intro-measure.html")
    probe.write_text(intro.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    try:
        dom = chromium(exe, ["--virtual-time-budget=5000", "--window-size=1280,900", "--hide-scrollbars",
                             "--dump-dom", probe.as_uri()], tmp_path / "measure")
    finally:
        probe.unlink()
    found = re.search(r'<pre id="ssae-measure">(.*?)</pre>', dom, re.S)
    assert found, "the measuring script did not run"
    import html as _html
    m = json.loads(_html.unescape(found.group(1)))
    assert not m.get("missing"), "no table.ssae-verdict on the intro"
    assert m["viewport"] == 1280, m
    assert m["right"] <= m["viewport"] and m["right"] <= m["column"] + 1, m
    assert m["scroll"] <= m["viewport"], m  # nothing makes the page scroll sideways
    assert m["box_top"] < 900, m  # the verdict is on the first screen


# ----------------------------------------------------------------------------- failure handling

def fake_executor(fail: set[str], empty: set[str] = frozenset()):
    """Stands in for papermill: writes the template with one output per code cell (or none for
    names in ``empty``), writes results JSON for evaluation notebooks, fails for names in
    ``fail``."""

    def run(template, output, parameters, cwd, log_file=None):
        name = Path(output).stem
        if name in fail:
            return "RuntimeError: boom"
        nb = nbformat.read(str(template), as_version=4)
        if name not in empty:
            for c in nb.cells:
                if c.cell_type == "code":
                    c.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ok\n")]
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(output))
        if name.startswith("evaluate_") and parameters.get("results_json"):
            book.write_result(parameters["results_json"], {
                "data_spec": parameters["data"], "slug": parameters["slug"], "status": "ok",
                "image_auroc": 0.9, "pixel_auroc": 0.8, "aupro": 0.5, "image_size": 64,
                "profile": "smoke", "device": "cpu", "hardware": "test", "date": "2025-01-01"})
        return ""

    return run


def test_failed_category_is_named_and_rendered(tmp_path, monkeypatch):
    monkeypatch.setattr(bookbuild, "execute_notebook", fake_executor({"train_embedded-grid"}))
    lines: list[str] = []
    status = bookbuild.build_book("smoke", categories=["carpet", "grid"], shared=False, out=tmp_path,
                             build=True, log=lines.append)
    text = "\n".join(lines)
    assert status == 1
    assert "FAILED data sets: embedded-grid" in text and "boom" in text
    bdir = tmp_path / "book"
    res = json.loads((bdir / "results" / "embedded-grid.json").read_text())
    assert res["status"] == "failed" and "boom" in res["error"]
    toc = yaml.safe_load((bdir / "_toc.yml").read_text())
    files = bookbuild.toc_files(toc)
    assert "book/categories/embedded-grid" in files and "notebooks/train_embedded-grid" not in files
    assert "notebooks/evaluate_embedded-carpet" in files
    page = (bdir / "_build" / "html" / "book" / "categories" / "embedded-grid.html").read_text()
    assert "This run failed" in page and "boom" in page
    assert (bdir / "_build" / "html" / "notebooks" / "evaluate_embedded-carpet.html").is_file()
    assert "jupyter-book build failed" not in text, text[-3000:]


def test_notebook_without_outputs_fails_the_build(tmp_path, monkeypatch):
    monkeypatch.setattr(bookbuild, "execute_notebook", fake_executor(set(), {"10_theorems"}))
    lines: list[str] = []
    status = bookbuild.build_book("smoke", categories=["carpet"], shared=False, out=tmp_path, build=False,
                             log=lines.append)
    assert status == 1
    assert any("notebooks/10_theorems.ipynb (no outputs)" in ln for ln in lines), lines


def test_the_bottle_copy_goes_to_figure_8(tmp_path, monkeypatch):
    import fixtures

    shared = tmp_path / "shared"
    fixtures.make_mvtec(shared / "mvtec_ad", name="bottle", masks=False, n_train=2)
    seen: dict[str, dict] = {}
    fake = fake_executor(set())

    def run(template, output, parameters, cwd, log_file=None):
        seen[Path(output).stem] = dict(parameters)
        return fake(template, output, parameters, cwd, log_file)

    monkeypatch.setattr(bookbuild, "execute_notebook", run)
    bookbuild.build_book("smoke", categories=["carpet"], shared=shared, out=tmp_path / "a", build=False,
                         log=lambda line: None)
    assert Path(seen["09_proposition2"]["object_data"]) == shared / "mvtec_ad" / "bottle"
    bookbuild.build_book("smoke", categories=["carpet"], shared=False, out=tmp_path / "b", build=False,
                         log=lambda line: None)
    assert seen["09_proposition2"]["object_data"] == ""


def test_plan_of_data_sets(tmp_path):
    import fixtures

    plan = bookbuild.plan_datasets(None, None, shared=False)
    assert [d.spec for d in plan] == [f"embedded:{c}" for c in book.EMBEDDED]
    shared = tmp_path / "shared"
    mtd = fixtures.make_mtd(shared)
    bottle = fixtures.make_mvtec(shared / "mvtec_ad", name="bottle", masks=False)
    plan = bookbuild.plan_datasets(["wood"], None, shared=shared)
    specs = [d.spec for d in plan]
    assert specs == ["embedded:wood", str(mtd), str(bottle)]
    slugs = [d.slug for d in plan]
    assert len(set(slugs)) == len(slugs)
    bottle_ds = [d for d in plan if d.spec == str(bottle)][0]
    assert "without masks" in bottle_ds.title
    assert bookbuild.plan_datasets(["wood"], ["none"], shared=shared)[-1].spec == "embedded:wood"
    extra = bookbuild.plan_datasets([], [str(shared)], shared=False)   # a folder holding data sets
    assert [d.spec for d in extra] == [str(mtd), str(bottle)]
    extra = bookbuild.plan_datasets([], [str(mtd)], shared=False)
    assert extra[0].title == "Magnetic Tile Defects"
    assert bookbuild.select_compare(bookbuild.plan_datasets(None, None, shared=False), None) == {"embedded-wood"}
    with pytest.raises(Exception):
        bookbuild.plan_datasets(["marble"], None, shared=False)


def test_settings_table_covers_every_field():
    from ssae import config

    t = book.settings_table()
    names = {r[0] for r in t.rows}
    for section, klass in (("data", config.DataConfig), ("corruption", config.CorruptionConfig),
                           ("model", config.ModelConfig), ("train", config.TrainConfig),
                           ("score", config.ScoreConfig)):
        for f in klass.__dataclass_fields__:
            assert f"{section}.{f}" in names
    source = t.columns.index("Source")
    src = {r[0]: r[source] for r in t.rows}
    assert src["train.lr"] == "paper" and src["train.steps"] == "ours"
    assert all(s in ("paper", "ours") for s in src.values()), src
    cells = {r[0]: r for r in t.rows}
    cpu = t.columns.index("cpu profile")
    assert cells["train.lr"][cpu] == "0.001 (ours)" and cells["train.steps"][cpu] == "4000"


def test_every_profile_can_build_the_book():
    from ssae.config import PROFILES
    from ssae_book import theory_pages

    for name in PROFILES:
        assert theory_pages.theory_settings(name)["size"] >= 64
        assert name in bookbuild.DEFAULT_MINUTES
        assert book.settings_table((name,)).rows


def test_kept_gpu_results_are_shown_with_hardware_and_date(tmp_path):
    import numpy as np
    from ssae_book import tables

    assert book.gpu_figures(tmp_path) == []
    res = {"data_spec": ".gpu_data/mtd", "dataset": "mtd", "image_auroc": 0.95, "pixel_auroc": 0.9,
           "aupro": 0.7, "image_size": None, "profile": "paper", "device": "cuda",
           "hardware": "NVIDIA H200 (CUDA 12.8)", "date": "2025-06-01T10:00:00", "objective": 1,
           "gpu_run": {"train_command": "python3 -m ssae.cli train ..."}}
    (tmp_path / "mtd.json").write_text(json.dumps(res))
    rng = np.random.default_rng(0)
    arrays = {"history_step": np.arange(1, 4), "history_loss": np.array([0.3, 0.2, 0.1], np.float32),
              "history_crop": np.array([128, 256, 512]), "example_index": np.array([0, 1]),
              "defects": np.array(["Blowhole", "good"]), "threshold": np.array(0.5)}
    for j in range(2):
        arrays[f"example_image_{j}"] = rng.integers(0, 255, (20, 30, 1)).astype(np.uint8)
        arrays[f"example_map_{j}"] = rng.random((20, 30)).astype(np.float16)
        arrays[f"example_mask_{j}"] = rng.random((20, 30)) > 0.8
    np.savez_compressed(tmp_path / "mtd.figures.npz", **arrays)
    kept = book.gpu_figures(tmp_path)
    assert len(kept) == 1
    label, figs = kept[0]
    assert "NVIDIA H200" in label and "2025-06-01" in label and "paper profile" in label
    assert len(figs) == 3      # loss curve, Figure 1, Figure 10
    results = tables.load_results(tmp_path)
    assert "NVIDIA H200" in tables.gpu_status(results)
    assert tables.runs_table(results).rows[0][-1] == "kept GPU result"
    assert tables.substitute_table(results).rows[0][0].startswith("Magnetic Tile Defects")


def test_a_category_page_never_shows_a_path_of_the_machine(tmp_path):
    repo = tmp_path / "repo"
    assert bookbuild.public_path(tmp_path / "shared" / "data" / "mtd", repo) == "../shared/data/mtd"
    assert bookbuild.public_path(repo / "runs" / "x", repo) == "runs/x"
    assert bookbuild.public_path("/elsewhere/out", repo) == ".../out"
    ds = book.DataSet(str(tmp_path / "shared" / "data" / "mtd"), "mtd", "Magnetic Tile Defects")
    result = {"status": "ok", "data_spec": ds.spec, "image_auroc": 0.5, "pixel_auroc": 0.5, "aupro": 0.1,
              "image_size": 256, "profile": "cpu", "hardware": "CPU", "date": "2026-01-01"}
    for page in (bookbuild.category_page(ds, result, repo=repo), bookbuild.category_page(ds, None, "boom", repo)):
        assert str(tmp_path) not in page and "`../shared/data/mtd`" in page


def test_training_times_in_the_book_are_generated():
    """The pages name the build's, the cpu profile's and the reference models' training times
    through substitutions filled in from the code, never typed."""
    from ssae.config import profile

    subs = bookbuild.time_substitutions(1.5)
    assert subs["build_minutes"] == "1.5 minutes"
    assert subs["cpu_minutes"] == f"{profile('cpu').train.max_minutes:g} minutes"
    assert subs["paper_steps"] == f"{profile('paper').train.steps:,} steps"
    cfg = yaml.safe_load((REPO / "_config.yml").read_text())["parse"]["myst_substitutions"]
    assert set(subs) <= set(cfg)  # a page outside the runner still builds
    pages = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "book").glob("*.md")}
    assert "{{ build_minutes }}" in pages["reproducing.md"] and "{{ cpu_minutes }}" in pages["own_images.md"]
    for name, text in pages.items():
        assert not re.search(r"\b1\.5 minutes\b|\bcpu profile, 20 minutes\b", text), name


def test_rerun_one_category_explains_every_parameter_of_the_notebooks():
    """book/reproducing.md's section on rerunning one data set names the papermill commands of
    the training and evaluation notebooks and explains each of their parameters."""
    text = (REPO / "book" / "reproducing.md").read_text(encoding="utf-8")
    section = text.split("## Rerun one category", 1)[1].split("\n## ", 1)[0]
    assert "papermill notebooks/03_train.ipynb" in section and "papermill notebooks/04_evaluate.ipynb" in section
    assert "benchmarks/reference_runs.sh --pack" in section
    for name in ("03_train", "04_evaluate"):
        nb = nbformat.read(str(REPO / "notebooks" / f"{name}.ipynb"), as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        for param in re.findall(r"^(\w+)\s*=", cell.source, re.M):
            assert f"| `{param}` |" in section, f"{name}: parameter {param} not explained"
            assert f"-p {param} " in section, f"{name}: parameter {param} not in the command"
