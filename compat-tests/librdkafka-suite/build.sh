#!/usr/bin/env bash
# Builds librdkafka's own regression suite (tests/test-runner) from the
# librdkafka sources the rdkafka-sys crate vendors (2.12.1, the version the
# Rust compat tests link), into target/librdkafka-suite. Prints the path
# of the tests directory. A second run reuses the build.
#
# Needs a C and C++ compiler and the -dev packages tests/install-deps.sh
# installs (zstd, lz4, zlib). SSL, SASL and curl are left out: Gregor serves
# none of them, and the suite skips the tests that need them.
# The ACL and SCRAM sub-tests of 0081 are switched off in the copy (below).
set -euo pipefail
cd "$(dirname "$0")/../.."

out=target/librdkafka-suite
stamp=$out/.built
if [ -f "$stamp" ] && [ -x "$out/librdkafka/tests/test-runner" ]; then
  echo "$PWD/$out/librdkafka/tests"
  exit 0
fi

cargo fetch --locked >/dev/null 2>&1 || true
src=$(cargo metadata --format-version 1 --locked 2>/dev/null | python3 -c '
import json, os, sys
m = json.load(sys.stdin)
p = [p for p in m["packages"] if p["name"] == "rdkafka-sys"]
print(os.path.join(os.path.dirname(p[0]["manifest_path"]), "librdkafka") if p else "")
')
if [ -z "$src" ] || [ ! -d "$src/tests" ]; then
  echo "build.sh: librdkafka sources not found (rdkafka-sys in cargo metadata)" >&2
  exit 1
fi

rm -rf "$out"
mkdir -p "$out"
cp -r "$src" "$out/librdkafka"
chmod -R u+w "$out/librdkafka"
# 0081 (the admin API) also creates ACLs and SCRAM credentials: Gregor
# serves neither (no authorizer, no SASL), so those sub-tests are switched
# off in this copy; every other sub-test of 0081 runs.
python3 - "$out/librdkafka/tests/0081-admin.c" <<'PY'
import sys
p = sys.argv[1]
off = ("do_test_CreateAcls(rk", "do_test_DescribeAcls(rk", "do_test_DeleteAcls(rk",
       'do_test_UserScramCredentials("')
lines = open(p).read().split("\n")
n = 0
for i, ln in enumerate(lines):
    if ln.startswith("        ") and any(ln.lstrip().startswith(o) for o in off):
        lines[i] = ln.replace("do_test_", "if (0) do_test_", 1)
        n += 1
assert n == 9, f"expected 9 ACL/SCRAM sub-test calls in {p}, found {n}"
open(p, "w").write("\n".join(lines))
PY
log=$PWD/$out/build.log
(
  cd "$out/librdkafka"
  ./configure --disable-ssl --disable-gssapi --disable-sasl --disable-curl
  make -j"$(nproc)" libs
  make -C tests -j"$(nproc)" build
) >"$log" 2>&1 || {
  echo "build.sh: building librdkafka's test suite failed; the last lines of $log:" >&2
  tail -20 "$log" >&2
  exit 1
}
touch "$stamp"
echo "$PWD/$out/librdkafka/tests"
