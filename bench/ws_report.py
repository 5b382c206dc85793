"""Renders bench/ws.sh's results (bench/ws-last-run.jsonl) as BENCHMARKS.md's WebSocket section.

Usage: ws_report.py RESULTS [--table MODE | --splice]
  --table MODE: just that mode's tables, for the terminal
  --splice: rewrite BENCHMARKS.md's WebSocket section (the rest is bench/run.sh's) in place
The client libraries' comparison (bench/ws-client-cmp.sh) is taken from bench/ws-client-cmp.md.
"""
import json, os, platform, subprocess, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
only = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--table" else None
if len(sys.argv) > 2 and sys.argv[2] == "--splice":
    here = os.path.dirname(os.path.abspath(__file__))
    text = open("BENCHMARKS.md").read()
    head = text.split("\n## WebSocket", 1)[0].rstrip("\n") + "\n\n"
    section = subprocess.run([sys.executable, os.path.abspath(__file__), sys.argv[1]],
                             capture_output=True, text=True, check=True).stdout
    open("BENCHMARKS.md", "w").write(head + section)
    sys.exit(0)


def version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except Exception:
        return "unknown"


def fmt(v, nd=1):
    return "-" if v is None else f"{v:,.{nd}f}"


def label(r):
    return {"tsung": "Tsung", "tsung-nospin": "Tsung, `+sbwt none`"}.get(r["name"], r["name"])


def steady(r, key):
    return (r.get("steady") or {}).get(key)


def ratio(a, b):
    return f"**{a / b:.2f}×**" if a and b else "-"


