#!/usr/bin/env python3
"""kill -9 loop under load (issue 7).

Each cycle: librdkafka producers (acks=all; one idempotent producer per
codec, plus one non-idempotent one) write to one multi-partition topic; at a
random moment the broker gets SIGKILL; it is restarted on the same port and
data dir; every producer must get acknowledgements again from the new
process; then the producers stop (flush with a timeout: what is still
undelivered is simply not acknowledged) and the whole topic is read back
from offset 0 and checked against every acknowledgement of every cycle so
far:

  lost        an acknowledged (partition, offset, value) not found there
  duplicated  a value present more than once (a failure for idempotent
              producers only, see `Verdict.failed`)
  disorder    per producer and partition, sequence numbers not increasing
              in offset order
  gaps        offsets not contiguous from 0 up to the high watermark
  corrupt     a record whose key/value is not one a producer wrote

    python3 tests/kill_loop.py --cycles 50 [--seed S] [--gregor target/release/gregor]

Exit status 0 when every cycle is clean, 1 on any loss, idempotent
duplicate, disorder, gap or corruption, 2 when the loop itself broke (the
broker did not restart, a producer made no progress, ...). The seed is
printed first; `--seed` replays the same kill delays (the exact kill moment
still depends on timing). On failure the work dir (data dir, broker log,
acknowledgement logs, producer logs) is kept and printed.

The producers run as subprocesses of this same file (`--worker`): each
appends "partition offset seq" to its own acknowledgement log for every
delivery report without error, flushed after every poll, so nothing the
client saw acknowledged is forgotten.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPAT_DIR = REPO_ROOT / "compat-tests" / "python"

PARTITIONS = 6
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
NON_IDEMPOTENT_CODEC = "lz4"
READY_TIMEOUT_S = 60.0
PROGRESS_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 90.0
FLUSH_TIMEOUT_S = 30.0

_PAD = b"gregor-kill-loop " * 16


def value_of(label: str, seq: int) -> bytes:
    # Variable length, compressible: the codecs really compress something.
    return f"{label}|{seq}|".encode() + _PAD[: (seq * 7) % len(_PAD)]


def key_of(label: str, seq: int) -> bytes:
    return f"{label}-k{seq % 37}".encode()


def parse_value(v: bytes | None) -> tuple[str, int] | None:
    if v is None:
        return None
    parts = v.split(b"|", 2)
    if len(parts) != 3:
        return None
    try:
        return parts[0].decode(), int(parts[1])
    except (UnicodeDecodeError, ValueError):
        return None


# ---------------------------------------------------------------------------
# producer worker (a subprocess)
# ---------------------------------------------------------------------------


def worker_main(a: argparse.Namespace) -> int:
    """Produces paced records until told "stop" on stdin.

    stdin commands: "mark" (answer "progress N" once a record produced after
    the mark is acknowledged: proof of a working connection), "stop" (stop producing, flush, print the stats as JSON,
    exit). stdout events: "ready" after the first acknowledgement."""
    from confluent_kafka import KafkaException, Producer

    out_lock = threading.Lock()

    def say(line: str) -> None:
        with out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    commands: queue.Queue[str] = queue.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            commands.put(line.strip())
        commands.put("stop")  # parent gone: stop too

    threading.Thread(target=read_stdin, daemon=True).start()

    fatal: list[str] = []

    def on_error(err) -> None:
        # transport errors while the broker is down are expected; fatal ones
        # (idempotence state lost) end the producer and are reported
        if err.fatal():
            fatal.append(str(err))

    cfg = {
        "bootstrap.servers": a.bootstrap,
        "acks": "all",
        "enable.idempotence": a.idempotent,
        "compression.type": a.codec,
        "linger.ms": 5,
        # long enough to survive the restart; a record still undelivered at
        # the end is not acknowledged, never an error of the broker
        "message.timeout.ms": 120_000,
        # reconnect quickly to the restarted broker instead of backing off
        # towards librdkafka's 10 s default
        "reconnect.backoff.ms": 20,
        "reconnect.backoff.max.ms": 500,
        "retry.backoff.ms": 20,
        "retry.backoff.max.ms": 500,
        "error_cb": on_error,
    }
    if not a.idempotent:
        # Without idempotence ordering across retries needs one request in
        # flight (Kafka's documented rule); duplicates remain possible.
        cfg["max.in.flight.requests.per.connection"] = 1
    p = Producer(cfg)

    acklog = open(a.acklog, "a", buffering=1 << 16)
    pending: list[str] = []
    stats = {"acked": 0, "errors": {}, "error_samples": [], "produced": 0}
    state = {"ready": False, "mark": None, "marked_acked": False}

    def make_cb(seq: int):
        def cb(err, msg) -> None:
            if err is None:
                pending.append(f"{msg.partition()} {msg.offset()} {seq}\n")
                stats["acked"] += 1
                if state["mark"] is not None and seq >= state["mark"]:
                    state["marked_acked"] = True
            else:
                name = err.name()
                stats["errors"][name] = stats["errors"].get(name, 0) + 1
                if len(stats["error_samples"]) < 5:
                    stats["error_samples"].append(f"seq {seq}: {err}")

        return cb

    def drain_acks() -> None:
        if pending:
            acklog.writelines(pending)
            acklog.flush()
            pending.clear()
            if not state["ready"]:
                state["ready"] = True
                say("ready")
            if state["marked_acked"]:
                state["mark"], state["marked_acked"] = None, False
                say(f"progress {stats['acked']}")

    t0 = time.monotonic()
    seq = 0
    stopping = False
    while not stopping:
        if fatal:
            break
        target = int((time.monotonic() - t0) * a.rate)
        while seq < target:
            try:
                p.produce(
                    a.topic,
                    key=key_of(a.label, seq),
                    value=value_of(a.label, seq),
                    on_delivery=make_cb(seq),
                )
            except BufferError:
                break  # queue full while the broker is down: catch up later
            except KafkaException as e:  # a fatal error: the producer is unusable
                fatal.append(str(e))
                break
            seq += 1
        p.poll(0.01)
        drain_acks()
        while True:
            try:
                cmd = commands.get_nowait()
            except queue.Empty:
                break
            if cmd == "mark":
                state["mark"] = seq
            elif cmd == "stop":
                stopping = True
    stats["produced"] = seq
    remaining = p.flush(FLUSH_TIMEOUT_S) if not fatal else len(p)
    drain_acks()
    acklog.close()
    stats["undelivered"] = remaining
    stats["fatal"] = fatal
    say("stats " + json.dumps(stats))
    return 0


# ---------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------


@dataclass
class Worker:
    label: str
    codec: str
    idempotent: bool
    acklog: Path
    proc: subprocess.Popen
    events: queue.Queue = field(default_factory=queue.Queue)
    stats: dict | None = None

    def send(self, cmd: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(cmd + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it died; its missing answer is reported by expect()

    def expect(self, prefix: str, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LoopError(f"producer {self.label}: no {what} within {timeout:.0f}s")
            try:
                line = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise LoopError(
                    f"producer {self.label} exited (code {self.proc.wait()}) before {what}"
                )
            if line.startswith(prefix):
                return line[len(prefix):].strip()
            if line.startswith("stats"):
                raise LoopError(f"producer {self.label} stopped before {what}: {line}")


class LoopError(Exception):
    """The loop could not run (not a finding about the data)."""


def start_worker(workdir: Path, bootstrap: str, topic: str, label: str, codec: str,
                 idempotent: bool, rate: int) -> Worker:
    acklog = workdir / "acks" / f"{label}.log"
    acklog.parent.mkdir(exist_ok=True)
    errlog = open(workdir / "producers" / f"{label}.stderr", "w")
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--worker",
        "--bootstrap", bootstrap, "--topic", topic, "--label", label,
        "--codec", codec, "--idempotent", "1" if idempotent else "0",
        "--acklog", str(acklog), "--rate", str(rate),
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=errlog, text=True, bufsize=1)
    errlog.close()
    w = Worker(label, codec, idempotent, acklog, proc)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            w.events.put(line.rstrip("\n"))
        w.events.put(None)

    threading.Thread(target=pump, daemon=True, name=f"worker-{label}").start()
    return w


@dataclass
class Verdict:
    cycle: int
    acked_cycle: int = 0
    acked_total: int = 0
    found: int = 0
    lost: int = 0
    dup_idempotent: int = 0
    dup_plain: int = 0
    disorder: int = 0
    gaps: int = 0
    corrupt: int = 0
    unacked_present: int = 0
    records: int = 0
    details: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        # A non-idempotent producer may legitimately write a record twice:
        # when the broker dies after the append but before its answer reaches
        # the client, librdkafka retries the batch and Kafka (at-least-once
        # without idempotence) appends it again. Only the copy at the
        # acknowledged offset was acknowledged, so it is reported, not failed.
        return bool(self.lost or self.dup_idempotent or self.disorder or self.gaps or self.corrupt)

    def line(self) -> str:
        return (
            f"acknowledged {self.acked_cycle} this cycle; whole topic: acknowledged "
            f"{self.acked_total}, found {self.found}, "
            f"lost {self.lost}, duplicated {self.dup_idempotent} "
            f"(+{self.dup_plain} non-idempotent retries), out of order {self.disorder}, "
            f"gaps {self.gaps}, corrupt {self.corrupt}, unacknowledged present "
            f"{self.unacked_present}, records in topic {self.records}"
        )


def read_topic(bootstrap: str, topic: str) -> tuple[dict[int, list], dict[int, tuple[int, int]]]:
    """Every record of every partition, from offset 0 up to the high
    watermark read first: {partition: [(offset, key, value), ...]}."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"kill-loop-verify-{os.getpid()}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,  # a partition ending short is a finding, not a hang
    })
    try:
        wm = {
            p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=30, cached=False)
            for p in range(PARTITIONS)
        }
        out: dict[int, list] = {p: [] for p in range(PARTITIONS)}
        todo = {p for p, (_, hi) in wm.items() if hi > 0}
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(todo)])
        deadline = time.monotonic() + 300
        while todo:
            if time.monotonic() > deadline:
                raise LoopError(f"reading {topic} back timed out; partitions left {sorted(todo)}")
            for m in c.consume(num_messages=10_000, timeout=1.0):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        todo.discard(m.partition())
                        continue
                    raise LoopError(f"consumer error on partition {m.partition()}: {err}")
                p, o = m.partition(), m.offset()
                if o < wm[p][1]:
                    out[p].append((o, m.key(), m.value()))
                if o >= wm[p][1] - 1:
                    todo.discard(p)
        return out, wm
    finally:
        c.close()


