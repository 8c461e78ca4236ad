#!/usr/bin/env bash
# Installs the confluent-js scenario's pinned dependency
# (@confluentinc/kafka-javascript, package-lock.json) into ./node_modules.
# Quick when it is already built for this lock file and this Node.
#
# A plain `npm install` of @confluentinc/kafka-javascript downloads a prebuilt
# binary from outside the npm registry, which is unreachable here. Instead it
# is built from the package's own sources: CKJS_LINKING=dynamic builds the
# librdkafka bundled in the npm tarball as a shared library next to the
# addon (build/deps/librdkafka.so.1, found through the addon's rpath) against
# the system's OpenSSL, Cyrus SASL, zstd, lz4, zlib and curl; the default
# static route runs librdkafka's configure --install-deps, which downloads
# those from outside too. Debian's own librdkafka (2.0.2) is neither used nor
# usable (the addon needs the 2.3+ admin API: rd_kafka_ListOffsets,
# rd_kafka_DescribeTopics). About 2 minutes on 2 cores.
# Needs: node >= 18, npm, g++, make, python3, pkg-config and the -dev packages
# below (installed with apt-get when missing and running as root).
set -euo pipefail
cd "$(dirname "$0")"

stamp=node_modules/.gregor-setup-stamp
want="$(sha256sum package-lock.json | cut -d' ' -f1) node-$(node --version)"
smoke() {
  node -e "
    const K = require('@confluentinc/kafka-javascript');
    const want = require('@confluentinc/kafka-javascript/package.json').librdkafka;
    if (K.librdkafkaVersion !== want) throw new Error('loaded librdkafka ' + K.librdkafkaVersion + ', expected ' + want);
    for (const f of ['gzip', 'snappy', 'lz4', 'zstd'])
      if (!K.features.includes(f)) throw new Error('librdkafka built without ' + f);"
}
# node-gyp must compile against the running Node's own headers: downloading
# them is not possible here. Use the headers installed with that Node.
node_prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
if [[ -f $node_prefix/include/node/node.h ]]; then
  export npm_config_nodedir=$node_prefix
fi
if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]] && smoke 2>/dev/null; then
  echo "confluent-js: dependencies already installed"
  exit 0
fi

debs=(libssl-dev libsasl2-dev libzstd-dev liblz4-dev zlib1g-dev libcurl4-openssl-dev pkg-config)
missing=()
for d in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$d" 2>/dev/null | grep -q 'install ok installed' || missing+=("$d")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "confluent-js: missing packages ${missing[*]} (apt-get install them as root)" >&2
    exit 1
  fi
  echo "confluent-js: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# Build from source, skipping node-pre-gyp's download attempt. No JOBS=max
# here: the addon's gyp file races its own librdkafka configure step under a
# parallel make (librdkafka's make is parallel anyway).
export CKJS_LINKING=dynamic npm_config_build_from_source=true
npm ci --no-audit --no-fund
smoke
echo "$want" > "$stamp"
echo "confluent-js: dependencies installed"
