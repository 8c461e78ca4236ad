#!/usr/bin/env python3
"""Capture scenario for kafka-python (pure Python)."""
import sys

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

B = sys.argv[1]
T = "capture-kafka-python"

admin = KafkaAdminClient(bootstrap_servers=B)
print("create_topics", admin.create_topics([NewTopic(T, 1, 1)]))

p = KafkaProducer(bootstrap_servers=B, linger_ms=50)
for i in range(3):
    p.send(T, key=b"k%d" % i, value=b"v%d" % i, partition=0)
p.flush(15)
p.close()
p = KafkaProducer(bootstrap_servers=B, linger_ms=50, compression_type="gzip")
# kafka-python sends a batch uncompressed when gzip does not shrink it:
# compressible values keep this one gzip.
for i in range(3, 6):
    p.send(T, key=b"k%d" % i, value=b"v%d-" % i + b"gregor" * 40, partition=0)
p.flush(15)
p.close()

c = KafkaConsumer(bootstrap_servers=B, enable_auto_commit=False, group_id=None)
tp = TopicPartition(T, 0)
c.assign([tp])
c.seek_to_beginning(tp)
got = []
for _ in range(30):
    for recs in c.poll(timeout_ms=500).values():
        got.extend((r.offset, r.key, r.value[:8]) for r in recs)
    if len(got) >= 6:
        break
print("consumed", got)
assert len(got) == 6, got
print("beginning_offsets", c.beginning_offsets([tp]))
print("end_offsets", c.end_offsets([tp]))
print("offsets_for_times", c.offsets_for_times({tp: 0}))
c.close()
admin.close()

# Best effort, after the scenario proper: a group consumer with a pinned
# api_version (no ApiVersions gating), so that the client sends the group
# APIs Gregor does not serve yet (FindCoordinator first). The broker closes
# the connection; the frames are kept as "unserved" goldens.
if "--no-group" not in sys.argv:
    try:
        g = KafkaConsumer(T, bootstrap_servers=B, group_id="capture-group",
                          api_version=(2, 5), request_timeout_ms=5000,
                          auto_offset_reset="earliest")
        print("group poll", g.poll(timeout_ms=3000))
        g.close(autocommit=False)
    except Exception as e:  # expected while Gregor has no group coordinator
        print("group phase (expected to fail):", type(e).__name__, e)
