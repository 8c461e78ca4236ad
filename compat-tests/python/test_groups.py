"""Consumer groups (the classic protocol) with confluent-kafka, kafka-python
and aiokafka against gregor.

Every group member is a separate process (this file run as a script, see
`member_main`) so that it can be SIGKILLed and so that members of different
clients can share a group; it reports on stdout, as JSON lines, each
assignment and revocation (eager assignors: the full set each time) and the
records it consumed, after their synchronous commit. The test process waits
for events with deadlines (no bare sleeps) and checks:

* `test_three_members`: three members of one group on a 6-partition topic:
  once stable every partition is owned by exactly one member, 2 each;
  ListGroups / DescribeGroups (the client's own admin API) agree with the
  members (state Stable, protocol type consumer, the assignor, member ids,
  client ids, assignments); 600 records are each consumed exactly once, by
  the owner of their partition, with synchronous commits; the committed
  offsets (admin) are the end offsets; after every member closed the group is
  Empty.
* `test_member_killed_and_left`: a SIGKILLed member's partitions move to the
  others only once session.timeout.ms (6000) has passed; a member that
  closes (LeaveGroup) has its partitions moved at once. Both times are
  printed (timings section).
* `test_seven_members_one_idle`: seven members on six partitions: six own one
  each, one owns none and consumes nothing.
* `test_mixed_clients`: confluent-kafka, kafka-python and aiokafka members in
  one group, with the range and with the roundrobin assignor (which all
  three implement): every partition covered once, every record consumed once.
* `test_static_membership`: confluent-kafka members with group.instance.id;
  a member that is closed and restarted with the same instance id gets its
  partitions back without a rebalance (the other members see no revocation).
  The rejoin time is printed.
* `test_broker_restart`: a graceful restart and a SIGKILL + start of the
  broker under running consumers: they resume from their committed offsets;
  no record is consumed twice unless its first delivery's commit had failed.
* `test_autocommit_metadata_admin`: auto-commit on (in-process consumer):
  the committed offsets reach the end; an explicit commit with metadata is
  readable with its metadata via committed() and the admin API
  (list_consumer_group_offsets / list_group_offsets); list / describe groups
  agree with the consumer (Stable, protocol, member id, client id,
  assignment).

Every test starts its own gregor with `-o group.initial.rebalance.delay.ms=0`.
With GREGOR_REFERENCE=1 every test also runs against the reference Apache
Kafka (compat-tests/reference, one per session), except the broker restarts;
with COMPAT_EXTERNAL_BOOTSTRAP=host:port the tests run against that broker
instead of gregor (its group.initial.rebalance.delay.ms should be 0), again
without the broker restarts.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

if __name__ != "__main__":
    import pytest

    from compat import ck_create_topic, ck_produce, make_records, unique_topic, wait_until
    from conftest import ExternalBroker

HERE = Path(__file__).resolve().parent
CLIENTS = ["confluent", "kafka-python", "aiokafka"]
SESSION_MS = 6000
HEARTBEAT_MS = 500
# deadlines for group events: a rebalance normally completes within one or
# two heartbeat intervals (and the session timeout after a crash)
STABLE_TIMEOUT_S = 40
CONSUME_TIMEOUT_S = 60


# ==========================================================================
# the member process: python test_groups.py member '<json config>'
# ==========================================================================


def member_main(cfg: dict) -> int:
    """One group member. Config keys: client, bootstrap, group, topic, name
    (client id), assignor (range | roundrobin), session_ms, heartbeat_ms,
    instance_id (static membership), commit (sync | none), leader_log (bool,
    confluent only: report whether this member was elected leader).
    Stdin: a line "close" (or EOF) closes the consumer cleanly and exits."""
    out_lock = threading.Lock()

    def emit(ev: str, **kw) -> None:
        kw.update(ev=ev, t=time.monotonic(), name=cfg["name"])
        line = json.dumps(kw)
        with out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    stop = threading.Event()

    def stdin_reader():
        for line in sys.stdin:
            if line.strip() == "close":
                break
        stop.set()

    threading.Thread(target=stdin_reader, daemon=True).start()
    if cfg.get("log_level"):  # client logging on stderr (kafka-python, aiokafka)
        import logging

        where = {"filename": cfg["log_file"]} if cfg.get("log_file") else {"stream": sys.stderr}
        logging.basicConfig(level=cfg["log_level"], format="%(relativeCreated)7.0f %(name)s %(message)s", **where)
    emit("started", pid=os.getpid(), client=cfg["client"])
    client = cfg["client"]
    if client == "confluent":
        _member_confluent(cfg, emit, stop)
    elif client == "kafka-python":
        _member_kafka_python(cfg, emit, stop)
    elif client == "aiokafka":
        asyncio.run(_member_aiokafka(cfg, emit, stop))
    else:
        raise SystemExit(f"unknown client {client}")
    emit("closed")
    return 0


def _commit_offsets(items) -> dict[int, int]:
    nxt: dict[int, int] = {}
    for p, o in items:
        nxt[p] = max(nxt.get(p, 0), o + 1)
    return nxt


def _member_confluent(cfg, emit, stop) -> None:
    import logging

    from confluent_kafka import Consumer, KafkaException, TopicPartition

    conf = {
        "bootstrap.servers": cfg["bootstrap"],
        "group.id": cfg["group"],
        "client.id": cfg["name"],
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": cfg.get("session_ms", SESSION_MS),
        "heartbeat.interval.ms": cfg.get("heartbeat_ms", HEARTBEAT_MS),
        "partition.assignment.strategy": cfg.get("assignor", "range"),
        "reconnect.backoff.max.ms": 1000,
    }
    if cfg.get("instance_id"):
        conf["group.instance.id"] = cfg["instance_id"]
    kwargs = {}
    if cfg.get("leader_log"):
        # librdkafka logs "JoinGroup response: ... LeaderId X (me)" for the leader
        class Sink(logging.Handler):
            def emit(self, record):
                msg = record.getMessage()
                if "JoinGroup response" in msg and "LeaderId" in msg:
                    emit("joined", leader="(me)" in msg, log=msg[-300:])

        logger = logging.getLogger("rdkafka-member")
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.addHandler(Sink())
        conf["debug"] = "cgrp"
        kwargs["logger"] = logger
    c = Consumer(conf, **kwargs)

    def on_assign(consumer, parts):
        emit("assigned", partitions=sorted(p.partition for p in parts), member_id=consumer.memberid())

    def on_revoke(consumer, parts):
        emit("revoked", partitions=sorted(p.partition for p in parts))

    def on_lost(consumer, parts):
        emit("lost", partitions=sorted(p.partition for p in parts))

    c.subscribe([cfg["topic"]], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    try:
        while not stop.is_set():
            msgs = c.consume(num_messages=500, timeout=0.1)
            items = []
            for m in msgs:
                if m.error() is not None:
                    emit("error", error=str(m.error()))
                    continue
                items.append((m.partition(), m.offset()))
            if not items:
                continue
            committed, error = None, None
            if cfg.get("commit", "sync") == "sync":
                offs = [TopicPartition(cfg["topic"], p, o) for p, o in _commit_offsets(items).items()]
                try:
                    c.commit(offsets=offs, asynchronous=False)
                    committed = True
                except KafkaException as e:
                    committed, error = False, str(e)
            emit("records", items=items, committed=committed, error=error)
    finally:
        c.close()


def _member_kafka_python(cfg, emit, stop) -> None:
    from kafka import ConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata, TopicPartition
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    assignor = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor}[
        cfg.get("assignor", "range")
    ]
    c = KafkaConsumer(
        bootstrap_servers=cfg["bootstrap"],
        group_id=cfg["group"],
        client_id=cfg["name"],
        group_instance_id=cfg.get("instance_id"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=cfg.get("session_ms", SESSION_MS),
        heartbeat_interval_ms=cfg.get("heartbeat_ms", HEARTBEAT_MS),
        partition_assignment_strategy=[assignor],
        reconnect_backoff_max_ms=1000,
    )

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            emit("revoked", partitions=sorted(tp.partition for tp in revoked))

        def on_partitions_assigned(self, assigned):
            emit(
                "assigned",
                partitions=sorted(tp.partition for tp in assigned),
                member_id=c.group_metadata().member_id,
            )

    # kafka-python 3.0.12 works around three of its bugs here:
    # - a leader that assigns before it has the topic's metadata assigns
    #   nothing and rejoins when the metadata arrives;
    # - a JoinGroup/SyncGroup round trip that outlives poll()'s timeout and
    #   was started by such a metadata change is never completed (the next
    #   poll() finds need_rejoin() False and drops the finished join task):
    #   the member hangs without heartbeats until the broker expires it;
    # - the coordinator's metadata snapshot (ConsumerCoordinator.
    #   _metadata_snapshot: the subscribed topics' partitions, which a leader
    #   copies into _assignment_snapshot when it assigns) is only rebuilt by
    #   a metadata response processed *after* subscribe(). With the metadata
    #   loaded before subscribe() it stays {}, the leader assigns with {},
    #   and its next metadata refresh ({} -> {topic: {0..5}}) makes
    #   need_rejoin() True: one more rebalance of the whole group, often
    #   after every member already had its assignment (on Kafka too).
    # So: subscribe, then fetch metadata (topics() always asks the broker)
    # until it has the topic, and only then poll, with a long timeout.
    c.subscribe([cfg["topic"]], listener=Listener())
    deadline = time.monotonic() + 30
    while cfg["topic"] not in c.topics() or not c.partitions_for_topic(cfg["topic"]):
        if time.monotonic() > deadline:
            raise SystemExit(f"no metadata for {cfg['topic']}")
        time.sleep(0.05)
    try:
        while not stop.is_set():
            try:
                batches = c.poll(timeout_ms=1000)
            except Exception as e:  # noqa: BLE001 - report and go on, as an application would
                emit("error", error=repr(e))
                time.sleep(0.1)
                continue
            items = [(tp.partition, r.offset) for tp, recs in batches.items() for r in recs]
            if not items:
                continue
            committed, error = None, None
            if cfg.get("commit", "sync") == "sync":
                offs = {
                    TopicPartition(cfg["topic"], p): OffsetAndMetadata(o, "", -1)
                    for p, o in _commit_offsets(items).items()
                }
                try:
                    c.commit(offs)
                    committed = True
                except Exception as e:  # noqa: BLE001
                    committed, error = False, repr(e)
            emit("records", items=items, committed=committed, error=error)
    finally:
        c.close(autocommit=False)


async def _member_aiokafka(cfg, emit, stop) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.abc import ConsumerRebalanceListener
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    assignor = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor}[
        cfg.get("assignor", "range")
    ]
    kwargs = {}
    if cfg.get("instance_id"):
        kwargs["group_instance_id"] = cfg["instance_id"]
    c = AIOKafkaConsumer(
        bootstrap_servers=cfg["bootstrap"],
        group_id=cfg["group"],
        client_id=cfg["name"],
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=cfg.get("session_ms", SESSION_MS),
        heartbeat_interval_ms=cfg.get("heartbeat_ms", HEARTBEAT_MS),
        partition_assignment_strategy=(assignor,),
        retry_backoff_ms=100,
        **kwargs,
    )

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            emit("revoked", partitions=sorted(tp.partition for tp in revoked))

        def on_partitions_assigned(self, assigned):
            emit(
                "assigned",
                partitions=sorted(tp.partition for tp in assigned),
                member_id=c._coordinator.member_id,
            )

    c.subscribe([cfg["topic"]], listener=Listener())
    await c.start()
    try:
        while not stop.is_set():
            try:
                batches = await c.getmany(timeout_ms=100)
            except Exception as e:  # noqa: BLE001
                emit("error", error=repr(e))
                await asyncio.sleep(0.1)
                continue
            items = [(tp.partition, r.offset) for tp, recs in batches.items() for r in recs]
            if not items:
                continue
            committed, error = None, None
            if cfg.get("commit", "sync") == "sync":
                offs = {TopicPartition(cfg["topic"], p): o for p, o in _commit_offsets(items).items()}
                try:
                    await c.commit(offs)
                    committed = True
                except Exception as e:  # noqa: BLE001
                    committed, error = False, repr(e)
            emit("records", items=items, committed=committed, error=error)
    finally:
        await c.stop()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "member":
        sys.exit(member_main(json.loads(sys.argv[2])))
    print("usage: test_groups.py member '<json config>'", file=sys.stderr)
    sys.exit(2)


# ==========================================================================
# the test side
# ==========================================================================

REFERENCE = os.environ.get("GREGOR_REFERENCE", "") not in ("", "0")
TARGETS = ["gregor", "reference"] if REFERENCE else ["gregor"]


class Member:
    """A member process and what it reported."""

    def __init__(self, name: str, cfg: dict):
        self.name = name
        self.cfg = cfg
        self.cond = threading.Condition()
        self.events: list[dict] = []
        self.stderr: list[str] = []
        self.assignment: list[int] | None = None  # None: not assigned (yet / revoked)
        self.member_id: str | None = None
        # (partition, offset, committed, monotonic time of the report)
        self.consumed: list[tuple[int, int, bool | None, float]] = []
        self.killed = False
        self.exited = False
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-u", str(HERE / "test_groups.py"), "member", json.dumps(cfg)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=str(HERE),
            start_new_session=True,
        )
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read_out(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                with self.cond:
                    self.stderr.append("stdout: " + line)
                continue
            with self.cond:
                self.events.append(ev)
                kind = ev["ev"]
                if kind == "assigned":
                    self.assignment = ev["partitions"]
                    self.member_id = ev.get("member_id") or self.member_id
                elif kind in ("revoked", "lost"):
                    self.assignment = None
                elif kind == "records":
                    self.consumed.extend((p, o, ev["committed"], ev["t"]) for p, o in ev["items"])
                self.cond.notify_all()
        with self.cond:
            self.exited = True
            self.cond.notify_all()

    def _read_err(self):
        for line in self.proc.stderr:
            with self.cond:
                self.stderr.append(line)
                del self.stderr[:-200]

    @property
    def alive(self) -> bool:
        return not self.killed and self.proc.poll() is None

    def events_of(self, kind: str) -> list[dict]:
        with self.cond:
            return [e for e in self.events if e["ev"] == kind]

    def describe(self) -> str:
        with self.cond:
            evs = [e for e in self.events if e["ev"] != "records"]
            errs = "".join(self.stderr[-15:])
        return (
            f"{self.name} ({self.cfg['client']}, pid {self.proc.pid}, "
            f"{'killed' if self.killed else 'exit ' + str(self.proc.poll())}): assignment {self.assignment}, "
            f"{len(self.consumed)} records; events {[(e['ev'], e.get('partitions', e.get('error'))) for e in evs][-12:]}"
            + (f"\n    stderr: {errs}" if errs else "")
        )

    def request_close(self) -> None:
        try:
            self.proc.stdin.write("close\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass

    def close(self, timeout: float = 30) -> float:
        """Asks for a clean close (LeaveGroup); returns when the process exits."""
        t0 = time.monotonic()
        self.request_close()
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not close within {timeout}s: {self.describe()}") from None
        assert code == 0, f"{self.name} exited with {code} on close: {self.describe()}"
        assert self.events_of("closed"), f"{self.name} exited without closing: {self.describe()}"
        return time.monotonic() - t0

    def kill(self) -> None:
        """SIGKILL: no LeaveGroup, no commit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.killed = True


