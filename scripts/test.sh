#!/usr/bin/env bash
# Run the whole test suite (lint, types, tests) on a fresh machine: sets up .venv on first use.
# The tests run in GARDENER_TEST_WORKERS processes (pytest-xdist; default 2, 0 for one
# process), each taking whole files, so a module's fixtures are made once (tests/conftest.py
# gives each worker its own Prefect home).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_env.sh
workers="${GARDENER_TEST_WORKERS:-2}"
parallel=()
[ "$workers" = "0" ] || parallel=(-n "$workers" --dist loadfile)
echo "== ruff"; "$VENV/bin/ruff" check .
echo "== mypy"; "$VENV/bin/mypy"
echo "== pytest"; "$VENV/bin/python" -m pytest -q "${parallel[@]}" "$@"
