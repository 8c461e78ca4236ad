"""Transactions and exactly-once with the stock Java kafka-clients 4.3.1.

Each test runs one scenario of gregor.compat.Transactions
(compat-tests/java/txn.sh) against a fresh gregor (or the broker of
COMPAT_EXTERNAL_BOOTSTRAP) and asserts, from the JSON lines it prints, the
exact logs under both isolation levels. The expected logs are computed here
from what the program reports it sent and how each transaction ended: every
transaction appends its records to each partition it wrote, then one
control record (the commit or abort marker), so data offsets skip one
offset per transaction and partition, and the end offsets count the
markers. read_committed sees exactly the committed records at those
offsets; read_uncommitted sees every record that reached the log.

1. interleaved: eight transactions over three partitions, commits and
   aborts interleaved; end offsets with a transaction open (read_committed:
   the last stable offset, the open transaction's first offset;
   read_uncommitted: the high watermark) and after it.
2. fencing: a second producer with the same transactional.id fences the
   first and aborts its open transaction; the zombie's send and commit fail
   with InvalidProducerEpochException (what Kafka 4.3.1 surfaces with
   transaction version 2).
3. consume-transform-produce: sendOffsetsToTransaction with the group
   metadata, one batch aborted and redone; exactly one output record per
   input, the group's offsets at the input's end.
4. kill -9 of the broker with a transaction open (gregor only): the next
   producer with that transactional.id aborts it; the logs read the same
   after a clean restart and after another kill -9.
5. kafka-transactions.sh (TransactionsCommand from the reference
   distribution): list, describe and describe-producers of an open
   transaction, then CompleteCommit.

Every scenario was run against the reference Apache Kafka 4.3.1
(compat-tests/reference) through COMPAT_EXTERNAL_BOOTSTRAP (4 by hand: kill -9
of the reference and a restart on its data dir gave the same logs).
GREGOR_REFERENCE=1 adds the reference as a second target (scenario 4 skipped
there). The Java program is built on first use (compat-tests/java/txn.sh
build, Maven).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from conftest import REPO_ROOT, ExternalBroker

TXN_SH = REPO_ROOT / "compat-tests" / "java" / "txn.sh"
KAFKA_SH = REPO_ROOT / "compat-tests" / "reference" / "kafka.sh"
PARTITIONS = 3
BUILD_TIMEOUT_S = 600.0
RUN_TIMEOUT_S = 120.0  # one scenario; the Java side bounds each call to 30 s
TOOL_TIMEOUT_S = 60.0


@pytest.fixture(scope="session")
def java_built(timings):
    t0 = time.monotonic()
    try:
        r = subprocess.run(
            ["bash", str(TXN_SH), "build"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"txn.sh build did not finish within {BUILD_TIMEOUT_S:.0f}s", pytrace=False)
    timings.append(f"java txn build {time.monotonic() - t0:7.1f} s: exit {r.returncode}")
    if r.returncode != 0:
        pytest.fail(f"txn.sh build exited with {r.returncode}\n{r.stdout}\n{r.stderr}", pytrace=False)


# GREGOR_REFERENCE=1 also runs every test against the reference Kafka of the
# session (conftest.reference_bootstrap), as test_matrix.py does
TARGETS = ["gregor", "reference"] if os.environ.get("GREGOR_REFERENCE", "") not in ("", "0") else ["gregor"]


@pytest.fixture(params=TARGETS)
def target(request, make_broker, java_built):
    """The broker to test: gregor (restartable), the external one, or the reference."""
    if request.param == "reference":
        return ExternalBroker(request.getfixturevalue("reference_bootstrap"))
    if os.environ.get("COMPAT_EXTERNAL_BOOTSTRAP"):
        return make_broker()
    return make_broker("-o", "group.initial.rebalance.delay.ms=0")


class JavaRun:
    """One txn.sh process: JSON events from stdout, stderr kept for reports."""

    def __init__(self, bootstrap: str, scenario: str, prefix: str):
        self.scenario = scenario
        env = dict(os.environ)
        # the transaction manager's requests, responses and state changes go
        # to stderr, which a failure report shows (the rest stays at warn)
        env["JAVA_OPTS"] = (
            env.get("JAVA_OPTS", "")
            + " -Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients.producer.internals.TransactionManager=debug"
        )
        self.proc = subprocess.Popen(
            ["bash", str(TXN_SH), bootstrap, scenario, prefix],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.events: list[dict] = []
        self.stderr: list[str] = []
        self._q: queue.Queue = queue.Queue()
        self._out = threading.Thread(target=self._read_out, daemon=True)
        self._err = threading.Thread(target=self._read_err, daemon=True)
        self._out.start()
        self._err.start()

    def _read_out(self):
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"event": "unparsed", "line": line}
            self.events.append(ev)
            self._q.put(ev)
        self._q.put(None)

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr.append(line)

    def report(self) -> str:
        out = "\n".join(json.dumps(e) for e in self.events)
        # a retry loop logs the same line many times: once, with a count
        lines: list[list] = []
        for line in self.stderr:
            if lines and lines[-1][0] == line:
                lines[-1][1] += 1
            else:
                lines.append([line, 1])
        err = "".join(l if n == 1 else f"{l.rstrip()}  [x{n}]\n" for l, n in lines)[-12000:]
        return f"--- {self.scenario} stdout:\n{out}\n--- {self.scenario} stderr:\n{err}"

    def wait_event(self, pred, what: str, timeout: float = RUN_TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"{self.scenario}: no {what} within {timeout:.0f}s\n{self.report()}", pytrace=False)
            try:
                ev = self._q.get(timeout=left)
            except queue.Empty:
                continue
            if ev is None:
                self.proc.wait(10)
                self._err.join(5)
                pytest.fail(
                    f"{self.scenario}: exited with {self.proc.returncode} before {what}\n{self.report()}",
                    pytrace=False,
                )
            if pred(ev):
                return ev

    def send_line(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = RUN_TIMEOUT_S) -> list[dict]:
        """Closes stdin, waits for exit 0; returns the events."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.scenario}: did not finish within {timeout:.0f}s\n{self.report()}", pytrace=False)
        self._out.join(10)
        self._err.join(10)
        if code != 0:
            fails = [l.strip() for l in self.stderr if l.startswith("FAIL")]
            pytest.fail(
                f"{self.scenario}: exited with {code}: {fails[-1] if fails else '(no FAIL line)'}\n{self.report()}",
                pytrace=False,
            )
        return self.events

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)


