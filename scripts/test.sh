#!/usr/bin/env bash
# Set up and run the whole test suite: first on SQLite (the embedded default), then again
# on PostgreSQL + the Redis broker whenever those answer on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh

echo "==> pytest (SQLite, ORM broker)"
env -u DATABASE_URL -u REDIS_URL .venv/bin/python -m pytest "$@"

pg_up() { .venv/bin/python -c "import socket; socket.create_connection(('127.0.0.1', 5432), 2)" 2>/dev/null; }
redis_up() { .venv/bin/python -c "import socket; socket.create_connection(('127.0.0.1', 6379), 2)" 2>/dev/null; }
if pg_up; then
  export DATABASE_URL=${CURIO_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/curio}
  if redis_up; then export REDIS_URL=${CURIO_TEST_REDIS_URL:-redis://127.0.0.1:6379/15}; fi
  echo "==> pytest (PostgreSQL${REDIS_URL:+, Redis broker})"
  .venv/bin/python -m pytest "$@"
else
  echo "==> PostgreSQL not reachable on 127.0.0.1:5432: skipped the PostgreSQL run"
fi
