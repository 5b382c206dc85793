#!/usr/bin/env bash
# End-to-end instructions per request of binaries compared: N GETs by one VU (one worker)
# against loopback nginx, under callgrind, minus a run of one GET (start-up, plan, reports).
# Prints, per binary, the whole process's count and the VU task's alone (`closed_vu`, inclusive:
# the request path, without the once-a-second work whose count follows the run's wall time,
# which valgrind stretches unevenly). bench/instructions.sh guards the hot path's parts; this
# says what a whole request costs.
#
# Usage: bench/e2e-instructions.sh BINARY... (e.g. a build of main, then target/release/stampede)
set -euo pipefail
n=${N:-20000}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
work=$(mktemp -d /tmp/stampede-e2e.XXXXXX)
trap 'kill "$(cat "$work/nginx.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
daemon on;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  server { listen 127.0.0.1:$port; location / { return 200 "hello\n"; } } }
CONF
nginx -c "$work/nginx.conf"
sleep 0.5
for k in 1 "$n"; do
  cat > "$work/p$k.yaml" <<YAML
name: e2e
target: http://127.0.0.1:$port
scenarios: { s: { steps: [ { name: get, request: GET / } ] } }
phases: [ { name: p, scenario: s, vus: 1, iterations: $k, max_duration: 300s } ]
YAML
done
for b in "$@"; do
  for k in 1 "$n"; do
    rm -rf "$work/run"
    valgrind --tool=callgrind --callgrind-out-file="$work/cg$k" "$b" run "$work/p$k.yaml" --out "$work/run" \
      --quiet --workers 1 >/dev/null 2>&1 || true
  done
  total() { grep -E '^(summary|totals):' "$1" | head -1 | awk '{print $2}'; }
  vu=$(callgrind_annotate --inclusive=yes "$work/cg$n" 2>/dev/null | grep -v '=>' \
    | grep -E 'executor::closed_vu::\{\{closure\}\} ' | head -1 | awk '{gsub(",", "", $1); print $1}')
  python3 - "$b" "$(total "$work/cg1")" "$(total "$work/cg$n")" "${vu:-0}" "$n" <<'PY'
import sys
b, one, many, vu, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print(f"{b}: {(many - one) / (n - 1):,.0f} instructions/request, the VU task {vu / n:,.0f}")
PY
done
