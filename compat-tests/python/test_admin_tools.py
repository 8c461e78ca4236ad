"""Kafka 4.3.1's own command-line tools against the broker (issue 10).

Each test runs the real tool from the reference jars (kafkatools.py: the
classes behind kafka-topics.sh, kafka-configs.sh, kafka-delete-records.sh,
kafka-log-dirs.sh, kafka-features.sh, kafka-get-offsets.sh), checks its exit
code and output, then checks the broker's state with confluent-kafka.

The expected outputs are what the tools print against the reference Apache
Kafka 4.3.1 (compat-tests/reference), where every test here passed through
COMPAT_EXTERNAL_BOOTSTRAP. For the purge test the reference needs a short
retention check interval:

    GREGOR_REFERENCE_EXTRA_PROPS='log.retention.check.interval.ms=500' \\
        compat-tests/reference/kafka.sh start /tmp/ref

Every test uses its own topics, so they share a reference broker; broker
configs they change are deleted again before they end.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import time

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, ResourceType

import kafkatools
from compat import ck_create_topic, ck_watermarks, unique_topic, wait_until
from kafkatools import ok, tool
from rawkafka import api_versions_v0, read_response

_ok, _why = kafkatools.available()
pytestmark = pytest.mark.skipif(not _ok, reason=f"the Kafka tools come from the reference jars: {_why}")

EXTERNAL = bool(os.environ.get("COMPAT_EXTERNAL_BOOTSTRAP"))
RETENTION_CHECK_MS = 500
WAIT_S = 30.0  # bound on any state change the broker makes in the background


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def broker_id(bootstrap: str) -> int:
    brokers = admin(bootstrap).list_topics(timeout=10).brokers
    assert len(brokers) == 1, f"expected one broker, Metadata lists {brokers}"
    return next(iter(brokers))


def partitions_in_metadata(bootstrap: str, topic: str) -> list[int]:
    t = admin(bootstrap).list_topics(topic, timeout=10).topics[topic]
    return sorted(t.partitions) if t.error is None else []


def produce(bootstrap: str, topic: str, partition: int, values: list[bytes], timestamps=None, one_batch_each=False):
    """Produces to one partition; returns the offsets from the delivery reports."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0, "compression.type": "none"})
    offsets, errors = [], []

    def cb(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            offsets.append(msg.offset())

    for i, v in enumerate(values):
        kw = {"timestamp": timestamps[i]} if timestamps else {}
        p.produce(topic, value=v, partition=partition, on_delivery=cb, **kw)
        if one_batch_each:
            assert p.flush(30) == 0, f"record {i} to {topic}[{partition}] not delivered in 30 s"
    assert p.flush(30) == 0, f"records to {topic}[{partition}] not delivered in 30 s"
    assert not errors, f"delivery errors on {topic}[{partition}]: {errors}"
    return offsets


def describe_config(bootstrap: str, rtype: ResourceType, name: str) -> dict:
    res = ConfigResource(rtype, name)
    a = admin(bootstrap)  # kept alive until the future resolves
    return a.describe_configs([res], request_timeout=10)[res].result(timeout=15)


def source_name(entry) -> str:
    return ConfigSource(entry.source).name


def config_lines(run) -> tuple[str, set[str]]:
    """kafka-configs --describe: (header line, set of the config lines, stripped)."""
    lines = run.lines
    assert lines, f"no output\n{run}"
    return lines[0], {line.strip() for line in lines[1:]}


def fields(line: str) -> dict[str, str]:
    """'Topic: t\\tPartition: 0\\tLeader: 1\\tElr: ' -> {'Topic': 't', ...}."""
    out = {}
    for cell in line.strip("\n").split("\t"):
        if cell.strip():
            k, sep, v = cell.strip().partition(":")
            assert sep, f"no 'key: value' in {cell!r} of {line!r}"
            out[k] = v.strip()
    return out


def advertised_api_keys(bootstrap: str) -> set[int]:
    host, _, port = bootstrap.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(api_versions_v0(7))
        body = read_response(s)
    corr, error, n = struct.unpack_from(">ihi", body)
    assert corr == 7 and error == 0, f"ApiVersions v0: correlation {corr}, error {error}"
    return {struct.unpack_from(">h", body, 10 + 6 * i)[0] for i in range(n)}


def new_topic(bootstrap: str, prefix: str, partitions: int) -> str:
    topic = unique_topic(prefix)
    ck_create_topic(bootstrap, topic, partitions)
    return topic


# --------------------------------------------------------------------------
# kafka-topics
# --------------------------------------------------------------------------


def test_topics_tool(broker):
    b = broker.bootstrap
    bid = broker_id(b)
    topic = unique_topic("tools-topics")

    run = ok(
        "kafka-topics", b, "--create", "--topic", topic, "--partitions", "3", "--replication-factor", "1",
        "--config", "retention.ms=86400000",
    )  # fmt: skip
    assert run.lines == [f"Created topic {topic}."], run
    wait_until(lambda: partitions_in_metadata(b, topic) == [0, 1, 2], WAIT_S, f"{topic} with 3 partitions")

    # once a group coordinator has been used, Kafka lists its internal
    # __consumer_offsets, which --exclude-internal leaves out
    a = admin(b)
    group = unique_topic("tools-topics-g")
    futs = a.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 0)])], request_timeout=30
    )
    futs[group].result(timeout=40)  # FindCoordinator + OffsetCommit
    run = ok("kafka-topics", b, "--list")
    assert topic in run.lines and "__consumer_offsets" in run.lines, run
    run = ok("kafka-topics", b, "--list", "--exclude-internal")
    assert topic in run.lines and "__consumer_offsets" not in run.lines, run

    # grow it: Metadata follows and the new partitions take records
    ok("kafka-topics", b, "--alter", "--topic", topic, "--partitions", "6")
    wait_until(lambda: partitions_in_metadata(b, topic) == list(range(6)), WAIT_S, f"{topic} with 6 partitions")
    assert produce(b, topic, 5, [b"to-the-new-partition"]) == [0]
    assert ck_watermarks(b, topic, 6) == {0: (0, 0), 1: (0, 0), 2: (0, 0), 3: (0, 0), 4: (0, 0), 5: (0, 1)}

    # 4.x's --describe asks DescribeTopicPartitions (API 75) when the broker
    # advertises it and falls back to Metadata otherwise: require the former
    assert 75 in advertised_api_keys(b), "DescribeTopicPartitions (75) is not advertised"
    run = ok("kafka-topics", b, "--describe", "--topic", topic)
    head, *parts = run.lines
    h = fields(head)
    assert (h["Topic"], h["PartitionCount"], h["ReplicationFactor"]) == (topic, "6", "1"), run
    tid = a.describe_topics(TopicCollection([topic]))[topic].result(timeout=15).topic_id
    # the tool prints Uuid.toString(), URL-safe base64; librdkafka uses the standard alphabet
    assert h["TopicId"] == str(tid).translate(str.maketrans("+/", "-_")), (run, str(tid))
    rows = [fields(p) for p in parts]
    assert [r["Partition"] for r in rows] == [str(i) for i in range(6)], run
    for r in rows:
        assert (r["Topic"], r["Leader"], r["Replicas"], r["Isr"]) == (topic, str(bid), str(bid), str(bid)), run
    # the topic's own configs (the reference also lists its cluster default min.insync.replicas=1)
    assert "retention.ms=86400000" in h["Configs"].split(","), run
    # two partitions per DescribeTopicPartitions response: the tool follows
    # the cursor and prints the same
    paged = ok("kafka-topics", b, "--describe", "--topic", topic, "--partition-size-limit-per-response", "2")
    assert paged.lines == run.lines, paged

    # shrinking is refused (INVALID_PARTITIONS) and changes nothing
    run = tool("kafka-topics", b, "--alter", "--topic", topic, "--partitions", "2")
    assert run.rc == 1, run
    assert "Error while executing topic command" in run.out, run
    # Kafka 4.3.1: "... InvalidPartitionsException: The topic T currently has 6 partition(s); 2 would not be an increase."
    assert "org.apache.kafka.common.errors.InvalidPartitionsException" in run.err, run
    assert partitions_in_metadata(b, topic) == list(range(6))


