"""AzureFileShareDatastore, verified against recorded and simulated responses, not a live service.

Why: Azurite does not serve the File Share API and no Azure account is reachable from here. So
every test drives the real azure-storage-file-share client through the SDK's own RequestsTransport;
only the HTTP exchange below it is replaced by a requests adapter that answers as Azure Files
does. Two kinds of answers:

- ``recordings/file_share/*.json``: fixed responses in the live service's wire format, replayed in
  order, each request checked (method, path, query) before it is answered.
- ``FakeAzureFiles``: a small in-memory Azure Files that answers the REST calls the SDK makes
  (Create Directory, Create File, Put Range, Get File, Get File Properties (HEAD), List Directories
  and Files, Rename File, Delete File, Get Share Properties) with the documented status codes,
  error codes and headers (ETag, Last-Modified, Content-Length, x-ms-request-id, x-ms-version). It
  checks each request's Shared Key signature with its own implementation of the documented
  string-to-sign, so a wrong key gets the service's 403 AuthenticationFailed. Situations it does
  not model fail the test instead of being guessed.

Tests assert on the requests the SDK sent, so they prove our code drives the SDK correctly; they
cannot prove the live service behaves as the documentation says. Two tests use the real network
stack against local sockets (a closed port, and a port that never answers).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import posixpath
import socket
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.sax.saxutils import escape

import dagster as dg
import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import HTTPAdapter
from urllib3 import HTTPResponse
from urllib3.exceptions import NewConnectionError, ProtocolError

from ingestion_project.datastores import azure_file_share
from ingestion_project.datastores.azure_common import AzureCredential
from ingestion_project.datastores.azure_file_share import AzureFileShareDatastore
from ingestion_project.datastores.base import DatastoreError, FileInfo, UnsafePathError
from ingestion_project.datastores.deadline import MIN_ATTEMPT_SECONDS
from ingestion_project_tests.catalogs import project_catalog_of
from ingestion_project_tests.datastores.timing import (
    FakeClock,
    SilentServer,
    TimeoutRecordingTransport,
)

STORE = "team_files"
ACCOUNT = "ingestfake"
HOST = f"{ACCOUNT}.file.core.windows.net"
ACCOUNT_URL = f"https://{HOST}"
TIMEOUT = 7
RECORDINGS = Path(__file__).parent / "recordings" / "file_share"


def planted_key() -> str:
    """A unique, valid base64 account key, so its absence from messages means something."""
    return base64.b64encode(uuid.uuid4().bytes * 4).decode()


@dataclass
class Call:
    """One request as it reached the wire."""

    method: str
    url: str
    raw_path: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    timeout: Any

    @property
    def share(self) -> str:
        return self.path.lstrip("/").split("/", 1)[0]

    @property
    def entry(self) -> str:
        """The path inside the share ('' for the share's root)."""
        parts = self.path.lstrip("/").split("/", 1)
        return parts[1] if len(parts) > 1 else ""

    def is_list(self) -> bool:
        return self.query.get("restype") == "directory" and self.query.get("comp") == "list"


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode()


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    if hasattr(body, "read"):
        return body.read()
    return b"".join(body)


class _Adapter(HTTPAdapter):
    """Stands in for the socket: hands each prepared request to ``answer`` and wraps its reply."""

    def __init__(self, answer: Callable[[Call], tuple[int, dict[str, str], bytes]]) -> None:
        super().__init__()
        self._answer = answer

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None, **_: Any
    ) -> requests.Response:
        url = request.url or ""
        parts = urlsplit(url)
        call = Call(
            method=request.method or "",
            url=url,
            raw_path=parts.path,
            path=unquote(parts.path),
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={name.lower(): _text(value) for name, value in request.headers.items()},
            body=_body_bytes(request.body),
            timeout=timeout,
        )
        status, headers, body = self._answer(call)
        raw = HTTPResponse(
            body=io.BytesIO(body),
            headers=headers,
            status=status,
            reason=headers.pop("x-fake-reason", "OK"),
            preload_content=False,
            decode_content=False,
            request_method=call.method,
        )
        return self.build_response(request, raw)


class WireTransport(RequestsTransport):
    """The SDK's own RequestsTransport; only the requests adapter under it is ours."""

    def __init__(self, answer: Callable[[Call], tuple[int, dict[str, str], bytes]]) -> None:
        session = requests.Session()
        session.trust_env = False  # no proxies or .netrc credentials from this machine
        session.mount("https://", _Adapter(answer))
        session.mount("http://", _Adapter(answer))
        super().__init__(session=session, session_owner=False)


@dataclass
class FakeFile:
    data: bytearray
    etag: str
    modified: datetime
    file_id: int


@dataclass
class FakeShare:
    directories: dict[str, int] = field(default_factory=lambda: {"": 1})
    files: dict[str, FakeFile] = field(default_factory=dict)


@dataclass
class Fault:
    """Answer matching calls with an error or a dropped connection, ``times`` times or always."""

    when: Callable[[Call], bool]
    times: int | None
    status: int = 503
    code: str = "ServerBusy"
    message: str = "The server is currently unable to receive requests. Please retry your request."
    connection: str = ""  # "refused" or "reset"