class Group:
    """A group of member processes on one topic, plus helpers to wait for a
    stable assignment and to check consumption."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, group_id: str | None = None):
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self.group_id = group_id or f"g-{uuid.uuid4().hex[:10]}"
        self.members: list[Member] = []

    def add(self, name: str, client: str, **opts) -> Member:
        cfg = dict(
            client=client,
            bootstrap=self.bootstrap,
            group=self.group_id,
            topic=self.topic,
            name=name,
            session_ms=SESSION_MS,
            heartbeat_ms=HEARTBEAT_MS,
        )
        cfg.update(opts)
        m = Member(name, cfg)
        self.members.append(m)
        return m

    def live(self) -> list[Member]:
        return [m for m in self.members if m.alive]

    def state(self) -> str:
        return "\n  ".join(m.describe() for m in self.members)

    def assignments(self, members=None) -> dict[str, list[int] | None]:
        return {m.name: m.assignment for m in (members or self.live())}

    def covered_once(self, members=None) -> bool:
        members = members if members is not None else self.live()
        asg = [m.assignment for m in members]
        if not members or any(a is None for a in asg):
            return False
        return sorted(p for a in asg for p in a) == list(range(self.partitions))

    def wait_stable(self, members=None, timeout: float = STABLE_TIMEOUT_S, extra=None) -> float:
        """Waits until every given (default: live) member has an assignment
        and together they cover each partition exactly once (and `extra()`
        holds); returns the seconds waited."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            ms = members if members is not None else self.live()
            if self.covered_once(ms) and (extra is None or extra()):
                return time.monotonic() - t0
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"group {self.group_id} not stable after {timeout}s: assignments "
                    f"{self.assignments(ms)}\n  {self.state()}"
                )
            time.sleep(0.02)

    def consumed(self, members=None) -> list[tuple[str, int, int, bool | None]]:
        """(member, partition, offset, committed) of every delivery, in the
        order the members reported them."""
        out = []
        for m in members or self.members:
            with m.cond:
                out.extend((t, m.name, p, o, c) for p, o, c, t in m.consumed)
        return [x[1:] for x in sorted(out, key=lambda x: x[0])]

    def wait_consumed(self, ends: dict[int, int], timeout: float = CONSUME_TIMEOUT_S) -> None:
        """Waits until every offset below ends[p] was consumed (and committed,
        for committing members) by someone."""

        def done():
            seen = defaultdict(set)
            for _, p, o, c in self.consumed():
                if c is not False:
                    seen[p].add(o)
            return all(len(seen[p] & set(range(ends[p]))) == ends[p] for p in ends)

        try:
            wait_until(done, timeout, "every record consumed", interval=0.05)
        except AssertionError:
            have = Counter(p for _, p, _, _ in self.consumed())
            raise AssertionError(
                f"not every record consumed within {timeout}s: consumed per partition {dict(have)}, "
                f"end offsets {ends}\n  {self.state()}"
            ) from None

    def close_members(self, members) -> None:
        """Closes members at once (each asked to close, then waited for)."""
        for m in members:
            m.request_close()
        for m in members:
            m.close()

    def close_all(self) -> None:
        for m in self.members:
            if m.alive:
                try:
                    m.close(timeout=20)
                except AssertionError:
                    pass

    def kill_all(self) -> None:
        for m in self.members:
            if m.proc.poll() is None:
                m.kill()


