#!/usr/bin/env bash
# The kafkajs consumer-group scenario uses the kafkajs install of the sibling
# scenario (../kafkajs: kafkajs 2.2.4, pinned by its package-lock.json), so
# its setup is that one's. Idempotent and quick when already installed.
set -euo pipefail
cd "$(dirname "$0")"
../kafkajs/setup.sh
node -e "require('../kafkajs/node_modules/kafkajs')"
echo "kafkajs-groups: ready"