# --------------------------------------------------------------------------
# kafka-configs
# --------------------------------------------------------------------------


def test_configs_tool_topic(broker):
    b = broker.bootstrap
    topic = new_topic(b, "tools-configs", 1)
    entity = ("--entity-type", "topics", "--entity-name", topic)

    run = ok("kafka-configs", b, "--alter", *entity, "--add-config", "retention.ms=1000,max.message.bytes=2000000")
    assert run.lines == [f"Completed updating config for topic {topic}."], run
    run = ok("kafka-configs", b, "--describe", *entity)
    head, lines = config_lines(run)
    assert head == f"Dynamic configs for topic {topic} are:", run
    # synonyms down to the broker's default; retention.ms's broker synonym
    # log.retention.ms has no default of its own (log.retention.hours has)
    assert lines == {
        "retention.ms=1000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000}",
        "max.message.bytes=2000000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:max.message.bytes=2000000, "
        "DEFAULT_CONFIG:message.max.bytes=1048588}",
    }, run
    cfg = describe_config(b, ResourceType.TOPIC, topic)
    e = cfg["retention.ms"]
    assert (e.value, source_name(e), e.is_default) == ("1000", "DYNAMIC_TOPIC_CONFIG", False), e

    run = ok("kafka-configs", b, "--alter", *entity, "--delete-config", "retention.ms")
    assert run.lines == [f"Completed updating config for topic {topic}."], run
    run = ok("kafka-configs", b, "--describe", *entity)
    head, lines = config_lines(run)
    assert lines == {
        "max.message.bytes=2000000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:max.message.bytes=2000000, "
        "DEFAULT_CONFIG:message.max.bytes=1048588}"
    }, run
    e = describe_config(b, ResourceType.TOPIC, topic)["retention.ms"]
    # back to the broker's log.retention.hours=168
    assert (e.value, source_name(e), e.is_default) == ("604800000", "DEFAULT_CONFIG", True), e

    # an invalid value: INVALID_CONFIG from IncrementalAlterConfigs, nothing changed
    run = tool("kafka-configs", b, "--alter", *entity, "--add-config", "retention.ms=abc")
    assert run.rc == 1, run
    # Kafka 4.3.1: "InvalidConfigurationException: Invalid value abc for configuration retention.ms: Not a number of type LONG"
    assert re.search(r"InvalidConfigurationException: .*\babc\b.*retention\.ms", run.err), run
    cfg = describe_config(b, ResourceType.TOPIC, topic)
    assert cfg["retention.ms"].value == "604800000", cfg["retention.ms"]
    assert cfg["max.message.bytes"].value == "2000000", cfg["max.message.bytes"]


