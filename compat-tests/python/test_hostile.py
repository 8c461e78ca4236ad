"""Hostile and malformed input on raw sockets.

For each case the broker must close that connection (recv gives b'' or
ECONNRESET within a deadline) and keep serving: the process is alive, its
peak memory stays small, a connection opened before the attack and left idle
still gets ApiVersions answered, and a confluent-kafka producer on a fresh
connection still produces.
"""

from __future__ import annotations

import random
import socket
import struct
import time

import pytest

from compat import ck_produce, make_records, unique_topic
from rawkafka import api_versions_v0, check_api_versions_v0, frame, header_v1, header_v2, read_response, uvarint

CLOSE_TIMEOUT = 10.0
PEAK_RSS_LIMIT_KIB = 1024 * 1024  # 1 GiB: the attacks ask for 2 GiB and more


def expect_closed(sock: socket.socket, timeout: float = CLOSE_TIMEOUT) -> bytes:
    """Reads until the peer closes; returns whatever it sent first. Fails if
    the connection is still open at the deadline."""
    deadline = time.monotonic() + timeout
    received = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(
                f"connection still open {timeout:.0f}s after the request "
                f"(received {len(received)} bytes: {received[:64]!r})"
            )
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return received
        except socket.timeout:
            continue
        if not chunk:
            return received
        received += chunk


def send_hostile(sock: socket.socket, payload: bytes, half_close: bool) -> None:
    try:
        sock.sendall(payload)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
    except TimeoutError:
        raise AssertionError("broker stopped reading without closing the connection") from None
    except OSError:
        pass  # reset / not connected: already closed by the broker, as wanted


def peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/pid/status")


def _garbage(seed: int, n: int = 4096) -> bytes:
    return random.Random(seed).randbytes(n)


# (id, payload, half_close, may_answer)
# half_close: shut our write side after sending (only where the broker
#   cannot know the frame is bad without reading more: random bytes whose
#   first four may form a plausible length);
# may_answer: the broker may send something before closing (random bytes can
#   happen to form a request it answers); otherwise it must send nothing.
CASES = [
    # (a) 8-byte pre-allocation attack: Metadata v1 whose topic array claims 2^31-1 entries
    ("prealloc-metadata-v1", frame(header_v1(3, 1, 1) + b"\x7f\xff\xff\xff"), False, False),
    # the same on a flexible version: compact array length varint 2^31-1
    ("prealloc-metadata-v12", frame(header_v2(3, 12, 2) + uvarint(0x7FFFFFFF)), False, False),
    # Produce v9 claiming 2^31-1 topics right after its acks/timeout
    (
        "prealloc-produce-v9",
        frame(header_v2(0, 9, 3) + b"\x00" + struct.pack(">hi", -1, 1000) + uvarint(0x7FFFFFFF)),
        False,
        False,
    ),
    # (b) negative length prefixes
    ("negative-length-minus1", b"\xff\xff\xff\xff" + b"\x00" * 16, False, False),
    ("negative-length-min", b"\x80\x00\x00\x00" + b"\x00" * 16, False, False),
    # (c) a 2 GiB (2^31 - 1) length prefix, followed by a little
    ("length-2GiB", b"\x7f\xff\xff\xff" + header_v1(3, 1, 4), False, False),
    # (d) garbage: other protocols (their first four bytes read as > 300 MB) ...
    ("garbage-http", b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", False, False),
    ("garbage-tls", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + _garbage(1, 64), False, False),
    # ... and random bytes
    ("garbage-random-1", _garbage(11), True, True),
    ("garbage-random-2", _garbage(12), True, True),
    ("garbage-random-3", _garbage(13, 100_000), True, True),
    # random bytes in a correctly sized frame
    ("garbage-framed", frame(_garbage(21)), False, True),
    # a plausible length, then the client goes away mid-frame
    ("eof-mid-frame", struct.pack(">i", 4096) + _garbage(22, 100), True, False),
    # (e) frames shorter than a request header (8 bytes)
    ("short-frame-0", frame(b""), False, False),
    ("short-frame-3", frame(b"\x00\x03\x00"), False, False),
    ("short-frame-7", frame(b"\x00\x12\x00\x00\x00\x00\x00"), False, False),
    # (f) unknown api key
    ("unknown-api-key", frame(header_v1(9999, 0, 5)), False, False),
    ("negative-api-key", frame(header_v1(-1, 0, 6)), False, False),
    # a string running past the end of its frame
    ("truncated-string", frame(header_v1(3, 1, 7) + struct.pack(">ih", 1, 100) + b"abc"), False, False),
    # Produce v0: advertised (for old librdkafka's codecs) but refused, as in Kafka 4
    (
        "produce-v0",
        frame(header_v1(0, 0, 8) + struct.pack(">hii", 1, 1000, 0)),
        False,
        False,
    ),
]


@pytest.mark.parametrize(
    "payload,half_close,may_answer",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_hostile_input_closes_connection_and_broker_keeps_serving(broker, payload, half_close, may_answer):
    idle = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
    bad = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
    try:
        send_hostile(bad, payload, half_close)
        received = expect_closed(bad)
        if not may_answer:
            assert received == b"", f"broker answered {len(received)} bytes before closing: {received[:64]!r}"
    finally:
        bad.close()
    try:
        assert broker.alive(), f"broker died (exit code {broker.proc.returncode})\n{broker.log[-3000:]}"
        check_api_versions_v0(idle, corr=42)
    finally:
        idle.close()
    if broker.pid is not None:  # None: COMPAT_EXTERNAL_BOOTSTRAP
        assert peak_rss_kib(broker.pid) < PEAK_RSS_LIMIT_KIB
    topic = unique_topic("hostile")
    acked = ck_produce(broker.bootstrap, topic, make_records(20))
    assert sorted(acked.values()) == [(0, o) for o in range(20)]
    assert broker.alive()


def test_all_attacks_at_once(broker):
    """Every case on its own connection at the same time, with an idle
    connection open throughout: all bad connections are closed, the idle one
    is still answered, and the broker still produces."""
    idle = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
    try:
        check_api_versions_v0(idle, corr=1)
        socks = []
        for _, payload, half_close, _ in CASES:
            s = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
            socks.append(s)
            send_hostile(s, payload, half_close)
        for (name, _, _, may_answer), s in zip(CASES, socks):
            try:
                received = expect_closed(s)
            except AssertionError as e:
                raise AssertionError(f"{name}: {e}") from None
            finally:
                s.close()
            if not may_answer:
                assert received == b"", f"{name}: broker answered {received[:64]!r}"
        assert broker.alive()
        check_api_versions_v0(idle, corr=2)
    finally:
        idle.close()
    if broker.pid is not None:  # None: COMPAT_EXTERNAL_BOOTSTRAP
        assert peak_rss_kib(broker.pid) < PEAK_RSS_LIMIT_KIB
    acked = ck_produce(broker.bootstrap, unique_topic("hostile-all"), make_records(20))
    assert sorted(acked.values()) == [(0, o) for o in range(20)]


def test_pipelined_requests_on_idle_connection(broker):
    """Sanity check of the raw-socket helpers: two ApiVersions requests
    written back to back are answered in order."""
    s = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
    try:
        s.sendall(api_versions_v0(100) + api_versions_v0(101))
        for corr in (100, 101):
            body = read_response(s)
            assert struct.unpack_from(">ih", body) == (corr, 0)
    finally:
        s.close()
