"""Storage v2 (issue 8) through stock clients: segment files on disk,
rolling at segment.bytes, size and time retention deleting whole segments,
restarts after SIGTERM and kill -9, and reads across segment boundaries.

The files are inspected directly: `<data-dir>/<topic>-<partition>-<topic id
hex>/<base offset:020>.log`, each a sequence of v2 record batches exactly as
the producer sent them (base offset patched in), so the batch headers tell
which offsets a file holds.
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from compat import ck_consume_all, ck_consumer, ck_watermarks, unique_topic, wait_until

SEG_BYTES = 1 << 20  # Kafka 4.x's minimum segment.bytes
VALUE_LEN = 10 * 1024
# librdkafka batches up to 1 MB by default, so a segment would hold a single
# batch; 64 KiB batches put ~16 in each and make the roll point meaningful.
BATCH_BYTES = 65536
RETENTION_CHECK = ("-o", "log.retention.check.interval.ms=200")

# every test looks into the broker's data dir
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("COMPAT_EXTERNAL_BOOTSTRAP")), reason="needs the data dir of a broker started by the suite"
)


def value(seq: int) -> bytes:
    """10 KiB, distinct for every seq (and tells which seq it is)."""
    return (b"%08d" % seq) * (VALUE_LEN // 8)


def now_ms() -> int:
    return int(time.time() * 1000)


# --------------------------------------------------------------------------
# the files
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    base: int
    last: int
    size: int  # bytes in the file, header included


@dataclass(frozen=True)
class Segment:
    base: int
    path: Path
    size: int


def create_topic(bootstrap: str, topic: str, partitions: int = 1, **config: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    cfg = {k.replace("_", "."): str(v) for k, v in config.items()}
    futs = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1, config=cfg)],
        operation_timeout=30,
        request_timeout=30,
    )
    futs[topic].result(timeout=30)


def partition_dir(broker, topic: str, partition: int) -> Path:
    """The partition's directory, named with the topic id the broker reports."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    desc = admin.describe_topics(TopicCollection([topic]), request_timeout=30)[topic].result(30)
    tid = desc.topic_id
    hi = tid.get_most_significant_bits() & (2**64 - 1)
    lo = tid.get_least_significant_bits() & (2**64 - 1)
    d = broker.data_dir / f"{topic}-{partition}-{(hi << 64 | lo):032x}"
    assert d.is_dir(), f"no directory {d.name}; data dir holds {sorted(p.name for p in broker.data_dir.iterdir())}"
    return d


def segments(d: Path) -> list[Segment]:
    """The .log files, oldest first; every name must be a 20-digit offset."""
    segs = []
    for p in d.iterdir():
        if p.suffix != ".log":
            continue
        assert len(p.stem) == 20 and p.stem.isdigit(), f"segment file named {p.name}"
        try:
            size = p.stat().st_size
        except FileNotFoundError:  # deleted by retention while listing
            continue
        segs.append(Segment(int(p.stem), p, size))
    return sorted(segs, key=lambda s: s.base)


def batches(path: Path) -> list[Batch]:
    """Walks the v2 batch headers of a segment file; asserts nothing else is
    in it (no padding, no torn tail)."""
    data = path.read_bytes()
    out = []
    pos = 0
    while pos < len(data):
        assert len(data) - pos >= 61, f"{path.name}: {len(data) - pos} trailing bytes at {pos}"
        base, length = struct.unpack_from(">qi", data, pos)
        magic = data[pos + 16]
        (last_delta,) = struct.unpack_from(">i", data, pos + 23)
        assert magic == 2, f"{path.name}: batch at {pos} has magic {magic}"
        size = 12 + length
        assert pos + size <= len(data), f"{path.name}: batch at {pos} of {size} bytes runs past the end"
        out.append(Batch(base, base + last_delta, size))
        pos += size
    return out