class FakeAzureFiles:
    """A minimal in-memory Azure Files for one account, faithful to the REST docs where it answers.

    Status and error codes follow "Azure Files REST API" (Create Directory, Create File, Put Range,
    Get File, Get File Properties, List Directories and Files, Rename File, Delete File, Get Share
    Properties) and "Status and error codes". Authorization is Shared Key (signature checked),
    a SAS (its parameters checked) or a bearer token (with x-ms-file-request-intent).
    """

    def __init__(
        self,
        *,
        key: str | None = None,
        sas: str | None = None,
        token: str | None = None,
        shares: tuple[str, ...] = (),
        page_size: int = 5000,
    ) -> None:
        self.key = key
        self.sas = sas
        self.token = token
        self.shares = {name: FakeShare() for name in shares}
        self.page_size = page_size
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self._tick = 0

    def transport(self) -> WireTransport:
        return WireTransport(self.answer)

    def fault(self, when: Callable[[Call], bool], times: int | None = None, **kwargs: Any) -> None:
        self.faults.append(Fault(when=when, times=times, **kwargs))

    def file_paths(self, share: str) -> list[str]:
        return sorted(self.shares[share].files)

    def put_file(self, share: str, path: str, data: bytes) -> None:
        """Seed a file (and its folders) directly, as another client would have written it."""
        store = self.shares[share]
        parts = path.split("/")
        for depth in range(1, len(parts)):
            store.directories.setdefault("/".join(parts[:depth]), self._next())
        store.files[path] = self._new_file(bytearray(data))

    def _next(self) -> int:
        self._tick += 1
        return self._tick

    def _now(self) -> datetime:
        return datetime(2026, 3, 2, 9, 0, tzinfo=UTC) + timedelta(seconds=self._tick)

    def _new_file(self, data: bytearray) -> FakeFile:
        tick = self._next()
        return FakeFile(data, f'"0x8DE78{tick:011X}"', self._now(), 10_000_000 + tick)

    def _touch(self, file: FakeFile) -> None:
        tick = self._next()
        file.etag = f'"0x8DE78{tick:011X}"'
        file.modified = self._now()

    def answer(self, call: Call) -> tuple[int, dict[str, str], bytes]:
        self.calls.append(call)
        assert urlsplit(call.url).hostname == HOST, call.url
        assert call.headers.get("x-ms-version"), "every request names the REST version"
        assert call.headers.get("x-ms-date"), "every request carries x-ms-date"
        assert call.headers.get("x-ms-client-request-id")
        for fault in self.faults:
            if fault.times != 0 and fault.when(call):
                if fault.times is not None:
                    fault.times -= 1
                if fault.connection == "refused":
                    refused = NewConnectionError(
                        None,  # type: ignore[arg-type]
                        "Failed to establish a new connection: [Errno 111] Connection refused",
                    )
                    raise requests.exceptions.ConnectionError(refused)
                if fault.connection == "reset":
                    reset = ConnectionResetError(104, "Connection reset by peer")
                    raise requests.exceptions.ConnectionError(
                        ProtocolError("Connection aborted.", reset)
                    )
                return self._error(call, fault.status, fault.code, fault.message)
        refused = self._authenticate(call)
        if refused is not None:
            return refused
        share = self.shares.get(call.share)
        if share is None:
            return self._error(call, 404, "ShareNotFound", "The specified share does not exist.")
        return self._route(call, share)

    def _authenticate(self, call: Call) -> tuple[int, dict[str, str], bytes] | None:
        authorization = call.headers.get("authorization", "")
        if authorization.startswith("SharedKey "):
            account, _, signature = authorization.removeprefix("SharedKey ").partition(":")
            expected = ""
            if self.key is not None:
                digest = hmac.new(
                    base64.b64decode(self.key), _string_to_sign(call).encode(), hashlib.sha256
                )
                expected = base64.b64encode(digest.digest()).decode()
            if account == ACCOUNT and expected and hmac.compare_digest(signature, expected):
                return None
            return self._auth_failed(
                call,
                "The MAC signature found in the HTTP request is not "
                "the same as any computed signature.",
            )
        if authorization.startswith("Bearer "):
            if call.headers.get("x-ms-file-request-intent") != "backup":
                return self._error(
                    call,
                    400,
                    "MissingRequiredHeader",
                    "An HTTP header that's mandatory for this request is not specified.",
                )
            if self.token and authorization == f"Bearer {self.token}":
                return None
            return self._auth_failed(call, "Issuer validation failed.")
        assert not authorization, f"unexpected authorization scheme in {authorization[:12]!r}"
        assert "sig" in call.query, "a request without any credential"
        wanted = dict(parse_qsl(self.sas or ""))
        if wanted and all(call.query.get(name) == value for name, value in wanted.items()):
            return None
        return self._auth_failed(call, "Signature did not match.")

    def _auth_failed(self, call: Call, detail: str) -> tuple[int, dict[str, str], bytes]:
        return self._error(
            call,
            403,
            "AuthenticationFailed",
            "Server failed to authenticate the request. Make sure the value of Authorization "
            "header is formed correctly including the signature.",
            extra=f"<AuthenticationErrorDetail>{escape(detail)}</AuthenticationErrorDetail>",
        )

    def _route(self, call: Call, share: FakeShare) -> tuple[int, dict[str, str], bytes]:
        restype = call.query.get("restype")
        comp = call.query.get("comp")
        method = call.method
        if restype == "share" and comp is None and method in ("GET", "HEAD"):
            return self._ok(call, 200, {"ETag": '"0x8DE7700000000AA"', **self._modified()})
        if restype == "directory" and comp == "list" and method == "GET":
            return self._list(call, share)
        if restype == "directory" and comp is None and method == "PUT":
            return self._create_directory(call, share)
        if restype is None and comp == "range" and method == "PUT":
            return self._put_range(call, share)
        if restype is None and comp == "rename" and method == "PUT":
            return self._rename(call, share)
        if restype is None and comp is None:
            if method == "PUT" and call.headers.get("x-ms-type") == "file":
                return self._create_file(call, share)
            if method in ("GET", "HEAD", "DELETE"):
                return self._file_operation(call, share)
        raise AssertionError(f"the fake does not model {method} {call.url}")

    def _missing(
        self, call: Call, share: FakeShare, path: str
    ) -> tuple[int, dict[str, str], bytes]:
        if posixpath.dirname(path) not in share.directories:
            return self._error(
                call, 404, "ParentNotFound", "The specified parent path does not exist."
            )
        return self._error(call, 404, "ResourceNotFound", "The specified resource does not exist.")

    def _create_directory(self, call: Call, share: FakeShare) -> tuple[int, dict[str, str], bytes]:
        path = call.entry
        assert path not in share.files, "Create Directory over a file is not modelled"
        if posixpath.dirname(path) not in share.directories:
            return self._missing(call, share, path)
        if path in share.directories:
            return self._error(
                call, 409, "ResourceAlreadyExists", "The specified resource already exists."
            )
        share.directories[path] = self._next()
        headers = {"ETag": f'"0x8DE77{self._tick:011X}"', "x-ms-file-attributes": "Directory"}
        return self._ok(call, 201, {**headers, **self._modified()})

    def _create_file(self, call: Call, share: FakeShare) -> tuple[int, dict[str, str], bytes]:
        path = call.entry
        assert path not in share.directories, "Create File over a folder is not modelled"
        if posixpath.dirname(path) not in share.directories:
            return self._missing(call, share, path)
        size = int(call.headers["x-ms-content-length"])
        # Create File makes (or replaces) a file of the given size, zero-filled.
        file = self._new_file(bytearray(size))
        share.files[path] = file
        return self._ok(call, 201, self._file_headers(file) | {"x-ms-file-attributes": "Archive"})

    def _put_range(self, call: Call, share: FakeShare) -> tuple[int, dict[str, str], bytes]:
        file = share.files.get(call.entry)
        if file is None:
            return self._missing(call, share, call.entry)
        assert call.headers.get("x-ms-write") == "update", "only x-ms-write: update is modelled"
        start, end = _byte_range(call.headers["x-ms-range"])
        if end is None or end >= len(file.data):
            return self._error(
                call, 416, "InvalidRange", "The range specified is invalid for the current size."
            )
        if int(call.headers.get("content-length", "0")) != end - start + 1 or len(call.body) != (
            end - start + 1
        ):
            return self._error(
                call,
                400,
                "InvalidHeaderValue",
                "The value for one of the HTTP headers is not in the correct format.",
            )
        file.data[start : end + 1] = call.body
        self._touch(file)
        md5 = base64.b64encode(hashlib.md5(call.body).digest()).decode()
        headers = {**self._file_headers(file), "Content-MD5": md5}
        headers["x-ms-request-server-encrypted"] = "true"
        return self._ok(call, 201, headers)

    def _rename(self, call: Call, share: FakeShare) -> tuple[int, dict[str, str], bytes]:
        source_url = urlsplit(call.headers["x-ms-file-rename-source"])
        assert source_url.hostname == HOST, "renames stay inside the account"
        source_share, _, source = unquote(source_url.path).lstrip("/").partition("/")
        assert source_share == call.share, "renames stay inside the share"
        target = call.entry
        file = share.files.get(source)
        if file is None:
            return self._missing(call, share, source)
        if posixpath.dirname(target) not in share.directories:
            return self._missing(call, share, target)
        assert target not in share.directories, "renaming onto a folder is not modelled"
        replace = call.headers.get("x-ms-file-rename-replace-if-exists", "false") == "true"
        if target in share.files and not replace:
            return self._error(
                call, 409, "ResourceAlreadyExists", "The specified resource already exists."
            )
        share.files[target] = share.files.pop(source)
        return self._ok(call, 200, self._file_headers(file))

    def _file_operation(self, call: Call, share: FakeShare) -> tuple[int, dict[str, str], bytes]:
        path = call.entry
        assert path not in share.directories, f"{call.method} of a folder is not modelled"
        file = share.files.get(path)
        if file is None:
            return self._missing(call, share, path)
        if call.method == "DELETE":
            del share.files[path]
            return self._ok(call, 202, {})
        headers = {
            **self._file_headers(file),
            "Content-Type": "application/octet-stream",
            "x-ms-type": "File",
            "x-ms-server-encrypted": "true",
        }
        if call.method == "HEAD":
            headers["Content-Length"] = str(len(file.data))
            return self._reply(call, 200, headers, b"")  # HEAD: the length, no body
        wanted = call.headers.get("x-ms-range")
        if wanted is None:
            return self._ok(call, 200, {**headers, "Accept-Ranges": "bytes"}, bytes(file.data))
        start, end = _byte_range(wanted)
        if start >= len(file.data):
            # Get File with a range fails on an empty file; the SDK then asks without a range.
            return self._error(
                call, 416, "InvalidRange", "The range specified is invalid for the current size."
            )
        last = len(file.data) - 1 if end is None else min(end, len(file.data) - 1)
        headers["Content-Range"] = f"bytes {start}-{last}/{len(file.data)}"
        return self._ok(call, 206, headers, bytes(file.data[start : last + 1]))

    def _list(self, call: Call, share: FakeShare) -> tuple[int, dict[str, str], bytes]:
        directory = call.entry
        if directory not in share.directories:
            return self._missing(call, share, directory)
        include = {part.lower() for part in call.query.get("include", "").split(",") if part}
        max_results = int(call.query.get("maxresults", "5000"))
        if max_results <= 0:
            return self._error(
                call,
                400,
                "OutOfRangeQueryParameterValue",
                "One of the query parameters "
                "specified in the request URI is outside the permissible range.",
            )
        prefix = call.query.get("prefix", "")
        marker = call.query.get("marker", "")
        children = sorted(
            [(name, True) for name in _children(share.directories, directory)]
            + [(name, False) for name in _children(share.files, directory)]
        )
        children = [c for c in children if c[0].startswith(prefix) and c[0] >= marker]
        page = children[: min(max_results, self.page_size)]
        next_marker = children[len(page)][0] if len(children) > len(page) else ""
        entries = "".join(
            self._listed(share, posixpath.join(directory, name), name, is_dir, include)
            for name, is_dir in page
        )
        extended = bool(include)
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<EnumerationResults ServiceEndpoint="{ACCOUNT_URL}/" '
            f'ShareName="{escape(call.share)}" DirectoryPath="{escape(directory)}">'
            + (f"<Marker>{escape(marker)}</Marker>" if marker else "")
            + (f"<Prefix>{escape(prefix)}</Prefix>" if prefix else "")
            + (f"<MaxResults>{max_results}</MaxResults>" if "maxresults" in call.query else "")
            + (f"<DirectoryId>{share.directories[directory]}</DirectoryId>" if extended else "")
            + f"<Entries>{entries}</Entries>"
            + (
                f"<NextMarker>{escape(next_marker)}</NextMarker>"
                if next_marker
                else "<NextMarker />"
            )
            + "</EnumerationResults>"
        ).encode()
        return self._ok(call, 200, {"Content-Type": "application/xml"}, body)

    def _listed(
        self, share: FakeShare, path: str, name: str, is_dir: bool, include: set[str]
    ) -> str:
        if is_dir:
            ident, etag, modified = (
                share.directories[path],
                f'"0x8DE77{share.directories[path]:011X}"',
                self._now(),
            )
            size = ""
        else:
            file = share.files[path]
            ident, etag, modified = file.file_id, file.etag, file.modified
            size = f"<Content-Length>{len(file.data)}</Content-Length>"
        properties = size
        if "timestamps" in include:
            iso = modified.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
            properties += (
                f"<CreationTime>{iso}</CreationTime><LastAccessTime>{iso}</LastAccessTime>"
                f"<LastWriteTime>{iso}</LastWriteTime><ChangeTime>{iso}</ChangeTime>"
                f"<Last-Modified>{format_datetime(modified, usegmt=True)}</Last-Modified>"
            )
        if "etag" in include:
            properties += f"<Etag>{escape(etag)}</Etag>"
        tag = "Directory" if is_dir else "File"
        file_id = f"<FileId>{ident}</FileId>" if include else ""
        return (
            f"<{tag}><Name>{escape(name)}</Name>{file_id}"
            + (f"<Properties>{properties}</Properties>" if properties else "<Properties />")
            + f"</{tag}>"
        )

    def _file_headers(self, file: FakeFile) -> dict[str, str]:
        return {
            "ETag": file.etag,
            "Last-Modified": format_datetime(file.modified, usegmt=True),
            "x-ms-file-id": str(file.file_id),
        }

    def _modified(self) -> dict[str, str]:
        return {"Last-Modified": format_datetime(self._now(), usegmt=True)}

    def _ok(
        self, call: Call, status: int, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        return self._reply(call, status, {**headers, "Content-Length": str(len(body))}, body)

    def _reply(
        self, call: Call, status: int, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        common = {
            "Server": "Windows-Azure-File/1.0 Microsoft-HTTPAPI/2.0",
            "x-ms-request-id": str(uuid.uuid4()),
            "x-ms-version": call.headers["x-ms-version"],
            "Date": format_datetime(datetime.now(UTC), usegmt=True),
        }
        return status, {**common, **headers}, body

    def _error(
        self, call: Call, status: int, code: str, message: str, extra: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        request_id = str(uuid.uuid4())
        body = b""
        headers = {"x-ms-error-code": code, "x-fake-reason": message}
        if call.method != "HEAD":  # HEAD answers carry the code in x-ms-error-code only
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
            body = (
                '<?xml version="1.0" encoding="utf-8"?><Error>'
                f"<Code>{code}</Code><Message>{escape(message)}\n"
                f"RequestId:{request_id}\nTime:{stamp}</Message>{extra}</Error>"
            ).encode()
            headers["Content-Type"] = "application/xml"
        status_, reply, payload = self._ok(call, status, headers, body)
        reply["x-ms-request-id"] = request_id
        return status_, reply, payload


def _children(paths: dict[str, Any], directory: str) -> list[str]:
    return [
        path.rsplit("/", 1)[-1] for path in paths if path and posixpath.dirname(path) == directory
    ]


def _byte_range(value: str) -> tuple[int, int | None]:
    start, _, end = value.removeprefix("bytes=").partition("-")
    return int(start), int(end) if end else None


def _string_to_sign(call: Call) -> str:
    """Shared Key string-to-sign for the File service, from "Authorize with Shared Key"."""
    headers = call.headers
    length = headers.get("content-length", "")
    standard = [
        headers.get("content-encoding", ""),
        headers.get("content-language", ""),
        "" if length == "0" else length,
        headers.get("content-md5", ""),
        headers.get("content-type", ""),
        headers.get("date", ""),
        headers.get("if-modified-since", ""),
        headers.get("if-match", ""),
        headers.get("if-none-match", ""),
        headers.get("if-unmodified-since", ""),
        headers.get("range", ""),
    ]
    canonical_headers = "".join(
        f"{name}:{headers[name].strip()}\n" for name in sorted(headers) if name.startswith("x-ms-")
    )
    resource = f"/{ACCOUNT}{call.raw_path}" + "".join(
        f"\n{name.lower()}:{value}" for name, value in sorted(call.query.items())
    )
    return call.method + "\n" + "\n".join(standard) + "\n" + canonical_headers + resource


def make_store(
    monkeypatch: pytest.MonkeyPatch,
    service: FakeAzureFiles,
    share: str,
    *,
    key: str | None = None,
    **fields: Any,
) -> AzureFileShareDatastore:
    env = f"FILE_SHARE_KEY_{uuid.uuid4().hex}"
    monkeypatch.setenv(env, key or service.key or planted_key())
    settings: dict[str, Any] = {
        "name": STORE,
        "account_url": ACCOUNT_URL,
        "share": share,
        "credential": AzureCredential(account_key=dg.EnvVar(env)),
        "timeout_seconds": TIMEOUT,
        "max_retries": 2,
        "retry_backoff_seconds": 0.01,
        **fields,
    }
    return AzureFileShareDatastore(**settings).using_transport(service.transport())


def unique_share() -> str:
    return f"share-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def share() -> str:
    return unique_share()


@pytest.fixture
def service(share: str) -> FakeAzureFiles:
    return FakeAzureFiles(key=planted_key(), shares=(share,))


@pytest.fixture
def store(
    monkeypatch: pytest.MonkeyPatch, service: FakeAzureFiles, share: str
) -> AzureFileShareDatastore:
    return make_store(monkeypatch, service, share)


def listed(store: AzureFileShareDatastore, pattern: str) -> list[str]:
    return [info.path for info in store.list_files(pattern)]


def full_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error) + str(error)


def test_round_trip_write_list_read_stat_exists_delete(
    store: AzureFileShareDatastore, service: FakeAzureFiles, share: str
) -> None:
    store.write_bytes("data/2024/a.csv", b"id,value\n1,2\n")

    [info] = store.list_files("data/**/*.csv")
    with store.open_read("data/2024/a.csv") as stream:
        content = stream.read()

    assert info.path == "data/2024/a.csv"
    assert info.size == 13
    assert info.modified.tzinfo is not None
    assert info.etag and '"' not in info.etag
    assert content == b"id,value\n1,2\n"
    assert store.read_bytes("data/2024/a.csv") == content
    assert store.stat("data/2024/a.csv") == info
    assert FileInfo.from_dict(info.to_dict()) == info
    assert store.exists("data/2024/a.csv")
    assert not store.exists("data/2024/b.csv")

    store.delete("data/2024/a.csv")
    store.delete("data/2024/a.csv")  # deleting what is gone is not an error

    assert not store.exists("data/2024/a.csv")
    assert service.file_paths(share) == []
    assert store.list_files("data/**/*.csv") == []
    # Every request was signed and carried the store's timeouts, whatever the operation.
    assert all(
        call.headers["authorization"].startswith(f"SharedKey {ACCOUNT}:") for call in service.calls
    )
    assert {call.timeout for call in service.calls} == {(TIMEOUT, TIMEOUT)}


def test_listing_reads_metadata_only_from_the_listing(
    store: AzureFileShareDatastore, service: FakeAzureFiles, share: str
) -> None:
    service.put_file(share, "data/a.csv", b"abc")
    service.put_file(share, "data/sub/b.csv", b"abcd")
    service.calls.clear()

    infos = store.list_files("data/**/*.csv")

    assert [(i.path, i.size) for i in infos] == [("data/a.csv", 3), ("data/sub/b.csv", 4)]
    assert [(c.method, c.path) for c in service.calls] == [
        ("GET", f"/{share}/data"),
        ("GET", f"/{share}/data/sub"),
    ]
    for call in service.calls:
        assert call.query == {"restype": "directory", "comp": "list", "include": "Timestamps,Etag"}
    # Size, time and ETag came from the listing: no HEAD or GET of a file.
    file = service.shares[share].files["data/a.csv"]
    assert infos[0].etag == file.etag.strip('"')
    assert infos[0].modified == file.modified


def test_write_creates_missing_folders_then_renames_the_temporary_file(
    store: AzureFileShareDatastore, service: FakeAzureFiles, share: str
) -> None:
    store.write_bytes("data/2024/a.csv", b"hello")

    calls = [
        (c.method, c.entry, c.query.get("restype"), c.query.get("comp")) for c in service.calls
    ]
    temp = service.calls[0].entry
    assert temp.startswith("data/2024/.tmp-") and temp.endswith("-a.csv")
    assert calls == [
        ("PUT", temp, None, None),  # Create File: 404 ParentNotFound
        ("PUT", "data", "directory", None),
        ("PUT", "data/2024", "directory", None),
        ("PUT", temp, None, None),  # Create File
        ("PUT", temp, None, "range"),  # Put Range
        ("PUT", "data/2024/a.csv", None, "rename"),  # Rename File onto the final name
    ]
    create, put_range, rename = service.calls[3], service.calls[4], service.calls[5]
    assert create.headers["x-ms-type"] == "file"
    assert create.headers["x-ms-content-length"] == "5"
    assert put_range.headers["x-ms-range"] == "bytes=0-4"
    assert put_range.headers["x-ms-write"] == "update"
    assert put_range.body == b"hello"
    assert rename.headers["x-ms-file-rename-source"] == f"{ACCOUNT_URL}/{share}/{temp}"
    assert rename.headers["x-ms-file-rename-replace-if-exists"] == "true"
    assert service.file_paths(share) == ["data/2024/a.csv"]
    assert bytes(service.shares[share].files["data/2024/a.csv"].data) == b"hello"


def test_a_second_write_into_an_existing_folder_makes_no_folders(
    store: AzureFileShareDatastore, service: FakeAzureFiles
) -> None:
    store.write_bytes("data/a.csv", b"1")
    service.calls.clear()

    store.write_bytes("data/b.csv", b"2")

    assert [c.query.get("comp") for c in service.calls] == [None, "range", "rename"]


def test_empty_files_are_written_and_read(
    store: AzureFileShareDatastore, service: FakeAzureFiles, share: str
) -> None:
    store.write_bytes("empty.txt", b"")

    assert store.read_bytes("empty.txt") == b""
    assert store.stat("empty.txt").size == 0
    assert not any(c.query.get("comp") == "range" for c in service.calls)


def test_open_read_streams_in_ranges(
    monkeypatch: pytest.MonkeyPatch, service: FakeAzureFiles, share: str
) -> None:
    monkeypatch.setattr(azure_file_share, "_CHUNK_BYTES", 64 * 1024)
    store = make_store(monkeypatch, service, share)
    payload = bytes(range(256)) * 1024  # 256 KiB: four ranges each way
    store.write_bytes("big.bin", payload)
    assert sum(c.query.get("comp") == "range" for c in service.calls) == 4
    service.calls.clear()

    chunks = []
    with store.open_read("big.bin") as stream:
        while chunk := stream.read(50_000):
            chunks.append(chunk)

    assert b"".join(chunks) == payload
    gets = [c.headers.get("x-ms-range") for c in service.calls if c.method == "GET"]
    assert gets == [
        "bytes=0-65535",
        "bytes=65536-131071",
        "bytes=131072-196607",
        "bytes=196608-262143",
    ]


@pytest.mark.parametrize(
    ("pattern", "expected", "folders_listed"),
    [
        ("data/*.csv", ["data/a.csv"], ["data"]),
        ("*.csv", ["top.csv"], [""]),
        ("*/*.csv", ["data/a.csv", "other/x.csv"], ["", "data", "other"]),
        ("data/2024/*.csv", ["data/2024/b.csv"], ["data/2024"]),
        (
            "data/**/*.csv",
            ["data/2024/b.csv", "data/2024/deep/c.csv", "data/a.csv"],
            ["data", "data/2024", "data/2024/deep"],
        ),
        (
            "**/c.csv",
            ["data/2024/deep/c.csv"],
            ["", "data", "data/2024", "data/2024/deep", "other"],
        ),
        ("data/202?/*.csv", ["data/2024/b.csv"], ["data", "data/2024"]),
        ("data/2025/*.csv", [], ["data/2025"]),
    ],
)
def test_glob_patterns_walk_only_where_they_can_match(
    store: AzureFileShareDatastore,
    service: FakeAzureFiles,
    share: str,
    pattern: str,
    expected: list[str],
    folders_listed: list[str],
) -> None:
    for path in (
        "top.csv",
        "data/a.csv",
        "data/b.txt",
        "data/2024/b.csv",
        "data/2024/deep/c.csv",
        "other/x.csv",
    ):
        service.put_file(share, path, b"x")
    service.calls.clear()

    assert listed(store, pattern) == expected
    assert all(c.is_list() for c in service.calls)
    assert sorted(c.entry for c in service.calls) == folders_listed


def test_hidden_and_temporary_names_are_not_listed(
    store: AzureFileShareDatastore, service: FakeAzureFiles, share: str
) -> None:
    for path in ("data/a.csv", "data/.tmp-0123-b.csv", "data/.cache/c.csv", ".git/d.csv"):
        service.put_file(share, path, b"x")

    assert listed(store, "**") == ["data/a.csv"]


def test_listing_follows_continuation_markers(monkeypatch: pytest.MonkeyPatch, share: str) -> None:
    service = FakeAzureFiles(key=planted_key(), shares=(share,), page_size=2)
    store = make_store(monkeypatch, service, share)
    for index in range(5):
        service.put_file(share, f"data/{index}.csv", b"x")
    service.calls.clear()

    assert listed(store, "data/*.csv") == [f"data/{index}.csv" for index in range(5)]
    assert [c.query.get("marker") for c in service.calls] == [None, "2.csv", "4.csv"]


def test_listing_is_sorted_by_path(
    store: AzureFileShareDatastore, service: FakeAzureFiles, share: str
) -> None:
    for path in ("data/c.csv", "data/a/z.csv", "data/b.csv", "data/a.csv", "data/A.csv"):
        service.put_file(share, path, b"x")

    paths = listed(store, "data/**")

    assert paths == sorted(paths)
    assert set(paths) == {"data/A.csv", "data/a.csv", "data/a/z.csv", "data/b.csv", "data/c.csv"}


def test_a_store_sees_only_its_prefix(
    monkeypatch: pytest.MonkeyPatch, service: FakeAzureFiles, share: str
) -> None:
    team_a = make_store(monkeypatch, service, share, prefix="teams/a")
    team_b = make_store(monkeypatch, service, share, prefix="teams/b/")
    whole = make_store(monkeypatch, service, share)

    team_a.write_bytes("data/x.csv", b"a")
    team_b.write_bytes("data/x.csv", b"b")

    assert listed(team_a, "**") == ["data/x.csv"]
    assert team_a.read_bytes("data/x.csv") == b"a"
    assert team_b.read_bytes("data/x.csv") == b"b"
    assert listed(whole, "**/*.csv") == ["teams/a/data/x.csv", "teams/b/data/x.csv"]
    assert service.file_paths(share) == ["teams/a/data/x.csv", "teams/b/data/x.csv"]
    team_a.delete("data/x.csv")
    assert team_b.exists("data/x.csv")
    assert listed(team_a, "**") == []
    assert "teams/a" in team_a.describe()


def test_a_fresh_store_lists_nothing(store: AzureFileShareDatastore) -> None:
    assert store.list_files("**") == []
    assert store.list_files("data/*.csv") == []
    assert store.list_files("a/b/c/*.csv") == []
    assert not store.exists("data/a.csv")


def test_etag_changes_when_content_changes(store: AzureFileShareDatastore) -> None:
    store.write_bytes("a.csv", b"id\n1\n")
    before = store.stat("a.csv")

    store.write_bytes("a.csv", b"id\n2\n")
    after = store.stat("a.csv")

    assert after.size == before.size
    assert after.etag != before.etag
    assert after.modified > before.modified
    assert store.stat("a.csv") == after


def test_overwrite_false_refuses_and_keeps_the_original(
    store: AzureFileShareDatastore, service: FakeAzureFiles, share: str
) -> None:
    store.write_bytes("versions/v000001.json", b"first", overwrite=False)

    with pytest.raises(FileExistsError, match=f"datastore '{STORE}'.*'versions/v000001.json'"):
        store.write_bytes("versions/v000001.json", b"second", overwrite=False)

    assert store.read_bytes("versions/v000001.json") == b"first"
    assert service.file_paths(share) == ["versions/v000001.json"]  # the temporary file is gone
    renames = [c for c in service.calls if c.query.get("comp") == "rename"]
    assert [c.headers["x-ms-file-rename-replace-if-exists"] for c in renames] == ["false"] * 2
    temp = renames[-1].headers["x-ms-file-rename-source"].rsplit("/", 1)[-1]
    assert ("DELETE", f"versions/{temp}") in [(c.method, c.entry) for c in service.calls]


def test_overwrite_true_replaces_in_one_rename(
    store: AzureFileShareDatastore, service: FakeAzureFiles, share: str
) -> None:
    store.write_bytes("model.bin", b"old contents")

    store.write_bytes("model.bin", b"new")

    assert store.read_bytes("model.bin") == b"new"
    assert service.file_paths(share) == ["model.bin"]
    assert not any(c.method == "DELETE" for c in service.calls)


def test_missing_files_raise_file_not_found(
    store: AzureFileShareDatastore, service: FakeAzureFiles, share: str
) -> None:
    service.put_file(share, "data/a.csv", b"x")

    for path in ("data/none.csv", "nofolder/none.csv"):  # ResourceNotFound, ParentNotFound
        with pytest.raises(FileNotFoundError, match=f"datastore '{STORE}'.*'{path}'"):
            store.read_bytes(path)
        with pytest.raises(FileNotFoundError, match=f"datastore '{STORE}'"):
            store.stat(path)
        assert not store.exists(path)
        store.delete(path)


UNSAFE_PATHS = ["../x", "/etc/passwd", "a/../../b", "C:\\x", "..\\x", "a/..", ""]


@pytest.mark.parametrize("path", UNSAFE_PATHS)
@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda s, p: s.read_bytes(p), id="read"),
        pytest.param(lambda s, p: s.write_bytes(p, b"x"), id="write"),
        pytest.param(lambda s, p: s.write_bytes(p, b"x", overwrite=False), id="create"),
        pytest.param(lambda s, p: s.exists(p), id="exists"),
        pytest.param(lambda s, p: s.delete(p), id="delete"),
        pytest.param(lambda s, p: s.stat(p), id="stat"),
        pytest.param(lambda s, p: s.list_files(p), id="list"),
    ],
)
def test_paths_that_leave_the_root_are_refused_before_any_request(
    store: AzureFileShareDatastore, service: FakeAzureFiles, path: str, operation: Any
) -> None:
    with pytest.raises(UnsafePathError, match=f"datastore '{STORE}'"):
        operation(store, path)

    assert service.calls == []


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda s: s.check(), id="check"),
        pytest.param(lambda s: s.list_files("data/*.csv"), id="list"),
        pytest.param(lambda s: s.write_bytes("data/a.csv", b"x"), id="write"),
        pytest.param(lambda s: s.read_bytes("data/a.csv"), id="read"),
    ],
)
def test_a_missing_share_is_not_found(
    monkeypatch: pytest.MonkeyPatch, service: FakeAzureFiles, operation: Any
) -> None:
    missing = unique_share()
    store = make_store(monkeypatch, service, missing)

    with pytest.raises(DatastoreError) as caught:
        operation(store)

    assert caught.value.reason == "not found"
    message = str(caught.value)
    assert f"datastore '{STORE}'" in message
    assert f"Azure Files share '{missing}'" in message
    assert "share does not exist" in message
    assert "To fix:" in message
    assert service.calls and all(c.share == missing for c in service.calls)


