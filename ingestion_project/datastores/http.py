"""Read-only files over public HTTP(S): open datasets and datasets from public URLs.

Paths are plain names relative to ``base_url``; each segment is percent-encoded here, so a path
can never add a query, a fragment or a ``..`` to the URL. HTTP cannot list a folder, so a pattern
with wildcards is refused: name one file per dataset, or copy the files into a file datastore that
can list (local, Azure Blob, ...). Metadata comes from ``HEAD`` (or a one-byte ``Range`` GET when
HEAD is refused), so fingerprinting a dataset never downloads it.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import IO, TYPE_CHECKING, ClassVar, NamedTuple, NoReturn
from urllib.parse import SplitResult, parse_qsl, quote, quote_plus, unquote, urlsplit, urlunsplit

import dagster as dg
import requests
from pydantic import Field, PrivateAttr, field_validator
from urllib3.exceptions import (
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from ingestion_project.datastores.base import (
    DatastoreError,
    FileDatastore,
    FileInfo,
    UnsafePathError,
    normalize_relative_path,
    require_http_url,
)
from ingestion_project.datastores.deadline import Deadline

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_WILDCARDS = re.compile(r"[*?\[]")
_RETRY_STATUSES = (429, 500, 502, 503, 504)
_NOT_FOUND_STATUSES = (404, 410)
_HEAD_REFUSED_STATUSES = (405, 501)
_CHUNK_BYTES = 1024 * 1024
_MAX_CONNECT_TIMEOUT_SECONDS = 10.0
_MAX_RETRY_AFTER_SECONDS = 30.0
_MAX_BACKOFF_SECONDS = 30.0
_MAX_REDIRECTS = 10
_DETAIL_LIMIT = 300
_UNKNOWN_MODIFIED = datetime.fromtimestamp(0, tz=UTC)
_CONTENT_RANGE_TOTAL = re.compile(r"^\s*bytes\s+(?:\d+-\d+|\*)/(\d+)\s*$", re.IGNORECASE)

_PUBLIC_ADVICE = (
    "HTTP datastores send no credentials, so the file must be public; make it public or copy "
    "it into a datastore that has credentials (azure_blob, adls_gen2, ...)"
)
_RETRY_ADVICE = (
    "the server is overloaded or down; retry later, or raise max_retries, retry_backoff_seconds "
    "or timeout_seconds (which bounds all attempts together)"
)
_READ_ONLY_ADVICE = (
    "write to a local or Azure datastore instead (point the dataset's output or the registry "
    "at a writable datastore)"
)


class _Answer(NamedTuple):
    """The response a request ended with, and how many attempts it took."""

    response: requests.Response
    attempts: int


class _ResponseBody(io.RawIOBase):
    """A raw stream over a response's bytes that fails loudly if the body ends short.

    The bytes are the ones Content-Length describes (no transparent decompression), so what is
    read has exactly the size ``stat`` reported.
    """

    def __init__(self, response: requests.Response, store: HttpDatastore, action: str) -> None:
        super().__init__()
        self._response = response
        self._chunks = response.raw.stream(_CHUNK_BYTES, decode_content=False)
        self._expected = _content_length(response)
        self._store = store
        self._action = action
        self._received = 0
        self._pending = memoryview(b"")
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        if not self._pending:
            self._pending = memoryview(self._next_chunk())
        target = memoryview(buffer).cast("B")
        count = min(len(target), len(self._pending))
        target[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def close(self) -> None:
        self._response.close()
        super().close()

    def _next_chunk(self) -> bytes:
        while not self._done:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._done = True
                break
            except ReadTimeoutError as error:
                raise self._store._error(
                    "timed out",
                    self._action,
                    self._store._detail(error),
                    "the server stopped sending the body for longer than the request had left "
                    "of timeout_seconds; retry later or raise timeout_seconds",
                ) from None
            except (ProtocolError, OSError, requests.RequestException):
                raise self._truncated() from None
            if chunk:
                self._received += len(chunk)
                return chunk
        if self._expected is not None and self._received < self._expected:
            raise self._truncated()
        return b""

    def _truncated(self) -> DatastoreError:
        expected = "an unknown number of" if self._expected is None else str(self._expected)
        return self._store._error(
            "error",
            self._action,
            f"the body was truncated: {self._received} of {expected} bytes arrived before the "
            "server closed the connection",
            "retry later, or copy the file into a datastore on a more reliable host",
        )


class HttpDatastore(FileDatastore):
    """Public files under one http(s) URL, read-only; metadata from HEAD, never the body.

    ETags come from the server's ``ETag`` (weakness and quotes stripped) or, without one, from a
    hash of ``Last-Modified`` and ``Content-Length``. Transient failures (429, 5xx, connection
    resets) are retried with backoff; a request and its retries together wait at most
    ``timeout_seconds`` (see ``_send``).
    """

    name: str = Field(description="Catalog name of this datastore, used in every error message.")
    base_url: str = Field(
        description="http(s) URL of the folder that relative paths start from, "
        "e.g. https://example.org/open-data/"
    )
    timeout_seconds: int = Field(
        default=30,
        ge=1,
        le=600,
        description=(
            "Upper bound on waiting for the server in one request, retries and their pauses "
            "included: each retry gets only what is left of it (connecting at most 10 s of "
            "it), and none is made when too little is left. A body that keeps arriving is read "
            "to its end; a pause in it longer than what the request had left fails the read."
        ),
    )
    max_retries: int = Field(
        default=4,
        ge=0,
        le=10,
        description=(
            "Retries of a 429/5xx answer or a dropped connection (a refused one is retried "
            "once), as long as timeout_seconds has time left for them."
        ),
    )
    retry_backoff_seconds: float = Field(
        default=0.5,
        ge=0,
        le=30,
        description=(
            "First pause between retries; doubles each time. A longer Retry-After (up to 30 s) "
            "is honoured."
        ),
    )

    _session_cache: requests.Session | None = PrivateAttr(default=None)
    _session_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    kind: ClassVar[str] = "http"

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return require_http_url(value)

    @property
    def store_name(self) -> str:
        return self.name

    def describe(self) -> str:
        """The base URL without user:password or query string, which may carry credentials."""
        parts = urlsplit(self.base_url.strip())
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, host, parts.path, "", ""))

    def check(self) -> None:
        """Any answer below 500 from the base URL proves the server is there.

        Static hosts often answer 403 or 404 for a folder, so those count as reachable; a 401
        does not, because a server asking for credentials will ask for them on every file.
        """
        base = self._base()
        url = urlunsplit((base.scheme, base.netloc, self._base_path(base), base.query, ""))
        answer = self._metadata_response(url, "connecting to the base URL", None)
        if answer.response.status_code == 401 or answer.response.status_code >= 500:
            self._raise_for_status(answer, "connecting to the base URL", None)

    def list_files(self, pattern: str) -> list[FileInfo]:
        """The one file ``pattern`` names, or nothing if it is absent: HTTP cannot list folders."""
        clean = self._relative(pattern)
        if _WILDCARDS.search(clean):
            raise DatastoreError(
                f"datastore '{self.name}' ({self.describe()}): invalid request while listing "
                f"'{pattern}': HTTP datastores cannot list folders, so wildcards cannot be "
                "expanded. To fix: name the files one per dataset (a path without * ? [), or "
                "copy them into a file datastore that can list (local, azure_blob, adls_gen2).",
                reason="invalid request",
            )
        try:
            return [self.stat(clean)]
        except FileNotFoundError:
            return []

    def stat(self, path: str) -> FileInfo:
        clean = self._relative(path)
        action = f"reading the metadata of '{clean}'"
        answer = self._metadata_response(self._file_url(clean), action, clean)
        self._raise_for_status(answer, action, clean)
        return self._info(clean, answer.response, action)

    def exists(self, path: str) -> bool:
        clean = self._relative(path)
        action = f"checking whether '{clean}' exists"
        answer = self._metadata_response(self._file_url(clean), action, clean)
        if answer.response.status_code in _NOT_FOUND_STATUSES:
            return False
        self._raise_for_status(answer, action, clean)
        return True

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        """Stream the body in chunks; a body shorter than its Content-Length raises."""
        clean = self._relative(path)
        action = f"reading '{clean}'"
        answer = self._send("GET", self._file_url(clean), action, stream=True)
        try:
            self._raise_for_status(answer, action, clean)
            body = _ResponseBody(answer.response, self, action)
            with io.BufferedReader(body, buffer_size=_CHUNK_BYTES) as stream:
                yield stream
        finally:
            answer.response.close()

    def write_bytes(self, path: str, data: bytes, *, overwrite: bool = True) -> None:
        self._refuse_write("writing", path)

    def delete(self, path: str) -> None:
        self._refuse_write("deleting", path)

    def close(self) -> None:
        """Close pooled connections; the next request opens new ones."""
        with self._session_lock:
            if self._session_cache is not None:
                self._session_cache.close()
                self._session_cache = None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Dagster calls this after a run or sensor tick, so pooled connections do not linger."""
        self.close()

    def _refuse_write(self, action: str, path: str) -> NoReturn:
        raise DatastoreError(
            f"datastore '{self.name}' ({self.describe()}): read-only while {action} '{path}': "
            f"HTTP datastores are read-only. To fix: {_READ_ONLY_ADVICE}.",
            reason="read-only",
        )

    def _session(self) -> requests.Session:
        """One pooled session; it never retries on its own, ``_send`` does."""
        with self._session_lock:
            if self._session_cache is None:
                session = requests.Session()
                session.max_redirects = _MAX_REDIRECTS
                # The bytes read must be the bytes Content-Length (and so stat) describes.
                session.headers["Accept-Encoding"] = "identity"
                session.headers["User-Agent"] = "ingestion_project-http-datastore"
                self._session_cache = session
            return self._session_cache

    @staticmethod
    def _timeouts(budget: float) -> tuple[float, float]:
        """(connect, read) timeouts for an attempt that may wait ``budget`` seconds."""
        return min(budget, _MAX_CONNECT_TIMEOUT_SECONDS), budget

    def _base(self) -> SplitResult:
        parts = urlsplit(self.base_url.strip())
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise DatastoreError(
                f"datastore '{self.name}': base_url '{self.describe()}' is not an http(s) URL. "
                "To fix: give the folder's URL, like https://example.org/open-data/.",
                reason="invalid request",
            )
        return parts

    @staticmethod
    def _base_path(base: SplitResult) -> str:
        return base.path if base.path.endswith("/") else f"{base.path}/"

    def _relative(self, path: str) -> str:
        """A clean relative path, refusing ``..`` even when it is percent-encoded.

        Paths are plain names (this store encodes them), so ``%2e%2e`` is either a mistake or an
        attempt to climb out through a server that decodes twice: refused either way.
        """
        clean = normalize_relative_path(path, store=self.name)
        decoded = clean
        for _ in range(3):
            once_more = unquote(decoded)
            if once_more == decoded:
                break
            decoded = once_more
        if decoded != clean:
            try:
                normalize_relative_path(decoded, store=self.name)
            except UnsafePathError:
                raise UnsafePathError(
                    f"datastore '{self.name}': path '{path}' decodes to '{decoded}', which "
                    "leaves the datastore root. Give a plain path inside the datastore "
                    "(names are percent-encoded for you)."
                ) from None
        return clean

    def _file_url(self, clean: str) -> str:
        base = self._base()
        base_path = self._base_path(base)
        encoded = "/".join(quote(segment, safe="") for segment in clean.split("/"))
        url = urlunsplit((base.scheme, base.netloc, base_path + encoded, base.query, ""))
        joined = urlsplit(url)
        if (joined.scheme, joined.netloc) != (base.scheme, base.netloc) or not (
            joined.path.startswith(base_path)
        ):
            raise UnsafePathError(
                f"datastore '{self.name}': path '{clean}' would leave {self.describe()}. "
                "Give a path inside the datastore."
            )
        return url

    def _public_url(self, clean: str | None) -> str:
        root = self.describe()
        if not clean:
            return root
        return root.rstrip("/") + "/" + "/".join(quote(s, safe="") for s in clean.split("/"))

    def _send(
        self,
        method: str,
        url: str,
        action: str,
        *,
        headers: dict[str, str] | None = None,
        stream: bool = False,
    ) -> _Answer:
        """One request, retried on 429/5xx answers and dropped connections within one budget.

        All attempts together wait at most ``timeout_seconds``: a retry gets only what is left
        of it as its timeouts, and a retry whose pause would leave too little is not made, so a
        silent server costs one timeout. A refused connection is retried once; a timeout, a
        TLS failure or a redirect loop is final. Transport failures become DatastoreErrors.
        """
        deadline = Deadline(self.timeout_seconds, self._clock)
        budget = deadline.seconds
        refusals = 0
        attempts = 0
        while True:
            attempts += 1
            try:
                response = self._session().request(
                    method,
                    url,
                    headers=headers,
                    stream=stream,
                    timeout=self._timeouts(budget),
                    allow_redirects=True,
                )
            except requests.RequestException as error:
                refused = _is_refused(error)
                refusals += refused
                pause = self._backoff(attempts)
                retryable = (refused and refusals == 1) or _is_dropped(error)
                if not (
                    retryable
                    and attempts <= self.max_retries
                    and deadline.allows_attempt_after(pause)
                ):
                    raise self._transport_error(error, action, attempts) from None
            else:
                if response.status_code not in _RETRY_STATUSES or attempts > self.max_retries:
                    return _Answer(response, attempts)
                pause = max(self._backoff(attempts), _retry_after(response))
                if not deadline.allows_attempt_after(pause):
                    return _Answer(response, attempts)
                response.close()
            deadline.pause(pause)
            budget = deadline.remaining()

    def _backoff(self, attempts: int) -> float:
        """The pause after attempt ``attempts``: retry_backoff_seconds, doubling each time."""
        return min(self.retry_backoff_seconds * 2 ** (attempts - 1), _MAX_BACKOFF_SECONDS)

    def _transport_error(
        self, error: requests.RequestException, action: str, attempts: int
    ) -> DatastoreError:
        """What a request that got no answer tells the user, and what to do about it."""
        detail = self._detail(error)
        if isinstance(error, requests.exceptions.Timeout):
            return self._error(
                "timed out",
                action,
                f"{detail} (no answer within timeout_seconds={self.timeout_seconds} over "
                f"{attempts} attempt(s))",
                "check base_url, retry later, or raise timeout_seconds",
            )
        if isinstance(error, requests.exceptions.SSLError):
            return self._error(
                "unreachable",
                action,
                detail,
                "the server's TLS certificate was refused; check base_url's host name and the "
                "certificate chain (or the CA bundle in REQUESTS_CA_BUNDLE)",
            )
        if isinstance(error, requests.exceptions.ConnectionError):
            cause = _root_cause(error)
            if isinstance(cause, NameResolutionError):
                advice = "the host name does not resolve; check base_url and DNS"
                return self._error("unreachable", action, detail, advice)
            if isinstance(cause, NewConnectionError):
                return self._error(
                    "unreachable",
                    action,
                    detail,
                    "check base_url's host and port, and that the server is up",
                )
            return self._error(
                "error",
                action,
                f"{detail} (after {attempts} attempt(s))",
                "the server closed the connection without answering, even after retries; "
                "retry later or check base_url",
            )
        if isinstance(error, requests.exceptions.TooManyRedirects):
            return self._error("error", action, detail, "the URL redirects in a loop; fix base_url")
        return self._error("invalid request", action, detail, "check base_url and the path")

    def _metadata_response(self, url: str, action: str, clean: str | None) -> _Answer:
        """HEAD, or a one-byte Range GET when HEAD is refused or leaves the size unknown."""
        answer = self._send("HEAD", url, action)
        response = answer.response
        response.close()
        if response.status_code in _HEAD_REFUSED_STATUSES or (
            clean is not None and response.ok and _size(response) is None
        ):
            answer = self._send("GET", url, action, headers={"Range": "bytes=0-0"}, stream=True)
            answer.response.close()  # headers only: the body is never read
        return answer

    def _raise_for_status(self, answer: _Answer, action: str, clean: str | None) -> None:
        response = answer.response
        status = response.status_code
        if 200 <= status < 300 or status == 416:
            return
        where = self._public_url(clean)
        said = f"the server answered {status} {response.reason or ''}".rstrip()
        if status in _NOT_FOUND_STATUSES and clean is not None:
            raise FileNotFoundError(
                f"datastore '{self.name}': no file at '{clean}' ({where}): {said}. "
                "Check the path and base_url."
            )
        if status == 401:
            raise self._error("authentication failed", action, said, _PUBLIC_ADVICE)
        if status == 403:
            raise self._error("permission denied", action, said, _PUBLIC_ADVICE)
        if status in _RETRY_STATUSES:
            detail = f"{said} after {answer.attempts} attempts"
            raise self._error("error", action, detail, _RETRY_ADVICE)
        if status in _NOT_FOUND_STATUSES:
            raise self._error("not found", action, said, "check base_url")
        raise self._error("error", action, said, "check base_url and the path")

    def _info(self, clean: str, response: requests.Response, action: str) -> FileInfo:
        size = _size(response)
        if size is None:
            raise self._error(
                "error",
                action,
                "the server reports no size (no Content-Length or Content-Range)",
                "copy the file into a file datastore; without a size its changes cannot be "
                "detected without downloading it",
            )
        last_modified = response.headers.get("Last-Modified")
        etag = _clean_etag(response.headers.get("ETag"))
        if not etag:
            if not last_modified:
                raise self._error(
                    "error",
                    action,
                    "the server sends neither ETag nor Last-Modified",
                    "copy the file into a file datastore; without them a change to the file "
                    "could not be detected",
                )
            digest = hashlib.sha256(f"{last_modified.strip()}\t{size}".encode())
            etag = digest.hexdigest()[:32]
        return FileInfo(path=clean, size=size, modified=_http_date(last_modified), etag=etag)

    def _error(self, reason: str, action: str, detail: str, advice: str) -> DatastoreError:
        message = (
            f"datastore '{self.name}' ({self.describe()}): {reason} while {action}: {detail}. "
            f"To fix: {advice}."
        )
        return DatastoreError(self._scrub(message), reason=reason)

    def _detail(self, error: Exception | None) -> str:
        if error is None:
            return ""
        text = " ".join(str(_root_cause(error)).split())
        return self._scrub(text)[:_DETAIL_LIMIT].rstrip(".")

    def _scrub(self, text: str) -> str:
        """Remove the user:password and query string of base_url, which may hold credentials."""
        for value in self._url_secrets():
            text = text.replace(value, "***")
        return text

    def _url_secrets(self) -> list[str]:
        parts = urlsplit(self.base_url.strip())
        found: set[str] = set()
        userinfo = parts.netloc.rpartition("@")[0]
        if userinfo:
            found.add(userinfo)
        if parts.password:
            found.update({parts.password, unquote(parts.password)})
        if parts.query:
            found.update({parts.query, unquote(parts.query)})
            for _, value in parse_qsl(parts.query, keep_blank_values=True):
                if len(value) >= 4:
                    found.update({value, quote(value, safe=""), quote_plus(value)})
        return sorted((value for value in found if value), key=len, reverse=True)