def verify(cycle: int, bootstrap: str, topic: str, acked: dict[int, dict[int, tuple[str, int]]],
           idempotent: dict[str, bool], acked_cycle: int, acked_total: int) -> Verdict:
    v = Verdict(cycle, acked_cycle=acked_cycle, acked_total=acked_total)
    data, wm = read_topic(bootstrap, topic)

    def detail(msg: str) -> None:
        if len(v.details) < 40:
            v.details.append(msg)

    seen_values: dict[tuple[str, int], tuple[int, int]] = {}
    for p in range(PARTITIONS):
        recs = data[p]
        lo, hi = wm[p]
        v.records += len(recs)
        offsets = [o for o, _, _ in recs]
        if lo != 0 or offsets != list(range(hi)):
            missing = sorted(set(range(hi)) - set(offsets))
            v.gaps += len(missing) + (len(offsets) - len(set(offsets))) + (1 if lo != 0 else 0)
            detail(f"p{p}: watermarks {lo}..{hi}, {len(recs)} records read, "
                   f"missing offsets {missing[:10]}")
        at = {}
        last_seq: dict[str, tuple[int, int]] = {}
        for o, key, value in recs:
            at[o] = value
            ident = parse_value(value)
            if ident is None or ident[0] not in idempotent or key != key_of(*ident) \
                    or value != value_of(*ident):
                v.corrupt += 1
                detail(f"p{p} o{o}: unexpected record key={key!r} value={value[:60]!r}")
                continue
            label, seq = ident
            if ident in seen_values:
                if idempotent[label]:
                    v.dup_idempotent += 1
                    detail(f"p{p} o{o}: {label} seq {seq} again (first at "
                           f"p{seen_values[ident][0]} o{seen_values[ident][1]})")
                else:
                    v.dup_plain += 1
                continue  # order is judged on first copies
            seen_values[ident] = (p, o)
            prev = last_seq.get(label)
            if prev is not None and seq <= prev[0]:
                v.disorder += 1
                detail(f"p{p} o{o}: {label} seq {seq} after seq {prev[0]} at o{prev[1]}")
            last_seq[label] = (seq, o)
        acked_here = acked.get(p, {})
        for o, (label, seq) in acked_here.items():
            if at.get(o) == value_of(label, seq):
                v.found += 1
            else:
                v.lost += 1
                got = at.get(o)
                detail(f"LOST p{p} o{o}: acknowledged {label} seq {seq}, found "
                       f"{'nothing' if got is None else repr(got[:40])} (watermarks {lo}..{hi})")
        # an acknowledged record implies its position; others were written
        # without the client seeing the acknowledgement (killed in between)
        v.unacked_present += sum(1 for o in at if o not in acked_here)
    # the acknowledged copies too, in offset order, must follow the sequence
    by_label_part: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
    for p, entries in acked.items():
        for o, (label, seq) in entries.items():
            by_label_part[(label, p)].append((seq, o))
    for (label, p), pairs in by_label_part.items():
        pairs.sort()
        for (s1, o1), (s2, o2) in zip(pairs, pairs[1:]):
            if o2 <= o1:
                v.disorder += 1
                detail(f"p{p}: {label} acknowledged seq {s1} at o{o1} but seq {s2} at o{o2}")
    return v


