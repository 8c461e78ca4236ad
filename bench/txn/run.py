#!/usr/bin/env python3
"""The cost of a transaction: Gregor beside Apache Kafka 4.3.1, one run.

For each broker (a release Gregor on a fresh data dir, durable as always;
the reference Kafka 4.3.1 of compat-tests/reference, started once), a
confluent-kafka (librdkafka) transactional producer runs REPEAT
transactions of 10 and of 10,000 records of 100 bytes over a 3-partition
topic, and times:

  commit     begin -> produce N records -> commit_transaction(): the time
             of commit_transaction(), which sends what is still buffered,
             then EndTxn, and returns when the coordinator has answered;
  end_txn    the same after an explicit flush(): EndTxn alone (markers
             written; for Gregor also fsynced before the answer);
  txn_total  begin to commit returned.

Prints medians and p90 in ms as a markdown table, with the machine's load.

  .venv/bin/python bench/txn/run.py [--repeat 30] [--targets gregor,kafka]

Environment: GREGOR_BIN (default: target/release/gregor, built if missing).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "compat-tests" / "reference"))
from reference import reference_kafka  # noqa: E402

VALUE = b"x" * 100


def gregor(workdir: Path):
    binary = Path(os.environ.get("GREGOR_BIN", REPO / "target" / "release" / "gregor"))
    if not binary.exists():
        subprocess.run(["cargo", "build", "--release", "-p", "gregor"], cwd=REPO, check=True)
    data = workdir / "gregor-data"
    proc = subprocess.Popen(
        [str(binary), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.search(r"listening.*addr=(\S+:\d+)", line)
        if m:
            return proc, m.group(1)
    raise SystemExit("gregor did not start")


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def measure(bootstrap: str, label: str, n: int, repeat: int) -> dict[str, list[float]]:
    topic = f"bench-txn-{label}-{n}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": f"bench-{label}-{n}",
            "linger.ms": 5,
        }
    )
    p.init_transactions(60)
    out: dict[str, list[float]] = {"commit": [], "end_txn": [], "txn_total": []}
    for i in range(repeat + 2):  # two warm-up rounds
        for flush_first in (False, True):
            t0 = time.perf_counter()
            p.begin_transaction()
            for k in range(n):
                while True:
                    try:
                        p.produce(topic, VALUE, partition=k % 3)
                        break
                    except BufferError:
                        p.poll(0.01)
            if flush_first:
                p.flush(60)
            t1 = time.perf_counter()
            p.commit_transaction(60)
            t2 = time.perf_counter()
            if i < 2:
                continue
            if flush_first:
                out["end_txn"].append((t2 - t1) * 1000)
            else:
                out["commit"].append((t2 - t1) * 1000)
                out["txn_total"].append((t2 - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--targets", default="gregor,kafka")
    args = ap.parse_args()
    load = os.getloadavg()
    results: dict[tuple[str, int], dict[str, list[float]]] = {}
    work = Path(tempfile.mkdtemp(prefix="gregor-txn-bench."))
    try:
        for target in args.targets.split(","):
            if target == "gregor":
                proc, bootstrap = gregor(work)
                try:
                    for n in (10, 10_000):
                        results[(target, n)] = measure(bootstrap, target, n, args.repeat)
                finally:
                    proc.terminate()
                    proc.wait(30)
            elif target == "kafka":
                with reference_kafka() as bootstrap:
                    for n in (10, 10_000):
                        results[(target, n)] = measure(bootstrap, target, n, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; repeats: {args.repeat}")
    print()
    print("| broker | records | commit_transaction() p50 / p90 ms | EndTxn alone (after flush) p50 / p90 ms | whole transaction p50 ms |")
    print("|---|---|---|---|---|")
    for (target, n), r in results.items():
        print(
            f"| {target} | {n:,} | {statistics.median(r['commit']):.2f} / {percentile(r['commit'], 0.9):.2f} "
            f"| {statistics.median(r['end_txn']):.2f} / {percentile(r['end_txn'], 0.9):.2f} "
            f"| {statistics.median(r['txn_total']):.1f} |"
        )


if __name__ == "__main__":
    main()
