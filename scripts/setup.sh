#!/usr/bin/env bash
# Create .venv and install the project with its test extras. Reinstalls only when
# pyproject.toml changed since the last install, so repeated runs take a second.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.crm_pipelines_installed
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ] || ! .venv/bin/python -c "import crm_pipelines" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  echo "$wanted" > "$stamp"
fi
# The dbt manifest the rollup assets are built from, prepared at build time as dagster-dbt
# recommends, again whenever a file of the dbt project is newer than it.
manifest=dbt_project/target/manifest.json
if [ ! -f "$manifest" ] || [ -n "$(find dbt_project/models dbt_project/macros dbt_project/tests \
    dbt_project/dbt_project.yml dbt_project/profiles.yml -newer "$manifest" -print -quit)" ]; then
  PATH="$PWD/.venv/bin:$PATH" .venv/bin/dagster-dbt project prepare-and-package \
    --file crm_pipelines/assets/dbt.py >/dev/null
fi
