"""One HTTP pool per thread: made on a thread's first request, reused after, closed together."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import httpx
import pytest

from gardener.llm.connections import PerThreadTransport


class Recording(httpx.MockTransport):
    """A transport that answers with the number it was made with, and knows if it was closed."""

    made: ClassVar[list[Recording]] = []

    def __init__(self) -> None:
        self.number = len(Recording.made)
        self.closed = False
        self.threads: set[int] = set()
        Recording.made.append(self)
        super().__init__(self._answer)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.threads.add(threading.get_ident())
        return httpx.Response(200, text=str(self.number))

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def transport() -> PerThreadTransport:
    Recording.made = []
    return PerThreadTransport(Recording)


def test_each_thread_keeps_its_own_pool(transport: PerThreadTransport) -> None:
    barrier = threading.Barrier(4)
    client = httpx.Client(transport=transport)  # one client for all threads, as LLM has

    def two_requests(_: int) -> tuple[str, str]:
        barrier.wait()  # all four threads are in flight at once
        first = client.get("http://model.test/").text
        return first, client.get("http://model.test/").text

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(two_requests, range(4)))
    assert all(first == second for first, second in answers)  # a thread reuses its pool
    assert sorted(first for first, _ in answers) == ["0", "1", "2", "3"]
    assert transport.pools == 4
    assert all(len(made.threads) == 1 for made in Recording.made)
    assert not any(made.closed for made in Recording.made)
    client.close()  # closing the client closes every pool
    assert all(made.closed for made in Recording.made)


def test_close_closes_every_pool_and_refuses_later_requests(
        transport: PerThreadTransport) -> None:
    request = httpx.Request("GET", "http://model.test/")
    barrier = threading.Barrier(3)

    def send(_: int) -> httpx.Response:
        barrier.wait()  # three threads, not one reused
        return transport.handle_request(request)

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(send, range(3)))
    transport.close()
    assert len(Recording.made) == 3 and all(made.closed for made in Recording.made)
    with ThreadPoolExecutor(1) as pool, pytest.raises(RuntimeError, match="closed"):
        pool.submit(transport.handle_request, request).result()
    assert len(Recording.made) == 4 and Recording.made[-1].closed  # made, then closed at once
