#!/usr/bin/env bash
# Memory of 10,000 VUs with cookies on: every iteration logs in (nginx answers with a
# Set-Cookie), then sends the cookie back on a second request, checked by the body nginx echoes.
# Prints stampede's peak RSS beside the same run with `cookies: off`. Loopback only; each run is
# bounded (DURATION, default 20s, plus grace).
#
# Usage: bench/cookies-rss.sh [DURATION] [VUS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20s}
vus=${2:-10000}
work=$(mktemp -d /tmp/stampede-cookies.XXXXXX)
trap 'kill "$(cat "$work/nginx.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"' EXIT

need=()
command -v nginx >/dev/null || need+=(nginx-light)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
cargo build --release --quiet
bin=target/release/stampede
# 10,000 connections need as many descriptors (and nginx as many again, in its own process).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# A free port: the machine is shared, a fixed one may be taken.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile 65536;
daemon on;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 30000; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$port backlog=16384;
    location /login { add_header Set-Cookie "session=\$request_id; Path=/; HttpOnly; Max-Age=3600"; return 200 "ok\n"; }
    location / { return 200 "cookie=\$cookie_session\n"; }
  }
}
CONF
nginx -c "$work/nginx.conf"
sleep 0.5

run() { # cookies-mode
  cat > "$work/$1.yaml" <<YAML
name: cookies-$1
target: http://127.0.0.1:$port
http: { cookies: $1, timeout: 30s }
scenarios:
  s:
    think: 1s
    steps:
      - { name: login, request: GET /login }
      - { name: home, request: GET /home, checks: [ { body_not_contains: "cookie=\n" } ] }
phases:
  - { name: p, scenario: s, vus: $vus, duration: $secs, grace: 5s }
YAML
  /usr/bin/time -f "%M" -o "$work/rss-$1" $bin run "$work/$1.yaml" --out "$work/run-$1" --quiet > /dev/null || true
  python3 - "$1" "$(cat "$work/rss-$1")" "$work/run-$1/summary.json" <<'PY'
import json, sys
mode, rss_kb, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = json.load(open(path))
p = s["phases"][0]
steps = {st["name"]: st for st in p["steps"]}
print(f"cookies: {mode:5}  peak RSS {rss_kb / 1024:.1f} MB  vus_max {p['vus_max']}  requests {p['requests']}"
      f"  errors {p['errors']}  home errors {steps['home']['errors']} {steps['home']['errors_by_kind']}")
PY
}

run clear
run off
