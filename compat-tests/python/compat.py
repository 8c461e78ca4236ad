"""Shared record generation and verification for the stock-client tests.

A test generates `Rec`s with `make_records`, produces them with some client,
consumes everything back as `Got`s and calls `verify`, which checks:

* the number of records consumed equals the number produced;
* no (partition, offset) twice, every partition within range, offsets
  contiguous from 0 in each partition;
* every key lives in exactly one partition and the sequence of
  (value, headers, timestamp) per key is exactly the produced one, in order
  (so nothing lost, duplicated, reordered or altered);
* the null-key records come back as the same multiset;
* when the producer reported (partition, offset) for each record, the
  record found there is the one produced.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


Headers = tuple  # tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True)
class Rec:
    seq: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp: int | None  # CreateTime in ms, or None to let the client stamp it


@dataclass(frozen=True)
class Got:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp: int | None


_FILLER = bytes(range(256)) * 80  # 20 KiB of every byte value


def make_records(
    n: int,
    *,
    base_ts: int | None = None,
    null_header_values: bool = True,
    num_keys: int = 100,
) -> list[Rec]:
    """Deterministic records: keys k0..k{num_keys-1}, some null keys, some
    null and empty values, headers on every 10th (duplicate keys, an empty
    value, a non-ASCII key, and a null value when `null_header_values`), an
    occasional 20 KiB value, and timestamps base_ts + 2*i when given."""
    recs = []
    for i in range(n):
        key = None if i % 97 == 13 else f"k{i % num_keys}".encode()
        if key is None:
            value = f"nullkey-{i}".encode()  # null-key records carry their id
        elif i % 41 == 3:
            value = None
        elif i % 43 == 5:
            value = b""
        elif i % 997 == 1:
            value = f"big-{i}:".encode() + _FILLER
        else:
            value = f"v{i}:".encode() + _FILLER[: (i * 31) % 300]
        headers: list = []
        if i % 10 == 0:
            headers = [
                ("seq", str(i).encode()),
                ("dup", b"a"),
                ("dup", b"b"),
                ("empty", b""),
                ("ключ", b"\xff\x00\x01"),
            ]
            if null_header_values and i % 30 == 0:
                headers.append(("nullh", None))
        ts = None if base_ts is None else base_ts + 2 * i
        recs.append(Rec(i, key, value, tuple(headers), ts))
    return recs


def norm_headers(h) -> Headers:
    if not h:
        return ()
    return tuple((k, None if v is None else bytes(v)) for k, v in h)


def _show(x, limit=160):
    r = repr(x)
    return r if len(r) <= limit else r[:limit] + "..."


def verify(
    produced: list[Rec],
    consumed: list[Got],
    *,
    num_partitions: int,
    acked: dict[int, tuple[int, int]] | None = None,
    check_timestamps: bool = True,
) -> None:
    problems: list[str] = []
    # records produced without an explicit timestamp are stamped by the client
    check_timestamps = check_timestamps and all(r.timestamp is not None for r in produced)

    def problem(msg: str) -> None:
        problems.append(msg)

    if len(consumed) != len(produced):
        problem(f"consumed {len(consumed)} records, produced {len(produced)}")

    # positions
    seen = Counter((g.partition, g.offset) for g in consumed)
    dups = [pos for pos, c in seen.items() if c > 1]
    if dups:
        problem(f"{len(dups)} (partition, offset) positions consumed more than once, e.g. {dups[:5]}")
    by_part: dict[int, list[Got]] = defaultdict(list)
    for g in consumed:
        by_part[g.partition].append(g)
    for p, gs in sorted(by_part.items()):
        if not 0 <= p < num_partitions:
            problem(f"record in partition {p}, topic has {num_partitions}")
        offs = sorted(g.offset for g in gs)
        if offs != list(range(len(offs))):
            gaps = [o for a, o in zip(range(len(offs)), offs) if a != o][:5]
            problem(
                f"partition {p}: offsets not contiguous from 0 "
                f"({len(offs)} records, first {offs[:3]}, last {offs[-3:]}, first misplaced {gaps})"
            )

    def content(r):
        return (r.value, r.headers, r.timestamp if check_timestamps else None)

    # keyed records: one partition per key, same sequence per key
    want_by_key: dict[bytes, list] = defaultdict(list)
    for r in produced:
        if r.key is not None:
            want_by_key[r.key].append(content(r))
    got_by_key: dict[bytes, list[Got]] = defaultdict(list)
    for g in consumed:
        if g.key is not None:
            got_by_key[g.key].append(g)
    for key in sorted(set(want_by_key) | set(got_by_key)):
        gs = got_by_key.get(key, [])
        parts = sorted({g.partition for g in gs})
        if len(parts) > 1:
            problem(f"key {key!r} found in partitions {parts}")
        gs = sorted(gs, key=lambda g: (g.partition, g.offset))
        got = [content(g) for g in gs]
        want = want_by_key.get(key, [])
        if got != want:
            first = next(
                (i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want))
            )
            detail = f"key {key!r}: got {len(got)} records, want {len(want)}; first difference at #{first}"
            if first < len(got) and first < len(want):
                g = gs[first]
                detail += f" (p{g.partition} o{g.offset}):"
                for name, a, b in zip(("value", "headers", "timestamp"), got[first], want[first]):
                    if a != b:
                        detail += f" {name} got {_show(a)} want {_show(b)};"
            problem(detail)

    # null-key records: same multiset
    want_null = Counter(content(r) for r in produced if r.key is None)
    got_null = Counter(content(g) for g in consumed if g.key is None)
    if want_null != got_null:
        missing = list((want_null - got_null).elements())[:3]
        extra = list((got_null - want_null).elements())[:3]
        problem(f"null-key records differ: missing {_show(missing, 200)}, unexpected {_show(extra, 200)}")

    # acknowledged positions
    if acked is not None:
        at = {(g.partition, g.offset): g for g in consumed}
        bad = []
        for r in produced:
            pos = acked.get(r.seq)
            if pos is None:
                bad.append(f"seq {r.seq} has no acknowledged position")
                continue
            g = at.get(pos)
            if g is None:
                bad.append(f"seq {r.seq} acknowledged at p{pos[0]} o{pos[1]}, nothing consumed there")
            elif (g.key, content(g)) != (r.key, content(r)):
                bad.append(
                    f"seq {r.seq} acknowledged at p{pos[0]} o{pos[1]}, found key {g.key!r} "
                    f"{_show(content(g))}, want key {r.key!r} {_show(content(r))}"
                )
        if bad:
            problem(f"{len(bad)} acknowledged records not where acknowledged: {bad[:5]}")

    if problems:
        raise AssertionError("records differ:\n  " + "\n  ".join(problems[:20]))


_MSGSET_RE = re.compile(r"Produce MessageSet with (\d+) message\(s\) \(.*?, (\w+)\)")


def messageset_codecs(log: str) -> tuple[dict[str, int], list[tuple[int, str]]]:
    """From librdkafka's debug=msg log: messages sent per codec, and every
    (messages, codec) MessageSet."""
    sets = [(int(n), c) for n, c in _MSGSET_RE.findall(log)]
    per_codec: dict[str, int] = {}
    for n, c in sets:
        per_codec[c] = per_codec.get(c, 0) + n
    return per_codec, sets


def assert_compressed_with(log: str, codec: str, total: int) -> None:
    """Every record went out in MessageSets compressed with `codec`, except
    tiny sets: librdkafka sends a set uncompressed when compressing does not
    make it smaller (one short record)."""
    per_codec, sets = messageset_codecs(log)
    assert sets, f"no 'Produce MessageSet' lines in librdkafka's debug log:\n{log[-3000:]}"
    # a retried set is logged again, so the sets may hold more than `total`
    assert sum(per_codec.values()) >= total, f"MessageSets hold {per_codec} messages, produced {total}"
    if codec in ("none", "uncompressed"):
        assert set(per_codec) == {"uncompressed"}, f"messages per codec: {per_codec}"
        return
    big_plain = [n for n, c in sets if c == "uncompressed" and n > 5]
    assert set(per_codec) <= {codec, "uncompressed"}, f"messages per codec: {per_codec}"
    assert not big_plain and per_codec.get(codec, 0) >= 0.9 * total, (
        f"librdkafka did not compress with {codec}: messages per codec {per_codec} "
        f"(librdkafka enables lz4 only if the broker advertises FindCoordinator, "
        f"and before 2.11.1 gzip/snappy/lz4 only if it advertises Produce v0)"
    )


def wait_until(pred, timeout: float, what: str, interval: float = 0.05):
    """Polls pred() until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


