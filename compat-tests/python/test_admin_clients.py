"""The admin surface through stock admin clients: confluent-kafka's
AdminClient (librdkafka) and the Java AdminClient (gregor.compat.Admin10,
compat-tests/java/admin.sh).

1. CreatePartitions: validate_only changes nothing, an increase is seen by
   DescribeTopics and Metadata, a decrease or the same count is
   INVALID_PARTITIONS, an unknown topic UNKNOWN_TOPIC_OR_PARTITION; a
   librdkafka producer and a subscribed consumer pick up the new partitions.
2. IncrementalAlterConfigs on a topic (SET, APPEND, SUBTRACT, DELETE,
   validate_only) and on the broker (its node id; the `<default>` entity ""
   through Java, which librdkafka cannot name), AlterConfigs (legacy: the
   given set replaces every dynamic config), DescribeConfigs' value, source
   and synonyms after each change; invalid values and unknown names are
   INVALID_CONFIG.
3. DeleteRecords: the low watermark returned, ListOffsets earliest and Fetch
   follow it, -1 means the high watermark, beyond it OFFSET_OUT_OF_RANGE.
4. DescribeTopics, and `__consumer_offsets` listed as internal once a group
   has committed.
5. The Java AdminClient: createPartitions, incrementalAlterConfigs (topic,
   broker, `<default>`), deleteRecords, describeLogDirs, describeTopics; a
   Java consumer and producer picking up new partitions.
6. Group configs (KIP-848, resource type GROUP): set, described with
   sources and synonyms, refused with Kafka's messages, deleted; and the
   authorized operations Kafka reports without an authorizer.
7. Topic configs changed at runtime take effect at once: max.message.bytes
   (MESSAGE_TOO_LARGE) and retention.ms=1000 (the topic empties). The
   reference must then run with log.retention.check.interval.ms=1000
   (GREGOR_REFERENCE_EXTRA_PROPS); gregor gets it with -o.

Every expectation was checked against the reference Apache Kafka 4.3.1
(compat-tests/reference) through COMPAT_EXTERNAL_BOOTSTRAP. The broker
config changes are undone at the end of each test so that a shared broker
is left as found.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from compat import unique_topic
from conftest import REPO_ROOT

ADMIN_SH = REPO_ROOT / "compat-tests" / "java" / "admin.sh"
TIMEOUT_S = 30.0
BUILD_TIMEOUT_S = 600.0
JAVA_RUN_TIMEOUT_S = 180.0

SRC_TOPIC = ConfigSource.DYNAMIC_TOPIC_CONFIG.value
SRC_BROKER = ConfigSource.DYNAMIC_BROKER_CONFIG.value
SRC_DEFAULT_BROKER = ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
SRC_STATIC = ConfigSource.STATIC_BROKER_CONFIG.value
SRC_DEFAULT = ConfigSource.DEFAULT_CONFIG.value


# -- helpers --------------------------------------------------------------
def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def error_of(fn) -> KafkaError:
    """The KafkaError `fn` raises; fails the test when it succeeds."""
    try:
        got = fn()
    except KafkaException as e:
        return e.args[0]
    pytest.fail(f"expected an error, got {got!r}")


def results(futures: dict):
    return {k: f.result(TIMEOUT_S) for k, f in futures.items()}


def create_topic(a: AdminClient, topic: str, partitions: int, config: dict | None = None) -> None:
    results(a.create_topics([NewTopic(topic, partitions, 1, config=config or {})]))
    wait_partitions(a, topic, partitions)


def wait_partitions(a: AdminClient, topic: str, n: int) -> None:
    """Kafka propagates metadata asynchronously even on one node: wait until
    DescribeTopics answers with n partitions, each with a leader."""
    deadline = time.monotonic() + TIMEOUT_S
    last = None
    while time.monotonic() < deadline:
        try:
            d = a.describe_topics(TopicCollection([topic]))[topic].result(TIMEOUT_S)
            last = [(p.id, p.leader) for p in d.partitions]
            if len(d.partitions) == n and all(p.leader is not None for p in d.partitions):
                return
        except KafkaException as e:
            last = e
        time.sleep(0.1)
    pytest.fail(f"{topic}: not {n} partitions with leaders within {TIMEOUT_S:.0f}s (last: {last})")


def incremental(a: AdminClient, rtype, name: str, ops, validate_only: bool = False):
    """ops: [(config name, value, AlterConfigOpType)]."""
    entries = [ConfigEntry(n, v, incremental_operation=op) for n, v, op in ops]
    return results(
        a.incremental_alter_configs(
            [ConfigResource(rtype, name, incremental_configs=entries)], validate_only=validate_only
        )
    )


def describe(a: AdminClient, rtype, name: str) -> dict:
    (f,) = a.describe_configs([ConfigResource(rtype, name)]).values()
    return f.result(TIMEOUT_S)


def entry(a: AdminClient, rtype, name: str, key: str):
    """(value, source, {synonym name: (value, source)}) of one config."""
    d = describe(a, rtype, name)
    assert key in d, f"{key} missing from DescribeConfigs of {name!r}: {sorted(d)}"
    e = d[key]
    return e.value, e.source, {s.name: (s.value, s.source) for s in e.synonyms.values()}


def wait_entry(a: AdminClient, rtype, name: str, key: str, value, source):
    """Polls DescribeConfigs until `key` has (value, source): Kafka applies a
    config change through its metadata log, so the broker may describe the
    old value for a moment after the alter's response."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        got = entry(a, rtype, name, key)
        if got[:2] == (value, source):
            return got
        assert time.monotonic() < deadline, f"{name!r} {key}: {got}, expected {(value, source)}"
        time.sleep(0.1)


