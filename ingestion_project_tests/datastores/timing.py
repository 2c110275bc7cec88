"""Time without waiting for it: a simulated clock, and a real server that never answers.

Datastore tests check time budgets by what was asked of the network (attempts, and the timeout
each attempt was given) and by the pauses taken on a simulated clock, never by measuring how
long something took on a machine that other work shares.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
from azure.core.pipeline.transport import RequestsTransport


class FakeClock:
    """A clock whose time moves only when slept on or advanced; it records every pause."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, as a slow server would."""
        self.now += seconds


class SilentServer:
    """A real TCP server that accepts every connection and then falls silent.

    By default it never sends a byte. With ``answer``, it sends those bytes once a request has
    arrived (say, a response's headers) and nothing more: a body that stalls. ``connections``
    counts the connections made to it, which is how many attempts a client made; read it after
    ``close()`` (or the ``with`` block), which also counts any not yet accepted.
    """

    def __init__(self, answer: bytes = b"") -> None:
        self._answer = answer
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # so that the accepting thread notices close()
        self.port: int = self._listener.getsockname()[1]
        self._accepted: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._accepted)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            with self._lock:
                self._accepted.append(connection)
            if self._answer:
                threading.Thread(target=self._reply, args=(connection,), daemon=True).start()

    def _reply(self, connection: socket.socket) -> None:
        try:
            connection.recv(65536)
            connection.sendall(self._answer)
        except OSError:
            return  # the client gave up first

    def close(self) -> None:
        """Stop listening; connections still in the backlog are counted too."""
        self._closed.set()
        self._thread.join(timeout=10)
        self._listener.setblocking(False)
        while True:
            try:
                connection, _ = self._listener.accept()
            except BlockingIOError:
                break
            with self._lock:
                self._accepted.append(connection)
        self._listener.close()
        with self._lock:
            for connection in self._accepted:
                connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class TimeoutRecordingTransport(RequestsTransport):
    """azure-core's real requests transport, recording the timeouts each attempt was given."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[tuple[float, float]] = []

    def send(self, request: Any, **kwargs: Any) -> Any:
        self.timeouts.append((kwargs["connection_timeout"], kwargs["read_timeout"]))
        return super().send(request, **kwargs)


@contextmanager
def recording_driver_connects() -> Iterator[list[dict[str, Any]]]:
    """The keyword arguments of every DB-API connect SQLAlchemy makes meanwhile, in order.

    One entry per connection attempt, with the timeouts the driver was actually given.
    """
    connects: list[dict[str, Any]] = []

    def record(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
        connects.append(dict(params))

    sa.event.listen(sa.Engine, "do_connect", record)
    try:
        yield connects
    finally:
        sa.event.remove(sa.Engine, "do_connect", record)
