"""The one small interface every file-like datastore implements."""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import posixpath
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, ClassVar, Self
from urllib.parse import parse_qsl, urlsplit

import dagster as dg
from pydantic import ConfigDict, Field, PrivateAttr
from pydantic.fields import FieldInfo

from ingestion_project.datastores.deadline import SYSTEM_CLOCK, Clock

# Datastore settings may hold secrets (or URLs with them): validation errors never echo input.
HIDE_INPUT = ConfigDict(hide_input_in_errors=True)
# Marks a field whose value is a secret: the catalog takes it only as {env: NAME}.
SECRET_MARK = "ingestion_secret"
# Query parameters that carry credentials when pasted into a URL (SAS signatures, tokens, keys).
_CREDENTIAL_PARAMETERS = frozenset(
    {"sig", "signature", "token", "access_token", "api_key", "apikey", "key", "password", "secret"}
)


class DatastoreError(Exception):
    """A datastore could not do what was asked; the message says which store and what to do.

    ``reason`` is a short class of failure for reports (``ingestion datastores check``):
    "authentication failed", "not found", "unreachable", "timed out", "permission denied",
    "read-only", "invalid request" or "error".
    """

    def __init__(self, message: str, *, reason: str = "error") -> None:
        super().__init__(message)
        self.reason = reason


class UnsafePathError(DatastoreError, ValueError):
    """A path tried to leave the datastore's root (``..``, absolute paths)."""


