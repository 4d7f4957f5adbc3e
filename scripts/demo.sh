#!/usr/bin/env bash
# Garden a copy of the bundled sample library (patterns/) with recorded model answers, offline.
# The copy lands in out/demo-library; patterns/ itself is never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_env.sh
rm -rf out/demo-library && mkdir -p out && cp -R patterns out/demo-library
"$VENV/bin/gardener" check out/demo-library --no-warnings
"$VENV/bin/gardener" run out/demo-library --fixtures fixtures --replay --report out/demo-report.json "$@"
echo "gardened copy: out/demo-library   report: out/demo-report.json"
echo "see what changed: diff -ru patterns out/demo-library"
