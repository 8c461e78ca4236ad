"""Issue 11: the same leader-move scenario with Java kafka-clients and franz-go.

Each test starts `gregor serve --virtual-brokers 3 --admin-listen
127.0.0.1:0 --dev --ephemeral` (one process, brokers 1-3 on their own ports,
the HTTP admin API of docs/spec), reads `brokers=` and `admin=` from the
ready line, and runs one program against it with every broker in the
bootstrap list:

* Java: compat-tests/java/leader-move.sh BOOTSTRAP ADMIN_URL PREFIX
  (gregor.compat.LeaderMove, built on first use with Maven);
* franz-go: compat-tests/matrix/franz-go-leader-move (setup.sh, then run.sh
  BOOTSTRAP PREFIX with GREGOR_ADMIN_URL set; without it, as in
  test_matrix.py, it runs with no faults).

The scenario (either program's header): an idempotent producer (acks=all)
writes N=20000 records (key-NN, value the key's sequence number) to a
6-partition topic led by brokers 1-3 while the program itself, at 1/8 ...
7/8 of the sends, cuts connections after processed Produce requests (twice
3), moves every partition of broker 1 to broker 2, one partition back,
takes broker 3 down and up, moves two partitions to broker 3 and spreads
broker 2's; after each call it checks /topics and /cluster against the spec
(leader, leader epoch + 1, others unchanged) and Metadata against /topics.
A group member consumes and commits throughout (consumed more at the 4th
step than at the 1st, more at the 7th than at the 4th; no commit failed:
the coordinator, broker 1, never moves); then a new group reads
everything. Asserted here from the summary line: ok, N acknowledged, N in
the log (end offsets), N read, no duplicate, nothing missing, nothing out
of order, no producer error, the moves and faults done, the live group
consumed and committed; and from the admin API afterwards: no fault left,
and GET /groups shows the live group's lag 0 on every partition.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
import uuid

import pytest

from conftest import REPO_ROOT, gregor_bin

LEADER_MOVE_SH = REPO_ROOT / "compat-tests" / "java" / "leader-move.sh"
FRANZ_DIR = REPO_ROOT / "compat-tests" / "matrix" / "franz-go-leader-move"
RECORDS = int(os.environ.get("LEADER_MOVE_RECORDS", "20000"))
BUILD_TIMEOUT_S = 600.0
RUN_TIMEOUT_S = 120.0  # each program bounds its own waits to 30 s; a good run takes 10-20 s
MOVES = 6  # leader-changing admin calls of the schedule (two of them in one step)
FAULTS = 2  # POST /faults/close {"api":"Produce","count":3}

BROKERS_RE = re.compile(r"\bbrokers=(\S+)")
ADMIN_RE = re.compile(r"\badmin=(\S+)")


def run_bounded(cmd, timeout, cwd, env=None):
    """Runs cmd in its own process group, stdout and stderr apart; on timeout
    kills the group. Returns (exit code or None, stdout, stderr, seconds)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    out: list[bytes] = []
    err: list[bytes] = []
    readers = [
        threading.Thread(target=lambda: out.extend(iter(lambda: proc.stdout.read(4096), b"")), daemon=True),
        threading.Thread(target=lambda: err.extend(iter(lambda: proc.stderr.read(4096), b"")), daemon=True),
    ]
    for r in readers:
        r.start()
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        code = None
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever it left running in its group
    except ProcessLookupError:
        pass
    proc.wait()
    for r in readers:
        r.join(10)
    dec = lambda bs: b"".join(bs).decode("utf-8", "replace")  # noqa: E731
    return code, dec(out), dec(err), time.monotonic() - t0


def events(stdout: str) -> list[dict]:
    evs = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                evs.append(json.loads(line))
            except ValueError:
                evs.append({"event": "unparsed", "line": line})
    return evs


