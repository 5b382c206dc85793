#!/usr/bin/env bash
# Many concurrent connections on loopback: CONNS VUs of stampede, each holding one keep-alive
# connection to nginx, spread over several source addresses with `http.local_addrs` (one
# address has only the ephemeral port range's ~64k ports), beside wrk holding as many
# connections to the same nginx. Prints each one's peak RSS (/usr/bin/time), requests, errors
# and connections nginx saw at once. The fd limit (ulimit -n) and net.ipv4.ip_local_port_range
# are raised for the run and the port range put back after it. Loopback only; each run bounded
# by DURATION plus grace.
#
# Usage: bench/connections.sh [CONNS] [DURATION]     (default 100000, 30s)
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${1:-100000}
secs=${2:-30s}
work=$(mktemp -d /tmp/stampede-conns.XXXXXX)
old_range=$(sysctl -n net.ipv4.ip_local_port_range | tr '\t' ' ')
cleanup() {
  kill "$(cat "$work/nginx.pid" 2>/dev/null)" 2>/dev/null || true
  sysctl -qw net.ipv4.ip_local_port_range="$old_range" || true
  rm -rf "$work"
}
trap cleanup EXIT

need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
cargo build --release --quiet
bin=target/release/stampede

# One descriptor per connection on each side (nginx is a process of its own), and more ports.
# Where the hard limit cannot be raised (a container without CAP_SYS_RESOURCE), the largest
# count it allows is measured instead, and said.
fds=$((conns + 2000))
ulimit -Hn "$fds" 2>/dev/null || true
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$fds" ]; then
  conns=$(( (hard - 2000) / 1000 * 1000 ))
  fds=$hard
  echo "fd hard limit $hard (cannot be raised here): measuring $conns connections instead of ${1:-100000}"
fi
ulimit -n "$fds"
sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
# Source addresses: one per 25,000 connections, at least 4 (127.0.0.0/8 is all loopback on Linux).
n_src=$(( (conns + 24999) / 25000 )); [ "$n_src" -lt 4 ] && n_src=4
srcs=$(seq 2 $((n_src + 1)) | sed 's/^/127.0.0./' | paste -sd, | sed 's/,/, /g')

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/nginx.conf" <<CONF
worker_processes 2;
worker_rlimit_nofile $fds;
daemon on;
pid $work/nginx.pid;
error_log $work/error.log crit;
events { worker_connections $((fds / 2)); multi_accept on; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server {
$(for i in $(seq 1 "$n_src"); do echo "    listen 127.0.0.$i:$port backlog=65535;"; done)
    location / { return 200 "ok\n"; }
  }
}
CONF
nginx -c "$work/nginx.conf"
sleep 0.5

# Connections nginx holds, sampled each second (the most seen at once).
watch_conns() { # out-file
  local max=0 n
  while [ -f "$work/watching" ]; do
    n=$(ss -Htn state established "( sport = :$port )" 2>/dev/null | wc -l)
    [ "$n" -gt "$max" ] && max=$n && echo "$max" > "$1"
    sleep 1
  done
}

cat > "$work/plan.yaml" <<YAML
name: connections
target: http://127.0.0.1:$port
http: { local_addrs: [$srcs], timeout: 60s, connect_timeout: 30s }
scenarios:
  s:
    # Each VU holds its connection and sends a request every 5 s.
    think: 5s
    steps:
      - { name: get, request: GET / }
phases:
  - { name: p, scenario: s, stages: [ { target: $conns, duration: 20s }, { target: $conns, duration: $secs } ], grace: 10s }
YAML
touch "$work/watching"; echo 0 > "$work/max-stampede"; watch_conns "$work/max-stampede" & w=$!
/usr/bin/time -f "%M" -o "$work/rss-stampede" "$bin" run "$work/plan.yaml" --out "$work/run" --quiet >/dev/null 2>"$work/stampede.err" || true
rm -f "$work/watching"; wait "$w" || true
python3 - "$(cat "$work/rss-stampede")" "$work/run/summary.json" "$(cat "$work/max-stampede")" "$srcs" <<'PY'
import json, sys
rss_kb, path, seen, srcs = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
p = json.load(open(path))["phases"][0]
print(f"stampede: peak RSS {rss_kb / 1024:.0f} MB  vus_max {p['vus_max']}  connections at once {seen}"
      f"  requests {p['requests']}  errors {p['errors']} {p.get('errors_by_kind', {})}  local_addrs [{srcs}]")
PY
[ -s "$work/stampede.err" ] && head -3 "$work/stampede.err"

# wrk has no source-address option: past one address's ports it needs several destinations, so
# one wrk per nginx address (127.0.0.1 … 127.0.0.N), CONNS/N connections each, one thread each;
# its RSS is the sum of their peaks.
touch "$work/watching"; echo 0 > "$work/max-wrk"; watch_conns "$work/max-wrk" & w=$!
per=$((conns / n_src))
pids=()
for i in $(seq 1 "$n_src"); do
  /usr/bin/time -f "%M" -o "$work/rss-wrk-$i" wrk -t 1 -c "$per" -d "$secs" --timeout 30s "http://127.0.0.$i:$port/" >"$work/wrk-$i.out" 2>&1 &
  pids+=($!)
done
wait "${pids[@]}" || true
rm -f "$work/watching"; wait "$w" || true
rss=0; for i in $(seq 1 "$n_src"); do rss=$((rss + $(cat "$work/rss-wrk-$i"))); done
echo "wrk ($n_src x $per connections): peak RSS $((rss / 1024)) MB  connections at once $(cat "$work/max-wrk")"
cat "$work"/wrk-*.out | grep -E 'requests in|Socket errors' | sed 's/^ */  /'
