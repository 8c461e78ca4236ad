"""Transactions and exactly-once with confluent-kafka (librdkafka) against
gregor, checked against what Apache Kafka 4.3.1 does.

* `test_commit_abort_interleaved`: a transactional producer commits and
  aborts transactions in turn over 3 partitions; a read_committed consumer
  sees exactly the committed values, in order, at the offsets Kafka gives
  them (every transaction leaves one control record per partition); a
  read_uncommitted one sees every value. With a transaction left open, the
  read_committed end (LSO) stops before it while the high watermark does not:
  get_watermark_offsets of a read_committed / read_uncommitted consumer and
  AdminClient.list_offsets with either isolation level.
* `test_consume_transform_produce`: a consume-transform-produce loop in a
  consumer group (read_committed, no auto-commit) commits its input offsets
  with send_offsets_to_transaction; one transaction in the middle is aborted
  and the consumer rewound to the committed offsets; the output holds every
  input exactly once, and the group's committed offsets are the input's end
  offsets.
* `test_fencing`: a second producer with the same transactional.id fences
  the first, whose open transaction is aborted: its next commit fails with a
  fatal PRODUCER_FENCED-kind error, and read_committed never sees its records.
* `test_transaction_timeout`: transaction.timeout.ms=3000: the coordinator
  aborts the open transaction by itself (the LSO moves past it), the
  producer's commit then fails, and read_committed never sees the records.
* `test_read_committed_blocks_at_open_transaction`: an open transaction
  holds back a read_committed consumer at the LSO, even from records that
  were written after it without a transaction; the commit releases them.

Targets: a fresh gregor per test (`-o group.initial.rebalance.delay.ms=0`);
with GREGOR_REFERENCE=1 also the reference Apache Kafka (compat-tests/reference,
one per session); with COMPAT_EXTERNAL_BOOTSTRAP=host:port that broker instead
of gregor. The clients' librdkafka logs (debug=eos,protocol for the
transactional producers) are printed when a test fails.
"""

from __future__ import annotations

import logging
import os
import time
import uuid

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from compat import ck_create_topic, unique_topic
from conftest import ExternalBroker

REFERENCE = os.environ.get("GREGOR_REFERENCE", "") not in ("", "0")
TARGETS = ["gregor", "reference"] if REFERENCE else ["gregor"]
# The first InitProducerId on a fresh Kafka creates __transaction_state (50
# partitions) and the first group operation __consumer_offsets: seconds each.
INIT_TIMEOUT_S = 60
OP_TIMEOUT_S = 30
READ_TIMEOUT_S = 30
LOG_TAIL_LINES = 400


# --------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------


@pytest.fixture(params=TARGETS)
def bootstrap(request, make_broker) -> str:
    if request.param == "reference":
        return request.getfixturevalue("reference_bootstrap")
    external = os.environ.get("COMPAT_EXTERNAL_BOOTSTRAP")
    if external:
        return ExternalBroker(external).bootstrap
    return make_broker("-o", "group.initial.rebalance.delay.ms=0").bootstrap


class ClientLogs:
    """librdkafka log lines of every client of a test, by client name;
    printed at teardown (pytest shows it only for a failing test)."""

    def __init__(self):
        self.lines: list[str] = []
        # librdkafka hands log lines over on poll(): producers are polled
        # once more before the dump
        self.producers: list[Producer] = []

    def logger(self, name: str) -> logging.Logger:
        lines = self.lines

        class Sink(logging.Handler):
            def emit(self, record):
                lines.append(f"[{name}] {record.getMessage()}")

        lg = logging.getLogger(f"rdkafka-{name}-{uuid.uuid4().hex}")
        lg.propagate = False
        lg.setLevel(logging.DEBUG)
        lg.addHandler(Sink())
        return lg

    def dump(self) -> str:
        for p in self.producers:
            try:
                p.poll(0)
            except Exception:  # noqa: BLE001 - a fenced producer may raise; the log is what matters
                pass
        tail = self.lines[-LOG_TAIL_LINES:]
        cut = len(self.lines) - len(tail)
        return (f"[... {cut} earlier lines cut ...]\n" if cut else "") + "\n".join(tail)


