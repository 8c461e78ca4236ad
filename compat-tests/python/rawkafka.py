"""Hand-built Kafka requests on raw sockets (for what no client will send)."""

from __future__ import annotations

import socket
import struct
import time


def frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def header_v1(api_key: int, version: int, corr: int, client_id: bytes = b"") -> bytes:
    """Request header v1: api_key, api_version, correlation_id, client_id (i16 string)."""
    return struct.pack(">hhih", api_key, version, corr, len(client_id)) + client_id


def header_v2(api_key: int, version: int, corr: int, client_id: bytes = b"") -> bytes:
    """Request header v2 (flexible versions): v1 plus an empty tagged-field section."""
    return header_v1(api_key, version, corr, client_id) + b"\x00"


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def api_versions_v0(corr: int) -> bytes:
    return frame(header_v1(18, 0, corr, b"compat-idle"))


def recv_exact(sock: socket.socket, n: int, deadline: float) -> bytes:
    buf = b""
    while len(buf) < n:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise AssertionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def read_response(sock: socket.socket, timeout: float = 10.0) -> bytes:
    deadline = time.monotonic() + timeout
    (length,) = struct.unpack(">i", recv_exact(sock, 4, deadline))
    assert 0 <= length < 1 << 20, f"response length {length}"
    return recv_exact(sock, length, deadline)


def check_api_versions_v0(sock: socket.socket, corr: int) -> None:
    sock.sendall(api_versions_v0(corr))
    body = read_response(sock)
    got_corr, error, n = struct.unpack_from(">ihi", body)
    assert got_corr == corr, f"correlation id {got_corr}, sent {corr}"
    assert error == 0, f"ApiVersions v0 error code {error}"
    assert 0 < n < 200 and len(body) == 10 + 6 * n, f"{n} entries in {len(body)} bytes"
    keys = {struct.unpack_from(">hhh", body, 10 + 6 * i)[0] for i in range(n)}
    assert {0, 1, 2, 3, 18} <= keys, f"ApiVersions lists {sorted(keys)}"


