"""Alerts posted to webhooks as Slack-compatible JSON, retried a bounded number of times.

A webhook URL is a secret (Slack's embed a token), so it is read from the environment at send
time and never logged: log lines and deliveries name the route and the host only. A delivery
problem is logged and reported, never raised: an alert must not fail the run it is about.
"""

from __future__ import annotations

import base64
import json
import math
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http.client import HTTPException, InvalidURL
from typing import Any, Protocol

from ingestion_project.alerts.messages import (
    EVENTS,
    Alert,
    FieldValue,
    drift_alert,
    performance_drop_alert,
    promotion_alert,
)

__all__ = [
    "EVENTS",
    "Alert",
    "AlertLog",
    "AlertRoute",
    "Delivery",
    "drift_alert",
    "performance_drop_alert",
    "promotion_alert",
    "send_alert",
    "slack_payload",
]

MAX_BACKOFF_SECONDS = 5.0
MAX_RETRY_AFTER_SECONDS = 10.0

# Slack's limits for blocks; longer text is cut rather than rejected with a 400.
_HEADER_CHARS = 150
_SECTION_CHARS = 3000
# A field holds at most 2000 characters: its bold name and its value.
_FIELD_NAME_CHARS = 200
_FIELD_VALUE_CHARS = 1700
_FIELDS_PER_SECTION = 10
# How much of an answer is read: Slack says "ok" or names the error in a few words.
_ANSWER_BYTES = 200
# Path segments and query values at least this long are redacted from error text: tokens are.
_SECRET_PART_CHARS = 4


class AlertLog(Protocol):
    """A `logging.Logger` or Dagster's ``context.log``: all `send_alert` needs of a logger."""

    def info(self, msg: str, /) -> object: ...

    def warning(self, msg: str, /) -> object: ...


@dataclass(frozen=True)
class AlertRoute:
    """One declared webhook: where its URL is kept, and which alerts it receives.

    ``subjects`` limits the route to some models or monitors; None receives them all.
    """

    name: str
    url_env: str
    events: frozenset[str]
    subjects: frozenset[str] | None = None

    def __post_init__(self) -> None:
        events = _names(self.events, f"route '{self.name}' events")
        unknown = sorted(events - set(EVENTS))
        if unknown:
            raise ValueError(
                f"route '{self.name}' lists unknown events {', '.join(unknown)}; "
                f"the events are {', '.join(EVENTS)}."
            )
        object.__setattr__(self, "events", events)
        if self.subjects is not None:
            subjects = _names(self.subjects, f"route '{self.name}' subjects")
            object.__setattr__(self, "subjects", subjects)

    def receives(self, alert: Alert) -> bool:
        return alert.event in self.events and (
            self.subjects is None or alert.subject in self.subjects
        )


@dataclass(frozen=True)
class Delivery:
    """How sending one alert to one route ended; ``error`` never contains the URL."""

    route: str
    delivered: bool
    attempts: int
    status: int | None
    error: str | None


@dataclass(frozen=True)
class _Attempt:
    """One POST's outcome: delivered, or why not and whether another try could help."""

    status: int | None
    error: str | None
    retry: bool
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirected POST would be replayed as a body-less GET and look delivered; report it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def slack_payload(alert: Alert) -> dict[str, Any]:
    """Slack incoming-webhook JSON: ``blocks`` for Slack, ``text`` for every other receiver.

    Receivers that speak Slack's format but not its blocks (Mattermost, Rocket.Chat, Teams
    workflows, Discord's /slack endpoint) show ``text``, so it carries everything in plain lines.
    """
    lines = [_escape(alert.title), _escape(alert.text)]
    lines += [f"{_escape(name)}: {_escape(_shown(value))}" for name, value in alert.fields.items()]
    if alert.link:
        lines.append(_escape(alert.link))
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(alert.title, _HEADER_CHARS)},
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _mrkdwn(alert.text, _SECTION_CHARS)},
        },
    ]
    items = [_field(name, value) for name, value in alert.fields.items()]
    blocks += [
        {"type": "section", "fields": items[start : start + _FIELDS_PER_SECTION]}
        for start in range(0, len(items), _FIELDS_PER_SECTION)
    ]
    if alert.link:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _slack_link(alert.link)}]}
        )
    return {"text": "\n".join(lines), "blocks": blocks}


