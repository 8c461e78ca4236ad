"""Kafka Connect 4.3.1 in distributed mode against the broker.

A Connect worker (org.apache.kafka.connect.cli.ConnectDistributed, from
compat-tests/connect) keeps its whole state in the broker: connector configs
in the config topic, source offsets in the offset topic, states in the
status topic, all three compacted, and sink offsets in a consumer group. The
worker is a real JVM driven through its REST API; the FileStreamSource and
FileStreamSink connectors (connect-file 4.3.1, on the worker's classpath)
carry lines from a temp file into a topic and from that topic into another
temp file, so every line the source file gets must show up exactly once in
the sink file.

1. test_connect_pipeline_and_restart: Connect creates its three topics
   (DescribeConfigs: cleanup.policy=compact; the partition counts it
   asked for); lines go source file -> topic -> sink file; the worker is
   stopped (SIGTERM) and started again with the same config: both
   connectors come back RUNNING from the config topic, and the source goes
   on from its committed offset (lines appended while the worker was down
   arrive, none twice).
2. test_connect_restart_after_compaction: the config and offset topics are
   created beforehand with segment.ms=100 and min.cleanable.dirty.ratio=0.01
   (Connect accepts compacted topics it did not create); the source
   connector's config is updated several times, with lines in between so
   that the source commits several positions; once the cleaner has removed
   older versions from both topics (the newest kept), the worker is
   restarted and must come back with the latest config, RUNNING, its source
   going on from its latest position (no line twice in the sink file).

The broker's log cleaner must run soon: gregor gets
`-o log.cleaner.backoff.ms=200`; a reference Kafka for a
COMPAT_EXTERNAL_BOOTSTRAP run should be started with
GREGOR_REFERENCE_EXTRA_PROPS=log.cleaner.backoff.ms=200 (with Kafka's 15 s
default the cleaner still runs within the 60 s wait).

Environment: GREGOR_CONNECT_TIMEOUT (seconds, default 60) bounds each wait;
GREGOR_CONNECT_LOG_LEVEL (info) is the worker's log level; the worker's log
is part of every failure message.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from compat import ck_consumer, ck_create_topic, unique_topic, wait_until
from conftest import REPO_ROOT

CONNECT = REPO_ROOT / "compat-tests" / "connect"
RUN_SH = CONNECT / "run.sh"
TIMEOUT_S = float(os.environ.get("GREGOR_CONNECT_TIMEOUT", "60"))
COMPACTION_TIMEOUT_S = 60.0
BUILD_TIMEOUT_S = 600
LOG_LEVEL = os.environ.get("GREGOR_CONNECT_LOG_LEVEL", "info")
CLEANER_BACKOFF_MS = 200
OFFSET_PARTITIONS = 5  # not Connect's default (25): shows it asked for it
STATUS_PARTITIONS = 2


@pytest.fixture(scope="session")
def connect_built(timings):
    """Builds compat-tests/connect once (Maven; a no-op when up to date)."""
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
        pytest.fail(f"compat-tests/connect did not build within {BUILD_TIMEOUT_S}s", pytrace=False)
    timings.append(f"connect build {time.monotonic() - t0:7.1f} s")
    if out.returncode != 0:
        pytest.fail(f"compat-tests/connect build failed:\n{out.stdout}\n{out.stderr}", pytrace=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# the worker
# --------------------------------------------------------------------------


class Worker:
    """One run of the Connect worker JVM; its log (stdout and stderr) goes to
    a file that every failure message ends with."""

    def __init__(self, name: str, props: Path, rest_port: int, log: Path):
        self.name = name
        self.url = f"http://127.0.0.1:{rest_port}"
        self.log_path = log
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            ["bash", str(RUN_SH), "worker", str(props)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, CONNECT_LOG_LEVEL=LOG_LEVEL),
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 12000) -> str:
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text("utf-8", "replace")
        if len(text) > n:
            text = "[... earlier lines cut ...]\n" + text[-n:]
        return f"\n----- {self.name} log ({self.log_path}, exit code {self.proc.poll()}) -----\n{text}"

    def fail(self, msg: str):
        raise AssertionError(msg + self.log_tail())

    def rest(self, method: str, path: str, body=None, timeout: float = 30) -> tuple[int | None, object]:
        """(HTTP status, decoded JSON or text); status None when the worker
        does not answer (not listening yet)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except (urllib.error.URLError, ConnectionError, socket.timeout) as e:
            return None, str(e)
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def until(self, pred, what: str, timeout: float = TIMEOUT_S):
        """Polls pred() (truthy = done) while the worker lives, bounded."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            last = pred()
            if last:
                return last
            if not self.alive():
                self.fail(f"{self.name} exited while waiting for {what} (last: {last!r})")
            if time.monotonic() >= deadline:
                self.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
            time.sleep(0.2)

    def wait_healthy(self) -> None:
        """GET /health answers 200 once the worker has joined its group and
        read the config topic (KIP-1017): only then do writes go through."""
        self.until(lambda: self.rest("GET", "/health", timeout=5)[0] == 200 or None, f"{self.name} healthy")

    def call(self, method: str, path: str, body, ok: tuple[int, ...]) -> object:
        """A REST call, retried while the worker answers 409 or 500 for a
        rebalance in progress or expected, or 503/None; anything else not in
        `ok` fails."""
        seen: list = []

        def attempt():
            status, got = self.rest(method, path, body)
            seen[:] = [status, got]
            if status in ok:
                return [got]
            if status in (None, 409, 503):
                return None
            # RebalanceNeededException maps to 500: transient all the same
            if status == 500 and "rebalance" in json.dumps(got).lower():
                return None
            self.fail(f"{method} {path} {json.dumps(body)} -> {status} {got}")

        return self.until(attempt, f"{method} {path} to answer {ok} (last {seen})")[0]

    def wait_running(self, connector: str) -> dict:
        """Until the connector and all its tasks (at least one) are RUNNING;
        a FAILED state fails at once with its trace."""

        def running():
            status, st = self.rest("GET", f"/connectors/{connector}/status", timeout=10)
            if status != 200:
                return None
            states = [st["connector"]] + st.get("tasks", [])
            failed = [s for s in states if s.get("state") == "FAILED"]
            if failed:
                self.fail(f"{connector} failed: {json.dumps(failed, indent=1)}")
            if st.get("tasks") and all(s.get("state") == "RUNNING" for s in states):
                return st
            return None

        return self.until(running, f"{connector} and its tasks RUNNING")

    def stop(self) -> None:
        """SIGTERM: the shutdown hook stops the tasks (the source commits its
        offset, the sink its consumer offsets) and leaves the group."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            self.fail(f"{self.name} did not exit within {TIMEOUT_S:.0f}s of SIGTERM")
        self._log.close()
        # 143: the JVM ran its shutdown hooks on SIGTERM
        if code not in (0, 143):
            self.fail(f"{self.name} exited with code {code} after SIGTERM")
        if "Kafka Connect stopped" not in self.log_path.read_text("utf-8", "replace"):
            self.fail(f"{self.name} did not log a clean stop")

    def kill(self) -> None:
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self._log.close()


