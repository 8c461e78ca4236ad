"""Issue 11: faults driven over gregor's HTTP admin API, seen by stock clients.

Every test starts its own gregor with `--virtual-brokers 3 --admin-listen
127.0.0.1:0 --dev --ephemeral` (one process, broker ids 1, 2, 3 on their own
ports) and reads the `brokers=` and `admin=` fields of the ready line
(faults.VirtualCluster). Faults are injected with POST /faults/... (or the
`gregor fault` subcommand of the same binary) and each test asserts what the
client sees, waiting for events with deadlines rather than sleeping:

* `test_produce_errors`: NOT_LEADER_OR_FOLLOWER x3 -> librdkafka retries, the
  record is stored once and the rule is used up; TOPIC_AUTHORIZATION_FAILED
  (permanent for librdkafka's Produce) -> the delivery report carries it and
  nothing is stored.
* `test_fetch_errors`: NOT_LEADER_OR_FOLLOWER / UNKNOWN_TOPIC_OR_PARTITION on
  Fetch (set with `gregor fault errors`) -> every record read, in order;
  OFFSET_OUT_OF_RANGE -> auto.offset.reset=latest applies.
* `test_join_group_errors`: COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR ->
  the group still forms; GROUP_AUTHORIZATION_FAILED -> a consumer error with
  that code.
* `test_offset_commit_errors`: retriable codes -> commit succeeds;
  OFFSET_METADATA_TOO_LARGE -> commit raises it, committed offset unchanged.
* `test_init_producer_id_errors`: COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR
  -> init_transactions succeeds; TRANSACTIONAL_ID_AUTHORIZATION_FAILED ->
  a fatal error.
* `test_close_before_response_idempotent`: the connection cut after Produce
  was processed, several times, with enable.idempotence=true: 1000 records
  consumed exactly once, in order.
* `test_latency_and_throttle`: 300 ms latency on broker 2 -> produce round
  trip >= 300 ms; throttle -> librdkafka's throttle_cb with the ms.
* `test_storage_failure`: KAFKA_STORAGE_ERROR to a producer without retries;
  a retrying producer is delivered once storage is back.
* `test_broker_down_and_up`: broker 2 down under an idempotent producer:
  leadership moves (epoch + 1), its port refuses connections, every
  acknowledged record is consumable exactly once; up again; 409 for the last
  live broker.
* `test_leader_and_coordinator_move_confluent` / `..._kafka_python`: a
  consumer group keeps consuming and its committed offsets survive.
* `test_reset`: POST /reset removes topics, groups, faults (the time is
  printed in the timings section).
* `test_admin_api_shapes_and_metrics`: /health /cluster /topics /groups
  /transactions /faults /metrics against the spec's shapes (every missing
  field reported at once); the metric names seen are printed.
* `test_virtual_cluster_routing_and_epochs`: raw requests to each virtual
  broker: Produce / ListOffsets to a non-leader -> NOT_LEADER_OR_FOLLOWER
  (Produce v10 and Fetch v12 name the current leader); Fetch with an old /
  newer current_leader_epoch -> FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH;
  FindCoordinator from every broker names the same coordinator.
* `test_replication_factor_and_assignments`: replication factor 3 and replica
  assignments (first replica leads, Metadata lists them in order, also for
  CreatePartitions); factor 4, broker 4, a broker twice, uneven sets ->
  INVALID_REPLICATION_FACTOR / INVALID_REPLICA_ASSIGNMENT, nothing created.
* `test_reset_refused_without_dev_or_ephemeral`, `test_admin_api_errors`:
  refusals are 4xx with {"error": "..."}.

librdkafka's own classification decides what each test expects (read in
the librdkafka 2.12 sources, rdkafka_request.c / rdkafka_cgrp.c /
rdkafka_idempotence.c; the 2.16 bundled with confluent-kafka behaves so):
TOPIC_AUTHORIZATION_FAILED is permanent for Produce; KAFKA_STORAGE_ERROR is
REFRESH | RETRY (retried until message.timeout.ms, so the delivery error only
shows with message.send.max.retries=0); a JoinGroup error not in its
explicit list (GROUP_AUTHORIZATION_FAILED) is permanent and surfaces as a
consumer error, then the member rejoins; OffsetCommit:
COORDINATOR_LOAD_IN_PROGRESS / NOT_COORDINATOR retry (at most 2 retries per
request), OFFSET_METADATA_TOO_LARGE is permanent; InitProducerId:
TRANSACTIONAL_ID_AUTHORIZATION_FAILED is a fatal error.

FAULTS_LOG_DIR=DIR keeps every broker's log (DIR/<test>.log), failed or not.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import uuid

import pytest
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from compat import ck_consume_all, ck_create_topic, unique_topic
from conftest import gregor_bin
from faults import (
    CLUSTER_ARGS,
    AdminError,
    VirtualCluster,
    fault_cli,
    fault_entries,
    rule_left,
    wait_for,
)

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("COMPAT_EXTERNAL_BOOTSTRAP")),
    reason="needs gregor's admin API (a broker started by the suite)",
)

OP_TIMEOUT_S = 30
GROUP_TIMEOUT_S = 30


# --------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------


@pytest.fixture
def vc(make_broker, request) -> VirtualCluster:
    b = make_broker(*CLUSTER_ARGS, ephemeral=True)
    cluster = VirtualCluster(b)
    assert sorted(cluster.brokers) == [1, 2, 3], f"brokers= of the ready line: {cluster.brokers}"
    yield cluster
    dump = os.environ.get("FAULTS_LOG_DIR")  # keep every broker log, failed or not
    if dump:
        os.makedirs(dump, exist_ok=True)
        with open(os.path.join(dump, f"{request.node.name}.log"), "w") as f:
            f.write(b.log)


def cli(vc: VirtualCluster, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """`gregor fault ARGS...` with GREGOR_ADMIN pointing at this cluster;
    asserts exit code 0."""
    env = dict(os.environ, GREGOR_ADMIN=vc.admin)
    cmd = [str(gregor_bin()), "fault", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    assert p.returncode == 0, (
        f"GREGOR_ADMIN={vc.admin} {' '.join(cmd)} exited with {p.returncode}\n"
        f"stdout: {p.stdout}\nstderr: {p.stderr}"
    )
    return p


def producer(vc: VirtualCluster, **conf) -> Producer:
    cfg = {"bootstrap.servers": vc.bootstrap, "acks": "all", "linger.ms": 0}
    cfg.update(conf)
    return Producer(cfg)


def deliver(p: Producer, topic: str, value: bytes, *, partition: int | None = None,
            timeout: float = OP_TIMEOUT_S):
    """Produces one record and waits for its delivery report:
    (error or None, message, seconds from produce() to the report)."""
    out: list = []
    t0 = time.monotonic()

    def cb(err, msg):
        out.append((err, msg, time.monotonic() - t0))

    kw = {"value": value, "on_delivery": cb}
    if partition is not None:
        kw["partition"] = partition
    p.produce(topic, **kw)
    deadline = t0 + timeout
    while not out and time.monotonic() < deadline:
        p.poll(0.05)
    assert out, f"no delivery report for {value!r} on {topic} within {timeout}s"
    return out[0]


def values_of(vc: VirtualCluster, topic: str, partitions: int) -> list:
    """Every record of the topic from the beginning: [(partition, offset, value)]."""
    got = ck_consume_all(vc.bootstrap, topic, partitions, timeout=OP_TIMEOUT_S)
    return sorted((g.partition, g.offset, g.value) for g in got)


def ck_group_consumer(vc: VirtualCluster, group: str, **conf):
    """A subscribing consumer; returns (consumer, assignment list kept up to
    date by on_assign / on_revoke)."""
    cfg = {
        "bootstrap.servers": vc.bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    }
    cfg.update(conf)
    return Consumer(cfg)


class Collector:
    """Polls a subscribing consumer; keeps records, errors and assignment."""

    def __init__(self, consumer: Consumer, topic: str):
        self.c = consumer
        self.records: list[tuple[int, int, bytes]] = []
        self.errors: list[KafkaError] = []
        self.assignment: list[TopicPartition] = []
        self.assign_events = 0

        def on_assign(c, parts):
            self.assignment = list(parts)
            self.assign_events += 1

        def on_revoke(c, parts):
            self.assignment = []

        consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)

    def poll(self, timeout: float = 0.2) -> None:
        for m in self.c.consume(num_messages=500, timeout=timeout):
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    self.errors.append(err)
                continue
            self.records.append((m.partition(), m.offset(), m.value()))

    def until(self, pred, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while True:
            v = pred()
            if v:
                return v
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}: {len(self.records)} records, "
                    f"assignment {self.assignment}, errors {self.errors[-5:]}"
                )
            self.poll(0.2)


def committed(c: Consumer, topic: str, partitions: int) -> dict[int, int]:
    res = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=OP_TIMEOUT_S)
    return {tp.partition: tp.offset for tp in res}


def connect_refused(addr: str) -> bool:
    host, _, port = addr.rpartition(":")
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, int(port)))
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    else:
        return False
    finally:
        s.close()


def metric(vc: VirtualCluster, name: str, **labels: str) -> float:
    """Sum of the samples of `name` in GET /metrics whose labels include `labels`."""
    total = 0.0
    for ln in vc.get("/metrics", expect_json=False).splitlines():
        if not ln.startswith(name + "{") and not ln.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in ln for k, v in labels.items()):
            total += _value(ln)
    return total


def seq_values(n: int, first: int = 0) -> list[bytes]:
    return [f"seq-{i:06d}".encode() for i in range(first, first + n)]


# --------------------------------------------------------------------------
# a. Produce
# --------------------------------------------------------------------------


def test_produce_errors(vc):
    topic = unique_topic("flt-produce")
    ck_create_topic(vc.bootstrap, topic, 1)
    p = producer(vc, **{"retry.backoff.ms": 50})

    rid = vc.push_errors("Produce", ["NOT_LEADER_OR_FOLLOWER"] * 3, topic=topic)
    listed = vc.faults()
    assert rule_left(listed, rid) == 3, f"GET /faults right after pushing rule {rid}: {listed}"
    err, msg, secs = deliver(p, topic, b"retried")
    assert err is None, f"delivery after 3 retriable NOT_LEADER_OR_FOLLOWER: {err}"
    assert msg.offset() == 0
    listed = vc.faults()
    assert rule_left(listed, rid) == 0, f"rule {rid} not used up: GET /faults {listed}"
    assert values_of(vc, topic, 1) == [(0, 0, b"retried")], "the retried record must be stored once"

    # permanent for librdkafka's Produce (rd_kafka_handle_Produce_error:
    # TOPIC_AUTHORIZATION_FAILED is ACTION_PERMANENT | MSG_NOT_PERSISTED)
    ans = vc.post("/faults/errors", {"api": 0, "error": "TOPIC_AUTHORIZATION_FAILED", "count": 1, "topic": topic})
    rid2 = ans["id"]
    err, msg, _ = deliver(p, topic, b"refused")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, (
        f"delivery report after TOPIC_AUTHORIZATION_FAILED: {err}"
    )
    assert rule_left(vc.faults(), rid2) == 0
    # librdkafka then marks the topic as errored on its side (produce()
    # raises TOPIC_AUTHORIZATION_FAILED until its next metadata refresh):
    # a new producer shows the broker takes records again
    p.flush(5)
    p = producer(vc)
    # filters: a rule for another broker, and one for another partition, are
    # not hit by this produce (and stay listed)
    leader = vc.leaders(topic)[0][0]
    other = 1 if leader != 1 else 2
    r_broker = vc.push_errors("Produce", ["INVALID_REQUEST"], broker=other)
    r_part = vc.push_errors("Produce", ["INVALID_REQUEST"], topic=topic, partition=5)
    err, msg, _ = deliver(p, topic, b"after")
    assert err is None, f"delivery once the rule is used up: {err}"
    listed = vc.faults()
    assert rule_left(listed, r_broker) == 1 and rule_left(listed, r_part) == 1, (
        f"rules filtered to broker {other} / partition 5 hit by a produce to broker {leader} partition 0: {listed}"
    )
    vc.delete("/faults")
    assert fault_entries(vc.faults()) == [], f"after DELETE /faults: {vc.faults()}"
    assert values_of(vc, topic, 1) == [(0, 0, b"retried"), (0, 1, b"after")], (
        "the refused record must not be stored (errors rules answer without processing)"
    )
    p.flush(5)


# --------------------------------------------------------------------------
# b. Fetch
# --------------------------------------------------------------------------


def test_fetch_errors(vc):
    topic = unique_topic("flt-fetch")
    ck_create_topic(vc.bootstrap, topic, 1)
    p = producer(vc, **{"linger.ms": 5})
    vals = seq_values(50)
    for v in vals:
        p.produce(topic, value=v, partition=0)
    assert p.flush(OP_TIMEOUT_S) == 0

    # through the CLI this time
    cli(vc, "errors", "--api", "Fetch", "--error", "NOT_LEADER_OR_FOLLOWER", "--count", "2", "--topic", topic)
    cli(vc, "errors", "--api", "Fetch", "--error", "UNKNOWN_TOPIC_OR_PARTITION", "--count", "1", "--topic", topic)
    fetch_rules = [f for f in fault_entries(vc.faults()) if str(f.get("api")) in ("Fetch", "1")]
    assert len(fetch_rules) == 2, f"GET /faults after two `gregor fault errors --api Fetch`: {vc.faults()}"

    got = values_of(vc, topic, 1)
    assert [v for _, _, v in got] == vals, f"records after retriable Fetch errors: {got[:5]}..."
    assert [o for _, o, _ in got] == list(range(50))
    listed = vc.faults()
    left = [f for f in fetch_rules if rule_left(listed, f.get("id"))]
    assert not left, f"Fetch rules not used up by the consumer: GET /faults {listed}"

    # OFFSET_OUT_OF_RANGE -> auto.offset.reset (latest) applies
    vc.push_errors("Fetch", ["OFFSET_OUT_OF_RANGE"], topic=topic)
    c = Consumer({
        "bootstrap.servers": vc.bootstrap,
        "group.id": f"flt-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "auto.offset.reset": "latest",
        "enable.partition.eof": True,
    })
    try:
        c.assign([TopicPartition(topic, 0, 0)])  # explicit offset 0, would read everything
        eof_at = None
        records = []
        deadline = time.monotonic() + OP_TIMEOUT_S
        while eof_at is None:
            assert time.monotonic() < deadline, f"no EOF after OFFSET_OUT_OF_RANGE; records {records[:5]}"
            for m in c.consume(100, timeout=0.2):
                if m.error() is None:
                    records.append((m.offset(), m.value()))
                elif m.error().code() == KafkaError._PARTITION_EOF:
                    eof_at = m.offset()
                else:
                    raise AssertionError(f"consumer error: {m.error()}")
        assert records == [] and eof_at == 50, (
            f"after OFFSET_OUT_OF_RANGE with auto.offset.reset=latest: read {records[:5]}, EOF at {eof_at}"
        )
        more = seq_values(5, 50)
        for v in more:
            p.produce(topic, value=v, partition=0)
        assert p.flush(OP_TIMEOUT_S) == 0
        deadline = time.monotonic() + OP_TIMEOUT_S
        while len(records) < 5:
            assert time.monotonic() < deadline, f"new records not read after the reset: {records}"
            for m in c.consume(100, timeout=0.2):
                if m.error() is None:
                    records.append((m.offset(), m.value()))
        assert records == list(zip(range(50, 55), more)), f"records after the reset: {records}"
    finally:
        c.close()


# --------------------------------------------------------------------------
# c. JoinGroup
# --------------------------------------------------------------------------


def test_join_group_errors(vc):
    topic = unique_topic("flt-join")
    ck_create_topic(vc.bootstrap, topic, 2)
    p = producer(vc)
    for i in range(10):
        p.produce(topic, value=b"v%d" % i, partition=i % 2)
    assert p.flush(OP_TIMEOUT_S) == 0

    group = f"g-{uuid.uuid4().hex[:8]}"
    rid = vc.push_errors("JoinGroup", ["COORDINATOR_NOT_AVAILABLE", "NOT_COORDINATOR"], group=group)
    c = ck_group_consumer(vc, group)
    try:
        col = Collector(c, topic)
        col.until(lambda: len(col.records) >= 10, GROUP_TIMEOUT_S, "the group to form and read 10 records")
        assert sorted(tp.partition for tp in col.assignment) == [0, 1]
        assert rule_left(vc.faults(), rid) == 0, f"JoinGroup rule not used: {vc.faults()}"
        fatal = [e for e in col.errors if e.code() not in (KafkaError._TRANSPORT,)]
        assert not fatal, f"consumer errors for retriable JoinGroup errors: {fatal}"
    finally:
        c.close()

    group2 = f"g-{uuid.uuid4().hex[:8]}"
    rid2 = vc.push_errors("JoinGroup", ["GROUP_AUTHORIZATION_FAILED"], group=group2)
    c = ck_group_consumer(vc, group2)
    try:
        col = Collector(c, topic)
        col.until(
            lambda: any(e.code() == KafkaError.GROUP_AUTHORIZATION_FAILED for e in col.errors),
            GROUP_TIMEOUT_S, "a GROUP_AUTHORIZATION_FAILED consumer error",
        )
        assert rule_left(vc.faults(), rid2) == 0
        # librdkafka rejoins after a permanent JoinGroup error; with the rule
        # used up the group forms
        col.until(lambda: len(col.records) >= 10, GROUP_TIMEOUT_S, "the group to form after the error")
    finally:
        c.close()


# --------------------------------------------------------------------------
# d. OffsetCommit
# --------------------------------------------------------------------------


def test_offset_commit_errors(vc):
    topic = unique_topic("flt-commit")
    ck_create_topic(vc.bootstrap, topic, 1)
    p = producer(vc)
    for i in range(10):
        p.produce(topic, value=b"v%d" % i, partition=0)
    assert p.flush(OP_TIMEOUT_S) == 0

    group = f"g-{uuid.uuid4().hex[:8]}"
    c = ck_group_consumer(vc, group)
    try:
        col = Collector(c, topic)
        col.until(lambda: len(col.records) >= 10, GROUP_TIMEOUT_S, "10 records in the group")

        for code in ("COORDINATOR_LOAD_IN_PROGRESS", "NOT_COORDINATOR"):
            rid = vc.push_errors("OffsetCommit", [code], group=group)
            off = 3 if code == "COORDINATOR_LOAD_IN_PROGRESS" else 5
            try:
                c.commit(offsets=[TopicPartition(topic, 0, off)], asynchronous=False)
            except KafkaException as e:
                raise AssertionError(f"commit after one retriable {code} raised {e}") from None
            assert rule_left(vc.faults(), rid) == 0, f"{code} rule not used: {vc.faults()}"
            assert committed(c, topic, 1) == {0: off}

        rid = vc.push_errors("OffsetCommit", ["OFFSET_METADATA_TOO_LARGE"], group=group)
        with pytest.raises(KafkaException) as ei:
            c.commit(offsets=[TopicPartition(topic, 0, 8)], asynchronous=False)
        kerr = ei.value.args[0]
        assert kerr.code() == KafkaError.OFFSET_METADATA_TOO_LARGE, f"commit raised {kerr}"
        assert rule_left(vc.faults(), rid) == 0
        assert committed(c, topic, 1) == {0: 5}, "a refused commit must not change the committed offset"

        c.commit(offsets=[TopicPartition(topic, 0, 10)], asynchronous=False)
        assert committed(c, topic, 1) == {0: 10}
        g = vc.group(group)
        assert g is not None, f"group {group} not in GET /groups"
        offs = {(o["topic"], o["partition"]): o for o in g["offsets"]}
        o = offs.get((topic, 0))
        assert o and o["committed"] == 10 and o["high_watermark"] == 10 and o["lag"] == 0, (
            f"GET /groups offsets: {g['offsets']}"
        )
    finally:
        c.close()


# --------------------------------------------------------------------------
# e. InitProducerId
# --------------------------------------------------------------------------


def test_init_producer_id_errors(vc, timings):
    topic = unique_topic("flt-txn")
    ck_create_topic(vc.bootstrap, topic, 1)

    cid = f"txn-{uuid.uuid4().hex[:8]}"
    rid = vc.push_errors("InitProducerId", ["COORDINATOR_LOAD_IN_PROGRESS", "NOT_COORDINATOR"], client_id=cid)
    p = producer(vc, **{"transactional.id": f"tid-{cid}", "client.id": cid})
    t0 = time.monotonic()
    p.init_transactions(OP_TIMEOUT_S)
    timings.append(f"faults: init_transactions through 2 retriable InitProducerId errors: {time.monotonic() - t0:.2f} s")
    assert rule_left(vc.faults(), rid) == 0, f"InitProducerId rule not used: {vc.faults()}"
    p.begin_transaction()
    p.produce(topic, value=b"in-txn", partition=0)
    p.commit_transaction(OP_TIMEOUT_S)
    got = ck_consume_all(vc.bootstrap, topic, 1, **{"isolation.level": "read_committed"})
    assert [g.value for g in got] == [b"in-txn"]

    cid2 = f"txn-{uuid.uuid4().hex[:8]}"
    rid2 = vc.push_errors("InitProducerId", ["TRANSACTIONAL_ID_AUTHORIZATION_FAILED"], client_id=cid2)
    p2 = producer(vc, **{"transactional.id": f"tid-{cid2}", "client.id": cid2})
    with pytest.raises(KafkaException) as ei:
        p2.init_transactions(OP_TIMEOUT_S)
    kerr = ei.value.args[0]
    # librdkafka (rd_kafka_idemp_check_error) makes this a fatal error
    assert kerr.code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, f"init_transactions raised {kerr}"
    assert kerr.fatal(), f"TRANSACTIONAL_ID_AUTHORIZATION_FAILED should be fatal for librdkafka: {kerr}"
    assert rule_left(vc.faults(), rid2) == 0


# --------------------------------------------------------------------------
# f. connection closed before the Produce response, idempotent producer
# --------------------------------------------------------------------------


def test_close_before_response_idempotent(vc, timings):
    topic = unique_topic("flt-close")
    ck_create_topic(vc.bootstrap, topic, 1)
    p = producer(vc, **{
        "enable.idempotence": True,
        "linger.ms": 2,
        "batch.num.messages": 25,
        "retry.backoff.ms": 50,
    })
    errors: list = []
    acked: list[int] = []

    def cb(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked.append(msg.offset())

    vals = seq_values(1000)
    cuts = 0
    for chunk in range(4):
        ans = vc.post("/faults/close", {"api": "Produce", "count": 1, "topic": topic})
        rid = ans["id"]
        for v in vals[chunk * 250:(chunk + 1) * 250]:
            p.produce(topic, value=v, partition=0, on_delivery=cb)
            p.poll(0)
        # the cut happens on the first Produce of the chunk; wait for it
        deadline = time.monotonic() + OP_TIMEOUT_S
        while rule_left(vc.faults(), rid):
            assert time.monotonic() < deadline, f"close rule {rid} never used: {vc.faults()}"
            p.poll(0.05)
        cuts += 1
    assert p.flush(60) == 0, f"records undelivered; errors {errors[:5]}"
    assert not errors, f"delivery errors with idempotence and cut connections: {errors[:5]}"
    assert sorted(acked) == list(range(1000)), f"acknowledged offsets: {len(acked)}, dups {len(acked) - len(set(acked))}"
    got = values_of(vc, topic, 1)
    assert len(got) == 1000, f"consumed {len(got)} records after {cuts} cut connections, produced 1000"
    assert [v for _, _, v in got] == vals, "records out of order or duplicated"
    timings.append(f"faults: 1000 idempotent records through {cuts} connections closed before the Produce response")


# --------------------------------------------------------------------------
# g. latency and throttle
# --------------------------------------------------------------------------


def test_latency_and_throttle(vc, timings):
    topic = unique_topic("flt-lat")
    ck_create_topic(vc.bootstrap, topic, 3)
    leaders = vc.leaders(topic)
    on2 = [pt for pt, (l, _) in leaders.items() if l == 2]
    if not on2:
        vc.post("/leaders", {"topic": topic, "partition": 0, "leader": 2})
        on2 = [0]
    part2 = on2[0]
    p = producer(vc)
    err, _, warm = deliver(p, topic, b"warm-up", partition=part2)  # connections and metadata
    assert err is None

    vc.post("/faults/latency", {"ms": 300, "broker": 2})
    err, _, slow = deliver(p, topic, b"slow", partition=part2)
    assert err is None
    assert slow >= 0.3, f"produce to broker 2 with 300 ms latency took {slow * 1000:.0f} ms"
    cli(vc, "latency", "--ms", "0", "--broker", "2")  # removes it
    err, _, fast = deliver(p, topic, b"fast", partition=part2)
    assert err is None
    timings.append(
        f"faults: produce round trip to broker 2: warm-up {warm * 1000:.0f} ms, with 300 ms latency "
        f"{slow * 1000:.0f} ms, after --ms 0 {fast * 1000:.0f} ms"
    )

    events: list = []
    pt = producer(vc, throttle_cb=lambda ev: events.append(ev))
    ans = vc.post("/faults/throttle", {"ms": 100, "api": "Produce", "count": 3})
    assert "id" in (ans or {}), f"POST /faults/throttle -> {ans}"
    err, _, _ = deliver(pt, topic, b"throttled", partition=part2)
    assert err is None
    deadline = time.monotonic() + OP_TIMEOUT_S
    while not events:
        assert time.monotonic() < deadline, "no throttle_cb within the deadline"
        pt.poll(0.1)
    ev = events[0]
    assert abs(ev.throttle_time - 0.1) < 0.001, f"throttle_cb reported {ev.throttle_time} s, want 0.1"
    assert ev.broker_id in (1, 2, 3), f"throttle event broker {ev.broker_id} ({ev.broker_name})"
    timings.append(f"faults: throttle_cb {ev.throttle_time * 1000:.0f} ms from broker {ev.broker_id}")
    pt.flush(5)
    p.flush(5)


# --------------------------------------------------------------------------
# h. storage failure
# --------------------------------------------------------------------------


def test_storage_failure(vc):
    topic = unique_topic("flt-storage")
    ck_create_topic(vc.bootstrap, topic, 1)
    noretry = producer(vc, **{"message.send.max.retries": 0, "retry.backoff.ms": 50})
    retrying = producer(vc, **{"retry.backoff.ms": 50, "retry.backoff.max.ms": 200})
    assert deliver(noretry, topic, b"ok-1", partition=0)[0] is None
    assert deliver(retrying, topic, b"ok-2", partition=0)[0] is None

    vc.post("/faults/storage", {"failed": True})
    err, _, _ = deliver(noretry, topic, b"lost", partition=0)
    assert err is not None and err.code() == KafkaError.KAFKA_STORAGE_ERROR, (
        f"delivery without retries while storage fails: {err}"
    )

    # librdkafka retries KAFKA_STORAGE_ERROR (REFRESH | RETRY): the record
    # stays in flight until storage is back
    out: list = []
    retrying.produce(topic, value=b"retried", partition=0, on_delivery=lambda e, m: out.append(e))
    assert retrying.flush(1.5) == 1 and not out, f"delivered while storage fails: {out}"
    cli(vc, "storage", "ok")
    assert retrying.flush(OP_TIMEOUT_S) == 0 and out == [None], f"after `gregor fault storage ok`: {out}"
    assert [v for _, _, v in values_of(vc, topic, 1)] == [b"ok-1", b"ok-2", b"retried"]


# --------------------------------------------------------------------------
# i. broker down and up
# --------------------------------------------------------------------------


def test_broker_down_and_up(vc, timings):
    topic = unique_topic("flt-down")
    parts = 6
    ck_create_topic(vc.bootstrap, topic, parts)
    leaders = vc.leaders(topic)
    if {l for l, _ in leaders.values()} != {1, 2, 3}:
        for pt in range(parts):
            vc.post("/leaders", {"topic": topic, "partition": pt, "leader": pt % 3 + 1})
        leaders = vc.leaders(topic)
    assert {l for l, _ in leaders.values()} == {1, 2, 3}, f"leaders {leaders}"

    p = producer(vc, **{"enable.idempotence": True, "linger.ms": 2, "retry.backoff.ms": 50})
    acked: dict[bytes, tuple[int, int]] = {}
    errors: list = []

    def cb(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked[msg.value()] = (msg.partition(), msg.offset())

    # a steady stream (about 3000 records in ~1.5 s) with broker 2 taken
    # down in the middle of it, once 800 are acknowledged
    vals = seq_values(3000)
    done = threading.Event()

    def stream():
        try:
            for i, v in enumerate(vals):
                p.produce(topic, value=v, partition=i % parts, on_delivery=cb)
                p.poll(0)
                if i % 20 == 19:
                    time.sleep(0.01)
        finally:
            done.set()

    th = threading.Thread(target=stream, daemon=True)
    th.start()
    wait_for(lambda: len(acked) >= 800 or done.is_set(), OP_TIMEOUT_S, "800 acknowledged records")
    assert not done.is_set(), "the stream ended before broker 2 went down (too fast to test anything)"
    t0 = time.monotonic()
    vc.post("/brokers/2/down")
    down_ms = (time.monotonic() - t0) * 1000
    acked_at_down = len(acked)

    after = vc.leaders(topic)
    assert all(l != 2 for l, _ in after.values()), f"partitions still led by broker 2: {after}"
    for pt, (l, e) in leaders.items():
        want = e + 1 if l == 2 else e
        assert after[pt][1] == want, f"partition {pt}: leader {l} epoch {e} -> {after[pt]}, want epoch {want}"
        if l != 2:
            assert after[pt][0] == l, f"partition {pt} moved from live broker {l}: {after[pt]}"
    b2 = next(b for b in vc.cluster()["brokers"] if b["id"] == 2)
    assert b2["up"] is False, f"GET /cluster after down: {b2}"
    assert connect_refused(vc.brokers[2]), f"broker 2 ({vc.brokers[2]}) still accepts connections"

    assert done.wait(60), "the producing thread did not finish"
    th.join(5)
    assert p.flush(60) == 0, f"undelivered after broker 2 went down; errors {errors[:5]}"
    assert not errors, f"delivery errors: {errors[:5]}"
    assert len(acked) == 3000

    got = values_of(vc, topic, parts)
    seen = [v for _, _, v in got]
    assert len(seen) == len(set(seen)), f"{len(seen) - len(set(seen))} records stored twice"
    assert set(seen) == set(acked), f"acknowledged but missing: {sorted(set(acked) - set(seen))[:5]}"
    where = {v: (pt, o) for pt, o, v in got}
    assert all(where[v] == acked[v] for v in acked), "records not at their acknowledged positions"
    # per partition, the order of production
    for pt in range(parts):
        mine = [v for q, _, v in got if q == pt]
        assert mine == sorted(mine), f"partition {pt} out of order"

    vc.post("/brokers/2/up")
    b2 = next(b for b in vc.cluster()["brokers"] if b["id"] == 2)
    assert b2["up"] is True, f"GET /cluster after up: {b2}"
    wait_for(lambda: not connect_refused(vc.brokers[2]), 10, "broker 2 to accept connections again")
    assert all(l != 2 for l, _ in vc.leaders(topic).values()), "leadership moved back by itself"
    # broker 2 serves again: move a partition to it and produce there
    vc.post("/leaders", {"topic": topic, "partition": 0, "leader": 2})
    err, msg, _ = deliver(p, topic, b"on-2-again", partition=0)
    assert err is None, f"produce to broker 2 after up: {err}"

    # the last live broker cannot go down
    vc.post("/brokers/2/down")
    cli(vc, "broker", "down", "3")
    with pytest.raises(AdminError) as ei:
        vc.post("/brokers/1/down")
    assert ei.value.status == 409, f"downing the last live broker: {ei.value}"
    assert "error" in json.loads(ei.value.body), f"error body: {ei.value.body}"
    refused = subprocess.run([str(gregor_bin()), "fault", "--admin", vc.admin, "broker", "down", "1"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and refused.stderr.strip(), (
        f"`gregor fault broker down 1` for the last live broker: exit {refused.returncode}, "
        f"stdout {refused.stdout!r}, stderr {refused.stderr!r}"
    )
    assert [b["id"] for b in vc.cluster()["brokers"] if b["up"]] == [1]
    vc.post("/brokers/2/up")
    cli(vc, "broker", "up", "3")
    assert all(b["up"] for b in vc.cluster()["brokers"])
    timings.append(
        f"faults: POST /brokers/2/down answered in {down_ms:.0f} ms, with {acked_at_down} of 3000 records acknowledged"
    )
    p.flush(5)


# --------------------------------------------------------------------------
# j. leader and coordinator moves under a consumer group
# --------------------------------------------------------------------------


def produce_seq(vc, topic: str, parts: int, vals: list[bytes]) -> None:
    p = producer(vc, **{"linger.ms": 5})
    for i, v in enumerate(vals):
        p.produce(topic, value=v, partition=i % parts)
    assert p.flush(OP_TIMEOUT_S) == 0


def test_leader_and_coordinator_move_confluent(vc, timings):
    topic = unique_topic("flt-move")
    parts = 3
    ck_create_topic(vc.bootstrap, topic, parts)
    group = f"g-{uuid.uuid4().hex[:8]}"
    first = seq_values(300)
    produce_seq(vc, topic, parts, first)

    c = ck_group_consumer(vc, group)
    try:
        col = Collector(c, topic)
        col.until(lambda: len(col.records) >= 300, GROUP_TIMEOUT_S, "the first 300 records")
        c.commit(asynchronous=False)
        assert sum(committed(c, topic, parts).values()) == 300

        coord0 = vc.cluster()["coordinator"]
        vc.post("/leaders", {"from": 1})  # spread over the other live brokers
        moved = vc.leaders(topic)
        assert all(l != 1 for l, _ in moved.values()), f"partitions still on broker 1: {moved}"
        produce_seq(vc, topic, parts, seq_values(300, 300))
        col.until(lambda: len(col.records) >= 600, GROUP_TIMEOUT_S, "records after the leader move")

        new_coord = 3 if coord0 != 3 else 2
        vc.post("/coordinator", {"broker": new_coord})
        cl = vc.cluster()
        assert cl["coordinator"] == new_coord, f"GET /cluster after POST /coordinator: {cl}"
        produce_seq(vc, topic, parts, seq_values(300, 600))
        col.until(lambda: len(col.records) >= 900, GROUP_TIMEOUT_S, "records after the coordinator move")
        c.commit(asynchronous=False)
        assert committed(c, topic, parts) == {pt: 300 for pt in range(parts)}
        timings.append(
            "faults: confluent-kafka group through the coordinator move: NOT_COORDINATOR answered "
            f"{metric(vc, 'gregor_request_errors_total', error='NOT_COORDINATOR'):.0f} times"
        )
        vals = [v for _, _, v in col.records]
        assert sorted(vals) == seq_values(900) and len(vals) == 900, "records lost or duplicated"
        assert col.assign_events >= 1 and sorted(tp.partition for tp in col.assignment) == [0, 1, 2]
    finally:
        c.close()

    # a new member of the group resumes at the committed offsets
    produce_seq(vc, topic, parts, seq_values(30, 900))
    c = ck_group_consumer(vc, group)
    try:
        assert committed(c, topic, parts) == {pt: 300 for pt in range(parts)}
        col = Collector(c, topic)
        col.until(lambda: len(col.records) >= 30, GROUP_TIMEOUT_S, "the 30 new records")
        assert sorted(v for _, _, v in col.records) == seq_values(30, 900)
    finally:
        c.close()
    g = vc.group(group)
    assert g is not None and {o["partition"]: o["committed"] for o in g["offsets"] if o["topic"] == topic} == {
        pt: 300 for pt in range(parts)
    }, f"GET /groups: {g}"


def test_leader_and_coordinator_move_kafka_python(vc, timings):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata

    topic = unique_topic("flt-kp")
    parts = 3
    ck_create_topic(vc.bootstrap, topic, parts)
    group = f"g-{uuid.uuid4().hex[:8]}"
    produce_seq(vc, topic, parts, seq_values(150))

    c = KafkaConsumer(
        topic,
        bootstrap_servers=vc.bootstrap.split(","),
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )
    got: list[bytes] = []

    def read_until(n: int, what: str):
        deadline = time.monotonic() + GROUP_TIMEOUT_S
        while len(got) < n:
            assert time.monotonic() < deadline, f"kafka-python: {what}: {len(got)} of {n} records"
            for recs in c.poll(timeout_ms=200).values():
                got.extend(r.value for r in recs)

    tps = [KTP(topic, pt) for pt in range(parts)]
    try:
        read_until(150, "first records")
        c.commit()
        assert {tp.partition: c.committed(tp) for tp in tps} == {pt: 50 for pt in range(parts)}

        coord0 = vc.cluster()["coordinator"]
        new_coord = 2 if coord0 != 2 else 3
        vc.post("/coordinator", {"broker": new_coord})
        vc.post("/leaders", {"from": new_coord, "to": 1})
        produce_seq(vc, topic, parts, seq_values(150, 150))
        read_until(300, "records after the moves")
        # the commit goes to the old coordinator first (NOT_COORDINATOR),
        # kafka-python rediscovers and retries
        c.commit()
        assert {tp.partition: c.committed(tp) for tp in tps} == {pt: 100 for pt in range(parts)}
        timings.append(
            "faults: kafka-python group through the coordinator move: NOT_COORDINATOR answered "
            f"{metric(vc, 'gregor_request_errors_total', error='NOT_COORDINATOR'):.0f} times"
        )
        c.commit({KTP(topic, 0): OffsetAndMetadata(90, "", -1)})
        assert c.committed(KTP(topic, 0)) == 90
        assert sorted(got) == seq_values(300)
    finally:
        c.close()
    g = vc.group(group)
    assert g is not None, f"group {group} not in GET /groups"
    assert {o["partition"]: o["committed"] for o in g["offsets"] if o["topic"] == topic} == {0: 90, 1: 100, 2: 100}


# --------------------------------------------------------------------------
# k. reset
# --------------------------------------------------------------------------


def test_reset(vc, timings):
    topics = [unique_topic("flt-reset") for _ in range(3)]
    for t in topics:
        ck_create_topic(vc.bootstrap, t, 2)
    produce_seq(vc, topics[0], 2, seq_values(20))
    group = f"g-{uuid.uuid4().hex[:8]}"
    c = ck_group_consumer(vc, group)
    try:
        col = Collector(c, topics[0])
        col.until(lambda: len(col.records) >= 20, GROUP_TIMEOUT_S, "20 records")
        c.commit(asynchronous=False)
    finally:
        c.close()
    assert vc.group(group) is not None
    vc.push_errors("Produce", ["NOT_LEADER_OR_FOLLOWER"] * 5)
    vc.post("/faults/latency", {"ms": 200, "broker": 3})
    vc.post("/leaders", {"from": 1})
    vc.post("/coordinator", {"broker": 2})
    cluster_before = vc.cluster()

    t0 = time.monotonic()
    vc.post("/reset")
    reset_ms = (time.monotonic() - t0) * 1000
    timings.append(f"faults: POST /reset answered in {reset_ms:.1f} ms (3 topics, 1 group, 2 faults)")

    left = [t["name"] for t in vc.topics() if not t.get("internal")]
    assert left == [], f"topics after POST /reset: {left}"
    assert vc.groups() == [], f"groups after POST /reset: {vc.groups()}"
    assert fault_entries(vc.faults()) == [], f"faults after POST /reset: {vc.faults()}"
    md = AdminClient({"bootstrap.servers": vc.bootstrap}).list_topics(timeout=OP_TIMEOUT_S)
    assert not set(topics) & set(md.topics), f"list_topics after reset: {sorted(md.topics)}"
    cluster_after = vc.cluster()
    timings.append(
        f"faults: coordinator before reset {cluster_before['coordinator']} (moved to 2), after {cluster_after['coordinator']}"
    )
    # the cluster works as new: same topic name, offsets from 0, no faults
    ck_create_topic(vc.bootstrap, topics[0], 2)
    p = producer(vc)
    err, msg, secs = deliver(p, topics[0], b"fresh", partition=0)
    assert err is None and msg.offset() == 0, f"produce after reset: {err}, offset {msg.offset()}"
    assert secs < 5
    p.flush(5)
    # and `gregor fault reset` does the same
    cli(vc, "reset")
    assert [t["name"] for t in vc.topics() if not t.get("internal")] == [], "topics after `gregor fault reset`"


# --------------------------------------------------------------------------
# l. admin API shapes and metrics
# --------------------------------------------------------------------------


def test_admin_api_shapes_and_metrics(vc, timings):
    missing: list[str] = []  # fields of the spec's shapes not found (reported at the end)

    def has(what: str, obj: dict, keys: set) -> None:
        lack = sorted(keys - set(obj))
        if lack:
            missing.append(f"{what} lacks {lack}: {json.dumps(obj)[:300]}")

    assert vc.get("/health") == {"status": "ok"}
    cl = vc.cluster()
    for k in ("cluster_id", "controller", "coordinator", "brokers"):
        assert k in cl, f"GET /cluster lacks {k}: {cl}"
    assert [(b["id"], f"{b['host']}:{b['port']}", b["up"]) for b in cl["brokers"]] == [
        (i, vc.brokers[i], True) for i in (1, 2, 3)
    ], f"GET /cluster brokers vs the ready line {vc.brokers}: {cl['brokers']}"

    topic = unique_topic("flt-shapes")
    ck_create_topic(vc.bootstrap, topic, 2)
    produce_seq(vc, topic, 2, seq_values(10))
    group = f"g-{uuid.uuid4().hex[:8]}"
    c = ck_group_consumer(vc, group, **{"client.id": "shapes-client"})
    tp_ = producer(vc, **{"transactional.id": f"tid-{uuid.uuid4().hex[:8]}"})
    try:
        col = Collector(c, topic)
        col.until(lambda: len(col.records) >= 10, GROUP_TIMEOUT_S, "10 records")
        c.commit(asynchronous=False)

        t = vc.topic(topic)
        has("GET /topics item", t, {"name", "topic_id", "internal", "partitions"})
        assert t["internal"] is False, t
        hw = {}
        for pt in t["partitions"]:
            has("GET /topics partition", pt, {"partition", "leader", "leader_epoch", "log_start_offset",
                                              "high_watermark", "last_stable_offset", "size_bytes"})
            assert pt["leader"] in (1, 2, 3) and pt["log_start_offset"] == 0 and pt["size_bytes"] > 0, pt
            hw[pt["partition"]] = pt["high_watermark"]
        assert hw == {0: 5, 1: 5}, f"high watermarks in GET /topics: {t['partitions']}"

        g = vc.group(group)
        assert g is not None, f"group {group} not in GET /groups {vc.groups()}"
        has("GET /groups item", g, {"group_id", "state", "protocol_type", "protocol", "generation", "leader",
                                    "members", "offsets"})
        assert g["state"] == "Stable" and g["protocol_type"] == "consumer", g
        assert len(g["members"]) == 1, g["members"]
        m = g["members"][0]
        has("GET /groups member", m, {"member_id", "client_id", "client_host", "assignment"})
        assert m["client_id"] == "shapes-client", g
        if "leader" in g:
            assert g["leader"] == m["member_id"], g
        if "generation" in g:
            assert isinstance(g["generation"], int) and g["generation"] >= 1, g
        assert sorted(pt for a in m["assignment"] if a["topic"] == topic for pt in a["partitions"]) == [0, 1], m
        assert sorted((o["partition"], o["committed"], o["lag"]) for o in g["offsets"] if o["topic"] == topic) == [
            (0, 5, 0), (1, 5, 0)
        ], g["offsets"]

        tp_.init_transactions(OP_TIMEOUT_S)
        tp_.begin_transaction()
        tp_.produce(topic, value=b"open", partition=1)
        tp_.flush(OP_TIMEOUT_S)
        txns = vc.get("/transactions")
        assert isinstance(txns, list) and txns, f"GET /transactions with one open: {txns}"
        tx = txns[0]
        has("GET /transactions item", tx, {"transactional_id", "producer_id", "producer_epoch", "state",
                                           "timeout_ms", "partitions"})
        named = []
        for x in tx["partitions"]:
            if isinstance(x, dict):
                named.append((x.get("topic"), x.get("partition")))
            else:  # not the spec's shape: record it, still check the content
                missing.append(f"GET /transactions partitions item is {json.dumps(x)}, "
                               f"spec: {{\"topic\": .., \"partition\": ..}}")
                named.append(tuple(x))
        assert (topic, 1) in named, tx
        lso = {pt["partition"]: pt["last_stable_offset"] for pt in vc.topic(topic)["partitions"]}
        assert lso[1] == 5, f"LSO with an open transaction at offset 5: {lso}"
        tp_.abort_transaction(OP_TIMEOUT_S)
    finally:
        c.close()

    rid = vc.push_errors("Metadata", ["LEADER_NOT_AVAILABLE"], broker=3, client_id="nobody")
    lat = vc.post("/faults/latency", {"ms": 50, "broker": 3, "api": "Fetch"})["id"]
    listed = vc.faults()
    ids = [f.get("id") for f in fault_entries(listed)]
    assert rid in ids and lat in ids, f"GET /faults does not list rules {rid} and {lat}: {listed}"
    timings.append(f"faults: GET /faults shape: {json.dumps(listed)[:300]}")
    out = fault_cli(vc.admin, "list").stdout  # --admin rather than GREGOR_ADMIN
    assert str(rid) in out, f"`gregor fault list` does not show rule {rid}: {out}"
    cli(vc, "clear")
    assert fault_entries(vc.faults()) == [], f"faults after `gregor fault clear`: {vc.faults()}"

    text = vc.get("/metrics", expect_json=False)
    samples = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert samples, f"GET /metrics has no samples: {text[:500]}"
    produce_lines = [ln for ln in samples if '"Produce"' in ln]
    fetch_lines = [ln for ln in samples if '"Fetch"' in ln]
    assert produce_lines and fetch_lines, (
        f"no Produce/Fetch request counters in GET /metrics:\n" + "\n".join(samples[:60])
    )

    def positive(lines):
        return [ln for ln in lines if _value(ln) > 0]

    assert positive(produce_lines), f"Produce samples all zero: {produce_lines[:10]}"
    assert positive(fetch_lines), f"Fetch samples all zero: {fetch_lines[:10]}"
    # the request counters by API (and version), as found in gregor
    assert metric(vc, "gregor_requests_total", api="Produce") > 0
    assert metric(vc, "gregor_requests_total", api="Fetch") > 0
    names = sorted({ln.split("{")[0].split()[0] for ln in produce_lines + fetch_lines})
    timings.append(f"faults: metric names with Produce/Fetch: {names}")
    timings.append("faults: e.g. " + " | ".join(produce_lines[:2] + fetch_lines[:2]))
    assert not missing, "admin API shapes differ from the spec:\n  " + "\n  ".join(missing)


def _value(line: str) -> float:
    """The sample value of one exposition line (`name{labels} value [ts]`)."""
    rest = line.rsplit("}", 1)[1] if "}" in line else line.split(None, 1)[1] if " " in line else ""
    try:
        return float(rest.split()[0])
    except (IndexError, ValueError):
        return 0.0


# --------------------------------------------------------------------------
# the virtual cluster's Kafka behaviour: routing and leader epochs
# --------------------------------------------------------------------------


def _fetch_v12_epoch(corr: int, topic: str, partition: int, offset: int, epoch: int) -> bytes:
    """rawkafka.fetch_v12 with a current_leader_epoch."""
    import struct

    from rawkafka import frame, header_v2, uvarint

    t = topic.encode()
    body = (
        struct.pack(">iiiibii", -1, 0, 0, 1 << 20, 0, 0, -1)
        + uvarint(2) + uvarint(len(t) + 1) + t
        + uvarint(2)
        + struct.pack(">iiqiqi", partition, epoch, offset, -1, -1, 1 << 20)
        + b"\x00" + b"\x00" + uvarint(1) + uvarint(1) + b"\x00"
    )
    return frame(header_v2(1, 12, corr, b"compat-raw") + body)


def _ask(addr: str, request: bytes, parse):
    from rawkafka import read_response

    host, _, port = addr.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        return parse(read_response(s))[1]


def test_virtual_cluster_routing_and_epochs(vc, timings):
    from rawkafka import (
        list_offsets_v4,
        parse_fetch_v12_response,
        parse_list_offsets_v4_response,
        parse_produce_v3_response,
        produce_v3,
        record_batch,
    )

    NOT_LEADER, FENCED, UNKNOWN_EPOCH = 6, 74, 75
    topic = unique_topic("flt-route")
    ck_create_topic(vc.bootstrap, topic, 3)
    leaders = vc.leaders(topic)

    # Metadata (librdkafka's view) agrees with GET /topics and the ready line
    md = AdminClient({"bootstrap.servers": vc.bootstrap}).list_topics(topic, timeout=OP_TIMEOUT_S)
    assert {b.id: f"{b.host}:{b.port}" for b in md.brokers.values()} == vc.brokers
    assert {p: pm.leader for p, pm in md.topics[topic].partitions.items()} == {
        p: l for p, (l, _) in leaders.items()
    }

    for pt, (leader, _) in leaders.items():
        for bid, addr in vc.brokers.items():
            want = 0 if bid == leader else NOT_LEADER
            res = _ask(addr, produce_v3(7, -1, topic, pt, record_batch([b"raw"])), parse_produce_v3_response)
            assert [(r[1], r[2]) for r in res] == [(pt, want)], f"Produce p{pt} to broker {bid} (leader {leader}): {res}"
            res = _ask(addr, list_offsets_v4(8, topic, pt, -1), parse_list_offsets_v4_response)
            assert [(r[1], r[2]) for r in res] == [(pt, want)], f"ListOffsets p{pt} to broker {bid}: {res}"

    # KIP-951: NOT_LEADER_OR_FOLLOWER names the current leader (Produce v10+
    # also its endpoint; Fetch v12 the leader and epoch), encoded and decoded
    # with kafka-python's protocol classes
    from kafka.protocol.consumer import FetchRequest, FetchResponse
    from kafka.protocol.producer import ProduceRequest, ProduceResponse

    pt, (leader, epoch) = 0, leaders[0]
    other = next(b for b in vc.brokers if b != leader)
    R = ProduceRequest[10]
    req = R(transactional_id=None, acks=-1, timeout_ms=5000, topic_data=[R.TopicProduceData(
        name=topic, partition_data=[R.TopicProduceData.PartitionProduceData(index=pt, records=record_batch([b"x"]))])])
    req.with_header(correlation_id=12, client_id="compat-raw")
    resp = _ask(vc.brokers[other], req.encode(header=True, framed=True),
                lambda body: (None, ProduceResponse.decode(body, version=10, header=True).to_dict()))
    pr = resp["responses"][0]["partition_responses"][0]
    assert (pr["error_code"], pr.get("current_leader")) == (NOT_LEADER, {"leader_id": leader, "leader_epoch": epoch}), (
        f"Produce v10 to broker {other}, leader {leader} epoch {epoch}: {resp}"
    )
    eps = {e["node_id"]: f"{e['host']}:{e['port']}" for e in resp.get("node_endpoints", [])}
    assert eps.get(leader) == vc.brokers[leader], f"Produce v10 node_endpoints {eps}, leader {leader}"
    if set(eps) != {leader}:
        timings.append(f"faults: note: Produce v10 node_endpoints lists brokers {sorted(eps)}; "
                       f"Kafka lists only the leaders named in the response ({leader})")
    F = FetchRequest[12]
    req = F(replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=1 << 20, isolation_level=0, session_id=0,
            session_epoch=-1, topics=[F.FetchTopic(topic=topic, partitions=[F.FetchTopic.FetchPartition(
                partition=pt, current_leader_epoch=-1, fetch_offset=0, last_fetched_epoch=-1, log_start_offset=-1,
                partition_max_bytes=1 << 20)])], forgotten_topics_data=[], rack_id="")
    req.with_header(correlation_id=13, client_id="compat-raw")
    resp = _ask(vc.brokers[other], req.encode(header=True, framed=True),
                lambda body: (None, FetchResponse.decode(body, version=12, header=True).to_dict()))
    fp = resp["responses"][0]["partitions"][0]
    assert (fp["error_code"], fp.get("current_leader")) == (NOT_LEADER, {"leader_id": leader, "leader_epoch": epoch}), (
        f"Fetch v12 to broker {other}, leader {leader} epoch {epoch}: {resp}"
    )

    # a leader move bumps the epoch; Fetch checks current_leader_epoch
    old_leader, e = leaders[0]
    new_leader = 2 if old_leader != 2 else 3
    vc.post("/leaders", {"topic": topic, "partition": 0, "leader": new_leader})
    assert vc.leaders(topic)[0] == (new_leader, e + 1), f"after POST /leaders: {vc.leaders(topic)}"
    addr = vc.brokers[new_leader]
    for epoch, want in ((e, FENCED), (e + 2, UNKNOWN_EPOCH), (e + 1, 0), (-1, 0)):
        res = _ask(addr, _fetch_v12_epoch(9, topic, 0, 0, epoch), parse_fetch_v12_response)
        assert [(r[1], r[2]) for r in res] == [(0, want)], (
            f"Fetch p0 with current_leader_epoch {epoch} (leader epoch {e + 1}): {res}"
        )
        if want == 0:
            assert res[0][3] == 1, f"high watermark after one raw produce: {res}"
    res = _ask(vc.brokers[old_leader], _fetch_v12_epoch(10, topic, 0, 0, e + 1), parse_fetch_v12_response)
    assert [(r[1], r[2]) for r in res] == [(0, NOT_LEADER)], f"Fetch from the old leader: {res}"

    # FindCoordinator from any broker names the same coordinator, before and
    # after `gregor fault coordinator --to N`
    coord = vc.cluster()["coordinator"]
    for want in (coord, 3 if coord != 3 else 2):
        if want != coord:
            cli(vc, "coordinator", "--to", str(want))
            assert vc.cluster()["coordinator"] == want
        for bid, addr in vc.brokers.items():
            for key_type in (0, 1):  # group, transactional id
                got = _ask(addr, _find_coordinator_v1(11, "some-group-or-txn", key_type), _parse_find_coordinator_v1)
                assert got == (0, want, vc.brokers[want]), (
                    f"FindCoordinator (key type {key_type}) to broker {bid}: {got}, coordinator {want}"
                )

    # `gregor fault leader --topic --partition --to` as POST /leaders
    l1, e1 = vc.leaders(topic)[1]
    to = 1 if l1 != 1 else 3
    cli(vc, "leader", "--topic", topic, "--partition", "1", "--to", str(to))
    assert vc.leaders(topic)[1] == (to, e1 + 1), f"after `gregor fault leader`: {vc.leaders(topic)}"


def _find_coordinator_v1(corr: int, key: str, key_type: int) -> bytes:
    import struct

    from rawkafka import frame, header_v1

    k = key.encode()
    return frame(header_v1(10, 1, corr, b"compat-raw") + struct.pack(">h", len(k)) + k + struct.pack(">b", key_type))


def _parse_find_coordinator_v1(body: bytes):
    """-> (correlation id, (error_code, node_id, "host:port"))."""
    from rawkafka import Reader

    r = Reader(body)
    corr = r.take("i")
    r.take("i")  # throttle_time_ms
    err = r.take("h")
    r.string()  # error_message (nullable)
    node = r.take("i")
    host = r.string()
    port = r.take("i")
    r.done()
    return corr, (err, node, f"{host}:{port}")


def test_reset_refused_without_dev_or_ephemeral(make_broker):
    """A broker with a data dir and neither --dev nor --ephemeral refuses
    POST /reset (and keeps its topics); its ready line still has brokers=."""
    b = make_broker("--admin-listen", "127.0.0.1:0")
    cl = VirtualCluster(b)
    assert list(cl.brokers) == [1] and cl.brokers[1] == b.bootstrap, f"brokers= of the ready line: {cl.brokers}"
    topic = unique_topic("flt-keep")
    ck_create_topic(cl.bootstrap, topic, 1)
    with pytest.raises(AdminError) as ei:
        cl.post("/reset")
    assert 400 <= ei.value.status < 500 and "error" in json.loads(ei.value.body), str(ei.value)
    assert topic in [t["name"] for t in cl.topics()], "POST /reset was refused but topics went"


def test_admin_api_errors(vc):
    """Bad input: 4xx with {"error": "one line"}; nothing is set."""
    bad = [
        ("POST", "/faults/errors", {"api": "NoSuchApi", "errors": ["NOT_LEADER_OR_FOLLOWER"]}),
        ("POST", "/faults/errors", {"api": "Produce", "errors": ["NO_SUCH_ERROR"]}),
        ("POST", "/faults/errors", {"api": "Produce", "errors": []}),
        ("POST", "/leaders", {"topic": "no-such-topic", "partition": 0, "leader": 2}),
        ("POST", "/brokers/9/down", {}),
        ("POST", "/coordinator", {"broker": 9}),
    ]
    for method, path, body in bad:
        with pytest.raises(AdminError) as ei:
            vc.request(method, path, body)
        e = ei.value
        assert 400 <= e.status < 500, f"{method} {path} {body}: HTTP {e.status} {e.body}"
        try:
            doc = json.loads(e.body)
        except ValueError:
            raise AssertionError(f"{method} {path}: error body is not JSON: {e.body!r}") from None
        assert isinstance(doc, dict) and isinstance(doc.get("error"), str) and "\n" not in doc["error"], (
            f"{method} {path}: error body {e.body!r}"
        )
    assert fault_entries(vc.faults()) == [], f"faults set by refused requests: {vc.faults()}"


def test_replication_factor_and_assignments(vc):
    """A 3-broker virtual cluster takes what a 3-broker Kafka takes: replication
    factor up to 3, replica assignments naming brokers 1-3 (first replica
    leads); more replicas than brokers, or an unknown broker, is refused with
    Kafka's codes. librdkafka's own test suite creates its topics with
    replication factor 3 (its default scenario is a 3-broker cluster)."""
    from confluent_kafka.admin import NewPartitions, NewTopic

    admin = AdminClient({"bootstrap.servers": vc.bootstrap})

    def create(t: NewTopic):
        return admin.create_topics([t], operation_timeout=OP_TIMEOUT_S)[t.topic]

    rf3 = unique_topic("flt-rf3")
    create(NewTopic(rf3, num_partitions=4, replication_factor=3)).result(OP_TIMEOUT_S)
    md = admin.list_topics(rf3, timeout=OP_TIMEOUT_S).topics[rf3]
    assert md.error is None and sorted(md.partitions) == [0, 1, 2, 3]
    for p in md.partitions.values():
        assert sorted(p.replicas) == [1, 2, 3] and sorted(p.isrs) == [1, 2, 3], p

    assigned = unique_topic("flt-assign")
    create(NewTopic(assigned, num_partitions=3, replica_assignment=[[2, 3], [3, 1], [1, 2]])).result(OP_TIMEOUT_S)
    assert {p: l for p, (l, _) in vc.leaders(assigned).items()} == {0: 2, 1: 3, 2: 1}
    md = admin.list_topics(assigned, timeout=OP_TIMEOUT_S).topics[assigned]
    assert {p: m.leader for p, m in md.partitions.items()} == {0: 2, 1: 3, 2: 1}
    # ... and leads at epoch 0: the placement is the partition's first leader
    assert all(e == 0 for _, e in vc.leaders(assigned).values())

    admin.create_partitions(
        [NewPartitions(assigned, 5, replica_assignment=[[3, 2], [2, 1]])],
        operation_timeout=OP_TIMEOUT_S,
    )[assigned].result(OP_TIMEOUT_S)
    wait_for(lambda: len(vc.leaders(assigned)) == 5, OP_TIMEOUT_S, "5 partitions in GET /topics")
    assert vc.leaders(assigned)[3][0] == 3 and vc.leaders(assigned)[4][0] == 2

    # Records go to the placed leaders and come back
    p = producer(vc)
    for part in range(5):
        err, _, _ = deliver(p, assigned, f"v{part}".encode(), partition=part)
        assert err is None, err
    assert [v for _, _, v in values_of(vc, assigned, 5)] == [f"v{i}".encode() for i in range(5)]

    refused = {
        "rf4": (NewTopic(unique_topic("flt-rf4"), num_partitions=1, replication_factor=4),
                KafkaError.INVALID_REPLICATION_FACTOR),
        "broker4": (NewTopic(unique_topic("flt-b4"), num_partitions=1, replica_assignment=[[1, 4]]),
                    KafkaError.INVALID_REPLICA_ASSIGNMENT),
        "twice": (NewTopic(unique_topic("flt-twice"), num_partitions=1, replica_assignment=[[2, 2]]),
                  KafkaError.INVALID_REPLICA_ASSIGNMENT),
        "uneven": (NewTopic(unique_topic("flt-uneven"), num_partitions=2, replica_assignment=[[1, 2], [3]]),
                   KafkaError.INVALID_REPLICA_ASSIGNMENT),
    }
    for what, (t, code) in refused.items():
        with pytest.raises(KafkaException) as e:
            create(t).result(OP_TIMEOUT_S)
        assert e.value.args[0].code() == code, (what, e.value.args[0])
    assert not any(t["name"].startswith(("flt-rf4", "flt-b4", "flt-twice", "flt-uneven"))
                   for t in vc.topics())
