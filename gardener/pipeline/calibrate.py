"""Fit a calibration from a library's own human links: ``gardener evaluate --calibrate``.

Each sample is one candidate of one held-out pattern: what a pass knows of it (the ranker's
signals, the model's decision) and whether people had linked it (the hidden relationships).
scikit-learn's ``LogisticRegression`` fits the chance of the latter from the former; it is
measured on patterns held out of the fit (``GroupKFold`` by pattern, so no pattern is scored
by a fit that saw it), then fitted on all and stored as plain numbers
(``gardener.library.calibration``), which a pass applies without scikit-learn.

The model's decision enters the fit only when it lowers the held-out log loss: a model whose
picks say nothing the ranker does not gets no weight, and the pass is then the ranker's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss
from sklearn.model_selection import GroupKFold

from gardener.errors import UsageError
from gardener.library.calibration import (
    FEATURES,
    RANKER_FEATURES,
    Bin,
    Calibration,
    Measured,
)
from gardener.model import MIN_CONFIDENCE, Pattern
from gardener.pipeline.holdout import Gold
from gardener.shortlist.candidates import CandidateIndex
from gardener.shortlist.signals import signals

FIT_CANDIDATES = 12
"""The ranker's top this-many of each held-out pattern are the fit's samples: past it, people's
links are rare (about 1 in 20 on Commons Engineering) and the chance is near zero anyway."""
FOLDS = 10
BINS = 10
REGULARISATION = 1.0
"""scikit-learn's default ``C``; 0.1 and 10 calibrated no better on Commons Engineering
(docs/quality.md, ``bench/calibration.py``)."""


def method(c: float) -> str:
    return f"logistic regression (scikit-learn LogisticRegression, C={c:g})"


@dataclass(frozen=True)
class Sample:
    """One candidate of one held-out pattern."""

    pattern: str
    target: str
    features: dict[str, float]
    made: bool
    """People had linked it (a hidden human relationship)."""


def fingerprint(golds: Mapping[str, Gold]) -> str:
    """Of the human relationships a fit rests on: slug, target and kinds of each."""
    lines = sorted(f"{slug}\t{target}\t{','.join(sorted(kinds))}"
                   for slug, gold in golds.items() for target, kinds in gold.items())
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def samples(index: CandidateIndex, pattern: Pattern, gold: Gold,
            said: Mapping[str, float], shown: int) -> list[Sample]:
    """The calibration's samples of one held-out pattern: the ranker's top
    ``FIT_CANDIDATES`` and every link the model proposed (``said``: target -> its stated
    confidence; ``shown``: the candidates it was offered), each labelled by whether people
    had made it."""
    out = []
    for s in signals(index, pattern, max(FIT_CANDIDATES, shown)):
        if s.rank > FIT_CANDIDATES and s.slug not in said:
            continue
        values = s.features()
        values["model_link"] = 1.0 if s.slug in said else 0.0
        values["model_confidence"] = said.get(s.slug, 0.0)
        out.append(Sample(pattern.slug, s.slug, values, s.slug in gold))
    return out


def ranker_samples(patterns: Sequence[Pattern], golds: Mapping[str, Gold]) -> list[Sample]:
    """Samples from the ranker alone: each pattern of ``golds`` loses its own relationships
    (one at a time, in an index of the rest as they are) and its top ``FIT_CANDIDATES`` are
    labelled."""
    out = []
    for slug in sorted(golds):
        hidden = [p.model_copy(update={"relationships": (), "garden": None})
                  if p.slug == slug else p for p in patterns]
        me = next(p for p in hidden if p.slug == slug)
        index = CandidateIndex(hidden)
        out += samples(index, me, golds[slug], {}, FIT_CANDIDATES)
    return out


def ece(p: NDArray[np.float64], y: NDArray[np.float64], bins: int = BINS) -> float:
    """Expected calibration error over ``bins`` equal-width bins (the last one closed)."""
    return sum(b.n / len(p) * abs((b.predicted or 0.0) - (b.observed or 0.0))
               for b in reliability(p, y, bins) if b.n)


def reliability(p: NDArray[np.float64], y: NDArray[np.float64],
                bins: int = BINS) -> tuple[Bin, ...]:
    out = []
    for i in range(bins):
        low, high = i / bins, (i + 1) / bins
        inside = (p >= low) & ((p < high) if i < bins - 1 else (p <= high))
        n = int(inside.sum())
        out.append(Bin(low=low, high=high, n=n,
                       predicted=round(float(p[inside].mean()), 4) if n else None,
                       observed=round(float(y[inside].mean()), 4) if n else None))
    return tuple(out)


def _matrix(samples: Sequence[Sample], names: Sequence[str]) -> NDArray[np.float64]:
    return np.array([[s.features.get(f, 0.0) for f in names] for s in samples],
                    dtype=np.float64)


def _model(x: NDArray[np.float64], y: NDArray[np.float64],
           c: float = REGULARISATION) -> LogisticRegression | float:
    """The fitted regression, or the base rate when the labels are all one kind."""
    if len(set(y.tolist())) < 2:
        return float(y.mean())
    return LogisticRegression(C=c, max_iter=1000).fit(x, y)


def held_out(samples: Sequence[Sample], names: Sequence[str], folds: int = FOLDS,
             c: float = REGULARISATION) -> NDArray[np.float64]:
    """Each sample's predicted chance from a fit on the other patterns' samples."""
    x, y = _matrix(samples, names), np.array([s.made for s in samples], dtype=np.float64)
    groups = np.array([s.pattern for s in samples])
    splits = min(folds, len(set(groups.tolist())))
    predicted = np.zeros(len(samples))
    for train, test in GroupKFold(n_splits=splits).split(x, y, groups):
        fitted = _model(x[train], y[train], c)
        predicted[test] = (fitted if isinstance(fitted, float)
                           else fitted.predict_proba(x[test])[:, 1])
    return predicted


def measured(samples: Sequence[Sample], predicted: NDArray[np.float64], threshold: float,
             folds: int) -> Measured:
    """How ``predicted`` (held out) scores: calibration error, Brier score, log loss, and the
    links a pass would write at ``threshold`` beside the ranker's own top m."""
    y = np.array([s.made for s in samples], dtype=np.float64)
    chosen = predicted >= threshold
    per: dict[str, int] = {}
    for s, c in zip(samples, chosen, strict=True):
        per[s.pattern] = per.get(s.pattern, 0) + int(c)
    ranker = 0
    for slug, m in per.items():
        mine = sorted((s for s in samples if s.pattern == slug),
                      key=lambda s: s.features.get("log_rank", 0.0))
        ranker += sum(s.made for s in mine[:m])
    clipped = np.clip(predicted, 1e-6, 1 - 1e-6)
    return Measured(folds=folds, ece=round(ece(predicted, y), 4),
                    brier=round(float(brier_score_loss(y, predicted)), 4),
                    log_loss=round(float(log_loss(y, clipped, labels=[0, 1])), 4),
                    threshold=threshold, written=int(chosen.sum()),
                    matched=int(y[chosen].sum()), ranker_matched=ranker,
                    bins=reliability(predicted, y))


