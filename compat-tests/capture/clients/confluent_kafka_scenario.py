#!/usr/bin/env python3
"""Capture scenario for confluent-kafka (bundled librdkafka)."""
import sys

from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

B = sys.argv[1]
T = "capture-confluent-kafka"

admin = AdminClient({"bootstrap.servers": B})
for t, f in admin.create_topics([NewTopic(T, num_partitions=1, replication_factor=1)]).items():
    f.result(15)
    print("created", t)

# Plain producer (librdkafka default: no idempotence, no compression).
p = Producer({"bootstrap.servers": B, "linger.ms": 50})
for i in range(3):
    p.produce(T, key=b"k%d" % i, value=b"v%d" % i, partition=0)
assert p.flush(15) == 0
# Idempotent producer with gzip: InitProducerId + a compressed batch.
p = Producer({"bootstrap.servers": B, "linger.ms": 50, "compression.type": "gzip",
              "enable.idempotence": True})
# librdkafka sends a batch uncompressed when gzip does not shrink it:
# compressible values keep this one gzip.
for i in range(3, 6):
    p.produce(T, key=b"k%d" % i, value=b"v%d-" % i + b"gregor" * 40, partition=0)
assert p.flush(15) == 0

c = Consumer({"bootstrap.servers": B, "group.id": "capture-unused",
              "enable.auto.commit": False, "enable.partition.eof": True})
c.assign([TopicPartition(T, 0, OFFSET_BEGINNING)])
got = []
while True:
    m = c.poll(15)
    assert m is not None, "poll timed out after %d records" % len(got)
    if m.error():
        if m.error().code() == -191:  # _PARTITION_EOF
            break
        raise SystemExit("consume error: %s" % m.error())
    got.append((m.offset(), m.key(), m.value()[:8]))
print("consumed", got)
assert len(got) == 6, got
print("watermarks", c.get_watermark_offsets(TopicPartition(T, 0), timeout=15))
print("offsets_for_times", c.offsets_for_times([TopicPartition(T, 0, 0)], timeout=15))
c.close()

res = admin.list_offsets({TopicPartition(T, 0): OffsetSpec.latest()})
for tp, f in res.items():
    print("list_offsets latest", tp, f.result(15).offset)
res = admin.list_offsets({TopicPartition(T, 0): OffsetSpec.earliest()})
for tp, f in res.items():
    print("list_offsets earliest", tp, f.result(15).offset)
