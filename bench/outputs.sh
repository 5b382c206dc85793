#!/usr/bin/env bash
# What the live outputs cost the generator: the same open-model load (RATE requests/s for SECS
# against loopback nginx) with no output and with each output on, in alternating rounds; per
# case the stampede process's CPU (user+sys from the OS) per request, and the ratio to no output
# in the same round. The receivers are nginx locations answering 204 (remote write, OTLP) so
# their own cost is not in stampede's process. The issue's bound: at most +3%.
#
# Usage: bench/outputs.sh [SECS] [RATE] [ROUNDS]   (default 15 s, 4000/s, 3 rounds)
# Extra cases: EXTRA_CASES='name=--flag value;…' (e.g. EXTRA_CASES='dashboard=--dashboard 127.0.0.1:0').
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
rate=${2:-4000}
rounds=${3:-3}
work=$(mktemp -d /tmp/stampede-outputs.XXXXXX)
trap 'kill "$(cat "$work/nginx.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"' EXIT
command -v nginx >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light; }
cargo build --release --quiet
bin=$PWD/target/release/stampede
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
daemon on;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000000; keepalive_timeout 300s; client_max_body_size 64m;
  server { listen 127.0.0.1:$port;
    location / { return 200 "hello\n"; }
    location /api/v1/write { client_body_buffer_size 4m; return 204; }
    location /v1/metrics { client_body_buffer_size 4m; return 200; } } }
CONF
nginx -c "$work/nginx.conf"
sleep 0.5
cat > "$work/plan.yaml" <<YAML
name: outputs-cost
target: http://127.0.0.1:$port
scenarios: { s: { steps: [ { name: get, request: GET / }, { name: other, request: GET /x } ] } }
phases: [ { name: p, scenario: s, rate: $rate, duration: ${secs}s, vus: 64 } ]
YAML
python3 - "$bin" "$work" "$port" "$rounds" "${EXTRA_CASES:-}" <<'PY'
import json, os, resource, shlex, statistics, subprocess, sys
bin, work, port, rounds, extra = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
cases = {
    "none": [],
    "prometheus-rw classic": ["--output", f"prometheus-rw=http://127.0.0.1:{port}/api/v1/write"],
    "prometheus-rw native": ["--output", f"prometheus-rw=http://127.0.0.1:{port}/api/v1/write,histograms=native"],
    "otlp": ["--output", f"otlp=http://127.0.0.1:{port}"],
}
for item in filter(None, extra.split(";")):
    name, args = item.split("=", 1)
    cases[name] = shlex.split(args)
cases["all"] = [a for k, v in cases.items() if k not in ("none", "prometheus-rw native") for a in v]
per = {k: [] for k in cases}
ratios = {k: [] for k in cases if k != "none"}
for r in range(rounds):
    order = list(cases) if r % 2 == 0 else list(reversed(cases))
    got = {}
    for name in order:
        out = f"{work}/run-{r}-{name.replace(' ', '-')}"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([bin, "run", f"{work}/plan.yaml", "--out", out, "--quiet", *cases[name]],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        s = json.load(open(f"{out}/summary.json"))
        n = sum(p["requests"] for p in s["phases"])
        meta = json.load(open(f"{out}/meta.json"))
        lost = sum(o["dropped"] for o in meta.get("outputs", []))
        got[name] = cpu / n * 1e6
        per[name].append(got[name])
        print(f"round {r + 1} {name:24} {n:8} requests  {got[name]:6.2f} µs CPU/request  dropped {lost}", file=sys.stderr)
    for k in ratios:
        ratios[k].append(got[k] / got["none"])
print(f"| case | CPU µs/request (median of {rounds}) | ratio to none (median of rounds) | per round |")
print("| --- | --- | --- | --- |")
for k in cases:
    rs = ratios.get(k)
    print(f"| {k} | {statistics.median(per[k]):.2f} | {statistics.median(rs):.3f}× | {', '.join(f'{x:.3f}' for x in rs)} |" if rs
          else f"| {k} | {statistics.median(per[k]):.2f} | 1 | |")
PY