def assert_exactly_once(group: Group, ends: dict[int, int], owners: dict[int, str] | None = None) -> None:
    got = group.consumed()
    count = Counter((p, o) for _, p, o, _ in got)
    dups = sorted(k for k, n in count.items() if n > 1)
    want = {(p, o) for p, n in ends.items() for o in range(n)}
    missing = sorted(want - set(count))
    extra = sorted(set(count) - want)
    failed = [(n, p, o) for n, p, o, c in got if c is False]
    problems = []
    if dups:
        problems.append(f"{len(dups)} records consumed twice, e.g. {dups[:5]}")
    if missing:
        problems.append(f"{len(missing)} records never consumed, e.g. {missing[:5]}")
    if extra:
        problems.append(f"offsets past the end consumed: {extra[:5]}")
    if failed:
        problems.append(f"{len(failed)} records whose commit failed, e.g. {failed[:5]}")
    if owners is not None:
        wrong = [(n, p, o) for n, p, o, _ in got if owners.get(p) != n]
        if wrong:
            problems.append(f"{len(wrong)} records consumed by a member not owning the partition, e.g. {wrong[:5]} (owners {owners})")
    assert not problems, "\n".join(problems) + f"\n  {group.state()}"


def check_redeliveries(g: Group, before: list, what: str) -> None:
    """After a broker restart: a record may be consumed again only if no
    delivery of it was committed, i.e. (1) nothing committed before the
    restart (`before`, all committed) is delivered again, and (2) no record
    has two deliveries whose commits both succeeded (the broker accepted a
    commit from a member that no longer owned the partition, or a consumer
    resumed from a stale committed offset)."""
    got = g.consumed()
    n_before = len(before)
    again = sorted({(p, o) for _, p, o, _ in got[n_before:]} & {(p, o) for _, p, o, _ in before})
    ok_count = Counter((p, o) for _, p, o, c in got if c is True)
    twice = sorted(k for k, n in ok_count.items() if n > 1)
    problems = []
    if again:
        problems.append(
            f"{len(again)} records committed before the {what} were consumed again after it, e.g. {again[:5]}"
        )
    if twice:
        who = defaultdict(list)
        for name, p, o, c in got:
            if (p, o) in set(twice[:3]):
                who[(p, o)].append((name, c))
        problems.append(
            f"{len(twice)} records consumed and committed successfully twice, e.g. {dict(who)}"
        )
    dups = sum(1 for n in Counter((p, o) for _, p, o, _ in got).values() if n > 1)
    print(f"{what}: {dups} records delivered twice (allowed: a first delivery whose commit failed)")
    assert not problems, "\n".join(problems) + f"\n  {g.state()}"