@pytest.fixture
def java():
    runs: list[JavaRun] = []

    def start(bootstrap: str, scenario: str, prefix: str) -> JavaRun:
        r = JavaRun(bootstrap, scenario, prefix)
        runs.append(r)
        return r

    yield start
    for r in runs:
        r.kill()


def prefix() -> str:
    return f"jt{uuid.uuid4().hex[:8]}-"


def values_of(ev: dict) -> dict[int, list[str]]:
    return {int(p): vs for p, vs in ev["values"].items()}


def expected_logs(txns: list[tuple[dict[int, list[str]], str]], start: dict[int, int] | None = None):
    """The logs that `txns` ((partition -> values, "commit"/"abort") in log
    order) leave: (read_committed records, read_uncommitted records, end
    offsets), records per partition as [offset, value]."""
    nxt = dict(start or {p: 0 for p in range(PARTITIONS)})
    rc: dict[int, list] = {p: [] for p in range(PARTITIONS)}
    ru: dict[int, list] = {p: [] for p in range(PARTITIONS)}
    for values, outcome in txns:
        assert outcome in ("commit", "abort"), outcome
        for p, vs in values.items():
            for v in vs:
                ru[p].append([nxt[p], v])
                if outcome == "commit":
                    rc[p].append([nxt[p], v])
                nxt[p] += 1
            nxt[p] += 1  # the control record
    return rc, ru, nxt


def reads(events: list[dict], label: str) -> dict[str, dict]:
    got = {e["isolation"]: e for e in events if e["event"] == "read" and e["label"] == label}
    assert set(got) == {"read_committed", "read_uncommitted"}, f"read events for {label}: {sorted(got)}"
    return got


