"""Client-matrix scenario for aiokafka (see ../README.md).

    python scenario.py BOOTSTRAP TOPIC_PREFIX

1. AIOKafkaAdminClient.create_topics: one 3-partition topic (and a second
   create of the same name answers TOPIC_ALREADY_EXISTS); describe_topics
   shows 3 partitions with a leader.
2. One AIOKafkaProducer per codec (none, gzip, snappy, lz4, zstd: cramjam is
   aiokafka's backend for the last three), acks=all, idempotence on for every
   other codec: keyed and unkeyed records, headers (with a repeated key and an
   empty value), null keys, null values, empty values, an empty key, explicit
   CreateTime timestamps; plus one hand-built batch per codec (create_batch /
   send_batch, the only way to send a null key with a null value). Every send's RecordMetadata is checked: partition as
   requested (or one partition per key), offsets consecutive from 0.
3. AIOKafkaConsumer without a group: assign() every partition,
   seek_to_beginning(), getmany() until each partition's end: every record's
   partition, offset, key, value, headers, timestamp and timestamp type as
   produced; offsets contiguous from 0; per-key order; and each compressed
   codec came back in batches still compressed with it (compression kept).
4. beginning_offsets (0), end_offsets (count per partition) and
   offsets_for_times: before everything, between two records (the first at or
   after), and after everything (None).

Exits 0 and prints `RESULT aiokafka <version> ok` last only if every check
passed; otherwise exits 1 with `FAIL <step>: <what>`.
"""

from __future__ import annotations

import asyncio
import sys
import time
import traceback
from collections import Counter

import aiokafka
import aiokafka.consumer.fetcher as fetcher_mod
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner

PARTITIONS = 3
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CODEC_IDS = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
KEYS = [b"alpha", b"bravo", b"charlie", b"delta", b"echo"]
TIMEOUT_S = 30

STEP = "setup"


class CheckFailed(Exception):
    pass


def step(name: str) -> None:
    global STEP
    STEP = name
    print(f"STEP {name}", flush=True)


def check(cond, what: str) -> None:
    if not cond:
        raise CheckFailed(f"{STEP}: {what}")


# Count the record batches the consumer receives per compression codec, to
# check the broker hands back the producer's batches still compressed.
BATCH_CODECS: Counter = Counter()


class _CountingRecords:
    def __init__(self, raw):
        self._inner = fetcher_mod_MemoryRecords(raw)

    def next_batch(self, *a, **k):
        b = self._inner.next_batch(*a, **k)
        if b is not None:
            BATCH_CODECS[b.compression_type] += 1
        return b

    def __getattr__(self, name):
        return getattr(self._inner, name)


fetcher_mod_MemoryRecords = fetcher_mod.MemoryRecords
fetcher_mod.MemoryRecords = _CountingRecords


class Rec:
    __slots__ = ("seq", "key", "value", "headers", "timestamp", "partition", "offset", "codec")

    def __init__(self, seq, key, value, headers, timestamp, partition=None):
        self.seq = seq
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
        self.partition = partition
        self.offset = None
        self.codec = None

    def __repr__(self):
        return f"seq {self.seq} ({self.codec}) p{self.partition} o{self.offset}"


def filler_of(codec: str) -> str:
    return f"{codec} payload that compresses well " * 8


def make_records(codec: str, first_seq: int, base_ts: int) -> list[Rec]:
    recs: list[Rec] = []
    filler = filler_of(codec).encode()

    def add(key, value, headers=(), partition=None):
        seq = first_seq + len(recs)
        hdrs = (("id", f"{codec}-{seq}".encode()),) + tuple(headers)
        recs.append(Rec(seq, key, value, hdrs, base_ts + seq * 10, partition))

    # keyed records, several per key (per-key order), default partitioner
    for rnd in range(4):
        for k in KEYS:
            hdrs = ()
            if rnd % 2:
                hdrs = (("rep", b"first"), ("rep", b"second"), ("rep", b""), ("single", b"x"))
            add(k, k + f"#{rnd} ".encode() + filler, hdrs)
    # unkeyed records, placed explicitly so their partition is known
    for i in range(6):
        add(None, f"unkeyed#{i} ".encode() + filler, partition=i % PARTITIONS)
    add(b"alpha", None)  # tombstone
    add(b"bravo", b"")  # empty value
    add(None, b"", partition=1)  # null key, empty value
    add(b"", b"empty-key " + filler)  # empty (not null) key
    add("ключ-ü".encode(), "значение ✓".encode(), (("ключ", "✓".encode()),))
    return recs


