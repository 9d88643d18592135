#!/usr/bin/env bash
# Install everything naho needs, from PyPI and the npm registry only (Debian packages as fallback).
# Idempotent: re-running it only checks. Used by demo.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "naho setup: '$*' needs root; run it as root or install the package yourself" >&2; return 1; fi; }
apt_install() {
  [ -n "${NAHO_APT_UPDATED:-}" ] || { as_root apt-get update -qq; export NAHO_APT_UPDATED=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# 1. uv, the Python package manager that reads uv.lock.
if ! command -v uv >/dev/null 2>&1; then
  if [ -x "$HOME/.local/bin/uv" ]; then
    export PATH="$HOME/.local/bin:$PATH"
  elif [ -x .tools/bin/uv ]; then
    export PATH="$PWD/.tools/bin:$PATH"
  else
    echo "naho setup: installing uv from PyPI"
    if ! python3 -m venv .tools >/dev/null 2>&1; then
      apt_install python3-venv
      python3 -m venv .tools
    fi
    .tools/bin/pip install -q uv
    export PATH="$PWD/.tools/bin:$PATH"
  fi
fi

# 2. Python dependencies, exactly as locked; uses the machine's Python (never downloads one).
# Trust the system's certificate store: hospital networks often inspect TLS with their own CA.
export UV_PYTHON_DOWNLOADS=never UV_SYSTEM_CERTS="${UV_SYSTEM_CERTS:-1}" UV_NATIVE_TLS="${UV_NATIVE_TLS:-1}"
uv sync --frozen --quiet

# 3. Browser assets (htmx) from the npm registry, as locked; never committed, never from a CDN.
if ! command -v npm >/dev/null 2>&1; then
  echo "naho setup: installing npm from Debian's packages"
  apt_install npm
fi
if [ ! -f node_modules/htmx.org/dist/htmx.min.js ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