def record_batch(values: list[bytes], key: bytes = b"k") -> bytes:
    """A RecordBatch v2 (uncompressed, no producer id) built by kafka-python."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    b = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    now = int(time.time() * 1000)
    for i, v in enumerate(values):
        b.append(i, timestamp=now, key=key, value=v, headers=[])
    return bytes(b.build())


def produce_v3(corr: int, acks: int, topic: str, partition: int, records: bytes) -> bytes:
    """Produce v3: transactional_id, acks, timeout, [topic, [partition, records]]."""
    t = topic.encode()
    body = (
        struct.pack(">hhi", -1, acks, 10_000)
        + struct.pack(">ih", 1, len(t))
        + t
        + struct.pack(">iii", 1, partition, len(records))
        + records
    )
    return frame(header_v1(0, 3, corr, b"compat-raw") + body)


def parse_produce_v3_response(body: bytes) -> tuple[int, list[tuple[str, int, int, int]]]:
    """-> (correlation id, [(topic, partition, error_code, base_offset)])."""
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from(fmt, body, pos)
        pos += struct.calcsize(fmt)
        return vals

    (corr,) = take(">i")
    out = []
    (nt,) = take(">i")
    for _ in range(nt):
        (ln,) = take(">h")
        name = body[pos : pos + ln].decode()
        pos += ln
        (np_,) = take(">i")
        for _ in range(np_):
            p, err, base, _log_append_time = take(">ihqq")
            out.append((name, p, err, base))
    take(">i")  # throttle_time_ms
    assert pos == len(body), f"{len(body) - pos} bytes left over in the Produce v3 response"
    return corr, out


# --- Record batches built byte by byte (for batches no client would send) ---


def zigzag_varint(n: int) -> bytes:
    """A signed varint/varlong as in Kafka records (zigzag, then base 128)."""
    return uvarint((n << 1) ^ (n >> 63))


def record_v2(offset_delta: int, value: bytes | None, key: bytes | None = None, ts_delta: int = 0) -> bytes:
    """One record of a v2 batch: length, attributes, timestampDelta,
    offsetDelta, key, value, no headers."""
    body = b"\x00" + zigzag_varint(ts_delta) + zigzag_varint(offset_delta)
    for field in (key, value):
        body += zigzag_varint(-1) if field is None else zigzag_varint(len(field)) + field
    body += zigzag_varint(0)
    return zigzag_varint(len(body)) + body


def huge_record_parts(value_len: int, offset_delta: int = 0) -> tuple[bytes, bytes]:
    """(prefix, suffix) of a record whose null-key value is `value_len` zero
    bytes: prefix + zeros(value_len) + suffix is one valid record, so a bomb
    can stream the zeros without holding them."""
    tail_fixed = (
        b"\x00" + zigzag_varint(0) + zigzag_varint(offset_delta) + zigzag_varint(-1) + zigzag_varint(value_len)
    )
    suffix = zigzag_varint(0)
    length = len(tail_fixed) + value_len + len(suffix)
    return zigzag_varint(length) + tail_fixed, suffix


def crc32c(data: bytes) -> int:
    from kafka.record.util import calc_crc32c

    return calc_crc32c(data)


def batch_v2(
    records: bytes,
    count: int,
    *,
    codec: int = 0,
    base_ts: int | None = None,
    max_ts: int | None = None,
    last_offset_delta: int | None = None,
    producer: tuple[int, int, int] = (-1, -1, -1),
) -> bytes:
    """A RecordBatch v2 around `records` (already compressed for a compressed
    codec), with a correct CRC-32C whatever the contents. `producer` is
    (producer_id, producer_epoch, base_sequence); none by default."""
    if base_ts is None:
        base_ts = int(time.time() * 1000)
    if max_ts is None:
        max_ts = base_ts
    if last_offset_delta is None:
        last_offset_delta = count - 1
    after_crc = (
        struct.pack(">hiqqqhii", codec & 0x07, last_offset_delta, base_ts, max_ts, *producer, count) + records
    )
    crc = crc32c(after_crc)
    # batchLength counts from partitionLeaderEpoch (offset 12) to the end
    batch_length = 4 + 1 + 4 + len(after_crc)
    return struct.pack(">qiibI", 0, batch_length, -1, 2, crc) + after_crc


# --- More requests and their responses ---


def read_response_max(sock: socket.socket, max_len: int, timeout: float = 10.0) -> bytes:
    """read_response for responses that may be larger than 1 MiB."""
    deadline = time.monotonic() + timeout
    (length,) = struct.unpack(">i", recv_exact(sock, 4, deadline))
    assert 0 <= length <= max_len, f"response length {length}, expected at most {max_len}"
    return recv_exact(sock, length, deadline)


class Reader:
    """Sequential big-endian decoding of a response body."""

    def __init__(self, body: bytes, pos: int = 0):
        self.body = body
        self.pos = pos

    def take(self, fmt: str):
        vals = struct.unpack_from(">" + fmt, self.body, self.pos)
        self.pos += struct.calcsize(">" + fmt)
        return vals if len(vals) > 1 else vals[0]

    def uvarint(self) -> int:
        n = shift = 0
        while True:
            b = self.body[self.pos]
            self.pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    def raw(self, n: int) -> bytes:
        out = self.body[self.pos : self.pos + n]
        assert len(out) == n, f"wanted {n} bytes at {self.pos}, {len(out)} left"
        self.pos += n
        return out

    def string(self) -> str | None:
        n = self.take("h")
        return None if n < 0 else self.raw(n).decode()

    def compact_string(self) -> str | None:
        n = self.uvarint() - 1
        return None if n < 0 else self.raw(n).decode()

    def skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.raw(self.uvarint())

    def done(self) -> None:
        assert self.pos == len(self.body), f"{len(self.body) - self.pos} bytes left over in the response"


def list_offsets_v4(corr: int, topic: str, partition: int, timestamp: int) -> bytes:
    """ListOffsets v4: replica_id, isolation_level, [topic, [partition,
    current_leader_epoch, timestamp]]. timestamp -1 = latest (the high
    watermark), -2 = earliest, otherwise the first offset at or after it."""
    t = topic.encode()
    body = (
        struct.pack(">ib", -1, 0)
        + struct.pack(">ih", 1, len(t))
        + t
        + struct.pack(">iiiq", 1, partition, -1, timestamp)
    )
    return frame(header_v1(2, 4, corr, b"compat-raw") + body)


def parse_list_offsets_v4_response(body: bytes) -> tuple[int, list[tuple[str, int, int, int, int]]]:
    """-> (correlation id, [(topic, partition, error_code, timestamp, offset)])."""
    r = Reader(body)
    corr = r.take("i")
    r.take("i")  # throttle_time_ms
    out = []
    for _ in range(r.take("i")):
        name = r.string()
        for _ in range(r.take("i")):
            p, err, ts, off, _epoch = r.take("ihqqi")
            out.append((name, p, err, ts, off))
    r.done()
    return corr, out


def fetch_v4(
    corr: int,
    topic: str,
    partition: int,
    offset: int,
    max_bytes: int,
    partition_max_bytes: int,
    max_wait_ms: int = 0,
    min_bytes: int = 0,
) -> bytes:
    """Fetch v4 (the oldest Kafka 4 serves): one partition, read_uncommitted."""
    t = topic.encode()
    body = (
        struct.pack(">iiiib", -1, max_wait_ms, min_bytes, max_bytes, 0)
        + struct.pack(">ih", 1, len(t))
        + t
        + struct.pack(">iiqi", 1, partition, offset, partition_max_bytes)
    )
    return frame(header_v1(1, 4, corr, b"compat-raw") + body)


def parse_fetch_v4_response(body: bytes) -> tuple[int, list[tuple[str, int, int, int, bytes | None]]]:
    """-> (correlation id, [(topic, partition, error_code, high_watermark, records)])."""
    r = Reader(body)
    corr = r.take("i")
    r.take("i")  # throttle_time_ms
    out = []
    for _ in range(r.take("i")):
        name = r.string()
        for _ in range(r.take("i")):
            p, err, hw, _lso = r.take("ihqq")
            n_aborted = r.take("i")
            for _ in range(max(n_aborted, 0)):
                r.take("qq")
            n = r.take("i")
            out.append((name, p, err, hw, None if n < 0 else r.raw(n)))
    r.done()
    return corr, out


def fetch_v12(
    corr: int,
    topic: str,
    partition: int,
    offset: int,
    max_bytes: int,
    partition_max_bytes: int,
    max_wait_ms: int = 0,
    min_bytes: int = 0,
) -> bytes:
    """Fetch v12 (flexible, the last version that names topics): one
    partition, no fetch session."""
    t = topic.encode()
    body = (
        struct.pack(">iiiibii", -1, max_wait_ms, min_bytes, max_bytes, 0, 0, -1)
        + uvarint(2)  # one topic
        + uvarint(len(t) + 1)
        + t
        + uvarint(2)  # one partition
        + struct.pack(">iiqiqi", partition, -1, offset, -1, -1, partition_max_bytes)
        + b"\x00"  # partition tags
        + b"\x00"  # topic tags
        + uvarint(1)  # no forgotten topics
        + uvarint(1)  # rack_id ""
        + b"\x00"  # request tags
    )
    return frame(header_v2(1, 12, corr, b"compat-raw") + body)


def parse_fetch_v12_response(body: bytes) -> tuple[int, list[tuple[str, int, int, int, bytes | None]]]:
    """-> (correlation id, [(topic, partition, error_code, high_watermark, records)])."""
    r = Reader(body)
    corr = r.take("i")
    r.skip_tags()  # response header v1
    _throttle, top_err, _session = r.take("ihi")
    assert top_err == 0, f"Fetch v12 top-level error {top_err}"
    out = []
    for _ in range(r.uvarint() - 1):
        name = r.compact_string()
        for _ in range(r.uvarint() - 1):
            p, err, hw, _lso, _lstart = r.take("ihqqq")
            for _ in range(r.uvarint() - 1):  # aborted transactions (null = 0)
                r.take("qq")
                r.skip_tags()
            r.take("i")  # preferred_read_replica
            n = r.uvarint() - 1
            out.append((name, p, err, hw, None if n < 0 else r.raw(n)))
            r.skip_tags()
        r.skip_tags()
    r.skip_tags()
    r.done()
    return corr, out


def batch_spans(records: bytes) -> list[tuple[int, int, int]]:
    """(base_offset, last_offset, size) of each complete batch in a fetched
    records field; a trailing partial batch (allowed in a Fetch) is left out."""
    out, at = [], 0
    while at + 61 <= len(records):
        base, length = struct.unpack_from(">qi", records, at)
        (last_delta,) = struct.unpack_from(">i", records, at + 23)
        if at + 12 + length > len(records):
            break
        out.append((base, base + last_delta, 12 + length))
        at += 12 + length
    return out


def init_producer_id(sock: socket.socket, corr: int) -> tuple[int, int]:
    """InitProducerId v0 for an idempotent (non-transactional) producer ->
    (producer_id, producer_epoch)."""
    sock.sendall(frame(header_v1(22, 0, corr, b"compat-raw") + struct.pack(">hi", -1, 60_000)))
    got, _throttle, err, pid, epoch = struct.unpack(">iihqh", read_response(sock))
    assert (got, err) == (corr, 0), f"InitProducerId: correlation id {got}, error {err}"
    return pid, epoch


def fetch_v4_partitions(
    corr: int, topic: str, offsets: dict[int, int], max_bytes: int, partition_max_bytes: int
) -> bytes:
    """Fetch v4 of several partitions of one topic ({partition: offset}), no wait."""
    t = topic.encode()
    body = struct.pack(">iiiib", -1, 0, 0, max_bytes, 0) + struct.pack(">ih", 1, len(t)) + t
    body += struct.pack(">i", len(offsets))
    for p, off in offsets.items():
        body += struct.pack(">iqi", p, off, partition_max_bytes)
    return frame(header_v1(1, 4, corr, b"compat-raw") + body)


def produce_v7(corr: int, acks: int, topic: str, partition: int, records: bytes) -> bytes:
    """Produce v7: the v3 layout, at the first version Kafka takes zstd
    batches at (it answers UNSUPPORTED_COMPRESSION_TYPE below v7)."""
    body = produce_v3(corr, acks, topic, partition, records)[4:]
    return frame(header_v1(0, 7, corr, b"compat-raw") + body[len(header_v1(0, 3, corr, b"compat-raw")) :])


def parse_produce_v7_response(body: bytes) -> tuple[int, list[tuple[str, int, int, int]]]:
    """-> (correlation id, [(topic, partition, error_code, base_offset)])."""
    r = Reader(body)
    corr = r.take("i")
    out = []
    for _ in range(r.take("i")):
        name = r.string()
        for _ in range(r.take("i")):
            p, err, base, _append_time, _log_start = r.take("ihqqq")
            out.append((name, p, err, base))
    r.take("i")  # throttle_time_ms
    r.done()
    return corr, out
