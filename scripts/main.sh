#!/usr/bin/env bash
# The main job of README.md: install, then run every notebook and build the book
# (embedded data, plus MTD and MVTec AD bottle when ../shared/data exists), cpu profile.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/vendor_mathjax.sh
.venv/bin/python -m ssae_book.build --profile cpu "$@"
echo "book: $(pwd)/_build/book/_build/html/index.html"
