#!/usr/bin/env python3
"""Log compaction on a release Gregor: cleaner throughput, space reclaimed,
and acks=all produce latency while the cleaner runs.

A compacted 1-partition topic (segment.bytes 16 MiB, min.cleanable.dirty.ratio
0.5) gets N records of 100 bytes over K distinct keys from a confluent-kafka
producer; then, while the cleaner (log.cleaner.backoff.ms=1000) compacts it, a
probe producer sends one acks=all record every 5 ms and its round trips are
timed; the same probe runs again once the cleaner is idle. The cleaner's log
lines give bytes before and after and the time each pass took.

  .venv/bin/python bench/compaction/run.py [--records 2000000] [--keys 10000]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parents[2]


def probe(bootstrap: str, seconds: float) -> list[float]:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    lat: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        done = threading.Event()
        p.produce("probe", b"x" * 100, on_delivery=lambda e, m: done.set())
        while not done.is_set():
            p.poll(0.001)
        lat.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.005)
    return lat


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--keys", type=int, default=10_000)
    args = ap.parse_args()
    binary = os.environ.get("GREGOR_BIN", str(REPO / "target" / "release" / "gregor"))
    data = Path(tempfile.mkdtemp(prefix="gregor-compaction."))
    log_path = data / "broker.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data / "d"),
             "-o", "log.cleaner.backoff.ms=1000"],
            stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        bootstrap = None
        for _ in range(200):
            m = re.search(r"listening.*addr=(\S+:\d+)", log_path.read_text())
            if m:
                bootstrap = m.group(1)
                break
            time.sleep(0.05)
        assert bootstrap, "gregor did not start"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        fs = admin.create_topics([
            NewTopic("compacted", 1, 1, config={"cleanup.policy": "compact", "segment.bytes": str(16 << 20),
                                                "min.cleanable.dirty.ratio": "0.5"}),
            NewTopic("probe", 1, 1)])
        for f in fs.values():
            f.result(30)
        base = probe(bootstrap, 5)
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1 << 20, "acks": 1})
        t0 = time.monotonic()
        for i in range(args.records):
            while True:
                try:
                    p.produce("compacted", b"v" * 100, key=f"key-{i % args.keys}")
                    break
                except BufferError:
                    p.poll(0.01)
        p.flush(120)
        write_s = time.monotonic() - t0
        during = probe(bootstrap, 15)
        after = probe(bootstrap, 5)
        lines = [l for l in log_path.read_text().splitlines() if "compacted topic=compacted" in l]
        before_b = sum(int(re.search(r"bytes_before=(\d+)", l).group(1)) for l in lines)
        after_b = sum(int(re.search(r"bytes_after=(\d+)", l).group(1)) for l in lines)
        ms = sum(int(re.search(r"elapsed_ms=(\d+)", l).group(1)) for l in lines)
        du = sum(f.stat().st_size for f in (data / "d").rglob("*.log"))
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"records {args.records:,} over {args.keys:,} keys written in {write_s:.1f} s")
        print(f"cleaner passes: {len(lines)}; rewrote {before_b/2**20:.1f} MiB into {after_b/2**20:.1f} MiB "
              f"in {ms/1000:.2f} s ({before_b/2**20/max(ms/1000, 1e-9):.0f} MiB/s of segments cleaned)")
        print(f"segment files now {du/2**20:.1f} MiB")
        for name, xs in (("before", base), ("while cleaning", during), ("after", after)):
            print(f"acks=all probe {name}: p50 {statistics.median(xs):.2f} ms, p99 {pct(xs, 0.99):.2f} ms, n={len(xs)}")
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
