"""README.md: its results table is generated from models/, and its Python example runs."""
import re
from pathlib import Path

from ssae_book import readme

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_results_table_is_current():
    assert readme.main(["--check"]) == 0, "run: python -m ssae_book.readme"


def test_render_replaces_only_the_marked_block():
    text = f"a\n{readme.START}\nold\n{readme.END}\nb\n"
    assert readme.render(text, "new") == f"a\n{readme.START}\nnew\n{readme.END}\nb\n"


def test_the_python_example_runs(mvtec_dir, tmp_path, monkeypatch):
    code = next(b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "pipeline.train" in b)
    code = code.replace('"cpu"', '"smoke"').replace('"my-surface"', repr(str(mvtec_dir)))
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert len(scope["maps"]) == len(scope["items"]) > 0
    assert (tmp_path / "runs" / "my-surface" / "done").is_file()