def produce(bootstrap: str, topic: str, n: int) -> dict[int, int]:
    """Produces n keyed records; returns the number acknowledged per partition."""
    recs = make_records(n, num_keys=60)
    acked = ck_produce(bootstrap, topic, recs)
    per = Counter(p for p, _ in acked.values())
    return dict(per)


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused-watermarks"})
    try:
        return {
            p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
            for p in range(partitions)
        }
    finally:
        c.close()


# --------------------------------------------------------------------------
# admin views of a group, one per client family, normalised to
# {"state", "protocol_type", "protocol", "members": {member_id: (client_id, [partitions])}}
# --------------------------------------------------------------------------


def admin_view(client: str, bootstrap: str, group_id: str, topic: str) -> dict:
    if client == "confluent":
        return _admin_view_confluent(bootstrap, group_id, topic)
    if client == "kafka-python":
        return _admin_view_kafka_python(bootstrap, group_id, topic)
    return asyncio.run(_admin_view_aiokafka(bootstrap, group_id, topic))


_CK_STATES = {
    "STABLE": "Stable",
    "EMPTY": "Empty",
    "PREPARING_REBALANCING": "PreparingRebalance",
    "COMPLETING_REBALANCING": "CompletingRebalance",
    "DEAD": "Dead",
    "UNKNOWN": "Unknown",
}


def _ck_state(state) -> str | None:
    return None if state is None else _CK_STATES.get(state.name, state.name)