def broker_id(a: AdminClient) -> str:
    brokers = a.list_topics(timeout=TIMEOUT_S).brokers
    assert len(brokers) == 1, f"expected a single-node cluster, got {brokers}"
    return str(next(iter(brokers)))


def produce_n(bootstrap: str, topic: str, partition: int, n: int) -> list[int]:
    """n records to one partition; returns their offsets as acknowledged."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    offsets: list[int] = []
    errors: list = []

    def cb(err, msg):
        if err is not None:
            errors.append(err)
        else:
            offsets.append(msg.offset())

    try:
        for i in range(n):
            p.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=partition, on_delivery=cb)
        assert p.flush(TIMEOUT_S) == 0, "records still in flight"
    finally:
        p.close()
    assert not errors, errors
    return sorted(offsets)


def watermarks(a: AdminClient, topic: str, partition: int) -> tuple[int, int]:
    tp = TopicPartition(topic, partition)
    lo = results(a.list_offsets({tp: OffsetSpec.earliest()}))[tp].offset
    hi = results(a.list_offsets({tp: OffsetSpec.latest()}))[tp].offset
    return lo, hi


def fetch_offsets(bootstrap: str, topic: str, partition: int, end: int) -> list[int]:
    """Offsets a consumer reads from the beginning of one partition up to end."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_topic("g-fetch"),
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        got: list[int] = []
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    if m.offset() >= end:
                        return got
                    continue
                raise KafkaException(m.error())
            got.append(m.offset())
        pytest.fail(f"{topic}/{partition}: not read up to {end} within {TIMEOUT_S:.0f}s (got {got})")
    finally:
        c.close()


# -- CreatePartitions -----------------------------------------------------
def test_create_partitions(broker):
    a = admin(broker.bootstrap)
    t = unique_topic("cp")
    create_topic(a, t, 2)

    # validate_only: accepted, nothing changes
    assert results(a.create_partitions([NewPartitions(t, 4)], validate_only=True)) == {t: None}
    d = a.describe_topics(TopicCollection([t]))[t].result(TIMEOUT_S)
    assert [p.id for p in d.partitions] == [0, 1]

    assert results(a.create_partitions([NewPartitions(t, 4)])) == {t: None}
    wait_partitions(a, t, 4)
    md = a.list_topics(t, timeout=TIMEOUT_S).topics[t]
    assert sorted(md.partitions) == [0, 1, 2, 3]
    # a new partition takes records from offset 0
    assert produce_n(broker.bootstrap, t, 3, 3) == [0, 1, 2]

    # a decrease, or the same count, is INVALID_PARTITIONS
    for n in (3, 4, 1):
        e = error_of(lambda n=n: results(a.create_partitions([NewPartitions(t, n)])))
        assert e.code() == KafkaError.INVALID_PARTITIONS, (n, e)
    e = error_of(lambda: results(a.create_partitions([NewPartitions(t, 2)], validate_only=True)))
    assert e.code() == KafkaError.INVALID_PARTITIONS, e
    e = error_of(lambda: results(a.create_partitions([NewPartitions(t + "-missing", 5)])))
    assert e.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, e
    wait_partitions(a, t, 4)


