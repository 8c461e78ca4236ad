#!/usr/bin/env python3
"""Many partitions: does a produced record cost the broker the same at 100
partitions as at 100,000? (tracker issue 8, "Many partitions stay cheap")

    run.py [--topics T] [--partitions P] [--gregor-bin PATH | --bootstrap HOST:PORT --pid PID]

1. Creates T topics x P partitions (AdminClient, in chunks of at most
   --chunk-partitions partitions per CreateTopics, waiting for each chunk).
2. Produces one --record-bytes record to every partition with acks=all from
   one confluent-kafka (librdkafka) producer and waits for every delivery
   report (--rounds N: N such rounds, for a steadier figure when there are
   few partitions). Around this phase only it reads the broker's
   utime+stime from /proc/PID/stat, so topic creation and start-up are not
   counted. librdkafka sends one Produce request per partition, so every
   record here is a request of its own.
3. Times one full Metadata request (v1, null topic list, raw bytes on a
   socket of its own, best of three: librdkafka's own scheduling adds tens
   of milliseconds to list_topics), reads VmRSS and VmHWM.
4. If it started the broker itself: SIGTERM, wait for the exit, start again
   on the same data directory and time until a Metadata request answers
   with every topic.

Prints one JSON line. Defaults: 100 topics x 100 partitions, a broker
started from --gregor-bin (default target/release/gregor) on a free port
with a fresh data directory under /tmp. Every option also reads an
environment variable, MP_<OPTION> (MP_TOPICS, MP_PARTITIONS, ...).

With --bootstrap the broker is one already running; give --pid to get CPU
and memory figures (restart is then skipped: the script did not start it).
With --request-counts the producer's librdkafka statistics are included
(requests per API it sent, as librdkafka counts them) to show how many
Metadata requests a run costs. Records librdkafka could not send within its message.timeout.ms
(300 s) are failures; broker CPU is then per delivered record.

Examples:
    run.py --gregor-bin target/release/gregor --topics 300            # 30,000 partitions
    run.py --topics 1 --rounds 100                                    # 100 partitions, 10,000 records
    run.py --topics 1000 --no-produce                                 # metadata and restart only
    run.py --broker-arg=--ephemeral                                   # memory store: no fsync
    run.py --topics 1 --rounds 30 --rate 140                          # 100 partitions, paced
"""
import argparse
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

QUIET = {"log_level": 0}


def env_default(name, default, kind=str):
    v = os.environ.get("MP_" + name.upper().replace("-", "_"))
    return kind(v) if v is not None else default


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--topics", type=int, default=env_default("topics", 100, int))
    ap.add_argument("--partitions", type=int, default=env_default("partitions", 100, int),
                    help="partitions per topic")
    ap.add_argument("--rounds", type=int, default=env_default("rounds", 1, int),
                    help="produce one record per partition this many times, each round "
                         "waiting for its acknowledgements (more records for a steadier "
                         "figure at small partition counts)")
    ap.add_argument("--rate", type=float, default=env_default("rate", 0.0, float),
                    help="records per second (default: as fast as the producer goes). "
                         "Pacing a run with few partitions to the rate librdkafka reaches "
                         "with many tells the cost of a partition from the cost of a "
                         "request arriving alone")
    ap.add_argument("--record-bytes", type=int, default=env_default("record-bytes", 100, int))
    ap.add_argument("--chunk-partitions", type=int,
                    default=env_default("chunk-partitions", 5000, int),
                    help="partitions per CreateTopics request (Kafka refuses a request "
                         "that makes more than 10,000 metadata records)")
    ap.add_argument("--topic-prefix", default=env_default("topic-prefix", "mp"))
    ap.add_argument("--gregor-bin", default=env_default("gregor-bin", None),
                    help="start this broker binary (default target/release/gregor "
                         "unless --bootstrap is given)")
    ap.add_argument("--data-dir", default=env_default("data-dir", None),
                    help="data directory for the broker this script starts "
                         "(default: a fresh one under /tmp, removed afterwards)")
    ap.add_argument("--broker-log", default=env_default("broker-log", None),
                    help="file for the started broker's stderr (default: discarded)")
    ap.add_argument("--bootstrap", default=env_default("bootstrap", None),
                    help="use a running broker instead of starting one")
    ap.add_argument("--pid", type=int, default=env_default("pid", None, int),
                    help="pid of the running broker given by --bootstrap")
    ap.add_argument("--broker-arg", action="append", default=[],
                    help="extra argument for the started broker, e.g. --broker-arg=--ephemeral "
                         "(repeatable; restart is skipped with --ephemeral)")
    ap.add_argument("--producer-config", action="append", default=[], metavar="KEY=VALUE",
                    help="extra librdkafka property for the producer, e.g. debug=metadata "
                         "(repeatable)")
    ap.add_argument("--request-counts", action="store_true",
                    default=bool(env_default("request-counts", "")),
                    help="report the producer's requests per API from librdkafka's "
                         "statistics (emitted every second: at 100,000 partitions that "
                         "costs the client about a tenth of its CPU, so it is off by default)")
    ap.add_argument("--no-produce", action="store_true",
                    default=bool(env_default("no-produce", "")),
                    help="skip the produce phase (metadata, memory and restart only)")
    ap.add_argument("--no-restart", action="store_true",
                    default=bool(env_default("no-restart", "")),
                    help="skip the restart measurement")
    ap.add_argument("--timeout", type=float, default=env_default("timeout", 3600.0, float),
                    help="seconds allowed for each phase")
    ap.add_argument("--pause-before-produce", action="store_true",
                    help="print the broker pid and wait for Enter before producing "
                         "(to attach perf)")
    return ap.parse_args()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name (field 2) may hold spaces: split after its ')'.
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def memory_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


