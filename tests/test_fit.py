"""Requests sized to the endpoint's context: the window, the cut profile, what servers say,
and a pass against an endpoint with a 4k context whose every request, re-asks included, fits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from gardener.cli.main import app
from gardener.endpoint.client import LLM
from gardener.endpoint.settings import LLMSettings
from gardener.endpoint.tokens import ApproximateCounter, approximate_prompt_tokens
from gardener.endpoint.window import (
    OLLAMA_ASSUMED,
    llama_cpp_props,
    ollama_ps,
    ollama_show,
    served_context,
    server_root,
    vllm_models,
)
from gardener.library import load as library_mod
from gardener.propose.fit import answer_caps, fit, scaled, sized, window
from gardener.propose.profiles import DEFAULT, SMALL
from gardener.propose.prompts import default_prompts
from gardener.propose.propose import fitted_profile, request_tokens
from gardener.shortlist.candidates import CandidateIndex
from gardener.testing.fake_openai import FakeOpenAI, use_as_endpoint
from gardener.testing.responders import grounded_responder

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "patterns"


# --- the window (pure) -----------------------------------------------------------------------


def test_a_large_context_changes_nothing() -> None:
    w = window(128_000, 2048, 2)
    assert (w.answer, w.reasks) == (2048, 2)
    assert w.prompt() > 100_000


def test_an_8k_context_halves_the_answer_and_leaves_room_for_every_reask() -> None:
    w = window(8192, 2048, 2)
    assert (w.answer, w.reasks) == (1024, 2)
    # the first request plus two re-asks, each adding an answer and its errors, fit
    assert w.prompt() + w.answer + 2 * 2 * w.answer <= 8192
    assert w.prompt(0) > w.prompt(1) > w.prompt(2) > 0


def test_a_small_context_answers_in_at_least_256_tokens() -> None:
    assert window(2048, 2048, 2).answer == 256
    assert window(1024, 400, 0).answer == 256
    assert window(1024, 100, 0).answer == 100  # never more than asked


def test_the_small_profile_is_left_as_it_is_in_the_bundled_context() -> None:
    settings = SMALL.tune(LLMSettings(base_url="http://127.0.0.1:9/v1", api_key=None,
                                      model="SmolLM2-135M-Instruct", mode="json_object_schema"))
    tuned = sized(settings, 8192)
    assert (tuned.max_tokens, tuned.max_retries, tuned.context) == (400, 0, 8192)
    assert scaled(SMALL, 1.0, tuned.max_tokens) == SMALL
    chosen = fit(SMALL, window(8192, 400, 0), lambda p: 1800)
    assert chosen.profile == SMALL and chosen.reasks == 0 and chosen.fits


def test_a_cut_profile_asks_for_less_of_everything() -> None:
    cut = scaled(DEFAULT, 0.5, 1024)
    assert cut.candidates == 20 and cut.limits.body == DEFAULT.limits.body // 2
    assert cut.limits.section < DEFAULT.limits.section
    assert (cut.caps.entities, cut.caps.links) == (6, 6)
    smallest = scaled(DEFAULT, 0.01, 256)
    assert smallest.candidates == 6 and smallest.caps.links >= 1
    assert answer_caps(DEFAULT.caps, 4096) == DEFAULT.caps


def test_fit_takes_the_largest_cut_that_fits_with_every_reask() -> None:
    w = window(8192, 2048, 2)

    def size(profile: Any) -> int:  # a prompt that grows with the shortlist
        return 1000 + 100 * profile.candidates

    chosen = fit(DEFAULT, w, size)
    assert chosen.fits and chosen.tokens <= w.prompt(2) and chosen.reasks == 2
    assert chosen.profile.candidates == max(s for s in (40, 30, 20, 14)
                                            if 1000 + 100 * s <= w.prompt(2))


def test_reasks_are_given_up_before_the_prompt_is_cut_to_the_bone() -> None:
    w = window(4096, 2048, 2)
    floor = 1500  # what the instructions and the pattern take, however few candidates

    def size(profile: Any) -> int:
        return floor + 40 * profile.candidates

    chosen = fit(DEFAULT, w, size)
    assert chosen.fits and chosen.reasks < 2
    assert chosen.tokens <= w.prompt(chosen.reasks)
    hopeless = fit(DEFAULT, w, lambda p: 10**6)
    assert not hopeless.fits and hopeless.profile.candidates == 6 and hopeless.reasks == 0


def test_a_real_pattern_is_cut_to_fit_a_4k_context() -> None:
    lib = library_mod.load(SAMPLES)
    seed = next(p for p in lib.patterns if p.slug == "distributed-leadership-design")
    shortlist = CandidateIndex(lib.patterns).shortlist(seed, DEFAULT.candidates)
    settings = sized(DEFAULT.tune(LLMSettings(base_url="http://127.0.0.1:9/v1", api_key=None,
                                              model="qwen2.5-7b-instruct", mode="tools")), 4096)
    chosen = fitted_profile(seed, shortlist, DEFAULT, settings, prompts=default_prompts())
    assert chosen is not None and chosen.fits
    counted = request_tokens(seed, shortlist[:chosen.profile.candidates], ApproximateCounter(),
                             prompts=default_prompts(), limits=chosen.profile.limits,
                             caps=chosen.profile.caps, registry=None, schema_in_prompt=True)
    assert counted == chosen.tokens
    assert counted + settings.max_tokens * (1 + 2 * chosen.reasks) <= 4096
    full = request_tokens(seed, shortlist, ApproximateCounter(), prompts=default_prompts(),
                          limits=DEFAULT.limits, caps=DEFAULT.caps, registry=None,
                          schema_in_prompt=True)
    assert full > 4096 > counted  # the uncut request would not even fit once
    no_context = LLMSettings(base_url=None, api_key="k", model="gpt-4.1-mini", mode="tools")
    assert fitted_profile(seed, shortlist, DEFAULT, no_context, prompts=default_prompts()) is None


# --- what servers say (pure readers, then through the client) -------------------------------


def test_readers_take_each_servers_own_word() -> None:
    assert server_root("http://host:8080/v1") == "http://host:8080"
    assert server_root("http://host/proxy/v1/") == "http://host/proxy"
    assert llama_cpp_props({"default_generation_settings": {"n_ctx": 4096}}) == 4096
    assert llama_cpp_props({"n_ctx": 8192}) == 8192
    assert llama_cpp_props({"default_generation_settings": {"n_ctx": True}}) is None
    models = {"data": [{"id": "other", "max_model_len": 2048},
                       {"id": "qwen", "max_model_len": 32768}]}
    assert vllm_models(models, "qwen") == 32768 and vllm_models(models, "none") is None
    assert vllm_models({"data": [{"id": "qwen"}]}, "qwen") is None
    assert ollama_ps({"models": [{"name": "llama3.2:latest", "context_length": 4096}]},
                     "llama3.2") == 4096
    assert ollama_show({"parameters": "stop \"<|eot|>\"\nnum_ctx 16384\n"}) == 16384
    assert ollama_show({"parameters": "temperature 0.7"}) is None
    assert ollama_show("not json object") is None


def routes(answers: dict[tuple[str, str], Any]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        found = answers.get((request.method, request.url.path))
        if found is None:
            return httpx.Response(404, json={"error": {"message": "Not Found"}})
        return httpx.Response(200, json=found)
    return httpx.MockTransport(handle)


def client(transport: httpx.MockTransport) -> LLM:
    return LLM(LLMSettings(base_url="http://127.0.0.1:11434/v1", api_key="k", model="m",
                           mode="json_schema", max_attempts=1), transport=transport)


@pytest.mark.parametrize(("answers", "expected"), [
    ({("GET", "/props"): {"default_generation_settings": {"n_ctx": 4096}}},
     (4096, "llama.cpp /props")),
    ({("GET", "/v1/models"): {"object": "list", "data": [{"id": "m", "max_model_len": 8192}]}},
     (8192, "/v1/models max_model_len")),
    ({("GET", "/api/ps"): {"models": [{"name": "m", "context_length": 2048}]},
      ("POST", "/api/show"): {"parameters": "num_ctx 9999"}}, (2048, "Ollama /api/ps")),
    ({("GET", "/api/ps"): {"models": []}, ("POST", "/api/show"): {"parameters": "num_ctx 6144"}},
     (6144, "Ollama /api/show num_ctx")),
    ({("POST", "/api/show"): {"parameters": "temperature 1"}},
     (OLLAMA_ASSUMED, "Ollama's default (the server does not say)")),
    ({("GET", "/v1/models"): {"object": "list", "data": [{"id": "m"}]}}, None),
])
def test_the_context_is_read_from_whichever_server_says_it(
        answers: dict[tuple[str, str], Any], expected: tuple[int, str] | None) -> None:
    with client(routes(answers)) as llm:
        assert served_context(llm, llm.settings.url, "m") == expected


# --- a pass against a 4k endpoint ------------------------------------------------------------


def test_a_pass_against_a_4k_llama_cpp_server_sends_only_requests_that_fit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    library = tmp_path / "lib"
    library.mkdir()
    for path in [p for p in sorted(SAMPLES.glob("*.md")) if p.name != "README.md"][:4]:
        (library / path.name).write_bytes(path.read_bytes())
    report = tmp_path / "report.json"
    with FakeOpenAI(responder=grounded_responder,
                    props={"default_generation_settings": {"n_ctx": 4096}}) as fake:
        use_as_endpoint(monkeypatch, fake)
        monkeypatch.setenv("GARDENER_MODEL", "qwen2.5-7b-instruct")
        monkeypatch.setenv("GARDENER_MODE", "tools")
        result = CliRunner().invoke(app, ["run", str(library), "--report", str(report)],
                                    catch_exceptions=False)
        chats = fake.chat_requests
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["totals"]["failed"] == 0
    # a request cut (or asked with fewer re-asks) says so in the report; one that fitted
    # as the profile makes it, with every re-ask, does not
    fitted = {p["slug"]: p["detail"]["fitted"] for p in data["patterns"]
              if "fitted" in p["detail"]}
    assert fitted and all(f["context"] == 4096 for f in fitted.values())
    assert len(chats) == 4  # one valid answer each
    w = window(4096, 2048, 2)
    for request in chats:
        assert request.body is not None
        assert request.body["max_tokens"] == w.answer
        slug = request.body["messages"][1]["content"].split("slug: ", 1)[1].split()[0]
        cut = fitted.get(slug)
        if cut is None:
            assert approximate_prompt_tokens(request.body) <= w.prompt(2)
            continue
        # what the run counted is what was sent (the tool's name and description aside), and
        # it fits with the re-asks it allowed
        sent = approximate_prompt_tokens(request.body)
        assert abs(sent - cut["prompt_tokens"]) <= 0.01 * sent
        assert cut["prompt_tokens"] <= w.prompt(cut["reasks"]) == cut["budget"]
        assert sent + w.answer * (1 + 2 * cut["reasks"]) <= 4096


def test_a_server_failing_the_questions_is_asked_each_once_and_not_waited_for() -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        assert "x-gardener-once" not in request.headers  # the marker is never sent
        return httpx.Response(503, json={"error": {"message": "busy"}})

    settings = LLMSettings(base_url="http://127.0.0.1:11434/v1", api_key="k", model="m",
                           mode="json_schema", max_attempts=6)
    llm = LLM(settings, transport=httpx.MockTransport(handle))
    with llm:
        assert served_context(llm, llm.settings.url, "m") is None
    assert seen == ["/props", "/v1/models", "/api/ps", "/api/show"]
