#!/usr/bin/env bash
# The whole test suite: unit and black-box tests, librdkafka (rdkafka crate)
# compat tests, then the Python/kcat stock-client tests. Each starts its own
# brokers on free ports with temporary data dirs.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== dependencies"
bash tests/install-deps.sh

echo "== build"
cargo build --workspace --all-targets --locked
export GREGOR_BIN="$PWD/target/debug/gregor"

echo "== cargo test (protocol, storage, broker, e2e, librdkafka compat)"
cargo test --workspace --locked

echo "== stock clients: confluent-kafka, kafka-python, kcat"
python3 -m pytest compat-tests/python -q -p no:cacheprovider