def admin_get(admin: str, path: str):
    with urllib.request.urlopen(f"http://{admin}{path}", timeout=10) as r:
        return json.loads(r.read().decode())


@pytest.fixture
def cluster(make_broker):
    """A fresh 3-broker virtual cluster: (Broker, bootstrap list, admin host:port)."""
    help_text = subprocess.run(
        [str(gregor_bin()), "serve", "--help"], capture_output=True, text=True, timeout=30
    ).stdout
    if "--virtual-brokers" not in help_text or "--admin-listen" not in help_text:
        pytest.fail(f"{gregor_bin()} has no --virtual-brokers / --admin-listen (an older build?)", pytrace=False)
    b = make_broker("--virtual-brokers", "3", "--admin-listen", "127.0.0.1:0", "--dev", ephemeral=True)
    ready = next((l for l in b.log.splitlines() if "listening" in l and "addr=" in l), "")
    mb, ma = BROKERS_RE.search(ready), ADMIN_RE.search(ready)
    assert mb and ma, f"ready line without brokers= / admin=: {ready!r}"
    brokers = [x.split("@", 1)[1] for x in mb.group(1).split(",")]
    assert len(brokers) == 3, f"expected 3 brokers in {mb.group(1)!r}"
    admin = ma.group(1)
    assert admin_get(admin, "/health") == {"status": "ok"}
    return b, ",".join(brokers), admin


def check_summary(name: str, evs: list[dict], report: str) -> dict:
    summaries = [e for e in evs if e.get("event") == "summary"]
    assert summaries, f"{name}: no summary line\n{report}"
    s = summaries[-1]
    assert s["ok"] is True and not s["failures"], f"{name}: failures {s['failures']}\n{report}"
    assert s["records"] == RECORDS
    assert s["acked"] == RECORDS, f"{name}: acknowledged {s['acked']}\n{report}"
    assert s["log_records"] == RECORDS, f"{name}: {s['log_records']} records in the log\n{report}"
    assert s["read"] == RECORDS, f"{name}: read {s['read']}\n{report}"
    assert (s["duplicates"], s["missing"], s["out_of_order"]) == (0, 0, 0), f"{name}: {s}\n{report}"
    assert s["producer_errors"] == 0, f"{name}: {s}\n{report}"
    assert s["moves"] == MOVES and s["faults"] == FAULTS, f"{name}: {s}\n{report}"
    assert s["live_consumed"] >= RECORDS and s["live_commits"] > 0, f"{name}: {s}\n{report}"
    # the live member consumed while the leaders moved, not only at the end
    steps = [e for e in evs if e.get("event") == "step"]
    assert len(steps) == 7, f"{name}: {len(steps)} steps\n{report}"
    live = [e["live_consumed"] for e in steps]
    assert live[0] < live[3] < live[6], f"{name}: the live group stalled during the moves: {live}\n{report}"
    # the coordinator (broker 1) never moves: no commit may fail
    assert s["live_commit_errors"] == 0, f"{name}: {s}\n{report}"
    return s


def check_after(name: str, admin: str, prefix: str, report: str) -> None:
    """The admin API after the run: no fault left; the live group's lag 0."""
    left = admin_get(admin, "/faults")
    # {"close":[],"errors":[],"latency":[],"storage_failed":false,"throttle":[]} when none is left
    active = {k: v for k, v in left.items() if v} if isinstance(left, dict) else left
    assert not active, f"{name}: faults left after the run (close faults not consumed?): {left}\n{report}"
    groups = {g["group_id"]: g for g in admin_get(admin, "/groups")}
    live = groups.get(prefix + "live")
    assert live is not None, f"{name}: GET /groups lacks {prefix}live: {sorted(groups)}\n{report}"
    offsets = [o for o in live["offsets"] if o["topic"] == prefix + "leader-move"]
    assert len(offsets) == 6 and all(o["lag"] == 0 and o["committed"] == o["high_watermark"] for o in offsets), (
        f"{name}: GET /groups offsets of {prefix}live: {offsets}\n{report}"
    )


