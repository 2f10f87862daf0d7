#!/usr/bin/env bash
# Second command of the README: set up, make sure PostgreSQL is up, run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/ensure_postgres.sh
exec .venv/bin/python -m pytest "$@"
