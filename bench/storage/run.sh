#!/usr/bin/env bash
# Storage rows of issue 8 (storage v2): a write soak, start-up with data kept,
# the acks=all round trip. Gregor and (optionally) Apache Kafka 4.3.1, the same
# clients, one run; prints a markdown table with issue 8's targets (also
# written to $WORK/report.md and ~/.cache/gregor-bench/storage-<time>.md).
# See docs/BENCHMARKS.md, "Storage rows (issue 8)".
#
#   bench/storage/run.sh                  GIB=10: about 2 x 10 GiB written per target
#   QUICK=1 bench/storage/run.sh          GIB=0.25, 1 start each: under 2 minutes (smoke test)
#   GREGOR_BIN=/tmp/gregor-x TARGETS=gregor bench/storage/run.sh
#
# Rows, per target (each phase on its own broker and data dir):
#   1. round trip: 100 B, acks=all, linger.ms=0, one message in flight
#      (util.py latency; confluent-kafka), p50/p99 - on the soak broker,
#      before the soak.
#   2. soak: GIB GiB of 1 KiB records, acks=all, SOAK_PARTS partitions
#      (rdkafka_performance); the broker's VmRSS every 0.5 s (sample.py):
#      peak, and at 25/50/75/100 % of the bytes acknowledged; MB/s; data dir
#      size (du -sb, and allocated blocks) against the payload. Then all of
#      it read back once (rdkafka_performance -C, every partition): MB/s,
#      peak RSS during the read.
#   3. start-up, empty data dir: spawn -> first acknowledged produce
#      (bench/side-by-side/startup_probe.py), STARTS times.
#   4. fill: a fresh data dir with GIB GiB of 1 KiB in PARTS partitions; then
#      STARTS restarts after a clean stop (SIGTERM), each timed spawn ->
#      first acknowledged produce to partition 0 of that topic, and STARTS
#      restarts after kill -9 while a producer was writing to it (recovery
#      runs). After every restart the topic must still hold every record of
#      the fill (sum of high watermarks), or the run fails.
#   TODO(issue 8): "100,000 partitions: open in under 1 s, RSS under
#   128 MiB" is bench/many-partitions/run.py, not repeated here.
#
# Environment (defaults in brackets):
#   GREGOR_BIN     gregor binary [cargo build --release -p gregor, copied to the cache]
#   TARGETS        ["gregor kafka"]
#   GIB [10; QUICK 0.25]  payload written by the soak and by the fill, GiB (fractions ok)
#   PARTS [100]    partitions of the fill topic (start-up rows)
#   SOAK_PARTS [6] partitions of the soak topic
#   STARTS [3; QUICK 1]   starts per start-up row (median reported)
#   LAT_N [2000; QUICK 500]  round trips (the first 100 are dropped)
#   SAMPLE_S [0.5; QUICK 0.1]  broker VmRSS sampling interval, seconds
#   QUIET_LOAD [0.7; QUICK 0] QUIET_MAX [600]  wait for load1 < QUIET_LOAD (0: don't), at most QUIET_MAX s
#   DISK_FACTOR [2.5]  a fill needs GIB x DISK_FACTOR + MIN_FREE_GIB free, else the run stops
#   MIN_FREE_GIB [3]   a produce is stopped (and the run fails) below this much free disk
#   MAX_RSS_MIB [8192] ... or when the broker's VmRSS goes above this (0: no cap); the
#                  read-back is stopped there too, and reports how far it got
#   WORK           data dirs, logs, results [/tmp/gregor-storage.PID]; removed unless KEEP=1
#   GREGOR_LABEL   what to call the binary in the conditions table [its path]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SBS=$REPO/bench/side-by-side
KAFKA_SH=$REPO/compat-tests/reference/kafka.sh
CACHE=${GREGOR_BENCH_CACHE:-$HOME/.cache/gregor-bench}
RP=$CACHE/librdkafka/examples/rdkafka_performance
WORK=${WORK:-/tmp/gregor-storage.$$}
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
  GIB=${GIB:-0.25}; STARTS=${STARTS:-1}; LAT_N=${LAT_N:-500}; QUIET_LOAD=${QUIET_LOAD:-0}
  SAMPLE_S=${SAMPLE_S:-0.1}
