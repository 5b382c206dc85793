#!/usr/bin/env bash
# The live dashboard's cost: CPU per request of the same fixed load (an open model at RATE/s for
# SECS seconds, one VU thread, against loopback nginx) with `--dashboard` and one client
# reading /events the whole run (curl), and without it. CPU is the stampede process's own
# user+system time (wait4's rusage: every thread, the dashboard's included), per request the
# run completed. Rounds alternate which variant runs first; the ratio reported is the median of
# the rounds' ratios (on/off), a peer measured in the same run, not an absolute figure.
# Prints one line per round and the median; appends the figures to bench/dashboard-last-run.jsonl.
#
# CPU time on a shared machine is noisy, so CALLGRIND=1 counts instructions instead (valgrind's
# callgrind, the whole process, every thread): repeatable, but valgrind slows the load threads,
# so keep RATE at what they sustain under it (500 and 1,000 do); fewer requests per second make the
# dashboard's once-a-second cost a larger share, so this errs against the dashboard. It runs
# each variant for SECS and for 2×SECS seconds: the difference is the steady cost of a request
# (the per-second work included), without what a run pays once (start-up, the analysis after
# each phase and at the end, the reports), which is reported beside it as the fixed cost.
# Threads are counted apart (--separate-threads). The headline is the outputs' own cost: the
# inclusive instructions of their entry points (ROOTS: the output hooks, the posting task, the
# dashboard's server), steady per request, over the whole process' steady instructions per
# request without them. The whole process' ratio is printed beside it, but it is not the cost:
# under valgrind every thread shares one core, so the load thread is held up while the outputs
# run and its count moves by a few % either way with that (its own line shows by how much),
# which natively, with the outputs on the runner's thread, it does not; and the runner's own
# per-second work (writing the run directory) varies by ±1,000 instructions a request between
# runs, more than the outputs cost.
#
# WITH_REMOTE adds remote outputs to the "on" variant, to nginx locations answering 204:
#   WITH_REMOTE=rw      `--output prometheus-rw=…` (classic buckets): "dashboard and remote write on"
#   WITH_REMOTE=native  the same with `histograms=native`
#   WITH_REMOTE=1       classic remote write and `--output otlp=…` both
#
# Usage: bench/dashboard.sh [BINARY] (default target/release/stampede; ROUNDS, RATE, SECS, CALLGRIND, WITH_REMOTE)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/stampede}
[ -x "$bin" ] || cargo build --release --quiet
command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx; }
[ -z "${CALLGRIND:-}" ] || command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }
work=$(mktemp -d /tmp/stampede-dash.XXXXXX)
trap 'kill "$(cat "$work/nginx.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
daemon on;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  server { listen 127.0.0.1:$port; location / { return 200 "hello\n"; }
    location /api/v1/write { client_body_buffer_size 4m; return 204; }
    location /v1/metrics { client_body_buffer_size 4m; return 200; } } }
CONF
nginx -c "$work/nginx.conf"
sleep 0.5
rate=${RATE:-4000}
secs=${SECS:-10}
for k in 1 2; do
  cat > "$work/plan$k.yaml" <<YAML
name: dash-bench
target: http://127.0.0.1:$port
scenarios: { s: { steps: [ { name: get, request: GET / } ] } }
phases: [ { name: p, scenario: s, rate: $rate, max_vus: 50, duration: $((secs * k))s } ]
YAML
done
python3 - "$bin" "$work" "${ROUNDS:-5}" "$rate" "$secs" "${CALLGRIND:-}" "${WITH_REMOTE:+$port}" "${WITH_REMOTE:-}" <<'PY'
import glob, json, os, re, statistics, subprocess, sys, time
b, work, rounds, rate, secs, cg = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), bool(sys.argv[6])
mode = sys.argv[8]
rw = f"prometheus-rw=http://127.0.0.1:{sys.argv[7]}/api/v1/write"
remote = {"": [], "rw": ["--output", rw], "native": ["--output", rw + ",histograms=native"],
          "1": ["--output", rw, "--output", f"otlp=http://127.0.0.1:{sys.argv[7]}"]}[mode]
label = {"": "", "rw": " + remote write (classic)", "native": " + remote write (native)", "1": " + remote write + OTLP"}[mode]
unit = "instructions" if cg else "µs CPU"
# Where the outputs' work starts, on the runner's thread: the output hooks, the posting task and
# the dashboard's server (its connections are tasks of their own, not called from it).
ROOTS = {f"<stampede::output::{t} as stampede::output::Output>::{h}"
         for t in ("dashboard::Dashboard", "remote::Remote") for h in ("interval", "phase_end", "finish")} | {
    "stampede::output::remote::sender::deliver::{{closure}}",
    "stampede::output::remote::sender::Sender::finish::{{closure}}",
    "stampede::output::dashboard::server::serve::{{closure}}",
    "stampede::output::dashboard::server::serve::{{closure}}::{{closure}}",
}

