#!/usr/bin/env bash
# Kafka Streams 4.3.1 exactly_once_v2 programs for test_streams_eos.py:
#   compat-tests/streams/run.sh run BOOTSTRAP APP_ID INPUT OUTPUT STATE_DIR [key=value ...]
#       the word count (gregor.streams.WordCount), until stdin closes or SIGTERM
#   compat-tests/streams/run.sh abort-probe BOOTSTRAP TOPIC GROUP TRANSACTIONAL_ID
#       abort after a rejected TxnOffsetCommit (gregor.streams.AbortAfterRejectedOffsets)
#   compat-tests/streams/run.sh build
# See the classes for their output lines.
# Builds on first use (Maven Central); JAVA_OPTS passes through (default a
# small heap), JAVA_LOG_LEVEL sets slf4j-simple's level (warn).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
JAR=$HERE/target/gregor-compat-streams-0.1.0.jar
if [ ! -f "$JAR" ] || [ -n "$(find "$HERE/src" "$HERE/pom.xml" -newer "$JAR" 2>/dev/null)" ]; then
  mvn -q -f "$HERE/pom.xml" -DskipTests package >&2
fi
case "${1:-}" in
  build) exit 0 ;;
  run) CLASS=gregor.streams.WordCount ;;
  abort-probe) CLASS=gregor.streams.AbortAfterRejectedOffsets ;;
  *) echo "usage: $0 run|abort-probe|build ..." >&2; exit 2 ;;
esac
exec java ${JAVA_OPTS:--Xmx192m -XX:+UseSerialGC -XX:TieredStopAtLevel=1} \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=${JAVA_LOG_LEVEL:-warn} \
  -cp "$JAR:$HERE/target/lib/*" "$CLASS" "$@"
