#!/usr/bin/env bash
# Gregor beside Apache Kafka 4.3.1 and librdkafka's mock cluster: the same
# clients, the same machine, one run. Prints a markdown table (and writes it
# to $WORK/report.md). See docs/BENCHMARKS.md, "Gregor beside Apache Kafka and
# the mock".
#
#   bench/side-by-side/run.sh            full run (REPEAT=1: about 3 min of measuring;
#                                        REPEAT=3: about 5 min; plus builds on the first run)
#   QUICK=1 bench/side-by-side/run.sh    counts / 10, 1 start each (smoke test)
#
# What it does:
#   1. builds Gregor (cargo build --release -p gregor; copy to the cache so a
#      concurrent build cannot swap the binary), librdkafka's
#      rdkafka_performance from the sources vendored in the rdkafka-sys crate
#      (in ~/.cache/gregor-bench/librdkafka), and fetches Kafka 4.3.1
#      (compat-tests/reference/kafka.sh fetch);
#   2. waits until the 1-minute load average is below QUIET_LOAD;
#   3. for each target (Gregor durable, Kafka, mock): starts it, measures idle
#      RSS, runs the load (rdkafka_performance; then Kafka's
#      ProducerPerformance / ConsumerPerformance / EndToEndLatency, not for the
#      mock), samples the broker's VmRSS every 0.2 s, stops it;
#   4. start-up: spawns Gregor / Kafka on an empty (freshly formatted) data
#      dir and times spawn -> first successful produce (startup_probe.py);
#   5. prints the table (report.py).
#
# Environment (defaults in brackets):
#   GREGOR_BIN      use this gregor binary instead of building one
#   SMALL_N [500000] LARGE_N [100000]   messages of 100 B / 1 KiB per produce row
#   LAT_N [3000] LAT_RATE [1000]        fixed-rate latency rows (msgs, msgs/s)
#   WARM_N [100000] warm-up before the load (WARM_N x 100 B, WARM_N/5 x 1 KiB; not measured)
#   E2E_N [1000]    EndToEndLatency messages
#   REPEAT [1]      repeats of every load row (medians reported)
#   STARTS [3]      cold starts per broker for the start-up row
#   QUIET_LOAD [0.7] QUIET_MAX [900]    wait for load1 < QUIET_LOAD (0: don't wait), at most QUIET_MAX s
#   TARGETS ["gregor kafka mock"]; add kafka-fsync for Kafka with log.flush.interval.messages=1
#   WORK            work dir for data dirs, logs and results [/tmp/gregor-sbs.PID]; removed
#                   at the end unless KEEP=1 (report.md and results.txt are kept in the cache)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
KAFKA_SH=$REPO/compat-tests/reference/kafka.sh
CACHE=${GREGOR_BENCH_CACHE:-$HOME/.cache/gregor-bench}
WORK=${WORK:-/tmp/gregor-sbs.$$}
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then D=10; else D=1; fi
SMALL_N=$(( ${SMALL_N:-500000} / D ))
LARGE_N=$(( ${LARGE_N:-100000} / D ))
LAT_N=$(( ${LAT_N:-3000} / D ))
LAT_RATE=${LAT_RATE:-1000}
WARM_N=$(( ${WARM_N:-100000} / D ))
E2E_N=$(( ${E2E_N:-1000} / D ))
REPEAT=${REPEAT:-1}
STARTS=${STARTS:-3}
if [ "$QUICK" = 1 ]; then STARTS=1; fi
QUIET_LOAD=${QUIET_LOAD:-0.7}
QUIET_MAX=${QUIET_MAX:-900}
TARGETS=${TARGETS:-gregor kafka mock}
RESULTS=$WORK/results.txt
RP=$CACHE/librdkafka/examples/rdkafka_performance

