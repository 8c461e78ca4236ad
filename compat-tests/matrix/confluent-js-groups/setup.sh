#!/usr/bin/env bash
# The confluent-js consumer-group scenario uses the build of the sibling
# scenario (../confluent-js: @confluentinc/kafka-javascript 1.10.1 with its
# bundled librdkafka 2.15.1, pinned by its package-lock.json, built from
# source with CKJS_LINKING=dynamic), so its setup is that one's, including
# its check that the loaded librdkafka is the one the package was built
# for. Idempotent and quick when already built.
set -euo pipefail
cd "$(dirname "$0")"
../confluent-js/setup.sh
node -e "require('../confluent-js/node_modules/@confluentinc/kafka-javascript')"
echo "confluent-js-groups: ready"