@dataclass
class Result:
    seed: int
    cycles_done: int
    verdicts: list[Verdict]
    wall_s: float
    workdir: Path
    topic: str
    acked: dict  # partition -> offset -> (label, seq), every cycle
    idempotent: dict  # label -> bool

    @property
    def last(self) -> Verdict | None:
        return self.verdicts[-1] if self.verdicts else None

    @property
    def ok(self) -> bool:
        return bool(self.verdicts) and not any(v.failed for v in self.verdicts)

    def summary(self) -> str:
        v = self.last
        if v is None:
            return f"seed {self.seed}: no cycle completed"
        worst_lost = max(x.lost for x in self.verdicts)
        return (
            f"TOTAL after {self.cycles_done} cycles (seed {self.seed}, {self.wall_s:.0f} s): "
            f"acknowledged {v.acked_total}, found {v.found}, lost {v.lost} (most in any cycle "
            f"{worst_lost}), duplicated {v.dup_idempotent} (+{v.dup_plain} non-idempotent "
            f"retries), out of order {v.disorder}, gaps {v.gaps}, corrupt {v.corrupt}, "
            f"unacknowledged present {v.unacked_present}, records in topic {v.records}"
        )


def load_acks(w: Worker, acked: dict[int, dict[int, tuple[str, int]]], clashes: list[str]) -> int:
    n = 0
    if not w.acklog.exists():
        return 0
    with open(w.acklog) as f:
        for line in f:
            p, o, seq = (int(x) for x in line.split())
            prev = acked[p].get(o)
            if prev is not None:
                # two acknowledgements for one position: one of them is lost
                clashes.append(f"p{p} o{o} acknowledged to {prev} and to {(w.label, seq)}")
            acked[p][o] = (w.label, seq)
            n += 1
    return n


