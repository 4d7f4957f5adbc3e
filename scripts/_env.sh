# Shared by the scripts: create .venv and install the project (with dev tools) when needed.
VENV="${GARDENER_VENV:-.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "graph-gardener needs Python 3.11 or newer (found $("$PY" --version))" >&2; exit 2; }
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(cat pyproject.toml | cksum | cut -d' ' -f1)"
if [ ! -f "$stamp" ]; then
  echo "installing graph-gardener and its dependencies into $VENV ..." >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -e '.[dev]'
  rm -f "$VENV"/.installed-* && touch "$stamp"
fi
export PREFECT_HOME="${PREFECT_HOME:-$PWD/.venv/prefect-home}"
