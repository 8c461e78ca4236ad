"""The client matrix (compat-tests/matrix/README.md) under pytest.

One test per client directory of compat-tests/matrix/ that has a run.sh
(franz-go, sarama, kafkajs, confluent-js, aiokafka, java and the *-groups
consumer-group scenarios, whatever is there when the tests are collected)
and per target:

* `gregor`: a fresh gregor (own port and data dir) started with
  `-o group.initial.rebalance.delay.ms=0`; with COMPAT_EXTERNAL_BOOTSTRAP the
  broker already running there instead;
* `reference` (only with GREGOR_REFERENCE=1): the reference Apache Kafka of
  compat-tests/reference (one per session, shared: every run uses its own
  topic prefix).

Each client's setup.sh runs once per session, the first time the client is
needed (a failure fails that client's tests with setup.sh's output). Then
`run.sh BOOTSTRAP TOPIC_PREFIX` must exit 0 within the timeout and print
`RESULT <client> <version> ok` as its last line. The time of every setup
and run is printed in the "timings" section at the end.

Environment: GREGOR_REFERENCE=1 adds the reference target;
GREGOR_MATRIX_TIMEOUT (seconds, default 300) bounds one run.sh,
GREGOR_MATRIX_SETUP_TIMEOUT (default 1200) one setup.sh.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import REPO_ROOT, ExternalBroker

MATRIX = REPO_ROOT / "compat-tests" / "matrix"
CLIENTS = sorted(d.name for d in MATRIX.iterdir() if d.is_dir() and (d / "run.sh").is_file())
# GREGOR_MATRIX_REFERENCE=1 adds the reference for this file only (what
# tests/run-all.sh sets: the matrix is where running both pays most).
REFERENCE = any(
    os.environ.get(v, "") not in ("", "0") for v in ("GREGOR_REFERENCE", "GREGOR_MATRIX_REFERENCE")
)
TARGETS = ["gregor", "reference"] if REFERENCE else ["gregor"]
RUN_TIMEOUT_S = float(os.environ.get("GREGOR_MATRIX_TIMEOUT", "300"))
SETUP_TIMEOUT_S = float(os.environ.get("GREGOR_MATRIX_SETUP_TIMEOUT", "1200"))
OUTPUT_TAIL = 12000


def run_bounded(cmd: list[str], timeout: float, cwd: Path) -> tuple[int | None, str, float]:
    """Runs cmd in its own process group with stdout+stderr merged; on timeout
    kills the whole group. Returns (exit code or None on timeout, output, s)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: proc.stdout.read(4096), b"")), daemon=True)
    reader.start()
    try:
        code: int | None = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        code = None
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    else:
        # run.sh exited; anything it left running in its group goes too
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    reader.join(10)
    return code, b"".join(chunks).decode("utf-8", "replace"), time.monotonic() - t0


def tail(text: str, n: int = OUTPUT_TAIL) -> str:
    return text if len(text) <= n else "[... earlier output cut ...]\n" + text[-n:]


class Setups:
    """Runs each client's setup.sh at most once per session."""

    def __init__(self, timings: list):
        self._done: dict[str, tuple[bool, str]] = {}
        self._timings = timings

    def ensure(self, client: str) -> None:
        if client not in self._done:
            d = MATRIX / client
            setup = d / "setup.sh"
            if not setup.is_file():
                self._done[client] = (True, "")
            else:
                code, out, secs = run_bounded(["bash", str(setup)], SETUP_TIMEOUT_S, d)
                self._timings.append(f"matrix setup {client:<22} {secs:7.1f} s  exit {code}")
                print(f"setup {client}: exit {code} in {secs:.1f}s")
                if code is None:
                    why = f"setup.sh did not finish within {SETUP_TIMEOUT_S:.0f}s"
                elif code != 0:
                    why = f"setup.sh exited with {code}"
                else:
                    why = ""
                self._done[client] = (not why, f"{client}: {why}\n{tail(out)}" if why else "")
        ok, why = self._done[client]
        if not ok:
            pytest.fail(why, pytrace=False)


@pytest.fixture(scope="session")
def matrix_setup(timings) -> Setups:
    return Setups(timings)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("client", CLIENTS)
def test_matrix(client, target, matrix_setup, make_broker, request, timings):
    matrix_setup.ensure(client)
    if target == "reference":
        bootstrap = request.getfixturevalue("reference_bootstrap")
    else:
        external = os.environ.get("COMPAT_EXTERNAL_BOOTSTRAP")
        if external:
            bootstrap = ExternalBroker(external).bootstrap
            target = "external"
        else:
            bootstrap = make_broker("-o", "group.initial.rebalance.delay.ms=0").bootstrap
    prefix = f"mx{uuid.uuid4().hex[:8]}-"
    d = MATRIX / client
    code, out, secs = run_bounded(["bash", str(d / "run.sh"), bootstrap, prefix], RUN_TIMEOUT_S, d)
    timings.append(f"matrix run   {client:<22} {secs:7.1f} s  on {target}: exit {code}")
    print(f"{client} on {target} ({bootstrap}, prefix {prefix}): exit {code} in {secs:.1f}s")
    print(tail(out))
    if code is None:
        pytest.fail(f"{client} on {target}: run.sh did not finish within {RUN_TIMEOUT_S:.0f}s\n{tail(out)}", pytrace=False)
    if code != 0:
        fails = [l for l in out.splitlines() if l.startswith("FAIL")]
        pytest.fail(
            f"{client} on {target}: run.sh exited with {code}: {fails[-1] if fails else '(no FAIL line)'}\n{tail(out)}",
            pytrace=False,
        )
    lines = [l for l in out.splitlines() if l.strip()]
    last = lines[-1] if lines else ""
    assert re.fullmatch(rf"RESULT {re.escape(client)} \S+ ok", last.strip()), (
        f"{client} on {target}: exit 0 but the last line is {last!r}, expected 'RESULT {client} <version> ok'\n{tail(out)}"
    )