# --------------------------------------------------------------------------
# confluent-kafka (librdkafka)
# --------------------------------------------------------------------------


def ck_create_topic(bootstrap: str, topic: str, partitions: int, timeout: float = 30) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futs = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    futs[topic].result(timeout=timeout)  # raises KafkaException on error
    # Kafka answers CreateTopics before every metadata cache has the topic
    seen = []

    def visible():
        t = admin.list_topics(topic, timeout=timeout).topics[topic]
        seen[:] = [t.error, sorted(t.partitions)]
        return t.error is None and sorted(t.partitions) == list(range(partitions))

    try:
        wait_until(visible, timeout, f"{topic} in the metadata", interval=0.05)
    except AssertionError:
        raise AssertionError(
            f"metadata for {topic} after CreateTopics: error {seen[0]}, partitions {seen[1]}"
        ) from None
    wait_leaders_ready(bootstrap, topic, partitions, timeout)


def wait_leaders_ready(bootstrap: str, topic: str, partitions: int, timeout: float = 30) -> None:
    """Waits until every partition's leader answers ListOffsets, and asserts
    the new topic is empty. Gregor is ready as soon as CreateTopics returns;
    Apache Kafka (in a differential run) may answer NOT_LEADER for a moment,
    which would turn into retries (reordering without idempotence) or, with
    acks=0, into silently lost records."""
    from confluent_kafka import KafkaException, TopicPartition

    c = ck_consumer(bootstrap)
    errors: list = []

    def ready():
        try:
            return {
                p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
                for p in range(partitions)
            }
        except KafkaException as e:
            errors[:] = [e]
            return None

    try:
        try:
            wm = wait_until(ready, timeout, f"leaders of {topic}", interval=0.05)
        except AssertionError:
            raise AssertionError(f"ListOffsets on {topic} kept failing: {errors}") from None
        assert wm == {p: (0, 0) for p in range(partitions)}, f"new topic {topic} has watermarks {wm}"
    finally:
        c.close()