def _admin_view_confluent(bootstrap, group_id, topic) -> dict:
    from confluent_kafka import ConsumerGroupTopicPartitions
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    listed = admin.list_consumer_groups(request_timeout=10).result()
    mine = [g for g in listed.valid if g.group_id == group_id]
    d = admin.describe_consumer_groups([group_id], request_timeout=10)[group_id].result()
    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group_id)], request_timeout=10)
    offs = offsets[group_id].result().topic_partitions
    return {
        "listed": [(g.group_id, _ck_state(g.state)) for g in mine],
        "state": _ck_state(d.state),
        "protocol_type": "consumer" if not d.is_simple_consumer_group else "",
        "protocol": d.partition_assignor,
        "members": {
            m.member_id: (m.client_id, sorted(tp.partition for tp in m.assignment.topic_partitions if tp.topic == topic))
            for m in d.members
        },
        "instance_ids": {m.member_id: m.group_instance_id for m in d.members},
        "offsets": {tp.partition: (tp.offset, tp.metadata) for tp in offs if tp.topic == topic},
    }


def _admin_view_kafka_python(bootstrap, group_id, topic) -> dict:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        listed = [g for g in admin.list_groups() if g["group_id"] == group_id]
        d = admin.describe_groups([group_id])[group_id]
        offs = admin.list_group_offsets(group_id)[group_id]
    finally:
        admin.close()
    members = {}
    for m in d["members"]:
        asg = m["member_assignment"] or {}
        if not isinstance(asg, dict):
            asg = {"assigned_partitions": [{"topic": t, "partitions": ps} for t, ps in asg.assigned_partitions]}
        parts = [p for t in asg.get("assigned_partitions", []) if t["topic"] == topic for p in t["partitions"]]
        members[m["member_id"]] = (m["client_id"], sorted(parts))
    return {
        "listed": [(g["group_id"], g.get("group_state")) for g in listed],
        "state": d["group_state"],
        "protocol_type": d["protocol_type"],
        "protocol": d["protocol_data"],
        "members": members,
        "instance_ids": {m["member_id"]: m.get("group_instance_id") for m in d["members"]},
        "offsets": {tp.partition: (om.offset, om.metadata) for tp, om in offs.items() if tp.topic == topic},
    }


async def _admin_view_aiokafka(bootstrap, group_id, topic) -> dict:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.protocol.group import MemberAssignment

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        listed = [g for g in await admin.list_consumer_groups() if g[0] == group_id]
        resps = await admin.describe_consumer_groups([group_id])
        offs = await admin.list_consumer_group_offsets(group_id)
    finally:
        await admin.close()
    groups = [g for r in resps for g in r.to_object()["groups"] if g["group"] == group_id]
    assert len(groups) == 1, f"DescribeGroups answered {resps}"
    d = groups[0]
    assert d["error_code"] == 0, f"DescribeGroups error {d}"
    members = {}
    for m in d["members"]:
        parts = []
        if m["member_assignment"]:
            asg = MemberAssignment.decode(m["member_assignment"])
            for name, ps in asg.assignment:
                if name == topic:
                    parts.extend(ps)
        members[m["member_id"]] = (m["client_id"], sorted(parts))
    return {
        # ListGroups v0-v3 (what aiokafka sends) has no state: (group, protocol type)
        "listed": [(g[0], None) for g in listed if g[1] == "consumer"],
        "state": d["state"],
        "protocol_type": d["protocol_type"],
        "protocol": d["protocol"],
        "members": members,
        "instance_ids": {},
        "offsets": {tp.partition: (om.offset, om.metadata) for tp, om in offs.items() if tp.topic == topic},
    }


def check_admin_agrees(client: str, group: Group, assignor: str, members=None) -> dict:
    """list/describe (client's own admin) agree with what the members report."""
    members = members if members is not None else group.live()
    want = {m.member_id: (m.name, sorted(m.assignment or [])) for m in members}
    last = {}

    def agrees():
        v = admin_view(client, group.bootstrap, group.group_id, group.topic)
        last.clear()
        last.update(v)
        return v["state"] == "Stable" and v["members"] == want

    try:
        wait_until(agrees, 20, "the admin view to agree", interval=0.2)
    except AssertionError:
        raise AssertionError(
            f"admin ({client}) view of {group.group_id}: state {last.get('state')}, members "
            f"{last.get('members')}; the members say {want}\n  {group.state()}"
        ) from None
    v = last
    assert v["protocol_type"] == "consumer", f"protocol type {v['protocol_type']!r}"
    assert v["protocol"] == assignor, f"protocol {v['protocol']!r}, expected {assignor!r}"
    assert len(v["listed"]) == 1, f"ListGroups shows {v['listed']} for {group.group_id}"
    # aiokafka's ListGroups (v0-v3) carries no state
    want_listed = None if client == "aiokafka" else "Stable"
    assert v["listed"][0][1] == want_listed, f"ListGroups: {v['listed']}, expected state {want_listed}"
    return v


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------


class Target:
    def __init__(self, name: str, bootstrap: str, broker=None):
        self.name = name
        self.bootstrap = bootstrap
        self.broker = broker  # conftest.Broker for a gregor we started, else None

    def need_process(self):
        if self.broker is None:
            pytest.skip(f"needs a broker process started by the suite (target {self.name})")
        return self.broker


@pytest.fixture(params=TARGETS)
def target(request, make_broker) -> Target:
    if request.param == "reference":
        return Target("reference", request.getfixturevalue("reference_bootstrap"))
    external = os.environ.get("COMPAT_EXTERNAL_BOOTSTRAP")
    if external:
        return Target("external", ExternalBroker(external).bootstrap)
    b = make_broker("-o", "group.initial.rebalance.delay.ms=0")
    return Target("gregor", b.bootstrap, b)


@pytest.fixture
def groups(target):
    made: list[Group] = []

    def factory(partitions: int, prefix: str = "grp") -> Group:
        topic = unique_topic(prefix)
        ck_create_topic(target.bootstrap, topic, partitions)
        g = Group(target.bootstrap, topic, partitions)
        made.append(g)
        return g

    yield factory
    # LeaveGroup for every live member at once (a member killed while another
    # one's JoinGroup is parked would leave that join waiting for the
    # session timeout), then SIGKILL whatever is left
    for g in made:
        for m in g.members:
            if m.alive:
                m.request_close()
    deadline = time.monotonic() + 15
    for g in made:
        for m in g.members:
            try:
                m.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        g.kill_all()


