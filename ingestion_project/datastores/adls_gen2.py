"""Azure Data Lake Storage Gen2: one file system of a storage account with a hierarchical namespace.

``endpoint: dfs`` (the default) talks the Data Lake API, whose rename is atomic, so a write lands
in a hidden temporary file and is renamed into place; the datalake SDK itself sends reads and
file properties to the account's blob host. ``endpoint: blob`` lists, reads and writes over the
Blob endpoint only: for networks that reach only that endpoint and for emulators such as
Azurite, which have no DFS endpoint.
"""

from __future__ import annotations

import io
import posixpath
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import IO, Any, ClassVar, Literal, cast
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceModifiedError, ResourceNotFoundError
from azure.core.paging import PageIterator
from azure.storage.blob import BlobProperties, ContainerClient
from azure.storage.filedatalake import DataLakeFileClient, FileSystemClient, PathProperties
from pydantic import Field

from ingestion_project.datastores.azure_common import (
    AzureStorageDatastore,
    ChunkStream,
    is_folder_marker,
    is_listed,
    storage_error_code,
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

# Reads stream in pieces of this size, and writes append in pieces of it, so memory stays bounded.
CHUNK_BYTES = 4 * 1024 * 1024
# Error codes that mean "no such file" (DFS and Blob spellings), as opposed to "no such filesystem".
MISSING_FILE_CODES = frozenset({"PathNotFound", "BlobNotFound"})


def swap_host_label(url: str, old: str, new: str) -> str:
    """Turn ``<acct>.dfs.core...`` into ``<acct>.blob.core...`` (or back); other URLs unchanged."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f".{old}.", f".{new}.", 1)))


class AdlsGen2Datastore(AzureStorageDatastore):
    """A Data Lake Storage Gen2 file system, over its DFS endpoint or its Blob endpoint.

    With ``endpoint="blob"`` writes and deletes go through the Blob API too: Put Blob (or Put
    Block List for large files) makes the new content visible at once, and ``overwrite=False``
    sends ``If-None-Match: *`` so the service itself refuses to replace an existing file.
    """

    kind: ClassVar[str] = "adls_gen2"
    root_field: ClassVar[str] = "filesystem"
    pages_listings: ClassVar[bool] = True

    filesystem: str = Field(description="The file system (container) that holds the data.")
    endpoint: Literal["dfs", "blob"] = Field(
        default="dfs",
        description="'dfs' for the Data Lake API; 'blob' to list, read and write over Blob.",
    )

    def describe(self) -> str:
        where = self._public_url() or "the account of its connection string"
        root = self.prefix.strip("/")
        inside = f"/{root}" if root else ""
        return f"ADLS Gen2 {where}, filesystem '{self.filesystem}'{inside} over {self.endpoint}"

    def missing_root_advice(self) -> str:
        return (
            f"create file system '{self.filesystem}' in the storage account, or fix 'filesystem' "
            "in the catalog entry"
        )

    def check(self) -> None:
        """List one entry at the root: proves endpoint, credential, file system and list access.

        Listing works with a container-scoped SAS, where reading the file system's properties
        does not, and on the dfs endpoint it exercises the Data Lake API itself.
        """
        root = self.prefix.strip("/")
        if self.endpoint == "blob":
            with self._container() as container, self.translating_errors("checking access"):
                pages = container.list_blobs(
                    name_starts_with=f"{root}/" if root else None, results_per_page=1
                ).by_page()
                next(pages, None)
            return
        with self._filesystem() as filesystem, self.translating_errors("checking access"):
            pages = filesystem.get_paths(
                path=root or None, recursive=False, max_results=1
            ).by_page()
            try:
                next(pages, None)
            except ResourceNotFoundError as error:
                if storage_error_code(error) != "PathNotFound":
                    raise  # a missing root folder is a fresh store; anything else is not

    def list_files(self, pattern: str) -> list[FileInfo]:
        clean = validate_glob(pattern, store=self.name)
        start = glob_prefix(clean)
        directory = self.full_path(start) if start else self.prefix.strip("/")
        if self.endpoint == "blob":
            found = self._list_blob(directory, pattern)
        else:
            found = self._list_dfs(directory, pattern)
        matched = [info for info in found if glob_matches(clean, info.path)]
        return sorted(matched, key=lambda info: info.path)

    def _list_dfs(self, directory: str, pattern: str) -> list[FileInfo]:
        found: list[FileInfo] = []
        with self._filesystem() as filesystem, self.translating_errors("listing", pattern):
            try:
                for item in filesystem.get_paths(path=directory or None, recursive=True):
                    relative = self.relative_path(item.name)
                    if item.is_directory or not is_listed(relative):
                        continue
                    found.append(
                        self._info(relative, item.content_length, item.last_modified, item.etag)
                    )
            except ResourceNotFoundError as error:
                if storage_error_code(error) != "PathNotFound":
                    raise  # the start folder may not exist (or be a file): an empty listing
        return found

    def _list_blob(self, directory: str, pattern: str) -> list[FileInfo]:
        found: list[FileInfo] = []
        starts_with = f"{directory}/" if directory else None
        with self._container() as container, self.translating_errors("listing", pattern):
            for blob in container.list_blobs(name_starts_with=starts_with, include=["metadata"]):
                relative = self.relative_path(blob.name)
                if is_folder_marker(blob.metadata) or not is_listed(relative):
                    continue
                found.append(self._info(relative, blob.size, blob.last_modified, blob.etag))
        return found

    def listing_page(
        self, pattern: str, token: str | None = None, page_size: int = LISTING_PAGE_SIZE
    ) -> ListingPage:
        """One List Blobs (or List Paths) call from ``token``: the matching files, and the next."""
        clean = validate_glob(pattern, store=self.name)
        start = glob_prefix(clean)
        directory = self.full_path(start) if start else self.prefix.strip("/")
        if self.endpoint == "blob":
            found, next_token = self._blob_page(directory, pattern, token, page_size)
        else:
            found, next_token = self._dfs_page(directory, pattern, token, page_size)
        regex = glob_regex(clean)
        matched = [entry for entry in found if regex.fullmatch(entry[0]) is not None]
        return ListingPage(matched, next_token or None)

    def _blob_page(
        self, directory: str, pattern: str, token: str | None, page_size: int
    ) -> tuple[list[tuple[str, int, str]], str | None]:
        found: list[tuple[str, int, str]] = []
        with self._container() as container, self.translating_errors("listing", pattern):
            listing = container.list_blobs(
                name_starts_with=f"{directory}/" if directory else None,
                include=["metadata"],
                results_per_page=page_size,
            )
            # The SDK types by_page as an Iterator; it is a PageIterator, which has the token.
            pages = cast(PageIterator[BlobProperties], listing.by_page(continuation_token=token))
            for blob in next(pages):
                relative = self.relative_path(blob.name)
                if is_folder_marker(blob.metadata) or not is_listed(relative):
                    continue
                found.append((relative, int(blob.size or 0), str(blob.etag or "").strip('"')))
        return found, pages.continuation_token

    def _dfs_page(
        self, directory: str, pattern: str, token: str | None, page_size: int
    ) -> tuple[list[tuple[str, int, str]], str | None]:
        found: list[tuple[str, int, str]] = []
        with self._filesystem() as filesystem, self.translating_errors("listing", pattern):
            paths = filesystem.get_paths(
                path=directory or None, recursive=True, max_results=page_size
            )
            pages = cast(PageIterator[PathProperties], paths.by_page(continuation_token=token))
            try:
                for item in next(pages):
                    relative = self.relative_path(item.name)
                    if item.is_directory or not is_listed(relative):
                        continue
                    found.append(
                        (relative, int(item.content_length or 0), str(item.etag or "").strip('"'))
                    )
            except ResourceNotFoundError as error:
                if storage_error_code(error) != "PathNotFound":
                    raise  # the start folder may not exist (or be a file): an empty listing
                return [], None
        return found, pages.continuation_token

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        target = self.full_path(path)
        if self.endpoint == "blob":
            with self._container() as container:
                with self.translating_errors("reading", path):
                    downloader = container.download_blob(target)
                    self._refuse_folder(path, downloader.properties.metadata)
                with self._reader(downloader.chunks(), path) as reader:
                    yield reader
            return
        with self._filesystem() as filesystem:
            with self.translating_errors("reading", path):
                downloader = filesystem.get_file_client(target).download_file()
                self._refuse_folder(path, downloader.properties.metadata)
            with self._reader(downloader.chunks(), path) as reader:
                yield reader

    def _reader(self, chunks: Iterator[bytes], path: str) -> IO[bytes]:
        raw = ChunkStream(chunks, lambda: self.translating_errors("reading", path))
        return io.BufferedReader(raw, buffer_size=min(CHUNK_BYTES, 1 << 20))

    def write_bytes(self, path: str, data: bytes, *, overwrite: bool = True) -> None:
        """Write atomically: nothing is visible under ``path`` until the whole content is."""
        target = self.full_path(path)
        if self.endpoint == "blob":
            with self._container() as container, self.translating_errors("writing", path):
                container.upload_blob(target, data, overwrite=overwrite)
            return
        directory, name = posixpath.split(target)
        temporary = posixpath.join(directory, f".tmp-{uuid.uuid4().hex}-{name}")
        with self._filesystem() as filesystem, self.translating_errors("writing", path):
            self._write_then_rename(filesystem, temporary, target, path, data, overwrite)

    def _write_then_rename(
        self,
        filesystem: FileSystemClient,
        temporary: str,
        target: str,
        path: str,
        data: bytes,
        overwrite: bool,
    ) -> None:
        staged = filesystem.get_file_client(temporary)
        created = False
        try:
            staged.create_file()
            created = True
            for offset in range(0, len(data), CHUNK_BYTES):
                piece = data[offset : offset + CHUNK_BYTES]
                staged.append_data(piece, offset=offset, length=len(piece))
            staged.flush_data(len(data))
            # A rename replaces the destination unless If-None-Match: * makes it conditional:
            # then of two writers racing for the same name, the service lets exactly one win.
            condition = None if overwrite else MatchConditions.IfMissing
            try:
                staged.rename_file(f"{self.filesystem}/{target}", match_condition=condition)
            except ResourceModifiedError:
                raise FileExistsError(
                    f"datastore '{self.name}': '{path}' already exists."
                ) from None
            created = False
        finally:
            if created:
                self._discard(staged)

    def _discard(self, staged: DataLakeFileClient) -> None:
        try:
            staged.delete_file()
        except AzureError:
            dg.get_dagster_logger().warning(
                "datastore '%s': could not remove the temporary file '%s' after a failed write; "
                "it is hidden from listings and can be deleted by hand.",
                self.name,
                staged.path_name,
            )

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except FileNotFoundError:
            return False
        return True

    def delete(self, path: str) -> None:
        """Remove one file; a file that is already gone is not an error."""
        target = self.full_path(path)
        if self.endpoint == "blob":
            with self._container() as container, self.translating_errors("deleting", path):
                self._ignoring_missing_file(lambda: container.delete_blob(target))
        else:
            with self._filesystem() as filesystem, self.translating_errors("deleting", path):
                self._ignoring_missing_file(filesystem.get_file_client(target).delete_file)

    def _ignoring_missing_file(self, call: Callable[[], object]) -> None:
        try:
            call()
        except ResourceNotFoundError as error:
            if storage_error_code(error) not in MISSING_FILE_CODES:
                raise  # a missing filesystem is a configuration error, not a deleted file

    def stat(self, path: str) -> FileInfo:
        target = self.full_path(path)
        relative = normalize_relative_path(path, store=self.name)
        if self.endpoint == "blob":
            with self._container() as container, self.translating_errors("reading", path):
                blob = container.get_blob_client(target).get_blob_properties()
        else:
            with self._filesystem() as filesystem, self.translating_errors("reading", path):
                blob = filesystem.get_file_client(target).get_file_properties()
        self._refuse_folder(path, blob.metadata)
        return self._info(relative, blob.size, blob.last_modified, blob.etag)

    def _refuse_folder(self, path: str, metadata: dict[str, str] | None) -> None:
        if is_folder_marker(metadata):
            raise FileNotFoundError(f"datastore '{self.name}': '{path}' is a folder, not a file.")

    def _info(self, relative: str, size: int | None, modified: datetime, etag: str) -> FileInfo:
        return FileInfo(
            path=relative, size=int(size or 0), modified=utc(modified), etag=etag.strip('"')
        )

    def _public_url(self) -> str | None:
        """The account URL without its query string, which could hold a SAS token."""
        if not self.account_url:
            return None
        return urlunsplit(urlsplit(self.account_url)._replace(query="", fragment=""))

    def _account_url(self, service: Literal["dfs", "blob"]) -> str:
        if not self.account_url:
            raise DatastoreError(
                f"datastore '{self.name}': no account_url and no connection string. Add "
                "account_url (https://<account>.dfs.core.windows.net) to the catalog entry.",
                reason="invalid request",
            )
        other = "blob" if service == "dfs" else "dfs"
        return swap_host_label(self.account_url, other, service)

    @contextmanager
    def _filesystem(self) -> Iterator[FileSystemClient]:
        options = {
            **self.pipeline_options(),
            "max_single_get_size": CHUNK_BYTES,
            "max_chunk_get_size": CHUNK_BYTES,
        }
        with self._building_client():
            if self.credential.connection_string:
                client = FileSystemClient.from_connection_string(
                    self.secret("connection_string") or "", self.filesystem, **options
                )
            else:
                url = self._account_url("dfs")
                client = FileSystemClient(url, self.filesystem, self._credential(url), **options)
        try:
            yield client
        finally:
            self._close(client)

    @contextmanager
    def _container(self) -> Iterator[ContainerClient]:
        options = {
            **self.pipeline_options(),
            "max_single_get_size": CHUNK_BYTES,
            "max_chunk_get_size": CHUNK_BYTES,
            "max_single_put_size": CHUNK_BYTES,
            "max_block_size": CHUNK_BYTES,
        }
        with self._building_client():
            if self.credential.connection_string:
                client = ContainerClient.from_connection_string(
                    self.secret("connection_string") or "", self.filesystem, **options
                )
            else:
                url = self._account_url("blob")
                client = ContainerClient(url, self.filesystem, self._credential(url), **options)
        try:
            yield client
        finally:
            self._close(client)

    def _credential(self, url: str) -> Any:
        credential = self.client_credential()
        if hasattr(credential, "get_token") and urlsplit(url).scheme != "https":
            # The SDK refuses to send a bearer token over http; say so before any request.
            raise DatastoreError(
                f"datastore '{self.name}' ({self.describe()}): a service principal or identity "
                "needs an https account_url. Use https, or an account key or SAS.",
                reason="invalid request",
            )
        return credential

    def _close(self, client: FileSystemClient | ContainerClient) -> None:
        """Close the connections we opened; a test's transport belongs to the test."""
        if self._transport is None:
            client.close()

    @contextmanager
    def _building_client(self) -> Iterator[None]:
        """A malformed URL or connection string is a configuration error, said without secrets."""
        try:
            yield
        except ValueError as error:
            raise self._error(
                "invalid request",
                "connecting",
                "",
                error,
                "check account_url and the connection string's format",
            ) from None
