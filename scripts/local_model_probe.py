"""Does the bundled model work on this machine, the way the gardener uses it? Exit 0 if so.

Why: a llama-cpp-python wheel taken from pip's cache may have been compiled for another CPU.
Such a build can load the model and evaluate a few tokens, then crash inside the server on a
grammar-constrained chat request (seen in CI: "Server disconnected without sending a
response"). So the probe starts the real server (`gardener.local.server`) and sends one
schema-constrained chat request of a realistic length; on failure it prints how the server
ended and its last output, and `scripts/local-model.sh` rebuilds llama.cpp portable.
"""

from __future__ import annotations

import signal
import sys

import httpx

from gardener.endpoint.grammar import grammar_schema
from gardener.local.process import tail as log_tail
from gardener.local.server import LocalModelError, start_local_model

SCHEMA = {
    "type": "object",
    "properties": {
        "entities": {
            "type": "array",
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {"id": {"type": "string", "maxLength": 40},
                               "confidence_pct": {"type": "integer", "minimum": 0,
                                                  "maximum": 100}},
                "required": ["id", "confidence_pct"],
            },
        },
    },
    "required": ["entities"],
}
TEXT = ("Teams share leadership, decide by consent and rotate facilitation so that no single "
        "person holds the group's attention or its decisions. ") * 12


def ended(code: int | None) -> str:
    if code is None:
        return "it is still running"
    if code < 0:
        return f"it was killed by {signal.Signals(-code).name}"
    return f"it exited with code {code}"


def main() -> int:
    try:
        model = start_local_model(timeout_s=120, announce=lambda message: None)
    except LocalModelError as error:
        print(f"the bundled model does not start: {error}", file=sys.stderr)
        return 1
    with model:
        endpoint = model.endpoint
        try:
            response = httpx.post(
                f"{endpoint.base_url}/chat/completions",
                headers={"Authorization": f"Bearer {endpoint.api_key}"},
                json={"model": endpoint.model,
                      "messages": [{"role": "system", "content": "Answer in JSON."},
                                   {"role": "user", "content": f"Name three ideas in: {TEXT}"}],
                      "response_format": {"type": "json_object",
                                      "schema": grammar_schema(SCHEMA)},
                      "max_tokens": 120, "temperature": 0},
                timeout=300,
            )
        except httpx.TransportError as error:
            model.process.poll()
            print(f"the bundled model's server failed a chat request ({error}); "
                  f"{ended(model.process.returncode)}; its last output:\n"
                  f"{log_tail(model.log_path)}", file=sys.stderr)
            return 1
        if response.status_code != 200:
            print(f"the bundled model's server answered {response.status_code}: "
                  f"{response.text[:400]}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
