"""Apache Kafka 4.3.1's own command-line tools, run from the reference jars
(compat-tests/reference/kafka.sh run CLASS ARGS), as kafka-topics.sh and
friends would run them.

`tool(name, bootstrap, *args)` runs one and returns its exit code, stdout
and stderr (the tools log to stderr through log4j2-tools.properties); it
never asserts on them: the tests do. Every run is bounded by TOOL_TIMEOUT_S
and printed (shown by pytest when a test fails).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO_ROOT / "compat-tests" / "reference" / "kafka.sh"

# a JVM start costs 1-3 s on an idle machine and much more when the 2 cores
# are busy with builds: the bound is for a hung tool, not for a slow one
TOOL_TIMEOUT_S = 90.0

# the shell script names of Kafka's distribution -> their main classes in 4.3.1
CLASSES = {
    "kafka-topics": "org.apache.kafka.tools.TopicCommand",
    "kafka-configs": "kafka.admin.ConfigCommand",
    "kafka-delete-records": "org.apache.kafka.tools.DeleteRecordsCommand",
    "kafka-log-dirs": "org.apache.kafka.tools.LogDirsCommand",
    "kafka-features": "org.apache.kafka.tools.FeatureCommand",
    "kafka-get-offsets": "org.apache.kafka.tools.GetOffsetShell",
}


def available() -> tuple[bool, str]:
    """Can the reference jars run here (java, and mvn before the first fetch)?"""
    sys.path.insert(0, str(REPO_ROOT / "compat-tests" / "reference"))
    from reference import available as ref_available

    return ref_available()


@dataclass
class Run:
    cmd: str  # as a user would type it, for messages
    rc: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.out.splitlines() if line.strip()]

    def __str__(self) -> str:
        return f"$ {self.cmd}\nexit code {self.rc}\n--- stdout\n{self.out}--- stderr\n{self.err}"


def tool(name: str, bootstrap: str, *args: str) -> Run:
    """Runs `<name>.sh --bootstrap-server BOOTSTRAP ARGS` (FeatureCommand takes
    its subcommand after the option, as the others take theirs)."""
    cmd = ["bash", str(KAFKA_SH), "run", CLASSES[name], "--bootstrap-server", bootstrap, *args]
    shown = f"{name}.sh --bootstrap-server {bootstrap} {' '.join(args)}"
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{shown}: no exit within {TOOL_TIMEOUT_S:.0f}s\nstdout so far:\n{e.stdout}", pytrace=False)
    run = Run(shown, r.returncode, r.stdout, r.stderr)
    print(run)
    return run


def ok(name: str, bootstrap: str, *args: str) -> Run:
    """tool(), asserting exit code 0."""
    run = tool(name, bootstrap, *args)
    assert run.rc == 0, f"expected exit code 0\n{run}"
    return run
