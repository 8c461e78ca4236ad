#!/usr/bin/env python3
"""Run a load tool (rdkafka_performance) and sample a broker's VmRSS meanwhile.

    sample.py --pid BROKER_PID --total N --out FILE.json [--interval 0.5]
              [--data-dir DIR --min-free-gib 3] [--timeout S] [--log FILE] -- CMD ARGS...

Every --interval seconds: the broker's VmRSS and how far the tool has got
(messages delivered for `-P`, consumed for `-C`, from its `-i` stats lines).
The RSS "at 25 %" is the first sample taken once a quarter of the --total
messages had been acknowledged (or read), so the quarters follow the bytes
written, not the clock. If the file system of --data-dir falls below
--min-free-gib, or the broker's VmRSS goes above --max-rss-mib, the tool is
stopped and the run fails: the machine is shared.

Writes one JSON object to --out: rc, capped (stopped by --max-rss-mib),
count (final delivered/consumed),
mbs (the tool's MB/s, 10^6 B of payload per second), seconds, peak_rss_mib,
rss_start_mib, rss_q1_mib, rss_q2_mib, rss_q3_mib, rss_end_mib, samples,
error (if any). Exit 0 when the tool exited 0 and reported --total messages.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

PROGRESS = [
    re.compile(r"^% \d+ messages produced \(\d+ bytes\), (\d+) delivered"),
    re.compile(r"^% (\d+) messages \(\d+ bytes\) consumed in"),
]
SUMMARY_P = re.compile(r"^% \d+ messages produced .*, (\d+) delivered .* in (\d+)ms: \d+ msgs/s and ([0-9.]+) MB/s")
SUMMARY_C = re.compile(r"^% (\d+) messages \(\d+ bytes\) consumed in (\d+)ms: \d+ msgs/s \(([0-9.]+) MB/s\)")


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--total", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--data-dir")
    ap.add_argument("--min-free-gib", type=float, default=3.0)
    ap.add_argument("--max-rss-mib", type=float, default=0, help="stop the tool above this (0: no cap)")
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--log", default="/dev/null")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd

    state = {"progress": 0, "summary": None}
    logf = open(a.log, "w")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)

    def reader():
        for line in proc.stdout:
            logf.write(line)
            for rx in PROGRESS:
                m = rx.match(line)
                if m:
                    state["progress"] = int(m.group(1))
            m = SUMMARY_P.match(line) or SUMMARY_C.match(line)
            if m:
                state["summary"] = (int(m.group(1)), int(m.group(2)), float(m.group(3)))

    th = threading.Thread(target=reader, daemon=True)
    th.start()

    samples = []  # (seconds, progress, rss KiB)
    error = None
    capped = False
    while True:
        r = rss_kib(a.pid)
        samples.append((time.monotonic() - t0, state["progress"], r))
        if r is None:
            error = "broker process gone"
            proc.kill()
            break
        if a.max_rss_mib and r / 1024 > a.max_rss_mib:
            error = f"broker VmRSS {r / 1024:.0f} MiB > {a.max_rss_mib:.0f}: stopped at {state['progress']} messages"
            capped = True
            proc.send_signal(signal.SIGINT)
            break
        if a.data_dir:
            st = os.statvfs(a.data_dir)
            free_gib = st.f_bavail * st.f_frsize / 2**30
            if free_gib < a.min_free_gib:
                error = f"disk nearly full ({free_gib:.1f} GiB free < {a.min_free_gib}): stopped"
                proc.send_signal(signal.SIGINT)
                break
        if time.monotonic() - t0 > a.timeout:
            error = f"timeout after {a.timeout:.0f} s"
            proc.send_signal(signal.SIGINT)
            break
        try:
            proc.wait(timeout=a.interval)
            break
        except subprocess.TimeoutExpired:
            pass
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    th.join(timeout=10)
    # the broker right after the last acknowledgement (or read)
    samples.append((time.monotonic() - t0, state["progress"], rss_kib(a.pid)))

    mib = lambda k: round(k / 1024, 1) if k is not None else None
    rss = [s[2] for s in samples if s[2] is not None]
    out = {"rc": rc, "error": error, "capped": capped, "samples": len(samples),
           "peak_rss_mib": mib(max(rss)) if rss else None,
           "rss_start_mib": mib(samples[0][2]),
           "rss_end_mib": mib(samples[-1][2])}
    for i, q in ((1, 0.25), (2, 0.5), (3, 0.75)):
        hit = [s for s in samples if s[1] >= q * a.total and s[2] is not None]
        out[f"rss_q{i}_mib"] = mib(hit[0][2]) if hit else None
    if state["summary"]:
        out["count"], ms, out["mbs"] = state["summary"]
        out["seconds"] = ms / 1000.0
    else:
        out["count"], out["mbs"], out["seconds"] = state["progress"], None, None
    if out["count"] != a.total and not error:
        out["error"] = f"{out['count']} of {a.total} messages"
    if rc != 0 and not out["error"]:
        out["error"] = f"tool exited with {rc}"
    with open(a.out, "w") as f:
        json.dump(out, f)
    print(json.dumps(out))
    # the full RSS curve, for whoever wants to plot it
    with open(a.out + ".samples", "w") as f:
        for t, p, r in samples:
            f.write(f"{t:.2f} {p} {r if r is not None else 'nan'}\n")
    sys.exit(0 if not out["error"] else 1)


if __name__ == "__main__":
    main()
