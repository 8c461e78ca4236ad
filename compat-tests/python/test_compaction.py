"""Log compaction seen through stock clients.

A topic with cleanup.policy=compact, segment.ms=100 (so the active segment
rolls and becomes cleanable; Kafka 4.x refuses a segment.bytes below 1 MiB,
so time rolls it), min.cleanable.dirty.ratio=0.01, min.compaction.lag.ms=0
and delete.retention.ms=3000 gets many versions of a key set plus
tombstones. The test then appends a "tick" record (its own key) every
200 ms, as any live topic gets traffic: each tick rolls the active segment
(segment.ms has passed), so what came before it becomes cleanable, and keeps
the log dirty so the cleaner passes again once the tombstones' delete
horizon is over. It waits (bounded) until a consumer from the beginning
sees exactly the latest value of every live key and nothing of the deleted
keys, and checks on every read on the way that:

* offsets only increase (gaps are where records were removed);
* every record read is one that was written at that offset, and each key's
  versions come in the order written;
* a tombstone is gone only once delete.retention.ms has passed since it
  was written;
* ListOffsets: earliest stays 0 (compaction does not move the log start),
  latest is the number of records written.

With gregor, the librdkafka cases also check that the partition's segment
files shrink to less than half. Cases: librdkafka without compression, with
lz4 and with zstd batches; the
Java producer (compat-tests/java/admin.sh compaction, gregor.compat.
Compaction10) with lz4, its consumer reading the compacted log; a topic
switched from delete to compact at runtime with IncrementalAlterConfigs;
a record without a key refused with INVALID_RECORD.

The broker's log.cleaner.backoff.ms is set to 200 (Kafka's default is
15 s): `-o log.cleaner.backoff.ms=200` for gregor; for the reference Kafka
(COMPAT_EXTERNAL_BOOTSTRAP) start it with
GREGOR_REFERENCE_EXTRA_PROPS=log.cleaner.backoff.ms=200. The time each
case took to compact is printed in the "timings" section.
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
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from compat import unique_topic
from conftest import REPO_ROOT, ExternalBroker

ADMIN_SH = REPO_ROOT / "compat-tests" / "java" / "admin.sh"
TIMEOUT_S = 30.0
COMPACT_TIMEOUT_S = 60.0  # Kafka 4.3.1 took 5-6 s per case with a 200 ms backoff
BUILD_TIMEOUT_S = 600.0
DELETE_RETENTION_MS = 3000
TICK_KEY = b"~tick"
KEYS = 40
VERSIONS = 25

COMPACT = {
    "cleanup.policy": "compact",
    "segment.ms": "100",
    "min.cleanable.dirty.ratio": "0.01",
    "min.compaction.lag.ms": "0",
    "delete.retention.ms": str(DELETE_RETENTION_MS),
}


@pytest.fixture
def cbroker(make_broker):
    """A broker whose cleaner wakes every 200 ms (see the module docstring)."""
    if os.environ.get("COMPAT_EXTERNAL_BOOTSTRAP"):
        return make_broker()
    return make_broker("-o", "log.cleaner.backoff.ms=200")


def create_topic(bootstrap: str, topic: str, config: dict) -> AdminClient:
    a = AdminClient({"bootstrap.servers": bootstrap})
    for f in a.create_topics([NewTopic(topic, 1, 1, config=config)]).values():
        f.result(TIMEOUT_S)
    return wait_leader(bootstrap, topic)


def wait_leader(bootstrap: str, topic: str) -> AdminClient:
    """A new admin client once the topic's partition has a leader (Kafka
    propagates metadata asynchronously even on one node; after a restart an
    old client's metadata is stale)."""
    a = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        md = a.list_topics(topic, timeout=TIMEOUT_S).topics.get(topic)
        if md is not None and md.error is None and md.partitions and md.partitions[0].leader >= 0:
            return a
        assert time.monotonic() < deadline, f"{topic} has no leader after {TIMEOUT_S:.0f}s"
        time.sleep(0.1)


def versions_then_tombstones(keys: int, versions: int) -> list[tuple[bytes, bytes | None]]:
    """The writes of gregor.compat.Compaction10 too: every key's value
    version by version, then a tombstone for every 5th key."""
    out = [(f"k{k}".encode(), f"k{k}-v{v}".encode()) for v in range(versions) for k in range(keys)]
    out += [(f"k{k}".encode(), None) for k in range(0, keys, 5)]
    return out


