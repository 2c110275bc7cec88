"""AzureBlobDatastore on a real Azurite: listing, streaming, atomic writes, credentials, faults.

Every test that touches Azurite gets its own container. Faults (503, 429, connection resets,
refusing identity provider) come from transports that wrap the real requests transport, so the
SDK's own retry policy and client code run exactly as in production.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import pandas as pd
import pytest
import requests
import urllib3
import yaml
from azure.core.pipeline.transport import RequestsTransport
from azure.identity import ClientSecretCredential, DefaultAzureCredential
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ProtocolError

from ingestion_project.datasets.versions import (
    DatasetVersionChangedError,
    dataset_registry,
    load_version,
    read_files,
    register_file_dataset,
)
from ingestion_project.datastores.azure_blob import AzureBlobDatastore
from ingestion_project.datastores.azure_common import AzureCredential, ServicePrincipal
from ingestion_project.datastores.base import DatastoreError, FileDatastore, UnsafePathError
from ingestion_project.datastores.deadline import MIN_ATTEMPT_SECONDS
from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.demo.loop import DEMO_DATA
from ingestion_project_tests.azurite import Azurite, free_port
from ingestion_project_tests.catalogs import project_catalog_of
from ingestion_project_tests.datastores.timing import (
    FakeClock,
    SilentServer,
    TimeoutRecordingTransport,
)

STORE = "lake"


def unique_secret(label: str) -> str:
    """A value that can only appear in output if the store leaked it (valid base64, 64 bytes)."""
    return base64.b64encode(f"{label}-{uuid.uuid4().hex}".encode().ljust(64, b"#")).decode()


def error_text(error: BaseException) -> str:
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


@pytest.fixture
def container(azurite: Azurite) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex}"
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    service.create_container(name)
    yield name
    service.delete_container(name)


def make_store(azurite: Azurite, container: str, **fields: Any) -> AzureBlobDatastore:
    settings: dict[str, Any] = {
        "name": STORE,
        "account_url": azurite.account_url,
        "container": container,
        "timeout_seconds": 5,
        "max_retries": 2,
        "retry_backoff_seconds": 0.01,
    }
    settings.update(fields)
    return AzureBlobDatastore(**settings)


@pytest.fixture
def store(azurite: Azurite, container: str, monkeypatch: pytest.MonkeyPatch) -> AzureBlobDatastore:
    monkeypatch.setenv("AZ_TEST_ACCOUNT_KEY", azurite.account_key)
    return make_store(
        azurite, container, credential=AzureCredential(account_key=dg.EnvVar("AZ_TEST_ACCOUNT_KEY"))
    )


def listed(store: FileDatastore, pattern: str) -> list[str]:
    return [info.path for info in store.list_files(pattern)]


class RecordingTransport(RequestsTransport):
    """Forwards every request to Azurite and records its method, URL and headers."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    def send(self, request: Any, **kwargs: Any) -> Any:
        self.requests.append((request.method, request.url, dict(request.headers)))
        return super().send(request, **kwargs)


def http_response(
    request: requests.PreparedRequest, status: int, body: bytes, headers: dict[str, str]
) -> requests.Response:
    raw = urllib3.HTTPResponse(
        body=io.BytesIO(body),
        headers={**headers, "Content-Length": str(len(body))},
        status=status,
        preload_content=False,
    )
    return HTTPAdapter().build_response(request, raw)


class FaultyTransport(RequestsTransport):
    """The first ``failures`` requests that ``matches`` accepts fail; the rest reach Azurite.

    Faults are injected below azure-core (in the requests adapter), so the SDK sees exactly what
    a flaky network or a busy service would give it. ``timeouts`` records the (connect, read)
    timeouts each request was sent with; with a ``clock``, each request takes
    ``seconds_per_attempt`` of its simulated time.
    """

    def __init__(
        self,
        fault: str,
        failures: int,
        matches: Callable[[requests.PreparedRequest], bool] = lambda request: True,
        clock: FakeClock | None = None,
        seconds_per_attempt: float = 0.0,
    ) -> None:
        self.fault = fault
        self.failures = failures
        self.matches = matches
        self.attempts = 0
        self.timeouts: list[tuple[float, float]] = []
        self.clock = clock
        self.seconds_per_attempt = seconds_per_attempt
        session = requests.Session()
        session.mount("http://", _FaultAdapter(self))
        super().__init__(session=session, session_owner=True)

    def send(self, request: Any, **kwargs: Any) -> Any:
        self.timeouts.append((kwargs["connection_timeout"], kwargs["read_timeout"]))
        if self.clock is not None:
            self.clock.advance(self.seconds_per_attempt)
        return super().send(request, **kwargs)


