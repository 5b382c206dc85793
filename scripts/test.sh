#!/usr/bin/env bash
# Runs every test. Installs what the tests need first (idempotent), then `cargo test`.
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests start for real (none are mocked). Installed only when missing.
# chromium: the HTML report is checked in a real headless browser (tests/cli/report.rs).
# python3-venv: httpbin for the HTTP tests runs from a venv (tests/cli/httpbin.rs).
# python3-kubernetes: the official client's models check `stampede k8s` output (tests/cli/k8s.rs).
# iproute2: `ip netns` for the multi-host merge test (tests/cli/merge.rs).
# prometheus: the remote-write receiver for `--output prometheus-rw` (tests/cli/outputs.rs), and
#   promtool, which checks and unit-tests the `stampede alerts` rules (tests/cli/alerts.rs).
need_pkgs=()
for p in ${STAMPEDE_TEST_PACKAGES:-openssl chromium postgresql redis-server python3-venv python3-kubernetes iproute2 prometheus}; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}"
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}"
  fi
fi

# Real PostgreSQL and Redis on loopback for the monitor tests, and httpbin for the HTTP tests;
# their URLs go to the tests through STAMPEDE_TEST_PG_URL, STAMPEDE_TEST_REDIS_URL and
# STAMPEDE_TEST_HTTPBIN_URL (tests fail, not skip, without them).
eval "$(scripts/test-services.sh)"
# playwright-core, driving Debian's chromium: the HAR recorded by a real page load
# (tests/cli/import.rs) and the live dashboard (tests/cli/dashboard.rs).
eval "$(scripts/node-deps.sh)"

cargo test --workspace --quiet "$@"
