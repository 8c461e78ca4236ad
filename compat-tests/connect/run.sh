#!/usr/bin/env bash
# A Kafka Connect 4.3.1 distributed worker (the FileStream connectors on its
# classpath) for compat-tests/python/test_connect.py:
#   compat-tests/connect/run.sh worker WORKER_PROPERTIES
#       org.apache.kafka.connect.cli.ConnectDistributed, until SIGTERM
#   compat-tests/connect/run.sh build
# Builds on first use (Maven Central: dependencies copied into target/lib).
# JAVA_OPTS passes through (default a small heap); CONNECT_LOG_LEVEL sets the
# log level (info), the log goes to stdout.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
STAMP=$HERE/target/lib/.built
if [ ! -f "$STAMP" ] || [ "$HERE/pom.xml" -nt "$STAMP" ]; then
  mvn -q -f "$HERE/pom.xml" package >&2
  touch "$STAMP"
fi
case "${1:-}" in
  build) exit 0 ;;
  worker) shift ;;
  *) echo "usage: $0 worker WORKER_PROPERTIES | build" >&2; exit 2 ;;
esac
exec java ${JAVA_OPTS:--Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1} \
  -Dlog4j2.configurationFile="$HERE/log4j2.properties" \
  -cp "$HERE/target/lib/*" org.apache.kafka.connect.cli.ConnectDistributed "$@"