@dataclass(frozen=True)
class FileInfo:
    """One file as a listing reports it: enough to fingerprint data without reading it."""

    path: str
    size: int
    modified: datetime
    etag: str

    def to_dict(self) -> dict[str, str | int]:
        return {
            "path": self.path,
            "size": self.size,
            "modified": self.modified.isoformat(),
            "etag": self.etag,
        }

    @classmethod
    def from_dict(cls, data: dict[str, str | int]) -> FileInfo:
        return cls(
            path=str(data["path"]),
            size=int(data["size"]),
            modified=datetime.fromisoformat(str(data["modified"])),
            etag=str(data["etag"]),
        )


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def microseconds_since_epoch(moment: datetime) -> int:
    """A listing time as whole microseconds since 1970 UTC (naive times are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // _MICROSECOND


def utc_from_microseconds(microseconds: int) -> datetime:
    """The UTC time ``microseconds`` after 1970, exactly.

    Below 2**52 µs (the year 2112) the float ``microseconds / 1e6`` is within 0.5 µs, so
    ``fromtimestamp``, which rounds to the microsecond, gives the exact time, in 60 % of the
    time of adding a ``timedelta``.
    """
    if 0 <= microseconds < _FLOAT_EXACT:
        return datetime.fromtimestamp(microseconds / 1e6, UTC)
    return EPOCH + timedelta(microseconds=microseconds)


_FLOAT_EXACT = 2**52


@dataclass(frozen=True, slots=True)
class FileColumns:
    """A listing as four columns in path order, with no object per file.

    What registering a version over 10,000 files needs from a store: building a ``FileInfo``
    and a ``datetime`` per file added about half again to the time of listing the files.
    ``modified_us`` is microseconds since 1970 UTC.
    """

    paths: list[str]
    sizes: list[int]
    modified_us: list[int]
    etags: list[str]

    def __len__(self) -> int:
        return len(self.paths)

    @classmethod
    def of(cls, files: Iterable[FileInfo | Any]) -> FileColumns:
        """The columns of ``files`` (anything with their four fields), in their order."""
        listed = list(files)
        return cls(
            [info.path for info in listed],
            [info.size for info in listed],
            [microseconds_since_epoch(info.modified) for info in listed],
            [info.etag for info in listed],
        )

    def take(self, indices: Iterable[int]) -> FileColumns:
        """The files at ``indices``, in that order."""
        chosen = list(indices)
        return FileColumns(
            [self.paths[index] for index in chosen],
            [self.sizes[index] for index in chosen],
            [self.modified_us[index] for index in chosen],
            [self.etags[index] for index in chosen],
        )

    def infos(self) -> list[FileInfo]:
        moments = map(utc_from_microseconds, self.modified_us)
        return list(map(FileInfo, self.paths, self.sizes, moments, self.etags))

    def digest(self) -> str:
        """``listing_digest`` of these files (the fingerprint of the listing).

        Columns are in path order, and a listing names a path once, so the rows are hashed as
        they are: checking the paths' order costs a tenth of sorting the rows again.
        """
        rows = zip(self.paths, self.sizes, self.etags, strict=True)
        if self.paths != sorted(self.paths):
            return listing_digest(rows)
        return _hashed_rows(rows)


_GLOB_CHARS = re.compile(r"[*?\[]")


MISSING_SECRET = "missing secret"
# Fingerprints of listings read a page at a time (see set_digest) start with this.
SET_FINGERPRINT_PREFIX = "set:"
_SET_MODULUS = 1 << 256
# Names per List Blobs / List Paths page: the services' maximum.
LISTING_PAGE_SIZE = 5000


def listing_digest(entries: Iterable[tuple[str, int, str]]) -> str:
    """Hash of (path, size, etag) of every file in path order: any change of a file changes it."""
    return _hashed_rows(sorted(entries))


def _hashed_rows(entries: Iterable[tuple[str, int, str]]) -> str:
    """sha256 of one line per entry, in the order given.

    One update a line was measured faster than joining all the lines and hashing them once.
    """
    digest = hashlib.sha256()
    for path, size, etag in entries:
        digest.update(f"{path}\t{size}\t{etag}\n".encode())
    return digest.hexdigest()


def set_digest(entries: Iterable[tuple[str, int, str]], start: int = 0) -> int:
    """``start`` plus each file's sha256 of (path, size, etag), mod 2**256.

    A sum does not depend on order, so a listing read page by page across sensor ticks, split
    wherever the service ends a page, adds up to the value of the whole listing.
    """
    total = start
    for path, size, etag in entries:
        total += int.from_bytes(hashlib.sha256(f"{path}\t{size}\t{etag}".encode()).digest())
    return total % _SET_MODULUS


def set_fingerprint(digest: int) -> str:
    """A finished ``set_digest``, marked: a ``listing_digest`` of the same files differs."""
    return f"{SET_FINGERPRINT_PREFIX}{digest:064x}"


@dataclass(frozen=True)
class ListingPage:
    """The matching files of one page of a listing, and the token that continues it (None: done)."""

    entries: list[tuple[str, int, str]]
    next_token: str | None = None


def secret_field(description: str, *, required: bool = False) -> Any:
    """A field that holds a secret: a ``dg.EnvVar`` in config, the value only inside a run.

    ``repr=False`` keeps the value out of reprs, logs and tracebacks; the mark tells the catalog
    to accept only ``{env: NAME}`` for it, never a literal.
    """
    return Field(
        default=... if required else None,
        description=description,
        repr=False,
        json_schema_extra={SECRET_MARK: True},
    )


def is_secret_field(info: FieldInfo) -> bool:
    extra = info.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get(SECRET_MARK))


def refuse_url_credentials(value: str, *, query_allowed: bool = True) -> str:
    """Refuse a URL or host that carries a credential (``user:pass@``, a SAS or token parameter).

    The value is never echoed: it may hold a password. Secrets belong in their own fields.
    """
    text = value.strip()
    parts = urlsplit(text if "//" in text else f"//{text}")
    if "@" in parts.netloc:
        raise ValueError(
            "carries credentials ('user:password@host'; value not shown). Give the host alone "
            "and the secret in its own field as {env: VARIABLE_NAME}"
        )
    names = {name.lower() for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    if parts.query and (not query_allowed or names & _CREDENTIAL_PARAMETERS):
        raise ValueError(
            "carries a query string that may hold a credential (value not shown). Give the URL "
            "without '?...' and the SAS or token in its own field as {env: VARIABLE_NAME}"
        )
    return value


def require_http_url(value: str, *, query_allowed: bool = True) -> str:
    """An http(s) URL with a host and no embedded credentials."""
    if not re.match(r"^https?://[^/\s]+", value.strip()):
        raise ValueError(
            f"'{value}' is not an http(s) URL (e.g. https://myaccount.blob.core.windows.net)"
        )
    return refuse_url_credentials(value, query_allowed=query_allowed)


def resolve_secret(value: str | None, *, store: str, field: str) -> str | None:
    """The value of a secret field, resolving a ``dg.EnvVar`` when used outside a Dagster run.

    Inside a run Dagster has already replaced the EnvVar by its value; the CLI and tests build
    resources directly, where the field still holds the EnvVar (the variable's name).
    """
    if isinstance(value, dg.EnvVar):
        resolved = value.get_value()
        if resolved is None:
            raise DatastoreError(
                f"datastore '{store}': environment variable {value.env_var_name} is not set "
                f"(it holds the {field}). Set it in the environment of the process that uses the "
                "datastore (the run worker, or a .env file in the project root for `dg dev` and "
                "the `ingestion` command), then try again.",
                reason=MISSING_SECRET,
            )
        return resolved
    return value


class CatalogDatastore:
    """What the catalog needs of a datastore resource class: its kind and how to build one.

    A datastore's fields are written once, on its resource class; the catalog derives the YAML
    entry from them (see ``ingestion_project.catalog.datastore_entries``).
    """

    kind: ClassVar[str]
    # Fields the catalog may leave out although the resource needs them (filled by from_catalog).
    catalog_defaults: ClassVar[dict[str, Any]] = {}

    @classmethod
    def from_catalog(cls, name: str, values: dict[str, Any], home: Path) -> Self:
        """The resource for catalog entry ``name``; ``home`` is INGESTION_HOME."""
        return cls(name=name, **values)  # type: ignore[call-arg]  # a resource class


def normalize_relative_path(path: str, *, store: str) -> str:
    """Return ``path`` as a clean relative POSIX path, refusing anything that escapes the root."""
    if not path or not path.strip():
        raise UnsafePathError(f"datastore '{store}': empty path. Give a path relative to its root.")
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path):
        raise UnsafePathError(
            f"datastore '{store}': absolute path '{path}' is not allowed. "
            "Give a path relative to the datastore root."
        )
    parts = path.replace("\\", "/").split("/")
    if ".." in parts:
        raise UnsafePathError(
            f"datastore '{store}': path '{path}' leaves the datastore root through '..'. "
            "Give a path inside the datastore."
        )
    return posixpath.normpath("/".join(p for p in parts if p not in ("", ".")))


def validate_glob(pattern: str, *, store: str) -> str:
    """Check a glob pattern is relative, stays inside the store and has balanced brackets."""
    clean = normalize_relative_path(pattern, store=store)
    depth = 0
    for char in clean:
        if char == "[":
            if depth:
                raise ValueError(f"glob '{pattern}' nests '[' inside '[': close the first one.")
            depth = 1
        elif char == "]":
            depth = 0
    if depth:
        raise ValueError(f"glob '{pattern}' has a '[' without a closing ']'.")
    for segment in clean.split("/"):
        if "**" in segment and segment != "**":
            raise ValueError(
                f"glob '{pattern}': '**' must be a whole path segment (like 'a/**/b.csv')."
            )
    return clean


def glob_prefix(pattern: str) -> str:
    """The directory part of a glob before its first wildcard, so listings can start there."""
    segments = pattern.split("/")
    fixed: list[str] = []
    for segment in segments[:-1]:
        if _GLOB_CHARS.search(segment):
            break
        fixed.append(segment)
    return "/".join(fixed)


def glob_name_suffix(pattern: str) -> str | None:
    """For ``prefix/**/*S`` or ``prefix/**`` (prefix and S literal): S, or "" for any name.

    Every file under ``glob_prefix(pattern)`` then matches exactly when its name ends with it,
    a test a third the cost of the pattern's regex (0.06 µs against 0.18); None for any
    other pattern.
    """
    *fixed, last = pattern.split("/")
    if last == "**":
        suffix = ""
    elif fixed and fixed[-1] == "**" and last.startswith("*"):
        fixed, suffix = fixed[:-1], last[1:]
    else:
        return None
    if any(_GLOB_CHARS.search(part) for part in [*fixed, suffix]):
        return None
    return suffix


def glob_matches(pattern: str, path: str) -> bool:
    """Match a relative path to a glob: ``*`` stays inside one segment, ``**`` spans many."""
    return glob_regex(pattern).fullmatch(path) is not None


@functools.lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """The compiled pattern ``glob_matches`` uses, for loops over many paths."""
    parts: list[str] = []
    segments = pattern.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            parts.append(".*" if last else "(?:.*/)?")
            continue
        translated = fnmatch.translate(segment)
        # fnmatch lets '*' cross '/', which a path glob must not do.
        translated = translated.removeprefix("(?s:").removesuffix(")\\Z")
        translated = translated.replace(".*", "[^/]*")
        # '?' became an unescaped '.', and '[!x]' became '[^x]': neither may match '/' either.
        # validate_glob turned every backslash into '/', so an unescaped '.' came from '?'.
        translated = re.sub(r"(?<!\\)\.", "[^/]", translated).replace("[^", "[^/")
        parts.append(translated + ("" if last else "/"))
    return re.compile("".join(parts))


