# Sourced by the launchers in this directory (txn.sh, admin.sh,
# leader-move.sh): builds the jar on first use and whenever a source or the
# pom is newer, one build at a time (the same lock as
# compat-tests/matrix/java/setup.sh). Sets JAR.
HERE=${HERE:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
JAR=$HERE/target/gregor-compat-java-0.1.0.jar
stale() {
  [ ! -f "$JAR" ] || [ ! -d "$HERE/target/lib" ] ||
    [ -n "$(find "$HERE/src" "$HERE/pom.xml" -newer "$JAR" 2>/dev/null | head -1)" ]
}
if stale; then
  mkdir -p "$HERE/target"
  exec 9>"$HERE/target/.matrix-build.lock"
  flock 9
  if stale; then
    mvn -q -B -f "$HERE/pom.xml" -DskipTests package >&2
  fi
  exec 9>&-
fi
