"""kafka-python 3.0 (pure Python, no librdkafka) against gregor."""

from __future__ import annotations

import time

import kafka.codec
import pytest
from kafka import KafkaConsumer, TopicPartition

from compat import (
    kp_consume_all,
    kp_create_topic,
    kp_produce,
    make_records,
    unique_topic,
    verify,
)

PARTITIONS = 3


def now_ms() -> int:
    return int(time.time() * 1000)


def test_produce_consume_10k_keyed(broker):
    """10k keyed records (headers, null keys, null/empty values, explicit
    timestamps) with acks='all' to a 3-partition topic made by
    KafkaAdminClient.create_topics; read back with assign() +
    seek_to_beginning(): exactly once, per-key order, where acknowledged."""
    topic = unique_topic("kp-core")
    kp_create_topic(broker.bootstrap, topic, PARTITIONS)
    # kafka-python only sends bytes header values (no null header value)
    recs = make_records(10_000, base_ts=now_ms() - 60_000, null_header_values=False)
    acked = kp_produce(broker.bootstrap, topic, recs, acks="all")
    got = kp_consume_all(broker.bootstrap, topic, PARTITIONS)
    verify(recs, got, num_partitions=PARTITIONS, acked=acked)
    assert {g.partition for g in got} == set(range(PARTITIONS))


def test_offsets_api(broker):
    """beginning_offsets / end_offsets / offsets_for_times agree with the
    records read back."""
    topic = unique_topic("kp-offsets")
    kp_create_topic(broker.bootstrap, topic, PARTITIONS)
    recs = make_records(600, base_ts=now_ms() - 60_000, null_header_values=False)
    acked = kp_produce(broker.bootstrap, topic, recs)
    got = kp_consume_all(broker.bootstrap, topic, PARTITIONS)
    verify(recs, got, num_partitions=PARTITIONS, acked=acked)

    by_part = {p: sorted((g.offset, g.timestamp) for g in got if g.partition == p) for p in range(PARTITIONS)}
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        assert c.beginning_offsets(tps) == {tp: 0 for tp in tps}
        assert c.end_offsets(tps) == {tp: len(by_part[tp.partition]) for tp in tps}
        # between two records of each partition -> the later record
        query = {}
        want = {}
        for tp in tps:
            recs_p = by_part[tp.partition]
            mid = len(recs_p) // 2
            query[tp] = recs_p[mid - 1][1] + 1
            want[tp] = (recs_p[mid][0], recs_p[mid][1])
        res = c.offsets_for_times(query)
        assert {tp: (r.offset, r.timestamp) for tp, r in res.items()} == want
        # after every record -> None
        after = {tp: by_part[tp.partition][-1][1] + 1 for tp in tps}
        assert c.offsets_for_times(after) == {tp: None for tp in tps}
    finally:
        c.close()


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression(broker, codec):
    """2000 records produced with compression_type=<codec> come back intact
    (and, for the consumer, decompressed by kafka-python's own codecs)."""
    has = getattr(kafka.codec, f"has_{codec}")
    assert has(), f"kafka-python cannot use {codec}: pip install -r compat-tests/python/requirements.txt"
    topic = unique_topic(f"kp-{codec}")
    kp_create_topic(broker.bootstrap, topic, PARTITIONS)
    recs = make_records(2000, base_ts=now_ms() - 60_000, null_header_values=False)
    acked = kp_produce(broker.bootstrap, topic, recs, compression_type=codec, batch_size=16384, linger_ms=20)
    got = kp_consume_all(broker.bootstrap, topic, PARTITIONS)
    verify(recs, got, num_partitions=PARTITIONS, acked=acked)


def test_auto_create_on_produce(broker):
    """Sending to an unknown topic auto-creates it (1 partition by default)."""
    topic = unique_topic("kp-auto")
    recs = make_records(300, base_ts=now_ms() - 60_000, null_header_values=False)
    acked = kp_produce(broker.bootstrap, topic, recs)
    got = kp_consume_all(broker.bootstrap, topic, 1)
    verify(recs, got, num_partitions=1, acked=acked)