def ck_produce(
    bootstrap: str,
    topic: str,
    recs: list[Rec],
    *,
    timeout: float = 120,
    expect_offsets: bool = True,
    debug_log: list | None = None,
    **conf,
) -> dict[int, tuple[int, int]]:
    """Produces `recs`; returns seq -> (partition, offset) from the delivery
    reports. Asserts every delivery report succeeded. With `debug_log`, the
    lines of librdkafka's `debug=msg` log are appended to it."""
    from confluent_kafka import Producer

    cfg = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5}
    cfg.update(conf)
    if debug_log is not None:
        import logging

        class Sink(logging.Handler):
            def emit(self, record):
                debug_log.append(record.getMessage())

        logger = logging.getLogger(f"rdkafka-{uuid.uuid4().hex}")
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.addHandler(Sink())
        cfg["debug"] = "msg"
        p = Producer(cfg, logger=logger)
    else:
        p = Producer(cfg)
    acked: dict[int, tuple[int, int]] = {}
    errors: list[str] = []

    def on_delivery(seq):
        def cb(err, msg):
            if err is not None:
                errors.append(f"seq {seq}: {err}")
            else:
                acked[seq] = (msg.partition(), msg.offset())

        return cb

    deadline = time.monotonic() + timeout
    for r in recs:
        kwargs = {"key": r.key, "value": r.value, "on_delivery": on_delivery(r.seq)}
        if r.headers:
            kwargs["headers"] = list(r.headers)
        if r.timestamp is not None:
            kwargs["timestamp"] = r.timestamp
        while True:
            try:
                p.produce(topic, **kwargs)
                break
            except BufferError:
                assert time.monotonic() < deadline, "producer queue stayed full"
                p.poll(0.1)
        p.poll(0)
    remaining = p.flush(max(1.0, deadline - time.monotonic()))
    assert remaining == 0, f"{remaining} records still undelivered after flush ({len(errors)} errors: {errors[:5]})"
    assert not errors, f"{len(errors)} delivery errors, e.g. {errors[:5]}"
    assert len(acked) == len(recs), f"{len(acked)} delivery reports for {len(recs)} records"
    if expect_offsets:
        bad = [(s, po) for s, po in acked.items() if po[1] is None or po[1] < 0]
        assert not bad, f"delivery reports without offsets: {bad[:5]}"
    return acked


def ck_consumer(bootstrap: str, **conf):
    from confluent_kafka import Consumer

    cfg = {
        "bootstrap.servers": bootstrap,
        "group.id": f"compat-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
    }
    cfg.update(conf)
    return Consumer(cfg)