def _root_cause(error: BaseException) -> BaseException:
    """The urllib3 error inside requests' wrappers, whose message says what actually failed."""
    cause = error
    for _ in range(5):
        if isinstance(cause, MaxRetryError) and cause.reason is not None:
            cause = cause.reason
        elif isinstance(cause, requests.RequestException) and cause.args:
            inner = cause.args[0]
            if not isinstance(inner, BaseException):
                break
            cause = inner
        else:
            break
    return cause


def _is_refused(error: requests.RequestException) -> bool:
    """No connection was made: refused, unknown host, or no route (not a connect timeout)."""
    return not isinstance(error, requests.exceptions.Timeout) and isinstance(
        _root_cause(error), NewConnectionError
    )


def _is_dropped(error: requests.RequestException) -> bool:
    """The connection was cut before an answer came: reset, closed, or aborted mid-request."""
    return (
        type(error) is requests.exceptions.ConnectionError
        and not isinstance(_root_cause(error), NewConnectionError)
    ) or isinstance(error, requests.exceptions.ChunkedEncodingError)


def _retry_after(response: requests.Response) -> float:
    """The pause a Retry-After header asks for (seconds or an HTTP date), at most 30 s."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return 0.0
    if value.isdigit():
        return min(float(value), _MAX_RETRY_AFTER_SECONDS)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    wait = (moment - datetime.now(UTC)).total_seconds()
    return min(max(wait, 0.0), _MAX_RETRY_AFTER_SECONDS)


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _size(response: requests.Response) -> int | None:
    """The whole file's size: from Content-Range for a partial answer, else Content-Length."""
    if response.status_code in (206, 416):
        match = _CONTENT_RANGE_TOTAL.match(response.headers.get("Content-Range", ""))
        return int(match.group(1)) if match else None
    return _content_length(response)


def _clean_etag(value: str | None) -> str:
    if not value:
        return ""
    value = value.strip()
    if value[:2].upper() == "W/":
        value = value[2:]
    return value.strip().strip('"')


def _http_date(value: str | None) -> datetime:
    """Last-Modified as an aware UTC datetime; the epoch when the server gives none."""
    if not value:
        return _UNKNOWN_MODIFIED
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return _UNKNOWN_MODIFIED
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