def one(dash, n, k=1):
    out = f"{work}/run-{n}-{k}-{'on' if dash else 'off'}"
    args = [b, "run", f"{work}/plan{k}.yaml", "--out", out, "--quiet", "--workers", "1"]
    if cg:
        args = ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out}.cg"] + args
    if dash:
        args += ["--dashboard", "127.0.0.1:0"] + remote
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    client, got = None, 0
    if dash:
        url = ""
        while not url.startswith("http"):
            url = p.stderr.readline().strip().removeprefix("dashboard: ")
        client = subprocess.Popen(["curl", "-sN", url + "events", "-o", f"{out}.events"])
    _, status, ru = os.wait4(p.pid, 0)
    if client:
        client.wait(timeout=10)
        with open(f"{out}.events") as f:
            got = sum(1 for line in f if line.startswith("data: "))
    summ = json.load(open(f"{out}/summary.json"))
    req = summ["phases"][0]["requests"]
    if cg:
        # One file per thread: the load thread's (it runs the VUs) and the rest (the runner,
        # where the outputs and the dashboard work, and helper threads). In the rest, the
        # outputs' own instructions: the inclusive cost of their entry points.
        load = rest = own = 0
        for path in glob.glob(f"{out}.cg-*"):
            with open(path, errors="replace") as f:
                text = f.read()
            ir = next(int(l.split()[1]) for l in text.splitlines() if l.startswith(("summary:", "totals:")))
            if "executor::open_vu" in text or "executor::closed_vu" in text:
                load += ir
                continue
            rest += ir
            ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                                 capture_output=True, text=True).stdout
            for line in ann.splitlines():
                m = re.match(r"\s*([\d,]+) \([^)]*\)\s+[^:]+:(.*) \[[^\]]+\]$", line)
                if m and m.group(2) in ROOTS:
                    own += int(m.group(1).replace(",", ""))
        return (load, rest, own), req, got
    cpu = ru.ru_utime + ru.ru_stime
    return cpu / req * 1e6, req, got

if cg:
    m = {}
    for dash in (False, True):
        ((l1, o1, w1), r1, _), ((l2, o2, w2), r2, got) = one(dash, 0, 1), one(dash, 0, 2)
        steady = lambda a, b: (b - a) / (r2 - r1)
        m[dash] = dict(load=steady(l1, l2), rest=steady(o1, o2), whole=steady(l1 + o1, l2 + o2), own=steady(w1, w2),
                       own_fixed=w1 - steady(w1, w2) * r1, fixed=(l1 + o1) - steady(l1 + o1, l2 + o2) * r1, r2=r2, got=got)
        print(f"{'on ' if dash else 'off'}: {m[dash]['whole']:,.0f} instructions/request steady "
              f"(load thread {m[dash]['load']:,.0f}, the rest {m[dash]['rest']:,.0f}, the outputs {m[dash]['own']:,.0f}), "
              f"{m[dash]['fixed']:,.0f} fixed ({r1} and {r2} requests" + (f", {got} events read)" if dash else ")"))
    off, on = m[False], m[True]
    # The headline: the outputs' own steady instructions per request over the whole process'
    # without them. The whole process' on/off ratio is printed beside it: under valgrind every
    # thread shares one core, so the load thread is held up while the outputs run and its
    # wake-ups batch differently (its own line shows by how much it moved); natively the outputs
    # run on the runner's thread, beside the load threads, not in their way.
    own = 1 + on["own"] / off["whole"]
    whole = on["whole"] / off["whole"]
    print(f"dashboard{label}: the outputs' own instructions per request (steady) {(own - 1) * 100:+.2f}% "
          f"at {rate}/s ({on['own']:,.0f} per request, {on['own'] * rate:,.0f} a second; once per run {on['own_fixed']:,.0f}); "
          f"whole process on/off {(whole - 1) * 100:+.2f}% (load thread {(on['load'] / off['load'] - 1) * 100:+.2f}%)")
    with open("bench/dashboard-last-run.jsonl", "a") as f:
        f.write(json.dumps({"bench": "dashboard", "measure": "instructions", "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "rate": rate, "remote": mode, "secs": [secs, 2 * secs], "steady_off": round(off["whole"]), "steady_on": round(on["whole"]),
                            "own_per_request": round(on["own"]), "own_ratio": round(own, 4), "whole_ratio": round(whole, 4),
                            "load_thread_ratio": round(on["load"] / off["load"], 4),
                            "fixed_extra": round(on["fixed"] - off["fixed"])}) + "\n")
    sys.exit(0)

res = []
for r in range(rounds):
    order = [False, True] if r % 2 == 0 else [True, False]
    got = {}
    for dash in order:
        got[dash] = one(dash, r)
    ratio = got[True][0] / got[False][0]
    res.append(ratio)
    print(f"round {r + 1}: off {got[False][0]:.2f} {unit}/request ({got[False][1]} requests), "
          f"on {got[True][0]:.2f} {unit}/request ({got[True][1]} requests, {got[True][2]} events read), ratio {ratio:.3f}")
med = statistics.median(res)
print(f"dashboard on/off {unit} per request: median ratio {med:.3f} ({(med - 1) * 100:+.1f}%) over {rounds} rounds at {rate}/s for {secs}s")
with open("bench/dashboard-last-run.jsonl", "a") as f:
    f.write(json.dumps({"bench": "dashboard", "measure": unit, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "rate": rate, "secs": secs, "ratios": [round(x, 4) for x in res],
                        "median_ratio": round(med, 4), "load_avg": os.getloadavg()[0]}) + "\n")
PY
