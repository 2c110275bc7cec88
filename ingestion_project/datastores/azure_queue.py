"""An Azure Storage queue in a datastore's account: where Event Grid delivers storage events.

The queue client takes the datastore's credential, timeouts and retry policy, so a queue is
reached exactly as the store is, and its errors are worded the same way (never a secret).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse, urlunparse

from ingestion_project.datastores.azure_common import storage_error_code
from ingestion_project.datastores.base import DatastoreError

if TYPE_CHECKING:
    from ingestion_project.datastores.azure_common import AzureStorageDatastore

# Queue Storage returns at most 32 messages per Get Messages call.
PAGE_MESSAGES = 32
AZURITE_BLOB_PORT, AZURITE_QUEUE_PORT = 10000, 10001


@dataclass(frozen=True)
class QueuedMessage:
    """One message as received: what is needed to delete it, and its text."""

    id: str
    pop_receipt: str
    dequeue_count: int
    content: str


def queue_service_url(store: AzureStorageDatastore, explicit: str | None = None) -> str | None:
    """The queue service of the store's account: ``explicit``, else derived from its URL.

    ``https://acct.blob.core.windows.net`` (or ``.dfs.``) gives ``https://acct.queue...``; an
    Azurite URL on its default blob port 10000 gives port 10001. None when the store is reached
    by connection string and nothing is given (the connection string names the endpoint).
    """
    if explicit:
        return explicit.rstrip("/")
    if not store.account_url:
        return None
    parsed = urlparse(store.account_url)
    host = parsed.hostname or ""
    for service in (".blob.", ".dfs."):
        if service in host:
            netloc = parsed.netloc.replace(service, ".queue.", 1)
            return urlunparse(parsed._replace(netloc=netloc)).rstrip("/")
    if parsed.port == AZURITE_BLOB_PORT:
        netloc = parsed.netloc.replace(f":{AZURITE_BLOB_PORT}", f":{AZURITE_QUEUE_PORT}", 1)
        return urlunparse(parsed._replace(netloc=netloc)).rstrip("/")
    raise DatastoreError(
        f"datastore '{store.name}': cannot tell the queue service from account_url "
        f"{store.account_url}. To fix: give 'account_url' of the queue service under "
        "'storage_events' in the dataset's trigger.",
        reason="invalid request",
    )


class EventQueue:
    """Receive, delete and set aside messages of one queue, with the store's settings."""

    def __init__(
        self, store: AzureStorageDatastore, queue: str, account_url: str | None = None
    ) -> None:
        self.store = store
        self.queue = queue
        self.account_url = queue_service_url(store, account_url)
        self._client = self._queue_client(queue)
        self._poison: Any = None

    def _queue_client(self, queue: str) -> Any:
        from azure.storage.queue import QueueClient

        options = self.store.pipeline_options()
        connection = self.store.secret("connection_string")
        if connection and not self.account_url:
            return QueueClient.from_connection_string(connection, queue, **options)
        credential: Any = self.store.client_credential()
        if connection:  # a queue service named apart from the connection string's
            parts = dict(part.split("=", 1) for part in connection.split(";") if "=" in part)
            credential = {
                "account_name": parts.get("AccountName", ""),
                "account_key": parts.get("AccountKey", ""),
            }
        assert self.account_url is not None
        return QueueClient(self.account_url, queue, credential=credential, **options)

    def describe(self) -> str:
        return f"queue '{self.queue}' of datastore '{self.store.name}'"

    @contextmanager
    def _errors(self, action: str, queue: str | None = None) -> Iterator[None]:
        """The store's wording for Azure errors, with the queue's own advice when it is missing."""
        from azure.core.exceptions import ResourceNotFoundError

        name = queue or self.queue
        with self.store.translating_errors(action):
            try:
                yield
            except ResourceNotFoundError as error:
                if storage_error_code(error) != "QueueNotFound":
                    raise
                where = self.account_url or "the account of the connection string"
                raise DatastoreError(
                    f"datastore '{self.store.name}': queue '{name}' does not exist in {where}. "
                    f"To fix: create it (az storage queue create --name {name}) and subscribe "
                    "it to the account's Blob Created/Deleted events in Event Grid, or fix "
                    "'queue' (or 'account_url') under the dataset's storage_events.",
                    reason="not found",
                ) from None

    def receive(self, count: int, visibility_seconds: int) -> list[QueuedMessage]:
        """Up to ``count`` messages, hidden from other readers for ``visibility_seconds``."""
        with self._errors(f"reading {self.describe()}"):
            return [
                QueuedMessage(
                    id=message.id,
                    pop_receipt=message.pop_receipt,
                    dequeue_count=int(message.dequeue_count or 0),
                    content=_text(message.content),
                )
                for message in self._client.receive_messages(
                    messages_per_page=PAGE_MESSAGES,
                    max_messages=count,
                    visibility_timeout=visibility_seconds,
                )
            ]

    def delete(self, message_id: str, pop_receipt: str) -> bool:
        """Delete a received message; False when it is already gone or was received again since."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        with self._errors(f"deleting a message of {self.describe()}"):
            try:
                self._client.delete_message(message_id, pop_receipt=pop_receipt)
            except ResourceNotFoundError:
                return False
            except HttpResponseError as error:
                if error.status_code == 400:  # PopReceiptMismatch: received again since
                    return False
                raise
        return True

    def set_aside(self, message: QueuedMessage) -> str:
        """Copy the message to ``<queue>-poison`` (created when needed), then delete it."""
        from azure.core.exceptions import ResourceExistsError

        name = poison_queue_name(self.queue)
        with self._errors(f"setting a message aside in queue '{name}'", name):
            if self._poison is None:
                self._poison = self._queue_client(name)
                try:
                    self._poison.create_queue()
                except ResourceExistsError:
                    pass
            self._poison.send_message(message.content)
        self.delete(message.id, message.pop_receipt)
        return name


def poison_queue_name(queue: str) -> str:
    """Azure Functions' convention for messages that could not be processed."""
    return f"{queue[: 63 - len('-poison')]}-poison"


def _text(content: Any) -> str:
    if isinstance(content, bytes):
        return content.decode("utf-8", errors="replace")
    return str(content)
