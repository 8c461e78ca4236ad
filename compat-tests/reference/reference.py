"""Reference Apache Kafka broker for differential tests and benchmarks.

Standard library only. Wraps ``kafka.sh`` (beside this file), which fetches a
pinned Apache Kafka 4.x from Maven Central into a cache outside the repo
(``$GREGOR_REFERENCE_CACHE``, default ``~/.cache/gregor-reference``), formats
a single-node KRaft storage dir and starts the broker on free 127.0.0.1 ports.

Use from pytest::

    import sys, pathlib
    sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "reference"))
    from reference import reference_kafka, available

    ok, why = available()
    pytestmark = pytest.mark.skipif(not ok, reason=why)

    @pytest.fixture(scope="session")
    def kafka_bootstrap():
        with reference_kafka() as bootstrap:   # "127.0.0.1:PORT"
            yield bootstrap

A start costs about 8 s (two JVM launches: format, then the broker) and the
broker holds about 360 MB RSS, so share one per session where you can.

Also a command line: ``python3 reference.py wait HOST:PORT [TIMEOUT]`` waits
until a Kafka broker answers a Metadata request (kafka.sh start uses it), and
``python3 reference.py probe HOST:PORT`` tries once (exit 0 when it answers).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Mapping, Optional

HERE = Path(__file__).resolve().parent
KAFKA_SH = HERE / "kafka.sh"


# --- readiness probe: one Metadata v4 round trip on a raw socket ------------

def _kafka_string(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return bytes(buf)


def metadata_brokers(host: str, port: int, timeout: float = 2.0) -> list[tuple[int, str, int]]:
    """Send Metadata v4 (no topics) and return the brokers listed as (id, host, port).

    v4: non-flexible (simple to encode), served by every Kafka since 1.0 and
    by Kafka 4.3 (which advertises Metadata 0-13). Raises OSError /
    ConnectionError / struct.error when the broker does not (yet) answer.
    """
    correlation_id = 7
    header = struct.pack(">hhi", 3, 4, correlation_id) + _kafka_string("gregor-reference-probe")
    body = struct.pack(">i", 0) + b"\x00"  # topics: empty array; allow_auto_topic_creation=false
    msg = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(msg)) + msg)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        resp = _recv_exact(sock, size)
    pos = 0

    def take(fmt: str):
        nonlocal pos
        vals = struct.unpack_from(fmt, resp, pos)
        pos += struct.calcsize(fmt)
        return vals[0] if len(vals) == 1 else vals

    def take_str() -> Optional[str]:
        nonlocal pos
        n = take(">h")
        if n < 0:
            return None
        s = resp[pos:pos + n].decode()
        pos += n
        return s

    corr, _throttle, nbrokers = take(">iii")
    if corr != correlation_id:
        raise ConnectionError(f"correlation id {corr}, expected {correlation_id}")
    brokers = []
    for _ in range(nbrokers):
        node_id = take(">i")
        bhost = take_str()
        bport = take(">i")
        take_str()  # rack
        brokers.append((node_id, bhost or "", bport))
    return brokers


def wait_ready(bootstrap: str, timeout: float = 60.0, pid: Optional[int] = None) -> float:
    """Wait until ``bootstrap`` answers Metadata with at least one broker.

    Returns the seconds waited. Raises TimeoutError, or RuntimeError when
    ``pid`` is given and that process exits first.
    """
    host, _, port = bootstrap.rpartition(":")
    start = time.monotonic()
    last: object = None
    while True:
        try:
            if metadata_brokers(host, int(port)):
                return time.monotonic() - start
            last = "no brokers in Metadata response"
        except (OSError, ConnectionError, struct.error) as e:
            last = e
        if pid is not None and not _alive(pid):
            raise RuntimeError(f"broker process {pid} exited before {bootstrap} answered")
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{bootstrap} did not answer Metadata within {timeout}s (last: {last})")
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("State:"):
                    return "Z" not in line.split()[1]
    except OSError:
        return False
    return True


# --- the context manager -----------------------------------------------------

def available() -> tuple[bool, str]:
    """(True, "") when java and (for a first fetch) mvn are on PATH."""
    if shutil.which("java") is None:
        return False, "java not on PATH (the reference broker needs Java 17+)"
    cache = Path(os.environ.get("GREGOR_REFERENCE_CACHE", Path.home() / ".cache" / "gregor-reference"))
    fetched = any(cache.glob("kafka-*/.complete"))
    if not fetched and shutil.which("mvn") is None:
        return False, "mvn not on PATH and the reference Kafka is not fetched yet"
    return True, ""


@dataclasses.dataclass
class ReferenceBroker:
    bootstrap: str
    pid: int
    dir: Path

    @property
    def log(self) -> Path:
        return self.dir / "logs" / "server.log"


def _parse_env(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep and k.isupper():
            out[k] = v
    return out


@contextlib.contextmanager
def reference_broker(
    props: Optional[Mapping[str, object]] = None,
    keep: bool = False,
    env: Optional[Mapping[str, str]] = None,
) -> Iterator[ReferenceBroker]:
    """Start a reference Kafka in a fresh temp dir; stop it (and delete the dir
    unless ``keep``) on exit. ``props`` are extra server.properties lines, which
    override the defaults (e.g. ``{"group.initial.rebalance.delay.ms": 3000}``).
    """
    run_dir = Path(tempfile.mkdtemp(prefix="gregor-reference."))
    child_env = dict(os.environ)
    if env:
        child_env.update(env)
    if props:
        child_env["GREGOR_REFERENCE_EXTRA_PROPS"] = "\n".join(f"{k}={v}" for k, v in props.items())
    started = False
    try:
        res = subprocess.run(
            ["bash", str(KAFKA_SH), "start", str(run_dir)],
            env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL,
        )
        started = (run_dir / "env").exists()
        if res.returncode != 0:
            raise RuntimeError(f"kafka.sh start failed ({res.returncode}):\n{res.stderr[-4000:]}")
        vals = _parse_env(res.stdout)
        yield ReferenceBroker(vals["BOOTSTRAP"], int(vals["PID"]), run_dir)
    finally:
        if started or (run_dir / "pid").exists():
            subprocess.run(["bash", str(KAFKA_SH), "stop", str(run_dir)], env=child_env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)


@contextlib.contextmanager
def reference_kafka(
    props: Optional[Mapping[str, object]] = None,
    keep: bool = False,
    env: Optional[Mapping[str, str]] = None,
) -> Iterator[str]:
    """Like reference_broker() but yields just the bootstrap, "127.0.0.1:PORT"."""
    with reference_broker(props=props, keep=keep, env=env) as b:
        yield b.bootstrap


def _main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "wait":
        timeout = float(argv[2]) if len(argv) > 2 else 60.0
        pid = int(argv[3]) if len(argv) > 3 else None
        try:
            took = wait_ready(argv[1], timeout, pid)
        except (TimeoutError, RuntimeError) as e:
            print(e, file=sys.stderr)
            return 1
        print(f"{took:.2f}")
        return 0
    if len(argv) == 2 and argv[0] == "probe":
        host, _, port = argv[1].rpartition(":")
        try:
            for b in metadata_brokers(host, int(port)):
                print(f"broker {b[0]} at {b[1]}:{b[2]}")
        except (OSError, ConnectionError, struct.error) as e:
            print(e, file=sys.stderr)
            return 1
        return 0
    if len(argv) == 0 or argv[0] == "demo":
        with reference_broker(keep=True) as b:
            print(f"BOOTSTRAP={b.bootstrap} PID={b.pid} DIR={b.dir}")
        return 0
    print("usage: reference.py wait HOST:PORT [TIMEOUT [PID]] | probe HOST:PORT | demo", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
