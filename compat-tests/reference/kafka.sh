#!/usr/bin/env bash
# Reference Apache Kafka (pinned in pom.xml beside this file) for differential
# tests and side-by-side benchmarks. Fetched from Maven Central into a cache
# OUTSIDE the repo; run as a single-node KRaft broker+controller on free ports
# of 127.0.0.1.
#
#   kafka.sh fetch                 mvn copy-dependencies into the cache (no-op when present)
#   kafka.sh start [DIR]           fetch if needed, format DIR/data, start in background;
#                                  prints BOOTSTRAP=127.0.0.1:PORT, PID=..., DIR=... (also in DIR/env)
#   kafka.sh stop DIR              SIGTERM, wait, SIGKILL after GREGOR_REFERENCE_STOP_TIMEOUT
#   kafka.sh perf-producer ARGS... org.apache.kafka.tools.ProducerPerformance
#   kafka.sh perf-consumer ARGS... org.apache.kafka.tools.ConsumerPerformance
#   kafka.sh run CLASS ARGS...     any main class on the reference classpath
#   kafka.sh classpath             prints the classpath ('.../libs/*')
#
# Environment:
#   GREGOR_REFERENCE_CACHE         cache dir (default ~/.cache/gregor-reference)
#   GREGOR_REFERENCE_HEAP          broker heap, -Xms = -Xmx (default 512m)
#   GREGOR_REFERENCE_JAVA_OPTS     extra JVM options for the broker
#   GREGOR_REFERENCE_GROUP_DELAY_MS  group.initial.rebalance.delay.ms (default 0)
#   GREGOR_REFERENCE_EXTRA_PROPS   extra server.properties lines (newline-separated; override defaults)
#   GREGOR_REFERENCE_START_TIMEOUT seconds to wait for the broker to answer (default 90)
#   GREGOR_REFERENCE_STOP_TIMEOUT  seconds between SIGTERM and SIGKILL (default 30)
#   GREGOR_REFERENCE_LOG_LEVEL     broker log level in DIR/logs/server.log (default INFO)
#   GREGOR_REFERENCE_TOOLS_HEAP    heap for perf-* / run (default 512m)
#   GREGOR_REFERENCE_MVN_ARGS      extra mvn arguments for fetch (e.g. -o, -Dmaven.repo.local=...)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM=$HERE/pom.xml
VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -1)
CACHE=${GREGOR_REFERENCE_CACHE:-$HOME/.cache/gregor-reference}
HOME_DIR=$CACHE/kafka-$VERSION
LIBS=$HOME_DIR/libs
STAMP=$HOME_DIR/.complete