log() { echo "[sbs $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now_ms() { date +%s%3N; }
load1() { cut -d' ' -f1 /proc/loadavg; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# result TARGET CLIENT ROW METRIC VALUE
result() { printf '%s|%s|%s|%s|%s\n' "$@" >>"$RESULTS"; }
rss_mib() { awk -v k="$2:" '$1 == k { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo nan; }

mkdir -p "$CACHE" "$WORK"
: >"$RESULTS"
PIDS_TO_STOP=()
cleanup() {
  local p
  for p in "${PIDS_TO_STOP[@]:-}"; do
    [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true
  done
  [ -n "${KDIR:-}" ] && [ -f "$KDIR/pid" ] && "$KAFKA_SH" stop "$KDIR" >/dev/null 2>&1 || true
  [ -n "${KFDIR:-}" ] && [ -f "$KFDIR/pid" ] && "$KAFKA_SH" stop "$KFDIR" >/dev/null 2>&1 || true
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- 1. build
T_RUN0=$(date +%s)
if [ -z "${GREGOR_BIN:-}" ]; then
  log "cargo build --release -p gregor"
  (cd "$REPO" && cargo build --release -q -p gregor)
  cp "$REPO/target/release/gregor" "$CACHE/gregor-sbs"
  GREGOR_BIN=$CACHE/gregor-sbs
fi
[ -x "$GREGOR_BIN" ] || die "no gregor binary at $GREGOR_BIN"

build_rdkafka_performance() {
  local src
  src=$(ls -d "$HOME"/.cargo/registry/src/*/rdkafka-sys-*/librdkafka 2>/dev/null | sort -V | tail -1)
  [ -n "$src" ] || die "librdkafka sources not found under ~/.cargo/registry/src/*/rdkafka-sys-* (run cargo fetch in the repo)"
  log "building rdkafka_performance from $src (about 1.5 min)"
  rm -rf "$CACHE/librdkafka"
  cp -r "$src" "$CACHE/librdkafka"
  (
    cd "$CACHE/librdkafka"
    # (mklove treats ./configure.* files as modules: keep logs named otherwise)
    ./configure --no-download --disable-ssl --disable-gssapi --disable-zstd --disable-curl >build-configure.txt 2>&1
    make -j2 libs >build-make.txt 2>&1
    make -j2 -C examples rdkafka_performance >build-examples.txt 2>&1
  ) || die "librdkafka build failed (logs in $CACHE/librdkafka/build-*.txt)"
  echo "$src" >"$CACHE/librdkafka/.source"
}
[ -x "$RP" ] || build_rdkafka_performance
"$KAFKA_SH" fetch 2>/dev/null || "$KAFKA_SH" fetch
KLIBS=$("$KAFKA_SH" classpath)
python3 -c 'import confluent_kafka' 2>/dev/null || die "python3 confluent-kafka is needed for the start-up probe (pip install confluent-kafka)"
command -v java >/dev/null || die "java (17+) is needed"
RDK_VERSION=$({ "$RP" 2>&1 || true; } | sed -n 's/^librdkafka version \([^ ]*\).*/\1/p' | head -1)
log "gregor: $GREGOR_BIN; rdkafka_performance: librdkafka $RDK_VERSION; Kafka: $KLIBS"

# ---------------------------------------------------------------- 2. quiet
LOAD_BEFORE_WAIT=$(load1)
if [ "$QUIET_LOAD" != 0 ]; then
  t=$(date +%s)
  while awk -v l="$(load1)" -v q="$QUIET_LOAD" 'BEGIN { exit !(l >= q) }'; do
    if [ $(( $(date +%s) - t )) -ge "$QUIET_MAX" ]; then
      log "load still >= $QUIET_LOAD after ${QUIET_MAX}s: measuring anyway"; break
    fi
    log "waiting for load1 < $QUIET_LOAD"; sleep 15
  done
fi
LOAD_START=$(load1)
T_MEAS0=$(date +%s)

# ---------------------------------------------------------------- helpers
# RSS sampler: max VmRSS of PID every 0.2 s into FILE until killed.
start_sampler() {
  local pid=$1 file=$2
  ( max=0
    while [ -r "/proc/$pid/status" ]; do
      v=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
      [ -n "$v" ] && [ "$v" -gt "$max" ] && { max=$v; echo "$max" >"$file"; }
      sleep 0.2
    done ) &
  SAMPLER=$!
}

# rdkafka_performance producer throughput row
rk_produce() {  # target bootstrap rowname topic n size acks rep
  local tg=$1 b=$2 row=$3 topic=$4 n=$5 size=$6 acks=$7 rep=$8 out
  out=$("$RP" -P -t "$topic" -p 0 -b "$b" -s "$size" -c "$n" -a "$acks" \
    -X linger.ms=5 -X queue.buffering.max.messages=1000000 -X queue.buffering.max.kbytes=1048576 \
    -X message.timeout.ms=300000 2>&1) || { echo "$out" | tail -5 >&2; die "$tg $row: rdkafka_performance failed"; }
  local line; line=$(echo "$out" | grep 'messages produced' | tail -1)
  # "% N messages produced (B bytes), D delivered (offset O, F failed) in T ms: M msgs/s and X MB/s, ..."
  local delivered mbs
  delivered=$(echo "$line" | sed -n 's/.*), \([0-9]*\) delivered.*/\1/p')
  mbs=$(echo "$line" | sed -n 's/.* and \([0-9.]*\) MB\/s.*/\1/p')
  [ "$delivered" = "$n" ] || die "$tg $row: $delivered of $n delivered: $line"
  result "$tg" rdkafka "$row" MB/s "$mbs"
  log "$tg rdkafka $row rep $rep: $mbs MB/s (load $(load1))"
}

rk_consume() {  # target bootstrap row topic n rep
  local tg=$1 b=$2 row=$3 topic=$4 n=$5 rep=$6 out line cnt mbs
  # reads exactly N messages (-c), timed from the first to the last
  out=$(timeout 120 "$RP" -C -t "$topic" -p 0 -b "$b" -o beginning -c "$n" 2>&1) \
    || { echo "$out" | tail -5 >&2; die "$tg $row: consumer failed"; }
  line=$(echo "$out" | grep 'consumed in' | tail -1)
  cnt=$(echo "$line" | sed -n 's/^% \([0-9]*\) messages.*/\1/p')
  mbs=$(echo "$line" | sed -n 's/.*(\([0-9.]*\) MB\/s).*/\1/p')
  [ "$cnt" = "$n" ] || die "$tg $row: consumed $cnt of $n: $line"
  result "$tg" rdkafka "$row" MB/s "$mbs"
  result "$tg" rdkafka "$row" messages "$cnt"
  log "$tg rdkafka $row rep $rep: $mbs MB/s, $cnt msgs"
}

rk_latency() {  # target bootstrap row topic acks rep
  local tg=$1 b=$2 row=$3 topic=$4 acks=$5 rep=$6 f=$WORK/lat.$1.$5.$6.txt out
  out=$("$RP" -P -t "$topic" -p 0 -b "$b" -s 100 -c "$LAT_N" -r "$LAT_RATE" -a "$acks" -l -A "$f" \
    -X linger.ms=0 2>&1) || { echo "$out" | tail -5 >&2; die "$tg $row: latency run failed"; }
  # per-message produce() -> delivery report, in microseconds; drop the first
  # 100 (connection set-up, warm-up)
  local p; p=$(tail -n +101 "$f" | sort -n | awk '{ a[NR] = $1 } END {
      i50 = int(NR * 0.50); if (i50 < 1) i50 = 1; i99 = int(NR * 0.99); if (i99 < 1) i99 = 1;
      printf "%.3f %.3f", a[i50] / 1000, a[i99] / 1000 }')
  result "$tg" rdkafka "$row" p50_ms "${p% *}"
  result "$tg" rdkafka "$row" p99_ms "${p#* }"
  log "$tg rdkafka $row rep $rep: p50 ${p% *} ms, p99 ${p#* } ms"
}

j_produce() {  # target bootstrap row topic n size acks rep
  local tg=$1 b=$2 row=$3 topic=$4 n=$5 size=$6 acks=$7 rep=$8 out line rps
  out=$(timeout 300 "$KAFKA_SH" perf-producer --topic "$topic" --num-records "$n" --record-size "$size" \
    --throughput -1 --command-property bootstrap.servers="$b" acks="$acks" 2>&1) \
    || { echo "$out" | tail -5 >&2; die "$tg $row: ProducerPerformance failed"; }
  line=$(echo "$out" | grep 'records sent' | tail -1)
  [ "$(echo "$line" | awk '{ print $1 }')" = "$n" ] || die "$tg $row: $line"
  rps=$(echo "$line" | sed -n 's/.*sent, \([0-9.]*\) records\/sec.*/\1/p')
  result "$tg" java "$row" MB/s "$(awk -v r="$rps" -v s="$size" 'BEGIN { printf "%.2f", r * s / 1e6 }')"
  log "$tg java $row rep $rep: $line"
}

j_latency() {  # target bootstrap row topic acks rep: ProducerPerformance at a fixed rate
  local tg=$1 b=$2 row=$3 topic=$4 acks=$5 rep=$6 out line
  out=$(timeout 300 "$KAFKA_SH" perf-producer --topic "$topic" --num-records "$LAT_N" --record-size 100 \
    --throughput "$LAT_RATE" --command-property bootstrap.servers="$b" acks="$acks" linger.ms=0 2>&1) \
    || { echo "$out" | tail -5 >&2; die "$tg $row: ProducerPerformance failed"; }
  line=$(echo "$out" | grep 'records sent' | tail -1)
  result "$tg" java "$row" p50_ms "$(echo "$line" | sed -n 's/.* \([0-9]*\) ms 50th.*/\1/p')"
  result "$tg" java "$row" p99_ms "$(echo "$line" | sed -n 's/.* \([0-9]*\) ms 99th.*/\1/p')"
  log "$tg java $row rep $rep: $line"
}

j_consume() {  # target bootstrap row topic n size rep
  local tg=$1 b=$2 row=$3 topic=$4 n=$5 size=$6 rep=$7 out line
  out=$(timeout 300 "$KAFKA_SH" perf-consumer --bootstrap-server "$b" --topic "$topic" --num-records "$n" \
    --timeout 60000 2>&1) || { echo "$out" | tail -5 >&2; die "$tg $row: ConsumerPerformance failed"; }
  line=$(echo "$out" | grep -A1 '^start.time' | tail -1)
  # start.time, end.time, MB, MB.sec, nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
  local cnt fmsgs
  cnt=$(echo "$line" | awk -F', ' '{ print $5 }')
  fmsgs=$(echo "$line" | awk -F', ' '{ print $10 }')
  [ "$cnt" = "$n" ] || die "$tg $row: consumed $cnt of $n: $out"
  result "$tg" java "$row" MB/s "$(awk -v r="$fmsgs" -v s="$size" 'BEGIN { printf "%.2f", r * s / 1e6 }')"
  log "$tg java $row rep $rep: $line"
}

j_e2e() {  # target bootstrap row topic rep: EndToEndLatency (produce one, consume it, repeat)
  local tg=$1 b=$2 row=$3 topic=$4 rep=$5 out
  out=$(timeout 300 "$KAFKA_SH" run org.apache.kafka.tools.EndToEndLatency --bootstrap-server "$b" \
    --topic "$topic" --num-records "$E2E_N" --producer-acks all --record-size 100 2>&1) \
    || { echo "$out" | tail -5 >&2; die "$tg $row: EndToEndLatency failed"; }
  result "$tg" java "$row" avg_ms "$(echo "$out" | sed -n 's/^Avg latency: \([0-9.]*\) ms.*/\1/p')"
  result "$tg" java "$row" p50_ms "$(echo "$out" | sed -n 's/^Percentiles: 50th = \([0-9]*\),.*/\1/p')"
  result "$tg" java "$row" p99_ms "$(echo "$out" | sed -n 's/.* 99th = \([0-9]*\),.*/\1/p')"
  log "$tg java $row rep $rep: $(echo "$out" | grep -E '^(Avg|Percentiles)' | tr '\n' ' ')"
}

run_load() {  # target bootstrap pid
  local tg=$1 b=$2 pid=$3 rep s
  sleep 3
  result "$tg" - idle VmRSS_MiB "$(rss_mib "$pid" VmRSS)"
  result "$tg" - - load1_at_start "$(load1)"
  start_sampler "$pid" "$WORK/rss.$tg"
  # Warm-up, not measured (the JVM's JIT, page cache, first segments):
  # WARM_N x 100 B and WARM_N/5 x 1 KiB with acks=all.
  if [ "$tg" != mock ]; then python3 "$HERE/create_topics.py" "$b" warm-s warm-l; fi
  "$RP" -P -t warm-s -p 0 -b "$b" -s 100 -c "$WARM_N" -a -1 -X linger.ms=5 >/dev/null 2>&1 || die "$tg: warm-up failed"
  "$RP" -P -t warm-l -p 0 -b "$b" -s 1024 -c $((WARM_N / 5)) -a -1 -X linger.ms=5 >/dev/null 2>&1 || die "$tg: warm-up failed"
  for ((rep = 1; rep <= REPEAT; rep++)); do
    s=r$rep
    # Topics made before timing (CreateTopics, 1 partition), so that no row
    # pays for auto-creation and the client's metadata retry. The mock has no
    # CreateTopics; it auto-creates a topic, ready at once, on first Metadata.
    if [ "$tg" != mock ]; then
      python3 "$HERE/create_topics.py" "$b" rk-s1-$s rk-sa-$s rk-l1-$s rk-la-$s rk-lat1-$s rk-lata-$s \
        j-s1-$s j-sa-$s j-l1-$s j-la-$s j-lata-$s j-e2e-$s || die "$tg: CreateTopics failed"
    fi
    rk_produce "$tg" "$b" "produce $SMALL_N x 100 B acks=1" "rk-s1-$s" "$SMALL_N" 100 1 "$rep"
    rk_produce "$tg" "$b" "produce $SMALL_N x 100 B acks=all" "rk-sa-$s" "$SMALL_N" 100 -1 "$rep"
    rk_produce "$tg" "$b" "produce $LARGE_N x 1 KiB acks=1" "rk-l1-$s" "$LARGE_N" 1024 1 "$rep"
    rk_produce "$tg" "$b" "produce $LARGE_N x 1 KiB acks=all" "rk-la-$s" "$LARGE_N" 1024 -1 "$rep"
    # (no consume rows for the mock: it keeps only the last 5 MiB of a
    # partition, see docs/BENCHMARKS.md; gregor-bench has rough figures)
    if [ "$tg" != mock ]; then
      rk_consume "$tg" "$b" "consume $SMALL_N x 100 B" "rk-sa-$s" "$SMALL_N" "$rep"
      rk_consume "$tg" "$b" "consume $LARGE_N x 1 KiB" "rk-la-$s" "$LARGE_N" "$rep"
    fi
    rk_latency "$tg" "$b" "latency 100 B at $LAT_RATE msg/s acks=1" "rk-lat1-$s" 1 "$rep"
    rk_latency "$tg" "$b" "latency 100 B at $LAT_RATE msg/s acks=all" "rk-lata-$s" -1 "$rep"
    if [ "$tg" != mock ]; then
      j_produce "$tg" "$b" "produce $SMALL_N x 100 B acks=1" "j-s1-$s" "$SMALL_N" 100 1 "$rep"
      j_produce "$tg" "$b" "produce $SMALL_N x 100 B acks=all" "j-sa-$s" "$SMALL_N" 100 all "$rep"
      j_produce "$tg" "$b" "produce $LARGE_N x 1 KiB acks=1" "j-l1-$s" "$LARGE_N" 1024 1 "$rep"
      j_produce "$tg" "$b" "produce $LARGE_N x 1 KiB acks=all" "j-la-$s" "$LARGE_N" 1024 all "$rep"
      j_consume "$tg" "$b" "consume $SMALL_N x 100 B" "j-sa-$s" "$SMALL_N" 100 "$rep"
      j_consume "$tg" "$b" "consume $LARGE_N x 1 KiB" "j-la-$s" "$LARGE_N" 1024 "$rep"
      j_latency "$tg" "$b" "latency 100 B at $LAT_RATE msg/s acks=all" "j-lata-$s" all "$rep"
      j_e2e "$tg" "$b" "end-to-end 100 B acks=all, one at a time" "j-e2e-$s" "$rep"
    fi
  done
  result "$tg" - load VmRSS_max_MiB "$(awk '{ printf "%.1f", $1 / 1024 }' "$WORK/rss.$tg" 2>/dev/null || echo nan)"
  result "$tg" - load VmHWM_MiB "$(rss_mib "$pid" VmHWM)"
  result "$tg" - - load1_at_end "$(load1)"
  kill "$SAMPLER" 2>/dev/null || true
  wait "$SAMPLER" 2>/dev/null || true
}

stop_pid() {  # pid [timeout s]: SIGTERM, wait, SIGKILL
  local pid=$1 t=${2:-30} i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < t * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    [ "$(awk '/^State:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)" = Z ] && return 0
    sleep 0.1
  done
  log "pid $pid still alive ${t}s after SIGTERM: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- 3. load
for tg in $TARGETS; do
  case $tg in
    gregor)
      port=$(free_port)
      rm -rf "$WORK/gregor-data"
      "$GREGOR_BIN" serve --listen "127.0.0.1:$port" --data-dir "$WORK/gregor-data" -o num.partitions=1 \
        </dev/null 2>"$WORK/gregor.log" >&2 &
      gpid=$!; PIDS_TO_STOP+=("$gpid")
      for i in $(seq 1 300); do grep -q 'listening addr=' "$WORK/gregor.log" && break; sleep 0.05; done
      grep -q 'listening addr=' "$WORK/gregor.log" || { cat "$WORK/gregor.log" >&2; die "gregor did not start"; }
      log "gregor up on 127.0.0.1:$port (pid $gpid)"
      run_load gregor "127.0.0.1:$port" "$gpid"
      result gregor - - data_dir_MB "$(du -sB1 "$WORK/gregor-data" | awk '{ printf "%.0f", $1 / 1e6 }')"
      stop_pid "$gpid" 30
      rm -rf "$WORK/gregor-data"
      grep -E ' (WARN|ERROR) ' "$WORK/gregor.log" | head -5 >&2 || true
      ;;
    kafka)
      KDIR=$WORK/kafka
      eval "$("$KAFKA_SH" start "$KDIR")"   # BOOTSTRAP, PID, DIR
      KPID=$PID; KBOOT=$BOOTSTRAP
      # the broker's exact command line, reused for the cold starts below
      mapfile -d '' KCMD <"/proc/$KPID/cmdline"
      log "kafka up on $KBOOT (pid $KPID)"
      run_load kafka "$KBOOT" "$KPID"
      result kafka - - data_dir_MB "$(du -sB1 "$KDIR/data" | awk '{ printf "%.0f", $1 / 1e6 }')"
      "$KAFKA_SH" stop "$KDIR" >&2
      rm -rf "$KDIR/data"
      ;;
    kafka-fsync)
      # Optional (not in the default TARGETS): Kafka made to fsync every
      # append before it answers (log.flush.interval.messages=1), i.e. as
      # durable as Gregor's acks=all. Kafka's default never fsyncs on the
      # produce path.
      KFDIR=$WORK/kafka-fsync
      eval "$(GREGOR_REFERENCE_EXTRA_PROPS="log.flush.interval.messages=1" "$KAFKA_SH" start "$KFDIR")"
      log "kafka-fsync up on $BOOTSTRAP (pid $PID)"
      run_load kafka-fsync "$BOOTSTRAP" "$PID"
      result kafka-fsync - - data_dir_MB "$(du -sB1 "$KFDIR/data" | awk '{ printf "%.0f", $1 / 1e6 }')"
      "$KAFKA_SH" stop "$KFDIR" >&2
      rm -rf "$KFDIR/data"
      ;;
    mock)
      # librdkafka's mock cluster, hosted by an idle rdkafka_performance
      # process (-I) so that it is a separate process like the brokers.
      "$RP" -P -I -t mock-host -X test.mock.num.brokers=1 -i 600000 >"$WORK/mock.log" 2>&1 &
      mpid=$!; PIDS_TO_STOP+=("$mpid")
      for i in $(seq 1 100); do grep -q 'replaced with' "$WORK/mock.log" && break; sleep 0.05; done
      mboot=$(sed -n 's/.*replaced with \([0-9.:]*\).*/\1/p' "$WORK/mock.log" | head -1)
      [ -n "$mboot" ] || { cat "$WORK/mock.log" >&2; die "mock cluster did not start"; }
      log "mock up on $mboot (pid $mpid)"
      run_load mock "$mboot" "$mpid"
      stop_pid "$mpid" 10
      ;;
    *) die "unknown target $tg" ;;
  esac
done

# ---------------------------------------------------------------- 4. start-up
for tg in $TARGETS; do
  case $tg in
    gregor)
      for ((i = 1; i <= STARTS; i++)); do
        port=$(free_port); rm -rf "$WORK/gregor-cold"
        out=$(python3 "$HERE/startup_probe.py" --bootstrap "127.0.0.1:$port" --log "$WORK/gregor-cold.log" -- \
          "$GREGOR_BIN" serve --listen "127.0.0.1:$port" --data-dir "$WORK/gregor-cold" -o num.partitions=1) \
          || die "gregor start-up probe failed: $out"
        pid=$(echo "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])')
        PIDS_TO_STOP+=("$pid")
        result gregor - startup produced_ms "$(echo "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["produced_ms"])')"
        result gregor - startup accept_ms "$(echo "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["accept_ms"])')"
        log "gregor cold start $i: $out"
        stop_pid "$pid" 30
      done
      ;;
    kafka)
      [ -n "${KCMD[*]:-}" ] || continue
      kboot=$(sed -n 's/^BOOTSTRAP=//p' "$KDIR/env")
      for ((i = 1; i <= STARTS; i++)); do
        # empty, freshly formatted data dir (formatting is an install step, not timed)
        rm -rf "$KDIR/data" "$KDIR/logs"; mkdir -p "$KDIR/logs"
        cid=$(python3 -c 'import base64, os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not s.startswith("-"): print(s); break')
        java -Xmx256m -Dlog4j2.configurationFile="$KDIR/log4j2.properties" -cp "$KLIBS" \
          kafka.tools.StorageTool format --standalone -t "$cid" -c "$KDIR/server.properties" \
          >"$KDIR/logs/format.log" 2>&1 || die "kafka format failed"
        out=$(python3 "$HERE/startup_probe.py" --bootstrap "$kboot" --log "$KDIR/logs/stdout.log" -- "${KCMD[@]}") \
          || die "kafka start-up probe failed: $out"
        pid=$(echo "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])')
        PIDS_TO_STOP+=("$pid")
        result kafka - startup produced_ms "$(echo "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["produced_ms"])')"
        result kafka - startup accept_ms "$(echo "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["accept_ms"])')"
        log "kafka cold start $i: $out"
        stop_pid "$pid" 30
      done
      ;;
  esac