def test_configs_tool_groups(broker):
    """kafka-configs.sh --entity-type groups (KIP-848 group configs): the
    lines Kafka 4.3.1 prints, for a group that does not exist yet."""
    b = broker.bootstrap
    group = unique_topic("tools-group-cfg")
    entity = ("--entity-type", "groups", "--entity-name", group)
    run = ok("kafka-configs", b, "--describe", "--all", *entity)
    head, lines = config_lines(run)
    assert head == f"All configs for group {group} are:", run
    assert len(lines) == 17, run
    assert (
        "consumer.session.timeout.ms=45000 sensitive=false "
        "synonyms={DEFAULT_CONFIG:group.consumer.session.timeout.ms=45000}"
    ) in lines, run
    assert "share.auto.offset.reset=latest sensitive=false synonyms={DEFAULT_CONFIG:share.auto.offset.reset=latest}" in lines, run

    run = ok("kafka-configs", b, "--alter", *entity, "--add-config", "consumer.session.timeout.ms=50000")
    assert run.lines == [f"Completed updating config for group {group}."], run
    run = ok("kafka-configs", b, "--describe", *entity)
    head, lines = config_lines(run)
    assert head == f"Dynamic configs for group {group} are:", run
    assert lines == {
        "consumer.session.timeout.ms=50000 sensitive=false synonyms={DYNAMIC_GROUP_CONFIG:consumer.session.timeout.ms=50000, "
        "DEFAULT_CONFIG:group.consumer.session.timeout.ms=45000}"
    }, run

    run = tool("kafka-configs", b, "--alter", *entity, "--add-config", "consumer.session.timeout.ms=5")
    assert run.rc == 1, run
    assert (
        "InvalidConfigurationException: consumer.session.timeout.ms must be greater than or equal to "
        "group.consumer.min.session.timeout.ms"
    ) in run.err, run
    run = tool("kafka-configs", b, "--alter", *entity, "--add-config", "foo.bar=5")
    assert run.rc == 1 and "Unknown group config name: foo.bar" in run.err, run

    ok("kafka-configs", b, "--alter", *entity, "--delete-config", "consumer.session.timeout.ms")
    run = ok("kafka-configs", b, "--describe", *entity)
    head, lines = config_lines(run)
    assert lines == set(), run


