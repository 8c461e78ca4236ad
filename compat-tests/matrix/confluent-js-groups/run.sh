#!/usr/bin/env bash
# run.sh BOOTSTRAP TOPIC_PREFIX: the @confluentinc/kafka-javascript
# consumer-group scenario (scenario.js; each member is a member.js process).
set -euo pipefail
if [[ $# -ne 2 ]]; then
  echo "usage: $0 BOOTSTRAP TOPIC_PREFIX" >&2
  exit 2
fi
cd "$(dirname "$0")"
exec node scenario.js "$1" "$2"
