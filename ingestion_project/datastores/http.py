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
from typing import IO, TYPE_CHECKING, Any, ClassVar, NoReturn
from urllib.parse import SplitResult, parse_qsl, quote, quote_plus, unquote, urlsplit, urlunsplit

import dagster as dg
import requests
from pydantic import Field, PrivateAttr, field_validator
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util.retry import Retry

from ingestion_project.datastores.base import (
    DatastoreError,
    FileDatastore,
    FileInfo,
    UnsafePathError,
    normalize_relative_path,
    require_http_url,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_WILDCARDS = re.compile(r"[*?\[]")
_RETRY_STATUSES = (429, 500, 502, 503, 504)
_NOT_FOUND_STATUSES = (404, 410)
_HEAD_REFUSED_STATUSES = (405, 501)
_CHUNK_BYTES = 1024 * 1024
_MAX_CONNECT_TIMEOUT_SECONDS = 10.0
_MAX_RETRY_AFTER_SECONDS = 30.0
_MAX_REDIRECTS = 10
_DETAIL_LIMIT = 300
_UNKNOWN_MODIFIED = datetime.fromtimestamp(0, tz=UTC)
_CONTENT_RANGE_TOTAL = re.compile(r"^\s*bytes\s+(?:\d+-\d+|\*)/(\d+)\s*$", re.IGNORECASE)

_PUBLIC_ADVICE = (
    "HTTP datastores send no credentials, so the file must be public; make it public or copy "
    "it into a datastore that has credentials (azure_blob, adls_gen2, ...)"
)
_RETRY_ADVICE = (
    "the server is overloaded or down; retry later, or raise max_retries/retry_backoff_seconds"
)
_READ_ONLY_ADVICE = (
    "write to a local or Azure datastore instead (point the dataset's output or the registry "
    "at a writable datastore)"
)


class _HttpRetry(Retry):
    """urllib3's Retry, except that a read timeout is final and Retry-After waits are capped.

    A stalled server stays stalled: retrying it would turn timeout_seconds into a multiple of
    itself. A connection reset or a 429/5xx answer is still retried with backoff.
    """

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> _HttpRetry:
        if isinstance(error, ReadTimeoutError):
            raise error
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), _MAX_RETRY_AFTER_SECONDS)


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
                    f"the server stopped sending for {self._store.timeout_seconds} s; retry "
                    "later or raise timeout_seconds",
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
    resets) are retried with backoff; every request is bounded by ``timeout_seconds``.
    """

    name: str = Field(description="Catalog name of this datastore, used in every error message.")
    base_url: str = Field(
        description="http(s) URL of the folder that relative paths start from, "
        "e.g. https://example.org/open-data/"
    )
    timeout_seconds: int = Field(
        default=30, ge=1, le=600, description="Upper bound on waiting for one server answer."
    )
    max_retries: int = Field(
        default=4, ge=0, le=10, description="Retries of a 429/5xx answer or a connection reset."
    )
    retry_backoff_seconds: float = Field(
        default=0.5, ge=0, le=30, description="Backoff factor between retries (doubles each time)."
    )

    _session_cache: tuple[tuple[int, int, float], requests.Session] | None = PrivateAttr(
        default=None
    )
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
        response = self._metadata_response(url, "connecting to the base URL", None)
        if response.status_code == 401 or response.status_code >= 500:
            self._raise_for_status(response, "connecting to the base URL", None)

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
        response = self._metadata_response(self._file_url(clean), action, clean)
        self._raise_for_status(response, action, clean)
        return self._info(clean, response, action)

    def exists(self, path: str) -> bool:
        clean = self._relative(path)
        action = f"checking whether '{clean}' exists"
        response = self._metadata_response(self._file_url(clean), action, clean)
        if response.status_code in _NOT_FOUND_STATUSES:
            return False
        self._raise_for_status(response, action, clean)
        return True

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        """Stream the body in chunks; a body shorter than its Content-Length raises."""
        clean = self._relative(path)
        action = f"reading '{clean}'"
        response = self._send("GET", self._file_url(clean), action, stream=True)
        try:
            self._raise_for_status(response, action, clean)
            body = _ResponseBody(response, self, action)
            with io.BufferedReader(body, buffer_size=_CHUNK_BYTES) as stream:
                yield stream
        finally:
            response.close()

    def write_bytes(self, path: str, data: bytes, *, overwrite: bool = True) -> None:
        self._refuse_write("writing", path)

    def delete(self, path: str) -> None:
        self._refuse_write("deleting", path)

    def close(self) -> None:
        """Close pooled connections; the next request opens new ones."""
        with self._session_lock:
            if self._session_cache is not None:
                self._session_cache[1].close()
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
        # Keyed by the settings because model_copy() shares private attributes with the original.
        key = (self.timeout_seconds, self.max_retries, self.retry_backoff_seconds)
        with self._session_lock:
            if self._session_cache is None or self._session_cache[0] != key:
                if self._session_cache is not None:
                    self._session_cache[1].close()
                retry = _HttpRetry(
                    total=self.max_retries,
                    # A refused connection rarely heals within seconds: one quick retry, not more.
                    connect=min(self.max_retries, 1),
                    backoff_factor=self.retry_backoff_seconds,
                    status_forcelist=_RETRY_STATUSES,
                    allowed_methods=frozenset({"HEAD", "GET"}),
                    respect_retry_after_header=True,
                    raise_on_status=False,
                )
                session = requests.Session()
                adapter = HTTPAdapter(max_retries=retry)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                session.max_redirects = _MAX_REDIRECTS
                # The bytes read must be the bytes Content-Length (and so stat) describes.
                session.headers["Accept-Encoding"] = "identity"
                session.headers["User-Agent"] = "ingestion_project-http-datastore"
                self._session_cache = (key, session)
            return self._session_cache[1]

    def _timeouts(self) -> tuple[float, float]:
        seconds = float(self.timeout_seconds)
        return min(seconds, _MAX_CONNECT_TIMEOUT_SECONDS), seconds

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
    ) -> requests.Response:
        """One request with retries and bounded timeouts; transport failures become errors."""
        try:
            return self._session().request(
                method,
                url,
                headers=headers,
                stream=stream,
                timeout=self._timeouts(),
                allow_redirects=True,
            )
        except requests.exceptions.Timeout as error:
            raise self._error(
                "timed out",
                action,
                self._detail(error),
                f"the server did not answer within {self.timeout_seconds} s; check base_url, "
                "retry later, or raise timeout_seconds",
            ) from None
        except requests.exceptions.SSLError as error:
            raise self._error(
                "unreachable",
                action,
                self._detail(error),
                "the server's TLS certificate was refused; check base_url's host name and the "
                "certificate chain (or the CA bundle in REQUESTS_CA_BUNDLE)",
            ) from None
        except requests.exceptions.ConnectionError as error:
            cause = _root_cause(error)
            if isinstance(cause, NameResolutionError):
                advice = "the host name does not resolve; check base_url and DNS"
            elif isinstance(cause, NewConnectionError):
                advice = "check base_url's host and port, and that the server is up"
            else:
                raise self._error(
                    "error",
                    action,
                    self._detail(error),
                    "the server closed the connection without answering, even after retries; "
                    "retry later or check base_url",
                ) from None
            raise self._error("unreachable", action, self._detail(error), advice) from None
        except requests.exceptions.TooManyRedirects as error:
            raise self._error(
                "error", action, self._detail(error), "the URL redirects in a loop; fix base_url"
            ) from None
        except requests.exceptions.RequestException as error:
            raise self._error(
                "invalid request", action, self._detail(error), "check base_url and the path"
            ) from None

    def _metadata_response(self, url: str, action: str, clean: str | None) -> requests.Response:
        """HEAD, or a one-byte Range GET when HEAD is refused or leaves the size unknown."""
        response = self._send("HEAD", url, action)
        response.close()
        if response.status_code in _HEAD_REFUSED_STATUSES or (
            clean is not None and response.ok and _size(response) is None
        ):
            response = self._send("GET", url, action, headers={"Range": "bytes=0-0"}, stream=True)
            response.close()  # headers only: the body is never read
        return response

    def _raise_for_status(
        self, response: requests.Response, action: str, clean: str | None
    ) -> None:
        status = response.status_code
        if 200 <= status < 300 or status == 416:
            return
        where = self._public_url(clean)
        answer = f"the server answered {status} {response.reason or ''}".rstrip()
        if status in _NOT_FOUND_STATUSES and clean is not None:
            raise FileNotFoundError(
                f"datastore '{self.name}': no file at '{clean}' ({where}): {answer}. "
                "Check the path and base_url."
            )
        if status == 401:
            raise self._error("authentication failed", action, answer, _PUBLIC_ADVICE)
        if status == 403:
            raise self._error("permission denied", action, answer, _PUBLIC_ADVICE)
        if status in _RETRY_STATUSES:
            attempts = _attempts(response)
            raise self._error("error", action, f"{answer} after {attempts} attempts", _RETRY_ADVICE)
        if status in _NOT_FOUND_STATUSES:
            raise self._error("not found", action, answer, "check base_url")
        raise self._error("error", action, answer, "check base_url and the path")

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
        return self._scrub(text)[:_DETAIL_LIMIT]

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


def _attempts(response: requests.Response) -> int:
    retries = getattr(response.raw, "retries", None)
    history = getattr(retries, "history", ()) or ()
    return len(history) + 1


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
