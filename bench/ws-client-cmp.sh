#!/usr/bin/env bash
# CPU per message of two WebSocket client libraries, tokio-tungstenite (the engine's) and
# fastwebsockets, for the same echo exchange (bench/ws-client-cmp/src/main.rs): 100 connections,
# 10 messages/s each, each awaiting its echo, against the built-in target (pinned to CPU 0); the
# client on one current-thread runtime pinned to CPU 1. Each library runs REPEATS times (default
# 3) per layout, alternating, since the machine is shared; the connects are not counted.
#
# Usage: bench/ws-client-cmp.sh [SECONDS] [REPEATS]   (default 20 s, 3)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
repeats=${2:-3}
work=$(mktemp -d /tmp/stampede-ws-cmp.XXXXXX)
target_pid=
trap '[ -n "$target_pid" ] && kill "$target_pid" 2>/dev/null; rm -rf "$work"' EXIT

cargo build --release --quiet
CARGO_TARGET_DIR=target/ws-client-cmp cargo build --release --quiet \
  --manifest-path bench/ws-client-cmp/Cargo.toml
cmp=target/ws-client-cmp/release/ws-client-cmp
cat > "$work/target.yaml" <<YAML
endpoints:
  - { name: ws-echo, method: GET, path: /ws/echo, kind: ws_echo, service_time: { fixed: 0ms } }
YAML
taskset -c 0 target/release/stampede target --config "$work/target.yaml" --listen 127.0.0.1:0 \
  > "$work/target.log" 2>&1 &
target_pid=$!
for _ in $(seq 50); do
  grep -q '^listening on' "$work/target.log" && break
  sleep 0.1
done
addr=$(sed -n 's|^listening on http://||p' "$work/target.log" | head -1)

rounds=$((secs * 10))
for layout in together spread; do
  for _ in $(seq "$repeats"); do
    for lib in tungstenite fastwebsockets; do
      taskset -c 1 "$cmp" "$lib" "$addr" 100 100 "$rounds" "$layout" | tee -a "$work/out"
    done
  done
done
python3 - "$work/out" "$secs" > bench/ws-client-cmp.md <<'PY'
import os, re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+) (\S+): (\d+) messages echoed, exchange CPU ([\d.]+) s, ([\d.]+) µs/message", line)
    if m:
        runs.setdefault((m[2], m[1]), []).append(float(m[5]))
print("Produced by `bench/ws-client-cmp.sh` (bench/ws-client-cmp/src/main.rs): the bare exchange (send, await")
print("the echo) with each library on one current-thread tokio runtime pinned to CPU 1, 100 connections x 10")
print(f"messages/s for {sys.argv[2]} s against the built-in target on CPU 0; CPU of the exchange phase (connects")
print("excluded) from /proc/self/schedstat, each library run alternately, median of the runs. together: all")
print("connections send in the same millisecond; spread: one connection every millisecond.")
print("\n| layout | library | CPU µs/message (median) | runs |")
print("| --- | --- | ---: | --- |")
for (layout, lib), v in runs.items():
    print(f"| {layout} | {lib} | {statistics.median(v):.2f} | {', '.join(f'{x:.2f}' for x in v)} |")
for layout in ("together", "spread"):
    t, f = runs.get((layout, "tungstenite")), runs.get((layout, "fastwebsockets"))
    if t and f:
        print(f"\n{layout}: fastwebsockets / tokio-tungstenite = **{statistics.median(f) / statistics.median(t):.2f}×**")
PY
cat bench/ws-client-cmp.md
python3 bench/ws_report.py bench/ws-last-run.jsonl --splice
