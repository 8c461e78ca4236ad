#!/usr/bin/env bash
# The whole test suite: unit, codec, storage and black-box tests; librdkafka
# (rdkafka crate) data-path and group tests; differential tests against the
# reference Apache Kafka; then the Python, kcat and client-matrix tests. Each
# starts its own brokers on free ports with temporary data dirs.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== dependencies"
bash tests/install-deps.sh
# The Python tests run in the project's virtual environment, first on PATH so
# that any python3 a test or matrix script starts is that one too.
VENV="${GREGOR_VENV:-.venv}"
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
export VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH"

echo "== build"
cargo build --workspace --all-targets --locked
export GREGOR_BIN="$PWD/target/debug/gregor"

echo "== cargo test (protocol, storage, broker, e2e, librdkafka, groups, differential)"
cargo test --workspace --locked

echo "== stock clients: Python, kcat, and every compat-tests/matrix program"
# The matrix programs also run against the reference Apache Kafka, so that
# a scenario that passes on Gregor is known to be right about Kafka too.
# GREGOR_MATRIX_REFERENCE=0 skips that half.
export GREGOR_MATRIX_REFERENCE="${GREGOR_MATRIX_REFERENCE-1}"
"$VENV/bin/python" -m pytest compat-tests/python -q -p no:cacheprovider
