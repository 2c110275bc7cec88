import multiprocessing
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ingestion_project.datastores.local import LocalDatastore
from ingestion_project.records import AliasRecord, VersionRecord
from ingestion_project.registry import RegistryError, VersionRegistry

PREFIX = "_registry"
WRITERS = 8
VERSIONS_PER_WRITER = 5


class Note(VersionRecord):
    """A version record with a few facts of its own, to tell the writers apart."""

    seq: int | None = None
    writer: str | None = None
    pid: int | None = None
    counter: int | None = None


Registry = VersionRegistry[Note]


def make_registry(root: str | Path) -> Registry:
    return VersionRegistry(LocalDatastore(name="registry", root=str(root)), PREFIX, "models", Note)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return make_registry(tmp_path)


def record_for(version: int, **extra: Any) -> Note:
    return Note(version=version, **extra)


def test_versions_are_numbered_from_one(registry: Registry) -> None:
    records = [registry.register("demand", lambda n, i=i: record_for(n, seq=i)) for i in range(3)]

    assert [record.version for record in records] == [1, 2, 3]
    assert registry.version_numbers("demand") == [1, 2, 3]
    assert registry.get("demand", 2).seq == 1
    assert registry.latest("demand") == records[-1]
    assert registry.all("demand") == records
    assert all(record.registered_at is not None for record in records)


def test_each_name_is_numbered_on_its_own(registry: Registry) -> None:
    registry.register("demand", record_for)
    registry.register("demand", record_for)
    registry.register("churn", record_for)

    assert registry.version_numbers("demand") == [1, 2]
    assert registry.version_numbers("churn") == [1]
    assert registry.names() == ["churn", "demand"]


def test_an_unknown_name_has_no_versions(registry: Registry) -> None:
    assert registry.latest("nothing") is None
    assert registry.all("nothing") == []
    assert registry.version_numbers("nothing") == []
    assert registry.names() == []


def test_getting_an_unknown_version_lists_the_registered_range(registry: Registry) -> None:
    for _ in range(3):
        registry.register("demand", record_for)

    with pytest.raises(
        RegistryError, match=r"model 'demand' has no version 7 \(registered: 1\.\.3\)"
    ):
        registry.get("demand", 7)


def test_getting_a_version_of_an_unregistered_name_says_none(registry: Registry) -> None:
    with pytest.raises(
        RegistryError, match=r"model 'demand' has no version 1 \(registered: none\)"
    ):
        registry.get("demand", 1)


def test_a_record_keeps_its_own_registered_at(registry: Registry) -> None:
    moment = datetime(2011, 1, 1, tzinfo=UTC)
    record = registry.register("demand", lambda n: record_for(n, registered_at=moment))

    assert record.registered_at == moment
    assert registry.get("demand", 1).registered_at == moment


def test_a_build_must_number_the_record_as_told(registry: Registry) -> None:
    with pytest.raises(RegistryError, match="building version 1 of model 'demand' gave a record"):
        registry.register("demand", lambda n: record_for(n + 1))

    assert registry.version_numbers("demand") == []


def test_aliases_point_at_versions_and_can_move(registry: Registry) -> None:
    first = registry.register("demand", record_for)
    second = registry.register("demand", record_for)

    assert registry.get_alias("demand", "champion") is None

    registry.set_alias("demand", "champion", AliasRecord(version=first.version, reason="first"))
    assert registry.get_alias("demand", "champion") == AliasRecord(version=1, reason="first")

    registry.set_alias("demand", "champion", AliasRecord(version=second.version))
    assert registry.get_alias("demand", "champion") == AliasRecord(version=2)
    # Moving an alias never touches the immutable versions.
    assert registry.version_numbers("demand") == [1, 2]
    assert registry.get("demand", 1) == first


