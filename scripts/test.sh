#!/usr/bin/env bash
# Second command of the README: set up, make sure PostgreSQL is up, and run the tests on two
# processes, naming the fifteen slowest. xdist hands out whole modules, the longest first
# (tests/conftest.py orders them): a module's shared state (each CRM's pushed export) is then
# built once, and neither process ends with a queue of long tests while the other idles.
# Arguments go to pytest after these: `-n 0` runs in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/ensure_postgres.sh
exec .venv/bin/python -m pytest -n "${CRM_PIPELINES_TEST_WORKERS:-2}" --dist loadscope --no-loadscope-reorder \
  --durations=15 "$@"
