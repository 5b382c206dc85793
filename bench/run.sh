#!/usr/bin/env bash
# Benchmarks stampede against wrk and oha on loopback nginx, and writes BENCHMARKS.md.
#
# nginx (one worker, a tiny static 200) is pinned to CPU 0, every generator to CPU 1, each runs
# for the same time at the same connection count. Per generator: requests/s, CPU µs per request
# (user+sys from the OS divided by requests), peak RSS, and the latency percentiles it reports.
# Figures are only compared within one run of this script: the machine is shared and noisy.
#
# Usage: bench/run.sh [SECONDS]   (default 10; the 5,000/s open-model case always runs 30 s)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
work=$(mktemp -d /tmp/stampede-bench.XXXXXX)
trap 'kill "$(cat "$work/nginx.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"' EXIT

need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
command -v oha >/dev/null || cargo install oha --locked
cargo build --release --quiet
bin=target/release/stampede
ulimit -n 65536 || true

port=18089
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
  server { listen 127.0.0.1:$port backlog=16384; location / { return 200 "hello\n"; } }
}
CONF
taskset -c 0 nginx -c "$work/nginx.conf"
sleep 0.5
url="http://127.0.0.1:$port/"

# Runs a command pinned to CPU 1 under GNU time; the time line goes to $work/time.
timed() { /usr/bin/time -f "%U %S %M" -o "$work/time" taskset -c 1 "$@"; }

plan() { # name vus duration [extra yaml]
  cat > "$work/$1.yaml" <<YAML
name: $1
target: http://127.0.0.1:$port
scenarios:
  s:
    steps:
      - { name: get, request: GET / }
phases:
  - { name: p, scenario: s, $2 }
YAML
}

results="$work/results.jsonl"
: > "$results"
record() { # case tool requests p50 p99 mean extra (latencies in ms)
  read -r u s rss < "$work/time"
  python3 - "$@" "$u" "$s" "$rss" "$secs" >> "$results" <<'PY'
import json, sys
case, tool, req, p50, p99, mean, extra, u, s, rss, secs = sys.argv[1:]
req = float(req)
print(json.dumps({"case": case, "tool": tool, "requests": req, "rps": req / float(secs) if req else 0,
  "cpu_us_per_req": (float(u) + float(s)) * 1e6 / req if req else None, "rss_mb": int(rss) / 1024,
  "p50_ms": p50, "p99_ms": p99, "mean_ms": float(mean), "extra": extra}))
PY
}

