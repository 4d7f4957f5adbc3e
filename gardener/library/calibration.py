"""What a link's confidence means: the chance that people would have made it.

A pass proposes links from what it knows of each candidate (the ranker's rank and scores, the
model's decision); a ``Calibration`` turns those into the chance that a link is one people
made, fitted on a library's own human relationships (``gardener evaluate --calibrate``,
``gardener.pipeline.calibrate``). It is a logistic regression stored as plain numbers, so a
pass applies it with no fitting library loaded, and every value is checked when read.

Where it comes from: ``.gardener/calibration.json`` of the library when there is one and it
fits the pass's model; else the default shipped beside this module, fitted on Commons
Engineering's links from the ranker's signals alone (``bench/calibration.py`` re-fits it),
which says so wherever its numbers are shown.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gardener.errors import UsageError, brief
from gardener.library.bounded import check_json_depth, decode, read_capped_bytes
from gardener.library.state import STATE_DIR
from gardener.library.write import write_atomic

CALIBRATION_FILE = "calibration.json"
"""Under the library's ``.gardener/`` folder."""
MAX_CALIBRATION_BYTES = 1024 * 1024
"""A calibration is a few numbers and a reliability table: a page of JSON."""
FORMAT = 1
SHIPPED = "calibration.json"
"""The shipped default, beside this module (package data)."""

RANKER_FEATURES = ("log_rank", "lexical", "in_link", "two_hop")
"""What the ranker knows of a candidate: the log of its rank (1 = best), its lexical score
scaled so the pattern's best match is 1, whether the candidate already links to the pattern
(people's own relationship from the other side), and its closeness in the curated graph."""
MODEL_FEATURES = ("model_link", "model_confidence")
"""What the model said: whether it proposed the link (1 or 0), and its stated confidence."""
FEATURES = (*RANKER_FEATURES, *MODEL_FEATURES)
Feature = Literal["log_rank", "lexical", "in_link", "two_hop", "model_link", "model_confidence"]


class Bin(BaseModel):
    """One row of the reliability table: links predicted in [low, high), how many, the mean
    predicted chance, and the share of them people had made."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    low: float = Field(ge=0, le=1)
    high: float = Field(ge=0, le=1)
    n: int = Field(ge=0)
    predicted: float | None = Field(default=None, ge=0, le=1)
    observed: float | None = Field(default=None, ge=0, le=1)


class Measured(BaseModel):
    """How the calibration did on patterns held out of its fit (cross-validation)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    folds: int = Field(ge=2, le=1000)
    ece: float = Field(ge=0, le=1)
    """Expected calibration error over ``bins`` equal-width bins."""
    brier: float = Field(ge=0, le=1)
    log_loss: float = Field(ge=0, le=100)
    threshold: float = Field(ge=0, le=1)
    written: int = Field(ge=0)
    """Candidates at or above ``threshold``: the links a pass would have written."""
    matched: int = Field(ge=0)
    """Of those, the ones people had made."""
    ranker_matched: int = Field(ge=0)
    """Hits of the ranker's own top m of each pattern, m = the links written for it."""
    bins: tuple[Bin, ...] = ()
    tried: dict[str, float] = Field(default_factory=dict, max_length=8)
    """The held-out log loss of each set of features tried (``ranker``, ``ranker+model``):
    the model's decisions are kept only when they lower it."""

    @property
    def precision(self) -> float:
        return self.matched / self.written if self.written else 0.0