def test_new_partitions_reach_producer_and_consumer(broker):
    """A subscribed librdkafka consumer is assigned the partitions added by
    CreatePartitions after its metadata refresh, and reads what a producer
    (that learnt them the same way) writes there."""
    a = admin(broker.bootstrap)
    t = unique_topic("cp-live")
    create_topic(a, t, 1)
    refresh = {"topic.metadata.refresh.interval.ms": 500}
    c = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": unique_topic("g-cp"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **refresh,
        }
    )
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", **refresh})
    sent: dict[tuple[int, int], bytes] = {}  # (partition, offset) -> value
    errors: list = []

    def send(i: int) -> None:
        # keyed, no partition given: the producer's partitioner spreads the
        # keys over the partitions its metadata knows
        p.produce(
            t,
            key=f"key-{i}".encode(),
            value=f"v{i}".encode(),
            on_delivery=lambda err, m: errors.append(err)
            if err
            else sent.__setitem__((m.partition(), m.offset()), m.value()),
        )
        assert p.flush(TIMEOUT_S) == 0 and not errors, errors

    try:
        c.subscribe([t])
        # (partition, offset) -> value: the rebalance onto the new partitions
        # may hand partition 0 back uncommitted, and it is read again
        got: dict[tuple[int, int], bytes] = {}

        def poll_until(pred, what):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                m = c.poll(0.2)
                if m is not None:
                    if m.error():
                        raise KafkaException(m.error())
                    got[(m.partition(), m.offset())] = m.value()
                if pred():
                    return
            pytest.fail(f"{what} within 60 s (assignment {c.assignment()}, got {got}, sent {sent})")

        poll_until(lambda: [x.partition for x in c.assignment()] == [0], "no assignment of [0]")
        send(0)  # the producer knows the topic with one partition
        assert sent == {(0, 0): b"v0"}
        assert results(a.create_partitions([NewPartitions(t, 3)])) == {t: None}
        poll_until(
            lambda: sorted(x.partition for x in c.assignment()) == [0, 1, 2],
            "the new partitions not assigned",
        )
        # the producer learns the new partitions from its periodic refresh:
        # keyed records start landing there
        deadline = time.monotonic() + 60
        i = 1
        while sorted({part for part, _ in sent}) != [0, 1, 2]:
            assert time.monotonic() < deadline, f"the producer never wrote to the new partitions: {sent}"
            send(i)
            i += 1
            time.sleep(0.05)  # librdkafka's refresh is a timer, not an event we can await
        poll_until(lambda: set(got) >= set(sent), f"not all {len(sent)} records read")
        assert got == sent
    finally:
        c.close()
        p.close()


