#!/usr/bin/env bash
# Installs the aiokafka scenario's pinned dependencies (requirements.txt:
# aiokafka 0.14.0, cramjam for snappy/lz4/zstd) from PyPI into ./.venv, with
# the python3 on PATH (3.9+). Idempotent: quick when the venv already holds
# exactly these pins for this Python.
set -euo pipefail
cd "$(dirname "$0")"
command -v python3 >/dev/null || { echo "setup.sh: python3 is not installed" >&2; exit 1; }
stamp=.venv/.gregor-setup-stamp
want="$(sha256sum requirements.txt | cut -d' ' -f1) $(python3 -c 'import sys; print(sys.version.split()[0])')"
smoke() {
  .venv/bin/python -c "import aiokafka, cramjam
from aiokafka.codec import has_snappy, has_lz4, has_zstd
assert has_snappy() and has_lz4() and has_zstd(), 'a codec is missing'"
}
if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]] && smoke 2>/dev/null; then
  echo "aiokafka: dependencies already installed"
  exit 0
fi
rm -rf .venv
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-input -r requirements.txt
smoke
echo "$want" > "$stamp"
echo "aiokafka: dependencies installed ($(.venv/bin/python -c 'import aiokafka; print(aiokafka.__version__)'))"
