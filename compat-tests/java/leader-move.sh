#!/usr/bin/env bash
# Java kafka-clients leader-move scenario of issue 11 (gregor.compat.LeaderMove;
# used by compat-tests/python/test_leader_move.py), against Gregor's virtual
# cluster (gregor serve --virtual-brokers 3 --admin-listen ADDR):
#   compat-tests/java/leader-move.sh BOOTSTRAP ADMIN_URL PREFIX
#       BOOTSTRAP: host:port or a comma list; ADMIN_URL: http://host:port (or host:port)
#       of the admin API; topics and groups start with PREFIX. JSON lines on
#       stdout, the last {"event":"summary","ok":...}; exit 1 when a check failed.
#       LEADER_MOVE_RECORDS sets the number of records (20000).
#   compat-tests/java/leader-move.sh build      build only (quick when up to date)
# Builds on first use (Maven Central); JAVA_OPTS passes through,
# JAVA_LOG_LEVEL sets the clients' log level (warn).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=build.sh
source "$HERE/build.sh"
[ "${1:-}" = build ] && exit 0
# shellcheck disable=SC2086
exec java ${JAVA_OPTS:-} -Dorg.slf4j.simpleLogger.defaultLogLevel="${JAVA_LOG_LEVEL:-warn}" \
  -cp "$JAR:$HERE/target/lib/*" gregor.compat.LeaderMove "$@"
