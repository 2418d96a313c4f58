#!/usr/bin/env bash
# The test command of README.md: installs what the tests need, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/vendor_mathjax.sh
if ! command -v chromium >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; the browser test will say so" >&2
fi
export PATH="$PWD/.venv/bin:$PATH"   # the ssae command and python of the project's environment
python -m pytest -q -p no:cacheprovider "$@"