class Log:
    """What was written to partition 0, offset by offset, and when."""

    def __init__(self, bootstrap: str, topic: str, compression: str = "none"):
        self.topic = topic
        self.written: dict[int, tuple[bytes, bytes | None]] = {}
        self.acked_at: dict[int, float] = {}
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": compression,
            }
        )
        self.ticks = 0

    def write(self, records) -> None:
        errors: list = []

        def cb(err, msg):
            if err is not None:
                errors.append(err)
            else:
                self.written[msg.offset()] = (msg.key(), msg.value())
                self.acked_at[msg.offset()] = time.monotonic()

        for i, (k, v) in enumerate(records):
            self.producer.produce(self.topic, key=k, value=v, partition=0, on_delivery=cb)
            if i % 100 == 99:
                self.producer.poll(0)
        assert self.producer.flush(TIMEOUT_S) == 0, "records still in flight"
        assert not errors, errors[:5]

    def tick(self) -> None:
        self.ticks += 1
        self.write([(TICK_KEY, str(self.ticks).encode())])

    def note_external(self, records, first: int, started: float) -> None:
        """Records another producer, started at `started`, wrote at first,
        first+1, ... (none can have been written before it started)."""
        for i, kv in enumerate(records):
            self.written[first + i] = kv
            self.acked_at[first + i] = started

    def latest(self) -> dict[bytes, bytes | None]:
        out: dict = {}
        for o in sorted(self.written):
            k, v = self.written[o]
            out[k] = v
        return out


