#!/usr/bin/env bash
# Benchmarks stampede's WebSocket steps against Tsung on the built-in target's echo endpoint, and
# writes the WebSocket section of BENCHMARKS.md.
#
# The echo server is `stampede target` (endpoint kind ws_echo, no service delay), pinned to CPU 0;
# every generator is pinned to CPU 1. The peer is Tsung: its `ts_websocket` sessions send a
# message and wait for the reply frame (ack="parse"), timing it, which is the exchange stampede's
# `send` + `reply` makes; Artillery's ws engine does not await replies (it times Socket.IO acks only).
#
#   bench/ws.sh [SECONDS]          echo: 100 connections x 10 messages/s, each send awaiting its
#                                  echo, for SECONDS (default 60), in two layouts (together: all
#                                  connections opened at once; spread: over the 100 ms interval)
#   bench/ws.sh --scale [SECONDS]  scale: 10,000 connections held for SECONDS (default 60), each
#                                  sending a message every 6 s (the insurance seed's 10 a minute)
#
# Per generator: messages/s (counted by the server), CPU µs per message (user+sys of the
# generator's process tree over the whole run from GNU time, and over the steady part sampled
# from /proc each second, see bench/ws_sample.py), peak RSS (GNU time; the sampler's sum over the
# tree too). Tsung runs twice: as shipped (Erlang's schedulers spin briefly before sleeping,
# which is CPU time) and with +sbwt none (no spinning; not cheaper here). Figures are only
# compared within one run: the machine is shared and noisy. Each mode's results go to
# bench/ws-last-run.jsonl (replacing that mode's earlier ones), and bench/ws_report.py renders
# the section from that file.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=echo
if [ "${1:-}" = "--scale" ]; then
  mode=scale
  shift