class FileDatastore(CatalogDatastore, dg.ConfigurableResource):
    """Interface for datastores that hold files: list, read, write, exists, delete.

    Paths are always relative to the store's root and use '/'. Listings carry size, modified
    time and an ETag (or equivalent) so that a dataset can be fingerprinted without reading data.
    """

    model_config = HIDE_INPUT

    description: str = Field(default="", description="What the store holds, for people.")

    # Network stores measure their time budgets and pause between retries on this clock.
    _clock: Clock = PrivateAttr(default=SYSTEM_CLOCK)
    # Stores whose service lists a page at a time set this and override ``listing_page``.
    pages_listings: ClassVar[bool] = False

    def using_clock(self, clock: Clock) -> Self:
        """A copy whose retries read the time from ``clock`` and pause through it.

        Production code never needs it; tests pass a simulated clock to check time budgets and
        backoff exactly, without waiting and without measuring the machine's speed.
        """
        copy = self.model_copy()
        copy._clock = clock
        return copy

    @property
    def store_name(self) -> str:
        """Name used in error messages; subclasses carry the catalog name."""
        return type(self).__name__

    def list_files(self, pattern: str) -> list[FileInfo]:
        """Files whose relative path matches the glob ``pattern``, sorted by path."""
        raise NotImplementedError

    def list_columns(self, pattern: str) -> FileColumns:
        """``list_files`` as columns; stores that can list without a ``FileInfo`` override it."""
        return FileColumns.of(sorted(self.list_files(pattern), key=lambda info: info.path))

    def listing_fingerprint(self, pattern: str) -> tuple[str | None, int]:
        """The fingerprint of the files matching ``pattern`` and how many there are.

        None when nothing matches. Stores that can list without building ``FileInfo`` objects
        override it; the value is always that of ``listing_digest`` over ``list_files``.
        """
        files = self.list_files(pattern)
        if not files:
            return None, 0
        return listing_digest((info.path, info.size, info.etag) for info in files), len(files)

    def listing_page(
        self, pattern: str, token: str | None = None, page_size: int = LISTING_PAGE_SIZE
    ) -> ListingPage:
        """One page of the files matching ``pattern``, from ``token`` (None: the first page).

        Here the whole listing is one page; stores with ``pages_listings`` return one page of
        the service's listing (``page_size`` names, matching or not) at a time, so a caller
        can stop between pages and go on later.
        """
        files = self.list_files(pattern)
        return ListingPage([(info.path, info.size, info.etag) for info in files])

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        """A binary stream over one file, for reads that should not load it whole."""
        raise NotImplementedError
        yield  # pragma: no cover

    def read_bytes(self, path: str) -> bytes:
        with self.open_read(path) as stream:
            return stream.read()

    def write_bytes(self, path: str, data: bytes, *, overwrite: bool = True) -> None:
        """Write a whole file atomically; ``overwrite=False`` raises FileExistsError if present."""
        raise NotImplementedError

    def write_stream(self, path: str, stream: IO[bytes], *, overwrite: bool = True) -> None:
        """Write a file from a stream; stores that can upload in blocks override this to stream."""
        self.write_bytes(path, stream.read(), overwrite=overwrite)

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def delete(self, path: str) -> None:
        raise NotImplementedError

    def stat(self, path: str) -> FileInfo:
        """Listing metadata for one file; raises FileNotFoundError if it is absent."""
        raise NotImplementedError

    def describe(self) -> str:
        """Where the store points, without any secret, for logs and the UI."""
        return self.store_name

    def check(self) -> None:
        """Connect and prove the store is usable; raise DatastoreError with a precise reason."""
        raise NotImplementedError