def check_chain(segs: list[Segment], start: int, end: int) -> dict[Path, list[Batch]]:
    """The segments hold exactly offsets start..end-1, in order: each file's
    name is its first batch's base offset, batches follow each other without
    a gap, and each file begins where the previous one ended."""
    assert segs, "no segment files"
    assert segs[0].base == start, f"first segment {segs[0].path.name}, expected base {start}"
    by_file = {}
    nxt = start
    for s in segs:
        bs = batches(s.path)
        by_file[s.path] = bs
        assert sum(b.size for b in bs) == s.size, f"{s.path.name}: batches {sum(b.size for b in bs)} B, file {s.size} B"
        if not bs:  # an empty active segment, just rolled
            assert s is segs[-1] and s.base == end, f"empty segment {s.path.name} (end {end})"
            continue
        assert s.base == bs[0].base, f"{s.path.name} starts with a batch at offset {bs[0].base}"
        for b in bs:
            assert b.base == nxt, f"{s.path.name}: batch at offset {b.base}, expected {nxt}"
            nxt = b.last + 1
    assert nxt == end, f"segments end at offset {nxt}, log end is {end}"
    return by_file


# --------------------------------------------------------------------------
# clients
# --------------------------------------------------------------------------


def produce(bootstrap: str, topic: str, items, timeout: float = 60) -> dict[int, tuple[int, int]]:
    """items: (seq, partition, timestamp or None). acks=all, idempotent (so
    each partition's offsets follow the produce order). Returns seq ->
    (partition, offset) from the delivery reports, all of which must succeed."""
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "batch.size": BATCH_BYTES,
        }
    )
    acked: dict[int, tuple[int, int]] = {}
    errors: list[str] = []

    def cb(err, msg):
        seq = int(msg.value()[:8])
        if err is not None:
            errors.append(f"seq {seq}: {err}")
        else:
            acked[seq] = (msg.partition(), msg.offset())

    n = 0
    for seq, part, ts in items:
        kw = {"timestamp": ts} if ts is not None else {}
        while True:
            try:
                p.produce(topic, value=value(seq), partition=part, on_delivery=cb, **kw)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
        n += 1
    left = p.flush(timeout)
    assert left == 0 and not errors, f"{left} undelivered, {len(errors)} errors: {errors[:5]}"
    assert len(acked) == n, f"{len(acked)} delivery reports for {n} records"
    return acked


def expect_offsets(acked: dict[int, tuple[int, int]], first: dict[int, int]) -> None:
    """Each partition's records were acknowledged at consecutive offsets
    from first[partition], in produce (seq) order."""
    for part, start in first.items():
        offs = [o for _, (p, o) in sorted(acked.items()) if p == part]
        assert offs == list(range(start, start + len(offs))), (
            f"partition {part}: acknowledged offsets {offs[:3]}..{offs[-3:]}, expected from {start}"
        )


def consume_check(bootstrap: str, topic: str, partitions: int, acked: dict[int, tuple[int, int]], start=None):
    """Reads every partition from the beginning (librdkafka); the records
    are exactly the acknowledged ones, each at its acknowledged offset, and
    each partition starts at start[partition] (default 0)."""
    got = ck_consume_all(bootstrap, topic, partitions)
    want = {pos: seq for seq, pos in acked.items()}
    have = {}
    for g in got:
        assert (g.partition, g.offset) not in have, f"p{g.partition} o{g.offset} read twice"
        have[(g.partition, g.offset)] = g.value
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    assert not missing and not extra, f"missing {len(missing)} {missing[:5]}, unexpected {len(extra)} {extra[:5]}"
    wrong = [pos for pos, seq in want.items() if have[pos] != value(seq)]
    assert not wrong, f"{len(wrong)} records with the wrong value, e.g. at {sorted(wrong)[:5]}"
    for p in range(partitions):
        offs = sorted(o for (q, o) in have if q == p)
        s = (start or {}).get(p, 0)
        assert offs == list(range(s, s + len(offs))), f"p{p}: offsets {offs[:3]}..{offs[-3:]}, expected from {s}"
    return got


# --------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------


