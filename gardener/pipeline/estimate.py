"""What a gardening pass would cost, before it runs: calls, tokens and dollars, offline.

Why this way: an estimate is only worth having if it counts what the pass will really send.
So it takes the pass's own steps: the library read and the staleness decided exactly as the
flow does (``gardener.pipeline.garden.open_run`` and ``pattern_task.check``: a pattern the
pass would skip is skipped here too), and each stale pattern's request built by the pass's
own call (``pattern_task.ask``: the prompt, the per-pattern response model, instructor's
request with its schema or tools). That call goes to a client whose transport keeps the
request body and answers it locally, so no model is called and no server is started; the
body's prompt tokens are then counted offline (``gardener.endpoint.tokens``).

Building that request is most of its cost (the per-pattern response model, its JSON schema,
instructor's and openai's request: about 13 ms a pattern, 47 s of a 3,600-pattern library),
so not every request is built. Where the schema costs no prompt tokens (a grammar mode
counted with the model's own tokenizer) the count is the messages' alone: when the first
request's messages are the ones the pass renders (instructor changed none) and its count
is its messages' count (``Counter.counts_schema``), the other patterns' messages are
rendered and counted without building the rest (`asked`). Where the schema counts (tools
and json modes with OpenAI's tokenizer or the approximation), a built request is the
template of the others of its schema's shape (``gardener.pipeline.request_template``: the
same body but for the messages and the listed link targets), used once it reproduced the
next built requests of that shape exactly; else every request is built. The messages are
a function of the pattern and its shortlist, the mode's treatment of them the same for
every pattern.

What the count leaves out, and the output says: re-asks after an invalid answer (up to
``max_retries`` more requests a pattern, each resending the prompt) and Prefect's retries of
a failed call. Completion tokens are bounded by ``max_tokens`` a call, not predicted.
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from gardener.endpoint.client import LLM, LLMError
from gardener.endpoint.prices import PerMillion, Price, dollars, price_for
from gardener.endpoint.settings import LOCAL_MODEL, LLMSettings
from gardener.endpoint.tokens import Counter, counter_for
from gardener.local.server import (
    Endpoint,
    LocalModelError,
    endpoint_configured,
    served_model,
)
from gardener.model import Status
from gardener.pipeline.client import model_settings
from gardener.pipeline.garden import decide, open_run
from gardener.pipeline.options import GardenOptions
from gardener.pipeline.pattern_task import Gardened, ask, shortlisted
from gardener.pipeline.request_template import CHECKS, Template, learn
from gardener.pipeline.run import Run
from gardener.propose.propose import (
    fitted_profile,
    request_messages,
    request_targets,
    schema_shape,
)
from gardener.shortlist.candidates import CandidateInfo

NOT_SENT = "gardener --estimate: this request was counted, not sent"
PLACEHOLDER_URL = "http://127.0.0.1:9/v1"
"""Where the bundled model would be served; never contacted (the transport answers)."""


@dataclass(frozen=True)
class Call:
    """One model call the pass would make: the pattern and its prompt's tokens."""

    slug: str
    prompt_tokens: int


@dataclass(frozen=True)
class Estimate:
    """A pass's calls and tokens as counted, and their price as known."""

    model: str
    endpoint: str
    mode: str
    method: str
    """How the tokens were counted (``gardener.endpoint.tokens``)."""
    exact: bool
    calls: list[Call]
    skipped: int
    """Patterns the pass would skip: up to date."""
    later: int = 0
    """Stale patterns past ``max_patterns``: left for later batches, not counted here."""
    failed: list[str] = field(default_factory=list)
    """Patterns the pass could not ask about (unreadable, clashing slugs), with why."""
    max_tokens: int = 0
    """The answer bound of one call."""
    max_retries: int = 0
    """Re-asks a call may add after an invalid answer (not counted)."""
    price: Price | None = None

    @property
    def prompt_tokens(self) -> int:
        return sum(c.prompt_tokens for c in self.calls)

    def first(self, n: int) -> Estimate:
        """The estimate of a run with ``--max-patterns n``: the calls come in batch order
        (``garden.batch_order``), so its first ``n`` are the ones that run would make."""
        return replace(self, calls=self.calls[:n],
                       later=self.later + max(0, len(self.calls) - n))

    @property
    def completion_bound(self) -> int:
        return len(self.calls) * self.max_tokens

    def cost(self) -> tuple[float, float] | None:
        """Dollars for the prompts alone, and with every answer as long as allowed."""
        if self.price is None:
            return None
        return (self.price.cost(self.prompt_tokens, 0),
                self.price.cost(self.prompt_tokens, self.completion_bound))

    def as_dict(self) -> dict[str, Any]:
        cost = self.cost()
        return {
            "model": self.model, "endpoint": self.endpoint, "mode": self.mode,
            "counted_with": self.method, "exact_tokenizer": self.exact,
            "calls": len(self.calls), "skipped": self.skipped, "later": self.later,
            "failed": self.failed,
            "prompt_tokens": self.prompt_tokens, "max_tokens_per_call": self.max_tokens,
            "completion_tokens_at_most": self.completion_bound,
            "reasks_per_call_not_counted": self.max_retries,
            "usd_prompt": None if cost is None else round(cost[0], 6),
            "usd_at_most": None if cost is None else round(cost[1], 6),
            "price": None if self.price is None else {
                "family": self.price.family, "input_per_mtok": self.price.input_per_mtok,
                "output_per_mtok": self.price.output_per_mtok, "source": self.price.source},
            "patterns": [{"slug": c.slug, "prompt_tokens": c.prompt_tokens}
                         for c in self.calls],
        }