# -- configs ---------------------------------------------------------------
def test_incremental_alter_configs_topic(broker):
    a = admin(broker.bootstrap)
    t = unique_topic("iac")
    create_topic(a, t, 1)
    T = ResourceType.TOPIC

    v, src, syn = entry(a, T, t, "cleanup.policy")
    assert (v, src) == ("delete", SRC_DEFAULT)
    assert syn == {"log.cleanup.policy": ("delete", SRC_DEFAULT)}

    # validate_only: accepted, nothing stored
    incremental(a, T, t, [("retention.ms", "1234567", AlterConfigOpType.SET)], validate_only=True)
    assert entry(a, T, t, "retention.ms")[:2] == ("604800000", SRC_DEFAULT)

    incremental(
        a,
        T,
        t,
        [
            ("retention.ms", "1234567", AlterConfigOpType.SET),
            ("cleanup.policy", "compact", AlterConfigOpType.APPEND),
        ],
    )
    v, src, syn = wait_entry(a, T, t, "retention.ms", "1234567", SRC_TOPIC)
    assert syn["retention.ms"] == ("1234567", SRC_TOPIC), syn
    v, src, syn = wait_entry(a, T, t, "cleanup.policy", "delete,compact", SRC_TOPIC)
    assert syn == {"cleanup.policy": ("delete,compact", SRC_TOPIC), "log.cleanup.policy": ("delete", SRC_DEFAULT)}

    incremental(a, T, t, [("cleanup.policy", "delete", AlterConfigOpType.SUBTRACT)])
    wait_entry(a, T, t, "cleanup.policy", "compact", SRC_TOPIC)
    # APPEND of a value already in the list leaves it once
    incremental(a, T, t, [("cleanup.policy", "compact", AlterConfigOpType.APPEND)])
    assert entry(a, T, t, "cleanup.policy")[:2] == ("compact", SRC_TOPIC)

    incremental(a, T, t, [("retention.ms", None, AlterConfigOpType.DELETE)])
    v, src, syn = wait_entry(a, T, t, "retention.ms", "604800000", SRC_DEFAULT)
    assert "retention.ms" not in syn, syn
    # the other config kept its dynamic value
    assert entry(a, T, t, "cleanup.policy")[:2] == ("compact", SRC_TOPIC)

    # invalid values and names: INVALID_CONFIG, nothing changed
    for ops in (
        [("retention.ms", "abc", AlterConfigOpType.SET)],
        [("cleanup.policy", "bogus", AlterConfigOpType.SET)],
        [("no.such.config", "1", AlterConfigOpType.SET)],
        [("retention.ms", "5", AlterConfigOpType.SUBTRACT)],  # not a list
    ):
        e = error_of(lambda ops=ops: incremental(a, T, t, ops))
        assert e.code() == KafkaError.INVALID_CONFIG, (ops, e)
    assert entry(a, T, t, "retention.ms")[:2] == ("604800000", SRC_DEFAULT)
    assert entry(a, T, t, "cleanup.policy")[:2] == ("compact", SRC_TOPIC)

    e = error_of(lambda: incremental(a, T, t + "-missing", [("retention.ms", "1", AlterConfigOpType.SET)]))
    assert e.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, e


def test_alter_configs_legacy_replaces_the_set(broker):
    a = admin(broker.bootstrap)
    t = unique_topic("ac")
    create_topic(a, t, 1, {"retention.ms": "3600000", "max.message.bytes": "20000"})
    T = ResourceType.TOPIC
    assert entry(a, T, t, "retention.ms")[:2] == ("3600000", SRC_TOPIC)
    assert entry(a, T, t, "max.message.bytes")[:2] == ("20000", SRC_TOPIC)

    results(a.alter_configs([ConfigResource(T, t, set_config={"segment.ms": "7200000"})]))
    wait_entry(a, T, t, "segment.ms", "7200000", SRC_TOPIC)
    d = describe(a, T, t)
    assert (d["segment.ms"].value, d["segment.ms"].source) == ("7200000", SRC_TOPIC)
    # what the request did not name went back to the default
    assert (d["retention.ms"].value, d["retention.ms"].source) == ("604800000", SRC_DEFAULT)
    assert (d["max.message.bytes"].value, d["max.message.bytes"].source) == ("1048588", SRC_DEFAULT)
    dynamic = sorted(k for k, e in d.items() if e.source == SRC_TOPIC)
    assert dynamic == ["segment.ms"], dynamic

    e = error_of(lambda: results(a.alter_configs([ConfigResource(T, t, set_config={"retention.ms": "x"})])))
    assert e.code() == KafkaError.INVALID_CONFIG, e
    assert entry(a, T, t, "segment.ms")[:2] == ("7200000", SRC_TOPIC)