@pytest.fixture
def logs():
    cl = ClientLogs()
    yield cl
    print("----- client logs -----")
    print(cl.dump())


class TxnProducer:
    """A transactional confluent-kafka producer that records its delivery
    reports and error callbacks."""

    def __init__(self, bootstrap: str, txn_id: str, logs: ClientLogs, name: str, **conf):
        cfg = {
            "bootstrap.servers": bootstrap,
            "transactional.id": txn_id,
            "linger.ms": 5,
            "debug": "eos,protocol",
            "error_cb": self._on_error,
        }
        cfg.update(conf)
        self.name = name
        self.errors: list[KafkaError] = []
        self.delivered: list[tuple[int, int, bytes]] = []  # (partition, offset, value)
        self.failed: list[str] = []
        self.p = Producer(cfg, logger=logs.logger(name))
        logs.producers.append(self.p)

    def _on_error(self, err):
        self.errors.append(err)

    def _on_delivery(self, err, msg):
        if err is not None:
            self.failed.append(f"{msg.topic()}[{msg.partition()}] {msg.value()!r}: {err}")
        else:
            self.delivered.append((msg.partition(), msg.offset(), msg.value()))

    def produce(self, topic: str, partition: int, value: bytes) -> None:
        self.p.produce(topic, value=value, partition=partition, on_delivery=self._on_delivery)
        self.p.poll(0)

    def flush(self) -> None:
        left = self.p.flush(OP_TIMEOUT_S)
        assert left == 0, f"{self.name}: {left} records undelivered after {OP_TIMEOUT_S}s flush; failures {self.failed[:5]}"
        assert not self.failed, f"{self.name}: delivery failures {self.failed[:5]}"

    def __getattr__(self, attr):
        return getattr(self.p, attr)


def consumer(bootstrap: str, logs: ClientLogs, name: str, isolation: str, **conf) -> Consumer:
    cfg = {
        "bootstrap.servers": bootstrap,
        "group.id": f"txn-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
        "isolation.level": isolation,
    }
    cfg.update(conf)
    return Consumer(cfg, logger=logs.logger(name))


def read_to_end(c: Consumer, topic: str, partitions: int, what: str) -> dict[int, list[tuple[int, bytes]]]:
    """Assigns every partition from the beginning and reads until each has
    reported EOF (the high watermark for read_uncommitted, the LSO for
    read_committed). Returns partition -> [(offset, value)]."""
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    got: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}
    eof: set[int] = set()
    deadline = time.monotonic() + READ_TIMEOUT_S
    while len(eof) < partitions:
        assert time.monotonic() < deadline, (
            f"{what}: no EOF on every partition within {READ_TIMEOUT_S}s: EOF on {sorted(eof)}, "
            f"read {({p: len(v) for p, v in got.items()})}"
        )
        for m in c.consume(num_messages=500, timeout=0.5):
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                raise AssertionError(f"{what}: consumer error on {topic}[{m.partition()}]: {err}")
            eof.discard(m.partition())
            got[m.partition()].append((m.offset(), m.value()))
    return got


def watermarks(c: Consumer, topic: str, partitions: int) -> dict[int, tuple[int, int]]:
    return {
        p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=OP_TIMEOUT_S, cached=False)
        for p in range(partitions)
    }


def list_latest(admin: AdminClient, topic: str, partitions: int, isolation) -> dict[int, int]:
    futs = admin.list_offsets(
        {TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)},
        isolation_level=isolation,
        request_timeout=OP_TIMEOUT_S,
    )
    return {tp.partition: f.result(timeout=OP_TIMEOUT_S).offset for tp, f in futs.items()}


def kind(e: KafkaException) -> dict:
    """What a test asserts about a transactional API error."""
    err = e.args[0]
    return {
        "code": err.name(),
        "fatal": err.fatal(),
        "retriable": err.retriable(),
        "txn_requires_abort": err.txn_requires_abort(),
    }


# --------------------------------------------------------------------------
# 1. commit and abort, interleaved; isolation levels
# --------------------------------------------------------------------------

