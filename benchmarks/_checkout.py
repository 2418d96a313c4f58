"""Imported first by each benchmark script: puts this checkout's root on ``sys.path`` so the
scripts use the ``ssae`` next to them, whether or not (or wherever) ssae is installed."""
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
