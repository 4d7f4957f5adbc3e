"""HTTP connections for many patterns in flight: one pool per thread, not one for all.

httpcore checks every idle connection of a pool (a ``poll()`` on its socket) each time a
request takes a connection or gives one back. With one pool behind sixteen threads, that is
some thirty system calls a request, each letting go of Python's GIL and waiting behind the
other threads to get it back. A thread of a pass sends one request at a time, so a pool of
its own holds one connection (kept alive between its patterns) and checks only that one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx


def https_transports() -> Callable[[], httpx.BaseTransport]:
    """A maker of ``httpx.HTTPTransport`` sharing one TLS context (trust store loaded once).

    Each ``HTTPTransport()`` loads the certificate store into a new TLS context: some 30 ms
    of CPU under the GIL, which sixteen threads starting their first request at once paid
    sixteen times, stalling the first patterns of a pass by a third of a second.
    """
    context = httpx.create_ssl_context(trust_env=True)
    return lambda: httpx.HTTPTransport(verify=context)


class PerThreadTransport(httpx.BaseTransport):
    """A transport per calling thread, made on its first request, all closed together."""

    def __init__(self, make: Callable[[], httpx.BaseTransport] | None = None) -> None:
        self._make = make or https_transports()
        self._local = threading.local()
        self._made: list[httpx.BaseTransport] = []
        self._lock = threading.Lock()
        self._closed = False

    def _own(self) -> httpx.BaseTransport:
        transport: httpx.BaseTransport | None = getattr(self._local, "transport", None)
        if transport is not None:
            return transport
        transport = self._make()
        with self._lock:
            if self._closed:
                transport.close()
                raise RuntimeError("the HTTP transport was closed; no request can be sent")
            self._made.append(transport)
        self._local.transport = transport
        return transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._own().handle_request(request)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            made, self._made = self._made, []
        for transport in made:
            transport.close()

    @property
    def pools(self) -> int:
        """How many threads have a pool: one per thread that has sent a request."""
        with self._lock:
            return len(self._made)
