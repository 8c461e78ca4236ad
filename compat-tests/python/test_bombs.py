"""Decompression bombs (issue 7): compressed record batches with a valid
CRC whose records inflate far beyond what a batch may hold, or whose
compressed stream lies about its size or is corrupt.

The broker bounds decompression at 32 x the topic's max.message.bytes
(default message.max.bytes 1048588, so 33,554,816 bytes): a Produce of such
a batch is refused with INVALID_RECORD (87) or CORRUPT_MESSAGE (2), never 0,
and nothing is appended. After each bomb, on a broker started for that bomb
alone: the high watermark has not moved, ListOffsets by timestamp on the
partition (the lookup that decompresses stored batches) answers, the process
is alive, an idle connection opened before the bomb still gets ApiVersions
answered, a normal produce still lands at the next offset, and the peak RSS
(VmHWM) stays under PEAK_RSS_LIMIT_KIB. Legitimate compressed batches of
every codec are still accepted and readable by confluent-kafka.

Kafka 4.3.1 itself has no such cap: it accepts the gzip bombs (inflating
them), takes the lz4 frame lying about its size, and answers
UNKNOWN_SERVER_ERROR (-1) to corrupt snappy, lz4 and zstd streams. The codes
asked for here are the ones Kafka gives for a corrupt or invalid batch.
The legitimate batches below are accepted by Kafka 4.3.1 as they are.

Bombs are built without holding the inflated bytes: zstd as hand-made
frames of RLE blocks (8 GiB in 262 KB, the size in the issue), gzip by
repeating one full-flushed deflate block, lz4 by streaming zeros. Besides one record of 192 MiB to 8 GiB, each big
codec has a bomb of many 1 MiB records whose count is true: only the total
gives it away. Snappy
cannot compress better than about 21:1, so no honest snappy batch under
max.message.bytes inflates past 32 x it; its bombs are streams that declare
a 4 GiB length they do not have.
"""

from __future__ import annotations

import random
import resource
import socket
import struct
import time
import zlib

import pytest

from compat import ck_consume_all, unique_topic, wait_leaders_ready
from rawkafka import (
    batch_v2,
    check_api_versions_v0,
    huge_record_parts,
    list_offsets_v4,
    parse_list_offsets_v4_response,
    parse_produce_v7_response,
    produce_v7,
    read_response,
    record_v2,
)
from test_hostile import peak_rss_kib

GZIP, SNAPPY, LZ4, ZSTD = 1, 2, 3, 4
REFUSED = {2, 87}  # CORRUPT_MESSAGE, INVALID_RECORD
MIB = 1 << 20
GIB = 1 << 30
INFLATE_CAP = 32 * 1048588  # 32 x the default message.max.bytes
# The bombs inflate to 192 MiB (lz4), 512 MiB (gzip) and 8 GiB (zstd), the
# lying headers claim 4 and 8 GiB; the debug broker peaks near 10 MiB here,
# its sled cache is at most 64 MiB and the cap lets 32 MiB be inflated: 128
# MiB leaves room for all that but not for inflating any bomb whole.
PEAK_RSS_LIMIT_KIB = 128 * 1024
# address space for the broker during a bomb (it starts near 150 MiB)
BROKER_AS_LIMIT = 4 << 30
# A broker bounding decompression refuses a bomb after inflating at most the
# cap; a debug build may take a few seconds for that.
PRODUCE_TIMEOUT = 60.0
# record timestamps are fixed, so where a time falls in the log is known
T0 = 1_700_000_000_000


# --------------------------------------------------------------------------
# codecs, streamed: a stream is a list of pieces, each either bytes or a
# count of zero bytes, so the inflated bytes are never held
# --------------------------------------------------------------------------


def one_record(zeros: int) -> list:
    """One record whose value is `zeros` zero bytes."""
    p, s = huge_record_parts(zeros)
    return [p, zeros, s]


def many_records(n: int, zeros: int) -> list:
    """n records of `zeros` zero bytes each: every record is of a normal
    size and the count is true, only the total is too much."""
    out = []
    for i in range(n):
        p, s = huge_record_parts(zeros, offset_delta=i)
        out += [p, zeros, s]
    return out


