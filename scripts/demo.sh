#!/usr/bin/env bash
# First command of the README: set up, generate data, and run the whole pipeline once.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/crm-pipelines demo "$@"
