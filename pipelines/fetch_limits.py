"""One deadline and one byte budget per fetch, redirects included (`download.deadline_s`, `download.max_bytes`).

A fetch is one top-level `open` of the fetch policy's opener (`fetch_scope`); its redirect hops share
its budget. Connections dial within the time left (`connect_timeout`) and responses read the network
through a metered stream (`MeteredResponse`): before each read the socket timeout shrinks to the time
left, after it the bytes are counted. Past either limit the read raises, so a trickling or endless
body stops at once and the bytes read so far go with the exception. A declared Content-Length over
the budget is refused before any of the body is read.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

DEADLINE_KEY = "download.deadline_s"
MAX_BYTES_KEY = "download.max_bytes"


class DeadlineExceeded(OSError):
    """The fetch ran past `download.deadline_s`."""


class TooLarge(OSError):
    """The fetch received (or announced) more than `download.max_bytes`."""


@dataclass(frozen=True)
class Limits:
    deadline_s: float
    max_bytes: int


class Budget:
    """What is left of one fetch's time and bytes."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.ends = time.monotonic() + limits.deadline_s
        self.received = 0

    def time_left(self) -> float:
        left = self.ends - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(f"fetch took longer than {self.limits.deadline_s:g} s ({DEADLINE_KEY})")
        return left

    def spend(self, n: int) -> None:
        self.received += n
        if self.received > self.limits.max_bytes:
            raise TooLarge(f"fetch received more than {self.limits.max_bytes} bytes ({MAX_BYTES_KEY})")

    def expect(self, length: int | None) -> None:
        """Refuse a body whose declared length does not fit what is left."""
        if length is not None and self.received + length > self.limits.max_bytes:
            raise TooLarge(
                f"Content-Length {length} is over the limit of {self.limits.max_bytes} bytes ({MAX_BYTES_KEY})"
            )


_local = threading.local()


@contextlib.contextmanager
def fetch_scope(limits: Limits, new: bool = False) -> Iterator[Budget]:
    """The budget of the fetch running in this thread: the enclosing one (a redirect hop), else a new one."""
    outer = getattr(_local, "budget", None)
    _local.budget = outer if outer is not None and not new else Budget(limits)
    try:
        yield _local.budget
    finally:
        _local.budget = outer


def connect_timeout(timeout: float | None) -> float | None:
    """A connect timeout that ends no later than the current fetch's deadline."""
    budget = getattr(_local, "budget", None)
    if budget is None:
        return timeout
    left = budget.time_left()
    return left if timeout is None else min(timeout, left)


class _MeteredStream(io.RawIOBase):
    """A socket's raw stream, read within a budget."""

    def __init__(self, raw: io.RawIOBase, sock: socket.socket, budget: Budget):
        self._raw, self._sock, self._budget = raw, sock, budget
        self._read_timeout = sock.gettimeout()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int | None:
        left = self._budget.time_left()
        self._sock.settimeout(left if self._read_timeout is None else min(left, self._read_timeout))
        try:
            n = self._raw.readinto(buffer)
        except TimeoutError:
            self._budget.time_left()  # the deadline, not the read timeout, ended it: say so
            raise
        self._budget.spend(n or 0)
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


class MeteredResponse(http.client.HTTPResponse):
    """An HTTP response that reads the network within the budget of the fetch that made it."""

    def __init__(self, sock, *args, **kwargs):
        super().__init__(sock, *args, **kwargs)
        self._budget = getattr(_local, "budget", None)
        if self._budget is not None:  # nothing is read yet: detaching the buffer loses no data
            self.fp = io.BufferedReader(_MeteredStream(self.fp.detach(), sock, self._budget))

    def begin(self) -> None:
        super().begin()
        if self._budget is not None:
            self._budget.expect(self.length)
