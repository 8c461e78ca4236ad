#!/usr/bin/env bash
# Installs what the test suite needs beyond Rust and Python, pinned; quick
# no-op when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# kcat is Debian's (librdkafka 2.0.2: an old, strict client worth testing
# against); the -dev packages are what librdkafka's vendored build links.
need_apt=()
command -v kcat >/dev/null 2>&1 || need_apt+=(kcat)
for pkg in libssl-dev libsasl2-dev libzstd-dev liblz4-dev zlib1g-dev libcurl4-openssl-dev pkg-config; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "installing apt packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Python stock clients at the pinned versions.
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
  -r compat-tests/python/requirements.txt
