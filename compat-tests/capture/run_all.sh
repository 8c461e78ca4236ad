#!/usr/bin/env bash
# Capture request frames from real clients through capture.py, one fresh
# gregor per client. Usage:
#   compat-tests/capture/run_all.sh [OUTDIR] [CLIENT...]
# CLIENT is any of: kcat confluent-kafka kafka-python java (default: all).
# Frames land in OUTDIR (default: target/capture) as <client>-<Api>-v<N>-<n>.bin,
# with each client's output and broker log beside them in OUTDIR/logs/.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-$ROOT/target/capture}
shift || true
CLIENTS=("$@")
[ ${#CLIENTS[@]} -eq 0 ] && CLIENTS=(kcat confluent-kafka kafka-python java)
mkdir -p "$OUT/logs"

(cd "$ROOT" && cargo build -q -p gregor) || exit 1
# A private copy: others may rebuild target/debug/gregor while we run.
BIN=$(mktemp -d)/gregor
cp "$ROOT/target/debug/gregor" "$BIN"

client_cmd() {
  case $1 in
    kcat) echo "$HERE/clients/kcat.sh" ;;
    confluent-kafka) echo "python3 $HERE/clients/confluent_kafka_scenario.py" ;;
    kafka-python) echo "python3 $HERE/clients/kafka_python_scenario.py" ;;
    java) echo "$ROOT/compat-tests/java/run.sh" ;;
    *) echo "unknown client $1" >&2; return 1 ;;
  esac
}

status=0
for c in "${CLIENTS[@]}"; do
  cmd=$(client_cmd "$c") || exit 2
  pf=$(mktemp -u)
  python3 "$HERE/capture.py" --gregor "$BIN" --outdir "$OUT" --client "$c" \
    --broker-log "$OUT/logs/$c-broker.log" --port-file "$pf" \
    >"$OUT/logs/$c-proxy.log" 2>&1 &
  proxy=$!
  for _ in $(seq 100); do [ -s "$pf" ] && break; sleep 0.1; done
  if [ ! -s "$pf" ]; then echo "$c: proxy did not start" >&2; kill $proxy; exit 1; fi
  B=127.0.0.1:$(cat "$pf")
  echo "== $c via $B"
  if timeout 300 $cmd "$B" >"$OUT/logs/$c-client.log" 2>&1; then
    echo "$c: scenario OK"
  else
    echo "$c: scenario FAILED (rc=$?), see $OUT/logs/$c-client.log"; status=1
  fi
  kill -TERM $proxy; wait $proxy
  grep "capture:" "$OUT/logs/$c-proxy.log"
done
exit $status
