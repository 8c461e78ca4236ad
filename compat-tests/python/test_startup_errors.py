"""Startup errors a person can act on: one line on stderr, `error: ` and the
cause chain, exit code 1, never a Debug dump or a backtrace (RUST_BACKTRACE=1
is set for every run here), and nothing else on stderr: a failed start logs
no lines before the error.

Includes the data dir lock: a second broker on a data dir in use names the
process that holds it.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import threading

import pytest

from conftest import gregor_bin

TIMEOUT = 30


def start_failing(*args: str, cwd=None) -> str:
    """Runs `gregor serve ARGS`, which must exit 1 on its own; returns stderr."""
    binary = gregor_bin()
    if not binary.exists():
        pytest.fail(f"gregor binary not found at {binary}: run `cargo build -p gregor`", pytrace=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREGOR_")}
    env.update(RUST_BACKTRACE="1", RUST_LIB_BACKTRACE="1", GREGOR_LOG="info", NO_COLOR="1")
    r = subprocess.run(
        [str(binary), "serve", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        cwd=cwd,
    )
    assert r.returncode == 1, f"exit code {r.returncode}, expected 1\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert r.stdout == "", f"stdout:\n{r.stdout}"
    return r.stderr


def assert_one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and stderr.endswith("\n"), f"expected one line on stderr, got:\n{stderr}"
    line = lines[0]
    assert line.startswith("error: "), line
    for dump in ("backtrace", "Caused by", "Error {", "Os {", "panicked"):
        assert dump not in line, f"{dump!r} in {line!r}"
    return line


def test_second_broker_on_a_data_dir_in_use(make_broker, tmp_path):
    if os.environ.get("COMPAT_EXTERNAL_BOOTSTRAP"):
        pytest.skip("needs a broker process started by the suite")
    first = make_broker()
    stderr = start_failing("--listen", "127.0.0.1:0", "--data-dir", str(first.data_dir))
    line = assert_one_error_line(stderr)
    assert line == f"error: data dir {first.data_dir} is in use by another gregor process (pid {first.pid})"
    assert first.alive(), f"the first broker died\nlog:\n{first.log}"

    # The lock goes with the process, also when it is killed.
    first.kill9()
    first.start()
    first.restart()  # SIGTERM, exit 0, and the dir is free again


def test_default_data_dir_is_named_as_the_user_knows_it(tmp_path):
    """With no --data-dir, the message names ./gregor-data (in the cwd)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREGOR_")}
    env.update(GREGOR_LOG="info", NO_COLOR="1")
    holder = subprocess.Popen(
        [str(gregor_bin()), "serve", "--listen", "127.0.0.1:0"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        ready = queue.Queue()
        threading.Thread(target=lambda: ready.put(holder.stderr.readline()), daemon=True).start()
        first_line = ready.get(timeout=TIMEOUT)  # the broker logs nothing before it listens
        assert "listening" in first_line, f"holder did not start: {first_line!r}"
        stderr = start_failing("--listen", "127.0.0.1:0", cwd=tmp_path)
        assert assert_one_error_line(stderr) == (
            f"error: data dir ./gregor-data is in use by another gregor process (pid {holder.pid})"
        )
    finally:
        holder.terminate()
        assert holder.wait(TIMEOUT) == 0


def test_unparsable_listen_address():
    line = assert_one_error_line(start_failing("--ephemeral", "--listen", "not-an-address"))
    assert "--listen" in line and "not-an-address" in line, line


def test_unreadable_config_file(tmp_path):
    missing = tmp_path / "nope.toml"
    line = assert_one_error_line(start_failing("--ephemeral", "--config", str(missing)))
    assert line == f"error: reading {missing}: No such file or directory (os error 2)"


def test_listen_address_in_use(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        line = assert_one_error_line(
            start_failing("--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "d"))
        )
    # the errno differs by OS (98 on Linux)
    assert line.startswith(f"error: binding 127.0.0.1:{port}: Address already in use (os error "), line