fi
SAMPLE_S=${SAMPLE_S:-0.5}
GIB=${GIB:-10}
PARTS=${PARTS:-100}
SOAK_PARTS=${SOAK_PARTS:-6}
STARTS=${STARTS:-3}
LAT_N=${LAT_N:-2000}
QUIET_LOAD=${QUIET_LOAD:-0.7}
QUIET_MAX=${QUIET_MAX:-600}
DISK_FACTOR=${DISK_FACTOR:-2.5}
MIN_FREE_GIB=${MIN_FREE_GIB:-3}
MAX_RSS_MIB=${MAX_RSS_MIB:-8192}
TARGETS=${TARGETS:-gregor kafka}
SIZE=1024
N=$(awk -v g="$GIB" -v s="$SIZE" 'BEGIN { printf "%d", g * 1073741824 / s }')
PAYLOAD=$((N * SIZE))
RESULTS=$WORK/results.txt
PY=${PYTHON:-python3}
# Gregor reads GREGOR_* from its environment as broker properties
# (GREGOR_BIN would become "bin"): start it without any of them.
GREGOR_ENV=(env); for v in $(compgen -e | grep '^GREGOR_' || true); do GREGOR_ENV+=(-u "$v"); done
# rdkafka_performance's stats lines, unbuffered (progress is read from them)
RPL=(stdbuf -oL "$RP")

