"""The chapter "What moves the numbers on real defects" (notebooks/07_findings.ipynb) and its
helper module ssae_book.findings, on the committed result rows in benchmarks/results/.

Every number of the chapter is read from those rows at build time: the tables and the sentences
that carry numbers are generated. These tests keep that true: every part builds with rows, every
file the chapter reads is there, every kept row is cited, and the notebook's markdown (the
prose typed by hand) carries no measured number."""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from ssae_book import build as bookbuild
from ssae_book import findings as F

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "07_findings.ipynb"


@pytest.fixture(scope="module")
def built():
    R = F.load()
    return R, F.all_parts(R)


def test_every_part_has_a_table_with_rows_and_generated_numbers(built):
    R, parts = built
    assert list(parts) == [f.__name__ for f in F.PARTS]
    for name, part in parts.items():
        assert part.table.rows, name
        assert all(len(r) == len(part.table.columns) for r in part.table.rows), name
        assert re.search(r"\d\.\d{2,}", part.text), f"{name}: its prose carries no number from the rows"
        assert "nan" not in part.text.lower() and "None" not in part.text, name
        for row in part.table.rows:
            assert not any(c in ("nan", "None") for c in row), (name, row)
    assert parts["retries"].figure is not None


def test_every_results_file_the_chapter_reads_exists_and_every_kept_row_is_cited(built):
    R, _ = built
    for stem in R.files_read:
        assert (F.RESULTS / f"{stem}.jsonl").is_file(), stem
    # the committed files are exactly the ones read, and no row is kept that the chapter does not cite
    assert sorted(p.stem for p in F.RESULTS.glob("*.jsonl")) == R.files_read
    assert R.uncited() == [], "result rows no table reads (delete them; git keeps them): " + "; ".join(R.uncited())


def test_rows_carry_what_the_tables_label_them_with(built):
    R, _ = built
    for row in R.cited_rows():
        assert row.get("dataset") in F.DATA, row.get("dataset")
        assert row.get("profile") == "cpu" and row.get("hardware") and row.get("date")
        assert row.get("image_size") and row.get("image_auroc") is not None


def test_a_missing_results_file_is_named(tmp_path):
    (tmp_path / "grid_draws.jsonl").write_text((F.RESULTS / "grid_draws.jsonl").read_text())
    R = F.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="mtd_same_proxy.jsonl"):
        F.glance(R)
    with pytest.raises(FileNotFoundError):
        F.load(tmp_path / "empty")


def test_paired_statistics_are_scipys_paired_t_test():
    from scipy import stats
    a = [{"image_auroc": v} for v in (0.7, 0.8, 0.9, 0.75)]
    b = [{"image_auroc": v} for v in (0.6, 0.82, 0.7, 0.7)]
    p = F.paired(a, b, "image_auroc")
    assert p.n == 4 and p.wins == 3
    assert p.diff == pytest.approx(sum(x["image_auroc"] - y["image_auroc"] for x, y in zip(a, b)) / 4)
    assert p.p == pytest.approx(stats.ttest_rel([0.7, 0.8, 0.9, 0.75], [0.6, 0.82, 0.7, 0.7]).pvalue)
    with pytest.raises(ValueError):
        F.paired(a, b[:2], "image_auroc")


def _prose(cell_source: str) -> str:
    """A markdown cell without code blocks, inline code (settings, commands) and math."""
    s = re.sub(r"```.*?```", "", cell_source, flags=re.S)
    s = re.sub(r"`[^`]*`", "", s)
    return re.sub(r"\$[^$]*\$", "", s)


def test_the_notebook_types_no_measured_number_by_hand():
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    md = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert md and md[0].startswith("# What moves the numbers on real defects")
    for src in md:
        prose = _prose(src)
        assert not re.search(r"\b0\.\d{2,}", prose), src[:200]       # metrics: AUROC, AUPRO, checks
        assert not re.search(r"(?<![–\d.])\d+(\.\d+)?\s*%", prose), src[:200]  # shares (settings ranges "5–35 %" pass)
        assert not re.search(r"\b[Ss]ection \d|\bsession\b|\bissue\b|\btarget", prose), src[:200]
    assert len(" ".join(md).split()) < 2500


def test_the_notebook_is_a_stripped_template_wired_into_the_book():
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    assert "parameters" in code[0].metadata.get("tags", []) and "results_dir" in code[0].source
    assert all("remove-input" in c.metadata.get("tags", []) for c in code[1:])
    assert bookbuild.NOTEBOOKS["findings"] == NOTEBOOK.name
    import yaml
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = bookbuild.toc_files(toc)
    assert "notebooks/07_findings" in files and "book/findings" not in files
    assert not (REPO / "book" / "findings.md").exists()


def test_the_notebook_runs_and_shows_every_part(tmp_path):
    out = tmp_path / "07_findings.ipynb"
    err = bookbuild.execute_notebook(NOTEBOOK, out, {}, tmp_path)
    assert err == "", err
    nb = nbformat.read(str(out), as_version=4)
    kinds = [k for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
             for k in (o.get("data") or {})]
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors[0].get("evalue")
    assert kinds.count("text/html") == len(F.PARTS) and "image/png" in kinds
    text = json.dumps(nb.cells[-1].outputs)
    assert "result rows" in text and "2 cores" in text


def test_the_chapter_opens_with_a_generated_summary_and_says_which_numbers_come_from_where(built, tmp_path):
    import shutil

    R, _ = built
    text = F.summary(R)
    sentences = re.split(r"(?<=[\w)])\.\s+(?=[A-Z])", text.strip())
    assert 1 <= len(sentences) <= 5 and text.strip().endswith(".")
    assert re.search(r"[+-]0\.\d{3}", text) and "nan" not in text.lower()
    # the summary follows the rows: a changed row changes it
    rows = tmp_path / "rows"
    shutil.copytree(F.RESULTS, rows)
    path = rows / "mtd_whole_tile.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    for r in lines:
        if r.get("method") == "ssae" and "swap" in (r.get("tag") or ""):
            r["restoration_pixel_auroc"] = 0.0
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert F.summary(F.load(rows)) != text
    # the reconciliation names the kept models' recorded numbers and the short runs' means
    kept = json.loads((F.REPO / "models" / "mtd" / "ssae" / "metrics.json").read_text())
    para = F.reconcile(R)
    assert f"{kept['image_auroc']:.3f}" in para and "short runs" in para and "`models/`" in para
    assert F.reconcile(R, tmp_path / "no-models").count("kept model of the method") == 0
