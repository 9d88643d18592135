#!/usr/bin/env bash
# One command to the whole test suite: install everything, lint, then run the tests on SQLite
# and on PostgreSQL (NAHO_TEST_POSTGRES_URL, default the local server with trust auth).
# With NAHO_REQUIRE_SERVICES=1 (CI) a missing service fails instead of being skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

echo "== lint: ruff, import contracts, types of the rules"
uv run --frozen ruff check naho tests bench
uv run --frozen lint-imports
uv run --frozen mypy

PG_URL="${NAHO_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
status=0
echo "== tests on SQLite"
NAHO_TEST_DATABASE_URL="sqlite://" uv run --frozen pytest "$@" || status=$?

if uv run --frozen python -c "import psycopg, sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$PG_URL" 2>/dev/null; then
  echo "== tests on PostgreSQL"
  NAHO_TEST_DATABASE_URL="$PG_URL" uv run --frozen pytest "$@" || status=$?
elif [ "${NAHO_REQUIRE_SERVICES:-0}" = 1 ]; then
  echo "PostgreSQL is required but not reachable at $PG_URL" >&2
  status=1
else
  echo "== PostgreSQL not reachable at $PG_URL: its run is skipped (set NAHO_TEST_POSTGRES_URL)"
fi
exit "$status"
