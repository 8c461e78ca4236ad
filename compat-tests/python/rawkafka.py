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
