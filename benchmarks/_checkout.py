"""Imported first by the benchmark scripts: puts this checkout's root on ``sys.path`` so they
use the ``ssae`` next to them, whether or not (or wherever) ssae is installed. ``gpu.py`` and
``paper_run.py`` set the path themselves, because the tests load them by file path, where this
folder is not on ``sys.path``."""
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