fi
secs=${1:-60}
work=$(mktemp -d /tmp/stampede-ws-bench.XXXXXX)
target_pid=
# Tsung's Erlang VM starts epmd (the node name daemon), which outlives it: stopped at the end
# unless it was running before.
epmd_before=$(pgrep -x epmd || true)
cleanup() {
  [ -n "$target_pid" ] && kill "$target_pid" 2>/dev/null || true
  [ -z "$epmd_before" ] && command -v epmd >/dev/null && epmd -kill >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

need=()
command -v tsung >/dev/null || need+=(tsung)
[ -x /usr/bin/time ] || need+=(time)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
cargo build --release --quiet
bin=$PWD/target/release/stampede
ulimit -n "$(ulimit -Hn)"
if [ "$mode" = scale ] && [ "$(ulimit -n)" -lt 10500 ]; then
  echo "ulimit -n is $(ulimit -n): 10,000 connections need more" >&2
  exit 1
fi

if [ "$mode" = echo ]; then
  conns=100 every_ms=100
else
  conns=10000 every_ms=6000
fi
rounds=$((secs * 1000 / every_ms))

cat > "$work/target.yaml" <<YAML
seed: 1
endpoints:
  - { name: ws-echo, method: GET, path: /ws/echo, kind: ws_echo, service_time: { fixed: 0ms } }
YAML
taskset -c 0 "$bin" target --config "$work/target.yaml" --listen 127.0.0.1:0 > "$work/target.log" 2>&1 &
target_pid=$!
for _ in $(seq 50); do
  grep -q '^listening on' "$work/target.log" && break
  sleep 0.1
done
addr=$(sed -n 's|^listening on http://||p' "$work/target.log" | head -1)
[ -n "$addr" ] || { cat "$work/target.log"; exit 1; }
host=${addr%:*} port=${addr##*:}
metrics="http://$addr/metrics"

# Runs a command pinned to CPU 1 under GNU time (to $work/time) with the sampler beside it.
timed() { # name command...
  local name=$1
  shift
  rx "$work/rx0-$name"
  /usr/bin/time -v -o "$work/time-$name" taskset -c 1 "$@" > "$work/out-$name" 2>&1 &
  local pid=$!
  taskset -c 0 python3 bench/ws_sample.py "$pid" "$metrics" "$work/samples-$name" "$target_pid" &
  local sampler=$!
  wait "$pid" || { echo "$name failed:"; tail -20 "$work/out-$name"; }
  wait "$sampler" || true
  rx "$work/rx1-$name"
}
rx() { # file: the server's count of messages received
  curl -s "$metrics" | sed -n 's/^stampede_target_websocket_messages_received_total //p' > "$1"
}

write_plans() { # case spread_ms arrival
  local case=$1 spread=$2 arrival=$3 think_step=""
  [ "$spread" -gt 0 ] && think_step="      - think: { uniform: [0ms, ${spread}ms] }"
  cat > "$work/plan.yaml" <<YAML
name: ws-$case
target: http://$addr
http: { timeout: 30s }
scenarios:
  rt:
    steps:
$think_step
      - name: echo
        ws: /ws/echo
        session:
          - repeat: $rounds
            every: ${every_ms}ms
            do:
              - send: { json: { id: "{{ uuid() }}", n: "{{ iteration }}" } }
                reply: { match: "\$.id", timeout: 5s }
          - receive: { for: ${every_ms}ms }
phases:
  - { name: p, scenario: rt, vus: $conns, iterations: $conns }
YAML

  # Tsung: the users arrive at ARRIVAL/s (Poisson; the phase lasts 10 s, as Tsung launched only some
  # of them in a 1 s phase on a busy machine), open one connection each, then send, await the echo
  # and think for the interval, ROUNDS times. The reply is awaited before the think time, so each
  # round takes the interval plus a round trip and the users drift apart; stampede keeps a fixed
  # schedule, holds the connection one interval after the last round (as Tsung's last think time
  # does) and, when SPREAD_MS > 0, starts each VU at a uniform time within it.
  cat > "$work/tsung.xml" <<XML
<?xml version="1.0"?>
<!DOCTYPE tsung SYSTEM "/usr/share/tsung/tsung-1.0.dtd">
<tsung loglevel="error" dumptraffic="false" version="1.0">
  <clients><client host="localhost" use_controller_vm="true" maxusers="$((conns + 100))"/></clients>
  <servers><server host="$host" port="$port" type="tcp"/></servers>
  <load>
    <arrivalphase phase="1" duration="10" unit="second">
      <users maxnumber="$conns" arrivalrate="$arrival" unit="second"/>
    </arrivalphase>
  </load>
  <sessions>
    <session name="rt" probability="100" type="ts_websocket">
      <request><websocket type="connect" path="/ws/echo"/></request>
      <for from="1" to="$rounds" incr="1" var="i">
        <request subst="true"><websocket type="message" frame="text">{"id":"%%_tsung_userid%%-%%_i%%","n":%%_i%%}</websocket></request>
        <thinktime value="$(python3 -c "print($every_ms / 1000)")" random="false"/>
      </for>
      <request><websocket type="close"/></request>
    </session>
  </sessions>
</tsung>
XML
}

results="$work/results.jsonl"
: > "$results"
record() { # case name tool messages_seen_by_generator latency_json
  python3 - "$mode" "$1" "$2" "$3" "$4" "$5" "$work/time-$2" "$work/samples-$2" "$conns" "$secs" \
    "$(cat "$work/rx0-$2")" "$(cat "$work/rx1-$2")" >> "$results" <<'PY'
import json, re, sys
mode, case, name, tool, own, lat, timef, samplef, conns, secs, rx0, rx1 = sys.argv[1:]
t = open(timef).read()
def field(label):
    return float(re.search(re.escape(label) + r": ([\d.:]+)", t).group(1))
cpu_s = field("User time (seconds)") + field("System time (seconds)")
rss_mb = field("Maximum resident set size (kbytes)") / 1024
rows = [list(map(float, l.split())) for l in open(samplef) if l.strip()]
rows = [r for r in rows if r[3] >= 0]
messages = float(rx1) - float(rx0)  # the server's count of messages received during the run
# The steady part: from the first second in which messages arrived at the full count of open
# connections (+5 s), to 5 s before the last second in which any arrived.
active = [i for i in range(1, len(rows)) if rows[i][3] > rows[i - 1][3]]
steady = None
if len(active) > 12:
    a, b = active[0] + 5, active[-1] - 5
    dt, dcpu, dmsg = rows[b][0] - rows[a][0], rows[b][1] - rows[a][1], rows[b][3] - rows[a][3]
    dsrv = rows[b][5] - rows[a][5]
    steady = {"secs": dt, "msgs_per_s": dmsg / dt, "cpu_us_per_msg": dcpu / 1e3 / dmsg,
              "server_cpu_us_per_msg": dsrv / 1e3 / dmsg, "server_cpu_pct": dsrv / 1e9 / dt * 100}
print(json.dumps({
    "mode": mode, "case": case, "name": name, "tool": tool, "connections": int(conns), "secs": int(secs),
    "messages": messages, "generator_messages": float(own),
    "cpu_s": cpu_s, "cpu_us_per_msg": cpu_s * 1e6 / messages if messages else None,
    "rss_mb": rss_mb, "tree_rss_mb_max": max(r[2] for r in rows) / 1024,
    "server_conns_max": max(r[4] for r in rows), "steady": steady, "latency": json.loads(lat)}))
PY
}

run_stampede() { # case
  rm -rf "$work/run-stampede"
  timed stampede "$bin" run "$work/plan.yaml" --out "$work/run-stampede" --quiet --workers 1
  local lat own
  read -r own lat < <(python3 -c "
import json; s=json.load(open('$work/run-stampede/summary.json')); p=s['phases'][0]
st=next(x for x in p['steps'] if x['name']=='echo'); w=st['ws']; l=st['latency_ms']
print(w['messages_received'], json.dumps({'p50_ms': l['p50'], 'p99_ms': l['p99'], 'mean_ms': l['avg'],
  'lost': w['lost'], 'connections': w['connections'], 'connect_failed': w['connect_failed'],
  'dropped': w['dropped_connections'], 'open_max': p.get('ws_open_max')}, separators=(',', ':')))")
  record "$1" stampede stampede "$own" "$lat"
}

run_tsung() { # case name [ERL_FLAGS]
  local case=$1 name=$2 flags=${3:-}
  rm -rf "$work/tsung-log"
  timed "$name" env ERL_FLAGS="$flags" HOME="$work" tsung -n -l "$work/tsung-log" -f "$work/tsung.xml" start
  local lat own
  read -r own lat < <(python3 - "$work"/tsung-log/*/tsung.log "$rounds" <<'PY'
import json, sys
# The last dump carries the totals: "stats: NAME count mean stddev max min global_mean global_count".
stats = {}
for line in open(sys.argv[1]):
    if line.startswith("stats: "):
        f = line.split()
        stats[f[1]] = f[2:]
req = stats.get("request", ["0"] * 7)
conns = int(float(stats.get("connect", ["0"] * 7)[-1]))
# Tsung's requests count the connect, the messages and the close: messages = requests - 2 per user.
users = int(float(stats.get("finish_users_count", ["0", "0"])[-1]))
msgs = int(float(req[-1])) - conns - users
errors = {k: v[-1] for k, v in stats.items() if k.startswith("error")}
print(msgs, json.dumps({"mean_ms": float(req[-2]), "connections": conns, "errors": errors},
                       separators=(",", ":")))
PY
)
  record "$case" "$name" tsung "$own" "$lat"
}

# Cases: name, the spread of stampede's VU starts (ms), Tsung's arrival rate (users/s).
# together: every connection opens at once and stampede sends each round's messages in one go
# (the plan as a user would first write it); Tsung's users arrive within 10 ms. spread: starts
# spread over the interval (Tsung's users arrive over 100 ms), so every message is a wake-up of its
# own for both. scale: 10,000 connections opened over 5 s.
if [ "$mode" = echo ]; then
  cases=("together 0 10000" "spread $every_ms 1000")
else
  cases=("scale 5000 2000")
fi
for c in "${cases[@]}"; do
  read -r case spread arrival <<< "$c"
  write_plans "$case" "$spread" "$arrival"
  echo "$case: $conns connections, a message every $every_ms ms each, $rounds rounds (~$secs s)"
  echo "  stampede"
  run_stampede "$case"
  echo "  tsung"
  run_tsung "$case" tsung
  echo "  tsung +sbwt none"
  run_tsung "$case" tsung-nospin "+sbwt none +sbwtdcpu none +sbwtdio none"
done

kept=bench/ws-last-run.jsonl
{
  [ -f "$kept" ] && grep -v "\"mode\": \"$mode\"" "$kept" || true
  cat "$results"
} > "$work/kept.jsonl"
cp "$work/kept.jsonl" "$kept"
python3 bench/ws_report.py "$kept" --table "$mode"
# BENCHMARKS.md: bench/run.sh's part, then this section (bench/report.py appends it too).
python3 bench/ws_report.py "$kept" --splice