log() { echo "[storage $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
load1() { cut -d' ' -f1 /proc/loadavg; }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
result() { printf '%s|%s|%s|%s\n' "$@" >>"$RESULTS"; }              # target row metric value
PHASE_LOADS=""
phase() { PHASE_LOADS="$PHASE_LOADS $1 $2 $(load1);"; }             # target phase: load1 when it began
goal() { printf 'goal|%s|%s|%s|%s|%s\n' "$@" >>"$RESULTS"; }         # row metric text op limit
rss_mib() { awk '$1 == "VmRSS:" { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo nan; }
json() { "$PY" -c 'import json, sys; v = json.loads(sys.argv[1]).get(sys.argv[2]); print("nan" if v is None else v)' "$1" "$2"; }
du_b() { du -sb "$1" | cut -f1; }                  # apparent size (what the files say)
du_alloc() { du -s --block-size=1 "$1" | cut -f1; } # allocated blocks (sparse index files count less)
free_b() { df -B1 --output=avail "$1" | tail -1 | tr -d ' '; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

mkdir -p "$CACHE" "$WORK"
: >"$RESULTS"
PIDS_TO_STOP=()
stop_pid() {  # pid [timeout s]: SIGTERM, wait; SIGKILL after the timeout. Sets STOP_MS.
  local pid=$1 t=${2:-60} i t0
  t0=$(date +%s%3N); STOP_MS=nan
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < t * 100; i++)); do
    if ! kill -0 "$pid" 2>/dev/null || [ "$(awk '/^State:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)" = Z ]; then
      STOP_MS=$(( $(date +%s%3N) - t0 )); wait "$pid" 2>/dev/null || true; return 0
    fi
    sleep 0.01
  done
  log "pid $pid still alive ${t}s after SIGTERM: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  return 1
}
cleanup() {
  local p
  for p in "${PIDS_TO_STOP[@]:-}"; do
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null && stop_pid "$p" 30 || true
  done
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; else log "kept $WORK"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- tools
T_RUN0=$(date +%s)
if [ -z "${GREGOR_BIN:-}" ]; then
  log "cargo build --release -p gregor"
  (cd "$REPO" && cargo build --release -q -p gregor)
  cp "$REPO/target/release/gregor" "$CACHE/gregor-storage"
  GREGOR_BIN=$CACHE/gregor-storage
  GREGOR_LABEL=${GREGOR_LABEL:-release build of $(cd "$REPO" && git rev-parse --short HEAD)}
fi
[ -x "$GREGOR_BIN" ] || die "no gregor binary at $GREGOR_BIN"
GREGOR_LABEL=${GREGOR_LABEL:-$GREGOR_BIN}
[ -x "$RP" ] || die "no $RP: run bench/side-by-side/run.sh once (it builds rdkafka_performance)"
"$PY" -c 'import confluent_kafka' 2>/dev/null || die "$PY has no confluent-kafka (PYTHON=/work/main/.venv/bin/python?)"
case " $TARGETS " in *" kafka "*)
  "$KAFKA_SH" fetch 2>/dev/null || "$KAFKA_SH" fetch
  KLIBS=$("$KAFKA_SH" classpath) ;;
esac
log "gregor: $GREGOR_BIN; targets: $TARGETS; GIB=$GIB ($N x $SIZE B) PARTS=$PARTS SOAK_PARTS=$SOAK_PARTS STARTS=$STARTS"

LOAD_BEFORE_WAIT=$(load1)
if [ "$QUIET_LOAD" != 0 ]; then
  t=$(date +%s)
  while awk -v l="$(load1)" -v q="$QUIET_LOAD" 'BEGIN { exit !(l >= q) }'; do
    if [ $(( $(date +%s) - t )) -ge "$QUIET_MAX" ]; then log "load still >= $QUIET_LOAD: measuring anyway"; break; fi
    log "waiting for load1 < $QUIET_LOAD"; sleep 15
  done
fi
UPTIME_START=$(uptime)
T_MEAS0=$(date +%s)

# ---------------------------------------------------------------- rows
R_LAT="round trip 100 B acks=all, one in flight"
R_SOAK="soak: produce $GIB GiB of 1 KiB acks=all, $SOAK_PARTS partitions"
R_READ="soak: read the $GIB GiB back"
R_EMPTY="start-up, empty data dir"
R_FILL="fill: $GIB GiB of 1 KiB acks=all, $PARTS partitions"
R_CLEAN="start-up after SIGTERM, $GIB GiB in $PARTS partitions"
R_UNCLEAN="start-up after kill -9 under load, $GIB GiB in $PARTS partitions"
goal "$R_LAT" p50_ms "< 0.3 ms (idle machine)" "<=" 0.3
goal "$R_SOAK" RSS_peak_MiB "≤ 100 MiB" "<=" 100
goal "$R_SOAK" "RSS_end/RSS_25%" "flat (≤ 1.10, our reading)" "<=" 1.10
goal "$R_SOAK" "data_dir/payload" "≤ 1.05 + indexes" "<=" 1.05
goal "$R_EMPTY" produced_ms "< 20 ms" "<=" 20
goal "$R_CLEAN" produced_ms "< 300 ms (with 10 GiB)" "<=" 300

# ---------------------------------------------------------------- brokers
# start_fresh TG DIR: a broker on an empty data dir. Sets BOOT, BPID, DATA.
start_fresh() {
  local tg=$1 dir=$2 port i
  rm -rf "$dir"; mkdir -p "$dir"
  case $tg in
    gregor)
      port=$(free_port)
      "${GREGOR_ENV[@]}" "$GREGOR_BIN" serve --listen "127.0.0.1:$port" --data-dir "$dir/data" -o num.partitions=1 \
        </dev/null 2>>"$dir/gregor.log" >&2 &
      BPID=$!; PIDS_TO_STOP+=("$BPID")
      for i in $(seq 1 600); do grep -q 'listening addr=' "$dir/gregor.log" && break; sleep 0.05; done
      grep -q 'listening addr=' "$dir/gregor.log" || { tail "$dir/gregor.log" >&2; die "gregor did not start"; }
      BOOT=127.0.0.1:$port ;;
    kafka)
      eval "$("$KAFKA_SH" start "$dir")"   # BOOTSTRAP, PID, DIR
      BPID=$PID; BOOT=$BOOTSTRAP; PIDS_TO_STOP+=("$BPID")
      # the broker's exact command line, reused for the timed starts
      mapfile -d '' KCMD <"/proc/$BPID/cmdline" ;;
  esac
  DATA=$dir/data
}

# kafka_format DIR: an empty, formatted data dir (an install step: not timed)
kafka_format() {
  local dir=$1 cid
  rm -rf "$dir/data"
  cid=$("$PY" -c 'import base64, os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not s.startswith("-"): print(s); break')
  java -Xmx256m -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$KLIBS" \
    kafka.tools.StorageTool format --standalone -t "$cid" -c "$dir/server.properties" \
    >>"$dir/logs/format.log" 2>&1 || die "kafka format failed"
}