PARTS = 3
PER_PART = 5
# one control record per partition closes each transaction
TXN_SPAN = PER_PART + 1


def test_commit_abort_interleaved(bootstrap, logs):
    topic = unique_topic("txn-ca")
    ck_create_topic(bootstrap, topic, PARTS)
    p = TxnProducer(bootstrap, f"txn-ca-{uuid.uuid4().hex[:8]}", logs, "producer")
    p.init_transactions(INIT_TIMEOUT_S)

    outcomes = ["commit", "abort", "commit", "commit", "abort", "abort", "commit"]
    committed = {q: [] for q in range(PARTS)}  # partition -> [(offset, value)]
    everything = {q: [] for q in range(PARTS)}
    for t, outcome in enumerate(outcomes):
        p.begin_transaction()
        for i in range(PER_PART):
            for q in range(PARTS):
                v = f"t{t}-{outcome}-p{q}-{i}".encode()
                p.produce(topic, q, v)
                off = t * TXN_SPAN + i
                everything[q].append((off, v))
                if outcome == "commit":
                    committed[q].append((off, v))
        if outcome == "commit":
            p.commit_transaction(OP_TIMEOUT_S)
        else:
            p.flush()  # the records reach the log before the abort
            p.abort_transaction(OP_TIMEOUT_S)
    assert not p.failed, f"delivery failures: {p.failed[:5]}"
    # every record's reported offset is the one Kafka's layout gives it
    want_delivered = sorted((q, o, v) for q in range(PARTS) for o, v in everything[q])
    assert sorted(p.delivered) == want_delivered, (
        f"delivery reports {sorted(p.delivered)[:8]}..., expected {want_delivered[:8]}..."
    )

    end = len(outcomes) * TXN_SPAN
    rc = consumer(bootstrap, logs, "read_committed", "read_committed")
    ru = consumer(bootstrap, logs, "read_uncommitted", "read_uncommitted")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        got_rc = read_to_end(rc, topic, PARTS, "read_committed")
        assert got_rc == committed, f"read_committed saw {got_rc}, expected exactly the committed {committed}"
        got_ru = read_to_end(ru, topic, PARTS, "read_uncommitted")
        assert got_ru == everything, f"read_uncommitted saw {got_ru}, expected every record {everything}"

        # all transactions are closed: LSO = high watermark
        closed = {q: (0, end) for q in range(PARTS)}
        assert watermarks(rc, topic, PARTS) == closed, "read_committed watermarks, no open transaction"
        assert watermarks(ru, topic, PARTS) == closed, "read_uncommitted watermarks, no open transaction"
        for iso in (IsolationLevel.READ_COMMITTED, IsolationLevel.READ_UNCOMMITTED):
            got = list_latest(admin, topic, PARTS, iso)
            assert got == {q: end for q in range(PARTS)}, f"list_offsets latest {iso}: {got}, expected {end}"

        # leave one open: the LSO stays at its first offset, the high watermark moves
        p.begin_transaction()
        open_vals = {q: [] for q in range(PARTS)}
        for i in range(PER_PART):
            for q in range(PARTS):
                v = f"open-p{q}-{i}".encode()
                p.produce(topic, q, v)
                open_vals[q].append((end + i, v))
        p.flush()
        hw = end + PER_PART
        wm_rc = watermarks(rc, topic, PARTS)
        wm_ru = watermarks(ru, topic, PARTS)
        assert wm_rc == {q: (0, end) for q in range(PARTS)}, (
            f"read_committed watermarks with a transaction open: {wm_rc}, expected high = LSO = {end}"
        )
        assert wm_ru == {q: (0, hw) for q in range(PARTS)}, (
            f"read_uncommitted watermarks with a transaction open: {wm_ru}, expected high = {hw}"
        )
        lso = list_latest(admin, topic, PARTS, IsolationLevel.READ_COMMITTED)
        assert lso == {q: end for q in range(PARTS)}, f"list_offsets read_committed with an open transaction: {lso}, expected {end}"
        hws = list_latest(admin, topic, PARTS, IsolationLevel.READ_UNCOMMITTED)
        assert hws == {q: hw for q in range(PARTS)}, f"list_offsets read_uncommitted with an open transaction: {hws}, expected {hw}"

        # fresh consumers: read_committed stops at the LSO, read_uncommitted reads the open records
        rc2 = consumer(bootstrap, logs, "read_committed#2", "read_committed")
        ru2 = consumer(bootstrap, logs, "read_uncommitted#2", "read_uncommitted")
        try:
            got = read_to_end(rc2, topic, PARTS, "read_committed, a transaction open")
            assert got == committed, f"read_committed with a transaction open saw {got}, expected {committed}"
            got = read_to_end(ru2, topic, PARTS, "read_uncommitted, a transaction open")
            want = {q: everything[q] + open_vals[q] for q in range(PARTS)}
            assert got == want, f"read_uncommitted with a transaction open saw {got}, expected {want}"
        finally:
            rc2.close()
            ru2.close()

        p.abort_transaction(OP_TIMEOUT_S)
        final = {q: (0, hw + 1) for q in range(PARTS)}
        assert watermarks(rc, topic, PARTS) == final, "read_committed watermarks after the last abort"
        assert watermarks(ru, topic, PARTS) == final, "read_uncommitted watermarks after the last abort"
        for iso in (IsolationLevel.READ_COMMITTED, IsolationLevel.READ_UNCOMMITTED):
            got = list_latest(admin, topic, PARTS, iso)
            assert got == {q: hw + 1 for q in range(PARTS)}, f"list_offsets latest {iso} after the last abort: {got}"
    finally:
        rc.close()
        ru.close()
    assert not [e for e in p.errors if e.fatal()], f"producer errors: {p.errors}"