def report_of(name, code, out, err, secs) -> str:
    return f"--- {name}: exit {code} in {secs:.1f}s\n--- stdout:\n{out[-15000:]}\n--- stderr:\n{err[-8000:]}"


@pytest.fixture(scope="session")
def java_built(timings):
    code, out, err, secs = run_bounded(["bash", LEADER_MOVE_SH, "build"], BUILD_TIMEOUT_S, REPO_ROOT)
    timings.append(f"java leader-move build {secs:7.1f} s: exit {code}")
    if code != 0:
        pytest.fail(f"leader-move.sh build exited with {code}\n{out}\n{err}", pytrace=False)


@pytest.fixture(scope="session")
def franz_built(timings):
    code, out, err, secs = run_bounded(["bash", FRANZ_DIR / "setup.sh"], BUILD_TIMEOUT_S, FRANZ_DIR)
    timings.append(f"franz-go-leader-move setup {secs:7.1f} s: exit {code}")
    if code != 0:
        pytest.fail(f"franz-go-leader-move setup.sh exited with {code}\n{out}\n{err}", pytrace=False)


def program_env() -> dict:
    env = dict(os.environ)
    env["LEADER_MOVE_RECORDS"] = str(RECORDS)
    return env


def test_leader_move_java(cluster, java_built, timings):
    broker, bootstrap, admin = cluster
    prefix = f"lmj{uuid.uuid4().hex[:8]}-"
    code, out, err, secs = run_bounded(
        ["bash", LEADER_MOVE_SH, bootstrap, f"http://{admin}", prefix], RUN_TIMEOUT_S, REPO_ROOT, program_env()
    )
    report = report_of("java leader-move", code, out, err, secs)
    print(report)
    assert code == 0, f"java leader-move exited with {code}\n{report}"
    evs = events(out)
    assert evs and evs[-1].get("event") == "summary", f"last line is not the summary\n{report}"
    s = check_summary("java", evs, report)
    assert s["producer_retries"] > 0, f"java: no retry, so no cut connection reached the producer\n{report}"
    check_after("java", admin, prefix, report)
    timings.append(
        f"leader-move java      {secs:6.1f} s: {s['records']} records, {s['moves']} moves, {s['faults']} faults, "
        f"retries {s['producer_retries']}, duplicates {s['duplicates']}, live redelivered {s['live_redelivered']}"
    )


def test_leader_move_franz_go(cluster, franz_built, timings):
    broker, bootstrap, admin = cluster
    prefix = f"lmf{uuid.uuid4().hex[:8]}-"
    env = program_env()
    env["GREGOR_ADMIN_URL"] = f"http://{admin}"
    code, out, err, secs = run_bounded(["bash", FRANZ_DIR / "run.sh", bootstrap, prefix], RUN_TIMEOUT_S, FRANZ_DIR, env)
    report = report_of("franz-go leader-move", code, out, err, secs)
    print(report)
    assert code == 0, f"franz-go leader-move exited with {code}\n{report}"
    lines = [l for l in out.splitlines() if l.strip()]
    assert lines and re.fullmatch(r"RESULT franz-go-leader-move \S+ ok", lines[-1].strip()), (
        f"last line {lines[-1] if lines else ''!r}\n{report}"
    )
    s = check_summary("franz-go", events(out), report)
    assert s["produce_requests_failed"] > 0, f"franz-go: no Produce without response: no cut connection seen\n{report}"
    check_after("franz-go", admin, prefix, report)
    timings.append(
        f"leader-move franz-go  {secs:6.1f} s: {s['records']} records, {s['moves']} moves, {s['faults']} faults, "
        f"produce requests cut {s['produce_requests_failed']}, duplicates {s['duplicates']}, "
        f"live redelivered {s['live_redelivered']}"
    )
