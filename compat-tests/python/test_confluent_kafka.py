"""confluent-kafka (librdkafka 2.16) against gregor."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from compat import (
    assert_compressed_with,
    ck_consume_all,
    ck_consumer,
    ck_create_topic,
    ck_produce,
    ck_watermarks,
    make_records,
    unique_topic,
    verify,
    wait_until,
)

PARTITIONS = 3


def now_ms() -> int:
    return int(time.time() * 1000)


def per_partition_counts(got) -> dict[int, int]:
    counts = {p: 0 for p in range(PARTITIONS)}
    for g in got:
        counts[g.partition] += 1
    return counts


def test_produce_consume_10k_keyed(broker):
    """10k keyed records (headers, null keys, null/empty values, explicit
    timestamps) with acks=all to a 3-partition topic made by CreateTopics;
    everything comes back exactly once, in per-key order, where the delivery
    reports said, with contiguous offsets from 0 in each partition."""
    topic = unique_topic("ck-core")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    recs = make_records(10_000, base_ts=now_ms() - 60_000)
    acked = ck_produce(broker.bootstrap, topic, recs, acks="all")
    got = ck_consume_all(broker.bootstrap, topic, PARTITIONS)
    verify(recs, got, num_partitions=PARTITIONS, acked=acked)
    counts = per_partition_counts(got)
    # 100 distinct keys over 3 partitions: every partition is used
    assert all(c > 0 for c in counts.values()), f"records per partition: {counts}"


def test_watermarks_and_list_offsets(broker):
    """Low/high watermarks from Consumer.get_watermark_offsets and
    AdminClient.list_offsets (earliest/latest) equal 0 and the number of
    records found in each partition."""
    topic = unique_topic("ck-wm")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    recs = make_records(1500)
    ck_produce(broker.bootstrap, topic, recs)
    got = ck_consume_all(broker.bootstrap, topic, PARTITIONS)
    verify(recs, got, num_partitions=PARTITIONS, check_timestamps=False)
    counts = per_partition_counts(got)

    wm = ck_watermarks(broker.bootstrap, topic, PARTITIONS)
    assert wm == {p: (0, counts[p]) for p in range(PARTITIONS)}, f"watermarks {wm}, counts {counts}"

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for spec, want in ((OffsetSpec.earliest(), lambda p: 0), (OffsetSpec.latest(), lambda p: counts[p])):
        futs = admin.list_offsets(
            {TopicPartition(topic, p): spec for p in range(PARTITIONS)}, request_timeout=30
        )
        res = {tp.partition: f.result(timeout=30).offset for tp, f in futs.items()}
        assert res == {p: want(p) for p in range(PARTITIONS)}, f"list_offsets({spec}): {res}, counts {counts}"


def test_offsets_for_times(broker):
    """offsets_for_times (Consumer) and list_offsets(for_timestamp) (Admin)
    return the first offset whose timestamp is >= the query, for a query
    exactly at a record, between two records, before all and after all."""
    topic = unique_topic("ck-oft")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    base = now_ms() - 60_000
    recs = make_records(600, base_ts=base)  # timestamps base + 2*i: gaps of >= 2 ms
    ck_produce(broker.bootstrap, topic, recs)
    got = ck_consume_all(broker.bootstrap, topic, PARTITIONS)
    verify(recs, got, num_partitions=PARTITIONS)

    by_part: dict[int, list[tuple[int, int]]] = {p: [] for p in range(PARTITIONS)}
    for g in sorted(got, key=lambda g: (g.partition, g.offset)):
        by_part[g.partition].append((g.offset, g.timestamp))

    def expected(p: int, ts: int) -> int:
        return next((o for o, t in by_part[p] if t >= ts), -1)

    queries = []  # (partition, timestamp)
    for p, recs_p in by_part.items():
        assert len(recs_p) >= 4, f"partition {p} has only {len(recs_p)} records"
        mid = len(recs_p) // 2
        (_, t_prev), (_, t_mid) = recs_p[mid - 1], recs_p[mid]
        assert t_mid - t_prev >= 2
        queries += [
            (p, t_mid),  # exactly at a record
            (p, t_prev + 1),  # between two records -> the later one
            (p, recs_p[0][1] - 1000),  # before all -> first offset
            (p, recs_p[-1][1] + 1),  # after all -> none
        ]
    want = [expected(p, ts) for p, ts in queries]
    assert want.count(-1) == PARTITIONS and 0 in want  # the queries cover each case

    # one query per partition per request: Kafka answers INVALID_REQUEST to
    # a ListOffsets naming a partition twice
    c = ck_consumer(broker.bootstrap)
    try:
        for i in range(4):
            qs = queries[i::4]
            res = c.offsets_for_times([TopicPartition(topic, p, ts) for p, ts in qs], timeout=30)
            for tp in res:
                assert tp.error is None, f"offsets_for_times {tp}: {tp.error}"
            got_offsets = {tp.partition: tp.offset for tp in res}
            want_offsets = {p: expected(p, ts) for p, ts in qs}
            assert got_offsets == want_offsets, f"offsets_for_times({qs}): got {got_offsets}, want {want_offsets}"
    finally:
        c.close()

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for i in range(4):
        qs = queries[i::4]
        futs = admin.list_offsets(
            {TopicPartition(topic, p): OffsetSpec.for_timestamp(ts) for p, ts in qs}, request_timeout=30
        )
        res = {tp.partition: f.result(timeout=30).offset for tp, f in futs.items()}
        assert res == {p: expected(p, ts) for p, ts in qs}, f"list_offsets(for_timestamp) {qs}: {res}"


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_compression(broker, codec):
    """2000 records produced with compression.type=<codec> in batches of up
    to 200 really go out compressed with <codec> (librdkafka's debug log
    names each MessageSet's codec: librdkafka silently falls back to
    uncompressed when the broker's ApiVersions lack what it gates a codec
    on) and come back intact and in order."""
    topic = unique_topic(f"ck-{codec}")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    recs = make_records(2000, base_ts=now_ms() - 60_000)
    log: list[str] = []
    acked = ck_produce(
        broker.bootstrap,
        topic,
        recs,
        debug_log=log,
        **{"compression.type": codec, "linger.ms": 20, "batch.num.messages": 200},
    )
    assert_compressed_with("\n".join(log), codec, len(recs))
    got = ck_consume_all(broker.bootstrap, topic, PARTITIONS)
    verify(recs, got, num_partitions=PARTITIONS, acked=acked)


def test_idempotent_producer(broker):
    """enable.idempotence=true (InitProducerId, sequence numbers): records
    come back exactly once and in order."""
    topic = unique_topic("ck-idem")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    recs = make_records(3000, base_ts=now_ms() - 60_000)
    acked = ck_produce(broker.bootstrap, topic, recs, **{"enable.idempotence": True})
    got = ck_consume_all(broker.bootstrap, topic, PARTITIONS)
    verify(recs, got, num_partitions=PARTITIONS, acked=acked)


def test_auto_create_on_produce(broker):
    """Producing to an unknown topic auto-creates it with num.partitions
    (default 1): offsets 0..n-1 in partition 0, in production order."""
    topic = unique_topic("ck-auto")
    recs = make_records(500, base_ts=now_ms() - 60_000)
    acked = ck_produce(broker.bootstrap, topic, recs)
    got = ck_consume_all(broker.bootstrap, topic, 1)
    verify(recs, got, num_partitions=1, acked=acked)
    assert [g.value for g in sorted(got, key=lambda g: g.offset)] == [r.value for r in recs]


def test_create_existing_topic_fails(broker):
    topic = unique_topic("ck-dup")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    fut = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic]
    with pytest.raises(KafkaException) as exc:
        fut.result(timeout=30)
    assert exc.value.args[0].name() == "TOPIC_ALREADY_EXISTS", exc.value
    md = admin.list_topics(topic, timeout=30)
    assert len(md.topics[topic].partitions) == PARTITIONS  # unchanged


def test_delete_topic(broker):
    """DeleteTopics removes the topic from the metadata; re-creating it gives
    an empty topic with the new partition count."""
    topic = unique_topic("ck-del")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    ck_produce(broker.bootstrap, topic, make_records(100))
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.delete_topics([topic], operation_timeout=30, request_timeout=30)[topic].result(timeout=30)
    # list_topics() without a topic name does not auto-create
    wait_until(
        lambda: topic not in admin.list_topics(timeout=10).topics,
        30,
        f"{topic} to leave the metadata",
    )
    ck_create_topic(broker.bootstrap, topic, 2)
    assert ck_watermarks(broker.bootstrap, topic, 2) == {0: (0, 0), 1: (0, 0)}
    recs = make_records(50)
    acked = ck_produce(broker.bootstrap, topic, recs)
    got = ck_consume_all(broker.bootstrap, topic, 2)
    verify(recs, got, num_partitions=2, acked=acked, check_timestamps=False)
