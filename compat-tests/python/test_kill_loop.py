"""The kill -9 loop of issue 7 (tests/kill_loop.py), a few cycles for CI.

Six librdkafka producers (acks=all; idempotent with each codec, plus one
without idempotence) write to a 6-partition topic while the broker is
SIGKILLed at a random moment and restarted, three times; after each cycle
every acknowledged record of every cycle must be at its acknowledged offset,
once, in order, with contiguous offsets. KILL_LOOP_SEED=S replays a seed;
the long run is `python3 tests/kill_loop.py --cycles 50`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
import kill_loop  # noqa: E402

CYCLES = 3


def test_kill_loop(make_broker, tmp_path, timings):
    if os.environ.get("COMPAT_EXTERNAL_BOOTSTRAP"):
        pytest.skip("needs a broker process started by the suite")
    broker = make_broker(start=False)  # conftest attaches its log if this fails
    seed = os.environ.get("KILL_LOOP_SEED")
    lines: list[str] = []

    def out(line: str) -> None:
        lines.append(line)
        print(line)

    res = kill_loop.run(
        CYCLES,
        int(seed) if seed else None,
        workdir=tmp_path / "kill-loop",
        rate=400,  # records/s per producer: the debug broker on shared CI cores
        max_delay=2.0,
        broker=broker,
        out=out,
    )
    timings.append(f"kill loop: {res.summary()}")
    log = "\n".join(lines)
    assert res.cycles_done == CYCLES, f"stopped after {res.cycles_done} cycles\n{log}"
    last = res.last
    assert last.acked_total > 0 and last.found == last.acked_total, log
    assert res.ok, f"{res.summary()}\n{log}"

    # The checker is not vacuous: against the same real data, one acknowledged
    # record moved to a wrong seq and one beyond the high watermark are lost.
    broker.start()
    acked = {p: dict(entries) for p, entries in res.acked.items()}
    p0 = max(acked, key=lambda p: len(acked[p]))
    o_last = max(acked[p0])
    label, seq = acked[p0][o_last]
    acked[p0][o_last] = (label, seq + 1_000_000)
    acked[p0][o_last + 10_000] = (label, seq + 2_000_000)
    total = sum(len(e) for e in acked.values())
    v = kill_loop.verify(0, broker.bootstrap, res.topic, acked, res.idempotent, 0, total)
    assert (v.lost, v.found) == (2, total - 2), v.line()
