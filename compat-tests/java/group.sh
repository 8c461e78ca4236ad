#!/usr/bin/env bash
# Java kafka-clients consumer-group programs (used by compat-tests/rust/groups.rs):
#   compat-tests/java/group.sh member BOOTSTRAP GROUP TOPIC [key=value ...]
#       one group member (gregor.compat.GroupMember): JSON lines on stdout;
#       options: strategy=range|roundrobin|sticky|cooperative-sticky,
#       idle.exit.ms=N, commit=sync|none, any consumer property; SIGTERM closes.
#   compat-tests/java/group.sh admin BOOTSTRAP GROUP
#       AdminClient listGroups / describeConsumerGroups / listConsumerGroupOffsets
#       (gregor.compat.GroupAdmin) as JSON lines.
# Builds on first use (Maven Central); JAVA_OPTS passes through.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
  member) CLASS=gregor.compat.GroupMember ;;
  admin) CLASS=gregor.compat.GroupAdmin ;;
  *) echo "usage: $0 member BOOTSTRAP GROUP TOPIC [key=value ...] | admin BOOTSTRAP GROUP" >&2; exit 2 ;;
esac
shift
JAR=$HERE/target/gregor-compat-java-0.1.0.jar
if [ ! -f "$JAR" ] || [ -n "$(find "$HERE/src" "$HERE/pom.xml" -newer "$JAR" 2>/dev/null)" ]; then
  mvn -q -f "$HERE/pom.xml" -DskipTests package >&2
fi
exec java ${JAVA_OPTS:-} -Dorg.slf4j.simpleLogger.defaultLogLevel=${JAVA_LOG_LEVEL:-warn} \
  -cp "$JAR:$HERE/target/lib/*" "$CLASS" "$@"