def fit(samples: Sequence[Sample], *, library: str, fingerprint: str, model: str | None,
        prompt_version: str | None = None, threshold: float = MIN_CONFIDENCE,
        candidates: int = FIT_CANDIDATES, folds: int = FOLDS, shipped: bool = False,
        today: dt.date | None = None, c: float = REGULARISATION) -> Calibration:
    """The calibration of ``samples``: with the model's decisions as features when ``model``
    is named and they lower the held-out log loss, else the ranker's alone."""
    patterns = {s.pattern for s in samples}
    made = sum(s.made for s in samples)
    if len(patterns) < 2 or made == 0 or made == len(samples):
        raise UsageError(f"cannot calibrate on {len(patterns)} held-out patterns with "
                         f"{made} of {len(samples)} candidates linked by people: hold out "
                         "more patterns (--n) so that both kinds are seen")
    options = [list(RANKER_FEATURES)]
    if model is not None and any(s.features.get("model_link") for s in samples):
        options.append(list(FEATURES))
    best: tuple[float, list[str], NDArray[np.float64]] | None = None
    tried: dict[str, float] = {}
    for names in options:
        predicted = held_out(samples, names, folds, c)
        y = np.array([s.made for s in samples], dtype=np.float64)
        loss = float(log_loss(y, np.clip(predicted, 1e-6, 1 - 1e-6), labels=[0, 1]))
        tried["ranker" if names == list(RANKER_FEATURES) else "ranker+model"] = round(loss, 4)
        if best is None or loss < best[0]:
            best = (loss, names, predicted)
    assert best is not None
    _, names, predicted = best
    x = _matrix(samples, names)
    y = np.array([s.made for s in samples], dtype=np.float64)
    final = _model(x, y, c)
    if isinstance(final, float):  # unreachable after the check above, kept for the type
        raise UsageError("cannot calibrate: every candidate has the same label")
    uses_model = names != list(RANKER_FEATURES)
    return Calibration(
        method=method(c), features=tuple(names),
        coefficients=tuple(round(float(c), 6) for c in final.coef_[0]),
        intercept=round(float(final.intercept_[0]), 6), candidates=candidates,
        model=model if uses_model else None,
        prompt_version=prompt_version if uses_model else None, library=library,
        fingerprint=fingerprint, patterns=len(patterns), samples=len(samples),
        date=(today or dt.date.today()).isoformat(),
        measured=measured(samples, predicted, threshold, min(folds, len(patterns))
                          ).model_copy(update={"tried": tried}),
        shipped=shipped)
