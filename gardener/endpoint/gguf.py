"""The key/values at the head of a GGUF file: enough to name a model and bound its context.

Why: ``GARDENER_LOCAL_MODEL`` lets the local server serve any GGUF file, and the run must
know, before the server starts, what the file is (a GGUF at all?), what to call the model
(its ``general.name``, which also picks the model's profile) and how long a context it was
trained for (``<architecture>.context_length``). The ``gguf`` package that reads this is
not a dependency of llama-cpp-python, and loading the model to ask it would take seconds and
its memory, so this reads the documented layout (ggml's docs/gguf.md) itself: the magic
``GGUF``, a version, the tensor count, the key/value count, then the key/values. Arrays (the
tokenizer's 150,000 strings) are skipped, not kept. The header is little-endian (big-endian
files, rare, are refused with a message).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gardener.errors import GardenerError

MAGIC = b"GGUF"
MAX_STRING = 1 << 24
"""Longest string read (16 MiB): a length beyond it means a damaged or foreign file."""
MAX_KEYS = 1 << 20
MAX_ARRAY = 1 << 28

SCALARS: dict[int, str] = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f",
                           7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
"""GGUF value types with a fixed size, as struct formats (8: string, 9: array)."""
STRING, ARRAY = 8, 9

Scalar = int | float | bool | str


class GGUFError(GardenerError, ValueError):
    """The file is not a GGUF file, or its header is damaged; the message says which."""

    exit_code = 2  # the model named for the pass cannot be used: set-up


@dataclass(frozen=True)
class Array:
    """An array value, skipped: its element type and length only."""

    kind: int
    length: int


@dataclass(frozen=True)
class Header:
    """A GGUF file's version, tensor count and key/values (arrays as ``Array``)."""

    version: int
    tensors: int
    metadata: dict[str, Scalar | Array]

    def text(self, key: str) -> str | None:
        value = self.metadata.get(key)
        return value.strip() or None if isinstance(value, str) else None

    @property
    def name(self) -> str | None:
        """``general.name``, the model's own name, when the file says it."""
        return self.text("general.name")

    @property
    def context_length(self) -> int | None:
        """The trained context, ``<general.architecture>.context_length``, when given."""
        arch = self.text("general.architecture")
        value = self.metadata.get(f"{arch}.context_length") if arch else None
        if value is None:  # no architecture key: any one context length will do
            value = next((v for k, v in self.metadata.items()
                          if k.endswith(".context_length")), None)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            return None
        return value


def _read(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise GGUFError("the header ends early (a truncated file?)")
    return data


def _unpack(stream: BinaryIO, fmt: str) -> Scalar:
    value: Scalar = struct.unpack(fmt, _read(stream, struct.calcsize(fmt)))[0]
    return value


def _count(stream: BinaryIO, version: int) -> int:
    value = _unpack(stream, "<I" if version == 1 else "<Q")
    assert isinstance(value, int)
    return value


def _string(stream: BinaryIO, version: int) -> str:
    length = _count(stream, version)
    if length > MAX_STRING:
        raise GGUFError(f"a string of {length:,} bytes in the header (a damaged file?)")
    return _read(stream, length).decode("utf-8", errors="replace")


def _value(stream: BinaryIO, kind: int, version: int) -> Scalar | Array:
    if kind in SCALARS:
        return _unpack(stream, SCALARS[kind])
    if kind == STRING:
        return _string(stream, version)
    if kind != ARRAY:
        raise GGUFError(f"unknown value type {kind} in the header (a damaged file?)")
    element = _unpack(stream, "<I")
    assert isinstance(element, int)
    length = _count(stream, version)
    if length > MAX_ARRAY:
        raise GGUFError(f"an array of {length:,} items in the header (a damaged file?)")
    if element in SCALARS:
        stream.seek(struct.calcsize(SCALARS[element]) * length, 1)
    else:
        for _ in range(length):
            _value(stream, element, version)
    return Array(element, length)


def read_stream(stream: BinaryIO) -> Header:
    """The header of the GGUF data in ``stream``, read from its start."""
    magic = stream.read(4)
    if magic != MAGIC:
        raise GGUFError(f"not a GGUF file (it starts with {magic!r}, not {MAGIC!r})")
    version = _unpack(stream, "<I")
    assert isinstance(version, int)
    if not 1 <= version <= 3:
        hint = " (a big-endian file?)" if version > 0xFFFF else ""
        raise GGUFError(f"GGUF version {version} is not one this reader knows{hint}")
    tensors = _count(stream, version)
    keys = _count(stream, version)
    if keys > MAX_KEYS:
        raise GGUFError(f"{keys:,} header keys (a damaged file?)")
    metadata: dict[str, Scalar | Array] = {}
    for _ in range(keys):
        key = _string(stream, version)
        kind = _unpack(stream, "<I")
        assert isinstance(kind, int)
        metadata[key] = _value(stream, kind, version)
    return Header(version, tensors, metadata)


def read_header(path: Path) -> Header:
    """The header of the GGUF file at ``path``; GGUFError when it is not one, OSError when
    it cannot be read."""
    with path.open("rb") as stream:
        return read_stream(stream)
