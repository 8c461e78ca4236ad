#!/usr/bin/env bash
# Java kafka-clients programs of the admin and compaction tests
# (compat-tests/python/test_admin_clients.py, test_compaction.py):
#   compat-tests/java/admin.sh admin BOOTSTRAP PREFIX
#       gregor.compat.Admin10: createPartitions, incrementalAlterConfigs
#       (topic, broker, <default>), deleteRecords, describeLogDirs,
#       describeTopics on PREFIX-admin; JSON lines on stdout.
#   compat-tests/java/admin.sh admin partitions BOOTSTRAP PREFIX
#       Admin10: a Java consumer and producer pick up partitions added by
#       createPartitions (PREFIX-parts).
#   compat-tests/java/admin.sh compaction produce|read BOOTSTRAP TOPIC [ARGS]
#       gregor.compat.Compaction10 (see its javadoc).
#   compat-tests/java/admin.sh build      build only (quick when up to date)
# Builds on first use (Maven Central); JAVA_OPTS passes through,
# JAVA_LOG_LEVEL sets the clients' log level (warn).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=build.sh
source "$HERE/build.sh"
case "${1:-}" in
  build) exit 0 ;;
  admin) MAIN=gregor.compat.Admin10 ;;
  compaction) MAIN=gregor.compat.Compaction10 ;;
  *) echo "usage: admin.sh build | admin BOOTSTRAP PREFIX | compaction produce|read BOOTSTRAP TOPIC ..." >&2; exit 2 ;;
esac
shift
# shellcheck disable=SC2086
exec java ${JAVA_OPTS:-} -Dorg.slf4j.simpleLogger.defaultLogLevel="${JAVA_LOG_LEVEL:-warn}" \
  -cp "$JAR:$HERE/target/lib/*" "$MAIN" "$@"
