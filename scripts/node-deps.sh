#!/usr/bin/env bash
# Node packages the tests drive a real browser with, installed from npm into a cache dir (not the
# repo) when missing: playwright-core (no browser download of its own; the tests point it at
# Debian's /usr/bin/chromium). Prints `export STAMPEDE_TEST_NODE_PATH=…` for the tests' `node`.
# Usage: eval "$(scripts/node-deps.sh)"
set -euo pipefail
dir="${STAMPEDE_TEST_NODE_DIR:-$HOME/.cache/stampede-test/node}"
if [ ! -f "$dir/node_modules/playwright-core/package.json" ]; then
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] || echo '{ "private": true }' >"$dir/package.json"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$dir" --no-audit --no-fund --loglevel=error playwright-core@1 >&2
fi
echo "export STAMPEDE_TEST_NODE_PATH=$dir/node_modules"
