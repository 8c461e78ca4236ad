"""The fault / virtual-cluster admin API of gregor (issue 11) from Python.

`VirtualCluster(broker)` reads the `brokers=` and `admin=` fields of a
Broker's ready line (conftest.Broker.log) and talks to the HTTP admin API
with urllib (JSON in, JSON out). `fault_cli(admin, *args)` runs the
`gregor fault ...` subcommand of the same binary.

Start the broker with `--virtual-brokers 3 --admin-listen 127.0.0.1:0 --dev`
(`CLUSTER_ARGS` below).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request

from conftest import gregor_bin

CLUSTER_ARGS = ("--virtual-brokers", "3", "--admin-listen", "127.0.0.1:0", "--dev")

_BROKERS_RE = re.compile(r"\bbrokers=(\S+)")
_ADMIN_RE = re.compile(r"\badmin=(\S+)")
_READY_RE = re.compile(r"listening.*addr=")


class AdminError(AssertionError):
    """A non-2xx answer of the admin API (status, body)."""

    def __init__(self, method: str, path: str, status: int, body: str):
        super().__init__(f"{method} {path} -> HTTP {status}: {body}")
        self.status = status
        self.body = body


def ready_fields(log: str) -> tuple[dict[int, str], str | None]:
    """From the last ready line in `log`: {broker id: host:port} and the
    admin address (None without --admin-listen)."""
    lines = [ln for ln in log.splitlines() if _READY_RE.search(ln)]
    assert lines, f"no ready line in the broker log:\n{log[-3000:]}"
    line = lines[-1]
    m = _BROKERS_RE.search(line)
    assert m, f"ready line has no brokers= field: {line}"
    brokers: dict[int, str] = {}
    for item in m.group(1).split(","):
        bid, _, addr = item.partition("@")
        assert addr, f"cannot parse brokers= item {item!r} in {line}"
        brokers[int(bid)] = addr
    a = _ADMIN_RE.search(line)
    return brokers, (a.group(1) if a else None)


class VirtualCluster:
    def __init__(self, broker, timeout: float = 10.0):
        self.broker = broker
        self.brokers, admin = ready_fields(broker.log)
        assert admin, f"ready line has no admin= field (started without --admin-listen?):\n{broker.log[-2000:]}"
        self.admin = admin
        self.timeout = timeout

    # -- addresses ------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        """Every virtual broker, comma-separated."""
        return ",".join(self.brokers[b] for b in sorted(self.brokers))

    def port(self, broker_id: int) -> int:
        return int(self.brokers[broker_id].rpartition(":")[2])

    # -- HTTP -----------------------------------------------------------
    def request(self, method: str, path: str, body=None, *, expect_json: bool = True):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://{self.admin}{path}", data=data, method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            raise AdminError(method, path, e.code, e.read().decode("utf-8", "replace")) from None
        if not expect_json:
            return raw
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise AssertionError(f"{method} {path}: answer is not JSON: {raw[:500]!r}") from None

    def get(self, path: str, **kw):
        return self.request("GET", path, **kw)

    def post(self, path: str, body=None):
        return self.request("POST", path, {} if body is None else body)

    def delete(self, path: str):
        return self.request("DELETE", path)

    # -- shortcuts ------------------------------------------------------
    def push_errors(self, api, errors, **filters) -> int:
        body = {"api": api, "errors": list(errors), **filters}
        ans = self.post("/faults/errors", body)
        assert isinstance(ans, dict) and "id" in ans, f"POST /faults/errors {body} -> {ans!r}"
        return ans["id"]

    def faults(self):
        return self.get("/faults")

    def cluster(self) -> dict:
        return self.get("/cluster")

    def topics(self) -> list:
        return self.get("/topics")

    def topic(self, name: str) -> dict:
        for t in self.topics():
            if t["name"] == name:
                return t
        raise AssertionError(f"topic {name} not in GET /topics")

    def leaders(self, name: str) -> dict[int, tuple[int, int]]:
        """partition -> (leader, leader_epoch) from GET /topics."""
        return {p["partition"]: (p["leader"], p["leader_epoch"]) for p in self.topic(name)["partitions"]}

    def groups(self) -> list:
        return self.get("/groups")

    def group(self, group_id: str) -> dict | None:
        return next((g for g in self.groups() if g["group_id"] == group_id), None)


def fault_entries(listing) -> list[dict]:
    """GET /faults as a flat list of rule objects, whatever the container
    (a list, or an object of lists keyed by kind)."""
    if isinstance(listing, list):
        return [f for f in listing if isinstance(f, dict)]
    if isinstance(listing, dict):
        out = []
        for v in listing.values():
            if isinstance(v, list):
                out += [f for f in v if isinstance(f, dict)]
            elif isinstance(v, dict):
                out.append(v)
        return out
    raise AssertionError(f"GET /faults is neither a list nor an object: {listing!r}")


def rule_left(listing, rule_id: int) -> int:
    """How many uses a rule still has: 0 when it is gone from GET /faults
    (or listed with nothing left)."""
    for f in fault_entries(listing):
        if f.get("id") == rule_id:
            for k in ("count", "remaining", "left", "errors"):
                if k in f:
                    v = f[k]
                    return len(v) if isinstance(v, list) else int(v)
            return 1  # listed, no count: still active
    return 0


def fault_cli(admin: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Runs `gregor fault --admin ADMIN ARGS...` and asserts exit code 0."""
    cmd = [str(gregor_bin()), "fault", "--admin", admin, *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, (
        f"{' '.join(cmd)} exited with {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    )
    return p


def wait_for(pred, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)
