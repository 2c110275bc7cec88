"""A real local webhook receiver that records each request and answers from a script."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

HANG = "hang"
CLOSE = "close"
# How long a hanging answer waits at most if the test never releases it.
_HANG_SECONDS = 10.0


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: Mapping[str, str] = field(default_factory=dict)


Action = Reply | Literal["hang", "close"]


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """ThreadingHTTPServer on 127.0.0.1, port 0; answers 200 "ok" once its script runs out.

    ``hang`` reads the request and never answers (until `stop`); ``close`` reads it and closes
    the connection without a status line.
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._script: deque[Action] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str = "/services/T0FAKE/B0FAKE/fakeToken123") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, *actions: Action) -> None:
        with self._lock:
            self._script.extend(actions)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next(self, request: Received) -> Action:
        with self._lock:
            self.received.append(request)
            return self._script.popleft() if self._script else Reply()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = Received(
                    method="POST",
                    path=self.path,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=self.rfile.read(length),
                )
                action = receiver._next(request)
                self.close_connection = True
                if action == HANG:
                    receiver._release.wait(_HANG_SECONDS)
                    return
                if action == CLOSE:
                    return
                assert isinstance(action, Reply)
                self.send_response(action.status)
                for name, value in action.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(action.body)))
                self.end_headers()
                self.wfile.write(action.body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests read `received`, not the server's access log."""

        return Handler