def test_broker_configs(broker):
    """log.retention.ms set on the broker's own entity: DYNAMIC_BROKER_CONFIG
    on the broker and the value a topic without an override inherits; DELETE
    takes it back. (The `<default>` entity is in the Java test: librdkafka
    refuses a broker resource with an empty name.)"""
    a = admin(broker.bootstrap)
    bid = broker_id(a)
    B = ResourceType.BROKER
    t = unique_topic("bc")
    create_topic(a, t, 1)
    before = entry(a, B, bid, "log.retention.ms")
    assert before[1] != SRC_BROKER, f"broker {bid} already has a dynamic log.retention.ms: {before}"
    value = "864000000"  # 10 days: longer than the default, harmless to a shared broker
    incremental(a, B, bid, [("log.retention.ms", value, AlterConfigOpType.SET)])
    try:
        v, src, syn = wait_entry(a, B, bid, "log.retention.ms", value, SRC_BROKER)
        # the default Kafka names is log.retention.hours (log.retention.ms has none)
        assert syn == {"log.retention.ms": (value, SRC_BROKER), "log.retention.hours": ("168", SRC_DEFAULT)}, syn
        # the topic follows the broker's dynamic value
        v, src, syn = wait_entry(a, ResourceType.TOPIC, t, "retention.ms", value, SRC_BROKER)
        assert syn == {"log.retention.ms": (value, SRC_BROKER), "log.retention.hours": ("168", SRC_DEFAULT)}, syn

        e = error_of(lambda: incremental(a, B, bid, [("log.retention.ms", "soon", AlterConfigOpType.SET)]))
        # Kafka 4.3.1 answers a bad broker value with INVALID_REQUEST (a bad
        # topic value is INVALID_CONFIG), with the same message
        assert e.code() == KafkaError.INVALID_REQUEST, e
        assert "Invalid value soon for configuration log.retention.ms" in e.str(), e
    finally:
        incremental(a, B, bid, [("log.retention.ms", None, AlterConfigOpType.DELETE)])
    wait_entry(a, B, bid, "log.retention.ms", *before[:2])


# -- DeleteRecords ----------------------------------------------------------
def test_delete_records(broker):
    a = admin(broker.bootstrap)
    t = unique_topic("dr")
    create_topic(a, t, 2)
    assert produce_n(broker.bootstrap, t, 0, 10) == list(range(10))
    assert produce_n(broker.bootstrap, t, 1, 5) == list(range(5))

    r = results(a.delete_records([TopicPartition(t, 0, 4)]))
    ((tp, dr),) = r.items()
    assert (tp.topic, tp.partition, dr.low_watermark) == (t, 0, 4)
    assert watermarks(a, t, 0) == (4, 10)
    assert fetch_offsets(broker.bootstrap, t, 0, 10) == list(range(4, 10))
    # the other partition is untouched
    assert watermarks(a, t, 1) == (0, 5)

    # below the current start: nothing moves back
    ((_, dr),) = results(a.delete_records([TopicPartition(t, 0, 2)])).items()
    assert dr.low_watermark == 4
    # beyond the high watermark: OFFSET_OUT_OF_RANGE, nothing changes
    e = error_of(lambda: results(a.delete_records([TopicPartition(t, 0, 11)])))
    assert e.code() == KafkaError.OFFSET_OUT_OF_RANGE, e
    assert watermarks(a, t, 0) == (4, 10)
    # -1: up to the high watermark
    ((_, dr),) = results(a.delete_records([TopicPartition(t, 1, -1)])).items()
    assert dr.low_watermark == 5
    assert watermarks(a, t, 1) == (5, 5)
    # the log goes on from there
    assert produce_n(broker.bootstrap, t, 1, 2) == [5, 6]
    assert fetch_offsets(broker.bootstrap, t, 1, 7) == [5, 6]


# -- DescribeTopics and __consumer_offsets ----------------------------------
def test_describe_topics_and_consumer_offsets(broker):
    a = admin(broker.bootstrap)
    bid = int(broker_id(a))
    t = unique_topic("dt")
    create_topic(a, t, 3)
    d = a.describe_topics(TopicCollection([t]), include_authorized_operations=False)[t].result(TIMEOUT_S)
    assert d.name == t and not d.is_internal
    assert [p.id for p in d.partitions] == [0, 1, 2]
    for p in d.partitions:
        assert p.leader.id == bid
        assert [n.id for n in p.replicas] == [bid] and [n.id for n in p.isr] == [bid]
    e = error_of(lambda: a.describe_topics(TopicCollection([t + "-missing"]))[t + "-missing"].result(TIMEOUT_S))
    assert e.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, e

    # a group commits: the coordinator has been used, __consumer_offsets is listed
    produce_n(broker.bootstrap, t, 0, 1)
    c = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": unique_topic("g-co"), "enable.auto.commit": False}
    )
    try:
        c.assign([TopicPartition(t, 0, 0)])
        c.commit(offsets=[TopicPartition(t, 0, 1)], asynchronous=False)
    finally:
        c.close()
    want = int(entry(a, ResourceType.BROKER, str(bid), "offsets.topic.num.partitions")[0])
    deadline = time.monotonic() + TIMEOUT_S
    while "__consumer_offsets" not in a.list_topics(timeout=TIMEOUT_S).topics:
        assert time.monotonic() < deadline, "__consumer_offsets never listed in Metadata"
        time.sleep(0.2)
    md = a.list_topics("__consumer_offsets", timeout=TIMEOUT_S).topics["__consumer_offsets"]
    assert md.error is None and len(md.partitions) == want
    d = a.describe_topics(TopicCollection(["__consumer_offsets"]))["__consumer_offsets"].result(TIMEOUT_S)
    assert d.is_internal
    assert [p.id for p in d.partitions] == list(range(want))
    assert all(p.leader.id == bid for p in d.partitions)