def test_configs_tool_broker(broker):
    b = broker.bootstrap
    bid = str(broker_id(b))
    per_broker = ("--entity-type", "brokers", "--entity-name", bid)
    default = ("--entity-type", "brokers", "--entity-default")
    topic = new_topic(b, "tools-brokercfg", 1)
    try:
        run = ok("kafka-configs", b, "--alter", *per_broker, "--add-config", "log.retention.ms=3600000")
        assert run.lines == [f"Completed updating config for broker {bid}."], run
        run = ok("kafka-configs", b, "--alter", *default, "--add-config", "log.retention.ms=7200000")
        assert run.lines == ["Completed updating default config for brokers in the cluster."], run

        run = ok("kafka-configs", b, "--describe", *per_broker)
        head, lines = config_lines(run)
        assert head == f"Dynamic configs for broker {bid} are:", run
        # the synonyms in Kafka's order of precedence, down to the default
        assert lines == {
            "log.retention.ms=3600000 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:log.retention.ms=3600000, "
            "DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=7200000, DEFAULT_CONFIG:log.retention.hours=168}"
        }, run
        run = ok("kafka-configs", b, "--describe", *default)
        head, lines = config_lines(run)
        assert head == "Default configs for brokers in the cluster are:", run
        # the reference also lists min.insync.replicas=1, which its storage
        # format sets as a cluster default: other lines are allowed
        assert (
            "log.retention.ms=7200000 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=7200000}"
            in lines
        ), run

        e = describe_config(b, ResourceType.BROKER, bid)["log.retention.ms"]
        assert (e.value, source_name(e)) == ("3600000", "DYNAMIC_BROKER_CONFIG"), e
        # in effect at once: a topic without its own retention.ms inherits it
        e = describe_config(b, ResourceType.TOPIC, topic)["retention.ms"]
        assert (e.value, source_name(e)) == ("3600000", "DYNAMIC_BROKER_CONFIG"), e

        # invalid values: Kafka answers INVALID_REQUEST (not INVALID_CONFIG) for broker resources
        run = tool("kafka-configs", b, "--alter", *per_broker, "--add-config", "log.retention.ms=abc")
        assert run.rc == 1, run
        # Kafka 4.3.1: "InvalidRequestException: Invalid value abc for configuration log.retention.ms: Not a number of type LONG"
        assert re.search(r"InvalidRequestException: .*\babc\b.*log\.retention\.ms", run.err), run
        run = tool("kafka-configs", b, "--alter", *default, "--add-config", "log.dirs=/tmp/elsewhere")
        assert run.rc == 1, run
        # Kafka 4.3.1: "InvalidRequestException: Cannot update these configs dynamically: [log.dirs]"
        assert re.search(r"InvalidRequestException: Cannot update these configs dynamically: .*log\.dirs", run.err), run
        e = describe_config(b, ResourceType.BROKER, bid)["log.retention.ms"]
        assert (e.value, source_name(e)) == ("3600000", "DYNAMIC_BROKER_CONFIG"), e
    finally:
        # leave a shared (reference) broker as it was
        tool("kafka-configs", b, "--alter", *per_broker, "--delete-config", "log.retention.ms")
        tool("kafka-configs", b, "--alter", *default, "--delete-config", "log.retention.ms")

    run = ok("kafka-configs", b, "--describe", *per_broker)
    head, lines = config_lines(run)
    assert not any(line.startswith("log.retention.ms=") for line in lines), run
    e = describe_config(b, ResourceType.BROKER, bid)["log.retention.ms"]
    assert (e.value, source_name(e)) == (None, "DEFAULT_CONFIG"), e
    e = describe_config(b, ResourceType.TOPIC, topic)["retention.ms"]
    assert (e.value, source_name(e)) == ("604800000", "DEFAULT_CONFIG"), e


