#!/usr/bin/env python3
"""Spawn a broker and time how long until a produce to it succeeds.

    startup_probe.py --bootstrap 127.0.0.1:PORT [--log FILE] -- CMD ARGS...

Everything slow (Python start-up, imports, client library loading) happens
before the clock starts. Then: t0, spawn CMD (stdout/stderr to --log), and
  1. try a TCP connect every 1 ms until one is accepted;
  2. CreateTopics "startup-probe" (1 partition, RF 1) with confluent-kafka's
     AdminClient (librdkafka), retrying until it succeeds or says the topic
     exists;
  3. produce one 100-byte message with acks=all through a fresh producer and
     wait up to 2 s for its delivery report; on failure, try again with a new
     producer (a fresh producer asks for metadata at once instead of waiting
     for librdkafka's 1 s refresh timer).
Prints one JSON line: pid, accept_ms, created_ms, produced_ms (all from t0,
i.e. from just before fork/exec). The broker is left running (the caller
measures its idle RSS and stops it). Exit 1 if nothing succeeded within
--timeout seconds (the broker is killed then).
"""
import argparse
import json
import socket
import subprocess
import sys
import time

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

FAST = {
    "reconnect.backoff.ms": 1,
    "reconnect.backoff.max.ms": 10,
    "retry.backoff.ms": 10,
    "socket.connection.setup.timeout.ms": 1000,
    "log_level": 0,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", default="startup-probe")
    ap.add_argument("--log", default="/dev/null")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    host, port = a.bootstrap.rsplit(":", 1)
    port = int(port)
    payload = b"x" * 100
    logf = open(a.log, "ab")

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                            start_new_session=True)
    deadline = t0 + a.timeout
    ms = lambda: (time.perf_counter() - t0) * 1000.0

    def alive_or_die():
        if proc.poll() is not None:
            print(json.dumps({"error": "broker exited with %s" % proc.returncode}))
            sys.exit(1)
        if time.perf_counter() > deadline:
            proc.kill()
            print(json.dumps({"error": "timeout"}))
            sys.exit(1)

    # 1. TCP accept
    while True:
        alive_or_die()
        s = socket.socket()
        try:
            s.connect((host, port))
            s.close()
            break
        except OSError:
            s.close()
            time.sleep(0.001)
    accept_ms = ms()

    # 2. CreateTopics
    admin = AdminClient({"bootstrap.servers": a.bootstrap, **FAST})
    while True:
        alive_or_die()
        fut = admin.create_topics([NewTopic(a.topic, 1, 1)], operation_timeout=10,
                                  request_timeout=5)[a.topic]
        try:
            fut.result(timeout=10)
            break
        except KafkaException as e:
            err = e.args[0]
            if err.name() == "TOPIC_ALREADY_EXISTS":
                break
            time.sleep(0.005)
        except Exception:
            time.sleep(0.005)
    created_ms = ms()

    # 3. produce, acks=all
    while True:
        alive_or_die()
        result = []
        p = Producer({"bootstrap.servers": a.bootstrap, "acks": "all", "linger.ms": 0,
                      "message.timeout.ms": 2000, **FAST})
        p.produce(a.topic, payload, partition=0,
                  on_delivery=lambda err, msg: result.append(err))
        p.flush(3)
        if result and result[0] is None:
            break
        time.sleep(0.005)
    produced_ms = ms()
    print(json.dumps({"pid": proc.pid, "accept_ms": round(accept_ms, 2),
                      "created_ms": round(created_ms, 2),
                      "produced_ms": round(produced_ms, 2)}))


if __name__ == "__main__":
    main()