# --------------------------------------------------------------------------
# 2. consume-transform-produce with send_offsets_to_transaction
# --------------------------------------------------------------------------


def test_consume_transform_produce(bootstrap, logs):
    src = unique_topic("txn-in")
    dst = unique_topic("txn-out")
    ck_create_topic(bootstrap, src, PARTS)
    ck_create_topic(bootstrap, dst, PARTS)
    n_per_part = 20
    # the input, written without a transaction
    feeder = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    inputs = {q: [f"in-p{q}-{i}".encode() for i in range(n_per_part)] for q in range(PARTS)}
    for i in range(n_per_part):
        for q in range(PARTS):
            feeder.produce(src, value=inputs[q][i], partition=q)
    assert feeder.flush(OP_TIMEOUT_S) == 0, "input records undelivered"

    group = f"txn-ctp-{uuid.uuid4().hex[:8]}"
    c = consumer(bootstrap, logs, "ctp-consumer", "read_committed", **{"group.id": group, "enable.partition.eof": False})
    p = TxnProducer(bootstrap, f"txn-ctp-{uuid.uuid4().hex[:8]}", logs, "ctp-producer")
    p.init_transactions(INIT_TIMEOUT_S)
    assigned: list = []
    c.subscribe([src], on_assign=lambda _c, parts: assigned.extend(parts))

    def transform(v: bytes) -> bytes:
        return b"out:" + v

    total = PARTS * n_per_part
    done: dict[int, int] = {q: 0 for q in range(PARTS)}  # committed input position per partition
    aborted_out: dict[int, list[bytes]] = {q: [] for q in range(PARTS)}
    txns = 0
    aborted = False
    deadline = time.monotonic() + 90
    try:
        while sum(done.values()) < total:
            assert time.monotonic() < deadline, (
                f"consume-transform-produce did not finish within 90s: committed positions {done}, "
                f"assigned {assigned}"
            )
            msgs = c.consume(num_messages=7, timeout=0.5)
            if not msgs:
                continue
            for m in msgs:
                assert m.error() is None, f"consumer error: {m.error()}"
            p.begin_transaction()
            next_pos: dict[int, int] = {}
            for m in msgs:
                assert m.topic() == src
                p.produce(dst, m.partition(), transform(m.value()))
                next_pos[m.partition()] = m.offset() + 1
            offsets = [TopicPartition(src, q, o) for q, o in sorted(next_pos.items())]
            p.send_offsets_to_transaction(offsets, c.consumer_group_metadata(), OP_TIMEOUT_S)
            txns += 1
            if txns == 3 and not aborted:
                # one transaction fails midway: abort it and rewind the
                # consumer to the group's committed offsets
                aborted = True
                p.flush()
                for m in msgs:
                    aborted_out[m.partition()].append(transform(m.value()))
                p.abort_transaction(OP_TIMEOUT_S)
                committed = c.committed([TopicPartition(src, q) for q in range(PARTS)], timeout=OP_TIMEOUT_S)
                for tp in committed:
                    assert tp.error is None, f"committed() for {tp}: {tp.error}"
                    off = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
                    want = done[tp.partition] if done[tp.partition] > 0 else OFFSET_BEGINNING
                    assert off == want, (
                        f"after the abort the group's committed offset of {src}[{tp.partition}] is "
                        f"{tp.offset}, expected {done[tp.partition] or 'none'} (the aborted offsets must not count)"
                    )
                    c.seek(TopicPartition(src, tp.partition, off))
                continue
            p.commit_transaction(OP_TIMEOUT_S)
            done.update(next_pos)
        assert aborted and txns >= 4, f"only {txns} transactions: the abort in the middle did not happen"

        committed = c.committed([TopicPartition(src, q) for q in range(PARTS)], timeout=OP_TIMEOUT_S)
        got = {tp.partition: tp.offset for tp in committed}
        assert got == {q: n_per_part for q in range(PARTS)}, f"consumer.committed(): {got}, expected {n_per_part} each"
    finally:
        c.close()

    admin = AdminClient({"bootstrap.servers": bootstrap})
    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=OP_TIMEOUT_S)
    listed = res[group].result(timeout=OP_TIMEOUT_S)
    got = {tp.partition: tp.offset for tp in listed.topic_partitions if tp.topic == src}
    assert got == {q: n_per_part for q in range(PARTS)}, (
        f"list_consumer_group_offsets({group}): {got}, expected the input end offsets {n_per_part}"
    )

    rc = consumer(bootstrap, logs, "out-read_committed", "read_committed")
    ru = consumer(bootstrap, logs, "out-read_uncommitted", "read_uncommitted")
    try:
        out = read_to_end(rc, dst, PARTS, "output, read_committed")
        vals = {q: [v for _, v in out[q]] for q in range(PARTS)}
        want = {q: [transform(v) for v in inputs[q]] for q in range(PARTS)}
        assert vals == want, f"read_committed output {vals}, expected each input once, in order: {want}"
        all_out = read_to_end(ru, dst, PARTS, "output, read_uncommitted")
        for q in range(PARTS):
            got_all = sorted(v for _, v in all_out[q])
            want_all = sorted(want[q] + aborted_out[q])
            assert got_all == want_all, (
                f"read_uncommitted output of partition {q}: {got_all}, expected the committed "
                f"and the aborted records {want_all}"
            )
        assert sum(map(len, aborted_out.values())) > 0
    finally:
        rc.close()
        ru.close()
    assert not [e for e in p.errors if e.fatal()], f"producer errors: {p.errors}"


