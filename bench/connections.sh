#!/usr/bin/env bash
# Many concurrent connections on loopback: CONNS VUs of stampede, each holding one keep-alive
# connection to nginx, spread over several source addresses with `http.local_addrs` (one
# address has only the ephemeral port range's ~64k ports), beside wrk holding as many
# connections to the same nginx. Prints the peak RSS (/usr/bin/time), requests, errors and the
# connections nginx held at once (`ss`, sampled each second). The fd limit (ulimit -n) and
# net.ipv4.ip_local_port_range are raised for the run and the port range put back after it.
# Loopback only; each run bounded by the ramp (20 s) plus DURATION plus grace.
#
# Where the fd hard limit is below CONNS (a container without CAP_SYS_RESOURCE cannot raise
# it), one process cannot hold CONNS connections; the run is then split over as many stampede
# processes as the limit needs, `run --segment I/N` each (a share of the same plan, ~CONNS/N
# connections), and nginx over as many workers (`reuseport`, each under the limit). The figure
# is then the SUM of the processes' peak RSS, and beside it the cost per connection: all in
# (sum / connections) and marginal (the sum less each process's fixed part, measured by a
# 1-VU run of the same plan), from which one process holding CONNS is projected. wrk is split
# the same way (one process per 1/N of the connections).
#
# Usage: bench/connections.sh [CONNS] [DURATION]     (default 100000, 30s; PROCS=N forces N)
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

# One descriptor per connection on each side, and more ports. Where the hard limit cannot be
# raised to CONNS, the connections are split over processes that each stay under it.
fds=$((conns + 2000))
ulimit -Hn "$fds" 2>/dev/null || true
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=$fds
[ "$hard" -lt "$fds" ] && fds=$hard
ulimit -n "$fds"
per_max=$((fds - 2000))
procs=${PROCS:-$(( (conns + per_max - 1) / per_max ))}
per=$(( (conns + procs - 1) / procs ))
[ "$procs" -le 1 ] || echo "fd hard limit $hard (cannot be raised here): $conns connections over $procs stampede processes (--segment I/$procs, ~$per each) and as many wrk processes"
sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
# Source addresses: one per 25,000 connections, at least 4 (127.0.0.0/8 is all loopback on Linux).
n_src=$(( (conns + 24999) / 25000 )); [ "$n_src" -lt 4 ] && n_src=4
srcs=$(seq 2 $((n_src + 1)) | sed 's/^/127.0.0./' | paste -sd, | sed 's/,/, /g')
# wrk has no source-address option: past one address's ports it needs several destinations, so
# nginx listens on one address per wrk process (127.0.0.1 … 127.0.0.N; at least one per
# source address, as many as the fd limit needs processes).
n_wrk=$(( procs > n_src ? procs : n_src ))

