"""Write gardener.schema.json, the JSON schema of gardener.toml, from the pydantic model.

    .venv/bin/python scripts/config_schema.py

tests/test_config.py fails when the committed file differs from what the model generates.
"""

from __future__ import annotations

from pathlib import Path

from gardener.config import schema_text
from gardener.library.write import write_atomic

SCHEMA = Path(__file__).resolve().parent.parent / "gardener.schema.json"

if __name__ == "__main__":
    write_atomic(SCHEMA, schema_text())
    print(f"wrote {SCHEMA}")