def run(cycles: int, seed: int | None = None, *, workdir: Path | None = None, rate: int = 1000,
        broker=None, out=print, keep_going: bool = False, max_delay: float = 3.0,
        broker_args: tuple = ()) -> Result:
    """Runs the loop; `broker` is a conftest.Broker (not started) or None to
    make one in `workdir`. GREGOR_BIN selects the binary."""
    sys.path.insert(0, str(COMPAT_DIR))
    from compat import ck_create_topic
    from conftest import Broker

    seed = seed if seed is not None else random.SystemRandom().randrange(1 << 32)
    rng = random.Random(seed)
    workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="gregor-kill-loop-"))
    (workdir / "producers").mkdir(parents=True, exist_ok=True)
    own_broker = broker is None
    if own_broker:
        data_dir = None
        if "--ephemeral" not in broker_args:  # --ephemeral: a check that the checks can fail
            data_dir = workdir / "data"
            data_dir.mkdir(exist_ok=True)
        broker = Broker(data_dir, broker_args, name="gregor")
    out(f"kill loop: seed {seed}, {cycles} cycles, {PARTITIONS} partitions, producers "
        f"{', '.join(CODECS)} (idempotent) + {NON_IDEMPOTENT_CODEC} (not idempotent) at "
        f"{rate} records/s each, workdir {workdir}")
    topic = f"kill-loop-{seed}"
    acked: dict[int, dict[int, tuple[str, int]]] = defaultdict(dict)
    acked_total = 0
    clashes: list[str] = []  # across cycles: each one stays lost
    idempotent: dict[str, bool] = {}
    verdicts: list[Verdict] = []
    t_start = time.monotonic()
    workers: list[Worker] = []
    cycle = 0
    try:
        broker.start()
        ck_create_topic(broker.bootstrap, topic, PARTITIONS)
        for cycle in range(1, cycles + 1):
            specs = [(c, True) for c in CODECS] + [(NON_IDEMPOTENT_CODEC, False)]
            workers = []
            for codec, idem in specs:
                label = f"c{cycle}-{codec}{'' if idem else '-plain'}"
                idempotent[label] = idem
                workers.append(start_worker(workdir, broker.bootstrap, topic, label, codec,
                                            idem, rate))
            for w in workers:
                w.expect("ready", READY_TIMEOUT_S, "first acknowledgement")
            # mostly 0.2..max_delay s into the load, sometimes right away
            delay = rng.uniform(0.0, 0.2) if rng.random() < 0.2 else rng.uniform(0.2, max_delay)
            time.sleep(delay)  # the random kill moment itself, not a wait for an event
            broker.kill9()
            broker.start()
            for w in workers:
                w.send("mark")
            for w in workers:
                w.expect("progress", PROGRESS_TIMEOUT_S, "acknowledgement after the restart")
            for w in workers:
                w.send("stop")
            for w in workers:
                w.stats = json.loads(w.expect("stats", STOP_TIMEOUT_S, "final stats"))
                w.proc.wait(30)
            n_acked = sum(load_acks(w, acked, clashes) for w in workers)
            acked_total += n_acked
            v = verify(cycle, broker.bootstrap, topic, acked, idempotent, n_acked, acked_total)
            # a position acknowledged twice: the earlier record is gone
            v.lost += len(clashes)
            v.details[:0] = clashes[:10]
            verdicts.append(v)
            errs = {}
            for w in workers:
                for k, n in w.stats["errors"].items():
                    errs[k] = errs.get(k, 0) + n
            undelivered = sum(w.stats["undelivered"] for w in workers)
            fatal = [f"{w.label}: {w.stats['fatal']}" for w in workers if w.stats["fatal"]]
            out(f"cycle {cycle}/{cycles}: killed after {delay:.2f}s; {v.line()}; "
                f"delivery errors {errs or 0}, undelivered {undelivered}"
                + (f"; FATAL {fatal}" if fatal else ""))
            for d in v.details:
                out(f"  {d}")
            if fatal:
                raise LoopError(f"fatal producer errors in cycle {cycle}: {fatal}")
            if v.failed and not keep_going:
                break
        broker.stop()  # a clean exit (code 0) after all those crashes
    finally:
        for w in workers:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
        (workdir / "gregor.log").write_text(broker.log)
        if broker.alive():
            broker._force_kill()
    return Result(seed, len(verdicts), verdicts, time.monotonic() - t_start, workdir, topic,
                  acked, idempotent)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=5)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--gregor", help="broker binary (default $GREGOR_BIN or target/debug/gregor)")
    ap.add_argument("--rate", type=int, default=1000, help="records/s per producer")
    ap.add_argument("--max-delay", type=float, default=3.0, help="latest kill, s into a cycle")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the work dir even on success")
    ap.add_argument("--keep-going", action="store_true", help="do not stop at the first bad cycle")
    ap.add_argument("--broker-arg", action="append", default=[],
                    help="extra argument for gregor serve (repeat: --broker-arg=-o --broker-arg=k=v)")
    # worker mode
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--bootstrap", help=argparse.SUPPRESS)
    ap.add_argument("--topic", help=argparse.SUPPRESS)
    ap.add_argument("--label", help=argparse.SUPPRESS)
    ap.add_argument("--codec", help=argparse.SUPPRESS)
    ap.add_argument("--idempotent", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--acklog", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        a.idempotent = bool(a.idempotent)
        return worker_main(a)

    if a.gregor:
        os.environ["GREGOR_BIN"] = str(Path(a.gregor).resolve())
    binary = Path(os.environ.get("GREGOR_BIN") or REPO_ROOT / "target" / "debug" / "gregor")
    if not binary.exists():
        print(f"gregor binary not found at {binary}: cargo build -p gregor, or --gregor",
              file=sys.stderr)
        return 2
    os.environ["GREGOR_BIN"] = str(binary.resolve())
    try:
        res = run(a.cycles, a.seed, workdir=a.workdir, rate=a.rate, out=lambda s: print(s, flush=True),
                  keep_going=a.keep_going, max_delay=a.max_delay, broker_args=tuple(a.broker_arg))
    except Exception as e:  # noqa: BLE001 - the loop broke; not a verdict on the data
        print(f"LOOP BROKE: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(res.summary())
    if res.ok and not a.keep and a.workdir is None:
        shutil.rmtree(res.workdir, ignore_errors=True)
    else:
        print(f"work dir kept: {res.workdir} (gregor.log, acks/, producers/, data/)")
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
