#!/usr/bin/env bash
# Kafka Streams 4.3.1 exactly_once_v2 word count (gregor.streams.WordCount):
#   compat-tests/streams/run.sh run BOOTSTRAP APP_ID INPUT OUTPUT STATE_DIR [key=value ...]
# Runs until stdin closes or SIGTERM; see WordCount.java for its output lines.
# Builds on first use (Maven Central); JAVA_OPTS passes through (default a
# small heap), JAVA_LOG_LEVEL sets slf4j-simple's level (warn).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
JAR=$HERE/target/gregor-compat-streams-0.1.0.jar
if [ ! -f "$JAR" ] || [ -n "$(find "$HERE/src" "$HERE/pom.xml" -newer "$JAR" 2>/dev/null)" ]; then
  mvn -q -f "$HERE/pom.xml" -DskipTests package >&2
fi
if [ "${1:-}" = build ]; then exit 0; fi
exec java ${JAVA_OPTS:--Xmx192m -XX:+UseSerialGC -XX:TieredStopAtLevel=1} \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=${JAVA_LOG_LEVEL:-warn} \
  -cp "$JAR:$HERE/target/lib/*" gregor.streams.WordCount "$@"