class _FaultAdapter(HTTPAdapter):
    def __init__(self, transport: FaultyTransport) -> None:
        super().__init__()
        self.transport = transport

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        faults = self.transport
        if faults.matches(request):
            faults.attempts += 1
            if faults.attempts <= faults.failures:
                return self._fail(request)
        return super().send(request, **kwargs)

    def _fail(self, request: requests.PreparedRequest) -> requests.Response:
        if self.transport.fault == "reset":
            reset = ConnectionResetError(104, "Connection reset by peer")
            raise requests.exceptions.ConnectionError(
                ProtocolError("Connection aborted.", reset), request=request
            )
        status = int(self.transport.fault)
        code = "ServerBusy" if status == 503 else "TooManyRequests"
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code>'
            "<Message>Try again later.</Message></Error>"
        ).encode()
        headers = {"Content-Type": "application/xml"}
        if status != 429:
            headers["x-ms-error-code"] = code
        return http_response(request, status, body, headers)


def is_commit(request: requests.PreparedRequest) -> bool:
    return request.method == "PUT" and "comp=blocklist" in (request.url or "")


class SlowBytes(io.RawIOBase):
    """A non-seekable upload source of ``size`` bytes that raises after ``fail_after`` bytes."""

    def __init__(self, size: int, fail_after: int | None = None) -> None:
        super().__init__()
        self.size = size
        self.fail_after = fail_after
        self.sent = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.fail_after is not None and self.sent >= self.fail_after:
            raise OSError("the source disk went away")
        count = min(len(buffer), self.size - self.sent)
        buffer[:count] = b"s" * count
        self.sent += count
        return count


def test_round_trip_write_list_read_stat_exists_delete(store: AzureBlobDatastore) -> None:
    store.check()
    store.write_bytes("data/a.csv", b"id\n1\n")
    store.write_bytes("data/b.csv", b"id\n2\n3\n")

    [first, second] = store.list_files("data/*.csv")

    assert (first.path, first.size, second.path, second.size) == ("data/a.csv", 5, "data/b.csv", 7)
    assert first.modified.tzinfo is not None
    assert abs(first.modified - datetime.now(UTC)) < timedelta(minutes=5)
    assert first.etag and '"' not in first.etag
    assert store.stat("data/a.csv") == first
    assert store.read_bytes("data/b.csv") == b"id\n2\n3\n"
    with store.open_read("data/a.csv") as stream:
        assert stream.read() == b"id\n1\n"
    assert store.exists("data/a.csv")
    assert not store.exists("data")
    assert not store.exists("data/c.csv")

    store.delete("data/a.csv")
    store.delete("data/a.csv")

    assert not store.exists("data/a.csv")
    assert listed(store, "data/*.csv") == ["data/b.csv"]


def test_directory_marker_blobs_are_not_files(
    store: AzureBlobDatastore, azurite: Azurite, container: str
) -> None:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    client = service.get_container_client(container)
    for marker in ("data", "data/sub"):
        client.upload_blob(marker, b"", metadata={"hdi_isfolder": "true"})
    store.write_bytes("data/sub/a.csv", b"x")

    assert listed(store, "**") == ["data/sub/a.csv"]
    assert not store.exists("data/sub")
    with pytest.raises(FileNotFoundError, match="is a folder"):
        store.stat("data/sub")


def test_a_missing_file_is_file_not_found(store: AzureBlobDatastore) -> None:
    for operation in (
        lambda: store.read_bytes("data/none.csv"),
        lambda: store.stat("data/none.csv"),
        lambda: store.open_read("data/none.csv").__enter__(),
    ):
        with pytest.raises(FileNotFoundError, match=f"datastore '{STORE}'.*'data/none.csv'"):
            operation()


GLOB_FILES = [
    "top.csv",
    "data/a.csv",
    "data/b.txt",
    "data/A.csv",
    "data/ab.csv",
    "data/sub/c.csv",
    "data/sub/deeper/d.csv",
    "data/.hidden.csv",
    "data/.cache/e.csv",
    "other/2024/a.csv",
]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("data/*.csv", ["data/A.csv", "data/a.csv", "data/ab.csv"]),
        ("*.csv", ["top.csv"]),
        ("*/*.csv", ["data/A.csv", "data/a.csv", "data/ab.csv"]),
        ("data/**/*.csv", None),
        ("data/**", None),
        ("**/d.csv", ["data/sub/deeper/d.csv"]),
        ("data/?.csv", ["data/A.csv", "data/a.csv"]),
        ("data/[ab]*.*", ["data/a.csv", "data/ab.csv", "data/b.txt"]),
        ("other/2025/*.csv", []),
        ("**", None),
    ],
)
def test_glob_semantics_are_those_of_the_local_store(
    store: AzureBlobDatastore, tmp_path: Path, pattern: str, expected: list[str] | None
) -> None:
    local = LocalDatastore(name="reference", root=str(tmp_path))
    for path in GLOB_FILES:
        store.write_bytes(path, b"x")
        local.write_bytes(path, b"x")

    paths = listed(store, pattern)

    assert paths == listed(local, pattern)
    if expected is not None:
        assert paths == expected