log() { echo "kafka.sh: $*" >&2; }
die() { log "$*"; exit 1; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

fetched() { [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(pom_hash)" ]; }

cmd_fetch() {
  fetched && return 0
  command -v mvn >/dev/null 2>&1 || die "mvn not found (apt-get install -y maven)"
  mkdir -p "$CACHE"
  # One fetch at a time per cache (parallel test runs share it).
  exec 9>"$CACHE/.lock"
  flock 9
  if fetched; then exec 9>&-; return 0; fi
  local t0 tmp; t0=$(now)
  log "fetching Apache Kafka $VERSION with Maven into $HOME_DIR"
  mkdir -p "$HOME_DIR"
  tmp=$(mktemp -d "$HOME_DIR/libs.tmp.XXXXXX")
  # shellcheck disable=SC2086
  if ! mvn -q -B -f "$POM" ${GREGOR_REFERENCE_MVN_ARGS:-} \
      org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
      -DoutputDirectory="$tmp" -DincludeScope=runtime >"$HOME_DIR/fetch.log" 2>&1; then
    tail -30 "$HOME_DIR/fetch.log" >&2
    rm -rf "$tmp"
    die "mvn failed (full log: $HOME_DIR/fetch.log)"
  fi
  [ -f "$tmp/kafka_2.13-$VERSION.jar" ] && [ -f "$tmp/kafka-tools-$VERSION.jar" ] \
    || die "mvn succeeded but kafka_2.13/kafka-tools $VERSION jars are missing in $tmp"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  cat >"$HOME_DIR/log4j2-tools.properties" <<'EOF'
status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
EOF
  pom_hash >"$STAMP"
  log "fetched $(ls "$LIBS" | wc -l) jars ($(du -sh "$LIBS" | cut -f1)) in $(secs "$t0" "$(now)") s"
  exec 9>&-  # unlock; the broker started next must not inherit the lock
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cluster_id() {
  # What kafka-storage.sh random-uuid prints (a base64url Uuid, not starting
  # with '-'), without paying for a JVM launch.
  python3 -c 'import base64, os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break'
}

java_broker_opts() {
  local heap=${GREGOR_REFERENCE_HEAP:-512m}
  # What kafka-server-start.sh / kafka-run-class.sh pass, with a CI-sized heap.
  echo "-Xms$heap -Xmx$heap -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
-XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
-XX:MaxInlineLevel=15 -Djava.awt.headless=true ${GREGOR_REFERENCE_JAVA_OPTS:-}"
}

write_config() {
  local dir=$1 port=$2 cport=$3
  cat >"$dir/server.properties" <<EOF
# Written by compat-tests/reference/kafka.sh: single-node KRaft, broker+controller.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.bootstrap.servers=127.0.0.1:$cport
log.dirs=$dir/data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=${GREGOR_REFERENCE_GROUP_DELAY_MS:-0}
num.network.threads=2
num.io.threads=4
EOF
  if [ -n "${GREGOR_REFERENCE_EXTRA_PROPS:-}" ]; then
    printf '\n# GREGOR_REFERENCE_EXTRA_PROPS (later lines win)\n%s\n' "$GREGOR_REFERENCE_EXTRA_PROPS" >>"$dir/server.properties"
  fi
  cat >"$dir/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $dir/logs/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ${GREGOR_REFERENCE_LOG_LEVEL:-INFO}
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

is_broker_pid() {
  # Alive (not a zombie) and really our java kafka.Kafka (guards against PID reuse).
  local pid=$1 state
  [ -r "/proc/$pid/status" ] || return 1
  state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || return 1
  [ "$state" != "Z" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka'
}

cmd_start() {
  local dir=${1:-}
  command -v java >/dev/null 2>&1 || die "java not found (Java 17+ needed)"
  cmd_fetch
  if [ -z "$dir" ]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/gregor-reference.XXXXXX")
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/pid" ] && is_broker_pid "$(cat "$dir/pid")"; then
    die "a reference broker already runs from $dir (PID $(cat "$dir/pid")); kafka.sh stop $dir"
  fi
  local attempt t0 t1 t2 port cport cluster pid took
  for attempt in 1 2 3; do
    t0=$(now)
    rm -rf "$dir/data" "$dir/logs" "$dir/env" "$dir/pid"
    mkdir -p "$dir/logs"
    port=$(free_port)
    cport=$(free_port)
    while [ "$cport" = "$port" ]; do cport=$(free_port); done
    write_config "$dir" "$port" "$cport"
    cluster=$(cluster_id)
    java -Xmx256m -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$LIBS/*" \
      kafka.tools.StorageTool format --standalone -t "$cluster" -c "$dir/server.properties" \
      >"$dir/logs/format.log" 2>&1 || { cat "$dir/logs/format.log" >&2; die "storage format failed"; }
    t1=$(now)
    # shellcheck disable=SC2046
    java $(java_broker_opts) -Dkafka.logs.dir="$dir/logs" \
      -Dlog4j2.configurationFile="$dir/log4j2.properties" \
      -cp "$LIBS/*" kafka.Kafka "$dir/server.properties" \
      </dev/null >"$dir/logs/stdout.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/pid"
    if took=$(python3 "$HERE/reference.py" wait "127.0.0.1:$port" "${GREGOR_REFERENCE_START_TIMEOUT:-90}" "$pid"); then
      t2=$(now)
      {
        echo "BOOTSTRAP=127.0.0.1:$port"
        echo "PID=$pid"
        echo "DIR=$dir"
        echo "CONTROLLER=127.0.0.1:$cport"
        echo "VERSION=$VERSION"
      } >"$dir/env"
      log "Kafka $VERSION answers on 127.0.0.1:$port (format $(secs "$t0" "$t1") s, start $(secs "$t1" "$t2") s; logs in $dir/logs)"
      head -3 "$dir/env"
      return 0
    fi
    if is_broker_pid "$pid"; then
      { kill -KILL "$pid"; wait "$pid"; } 2>/dev/null || true
      rm -f "$dir/pid"
      tail -30 "$dir/logs/server.log" "$dir/logs/stdout.log" >&2 2>/dev/null || true
      die "broker did not answer within ${GREGOR_REFERENCE_START_TIMEOUT:-90}s"
    fi
    if grep -qs 'Address already in use' "$dir/logs/server.log" "$dir/logs/stdout.log"; then
      log "port race (attempt $attempt), retrying with new ports"
      continue
    fi
    tail -30 "$dir/logs/server.log" "$dir/logs/stdout.log" >&2 2>/dev/null || true
    die "broker exited during startup (logs in $dir/logs)"
  done
  die "could not bind free ports after 3 attempts"
}

cmd_stop() {
  local dir=${1:?usage: kafka.sh stop DIR}
  local pid timeout=${GREGOR_REFERENCE_STOP_TIMEOUT:-30} i
  if [ ! -f "$dir/pid" ]; then log "no $dir/pid: nothing running there"; return 0; fi
  pid=$(cat "$dir/pid")
  if ! is_broker_pid "$pid"; then
    log "broker $pid is not running"
    rm -f "$dir/pid"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    is_broker_pid "$pid" || { rm -f "$dir/pid"; log "stopped $pid"; return 0; }
    sleep 0.1
  done
  log "broker $pid still running ${timeout}s after SIGTERM: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    is_broker_pid "$pid" || break
    sleep 0.1
  done
  rm -f "$dir/pid"
}

run_tool() {
  local class=$1; shift
  cmd_fetch
  local heap=${GREGOR_REFERENCE_TOOLS_HEAP:-512m}
  # shellcheck disable=SC2086
  exec java -Xmx"$heap" -Djava.awt.headless=true ${GREGOR_REFERENCE_TOOLS_JAVA_OPTS:-} \
    -Dlog4j2.configurationFile="$HOME_DIR/log4j2-tools.properties" \
    -cp "$LIBS/*" "$class" "$@"
}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

sub=${1:-}
[ $# -gt 0 ] && shift
case "$sub" in
  fetch) cmd_fetch; log "Kafka $VERSION in $LIBS" ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  perf-producer) run_tool org.apache.kafka.tools.ProducerPerformance "$@" ;;
  perf-consumer) run_tool org.apache.kafka.tools.ConsumerPerformance "$@" ;;
  run) [ $# -ge 1 ] || usage; run_tool "$@" ;;
  classpath) cmd_fetch; echo "$LIBS/*" ;;
  *) usage ;;
esac