def records(ev: dict) -> dict[int, list]:
    return {int(p): rs for p, rs in ev["records"].items()}


def offsets(m: dict) -> dict[int, int]:
    return {int(p): o for p, o in m.items()}


def assert_logs(events: list[dict], label: str, txns, report: str) -> None:
    rc, ru, end = expected_logs(txns)
    got = reads(events, label)
    c, u = got["read_committed"], got["read_uncommitted"]
    assert records(c) == rc, f"read_committed records differ\nexpected {rc}\ngot      {records(c)}\n{report}"
    assert records(u) == ru, f"read_uncommitted records differ\nexpected {ru}\ngot      {records(u)}\n{report}"
    for ev in (c, u):
        # no transaction open: the last stable offset is the high watermark,
        # markers included, and a consumer's position gets past the last marker
        assert offsets(ev["end"]) == end, f"{ev['isolation']} endOffsets {ev['end']}, expected {end}\n{report}"
        assert offsets(ev["position"]) == end, (
            f"{ev['isolation']} final positions {ev['position']}, expected {end}\n{report}"
        )


def txn_events(events: list[dict]) -> list[dict]:
    return [e for e in events if e["event"] == "txn"]


# --------------------------------------------------------------------------- tests


def test_interleaved_commits_and_aborts(target, java):
    run = java(target.bootstrap, "interleaved", prefix())
    events = run.finish()
    report = run.report()
    txns = txn_events(events)
    assert [t["outcome"] for t in txns] == ["commit", "abort", "commit", "commit", "abort", "abort", "commit", "commit"], report
    assert all(len(t["values"]) >= 2 for t in txns), f"every transaction writes to several partitions\n{report}"

    # with the last transaction acknowledged but open
    before = [(values_of(t), t["outcome"]) for t in txns[:-1]]
    rc_before, _, lso = expected_logs(before)
    last = values_of(txns[-1])
    hw = {p: lso[p] + len(last.get(p, [])) for p in range(PARTITIONS)}
    open_ends = {e["isolation"]: offsets(e["end"]) for e in events if e["event"] == "end" and e["label"] == "open"}
    assert open_ends.get("read_committed") == lso, (
        f"read_committed endOffsets with a transaction open: {open_ends.get('read_committed')}, "
        f"expected the last stable offsets {lso}\n{report}"
    )
    assert open_ends.get("read_uncommitted") == hw, (
        f"read_uncommitted endOffsets with a transaction open: {open_ends.get('read_uncommitted')}, "
        f"expected the high watermarks {hw}\n{report}"
    )
    assert lso != hw, "the open transaction must hold back some partition's LSO"
    open_read = next(e for e in events if e["event"] == "read" and e["label"] == "open")
    assert records(open_read) == rc_before, (
        f"read_committed with a transaction open: {records(open_read)}, expected {rc_before}\n{report}"
    )
    assert offsets(open_read["position"]) == lso, f"read_committed positions {open_read['position']}, expected {lso}"

    assert_logs(events, "final", [(values_of(t), t["outcome"]) for t in txns], report)


# what the reference Kafka 4.3.1 (transaction version 2) raises in the zombie
FENCED = "org.apache.kafka.common.errors.InvalidProducerEpochException"


def test_zombie_fencing(target, java):
    run = java(target.bootstrap, "fencing", prefix())
    events = run.finish()
    report = run.report()
    txns = {t["name"]: t for t in txn_events(events)}
    zombie = next(e for e in events if e["event"] == "zombie")
    assert zombie["send_error"] == FENCED, f"zombie's send: {zombie['send_error']}, expected {FENCED}\n{report}"
    assert zombie["commit_error"] == FENCED, f"zombie's commit: {zombie['commit_error']}, expected {FENCED}\n{report}"
    assert txns["b"]["outcome"] == "commit", report
    # A's open transaction was aborted by B's initTransactions; A's late send never reached the log
    assert_logs(events, "final", [(values_of(txns["a"]), "abort"), (values_of(txns["b"]), "commit")], report)


