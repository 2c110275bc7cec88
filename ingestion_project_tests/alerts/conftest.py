from __future__ import annotations

from collections.abc import Iterator

import pytest

from ingestion_project_tests.alerts.receiver import WebhookReceiver

_PROXY_VARIABLES = (
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
)


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    """A local webhook; proxy variables unset so 127.0.0.1 is reached directly."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    server = WebhookReceiver()
    server.start()
    yield server
    server.stop()