def test_a_store_with_a_prefix_sees_only_its_folder(
    store: AzureBlobDatastore, azurite: Azurite, container: str
) -> None:
    for path in ("team/a/x.csv", "team/a/sub/y.csv", "team/b/z.csv", "team/ab/w.csv"):
        store.write_bytes(path, b"x")
    team_a = store.model_copy(update={"prefix": "team/a"})

    assert listed(team_a, "**") == ["sub/y.csv", "x.csv"]
    assert listed(team_a, "*.csv") == ["x.csv"]
    assert not team_a.exists("z.csv")
    with pytest.raises(UnsafePathError):
        team_a.read_bytes("../b/z.csv")

    team_a.write_bytes("new.csv", b"n")
    assert store.read_bytes("team/a/new.csv") == b"n"
    team_a.check()


def test_etag_changes_when_content_changes_and_only_then(store: AzureBlobDatastore) -> None:
    store.write_bytes("data/a.csv", b"id\n1\n")
    before = store.stat("data/a.csv")

    assert store.stat("data/a.csv").etag == before.etag
    store.write_bytes("data/a.csv", b"id\n2\n")
    after = store.stat("data/a.csv")

    assert after.size == before.size
    assert after.etag != before.etag


def test_listing_issues_only_list_blobs_requests(
    azurite: Azurite, container: str, store: AzureBlobDatastore
) -> None:
    for index in range(5):
        store.write_bytes(f"data/{index}.csv", b"payload" * 100)
    transport = RecordingTransport()
    recorded = store.using_transport(transport)

    files = recorded.list_files("data/**/*.csv")

    assert len(files) == 5
    assert transport.requests
    for method, url, _headers in transport.requests:
        query = parse_qs(urlsplit(url).query)
        assert method == "GET"
        assert query["comp"] == ["list"] and query["restype"] == ["container"]
        assert query["prefix"] == ["data/"]


def test_open_read_streams_one_range_at_a_time(
    azurite: Azurite, container: str, store: AzureBlobDatastore
) -> None:
    chunk = 64 * 1024
    payload = bytes(range(256)) * 4096  # 1 MiB: 16 ranges
    store.write_bytes("big.bin", payload)
    transport = RecordingTransport()
    reader = store.model_copy(update={"transfer_chunk_bytes": chunk}).using_transport(transport)

    pieces = []
    with reader.open_read("big.bin") as stream:
        pieces.append(stream.read(10))
        gets_after_first_read = len(transport.requests)
        while piece := stream.read(100_000):
            pieces.append(piece)

    assert gets_after_first_read == 1
    assert b"".join(pieces) == payload
    ranges = [headers.get("x-ms-range") for method, _url, headers in transport.requests]
    assert len(ranges) == len(payload) // chunk
    assert ranges[0] == f"bytes=0-{chunk - 1}"
    assert reader.read_bytes("big.bin") == payload


