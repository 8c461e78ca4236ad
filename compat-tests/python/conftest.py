"""Fixtures that run a real gregor process for the stock-client tests.

`broker` starts `gregor serve --listen 127.0.0.1:0 --data-dir <tmp>` and
yields a `Broker`; `make_broker(*extra_args)` starts more (or differently
configured) ones. Extra arguments for `broker` come from the marker
`@pytest.mark.broker_args("-o", "num.partitions=3")`.

Environment:
  GREGOR_BIN  path of the gregor binary (default: <repo>/target/debug/gregor)
  GREGOR_LOG  passed through to the broker (log filter, e.g. debug)
  COMPAT_EXTERNAL_BOOTSTRAP=host:port  run the client tests against a broker
      that is already running (e.g. Apache Kafka, for a differential run); no
      gregor is started and the tests that stop, restart or kill the broker,
      or that need its process, are skipped

When a test fails, the log of every broker it used is attached to the
report (section "gregor log"). Lines given to the `timings` fixture
(`timings.append("...")`) are printed in a "timings" section at the end.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
DEFAULT_BIN = REPO_ROOT / "target" / "debug" / "gregor"

READY_RE = re.compile(r"listening.*addr=(\S+:\d+)")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


def gregor_bin() -> Path:
    env = os.environ.get("GREGOR_BIN")
    return Path(env) if env else DEFAULT_BIN


class BrokerError(AssertionError):
    pass


class Broker:
    """One gregor process (restartable on the same port and data dir)."""

    def __init__(self, data_dir: Path | None, extra_args=(), name: str = "gregor"):
        self.data_dir = data_dir
        self.extra_args = [str(a) for a in extra_args]
        self.name = name
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self._cond = threading.Condition()
        self._lines: list[str] = []  # every line of every run, with markers
        self._ready_addr: str | None = None
        self._eof = False
        self._reader: threading.Thread | None = None

    # -- properties -----------------------------------------------------
    @property
    def bootstrap(self) -> str:
        assert self.port is not None, "broker was never started"
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        with self._cond:
            return "".join(self._lines)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- lifecycle ------------------------------------------------------
    def command(self) -> list[str]:
        listen = f"127.0.0.1:{self.port if self.port is not None else 0}"
        cmd = [str(gregor_bin()), "serve", "--listen", listen]
        if self.data_dir is not None:
            cmd += ["--data-dir", str(self.data_dir)]
        return cmd + self.extra_args

    def start(self) -> "Broker":
        if self.alive():
            raise BrokerError(f"{self.name} is already running (pid {self.proc.pid})")
        binary = gregor_bin()
        if not binary.exists():
            pytest.fail(
                f"gregor binary not found at {binary}: run `cargo build -p gregor` "
                "or set GREGOR_BIN",
                pytrace=False,
            )
        cmd = self.command()
        # the command line alone configures it: no stray GREGOR_LISTEN etc.
        # (GREGOR_LOG, the log filter, passes through: GREGOR_LOG=debug)
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("GREGOR_") or k == "GREGOR_LOG"
        }
        env.setdefault("NO_COLOR", "1")
        self.runs += 1
        with self._cond:
            self._lines.append(f"----- run {self.runs}: {' '.join(cmd)}\n")
            self._ready_addr = None
            self._eof = False
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a ^C in the terminal is not a SIGINT to it
        )
        self._reader = threading.Thread(
            target=self._drain, args=(self.proc,), name=f"{self.name}-log", daemon=True
        )
        self._reader.start()

        deadline = time.monotonic() + START_TIMEOUT_S
        with self._cond:
            while self._ready_addr is None and not self._eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            addr = self._ready_addr
        if addr is None:
            exited = self.proc.poll()
            if exited is None:
                self._force_kill()
                why = f"no ready line within {START_TIMEOUT_S:.0f}s"
            else:
                self.proc.wait()
                why = f"exited with code {exited} before logging the ready line"
            raise BrokerError(f"{self.name} failed to start ({why}).\nlog:\n{self.log}")
        host, _, port = addr.rpartition(":")
        port = int(port)
        if self.port is not None and port != self.port:
            raise BrokerError(
                f"{self.name} restarted on port {port}, expected {self.port}\nlog:\n{self.log}"
            )
        self.port = port
        return self

    def _drain(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace")
            with self._cond:
                self._lines.append(line)
                if self._ready_addr is None:
                    m = READY_RE.search(line)
                    if m:
                        self._ready_addr = m.group(1)
                        self._cond.notify_all()
        proc.stdout.close()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _wait_exit(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        if self._reader is not None:
            self._reader.join(5)
        return code

    def _force_kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._reader is not None:
            self._reader.join(5)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Graceful stop; asserts the process exits with code 0."""
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            code = self.proc.returncode
            raise BrokerError(
                f"{self.name} had already exited with code {code} before stop()\n"
                f"log:\n{self.log}"
            )
        self.proc.send_signal(sig)
        code = self._wait_exit(STOP_TIMEOUT_S)
        if code is None:
            self._force_kill()
            raise BrokerError(
                f"{self.name} did not exit within {STOP_TIMEOUT_S:.0f}s of "
                f"{signal.Signals(sig).name}\nlog:\n{self.log}"
            )
        with self._cond:
            self._lines.append(f"----- exited with code {code} after {signal.Signals(sig).name}\n")
        if code != 0:
            raise BrokerError(
                f"{self.name} exited with code {code} after {signal.Signals(sig).name}, "
                f"expected 0\nlog:\n{self.log}"
            )

    def kill9(self) -> None:
        """Crash: SIGKILL and wait."""
        assert self.alive(), f"{self.name} is not running\nlog:\n{self.log}"
        self.proc.send_signal(signal.SIGKILL)
        code = self._wait_exit(STOP_TIMEOUT_S)
        assert code == -signal.SIGKILL, f"unexpected exit code {code} after SIGKILL"
        with self._cond:
            self._lines.append("----- killed with SIGKILL\n")

    def restart(self) -> "Broker":
        """SIGTERM (exit code 0 asserted), then start on the same port and dir."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Teardown: graceful stop if still running (asserting exit code 0)."""
        if self.alive():
            self.stop()


