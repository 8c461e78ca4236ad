#!/usr/bin/env python3
"""create_topics.py BOOTSTRAP TOPIC... : create single-partition topics (RF 1)
before a row is timed, so that no row pays for topic auto-creation and the
client's metadata retry (librdkafka waits up to 1 s before it asks again)."""
import sys

from confluent_kafka.admin import AdminClient, NewTopic

admin = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0})
futs = admin.create_topics([NewTopic(t, 1, 1) for t in sys.argv[2:]], operation_timeout=30,
                           request_timeout=30)
for t, f in futs.items():
    f.result(timeout=60)
# wait until every topic is in the metadata with a leader
import time
deadline = time.time() + 30
while True:
    md = admin.list_topics(timeout=10)
    if all(t in md.topics and md.topics[t].error is None and md.topics[t].partitions
           and md.topics[t].partitions[0].leader >= 0 for t in sys.argv[2:]):
        break
    if time.time() > deadline:
        sys.exit("topics not ready: %s" % sys.argv[2:])
    time.sleep(0.05)