def test_consume_transform_produce(target, java):
    run = java(target.bootstrap, "ctp", prefix())
    events = run.finish()
    report = run.report()
    input_ev = next(e for e in events if e["event"] == "input")
    inp = values_of(input_ev)
    assert {p: len(vs) for p, vs in inp.items()} == {p: 20 for p in range(PARTITIONS)}, report
    batches = txn_events(events)
    outcomes = [b["outcome"] for b in batches]
    assert outcomes.count("abort") == 1 and outcomes[2] == "abort", f"batch outcomes {outcomes}\n{report}"
    aborted = values_of(batches[2])
    assert aborted, report

    # the output log follows the batches; committed: each input once, in order
    assert_logs(events, "output", [(values_of(b), b["outcome"]) for b in batches], report)
    rc = records(reads(events, "output")["read_committed"])
    for p in range(PARTITIONS):
        assert [v for _, v in rc[p]] == [f"out:{v}" for v in inp[p]], (
            f"partition {p}: read_committed output is not exactly one transformed record per input, in order\n{report}"
        )
    # the aborted batch was redone: its values are in the log twice
    ru = records(reads(events, "output")["read_uncommitted"])
    for p, vs in aborted.items():
        seen = [v for _, v in ru[p]]
        assert all(seen.count(v) == 2 for v in vs), f"partition {p}: aborted batch {vs} not redone once\n{report}"
    assert sum(len(vs) for vs in ru.values()) == 3 * 20 + sum(len(vs) for vs in aborted.values()), report

    group = next(e for e in events if e["event"] == "group-offsets")
    input_end = next(e for e in events if e["event"] == "end" and e["label"] == "input")
    assert offsets(input_end["end"]) == {p: 20 for p in range(PARTITIONS)}, report
    want = {f"{input_ev['topic']}:{p}": 20 for p in range(PARTITIONS)}
    assert group["offsets"] == want, f"group offsets {group['offsets']}, expected {want}\n{report}"


def test_broker_killed_mid_transaction(target, java):
    if isinstance(target, ExternalBroker):
        pytest.skip("needs a broker process started by the suite")
    pre = prefix()
    first = java(target.bootstrap, "crash-begin", pre)
    events = first.finish()  # T1 committed, T2 acknowledged (acks=all) and open; the client halted
    names = [(t["name"], t["outcome"]) for t in txn_events(events)]
    assert names == [("t1", "commit"), ("t2", "open")], first.report()
    target.kill9()
    target.start()
    second = java(target.bootstrap, "crash-finish", pre)
    events2 = second.finish()
    report = first.report() + "\n" + second.report()
    t = {e["name"]: values_of(e) for e in txn_events(events) + txn_events(events2)}
    assert [e["outcome"] for e in txn_events(events2)] == ["commit"], report
    # the new producer's initTransactions aborted T2 before T3 began
    log = [(t["t1"], "commit"), (t["t2"], "abort"), (t["t3"], "commit")]
    assert_logs(events2, "final", log, report)
    # the same after a clean restart and after another kill -9 (the aborted
    # transactions and the LSO come back from the data dir)
    for how in ("SIGTERM", "SIGKILL"):
        if how == "SIGTERM":
            target.restart()
        else:
            target.kill9()
            target.start()
        again = java(target.bootstrap, "crash-read", pre)
        events3 = again.finish()
        assert_logs(events3, "reread", log, f"after a {how} restart\n{report}\n{again.report()}")


def run_tool(bootstrap: str, *args: str) -> list[list[str]]:
    """kafka-transactions.sh ARGS: its table as rows of stripped cells, header first."""
    cmd = ["bash", str(KAFKA_SH), "run", "org.apache.kafka.tools.TransactionsCommand", "--bootstrap-server", bootstrap, *args]
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"kafka-transactions.sh {' '.join(args)}: no exit within {TOOL_TIMEOUT_S:.0f}s", pytrace=False)
    print(f"$ kafka-transactions.sh {' '.join(args)}\n{r.stdout}", end="")
    assert r.returncode == 0, f"kafka-transactions.sh {' '.join(args)} exited with {r.returncode}\n{r.stdout}\n{r.stderr}"
    rows = [[c.strip() for c in line.rstrip("\t").split("\t")] for line in r.stdout.splitlines() if line.strip()]
    assert rows, f"kafka-transactions.sh {' '.join(args)}: no output\n{r.stderr}"
    return rows


