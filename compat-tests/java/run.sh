#!/usr/bin/env bash
# Run the Java kafka-clients scenario against BOOTSTRAP (host:port).
# Builds on first use (Maven Central); JAVA_OPTS passes through.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
B=${1:?usage: compat-tests/java/run.sh BOOTSTRAP [TOPIC]}
shift
JAR=$HERE/target/gregor-compat-java-0.1.0.jar
if [ ! -f "$JAR" ] || [ -n "$(find "$HERE/src" "$HERE/pom.xml" -newer "$JAR" 2>/dev/null)" ]; then
  mvn -q -f "$HERE/pom.xml" -DskipTests package >&2
fi
exec java ${JAVA_OPTS:-} -Dorg.slf4j.simpleLogger.defaultLogLevel=${JAVA_LOG_LEVEL:-warn} \
  -cp "$JAR:$HERE/target/lib/*" gregor.compat.Scenario "$B" "$@"
