#!/usr/bin/env bash
# The integration tests use the real PostgreSQL at 127.0.0.1:5432 (user postgres, database
# test). Start the local cluster if it is down and wait until it accepts connections.
set -euo pipefail
HOST=${PGHOST_TEST:-127.0.0.1}
ready() { pg_isready -q -h "$HOST" -p 5432; }
if ! ready; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  for _ in $(seq 1 60); do ready && break; sleep 0.5; done
fi
if ! ready; then
  echo "PostgreSQL is not reachable at $HOST:5432; the integration tests need it." >&2
  exit 1
fi
if ! psql -h "$HOST" -U postgres -d postgres -tAc "select 1 from pg_database where datname = 'test'" | grep -q 1; then
  psql -h "$HOST" -U postgres -d postgres -c "create database test"
fi
