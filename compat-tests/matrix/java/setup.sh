#!/usr/bin/env bash
# Builds the Java kafka-clients scenario: the Maven project in
# ../../java (kafka-clients 4.3.1 pinned in its pom.xml, with snappy-java,
# lz4-java and zstd-jni; jars from Maven Central into ~/.m2) into
# ../../java/target, whose main class gregor.compat.MatrixScenario run.sh
# runs. Idempotent: quick when the jar is newer than every source.
# Needs: Java 17+, Maven.
set -euo pipefail
cd "$(dirname "$0")"
JAVA_DIR=$(cd ../../java && pwd)
JAR=$JAVA_DIR/target/gregor-compat-java-0.1.0.jar
command -v java >/dev/null || { echo "setup.sh: java is not installed (Java 17+)" >&2; exit 1; }
stale() {
  [ ! -f "$JAR" ] || [ ! -d "$JAVA_DIR/target/lib" ] ||
    [ -n "$(find "$JAVA_DIR/src" "$JAVA_DIR/pom.xml" -newer "$JAR" 2>/dev/null | head -1)" ]
}
if stale; then
  command -v mvn >/dev/null || { echo "setup.sh: mvn is not installed" >&2; exit 1; }
  mkdir -p "$JAVA_DIR/target"
  # one build at a time (parallel runs share the target dir)
  exec 9>"$JAVA_DIR/target/.matrix-build.lock"
  flock 9
  if stale; then
    mvn -q -B -f "$JAVA_DIR/pom.xml" -DskipTests package >&2
  fi
  exec 9>&-
fi
usage=$(java -cp "$JAR:$JAVA_DIR/target/lib/*" gregor.compat.MatrixScenario 2>&1 || true)
[[ $usage == "usage: MatrixScenario"* ]] ||
  { echo "setup.sh: gregor.compat.MatrixScenario does not run from $JAR: $usage" >&2; exit 1; }
echo "java: scenario built ($(basename "$(ls "$JAVA_DIR"/target/lib/kafka-clients-*.jar)" .jar))"