# nginx: enough workers that each holds at most 80% of its descriptor limit (`reuseport`
# spreads connections over them by hash, within a few percent), at least 2.
workers=$(( (conns * 5 / 4 + fds - 2001) / (fds - 2000) )); [ "$workers" -lt 2 ] && workers=2
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/nginx.conf" <<CONF
worker_processes $workers;
worker_rlimit_nofile $fds;
daemon on;
pid $work/nginx.pid;
error_log $work/error.log crit;
events { worker_connections $((fds - 1000)); multi_accept on; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server {
$(for i in $(seq 1 "$n_wrk"); do echo "    listen 127.0.0.$i:$port backlog=65535 reuseport;"; done)
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

plan() { # vus hold-duration
  cat <<YAML
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
  - { name: p, scenario: s, stages: [ { target: $1, duration: 20s }, { target: $1, duration: $2 } ], grace: 10s }
YAML
}
plan "$conns" "$secs" > "$work/plan.yaml"

# A process's fixed part: the same plan's shape with one VU (its share of the ramp, 2 s held).
base_kb=0
if [ "$procs" -gt 1 ]; then
  plan 1 2s | sed 's/duration: 20s/duration: 1s/' > "$work/base.yaml"
  /usr/bin/time -f "%M" -o "$work/rss-base" "$bin" run "$work/base.yaml" --out "$work/run-base" --quiet >/dev/null 2>&1 || true
  base_kb=$(cat "$work/rss-base")
fi

touch "$work/watching"; echo 0 > "$work/max-stampede"; watch_conns "$work/max-stampede" & w=$!
pids=()
for i in $(seq 0 $((procs - 1))); do
  seg=(); [ "$procs" -gt 1 ] && seg=(--segment "$i/$procs")
  /usr/bin/time -f "%M" -o "$work/rss-stampede-$i" "$bin" run "$work/plan.yaml" "${seg[@]}" --out "$work/run-$i" --quiet >/dev/null 2>"$work/stampede-$i.err" &
  pids+=($!)
done
wait "${pids[@]}" || true
rm -f "$work/watching"; wait "$w" || true
python3 - "$work" "$procs" "$(cat "$work/max-stampede")" "$srcs" "$base_kb" "$conns" <<'PY'
import json, os, sys
work, procs, seen, srcs, base_kb, conns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
rss, vus, reqs, errs, kinds = [], 0, 0, 0, {}
for i in range(procs):
    rss.append(int(open(f"{work}/rss-stampede-{i}").read()))
    path = f"{work}/run-{i}/summary.json"
    if not os.path.exists(path):
        print(f"stampede process {i}: no summary ({open(f'{work}/stampede-{i}.err').read()[:300]})")
        continue
    p = json.load(open(path))["phases"][0]
    vus += p["vus_max"]; reqs += p["requests"]; errs += p["errors"]
    for k, n in p.get("errors_by_kind", {}).items():
        kinds[k] = kinds.get(k, 0) + n
total = sum(rss)
how = f"{procs} processes, --segment I/{procs}, peak RSS summed" if procs > 1 else "one process"
print(f"stampede ({how}): peak RSS {total / 1024:.0f} MB  vus_max {vus}  connections at once {seen}"
      f"  requests {reqs}  errors {errs} {kinds}  local_addrs [{srcs}]")
if procs > 1:
    print("  per process peak RSS MB: " + ", ".join(f"{r / 1024:.0f}" for r in rss))
if seen:
    line = f"  per connection: {total / seen:.1f} KiB all in"
    if base_kb:
        marginal = (total - procs * base_kb) / seen
        line += (f", {marginal:.1f} KiB marginal (each process's fixed part, a 1-VU run: {base_kb / 1024:.1f} MB);"
                 f" one process holding {conns} would take ~{(base_kb + marginal * conns) / 1024:.0f} MB")
    print(line)
PY
for i in $(seq 0 $((procs - 1))); do
  if [ -s "$work/stampede-$i.err" ]; then head -3 "$work/stampede-$i.err"; fi
done

# One wrk per nginx address, CONNS/N connections each, one thread each; its RSS is the sum of
# their peaks.
per_wrk=$((conns / n_wrk))
touch "$work/watching"; echo 0 > "$work/max-wrk"; watch_conns "$work/max-wrk" & w=$!
pids=()
for i in $(seq 1 "$n_wrk"); do
  /usr/bin/time -f "%M" -o "$work/rss-wrk-$i" wrk -t 1 -c "$per_wrk" -d "$secs" --timeout 30s "http://127.0.0.$i:$port/" >"$work/wrk-$i.out" 2>&1 &
  pids+=($!)
done
wait "${pids[@]}" || true
rm -f "$work/watching"; wait "$w" || true
rss=0; for i in $(seq 1 "$n_wrk"); do rss=$((rss + $(cat "$work/rss-wrk-$i"))); done
seen=$(cat "$work/max-wrk")
echo "wrk ($n_wrk x $per_wrk connections): peak RSS $((rss / 1024)) MB  connections at once $seen" \
  "  per connection $(python3 -c "print(f'{$rss / max($seen, 1):.1f}')") KiB all in"
cat "$work"/wrk-*.out | grep -E 'requests in|Socket errors' | sed 's/^ */  /'
