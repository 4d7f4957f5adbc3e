#!/usr/bin/env bash
# Run the whole test suite (lint, types, tests) on a fresh machine: sets up .venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_env.sh
echo "== ruff"; "$VENV/bin/ruff" check .
echo "== mypy"; "$VENV/bin/mypy"
echo "== pytest"; "$VENV/bin/python" -m pytest -q "$@"
