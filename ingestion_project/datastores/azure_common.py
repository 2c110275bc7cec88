"""What the Azure Storage kinds share: credentials, bounded timeouts and retries, error wording."""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import random
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, quote, quote_plus

import dagster as dg
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.transport import HttpTransport
from azure.storage.blob import ExponentialRetry
from pydantic import Field, PrivateAttr, field_validator, model_validator

from ingestion_project.datastores.base import (
    HIDE_INPUT,
    DatastoreError,
    FileDatastore,
    normalize_relative_path,
    require_http_url,
    resolve_secret,
    secret_field,
)
from ingestion_project.datastores.deadline import SYSTEM_CLOCK, Clock, Deadline

SECRET_FIELDS = ("account_key", "sas_token", "connection_string", "client_secret")
MAX_BACKOFF_SECONDS = 60.0
# A 403 with one of these codes means the credential itself was refused, not missing rights.
AUTHENTICATION_CODES = frozenset(
    {"AuthenticationFailed", "InvalidAuthenticationInfo", "NoAuthenticationInformation"}
)
_CONNECTION_CUT = ("reset", "aborted", "broken", "refused", "closed")
_BUSY_ADVICE = (
    "the service stayed busy or failing through the retries that {limits} allow; retry later, "
    "or raise max_retries or timeout_seconds"
)


def storage_error_code(error: Exception) -> str:
    """The service's error code as plain text (the SDK gives a str or a str-valued enum)."""
    code = getattr(error, "error_code", None)
    return str(getattr(code, "value", code) or "")


def backoff_seconds(initial: float, retry_number: int) -> float:
    """Double the wait per retry, jittered by ±20% so many clients do not retry in step."""
    base = initial * 2 ** max(retry_number - 1, 0)
    return min(base, max(initial, MAX_BACKOFF_SECONDS)) * random.uniform(0.8, 1.2)


