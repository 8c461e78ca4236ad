#!/usr/bin/env bash
# Builds the franz-go leader-move scenario into ./scenario, with the client version pinned by
# go.mod/go.sum (modules come from the Go module proxy into the Go module
# cache, outside the repo). Quick when the binary is up to date.
set -euo pipefail
cd "$(dirname "$0")"
command -v go >/dev/null || { echo "setup.sh: go is not installed" >&2; exit 1; }
go build -mod=readonly -buildvcs=false -o scenario .