def table(rows: list[list[str]]) -> list[dict[str, str]]:
    header = rows[0]
    return [dict(zip(header, row)) for row in rows[1:]]


def test_transactions_tool(target, java):
    sys.path.insert(0, str(REPO_ROOT / "compat-tests" / "reference"))
    from reference import available

    ok, why = available()
    if not ok:
        pytest.skip(f"kafka-transactions.sh comes from the reference distribution: {why}")
    b = target.bootstrap
    run = java(b, "open", prefix())
    opened = run.wait_event(lambda e: e["event"] == "txn" and e["outcome"] == "open", "open transaction")
    txn_id, topic = opened["transactional_id"], opened["topic"]
    report = run.report

    listed = [r for r in table(run_tool(b, "list")) if r.get("TransactionalId") == txn_id]
    assert len(listed) == 1, f"list: {txn_id} {listed}\n{report()}"
    assert listed[0]["TransactionState"] == "Ongoing", f"list: {listed[0]}\n{report()}"
    pid = listed[0]["ProducerId"]

    described = table(run_tool(b, "describe", "--transactional-id", txn_id))
    assert len(described) == 1, described
    d = described[0]
    assert d["TransactionalId"] == txn_id and d["ProducerId"] == pid and d["TransactionState"] == "Ongoing", d
    assert d["CoordinatorId"] == listed[0]["Coordinator"], d
    assert sorted(d["TopicPartitions"].split(",")) == [f"{topic}-0", f"{topic}-1"], d
    assert int(d["CurrentTransactionStartTimeMs"]) > 0 and int(d["TransactionDurationMs"]) >= 0, d
    assert d["TransactionTimeoutMs"] == "60000", d  # the producer's default transaction.timeout.ms

    producers = table(run_tool(b, "describe-producers", "--topic", topic, "--partition", "0"))
    assert len(producers) == 1, producers
    pr = producers[0]
    assert pr["ProducerId"] == pid and pr["ProducerEpoch"] == d["ProducerEpoch"], (pr, d)
    assert pr["CurrentTransactionStartOffset"] == "0", pr  # the transaction's first record on partition 0
    assert pr["LastSequence"] == "1", pr  # two records written to partition 0
    assert pr["LatestCoordinatorEpoch"] == "-1", pr  # no marker written yet
    # nothing written to partition 2: no producer state there
    assert table(run_tool(b, "describe-producers", "--topic", topic, "--partition", "2")) == [], report()

    run.send_line("commit")
    run.wait_event(lambda e: e["event"] == "txn" and e["outcome"] == "commit", "commit")
    # the commit returns once PrepareCommit is logged; the markers follow
    deadline = time.monotonic() + 30
    while True:
        listed = [r for r in table(run_tool(b, "list")) if r.get("TransactionalId") == txn_id]
        assert len(listed) == 1 and listed[0]["ProducerId"] == pid, f"list after commit: {listed}\n{report()}"
        state = listed[0]["TransactionState"]
        if state == "CompleteCommit":
            break
        assert state == "PrepareCommit", f"list after commit: {listed[0]}\n{report()}"
        assert time.monotonic() < deadline, f"still {state} 30 s after the commit\n{report()}"
    producers = table(run_tool(b, "describe-producers", "--topic", topic, "--partition", "0"))
    assert len(producers) == 1, producers
    after = producers[0]
    assert after["ProducerId"] == pid and after["CurrentTransactionStartOffset"] == "None", after
    # transaction version 2: the coordinator writes the commit marker with
    # the epoch bumped, and the new epoch has no sequence yet
    assert int(after["ProducerEpoch"]) == int(pr["ProducerEpoch"]) + 1, (pr, after)
    assert after["LastSequence"] == "-1", after
    # the marker carries the coordinator's epoch (0 on a fresh Kafka), which
    # the partition's producer state records
    assert int(after["LatestCoordinatorEpoch"]) >= 0, f"describe-producers after the commit marker: {after}"
    run.finish()
