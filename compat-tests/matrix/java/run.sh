#!/usr/bin/env bash
# run.sh BOOTSTRAP TOPIC_PREFIX: the client-matrix scenario with the Java
# kafka-clients (gregor.compat.MatrixScenario in ../../java; see ../README.md).
# Builds first when the jar is missing or older than the sources.
# JAVA_OPTS passes through; JAVA_LOG_LEVEL sets the clients' log level (warn).
set -euo pipefail
if [[ $# -ne 2 ]]; then
  echo "usage: $0 BOOTSTRAP TOPIC_PREFIX" >&2
  exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
JAVA_DIR=$(cd "$HERE/../../java" && pwd)
JAR=$JAVA_DIR/target/gregor-compat-java-0.1.0.jar
if [ ! -f "$JAR" ] || [ -n "$(find "$JAVA_DIR/src" "$JAVA_DIR/pom.xml" -newer "$JAR" 2>/dev/null | head -1)" ]; then
  "$HERE/setup.sh" >&2
fi
# shellcheck disable=SC2086
exec java ${JAVA_OPTS:-} -Dorg.slf4j.simpleLogger.defaultLogLevel="${JAVA_LOG_LEVEL:-warn}" \
  -cp "$JAR:$JAVA_DIR/target/lib/*" gregor.compat.MatrixScenario "$1" "$2"