def test_check_passes_on_an_existing_share(
    store: AzureFileShareDatastore, service: FakeAzureFiles, share: str
) -> None:
    store.check()

    [call] = service.calls
    assert (call.method, call.path, call.query) == ("GET", f"/{share}", {"restype": "share"})


def test_a_wrong_key_is_authentication_failed_and_never_shown(
    monkeypatch: pytest.MonkeyPatch, service: FakeAzureFiles, share: str
) -> None:
    wrong = planted_key()
    store = make_store(monkeypatch, service, share, key=wrong)

    for operation in (store.check, lambda: store.list_files("**"), lambda: store.stat("a.csv")):
        with pytest.raises(DatastoreError) as caught:
            operation()
        assert caught.value.reason == "authentication failed"
        assert f"datastore '{STORE}'" in str(caught.value)
        assert wrong not in full_text(caught.value)
        assert wrong not in store.describe()
    assert all(c.headers["authorization"].startswith("SharedKey ") for c in service.calls)


def test_a_wrong_key_in_a_connection_string_is_never_shown(
    monkeypatch: pytest.MonkeyPatch, service: FakeAzureFiles, share: str
) -> None:
    wrong = planted_key()
    env = f"FILE_SHARE_CONN_{uuid.uuid4().hex}"
    monkeypatch.setenv(
        env,
        f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={wrong};"
        "EndpointSuffix=core.windows.net",
    )
    store = AzureFileShareDatastore(
        name=STORE,
        share=share,
        credential=AzureCredential(connection_string=dg.EnvVar(env)),
        retry_backoff_seconds=0.01,
    ).using_transport(service.transport())

    with pytest.raises(DatastoreError) as caught:
        store.check()

    assert caught.value.reason == "authentication failed"
    assert wrong not in full_text(caught.value)
    assert "connection string" in store.describe()


