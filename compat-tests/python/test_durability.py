"""Acknowledged records survive a crash (SIGKILL) and a graceful restart."""

from __future__ import annotations

import time

import pytest
from confluent_kafka.admin import AdminClient

from compat import (
    ck_consume_all,
    ck_create_topic,
    ck_produce,
    ck_watermarks,
    make_records,
    unique_topic,
    verify,
)

PARTITIONS = 3
N = 20_000
MORE = 300


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.mark.parametrize("how", ["kill9", "graceful"])
def test_acknowledged_records_survive_restart(broker, how):
    """20k records acknowledged with acks=all (every delivery report checked)
    are all there, exactly once and where acknowledged, after SIGKILL (or
    SIGTERM) and a restart on the same port and data dir; the watermarks are
    unchanged, the topic keeps its partitions, and new records continue the
    offsets where they stopped."""
    topic = unique_topic(f"dur-{how}")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    all_recs = make_records(N + MORE, base_ts=now_ms() - 60_000)
    recs, more = all_recs[:N], all_recs[N:]
    acked = ck_produce(broker.bootstrap, topic, recs, acks="all")
    wm_before = ck_watermarks(broker.bootstrap, topic, PARTITIONS)
    assert sum(h for _, h in wm_before.values()) == N, wm_before

    if how == "kill9":
        broker.kill9()
        broker.start()
    else:
        broker.restart()

    md = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(topic, timeout=30)
    assert sorted(md.topics[topic].partitions) == list(range(PARTITIONS)), md.topics[topic].partitions
    assert ck_watermarks(broker.bootstrap, topic, PARTITIONS) == wm_before

    got = ck_consume_all(broker.bootstrap, topic, PARTITIONS)
    verify(recs, got, num_partitions=PARTITIONS, acked=acked)

    acked_more = ck_produce(broker.bootstrap, topic, more, acks="all")
    for seq, (p, o) in acked_more.items():
        assert o >= wm_before[p][1], f"seq {seq} acknowledged at p{p} o{o}, below the old high watermark {wm_before[p]}"
    got = ck_consume_all(broker.bootstrap, topic, PARTITIONS)
    verify(all_recs, got, num_partitions=PARTITIONS, acked={**acked, **acked_more})


def test_two_crashes_in_a_row(broker):
    """Crash, restart, produce, crash again: both generations survive."""
    topic = unique_topic("dur-twice")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    all_recs = make_records(4000, base_ts=now_ms() - 60_000)
    acked = ck_produce(broker.bootstrap, topic, all_recs[:2000])
    broker.kill9()
    broker.start()
    acked.update(ck_produce(broker.bootstrap, topic, all_recs[2000:]))
    broker.kill9()
    broker.start()
    got = ck_consume_all(broker.bootstrap, topic, PARTITIONS)
    verify(all_recs, got, num_partitions=PARTITIONS, acked=acked)


@pytest.mark.ephemeral
def test_ephemeral_forgets_on_restart(broker):
    """--ephemeral keeps nothing across a restart: the topic is gone."""
    topic = unique_topic("dur-eph")
    ck_create_topic(broker.bootstrap, topic, PARTITIONS)
    ck_produce(broker.bootstrap, topic, make_records(100))
    assert sum(h for _, h in ck_watermarks(broker.bootstrap, topic, PARTITIONS).values()) == 100
    broker.restart()
    # list_topics() without a name does not auto-create
    md = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=30)
    assert topic not in md.topics, f"{topic} survived an ephemeral restart"