class ExternalBroker:
    """A broker this suite did not start (COMPAT_EXTERNAL_BOOTSTRAP)."""

    name = "external"
    log = ""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.port = int(bootstrap.rpartition(":")[2])

    def alive(self) -> bool:
        return True

    def _unsupported(self, *_a, **_k):
        pytest.skip("needs a broker process started by the suite")

    start = stop = kill9 = restart = _unsupported
    pid = None  # no process to inspect

    def close(self) -> None:
        pass


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "broker_args(*args): extra command-line arguments for the `broker` fixture"
    )
    # kafka-python 3.0 loads its schemas with deprecated importlib.resources calls
    config.addinivalue_line(
        "filterwarnings", r"ignore:(read_text|open_text) is deprecated:DeprecationWarning"
    )
    config.addinivalue_line(
        "markers", "ephemeral: start the `broker` fixture with --ephemeral instead of a data dir"
    )


@pytest.fixture
def make_broker(tmp_path, request):
    """Factory: make_broker(*extra_args, ephemeral=False, start=True) -> Broker."""
    brokers: list[Broker] = []
    request.node._gregor_brokers = brokers

    def factory(*extra_args, ephemeral: bool = False, start: bool = True) -> Broker:
        external = os.environ.get("COMPAT_EXTERNAL_BOOTSTRAP")
        if external:
            if extra_args:
                pytest.skip(f"needs a broker started with {extra_args}")
            return ExternalBroker(external)
        n = len(brokers)
        if ephemeral:
            data_dir = None
            extra_args = ("--ephemeral", *extra_args)
        else:
            data_dir = tmp_path / f"gregor-data-{n}"
            data_dir.mkdir()
        b = Broker(data_dir, extra_args, name=f"gregor#{n}")
        brokers.append(b)
        if start:
            b.start()
        return b

    yield factory

    errors = []
    for b in brokers:
        try:
            b.close()
        except BaseException as e:  # noqa: BLE001 - report every broker
            errors.append(e)
            try:
                b._force_kill()
            except Exception:  # noqa: BLE001
                pass
    if errors:
        raise errors[0]


@pytest.fixture
def broker(make_broker, request) -> Broker:
    args = []
    for m in request.node.iter_markers("broker_args"):
        args.extend(m.args)
    ephemeral = request.node.get_closest_marker("ephemeral") is not None
    return make_broker(*args, ephemeral=ephemeral)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    if rep.failed:
        for b in getattr(item, "_gregor_brokers", []):
            log = b.log
            tail = log[-20000:]
            if len(log) > len(tail):
                tail = "[... earlier lines cut ...]\n" + tail
            rep.sections.append((f"{b.name} log ({rep.when})", tail))
    return rep


_TIMINGS = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def timings(request) -> list:
    """A list of lines printed in a "timings" section after the run."""
    return request.config.stash.setdefault(_TIMINGS, [])


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    lines = config.stash.get(_TIMINGS, [])
    if lines:
        terminalreporter.section("timings")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def reference_bootstrap(timings):
    """host:port of the reference Apache Kafka (compat-tests/reference): one
    per session, started on first use (GREGOR_REFERENCE=1 tests) and stopped
    at the end; tests share it, each with its own topics and groups."""
    import sys

    sys.path.insert(0, str(REPO_ROOT / "compat-tests" / "reference"))
    from reference import available, reference_kafka

    ok, why = available()
    if not ok:
        pytest.fail(f"the reference Kafka cannot run: {why}", pytrace=False)
    t0 = time.monotonic()
    with reference_kafka() as bootstrap:
        timings.append(f"reference Kafka started in {time.monotonic() - t0:.1f} s ({bootstrap})")
        yield bootstrap
