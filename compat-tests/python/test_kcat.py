"""kcat 1.7.1 (Debian, librdkafka 2.0.2: old and strict) against gregor."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import defaultdict

import pytest

from compat import assert_compressed_with, unique_topic

KCAT = shutil.which("kcat")


@pytest.fixture(autouse=True)
def _kcat_installed():
    # a failure, not a skip: a machine without kcat must not pass quietly
    if KCAT is None:
        pytest.fail("kcat not installed: apt-get install -y kcat", pytrace=False)

TIMEOUT = 60


def kcat(*args, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([KCAT, *args], input=input, capture_output=True, timeout=TIMEOUT)
    if check:
        assert r.returncode == 0, (
            f"kcat {' '.join(args)} exited with {r.returncode}\n"
            f"stderr:\n{r.stderr.decode(errors='replace')[-4000:]}"
        )
    return r


def produce_lines(bootstrap: str, topic: str, lines: list[str], *extra: str) -> subprocess.CompletedProcess:
    data = "".join(line + "\n" for line in lines).encode()
    r = kcat("-P", "-K:", "-t", topic, "-b", bootstrap, *extra, input=data)
    err = r.stderr.decode(errors="replace")
    assert "ERROR" not in err and "Failed to produce" not in err, f"kcat -P reported:\n{err[-4000:]}"
    return r


FMT = r"%p\t%o\t%K\t%k\t%S\t%s\t%h\n"


def consume(bootstrap: str, topic: str, *extra: str) -> list[dict]:
    r = kcat("-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-f", FMT, *extra)
    out = []
    for line in r.stdout.decode().splitlines():
        p, o, klen, k, vlen, v, h = line.split("\t")
        out.append(
            {
                "partition": int(p),
                "offset": int(o),
                "key": None if klen == "-1" else k,
                "value": None if vlen == "-1" else v,
                "headers": h,
            }
        )
    return out


def keyed_lines(n: int, keys: int) -> list[tuple[str, str]]:
    return [(f"k{i % keys}", f"line-{i}-" + "x" * (i % 50)) for i in range(n)]


def test_produce_consume_keyed_lines(broker):
    """2000 `key:value` lines into an auto-created 1-partition topic come
    back in order at offsets 0..1999, with the header given by -H."""
    topic = unique_topic("kcat")
    recs = keyed_lines(2000, 10)
    produce_lines(broker.bootstrap, topic, [f"{k}:{v}" for k, v in recs], "-H", "src=kcat")
    got = consume(broker.bootstrap, topic)
    assert len(got) == len(recs), f"consumed {len(got)} of {len(recs)}"
    assert [g["partition"] for g in got] == [0] * len(recs)
    assert [g["offset"] for g in got] == list(range(len(recs)))
    assert [(g["key"], g["value"]) for g in got] == recs
    assert {g["headers"] for g in got} == {"src=kcat"}


@pytest.mark.broker_args("-o", "num.partitions=3")
def test_produce_consume_three_partitions(broker):
    """With num.partitions=3, auto-created topics get 3 partitions; each key
    stays in one partition, in order, offsets contiguous from 0."""
    topic = unique_topic("kcat3")
    recs = keyed_lines(3000, 30)
    produce_lines(broker.bootstrap, topic, [f"{k}:{v}" for k, v in recs])
    got = consume(broker.bootstrap, topic)
    assert len(got) == len(recs), f"consumed {len(got)} of {len(recs)}"
    by_part = defaultdict(list)
    by_key = defaultdict(list)
    for g in got:
        by_part[g["partition"]].append(g["offset"])
        by_key[g["key"]].append(g)
    assert set(by_part) == {0, 1, 2}, f"partitions used: {sorted(by_part)}"
    for p, offs in by_part.items():
        assert offs == list(range(len(offs))), f"partition {p}: offsets {offs[:10]}..."
    want_by_key = defaultdict(list)
    for k, v in recs:
        want_by_key[k].append(v)
    for k, want in want_by_key.items():
        gs = by_key[k]
        assert len({g["partition"] for g in gs}) == 1, f"key {k} in several partitions"
        assert [g["value"] for g in gs] == want, f"key {k}: values differ"


def test_null_and_empty(broker):
    """With -Z an empty value is produced as NULL, without -Z as an empty
    value; both come back as such (%S is -1 only for NULL)."""
    topic = unique_topic("kcat-null")
    produce_lines(broker.bootstrap, topic, ["a:one", "b:", "c:three"], "-Z")
    produce_lines(broker.bootstrap, topic, ["d:", "e:five"])
    got = consume(broker.bootstrap, topic)
    assert [(g["offset"], g["key"], g["value"]) for g in got] == [
        (0, "a", "one"),
        (1, "b", None),
        (2, "c", "three"),
        (3, "d", ""),
        (4, "e", "five"),
    ]


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression(broker, codec):
    """kcat -z <codec>: librdkafka 2.0.2 really compresses (its debug log
    names the codec of each MessageSet; it turns gzip/snappy/lz4 off unless
    the broker advertises Produce v0, and lz4 off unless it advertises
    FindCoordinator) and the lines come back in order."""
    topic = unique_topic(f"kcat-{codec}")
    recs = keyed_lines(1000, 7)
    r = produce_lines(broker.bootstrap, topic, [f"{k}:{v}" for k, v in recs], "-z", codec, "-d", "msg")
    assert_compressed_with(r.stderr.decode(errors="replace"), codec, len(recs))
    got = consume(broker.bootstrap, topic)
    assert [(g["offset"], g["key"], g["value"]) for g in got] == [
        (i, k, v) for i, (k, v) in enumerate(recs)
    ]


def test_metadata_listing(broker):
    """kcat -L (text and -J) lists broker 1 at the bootstrap address and the
    topic with its partitions led by broker 1."""
    topic = unique_topic("kcat-md")
    produce_lines(broker.bootstrap, topic, ["k:v"])
    text = kcat("-L", "-b", broker.bootstrap).stdout.decode()
    assert re.search(rf"^\s*broker 1 at {re.escape(broker.bootstrap)}\b", text, re.M), text
    assert re.search(rf'^\s*topic "{re.escape(topic)}" with 1 partitions:', text, re.M), text
    assert re.search(r"^\s*partition 0, leader 1, replicas: 1, isrs: 1", text, re.M), text

    md = json.loads(kcat("-L", "-J", "-b", broker.bootstrap, "-t", topic).stdout)
    assert [(b["id"], b["name"]) for b in md["brokers"]] == [(1, broker.bootstrap)], md
    assert md["controllerid"] == 1, md
    topics = {t["topic"]: t for t in md["topics"]}
    assert list(topics) == [topic], md
    t = topics[topic]
    assert "error" not in t, md
    assert [(p["partition"], p["leader"], [r["id"] for r in p["replicas"]]) for p in t["partitions"]] == [
        (0, 1, [1])
    ], md


def test_query_offsets_for_time(broker):
    """kcat -Q (ListOffsets by timestamp) gives the first offset whose
    timestamp is >= the query, and -1 past the last record."""
    topic = unique_topic("kcat-q")
    # two runs: the second one's records are stamped after the first's
    produce_lines(broker.bootstrap, topic, [f"k:a{i}" for i in range(10)])
    produce_lines(broker.bootstrap, topic, [f"k:b{i}" for i in range(10)])
    r = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-o", "beginning", "-e", "-f", r"%o %T %s\n")
    rows = [line.split() for line in r.stdout.decode().splitlines()]
    assert [(int(o), v) for o, _, v in rows] == list(enumerate([f"a{i}" for i in range(10)] + [f"b{i}" for i in range(10)]))
    rows = [(int(o), int(t)) for o, t, _ in rows]
    ts = [t for _, t in rows]
    assert ts == sorted(ts), f"timestamps not monotonic: {ts}"

    def query(t: int) -> int:
        out = kcat("-Q", "-b", broker.bootstrap, "-t", f"{topic}:0:{t}").stdout.decode()
        m = re.search(rf"{re.escape(topic)} \[0\] offset (-?\d+)", out)
        assert m, out
        return int(m.group(1))

    def expected(t: int) -> int:
        return next((o for o, rt in rows if rt >= t), -1)

    for t in (ts[0] - 1000, ts[0], ts[9] + 1, ts[19], ts[19] + 1):
        assert query(t) == expected(t), f"-Q {t}: timestamps {ts}"
