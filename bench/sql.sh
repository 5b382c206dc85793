#!/usr/bin/env bash
# PostgreSQL select-only: stampede's `sql:` step beside pgbench -S -M prepared, at the same client
# counts, for the same time, on the same database, in the same run.
#
# A private PostgreSQL (initdb in a temporary directory, max_connections 200, pgbench scale 10)
# is pinned to CPU 0; each generator runs on CPU 1 with one thread (pgbench -j 1, stampede
# --workers 1) under GNU time. Per generator: transactions/s, CPU µs per transaction, peak RSS,
# latency percentiles (pgbench's from its --log of every transaction, stampede's from its
# summary), and the server's CPU per transaction (the backends' time, from the postmaster's
# reaped children): at 64 clients on one core the server is the limit, and this says whether a
# generator made it work harder. With --soak SECONDS, stampede alone runs 8 clients that long while its RSS is
# sampled every 10 s: memory must stay flat. Writes the "sql" section of BENCHMARKS.md.
#
# Usage: bench/sql.sh [SECONDS] [--repeat N] [--soak SECONDS]   (default 10 s per case, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=10
soak=0
repeat=3
while [ $# -gt 0 ]; do
  case $1 in
    --soak) soak=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    *) secs=$1; shift ;;
  esac
done
command -v pgbench >/dev/null || ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
}
[ -x /usr/bin/time ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time; }
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
cargo build --release --quiet
bin=$PWD/target/release/stampede