# timed_start TG DIR ROW TOPIC: spawn on DIR's data, time spawn -> first
# acknowledged produce to TOPIC partition 0 (created if missing). Sets BOOT,
# BPID. ROW "-": a start that is not reported.
timed_start() {
  local tg=$1 dir=$2 row=$3 topic=$4 out port cmd
  case $tg in
    gregor)
      port=$(free_port); BOOT=127.0.0.1:$port
      cmd=("$GREGOR_BIN" serve --listen "$BOOT" --data-dir "$dir/data" -o num.partitions=1) ;;
    kafka)
      BOOT=$(sed -n 's/^BOOTSTRAP=//p' "$dir/env")
      cmd=("${KCMD[@]}") ;;
  esac
  # (the probe runs in the cleaned environment, so no extra exec is timed)
  out=$("${GREGOR_ENV[@]}" "$PY" "$SBS/startup_probe.py" --bootstrap "$BOOT" --topic "$topic" --timeout 600 \
    --log "$dir/$tg-starts.log" -- "${cmd[@]}") || die "$tg $row: start-up probe failed: $out"
  BPID=$(json "$out" pid); PIDS_TO_STOP+=("$BPID")
  log "$tg $row: $out, VmRSS $(rss_mib "$BPID") MiB"
  [ "$row" = - ] && return 0   # a start that is not measured
  result "$tg" "$row" produced_ms "$(json "$out" produced_ms)"
  result "$tg" "$row" accept_ms "$(json "$out" accept_ms)"
  result "$tg" "$row" VmRSS_after_MiB "$(rss_mib "$BPID")"
  # bytes the broker read through read(2)/pread(2) by then (jars included for
  # Kafka; mmap reads not counted): shows whether start-up scans the data
  result "$tg" "$row" read_syscalls_MB "$(awk '$1 == "rchar:" { printf "%.0f", $2 / 1e6 }' "/proc/$BPID/io" 2>/dev/null || echo nan)"
}

check_disk() {  # the fill must fit with room to spare: others share this disk
  local need avail
  need=$(awk -v p="$PAYLOAD" -v f="$DISK_FACTOR" -v m="$MIN_FREE_GIB" 'BEGIN { printf "%d", p * f + m * 1073741824 }')
  avail=$(free_b "$WORK")
  [ "$avail" -ge "$need" ] || die "only $((avail >> 30)) GiB free in $WORK, need $((need >> 30)) GiB for GIB=$GIB (lower GIB)"
}

# rk_produce TG BOOT TOPIC OUTJSON DIR: N x 1 KiB, acks=all, spread over
# the topic's partitions (librdkafka's default partitioner, no key)
rk_produce() {
  "$PY" "$HERE/sample.py" --pid "$BPID" --total "$N" --out "$4" --data-dir "$5" --min-free-gib "$MIN_FREE_GIB" \
    --max-rss-mib "$MAX_RSS_MIB" --interval "$SAMPLE_S" --timeout 3600 --log "$4.log" -- \
    "${RPL[@]}" -P -t "$3" -b "$2" -s "$SIZE" -c "$N" -a -1 -i 100 \
    -X linger.ms=5 -X queue.buffering.max.messages=1000000 -X queue.buffering.max.kbytes=1048576 \
    -X message.timeout.ms=300000 || { tail -3 "$4.log" >&2; die "$1: produce to $3 failed: $(cat "$4")"; }
}

hw_check() {  # TG ROW: the fill topic must still hold every acknowledged record
  local hw; hw=$("$PY" "$HERE/util.py" watermarks "$BOOT" fill) || die "$1 $2: watermarks failed"
  [ "$hw" -ge "$N" ] || die "$1 $2: fill topic holds $hw records, $N were acknowledged"
}