done

# ---------------------------------------------------------------- 5. report
T_END=$(date +%s)
{
  echo "conditions|date_utc|$(date -u +'%Y-%m-%d %H:%M')"
  echo "conditions|commit|$(cd "$REPO" && git rev-parse --short HEAD)$(cd "$REPO" && git diff --quiet HEAD -- crates || echo '+dirty')"
  echo "conditions|cpus|$(nproc) x $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
  echo "conditions|load1|before wait $LOAD_BEFORE_WAIT, start $LOAD_START, end $(load1)"
  echo "conditions|duration_s|measuring $((T_END - T_MEAS0)), total $((T_END - T_RUN0))"
  echo "conditions|counts|SMALL_N=$SMALL_N LARGE_N=$LARGE_N LAT_N=$LAT_N LAT_RATE=$LAT_RATE E2E_N=$E2E_N REPEAT=$REPEAT STARTS=$STARTS"
  echo "conditions|clients|rdkafka_performance (librdkafka $RDK_VERSION), Kafka 4.3.1 tools, $(java -version 2>&1 | head -1)"
} >"$WORK/conditions.txt"
python3 "$HERE/report.py" "$RESULTS" "$WORK/conditions.txt" | tee "$WORK/report.md"
stamp=$(date -u +%Y%m%dT%H%M%S)
cp "$WORK/report.md" "$CACHE/side-by-side-$stamp.md"
cp "$RESULTS" "$CACHE/side-by-side-$stamp.results.txt"
log "report: $CACHE/side-by-side-$stamp.md"