def test_segments_roll_at_segment_bytes(broker):
    """~5 MiB of 10 KiB values to a topic with segment.bytes=1048576: several
    segment files named by their 20-digit base offsets, each holding whole
    batches up to segment.bytes and rolled only when the next batch would
    not fit (Kafka's rule), together exactly the batches produced; a
    consumer reads every record back in order."""
    topic = unique_topic("seg-roll")
    create_topic(broker.bootstrap, topic, segment_bytes=SEG_BYTES)
    n = 500
    acked = produce(broker.bootstrap, topic, [(i, 0, None) for i in range(n)])
    expect_offsets(acked, {0: 0})

    segs = segments(partition_dir(broker, topic, 0))
    assert len(segs) >= 5, f"{len(segs)} segments for {n * VALUE_LEN} bytes: {[s.path.name for s in segs]}"
    by_file = check_chain(segs, 0, n)
    for s, nxt in zip(segs, segs[1:] + [None]):
        assert s.size <= SEG_BYTES, f"{s.path.name} holds {s.size} B > segment.bytes"
        if nxt is not None:
            following = by_file[nxt.path][0].size
            assert s.size + following > SEG_BYTES, (
                f"{s.path.name} ({s.size} B) rolled although the next batch ({following} B) fit"
            )
    total = sum(s.size for s in segs)
    payload = n * VALUE_LEN
    assert payload <= total < payload * 1.1, f"segments hold {total} B for {payload} B of values"

    consume_check(broker.bootstrap, topic, 1, acked)


@pytest.mark.broker_args(*RETENTION_CHECK)
def test_size_retention_deletes_oldest_segments(broker):
    """retention.bytes=2 MiB over 1 MiB segments, ~6 MiB produced: the
    oldest whole segments go until deleting one more would leave less than
    retention.bytes; the log start (ListOffsets earliest) is the first kept
    file's base offset, and a new consumer from the beginning starts exactly
    there and reads to the end."""
    topic = unique_topic("seg-size")
    retention = 2 * SEG_BYTES
    create_topic(broker.bootstrap, topic, segment_bytes=SEG_BYTES, retention_bytes=retention)
    n = 600
    acked = produce(broker.bootstrap, topic, [(i, 0, None) for i in range(n)])
    expect_offsets(acked, {0: 0})
    d = partition_dir(broker, topic, 0)

    c = ck_consumer(broker.bootstrap)
    seen = []

    def settled():
        # files go after the new log start is durable: wait for both
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
        segs = segments(d)
        total = sum(s.size for s in segs)
        seen[:] = [lo, hi, [(s.path.name, s.size) for s in segs]]
        return lo > 0 and segs and segs[0].base == lo and total - segs[0].size < retention and (lo, hi, segs)

    try:
        lo, hi, segs = wait_until(settled, 30, "size retention to settle")
    except AssertionError:
        raise AssertionError(f"retention did not settle: low, high, files = {seen}") from None
    finally:
        c.close()

    assert hi == n
    assert not (d / "00000000000000000000.log").exists()
    check_chain(segs, lo, n)
    total = sum(s.size for s in segs)
    assert total >= retention, f"kept {total} B, less than retention.bytes {retention}"

    kept = {seq: pos for seq, pos in acked.items() if pos[1] >= lo}
    consume_check(broker.bootstrap, topic, 1, kept, start={0: lo})


@pytest.mark.broker_args(*RETENTION_CHECK)
def test_time_retention_by_record_timestamps(broker):
    """retention.ms=10 min: 1.5 MiB of records with an hour-old CreateTime go,
    all their segments including the active one (after a roll, as Kafka
    does), and the log start moves to the log end; records produced now
    land in a new segment at that offset and survive later retention passes."""
    topic = unique_topic("seg-time")
    # 10 min, not 1 s: the current records must outlive the passes we wait for
    create_topic(broker.bootstrap, topic, 2, segment_bytes=SEG_BYTES, retention_ms=600_000)
    old_ts = now_ms() - 3600_000
    n_old = 150
    acked_old = produce(broker.bootstrap, topic, [(i, 0, old_ts + i) for i in range(n_old)])
    expect_offsets(acked_old, {0: 0})
    d = partition_dir(broker, topic, 0)
    c = ck_consumer(broker.bootstrap)
    try:

        def wm(p):
            return c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)

        seen = []

        def all_old_gone():
            lo, hi = wm(0)
            segs = segments(d)
            seen[:] = [(lo, hi), [s.path.name for s in segs]]
            return lo == hi == n_old and all(s.base >= n_old for s in segs)

        try:
            wait_until(all_old_gone, 30, "time retention of the old records")
        except AssertionError:
            raise AssertionError(f"old records not all gone: watermarks, files = {seen}") from None

        n_new = 20
        acked_new = produce(broker.bootstrap, topic, [(n_old + i, 0, None) for i in range(n_new)])
        expect_offsets(acked_new, {0: n_old})
        segs = segments(d)
        assert [s.base for s in segs] == [n_old], f"files after the new records: {[s.path.name for s in segs]}"
        check_chain(segs, n_old, n_old + n_new)

        # Two hour-old records to partition 1, one after the other, each
        # awaited until retention takes it: the second goes in a pass that
        # began after partition 0 had its new records, so that pass saw them.
        for k in range(2):
            produce(broker.bootstrap, topic, [(1000 + k, 1, old_ts)])
            wait_until(lambda: wm(1) == (k + 1, k + 1), 30, f"retention pass #{k + 1} on partition 1")
        assert wm(0) == (n_old, n_old + n_new)
    finally:
        c.close()
    got = consume_check(broker.bootstrap, topic, 2, acked_new, start={0: n_old})
    t = now_ms()
    assert all(t - 600_000 < g.timestamp <= t for g in got), [g.timestamp for g in got][:3]