def test_a_connection_string_round_trip(
    monkeypatch: pytest.MonkeyPatch, service: FakeAzureFiles, share: str
) -> None:
    env = f"FILE_SHARE_CONN_{uuid.uuid4().hex}"
    monkeypatch.setenv(
        env,
        f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={service.key};"
        "EndpointSuffix=core.windows.net",
    )
    store = AzureFileShareDatastore(
        name=STORE, share=share, credential=AzureCredential(connection_string=dg.EnvVar(env))
    ).using_transport(service.transport())

    store.write_bytes("a/b.txt", b"via connection string")

    assert store.read_bytes("a/b.txt") == b"via connection string"
    assert listed(store, "a/*.txt") == ["a/b.txt"]


def test_a_sas_token_signs_every_request_and_is_never_shown(
    monkeypatch: pytest.MonkeyPatch, share: str
) -> None:
    signature = base64.b64encode(uuid.uuid4().bytes * 2).decode()
    # As Azure hands them out: the base64 signature URL-encoded inside the token.
    sas = (
        "sv=2026-02-06&ss=f&srt=sco&sp=rwdlc&se=2030-01-01T00:00:00Z&spr=https"
        f"&sig={quote(signature, safe='')}"
    )
    service = FakeAzureFiles(sas=sas, shares=(share,))
    env = f"FILE_SHARE_SAS_{uuid.uuid4().hex}"
    monkeypatch.setenv(env, "?" + sas)
    store = AzureFileShareDatastore(
        name=STORE,
        account_url=ACCOUNT_URL,
        share=share,
        credential=AzureCredential(sas_token=dg.EnvVar(env)),
    ).using_transport(service.transport())

    store.write_bytes("data/a.csv", b"sas")
    assert store.read_bytes("data/a.csv") == b"sas"
    assert listed(store, "**") == ["data/a.csv"]
    assert all("authorization" not in c.headers for c in service.calls)
    assert all(c.query["sig"] == signature for c in service.calls)

    wrong = base64.b64encode(uuid.uuid4().bytes * 2).decode()
    monkeypatch.setenv(env, sas.replace(quote(signature, safe=""), quote(wrong, safe="")))
    bad = AzureFileShareDatastore(
        name=STORE,
        account_url=ACCOUNT_URL,
        share=share,
        credential=AzureCredential(sas_token=dg.EnvVar(env)),
    ).using_transport(service.transport())
    with pytest.raises(DatastoreError) as caught:
        bad.stat("data/a.csv")
    assert caught.value.reason == "authentication failed"
    assert wrong not in full_text(caught.value)
    assert quote(wrong, safe="") not in full_text(caught.value)


