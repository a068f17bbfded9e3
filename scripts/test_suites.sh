#!/usr/bin/env bash
# The suite runs of `make test`: SQLite and PostgreSQL side by side (the machine has two
# cores and each run is mostly one Python process), so the pair takes about as long as the
# longer one. The PostgreSQL run streams its output; the SQLite run's output follows when
# both are done. Fails when either run fails, including pytest's exit 5 ("no tests").
# STORYHUB_TEST_SERIAL=1 runs them one after the other (easier to read locally).
# With CI=true a missing PostgreSQL is a failure; locally it is skipped with a warning.
set -uo pipefail
PY="${PY:-.venv/bin/python}"
PG_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/storyhub}"
logdir="$(mktemp -d)"
trap 'rm -rf "$logdir"' EXIT

run_sqlite() { env -u DATABASE_URL "$PY" -m pytest --durations=15 "$@"; }
run_postgres() { DATABASE_URL="$PG_URL" STORYHUB_REQUIRE_POSTGRES=1 "$PY" -m pytest --durations=15 "$@"; }

if ! "$PY" scripts/wait_for_db.py --url "$PG_URL" --timeout 5; then
  if [ "${CI:-}" = "true" ]; then echo "PostgreSQL is required when CI=true" >&2; exit 1; fi
  echo "WARNING: PostgreSQL not reachable at $PG_URL; skipping the PostgreSQL run." >&2
  run_sqlite "$@"
  exit $?
fi

if [ "${STORYHUB_TEST_SERIAL:-}" = "1" ]; then
  run_sqlite "$@"; sqlite_rc=$?
  run_postgres "$@"; pg_rc=$?
else
  start=$SECONDS
  run_sqlite "$@" >"$logdir/sqlite.log" 2>&1 &
  sqlite_pid=$!
  echo "== SQLite run started in the background (pid $sqlite_pid); PostgreSQL run follows =="
  run_postgres "$@"; pg_rc=$?
  wait "$sqlite_pid"; sqlite_rc=$?
  echo "== SQLite run output (both runs done in $((SECONDS - start)) s) =="
  cat "$logdir/sqlite.log"
fi
echo "== suite exit codes: sqlite=$sqlite_rc postgres=$pg_rc =="
[ "$sqlite_rc" -eq 0 ] && [ "$pg_rc" -eq 0 ]