def test_restarts_keep_segments(broker):
    """3.3 MiB over 3 partitions with 1 MiB segments: all there after a
    SIGTERM restart; then more, kill -9, start: every acknowledged record is
    there; then new records continue each partition's offsets without a gap
    or a duplicate."""
    topic = unique_topic("seg-restart")
    parts = 3
    create_topic(broker.bootstrap, topic, parts, segment_bytes=SEG_BYTES)

    def batch(lo, hi):
        return [(i, i % parts, None) for i in range(lo, hi)]

    acked = produce(broker.bootstrap, topic, batch(0, 330))
    expect_offsets(acked, {p: 0 for p in range(parts)})
    assert all(len(segments(partition_dir(broker, topic, p))) >= 2 for p in range(parts))

    broker.restart()
    assert ck_watermarks(broker.bootstrap, topic, parts) == {p: (0, 110) for p in range(parts)}
    consume_check(broker.bootstrap, topic, parts, acked)

    more = produce(broker.bootstrap, topic, batch(330, 480))
    expect_offsets(more, {p: 110 for p in range(parts)})
    acked.update(more)
    broker.kill9()
    broker.start()
    assert ck_watermarks(broker.bootstrap, topic, parts) == {p: (0, 160) for p in range(parts)}
    consume_check(broker.bootstrap, topic, parts, acked)
    for p in range(parts):
        d = partition_dir(broker, topic, p)
        check_chain(segments(d), 0, 160)

    again = produce(broker.bootstrap, topic, batch(480, 510))
    expect_offsets(again, {p: 160 for p in range(parts)})
    acked.update(again)
    consume_check(broker.bootstrap, topic, parts, acked)


def test_kafka_python_reads_across_segments(broker):
    """kafka-python reads a 4-segment partition from the beginning, and
    from a seek to the middle of the third segment."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    topic = unique_topic("seg-kp")
    create_topic(broker.bootstrap, topic, segment_bytes=SEG_BYTES)
    n = 320
    acked = produce(broker.bootstrap, topic, [(i, 0, None) for i in range(n)])
    expect_offsets(acked, {0: 0})
    segs = segments(partition_dir(broker, topic, 0))
    assert len(segs) >= 4, [s.path.name for s in segs]
    check_chain(segs, 0, n)
    mid = (segs[2].base + segs[3].base) // 2
    assert segs[2].base < mid < segs[3].base

    c = KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    tp = KTP(topic, 0)
    try:
        c.assign([tp])
        for start, how in ((0, "beginning"), (mid, "seek")):
            if how == "beginning":
                c.seek_to_beginning(tp)
            else:
                c.seek(tp, start)
            got = []
            deadline = time.monotonic() + 30
            while (got[-1][0] + 1 if got else start) < n:
                assert time.monotonic() < deadline, f"{how}: {len(got)} records by the deadline"
                for recs in c.poll(timeout_ms=500).values():
                    got += [(r.offset, r.value) for r in recs]
            assert [o for o, _ in got] == list(range(start, n)), f"{how}: offsets {[o for o, _ in got][:5]}..."
            bad = [o for o, v in got if v != value(o)]
            assert not bad, f"{how}: wrong values at offsets {bad[:5]}"
    finally:
        c.close()