def lines(e: Estimate) -> list[str]:
    """The estimate as a person reads it."""
    out = [f"estimate for model '{e.model}' at {e.endpoint} (mode {e.mode}); nothing was sent",
           f"  model calls:        {len(e.calls)}  ({e.skipped} patterns up to date, skipped"
           + (f"; {e.later} stale ones left for later batches" if e.later else "") + ")",
           f"  prompt tokens:      {e.prompt_tokens:,}  counted with {e.method}",
           f"  completion tokens:  at most {e.completion_bound:,}  "
           f"({e.max_tokens:,} max_tokens a call)"]
    cost = e.cost()
    if cost is None or e.price is None:
        out.append(f"  price:              unknown for '{e.model}'; add it under [prices] in "
                   "gardener.toml")
    else:
        low, high = cost
        out.append(f"  estimated price:    {dollars(low)} for the prompts, at most "
                   f"{dollars(high)} with every answer at max_tokens")
        out.append(f"  price used:         {e.price.family}: ${e.price.input_per_mtok:g} in, "
                   f"${e.price.output_per_mtok:g} out per million tokens ({e.price.source})")
    if e.max_retries:
        out.append(f"  not counted:        re-asks after an invalid answer (up to "
                   f"{e.max_retries} a call, each resending the prompt) and retries of "
                   "failed calls")
    out += [f"  cannot be asked:    {why}" for why in e.failed]
    return out


class Capture(httpx.BaseTransport):
    """Keeps the last request body and answers it here, so nothing leaves the process; the
    caller takes each body as soon as it is made (one at a time: 3,600 bodies of prompt and
    schema held to the end were most of a large library's estimate's memory)."""

    def __init__(self) -> None:
        self.body: dict[str, Any] | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.body = json.loads(request.read())
        return httpx.Response(400, json={"error": {"message": NOT_SENT}})

    def take(self) -> dict[str, Any] | None:
        body, self.body = self.body, None
        return body


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """instructor logs every failed call as an error; here each call fails on purpose."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


@dataclass(frozen=True)
class Planned:
    """The model a pass would use, as ``garden.model_client`` decides it, nothing started."""

    settings: LLMSettings
    gguf: Path | None = None
    """The GGUF file of the local model it would serve (its tokenizer counts exactly)."""
    local: str | None = None
    """How the local model server is shown, when the pass would start one."""


def planned(options: GardenOptions, environ: Mapping[str, str]) -> Planned:
    """What the pass would ask, decided as ``garden.model_client`` decides but without
    starting anything. With no endpoint the pass serves the local model; without the
    ``local`` extra there is no file to read a tokenizer from (an approximation counts), and
    the pass itself would stop at once, which the estimate says."""
    if endpoint_configured(environ):
        return Planned(model_settings(options, environ))
    try:
        served = served_model(environ)
    except LocalModelError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "not installed"
        endpoint = Endpoint(PLACEHOLDER_URL, options.model or LOCAL_MODEL, "not-used", None)
        return Planned(model_settings(options, environ, endpoint),
                       local=f"the bundled local model server (not available: {first}; "
                             "a run would stop with exit 2)")
    endpoint = Endpoint(PLACEHOLDER_URL, served.name, "not-used", served.context)
    return Planned(model_settings(options, environ, endpoint), served.path,
                   f"the local model server ({served.path.name})")


@dataclass(frozen=True)
class Asked:
    """What ``pattern_task.ask`` asks of one pattern, as far as its count needs."""

    messages: list[dict[str, Any]]
    targets: tuple[str, ...]
    """The link targets its schema lists (``propose.request_targets``)."""
    shape: Hashable
    """What else decides its schema (the mode and ``propose.schema_shape``)."""


def asked(run: Run, i: int, shortlist: list[CandidateInfo], settings: LLMSettings,
          mode: str) -> Asked:
    """The request ``pattern_task.ask`` makes for pattern ``i`` of ``run`` in ``mode``, but
    for what every pattern's has alike: its profile cut to the context ``settings`` know of
    as ``ask`` cuts it (``fitted_profile``), its messages, targets and schema's shape."""
    pattern = run.entries[i].pattern
    chosen = fitted_profile(pattern, shortlist, run.profile, settings, prompts=run.prompts,
                            registry=run.registry)
    profile = run.profile if chosen is None else chosen.profile
    candidates = shortlist[:profile.candidates]
    return Asked(request_messages(pattern, candidates, prompts=run.prompts,
                                  limits=profile.limits, caps=profile.caps,
                                  registry=run.registry),
                 request_targets(pattern, candidates),
                 (mode, schema_shape(pattern, candidates, profile.caps)))