def note(timings, target: Target, what: str, secs: float) -> None:
    line = f"groups {what:<58} {secs:6.2f} s  on {target.name}"
    timings.append(line)
    print(line)


# --------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
def test_three_members(client, target, groups, timings):
    g = groups(6)
    t0 = time.monotonic()
    ms = [g.add(f"{client}-m{i}", client, assignor="range") for i in range(3)]
    g.wait_stable()
    took = time.monotonic() - t0
    sizes = sorted(len(m.assignment) for m in ms)
    assert sizes == [2, 2, 2], f"range over 6 partitions and 3 members: {g.assignments()}"
    note(timings, target, f"{client}: 3 members stable after start", took)
    check_admin_agrees(client, g, "range")

    owners = {p: m.name for m in ms for p in m.assignment}
    produce(g.bootstrap, g.topic, 600)
    ends = end_offsets(g.bootstrap, g.topic, 6)
    assert sum(ends.values()) == 600
    g.wait_consumed(ends)
    assert_exactly_once(g, ends, owners)
    # the group's committed offsets are the end offsets
    v = admin_view(client, g.bootstrap, g.group_id, g.topic)
    assert {p: o for p, (o, _) in v["offsets"].items()} == ends, f"committed {v['offsets']}, end offsets {ends}"

    g.close_members(ms)
    v = wait_until(
        lambda: (lambda v: v if v["state"] == "Empty" else None)(admin_view(client, g.bootstrap, g.group_id, g.topic)),
        20,
        "the group to be Empty after every member closed",
        interval=0.2,
    )
    assert v["members"] == {}, f"members after close: {v['members']}"


@pytest.mark.parametrize("client", CLIENTS)
def test_member_killed_and_left(client, target, groups, timings):
    g = groups(6)
    ms = [g.add(f"{client}-m{i}", client, assignor="range") for i in range(3)]
    g.wait_stable()
    victim, leaver, last = ms
    before = {m.name: list(m.assignment) for m in ms}

    # 1. SIGKILL: no LeaveGroup; the broker notices after session.timeout.ms
    victim.kill()
    waited = g.wait_stable([leaver, last], timeout=SESSION_MS / 1000 + 30)
    note(timings, target, f"{client}: partitions moved after SIGKILL of a member", waited)
    assert waited >= SESSION_MS / 1000 - HEARTBEAT_MS / 1000 - 0.5, (
        f"partitions moved {waited:.2f}s after the kill, before session.timeout.ms {SESSION_MS} "
        f"could have expired: {g.assignments()} (before: {before})"
    )
    assert waited <= SESSION_MS / 1000 + 10, f"partitions moved only {waited:.2f}s after the kill"
    assert set(before[victim.name]) <= set(leaver.assignment) | set(last.assignment)

    # records keep flowing to the two survivors, exactly once
    produce(g.bootstrap, g.topic, 120)
    ends = end_offsets(g.bootstrap, g.topic, 6)
    g.wait_consumed(ends)
    survivors = g.consumed([leaver, last])
    assert len({(p, o) for _, p, o, _ in survivors}) == len(survivors), "a survivor consumed a record twice"

    # 2. clean close: LeaveGroup, the rebalance is immediate
    t1 = time.monotonic()
    leaver.close()
    waited = g.wait_stable([last], timeout=SESSION_MS / 1000 + 30)
    total = time.monotonic() - t1
    note(timings, target, f"{client}: partitions moved after a clean close (incl. close)", total)
    assert waited < SESSION_MS / 1000 / 2, (
        f"partitions moved {waited:.2f}s after the clean close: the LeaveGroup did not trigger the rebalance"
    )
    assert sorted(last.assignment) == list(range(6))


@pytest.mark.parametrize("client", CLIENTS)
def test_seven_members_one_idle(client, target, groups, timings):
    g = groups(6)
    t0 = time.monotonic()
    ms = [g.add(f"{client}-m{i}", client, assignor="range") for i in range(7)]

    def one_idle():
        return sorted(len(m.assignment) for m in ms) == [0, 1, 1, 1, 1, 1, 1]

    g.wait_stable(extra=one_idle, timeout=STABLE_TIMEOUT_S + 20)
    note(timings, target, f"{client}: 7 members on 6 partitions stable", time.monotonic() - t0)
    idle = [m for m in ms if not m.assignment]
    assert len(idle) == 1
    v = check_admin_agrees(client, g, "range")
    assert len(v["members"]) == 7
    owners = {p: m.name for m in ms for p in m.assignment}
    produce(g.bootstrap, g.topic, 140)
    ends = end_offsets(g.bootstrap, g.topic, 6)
    g.wait_consumed(ends)
    assert_exactly_once(g, ends, owners)
    assert not idle[0].consumed, f"the idle member consumed {idle[0].consumed[:5]}"


@pytest.mark.parametrize("assignor", ["range", "roundrobin"])
def test_mixed_clients(assignor, target, groups, timings):
    g = groups(6)
    t0 = time.monotonic()
    ms = [g.add(f"mixed-{c}", c, assignor=assignor) for c in CLIENTS]
    g.wait_stable()
    note(timings, target, f"mixed clients ({assignor}) stable", time.monotonic() - t0)
    assert sorted(len(m.assignment) for m in ms) == [2, 2, 2], g.assignments()
    if assignor == "roundrobin":
        # round robin deals partitions in turn over the members sorted by id
        for m in ms:
            a = m.assignment
            assert a[1] - a[0] == 3, f"roundrobin over 3 members gave {g.assignments()}"
    else:
        for m in ms:
            assert m.assignment[1] - m.assignment[0] == 1, f"range over 3 members gave {g.assignments()}"
    check_admin_agrees("confluent", g, assignor)
    owners = {p: m.name for m in ms for p in m.assignment}
    produce(g.bootstrap, g.topic, 300)
    ends = end_offsets(g.bootstrap, g.topic, 6)
    g.wait_consumed(ends)
    assert_exactly_once(g, ends, owners)


