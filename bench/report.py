"""Turns bench/run.sh's results into BENCHMARKS.md: a table per case, ratios against peers.

Usage: report.py RESULTS SECS [CURRENT]: CURRENT (the BENCHMARKS.md being replaced) keeps every
`## ` section this script does not write itself (what other benchmark scripts and hand-run
measurements wrote there), in its order, after the ones it writes.
"""
import io, json, os, platform, re, subprocess, sys

out, sys.stdout = sys.stdout, io.StringIO()

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
secs = sys.argv[2]

def version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except Exception:
        return "unknown"

cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break

print("# Benchmarks\n")
print("Produced by `bench/run.sh` (do not edit by hand). nginx (1 worker) pinned to CPU 0, each generator to")
print(f"CPU 1; {secs} s per case, 30 s for the open model at 5,000/s. CPU per request is user+sys time from")
print("the OS divided by the requests completed. Ratios compare generators measured in the same run.")
print("In a closed loop with no think time Little's law fixes the mean latency: N connections / throughput")
print("(column N/X). A generator whose reported mean is far below N/X is not timing every request.")
print("In the open model stampede's latency counts from each arrival's intended start (the schedule),")
print("its service time (in the notes) from the send; oha's `-q` releases requests on tokio's 1 ms timer")
print("tick and times from the send, so its figures compare with stampede's service time. stampede wakes")
print("for each arrival on time (arrivals within 100 µs share a wake-up): below 10,000/s per worker that is")
print("a wake-up per request, which costs CPU mainly while the core would otherwise idle; oha wakes once")
print("per millisecond and sends that millisecond's arrivals together.\n")
print(f"- machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}")
print(f"- stampede: {version(['target/release/stampede', '--version'])}; {version(['wrk', '-v'])}; {version(['oha', '--version'])}; {version(['nginx', '-v'])}\n")

def fmt(v, nd=1):
    return "-" if v is None else f"{v:.{nd}f}"

cases = []
for r in rows:
    if r["case"] not in cases:
        cases.append(r["case"])
for case in cases:
    rs = [r for r in rows if r["case"] == case]
    print(f"## {case}\n")
    conns = int(case.split("-")[1]) if case.startswith("closed-") else None
    print("| generator | requests/s | CPU µs/request | peak RSS MB | p50 ms | p99 ms | mean ms | N/X ms | notes |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rs:
        little = fmt(conns * 1000 / r["rps"], 3) if conns and r["rps"] else "-"
        print(f"| {r['tool']} | {fmt(r['rps'])} | {fmt(r['cpu_us_per_req'], 2)} | {fmt(r['rss_mb'])} | {fmt(float(r['p50_ms']), 3)} | {fmt(float(r['p99_ms']), 3)} | {fmt(r.get('mean_ms'), 3)} | {little} | {r['extra']} |")
    st = next((r for r in rs if r["tool"] == "stampede"), None)
    for peer in ("wrk", "oha"):
        p = next((r for r in rs if r["tool"] == peer), None)
        if st and p and st["cpu_us_per_req"] and p["cpu_us_per_req"]:
            print(f"\nCPU per request, stampede / {peer}: **{st['cpu_us_per_req'] / p['cpu_us_per_req']:.2f}×**", end="")
    print("\n")

single = next((r for r in rows if r["case"] == "closed-50" and r["tool"] == "stampede"), None)
multi = next((r for r in rows if r["case"] == "multi-step"), None)
if single and multi:
    print(f"Multi-step scenario cost per request / single GET: **{multi['cpu_us_per_req'] / single['cpu_us_per_req']:.2f}×**\n")

# The WebSocket section (bench/ws.sh) is kept from its own last run.
ws = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ws-last-run.jsonl")
if os.path.exists(ws):
    here = os.path.dirname(os.path.abspath(__file__))
    print(subprocess.run([sys.executable, os.path.join(here, "ws_report.py"), ws],
                         capture_output=True, text=True, check=True).stdout, end="")

# Sections other benchmark scripts own (bench/sql.sh …), kept when this one rewrites the file.
sections = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sections")
if os.path.isdir(sections):
    for name in sorted(os.listdir(sections)):
        if name.endswith(".md"):
            print(open(os.path.join(sections, name)).read().rstrip("\n") + "\n")

# Every other section of the file being replaced, as it was.
written = sys.stdout.getvalue()
sys.stdout = out
print(written, end="")
if len(sys.argv) > 3 and os.path.exists(sys.argv[3]):
    mine = set(re.findall(r"^## (.+)$", written, re.M))
    for part in re.split(r"(?m)^(?=## )", open(sys.argv[3]).read()):
        m = re.match(r"## (.+)\n", part)
        if m and m.group(1) not in mine:
            print(part.rstrip("\n") + "\n")
