"""The Databricks File System (DBFS) of a workspace as a datastore, through databricks-sdk.

DBFS has no ETags and no conditional writes. Listings fingerprint a file from its modification
time (ms) and size; writes go to a hidden temporary file in the target's folder that is then
moved into place, and because DBFS refuses to move onto an existing file, that move is the
create-if-absent guarantee. Retries and timeouts are ours, not the SDK's (see
``dbfs_sdk.FailFastClock`` and ``DbfsDatastore._call``).
"""

from __future__ import annotations

import base64
import io
import logging
import posixpath
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, ClassVar, TypeVar

import requests
from pydantic import Field, PrivateAttr, field_validator

from ingestion_project.datastores.base import (
    DatastoreError,
    FileDatastore,
    FileInfo,
    glob_matches,
    glob_prefix,
    normalize_relative_path,
    require_http_url,
    resolve_secret,
    secret_field,
    validate_glob,
)
from ingestion_project.datastores.deadline import Deadline

if TYPE_CHECKING:
    # databricks-sdk costs about a second to import: only a store in use loads it (dbfs_sdk).
    from databricks.sdk.config import Config
    from databricks.sdk.service.files import DbfsAPI
    from databricks.sdk.service.files import FileInfo as DbfsFileInfo

logger = logging.getLogger(__name__)

T = TypeVar("T")

BLOCK_BYTES = 1024 * 1024
"""DBFS's limit for one read and one add-block (of decoded data, as the SDK's own uploader uses)."""

# The SDK bounds only its host-metadata probe with this (our clock vetoes its other retries);
# 0 would mean its default of 300 s, so 1 s is the shortest budget it accepts. On a host that
# does not answer, the probe still waits timeout_seconds and then pauses 1-2 s on the real clock.
_SDK_RETRY_BUDGET_SECONDS = 1
_MAX_BACKOFF_SECONDS = 30.0
_MAX_RETRY_AFTER_SECONDS = 60
_DETAIL_LIMIT = 300
# Databricks answers a bad or expired personal access token with 403 "Invalid access token.".
_TOKEN_REJECTED = re.compile(r"invalid access token|expired", re.IGNORECASE)

_AUTH_ADVICE = (
    "check the token environment variable holds a valid personal access token for this workspace"
)
_DEFAULT_AUTH_ADVICE = (
    "set 'token' in the catalog entry, or configure Databricks default authentication "
    "(DATABRICKS_TOKEN, ~/.databrickscfg or an Azure identity) for this process"
)
_REACH_ADVICE = "check 'host' is the workspace URL and that the network reaches it"
_TIMEOUT_ADVICE = "retry later or raise timeout_seconds"
_BUSY_ADVICE = (
    "the workspace is busy or unavailable; retry later, or raise max_retries or timeout_seconds "
    "(no retry starts after it)"
)


def _detail(error: BaseException) -> str:
    # The SDK appends its config (token masked) to 401/403 messages; it adds nothing for a user.
    text = " ".join(str(error).split()).split(". Config: ")[0]
    return (text or type(error).__name__)[:_DETAIL_LIMIT]


def _normalize_root(value: str) -> str:
    root = value.strip().removeprefix("dbfs:")
    if not root.startswith("/"):
        raise ValueError(f"root '{value}' must be an absolute DBFS folder like '/mnt/raw'.")
    if ".." in root.split("/"):
        raise ValueError(f"root '{value}' must not contain '..'.")
    return posixpath.normpath(root).replace("//", "/")


def _may_hold_matches(segments: list[str], folder: str) -> bool:
    """Whether files below ``folder`` (relative to the root) can match the glob ``segments``."""
    for index, part in enumerate(folder.split("/")):
        if index >= len(segments):
            return False
        segment = segments[index]
        if segment == "**":
            return True
        # The glob's last segment names files; a folder at that depth holds only deeper paths.
        if index == len(segments) - 1 or not glob_matches(segment, part):
            return False
    return True


