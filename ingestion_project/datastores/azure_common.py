"""What the Azure Storage kinds share: credentials, bounded timeouts and retries, error wording."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

from pydantic import Field, PrivateAttr

from ingestion_project.datastores.base import (
    DatastoreError,
    FileDatastore,
    normalize_relative_path,
    resolve_secret,
)

SECRET_FIELDS = ("account_key", "sas_token", "connection_string", "client_secret")


class AzureStorageDatastore(FileDatastore):
    """Base for Blob, File Share and Data Lake Gen2 stores: one account, one container-like root.

    Authentication, in order: connection string, account key, SAS token, service principal
    (tenant, client id, secret), else the ambient identity (DefaultAzureCredential), which is
    Azure ML's identity-based access. Secret fields hold `dg.EnvVar`s, resolved only when used.
    """

    name: str = Field(description="Catalog name of this datastore.")
    account_url: str | None = Field(
        default=None, description="e.g. https://myaccount.blob.core.windows.net"
    )
    prefix: str = Field(default="", description="Folder inside the container used as the root.")
    account_key: str | None = None
    sas_token: str | None = None
    connection_string: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    timeout_seconds: int = Field(default=30, ge=1, le=600)
    max_retries: int = Field(default=4, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=0.5, ge=0, le=30)

    _transport: Any = PrivateAttr(default=None)

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

    def secret(self, field: str) -> str | None:
        return resolve_secret(getattr(self, field), store=self.name, field=field)

    def credential(self) -> Any:
        """The credential object for client constructors (None when a connection string is used)."""
        if self.connection_string:
            return None
        key = self.secret("account_key")
        if key:
            return {"account_name": self.account_name(), "account_key": key}
        sas = self.secret("sas_token")
        if sas:
            return sas.lstrip("?")
        if self.client_secret:
            from azure.identity import ClientSecretCredential

            if not (self.tenant_id and self.client_id):
                raise DatastoreError(
                    f"datastore '{self.name}': a service principal needs tenant_id and client_id "
                    "as well as client_secret. Add them to the catalog entry.",
                    reason="authentication failed",
                )
            return ClientSecretCredential(
                self.tenant_id, self.client_id, self.secret("client_secret") or ""
            )
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential()

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

    def full_path(self, path: str) -> str:
        """The object name inside the container for a store-relative path."""
        relative = normalize_relative_path(path, store=self.name)
        root = self.prefix.strip("/")
        return posixpath.join(root, relative) if root else relative

    def relative_path(self, object_name: str) -> str:
        root = self.prefix.strip("/")
        return object_name[len(root) + 1 :] if root else object_name

    def scrub(self, text: str) -> str:
        """Remove every secret value this store knows from a message."""
        for field in SECRET_FIELDS:
            try:
                value = self.secret(field)
            except DatastoreError:
                continue
            if value:
                text = text.replace(value, "***")
                if field == "connection_string":
                    for part in value.split(";"):
                        key, _, secret_part = part.partition("=")
                        if key.strip().lower() in ("accountkey", "sharedaccesssignature"):
                            text = text.replace(secret_part, "***")
        return text

    @contextmanager
    def translating_errors(self, action: str, path: str | None = None) -> Iterator[None]:
        """Turn azure-core errors into DatastoreError with a reason and advice, never a secret."""
        from azure.core.exceptions import (
            ClientAuthenticationError,
            ResourceExistsError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )
        from azure.core.exceptions import HttpResponseError as AzureHttpError

        where = f" '{path}'" if path else ""
        try:
            yield
        except ResourceExistsError:
            raise FileExistsError(f"datastore '{self.name}': '{path}' already exists.") from None
        except ResourceNotFoundError as error:
            code = getattr(error, "error_code", None) or ""
            if (path and "Blob" in str(code)) or code in ("ResourceNotFound", "PathNotFound"):
                raise FileNotFoundError(f"datastore '{self.name}': no file at '{path}'.") from None
            raise self._error(
                "not found", action, where, error, "check the container/share/filesystem name"
            ) from None
        except ClientAuthenticationError as error:
            raise self._error(
                "authentication failed",
                action,
                where,
                error,
                "check the credential's environment variable and that it is still valid",
            ) from None
        except AzureHttpError as error:
            status = getattr(error, "status_code", None)
            reason = "permission denied" if status == 403 else "error"
            raise self._error(reason, action, where, error, "see the service's message") from None
        except ServiceRequestError as error:
            raise self._error(
                "unreachable", action, where, error, "check account_url and the network"
            ) from None
        except ServiceResponseError as error:
            raise self._error(
                "timed out", action, where, error, "retry later or raise timeout_seconds"
            ) from None

    def _error(
        self, reason: str, action: str, where: str, error: Exception, advice: str
    ) -> DatastoreError:
        detail = " ".join(str(getattr(error, "message", None) or error).split())[:300]
        message = (
            f"datastore '{self.name}' ({self.describe()}): {reason} while {action}{where}: "
            f"{detail}. To fix: {advice}."
        )
        return DatastoreError(self.scrub(message), reason=reason)
