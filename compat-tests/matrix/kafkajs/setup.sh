#!/usr/bin/env bash
# Installs the kafkajs scenario's pinned dependencies (package-lock.json)
# into ./node_modules. Quick when they are already installed for this lock
# file and this Node. lz4 and zstd-napi are compiled from source by npm
# (node-gyp against the system Node headers; no download from outside the
# npm registry). Needs: node >= 18, npm, g++, make, python3.
set -euo pipefail
cd "$(dirname "$0")"

stamp=node_modules/.gregor-setup-stamp
want="$(sha256sum package-lock.json | cut -d' ' -f1) node-$(node --version)"
smoke() {
  node -e "require('kafkajs'); require('kafkajs-snappy'); require('kafkajs-lz4');
           const z = require('zstd-napi'); z.decompress(z.compress(Buffer.from('x')));
           require('lz4').decode(require('lz4').encode(Buffer.from('x')))"
}
# node-gyp must compile against the running Node's own headers: downloading
# them is not possible here. Use the headers installed with that Node.
node_prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
if [[ -f $node_prefix/include/node/node.h ]]; then
  export npm_config_nodedir=$node_prefix
fi
if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]] && smoke 2>/dev/null; then
  echo "kafkajs: dependencies already installed"
  exit 0
fi

# zstd-napi tries a prebuilt binary first; skip that download and build it,
# on every core.
export npm_config_build_from_source=true JOBS=max
npm ci --no-audit --no-fund
smoke
echo "$want" > "$stamp"
echo "kafkajs: dependencies installed"
