#!/usr/bin/env bash
# run.sh BOOTSTRAP TOPIC_PREFIX: the kafkajs transactions scenario (see scenario.js).
set -euo pipefail
if [[ $# -ne 2 ]]; then
  echo "usage: $0 BOOTSTRAP TOPIC_PREFIX" >&2
  exit 2
fi
cd "$(dirname "$0")"
exec node scenario.js "$1" "$2"