def echo_table(rs):
    print("| generator | messages/s | messages | CPU µs/message, whole run | CPU µs/message, steady | peak RSS MB | p50 ms | p99 ms | mean ms | notes |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rs:
        l = r["latency"]
        notes = []
        if r["tool"] == "stampede":
            notes.append(f"{l['lost']} lost, {l['connect_failed']} connects failed, {l['dropped']} dropped")
        elif l.get("errors"):
            notes.append("errors " + ", ".join(f"{k} {v}" for k, v in l["errors"].items()))
        srv = steady(r, "server_cpu_pct")
        if srv is not None:
            notes.append(f"server {srv:.1f}% of its core")
        print(f"| {label(r)} | {fmt(steady(r, 'msgs_per_s'))} | {r['messages']:,.0f} | {fmt(r['cpu_us_per_msg'], 2)} | "
              f"{fmt(steady(r, 'cpu_us_per_msg'), 2)} | {fmt(r['rss_mb'])} | {fmt(l.get('p50_ms'), 3)} | "
              f"{fmt(l.get('p99_ms'), 3)} | {fmt(l.get('mean_ms'), 3)} | {'; '.join(notes)} |")
    st = next((r for r in rs if r["tool"] == "stampede"), None)
    print()
    for p in (r for r in rs if r["tool"] != "stampede"):
        if st:
            print(f"CPU per message, stampede / {label(p)}: {ratio(st['cpu_us_per_msg'], p['cpu_us_per_msg'])} "
                  f"over the whole run, {ratio(steady(st, 'cpu_us_per_msg'), steady(p, 'cpu_us_per_msg'))} steady; "
                  f"peak RSS {ratio(st['rss_mb'], p['rss_mb'])}  ")
    print()


def scale_table(rs):
    print("| generator | connections open (server, max) | messages | CPU µs/message, whole run | CPU s | peak RSS MB | notes |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rs:
        l = r["latency"]
        notes = []
        if r["tool"] == "stampede":
            notes.append(f"{l['connections']:,} connections, {l['connect_failed']} failed, {l['dropped']} dropped, "
                         f"{l['lost']} lost; p50 {l['p50_ms']:.2f} ms, p99 {l['p99_ms']:.2f} ms")
        else:
            notes.append(f"{l['connections']:,} connections; mean {l['mean_ms']:.2f} ms")
            if l.get("errors"):
                notes.append("errors " + ", ".join(f"{k} {v}" for k, v in l["errors"].items()))
        print(f"| {label(r)} | {r['server_conns_max']:,.0f} | {r['messages']:,.0f} | {fmt(r['cpu_us_per_msg'], 2)} | "
              f"{fmt(r['cpu_s'], 2)} | {fmt(r['rss_mb'])} | {'; '.join(notes)} |")
    st = next((r for r in rs if r["tool"] == "stampede"), None)
    print()
    if st:
        verdict = "within" if st["rss_mb"] <= 250 else "over"
        print(f"stampede's peak RSS at {st['connections']:,} connections: **{st['rss_mb']:.1f} MB** "
              f"({verdict} the 250 MB budget, {st['rss_mb'] * 1024 / st['connections']:.1f} KiB a connection)  ")
        for p in (r for r in rs if r["tool"] != "stampede"):
            print(f"Peak RSS, stampede / {label(p)}: {ratio(st['rss_mb'], p['rss_mb'])}; "
                  f"CPU per message {ratio(st['cpu_us_per_msg'], p['cpu_us_per_msg'])}  ")
    print()


HEADINGS = {
    "together": "echo, together: {c:,} connections opened at once, 10 messages/s each, {s} s",
    "spread": "echo, spread: {c:,} connections opened over 100 ms, 10 messages/s each, {s} s",
    "scale": "scale: {c:,} connections held for {s} s, opened over 5 s, a message every 6 s each",
}


def cases(mode):
    out = []
    for r in rows:
        if r["mode"] == mode and r["case"] not in out:
            out.append(r["case"])
    return out


def render(mode, level):
    for case in cases(mode):
        rs = [r for r in rows if r["mode"] == mode and r["case"] == case]
        print(f"{level} " + HEADINGS[case].format(c=rs[0]["connections"], s=rs[0]["secs"]) + "\n")
        (echo_table if mode == "echo" else scale_table)(rs)


if only:
    render(only, "##")
    sys.exit(0)

cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
print("## WebSocket\n")
print("Produced by `bench/ws.sh` (echo) and `bench/ws.sh --scale` (do not edit by hand). The echo server is")
print("the built-in target (`ws_echo`, no service delay) pinned to CPU 0, each generator is pinned to CPU 1.")
print("The peer is Tsung, whose `ts_websocket` messages wait for the reply frame and time it: the same")
print("exchange as stampede's `send` + `reply` (stampede also renders a UUID into each message and finds")
print("the reply by its `$.id`; Tsung takes the next frame). Tsung awaits each reply before its think")
print("time, so its rounds take the interval plus a round trip; stampede keeps the schedule. Messages are")
print("counted by the server. CPU is user+sys of the generator's process tree: over the whole run (GNU")
print("time: start-up, connects and the end included) and over the steady part (sampled each second from")
print("`/proc/*/task/*/schedstat`, 5 s in from the first messages to 5 s before the last). Tsung runs as")
print("shipped (Erlang's schedulers spin a little before sleeping, which counts as CPU) and with")
print("`ERL_FLAGS=\"+sbwt none +sbwtdcpu none +sbwtdio none\"`. Ratios compare generators in the same run.")
print("The server stays far from its limit (its share of CPU 0 is in the notes), so it is not what is")
print("measured. Two echo layouts: *together*, every connection opened at once, so stampede sends each")
print("round's 100 messages on one timer wake-up (the plan as first written; Tsung's users arrive within")
print("10 ms and drift apart by a round trip each round); *spread*, the starts spread over the interval,")
print("so each message costs both generators wake-ups of their own: there the kernel's part (the loopback")
print("send, which also wakes the server, the receive, the sleep and wake-up) is over half of stampede's CPU,")
print("and the bare client libraries cost as much per message (last table). stampede's latency counts")
print("from each message's scheduled time; Tsung's mean is from its send (its connects and closes")
print("included).\n")
print(f"- machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}")
print(f"- stampede: {version(['target/release/stampede', '--version'])}; {version(['tsung', '-v'])}\n")
for mode in ("echo", "scale"):
    render(mode, "###")
cmp = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ws-client-cmp.md")
if os.path.exists(cmp):
    print("### client libraries: tokio-tungstenite vs fastwebsockets\n")
    print(open(cmp).read().strip() + "\n")