@pytest.fixture
def purge_broker(make_broker):
    """Gregor with a short retention check interval; an external broker as it is."""
    if EXTERNAL:
        return make_broker()
    return make_broker("-o", f"log.retention.check.interval.ms={RETENTION_CHECK_MS}")


def test_configs_tool_purge_topic(purge_broker):
    """The everyday "purge this topic": retention.ms=1000, then wait."""
    b = purge_broker.bootstrap
    interval = describe_config(b, ResourceType.BROKER, str(broker_id(b)))["log.retention.check.interval.ms"]
    if EXTERNAL and int(interval.value) > 5000:
        pytest.skip(f"log.retention.check.interval.ms={interval.value} on the external broker: set it to 500")
    topic = new_topic(b, "tools-purge", 2)
    for p in (0, 1):
        assert produce(b, topic, p, [b"%d" % i * 100 for i in range(30)]) == list(range(30))
    assert ck_watermarks(b, topic, 2) == {0: (0, 30), 1: (0, 30)}

    # segment.ms so that the active segment rolls and falls under retention
    run = ok(
        "kafka-configs", b, "--alter", "--entity-type", "topics", "--entity-name", topic,
        "--add-config", "retention.ms=1000,segment.ms=100",
    )  # fmt: skip
    assert run.lines == [f"Completed updating config for topic {topic}."], run
    wait_until(
        lambda: ck_watermarks(b, topic, 2) == {0: (30, 30), 1: (30, 30)},
        WAIT_S,
        f"{topic} purged (log start offset at the end)",
        interval=0.2,
    )
    # the log goes on where it was
    assert produce(b, topic, 0, [b"after"]) == [30]


# --------------------------------------------------------------------------
# kafka-delete-records
# --------------------------------------------------------------------------


def test_delete_records_tool(broker, tmp_path):
    b = broker.bootstrap
    topic = new_topic(b, "tools-delrec", 3)
    for p in range(3):
        assert produce(b, topic, p, [b"p%d-%d" % (p, i) for i in range(20)]) == list(range(20))
    spec = tmp_path / "offsets.json"
    spec.write_text(
        json.dumps(
            {
                "version": 1,
                "partitions": [
                    {"topic": topic, "partition": 0, "offset": 5},
                    {"topic": topic, "partition": 1, "offset": -1},  # -1: up to the high watermark
                    {"topic": topic, "partition": 2, "offset": 1000},  # beyond it
                ],
            }
        )
    )
    # Kafka's tool exits 0 and reports an error per partition
    run = ok("kafka-delete-records", b, "--offset-json-file", str(spec))
    assert run.lines[:2] == ["Executing records delete operation", "Records delete operation completed:"], run
    result = {}
    for line in run.lines[2:]:
        m = re.fullmatch(r"partition: (\S+)\t(.*)", line)
        assert m, f"unexpected line {line!r}\n{run}"
        result[m.group(1)] = m.group(2)
    assert set(result) == {f"{topic}-0", f"{topic}-1", f"{topic}-2"}, run
    assert result[f"{topic}-0"] == "low_watermark: 5", run
    assert result[f"{topic}-1"] == "low_watermark: 20", run
    assert result[f"{topic}-2"].startswith("error: org.apache.kafka.common.errors.OffsetOutOfRangeException"), run

    # ListOffsets earliest follows the low watermark; Fetch from the beginning starts there
    assert ck_watermarks(b, topic, 3) == {0: (5, 20), 1: (20, 20), 2: (0, 20)}
    c = Consumer({"bootstrap.servers": b, "group.id": unique_topic("g"), "enable.partition.eof": True})
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got = []
        deadline = time.monotonic() + WAIT_S
        while True:
            assert time.monotonic() < deadline, f"no end of partition within {WAIT_S}s, got {got}"
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                break
            got.append((m.offset(), m.value()))
    finally:
        c.close()
    assert got == [(i, b"p0-%d" % i) for i in range(5, 20)]