@pytest.mark.parametrize("how", ["close", "kill"])
def test_static_membership(how, target, groups, timings):
    g = groups(6)
    static = dict(session_ms=30000, assignor="range", leader_log=True)
    ms = [g.add(f"static-{i}", "confluent", instance_id=f"inst-{i}", **static) for i in range(3)]
    g.wait_stable()
    v = check_admin_agrees("confluent", g, "range")
    assert sorted(v["instance_ids"].values()) == ["inst-0", "inst-1", "inst-2"], v["instance_ids"]
    # restart a follower (a static leader's rejoin may legitimately rebalance
    # with JoinGroup < v9, which librdkafka uses)
    leaders = [m for m in ms if any(e["leader"] for e in m.events_of("joined"))]
    assert len(leaders) == 1, f"leaders: {[m.name for m in leaders]}\n  {g.state()}"
    follower = next(m for m in ms if m is not leaders[0])
    others = [m for m in ms if m is not follower]
    before = {m.name: list(m.assignment) for m in ms}
    n_events = {m.name: len(m.events) for m in others}
    old_member_id = follower.member_id

    if how == "close":
        t0 = time.monotonic()
        follower.close()  # a static member sends no LeaveGroup
        note(timings, target, "static member: close()", time.monotonic() - t0)
    else:
        follower.kill()
    back = g.add(follower.name, "confluent", instance_id=follower.cfg["instance_id"], **static)
    g.wait_stable([back] + others)
    took = time.monotonic() - back.started_at
    note(timings, target, f"static member ({how}) restarted: assigned after process start", took)
    assert back.assignment == before[follower.name], (
        f"restarted static member got {back.assignment}, had {before[follower.name]}"
    )
    for m in others:
        new = [e for e in m.events[n_events[m.name]:] if e["ev"] in ("assigned", "revoked", "lost")]
        assert not new, f"{m.name} saw {new}: the static member's restart caused a rebalance\n  {g.state()}"
    assert [e["ev"] for e in back.events if e["ev"] in ("assigned", "revoked")] == ["assigned"], back.describe()
    assert back.member_id != old_member_id, "a rejoining static member gets a new member id"
    v = check_admin_agrees("confluent", g, "range", members=[back] + others)
    assert back.member_id in v["members"]


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("how", ["restart", "kill9"])
def test_broker_restart(how, client, target, groups, timings):
    broker = target.need_process()
    g = groups(6)
    ms = [g.add(f"{client}-r{i}", client, assignor="range") for i in range(2)]
    g.wait_stable()
    produce(g.bootstrap, g.topic, 300)
    ends = end_offsets(g.bootstrap, g.topic, 6)
    g.wait_consumed(ends)
    first = g.consumed()
    assert all(c is True for *_, c in first), "a commit failed before the restart"
    committed_before = {(p, o) for _, p, o, _ in first}

    t0 = time.monotonic()
    if how == "restart":
        broker.restart()
    else:
        broker.kill9()
        broker.start()
    produce(g.bootstrap, g.topic, 300)
    ends = end_offsets(g.bootstrap, g.topic, 6)
    assert sum(ends.values()) == 600
    g.wait_consumed(ends, timeout=CONSUME_TIMEOUT_S + 30)
    note(timings, target, f"{client}: broker {how}: all consumed again after", time.monotonic() - t0)

    got = g.consumed()
    count = Counter((p, o) for _, p, o, _ in got)
    want = {(p, o) for p, n in ends.items() for o in range(n)}
    assert set(count) == want, f"consumed {len(count)} distinct records, want {len(want)}"
    check_redeliveries(g, first, how)
    # the group settles again and its offsets are the end offsets
    g.wait_stable()
    v = wait_until(
        lambda: (lambda v: v if {p: o for p, (o, _) in v["offsets"].items()} == ends else None)(
            admin_view(client, g.bootstrap, g.group_id, g.topic)
        ),
        20,
        "committed offsets at the end offsets",
        interval=0.2,
    )
    assert v["state"] == "Stable"


def _ck_autocommit(bootstrap, topic, group_id, n, ends):
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
            "client.id": "auto-confluent",
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 200,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": SESSION_MS,
            "heartbeat.interval.ms": HEARTBEAT_MS,
        }
    )
    try:
        c.subscribe([topic])
        seen = set()
        deadline = time.monotonic() + CONSUME_TIMEOUT_S
        while len(seen) < n:
            assert time.monotonic() < deadline, f"consumed {len(seen)} of {n}"
            for m in c.consume(500, timeout=0.2):
                assert m.error() is None, m.error()
                key = (m.partition(), m.offset())
                assert key not in seen, f"{key} consumed twice"
                seen.add(key)
        tps = [TopicPartition(topic, p) for p in range(3)]

        def auto_committed():
            c.poll(0.05)
            return {tp.partition: tp.offset for tp in c.committed(tps, timeout=10)} == ends

        wait_until(auto_committed, 20, "auto-commit to reach the end offsets")
        member = (c.memberid(), "auto-confluent", [0, 1, 2])
        meta = [TopicPartition(topic, p, ends[p], metadata=f"meta-{p}-ü") for p in range(3)]
        c.commit(offsets=meta, asynchronous=False)
        got = {tp.partition: (tp.offset, tp.metadata) for tp in c.committed(tps, timeout=10)}
        return member, got, c
    except BaseException:
        c.close()
        raise


