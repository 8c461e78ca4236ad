"""README's Quickstart examples, as written there, against a real broker.

The code blocks are read out of README.md (only the address is changed to
the test broker's), so an edit that breaks an example fails here. kcat runs
first, then the Python script twice: a newcomer runs it again, and it must
print b'hello' each time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
README_ADDR = "127.0.0.1:9092"
TIMEOUT = 90


def quickstart_blocks() -> list[tuple[str, str]]:
    """(language, code) of every fenced block in the Quickstart section."""
    text = README.read_text()
    m = re.search(r"^## Quickstart\n(.*?)^## ", text, re.S | re.M)
    assert m, "README.md has no '## Quickstart' section"
    return re.findall(r"^```(\w*)\n(.*?)^```", m.group(1), re.S | re.M)


def block(lang: str, must_contain: str) -> str:
    found = [code for l, code in quickstart_blocks() if l == lang and must_contain in code]
    assert len(found) == 1, f"expected one ```{lang} block with {must_contain!r} in the Quickstart, found {len(found)}"
    assert README_ADDR in found[0], f"the example no longer uses {README_ADDR}"
    return found[0]


def run(cmd: list[str], cwd) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd)
    assert r.returncode == 0, (
        f"{cmd[:2]} exited with {r.returncode}\nstdout:\n{r.stdout[-4000:]}\nstderr:\n{r.stderr[-4000:]}"
    )
    return r


def test_quickstart_kcat_then_python_twice(broker, tmp_path):
    if shutil.which("kcat") is None:
        pytest.fail("kcat not installed: apt-get install -y kcat", pytrace=False)
    kcat_sh = block("sh", "kcat ").replace(README_ADDR, broker.bootstrap)
    out = run(["bash", "-euo", "pipefail", "-c", kcat_sh], tmp_path).stdout
    assert "k=k1 v=v1" in out and "k=k2 v=v2" in out, f"kcat example printed:\n{out}"

    script = tmp_path / "quickstart.py"
    script.write_text(block("python", "Consumer").replace(README_ADDR, broker.bootstrap))
    for attempt in (1, 2):
        r = run([sys.executable, str(script)], tmp_path)
        assert r.stdout == "b'hello'\n", f"run {attempt} printed {r.stdout!r}\nstderr:\n{r.stderr[-4000:]}"