class Calibration(BaseModel):
    """A fitted calibration: the chance a link is one people made, from what a pass knows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: int = FORMAT
    method: str = Field(max_length=200)
    features: tuple[Feature, ...] = Field(min_length=1, max_length=len(FEATURES))
    coefficients: tuple[float, ...]
    intercept: float
    candidates: int = Field(ge=1, le=200)
    """The ranker's top this-many of each pattern were the fit's candidates: a pass weighs
    as many (and every link the model proposed)."""
    model: str | None = Field(default=None, max_length=300)
    """The model whose decisions were features; None when fitted on the ranker alone."""
    prompt_version: str | None = Field(default=None, max_length=100)
    library: str = Field(max_length=300)
    """The library it was fitted on, by name."""
    fingerprint: str = Field(max_length=100)
    """Of the human relationships it was fitted on (slug, target and kind of each)."""
    patterns: int = Field(ge=1)
    samples: int = Field(ge=1)
    date: str = Field(max_length=40)
    measured: Measured
    shipped: bool = False
    """The default that comes with the gardener, fitted on another library."""

    @model_validator(mode="after")
    def _shape(self) -> Calibration:
        if self.format != FORMAT:
            raise ValueError(f"format {self.format} is not {FORMAT}")
        if len(set(self.features)) != len(self.features):
            raise ValueError("a feature is named twice")
        if len(self.coefficients) != len(self.features):
            raise ValueError(f"{len(self.coefficients)} coefficients for "
                             f"{len(self.features)} features")
        if not all(math.isfinite(x) and abs(x) < 1e6 for x in (*self.coefficients,
                                                                self.intercept)):
            raise ValueError("a coefficient is not a finite number of reasonable size")
        if self.uses_model and not self.model:
            raise ValueError("the model's decisions are features but no model is named")
        return self

    @property
    def uses_model(self) -> bool:
        return any(f in MODEL_FEATURES for f in self.features)

    def probability(self, values: Mapping[str, float]) -> float:
        """The chance that a link with these feature ``values`` is one people made."""
        z = self.intercept + sum(c * float(values.get(f, 0.0))
                                 for f, c in zip(self.features, self.coefficients,
                                                 strict=True))
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def fits(self, model: str) -> bool:
        """Whether a pass with ``model`` may use it: the ranker alone fits every model; a fit
        on a model's decisions only that model's."""
        return not self.uses_model or self.model == model

    def line(self) -> str:
        """What its numbers say, in one line for a pull request or a health page."""
        m = self.measured
        who = f"model {self.model}" if self.model else "the candidate ranker alone"
        said = (f"links at confidence {m.threshold:g} or more matched people's own links "
                f"{m.precision:.0%} of the time (n={self.patterns} patterns, {m.written} "
                f"links, {who}, {self.date}; expected calibration error {m.ece:.3f})")
        if self.shipped:
            return (f"Confidence is not yet calibrated for this library: the shipped default "
                    f"was fitted on {self.library}, where {said}. Calibrate with `gardener "
                    "evaluate LIBRARY --calibrate`.")
        return f"Confidence calibrated on {self.library}: {said}."


def calibration_path(root: Path) -> Path:
    return root / STATE_DIR / CALIBRATION_FILE


def parse(text: str, where: str) -> Calibration:
    """A calibration from its JSON text; a `UsageError` naming ``where`` when it is not one."""
    check_json_depth(text, where)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg}); write it "
                         "again with `gardener evaluate LIBRARY --calibrate`, or delete it "
                         "to use the shipped default") from None
    try:
        return Calibration.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        at = ".".join(str(p) for p in first["loc"]) or "top level"
        raise UsageError(f"{where}: not a calibration ({at}: {first['msg']}, got "
                         f"{brief(first.get('input'))}); write it again with `gardener "
                         "evaluate LIBRARY --calibrate`, or delete it") from None


def shipped() -> Calibration:
    """The default shipped with the gardener (ranker signals only)."""
    text = resources.files("gardener.library").joinpath(SHIPPED).read_text(encoding="utf-8")
    return parse(text, f"gardener/library/{SHIPPED}")


def load_calibration(root: Path) -> Calibration | None:
    """The library's own calibration, or None when it has none."""
    path = calibration_path(root)
    try:
        data, _ = read_capped_bytes(path, MAX_CALIBRATION_BYTES)
    except FileNotFoundError:
        return None
    return parse(decode(data, path), str(path))


def save_calibration(root: Path, calibration: Calibration) -> Path:
    """Write ``calibration`` as the library's own (``.gardener/calibration.json``)."""
    path = calibration_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(calibration.model_dump(mode="json"), indent=2) + "\n",
                 within=root)
    return path


def calibration_for(root: Path, model: str) -> tuple[Calibration, str | None]:
    """The calibration a pass over ``root`` with ``model`` uses, and why it is not the
    library's own when it is not (None when it is)."""
    own = load_calibration(root)
    if own is None:
        return shipped(), None
    if not own.fits(model):
        return shipped(), (f"{calibration_path(root)} was fitted on model {own.model}'s "
                           f"decisions, not {model}'s; the shipped default is used")
    return own, None
