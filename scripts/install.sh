#!/usr/bin/env bash
# Installs the pinned Python packages and ssae itself (editable). Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -r requirements-test.txt
python3 -m pip install -q --disable-pip-version-check --no-deps -e .