def sas_for(azurite: Azurite, container: str, **permissions: bool) -> str:
    return generate_container_sas(
        azurite.account_name,
        container,
        account_key=azurite.account_key,
        permission=ContainerSasPermissions(**permissions),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


ALL_PERMISSIONS = {"read": True, "add": True, "create": True, "write": True, "delete": True}


@pytest.mark.parametrize("kind", ["connection_string", "account_key", "sas_token"])
def test_each_credential_azurite_accepts_works_from_an_env_var(
    azurite: Azurite, container: str, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    values = {
        "connection_string": azurite.connection_string,
        "account_key": azurite.account_key,
        "sas_token": sas_for(azurite, container, list=True, **ALL_PERMISSIONS),
    }
    monkeypatch.setenv("AZ_TEST_CREDENTIAL", values[kind])
    fields: dict[str, Any] = {
        "credential": AzureCredential(**{kind: dg.EnvVar("AZ_TEST_CREDENTIAL")})
    }
    if kind == "connection_string":
        fields["account_url"] = None
    store = make_store(azurite, container, prefix="p", **fields)

    store.check()
    store.write_bytes("data/a.csv", b"id\n1\n")
    with pytest.raises(FileExistsError):
        store.write_bytes("data/a.csv", b"id\n2\n", overwrite=False)

    assert listed(store, "data/*.csv") == ["data/a.csv"]
    assert store.read_bytes("data/a.csv") == b"id\n1\n"
    store.delete("data/a.csv")
    assert not store.exists("data/a.csv")
    assert values[kind] not in store.describe()


def test_a_read_only_sas_is_refused_writes_as_permission_denied(
    azurite: Azurite, container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZ_TEST_SAS", sas_for(azurite, container, read=True, list=True))
    store = make_store(
        azurite, container, credential=AzureCredential(sas_token=dg.EnvVar("AZ_TEST_SAS"))
    )
    store.check()

    with pytest.raises(DatastoreError) as caught:
        store.write_bytes("data/a.csv", b"x")

    assert caught.value.reason == "permission denied"
    assert "sig=" not in error_text(caught.value)


def test_a_wrong_sas_signature_is_an_authentication_failure_without_the_signature(
    azurite: Azurite, container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sas_for(azurite, container, read=True, list=True)
    planted = unique_secret("wrong-sig")
    query = {key: values[0] for key, values in parse_qs(real).items()}
    query["sig"] = planted
    monkeypatch.setenv("AZ_TEST_SAS", "&".join(f"{key}={value}" for key, value in query.items()))
    store = make_store(
        azurite, container, credential=AzureCredential(sas_token=dg.EnvVar("AZ_TEST_SAS"))
    )

    with pytest.raises(DatastoreError) as caught:
        store.list_files("**")

    assert caught.value.reason == "authentication failed"
    assert planted not in error_text(caught.value)


def test_service_principal_and_identity_credentials_are_built(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZ_TEST_SP_SECRET", unique_secret("sp"))
    principal = make_store(
        azurite,
        "c",
        credential=AzureCredential(
            service_principal=ServicePrincipal(
                tenant_id="00000000-0000-0000-0000-000000000001",
                client_id="00000000-0000-0000-0000-000000000002",
                client_secret=dg.EnvVar("AZ_TEST_SP_SECRET"),
            )
        ),
    )
    identity = make_store(azurite, "c")

    assert isinstance(principal.client_credential(), ClientSecretCredential)
    assert isinstance(identity.client_credential(), DefaultAzureCredential)
    # The SDK never sends a bearer token over http, so the store says so before any request.
    with pytest.raises(DatastoreError, match="needs an https account_url") as caught:
        identity.check()
    assert caught.value.reason == "invalid request"


class _RefusingEntra(HTTPAdapter):
    """Microsoft Entra ID answering a client-credentials request: the secret is wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.hosts: list[str] = []
        self.token_requests = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = request.url or ""
        host = urlsplit(url).hostname or ""
        self.hosts.append(host)
        self.token_requests += url.endswith("/token")
        status, body = self.answer(url, host)
        data = json.dumps(body).encode()
        return http_response(request, status, data, {"Content-Type": "application/json"})

    @staticmethod
    def answer(url: str, host: str) -> tuple[int, dict[str, Any]]:
        authority = "https://login.microsoftonline.com/tenant-x"
        if "openid-configuration" in url:
            return 200, {
                "token_endpoint": f"{authority}/oauth2/v2.0/token",
                "authorization_endpoint": f"{authority}/oauth2/v2.0/authorize",
                "issuer": f"{authority}/v2.0",
            }
        if "discovery/instance" in url:
            return 200, {
                "tenant_discovery_endpoint": f"{authority}/v2.0/.well-known/openid-configuration",
                "metadata": [{"preferred_network": host, "aliases": [host]}],
            }
        if url.endswith("/token"):
            return 401, {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.",
                "error_codes": [7000215],
            }
        return 500, {"error": "a storage request was sent without a token"}


def test_a_bad_service_principal_is_an_authentication_failure_without_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    planted = unique_secret("sp-secret")
    monkeypatch.setenv("AZ_TEST_SP_SECRET", planted)
    entra = _RefusingEntra()
    session = requests.Session()
    session.mount("https://", entra)
    store = AzureBlobDatastore(
        name=STORE,
        account_url="https://devstoreaccount1.blob.core.windows.net",
        container="c",
        credential=AzureCredential(
            service_principal=ServicePrincipal(
                tenant_id="tenant-x",
                client_id="client-y",
                client_secret=dg.EnvVar("AZ_TEST_SP_SECRET"),
            )
        ),
        max_retries=3,
        timeout_seconds=2,
    ).using_transport(RequestsTransport(session=session, session_owner=True))

    with pytest.raises(DatastoreError) as caught:
        store.check()

    assert caught.value.reason == "authentication failed"
    assert "AADSTS7000215" in str(caught.value)
    assert planted not in error_text(caught.value)
    assert "login.microsoftonline.com" in entra.hosts
    assert "devstoreaccount1.blob.core.windows.net" not in entra.hosts
    # A refused secret fails at once: neither the identity client nor the store retries it.
    assert entra.token_requests == 1


def test_an_http_identity_authority_is_an_authentication_failure(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AZ_TEST_SP_SECRET", "not-used")
    store = make_store(
        azurite,
        "c",
        account_url="https://devstoreaccount1.blob.core.windows.net",
        credential=AzureCredential(
            service_principal=ServicePrincipal(
                tenant_id="tenant-x",
                client_id="client-y",
                client_secret=dg.EnvVar("AZ_TEST_SP_SECRET"),
            )
        ),
    )

    with pytest.raises(DatastoreError, match="AZURE_") as caught:
        store.check()

    assert caught.value.reason == "authentication failed"


def test_a_wrong_account_key_fails_authentication_without_leaking_it(
    azurite: Azurite, container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = unique_secret("wrong-key")
    monkeypatch.setenv("AZ_TEST_WRONG_KEY", planted)
    store = make_store(
        azurite, container, credential=AzureCredential(account_key=dg.EnvVar("AZ_TEST_WRONG_KEY"))
    )

    for operation in (
        store.check,
        lambda: store.list_files("**"),
        lambda: store.read_bytes("a.csv"),
        lambda: store.stat("a.csv"),
        lambda: store.write_bytes("a.csv", b"x"),
    ):
        with pytest.raises(DatastoreError) as caught:
            operation()
        assert caught.value.reason == "authentication failed"
        assert f"datastore '{STORE}'" in str(caught.value)
        assert "To fix:" in str(caught.value)
        assert planted not in error_text(caught.value)
        assert planted not in store.scrub(error_text(caught.value))


def test_an_unset_environment_variable_names_the_variable(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AZ_TEST_UNSET", raising=False)
    store = make_store(
        azurite, "c", credential=AzureCredential(account_key=dg.EnvVar("AZ_TEST_UNSET"))
    )

    with pytest.raises(DatastoreError, match="AZ_TEST_UNSET") as caught:
        store.list_files("**")

    assert caught.value.reason == "missing secret"


def test_a_missing_container_is_not_found(azurite: Azurite, store: AzureBlobDatastore) -> None:
    missing = store.model_copy(update={"container": f"missing-{uuid.uuid4().hex}"})

    for operation in (
        missing.check,
        lambda: missing.list_files("**"),
        lambda: missing.read_bytes("a.csv"),
        lambda: missing.exists("a.csv"),
        lambda: missing.delete("a.csv"),
        lambda: missing.write_bytes("a.csv", b"x"),
    ):
        with pytest.raises(DatastoreError) as caught:
            operation()
        assert caught.value.reason == "not found"
        assert f"create container '{missing.container}'" in str(caught.value)


def test_an_unreachable_account_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZ_TEST_ACCOUNT_KEY", unique_secret("key"))
    clock = FakeClock()
    transport = TimeoutRecordingTransport()
    store = (
        AzureBlobDatastore(
            name=STORE,
            account_url=f"http://127.0.0.1:{free_port()}/devstoreaccount1",
            container="c",
            credential=AzureCredential(account_key=dg.EnvVar("AZ_TEST_ACCOUNT_KEY")),
            max_retries=2,
            retry_backoff_seconds=0.01,
        )
        .using_transport(transport)
        .using_clock(clock)
    )

    with pytest.raises(DatastoreError) as caught:
        store.check()

    assert caught.value.reason == "unreachable"
    assert "check account_url" in str(caught.value)
    # A refused connection costs no timeout: three attempts, two pauses of 0.01 s doubling.
    assert len(transport.timeouts) == 3
    assert clock.sleeps == [pytest.approx(0.01, rel=0.2), pytest.approx(0.02, rel=0.2)]


def test_a_server_that_never_answers_costs_one_timeout_not_one_per_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AZ_TEST_ACCOUNT_KEY", unique_secret("key"))
    transport = TimeoutRecordingTransport()
    with SilentServer() as silent:
        store = AzureBlobDatastore(
            name=STORE,
            account_url=f"http://127.0.0.1:{silent.port}/devstoreaccount1",
            container="c",
            credential=AzureCredential(account_key=dg.EnvVar("AZ_TEST_ACCOUNT_KEY")),
            timeout_seconds=1,
            max_retries=3,
        ).using_transport(transport)

        with pytest.raises(DatastoreError) as caught:
            store.list_files("**")

    assert caught.value.reason == "timed out"
    assert "timeout_seconds" in str(caught.value)
    # The one attempt waited the whole budget, so no retry was left any time.
    assert silent.connections == 1
    assert transport.timeouts == [(1, 1)]


def test_a_body_that_stalls_fails_the_read_instead_of_being_fetched_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AZ_TEST_ACCOUNT_KEY", unique_secret("key"))
    headers = (
        b"HTTP/1.1 206 Partial Content\r\nContent-Length: 100\r\n"
        b'Content-Range: bytes 0-99/100\r\nETag: "0x1"\r\nx-ms-blob-type: BlockBlob\r\n'
        b"Last-Modified: Wed, 01 Jan 2025 00:00:00 GMT\r\n\r\n"
    )
    transport = TimeoutRecordingTransport()
    with SilentServer(answer=headers) as stalling:
        store = AzureBlobDatastore(
            name=STORE,
            account_url=f"http://127.0.0.1:{stalling.port}/devstoreaccount1",
            container="c",
            credential=AzureCredential(account_key=dg.EnvVar("AZ_TEST_ACCOUNT_KEY")),
            timeout_seconds=1,
            max_retries=3,
        ).using_transport(transport)

        with pytest.raises(DatastoreError) as caught:
            store.read_bytes("a.csv")

    assert caught.value.reason == "timed out"
    # The SDK would download the range again, twice, each time with a fresh timeout.
    assert stalling.connections == 1
    assert transport.timeouts == [(1, 1)]


def test_a_retry_gets_only_what_is_left_of_the_budget(store: AzureBlobDatastore) -> None:
    clock = FakeClock()
    slow = FaultyTransport("503", failures=1000, clock=clock, seconds_per_attempt=1.0)
    busy = store.model_copy(update={"max_retries": 10, "retry_backoff_seconds": 0})

    with pytest.raises(DatastoreError) as caught:
        busy.using_transport(slow).using_clock(clock).list_files("**")

    # timeout_seconds=5 and each 503 takes 1 s: five attempts, each given what was left.
    assert slow.timeouts == [(5, 5), (4, 4), (3, 3), (2, 2), (1, 1)]
    assert caught.value.reason == "error"
    assert "timeout_seconds=5" in str(caught.value)


def test_no_retry_is_made_when_its_pause_would_outlast_the_budget(
    store: AzureBlobDatastore,
) -> None:
    clock = FakeClock()
    faults = FaultyTransport("503", failures=1000, clock=clock)
    patient = store.model_copy(update={"max_retries": 10, "retry_backoff_seconds": 3})

    with pytest.raises(DatastoreError):
        patient.using_transport(faults).using_clock(clock).list_files("**")

    # timeout_seconds=5: a first pause of about 3 s fits, the next (about 6 s) does not.
    assert faults.attempts == 2
    assert clock.sleeps == [pytest.approx(3, rel=0.2)]


def test_a_503_then_200_succeeds_on_a_retry_within_a_short_budget(
    store: AzureBlobDatastore,
) -> None:
    store.write_bytes("data/a.csv", b"id\n1\n")
    faults = FaultyTransport("503", failures=1)
    quick = store.model_copy(update={"timeout_seconds": 1, "max_retries": 3})

    assert quick.using_transport(faults).read_bytes("data/a.csv") == b"id\n1\n"

    assert faults.attempts == 2
    first, second = faults.timeouts
    assert first == (1, 1)
    assert MIN_ATTEMPT_SECONDS <= second[0] == second[1] < 1


UNSAFE_PATHS = ["../x", "/etc/passwd", "a/../../b", "C:\\x", "..\\x", "a/..", ""]


@pytest.mark.parametrize("path", UNSAFE_PATHS)
@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda s, p: s.read_bytes(p), id="read"),
        pytest.param(lambda s, p: s.open_read(p).__enter__(), id="open"),
        pytest.param(lambda s, p: s.write_bytes(p, b"x"), id="write"),
        pytest.param(lambda s, p: s.write_stream(p, io.BytesIO(b"x")), id="write_stream"),
        pytest.param(lambda s, p: s.exists(p), id="exists"),
        pytest.param(lambda s, p: s.delete(p), id="delete"),
        pytest.param(lambda s, p: s.stat(p), id="stat"),
        pytest.param(lambda s, p: s.list_files(p), id="list"),
    ],
)
def test_paths_that_leave_the_root_are_refused_before_any_request(
    monkeypatch: pytest.MonkeyPatch, path: str, operation: Callable[[Any, str], Any]
) -> None:
    monkeypatch.setenv("AZ_TEST_ACCOUNT_KEY", unique_secret("key"))
    transport = RecordingTransport()
    store = AzureBlobDatastore(
        name=STORE,
        account_url=f"http://127.0.0.1:{free_port()}/devstoreaccount1",
        container="c",
        prefix="team/a",
        credential=AzureCredential(account_key=dg.EnvVar("AZ_TEST_ACCOUNT_KEY")),
    ).using_transport(transport)

    with pytest.raises(UnsafePathError, match=f"datastore '{STORE}'"):
        operation(store, path)

    assert transport.requests == []


def test_write_without_overwrite_refuses_and_keeps_the_original(
    store: AzureBlobDatastore,
) -> None:
    store.write_bytes("v000001.json", b"first", overwrite=False)

    with pytest.raises(FileExistsError, match=f"datastore '{STORE}'.*'v000001.json'"):
        store.write_bytes("v000001.json", b"second", overwrite=False)
    with pytest.raises(FileExistsError):
        store.write_stream("v000001.json", SlowBytes(5000), overwrite=False)

    assert store.read_bytes("v000001.json") == b"first"
    assert listed(store, "*.json") == ["v000001.json"]


@pytest.mark.parametrize(
    "size", [pytest.param(100, id="single-put"), pytest.param(5000, id="staged-blocks")]
)
def test_concurrent_create_if_absent_has_exactly_one_winner(
    store: AzureBlobDatastore, size: int
) -> None:
    writers = 8
    small_blocks = store.model_copy(update={"transfer_chunk_bytes": 1024})
    payloads = [bytes([65 + index]) * size for index in range(writers)]
    barrier = threading.Barrier(writers)
    outcomes: list[str] = [""] * writers

    def write(index: int) -> None:
        barrier.wait()
        try:
            small_blocks.write_bytes("registry/v000001.json", payloads[index], overwrite=False)
            outcomes[index] = "won"
        except FileExistsError:
            outcomes[index] = "lost"

    threads = [threading.Thread(target=write, args=(index,)) for index in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["lost"] * (writers - 1) + ["won"]
    assert store.read_bytes("registry/v000001.json") == payloads[outcomes.index("won")]


def test_an_upload_whose_source_fails_midway_leaves_no_blob(store: AzureBlobDatastore) -> None:
    small_blocks = store.model_copy(update={"transfer_chunk_bytes": 1024})
    store.write_bytes("data/kept.bin", b"original")

    with pytest.raises(OSError, match="went away"):
        small_blocks.write_stream("data/new.bin", SlowBytes(10_000, fail_after=3000))
    with pytest.raises(OSError, match="went away"):
        small_blocks.write_stream("data/kept.bin", SlowBytes(10_000, fail_after=3000))

    assert not store.exists("data/new.bin")
    assert listed(store, "data/**") == ["data/kept.bin"]
    assert store.read_bytes("data/kept.bin") == b"original"


def test_a_whole_stream_upload_lands_in_blocks(store: AzureBlobDatastore) -> None:
    small_blocks = store.model_copy(update={"transfer_chunk_bytes": 1024})

    small_blocks.write_stream("data/streamed.bin", SlowBytes(10_000))

    assert store.read_bytes("data/streamed.bin") == b"s" * 10_000


def test_a_failed_commit_leaves_no_blob_and_keeps_the_old_one(
    store: AzureBlobDatastore,
) -> None:
    store.write_bytes("data/kept.bin", b"original")
    faults = FaultyTransport("500", failures=100, matches=is_commit)
    failing = store.model_copy(update={"transfer_chunk_bytes": 1024}).using_transport(faults)

    for path in ("data/new.bin", "data/kept.bin"):
        with pytest.raises(DatastoreError) as caught:
            failing.write_bytes(path, b"z" * 5000)
        assert caught.value.reason == "error"

    assert faults.attempts == 2 * (store.max_retries + 1)
    assert not store.exists("data/new.bin")
    assert store.read_bytes("data/kept.bin") == b"original"


@pytest.mark.parametrize("fault", ["503", "429", "reset"])
def test_transient_faults_are_retried_until_the_call_succeeds(
    store: AzureBlobDatastore, fault: str
) -> None:
    store.write_bytes("data/a.csv", b"id\n1\n")
    listing = FaultyTransport(fault, failures=2)
    writes = FaultyTransport(fault, failures=2, matches=lambda request: request.method == "PUT")

    assert listed(store.using_transport(listing), "data/*.csv") == ["data/a.csv"]
    store.using_transport(writes).write_bytes("data/b.csv", b"id\n2\n", overwrite=False)

    assert listing.attempts == 3
    assert writes.attempts == 3
    assert store.read_bytes("data/b.csv") == b"id\n2\n"


def test_a_persistent_503_gives_up_after_max_retries(store: AzureBlobDatastore) -> None:
    clock = FakeClock()
    faults = FaultyTransport("503", failures=1000)
    busy = store.model_copy(update={"max_retries": 3}).using_transport(faults).using_clock(clock)

    with pytest.raises(DatastoreError) as caught:
        busy.list_files("**")

    assert faults.attempts == 4
    assert caught.value.reason == "error"
    assert "max_retries=3 within timeout_seconds=5" in str(caught.value)
    assert "raise max_retries or timeout_seconds" in str(caught.value)
    assert "ServerBusy" in str(caught.value)
    # Pauses of 0.01 s doubling (±20% jitter), not the SDK's whole seconds.
    assert clock.sleeps == [pytest.approx(0.01 * 2**n, rel=0.2) for n in range(3)]


def test_describe_names_the_place_without_secrets(
    azurite: Azurite, container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = unique_secret("key")
    monkeypatch.setenv("AZ_TEST_ACCOUNT_KEY", planted)
    monkeypatch.setenv(
        "AZ_TEST_CONN", azurite.connection_string.replace(azurite.account_key, planted)
    )
    with_key = make_store(
        azurite,
        container,
        prefix="team/a",
        credential=AzureCredential(account_key=dg.EnvVar("AZ_TEST_ACCOUNT_KEY")),
    )
    with_string = make_store(
        azurite,
        container,
        account_url=None,
        credential=AzureCredential(connection_string=dg.EnvVar("AZ_TEST_CONN")),
    )

    assert with_key.describe() == (
        f"Azure Blob {azurite.account_url}, container '{container}', prefix 'team/a'"
    )
    assert with_string.describe() == (
        f"Azure Blob {azurite.account_url} (from the connection string), container '{container}'"
    )
    assert planted not in with_string.describe()


def test_a_run_never_records_the_account_key(
    azurite: Azurite, container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = unique_secret("planted-wrong")
    monkeypatch.setenv("AZ_TEST_RIGHT_KEY", azurite.account_key)
    monkeypatch.setenv("AZ_TEST_WRONG_KEY", wrong)

    @dg.asset
    def landing(raw: AzureBlobDatastore) -> dg.MaterializeResult:
        raw.write_bytes("data/a.csv", b"id\n1\n")
        files = raw.list_files("data/*.csv")
        return dg.MaterializeResult(
            metadata={"files": len(files), "datastore": raw.describe(), "etag": files[0].etag}
        )

    instance = dg.DagsterInstance.ephemeral()
    runs = {}
    stores = {}
    for variable in ("AZ_TEST_RIGHT_KEY", "AZ_TEST_WRONG_KEY"):
        stores[variable] = make_store(
            azurite, container, credential=AzureCredential(account_key=dg.EnvVar(variable))
        )
        runs[variable] = dg.materialize(
            [landing], resources={"raw": stores[variable]}, instance=instance, raise_on_error=False
        )

    assert runs["AZ_TEST_RIGHT_KEY"].success
    # Dagster tore the resource down after the run; the store object itself still works.
    assert listed(stores["AZ_TEST_RIGHT_KEY"], "data/*.csv") == ["data/a.csv"]
    assert not runs["AZ_TEST_WRONG_KEY"].success
    [failure] = runs["AZ_TEST_WRONG_KEY"].get_step_failure_events()
    assert "authentication failed" in str(failure.event_specific_data)
    materialization = instance.get_latest_materialization_event(dg.AssetKey("landing"))
    assert materialization is not None
    places = {"metadata": str(materialization) + dg.serialize_value(materialization)}
    for variable, result in runs.items():
        run = instance.get_run_by_id(result.run_id)
        assert run is not None
        places[f"run config of {variable}"] = str(run.run_config)
        events = instance.all_logs(result.run_id)
        places[f"events of {variable}"] = "\n".join(
            str(event) + dg.serialize_value(event) for event in events
        )
    for secret in (wrong, azurite.account_key):
        for place, text in places.items():
            assert secret not in text, f"the planted key appears in the {place}"


def test_a_catalog_entry_registers_and_loads_a_dataset_from_azurite(
    azurite: Azurite, container: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AZ_CONN", azurite.connection_string)
    catalog = project_catalog_of(
        yaml.safe_load(
            f"""
            datastores:
              lake:
                kind: azure_blob
                container: {container}
                prefix: landing
                credential:
                  connection_string: {{env: AZ_CONN}}
            datasets:
              bikes:
                datastore: lake
                path: bikeshare/2011-*.csv
            """
        )
    )
    store = catalog.resources["lake"]
    assert isinstance(store, AzureBlobDatastore)
    uploader = BlobServiceClient.from_connection_string(azurite.connection_string)
    for month in ("2011-01.csv", "2011-02.csv"):
        data = (DEMO_DATA / month).read_bytes()
        uploader.get_blob_client(container, f"landing/bikeshare/{month}").upload_blob(data)
    spec = catalog.datasets["bikes"]
    registry = dataset_registry(store, "_registry")

    registration = register_file_dataset(
        "bikes", spec, store, registry, run_id=None, code_version="test"
    )
    again = register_file_dataset("bikes", spec, store, registry, run_id=None, code_version="test")

    assert registration.created and not again.created
    record = registration.record
    assert [item.path for item in record.manifest] == [
        "bikeshare/2011-01.csv",
        "bikeshare/2011-02.csv",
    ]
    local = LocalDatastore(name="reference", root=str(tmp_path / "reference"))
    for month in ("2011-01.csv", "2011-02.csv"):
        local.write_bytes(f"bikeshare/{month}", (DEMO_DATA / month).read_bytes())
    expected = read_files("bikes", spec, local, local.list_files(spec.path or ""))
    assert len(expected) == record.row_count > 0
    pd.testing.assert_frame_equal(load_version(record, store, spec), expected)
    assert registration.frame is not None
    pd.testing.assert_frame_equal(registration.frame, expected)

    changed = (DEMO_DATA / "2011-02.csv").read_bytes().replace(b",clear,", b",cloud,", 1)
    uploader.get_blob_client(container, "landing/bikeshare/2011-02.csv").upload_blob(
        changed, overwrite=True
    )
    with pytest.raises(DatasetVersionChangedError, match=r"2011-02.csv \(modified\)"):
        load_version(record, store, spec)