class Broker:
    """A broker this script starts and stops."""

    def __init__(self, binary, data_dir, log_path, extra_args):
        self.binary = binary
        self.extra_args = extra_args
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--listen", self.bootstrap, "--data-dir", self.data_dir,
             # The run creates every topic itself; a typo must not auto-create one.
             "-o", "auto.create.topics.enable=false", *self.extra_args],
            stdout=subprocess.DEVNULL, stderr=log)
        if log is not subprocess.DEVNULL:
            log.close()

    def stop(self, timeout):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=timeout)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_for_metadata(bootstrap, topics, timeout):
    """Seconds until a Metadata request answers with every topic in `topics`
    (a fresh client each try, so nothing is cached)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        admin = AdminClient({"bootstrap.servers": bootstrap, "reconnect.backoff.ms": 1,
                             "reconnect.backoff.max.ms": 10, **QUIET})
        try:
            md = admin.list_topics(timeout=max(0.1, min(10.0, deadline - time.monotonic())))
            if all(t in md.topics for t in topics):
                return time.monotonic() - t0
        except KafkaException:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"metadata with all {len(topics)} topics not answered "
                             f"within {timeout} s")
        time.sleep(0.01)


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise SystemExit("broker closed the connection during a Metadata response")
        buf += chunk
    return bytes(buf)


def metadata_all(bootstrap, timeout):
    """One Metadata v1 request for all topics (null topic list), in raw bytes
    on a connection of its own. Returns (seconds from the first byte sent to
    the last byte received, topics in the answer, response bytes)."""
    host, port = bootstrap.rsplit(":", 1)
    client_id = b"many-partitions"
    # Header v1: api_key 3 (Metadata), version 1, correlation id, client id;
    # body: topics = null (-1), which asks for every topic.
    body = struct.pack(">hhih", 3, 1, 7, len(client_id)) + client_id + struct.pack(">i", -1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.monotonic()
        s.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", recv_exact(s, 4))
        resp = recv_exact(s, size)
        elapsed = time.monotonic() - t0
    # Response v1: correlation id, brokers [node_id, host, port, rack],
    # controller id, then the topics array.
    (corr, n_brokers) = struct.unpack_from(">ii", resp, 0)
    if corr != 7:
        raise SystemExit(f"Metadata answered correlation id {corr}, sent 7")
    at = 8
    for _ in range(n_brokers):
        (hlen,) = struct.unpack_from(">h", resp, at + 4)
        at += 4 + 2 + hlen + 4
        (rlen,) = struct.unpack_from(">h", resp, at)
        at += 2 + max(rlen, 0)
    (n_topics,) = struct.unpack_from(">i", resp, at + 4)
    return elapsed, n_topics, size


def create_topics(bootstrap, names, partitions, chunk_partitions, timeout):
    admin = AdminClient({"bootstrap.servers": bootstrap, **QUIET})
    per_chunk = max(1, chunk_partitions // partitions)
    for i in range(0, len(names), per_chunk):
        chunk = names[i:i + per_chunk]
        futs = admin.create_topics([NewTopic(n, partitions, 1) for n in chunk],
                                   operation_timeout=timeout, request_timeout=timeout)
        for name, f in futs.items():
            f.result(timeout=timeout)


def produce(bootstrap, names, partitions, record_bytes, rounds, timeout, extra,
            request_counts, rate):
    """`rounds` times one record per partition, acks=all, each round waiting
    for its delivery reports. Returns (seconds, delivered, failures, stats)."""
    stats = {}

    def on_stats(js):
        stats["last"] = js

    conf = {"bootstrap.servers": bootstrap, "acks": "all", **QUIET}
    if request_counts:
        # One snapshot at the end is enough; the callback keeps the last.
        conf.update({"statistics.interval.ms": 1000, "stats_cb": on_stats})
    p = Producer({**conf, **extra})
    value = b"x" * record_bytes
    delivered = [0]
    failures = []

    def on_delivery(err, msg):
        if err is None:
            delivered[0] += 1
        else:
            failures.append(f"{msg.topic()}-{msg.partition()}: {err}")

    t0 = time.monotonic()
    deadline = t0 + timeout
    sent = 0
    for _ in range(rounds):
        for name in names:
            for part in range(partitions):
                if rate:
                    # Paced: record n leaves at t0 + n/rate.
                    wait = t0 + sent / rate - time.monotonic()
                    if wait > 0:
                        p.poll(wait)
                sent += 1
                while True:
                    try:
                        p.produce(name, value=value, partition=part, on_delivery=on_delivery)
                        break
                    except BufferError:
                        p.poll(0.1)  # local queue full: serve delivery reports
            p.poll(0)
        p.flush(max(0.0, deadline - time.monotonic()))
    elapsed = time.monotonic() - t0
    if request_counts:
        # A last statistics snapshot that covers the whole phase.
        snap_deadline = time.monotonic() + 2.5
        stats.pop("last", None)
        while "last" not in stats and time.monotonic() < snap_deadline:
            p.poll(0.1)
    return elapsed, delivered[0], failures, stats.get("last")


def requests_per_api(stats_json):
    """Requests per API the producer sent to the broker(s), from librdkafka's
    statistics."""
    if not stats_json:
        return None
    st = json.loads(stats_json)
    total = {}
    for b in st.get("brokers", {}).values():
        for api, n in (b.get("req") or {}).items():
            if n:
                total[api] = total.get(api, 0) + n
    return total


def main():
    a = parse_args()
    names = [f"{a.topic_prefix}-{i:05d}" for i in range(a.topics)]
    broker = None
    own_dir = None
    if a.bootstrap:
        bootstrap, pid = a.bootstrap, a.pid
    else:
        binary = a.gregor_bin or os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "..", "target", "release",
            "gregor")
        data_dir = a.data_dir or tempfile.mkdtemp(prefix="gregor-mp-", dir="/tmp")
        own_dir = None if a.data_dir else data_dir
        broker = Broker(binary, data_dir, a.broker_log, a.broker_arg)
        broker.start()
        bootstrap = broker.bootstrap
        pid = broker.proc.pid
    result = {"topics": a.topics, "partitions_per_topic": a.partitions,
              "partitions": a.topics * a.partitions, "record_bytes": a.record_bytes}
    try:
        wait_for_metadata(bootstrap, [], a.timeout)
        t0 = time.monotonic()
        create_topics(bootstrap, names, a.partitions, a.chunk_partitions, a.timeout)
        wait_for_metadata(bootstrap, names, a.timeout)
        result["create_s"] = round(time.monotonic() - t0, 3)

        if a.pause_before_produce:
            print(f"broker pid {pid}; press Enter to produce", file=sys.stderr)
            sys.stdin.readline()
        if not a.no_produce:
            cpu0 = cpu_seconds(pid) if pid else None
            extra = dict(kv.split("=", 1) for kv in a.producer_config)
            elapsed, delivered, failures, stats = produce(
                bootstrap, names, a.partitions, a.record_bytes, a.rounds, a.timeout, extra,
                a.request_counts, a.rate)
            cpu1 = cpu_seconds(pid) if pid else None
            n = a.topics * a.partitions * a.rounds
            result["records"] = n
            result["produce_s"] = round(elapsed, 3)
            result["delivered"] = delivered
            if failures or delivered != n:
                result["failures"] = failures[:5]
                result["failure_count"] = n - delivered
            if pid:
                cpu = cpu1 - cpu0
                result["broker_cpu_s"] = round(cpu, 3)
                # Per record the broker took: with failures (librdkafka's
                # message.timeout.ms, 300 s), only delivered ones count.
                result["broker_cpu_us_per_record"] = round(cpu / max(delivered, 1) * 1e6, 1)
            if a.request_counts:
                result["producer_requests"] = requests_per_api(stats)

        # The best of three: one full Metadata request, without the
        # client library's own scheduling in the figure.
        best = None
        for _ in range(3):
            elapsed, n_topics, size = metadata_all(bootstrap, a.timeout)
            if n_topics < a.topics:
                raise SystemExit(f"metadata lists {n_topics} topics, expected >= {a.topics}")
            best = elapsed if best is None else min(best, elapsed)
        result["metadata_all_ms"] = round(best * 1000, 2)
        result["metadata_all_bytes"] = size
        if pid:
            mem = memory_kib(pid)
            result["rss_mib"] = round(mem["VmRSS"] / 1024, 1)
            result["hwm_mib"] = round(mem["VmHWM"] / 1024, 1)

        if broker and not a.no_restart and "--ephemeral" not in a.broker_arg:
            t0 = time.monotonic()
            broker.stop(a.timeout)
            result["stop_s"] = round(time.monotonic() - t0, 3)
            t0 = time.monotonic()
            broker.start()
            wait_for_metadata(bootstrap, names, a.timeout)
            result["restart_s"] = round(time.monotonic() - t0, 3)
            mem = memory_kib(broker.proc.pid)
            result["restart_rss_mib"] = round(mem["VmRSS"] / 1024, 1)
    finally:
        if broker:
            broker.kill()
        if own_dir:
            shutil.rmtree(own_dir, ignore_errors=True)
    print(json.dumps(result))
    return 0 if "failure_count" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