class DbfsDatastore(FileDatastore):
    """A DBFS folder of one Databricks workspace, like an Azure ML datastore on DBFS.

    Authentication: ``token`` (a personal access token given as ``dg.EnvVar``) or, when it is
    None, the SDK's default chain (DATABRICKS_* variables, ~/.databrickscfg, Azure identity).
    ETags are ``f"{modification_time:x}-{file_size:x}"``: DBFS has none, so a rewrite with the
    same size in the same millisecond would go unnoticed.
    """

    name: str = Field(description="Catalog name of this datastore.")
    host: str = Field(description="Workspace URL, e.g. https://adb-123.4.azuredatabricks.net")
    token: str | None = secret_field(
        "Personal access token as dg.EnvVar('NAME'); None uses Databricks default auth."
    )
    root: str = Field(default="/", description="DBFS folder used as the store root: '/mnt/raw'.")
    timeout_seconds: int = Field(
        default=30,
        ge=1,
        le=600,
        description=(
            "Upper bound on waiting for one answer from the workspace. A request that times out "
            "is not retried, and no retry starts once this much time has passed since the call "
            "began (the first call on a store includes the SDK's probe of the host)."
        ),
    )
    max_retries: int = Field(
        default=4,
        ge=0,
        le=10,
        description=(
            "Retries of a 429/5xx answer or a dropped connection (not of a refused one, nor of "
            "a timeout), as long as timeout_seconds has time left for them."
        ),
    )
    retry_backoff_seconds: float = Field(
        default=0.5, ge=0, le=30, description="First pause between retries; doubles each time."
    )

    _api_cache: tuple[tuple[str, int, str | None], DbfsAPI] | None = PrivateAttr(default=None)
    _api_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @field_validator("root")
    @classmethod
    def _root(cls, value: str) -> str:
        return _normalize_root(value)

    kind: ClassVar[str] = "dbfs"

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return require_http_url(value, query_allowed=False).strip().rstrip("/")

    @property
    def store_name(self) -> str:
        return self.name

    def describe(self) -> str:
        return f"dbfs:{self.root} on {self.host}"

    def _token(self) -> str | None:
        return resolve_secret(self.token, store=self.name, field="token")

    def _api(self) -> DbfsAPI:
        """One SDK client per settings; building it probes the host, so it is built once."""
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.service.files import DbfsAPI

        token = self._token()
        key = (self.host, self.timeout_seconds, token)
        with self._api_lock:
            if self._api_cache is None or self._api_cache[0] != key:
                workspace = WorkspaceClient(config=self._config(token))
                # The plain REST surface: DbfsExt re-parses paths as URLs ('#', '?', ':').
                self._api_cache = (key, DbfsAPI(workspace.api_client))
            return self._api_cache[1]

    def _config(self, token: str | None) -> Config:
        from databricks.sdk.config import Config

        from ingestion_project.datastores.dbfs_sdk import FailFastClock

        try:
            return Config(
                host=self.host,
                # With a token, auth_type="pat" keeps the SDK from trying other credentials.
                token=token or None,
                auth_type="pat" if token else None,
                http_timeout_seconds=self.timeout_seconds,
                retry_timeout_seconds=_SDK_RETRY_BUDGET_SECONDS,
                clock=FailFastClock(),
            )
        except ValueError as error:
            reason = "authentication failed" if token is None else "invalid request"
            advice = _DEFAULT_AUTH_ADVICE if token is None else "check 'host' and 'token'"
            raise self._error(reason, "connecting", _detail(error), advice) from None

    def _full(self, path: str) -> str:
        return posixpath.join(self.root, normalize_relative_path(path, store=self.name))

    def _relative(self, full: str, folder: str) -> str | None:
        """The root-relative path of a listed entry, or None unless it lies inside ``folder``."""
        full = full.removeprefix("dbfs:")
        if not full.startswith(folder.rstrip("/") + "/"):
            return None
        return full[len(self.root.rstrip("/")) + 1 :]

    def _scrub(self, text: str) -> str:
        try:
            token = self._token()
        except DatastoreError:
            return text
        return text.replace(token, "***") if token else text

    def _error(self, reason: str, action: str, detail: str, advice: str) -> DatastoreError:
        message = (
            f"datastore '{self.name}' ({self.describe()}): {reason} while {action}: {detail}. "
            f"To fix: {advice}."
        )
        return DatastoreError(self._scrub(message), reason=reason)

    def _call(
        self,
        action: str,
        path: str,
        request: Callable[[DbfsAPI], T],
        *,
        idempotent: bool = True,
    ) -> T:
        """Run one API request with backed-off retries inside timeout_seconds; translate errors.

        The budget starts before the SDK client is built, because building it probes the host:
        on a silent host that probe alone spends the budget, and the request is not sent.
        """
        from databricks.sdk.errors.base import DatabricksError

        from ingestion_project.datastores.dbfs_sdk import retry_kind, unwrap

        deadline = Deadline(self.timeout_seconds, self._clock)
        api = self._api()
        if not deadline.allows_attempt_after(0):
            detail = (
                f"no answer within timeout_seconds={self.timeout_seconds} (the SDK's probe of "
                "the host used it up)"
            )
            raise self._error("timed out", action, detail, _TIMEOUT_ADVICE)
        attempt = 0
        while True:
            try:
                return request(api)
            except (DatabricksError, requests.RequestException, TimeoutError, RuntimeError) as raw:
                error = unwrap(raw)
                kind = retry_kind(error)
                delay = self._delay(attempt, error)
                if (
                    (kind == "safe" or (kind == "ambiguous" and idempotent))
                    and attempt < self.max_retries
                    and deadline.allows_attempt_after(delay)
                ):
                    logger.debug("datastore %r: retrying %s in %.2fs", self.name, action, delay)
                    deadline.pause(delay)
                    attempt += 1
                    continue
                translated = self._translate(error, action, path, attempt + 1)
                if translated is None:
                    raise
                raise translated from None

    def _delay(self, attempt: int, error: BaseException) -> float:
        delay = min(self.retry_backoff_seconds * 2**attempt, _MAX_BACKOFF_SECONDS)
        # The SDK reports a missing Retry-After as 1 s, so only longer hints are honoured.
        retry_after = getattr(error, "retry_after_secs", None)
        if isinstance(retry_after, int) and retry_after > 1:
            delay = max(delay, min(retry_after, _MAX_RETRY_AFTER_SECONDS))
        return delay

    def _translate(
        self, error: BaseException, action: str, path: str, attempts: int
    ) -> Exception | None:
        from databricks.sdk.errors import (
            AlreadyExists,
            BadRequest,
            NotFound,
            PermissionDenied,
            ResourceAlreadyExists,
            ResourceDoesNotExist,
            Unauthenticated,
        )
        from databricks.sdk.errors.base import DatabricksError

        if isinstance(error, ResourceDoesNotExist):
            return FileNotFoundError(f"datastore '{self.name}': no file at '{path}'.")
        if isinstance(error, ResourceAlreadyExists | AlreadyExists):
            return FileExistsError(f"datastore '{self.name}': '{path}' already exists.")
        detail = _detail(error)
        if isinstance(error, Unauthenticated) or (
            isinstance(error, PermissionDenied) and _TOKEN_REJECTED.search(str(error))
        ):
            advice = _AUTH_ADVICE if self.token is not None else _DEFAULT_AUTH_ADVICE
            return self._error("authentication failed", action, detail, advice)
        if isinstance(error, PermissionDenied):
            advice = f"grant the token's identity access to {self.root} in DBFS"
            return self._error("permission denied", action, detail, advice)
        if isinstance(error, NotFound):
            advice = "check 'host' is a Databricks workspace URL with the DBFS API enabled"
            return self._error("not found", action, detail, advice)
        if isinstance(error, BadRequest):
            return self._error("invalid request", action, detail, "see the service's message")
        if isinstance(error, requests.Timeout):
            detail = (
                f"no answer within timeout_seconds={self.timeout_seconds} (attempt {attempts}, "
                "not retried)"
            )
            return self._error("timed out", action, detail, _TIMEOUT_ADVICE)
        if isinstance(error, requests.ConnectionError):
            return self._error("unreachable", action, detail, _REACH_ADVICE)
        if isinstance(error, DatabricksError | requests.RequestException):
            detail = f"{detail} (gave up after {attempts} attempt(s))"
            return self._error("error", action, detail, _BUSY_ADVICE)
        return None

    def _status(self, path: str, full: str) -> DbfsFileInfo:
        return self._call(f"reading the status of '{path}'", path, lambda api: api.get_status(full))

    def _file_status(self, path: str) -> DbfsFileInfo:
        """Status of a file; a folder counts as no file, as in ``LocalDatastore``."""
        status = self._status(path, self._full(path))
        if status.is_dir:
            raise FileNotFoundError(f"datastore '{self.name}': '{path}' is a folder, not a file.")
        return status

    @staticmethod
    def _info(relative: str, entry: DbfsFileInfo) -> FileInfo:
        modified_ms = entry.modification_time or 0
        size = entry.file_size or 0
        return FileInfo(
            path=relative,
            size=size,
            modified=datetime.fromtimestamp(modified_ms / 1000, tz=UTC),
            etag=f"{modified_ms:x}-{size:x}",
        )

    def list_files(self, pattern: str) -> list[FileInfo]:
        """Walk only the folders the glob can reach, one DBFS list call per folder."""
        clean = validate_glob(pattern, store=self.name)
        segments = clean.split("/")
        prefix = glob_prefix(clean)
        pending = [posixpath.join(self.root, prefix) if prefix else self.root]
        found: list[FileInfo] = []
        while pending:
            folder = pending.pop()
            try:
                entries = self._call(
                    f"listing '{folder}'", folder, lambda api, f=folder: api.list(f)
                )
            except FileNotFoundError:
                continue  # a missing folder (even the root) is an empty listing, as locally
            for entry in entries:
                relative = self._relative(entry.path or "", folder)
                if relative is None or posixpath.basename(relative).startswith("."):
                    continue  # hidden: our temporary files, like dot files locally
                if entry.is_dir:
                    if _may_hold_matches(segments, relative):
                        pending.append(posixpath.join(self.root, relative))
                elif glob_matches(clean, relative):
                    found.append(self._info(relative, entry))
        return sorted(found, key=lambda info: info.path)

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        """Stream a file in 1 MB read calls made as the caller reads."""
        full = self._full(path)
        size = self._file_status(path).file_size or 0
        reader = _DbfsReader(self, path, full, size)
        with io.BufferedReader(reader, buffer_size=BLOCK_BYTES) as stream:
            yield stream

    def write_bytes(self, path: str, data: bytes, *, overwrite: bool = True) -> None:
        """Upload to a hidden temporary file in the same folder, then move it into place.

        A failed write deletes the temporary file and leaves nothing new under ``path``. With
        ``overwrite`` an existing file is moved aside just before the final move and restored if
        that fails, so readers never see partial content (the name is briefly absent instead).
        """
        full = self._full(path)
        if not overwrite and self.exists(path):
            raise FileExistsError(f"datastore '{self.name}': '{path}' already exists.")
        folder, filename = posixpath.split(full)
        temp = posixpath.join(folder, f".tmp-{uuid.uuid4().hex}-{filename}")
        try:
            self._upload(path, temp, data)
            self._publish(path, temp, full, overwrite=overwrite)
        except BaseException:
            self._discard(path, temp)
            raise

    def _upload(self, path: str, temp: str, data: bytes) -> None:
        action = f"writing '{path}'"
        # A fresh unique name: overwrite=True makes a repeated create harmless.
        created = self._call(action, path, lambda api: api.create(temp, overwrite=True))
        handle = created.handle
        if handle is None:
            raise self._error("error", action, "DBFS returned no write handle", _BUSY_ADVICE)
        try:
            for start in range(0, len(data), BLOCK_BYTES):
                block = base64.b64encode(data[start : start + BLOCK_BYTES]).decode("ascii")
                self._call(
                    action, path, lambda api, b=block: api.add_block(handle, b), idempotent=False
                )
            self._call(action, path, lambda api: api.close(handle), idempotent=False)
        except FileNotFoundError:
            # DBFS drops a write handle after 10 idle minutes, or the file was removed meanwhile.
            raise self._error(
                "error", action, "the DBFS write handle is gone", "retry the write"
            ) from None

    def _publish(self, path: str, temp: str, full: str, *, overwrite: bool) -> None:
        action = f"writing '{path}'"
        try:
            self._call(action, path, lambda api: api.move(temp, full), idempotent=False)
            return
        except FileExistsError:
            if not overwrite:
                raise
        try:
            is_folder = bool(self._status(path, full).is_dir)
        except FileNotFoundError:
            is_folder = False  # deleted meanwhile: the move below simply lands
        if is_folder:
            raise self._error(
                "invalid request", action, "a folder has that name", "choose another path"
            )
        aside = f"{temp}.old"
        try:
            self._call(action, path, lambda api: api.move(full, aside), idempotent=False)
        except FileNotFoundError:
            aside = ""  # deleted meanwhile: nothing to keep
        try:
            self._call(action, path, lambda api: api.move(temp, full), idempotent=False)
        except BaseException:
            if aside:
                self._restore(path, aside, full)
            raise
        if aside:
            self._discard(path, aside)

    def _restore(self, path: str, aside: str, full: str) -> None:
        try:
            self._call(f"restoring '{path}'", path, lambda api: api.move(aside, full))
        except (DatastoreError, OSError) as error:
            logger.warning(
                "datastore %r: could not restore the previous '%s'; it is kept at %s: %s",
                self.name,
                path,
                aside,
                error,
            )

    def _discard(self, path: str, temp: str) -> None:
        """Delete a temporary file if possible; a failure is logged rather than hiding the cause."""
        try:
            self._call(f"cleaning up after '{path}'", path, lambda api: api.delete(temp))
        except FileNotFoundError:
            pass
        except (DatastoreError, OSError) as error:
            logger.warning("datastore %r: could not delete %s: %s", self.name, temp, error)

    def exists(self, path: str) -> bool:
        try:
            self._file_status(path)
        except FileNotFoundError:
            return False
        return True

    def delete(self, path: str) -> None:
        full = self._full(path)
        try:
            self._call(f"deleting '{path}'", path, lambda api: api.delete(full, recursive=False))
        except FileNotFoundError:
            pass

    def stat(self, path: str) -> FileInfo:
        return self._info(normalize_relative_path(path, store=self.name), self._file_status(path))

    def check(self) -> None:
        """The root folder must exist and be readable with the configured credentials."""
        action = f"checking the root folder '{self.root}'"
        try:
            status = self._call(action, self.root, lambda api: api.get_status(self.root))
        except FileNotFoundError:
            raise self._error(
                "not found",
                action,
                "no such folder in DBFS",
                "create the folder or fix 'root' in the catalog entry",
            ) from None
        if not status.is_dir:
            raise self._error(
                "not found", action, "it is a file, not a folder", "fix 'root' in the catalog entry"
            )


class _DbfsReader(io.RawIOBase):
    """A file's bytes fetched by DBFS read calls of at most 1 MB, only as the caller reads."""

    def __init__(self, store: DbfsDatastore, path: str, full: str, size: int) -> None:
        super().__init__()
        self._store = store
        self._path = path
        self._full = full
        self._size = size
        self._offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:
        length = min(len(buffer), BLOCK_BYTES, self._size - self._offset)
        if length <= 0:
            return 0
        offset = self._offset
        response = self._store._call(
            f"reading '{self._path}'",
            self._path,
            lambda api: api.read(self._full, offset=offset, length=length),
        )
        data = base64.b64decode(response.data or "")[:length]
        buffer[: len(data)] = data
        self._offset += len(data)
        return len(data)  # 0 before the listed size means the file shrank: end of stream

    def readall(self) -> bytes:
        chunks: list[bytes] = []
        while chunk := self.read(BLOCK_BYTES):
            chunks.append(chunk)
        return b"".join(chunks)