def test_a_taken_number_makes_the_writer_move_on(registry: Registry) -> None:
    """A racer that wrote version n between our listing and our write pushes us to n + 1."""
    built: list[int] = []

    def racing_build(version: int) -> Note:
        if not built:
            make_registry(Path(registry.store.root)).register("demand", record_for)
        built.append(version)
        return record_for(version, writer="slow")

    record = registry.register("demand", racing_build)

    assert built == [1, 2]
    assert record.version == 2
    assert registry.get("demand", 1).writer is None
    assert registry.get("demand", 2).writer == "slow"


def register_from_process(root: str, name: str, count: int, barrier: Any) -> None:
    """One writer process: wait for all the others, then register ``count`` versions."""
    registry = make_registry(root)
    barrier.wait(timeout=120)
    for counter in range(count):
        registry.register(name, lambda n, c=counter: record_for(n, pid=os.getpid(), counter=c))


def test_concurrent_processes_never_take_the_same_number(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WRITERS)
    writers = [
        context.Process(
            target=register_from_process,
            args=(str(tmp_path), "demand", VERSIONS_PER_WRITER, barrier),
        )
        for _ in range(WRITERS)
    ]
    for writer in writers:
        writer.start()
    try:
        for writer in writers:
            writer.join(timeout=180)
    finally:
        for writer in writers:
            if writer.is_alive():
                writer.kill()
                writer.join()
    assert [writer.exitcode for writer in writers] == [0] * WRITERS

    total = WRITERS * VERSIONS_PER_WRITER
    registry = make_registry(tmp_path)
    assert registry.version_numbers("demand") == list(range(1, total + 1))

    folder = tmp_path / PREFIX / "models" / "demand"
    records = registry.all("demand")
    assert len(list(folder.glob("v*.json"))) == total
    assert [record.version for record in records] == list(range(1, total + 1))
    # Every (writer, counter) pair appears exactly once: no record was overwritten or merged.
    written = sorted((record.pid, record.counter) for record in records)
    pids = sorted({writer.pid for writer in writers})
    assert written == [(pid, counter) for pid in pids for counter in range(VERSIONS_PER_WRITER)]
    # Each writer's own versions increase: it never went back to a number it had passed.
    for pid in pids:
        mine = [record.version for record in records if record.pid == pid]
        assert mine == sorted(mine)
    assert not [path.name for path in folder.iterdir() if path.name.startswith(".")]


def test_a_build_that_fails_after_writing_its_artifact_registers_nothing(
    registry: Registry,
) -> None:
    registry.register("demand", record_for)

    def build(version: int) -> Note:
        registry.store.write_bytes(f"artifacts/demand/v{version}.pkl", b"model bytes")
        raise RuntimeError("killed after writing the artifact")

    with pytest.raises(RuntimeError, match="killed after writing the artifact"):
        registry.register("demand", build)

    assert registry.store.exists("artifacts/demand/v2.pkl")
    assert registry.version_numbers("demand") == [1]
    latest = registry.latest("demand")
    assert latest is not None and latest.version == 1
    # The number was never taken, so the next successful writer gets it.
    assert registry.register("demand", record_for).version == 2


def register_then_hang(root: str, started: Any) -> None:
    """Write the artifact for the next version, then hang until killed."""
    registry = make_registry(root)

    def build(version: int) -> Note:
        registry.store.write_bytes(f"artifacts/demand/v{version}.pkl", b"model bytes")
        started.set()
        time.sleep(600)
        return record_for(version)

    registry.register("demand", build)


def test_a_writer_killed_mid_registration_leaves_no_version(tmp_path: Path) -> None:
    registry = make_registry(tmp_path)
    registry.register("demand", record_for)
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    writer = context.Process(target=register_then_hang, args=(str(tmp_path), started))
    writer.start()
    try:
        reached_build = started.wait(timeout=120)
    finally:
        writer.kill()
        writer.join(timeout=60)

    assert reached_build, "the writer never reached its build step"
    assert writer.exitcode == -signal.SIGKILL
    assert registry.store.exists("artifacts/demand/v2.pkl")
    assert registry.version_numbers("demand") == [1]
    assert registry.register("demand", record_for).version == 2
