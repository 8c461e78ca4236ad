#!/usr/bin/env bash
# Java kafka-clients transaction scenarios (gregor.compat.Transactions; used
# by compat-tests/python/test_txn_java.py):
#   compat-tests/java/txn.sh BOOTSTRAP SCENARIO PREFIX
#       SCENARIO: interleaved | fencing | ctp | crash-begin | crash-finish | crash-read | open
#       JSON lines on stdout; topics and transactional ids start with PREFIX.
#   compat-tests/java/txn.sh build      build only (quick when up to date)
# Builds on first use (Maven Central); JAVA_OPTS passes through,
# JAVA_LOG_LEVEL sets the clients' log level (warn).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=build.sh
source "$HERE/build.sh"
[ "${1:-}" = build ] && exit 0
# shellcheck disable=SC2086
exec java ${JAVA_OPTS:-} -Dorg.slf4j.simpleLogger.defaultLogLevel="${JAVA_LOG_LEVEL:-warn}" \
  -cp "$JAR:$HERE/target/lib/*" gregor.compat.Transactions "$@"