# --------------------------------------------------------------------------
# 3. fencing
# --------------------------------------------------------------------------


def test_fencing(bootstrap, logs):
    topic = unique_topic("txn-fence")
    ck_create_topic(bootstrap, topic, 1)
    txn_id = f"txn-fence-{uuid.uuid4().hex[:8]}"
    p1 = TxnProducer(bootstrap, txn_id, logs, "first")
    p1.init_transactions(INIT_TIMEOUT_S)
    p1.begin_transaction()
    for i in range(3):
        p1.produce(topic, 0, f"zombie-{i}".encode())
    p1.flush()

    # the second producer's InitProducerId aborts the first one's open
    # transaction and bumps the epoch
    p2 = TxnProducer(bootstrap, txn_id, logs, "second")
    p2.init_transactions(INIT_TIMEOUT_S)

    with pytest.raises(KafkaException) as ei:
        p1.commit_transaction(OP_TIMEOUT_S)
    got = kind(ei.value)
    # what Kafka 4.3.1 answers librdkafka 2.16 (the EndTxn of the old epoch)
    assert got == {"code": "_FENCED", "fatal": True, "retriable": False, "txn_requires_abort": False}, (
        f"the fenced producer's commit failed with {got} ({ei.value}), expected a fatal _FENCED"
    )
    # a fenced producer stays fenced
    with pytest.raises(KafkaException) as ei2:
        p1.begin_transaction()
    assert ei2.value.args[0].fatal(), f"begin_transaction after fencing: {ei2.value}, expected a fatal error"

    p2.begin_transaction()
    for i in range(2):
        p2.produce(topic, 0, f"live-{i}".encode())
    p2.commit_transaction(OP_TIMEOUT_S)

    rc = consumer(bootstrap, logs, "read_committed", "read_committed")
    ru = consumer(bootstrap, logs, "read_uncommitted", "read_uncommitted")
    try:
        got_rc = [v for _, v in read_to_end(rc, topic, 1, "read_committed")[0]]
        assert got_rc == [b"live-0", b"live-1"], f"read_committed saw {got_rc}, expected only the second producer's records"
        got_ru = [v for _, v in read_to_end(ru, topic, 1, "read_uncommitted")[0]]
        assert got_ru == [b"zombie-0", b"zombie-1", b"zombie-2", b"live-0", b"live-1"], f"read_uncommitted saw {got_ru}"
    finally:
        rc.close()
        ru.close()
    assert not [e for e in p2.errors if e.fatal()], f"second producer errors: {p2.errors}"


