"""Samples, once a second, the CPU time of a process tree and the echo server's message counter.

Usage: ws_sample.py ROOT_PID METRICS_URL OUT SERVER_PID
Each line of OUT: seconds since start, CPU ns of ROOT_PID and all its descendants (the sum of
every thread's run time from /proc/<pid>/task/<tid>/schedstat, so user+sys at nanosecond
resolution), the tree's summed RSS in KiB, the server's
stampede_target_websocket_messages_received_total and stampede_target_websocket_connections,
and the server process's CPU ns. It stops when
ROOT_PID has gone. bench/ws.sh takes the steady part of the run from these lines, leaving out
start-up (an Erlang VM boots in about a second) and the end.
"""
import os, sys, time, urllib.request

root, url, out, server = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])


def tree(pid):
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(kids.get(p, []))
    return seen


def cpu_ns(pids):
    total = 0
    for p in pids:
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                total += int(open(f"/proc/{p}/task/{t}/schedstat").read().split()[0])
        except OSError:
            pass
    return total


def rss_kb(pids):
    total = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def metrics():
    """(messages received, open connections) from the server, -1 each if it did not answer."""
    try:
        body = urllib.request.urlopen(url, timeout=2).read().decode()
    except OSError:
        return -1, -1
    got = {}
    for line in body.splitlines():
        if line.startswith("stampede_target_websocket_"):
            name, value = line.split()[:2]
            got[name] = int(float(value))
    return (got.get("stampede_target_websocket_messages_received_total", -1),
            got.get("stampede_target_websocket_connections", -1))


start = time.monotonic()
with open(out, "w") as f:
    while os.path.exists(f"/proc/{root}"):
        pids = tree(root)
        n, conns = metrics()
        t, cpu, srv = time.monotonic() - start, cpu_ns(pids), cpu_ns([server])
        f.write(f"{t:.3f} {cpu} {rss_kb(pids)} {n} {conns} {srv}\n")
        f.flush()
        time.sleep(1)