def read_all(bootstrap: str, topic: str, end: int) -> list[tuple[int, bytes, bytes | None]]:
    """Every record of partition 0 from the beginning up to end (exclusive)."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_topic("g-read"),
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got = []
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF and m.offset() >= end:
                    return got
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(m.error())
            got.append((m.offset(), m.key(), m.value()))
        pytest.fail(f"{topic}: not read up to offset {end} within {TIMEOUT_S:.0f}s ({len(got)} records)")
    finally:
        c.close()


def log_bytes(broker, a: AdminClient, topic: str) -> int | None:
    """Bytes in partition 0's segment files (gregor's data dir, laid out as
    test_segments.py describes), or None for a broker the suite did not start."""
    data_dir = getattr(broker, "data_dir", None)
    if data_dir is None:
        return None
    tid = a.describe_topics(TopicCollection([topic]))[topic].result(TIMEOUT_S).topic_id
    hi = tid.get_most_significant_bits() & (2**64 - 1)
    lo = tid.get_least_significant_bits() & (2**64 - 1)
    d = data_dir / f"{topic}-0-{(hi << 64 | lo):032x}"
    assert d.is_dir(), f"no directory {d.name} in {sorted(p.name for p in data_dir.iterdir())}"
    total = 0
    for p in d.glob("*.log"):
        try:
            total += p.stat().st_size
        except FileNotFoundError:  # removed by the cleaner while listing
            pass
    return total


def watermarks(a: AdminClient, topic: str) -> tuple[int, int]:
    tp = TopicPartition(topic, 0)
    lo = a.list_offsets({tp: OffsetSpec.earliest()})[tp].result(TIMEOUT_S).offset
    hi = a.list_offsets({tp: OffsetSpec.latest()})[tp].result(TIMEOUT_S).offset
    return lo, hi


def check_read(log: Log, got, data_keys: set[bytes]) -> bool:
    """Asserts what holds at any time during cleaning; returns whether the
    data keys are fully compacted (latest values only, tombstones gone)."""
    offsets = [o for o, _, _ in got]
    assert offsets == sorted(set(offsets)), f"offsets not strictly increasing: {offsets[:50]}"
    for o, k, v in got:
        assert log.written.get(o) == (k, v), f"offset {o}: read {(k, v)}, written {log.written.get(o)}"
    # the latest record of every key is never removed (a tombstone only
    # once delete.retention.ms has passed)
    last_offset = {}
    for o in sorted(log.written):
        last_offset[log.written[o][0]] = o
    present = set(offsets)
    now = time.monotonic()
    for k, o in last_offset.items():
        if o in present:
            continue
        v = log.written[o][1]
        assert v is None, f"the latest record of {k!r} (offset {o}) was removed"
        waited = now - log.acked_at[o]
        assert waited >= DELETE_RETENTION_MS / 1000 - 0.5, (
            f"tombstone of {k!r} (offset {o}) removed {waited:.2f}s after it was written, "
            f"delete.retention.ms is {DELETE_RETENTION_MS}"
        )
    latest = log.latest()
    want = {k: v for k, v in latest.items() if k in data_keys and v is not None}
    seen = [(k, v) for _, k, v in got if k in data_keys]
    return len(seen) == len(want) and dict(seen) == want


def await_compacted(a: AdminClient, bootstrap: str, log: Log, data_keys: set[bytes], timings, what: str):
    """Ticks and reads until the data keys are compacted; returns the last read."""
    try:
        return _await_compacted(a, bootstrap, log, data_keys, timings, what)
    finally:
        log.producer.close()  # also on failure: no client left retrying a stopped broker


def _await_compacted(a, bootstrap, log, data_keys, timings, what):
    t0 = time.monotonic()
    deadline = t0 + COMPACT_TIMEOUT_S
    reads = 0
    first_clean = None  # when each data key first showed one record at most
    while True:
        log.tick()
        end = max(log.written) + 1
        got = read_all(bootstrap, log.topic, end)
        reads += 1
        if first_clean is None:
            per_key = [k for _, k, _ in got if k in data_keys]
            if len(per_key) == len(set(per_key)):
                first_clean = time.monotonic() - t0
        if check_read(log, got, data_keys):
            break
        if time.monotonic() > deadline:
            seen = {}
            for _, k, v in got:
                if k in data_keys:
                    seen.setdefault(k, []).append(v)
            counts = sorted(len(v) for v in seen.values())
            pytest.fail(
                f"{what}: not compacted within {COMPACT_TIMEOUT_S:.0f}s: {len(got)} records of "
                f"{end} left; records per data key {counts[:3]}..{counts[-3:]}; "
                f"tombstones still read: {sum(1 for _, k, v in got if k in data_keys and v is None)}"
            )
        time.sleep(0.2)  # a tick per 200 ms: traffic on the topic, not a wait for an event
    took = time.monotonic() - t0
    timings.append(
        f"compaction {what}: one version per key after {first_clean:4.1f} s, tombstones gone after "
        f"{took:4.1f} s ({reads} reads), {len(got)} of {end} records left"
    )
    lo, hi = watermarks(a, log.topic)
    assert (lo, hi) == (0, end), f"watermarks {(lo, hi)}, expected (0, {end})"
    # the tick key keeps its last version, in the active segment
    ticks = [v for _, k, v in got if k == TICK_KEY]
    assert ticks and ticks[-1] == str(log.ticks).encode(), ticks
    assert [int(t) for t in ticks] == sorted({int(t) for t in ticks}), ticks
    return got


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
def test_compaction_librdkafka(cbroker, timings, compression):
    t = unique_topic(f"compact-{compression}")
    a = create_topic(cbroker.bootstrap, t, COMPACT)
    log = Log(cbroker.bootstrap, t, compression)
    records = versions_then_tombstones(KEYS, VERSIONS)
    log.write(records)
    assert sorted(log.written) == list(range(len(records)))
    before = log_bytes(cbroker, a, t)
    got = await_compacted(a, cbroker.bootstrap, log, {k for k, _ in records}, timings, f"librdkafka {compression}")
    live = {f"k{k}".encode(): f"k{k}-v{VERSIONS - 1}".encode() for k in range(KEYS) if k % 5}
    assert {k: v for _, k, v in got if k != TICK_KEY} == live
    if before is not None:
        # the space is reclaimed: 34 of ~1,000 records are left
        after = log_bytes(cbroker, a, t)
        timings.append(f"compaction librdkafka {compression}: segment files {before} B -> {after} B")
        assert after < before / 2, f"segment files hold {after} B after compaction, {before} B before"


def test_compaction_java(cbroker, timings):
    r = subprocess.run(["bash", str(ADMIN_SH), "build"], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    assert r.returncode == 0, f"admin.sh build: {r.stdout}\n{r.stderr}"
    t = unique_topic("compact-java")
    a = create_topic(cbroker.bootstrap, t, COMPACT)

    def java(*args) -> dict:
        r = subprocess.run(
            ["bash", str(ADMIN_SH), "compaction", *map(str, args)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert r.returncode == 0, f"Compaction10 {args}: exit {r.returncode}\n{r.stdout}\n{r.stderr[-6000:]}"
        (ev,) = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        return ev

    started = time.monotonic()
    ev = java("produce", cbroker.bootstrap, t, "lz4", KEYS, VERSIONS)
    records = versions_then_tombstones(KEYS, VERSIONS)
    assert (ev["count"], ev["first"], ev["last"]) == (len(records), 0, len(records) - 1), ev
    log = Log(cbroker.bootstrap, t)
    log.note_external(records, 0, started)
    got = await_compacted(a, cbroker.bootstrap, log, {k for k, _ in records}, timings, "java lz4")
    live = {f"k{k}".encode(): f"k{k}-v{VERSIONS - 1}".encode() for k in range(KEYS) if k % 5}
    assert {k: v for _, k, v in got if k != TICK_KEY} == live
    # the Java consumer reads the same compacted log (offset gaps and all)
    end = max(log.written) + 1
    ev = java("read", cbroker.bootstrap, t, end)
    java_got = [(o, k.encode(), None if v is None else v.encode()) for o, k, v in ev["records"]]
    # ticks may have been cleaned further between the two reads: compare the data keys
    assert [x for x in java_got if x[1] != TICK_KEY] == [x for x in got if x[1] != TICK_KEY]
    check_read(log, java_got, {k for k, _ in records})


def test_cleanup_policy_changed_to_compact(cbroker, timings):
    t = unique_topic("compact-later")
    a = create_topic(cbroker.bootstrap, t, {**COMPACT, "cleanup.policy": "delete"})
    log = Log(cbroker.bootstrap, t)
    records = versions_then_tombstones(KEYS, VERSIONS)
    log.write(records)
    # still delete: a read sees every version
    log.tick()
    got = read_all(cbroker.bootstrap, t, max(log.written) + 1)
    assert len(got) == len(records) + 1
    res = ConfigResource(
        ResourceType.TOPIC,
        t,
        incremental_configs=[
            ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    for f in a.incremental_alter_configs([res]).values():
        f.result(TIMEOUT_S)
    got = await_compacted(a, cbroker.bootstrap, log, {k for k, _ in records}, timings, "delete -> compact")
    live = {f"k{k}".encode(): f"k{k}-v{VERSIONS - 1}".encode() for k in range(KEYS) if k % 5}
    assert {k: v for _, k, v in got if k != TICK_KEY} == live


def test_keyless_record_refused(cbroker):
    t = unique_topic("compact-nokey")
    create_topic(cbroker.bootstrap, t, COMPACT)
    p = Producer({"bootstrap.servers": cbroker.bootstrap, "acks": "all", "linger.ms": 0, "retries": 0})
    reports: list = []

    def cb(err, msg):
        reports.append((err, msg.key(), msg.offset()))

    # one record per request, so the refusal concerns that record alone
    try:
        p.produce(t, key=b"a", value=b"1", partition=0, on_delivery=cb)
        assert p.flush(TIMEOUT_S) == 0
        p.produce(t, key=None, value=b"no key", partition=0, on_delivery=cb)
        assert p.flush(TIMEOUT_S) == 0
        p.produce(t, key=b"b", value=b"2", partition=0, on_delivery=cb)
        assert p.flush(TIMEOUT_S) == 0
    finally:
        p.close()
    assert [(None if e is None else e.code(), k) for e, k, _ in reports] == [
        (None, b"a"),
        (KafkaError.INVALID_RECORD, None),
        (None, b"b"),
    ], reports
    assert reports[0][2] == 0 and reports[2][2] == 1, reports
    got = read_all(cbroker.bootstrap, t, 2)
    assert got == [(0, b"a", b"1"), (1, b"b", b"2")]


def test_compaction_survives_kill9(cbroker, timings):
    """gregor only (needs the process): kill -9 while the cleaner is busy,
    three times at different points, then restart. After every restart a
    read from the beginning still satisfies every invariant (no record at
    an offset it was not written to, no key's latest record lost, offsets
    increasing: no half-swapped segment is ever visible); compaction then
    completes, and the compacted log reads the same after a last kill -9."""
    if isinstance(cbroker, ExternalBroker):
        pytest.skip("needs a broker process started by the suite")
    t = unique_topic("compact-kill")
    a = create_topic(cbroker.bootstrap, t, COMPACT)
    log = Log(cbroker.bootstrap, t, "lz4")
    records = versions_then_tombstones(KEYS, VERSIONS)
    data_keys = {k for k, _ in records}
    try:
        log.write(records)
        for ticks in (1, 2, 3):
            for _ in range(ticks):
                log.tick()
                time.sleep(0.2)  # a tick per 200 ms, as in await_compacted
            cbroker.kill9()
            cbroker.start()
            a = wait_leader(cbroker.bootstrap, t)
            got = read_all(cbroker.bootstrap, t, max(log.written) + 1)
            check_read(log, got, data_keys)
            assert watermarks(a, t) == (0, max(log.written) + 1)
    finally:
        log.producer.close()
    log = _reopen(cbroker.bootstrap, log)
    got = await_compacted(a, cbroker.bootstrap, log, data_keys, timings, "after 3 kill -9")
    live = {f"k{k}".encode(): f"k{k}-v{VERSIONS - 1}".encode() for k in range(KEYS) if k % 5}
    assert {k: v for _, k, v in got if k != TICK_KEY} == live
    end = max(log.written) + 1
    cbroker.kill9()
    cbroker.start()
    a = wait_leader(cbroker.bootstrap, t)
    again = read_all(cbroker.bootstrap, t, end)
    check_read(log, again, data_keys)
    # the cleaner may have removed older ticks meanwhile: the data keys read the same
    assert [x for x in again if x[1] != TICK_KEY] == [x for x in got if x[1] != TICK_KEY]
    assert watermarks(a, t) == (0, end)


def _reopen(bootstrap: str, old: Log) -> Log:
    """A Log with a fresh producer and what `old` recorded."""
    new = Log(bootstrap, old.topic, "lz4")
    new.written, new.acked_at, new.ticks = old.written, old.acked_at, old.ticks
    return new