async def main(bootstrap: str, prefix: str) -> None:
    topic = f"{prefix}aiokafka-{int(time.time() * 1000):x}"
    print(f"aiokafka {aiokafka.__version__} bootstrap={bootstrap} topic={topic}", flush=True)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    closers = []
    try:
        # 1. CreateTopics
        step("create-topic")
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_S * 1000)
        await admin.start()
        closers.append(admin.close)
        resp = await admin.create_topics([NewTopic(topic, PARTITIONS, 1)], timeout_ms=TIMEOUT_S * 1000)
        errs = [(t[0], t[1]) for t in resp.topic_errors]
        check(errs == [(topic, 0)], f"create_topics answered {resp.topic_errors}")
        resp = await admin.create_topics([NewTopic(topic, PARTITIONS, 1)], timeout_ms=TIMEOUT_S * 1000)
        errs = [(t[0], t[1]) for t in resp.topic_errors]
        check(errs == [(topic, 36)], f"second create_topics answered {resp.topic_errors}, expected TOPIC_ALREADY_EXISTS (36)")
        # Kafka propagates metadata asynchronously: wait until it shows the topic
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            desc = await admin.describe_topics([topic])
            parts = desc[0]["partitions"] if desc and desc[0]["error_code"] == 0 else []
            if sorted(p["partition"] for p in parts) == list(range(PARTITIONS)) and all(
                p["leader"] >= 0 for p in parts
            ):
                break
            check(time.monotonic() < deadline, f"describe_topics never showed {PARTITIONS} partitions with leaders: {desc}")
            await asyncio.sleep(0.1)
        print(f"  created {topic} with {PARTITIONS} partitions", flush=True)

        # 2. Produce, one producer per codec
        step("produce")
        base_ts = int(time.time() * 1000) - 10 * 60 * 1000
        expected: list[list[Rec]] = [[] for _ in range(PARTITIONS)]
        key_partition: dict[bytes, int] = {}
        partitioner = DefaultPartitioner()
        seq = 0
        for i, codec in enumerate(CODECS):
            idempotent = i % 2 == 0
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap,
                acks="all",
                compression_type=None if codec == "none" else codec,
                enable_idempotence=idempotent,
                linger_ms=20,
                request_timeout_ms=TIMEOUT_S * 1000,
                client_id=f"gregor-matrix-aiokafka-{codec}",
            )
            await producer.start()
            try:
                recs = make_records(codec, seq, base_ts)
                seq += len(recs)
                futs = []
                for r in recs:
                    futs.append(
                        await producer.send(
                            topic,
                            value=r.value,
                            key=r.key,
                            partition=r.partition,
                            timestamp_ms=r.timestamp,
                            headers=list(r.headers),
                        )
                    )
                try:
                    metas = await asyncio.wait_for(asyncio.gather(*futs), TIMEOUT_S)
                except Exception as e:  # noqa: BLE001
                    raise CheckFailed(f"{STEP}: {codec}: send failed: {e!r}") from e
                # a hand-built batch (create_batch / send_batch): the only way
                # aiokafka sends a record with both key and value null
                bpart = i % PARTITIONS
                batch = producer.create_batch()
                extra = []
                for key, value, hdrs in (
                    (None, None, (("rep", b"a"), ("rep", b"a"))),
                    (None, f"batch {filler_of(codec)}".encode(), ()),
                    (None, b"", (("empty", b""),)),
                ):
                    r = Rec(seq, key, value, (("id", f"{codec}-{seq}".encode()),) + hdrs, base_ts + seq * 10, bpart)
                    seq += 1
                    check(
                        batch.append(key=r.key, value=r.value, timestamp=r.timestamp, headers=list(r.headers)) is not None,
                        "BatchBuilder.append refused a small record",
                    )
                    extra.append(r)
                batch.close()
                fut = await producer.send_batch(batch, topic, partition=bpart)
                try:
                    bmeta = await asyncio.wait_for(fut, TIMEOUT_S)
                except Exception as e:  # noqa: BLE001
                    raise CheckFailed(f"{STEP}: {codec}: send_batch failed: {e!r}") from e
                check(bmeta.partition == bpart, f"{codec}: send_batch went to partition {bmeta.partition}, not {bpart}")
            finally:
                await producer.stop()
            for r, md in zip(recs, metas):
                r.codec = codec
                check(md.topic == topic, f"{r}: acknowledged for topic {md.topic}")
                if r.partition is not None:
                    check(md.partition == r.partition, f"{r}: acknowledged in partition {md.partition}")
                else:
                    want = partitioner(r.key, list(range(PARTITIONS)), list(range(PARTITIONS)))
                    check(md.partition == want, f"{r}: key {r.key!r} went to partition {md.partition}, murmur2 says {want}")
                    r.partition = md.partition
                if r.key is not None:
                    check(key_partition.setdefault(r.key, r.partition) == r.partition, f"{r}: key {r.key!r} in two partitions")
                # log_append_time -1 in the Produce response: CreateTime. (Not
                # md.timestamp itself: aiokafka 0.14 gives every record of a
                # batch the first record's timestamp.)
                check(md.timestamp_type == 0, f"{r}: acknowledged with timestamp type {md.timestamp_type}, expected CreateTime")
                r.offset = md.offset
                expected[r.partition].append(r)
            check(
                bmeta.offset == len(expected[bpart]),
                f"{codec}: send_batch base offset {bmeta.offset}, expected {len(expected[bpart])}",
            )
            for r in extra:
                r.codec = codec
                r.offset = len(expected[bpart])
                expected[bpart].append(r)
            for p in range(PARTITIONS):
                offs = [r.offset for r in expected[p]]
                check(offs == list(range(len(offs))), f"{codec}: partition {p} acknowledged offsets {offs}, expected 0..{len(offs) - 1}")
            print(f"  produced {len(recs)} + {len(extra)} (send_batch) records with {codec} (idempotence {'on' if idempotent else 'off'})", flush=True)
        counts = [len(e) for e in expected]
        print(f"  per-partition counts {counts}", flush=True)

        # 3. Consume from the beginning without a group
        step("consume")
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="none",
            request_timeout_ms=TIMEOUT_S * 1000,
            client_id="gregor-matrix-aiokafka-consumer",
        )
        await consumer.start()
        closers.append(consumer.stop)
        consumer.assign(tps)
        await consumer.seek_to_beginning()
        got: list[list] = [[] for _ in range(PARTITIONS)]
        deadline = time.monotonic() + TIMEOUT_S
        while any(len(got[p]) < counts[p] for p in range(PARTITIONS)):
            check(time.monotonic() < deadline, f"timed out: read {[len(g) for g in got]} of {counts}")
            batches = await consumer.getmany(timeout_ms=500)
            for tp, msgs in batches.items():
                check(tp.topic == topic, f"records from topic {tp.topic}")
                got[tp.partition].extend(msgs)
        for p in range(PARTITIONS):
            check(len(got[p]) == counts[p], f"partition {p}: read {len(got[p])} records, expected {counts[p]}")
            last_seq: dict[bytes, int] = {}
            for i, (m, e) in enumerate(zip(got[p], expected[p])):
                where = f"partition {p} offset {i} ({e.headers[0][1].decode()})"
                check(m.partition == p, f"{where}: record says partition {m.partition}")
                check(m.offset == i, f"{where}: offset {m.offset}: offsets not contiguous from 0")
                check(m.key == e.key, f"{where}: key {m.key!r}, expected {e.key!r}")
                check(m.value == e.value, f"{where}: value {m.value!r:.80}, expected {e.value!r:.80}")
                hdrs = tuple((k, bytes(v) if v is not None else None) for k, v in (m.headers or ()))
                check(hdrs == e.headers, f"{where}: headers {hdrs}, expected {e.headers}")
                check(m.timestamp == e.timestamp, f"{where}: timestamp {m.timestamp}, expected {e.timestamp}")
                check(m.timestamp_type == 0, f"{where}: timestamp type {m.timestamp_type}, expected CreateTime (0)")
                if m.key is not None:
                    check(last_seq.get(m.key, -1) < e.seq, f"{where}: key {m.key!r} out of order")
                    last_seq[m.key] = e.seq
        for codec in CODECS[1:]:
            check(
                BATCH_CODECS[CODEC_IDS[codec]] > 0,
                f"no {codec} batch came back (batches per codec id {dict(BATCH_CODECS)}): "
                "the broker did not keep the producer's compression",
            )
        print(f"  read back {sum(counts)} records, all match; batches per codec id {dict(sorted(BATCH_CODECS.items()))}", flush=True)

        # 4. ListOffsets
        step("list-offsets")
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        check(begin == {tp: 0 for tp in tps}, f"beginning_offsets {begin}")
        check(end == {tp: counts[tp.partition] for tp in tps}, f"end_offsets {end}, expected {counts}")
        mid = expected[0][len(expected[0]) // 2]
        probes = [
            base_ts - 60_000,  # before everything: offset 0 everywhere
            mid.timestamp - 5,  # between two records
            base_ts + (seq // 3) * 10 + 5,
            base_ts + seq * 10 + 60_000,  # after everything: None
        ]
        for ts in probes:
            res = await consumer.offsets_for_times({tp: ts for tp in tps})
            for tp in tps:
                first = next((r for r in expected[tp.partition] if r.timestamp >= ts), None)
                got_o = res.get(tp)
                if first is None:
                    check(got_o is None, f"offsets_for_times({ts}) partition {tp.partition}: {got_o}, expected None")
                else:
                    check(
                        got_o is not None and got_o.offset == first.offset and got_o.timestamp == first.timestamp,
                        f"offsets_for_times({ts}) partition {tp.partition}: {got_o}, expected offset "
                        f"{first.offset} timestamp {first.timestamp}",
                    )
        print("  earliest, latest and by-timestamp offsets match", flush=True)
    finally:
        for close in reversed(closers):
            try:
                await close()
            except Exception:  # noqa: BLE001
                pass


def run() -> int:
    if len(sys.argv) != 3:
        print("usage: scenario.py BOOTSTRAP TOPIC_PREFIX", file=sys.stderr)
        return 2
    try:
        asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2]), 240))
    except CheckFailed as e:
        print(f"FAIL {e}", file=sys.stderr)
        return 1
    except BaseException:  # noqa: BLE001
        print(f"FAIL {STEP}: {traceback.format_exc()}", file=sys.stderr)
        return 1
    # printed after every client is closed, so that it is the last line
    print(f"RESULT aiokafka {aiokafka.__version__} ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run())
