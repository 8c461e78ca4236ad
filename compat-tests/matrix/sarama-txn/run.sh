#!/usr/bin/env bash
# run.sh BOOTSTRAP TOPIC_PREFIX: runs the sarama transactions scenario (see ../README.md).
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: run.sh BOOTSTRAP TOPIC_PREFIX" >&2
    exit 2
fi
dir="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x "$dir/scenario" ]; then
    "$dir/setup.sh"
fi
exec "$dir/scenario" "$1" "$2"
