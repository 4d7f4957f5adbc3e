"""Generated libraries: ``n`` pattern files made of copies of the sample library.

The tests and benchmarks that need more patterns than ``patterns/`` holds (a pass of 40, a
benchmark of 400) copy it under suffixed slugs, every reference rewired, so each copy is a
closed, fully resolved graph.
"""

from __future__ import annotations

import re
from pathlib import Path

from gardener.library.calibration import (
    RANKER_FEATURES,
    Calibration,
    save_calibration,
    shipped,
)

CHECKOUT = Path(__file__).resolve().parents[2]
"""The repository this package was imported from (the test doubles are not in the wheel)."""
SAMPLES = CHECKOUT / "patterns"
"""The sample library."""


def copy_samples(folder: Path, names: tuple[str, ...] = (), samples: Path = SAMPLES) -> Path:
    """The sample library's pattern files (those named by ``names``, else all) in
    ``folder``, writable whatever their mode in the checkout."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(samples.glob("*.md")):
        if path.name != "README.md" and (not names or path.stem in names):
            (folder / path.name).write_bytes(path.read_bytes())
            (folder / path.name).chmod(0o644)
    return folder


def generate(folder: Path, n: int, samples: Path = SAMPLES) -> list[Path]:
    """``n`` pattern files made from the sample library, copy ``k`` of each with slugs ``-k``.

    Every sample slug in a copy's text (its own, and its human relationships) gets the same
    suffix, so each copy of the sample library is a closed, fully resolved graph.
    """
    sources = sorted(p for p in samples.glob("*.md") if p.name != "README.md")
    slugs = [p.stem for p in sources]
    pattern = re.compile(r"(?<![a-z0-9-])(" + "|".join(
        re.escape(s) for s in sorted(slugs, key=len, reverse=True)) + r")(?![a-z0-9-])")
    texts = [p.read_bytes().decode("utf-8") for p in sources]
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for i in range(n):
        k, s = divmod(i, len(sources))
        text = pattern.sub(lambda m, k=k: f"{m.group(1)}-{k}", texts[s])  # type: ignore[misc]
        path = folder / f"{slugs[s]}-{k}.md"
        path.write_bytes(text.encode("utf-8"))
        written.append(path)
    return written


def trust_the_model(library: Path, model: str) -> Path:
    """Give ``library`` a calibration under which ``model``'s every pick is written (chance
    0.99) and no candidate it did not pick (0.01): what a library has that calibrated on a
    model whose picks matched its people's. Tests of the mechanics around the links (review,
    the Action, the attacks) use it so that a fake model's links are written as it gives them."""
    trusting = Calibration.model_validate({
        **shipped().model_dump(mode="json"),
        "features": [*RANKER_FEATURES, "model_link"], "coefficients": [0, 0, 0, 0, 9.2],
        "intercept": -4.6, "model": model, "shipped": False, "library": library.name})
    return save_calibration(library, trusting)
