#!/usr/bin/env bash
# Vendor MathJax 3 into book/_static/mathjax/ so that the book typesets maths offline.
# npm installs mathjax@3 into .cache/npm (ignored by git); of its es5/ folder only what the
# pages load is copied to book/_static/mathjax (ignored by git): tex-chtml.js, the CHTML web
# fonts (output/chtml/fonts/woff-v2) and the TeX extensions that tex-chtml.js autoloads
# (input/tex/extensions), with the licence. _config.yml points Sphinx at it:
# mathjax_path: mathjax/tex-chtml.js. Safe to rerun; a folder vendored in full before is trimmed.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=book/_static/mathjax
if [ -f "$dest/tex-chtml.js" ] && [ ! -e "$dest/sre" ] && [ -z "${SSAE_MATHJAX_REFRESH:-}" ]; then
  echo "mathjax: already vendored in $dest"
  exit 0
fi
cache=.cache/npm
mkdir -p "$cache"
if [ ! -f "$cache/node_modules/mathjax/es5/tex-chtml.js" ]; then
  command -v npm >/dev/null 2>&1 || { echo "vendor_mathjax: npm not found (install Node.js)" >&2; exit 1; }
  npm install --prefix "$cache" --no-audit --no-fund --loglevel=error mathjax@3 >/dev/null
fi
src="$cache/node_modules/mathjax/es5"
[ -f "$src/tex-chtml.js" ] || { echo "vendor_mathjax: $src/tex-chtml.js missing after npm install" >&2; exit 1; }
rm -rf "$dest.tmp"
mkdir -p "$dest.tmp/output/chtml/fonts" "$dest.tmp/input/tex"
cp "$src/tex-chtml.js" "$dest.tmp/"
cp -r "$src/output/chtml/fonts/woff-v2" "$dest.tmp/output/chtml/fonts/"
cp -r "$src/input/tex/extensions" "$dest.tmp/input/tex/"
cp "$cache/node_modules/mathjax/LICENSE" "$dest.tmp/LICENSE" 2>/dev/null || true
rm -rf "$dest"
mv "$dest.tmp" "$dest"
version=$(python3 -c "import json;print(json.load(open('$cache/node_modules/mathjax/package.json'))['version'])" 2>/dev/null || echo 3)
echo "mathjax: vendored MathJax $version into $dest ($(du -sh "$dest" | cut -f1))"