def _kp_autocommit(bootstrap, topic, group_id, n, ends):
    from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

    c = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id="auto-kafka-python",
        enable_auto_commit=True,
        auto_commit_interval_ms=200,
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_MS,
        heartbeat_interval_ms=HEARTBEAT_MS,
    )
    try:
        c.subscribe([topic])
        seen = set()
        deadline = time.monotonic() + CONSUME_TIMEOUT_S
        while len(seen) < n:
            assert time.monotonic() < deadline, f"consumed {len(seen)} of {n}"
            for tp, recs in c.poll(timeout_ms=200).items():
                for r in recs:
                    key = (tp.partition, r.offset)
                    assert key not in seen, f"{key} consumed twice"
                    seen.add(key)
        tps = [TopicPartition(topic, p) for p in range(3)]

        def auto_committed():
            c.poll(timeout_ms=50)
            return {tp.partition: c.committed(tp) for tp in tps} == ends

        wait_until(auto_committed, 20, "auto-commit to reach the end offsets")
        member = (c.group_metadata().member_id, "auto-kafka-python", [0, 1, 2])
        c.commit({tp: OffsetAndMetadata(ends[tp.partition], f"meta-{tp.partition}-ü", -1) for tp in tps})
        got = {}
        for tp in tps:
            om = c.committed(tp, metadata=True)
            got[tp.partition] = (om.offset, om.metadata)
        return member, got, c
    except BaseException:
        c.close(autocommit=False)
        raise


async def _aio_autocommit(bootstrap, topic, group_id, n, ends, then):
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata

    c = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id="auto-aiokafka",
        enable_auto_commit=True,
        auto_commit_interval_ms=200,
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_MS,
        heartbeat_interval_ms=HEARTBEAT_MS,
        partition_assignment_strategy=(
            __import__("aiokafka.coordinator.assignors.range", fromlist=["x"]).RangePartitionAssignor,
        ),
    )
    await c.start()
    try:
        seen = set()
        deadline = time.monotonic() + CONSUME_TIMEOUT_S
        while len(seen) < n:
            assert time.monotonic() < deadline, f"consumed {len(seen)} of {n}"
            for tp, recs in (await c.getmany(timeout_ms=200)).items():
                for r in recs:
                    key = (tp.partition, r.offset)
                    assert key not in seen, f"{key} consumed twice"
                    seen.add(key)
        tps = [TopicPartition(topic, p) for p in range(3)]
        deadline = time.monotonic() + 20
        while True:
            now = {tp.partition: await c.committed(tp) for tp in tps}
            if now == ends:
                break
            assert time.monotonic() < deadline, f"auto-commit did not reach the end offsets {ends}: {now}"
            await asyncio.sleep(0.1)
        member = (c._coordinator.member_id, "auto-aiokafka", [0, 1, 2])
        await c.commit({tp: OffsetAndMetadata(ends[tp.partition], f"meta-{tp.partition}-ü") for tp in tps})
        got = {tp.partition: (await c.committed(tp), None) for tp in tps}
        # the admin checks run while the member is still in the group
        await asyncio.get_running_loop().run_in_executor(None, then, member, got)
    finally:
        await c.stop()


@pytest.mark.parametrize("client", CLIENTS)
def test_autocommit_metadata_admin(client, target, groups):
    g = groups(3)
    produce(g.bootstrap, g.topic, 90)
    ends = end_offsets(g.bootstrap, g.topic, 3)

    def check(member, got):
        want_meta = {p: (ends[p], f"meta-{p}-ü") for p in range(3)}
        if client == "aiokafka":  # its committed() returns the offset only
            assert {p: o for p, (o, _) in got.items()} == ends, f"committed() {got}"
        else:
            assert got == want_meta, f"committed() after the commit with metadata: {got}, want {want_meta}"
        v = admin_view(client, g.bootstrap, g.group_id, g.topic)
        assert v["offsets"] == want_meta, f"admin committed offsets {v['offsets']}, want {want_meta}"
        assert v["state"] == "Stable", v
        assert v["protocol_type"] == "consumer", v
        assert v["protocol"] == "range", v
        assert v["members"] == {member[0]: (member[1], member[2])}, f"described {v['members']}, the consumer is {member}"
        want_listed = None if client == "aiokafka" else "Stable"
        assert v["listed"] == [(g.group_id, want_listed)], f"ListGroups: {v['listed']}"

    if client == "confluent":
        member, got, c = _ck_autocommit(g.bootstrap, g.topic, g.group_id, 90, ends)
        try:
            check(member, got)
        finally:
            c.close()
    elif client == "kafka-python":
        member, got, c = _kp_autocommit(g.bootstrap, g.topic, g.group_id, 90, ends)
        try:
            check(member, got)
        finally:
            c.close(autocommit=False)
    else:
        asyncio.run(_aio_autocommit(g.bootstrap, g.topic, g.group_id, 90, ends, check))


def test_shutdown_with_parked_join(target, groups, timings):
    """SIGTERM while a JoinGroup waits for a member that does not rejoin
    (SIGSTOPped): the broker still exits promptly (Kafka answers the parked
    join when it unloads the group)."""
    broker = target.need_process()
    g = groups(6)
    a = g.add("frozen", "confluent", assignor="range")
    g.wait_stable()
    a.proc.send_signal(signal.SIGSTOP)
    try:
        b = g.add("joiner", "confluent", assignor="range")
        # the joiner's JoinGroup is parked until "frozen" rejoins or expires
        wait_until(
            lambda: admin_view("confluent", g.bootstrap, g.group_id, g.topic)["state"] == "PreparingRebalance",
            20,
            "the group to wait in PreparingRebalance",
            interval=0.1,
        )
        assert b.assignment is None
        t0 = time.monotonic()
        broker.proc.send_signal(signal.SIGTERM)
        try:
            code = broker.proc.wait(10)
        except subprocess.TimeoutExpired:
            broker._force_kill()
            raise AssertionError("gregor did not exit within 10 s of SIGTERM with a JoinGroup parked") from None
        note(timings, target, "SIGTERM with a parked JoinGroup: exit after", time.monotonic() - t0)
        assert code == 0, f"exit code {code}"
    finally:
        a.proc.send_signal(signal.SIGCONT)