class StaticToken:
    """A TokenCredential that hands out one fixed token (stands in for an Entra identity)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        assert scopes == ("https://storage.azure.com/.default",)
        return AccessToken(self.token, int(time.time()) + 3600)


def test_an_identity_token_is_sent_with_the_backup_intent(
    monkeypatch: pytest.MonkeyPatch, share: str
) -> None:
    token = uuid.uuid4().hex
    service = FakeAzureFiles(token=token, shares=(share,))
    monkeypatch.setattr(
        AzureFileShareDatastore, "client_credential", lambda self: StaticToken(token)
    )
    store = AzureFileShareDatastore(name=STORE, account_url=ACCOUNT_URL, share=share)
    store = store.using_transport(service.transport())

    store.write_bytes("a.txt", b"token")

    assert store.read_bytes("a.txt") == b"token"
    assert {c.headers["x-ms-file-request-intent"] for c in service.calls} == {"backup"}
    assert {c.headers["authorization"] for c in service.calls} == {f"Bearer {token}"}


def test_connection_refused_is_unreachable_after_the_retries(
    monkeypatch: pytest.MonkeyPatch, service: FakeAzureFiles, share: str
) -> None:
    store = make_store(monkeypatch, service, share, max_retries=3)
    service.fault(lambda call: True, connection="refused")

    with pytest.raises(DatastoreError) as caught:
        store.check()

    assert caught.value.reason == "unreachable"
    assert "check account_url" in str(caught.value)
    assert len(service.calls) == 4


def test_two_busy_answers_then_success(
    store: AzureFileShareDatastore, service: FakeAzureFiles, share: str
) -> None:
    service.put_file(share, "data/a.csv", b"abc")
    service.fault(lambda call: call.method == "HEAD", times=2)

    assert store.stat("data/a.csv").size == 3
    assert [c.method for c in service.calls] == ["HEAD"] * 3


def test_a_busy_answer_then_success_within_a_short_budget(
    monkeypatch: pytest.MonkeyPatch, service: FakeAzureFiles, share: str
) -> None:
    service.put_file(share, "data/a.csv", b"abc")
    service.fault(lambda call: call.method == "GET", times=1)
    store = make_store(monkeypatch, service, share, timeout_seconds=1, max_retries=3)

    assert store.read_bytes("data/a.csv") == b"abc"

    first, second = (call.timeout for call in service.calls)
    assert first == (1, 1)
    # The retry may wait only for what the first attempt and the pause left of the second.
    assert MIN_ATTEMPT_SECONDS <= second[0] == second[1] < 1


def test_two_throttled_answers_then_success(
    store: AzureFileShareDatastore, service: FakeAzureFiles, share: str
) -> None:
    """A proxy in front of the service may answer 429; it is retried like a 503."""
    service.put_file(share, "data/a.csv", b"abc")
    service.fault(
        lambda call: call.method == "GET",
        times=2,
        status=429,
        code="TooManyRequests",
        message="Too many requests.",
    )

    assert store.read_bytes("data/a.csv") == b"abc"
    assert [c.method for c in service.calls] == ["GET"] * 3


def test_a_dropped_connection_during_a_range_upload_is_retried_with_the_same_bytes(
    store: AzureFileShareDatastore, service: FakeAzureFiles, share: str
) -> None:
    service.fault(lambda call: call.query.get("comp") == "range", times=1, connection="reset")

    store.write_bytes("a.bin", b"0123456789")

    ranges = [c for c in service.calls if c.query.get("comp") == "range"]
    assert len(ranges) == 2
    assert ranges[0].body == ranges[1].body == b"0123456789"
    assert store.read_bytes("a.bin") == b"0123456789"


def test_a_persistently_busy_service_gives_up_after_max_retries(
    monkeypatch: pytest.MonkeyPatch, service: FakeAzureFiles, share: str
) -> None:
    clock = FakeClock()
    store = make_store(monkeypatch, service, share, max_retries=3).using_clock(clock)
    service.fault(lambda call: True)

    with pytest.raises(DatastoreError) as caught:
        store.list_files("data/*.csv")

    assert len(service.calls) == 3 + 1
    # Pauses of 0.01 s doubling (±20% jitter), not the SDK's whole seconds.
    assert clock.sleeps == [pytest.approx(0.01 * 2**n, rel=0.2) for n in range(3)]
    assert caught.value.reason == "error"
    assert "ServerBusy" in str(caught.value) or "unable to receive" in str(caught.value)
    assert f"datastore '{STORE}'" in str(caught.value)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(
            {"status": 500, "code": "InternalError", "message": "Server error."}, id="500"
        ),
        pytest.param({"connection": "reset"}, id="connection-reset"),
    ],
)
def test_a_failed_range_upload_leaves_nothing_under_the_final_name(
    store: AzureFileShareDatastore, service: FakeAzureFiles, share: str, fault: dict[str, Any]
) -> None:
    service.put_file(share, "data/old.csv", b"keep me")
    service.fault(lambda call: call.query.get("comp") == "range", **fault)

    with pytest.raises(DatastoreError):
        store.write_bytes("data/new.csv", b"never lands")
    with pytest.raises(DatastoreError):
        store.write_bytes("data/old.csv", b"never replaces")

    assert service.file_paths(share) == ["data/old.csv"]  # temporary files were deleted
    assert store.read_bytes("data/old.csv") == b"keep me"
    assert not store.exists("data/new.csv")
    assert not any(c.query.get("comp") == "rename" for c in service.calls)


def test_describe_names_the_share_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    key = planted_key()
    env = f"FILE_SHARE_KEY_{uuid.uuid4().hex}"
    monkeypatch.setenv(env, key)
    store = AzureFileShareDatastore(
        name=STORE,
        account_url=ACCOUNT_URL,
        share="landing",
        prefix="/raw/",
        credential=AzureCredential(account_key=dg.EnvVar(env)),
    )

    text = store.describe()

    assert text == f"Azure Files share 'landing' at {ACCOUNT_URL}, folder 'raw'"
    assert key not in text + repr(store)


def test_a_sas_inside_the_account_url_is_refused() -> None:
    with pytest.raises(ValueError, match="value not shown") as caught:
        AzureFileShareDatastore(
            name=STORE, account_url=f"{ACCOUNT_URL}/?sv=2026&sig=abcdefgh12345678", share="s"
        )
    assert "abcdefgh12345678" not in str(caught.value)


def test_the_catalog_builds_the_store() -> None:
    entry = {
        "kind": "azure_file_share",
        "share": "landing",
        "account_url": ACCOUNT_URL,
        "prefix": "raw",
        "credential": {"account_key": {"env": "FILES_ACCOUNT_KEY"}},
    }

    store = project_catalog_of({"datastores": {"files": entry}}).resources["files"]

    assert isinstance(store, AzureFileShareDatastore)
    assert (store.share, store.prefix, store.account_url) == ("landing", "raw", ACCOUNT_URL)
    assert isinstance(store.credential.account_key, dg.EnvVar)


class Replay:
    """Answers from a recording, in order, after checking each request against it."""

    def __init__(self, recording: dict[str, Any]) -> None:
        self.account = urlsplit(recording["account_url"]).hostname
        self.pending = list(recording["interactions"])
        self.calls: list[Call] = []

    def answer(self, call: Call) -> tuple[int, dict[str, str], bytes]:
        self.calls.append(call)
        assert self.pending, f"unrecorded request {call.method} {call.url}"
        expected = self.pending.pop(0)
        request = expected["request"]
        assert urlsplit(call.url).hostname == self.account
        assert (call.method, call.path, call.query) == (
            request["method"],
            request["path"],
            request["query"],
        )
        assert call.headers["authorization"].startswith(f"SharedKey {self.account.split('.')[0]}:")
        response = expected["response"]
        body = response["body"].encode()
        return response["status"], {**response["headers"], "Content-Length": str(len(body))}, body


def test_a_recorded_service_listing_becomes_file_infos(monkeypatch: pytest.MonkeyPatch) -> None:
    recording = json.loads((RECORDINGS / "list_nested_folders.json").read_text())
    replay = Replay(recording)
    env = f"FILE_SHARE_KEY_{uuid.uuid4().hex}"
    monkeypatch.setenv(env, planted_key())
    store = AzureFileShareDatastore(
        name=STORE,
        account_url=recording["account_url"],
        share=recording["share"],
        credential=AzureCredential(account_key=dg.EnvVar(env)),
    ).using_transport(WireTransport(replay.answer))

    infos = store.list_files("raw/**/*.csv")

    assert replay.pending == []
    assert infos == [
        FileInfo(
            path="raw/2024/b.csv",
            size=2048,
            modified=datetime(2026, 3, 1, 8, 1, 30, tzinfo=UTC),
            etag="0x8DE7780FAF2A4C0",
        ),
        FileInfo(
            path="raw/a.csv",
            size=1024,
            modified=datetime(2026, 3, 1, 8, 0, 12, tzinfo=UTC),
            etag="0x8DE7780FA8ABE14",
        ),
    ]


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    yield port


def test_a_real_closed_port_fails_fast_as_unreachable(
    monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    env = f"FILE_SHARE_KEY_{uuid.uuid4().hex}"
    key = planted_key()
    monkeypatch.setenv(env, key)
    clock = FakeClock()
    transport = TimeoutRecordingTransport()
    store = (
        AzureFileShareDatastore(
            name=STORE,
            account_url=f"http://127.0.0.1:{closed_port}/devstoreaccount1",
            share="landing",
            credential=AzureCredential(account_key=dg.EnvVar(env)),
            retry_backoff_seconds=0.01,
        )
        .using_transport(transport)
        .using_clock(clock)
    )

    with pytest.raises(DatastoreError) as caught:
        store.check()

    # A refused connection costs no timeout: each attempt fails at once, and the only waits
    # are the pauses between the default four retries, 0.01 s doubling.
    assert len(transport.timeouts) == 5
    assert clock.sleeps == [pytest.approx(0.01 * 2**n, rel=0.2) for n in range(4)]
    assert caught.value.reason == "unreachable"
    assert f"http://127.0.0.1:{closed_port}/devstoreaccount1" in str(caught.value)
    assert key not in full_text(caught.value)


def test_a_real_server_that_never_answers_costs_one_timeout_not_one_per_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = f"FILE_SHARE_KEY_{uuid.uuid4().hex}"
    monkeypatch.setenv(env, planted_key())
    transport = TimeoutRecordingTransport()
    with SilentServer() as silent:
        store = AzureFileShareDatastore(
            name=STORE,
            account_url=f"http://127.0.0.1:{silent.port}/devstoreaccount1",
            share="landing",
            credential=AzureCredential(account_key=dg.EnvVar(env)),
            timeout_seconds=1,
            max_retries=3,
        ).using_transport(transport)

        with pytest.raises(DatastoreError) as caught:
            store.check()

    assert caught.value.reason == "timed out"
    # The one attempt waited the whole budget, so no retry was left any time.
    assert silent.connections == 1
    assert transport.timeouts == [(1, 1)]
