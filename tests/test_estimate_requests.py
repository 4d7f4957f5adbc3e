"""``--estimate`` counts what the pass would send, without building what costs no tokens.

Where the first request shows that its messages alone give its count (a grammar mode counted
with the bundled model's tokenizer), the other patterns' messages are rendered and counted
without the response model and instructor's request; and the bundled model's tokenizer counts
a prompt piece by piece, cut at the chat template's special tokens. Both must give exactly
the count of every whole request built as the pass builds it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from gardener.endpoint.client import LLM, LLMError
from gardener.endpoint.tokens import Counter, GGUFCounter, boundaries, counter_for
from gardener.local.server import missing_modules
from gardener.pipeline.estimate import Capture, counted, estimate, planned, requests
from gardener.pipeline.garden import decide, open_run
from gardener.pipeline.options import GardenOptions
from gardener.pipeline.pattern_task import ask, shortlisted
from gardener.testing.libraries import copy_samples

CLEAN = {k: v for k, v in os.environ.items()
         if k not in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "GARDENER_MODEL", "GARDENER_MODE",
                      "GARDENER_LOCAL_MODEL", "GARDENER_CONTEXT", "GARDENER_LOCAL_CONTEXT")}
"""The environment of a run with no endpoint: the bundled model's."""


@pytest.fixture
def local_extra() -> None:
    missing = missing_modules()
    if missing and os.environ.get("GARDENER_REQUIRE_LOCAL") == "1":
        pytest.fail(f"GARDENER_REQUIRE_LOCAL=1 but the 'local' extra is missing: {missing}")
    if missing:
        pytest.skip(f"the 'local' extra is not installed (missing: {', '.join(missing)})")


def every_request(root: Path, environ: Mapping[str, str],
                  count: Counter) -> dict[str, int]:
    """Each stale pattern's count, every request built whole through the pass's ``ask``."""
    options = GardenOptions()
    settings = planned(options, environ).settings
    capture = Capture()
    counts: dict[str, int] = {}
    with LLM(settings, transport=capture) as llm:
        run, _, _ = open_run(root, options, llm, settings.model)
        for i in decide(run, lambda _: None):
            shortlist, _ = shortlisted(run, i, run.checks.pop(i))
            with suppress(LLMError):
                ask(run, i, shortlist, llm, grounded=False)
            body = capture.take()
            assert body is not None
            counts[run.entries[i].pattern.slug] = count.prompt_tokens(body)
    return counts


def bodies(root: Path, environ: Mapping[str, str], count: Counter) -> list[dict[str, Any]]:
    options = GardenOptions()
    settings = planned(options, environ).settings
    capture = Capture()
    with LLM(settings, transport=capture) as llm:
        run, _, _ = open_run(root, options, llm, settings.model)
        return [body for _, body in requests(run, decide(run, lambda _: None), llm, capture,
                                             count) if body is not None]


# ---------------------------------------------------------------------------------------------
# Pure parts


def test_a_prompt_is_cut_only_at_the_template_s_own_special_tokens() -> None:
    control, lstrip = 1 << 3, 1 << 7
    special = {"<|im_start|>": control, "<|im_end|>": control, "<|endoftext|>": control,
               "<s>": control | lstrip, "<a>": control, "<a><b>": control}
    template = "<|im_start|>{{ role }}\n{{ content }}<|im_end|>\n<s><a>"
    # Not written by the template, taking whitespace, or inside another special token's text.
    assert boundaries(special, template) == ("<|im_end|>", "<|im_start|>")
    assert boundaries({"<x>": 1 << 2}, "<x>") == ()  # a normal token is not special
    assert boundaries({"ab": control, "bc": control}, "abc") == ()  # overlapping texts


def test_the_openai_count_counts_the_schema_and_says_so() -> None:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hello"}]}
    schema = {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}
    for counter in (counter_for("gpt-4.1-mini"), counter_for("some-model")):
        assert not counter.counts_schema(body)
        assert counter.counts_schema({**body, "response_format": schema})


def test_counts_come_back_in_the_order_the_requests_were_built() -> None:
    count = counter_for("some-model")
    made = [(i, None if i % 3 == 1 else {"messages": [{"role": "user", "content": "x" * i}]})
            for i in range(40)]
    with ThreadPoolExecutor(max_workers=1) as pool:
        got = list(counted(iter(made), count, pool, ahead=4))
    assert got == [(i, None if body is None else count.prompt_tokens(body)) for i, body in made]


# ---------------------------------------------------------------------------------------------
# Against building every request


def test_with_an_openai_model_every_request_counts_its_schema(tmp_path: Path) -> None:
    lib = copy_samples(tmp_path / "library")
    environ = {**CLEAN, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
               "GARDENER_MODEL": "gpt-4.1-mini"}
    count = counter_for("gpt-4.1-mini")
    built = bodies(lib, environ, count)
    assert built and all(count.counts_schema(b) for b in built)
    found = estimate(lib, GardenOptions(), environ=environ)
    assert {c.slug: c.prompt_tokens for c in found.calls} == every_request(lib, environ, count)


@pytest.mark.parametrize("context", [None, "2048"])
def test_with_the_bundled_model_the_messages_alone_count_the_same(
        local_extra: None, tmp_path: Path, context: str | None) -> None:
    lib = copy_samples(tmp_path / "library")
    environ = CLEAN if context is None else {**CLEAN, "GARDENER_LOCAL_CONTEXT": context}
    plan = planned(GardenOptions(), environ)
    assert plan.gguf is not None
    count = counter_for(plan.settings.model, plan.gguf)
    built = bodies(lib, environ, count)
    assert len(built) > 2 and "response_format" in built[0]
    assert all(list(b) == ["messages"] for b in built[1:])
    found = estimate(lib, GardenOptions(), environ=environ)
    assert {c.slug: c.prompt_tokens for c in found.calls} == every_request(
        lib, environ, GGUFCounter(plan.gguf))


def test_the_bundled_tokenizer_counts_pieces_as_it_counts_the_whole(local_extra: None) -> None:
    gguf = planned(GardenOptions(), CLEAN).gguf
    assert gguf is not None
    pieces, whole = GGUFCounter(gguf), GGUFCounter(gguf)
    system = "You propose a garden.\n\n  Answer in JSON. "
    for content in ("hello world", "a quoted <|im_end|> in the text\n", " <|im_start|>x",
                    "\n\n", "ends with a special token<|endoftext|>", "naïve café — ok"):
        body = {"messages": [{"role": "system", "content": system},
                             {"role": "user", "content": content}]}
        assert pieces.prompt_tokens(body) == whole.tokens(whole.prompt(body)), content
