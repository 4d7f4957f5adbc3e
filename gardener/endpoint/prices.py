"""What a model's tokens cost: a small, dated price table per model family, and the arithmetic.

Why a table in the code rather than a price API: ``gardener run --estimate`` must answer
offline and at once, and no provider publishes a machine-readable price list. The table is
a snapshot, so it says when it was read (``AS_OF``) and where from (``SOURCE``); a library
whose prices differ (a newer list, a negotiated rate, another provider) overrides families in
its ``gardener.toml`` (``[prices."gpt-4.1-mini"] input_per_mtok = ...``), and those win.

A model name finds its family by the longest family name it starts with (case-insensitive,
after an ``openai/``-style provider prefix): ``gpt-4.1-mini-2025-04-14`` is ``gpt-4.1-mini``,
not ``gpt-4.1``. Local models cost nothing per token. A name no family matches has no price:
the estimate then says so instead of guessing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

AS_OF = dt.date(2026, 12, 3)
"""When the table was read."""
SOURCE = ("list prices per million tokens, standard tier (no batch or cached-input discount), "
          "read from copies of OpenAI's and Anthropic's price pages dated March to June 2026")


class PerMillion(Protocol):
    """Anything with the two rates (``gardener.config.Price`` is one)."""

    @property
    def input_per_mtok(self) -> float: ...

    @property
    def output_per_mtok(self) -> float: ...


@dataclass(frozen=True)
class Rate:
    """A family's two rates, as a config gives them (``GardenOptions.prices``)."""

    input_per_mtok: float
    output_per_mtok: float


@dataclass(frozen=True)
class Price:
    """US dollars per million prompt (input) and completion (output) tokens of one family."""

    family: str
    input_per_mtok: float
    output_per_mtok: float
    source: str
    """Where the rates come from: the built-in table (with its date) or a config file."""

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Dollars for that many tokens."""
        return (prompt_tokens * self.input_per_mtok
                + completion_tokens * self.output_per_mtok) / 1_000_000


LOCAL = "local"
"""The family of models served on this machine (the bundled one, any llama.cpp or Ollama
model): no per-token price."""

TABLE: dict[str, tuple[float, float]] = {
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "o3": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
    "claude-opus": (5.00, 25.00),
    "claude-sonnet": (3.00, 15.00),
    "claude-haiku": (1.00, 5.00),
    "claude": (3.00, 15.00),
    LOCAL: (0.0, 0.0),
}
"""Family → (input, output) dollars per million tokens, as of ``AS_OF``. ``claude`` alone
is priced as Sonnet, the family's middle."""

LOCAL_NAMES = ("smollm",)
"""Fragments of model names (lower case) that are served locally: priced as ``local``."""


def family_of(model: str, families: Mapping[str, object]) -> str | None:
    """The family of ``families`` that ``model`` belongs to: the longest prefix match."""
    name = model.lower().rsplit("/", 1)[-1]
    matches = [f for f in families if name == f.lower() or name.startswith(f.lower() + "-")
               or name.startswith(f.lower() + ":")]
    return max(matches, key=len) if matches else None


def price_for(model: str, overrides: Mapping[str, PerMillion] | None = None, *,
              local: bool = False, overrides_from: str = "gardener.toml") -> Price | None:
    """The price of ``model``'s tokens: its most specific family, from ``overrides`` where
    they name it, else from the table; otherwise free when ``local`` (served on this
    machine) or a local model's name (a loopback proxy to a hosted model keeps that model's
    price). None: unknown."""
    overrides = overrides or {}
    found = family_of(model, {**TABLE, **overrides})
    if found is not None and found in overrides:
        rate = overrides[found]
        return Price(found, rate.input_per_mtok, rate.output_per_mtok, overrides_from)
    if found is not None and found != LOCAL:
        rate_in, rate_out = TABLE[found]
        return Price(found, rate_in, rate_out, f"built-in table as of {AS_OF.isoformat()}")
    name = model.lower()
    if local or any(fragment in name for fragment in LOCAL_NAMES):
        return Price(LOCAL, 0.0, 0.0, "served on this machine")
    return None


def as_dict(price: Price | None, prompt_tokens: int, completion_tokens: int) -> dict[str, object]:
    """A pass's tokens and their estimated cost, for the JSON report and the PR body."""
    tokens = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
              "total_tokens": prompt_tokens + completion_tokens}
    if price is None:
        return {**tokens, "usd": None, "price": None}
    return {**tokens, "usd": round(price.cost(prompt_tokens, completion_tokens), 6),
            "price": {"family": price.family, "input_per_mtok": price.input_per_mtok,
                      "output_per_mtok": price.output_per_mtok, "source": price.source}}


def dollars(amount: float) -> str:
    """``amount`` as a short dollar figure that does not round a small cost to zero."""
    if amount == 0:
        return "$0"
    if amount < 0.01:
        return f"${amount:.4f}"
    return f"${amount:,.2f}"