# --------------------------------------------------------------------------
# 4. transaction timeout
# --------------------------------------------------------------------------

TXN_TIMEOUT_MS = 3000
TIMEOUT_WAIT_S = 30
# What Kafka 4.3.1 answers librdkafka 2.16: the coordinator's timeout abort
# bumps the producer epoch, so the EndTxn of the old epoch is fenced.
EXPECT_TIMEOUT_COMMIT = {"code": "_FENCED", "fatal": True, "retriable": False, "txn_requires_abort": False}


def test_transaction_timeout(bootstrap, logs):
    topic = unique_topic("txn-timeout")
    ck_create_topic(bootstrap, topic, 1)
    p = TxnProducer(
        bootstrap, f"txn-to-{uuid.uuid4().hex[:8]}", logs, "producer", **{"transaction.timeout.ms": TXN_TIMEOUT_MS}
    )
    p.init_transactions(INIT_TIMEOUT_S)
    # before the transaction starts on the broker: the abort cannot come
    # sooner than transaction.timeout.ms after this
    t0 = time.monotonic()
    p.begin_transaction()
    vals = [f"late-{i}".encode() for i in range(3)]
    for v in vals:
        p.produce(topic, 0, v)
    p.flush()

    admin = AdminClient({"bootstrap.servers": bootstrap})
    rc = consumer(bootstrap, logs, "read_committed", "read_committed", **{"enable.partition.eof": False})
    try:
        rc.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        # Event, not sleep: poll the consumer and the producer until the
        # coordinator's abort marker lets the LSO reach the high watermark.
        while True:
            lso = list_latest(admin, topic, 1, IsolationLevel.READ_COMMITTED)[0]
            hw = list_latest(admin, topic, 1, IsolationLevel.READ_UNCOMMITTED)[0]
            if lso == hw:
                break
            assert lso == 0 and hw == len(vals), f"open transaction: LSO {lso}, high watermark {hw}"
            waited = time.monotonic() - t0
            assert waited < TIMEOUT_WAIT_S, (
                f"the broker did not abort the transaction within {TIMEOUT_WAIT_S}s of its start "
                f"(transaction.timeout.ms={TXN_TIMEOUT_MS}): LSO {lso}, high watermark {hw}"
            )
            m = rc.poll(0.25)
            assert m is None or m.error() is not None, f"read_committed saw {m.value()!r} from the open transaction"
            p.poll(0.25)
        waited = time.monotonic() - t0
        assert waited * 1000 >= TXN_TIMEOUT_MS, f"the transaction was aborted {waited:.2f}s after it began, before its timeout"
        # one abort marker after the three records
        assert (lso, hw) == (len(vals) + 1, len(vals) + 1), f"after the broker's abort: LSO {lso}, high watermark {hw}"
        print(f"transaction aborted by the broker {waited:.1f}s after it began")

        with pytest.raises(KafkaException) as ei:
            p.commit_transaction(OP_TIMEOUT_S)
        got = kind(ei.value)
        print(f"commit after the broker's abort: {got} {ei.value}")
        assert got == EXPECT_TIMEOUT_COMMIT, (
            f"commit after the broker's abort failed with {got} ({ei.value}), expected {EXPECT_TIMEOUT_COMMIT}"
        )
        # nothing of the timed-out transaction ever becomes visible
        m = rc.poll(1.0)
        assert m is None or m.error() is not None, f"read_committed saw {m.value()!r} from the aborted transaction"
        rc2 = consumer(bootstrap, logs, "read_committed#2", "read_committed")
        try:
            got_rc = read_to_end(rc2, topic, 1, "read_committed after the timeout")
            assert got_rc == {0: []}, f"read_committed saw {got_rc}, expected nothing"
        finally:
            rc2.close()
    finally:
        rc.close()


