"""Kafka Streams 4.3.1 with processing.guarantee=exactly_once_v2 against Gregor.

The application is compat-tests/streams (gregor.streams.WordCount): input
lines -> words -> groupBy(word) (repartition topic <app>-words-repartition)
-> count() (store "counts", changelog <app>-counts-changelog) -> output
(word -> count, a big-endian long). The record cache is off, so every
increment is forwarded: with exactly-once, the committed output of a word
is exactly 1, 2, ..., n. A double count shows as a repeated value, a lost
update as a gap, a store restored wrongly as a restart from 1.

The tests produce the input with confluent-kafka (acks=all) and read the
output with read_committed (and compare with read_uncommitted):

1. the counts of 300 lines are exact;
2. the app is stopped (SIGTERM -> KafkaStreams.close) and restarted on the
   same state dir, then on an empty one (the store is restored from the
   changelog), with more input each time;
3. (a gregor process only) the broker is killed with SIGKILL while the app
   processes a stream of input, with one of its transactions open on the
   output, and restarted on the same port and data dir;
   the app recovers (a dead app process would be restarted, and said so)
   and the counts of what the input topic holds are exact;
4. the path a fenced Streams thread takes (compat-tests/streams
   AbortAfterRejectedOffsets): a TxnOffsetCommit rejected for a stale
   generation, then abortTransaction, then the next transaction.

Environment: GREGOR_STREAMS_TIMEOUT (seconds, default 90) bounds each wait;
GREGOR_STREAMS_LOG_LEVEL (info) is the app's slf4j level; its log is
printed when a test fails.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import struct
import subprocess
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from compat import ck_consumer, ck_create_topic, unique_topic, wait_until
from conftest import REPO_ROOT

STREAMS = REPO_ROOT / "compat-tests" / "streams"
RUN_SH = STREAMS / "run.sh"
TIMEOUT_S = float(os.environ.get("GREGOR_STREAMS_TIMEOUT", "90"))
BUILD_TIMEOUT_S = 900
LOG_LEVEL = os.environ.get("GREGOR_STREAMS_LOG_LEVEL", "info")
INPUT_PARTITIONS = 3
OUTPUT_PARTITIONS = 2
VOCAB = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot",
    "golf", "hotel", "india", "juliet", "kilo", "lima",
]  # fmt: skip


def make_lines(n: int, seed: int) -> list[str]:
    """n lines of 1-6 words of VOCAB, skewed so that counts differ."""
    rnd = random.Random(seed)
    weights = [len(VOCAB) - i for i in range(len(VOCAB))]
    return [" ".join(rnd.choices(VOCAB, weights, k=rnd.randint(1, 6))) for _ in range(n)]


class AppDied(AssertionError):
    pass


def word_counts(lines) -> Counter:
    c: Counter = Counter()
    for line in lines:
        c.update(w for w in re.split(r"\W+", line.lower()) if w)
    return c


# --------------------------------------------------------------------------
# the Java application
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def streams_built(timings):
    """Builds compat-tests/streams once (Maven; a no-op when up to date)."""
    t0 = time.monotonic()
    try:
        out = subprocess.run(
            ["bash", str(RUN_SH), "build"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"compat-tests/streams did not build within {BUILD_TIMEOUT_S}s", pytrace=False)
    timings.append(f"streams build {time.monotonic() - t0:7.1f} s")
    if out.returncode != 0:
        pytest.fail(f"compat-tests/streams build failed:\n{out.stdout}\n{out.stderr}", pytrace=False)


def read_all(bootstrap: str, topic: str, isolation: str, partitions: int) -> list:
    """Every record of topic from the start up to the end (the LSO for
    read_committed): [(partition, offset, key, value)]."""
    from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

    c = ck_consumer(bootstrap, **{"isolation.level": isolation})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    got = []
    eof: set[int] = set()
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while len(eof) < partitions:
            assert time.monotonic() < deadline, (
                f"reading {topic} ({isolation}) did not reach the end of partitions "
                f"{sorted(set(range(partitions)) - eof)} within {TIMEOUT_S:.0f}s ({len(got)} records)"
            )
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                raise AssertionError(f"consuming {topic}: {m.error()}")
            eof.discard(m.partition())
            got.append((m.partition(), m.offset(), m.key(), m.value()))
    finally:
        c.close()
    return got


class App:
    """One run of the WordCount JVM. stdout lines (STATE ..., THREAD-ERROR
    ..., CLOSED ...) are collected; stderr (the Streams log) goes to a file."""

    def __init__(self, name: str, bootstrap: str, app_id: str, inp: str, out: str, state_dir: Path, log: Path):
        self.name = name
        self.log_path = log
        self._cond = threading.Condition()
        self.lines: list[str] = []
        cmd = ["bash", str(RUN_SH), "run", bootstrap, app_id, inp, out, str(state_dir)]
        env = dict(os.environ, JAVA_LOG_LEVEL=LOG_LEVEL)
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._drain, daemon=True, name=f"{name}-out")
        self._reader.start()

    def _drain(self) -> None:
        for raw in iter(self.proc.stdout.readline, b""):
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.lines.append("<eof>")
            self._cond.notify_all()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_line(self, line: str, start: int = 0, timeout: float = TIMEOUT_S) -> int:
        """Waits for `line` at index >= start; returns its index."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(start, len(self.lines)):
                    if self.lines[i] == line:
                        return i
                if "<eof>" in self.lines[start:]:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        raise AssertionError(
            f"{self.name}: no {line!r} within {timeout:.0f}s (exit code {self.proc.poll()}); "
            f"its output: {self.lines}\n{self.log_tail()}"
        )

    def wait_running(self, start: int = 0) -> int:
        return self.wait_line("STATE RUNNING", start)

    def stop(self) -> None:
        """SIGTERM: the shutdown hook closes KafkaStreams (leaving the group)."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not exit within {TIMEOUT_S:.0f}s of SIGTERM\n{self.log_tail()}")
        self._reader.join(10)
        # 143: the JVM ran its shutdown hooks on SIGTERM
        assert code in (0, 143), f"{self.name} exited with {code}\n{self.log_tail()}"
        assert "CLOSED true" in self.lines, (
            f"{self.name}: KafkaStreams.close did not complete: {self.lines}\n{self.log_tail()}"
        )

    def kill(self) -> None:
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self._reader.join(10)

    def log_tail(self, n: int = 15000) -> str:
        self._log.flush()
        text = self.log_path.read_text("utf-8", "replace")
        if len(text) > n:
            text = "[... earlier lines cut ...]\n" + text[-n:]
        return f"----- {self.name} log ({self.log_path}) -----\n{text}"


class Scenario:
    """Topics, apps and the committed view of the output for one test."""

    def __init__(self, bootstrap: str, tmp: Path):
        self.bootstrap = bootstrap
        self.tmp = tmp
        self.app_id = unique_topic("wc")
        self.input = unique_topic("wc-in")
        self.output = unique_topic("wc-out")
        self.apps: list[App] = []
        self.produced: list[str] = []
        ck_create_topic(bootstrap, self.input, INPUT_PARTITIONS)
        ck_create_topic(bootstrap, self.output, OUTPUT_PARTITIONS)
        # one read_committed consumer follows the output through the test
        self.reader = self._assigned(self.output, "read_committed")
        self.seqs: dict[str, list[int]] = defaultdict(list)

    def _assigned(self, topic: str, isolation: str, partitions: int = OUTPUT_PARTITIONS):
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        c = ck_consumer(self.bootstrap, **{"isolation.level": isolation})
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        return c

    def start_app(self, state_dir: Path) -> App:
        n = len(self.apps)
        app = App(f"app#{n}", self.bootstrap, self.app_id, self.input, self.output, state_dir, self.tmp / f"app{n}.log")
        self.apps.append(app)
        return app

    def produce(self, lines: list[str], **conf) -> None:
        from confluent_kafka import Producer

        p = Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "linger.ms": 5, **conf})
        failed: list = []

        def report(err, _msg):
            if err is not None:
                failed.append(err)

        base = len(self.produced)
        for i, line in enumerate(lines):
            p.produce(self.input, key=f"line-{base + i}".encode(), value=line.encode(), on_delivery=report)
            p.poll(0)
        left = p.flush(TIMEOUT_S)
        assert left == 0, f"{left} input records not delivered within {TIMEOUT_S:.0f}s"
        assert not failed, f"input delivery failed: {failed[:5]}"
        self.produced.extend(lines)

    def poll_output(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            m = self.reader.poll(min(left, 0.2))
            if m is None or m.error():
                continue  # partition EOF events
            self.seqs[m.key().decode()].append(struct.unpack(">q", m.value())[0])

    def wait_counts(self, want: Counter, app: App | None = None, timeout: float = TIMEOUT_S) -> None:
        """Until the latest committed count of every word is want[word]."""
        deadline = time.monotonic() + timeout
        while True:
            latest = {w: s[-1] for w, s in self.seqs.items() if s}
            if latest == dict(want):
                return
            if app is not None and not app.alive():
                raise AppDied(
                    f"{app.name} exited with {app.proc.poll()} before the counts were reached; "
                    f"its output: {app.lines}\n{app.log_tail()}"
                )
            if time.monotonic() >= deadline:
                diff = {w: (latest.get(w), want.get(w)) for w in set(latest) | set(want) if latest.get(w) != want.get(w)}
                app_state = ""
                if app is not None:
                    app_state = f"\napp exit code {app.proc.poll()}, output {app.lines}\n{app.log_tail()}"
                raise AssertionError(
                    f"after {timeout:.0f}s the committed counts differ from the input's "
                    f"(word: (latest output, expected)): {diff}{app_state}"
                )
            self.poll_output(0.5)

    def wait_open_transaction(self) -> tuple:
        """Until some output partition has a high watermark beyond its last
        stable offset: an open transaction with records on it. Returns
        (partition, LSO, high watermark)."""
        from confluent_kafka import TopicPartition

        committed = ck_consumer(self.bootstrap, **{"isolation.level": "read_committed"})
        uncommitted = ck_consumer(self.bootstrap, **{"isolation.level": "read_uncommitted"})

        def open_txn():
            for p in range(OUTPUT_PARTITIONS):
                tp = TopicPartition(self.output, p)
                # LSO first: a high watermark read after it and beyond it
                # means records not yet committed when the LSO was read
                lso = committed.get_watermark_offsets(tp, timeout=10, cached=False)[1]
                hw = uncommitted.get_watermark_offsets(tp, timeout=10, cached=False)[1]
                if hw > lso:
                    return (p, lso, hw)
            return None

        try:
            return wait_until(open_txn, TIMEOUT_S, "an open transaction on the output", interval=0.005)
        finally:
            committed.close()
            uncommitted.close()

    def read_all(self, topic: str, isolation: str, partitions: int) -> list:
        return read_all(self.bootstrap, topic, isolation, partitions)

    def check_final(self, want: Counter, *, clean: bool) -> None:
        """After every app has stopped: the whole committed output, read
        anew, is exactly 1..n per word; the changelog's latest value per word
        is n; the group committed the end of the input. `clean` (no failure
        on the way, so no aborted transaction): read_uncommitted sees the
        same records."""
        committed = self.read_all(self.output, "read_committed", OUTPUT_PARTITIONS)
        seqs: dict[str, list[int]] = defaultdict(list)
        parts: dict[str, set] = defaultdict(set)
        for p, _o, k, v in committed:
            seqs[k.decode()].append(struct.unpack(">q", v)[0])
            parts[k.decode()].add(p)
        bad = {w: s for w, s in seqs.items() if s != list(range(1, want[w] + 1))}
        dup = {w: [c for c, n in Counter(s).items() if n > 1] for w, s in seqs.items()}
        dup = {w: d for w, d in dup.items() if d}
        assert not dup, f"read_committed: (word, count) pairs seen more than once (double counting): {dup}"
        assert set(seqs) == set(want), f"words in the output {sorted(seqs)}, in the input {sorted(want)}"
        assert not bad, (
            "read_committed output per word is not exactly 1..n: "
            + "; ".join(f"{w}: want 1..{want[w]}, got {s if len(s) < 40 else s[:20] + ['...'] + s[-10:]}" for w, s in bad.items())
        )
        spread = {w: sorted(p) for w, p in parts.items() if len(p) > 1}
        assert not spread, f"a word's counts in more than one output partition: {spread}"
        assert len(committed) == sum(want.values())

        uncommitted = self.read_all(self.output, "read_uncommitted", OUTPUT_PARTITIONS)
        if clean:
            assert sorted(uncommitted) == sorted(committed), (
                f"read_uncommitted {len(uncommitted)} records, read_committed {len(committed)}: "
                "without failures no transaction should have been aborted"
            )
        else:
            missing = Counter(committed) - Counter(uncommitted)
            assert not missing, f"committed records missing from read_uncommitted: {list(missing)[:5]}"
            print(f"read_uncommitted {len(uncommitted)} records, read_committed {len(committed)} (aborted ones differ)")

        # the count store's changelog: with read_committed, latest value per word is n
        changelog = f"{self.app_id}-counts-changelog"
        repartition = f"{self.app_id}-words-repartition"
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        md = admin.list_topics(timeout=30).topics
        for t in (changelog, repartition):
            assert t in md and md[t].error is None, f"internal topic {t} missing: {sorted(x for x in md if self.app_id in x)}"
        cl_parts = len(md[changelog].partitions)
        assert cl_parts == INPUT_PARTITIONS, f"{changelog} has {cl_parts} partitions"
        # the configs Streams created them with (a changelog that is not
        # compacted would lose the store in the long run)
        from confluent_kafka.admin import ConfigResource, ResourceType

        for t, policy in ((changelog, "compact"), (repartition, "delete")):
            cfg = admin.describe_configs([ConfigResource(ResourceType.TOPIC, t)])
            entries = next(iter(cfg.values())).result(timeout=30)
            got_policy = entries["cleanup.policy"].value if "cleanup.policy" in entries else None
            assert got_policy == policy, f"{t}: cleanup.policy {got_policy!r}, Streams creates it with {policy!r}"
        latest: dict[str, int] = {}
        for _p, _o, k, v in self.read_all(changelog, "read_committed", cl_parts):
            latest[k.decode()] = struct.unpack(">q", v[-8:])[0]
        assert latest == dict(want), f"changelog latest values {latest}, expected {dict(want)}"

        # the input offsets were committed in the transactions (TxnOffsetCommit)
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

        res = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(self.app_id, [TopicPartition(self.input, p) for p in range(INPUT_PARTITIONS)])]
        )
        offsets = {tp.partition: tp.offset for tp in res[self.app_id].result(timeout=30).topic_partitions}
        c = ck_consumer(self.bootstrap)
        try:
            ends = {p: c.get_watermark_offsets(TopicPartition(self.input, p), timeout=30)[1] for p in range(INPUT_PARTITIONS)}
        finally:
            c.close()
        assert offsets == ends, f"group {self.app_id} committed {offsets} on {self.input}, its ends are {ends}"

    def input_lines(self) -> list[str]:
        """The input topic as it is (what the app must have counted)."""
        return [v.decode() for _p, _o, _k, v in self.read_all(self.input, "read_uncommitted", INPUT_PARTITIONS)]

    def close(self) -> None:
        for app in self.apps:
            app.kill()
        self.reader.close()


@pytest.fixture
def scenario_factory(tmp_path, streams_built):
    made: list[Scenario] = []

    def make(bootstrap: str) -> Scenario:
        s = Scenario(bootstrap, tmp_path)
        made.append(s)
        return s

    yield make
    for s in made:
        for app in s.apps:
            # shown by pytest with the failure (captured stdout)
            print(f"{app.name}: exit {app.proc.poll()}, output {app.lines}")
        s.close()
    if made:
        print(made[0].apps[-1].log_tail() if made[0].apps else "")


@pytest.fixture
def eos_broker(make_broker):
    if os.environ.get("COMPAT_EXTERNAL_BOOTSTRAP"):
        return make_broker()
    # a lone member need not wait for others to join
    return make_broker("-o", "group.initial.rebalance.delay.ms=0")


def test_word_count_exact(eos_broker, scenario_factory, tmp_path):
    s = scenario_factory(eos_broker.bootstrap)
    app = s.start_app(tmp_path / "state")
    app.wait_running()
    lines = make_lines(300, seed=1)
    s.produce(lines)
    want = word_counts(lines)
    assert sum(want.values()) > 900
    s.wait_counts(want, app)
    app.stop()
    s.check_final(want, clean=True)


def test_word_count_restarts(eos_broker, scenario_factory, tmp_path):
    s = scenario_factory(eos_broker.bootstrap)
    state = tmp_path / "state"
    want: Counter = Counter()
    for phase, wipe in enumerate([False, False, True]):
        if wipe:
            # the store must come back from the changelog
            shutil.rmtree(state)
        app = s.start_app(state)
        app.wait_running()
        lines = make_lines(100, seed=10 + phase)
        s.produce(lines)
        want.update(word_counts(lines))
        s.wait_counts(want, app)
        app.stop()
    s.check_final(want, clean=True)


def test_word_count_broker_kill9(eos_broker, scenario_factory, tmp_path):
    if eos_broker.pid is None:
        pytest.skip("kills the broker: needs a gregor process started by the suite")
    s = scenario_factory(eos_broker.bootstrap)
    state = tmp_path / "state"
    app = s.start_app(state)
    app.wait_running()

    # a stream of input from another thread while the broker dies, going on
    # for 10 batches after the restart; the idempotent producer retries
    # across the crash
    lines = make_lines(3000, seed=3)
    killed = threading.Event()
    errors: list = []
    fed: list[int] = []

    def feed():
        try:
            after = 0
            for i in range(0, len(lines), 20):
                s.produce(lines[i : i + 20], **{"enable.idempotence": True, "message.timeout.ms": int(TIMEOUT_S * 1000)})
                fed.append(i + 20)
                if killed.is_set():
                    after += 1
                    if after >= 10:
                        return
                time.sleep(0.05)  # pacing: a stream, not a burst
            raise AssertionError(f"all {len(lines)} lines fed before the broker was killed")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    # kill while the app is busy: once it has committed some output, and
    # while a transaction of it is open on the output (high watermark past
    # the last stable offset), which the restarted broker must then resolve
    wait_until(lambda: (s.poll_output(0.2), sum(len(v) for v in s.seqs.values()) >= 200)[1], TIMEOUT_S, "200 committed outputs")
    open_txn = s.wait_open_transaction()
    eos_broker.kill9()
    killed.set()
    print(
        f"broker killed after {fed[-1] if fed else 0} lines fed, {sum(len(v) for v in s.seqs.values())} "
        f"outputs read, output (partition, LSO, high watermark) {open_txn}"
    )
    eos_broker.start()
    feeder.join(TIMEOUT_S * 2)
    assert not feeder.is_alive(), "the input producer did not finish"
    assert not errors, f"producing the input failed: {errors[0]!r}"
    lines = s.produced

    got = s.input_lines()
    assert Counter(got) - Counter(lines) == Counter(), "input records duplicated or never produced (idempotent producer across the crash)"
    assert Counter(lines) - Counter(got) == Counter(), "acknowledged input records lost by the broker crash"
    want = word_counts(got)
    try:
        s.wait_counts(want, app)
    except AppDied:
        # noted in the output: the app did not survive the broker's crash;
        # restarted once, as its supervisor would
        print(f"app died after the broker's kill -9: exit {app.proc.poll()}, output {app.lines}")
        app = s.start_app(state)
        app.wait_running()
        s.wait_counts(want, app)
    print(f"app output across the crash: {app.lines}")
    app.stop()
    s.check_final(want, clean=False)


def test_abort_after_rejected_txn_offset_commit(eos_broker, streams_built):
    """What a Streams thread does when its group moved on under it (as after
    a broker restart): TxnOffsetCommit with a stale generation is rejected
    (ILLEGAL_GENERATION), then the transaction, which holds nothing else
    under transaction version 2, is aborted, and the producer goes on.
    Kafka 4.3.1 answers that EndTxn(abort) with NONE and a bumped epoch; an
    error there turns the Streams producer fatal."""
    bootstrap = eos_broker.bootstrap
    topic = unique_topic("abort-probe")
    ck_create_topic(bootstrap, topic, 1)
    # the client's view of every transactional request and response
    tm = "org.apache.kafka.clients.producer.internals.TransactionManager"
    env = dict(os.environ, JAVA_OPTS=f"-Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dorg.slf4j.simpleLogger.log.{tm}=trace")
    cmd = ["bash", str(RUN_SH), "abort-probe", bootstrap, topic, unique_topic("g"), unique_topic("tx")]
    try:
        out = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT_S * 2, env=env)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"abort-probe did not finish within {TIMEOUT_S * 2:.0f}s\n{e.stdout}\n{e.stderr}") from None
    log = "\n".join(
        l for l in out.stderr.splitlines() if "Received transactional response" in l or "Transiting" in l
    )
    ctx = f"\nstdout:\n{out.stdout}\ntransactional responses and transitions:\n{log}"
    assert out.returncode == 0, f"abort-probe exited with {out.returncode}{ctx}\n{out.stderr[-5000:]}"
    got = dict(l.split(" ", 1) for l in out.stdout.splitlines() if " " in l)
    assert got.get("COMMIT1") == "ok", ctx
    assert got.get("OFFSETS", "").startswith("CommitFailedException"), (
        f"TxnOffsetCommit with a stale generation: {got.get('OFFSETS')!r}, expected ILLEGAL_GENERATION{ctx}"
    )
    assert got.get("ABORT") == "ok", f"abortTransaction after the rejected offsets: {got.get('ABORT')!r}{ctx}"
    assert got.get("COMMIT2") == "ok", f"the next transaction: {got.get('COMMIT2')!r}{ctx}"
    for isolation in ("read_committed", "read_uncommitted"):
        values = [v for _p, _o, _k, v in read_all(bootstrap, topic, isolation, 1)]
        assert values == [b"committed-1", b"committed-2"], f"{isolation}: {values}{ctx}"
