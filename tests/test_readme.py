"""README.md: one screen (at most 600 words), its results table generated from models/; the
training example of the chapter 'Using ssae on your own images' runs."""
import re
from pathlib import Path

from ssae_book import readme

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
OWN_IMAGES = ROOT / "book" / "own_images.md"


def test_the_results_table_is_current():
    assert readme.main(["--check"]) == 0, "run: python -m ssae_book.readme"


def test_render_replaces_only_the_marked_block():
    text = f"a\n{readme.START}\nold\n{readme.END}\nb\n"
    assert readme.render(text, "new") == f"a\n{readme.START}\nnew\n{readme.END}\nb\n"


def test_readme_is_one_screen():
    text = README.read_text()
    assert len(text.split()) <= 600, f"README.md has {len(text.split())} words, at most 600"
    for command in ("bash scripts/main.sh", "bash scripts/test.sh", "from ssae import Detector"):
        assert command in text, command
    assert "ARCHITECTURE.md" in text


def test_the_python_training_example_runs(mvtec_dir, tmp_path, monkeypatch):
    code = next(b for b in re.findall(r"```python\n(.*?)```", OWN_IMAGES.read_text(), re.S) if "pipeline.train" in b)
    code = code.replace('"cpu"', '"smoke"').replace('"my-surface"', repr(str(mvtec_dir)))
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "own_images.md", "exec"), scope)
    assert len(scope["maps"]) == len(scope["items"]) > 0
    assert (tmp_path / "runs" / "my-surface" / "done").is_file()