# --------------------------------------------------------------------------
# 5. read_committed blocks at an open transaction
# --------------------------------------------------------------------------


def test_read_committed_blocks_at_open_transaction(bootstrap, logs):
    topic = unique_topic("txn-lso")
    ck_create_topic(bootstrap, topic, 1)
    p = TxnProducer(bootstrap, f"txn-lso-{uuid.uuid4().hex[:8]}", logs, "producer")
    p.init_transactions(INIT_TIMEOUT_S)
    p.begin_transaction()
    txn_vals = [f"txn-{i}".encode() for i in range(3)]
    for v in txn_vals:
        p.produce(topic, 0, v)
    p.flush()
    # records written after the open transaction without one: stable
    # themselves, but behind the LSO
    plain = Producer({"bootstrap.servers": bootstrap, "acks": "all"}, logger=logs.logger("plain"))
    plain_vals = [f"plain-{i}".encode() for i in range(3)]
    for v in plain_vals:
        plain.produce(topic, value=v, partition=0)
    assert plain.flush(OP_TIMEOUT_S) == 0, "plain records undelivered"

    rc = consumer(bootstrap, logs, "read_committed", "read_committed")
    ru = consumer(bootstrap, logs, "read_uncommitted", "read_uncommitted")
    try:
        got = read_to_end(rc, topic, 1, "read_committed, transaction open")
        assert got == {0: []}, f"read_committed saw {got} past the LSO of the open transaction"
        assert watermarks(rc, topic, 1) == {0: (0, 0)}, "read_committed watermarks: high must be the LSO, 0"
        got = read_to_end(ru, topic, 1, "read_uncommitted, transaction open")
        want_all = list(enumerate(txn_vals + plain_vals))
        assert got == {0: want_all}, f"read_uncommitted saw {got}, expected {want_all}"

        p.commit_transaction(OP_TIMEOUT_S)
        # the same consumer, still assigned, now gets everything up to the marker
        seen: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while len(seen) < len(want_all):
            assert time.monotonic() < deadline, (
                f"read_committed got {seen} within {READ_TIMEOUT_S}s of the commit, expected {want_all}"
            )
            m = rc.poll(0.5)
            if m is None:
                continue
            if m.error() is not None:
                assert m.error().code() == KafkaError._PARTITION_EOF, f"consumer error: {m.error()}"
                continue
            seen.append((m.offset(), m.value()))
        assert seen == want_all, f"read_committed after the commit saw {seen}, expected {want_all}"
        # the commit marker is the last offset
        assert watermarks(rc, topic, 1) == {0: (0, len(want_all) + 1)}, "read_committed watermarks after the commit"
    finally:
        rc.close()
        ru.close()
