"""The images of an image-dataset version: which files they are, their sizes, and their URLs.

A labeler's browser fetches each image from the URL in its task. Azure Blob images get a
read-only SAS URL we sign for a limited time; local images are served by Label Studio's
local-files view; public HTTP images keep their own URL; any store can be served from a web
server of the user's (``image_urls.base_url``).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

from ingestion_project.datastores.azure_blob import AzureBlobDatastore
from ingestion_project.datastores.base import FileDatastore, FileInfo
from ingestion_project.datastores.http import HttpDatastore
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.labeling.spec import ImageUrlsSpec

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"})


class ImageError(Exception):
    """An image cannot be read or given a URL; the message says what to do."""


@dataclass(frozen=True)
class ImageFile:
    """One image of a version: its path in the image dataset, and the pinned file holding it."""

    path: str
    file: FileInfo


@dataclass(frozen=True)
class ImageUrl:
    """Where a browser reads an image, and until when (None: it does not expire)."""

    url: str
    expires: datetime | None


def is_image(path: str) -> bool:
    return posixpath.splitext(path)[1].lower() in IMAGE_SUFFIXES


def image_url(
    image: ImageFile, store: FileDatastore, urls: ImageUrlsSpec, *, where: str
) -> ImageUrl:
    """The URL a labeler's browser loads ``image`` from (see the module's docstring)."""
    stored = image.file.path
    if urls.base_url:
        return ImageUrl(f"{urls.base_url.rstrip('/')}/{quote(stored)}", None)
    if isinstance(store, AzureBlobDatastore):
        lifetime = timedelta(seconds=urls.expiry_seconds)
        return ImageUrl(store.signed_read_url(stored, lifetime), datetime.now(UTC) + lifetime)
    if isinstance(store, LocalDatastore):
        root, document_root = served_local_root(store, urls, where=where)
        served = posixpath.relpath(posixpath.join(root, stored), document_root)
        return ImageUrl(f"/data/local-files/?{urlencode({'d': served})}", None)
    if isinstance(store, HttpDatastore):
        return ImageUrl(f"{store.base_url.rstrip('/')}/{quote(stored)}", None)
    raise ImageError(
        f"{where}: images in datastore '{store.name}' ({store.describe()}) cannot reach a "
        "browser by themselves. Serve them from a web server and set image_urls.base_url, or "
        "keep them in a local, Azure Blob or HTTP datastore."
    )


def served_local_root(store: LocalDatastore, urls: ImageUrlsSpec, *, where: str) -> tuple[str, str]:
    """The local datastore's root as Label Studio sees it, and Label Studio's document root."""
    document_root = urls.local_files_document_root
    if document_root is None:
        raise ImageError(
            f"{where}: Label Studio serves local images from under its "
            "LOCAL_FILES_DOCUMENT_ROOT: set image_urls.local_files_document_root to it (and start "
            "Label Studio with LOCAL_FILES_SERVING_ENABLED=true), or set image_urls.base_url."
        )
    root = posixpath.normpath(urls.local_files_root or store.root)
    document_root = posixpath.normpath(document_root)
    if not root.startswith(document_root.rstrip("/") + "/"):
        raise ImageError(
            f"{where}: datastore '{store.name}' has its root at {root}, which is not inside Label "
            f"Studio's document root {document_root}: Label Studio serves only a folder inside "
            "it. Move the images under it, or set image_urls.local_files_root to where Label "
            "Studio sees them."
        )
    return root, document_root


def image_size(image: ImageFile, store: FileDatastore, *, where: str) -> tuple[int, int]:
    """(width, height) in pixels, from the file's header: COCO boxes are in pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with store.open_read(image.file.path) as stream, Image.open(stream) as opened:
            return int(opened.width), int(opened.height)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ImageError(
            f"{where}: '{image.path}' is not an image Pillow can read ({error}). Remove it from "
            "the image dataset, or narrow the dataset's path to image files."
        ) from None
