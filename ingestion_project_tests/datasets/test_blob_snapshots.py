"""Snapshots into Azure Blob Storage (Azurite): streamed copies, streamed reads, tamper checks."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from azure.storage.blob import BlobServiceClient
from pandas.testing import assert_frame_equal

from ingestion_project.catalog.spec import DatasetSpec
from ingestion_project.datasets.versions import (
    SnapshotChangedError,
    dataset_registry,
    iter_version_batches,
    load_version,
    register_file_dataset,
    version_files,
)
from ingestion_project.datastores.azure_blob import AzureBlobDatastore
from ingestion_project.datastores.azure_common import AzureCredential
from ingestion_project_tests.azurite import Azurite
from ingestion_project_tests.datasets.dataset_helpers import CountingDatastore

FRAME = pd.DataFrame({"id": range(10), "temp": [n / 4 for n in range(10)]})


@pytest.fixture
def container(azurite: Azurite) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex}"
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    service.create_container(name)
    yield name
    service.delete_container(name)


@pytest.fixture
def lake(azurite: Azurite, container: str) -> AzureBlobDatastore:
    return AzureBlobDatastore(
        name="lake",
        account_url=azurite.account_url,
        container=container,
        credential=AzureCredential(account_key=azurite.account_key),
        timeout_seconds=5,
        max_retries=2,
        retry_backoff_seconds=0.01,
    )


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_a_snapshot_in_blob_storage_outlives_its_originals_and_streams(
    lake: AzureBlobDatastore, tmp_path: Path, file_format: str
) -> None:
    landing = tmp_path / "landing"
    (landing / "in").mkdir(parents=True)
    for part, rows in (("a", FRAME.iloc[:6]), ("b", FRAME.iloc[6:])):
        target = landing / "in" / f"{part}.{file_format}"
        if file_format == "parquet":
            rows.to_parquet(target, index=False)
        else:
            rows.to_csv(target, index=False)
    source = CountingDatastore(name="landing", root=str(landing))
    registry = dataset_registry(lake, "_registry")
    spec = DatasetSpec(datastore="landing", path=f"in/*.{file_format}", mode="snapshot")

    record = register_file_dataset(
        "temps",
        spec,
        source,
        registry,
        run_id="r",
        code_version="c",
        snapshot_store=lake,
        snapshot_store_name="lake",
    ).record
    for path in (landing / "in").iterdir():
        path.unlink()

    stores = {"landing": source, "lake": lake}
    assert [lake.stat(info.path) for info in version_files(record)] == version_files(record)
    assert_frame_equal(load_version(record, stores, spec), FRAME)
    batches = list(iter_version_batches(record, stores, spec, batch_size=4))
    assert [batch.num_rows for batch in batches] == [4, 2, 4]
    assert_frame_equal(pa.Table.from_batches(batches).to_pandas(), FRAME)

    lake.write_bytes(version_files(record)[1].path, b"id,temp\n1,1\n")
    with pytest.raises(SnapshotChangedError, match=r"in/b\." + file_format + r" \(modified\)"):
        load_version(record, stores, spec)
