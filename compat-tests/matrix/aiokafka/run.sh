#!/usr/bin/env bash
# run.sh BOOTSTRAP TOPIC_PREFIX: the client-matrix scenario with aiokafka (see ../README.md).
set -euo pipefail
if [[ $# -ne 2 ]]; then
  echo "usage: $0 BOOTSTRAP TOPIC_PREFIX" >&2
  exit 2
fi
cd "$(dirname "$0")"
if [[ ! -x .venv/bin/python ]]; then
  ./setup.sh >&2
fi
exec .venv/bin/python -u scenario.py "$1" "$2"