def test_group_configs(broker):
    """KIP-848 group configs (resource type GROUP, Kafka 4.x): any group id,
    existing or not, takes the configs Kafka 4.3.1 defines, checked against
    the broker's bounds; DescribeConfigs reports all 17 with defaults
    (DEFAULT_CONFIG, named by their broker property) under what was set
    (GROUP_CONFIG). Messages are Kafka 4.3.1's (asked of the reference with
    kafka-configs.sh --entity-type groups). librdkafka's own 0081 test
    expects this from a 4.0 broker."""
    a = admin(broker.bootstrap)
    g = unique_topic("grp-cfg")
    d = describe(a, ResourceType.GROUP, g)
    assert len(d) == 17, sorted(d)
    v, src, syn = entry(a, ResourceType.GROUP, g, "consumer.session.timeout.ms")
    assert (v, src) == ("45000", SRC_DEFAULT)
    assert syn == {"group.consumer.session.timeout.ms": ("45000", SRC_DEFAULT)}

    incremental(a, ResourceType.GROUP, g, [("consumer.session.timeout.ms", "50000", AlterConfigOpType.SET)])
    wait_entry(a, ResourceType.GROUP, g, "consumer.session.timeout.ms", "50000", ConfigSource.GROUP_CONFIG.value)
    _, _, syn = entry(a, ResourceType.GROUP, g, "consumer.session.timeout.ms")
    assert syn == {
        "consumer.session.timeout.ms": ("50000", ConfigSource.GROUP_CONFIG.value),
        "group.consumer.session.timeout.ms": ("45000", SRC_DEFAULT),
    }
    # other groups are untouched
    assert entry(a, ResourceType.GROUP, g + "-other", "consumer.session.timeout.ms")[0] == "45000"

    refused = {
        ("consumer.session.timeout.ms", "5"):
            "consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms",
        ("consumer.heartbeat.interval.ms", "50000"):
            "consumer.heartbeat.interval.ms must be less than or equal to group.consumer.max.heartbeat.interval.ms",
        ("share.isolation.level", "foo"):
            "Invalid value foo for configuration share.isolation.level: String must be one of: read_committed, read_uncommitted",
        ("foo.bar", "5"): "Unknown group config name: foo.bar",
    }
    for (k, v), msg in refused.items():
        e = error_of(lambda: incremental(a, ResourceType.GROUP, g, [(k, v, AlterConfigOpType.SET)]))
        assert e.code() == KafkaError.INVALID_CONFIG and msg in e.str(), (k, v, e)
    assert entry(a, ResourceType.GROUP, g, "consumer.session.timeout.ms")[0] == "50000"

    incremental(a, ResourceType.GROUP, g, [("consumer.session.timeout.ms", None, AlterConfigOpType.DELETE)])
    wait_entry(a, ResourceType.GROUP, g, "consumer.session.timeout.ms", "45000", SRC_DEFAULT)


