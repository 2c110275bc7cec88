"""Azure Files shares as a datastore: real folders, listings with ETags, atomic writes by rename.

Azure Files has no create-if-absent upload, so a write lands under a hidden temporary name in the
target directory and is then renamed onto the final name. The rename refuses an existing target
unless told to replace it, which makes ``overwrite=False`` atomic at the service, and a write that
fails part-way leaves nothing under the final name.
"""

from __future__ import annotations

import io
import logging
import posixpath
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from typing import IO, Any, ClassVar
from urllib.parse import urlsplit

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.fileshare import (
    FileProperties,
    ShareClient,
    ShareFileClient,
    ShareServiceClient,
)
from pydantic import Field, PrivateAttr

from ingestion_project.datastores.azure_common import (
    AzureStorageDatastore,
    ChunkStream,
    storage_error_code,
)
from ingestion_project.datastores.base import (
    DatastoreError,
    FileInfo,
    glob_matches,
    glob_prefix,
    normalize_relative_path,
    validate_glob,
)

_LOG = logging.getLogger(__name__)

# Download and upload in 4 MiB ranges: Put Range takes at most 4 MiB, and reads stay bounded.
_CHUNK_BYTES = 4 * 1024 * 1024
# Ask the listing for Last-Modified and ETag so that fingerprints need no call per file.
_LIST_INCLUDE = ["Timestamps", "Etag"]
# Error codes that mean "no such file or folder", as opposed to ShareNotFound.
_MISSING_CODES = frozenset({"ResourceNotFound", "ParentNotFound"})
_TEMP_PREFIX = ".tmp-"


