"""A container and a queue on Azurite, and storage events written as Event Grid writes them.

Event Grid schema, base64-encoded JSON, one event per message (MicrosoftDocs/azure-docs#102923).
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient

from ingestion_project_tests.azurite import Azurite

KEY_VARIABLE = "AZURITE_EVENTS_KEY"


def sequencer(number: int) -> str:
    return f"{number:048x}"


def blob_event(
    kind: str,
    container: str,
    name: str,
    order: int,
    *,
    event_id: str | None = None,
    api: str | None = None,
) -> dict[str, Any]:
    """An event as Event Grid's schema has it for a Blob Storage account."""
    return {
        "topic": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/"
        "providers/Microsoft.Storage/storageAccounts/devstoreaccount1",
        "subject": f"/blobServices/default/containers/{container}/blobs/{name}",
        "eventType": f"Microsoft.Storage.Blob{kind}",
        "eventTime": "2026-12-06T05:00:00.0000000Z",
        "id": event_id or str(uuid.uuid4()),
        "data": {
            "api": api or ("PutBlob" if kind == "Created" else "DeleteBlob"),
            "requestId": str(uuid.uuid4()),
            "eTag": "0x8DCF0000000000",
            "contentType": "text/csv",
            "contentLength": 12,
            "blobType": "BlockBlob",
            "url": f"https://devstoreaccount1.blob.core.windows.net/{container}/{name}",
            "sequencer": sequencer(order),
            "storageDiagnostics": {"batchId": str(uuid.uuid4())},
        },
        "dataVersion": "",
        "metadataVersion": "1",
    }


def encoded(event: dict[str, Any] | list[dict[str, Any]]) -> str:
    return base64.b64encode(json.dumps(event).encode()).decode()


class Lake:
    """A container and a queue on Azurite, and a catalog watching ``trips/*.csv`` in them."""

    def __init__(self, blob: Azurite, queue: Azurite, **events: Any) -> None:
        suffix = uuid.uuid4().hex[:10]
        self.container, self.queue_name = f"lake{suffix}", f"events-{suffix}"
        self.blob, self.queue_service = blob, queue
        self.blobs = BlobServiceClient(blob.account_url, credential=blob.account_key)
        self.blobs.create_container(self.container)
        self.queue = QueueClient(
            f"http://{queue.host}:{queue.port}/{queue.account_name}",
            self.queue_name,
            credential={"account_name": queue.account_name, "account_key": queue.account_key},
        )
        self.queue.create_queue()
        self.events = {
            "queue": self.queue_name,
            "account_url": f"http://{queue.host}:{queue.port}/{queue.account_name}",
            **events,
        }

    def catalog(self) -> dict[str, Any]:
        return {
            "datastores": {
                "lake": {
                    "kind": "azure_blob",
                    "account_url": self.blob.account_url,
                    "container": self.container,
                    "credential": {"account_key": {"env": KEY_VARIABLE}},
                }
            },
            "datasets": {
                "trips": {
                    "datastore": "lake",
                    "path": "trips/*.csv",
                    "trigger": {"storage_events": self.events},
                }
            },
        }

    def land(self, name: str, text: str = "id,km\n1,2.5\n") -> None:
        self.blobs.get_blob_client(self.container, name).upload_blob(text, overwrite=True)

    def remove(self, name: str) -> None:
        self.blobs.get_blob_client(self.container, name).delete_blob()

    def send(self, *events: dict[str, Any], plain: bool = False) -> None:
        for event in events:
            self.queue.send_message(json.dumps(event) if plain else encoded(event))

    def messages_left(self) -> int:
        """Messages in the queue, hidden ones included."""
        return int(self.queue.get_queue_properties().approximate_message_count)
