"""Producing with acks=0 and acks=1: every record readable afterwards.

With acks=0 the broker sends no Produce response, so the client has no
offsets and "flushed" only means "written to the socket": the test waits
(polling, with a deadline) until the high watermarks account for every
record before reading back.
"""

from __future__ import annotations

import socket
import struct
import time

import pytest

from compat import (
    ck_consume_all,
    ck_create_topic,
    ck_produce,
    ck_watermarks,
    kp_consume_all,
    kp_create_topic,
    kp_produce,
    make_records,
    unique_topic,
    verify,
    wait_until,
)
from rawkafka import api_versions_v0, parse_produce_v3_response, produce_v3, read_response, record_batch

PARTITIONS = 3
N = 3000


def now_ms() -> int:
    return int(time.time() * 1000)


def wait_for_high_watermarks(bootstrap: str, topic: str, total: int, timeout: float = 30) -> None:
    seen = {}

    def reached():
        seen.update(ck_watermarks(bootstrap, topic, PARTITIONS))
        return sum(h for _, h in seen.values()) >= total

    wait_until(reached, timeout, f"high watermarks of {topic} to add up to {total}", interval=0.1)
    got = sum(h for _, h in seen.values())
    assert got == total, f"high watermarks add up to {got} ({seen}), produced {total}"


@pytest.mark.parametrize("acks", ["1", "0"])
def test_confluent_acks(broker, acks):
    topic = unique_topic(f"ck-acks{acks}")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)  # waits until the leaders answer
    recs = make_records(N, base_ts=now_ms() - 60_000)
    acked = ck_produce(broker.bootstrap, topic, recs, acks=acks, expect_offsets=acks != "0")
    if acks == "0":
        wait_for_high_watermarks(broker.bootstrap, topic, N)
        acked = None  # librdkafka has no offsets to report for acks=0
    got = ck_consume_all(broker.bootstrap, topic, PARTITIONS)
    verify(recs, got, num_partitions=PARTITIONS, acked=acked)
    assert broker.alive()


def test_kafka_python_acks0(broker):
    topic = unique_topic("kp-acks0")
    kp_create_topic(broker.bootstrap, topic, PARTITIONS)  # waits until the leaders answer
    recs = make_records(N, base_ts=now_ms() - 60_000, null_header_values=False)
    kp_produce(broker.bootstrap, topic, recs, acks=0)
    wait_for_high_watermarks(broker.bootstrap, topic, N)
    got = kp_consume_all(broker.bootstrap, topic, PARTITIONS)
    verify(recs, got, num_partitions=PARTITIONS)
    assert broker.alive()


def test_kafka_python_acks1(broker):
    topic = unique_topic("kp-acks1")
    kp_create_topic(broker.bootstrap, topic, PARTITIONS)
    recs = make_records(N, base_ts=now_ms() - 60_000, null_header_values=False)
    acked = kp_produce(broker.bootstrap, topic, recs, acks=1)
    got = kp_consume_all(broker.bootstrap, topic, PARTITIONS)
    verify(recs, got, num_partitions=PARTITIONS, acked=acked)


def test_raw_acks0_gets_no_response(broker):
    """On the wire: a Produce with acks=0 gets no response (the next
    response on the connection answers the request after it), yet its
    records are appended; acks=1 and acks=-1 get their response with the
    right base offsets."""
    topic = unique_topic("raw-acks")
    ck_create_topic(broker.bootstrap, topic, 1)
    s = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
    try:
        s.sendall(
            produce_v3(1, 0, topic, 0, record_batch([b"a0", b"a1", b"a2"]))
            + api_versions_v0(2)
            + produce_v3(3, 1, topic, 0, record_batch([b"b0", b"b1"]))
            + produce_v3(4, -1, topic, 0, record_batch([b"c0"]))
        )
        (corr,) = struct.unpack_from(">i", read_response(s))
        assert corr == 2, f"first response has correlation id {corr}: acks=0 must not be answered"
        assert parse_produce_v3_response(read_response(s)) == (3, [(topic, 0, 0, 3)])
        assert parse_produce_v3_response(read_response(s)) == (4, [(topic, 0, 0, 5)])
    finally:
        s.close()
    got = ck_consume_all(broker.bootstrap, topic, 1)
    assert [(g.offset, g.value) for g in got] == list(
        enumerate([b"a0", b"a1", b"a2", b"b0", b"b1", b"c0"])
    )
