#!/usr/bin/env python3
"""Client-side helpers for bench/storage/run.sh (confluent-kafka, librdkafka).

    util.py create BOOTSTRAP TOPIC PARTITIONS
        CreateTopics (RF 1), then wait until every partition has a leader.
    util.py watermarks BOOTSTRAP TOPIC
        prints the sum of the partitions' high watermarks (= records kept,
        the topics here are never trimmed).
    util.py latency BOOTSTRAP TOPIC N
        N produces of 100 B to partition 0 with acks=all and linger.ms=0, one
        at a time: each produce() waits for the previous delivery report, so
        exactly one message is in flight. Times produce() -> delivery
        callback; the first 100 are dropped (connection set-up). Prints JSON
        with p50_ms, p99_ms, mean_ms.
"""
import json
import statistics
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create(boot, topic, parts):
    admin = AdminClient({"bootstrap.servers": boot, "log_level": 0})
    fut = admin.create_topics([NewTopic(topic, int(parts), 1)], operation_timeout=60,
                              request_timeout=60)[topic]
    fut.result(timeout=120)
    deadline = time.time() + 60
    while True:
        md = admin.list_topics(timeout=10).topics.get(topic)
        if (md is not None and md.error is None and len(md.partitions) == int(parts)
                and all(p.leader >= 0 for p in md.partitions.values())):
            return
        if time.time() > deadline:
            sys.exit(f"topic {topic} not ready")
        time.sleep(0.05)


def watermarks(boot, topic):
    c = Consumer({"bootstrap.servers": boot, "group.id": "storage-bench-watermarks",
                  "enable.auto.commit": False, "log_level": 0})
    try:
        md = c.list_topics(topic, timeout=30).topics[topic]
        if md.error is not None:
            raise KafkaException(md.error)
        total = 0
        for p in md.partitions:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            total += hi
        print(total)
    finally:
        c.close()


def latency(boot, topic, n):
    n = int(n)
    p = Producer({"bootstrap.servers": boot, "acks": "all", "linger.ms": 0,
                  "enable.idempotence": False, "log_level": 0})
    payload = b"x" * 100
    lat = []
    for _ in range(n):
        done = []
        t0 = time.perf_counter()
        p.produce(topic, payload, partition=0,
                  on_delivery=lambda err, msg: done.append((err, time.perf_counter())))
        p.flush(30)
        if not done or done[0][0] is not None:
            sys.exit(f"delivery failed: {done}")
        lat.append((done[0][1] - t0) * 1000.0)
    lat = sorted(lat[100:] if n > 200 else lat)
    q = lambda f: lat[max(0, int(len(lat) * f) - 1)]
    print(json.dumps({"n": len(lat), "p50_ms": round(q(0.50), 3), "p99_ms": round(q(0.99), 3),
                      "mean_ms": round(statistics.mean(lat), 3)}))


if __name__ == "__main__":
    {"create": create, "watermarks": watermarks, "latency": latency}[sys.argv[1]](*sys.argv[2:])
