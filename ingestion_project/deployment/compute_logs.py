"""Step stdout/stderr kept in Azure Blob Storage at any blob endpoint, Azurite included."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
from azure.storage.blob import BlobServiceClient
from dagster_azure.blob.compute_log_manager import AzureBlobComputeLogManager


class AzureBlobEndpointComputeLogManager(AzureBlobComputeLogManager):
    """dagster-azure's compute log manager, its blob endpoint set by ``account_url``.

    The stock class only builds ``https://<account>.blob.<suffix>``, which Azurite's path-style
    ``http://host:port/<account>`` cannot be; uploads, downloads and SAS links stay its code.
    """

    def __init__(self, account_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The stock client's credential is already built from the same config (key policy,
        # token credential); a SAS token lives in its URL instead, so it is passed again.
        credential = self._blob_client.credential or self._access_key_or_sas_token
        self._blob_client = BlobServiceClient(account_url, credential=credential)
        self._container_client = self._blob_client.get_container_client(self._container)

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        return {**super().config_type(), "account_url": dg.StringSource}

    def display_path_for_type(self, log_key: Sequence[str], io_type: Any) -> str:
        # io_type is dagster's ComputeIOType, which dagster does not export.
        if not self.is_capture_complete(log_key):
            return super().display_path_for_type(log_key, io_type)
        return f"{self._container_client.url}/{self._blob_key(log_key, io_type)}"