def test_authorized_operations_without_an_authorizer(broker):
    """Without an authorizer Kafka reports every operation of the resource
    type when a client asks (Metadata v8+ include_*_authorized_operations,
    DescribeCluster, DescribeGroups): what librdkafka's 0081 expects."""
    a = admin(broker.bootstrap)
    t = unique_topic("authops")
    create_topic(a, t, 1)
    d = a.describe_topics(TopicCollection([t]), include_authorized_operations=True)[t].result(TIMEOUT_S)
    assert sorted(op.name for op in d.authorized_operations) == sorted(
        ["READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"]
    )
    d = a.describe_topics(TopicCollection([t]), include_authorized_operations=False)[t].result(TIMEOUT_S)
    assert not d.authorized_operations
    c = a.describe_cluster(include_authorized_operations=True).result(TIMEOUT_S)
    assert sorted(op.name for op in c.authorized_operations) == sorted(
        ["CREATE", "ALTER", "DESCRIBE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE"]
    )


# -- the Java AdminClient ---------------------------------------------------
@pytest.fixture(scope="session")
def java_admin_built(timings):
    t0 = time.monotonic()
    try:
        r = subprocess.run(
            ["bash", str(ADMIN_SH), "build"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"admin.sh build did not finish within {BUILD_TIMEOUT_S:.0f}s", pytrace=False)
    timings.append(f"java admin build {time.monotonic() - t0:7.1f} s: exit {r.returncode}")
    if r.returncode != 0:
        pytest.fail(f"admin.sh build exited with {r.returncode}\n{r.stdout}\n{r.stderr}", pytrace=False)


def run_java(*args) -> list[dict]:
    """admin.sh ARGS; JSON events on stdout; fails on a non-zero exit."""
    try:
        r = subprocess.run(
            ["bash", str(ADMIN_SH), *map(str, args)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=JAVA_RUN_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"admin.sh {args} did not finish within {JAVA_RUN_TIMEOUT_S:.0f}s\n{e.stdout}\n{e.stderr}")
    if r.returncode != 0:
        pytest.fail(f"admin.sh {args} exited with {r.returncode}\n{r.stdout}\n{r.stderr[-8000:]}", pytrace=False)
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def test_java_admin_client(broker, java_admin_built):
    prefix = unique_topic("j10")
    events = run_java("admin", broker.bootstrap, prefix)
    by = {}
    for ev in events:
        by.setdefault(ev["event"], []).append(ev)
    report = "\n".join(json.dumps(e) for e in events)
    topic = f"{prefix}-admin"

    (cp,) = by["create_partitions"]
    assert cp["validate_only_partitions"] == 1, report
    assert cp["after"] == 3, report
    assert cp["decrease_error"] == "InvalidPartitionsException", report

    (cfg,) = by["topic_configs"]
    assert cfg["cleanup.policy"] == ["delete,compact", "DYNAMIC_TOPIC_CONFIG"], report
    assert cfg["retention.ms"] == ["1234567", "DYNAMIC_TOPIC_CONFIG"], report
    # as Kafka 4.3.1: no broker synonym while the broker sets no retention itself
    assert cfg["retention.ms.synonyms"] == [["retention.ms", "1234567", "DYNAMIC_TOPIC_CONFIG"]], report
    assert cfg["invalid_error"] == "InvalidConfigurationException", report
    assert cfg["after_delete"] == ["604800000", "DEFAULT_CONFIG"], report

    (bc,) = by["broker_configs"]
    assert bc["broker"][:2] == ["864000000", "DYNAMIC_BROKER_CONFIG"], report
    assert bc["default"][:2] == ["777600000", "DYNAMIC_DEFAULT_BROKER_CONFIG"], report
    # seen from the broker: its own value first, then the cluster default
    assert bc["broker_synonyms"] == [
        ["log.retention.ms", "864000000", "DYNAMIC_BROKER_CONFIG"],
        ["log.retention.ms", "777600000", "DYNAMIC_DEFAULT_BROKER_CONFIG"],
        ["log.retention.hours", "168", "DEFAULT_CONFIG"],
    ], report
    assert bc["after_delete_broker"][:2] == ["777600000", "DYNAMIC_DEFAULT_BROKER_CONFIG"], report
    # log.retention.ms has no default of its own (log.retention.hours rules)
    assert bc["after_delete_default"] == [None, "DEFAULT_CONFIG"], report

    (dr,) = by["delete_records"]
    assert dr["low_watermark"] == 4 and dr["earliest"] == 4 and dr["latest"] == 10, report
    assert dr["beyond_error"] == "OffsetOutOfRangeException", report

    (ld,) = by["log_dirs"]
    assert len(ld["dirs"]) >= 1, report
    parts = {}
    for d in ld["dirs"]:
        assert d["error"] is None, report
        for p in d["partitions"]:
            if p["topic"] == topic:
                parts[p["partition"]] = p
    assert sorted(parts) == [0, 1, 2], report
    assert all(p["offset_lag"] == 0 and not p["future"] for p in parts.values()), report
    assert parts[0]["size"] > 0, report  # 10 records written (4 deleted, the segment remains)
    assert parts[1]["size"] == 0 and parts[2]["size"] == 0, report

    (dt,) = by["describe_topics"]
    assert dt["partitions"] == [0, 1, 2] and dt["internal"] is False, report
    assert dt["leaders_ok"] is True, report


# -- dynamic effect ----------------------------------------------------------
@pytest.fixture
def rbroker(make_broker):
    """A broker that checks retention every second (Kafka's default is 5
    minutes): `-o log.retention.check.interval.ms=1000` for gregor; start the
    reference with GREGOR_REFERENCE_EXTRA_PROPS=log.retention.check.interval.ms=1000."""
    if os.environ.get("COMPAT_EXTERNAL_BOOTSTRAP"):
        return make_broker()
    return make_broker("-o", "log.retention.check.interval.ms=1000")


def produce_one(bootstrap: str, topic: str, value: bytes):
    """One record to partition 0; the delivery error (None when it was written)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "retries": 0})
    out: list = []
    try:
        p.produce(topic, key=b"k", value=value, partition=0, on_delivery=lambda err, m: out.append(err))
        assert p.flush(TIMEOUT_S) == 0, "record still in flight"
    finally:
        p.close()
    assert len(out) == 1
    return out[0]


def test_topic_configs_take_effect_at_once(rbroker):
    """max.message.bytes and retention.ms changed at runtime apply to the
    live topic: a record over the new limit is refused with
    MESSAGE_TOO_LARGE, and retention.ms=1000 empties the topic within a few
    retention checks (Kafka rolls and deletes the active segment too)."""
    a = admin(rbroker.bootstrap)
    t = unique_topic("dyn")
    create_topic(a, t, 1)
    T = ResourceType.TOPIC
    big = b"x" * 5000
    assert produce_one(rbroker.bootstrap, t, big) is None

    incremental(a, T, t, [("max.message.bytes", "2000", AlterConfigOpType.SET)])
    wait_entry(a, T, t, "max.message.bytes", "2000", SRC_TOPIC)
    err = produce_one(rbroker.bootstrap, t, big)
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err
    assert produce_one(rbroker.bootstrap, t, b"small") is None
    incremental(a, T, t, [("max.message.bytes", None, AlterConfigOpType.DELETE)])
    wait_entry(a, T, t, "max.message.bytes", "1048588", SRC_DEFAULT)
    assert produce_one(rbroker.bootstrap, t, big) is None
    assert watermarks(a, t, 0) == (0, 3)

    incremental(a, T, t, [("retention.ms", "1000", AlterConfigOpType.SET)])
    deadline = time.monotonic() + 60
    while watermarks(a, t, 0)[0] != 3:
        assert time.monotonic() < deadline, f"retention.ms=1000 did not empty the topic: {watermarks(a, t, 0)}"
        time.sleep(0.2)
    assert watermarks(a, t, 0) == (3, 3)
    # the log goes on at the same offset
    assert produce_one(rbroker.bootstrap, t, b"after") is None
    assert watermarks(a, t, 0)[1] == 4


def test_java_clients_pick_up_new_partitions(broker, java_admin_built):
    """The Java consumer (subscribed) is assigned the partitions added by
    CreatePartitions and the Java producer's partitioner writes to them,
    both from their own metadata refresh (metadata.max.age.ms=500)."""
    events = run_java("admin", "partitions", broker.bootstrap, unique_topic("j10p"))
    (ev,) = [e for e in events if e["event"] == "partitions"]
    assert ev["assigned"] == [0, 1, 2] and ev["written"] == [0, 1, 2], ev
    assert ev["read_equals_sent"] is True and ev["sent"] >= 3, ev