work=$(mktemp -d /tmp/stampede-sql-bench.XXXXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres:postgres "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { as_pg "$PG_BIN/pg_ctl" -D "$work/pg" -m immediate -w stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
as_pg "$PG_BIN/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
  -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=256MB" start >/dev/null \
  || { cat "$work/pg.log" >&2; exit 1; }
url="postgres://postgres@127.0.0.1:$port/postgres"
as_pg "$PG_BIN/pgbench" -h 127.0.0.1 -p "$port" -U postgres -i -s 10 -q postgres >/dev/null 2>&1
for pid in $(pgrep -u postgres -f "postgres"); do taskset -pc 0 "$pid" >/dev/null 2>&1 || true; done
# New backends fork from the postmaster, which is pinned: they inherit CPU 0.

# The server's CPU: backends exit at disconnect and their time is added to the postmaster's
# children's (cutime + cstime, in clock ticks), read before and after each generator.
pm=$(head -1 "$work/pg/postmaster.pid")
tick=$(getconf CLK_TCK)
server_cpu() { awk -v t="$tick" '{print ($16 + $17) / t}' "/proc/$pm/stat"; }

results="$work/results.jsonl"
: > "$results"
timed() {
  server_before=$(server_cpu)
  children=$(pgrep -c -P "$pm")
  /usr/bin/time -f "%U %S %M" -o "$work/time" taskset -c 1 "$@"
  # Until the backends have exited and the postmaster has reaped them (at most 10 s).
  for _ in $(seq 100); do [ "$(pgrep -c -P "$pm")" -le "$children" ] && break; sleep 0.1; done
  python3 -c "print($(server_cpu) - $server_before)" > "$work/server" # timed may run in a subshell
}
record() { # case tool transactions p50 p95 p99 mean (ms)
  read -r u s rss < "$work/time"
  read -r server_s < "$work/server"
  python3 - "$@" "$u" "$s" "$rss" "$secs" "$server_s" >> "$results" <<'PY'
import json, sys
case, tool, n, p50, p95, p99, mean, u, s, rss, secs, server = sys.argv[1:]
n = float(n)
print(json.dumps({"case": case, "tool": tool, "tx": n, "tps": n / float(secs),
  "cpu_us_per_tx": (float(u) + float(s)) * 1e6 / n if n else None, "rss_mb": int(rss) / 1024,
  "server_us_per_tx": float(server) * 1e6 / n if n else None,
  "p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99), "mean_ms": float(mean)}))
PY
}

plan() { # clients seconds
  cat > "$work/plan.yaml" <<YAML
name: select-only
databases:
  bench: { url: "$url" }
scenarios:
  s:
    steps:
      - name: select
        sql: bench
        query: SELECT abalance FROM pgbench_accounts WHERE aid = \$1
        params: [ "{{ random_int(1, 1000000) }}" ]
phases:
  - { name: p, scenario: s, vus: $1, duration: $2s }
YAML
}

run_pgbench() { # clients
  rm -f "$work"/pgb*
  (cd "$work" && timed "$PG_BIN/pgbench" -h 127.0.0.1 -p "$port" -U postgres -S -M prepared -n \
    -c "$1" -j 1 -T "$secs" --log --log-prefix=pgb postgres > "$work/pgbench.txt" 2>&1)
  read -r n p50 p95 p99 mean < <(cat "$work"/pgb.* | python3 -c "
import sys
# pgbench --log: client_id transaction_no time_us script_no time_epoch time_us
lat = sorted(int(l.split()[2]) for l in sys.stdin if l.strip())
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] / 1000
print(len(lat), q(.50), q(.95), q(.99), sum(lat) / len(lat) / 1000)")
  record "select-$1" pgbench "$n" "$p50" "$p95" "$p99" "$mean"
}

run_stampede() { # clients
  plan "$1" "$secs"
  rm -rf "$work/run"
  timed "$bin" run "$work/plan.yaml" --out "$work/run" --quiet --workers 1 > /dev/null
  read -r n p50 p95 p99 mean < <(python3 -c "
import json; s=json.load(open('$work/run/summary.json')); p=s['phases'][0]; l=p['latency_ms']
assert p['errors'] == 0, p['errors_by_kind']
print(p['requests'], l['p50'], l['p95'], l['p99'], l['avg'])")
  record "select-$1" stampede "$n" "$p50" "$p95" "$p99" "$mean"
}

# Each case runs --repeat times, the two generators taking turns to go first, so a burst of
# other work on this shared machine falls on both alike; the table shows each one's median run.
for c in 8 64; do
  for r in $(seq "$repeat"); do
    echo "select-only, $c clients, round $r of $repeat"
    if [ $((r % 2)) = 1 ]; then run_pgbench "$c"; run_stampede "$c"; else run_stampede "$c"; run_pgbench "$c"; fi
  done
done

soak_line=""
if [ "$soak" -gt 0 ]; then
  echo "soak: 8 clients for ${soak}s, RSS every 10 s"
  plan 8 "$soak"
  rm -rf "$work/run"
  taskset -c 1 "$bin" run "$work/plan.yaml" --out "$work/run" --quiet --workers 1 > /dev/null &
  pid=$!
  : > "$work/rss"
  while kill -0 "$pid" 2>/dev/null; do
    awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null >> "$work/rss" || true
    sleep 10
  done
  wait "$pid" || true
  soak_line=$(python3 -c "
v=[int(x) for x in open('$work/rss') if x.strip()]
first=v[1:7] or v; last=v[-6:]
a=sum(first)/len(first)/1024; b=sum(last)/len(last)/1024
print(f'Soak: 8 clients for $soak s: RSS {a:.1f} MB in the first minute, {b:.1f} MB in the last ({(b-a):+.1f} MB), {len(v)} samples.')")
  echo "$soak_line"
fi

python3 - "$results" "$secs" "$soak_line" > "$work/section.md" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
secs, soak = sys.argv[2], sys.argv[3]
rounds = len(rows) // 4 if rows else 0
print("## sql\n")
print(f"PostgreSQL select-only (`pgbench -S -M prepared` beside an `sql:` step with the same statement), {secs} s per case, the median of {rounds} rounds, one generator thread on CPU 1, PostgreSQL on CPU 0, same run (`bench/sql.sh`).\n")
print("| case | generator | tx/s | ratio | CPU µs/tx | server CPU µs/tx | peak RSS MB | p50 ms | p95 ms | p99 ms | mean ms |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
def median_run(rs):
    rs = sorted(rs, key=lambda r: r["tps"])
    return rs[len(rs) // 2]
spread = []
for case in sorted({r["case"] for r in rows}, key=lambda c: int(c.split("-")[1])):
    rs = {t: median_run([r for r in rows if r["case"] == case and r["tool"] == t])
          for t in ("pgbench", "stampede") if any(r["case"] == case and r["tool"] == t for r in rows)}
    pairs = list(zip([r for r in rows if r["case"] == case and r["tool"] == "pgbench"],
                     [r for r in rows if r["case"] == case and r["tool"] == "stampede"]))
    spread.append(f"{case}: " + ", ".join(f"{b['tps'] / a['tps']:.2f}×" for a, b in pairs))
    base = rs.get("pgbench")
    for tool in ("pgbench", "stampede"):
        r = rs.get(tool)
        if not r:
            continue
        ratio = r["tps"] / base["tps"] if base and base["tps"] else float("nan")
        print(f"| {case} | {tool} | {r['tps']:.0f} | {ratio:.2f}× | {r['cpu_us_per_tx']:.1f} | {r['server_us_per_tx']:.1f} | {r['rss_mb']:.1f} | {r['p50_ms']:.3f} | {r['p95_ms']:.3f} | {r['p99_ms']:.3f} | {r['mean_ms']:.3f} |")
print("\nRatio of each round (stampede / pgbench, the two run back to back): " + "; ".join(spread) + ".")
if soak:
    print(f"\n{soak}")
print()
PY
cat "$work/section.md"
# Kept in bench/sections/ (bench/report.py appends every file there when bench/run.sh rewrites
# BENCHMARKS.md), and replaced in BENCHMARKS.md now.
mkdir -p bench/sections
cp "$work/section.md" bench/sections/sql.md
python3 - BENCHMARKS.md "$work/section.md" <<'PY'
import re, sys
path, section = sys.argv[1], open(sys.argv[2]).read()
text = open(path).read()
if "## sql\n" in text:
    text = re.sub(r"## sql\n.*?(?=\n## |\Z)", section.rstrip("\n") + "\n", text, flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n" + section
open(path, "w").write(text)
PY