class Scenario:
    """A worker config, its topics and connectors, the two files and what
    went into the source file, for one test."""

    def __init__(self, bootstrap: str, tmp: Path, config_topic: str | None = None, offset_topic: str | None = None):
        self.bootstrap = bootstrap
        self.tmp = tmp
        self.rest_port = free_port()
        self.group = unique_topic("connect-cluster")
        self.config_topic = config_topic or unique_topic("connect-configs")
        self.offset_topic = offset_topic or unique_topic("connect-offsets")
        self.status_topic = unique_topic("connect-status")
        self.data_topic = unique_topic("connect-data")
        self.source = unique_topic("file-source")
        self.sink = unique_topic("file-sink")
        self.source_file = tmp / "source.txt"
        self.sink_file = tmp / "sink.txt"
        self.source_file.write_bytes(b"")
        self.written: list[str] = []
        self.workers: list[Worker] = []
        self.props = tmp / "worker.properties"
        self.props.write_text(
            "\n".join(
                [
                    f"bootstrap.servers={bootstrap}",
                    f"group.id={self.group}",
                    # plain JSON lines, no schema envelope
                    "key.converter=org.apache.kafka.connect.json.JsonConverter",
                    "value.converter=org.apache.kafka.connect.json.JsonConverter",
                    "key.converter.schemas.enable=false",
                    "value.converter.schemas.enable=false",
                    f"config.storage.topic={self.config_topic}",
                    f"offset.storage.topic={self.offset_topic}",
                    f"status.storage.topic={self.status_topic}",
                    "config.storage.replication.factor=1",
                    "offset.storage.replication.factor=1",
                    "status.storage.replication.factor=1",
                    f"offset.storage.partitions={OFFSET_PARTITIONS}",
                    f"status.storage.partitions={STATUS_PARTITIONS}",
                    # source offsets and sink commits (the sink file is
                    # flushed on commit) every 500 ms instead of every 60 s
                    "offset.flush.interval.ms=500",
                    # one worker: reassign at once after a restart
                    "scheduled.rebalance.max.delay.ms=0",
                    f"listeners=http://127.0.0.1:{self.rest_port}",
                    "rest.advertised.host.name=127.0.0.1",
                    f"rest.advertised.port={self.rest_port}",
                    # the FileStream connectors are on the classpath and
                    # have ServiceLoader manifests: no class scan
                    "plugin.discovery=service_load",
                ]
            )
            + "\n"
        )

    @property
    def worker(self) -> Worker:
        return self.workers[-1]

    def start_worker(self) -> Worker:
        n = len(self.workers)
        w = Worker(f"worker#{n}", self.props, self.rest_port, self.tmp / f"worker{n}.log")
        self.workers.append(w)
        w.wait_healthy()
        return w

    def restart_worker(self) -> Worker:
        self.worker.stop()
        return self.start_worker()

    def close(self) -> None:
        for w in self.workers:
            w.kill()

    def source_config(self, batch_size: int = 100) -> dict:
        return {
            "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
            "tasks.max": "1",
            "file": str(self.source_file),
            "topic": self.data_topic,
            "batch.size": str(batch_size),
        }

    def sink_config(self) -> dict:
        return {
            "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
            "tasks.max": "1",
            "file": str(self.sink_file),
            "topics": self.data_topic,
        }

    def create_connectors(self) -> None:
        w = self.worker
        for name, config in ((self.source, self.source_config()), (self.sink, self.sink_config())):
            got = w.call("POST", "/connectors", {"name": name, "config": config}, ok=(201,))
            assert got["name"] == name and got["config"]["connector.class"] == config["connector.class"], got
        for name in (self.source, self.sink):
            w.wait_running(name)

    def append(self, n: int, tag: str) -> None:
        lines = [f"{tag}-{i}-{uuid.uuid4().hex[:8]}" for i in range(n)]
        with open(self.source_file, "a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        self.written.extend(lines)

    def sink_lines(self) -> list[str]:
        if not self.sink_file.exists():
            return []
        return self.sink_file.read_text("utf-8").splitlines()

    def wait_sink(self) -> None:
        """Until the sink file holds exactly the lines written, in order (one
        partition); more lines than written (a duplicate) fails at once."""
        want = self.written

        def done():
            got = self.sink_lines()
            if len(got) > len(want) or got != want[: len(got)]:
                extra = [line for line in got if got.count(line) > 1]
                self.worker.fail(
                    f"sink file differs from the lines written: {len(got)} lines for {len(want)} "
                    f"written; repeated: {sorted(set(extra))[:10]}; first difference at "
                    f"{next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))}"
                )
            return got == want

        self.worker.until(done, f"the sink file to hold all {len(want)} lines written ({len(self.sink_lines())} now)")

    def connector_config(self, name: str) -> dict:
        return self.worker.call("GET", f"/connectors/{name}/config", None, ok=(200,))

    def task_configs(self, name: str) -> list[dict]:
        got = self.worker.call("GET", f"/connectors/{name}/tasks", None, ok=(200,))
        return [t["config"] for t in got]


@pytest.fixture
def scenario_factory(tmp_path, connect_built):
    made: list[Scenario] = []

    def make(bootstrap: str, **kw) -> Scenario:
        s = Scenario(bootstrap, tmp_path, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


# --------------------------------------------------------------------------
# broker-side checks (confluent-kafka)
# --------------------------------------------------------------------------


def topic_configs(bootstrap: str, topics: list[str]) -> dict[str, dict[str, str]]:
    from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

    admin = AdminClient({"bootstrap.servers": bootstrap})
    res = [ConfigResource(ResourceType.TOPIC, t) for t in topics]
    futs = admin.describe_configs(res, request_timeout=TIMEOUT_S)
    out = {}
    for r, fut in futs.items():
        entries = fut.result(timeout=TIMEOUT_S)
        out[r.name] = {k: e.value for k, e in entries.items()}
    return out


def partition_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    md = admin.list_topics(timeout=TIMEOUT_S).topics
    return {t: len(md[t].partitions) if t in md and md[t].error is None else None for t in topics}


def read_topic(bootstrap: str, topic: str) -> tuple[list[tuple[int, bytes | None, bytes | None]], int, int]:
    """Every record of a one-partition topic, from the start to the high
    watermark: ([(offset, key, value)], low watermark, high watermark)."""
    from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

    c = ck_consumer(bootstrap)
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT_S, cached=False)
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got = []
        deadline = time.monotonic() + TIMEOUT_S
        while not got or got[-1][0] < hi - 1:
            if hi == lo:
                break
            assert time.monotonic() < deadline, (
                f"reading {topic} [{lo}, {hi}) did not reach {hi - 1} within {TIMEOUT_S:.0f}s "
                f"(last offset {got[-1][0] if got else None})"
            )
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    break  # the end: the last offsets may be gone (compacted away)
                raise AssertionError(f"consuming {topic}: {m.error()}")
            got.append((m.offset(), m.key(), m.value()))
        return got, lo, hi
    finally:
        c.close()


@pytest.fixture
def cleaner_broker(make_broker):
    """A broker whose log cleaner looks for work every 200 ms."""
    if os.environ.get("COMPAT_EXTERNAL_BOOTSTRAP"):
        return make_broker()  # started by whoever runs it (see the docstring)
    return make_broker("-o", f"log.cleaner.backoff.ms={CLEANER_BACKOFF_MS}")


# --------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------


def test_connect_pipeline_and_restart(broker, scenario_factory, timings):
    t0 = time.monotonic()
    s = scenario_factory(broker.bootstrap)
    ck_create_topic(broker.bootstrap, s.data_topic, 1)
    w = s.start_worker()
    t_start = time.monotonic() - t0
    s.create_connectors()

    s.append(20, "a")
    s.wait_sink()

    # Connect created its three topics, compacted, with the partition
    # counts it was configured with
    internal = [s.config_topic, s.offset_topic, s.status_topic]
    counts = partition_counts(broker.bootstrap, internal)
    want_counts = {s.config_topic: 1, s.offset_topic: OFFSET_PARTITIONS, s.status_topic: STATUS_PARTITIONS}
    if counts != want_counts:
        w.fail(f"partitions of Connect's topics {counts}, expected {want_counts}")
    configs = topic_configs(broker.bootstrap, internal)
    policies = {t: configs[t].get("cleanup.policy") for t in internal}
    if policies != {t: "compact" for t in internal}:
        w.fail(f"cleanup.policy of Connect's topics: {policies}, expected compact for all")

    # more lines while it runs, then some while it is down
    s.append(15, "b")
    s.wait_sink()
    t1 = time.monotonic()
    s.restart_worker()
    # appended before the new worker's connectors are assigned: picked up
    # from the committed position, not re-read from the start
    s.append(10, "c")
    w = s.worker
    for name in (s.source, s.sink):
        w.wait_running(name)
    status, names = w.rest("GET", "/connectors")
    if status != 200 or sorted(names) != sorted([s.source, s.sink]):
        w.fail(f"GET /connectors after the restart -> {status} {names}")
    if s.connector_config(s.source) != {**s.source_config(), "name": s.source}:
        w.fail(f"source config after the restart: {s.connector_config(s.source)}")
    s.wait_sink()
    s.append(10, "d")
    s.wait_sink()
    timings.append(
        f"connect pipeline: worker up in {t_start:.1f} s, restart to all lines {time.monotonic() - t1:.1f} s, "
        f"total {time.monotonic() - t0:.1f} s"
    )


def create_compacted_topic(bootstrap: str, topic: str) -> None:
    """One partition, compacted, segments that roll after 100 ms and a
    cleaner that takes any dirt: older versions of a key become cleanable
    within the test."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    config = {"cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.01"}
    futs = admin.create_topics(
        [NewTopic(topic, num_partitions=1, replication_factor=1, config=config)],
        operation_timeout=TIMEOUT_S,
        request_timeout=TIMEOUT_S,
    )
    futs[topic].result(timeout=TIMEOUT_S)
    wait_until(lambda: topic in admin.list_topics(timeout=TIMEOUT_S).topics, TIMEOUT_S, f"{topic} in metadata")


def test_connect_restart_after_compaction(cleaner_broker, scenario_factory, timings):
    t0 = time.monotonic()
    bootstrap = cleaner_broker.bootstrap
    config_topic = unique_topic("connect-configs")
    offset_topic = unique_topic("connect-offsets")
    for t in (config_topic, offset_topic):
        create_compacted_topic(bootstrap, t)
    s = scenario_factory(bootstrap, config_topic=config_topic, offset_topic=offset_topic)
    ck_create_topic(bootstrap, s.data_topic, 1)
    w = s.start_worker()
    s.create_connectors()
    s.append(10, "a")
    s.wait_sink()

    # several versions of the source's config; each is applied (its task
    # runs with it) before the next, so the versions span several segments;
    # lines in between make the source commit a new position each time (the
    # task commits when it is stopped for the update)
    versions = [101, 102, 103, 104, 105, 106]
    for batch in versions:
        got = w.call("PUT", f"/connectors/{s.source}/config", s.source_config(batch), ok=(200,))
        assert got["config"]["batch.size"] == str(batch), got
        w.until(
            lambda b=batch: [c.get("batch.size") for c in s.task_configs(s.source)] == [str(b)] or None,
            f"the source task to get batch.size={batch}",
        )
        w.wait_running(s.source)
        s.append(2, f"v{batch}")
        s.wait_sink()

    # compaction of the config topic: fewer connector-<source> records than
    # were written (1 create + the updates), the newest of them the last;
    # of the offset topic: records gone below its high watermark, the
    # newest position the source file's size
    key = f"connector-{s.source}".encode()
    written = 1 + len(versions)
    file_size = s.source_file.stat().st_size
    seen: dict = {}

    def compacted():
        recs, lo, hi = read_topic(bootstrap, config_topic)
        mine = [(o, json.loads(v)) for o, k, v in recs if k == key and v is not None]
        seen["config"] = (
            f"{len(recs)} records in [{lo}, {hi}), {written} versions of {key!r} at offsets {[o for o, _ in mine]}"
        )
        if len(mine) > written:
            w.fail(f"{len(mine)} {key!r} records in {config_topic}, only {written} written")
        orecs, olo, ohi = read_topic(bootstrap, offset_topic)
        positions = [json.loads(v).get("position") for _, _, v in orecs if v is not None]
        seen["offsets"] = f"{len(orecs)} records in [{olo}, {ohi}), positions {positions} (file size {file_size})"
        if 0 < len(mine) < written and len(orecs) < ohi and positions and positions[-1] == file_size:
            return mine
        return None

    t_wait = time.monotonic()
    while not (mine := compacted()):
        if time.monotonic() - t_wait >= COMPACTION_TIMEOUT_S:
            cfgs = topic_configs(bootstrap, [config_topic, offset_topic])
            shown = {
                t: {k: cfgs[t].get(k) for k in ("cleanup.policy", "segment.ms", "min.cleanable.dirty.ratio")}
                for t in cfgs
            }
            w.fail(
                f"no compaction within {COMPACTION_TIMEOUT_S:.0f}s ({shown}): config topic {config_topic}: "
                f"{seen['config']}; offset topic {offset_topic}: {seen['offsets']}"
            )
        time.sleep(0.5)
    t_compacted = time.monotonic() - t_wait
    last_value = mine[-1][1]
    if last_value.get("properties", {}).get("batch.size") != str(versions[-1]):
        w.fail(f"the newest {key!r} record left after compaction: {last_value}")

    # the restarted worker reads the compacted config topic
    s.restart_worker()
    s.append(5, "c")
    w = s.worker
    for name in (s.source, s.sink):
        w.wait_running(name)
    cfg = s.connector_config(s.source)
    if cfg != {**s.source_config(versions[-1]), "name": s.source}:
        w.fail(f"source config after the restart on the compacted topic: {cfg}")
    tasks = [c.get("batch.size") for c in s.task_configs(s.source)]
    if tasks != [str(versions[-1])]:
        w.fail(f"source task configs after the restart: batch.size {tasks}")
    s.wait_sink()
    timings.append(
        f"connect compaction: {t_compacted:.1f} s to see it; config topic {seen['config']}; "
        f"offset topic {seen['offsets']}; total {time.monotonic() - t0:.1f} s"
    )
