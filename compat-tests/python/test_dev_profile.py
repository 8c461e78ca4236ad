"""The `--dev` test profile and the virtual brokers' listeners (issue 11),
through confluent-kafka's AdminClient and Metadata.

* `--dev` sets its defaults (DescribeConfigs reports them, as lines of a
  server.properties would be: STATIC_BROKER_CONFIG), an explicit setting
  wins whichever side of `--dev` it is on, and `__consumer_offsets` gets
  the profile's single partition;
* `--dev` with a data dir allows `POST /reset`, and what it wiped stays
  wiped across a restart;
* `--virtual-brokers 3` with a fixed `--listen` port takes that port and
  the next two; `--advertised-listener` is followed with consecutive ports,
  and every broker id answers DescribeConfigs for the shared configuration.
"""

from __future__ import annotations

import socket
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from faults import VirtualCluster, ready_fields, wait_for

pytestmark = pytest.mark.skipif(
    __import__("os").environ.get("COMPAT_EXTERNAL_BOOTSTRAP") is not None,
    reason="starts its own gregor with --dev",
)


def broker_configs(bootstrap: str, broker_id: int) -> dict[str, tuple[str, str]]:
    """name -> (value, source) of a broker's configs, as AdminClient sees them."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    res = ConfigResource(ResourceType.BROKER, str(broker_id))
    entries = admin.describe_configs([res])[res].result(timeout=30)
    return {k: (e.value, e.source) for k, e in entries.items()}


def static(value: str) -> tuple[str, int]:
    from confluent_kafka.admin import ConfigSource

    return (value, ConfigSource.STATIC_BROKER_CONFIG.value)


def test_dev_sets_its_defaults_and_explicit_settings_win(make_broker):
    b = make_broker("-o", "group.initial.rebalance.delay.ms=250", "--dev",
                    "-o", "log.cleaner.backoff.ms=5000", ephemeral=True)
    got = broker_configs(b.bootstrap, 1)
    assert got["group.initial.rebalance.delay.ms"] == static("250")
    assert got["log.cleaner.backoff.ms"] == static("5000")
    assert got["log.retention.check.interval.ms"] == static("1000")
    assert got["offsets.topic.num.partitions"] == static("1")
    # a consumer group creates __consumer_offsets with the profile's count
    group = f"dev-{uuid.uuid4().hex[:8]}"
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group})
    try:
        c.subscribe([f"dev-topic-{group}"])
        c.poll(0.5)
        md = wait_for(lambda: c.list_topics(timeout=10).topics.get("__consumer_offsets"),
                      30, "__consumer_offsets to be listed")
        assert len(md.partitions) == 1
    finally:
        c.close()

    plain = make_broker(ephemeral=True)
    got = broker_configs(plain.bootstrap, 1)
    assert got["group.initial.rebalance.delay.ms"][0] == "3000"
    assert got["log.retention.check.interval.ms"][0] == "300000"


def test_dev_with_a_data_dir_allows_reset_and_it_stays_wiped(make_broker):
    b = make_broker("--dev", "--admin-listen", "127.0.0.1:0")
    vc = VirtualCluster(b)
    topic = f"dev-reset-{uuid.uuid4().hex[:8]}"
    p = Producer({"bootstrap.servers": b.bootstrap})
    p.produce(topic, b"v")
    assert p.flush(30) == 0
    assert topic in {t["name"] for t in vc.topics()}
    stats = vc.post("/reset")
    assert stats["topics"] >= 1
    assert topic not in {t["name"] for t in vc.topics()}
    b.restart()
    vc = VirtualCluster(b)
    assert topic not in {t["name"] for t in vc.topics()}
    assert topic not in Producer({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10).topics


def free_port_run(n: int) -> int:
    """A port P such that P .. P+n-1 were free a moment ago."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n > 65535:
            continue
        ok = True
        for i in range(n):
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", base + i))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    pytest.skip("no run of free ports found")


def test_fixed_ports_and_advertised_listeners_follow_on(make_broker):
    base = free_port_run(3)
    b = make_broker("--virtual-brokers", "3", "--ephemeral",
                    "--advertised-listener", f"localhost:{base}", start=False)
    b.port = base
    b.start()
    brokers, _ = ready_fields(b.log)
    assert brokers == {1: f"localhost:{base}", 2: f"localhost:{base + 1}", 3: f"localhost:{base + 2}"}
    # each port is a listener of its own, and Metadata names all three
    md = Producer({"bootstrap.servers": f"127.0.0.1:{base + 2}"}).list_topics(timeout=10)
    assert {(bid, m.host, m.port) for bid, m in md.brokers.items()} == {
        (1, "localhost", base), (2, "localhost", base + 1), (3, "localhost", base + 2)}
    # one configuration, reported under every broker id
    for bid in (1, 2, 3):
        assert broker_configs(f"127.0.0.1:{base}", bid)["num.partitions"][0] == "1"