class StorageRetry(ExponentialRetry):
    """The Storage SDK's retry policy, with the datastore's backoff inside one time budget.

    It retries 408, 5xx (not 501/505), connection errors and read errors; ``BoundedTransport``
    turns a 429 into an error so that it is retried too. Unlike the SDK's, it does not retry a
    token request that the identity provider refused. The SDK's own formula adds
    ``increment_base ** n`` whole seconds, which cannot be made small, so the pause is ours.

    A request and all its retries wait at most ``timeout`` seconds: each retry gets only what is
    left of that budget as its connect and read timeouts, and a retry whose pause would leave
    less than ``MIN_ATTEMPT_SECONDS`` is not made. A silent server thus costs one timeout, not
    one per retry. The Data Lake and File Share clients take this policy as well: each SDK
    vendors the same policy code, and a Data Lake client hands its policy on to the Blob client
    inside it. Settings are per request, so one policy serves concurrent requests.
    """

    def __init__(
        self, backoff: float, retries: int, timeout: float, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        super().__init__(
            initial_backoff=0,
            retry_total=retries,
            retry_connect=retries,
            retry_read=retries,
            retry_status=retries,
        )
        self.backoff = backoff
        self.timeout = timeout
        self.clock = clock

    def configure_retries(self, request: PipelineRequest[Any]) -> dict[str, Any]:
        settings = super().configure_retries(request)
        settings["deadline"] = Deadline(self.timeout, self.clock)
        # The options travel with every attempt to the transport, which reads the timeouts.
        settings["options"] = request.context.options
        settings["pause"] = 0.0
        return settings

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        return backoff_seconds(self.backoff, settings["count"])

    def increment(
        self,
        settings: dict[str, Any],
        request: Any,
        response: Any = None,
        error: AzureError | None = None,
    ) -> bool:
        if isinstance(error, ClientAuthenticationError):
            return False  # a refused credential stays refused (azure-core's policy agrees)
        if not super().increment(settings, request, response, error):
            return False
        pause = self.get_backoff_time(settings)
        if not settings["deadline"].allows_attempt_after(pause):
            return False
        settings["pause"] = pause
        return True

    def sleep(self, settings: dict[str, Any], transport: Any) -> None:
        """Pause on the store's clock, then give the next attempt what is left of the budget."""
        deadline: Deadline = settings["deadline"]
        deadline.pause(settings["pause"])
        remaining = deadline.remaining()
        settings["options"]["connection_timeout"] = remaining
        settings["options"]["read_timeout"] = remaining


class ThrottledError(HttpResponseError):
    """A 429 answer; raised by the transport so the Storage retry policy retries it."""


class StalledBodyError(AzureError):
    """The service stopped sending a response body for as long as the request had left.

    Deliberately not a ServiceResponseError: the Storage SDKs repeat a download whose body
    fails to arrive (three times, a second apart, each with a fresh budget), which would turn
    one silent server into three timeouts.
    """


class _StallIsFinal:
    """A download stream whose stall ends the download (see StalledBodyError).

    Everything else, including the attributes the SDK reads and sets, is the stream's own.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __iter__(self) -> _StallIsFinal:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._stream)
        except ServiceResponseTimeoutError as error:
            raise StalledBodyError(str(error), error=error) from error

    def __len__(self) -> int:
        return len(self._stream)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _final_stalls(response: Any) -> None:
    """Make a stall in this response's streamed body final instead of retried."""
    stream_download = response.stream_download

    def guarded(pipeline: Any, **kwargs: Any) -> _StallIsFinal:
        return _StallIsFinal(stream_download(pipeline, **kwargs))

    response.stream_download = guarded


class BoundedTransport(HttpTransport):
    """Wraps an azure-core transport: every request gets the datastore's timeouts.

    For the Storage clients (``storage``) two more things: their retry policy leaves 429 alone
    (Storage itself throttles with 503), but a proxy in front of it may answer 429, so that
    becomes an error the policy retries like a dropped connection; and a streamed body that
    stalls fails the download instead of being fetched again (see StalledBodyError).
    """

    def __init__(self, inner: Any, *, timeout_seconds: int, storage: bool) -> None:
        self._inner = inner
        self._timeout = timeout_seconds
        self._storage = storage

    def send(self, request: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("connection_timeout", self._timeout)
        kwargs.setdefault("read_timeout", self._timeout)
        response = self._inner.send(request, **kwargs)
        if self._storage and response.status_code == 429:
            read = getattr(response, "read", None)
            if read is not None:
                read()  # a small error body; read so the connection goes back to the pool
            raise ThrottledError(response=response)
        if self._storage:
            _final_stalls(response)
        return response

    def open(self) -> None:
        self._inner.open()

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> Self:
        self._inner.__enter__()
        return self

    def __exit__(self, *args: Any) -> None:
        self._inner.__exit__(*args)


class ChunkStream(io.RawIOBase):
    """A readable stream over an iterator of byte chunks, translating errors while it reads.

    Only the chunk being consumed is held, so a download of any size uses bounded memory.
    """

    def __init__(
        self, chunks: Iterator[bytes], translating: Callable[[], AbstractContextManager[None]]
    ) -> None:
        super().__init__()
        self._chunks = chunks
        self._translating = translating
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> bytes | None:
        with self._translating():
            return next(self._chunks, None)

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self._next_chunk()
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def readall(self) -> bytes:
        parts = [bytes(self._pending)]
        self._pending = memoryview(b"")
        while (chunk := self._next_chunk()) is not None:
            parts.append(chunk)
        return b"".join(parts)


def utc(moment: datetime) -> datetime:
    """Listing dates may come without a zone (Data Lake Path - List); they are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_folder_marker(metadata: dict[str, str] | None) -> bool:
    """Accounts with a hierarchical namespace list each directory as an empty flagged blob."""
    return (metadata or {}).get("hdi_isfolder", "").lower() == "true"


def is_listed(relative: str) -> bool:
    """Whether a listing shows a name, with the local store's rules.

    No dot-files or dot-folders (temporary files are among them), and no names with empty
    segments, which no store-relative path can address.
    """
    return all(part and not part.startswith(".") for part in relative.split("/"))


class ServicePrincipal(dg.Config):
    """A Microsoft Entra application: tenant and client ids are not secret, the secret is."""

    model_config = HIDE_INPUT

    tenant_id: str = Field(description="Directory (tenant) id of the application.")
    client_id: str = Field(description="Application (client) id.")
    client_secret: str = secret_field("The application's client secret.", required=True)


class AzureCredential(dg.Config):
    """At most one way to authenticate; none means the ambient identity (DefaultAzureCredential).

    That identity is Azure ML's identity-based access: a managed identity in Azure, or the
    developer's `az login` on a laptop.
    """

    model_config = HIDE_INPUT

    account_key: str | None = secret_field("The storage account's access key.")
    sas_token: str | None = secret_field("A shared access signature for the container.")
    connection_string: str | None = secret_field("A storage connection string.")
    service_principal: ServicePrincipal | None = Field(
        default=None, description="An Entra application with a data role on the container."
    )

    @model_validator(mode="after")
    def _one_way(self) -> AzureCredential:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(
                f"give one way to authenticate, not {len(given)} ({', '.join(given)}); "
                "leave 'credential' out to use the identity (DefaultAzureCredential)"
            )
        return self


class AzureStorageDatastore(FileDatastore):
    """Base for Blob, File Share and Data Lake Gen2 stores: one account, one container-like root.

    Authentication (``credential``), in order: connection string, account key, SAS token, service
    principal (tenant, client id, secret), else the ambient identity (DefaultAzureCredential),
    which is Azure ML's identity-based access. Secret fields hold `dg.EnvVar`s, resolved only
    when used.
    """

    name: str = Field(description="Catalog name of this datastore.")
    account_url: str | None = Field(
        default=None,
        description="e.g. https://myaccount.blob.core.windows.net (not needed with a "
        "connection string)",
    )
    prefix: str = Field(default="", description="Folder inside the container used as the root.")
    credential: AzureCredential = Field(
        default_factory=AzureCredential,
        description="How to authenticate; leave it out for the identity (DefaultAzureCredential).",
    )
    timeout_seconds: int = Field(
        default=30,
        ge=1,
        le=600,
        description=(
            "Upper bound on waiting for the service in one request, retries and their pauses "
            "included: each retry gets only what is left of it, and none is made when too "
            "little is left. A body that keeps arriving is read to its end; a pause in it "
            "longer than what the request had left fails the read."
        ),
    )
    max_retries: int = Field(
        default=4,
        ge=0,
        le=10,
        description=(
            "Retries of a 408/429/5xx answer or a dropped or refused connection, as long as "
            "timeout_seconds has time left for them."
        ),
    )
    retry_backoff_seconds: float = Field(
        default=0.5,
        ge=0,
        le=30,
        description="First pause between retries; doubles each time (±20% jitter).",
    )

    # The setting that names the container-like root ('container', 'share', 'filesystem').
    root_field: ClassVar[str]

    _transport: Any = PrivateAttr(default=None)

    @field_validator("account_url")
    @classmethod
    def _valid_account_url(cls, value: str | None) -> str | None:
        return None if value is None else require_http_url(value, query_allowed=False)

    @model_validator(mode="after")
    def _url_or_connection_string(self) -> Self:
        if self.account_url is None and self.credential.connection_string is None:
            raise ValueError(
                "give 'account_url' (or a credential.connection_string); neither was given"
            )
        return self

    @property
    def store_name(self) -> str:
        return self.name

    def using_transport(self, transport: Any) -> Self:
        """A copy whose clients send requests through ``transport`` (an azure-core HttpTransport).

        Production code never needs it; tests use it to answer with recorded service responses
        where no emulator exists (File Share, Data Lake DFS), through the real client code path.
        """
        copy = self.model_copy()
        copy._transport = transport
        return copy

    def settings_key(self) -> str:
        """What a cached client depends on: settings, secret values, the test's transport and clock.

        model_copy() shares private attributes with the original, so a copy with other settings
        must not reuse the original's client.
        """
        public = self.model_dump(mode="json", exclude=set(SECRET_FIELDS))
        secrets = [self.secret(field) for field in SECRET_FIELDS]
        hooks = [id(self._transport), id(self._clock)]
        payload = json.dumps([public, secrets, hooks], sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()

    def secret(self, field: str) -> str | None:
        """The value of a credential field (client_secret: the service principal's)."""
        principal = self.credential.service_principal
        holder = principal if field == "client_secret" else self.credential
        value = getattr(holder, field) if holder is not None else None
        return resolve_secret(value, store=self.name, field=field)

    def client_credential(self) -> Any:
        """The credential object for client constructors (None when a connection string is used).

        Token credentials get the store's timeouts and retries (and a test's transport), and a
        bad identity setting such as an http AZURE_AUTHORITY_HOST is an authentication error.
        """
        if self.credential.connection_string:
            return None
        key = self.secret("account_key")
        if key:
            return {"account_name": self.account_name(), "account_key": key}
        sas = self.secret("sas_token")
        if sas:
            return sas.lstrip("?")
        principal = self.credential.service_principal
        try:
            if principal is not None:
                from azure.identity import ClientSecretCredential

                return ClientSecretCredential(
                    principal.tenant_id,
                    principal.client_id,
                    self.secret("client_secret") or "",
                    **self.identity_options(),
                )
            from azure.identity import DefaultAzureCredential

            return DefaultAzureCredential(**self.identity_options())
        except ValueError as error:
            where = "credential.service_principal.tenant_id and " if principal else ""
            raise DatastoreError(
                self.scrub(
                    f"datastore '{self.name}': the identity settings are not valid: {error}. "
                    f"To fix: check {where}the AZURE_* environment variables."
                ),
                reason="authentication failed",
            ) from None

    def identity_options(self) -> dict[str, Any]:
        """Keyword arguments for azure-identity credentials: bounded timeouts and retries.

        ``timeout`` is azure-core's budget for one token request and its retries: retries stop
        once it is spent, and each retry's connect timeout is cut to what is left of it.
        """
        options: dict[str, Any] = {
            "connection_timeout": self.timeout_seconds,
            "read_timeout": self.timeout_seconds,
            "timeout": self.timeout_seconds,
            "retry_total": self.max_retries,
            "retry_backoff_factor": self.retry_backoff_seconds,
        }
        if self._transport is not None:
            options["transport"] = BoundedTransport(
                self._transport, timeout_seconds=self.timeout_seconds, storage=False
            )
        return options

    def account_name(self) -> str:
        """The storage account's name, from the account URL (host or Azurite-style path)."""
        if not self.account_url:
            raise DatastoreError(
                f"datastore '{self.name}': no account_url. Add it to the catalog entry.",
                reason="invalid request",
            )
        from urllib.parse import urlparse

        parsed = urlparse(self.account_url)
        host = parsed.hostname or ""
        if host in ("127.0.0.1", "localhost") and parsed.path.strip("/"):
            return parsed.path.strip("/").split("/")[0]
        return host.split(".")[0]

    def client_options(self) -> dict[str, Any]:
        """Bounded timeouts on every call and the transport, if a test supplied one."""
        options: dict[str, Any] = {
            "connection_timeout": self.timeout_seconds,
            "read_timeout": self.timeout_seconds,
        }
        if self._transport is not None:
            options["transport"] = self._transport
        return options

    def pipeline_options(self) -> dict[str, Any]:
        """client_options() plus the store's retry policy, for any Azure Storage client.

        The transport (the test's, else a new RequestsTransport) is wrapped in BoundedTransport,
        so every request carries the timeouts and 429 answers are retried like 503s; the retry
        policy keeps a request and its retries within timeout_seconds.
        """
        from azure.core.pipeline.transport import RequestsTransport

        inner = self._transport or RequestsTransport(
            connection_timeout=self.timeout_seconds,
            read_timeout=self.timeout_seconds,
            # The storage SDK's own default; azure-core's 4 KiB doubles the CPU of a download.
            connection_data_block_size=256 * 1024,
        )
        return {
            **self.client_options(),
            "transport": BoundedTransport(
                inner, timeout_seconds=self.timeout_seconds, storage=True
            ),
            "retry_policy": StorageRetry(
                self.retry_backoff_seconds, self.max_retries, self.timeout_seconds, self._clock
            ),
        }

    def missing_root_advice(self) -> str:
        """What to do when the container (share, file system) does not exist."""
        return (
            f"create {self.root_field} '{getattr(self, self.root_field)}' in the storage "
            f"account, or fix '{self.root_field}' in the catalog entry"
        )

    def full_path(self, path: str) -> str:
        """The object name inside the container for a store-relative path."""
        relative = normalize_relative_path(path, store=self.name)
        root = self.prefix.strip("/")
        return posixpath.join(root, relative) if root else relative

    def relative_path(self, object_name: str) -> str:
        root = self.prefix.strip("/")
        return object_name[len(root) + 1 :] if root else object_name

    def scrub(self, text: str) -> str:
        """Remove every secret value this store knows from a message, raw or URL-encoded."""
        for field in SECRET_FIELDS:
            try:
                value = self.secret(field)
            except DatastoreError:
                continue
            if value:
                for variant in _secret_variants(field, value):
                    text = text.replace(variant, "***")
        return text

    @contextmanager
    def translating_errors(self, action: str, path: str | None = None) -> Iterator[None]:
        """Turn azure-core errors into DatastoreError with a reason and advice, never a secret."""
        from azure.core.exceptions import (
            ResourceExistsError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceRequestTimeoutError,
            ServiceResponseError,
        )

        where = f" '{path}'" if path else ""
        try:
            yield
        except ResourceExistsError:
            raise FileExistsError(f"datastore '{self.name}': '{path}' already exists.") from None
        except ResourceNotFoundError as error:
            code = storage_error_code(error)
            if (path and ("Blob" in code or code == "ParentNotFound")) or code in (
                "ResourceNotFound",
                "PathNotFound",
            ):
                raise FileNotFoundError(f"datastore '{self.name}': no file at '{path}'.") from None
            raise self._error(
                "not found", action, where, error, self.missing_root_advice()
            ) from None
        except ClientAuthenticationError as error:
            raise self._error(
                "authentication failed",
                action,
                where,
                error,
                "check the credential's environment variable and that it is still valid",
            ) from None
        except HttpResponseError as error:
            reason, advice = self._classify_status(error)
            raise self._error(reason, action, where, error, advice) from None
        except ServiceRequestError as error:
            if isinstance(error, ServiceRequestTimeoutError) or _mentions_timeout(error):
                raise self._error(
                    "timed out", action, where, error, "check the network or raise timeout_seconds"
                ) from None
            advice = f"check {self._endpoint_setting()} and the network"
            raise self._error("unreachable", action, where, error, advice) from None
        except ServiceResponseError as error:
            cut = any(word in str(error).lower() for word in _CONNECTION_CUT)
            if cut and not isinstance(error, ServiceResponseTimeoutError):
                raise self._error(
                    "unreachable",
                    action,
                    where,
                    error,
                    f"the connection was cut, also on the retries that {self._retry_limits()} "
                    "allow; check the network and retry",
                ) from None
            raise self._error(
                "timed out", action, where, error, "retry later or raise timeout_seconds"
            ) from None
        except StalledBodyError as error:
            raise self._error(
                "timed out",
                action,
                where,
                error,
                "the service stopped sending for as long as the request had left of "
                "timeout_seconds; retry later or raise timeout_seconds",
            ) from None
        except AzureError as error:
            raise self._error("error", action, where, error, "see the service's message") from None

    def _classify_status(self, error: HttpResponseError) -> tuple[str, str]:
        status = error.status_code or 0
        code = storage_error_code(error)
        if status == 403 and (
            code in AUTHENTICATION_CODES or "failed to authenticate" in str(error).lower()
        ):
            return (
                "authentication failed",
                "check the credential's environment variable and that it is still valid",
            )
        if status == 403:
            return (
                "permission denied",
                "give the identity a data role on the container (e.g. Storage Blob Data "
                "Contributor) or use a SAS with the needed permissions",
            )
        if status == 400:
            return "invalid request", f"check '{self.root_field}' and the path"
        if status == 429 or status >= 500:
            return "error", _BUSY_ADVICE.format(limits=self._retry_limits())
        return "error", "see the service's message"

    def _retry_limits(self) -> str:
        return f"max_retries={self.max_retries} within timeout_seconds={self.timeout_seconds}"

    def _endpoint_setting(self) -> str:
        """The setting that says where the service is: account_url, or the connection string."""
        if self.credential.connection_string:
            return "the endpoint in credential.connection_string"
        return "account_url"

    def _error(
        self, reason: str, action: str, where: str, error: Exception, advice: str
    ) -> DatastoreError:
        message = (
            f"datastore '{self.name}' ({self.describe()}): {reason} while {action}{where}: "
            f"{_detail(error)}. To fix: {advice}."
        )
        return DatastoreError(self.scrub(message), reason=reason)


def _detail(error: Exception) -> str:
    """The first line of the service's message plus its error code.

    Storage messages go on with request ids, timestamps and (for signature failures) the
    computed signature, none of which helps the reader.
    """
    text = str(getattr(error, "message", None) or error).strip()
    first = " ".join(text.splitlines()[0].split())[:300] if text else type(error).__name__
    code = storage_error_code(error)
    if code and code not in first:
        first = f"{first} (error code {code})"
    return first.rstrip(".")


def _mentions_timeout(error: Exception) -> bool:
    text = str(error).lower()
    return "timed out" in text or "timeout" in text


def _secret_variants(field: str, value: str) -> list[str]:
    """The secret and the parts that may show up alone, raw and URL-encoded, longest first.

    A connection string's key or SAS, or a SAS's signature, can appear without the rest.
    """
    parts: list[str] = []
    if field == "connection_string":
        for piece in value.split(";"):
            key, _, secret_part = piece.partition("=")
            if key.strip().lower() in ("accountkey", "sharedaccesssignature"):
                parts.append(secret_part)
                parts.extend(parse_qs(secret_part.lstrip("?")).get("sig", []))
    if field == "sas_token":
        parts.extend(parse_qs(value.lstrip("?")).get("sig", []))
    # Very short fragments would blank out ordinary words; real keys and signatures are long.
    pieces = [value, *(part for part in parts if len(part) >= 8)]
    variants = {form for part in pieces for form in (part, quote(part, safe=""), quote_plus(part))}
    return sorted(variants, key=len, reverse=True)