# --------------------------------------------------------------------------
# kafka-log-dirs
# --------------------------------------------------------------------------


def test_log_dirs_tool(broker):
    b = broker.bootstrap
    bid = broker_id(b)
    topic = new_topic(b, "tools-logdirs", 2)
    values = [b"%04d" % i * 250 for i in range(20)]  # 1000 bytes each
    produce(b, topic, 0, values)

    run = ok("kafka-log-dirs", b, "--describe", "--topic-list", topic)
    assert run.lines[:2] == [
        "Querying brokers for log directories information",
        f"Received log directory information from brokers {bid}",
    ], run
    doc = json.loads(run.lines[2])
    assert doc["version"] == 1 and [x["broker"] for x in doc["brokers"]] == [bid], run
    dirs = doc["brokers"][0]["logDirs"]
    assert len(dirs) == 1 and dirs[0]["error"] is None, run
    logdir = dirs[0]["logDir"]
    data_dir = getattr(broker, "data_dir", None)  # None: an external broker
    if data_dir is not None:
        assert os.path.realpath(logdir) == os.path.realpath(data_dir), run
    else:
        assert os.path.isabs(logdir), run
    parts = {p["partition"]: p for p in dirs[0]["partitions"]}
    assert set(parts) == {f"{topic}-0", f"{topic}-1"}, run
    # the records' values alone are 20,000 bytes; the other partition is empty
    assert parts[f"{topic}-0"]["size"] >= sum(map(len, values)), run
    assert parts[f"{topic}-1"]["size"] == 0, run
    for p in parts.values():
        assert (p["offsetLag"], p["isFuture"]) == (0, False), run


# --------------------------------------------------------------------------
# kafka-features
# --------------------------------------------------------------------------

# Kafka 4.3.1 (the reference, freshly formatted) prints, one per line and
# aligned with spaces:
#   eligible.leader.replicas.version  0..1        finalized 1
#   group.version                     0..1        finalized 1
#   kraft.version                     0..1        finalized 1
#   metadata.version                  3.3-IV3..4.3-IV0  finalized 4.3-IV0
#   share.version                     0..1        finalized 1
#   streams.version                   0..1        finalized 1
#   transaction.version               0..2        finalized 2
# each with "Epoch: N" (the metadata offset of the finalization).


def test_features_tool(broker):
    run = ok("kafka-features", broker.bootstrap, "describe")
    features = {}
    for line in run.lines:
        kv = dict(re.findall(r"(\w+): (\S*)", line))
        assert "Feature" in kv, f"unexpected line {line!r}\n{run}"
        features[kv.pop("Feature")] = kv
    tv = features.get("transaction.version")
    assert tv is not None, run
    assert tv["FinalizedVersionLevel"] == "2" and int(tv["SupportedMaxVersion"]) >= 2, run
    # the issue asks for these finalized too
    for name in ("metadata.version", "group.version"):
        assert name in features and features[name].get("FinalizedVersionLevel"), (name, run)


# --------------------------------------------------------------------------
# kafka-get-offsets
# --------------------------------------------------------------------------


def test_get_offsets_tool(broker):
    b = broker.bootstrap
    topic = new_topic(b, "tools-offsets", 3)
    now = int(time.time() * 1000)
    # the newest timestamp in the middle: -3 (max timestamp) must find offset 2
    ts = [now - 5000, now - 4000, now + 1000, now - 3000, now - 2000]
    produce(b, topic, 0, [b"a%d" % i for i in range(5)], ts, one_batch_each=True)
    produce(b, topic, 1, [b"b%d" % i for i in range(5)], ts)  # one batch
    # partition 2 stays empty

    def offsets(time_arg: str) -> list[str]:
        return sorted(ok("kafka-get-offsets", b, "--topic", topic, "--time", time_arg).lines)

    assert offsets("latest") == [f"{topic}:0:5", f"{topic}:1:5", f"{topic}:2:0"]
    assert offsets("earliest") == [f"{topic}:0:0", f"{topic}:1:0", f"{topic}:2:0"]
    # an empty partition has no max-timestamp record: the tool prints no line for it
    assert offsets("-3") == [f"{topic}:0:2", f"{topic}:1:2"]
