#!/usr/bin/env bash
# One command to the demo: install everything, then migrate, seed and serve on SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
export NAHO_MODE=development
exec uv run --frozen naho demo "$@"
