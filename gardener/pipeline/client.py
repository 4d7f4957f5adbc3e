"""The run's model client: the endpoint and settings a run uses, fixtures, the local model.

Why apart from the flow: which endpoint, which mode, how long a request may take and how
large a context the model has are decided once per run, before any pattern; the flow only
asks the client this returns.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace

import httpx

from gardener.endpoint.client import LLM, LLMError, is_retryable_error
from gardener.endpoint.fixtures import FixtureMissing, FixtureMode, FixtureTransport
from gardener.endpoint.settings import LOCAL_MODE, LLMSettings
from gardener.endpoint.window import served_context
from gardener.local.server import (
    Announce,
    Endpoint,
    LocalModel,
    endpoint_configured,
    start_local_model,
)
from gardener.pipeline.options import GardenOptions
from gardener.propose.fit import sized
from gardener.propose.profiles import profile_for
from gardener.propose.propose import StructuredLLM

log = logging.getLogger("gardener.flows")



def network_transport() -> httpx.BaseTransport | None:
    """The transport under the client; None: the client's own default (proxy-aware httpx).
    A seam for tests that need a misbehaving network."""
    return None


LOCAL_TIMEOUT_S = 900.0
"""Seconds the bundled model may take for one answer before the request is retried."""


def model_settings(options: GardenOptions, environ: Mapping[str, str],
                   local: LocalModel | Endpoint | None = None) -> LLMSettings:
    """The endpoint and model a run uses; ``local`` when the bundled model serves it (or
    would: ``--estimate`` passes the endpoint it would have). The model's profile bounds its
    answer tokens and re-asks."""
    if local is not None:
        served = local.endpoint if isinstance(local, LocalModel) else local
        # The bundled server answers one request at a time, on CPU: a patient timeout.
        settings = LLMSettings(base_url=served.base_url, api_key=served.api_key,
                               model=options.model or served.model,
                               mode=options.mode or LOCAL_MODE, timeout_s=LOCAL_TIMEOUT_S,
                               concurrency=1, context=served.context)
    else:
        settings = LLMSettings.from_env(options.model, options.mode, environ=environ)
        if options.context is not None and settings.context is None:
            settings = replace(settings, context=options.context)
    if options.timeout_s is not None and not environ.get("GARDENER_TIMEOUT_S", "").strip():
        settings = replace(settings, timeout_s=options.timeout_s)
    settings = profile_for(settings.model).tune(settings)
    return settings if settings.context is None else sized(settings, settings.context)


def needs_local_model(options: GardenOptions, environ: Mapping[str, str]) -> bool:
    """Replay calls no model; otherwise only a user who chose no endpoint gets the local one."""
    return options.fixture_mode is not FixtureMode.REPLAY and not endpoint_configured(environ)


@contextmanager
def model_client(options: GardenOptions, environ: Mapping[str, str] | None = None,
                 announce: Announce | None = None) -> Iterator[LLM]:
    """The run's client: fixtures first when asked, the bundled local model when no endpoint.

    ``announce`` (default: the log) hears when the local model starts and is ready; it is
    stopped when the block ends, however it ends. Raises
    ``gardener.local.server.LocalModelError`` (saying how to configure an endpoint) when a
    model is needed, none is configured and the local one is not installed.
    """
    env = os.environ if environ is None else environ
    local = start_local_model(announce=announce) if needs_local_model(options, env) else None
    try:
        settings = model_settings(options, env, local)
        transport: httpx.BaseTransport | None
        if options.fixture_mode is None:
            transport = network_transport()
        else:
            inner = None if options.fixture_mode is FixtureMode.REPLAY else network_transport()
            transport = FixtureTransport(options.fixtures or "fixtures", options.fixture_mode,
                                         inner=inner, secrets=(settings.api_key,))
        with LLM(settings, transport=transport) as llm:
            if settings.context is None and options.fixture_mode is None:
                # A replay asks exactly what was recorded: with fixtures, only a setting sizes.
                said = served_context(llm, settings.url, settings.model)
                if said is not None:
                    llm.settings = sized(settings, said[0])
                    log.info("%s: a context of %d tokens (from %s)", settings.endpoint,
                             said[0], said[1])
            yield llm
    finally:
        if local is not None:
            local.close()


def within_endpoint(options: GardenOptions, llm: StructuredLLM) -> GardenOptions:
    """``options`` with no more patterns in flight than the client's endpoint serves at once."""
    settings = getattr(llm, "settings", None)
    most = settings.concurrency if isinstance(settings, LLMSettings) else None
    if most is None or options.concurrency <= most:
        return options
    return options.model_copy(update={"concurrency": most})


def is_transient(exc: BaseException) -> bool:
    """Worth another try later: the endpoint was busy or flaky, not wrong.

    A missing fixture, a refused request (4xx) or nothing listening stays failed: retrying
    would only delay the message.
    """
    if not isinstance(exc, LLMError) or isinstance(exc, FixtureMissing):
        return False
    if exc.status is not None:
        return exc.status in (408, 429) or exc.status >= 500
    cause = exc.__cause__
    return cause is not None and is_retryable_error(cause)