def built(run: Run, i: int, shortlist: list[CandidateInfo], llm: LLM,
          capture: Capture) -> dict[str, Any] | None:
    """Pattern ``i``'s whole request body, built by the pass's own ``ask``; None if none was."""
    with _quiet("instructor"), suppress(LLMError):
        ask(run, i, shortlist, llm, grounded=False)
    return capture.take()


def requests(run: Run, indices: list[int], llm: LLM, capture: Capture, count: Counter, *,
             checks: int = CHECKS) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """Each pattern's request body, as ``pattern_task.ask`` builds it (None where none was
    built): its messages alone once the first request showed that they give its count, or
    filled from its shape's template once that reproduced ``checks`` built ones (the
    module's docstring)."""
    messages_only: bool | None = None
    templates: dict[Hashable, Template] = {}
    for i in indices:
        with run.lock:
            c = run.checks.pop(i)
        shortlist, _ = shortlisted(run, i, c)
        request = asked(run, i, shortlist, llm.settings, llm.mode)
        if messages_only:
            yield i, {"messages": request.messages}
            continue
        template = templates.get(request.shape)
        if template is not None and template.ready(checks):
            yield i, template.filled(request.messages, request.targets)
            continue
        body = built(run, i, shortlist, llm, capture)
        if body is not None:
            if messages_only is None:
                messages_only = not count.counts_schema(body) and body.get(
                    "messages") == request.messages
            templates[request.shape] = learn(template, body, request.messages,
                                             request.targets)
        yield i, body


AHEAD = 256
"""Requests built and not yet counted, at most (`counted`)."""


def counted(bodies: Iterator[tuple[int, dict[str, Any] | None]], count: Counter,
            pool: Executor, ahead: int = AHEAD) -> Iterator[tuple[int, int | None]]:
    """Each body's prompt tokens (None for no body), in order, counted in ``pool`` while the
    next bodies are built: llama.cpp's tokenizer is C code that lets the building thread run
    (about 9 of the 25 CPU seconds of a 3,600-pattern library's estimate, overlapped when a
    second core is free). At most ``ahead`` bodies wait, so that memory holds no more (one
    at a time was the point of `Capture`)."""
    pending: deque[tuple[int, Future[int] | None]] = deque()
    for i, body in bodies:
        pending.append((i, None if body is None else pool.submit(count.prompt_tokens, body)))
        while pending and (len(pending) > ahead or pending[0][1] is None
                           or pending[0][1].done()):
            i, tokens = pending.popleft()
            yield i, None if tokens is None else tokens.result()
    for i, tokens in pending:
        yield i, None if tokens is None else tokens.result()


def estimate(root: Path, options: GardenOptions, *,
             prices: Mapping[str, PerMillion] | None = None, prices_from: str = "gardener.toml",
             environ: Mapping[str, str] | None = None,
             counter: Counter | None = None,
             progress: Callable[[int, int], None] | None = None) -> Estimate:
    """Count what a pass over ``root`` with ``options`` would send; send nothing.

    ``prices`` override the built-in table (a config's ``[prices]``, read from
    ``prices_from``); ``counter`` overrides the tokenizer chosen by the model's name. The
    patterns are decided as the pass decides them (``garden.decide``: up to date skipped, at
    most ``options.max_patterns`` asked, in batch order). ``progress`` is told (done, total)
    as the requests are counted.
    """
    env = os.environ if environ is None else environ
    plan = planned(options, env)
    settings, gguf = plan.settings, plan.gguf
    count = counter or counter_for(settings.model, gguf)
    capture = Capture()
    calls: list[Call] = []
    decided: list[Gardened] = []
    with (LLM(settings, transport=capture) as llm,
          ThreadPoolExecutor(max_workers=1, thread_name_prefix="gardener-count") as pool):
        run, outcomes, _lib = open_run(root, options, llm, settings.model)
        failed = [o.error or o.path for o in outcomes]
        stale = decide(run, decided.append)
        bodies = requests(run, stale, llm, capture, count)
        for n, (i, tokens) in enumerate(counted(bodies, count, pool)):
            if tokens is None:
                failed.append(f"{run.entries[i].pattern.path}: no request was built")
            else:
                calls.append(Call(run.entries[i].pattern.slug, tokens))
            if progress is not None:
                progress(n + 1, len(stale))
    failed += [g.outcome.error or g.outcome.path for g in decided
               if g.outcome.status is Status.FAILED]
    later = sum(1 for g in decided if g.outcome.detail.not_asked == "batch")
    skipped = sum(1 for g in decided if g.outcome.status is Status.SKIPPED) - later
    return Estimate(model=settings.model, endpoint=plan.local or settings.endpoint,
                    mode=llm.mode,
                    method=count.method, exact=count.exact, calls=calls, skipped=skipped,
                    later=later, failed=failed, max_tokens=settings.max_tokens,
                    max_retries=settings.max_retries,
                    price=price_for(settings.model, prices, overrides_from=prices_from,
                                    local=plan.local is not None or settings.loopback))
