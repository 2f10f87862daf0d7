#!/usr/bin/env bash
# Second command of the README: set up, make sure PostgreSQL is up, and run the tests on two
# processes, the longest first (tests/conftest.py orders them) with work stealing so neither
# process idles while the other holds a queue, naming the fifteen slowest. Arguments go to
# pytest after these: `-n 0` runs in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/ensure_postgres.sh
exec .venv/bin/python -m pytest -n "${CRM_PIPELINES_TEST_WORKERS:-2}" --dist worksteal --durations=15 "$@"
