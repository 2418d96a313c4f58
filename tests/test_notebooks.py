"""Every notebook of the book, executed with papermill in the smoke profile on tiny data.

The per-data-set notebooks (training, evaluation) run on a tiny MVTec-layout folder from
tests/fixtures.py, with the objective (4) / cut-out comparison switched on so that every
cell is reached. The other notebooks use the same run or in-memory renders of the embedded
look-alikes at 64 px. Each notebook takes seconds to about half a minute.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
import yaml

import fixtures
from ssae_book import build as bookbuild

REPO = Path(__file__).resolve().parents[1]
NB = REPO / "notebooks"


def outputs(path: Path) -> dict:
    """Counts of the output kinds of an executed notebook; fails on error outputs."""
    nb = nbformat.read(str(path), as_version=4)
    kinds = {"png": 0, "html": 0, "text": 0, "stream": 0}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for o in cell.get("outputs", []):
            assert o.output_type != "error", f"{path.name}: {o.get('ename')}: {o.get('evalue')}"
            if o.output_type == "stream":
                kinds["stream"] += 1
            elif "image/png" in o.get("data", {}):
                kinds["png"] += 1
            elif "text/html" in o.get("data", {}):
                kinds["html"] += 1
            else:
                kinds["text"] += 1
    return kinds


#: notebooks that read kept models or results and train nothing: no profile parameter
READ_ONLY = ("05_learning_curves.ipynb", "02_reference.ipynb", "07_findings.ipynb", "08_objective1.ipynb")


def run(notebook: str, out_dir: Path, **params) -> Path:
    out = out_dir / notebook
    common = {} if notebook in READ_ONLY else dict(profile="smoke", device="cpu", seed=0)
    err = bookbuild.execute_notebook(NB / notebook, out, dict(common, **params), out_dir)
    assert err == "", f"{notebook} failed: {err}"
    return out


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("nb")
    data = fixtures.make_mvtec(root / "data", name="widget", n_train=10)
    return {"root": root, "data": str(data), "run_dir": str(root / "runs" / "widget"),
            "results": root / "results"}


@pytest.fixture(scope="module")
def trained(work):
    return run("03_train.ipynb", work["root"], data=work["data"], run_dir=work["run_dir"], minutes=0.0,
               results_json="", title="widget", slug="widget", compare=True, compare_minutes=0.0)


@pytest.fixture(scope="module")
def evaluated(work, trained):
    return run("04_evaluate.ipynb", work["root"], data=work["data"], run_dir=work["run_dir"], minutes=0.0,
               results_json=str(work["results"] / "widget.json"), title="widget", slug="widget",
               compare=True, compare_minutes=0.0)


def test_templates_are_stripped_and_parameterised():
    for path in sorted(NB.glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), path.name
        tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name} needs exactly one parameters cell"
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), path.name
        assert "profile" in tagged[0].source or path.name in READ_ONLY, path.name
        # the set-up lines (imports, warnings, matplotlib magics) are never shown on a page
        for c in code:
            if "import warnings" in c.source or "%matplotlib" in c.source:
                assert {"remove-cell", "remove-input"} & set(c.metadata.get("tags", [])), path.name
    assert sorted(p.name for p in NB.glob("*.ipynb")) == sorted(bookbuild.NOTEBOOKS.values())


def test_toc_lists_every_fixed_notebook():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = bookbuild.toc_files(toc)
    for key, name in bookbuild.NOTEBOOKS.items():
        entry = f"notebooks/{Path(name).stem}"
        if key in ("train", "evaluate", "reference"):
            assert entry not in files   # executed once per data set, added by the runner
        else:
            assert entry in files, entry
    for f in files:
        suffix = ".ipynb" if f.startswith("notebooks/") else ".md"
        assert (REPO / f"{f}{suffix}").is_file(), f


def test_settings(work):
    k = outputs(run("00_settings.ipynb", work["root"]))
    assert k["html"] >= 1


def test_train(trained):
    k = outputs(trained)
    # loss curve + Figure 2, and (compare) loss curve + Figure 4 of objective (4)
    assert k["png"] >= 4 and k["html"] >= 2


def test_evaluate(evaluated, work):
    k = outputs(evaluated)
    assert k["png"] >= 3   # Figure 1, Figure 10, Figure 11
    res = json.loads((work["results"] / "widget.json").read_text())
    assert res["status"] == "ok" and res["profile"] == "smoke" and res["slug"] == "widget"
    assert 0.0 <= res["image_auroc"] <= 1.0 and res["pixel_auroc"] is not None
    comp = res["comparison"]
    assert set(comp) >= {"objective4", "cutout", "ensemble"}
    assert comp["objective4"]["objective"] == 4 and comp["cutout"]["corruption"] == "cutout"
    assert comp["ensemble"]["pixel_auroc"] is not None
    assert "CPU" in res["hardware"]


def test_tables(evaluated, work):
    out = run("06_tables.ipynb", work["root"], results_dir=str(work["results"]),
              gpu_dir=str(REPO / "book" / "gpu_results"))
    assert outputs(out)["html"] >= 6
    text = out.read_text()
    assert "99.7" in text and "not run" in text and "Substitute data, not comparable to MVTec AD" in text
    assert "widget" in text
    assert "paper profile not run on a GPU yet" in text


def test_method(trained, work):
    out = run("01_method.ipynb", work["root"], run_dir=work["run_dir"], data=work["data"])
    k = outputs(out)
    assert k["png"] >= 4 and k["html"] >= 2        # Figures 5 and 3, both again with a kept model; Table 1 twice
    text = out.read_text()
    assert "barely trained" in text                 # the smoke run's figure says what it shows


def test_method_without_a_run(work):
    out = run("01_method.ipynb", work["root"] / "blur", run_dir="", data=work["data"])
    assert outputs(out)["png"] >= 2
    assert "BlurReference" in out.read_text()


def test_orthogonality(trained, work):
    out = run("11_orthogonality.ipynb", work["root"], run_dir=work["run_dir"], data=work["data"])
    assert outputs(out)["png"] >= 1
    assert "trained F" in out.read_text()


@pytest.mark.parametrize("name,min_png,players", [("09_proposition2.ipynb", 5, 0), ("10_theorems.ipynb", 5, 1),
                                                  ("12_geometry.ipynb", 3, 1)])
def test_theory(work, name, min_png, players):
    out = run(name, work["root"])
    assert outputs(out)["png"] >= min_png
    assert out.read_text().count('frames[0] = \\"data:image/png') == players   # offline sliders


def test_proposition2_object_panel_names_the_data_not_its_path(work):
    out = run("09_proposition2.ipynb", work["root"] / "object", object_data=work["data"])
    assert outputs(out)["png"] >= 6                                   # five textures and the object
    nb = nbformat.read(str(out), as_version=4)
    shown = [c for c in nb.cells if not {"parameters", "injected-parameters"} & set(c.metadata.get("tags", []))]
    page = json.dumps([c.get("outputs", []) for c in shown] + [c.source for c in shown])
    assert "not identically distributed" in page and "widget" in page
    assert work["data"] not in page and str(work["root"]) not in page


def test_learning_curves_and_a_reference_page(work, trained):
    from ssae.cli import main

    models = work["root"] / "models"
    assert main(["pack", work["run_dir"], "--out", str(models / "widget" / "ssae"), "--blur"]) == 0
    k = outputs(run("05_learning_curves.ipynb", work["root"], models_dir=str(models)))
    assert k["html"] >= 1 and k["png"] >= 1
    out = run("02_reference.ipynb", work["root"], name="widget", models_dir=str(models), device="cpu")
    k = outputs(out)
    assert k["html"] >= 2 and k["png"] >= 2  # tables; curves and the gallery
    text = out.read_text()
    assert "How far this model was trained" in text and "restoration check" in text
    # the same page where the data set is absent: the ROC curves and the gallery from the stored samples
    away = work["root"] / "models-away"
    (away / "widget").mkdir(parents=True)
    import shutil
    shutil.copytree(models / "widget" / "ssae", away / "widget" / "ssae")
    cfg = away / "widget" / "ssae" / "config.json"
    doc = json.loads(cfg.read_text())
    doc["meta"]["data"] = str(work["root"] / "no-such-data")
    cfg.write_text(json.dumps(doc))
    out = run("02_reference.ipynb", work["root"] / "away", name="widget", models_dir=str(away), device="cpu")
    k = outputs(out)
    assert k["png"] >= 3  # curves, ROC curves and the gallery
    nb = nbformat.read(str(out), as_version=4)
    shown = json.dumps([c.get("outputs", []) for c in nb.cells if c.cell_type == "code"])
    assert "the model's stored samples" in shown and "Not drawn in this build" not in shown
