#!/usr/bin/env bash
# Installs the kafkajs transactions scenario's pinned dependency (kafkajs
# 2.2.4, the same pin as ../kafkajs, by package-lock.json) into
# ./node_modules. No codecs: the scenario produces uncompressed batches, so
# nothing is compiled. Quick when already installed for this lock file and
# this Node. Needs: node >= 18, npm.
set -euo pipefail
cd "$(dirname "$0")"

stamp=node_modules/.gregor-setup-stamp
want="$(sha256sum package-lock.json | cut -d' ' -f1) node-$(node --version)"
smoke() {
  node -e "require('kafkajs')"
}
if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]] && smoke 2>/dev/null; then
  echo "kafkajs-txn: dependencies already installed"
  exit 0
fi
npm ci --no-audit --no-fund
smoke
echo "$want" > "$stamp"
echo "kafkajs-txn: dependencies installed"
