#!/usr/bin/env bash
# What a user gets from `pip install`: build the wheel, install it into a fresh venv (no
# checkout on its path), check its top level is `gardener` only, and run a replayed pass
# over a copy of patterns/ that must give tests/golden/ byte for byte. Run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_env.sh
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$VENV/bin/python" -m build --wheel --outdir "$work/dist" . >"$work/build.log" 2>&1 \
  || { tail -20 "$work/build.log" >&2; exit 1; }
wheel="$(ls "$work"/dist/*.whl)"
top="$("$VENV/bin/python" - "$wheel" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
print(" ".join(sorted({n.split("/")[0] for n in names if ".dist-info/" not in n})))
PY
)"
[ "$top" = "gardener" ] || { echo "wheel top level is '$top', expected 'gardener'" >&2; exit 1; }
"$PY" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "$wheel"
cp -r patterns "$work/library"
cp -r fixtures "$work/fixtures"
# Outside the checkout, with the network's variables unset: only the installed package runs.
(cd "$work" && env -u OPENAI_BASE_URL -u OPENAI_API_KEY -u GARDENER_MODEL \
   PREFECT_HOME="$work/prefect-home" \
   "$work/venv/bin/gardener" run library --fixtures fixtures --replay --today 2026-02-19 \
   --report report.json)
for golden in tests/golden/*.md; do
  cmp -s "$golden" "$work/library/$(basename "$golden")" \
    || { echo "$(basename "$golden"): the installed wheel's pass differs from tests/golden" >&2; exit 1; }
done
echo "wheel check: $(basename "$wheel") installs alone and its replayed pass gives tests/golden/"
