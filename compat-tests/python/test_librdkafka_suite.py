"""librdkafka's own regression suite against Gregor, run the way its users
run it against a cluster: `tests/test-runner` with a test.conf naming the
bootstrap broker, TEST_KAFKA_VERSION=4.0.0 and quick mode (-Q).

The suite is built from the librdkafka 2.12.1 sources the rdkafka-sys crate
vendors (compat-tests/librdkafka-suite/build.sh, cached in target/). Each
test gets its own Gregor shaped like the suite's default scenario: three
brokers (`--virtual-brokers 3`), `num.partitions=4`, replication factor 3,
auto-create on, and `--dev` (no initial rebalance delay).

The tests here are a short form (about 7 minutes) chosen to cover what
applications lean on: producing with every ack mode and codec, idempotence,
transactions, offsets, consumer groups (eager and cooperative, regex
subscriptions, offset commits), the admin API and headers. The whole suite
(`run.sh` beside build.sh) is for long runs; docs/COMPATIBILITY.md lists what passes there and why the
rest does not (ACLs and SASL, which Gregor does not serve; tools of Kafka's
distribution; tests of librdkafka's own mock cluster).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from faults import ready_fields

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("COMPAT_EXTERNAL_BOOTSTRAP")),
    reason="starts its own three-broker gregor",
)

BUILD = REPO_ROOT / "compat-tests" / "librdkafka-suite" / "build.sh"
CLUSTER_ARGS = (
    "--virtual-brokers", "3", "--dev",
    "-o", "num.partitions=4", "-o", "default.replication.factor=3",
)
RUN_TIMEOUT_S = 300

# (test number, what it covers, quick mode). Tests that do nothing in
# quick mode (they pass with no broker at all) run in full mode. 0102
# (static membership, full mode) passes in the whole-suite runs but is
# left out here: it failed once in CI under load, on timings of its own.
TESTS = [
    ("0001", "many producers and consumers at once", True),
    ("0002", "produce to an unknown partition", True),
    ("0003", "message.max.bytes: MSG_SIZE_TOO_LARGE", True),
    ("0005", "ordering", True),
    ("0007", "auto-created topic", True),
    ("0008", "acks 0, 1 and all", True),
    ("0011", "batch produce, partitioners", True),
    ("0012", "produce and consume many topics and partitions", True),
    ("0013", "null messages", True),
    ("0015", "offset seeks", True),
    ("0017", "gzip, snappy, lz4, zstd", True),
    ("0018", "consumer group terminate", False),
    ("0019", "ListGroups", False),
    ("0029", "assign with offsets", True),
    ("0030", "offset commit: sync, async, auto, stored", True),
    ("0031", "offsets for times, watermarks", True),
    ("0033", "regex subscribe", True),
    ("0034", "auto.offset.reset", True),
    ("0036", "partial fetch", True),
    ("0040", "io_event", True),
    ("0041", "fetch.max.bytes", True),
    ("0042", "many topics", True),
    ("0044", "partition count change", True),
    ("0048", "partitioners", True),
    ("0050", "subscribe adds topics", False),
    ("0051", "assign adds partitions", True),
    ("0055", "producer latency", True),
    ("0056", "balanced consumer group, multi-threaded", True),
    ("0059", "offsetsForTimes binary search", True),
    ("0061", "consumer lag", False),
    ("0069", "consumer added partitions", True),
    ("0073", "headers", True),
    ("0081", "the admin API (without its ACL and SCRAM sub-tests)", True),
    ("0085", "headers (C++)", True),
    ("0090", "idempotent producer", True),
    ("0099", "commit metadata", True),
    ("0103", "transactions", True),
    ("0112", "assign an unknown partition", True),
    ("0113", "cooperative rebalance", True),
    ("0122", "buffer cleaning after rebalance", False),
    ("0130", "store offsets", True),
]

@pytest.fixture(scope="session")
def suite_dir() -> Path:
    p = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, f"{BUILD} failed:\n{p.stdout}\n{p.stderr}"
    tests = Path(p.stdout.strip().splitlines()[-1])
    return tests


@pytest.mark.parametrize(
    "number,what,quick", TESTS, ids=[f"{n}-{w.split(':')[0].split(',')[0]}" for n, w, _ in TESTS]
)
def test_librdkafka_suite(number, what, quick, suite_dir, make_broker, tmp_path, timings):
    b = make_broker(*CLUSTER_ARGS, ephemeral=True)
    brokers, _ = ready_fields(b.log)
    conf = tmp_path / "test.conf"
    conf.write_text(f"metadata.broker.list={','.join(brokers.values())}\n")
    env = dict(
        os.environ,
        TESTS=number,
        TEST_KAFKA_VERSION="4.0.0",
        RDKAFKA_TEST_CONF=str(conf),
        LD_LIBRARY_PATH=f"{suite_dir.parent / 'src'}:{suite_dir.parent / 'src-cpp'}",
    )
    env.pop("TEST_DEBUG", None)
    t0 = time.monotonic()
    p = subprocess.run(
        ["./test-runner", *(["-Q"] if quick else [])], cwd=suite_dir, env=env, capture_output=True, text=True,
        timeout=RUN_TIMEOUT_S,
    )
    took = time.monotonic() - t0
    timings.append(f"librdkafka {number} ({what}): {took:.1f} s")
    out = p.stdout + p.stderr
    assert p.returncode == 0 and "ALL TESTS PASSED" in out, (
        f"librdkafka test {number} ({what}) failed with exit code {p.returncode}; "
        f"rerun: cd {suite_dir} && TESTS={number} TEST_KAFKA_VERSION=4.0.0 "
        f"RDKAFKA_TEST_CONF={conf} ./test-runner{' -Q' if quick else ''}\n...{out[-6000:]}"
    )
