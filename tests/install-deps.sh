#!/usr/bin/env bash
# Installs what the test suite needs beyond Rust, pinned, and says what
# before installing it; a quick no-op when everything is present.
#
# - System-wide, through apt (sudo when not root), only what is missing:
#   kcat, librdkafka's build headers, pkg-config, and python3-venv when
#   `python3 -m venv` cannot make a virtual environment.
# - Python packages (compat-tests/python/requirements.txt) go into a
#   project-local virtual environment, <repo>/.venv (GREGOR_VENV=DIR for
#   another place), never into the machine's Python. An activated
#   VIRTUAL_ENV is deliberately not used: this script only changes
#   environments it created. A stamp in the venv (requirements hash and
#   Python version) makes later runs skip pip; delete the venv to rebuild it.
#
# Run the Python tests with the venv's interpreter:
#   .venv/bin/python -m pytest compat-tests/python -q
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

apt_install() {
  echo "install-deps: installing apt packages (system-wide): $*"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "$@" >/dev/null
}

# kcat is Debian's (librdkafka 2.0.2: an old, strict client worth testing
# against); the -dev packages are what librdkafka's vendored build links.
need_apt=()
command -v kcat >/dev/null 2>&1 || need_apt+=(kcat)
for pkg in libssl-dev libsasl2-dev libzstd-dev liblz4-dev zlib1g-dev libcurl4-openssl-dev pkg-config; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  apt_install "${need_apt[@]}"
fi

command -v python3 >/dev/null || { echo "install-deps: python3 is not installed" >&2; exit 1; }
VENV="${GREGOR_VENV:-.venv}"
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac  # relative to the repo
REQ=compat-tests/python/requirements.txt
stamp="$VENV/.gregor-requirements"
want="$(sha256sum "$REQ" | cut -d' ' -f1) python $(python3 -c 'import sys; print(sys.version.split()[0])')"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  echo "install-deps: Python test dependencies already in $VENV"
  exit 0
fi

# Rebuilt rather than patched, so that no package of an older pin list (or
# of another Python) stays behind. Only a venv this script made is removed.
if [ -e "$VENV" ]; then
  if [ -f "$stamp" ] || [ "$VENV" = "$PWD/.venv" ]; then
    rm -rf "$VENV"
  else
    echo "install-deps: $VENV exists but was not made by this script; remove it or set GREGOR_VENV elsewhere" >&2
    exit 1
  fi
fi
echo "install-deps: creating the virtual environment $VENV ($(python3 --version))"
if ! err=$(python3 -m venv "$VENV" 2>&1); then
  rm -rf "$VENV"
  # Debian and Ubuntu ship venv's pip bootstrap (ensurepip) separately.
  if command -v apt-get >/dev/null && ! dpkg -s python3-venv >/dev/null 2>&1; then
    apt_install python3-venv
    python3 -m venv "$VENV"
  else
    echo "$err" >&2
    exit 1
  fi
fi

echo "install-deps: installing into $VENV with pip, from PyPI (and what these need):"
grep -Ev '^[[:space:]]*(#|$)' "$REQ" | sed 's/^/  /'
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$REQ"
echo "$want" > "$stamp"
echo "install-deps: Python test dependencies installed in $VENV"
