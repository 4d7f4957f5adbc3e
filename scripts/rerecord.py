"""Re-record the sample library's model answers, or regenerate the golden files from them.

The fixtures (``fixtures/``) are the bundled model's real answers for ``patterns/`` (recorded
with no endpoint configured, as a newcomer runs), and ``tests/golden/`` is what replaying them
writes. After a deliberate change to the prompt, the schema, the profile or the writer::

    .venv/bin/python scripts/rerecord.py --record   # fixtures/ afresh (needs the local extra)
    .venv/bin/python scripts/rerecord.py --golden   # tests/golden/ from the fixtures

then review the diff.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from typer.testing import CliRunner

from gardener.cli.main import app
from gardener.endpoint.settings import ENDPOINT_VARIABLES
from gardener.local.server import missing_modules
from gardener.testing.libraries import copy_samples

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
GOLDEN = ROOT / "tests" / "golden"
TODAY = "2026-02-19"
"""The date the golden files' ``last_pruned`` says (``tests/test_flows.py`` replays with it)."""




def _run(*args: str) -> None:
    result = CliRunner().invoke(app, ["run", *args], catch_exceptions=False)
    print(result.output)
    if result.exit_code != 0:
        raise SystemExit(result.exit_code)


def record() -> None:
    missing = missing_modules()
    if missing:
        raise SystemExit(f"recording needs the 'local' extra (missing: {', '.join(missing)}): "
                         "pip install -e '.[local]'")
    for folder in FIXTURES.iterdir():  # exchanges of an older prompt would never replay
        if folder.is_dir():
            shutil.rmtree(folder)
    with tempfile.TemporaryDirectory() as tmp:
        lib = copy_samples(Path(tmp) / "library")
        _run(str(lib), "--fixtures", str(FIXTURES), "--record", "--today", TODAY)


def golden() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        lib = copy_samples(Path(tmp) / "library")
        _run(str(lib), "--fixtures", str(FIXTURES), "--replay", "--today", TODAY)
        GOLDEN.mkdir(exist_ok=True)
        for path in sorted(lib.glob("*.md")):
            shutil.copyfile(path, GOLDEN / path.name)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="record fixtures/ afresh")
    parser.add_argument("--golden", action="store_true", help="regenerate tests/golden/")
    args = parser.parse_args(argv)
    if not (args.record or args.golden):
        parser.error("say --record, --golden or both")
    for name in ENDPOINT_VARIABLES:
        os.environ.pop(name, None)
    if args.record:
        record()
    if args.golden:
        golden()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