def send_alert(
    alert: Alert,
    routes: Sequence[AlertRoute],
    *,
    log: AlertLog,
    environ: Mapping[str, str] | None = None,
    max_attempts: int = 3,
    timeout_seconds: float = 5.0,
    backoff_seconds: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """Post ``alert`` to every route that receives it; one `Delivery` per such route.

    Connection errors, timeouts, 429 and 5xx are retried, up to ``max_attempts`` in all, after
    ``backoff_seconds`` doubling per attempt (at most 5 s) or the server's Retry-After (at most
    10 s). Raises ValueError only for arguments no delivery could use, never for a delivery.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be 1 or more, got {max_attempts}.")
    if not timeout_seconds > 0:
        raise ValueError(f"timeout_seconds must be more than 0, got {timeout_seconds}.")
    if backoff_seconds < 0:
        raise ValueError(f"backoff_seconds must be 0 or more, got {backoff_seconds}.")
    env = os.environ if environ is None else environ
    return [
        _deliver(
            alert,
            route,
            env.get(route.url_env, "").strip(),
            log,
            max_attempts,
            timeout_seconds,
            backoff_seconds,
            sleep,
        )
        for route in routes
        if route.receives(alert)
    ]


def _deliver(
    alert: Alert,
    route: AlertRoute,
    url: str,
    log: AlertLog,
    max_attempts: int,
    timeout_seconds: float,
    backoff_seconds: float,
    sleep: Callable[[float], None],
) -> Delivery:
    if not url:
        error = f"environment variable {route.url_env} is not set"
        log.warning(
            f"Alert '{alert.title}' not sent to route '{route.name}': {error}; set it to the "
            "route's webhook URL where the code location runs."
        )
        return Delivery(route.name, False, 0, None, error)
    host = _host(url)
    if host is None:
        error = f"environment variable {route.url_env} does not hold a valid http(s) URL"
        log.warning(
            f"Alert '{alert.title}' not sent to route '{route.name}': {error}; set it to the "
            "webhook URL, starting with https://."
        )
        return Delivery(route.name, False, 0, None, error)
    where = f"route '{route.name}' ({host})"
    attempt = _Attempt(None, None, retry=False)
    number = 0
    try:
        body = json.dumps(slack_payload(alert)).encode("utf-8")
        target, headers = _credentials_as_header(url)
        for number in range(1, max_attempts + 1):
            attempt = _post(target, body, headers, timeout_seconds, url)
            if attempt.delivered:
                log.info(f"Alert '{alert.title}' delivered to {where} on attempt {number}.")
                return Delivery(route.name, True, number, attempt.status, None)
            log.info(
                f"Alert to {where}: attempt {number} of {max_attempts} failed: {attempt.error}"
                + ("." if attempt.retry else "; not retried.")
            )
            if not attempt.retry or number == max_attempts:
                break
            sleep(_pause(number, backoff_seconds, attempt.retry_after))
    except Exception as exc:
        # A bug of ours or a failing injected sleep: still reported, never the run's failure.
        error = f"unexpected {type(exc).__name__}: {_redact(str(exc), url)}"
        log.warning(f"Alert '{alert.title}' not delivered to {where}: {error}.")
        return Delivery(route.name, False, number, None, error)
    log.warning(
        f"Alert '{alert.title}' not delivered to {where} after {_times(number)}: "
        f"{attempt.error}. The run goes on; check the webhook and the variable {route.url_env}."
    )
    return Delivery(route.name, False, number, attempt.status, attempt.error)


def _post(
    target: str, body: bytes, headers: Mapping[str, str], timeout_seconds: float, url: str
) -> _Attempt:
    """One POST; expected network and HTTP failures become an `_Attempt`, with ``url`` redacted."""
    request = urllib.request.Request(
        target,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "ingestion_project-alerts",
            **headers,
        },
    )
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=timeout_seconds) as response:
            response.read(_ANSWER_BYTES)
            return _Attempt(response.status, None, retry=False)
    except urllib.error.HTTPError as exc:
        with exc:
            return _http_error(exc, url)
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, OSError):
            retry = not isinstance(reason, ssl.SSLCertVerificationError)
            return _Attempt(None, _os_error(reason, url), retry=retry)
        return _Attempt(None, f"URLError: {_redact(str(reason), url)}", retry=False)
    except InvalidURL as exc:
        return _Attempt(None, f"InvalidURL: {_redact(str(exc), url)}", retry=False)
    except (OSError, HTTPException) as exc:
        return _Attempt(None, _os_error(exc, url), retry=True)


def _http_error(exc: urllib.error.HTTPError, url: str) -> _Attempt:
    status = exc.code
    if status == 429:
        wait = _retry_after(exc.headers.get("Retry-After"))
        return _Attempt(status, "HTTP 429", retry=True, retry_after=wait)
    if status >= 500:
        return _Attempt(status, f"HTTP {status}", retry=True)
    if 300 <= status < 400:
        return _Attempt(status, f"HTTP {status} redirect; set the final URL", retry=False)
    try:
        said = exc.read(_ANSWER_BYTES).decode("utf-8", "replace")
    except (OSError, HTTPException):
        said = ""
    said = " ".join(_redact(said, url).split())
    return _Attempt(status, f"HTTP {status}" + (f" ({said})" if said else ""), retry=False)


def _os_error(exc: BaseException, url: str) -> str:
    """The class and the message, e.g. "ConnectionRefusedError: Connection refused"."""
    message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    message = _redact(message, url)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds; the HTTP-date form is ignored and the backoff used instead."""
    try:
        seconds = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _pause(failed_attempt: int, backoff_seconds: float, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER_SECONDS)
    return min(backoff_seconds * 2 ** (failed_attempt - 1), MAX_BACKOFF_SECONDS)


def _host(url: str) -> str | None:
    """``host[:port]`` of an http(s) URL, without any user or password; None if it is not one."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return parts.hostname if port is None else f"{parts.hostname}:{port}"


def _credentials_as_header(url: str) -> tuple[str, dict[str, str]]:
    """``https://user:password@host/...`` as Basic auth: urllib would take the user for a host."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, {}
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    target = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return target, {"Authorization": f"Basic {token}"}


def _redact(text: str, url: str) -> str:
    """``text`` with the URL and every part of it that could be a token replaced."""
    if not url or not text:
        return text
    parts = urllib.parse.urlsplit(url)
    secrets = {url, parts.netloc, parts.path, parts.query, parts.fragment}
    secrets.update(part for part in parts.path.split("/"))
    for _, value in urllib.parse.parse_qsl(parts.query):
        secrets.add(value)
    secrets.update(part for part in (parts.username, parts.password) if part)
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= _SECRET_PART_CHARS and secret != parts.hostname:
            text = text.replace(secret, "<redacted>")
    return text


def _names(values: Iterable[str], what: str) -> frozenset[str]:
    if isinstance(values, str):
        raise TypeError(f"{what} must be a set of names, not the string {values!r}.")
    return frozenset(values)


def _times(number: int) -> str:
    return "1 attempt" if number == 1 else f"{number} attempts"


def _shown(value: FieldValue) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _escape(text: str) -> str:
    """Slack's required escaping of user text: &, < and >, nothing else."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mrkdwn(text: str, limit: int) -> str:
    """Escaped text within ``limit`` characters, never ending in half an entity."""
    escaped = _escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    entity = cut.rfind("&")
    if entity >= 0 and ";" not in cut[entity:]:
        cut = cut[:entity]
    return cut + "…"


def _field(name: str, value: FieldValue) -> dict[str, str]:
    """One entry of a section's ``fields``: the name in bold, the figure under it."""
    shown = _mrkdwn(_shown(value), _FIELD_VALUE_CHARS)
    return {"type": "mrkdwn", "text": f"*{_mrkdwn(name, _FIELD_NAME_CHARS)}*\n{shown}"}


def _slack_link(link: str) -> str:
    """``<url|Open in Dagster>``; the characters that would end the link are percent-encoded."""
    safe = link.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E").replace(" ", "%20")
    return f"<{safe.replace('&', '&amp;')}|Open in Dagster>"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