# ---------------------------------------------------------------- per target
for tg in $TARGETS; do
  case $tg in gregor|kafka) ;; *) die "unknown target $tg" ;; esac

  # -- round trip and soak
  check_disk
  D=$WORK/$tg-soak
  start_fresh "$tg" "$D"
  log "$tg up on $BOOT (pid $BPID), idle VmRSS $(rss_mib "$BPID") MiB"
  result "$tg" "idle, empty data dir" VmRSS_MiB "$(rss_mib "$BPID")"
  phase "$tg" round-trip
  "$PY" "$HERE/util.py" create "$BOOT" lat 1
  out=$("$PY" "$HERE/util.py" latency "$BOOT" lat "$LAT_N") || die "$tg: latency failed: $out"
  for m in p50_ms p99_ms mean_ms; do result "$tg" "$R_LAT" "$m" "$(json "$out" "$m")"; done
  log "$tg $R_LAT: $out"

  phase "$tg" soak
  "$PY" "$HERE/util.py" create "$BOOT" soak "$SOAK_PARTS"
  rk_produce "$tg" "$BOOT" soak "$D/soak.json" "$D"
  s=$(cat "$D/soak.json")
  result "$tg" "$R_SOAK" MB/s "$(json "$s" mbs)"
  result "$tg" "$R_SOAK" RSS_peak_MiB "$(json "$s" peak_rss_mib)"
  result "$tg" "$R_SOAK" RSS_start_MiB "$(json "$s" rss_start_mib)"
  result "$tg" "$R_SOAK" RSS_25%_MiB "$(json "$s" rss_q1_mib)"
  result "$tg" "$R_SOAK" RSS_50%_MiB "$(json "$s" rss_q2_mib)"
  result "$tg" "$R_SOAK" RSS_75%_MiB "$(json "$s" rss_q3_mib)"
  result "$tg" "$R_SOAK" RSS_end_MiB "$(json "$s" rss_end_mib)"
  result "$tg" "$R_SOAK" "RSS_end/RSS_25%" "$(ratio "$(json "$s" rss_end_mib)" "$(json "$s" rss_q1_mib)")"
  db=$(du_b "$DATA"); da=$(du_alloc "$DATA")
  result "$tg" "$R_SOAK" data_dir_MB "$(awk -v b="$db" 'BEGIN { printf "%.0f", b / 1e6 }')"
  result "$tg" "$R_SOAK" "data_dir/payload" "$(ratio "$db" "$PAYLOAD")"
  result "$tg" "$R_SOAK" "data_dir_allocated/payload" "$(ratio "$da" "$PAYLOAD")"
  log "$tg soak: $s; data dir $db B (allocated $da) for $PAYLOAD B of payload"

  phase "$tg" read
  parts=(); for ((p = 0; p < SOAK_PARTS; p++)); do parts+=(-p "$p"); done
  "$PY" "$HERE/sample.py" --pid "$BPID" --total "$N" --out "$D/read.json" --interval "$SAMPLE_S" \
    --max-rss-mib "$MAX_RSS_MIB" --timeout 1800 --log "$D/read.json.log" -- \
    "${RPL[@]}" -C -t soak "${parts[@]}" -b "$BOOT" -o beginning -c "$N" -i 100 \
    || [ "$(json "$(cat "$D/read.json")" capped)" = True ] \
    || { tail -3 "$D/read.json.log" >&2; die "$tg: read back failed: $(cat "$D/read.json")"; }
  s=$(cat "$D/read.json")
  if [ "$(json "$s" capped)" = True ]; then
    # stopped at MAX_RSS_MIB: say how far it got rather than fail the run
    result "$tg" "$R_READ" "read before RSS cap, %" "$(awk -v c="$(json "$s" count)" -v n="$N" 'BEGIN { printf "%.0f", 100 * c / n }')"
  else
    result "$tg" "$R_READ" MB/s "$(json "$s" mbs)"
  fi
  result "$tg" "$R_READ" RSS_peak_MiB "$(json "$s" peak_rss_mib)"
  log "$tg read back: $s"
  stop_pid "$BPID" 60 || die "$tg: soak broker did not stop on SIGTERM"

  # -- start-up on an empty data dir
  E=$WORK/$tg-empty
  if [ "$tg" = kafka ]; then E=$D; fi   # reuse its config (ports, KCMD); data wiped below
  rm -rf "$D/data"   # the soak's data is big: gone before the fill
  phase "$tg" empty-starts
  for ((i = 1; i <= STARTS; i++)); do
    if [ "$tg" = kafka ]; then kafka_format "$E"; else rm -rf "$E"; mkdir -p "$E"; fi
    timed_start "$tg" "$E" "$R_EMPTY" startup-probe
    stop_pid "$BPID" 60 || die "$tg: did not stop on SIGTERM"
  done
  rm -rf "$E" "$D"

  # -- fill, then restarts with the data kept
  check_disk
  F=$WORK/$tg-fill
  start_fresh "$tg" "$F"
  phase "$tg" fill
  "$PY" "$HERE/util.py" create "$BOOT" fill "$PARTS"
  rk_produce "$tg" "$BOOT" fill "$F/fill.json" "$F"
  s=$(cat "$F/fill.json")
  result "$tg" "$R_FILL" MB/s "$(json "$s" mbs)"
  result "$tg" "$R_FILL" RSS_peak_MiB "$(json "$s" peak_rss_mib)"
  hw_check "$tg" "$R_FILL"
  stop_pid "$BPID" 120 || die "$tg: fill broker did not stop on SIGTERM"
  result "$tg" "$R_FILL" SIGTERM_to_exit_ms "$STOP_MS"
  db=$(du_b "$DATA")
  result "$tg" "$R_FILL" data_dir_MB "$(awk -v b="$db" 'BEGIN { printf "%.0f", b / 1e6 }')"
  result "$tg" "$R_FILL" "data_dir/payload" "$(ratio "$db" "$PAYLOAD")"
  log "$tg fill: $s; stopped in $STOP_MS ms; data dir $db B"

  phase "$tg" clean-starts
  for ((i = 1; i <= STARTS; i++)); do
    timed_start "$tg" "$F" "$R_CLEAN" fill
    hw_check "$tg" "$R_CLEAN"
    stop_pid "$BPID" 120 || die "$tg: did not stop on SIGTERM"
  done

  # kill -9 while a producer writes to the fill topic, then a timed start
  phase "$tg" kill-9-starts
  timed_start "$tg" "$F" - fill
  for ((i = 1; i <= STARTS; i++)); do
    : >"$F/load.$i.log"
    "${RPL[@]}" -P -t fill -b "$BOOT" -s "$SIZE" -c 100000000 -a -1 -i 100 -X linger.ms=5 >"$F/load.$i.log" 2>&1 &
    lp=$!
    # until the broker has acknowledged something (the log is the event)
    for j in $(seq 1 600); do
      grep -qE ', [1-9][0-9]* delivered' "$F/load.$i.log" && break; sleep 0.05
    done
    grep -qE ', [1-9][0-9]* delivered' "$F/load.$i.log" || die "$tg: load before kill -9 got no acknowledgement"
    kill -KILL "$BPID"; wait "$BPID" 2>/dev/null || true
    kill -KILL "$lp"; wait "$lp" 2>/dev/null || true
    log "$tg: kill -9 after $(grep -oE '[0-9]+ delivered' "$F/load.$i.log" | tail -1)"
    timed_start "$tg" "$F" "$R_UNCLEAN" fill
    hw_check "$tg" "$R_UNCLEAN"
  done
  stop_pid "$BPID" 120 || true
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$F/data"; fi
  grep -hE ' (WARN|ERROR) ' "$WORK/$tg"-*/*.log 2>/dev/null | head -5 >&2 || true
done

# ---------------------------------------------------------------- report
T_END=$(date +%s)
{
  echo "conditions|date_utc|$(date -u +'%Y-%m-%d %H:%M')"
  echo "conditions|gregor|$GREGOR_LABEL (sha256 $(sha256sum "$GREGOR_BIN" | cut -c1-12)); repo at $(cd "$REPO" && git rev-parse --short HEAD)"
  echo "conditions|cpus|$(nproc) x $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
  echo "conditions|uptime|before wait: load1 $LOAD_BEFORE_WAIT; start: $(echo "$UPTIME_START" | sed 's/.*load average/load average/'); end: $(uptime | sed 's/.*load average/load average/')"
  echo "conditions|load1 per phase|${PHASE_LOADS%;}"
  echo "conditions|duration_s|measuring $((T_END - T_MEAS0)), total $((T_END - T_RUN0))"
  echo "conditions|sizes|GIB=$GIB ($N x $SIZE B = $PAYLOAD B) per soak and per fill; SOAK_PARTS=$SOAK_PARTS PARTS=$PARTS STARTS=$STARTS LAT_N=$LAT_N"
  echo "conditions|clients|rdkafka_performance (librdkafka $({ "$RP" 2>&1 || true; } | sed -n 's/^librdkafka version \([^ ]*\).*/\1/p' | head -1)), confluent-kafka $("$PY" -c 'import confluent_kafka as c; print(c.__version__, "/ librdkafka", c.libversion()[0])')"
  echo "conditions|disk|$(df -h --output=size,avail "$WORK" | tail -1 | awk '{ print $2 " free of " $1 " at the end" }')"
} >"$WORK/conditions.txt"
"$PY" "$HERE/report.py" "$RESULTS" "$WORK/conditions.txt" | tee "$WORK/report.md"
stamp=$(date -u +%Y%m%dT%H%M%S)
cp "$WORK/report.md" "$CACHE/storage-$stamp.md"
cp "$RESULTS" "$CACHE/storage-$stamp.results.txt"
log "report: $CACHE/storage-$stamp.md"
