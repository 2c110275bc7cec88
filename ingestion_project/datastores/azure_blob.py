"""Azure Blob Storage: one container of a storage account, like an Azure ML blob datastore.

Uploads are all or nothing: a small file goes up in one Put Blob; a large one as blocks that only
become the blob when one Put Block List commits them at the end, so a failed upload leaves no
blob (uncommitted blocks are never listed and the service discards them). ``overwrite=False``
adds ``If-None-Match: *`` to that single creating request, so of racing writers exactly one wins.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import IO, Any, ClassVar, cast
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
from azure.core.paging import PageIterator
from azure.storage.blob import BlobProperties, ContainerClient
from pydantic import Field, PrivateAttr

from ingestion_project.datastores.azure_common import (
    AzureStorageDatastore,
    ChunkStream,
    is_folder_marker,
    is_listed,
    utc,
)
from ingestion_project.datastores.base import (
    LISTING_PAGE_SIZE,
    DatastoreError,
    FileInfo,
    ListingPage,
    glob_matches,
    glob_prefix,
    glob_regex,
    normalize_relative_path,
    validate_glob,
)

DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024
AZURITE_ENDPOINT = "http://127.0.0.1:10000/devstoreaccount1"


def _info(relative: str, properties: BlobProperties) -> FileInfo:
    path, size, etag = _entry(relative, properties)
    return FileInfo(path=path, size=size, modified=utc(properties.last_modified), etag=etag)


def _entry(relative: str, properties: BlobProperties) -> tuple[str, int, str]:
    """The (path, size, etag) a fingerprint needs, without the FileInfo and its datetime."""
    return relative, int(properties.size or 0), str(properties.etag or "").strip('"')


class AzureBlobDatastore(AzureStorageDatastore):
    """One Blob container (optionally a folder inside it, ``prefix``) as a file datastore.

    The client is built once per resource instance and settings, with the store's timeouts on
    every request and the Storage SDK's retry policy using the store's retry count and backoff.
    """

    kind: ClassVar[str] = "azure_blob"
    root_field: ClassVar[str] = "container"
    pages_listings: ClassVar[bool] = True

    container: str = Field(description="The Blob container that holds the data.")
    transfer_chunk_bytes: int = Field(
        default=DEFAULT_CHUNK_BYTES,
        ge=1024,
        le=256 * 1024 * 1024,
        description=(
            "Upload block and download range size: the memory one stream holds, and the size up "
            "to which a file goes up in a single request."
        ),
    )

    _client_cache: tuple[str, ContainerClient, int] | None = PrivateAttr(default=None)
    _client_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def describe(self) -> str:
        root = self.prefix.strip("/")
        inside = f", prefix '{root}'" if root else ""
        return f"Azure Blob {self._endpoint()}, container '{self.container}'{inside}"

    def check(self) -> None:
        """List one blob under the root: proves URL, credential, container and list access.

        Listing works with a container SAS, where reading the container's properties does not.
        """
        root = self.prefix.strip("/")
        container = self._container_client()
        with self.translating_errors(f"checking container '{self.container}'"):
            pages = container.list_blobs(
                name_starts_with=f"{root}/" if root else None, results_per_page=1
            ).by_page()
            next(pages, None)

    def list_files(self, pattern: str) -> list[FileInfo]:
        """One List Blobs call per 5000 names under the glob's fixed prefix; no data is read."""
        clean = validate_glob(pattern, store=self.name)
        start = "/".join(part for part in (self.prefix.strip("/"), glob_prefix(clean)) if part)
        container = self._container_client()
        found: list[FileInfo] = []
        with self.translating_errors(f"listing '{pattern}'"):
            for blob in container.list_blobs(
                name_starts_with=f"{start}/" if start else None, include=["metadata"]
            ):
                relative = self.relative_path(blob.name)
                if is_folder_marker(blob.metadata) or not is_listed(relative):
                    continue
                if glob_matches(clean, relative):
                    found.append(_info(relative, blob))
        return sorted(found, key=lambda info: info.path)

    def listing_page(
        self, pattern: str, token: str | None = None, page_size: int = LISTING_PAGE_SIZE
    ) -> ListingPage:
        """One List Blobs call from ``token``: the matching files among its names, and the next."""
        clean = validate_glob(pattern, store=self.name)
        start = "/".join(part for part in (self.prefix.strip("/"), glob_prefix(clean)) if part)
        regex = glob_regex(clean)
        container = self._container_client()
        with self.translating_errors(f"listing '{pattern}'"):
            listing = container.list_blobs(
                name_starts_with=f"{start}/" if start else None,
                include=["metadata"],
                results_per_page=page_size,
            )
            # The SDK types by_page as an Iterator; it is a PageIterator, which has the token.
            pages = cast(PageIterator[BlobProperties], listing.by_page(continuation_token=token))
            found: list[tuple[str, int, str]] = []
            for blob in next(pages):
                relative = self.relative_path(blob.name)
                if is_folder_marker(blob.metadata) or not is_listed(relative):
                    continue
                if regex.fullmatch(relative) is not None:
                    found.append(_entry(relative, blob))
        return ListingPage(found, pages.continuation_token or None)

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        """Stream the blob one range (``transfer_chunk_bytes``) at a time.

        Every range after the first is requested with the first answer's ETag, so a blob that
        is replaced mid-read fails the read instead of mixing two versions.
        """
        blob = self._container_client().get_blob_client(self.full_path(path))
        with self.translating_errors("reading", path):
            downloader = blob.download_blob()
        raw = ChunkStream(downloader.chunks(), lambda: self.translating_errors("reading", path))
        with io.BufferedReader(raw, buffer_size=min(self.transfer_chunk_bytes, 1 << 20)) as stream:
            yield stream

    def signed_read_url(self, path: str, lifetime: timedelta) -> str:
        """A URL that reads one blob, and nothing else, until ``lifetime`` has passed.

        A service SAS signed with the account key, or a user delegation SAS when the store uses
        an identity (which needs the Storage Blob Delegator role). A store that only holds a SAS
        token cannot sign new ones.
        """
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        container = self._container_client()
        blob_name = self.full_path(path)
        now = datetime.now(UTC)
        start, expiry = now - timedelta(minutes=5), now + lifetime
        credential = container.credential
        key = getattr(credential, "account_key", None)
        with self.translating_errors("signing a read URL for", path):
            if key:
                signed_with: dict[str, Any] = {"account_key": key}
            elif hasattr(credential, "get_token"):
                from azure.storage.blob import BlobServiceClient

                service = BlobServiceClient(container.url.rsplit("/", 1)[0], credential)
                signed_with = {
                    "user_delegation_key": service.get_user_delegation_key(start, expiry)
                }
            else:
                raise DatastoreError(
                    f"datastore '{self.name}' ({self.describe()}) authenticates with a SAS "
                    "token, from which no new read-only URL can be signed. Give it an account "
                    "key or an identity with the Storage Blob Delegator role.",
                    reason="invalid request",
                )
            token = generate_blob_sas(
                container.account_name or self.account_name(),
                self.container,
                blob_name,
                permission=BlobSasPermissions(read=True),
                start=start,
                expiry=expiry,
                **signed_with,
            )
        return f"{container.get_blob_client(blob_name).url}?{token}"

    def read_bytes(self, path: str) -> bytes:
        blob = self._container_client().get_blob_client(self.full_path(path))
        with self.translating_errors("reading", path):
            return blob.download_blob().readall()

    def write_bytes(self, path: str, data: bytes, *, overwrite: bool = True) -> None:
        """Create or replace the blob in one step; see the module docstring for why it's atomic."""
        blob = self._container_client().get_blob_client(self.full_path(path))
        with self.translating_errors("writing", path):
            blob.upload_blob(data, length=len(data), overwrite=overwrite)

    def write_stream(
        self, path: str, stream: IO[bytes] | Iterable[bytes], *, overwrite: bool = True
    ) -> None:
        """Upload from a stream without holding it whole: blocks, then one commit at the end.

        If the stream raises, its error propagates and no blob is created or replaced.
        """
        blob = self._container_client().get_blob_client(self.full_path(path))
        with self.translating_errors("writing", path):
            blob.upload_blob(stream, overwrite=overwrite)

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except FileNotFoundError:
            return False
        return True

    def delete(self, path: str) -> None:
        """Remove one blob and its snapshots; a blob that is already gone is not an error."""
        blob = self._container_client().get_blob_client(self.full_path(path))
        try:
            with self.translating_errors("deleting", path):
                blob.delete_blob(delete_snapshots="include")
        except FileNotFoundError:
            return

    def stat(self, path: str) -> FileInfo:
        relative = normalize_relative_path(path, store=self.name)
        blob = self._container_client().get_blob_client(self.full_path(path))
        with self.translating_errors("reading", path):
            properties = blob.get_blob_properties()
        if is_folder_marker(properties.metadata):
            raise FileNotFoundError(f"datastore '{self.name}': '{path}' is a folder, not a file.")
        return _info(relative, properties)

    def close(self) -> None:
        """Close the cached client's connections; the next call builds a new client."""
        with self._client_lock:
            cache, self._client_cache = self._client_cache, None
        # A model_copy() shares the cache with its original: only the builder closes the client.
        if cache is not None and cache[2] == id(self):
            cache[1].close()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Dagster calls this after a run or sensor tick, so pooled connections do not linger."""
        self.close()

    def _container_client(self) -> ContainerClient:
        # Keyed by the settings because model_copy() shares private attributes with the original.
        key = self.settings_key()
        with self._client_lock:
            if self._client_cache is None or self._client_cache[0] != key:
                self._client_cache = (key, self._build_container_client(), id(self))
            return self._client_cache[1]

    def _build_container_client(self) -> ContainerClient:
        chunk = self.transfer_chunk_bytes
        options = {
            **self.pipeline_options(),
            "max_single_put_size": chunk,
            "max_block_size": chunk,
            "max_single_get_size": chunk,
            "max_chunk_get_size": chunk,
        }
        try:
            if self.credential.connection_string:
                return ContainerClient.from_connection_string(
                    self.secret("connection_string") or "", self.container, **options
                )
            if not self.account_url:
                raise DatastoreError(
                    f"datastore '{self.name}': no account_url and no connection string. Add "
                    "account_url (https://<account>.blob.core.windows.net) to the catalog entry.",
                    reason="invalid request",
                )
            credential = self.client_credential()
            if hasattr(credential, "get_token") and urlsplit(self.account_url).scheme != "https":
                # The SDK refuses to send a bearer token over http; say so before any request.
                raise DatastoreError(
                    f"datastore '{self.name}' ({self.describe()}): a service principal or "
                    "identity needs an https account_url. Use https, or an account key or SAS.",
                    reason="invalid request",
                )
            return ContainerClient(self.account_url, self.container, credential, **options)
        except ValueError as error:
            raise self._error(
                "invalid request",
                "connecting",
                "",
                error,
                "check account_url, the container name and the connection string's format",
            ) from None

    def _endpoint(self) -> str:
        """The account's Blob endpoint without a query string (which could hold a SAS)."""
        if self.account_url:
            return urlunsplit(urlsplit(self.account_url)._replace(query="", fragment=""))
        try:
            value = self.secret("connection_string") or ""
        except DatastoreError:
            return "the account of its connection string"
        settings = {
            key.strip().lower(): setting.strip()
            for key, _, setting in (part.partition("=") for part in value.split(";"))
        }
        if settings.get("usedevelopmentstorage", "").lower() == "true":
            return f"{AZURITE_ENDPOINT} (from the connection string)"
        endpoint = settings.get("blobendpoint")
        if not endpoint and settings.get("accountname"):
            protocol = settings.get("defaultendpointsprotocol", "https")
            suffix = settings.get("endpointsuffix", "core.windows.net")
            endpoint = f"{protocol}://{settings['accountname']}.blob.{suffix}"
        if not endpoint:
            return "the account of its connection string"
        public = urlunsplit(urlsplit(endpoint)._replace(query="", fragment=""))
        return self.scrub(f"{public} (from the connection string)")