stampede_closed() { # case conns
  plan "$1" "vus: $2, duration: ${secs}s"
  rm -rf "$work/run-$1"
  timed $bin run "$work/$1.yaml" --out "$work/run-$1" --quiet --workers 1 > /dev/null
  read -r req p50 p99 mean < <(python3 -c "
import json; s=json.load(open('$work/run-$1/summary.json')); p=s['phases'][0]; l=p['latency_ms']
print(p['requests'], l['p50'], l['p99'], l['avg'])")
  record "$1" stampede "$req" "$p50" "$p99" "$mean" ""
}

wrk_closed() {
  timed wrk -t1 -c"$2" -d"${secs}s" --latency "$url" > "$work/wrk.txt"
  read -r req p50 p99 mean < <(python3 - "$work/wrk.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(v):
    n, u = re.match(r"([\d.]+)(\w+)", v).groups(); n = float(n)
    return n / 1000 if u == "us" else n * 1000 if u == "s" else n
req = re.search(r"(\d+) requests in", t).group(1)
p = dict(re.findall(r"^\s+(\d+)%\s+(\S+)", t, re.M))
mean = re.search(r"^\s+Latency\s+(\S+)", t, re.M).group(1)
print(req, ms(p["50"]), ms(p["99"]), ms(mean))
PY
)
  record "$1" wrk "$req" "$p50" "$p99" "$mean" ""
}

oha_run() { # case extra-args...
  local case=$1; shift
  timed oha --no-tui --output-format json -z "${secs}s" "$@" "$url" > "$work/oha.json"
  read -r req p50 p99 mean < <(python3 -c "
import json; o=json.load(open('$work/oha.json')); s=o['summary']; d=o.get('statusCodeDistribution',{})
pct=o.get('latencyPercentiles',{})
print(sum(d.values()), pct.get('p50',0)*1000, pct.get('p99',0)*1000, (s.get('average') or 0)*1000)")
  record "$case" oha "$req" "$p50" "$p99" "$mean" ""
}

for c in 50 1000 10000; do
  echo "closed loop, $c connections"
  stampede_closed "closed-$c" "$c"
  wrk_closed "closed-$c" "$c"
  oha_run "closed-$c" -c "$c"
done

# Open model: RATE arrivals/s for SECS. stampede times from each arrival's intended start (its
# service time, from the send, goes in the notes); oha's -q releases requests on tokio's 1 ms timer
# and times from the send.
open_case() { # rate seconds
  local rate=$1 case=open-$1 saved=$secs
  secs=$2
  plan "$case" "rate: $rate, max_vus: 2000, duration: ${secs}s"
  rm -rf "$work/run-open"
  timed $bin run "$work/$case.yaml" --out "$work/run-open" --quiet --workers 1 > /dev/null
  read -r req p50 p99 mean dropped svc < <(python3 -c "
import json; s=json.load(open('$work/run-open/summary.json')); p=s['phases'][0]; l=p['latency_ms']
v=p['steps'][0]['service_ms']
print(p['requests'], l['p50'], l['p99'], l['avg'], p['dropped_iterations'], f\"{v['p50']:.3f}/{v['p99']:.3f}\")")
  record "$case" stampede "$req" "$p50" "$p99" "$mean" "achieved $(achieved "$req" "$rate"), dropped $dropped; service time p50/p99 $svc ms"
  timed oha --no-tui --output-format json -z "${secs}s" -c 200 -q "$rate" "$url" > "$work/oha.json"
  read -r req p50 p99 mean < <(python3 -c "
import json; o=json.load(open('$work/oha.json')); d=o.get('statusCodeDistribution',{}); pct=o.get('latencyPercentiles',{})
print(sum(d.values()), pct.get('p50',0)*1000, pct.get('p99',0)*1000, (o['summary'].get('average') or 0)*1000)")
  record "$case" oha "$req" "$p50" "$p99" "$mean" "achieved $(achieved "$req" "$rate")"
  secs=$saved
}
achieved() { python3 -c "print(f'{$1/$secs:.1f}/s, {100*($1/$secs-$2)/$2:+.2f}% of target')"; }
echo "open model: 5000/s for 30 s, 40000/s for $secs s"
open_case 5000 30
open_case 40000 "$secs"

echo "multi-step scenario (templating, a check, a capture) vs a single GET"
cat > "$work/multi.yaml" <<YAML
name: multi
target: http://127.0.0.1:$port
vars: { tenant: acme }
scenarios:
  s:
    steps:
      - name: first
        request: "GET /items?id={{ random_int(1, 100000) }}&t={{ tenant }}"
        headers: { X-Request-Id: "{{ uuid() }}", X-Vu: "{{ vu }}" }
        checks: [ { body_contains: hello }, { status: 200 } ]
        capture: { ct: { header: Content-Type } }
      - { name: second, request: "GET /next/{{ iteration }}", headers: { X-Ct: "{{ ct }}" } }
phases:
  - { name: p, scenario: s, vus: 50, duration: ${secs}s }
YAML
rm -rf "$work/run-multi"
timed $bin run "$work/multi.yaml" --out "$work/run-multi" --quiet --workers 1 > /dev/null
read -r req p50 p99 mean < <(python3 -c "
import json; s=json.load(open('$work/run-multi/summary.json')); p=s['phases'][0]; l=p['latency_ms']
print(p['requests'], l['p50'], l['p99'], l['avg'])")
record multi-step stampede "$req" "$p50" "$p99" "$mean" "2 requests per iteration"

cp "$results" bench/last-run.jsonl  # BENCHMARKS.md can be re-rendered: bench/report.py bench/last-run.jsonl SECS
# Written aside, then moved: the sections other scripts wrote are read from the file it replaces.
python3 bench/report.py "$results" "$secs" BENCHMARKS.md > "$work/BENCHMARKS.md"
mv "$work/BENCHMARKS.md" BENCHMARKS.md
cat BENCHMARKS.md