def ck_consume_all(
    bootstrap: str, topic: str, partitions: int, *, timeout: float = 60, **conf
) -> list[Got]:
    """assign() every partition from the beginning and read until each has
    reported end-of-partition."""
    from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

    c = ck_consumer(bootstrap, **conf)
    try:
        # fail fast, and clearly, on a missing topic or a wrong partition count
        # (a consumer does not auto-create topics)
        md = c.list_topics(topic, timeout=30).topics.get(topic)
        assert md is not None and md.error is None, f"metadata for {topic}: {md and md.error}"
        assert sorted(md.partitions) == list(range(partitions)), (
            f"{topic} has partitions {sorted(md.partitions)}, expected {partitions}"
        )
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        got: list[Got] = []
        eof: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(eof) < partitions:
            assert time.monotonic() < deadline, (
                f"consume timed out after {timeout}s: {len(got)} records, EOF on partitions {sorted(eof)}"
            )
            msgs = c.consume(num_messages=1000, timeout=0.5)
            for m in msgs:
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                        continue
                    raise AssertionError(f"consumer error on {topic}[{m.partition()}]: {err}")
                eof.discard(m.partition())
                ts_type, ts = m.timestamp()
                got.append(
                    Got(m.partition(), m.offset(), m.key(), m.value(), norm_headers(m.headers()), ts)
                )
        return got
    finally:
        c.close()


def ck_watermarks(bootstrap: str, topic: str, partitions: int) -> dict[int, tuple[int, int]]:
    from confluent_kafka import TopicPartition

    c = ck_consumer(bootstrap)
    try:
        return {
            p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
            for p in range(partitions)
        }
    finally:
        c.close()


# --------------------------------------------------------------------------
# kafka-python
# --------------------------------------------------------------------------


def kp_create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    try:
        res = admin.create_topics(
            {topic: {"num_partitions": partitions, "replication_factor": 1}},
            timeout_ms=30000,
            wait_for_metadata=True,
        )
        errs = [t for t in res.get("topics", []) if t.get("error_code")]
        assert not errs, f"create_topics errors: {errs}"
        meta = admin.describe_topics([topic])
        assert len(meta) == 1 and meta[0]["error_code"] == 0, f"describe_topics: {meta}"
        assert sorted(p["partition_index"] for p in meta[0]["partitions"]) == list(
            range(partitions)
        ), f"describe_topics: {meta}"
    finally:
        admin.close()
    wait_leaders_ready(bootstrap, topic, partitions)


def kp_produce(
    bootstrap: str, topic: str, recs: list[Rec], *, timeout: float = 120, **conf
) -> dict[int, tuple[int, int]]:
    from kafka import KafkaProducer

    cfg = {"bootstrap_servers": bootstrap, "acks": "all", "linger_ms": 5}
    cfg.update(conf)
    p = KafkaProducer(**cfg)
    try:
        futs = []
        for r in recs:
            futs.append(
                (
                    r.seq,
                    p.send(
                        topic,
                        key=r.key,
                        value=r.value,
                        headers=list(r.headers) if r.headers else None,
                        timestamp_ms=r.timestamp,
                    ),
                )
            )
        p.flush(timeout=timeout)
        acked = {}
        errors = []
        for seq, f in futs:
            try:
                md = f.get(timeout=1)
            except Exception as e:  # noqa: BLE001 - collect and report
                errors.append(f"seq {seq}: {e!r}")
                continue
            acked[seq] = (md.partition, md.offset)
        assert not errors, f"{len(errors)} send errors, e.g. {errors[:5]}"
        return acked
    finally:
        p.close(timeout=10)


def kp_consume_all(
    bootstrap: str, topic: str, partitions: int, *, timeout: float = 60, **conf
) -> list[Got]:
    """assign() + seek_to_beginning(); read until every partition's position
    reaches its end offset (as listed before reading)."""
    from kafka import KafkaConsumer, TopicPartition

    cfg = {
        "bootstrap_servers": bootstrap,
        "group_id": None,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "consumer_timeout_ms": 10000,
    }
    cfg.update(conf)
    c = KafkaConsumer(**cfg)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        c.seek_to_beginning()
        end = c.end_offsets(tps)
        pos = {tp: 0 for tp in tps}
        got: list[Got] = []
        deadline = time.monotonic() + timeout
        while any(pos[tp] < end[tp] for tp in tps):
            assert time.monotonic() < deadline, f"consume timed out: {len(got)} records, positions {pos}, ends {end}"
            progressed = False
            for rec in c:  # ends after consumer_timeout_ms without records
                progressed = True
                tp = TopicPartition(rec.topic, rec.partition)
                got.append(
                    Got(rec.partition, rec.offset, rec.key, rec.value, norm_headers(rec.headers), rec.timestamp)
                )
                pos[tp] = rec.offset + 1
                if all(pos[t] >= end[t] for t in tps) or time.monotonic() >= deadline:
                    break
            assert progressed, f"no records for {cfg['consumer_timeout_ms']} ms: {len(got)} records, positions {pos}, ends {end}"
        return got
    finally:
        c.close()
