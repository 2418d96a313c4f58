#!/usr/bin/env bash
# Installs the pinned Python packages, ssae itself and the book's machinery (book/, both
# editable) into the project's virtual
# environment .venv (created on first use; it sees packages already installed on the machine,
# so nothing present is downloaded twice). Safe to rerun. Prints the environment's python.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv --system-site-packages .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-test.txt
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e . -e book