class AzureFileShareDatastore(AzureStorageDatastore):
    """Files in one Azure Files share under ``prefix``, like Azure ML's ``azure_file`` datastore.

    Listings walk real directories and take size, Last-Modified and ETag from the listing itself,
    so fingerprinting a dataset reads no file data. Names starting with '.' are left out, as the
    local store does; the temporary files of writes in flight are named that way.
    """

    kind: ClassVar[str] = "azure_file_share"
    root_field: ClassVar[str] = "share"

    share: str = Field(description="Name of the Azure Files share.")

    _clients: Any = PrivateAttr(default=None)

    def describe(self) -> str:
        where = (
            _public_url(self.account_url)
            if self.account_url
            else "the account of its connection string"
        )
        root = self.prefix.strip("/")
        folder = f", folder '{root}'" if root else ""
        return f"Azure Files share '{self.share}' at {where}{folder}"

    def check(self) -> None:
        """Read the share's properties: proves the share exists and the credential opens it."""
        share = self._share_client()
        with self.translating_errors("checking the share"):
            share.get_share_properties()

    def list_files(self, pattern: str) -> list[FileInfo]:
        clean = validate_glob(pattern, store=self.name)
        segments = clean.split("/")
        share = self._share_client()
        found: list[FileInfo] = []
        pending = [glob_prefix(clean)]
        with self.translating_errors("listing", pattern):
            while pending:
                directory = pending.pop()
                for entry in self._entries(share, directory):
                    if entry.name.startswith("."):
                        continue
                    relative = f"{directory}/{entry.name}" if directory else entry.name
                    if entry.is_directory:
                        if _may_hold_matches(segments, relative.split("/")):
                            pending.append(relative)
                    elif glob_matches(clean, relative):
                        found.append(self._listed_info(share, relative, entry))
        return sorted(found, key=lambda info: info.path)

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        client = self._file_client(path)
        with self.translating_errors("reading", path):
            downloader = client.download_file()
        raw = ChunkStream(downloader.chunks(), lambda: self.translating_errors("reading", path))
        with io.BufferedReader(raw, buffer_size=_CHUNK_BYTES) as stream:
            yield stream

    def write_bytes(self, path: str, data: bytes, *, overwrite: bool = True) -> None:
        target = self.full_path(path)
        parent, name = posixpath.split(target)
        share = self._share_client()
        temp_name = f"{_TEMP_PREFIX}{uuid.uuid4().hex[:16]}-{name}"
        temp = share.get_file_client(posixpath.join(parent, temp_name))
        with self.translating_errors("writing", path):
            try:
                self._upload(share, temp, parent, data)
                # replace_if_exists=False makes the service refuse an existing target: the
                # create-if-absent that a single upload cannot give.
                temp.rename_file(target, overwrite=overwrite)
            except BaseException:
                self._discard(temp)
                raise

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except FileNotFoundError:
            return False
        return True

    def delete(self, path: str) -> None:
        client = self._file_client(path)
        with self.translating_errors("deleting", path):
            try:
                client.delete_file()
            except ResourceNotFoundError as error:
                if storage_error_code(error) not in _MISSING_CODES:
                    raise

    def stat(self, path: str) -> FileInfo:
        relative = normalize_relative_path(path, store=self.name)
        client = self._file_client(path)
        with self.translating_errors("reading the properties of", path):
            properties = client.get_file_properties()
        return _file_info(relative, properties)

    def _share_client(self) -> ShareClient:
        """One client per store and settings: credentials (and their tokens) are reused."""
        key = self.settings_key()
        cached = self._clients
        if cached is not None and cached[0] == key:
            return cached[1]
        client = self._service_client().get_share_client(self.share)
        self._clients = (key, client)
        return client

    def _service_client(self) -> ShareServiceClient:
        options: dict[str, Any] = {
            **self.pipeline_options(),
            "max_single_get_size": _CHUNK_BYTES,
            "max_chunk_get_size": _CHUNK_BYTES,
            "max_range_size": _CHUNK_BYTES,
        }
        connection_string = self.secret("connection_string")
        try:
            if connection_string:
                return ShareServiceClient.from_connection_string(connection_string, **options)
            if not self.account_url:
                raise DatastoreError(
                    f"datastore '{self.name}': no account_url and no connection string. "
                    "Add one of them to the catalog entry.",
                    reason="invalid request",
                )
            credential = self.client_credential()
            if hasattr(credential, "get_token"):
                # Azure Files serves OAuth requests for data only with a declared backup intent.
                options["token_intent"] = "backup"
            return ShareServiceClient(self.account_url, credential=credential, **options)
        except ValueError as error:
            raise DatastoreError(
                self.scrub(
                    f"datastore '{self.name}': cannot use the account settings: {error}. "
                    "Fix account_url or the connection string."
                ),
                reason="invalid request",
            ) from None

    def _file_client(self, path: str) -> ShareFileClient:
        """The client of one file; refuses unsafe paths before any request is built."""
        return self._share_client().get_file_client(self.full_path(path))

    def _share_path(self, relative: str) -> str:
        return "/".join(part for part in (self.prefix.strip("/"), relative) if part)

    def _entries(self, share: ShareClient, directory: str) -> list[Any]:
        client = share.get_directory_client(self._share_path(directory))
        try:
            return list(client.list_directories_and_files(include=_LIST_INCLUDE))
        except ResourceNotFoundError as error:
            if storage_error_code(error) in _MISSING_CODES:
                return []  # a folder nobody wrote to yet holds no files
            raise

    def _listed_info(self, share: ShareClient, relative: str, entry: Any) -> FileInfo:
        if entry.etag and entry.last_modified:
            return _file_info(relative, entry)
        # A service that ignored include=Timestamps,Etag: ask this one file's properties (still
        # metadata, never data).
        client = share.get_file_client(self._share_path(relative))
        return _file_info(relative, client.get_file_properties())

    def _upload(self, share: ShareClient, temp: ShareFileClient, parent: str, data: bytes) -> None:
        """Create the temporary file and fill it; make its folders only when they are missing."""
        try:
            temp.upload_file(data)
        except ResourceNotFoundError as error:
            if storage_error_code(error) != "ParentNotFound":
                raise
            self._make_directories(share, parent)
            temp.upload_file(data)

    def _make_directories(self, share: ShareClient, parent: str) -> None:
        current = ""
        for segment in parent.split("/"):
            current = f"{current}/{segment}" if current else segment
            try:
                share.get_directory_client(current).create_directory()
            except ResourceExistsError:
                continue  # made earlier, or by a concurrent writer

    def _discard(self, temp: ShareFileClient) -> None:
        """Remove a temporary file after a failed write; its '.' name hides it if this fails."""
        try:
            temp.delete_file()
        except ResourceNotFoundError:
            return  # never created, or already renamed
        except AzureError as error:
            _LOG.warning(
                "datastore '%s': could not remove the temporary file '%s' after a failed write: %s",
                self.name,
                temp.file_path,
                self.scrub(str(error).splitlines()[0] if str(error) else type(error).__name__),
            )


def _may_hold_matches(pattern: list[str], directory: list[str]) -> bool:
    """Whether files under ``directory`` can match the glob: the walk descends only there."""
    for index, segment in enumerate(directory):
        if index >= len(pattern):
            return False
        wanted = pattern[index]
        if wanted == "**":
            return True
        if index == len(pattern) - 1:
            return False  # the last segment names files, and this is a folder
        if not glob_matches(wanted, segment):
            return False
    return True


def _file_info(relative: str, properties: FileProperties) -> FileInfo:
    modified = properties.last_modified
    return FileInfo(
        path=relative,
        size=int(properties.size),
        modified=modified.astimezone(UTC) if modified.tzinfo else modified.replace(tzinfo=UTC),
        # Listings and HEAD responses quote ETags alike today; strip quotes so they always agree.
        etag=str(properties.etag).strip('"'),
    )


def _public_url(url: str) -> str:
    """The account URL without a query (a SAS token) or user info, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"
