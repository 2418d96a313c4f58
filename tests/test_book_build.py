"""The HTML step of ``ssae book`` runs this environment's jupyter-book whatever PATH holds, and a
build that writes no index.html fails."""
import os
import subprocess
import sys
from pathlib import Path

from ssae_book import build as bookbuild

ROOT = Path(__file__).resolve().parents[1]


def tiny_book(root: Path) -> Path:
    book = root / "book"
    book.mkdir()
    (book / "_config.yml").write_text('title: "tiny"\nexecute:\n  execute_notebooks: "off"\n')
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (book / "intro.md").write_text("# Tiny\n\nOne page.\n")
    return book


def test_the_html_step_builds_with_a_bare_path(tmp_path):
    book = tiny_book(tmp_path)
    code = ("import sys; from pathlib import Path; from ssae_book.build import build_html; "
            "rc, tail = build_html(Path(sys.argv[1]), print); print('status', rc); print(tail)")
    env = {**os.environ, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code, str(book)], env=env, capture_output=True, text=True,
                       timeout=600)
    assert "status 0" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]
    assert (book / "_build" / "html" / "index.html").is_file()


def test_a_build_that_writes_no_index_fails(tmp_path):
    book = tiny_book(tmp_path)
    stale = book / "_build" / "html" / "index.html"
    stale.parent.mkdir(parents=True)
    stale.write_text("an earlier build")
    # exits 0 and writes nothing, as `python -m jupyter_book.cli.main` does
    rc, tail = bookbuild.build_html(book, print, command=[sys.executable, "-m", "jupyter_book.cli.main"])
    assert rc != 0 and "wrote no" in tail and "index.html" in tail
    assert not stale.exists()


def test_the_command_is_this_environment_s_jupyter_book():
    cmd = bookbuild.jupyter_book_command()
    assert cmd[0] == sys.executable
    r = subprocess.run([*cmd, "--version"], capture_output=True, text=True, env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and "Jupyter Book" in r.stdout + r.stderr, r.stdout + r.stderr