def _literal(pieces: list):
    """The pieces with adjacent bytes merged."""
    out = []
    for x in pieces:
        if isinstance(x, bytes) and out and isinstance(out[-1], bytes):
            out[-1] += x
        else:
            out.append(x)
    return out


def deflate(pieces: list) -> bytes:
    """Raw deflate. After a full flush deflate forgets its history, so every
    1 MiB of zeros compresses to the same block: made once, repeated."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(MIB)) + c.flush(zlib.Z_FULL_FLUSH)
    out = []
    for x in pieces:
        if isinstance(x, bytes):
            out.append(c.compress(x) + c.flush(zlib.Z_FULL_FLUSH))
        else:
            assert x % MIB == 0
            out.append(block * (x // MIB))
    out.append(c.flush(zlib.Z_FINISH))
    return b"".join(out)


def gzip_member(pieces: list) -> bytes:
    crc, size, chunk = 0, 0, bytes(MIB)
    for x in pieces:
        if isinstance(x, bytes):
            crc, size = zlib.crc32(x, crc), size + len(x)
        else:
            for _ in range(x // MIB):
                crc = zlib.crc32(chunk, crc)
            size += x
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + deflate(pieces) + struct.pack("<II", crc, size & 0xFFFFFFFF)


def gzip_members(pieces: list) -> bytes:
    """The same bytes as concatenated gzip members of at most 1 MiB of zeros
    each (RFC 1952 allows it; Java's GZIPInputStream reads them all)."""
    members, current = [], []
    for x in pieces:
        if isinstance(x, bytes):
            current.append(x)
            continue
        for _ in range(x // MIB):
            current.append(MIB)
            members.append(current)
            current = []
    members.append(current)
    cache = {}
    out = []
    for m in members:
        key = tuple(m)
        if key not in cache:
            cache[key] = gzip_member(m)
        out.append(cache[key])
    return b"".join(out)


def lz4_frame(pieces: list) -> bytes:
    import lz4.frame

    # independent blocks, as librdkafka writes them: Kafka cannot read linked ones
    c = lz4.frame.LZ4FrameCompressor(block_size=lz4.frame.BLOCKSIZE_MAX4MB, block_linked=False)
    out = [c.begin()]
    chunk = bytes(MIB)
    for x in pieces:
        if isinstance(x, bytes):
            out.append(c.compress(x))
        else:
            assert x % MIB == 0
            out += [c.compress(chunk) for _ in range(x // MIB)]
    out.append(c.flush())
    return b"".join(out)


def _xxh32_short(data: bytes) -> int:
    """XXH32 (seed 0) of fewer than 16 bytes: the LZ4 frame header checksum."""
    p1, p2, p3, p4, p5, m = 2654435761, 2246822519, 3266489917, 668265263, 374761393, 0xFFFFFFFF

    def rotl(x, r):
        return ((x << r) | (x >> (32 - r))) & m

    assert len(data) < 16
    h = (p5 + len(data)) & m
    i = 0
    while i + 4 <= len(data):
        (w,) = struct.unpack_from("<I", data, i)
        h = (rotl((h + w * p3) & m, 17) * p4) & m
        i += 4
    for b in data[i:]:
        h = (rotl((h + b * p5) & m, 11) * p1) & m
    h ^= h >> 15
    h = (h * p2) & m
    h ^= h >> 13
    h = (h * p3) & m
    return h ^ (h >> 16)


def lz4_frame_declaring(content: bytes, declared: int) -> bytes:
    """An LZ4 frame whose header declares `declared` bytes of content (with a
    correct header checksum) around one uncompressed block of `content`."""
    descriptor = bytes([0x68, 0x70]) + struct.pack("<Q", declared)  # v01, independent, size; 4 MiB blocks
    hc = (_xxh32_short(descriptor) >> 8) & 0xFF
    block = struct.pack("<I", len(content) | 0x80000000) + content  # high bit: stored uncompressed
    return b"\x04\x22\x4d\x18" + descriptor + bytes([hc]) + block + b"\x00\x00\x00\x00"


def _zstd_block(last: int, kind: int, size: int) -> bytes:
    return struct.pack("<I", last | kind << 1 | size << 3)[:3]


def zstd_rle_frame(pieces: list, *, declare: bool) -> bytes:
    """A zstd frame of raw blocks for the bytes and RLE blocks of 128 KiB of
    zeros (4 bytes each), with a 128 KiB window, and with `declare` the true
    content size in the header."""
    pieces = _literal(pieces)
    size = sum(len(x) if isinstance(x, bytes) else x for x in pieces)
    blocks = []
    for x in pieces:
        if isinstance(x, bytes):
            blocks += [(0, x[i : i + 128 * 1024]) for i in range(0, len(x), 128 * 1024)] or [(0, b"")]
        else:
            full, rest = divmod(x, 128 * 1024)
            blocks += [(1, 128 * 1024)] * full + ([(1, rest)] if rest else [])
    out = [b"\x28\xb5\x2f\xfd", b"\xc0\x38" + struct.pack("<Q", size) if declare else b"\x00\x38"]
    for i, (kind, x) in enumerate(blocks):
        last = int(i == len(blocks) - 1)
        if kind == 0:
            out.append(_zstd_block(last, 0, len(x)) + x)
        else:
            out.append(_zstd_block(last, 1, x) + b"\x00")
    return b"".join(out)


def zstd_frame_declaring(content: bytes, declared: int) -> bytes:
    """A single-segment zstd frame (window = content size) whose header
    declares `declared` bytes around one raw block of `content`: a decoder
    trusting the header allocates `declared` bytes up front."""
    return b"\x28\xb5\x2f\xfd" + b"\xe0" + struct.pack("<Q", declared) + _zstd_block(1, 0, len(content)) + content


def snappy_raw(data: bytes) -> bytes:
    import cramjam

    return bytes(cramjam.snappy.compress_raw(data))


XERIAL_HEADER = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)


def snappy_xerial(data: bytes, block: int = 32 * 1024) -> bytes:
    """Kafka's Java framing: the xerial header, then be32 length + raw snappy
    per block."""
    out = [XERIAL_HEADER]
    for i in range(0, len(data), block):
        c = snappy_raw(data[i : i + block])
        out.append(struct.pack(">i", len(c)) + c)
    return b"".join(out)


def snappy_declaring(content: bytes, declared: int) -> bytes:
    """Raw snappy whose preamble declares `declared` bytes, then `content`
    as one literal."""
    from rawkafka import uvarint

    n = len(content) - 1
    assert n < 60
    return uvarint(declared) + bytes([n << 2]) + content


def compress(codec: int, data: bytes) -> bytes:
    if codec == GZIP:
        return zlib.compress(data, 6, 31)  # wbits 31: gzip container
    if codec == SNAPPY:
        return snappy_raw(data)
    if codec == LZ4:
        import lz4.frame

        return lz4.frame.compress(data, block_linked=False)
    if codec == ZSTD:
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    raise ValueError(codec)


# --------------------------------------------------------------------------
# the bombs: (compressed records, codec, recordsCount)
# --------------------------------------------------------------------------

ONE_RECORD = record_v2(0, b"just one small record")


def bomb(name: str) -> tuple[bytes, int, int]:
    if name == "gzip-512MiB":
        return gzip_member(one_record(512 * MIB)), GZIP, 1
    if name == "gzip-512-members":
        return gzip_members(one_record(512 * MIB)), GZIP, 1
    if name == "gzip-512x1MiB-records":
        return gzip_member(many_records(512, MIB)), GZIP, 512
    if name == "gzip-trailing-512MiB":
        # a valid record, then 512 MiB the batch does not account for
        return gzip_member([ONE_RECORD, 512 * MIB]), GZIP, 1
    if name == "snappy-raw-declares-4GiB":
        return snappy_declaring(ONE_RECORD, 0xFFFFFFFF), SNAPPY, 1
    if name == "snappy-xerial-block-declares-4GiB":
        c = snappy_declaring(ONE_RECORD, 0xFFFFFFFF)
        return XERIAL_HEADER + struct.pack(">i", len(c)) + c, SNAPPY, 1
    if name == "snappy-xerial-block-length-2GiB":
        c = snappy_raw(ONE_RECORD)
        return XERIAL_HEADER + struct.pack(">i", 0x7FFFFFFF) + c, SNAPPY, 1
    if name == "lz4-192MiB":
        return lz4_frame(one_record(192 * MIB)), LZ4, 1
    if name == "lz4-192x1MiB-records":
        return lz4_frame(many_records(192, MIB)), LZ4, 192
    if name == "lz4-declares-8GiB":
        return lz4_frame_declaring(ONE_RECORD, 8 * GIB), LZ4, 1
    if name == "zstd-8GiB-declared":
        # the bomb: 262 KB, content size 8 GiB in the frame header
        return zstd_rle_frame(one_record(8 * GIB), declare=True), ZSTD, 1
    if name == "zstd-8GiB-undeclared":
        return zstd_rle_frame(one_record(8 * GIB), declare=False), ZSTD, 1
    if name == "zstd-8192x1MiB-records":
        return zstd_rle_frame(many_records(8192, MIB), declare=False), ZSTD, 8192
    if name == "zstd-declares-8GiB":
        return zstd_frame_declaring(ONE_RECORD, 8 * GIB), ZSTD, 1
    if name == "zstd-trailing-100MiB":
        return zstd_rle_frame([ONE_RECORD, 100 * MIB], declare=True), ZSTD, 1
    if name == "zstd-count-2^31-1":
        # 1000 real records, a header claiming 2^31-1: a decoder that
        # reserves room for the claimed count asks for tens of GiB
        recs = b"".join(record_v2(i, b"x") for i in range(1000))
        return compress(ZSTD, recs), ZSTD, 0x7FFFFFFF
    raise ValueError(name)


BOMBS = [
    "gzip-512MiB",
    "gzip-512-members",
    "gzip-512x1MiB-records",
    "gzip-trailing-512MiB",
    "snappy-raw-declares-4GiB",
    "snappy-xerial-block-declares-4GiB",
    "snappy-xerial-block-length-2GiB",
    "lz4-192MiB",
    "lz4-192x1MiB-records",
    "lz4-declares-8GiB",
    "zstd-8GiB-declared",
    "zstd-8GiB-undeclared",
    "zstd-8192x1MiB-records",
    "zstd-declares-8GiB",
    "zstd-trailing-100MiB",
    "zstd-count-2^31-1",
]


# --------------------------------------------------------------------------
# raw-socket plumbing
# --------------------------------------------------------------------------


def create_topic(bootstrap: str, topic: str, config: dict | None = None) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futs = admin.create_topics([NewTopic(topic, 1, 1, config=config or {})], operation_timeout=30)
    futs[topic].result(timeout=30)
    wait_leaders_ready(bootstrap, topic, 1)  # Kafka (an external broker) needs a moment


def raw_produce(port: int, topic: str, batch: bytes, corr: int = 7) -> tuple[int, int]:
    """One Produce v7 (acks=-1) on a fresh connection -> (error_code, base_offset)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(produce_v7(corr, -1, topic, 0, batch))
        got_corr, parts = parse_produce_v7_response(read_response(s, PRODUCE_TIMEOUT))
    assert got_corr == corr and len(parts) == 1, (got_corr, parts)
    return parts[0][2], parts[0][3]


def list_offset(port: int, topic: str, timestamp: int) -> tuple[int, int, int]:
    """ListOffsets v4 for partition 0 -> (error_code, timestamp, offset)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(list_offsets_v4(9, topic, 0, timestamp))
        corr, parts = parse_list_offsets_v4_response(read_response(s, 30))
    assert corr == 9 and len(parts) == 1, (corr, parts)
    return parts[0][2:]


def check(problems: list[str], what: str, fn):
    """Runs one check, noting a failure instead of stopping, so one report
    says everything the broker did after a bomb."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - every failure is reported
        problems.append(f"{what}: {type(e).__name__}: {e}")
        return None


# --------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", BOMBS)
def test_bomb_is_refused_and_broker_keeps_serving(broker, name, timings):
    records, codec, count = bomb(name)
    batch = batch_v2(records, count, codec=codec, base_ts=T0 + 1000)
    assert len(batch) < 1048588, f"{name}: {len(batch)} bytes would be refused for its size alone"
    if broker.pid is not None:  # None: COMPAT_EXTERNAL_BOOTSTRAP
        # a broker that does inflate a bomb fails its allocation (and the
        # test) instead of taking 8 GiB of a shared machine
        resource.prlimit(broker.pid, resource.RLIMIT_AS, (BROKER_AS_LIMIT, BROKER_AS_LIMIT))
    topic = unique_topic("bomb")
    create_topic(broker.bootstrap, topic)
    idle = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
    problems: list[str] = []
    res = peak = None
    took = 0.0
    try:
        check_api_versions_v0(idle, corr=1)
        # one good record at T0 first, so the partition has something to look up
        good = batch_v2(record_v2(0, b"before"), 1, base_ts=T0)
        assert raw_produce(broker.port, topic, good) == (0, 0)

        t = time.monotonic()
        res = check(problems, "Produce of the bomb", lambda: raw_produce(broker.port, topic, batch))
        took = time.monotonic() - t
        if res is not None and res[0] not in REFUSED:
            problems.append(f"Produce of the bomb answered error {res[0]} (base offset {res[1]}), want 87 or 2")

        # the lookup that used to inflate the stored bomb into one buffer
        by_ts = check(problems, "ListOffsets by timestamp", lambda: list_offset(broker.port, topic, T0 + 1))
        if by_ts is not None and by_ts != (0, -1, -1):
            problems.append(f"ListOffsets for a time after the good record gave {by_ts}, want (0, -1, -1)")
        hw = check(problems, "ListOffsets latest", lambda: list_offset(broker.port, topic, -1))
        if hw is not None and hw[2] != 1:
            problems.append(f"high watermark {hw[2]} after the bomb, want 1 (nothing appended)")
        if not broker.alive():
            problems.append(f"broker died: exit code {broker.proc.poll()}")
        else:
            check(problems, "ApiVersions on the idle connection", lambda: check_api_versions_v0(idle, corr=2))
            after = batch_v2(record_v2(0, b"after"), 1, base_ts=T0 + 2000)
            res2 = check(problems, "Produce after the bomb", lambda: raw_produce(broker.port, topic, after))
            if res2 is not None and res2 != (0, 1):
                problems.append(f"Produce after the bomb gave {res2}, want (0, 1)")
            if broker.pid is not None:
                peak = check(problems, "reading VmHWM", lambda: peak_rss_kib(broker.pid))
                if peak is not None and peak >= PEAK_RSS_LIMIT_KIB:
                    problems.append(f"peak RSS {peak // 1024} MiB, limit {PEAK_RSS_LIMIT_KIB // 1024} MiB")
    finally:
        idle.close()
    timings.append(
        f"bomb {name}: {len(batch)} bytes, answered {res and res[0]} in {took:.2f} s, "
        f"peak RSS {peak and peak // 1024} MiB"
    )
    assert not problems, (
        f"{name} ({len(batch)} bytes, answered in {took:.1f}s):\n  " + "\n  ".join(problems)
    )


def test_corrupt_compressed_streams_are_refused(broker):
    """Random bytes, and a valid stream cut in half, under every codec (and
    the xerial snappy framing): refused with 2 or 87, nothing appended."""
    recs = b"".join(record_v2(i, b"value %d " % i * 20) for i in range(200))
    streams = {
        GZIP: compress(GZIP, recs),
        SNAPPY: snappy_raw(recs),
        LZ4: compress(LZ4, recs),
        ZSTD: compress(ZSTD, recs),
    }
    cases = []
    for codec, c in streams.items():
        cases.append((f"codec {codec} random", codec, random.Random(codec).randbytes(4096)))
        cases.append((f"codec {codec} truncated", codec, c[: len(c) // 2]))
    x = snappy_xerial(recs, block=4096)
    cases.append(("snappy xerial truncated", SNAPPY, x[: len(x) // 2]))
    cases.append(("snappy xerial random blocks", SNAPPY, XERIAL_HEADER + struct.pack(">i", 512) + bytes(512)))
    topic = unique_topic("corrupt")
    create_topic(broker.bootstrap, topic)
    problems = []
    for what, codec, data in cases:
        res = check(problems, what, lambda: raw_produce(broker.port, topic, batch_v2(data, 200, codec=codec)))
        if res is not None and res[0] not in REFUSED:
            problems.append(f"{what}: error {res[0]} (base offset {res[1]}), want 87 or 2")
    assert broker.alive(), f"broker died: exit code {broker.proc.poll()}"
    hw = list_offset(broker.port, topic, -1)
    assert not problems and hw == (0, -1, 0), "\n".join(problems + [f"latest offset answer {hw}"])


LEGIT = {
    "gzip": (GZIP, lambda d: compress(GZIP, d)),
    "snappy-raw": (SNAPPY, snappy_raw),
    "snappy-xerial": (SNAPPY, snappy_xerial),
    "lz4": (LZ4, lambda d: compress(LZ4, d)),
    "zstd": (ZSTD, lambda d: compress(ZSTD, d)),
}


@pytest.mark.parametrize("name", list(LEGIT))
def test_legit_compressed_batch_is_accepted_and_readable(broker, name):
    """1000 records (about 1 MiB inflated) in one compressed batch: error 0,
    ListOffsets by timestamp finds a record inside the batch, and
    confluent-kafka reads every record back."""
    codec, comp = LEGIT[name]
    values = [(b"%06d " % i) + bytes(range(256)) * 4 for i in range(1000)]
    recs = b"".join(record_v2(i, v, key=b"k%d" % (i % 10), ts_delta=i) for i, v in enumerate(values))
    batch = batch_v2(comp(recs), 1000, codec=codec, base_ts=T0, max_ts=T0 + 999)
    topic = unique_topic("legit")
    create_topic(broker.bootstrap, topic)
    assert raw_produce(broker.port, topic, batch) == (0, 0)
    assert list_offset(broker.port, topic, -1)[2] == 1000
    assert list_offset(broker.port, topic, T0 + 500) == (0, T0 + 500, 500)
    got = ck_consume_all(broker.bootstrap, topic, 1)
    assert [(g.offset, g.key, g.value, g.timestamp) for g in got] == [
        (i, b"k%d" % (i % 10), v, T0 + i) for i, v in enumerate(values)
    ]


def test_batch_inflating_to_24MiB_is_accepted(broker):
    """Under the cap (32 x 1048588 bytes) a big inflation is legitimate."""
    n = 24
    recs = b"".join(record_v2(i, bytes(MIB), ts_delta=i) for i in range(n))
    batch = batch_v2(compress(ZSTD, recs), n, codec=ZSTD, base_ts=T0, max_ts=T0 + n - 1)
    topic = unique_topic("under-cap")
    create_topic(broker.bootstrap, topic)
    assert raw_produce(broker.port, topic, batch) == (0, 0)
    assert list_offset(broker.port, topic, T0 + 20) == (0, T0 + 20, 20)
    got = ck_consume_all(broker.bootstrap, topic, 1)
    assert [(g.offset, len(g.value), set(g.value)) for g in got] == [(i, MIB, {0}) for i in range(n)]


def test_cap_follows_topic_max_message_bytes(broker):
    """With max.message.bytes=65536 on the topic the cap is 2 MiB: a batch
    inflating to 4 MiB is refused there and accepted on a default topic."""
    recs = b"".join(record_v2(i, bytes(MIB)) for i in range(4))
    batch = batch_v2(compress(ZSTD, recs), 4, codec=ZSTD)
    assert len(batch) < 65536
    small = unique_topic("small-cap")
    create_topic(broker.bootstrap, small, {"max.message.bytes": "65536"})
    default = unique_topic("default-cap")
    create_topic(broker.bootstrap, default)
    err, _ = raw_produce(broker.port, small, batch)
    assert err in REFUSED, f"4 MiB inflated under a 2 MiB cap: error {err}"
    assert list_offset(broker.port, small, -1)[2] == 0
    assert raw_produce(broker.port, default, batch) == (0, 0)
