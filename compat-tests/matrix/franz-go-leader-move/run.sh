#!/usr/bin/env bash
# run.sh BOOTSTRAP TOPIC_PREFIX: runs the franz-go leader-move scenario (main.go's header).
# GREGOR_ADMIN_URL=http://host:port (Gregor's --admin-listen) turns the faults on: leader
# moves, a broker down and up, connections cut after Produce, against
# `gregor serve --virtual-brokers 3 --admin-listen ...`. Unset (as in
# test_matrix.py, against a plain broker or the reference Kafka) it only
# produces and consumes, checking the same per-key order, and still ends with
# `RESULT franz-go-leader-move <version> ok`.
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: run.sh BOOTSTRAP TOPIC_PREFIX   (env GREGOR_ADMIN_URL: the admin API)" >&2
    exit 2
fi
dir="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x "$dir/scenario" ]; then
    "$dir/setup.sh"
fi
exec "$dir/scenario" "$1" "$2"
