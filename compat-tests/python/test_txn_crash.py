"""Transactions across a crash, with confluent-kafka (librdkafka).

The broker dies like a kill -9 at each step of an EndTxn (the test hook
`gregor.test.txn.crash.at`: after PrepareCommit/PrepareAbort is durable,
after the first marker, after every marker, after the completion) and in
the middle of an open transaction (a real SIGKILL). After the restart,
as in Kafka, a transaction whose Prepare state was durable is completed
the way it was decided, an open one is aborted when the producer's next
incarnation calls init_transactions, and read_committed consumers see all
of a transaction or none of it, never aborted data, and no partition is
left with an open transaction holding its last stable offset.
"""

from __future__ import annotations

import os
import time

import pytest
from confluent_kafka import Consumer, IsolationLevel, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("COMPAT_EXTERNAL_BOOTSTRAP")),
    reason="kills and restarts the broker process",
)

TOPIC = "txcrash"
PARTITIONS = 3
TXN_ID = "crash-txn"


def create_topic(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])[TOPIC].result(30)


def producer(bootstrap: str) -> Producer:
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": TXN_ID,
            "transaction.timeout.ms": 60000,
            "message.timeout.ms": 10000,
            "reconnect.backoff.max.ms": 200,
        }
    )
    p.init_transactions(30)
    return p


def write(p: Producer, label: str) -> list[str]:
    values = [f"{label}-{i}" for i in range(6)]
    for i, v in enumerate(values):
        p.produce(TOPIC, value=v.encode(), partition=i % PARTITIONS)
    assert p.flush(10) == 0, "records not acknowledged"
    return values


def offsets(bootstrap: str, isolation: IsolationLevel) -> dict[int, int]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    req = {TopicPartition(TOPIC, i): OffsetSpec.latest() for i in range(PARTITIONS)}
    res = admin.list_offsets(req, isolation_level=isolation)
    return {tp.partition: f.result(30).offset for tp, f in res.items()}


def read(bootstrap: str, isolation: str) -> list[str]:
    """Every record this isolation level may read, up to its end offsets."""
    level = (
        IsolationLevel.READ_COMMITTED if isolation == "read_committed"
        else IsolationLevel.READ_UNCOMMITTED
    )
    end = offsets(bootstrap, level)
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{isolation}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        c.assign([TopicPartition(TOPIC, i, 0) for i in range(PARTITIONS)])
        done = {p for p, o in end.items() if o == 0}
        got: list[str] = []
        deadline = time.monotonic() + 30
        while len(done) < PARTITIONS:
            assert time.monotonic() < deadline, f"{isolation}: no end reached, got {got}"
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                # EOF: the consumer is at the end this isolation level allows.
                if m.error().code() == -191 and m.offset() >= end[m.partition()]:
                    done.add(m.partition())
                continue
            got.append(m.value().decode())
        return got
    finally:
        c.close()


def settled(bootstrap: str) -> None:
    """No transaction holds any partition's last stable offset."""
    committed = offsets(bootstrap, IsolationLevel.READ_COMMITTED)
    uncommitted = offsets(bootstrap, IsolationLevel.READ_UNCOMMITTED)
    assert committed == uncommitted, f"LSO {committed} != high watermark {uncommitted}"


def wait_dead(broker, timeout: float = 30.0) -> None:
    broker.proc.wait(timeout)
    assert not broker.alive()


@pytest.mark.parametrize("step", ["prepared", "first-marker", "marked", "completed"])
@pytest.mark.parametrize("commit", [True, False], ids=["commit", "abort"])
def test_crash_at_each_step_of_an_end(make_broker, step, commit):
    hook = ("-o", f"gregor.test.txn.crash.at={step}")
    broker = make_broker(*hook)
    create_topic(broker.bootstrap)
    p = producer(broker.bootstrap)
    p.begin_transaction()
    values = write(p, "t1")
    try:
        if commit:
            p.commit_transaction(2)
        else:
            p.abort_transaction(2)
    except KafkaException:
        pass  # the broker died before answering
    wait_dead(broker)
    assert "gregor.test.txn.crash.at: aborting the process" in broker.log
    del p
    # The same data dir and port, without the hook.
    broker.extra_args = [a for a in broker.extra_args if a not in hook]
    broker.start()
    # The decision was durable before the crash: the restart carries it
    # out, before any client asks.
    p = producer(broker.bootstrap)
    p.begin_transaction()
    after = write(p, "t2")
    p.commit_transaction(30)
    want = (values if commit else []) + after
    assert sorted(read(broker.bootstrap, "read_committed")) == sorted(want)
    assert sorted(read(broker.bootstrap, "read_uncommitted")) == sorted(values + after)
    settled(broker.bootstrap)


def test_kill9_with_a_transaction_open(make_broker):
    broker = make_broker()
    create_topic(broker.bootstrap)
    p = producer(broker.bootstrap)
    p.begin_transaction()
    first = write(p, "t1")
    p.commit_transaction(30)
    p.begin_transaction()
    open_values = write(p, "t2")  # acknowledged with acks=all, never committed
    broker.kill9()
    del p
    broker.start()
    # The open transaction still holds the LSO after the restart...
    lso = offsets(broker.bootstrap, IsolationLevel.READ_COMMITTED)
    hw = offsets(broker.bootstrap, IsolationLevel.READ_UNCOMMITTED)
    assert sum(lso.values()) < sum(hw.values()), (lso, hw)
    assert sorted(read(broker.bootstrap, "read_committed")) == sorted(first)
    # ...until the producer's next incarnation fences it, which aborts it.
    p = producer(broker.bootstrap)
    settled(broker.bootstrap)
    p.begin_transaction()
    last = write(p, "t3")
    p.commit_transaction(30)
    assert sorted(read(broker.bootstrap, "read_committed")) == sorted(first + last)
    assert sorted(read(broker.bootstrap, "read_uncommitted")) == sorted(first + open_values + last)
    settled(broker.bootstrap)
