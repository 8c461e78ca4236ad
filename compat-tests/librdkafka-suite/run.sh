#!/usr/bin/env bash
# librdkafka's whole regression suite against one Gregor, for long runs
# (CI runs a short form: compat-tests/python/test_librdkafka_suite.py).
#
#   compat-tests/librdkafka-suite/run.sh            every test, quick mode (-Q), 2 at a time
#   compat-tests/librdkafka-suite/run.sh 0030 0081  these tests only (TESTS=...)
#
# Gregor ($GREGOR_BIN, default target/release/gregor) runs as the suite's
# default scenario expects: 3 brokers, num.partitions=4, replication
# factor 3, --dev. Tests that call Kafka's kafka-topics.sh get the
# reference Kafka's TopicCommand (compat-tests/reference) when it is fetched.
# Extra test-runner flags: RUNNER_ARGS (default "-Q -E -p2"). The output goes
# to target/librdkafka-suite/run-<time>.log; a summary is printed.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

tests_dir=$(bash compat-tests/librdkafka-suite/build.sh | tail -1)
bin=${GREGOR_BIN:-$root/target/release/gregor}
[ -x "$bin" ] || { echo "run.sh: no gregor binary at $bin (cargo build --release)" >&2; exit 1; }

work=$(mktemp -d /tmp/gregor-lrk-XXXXXX)
gregor_pid=
cleanup() {
  [ -n "$gregor_pid" ] && kill "$gregor_pid" 2>/dev/null && wait "$gregor_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" serve --listen 127.0.0.1:0 --data-dir "$work/data" --dev --virtual-brokers 3 \
  -o num.partitions=4 -o default.replication.factor=3 >"$work/gregor.log" 2>&1 &
gregor_pid=$!
for _ in $(seq 100); do
  grep -q "brokers=" "$work/gregor.log" && break
  sleep 0.1
done
brokers=$(sed -n 's/.*brokers=\([^ ]*\).*/\1/p' "$work/gregor.log" | head -1 | sed 's/[0-9]*@//g')
[ -n "$brokers" ] || { echo "run.sh: gregor did not start:" >&2; cat "$work/gregor.log" >&2; exit 1; }
echo "metadata.broker.list=$brokers" >"$work/test.conf"

# kafka-topics.sh for the tests that shell out to Kafka's tools.
mkdir -p "$work/kafka/bin"
cat >"$work/kafka/bin/kafka-topics.sh" <<EOF
#!/usr/bin/env bash
exec bash "$root/compat-tests/reference/kafka.sh" run org.apache.kafka.tools.TopicCommand "\$@"
EOF
chmod +x "$work/kafka/bin/kafka-topics.sh"

log=$root/target/librdkafka-suite/run-$(date +%Y%m%d-%H%M%S).log
echo "run.sh: gregor $brokers, log $log"
set +e
(
  cd "$tests_dir"
  export TEST_KAFKA_VERSION=4.0.0 RDKAFKA_TEST_CONF="$work/test.conf"
  export KAFKA_PATH="$work/kafka" BROKERS="${brokers%%,*}"
  export LD_LIBRARY_PATH="$tests_dir/../src:$tests_dir/../src-cpp"
  if [ $# -gt 0 ]; then export TESTS="$*"; fi
  # shellcheck disable=SC2086
  ./test-runner ${RUNNER_ARGS:--Q -E -p2}
) >"$log" 2>&1
rc=$?
set -e
sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -a '^| [0-9<]' || true
echo "run.sh: test-runner exited $rc; passed $(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -a -c '^| [0-9].*PASSED'), failed $(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -a -c '^| [0-9].*FAILED'), skipped $(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -a -c '^| [0-9].*SKIPPED')"
exit $rc
