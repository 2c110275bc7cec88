"""What the DBFS datastore needs of databricks-sdk, kept apart so only a store in use imports it.

Importing databricks-sdk costs about a second; every code location that declares catalogs
imports the datastore classes (their fields are the catalog's schema), but only a DBFS store
that is used needs the SDK.
"""

from __future__ import annotations

import sys
import time

import requests
from databricks.sdk.clock import Clock
from databricks.sdk.errors import (
    DataLoss,
    DeadlineExceeded,
    InternalError,
    TemporarilyUnavailable,
    TooManyRequests,
)
from databricks.sdk.errors.base import DatabricksError
from urllib3.exceptions import NewConnectionError


class FailFastClock(Clock):
    """Ends the SDK's own retry loop after its first attempt, so the datastore's policy applies.

    The SDK retries 429/503, refused connections and timeouts with fixed 1-11 s pauses until
    ``retry_timeout_seconds`` runs out: no attempt cap, no backoff setting, and an unreachable
    host is retried for the whole budget. Its loop calls ``sleep`` while handling the failed
    attempt's error, so re-raising that error hands it straight back to ``DbfsDatastore._call``.
    """

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        pending = sys.exc_info()[1]
        if pending is not None:
            raise pending
        time.sleep(seconds)


def unwrap(error: BaseException) -> BaseException:
    """The API error behind an SDK retry-budget error, in case the SDK ever retried on its own."""
    cause = error.__cause__
    if isinstance(error, TimeoutError | RuntimeError) and isinstance(
        cause, DatabricksError | requests.RequestException
    ):
        return cause
    return error


def retry_kind(error: BaseException) -> str | None:
    """'safe' if the request was certainly not applied, 'ambiguous' if it may have been, else None.

    Only idempotent calls retry ambiguous failures: repeating an add-block that did land would
    duplicate data. A refused connection or unknown host is not retried, so it fails fast. Nor is
    a timeout: the SDK gives every attempt the whole timeout_seconds, so retrying a silent
    workspace would multiply the wait.
    """
    if isinstance(error, TooManyRequests | TemporarilyUnavailable):
        return "safe"
    if isinstance(error, requests.Timeout):
        return None
    if isinstance(error, requests.ConnectionError):
        reason = error.args[0] if error.args else None
        if isinstance(getattr(reason, "reason", reason), NewConnectionError):
            return None
        return "ambiguous"
    if isinstance(error, InternalError | DeadlineExceeded) and not isinstance(error, DataLoss):
        return "ambiguous"
    if type(error) is DatabricksError and "BAD_GATEWAY" in str(error.error_code).upper():
        return "ambiguous"
    return None
