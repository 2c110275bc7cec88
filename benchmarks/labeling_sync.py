"""What syncing a Label Studio project with an image dataset costs, against Label Studio alone.

A Label Studio server is started here (its own data dir and document root, both temporary), and
``--images`` PNGs of 64x64 (generated with numpy, nothing downloaded) are written to a local
datastore under its document root. A catalog declares them as a ``kind: file`` dataset with a
``labeling:`` entry (multi-class, two classes), and each step runs as ``dg launch`` would: the
assets materialized in one in-process Dagster run. Printed, each beside a baseline measured in
the same run, on the same server:

 1. the first sync (``photos`` registered + ``<name>_project``, which creates the project and
    imports every image) against a bare import: a project created and the same task dicts
    POSTed to ``/api/projects/<id>/import`` in batches of 500 with plain ``requests``;
 2. a second sync with nothing changed: its time, and Label Studio's task count (unchanged);
 3. a sync after adding 10 % more images: its time and tasks added (exactly the new ones),
    against the bare import of just those tasks into the baseline's project;
 4. after labeling ``--labeled`` tasks through the API, the export (``<name>``: an export
    snapshot read and the labeled dataset registered) against one plain
    ``GET /api/projects/<id>/export?exportType=JSON&download_all_tasks=true``.

Where the time goes is measured by wrapping, in this process, the functions a run calls:
registering the version, ``sync_project``, Pillow's header reads (``image_size``), the import
requests, the state writes, export snapshots; what is left is Dagster's run itself.

Run: .venv/bin/python benchmarks/labeling_sync.py [--images 1000] [--labeled 200]
"""

from __future__ import annotations

import argparse
import functools
import os
import posixpath
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import dagster as dg
import numpy as np
import requests
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingestion_project.datasets import versions as versions_module
from ingestion_project.labeling import client as client_module
from ingestion_project.labeling import export as export_module
from ingestion_project.labeling import images as images_module
from ingestion_project.labeling import state as state_module
from ingestion_project.labeling import sync as sync_module
from ingestion_project.labeling.client import IMPORT_BATCH, LabelStudioClient
from ingestion_project.labeling.label_config import label_config
from ingestion_project_tests.catalogs import (
    catalog_definitions,
    materialization_metadata,
    project_catalog_of,
)
from ingestion_project_tests.label_studio import running_label_studio

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

NAME = "photo_labels"
CLASSES = ["cat", "dog"]
SIZE = 64
WARMUP_IMAGES = 5
# Seconds and calls of each wrapped function, and our client's requests, since the last reset.
SPENT = Counter[str]()
CALLS = Counter[str]()
REQUESTS = Counter[str]()


def say(message: str) -> None:
    print(message, flush=True)


def timed(key: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            SPENT[key] += time.perf_counter() - started
            CALLS[key] += 1

    return wrapper


def wrap_everywhere(original: Callable[..., Any], key: str) -> None:
    """Replace ``original`` by a timed wrapper in every project module that imported it."""
    wrapper = timed(key, original)
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] != "ingestion_project":
            continue
        for attribute, value in list(vars(module).items()):
            if value is original:
                setattr(module, attribute, wrapper)


def counted_request(original: Callable[..., Any]) -> Callable[..., Any]:
    """Count each request our client sends, as 'METHOD path' with ids replaced by <id>."""

    @functools.wraps(original)
    def wrapper(self: Any, method: str, path: str, **kwargs: Any) -> Any:
        REQUESTS[f"{method} {re.sub(r'/[0-9]+', '/<id>', path)}"] += 1
        return original(self, method, path, **kwargs)

    return wrapper


class Clock:
    """The client's ``time`` module, with its sleeps (snapshot polls, retries) timed."""

    monotonic = staticmethod(time.monotonic)
    sleep = staticmethod(timed("client sleeps", time.sleep))


def instrument() -> None:
    wrap_everywhere(versions_module.register_file_dataset, "register images")
    wrap_everywhere(sync_module.sync_project, "sync_project")
    wrap_everywhere(images_module.image_size, "image sizes")
    wrap_everywhere(state_module.write_state, "state writes")
    wrap_everywhere(export_module.read_annotations, "read annotations")
    wrap_everywhere(export_module.register_labels, "register labels")
    LabelStudioClient.import_tasks = timed("import requests", LabelStudioClient.import_tasks)  # type: ignore[method-assign]
    LabelStudioClient.export_snapshot = timed("snapshots", LabelStudioClient.export_snapshot)  # type: ignore[method-assign]
    LabelStudioClient._request = counted_request(LabelStudioClient._request)  # type: ignore[method-assign]
    client_module.time = Clock  # type: ignore[assignment]


def write_images(root: Path, folder: str, start: int, count: int) -> list[str]:
    """``count`` 64x64 PNGs of coloured 8x8 blocks, deterministic; their datastore paths."""
    rng = np.random.default_rng(start)
    (root / folder).mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(start, start + count):
        blocks = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        pixels = np.kron(blocks, np.ones((8, 8, 1), dtype=np.uint8))
        path = f"{folder}/img_{number:06d}.png"
        Image.fromarray(pixels, mode="RGB").save(root / path)
        paths.append(path)
    return paths


def task_dicts(paths: list[str], store_root: Path, document_root: Path) -> list[dict[str, Any]]:
    """The tasks our sync sends for these images (same URL, path and size), for the baseline."""
    tasks = []
    for path in paths:
        served = posixpath.relpath(str(store_root / path), str(document_root))
        url = f"/data/local-files/?{urlencode({'d': served})}"
        tasks.append({"data": {"image": url, "path": path, "width": SIZE, "height": SIZE}})
    return tasks


class Bare:
    """Label Studio's API with plain requests: what a hand-written importer does."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["Authorization"] = f"Token {token}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.url}{path}", timeout=600, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def create_project(self, title: str, config: str) -> int:
        return int(
            self.call("POST", "/api/projects", json={"title": title, "label_config": config})["id"]
        )

    def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> int:
        created = 0
        for start in range(0, len(tasks), IMPORT_BATCH):
            answer = self.call(
                "POST",
                f"/api/projects/{project}/import",
                params={"return_task_ids": "true"},
                json=tasks[start : start + IMPORT_BATCH],
            )
            created += len(answer["task_ids"])
        return created

    def task_number(self, project: int) -> int:
        return int(self.call("GET", f"/api/projects/{project}")["task_number"])

    def export_all(self, project: int) -> list[dict[str, Any]]:
        return self.call(
            "GET",
            f"/api/projects/{project}/export",
            params={"exportType": "JSON", "download_all_tasks": "true"},
        )

    def annotate(self, task_id: int, label: str) -> None:
        result = [
            {
                "from_name": "label",
                "to_name": "image",
                "type": "choices",
                "value": {"choices": [label]},
            }
        ]
        self.call("POST", f"/api/tasks/{task_id}/annotations/", json={"result": result})


def run_assets(defs: Any, *assets: str) -> tuple[float, dict[str, Any]]:
    """One in-process run of ``assets`` (as `dg launch`); wall seconds, last asset's metadata."""
    SPENT.clear()
    CALLS.clear()
    REQUESTS.clear()
    started = time.perf_counter()
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        asset_selection=[dg.AssetKey(name) for name in assets],
        run_config=QUIET,  # Dagster's debug lines would bury the figures
    )
    seconds = time.perf_counter() - started
    return seconds, materialization_metadata(result, assets[-1])


def breakdown(total: float, keys: list[str], nested: dict[str, list[str]]) -> str:
    """``key s (share)`` for each key, nested keys in brackets, and the rest as Dagster's run."""
    parts, counted = [], 0.0
    for key in keys:
        inner = [
            f"{sub} {SPENT[sub]:.2f} s" + (f" x{CALLS[sub]}" if CALLS[sub] > 1 else "")
            for sub in nested.get(key, [])
            if CALLS[sub]
        ]
        extra = f" [{', '.join(inner)}]" if inner else ""
        times = f" x{CALLS[key]}" if CALLS[key] > 1 else ""
        parts.append(f"{key} {SPENT[key]:.2f} s{times} ({SPENT[key] / total:.0%}){extra}")
        counted += SPENT[key]
    parts.append(f"the rest (Dagster's run, resources) {total - counted:.2f} s")
    if CALLS["client sleeps"]:
        parts.append(f"the client slept {SPENT['client sleeps']:.2f} s (polls, retries)")
    sent = ", ".join(f"{request} x{times}" for request, times in sorted(REQUESTS.items()))
    return "; ".join(parts) + f"\n   requests to Label Studio: {sent}"


SYNC_KEYS = ["register images", "sync_project", "snapshots"]
SYNC_NESTED = {"sync_project": ["image sizes", "import requests", "state writes"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--labeled", type=int, default=200)
    args = parser.parse_args()
    added = max(1, args.images // 10)
    say(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    work = Path(tempfile.mkdtemp(prefix="bench-labeling-"))
    try:
        document_root = work / "served"
        store_root = document_root / "store"
        store_root.mkdir(parents=True)
        home = work / "home"
        os.environ["INGESTION_HOME"] = str(home)
        say("starting Label Studio (a fresh database: about a minute of migrations)...")
        started = time.perf_counter()
        with running_label_studio(work / "label-studio", document_root=document_root) as server:
            say(
                f"Label Studio answered at {server.url} after {time.perf_counter() - started:.0f} s"
            )
            os.environ["LABEL_STUDIO_TOKEN"] = server.token
            measure(args.images, added, args.labeled, server, store_root, document_root)
            say(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(
    count: int, added: int, labeled: int, server: Any, store_root: Path, document_root: Path
) -> None:
    connection = {"url": server.url, "token": {"env": "LABEL_STUDIO_TOKEN"}}
    served = {"local_files_document_root": str(document_root)}
    raw = {
        "datastores": {"images": {"kind": "local", "root": str(store_root)}},
        "datasets": {
            "photos": {"kind": "file", "datastore": "images", "path": "photos/*.png"},
            "warmup": {"kind": "file", "datastore": "images", "path": "warmup/*.png"},
        },
        "labeling": {
            name: {
                "images": images,
                "task": "multi_class",
                "classes": CLASSES,
                "instructions": "Is it a cat or a dog?",
                "label_studio": connection,
                "image_urls": served,
            }
            for name, images in ((NAME, "photos"), ("warmup_labels", "warmup"))
        },
    }
    bare = Bare(server.url, server.token)
    started = time.perf_counter()
    paths = write_images(store_root, "photos", 0, count)
    write_images(store_root, "warmup", 10_000_000, WARMUP_IMAGES)
    say(f"wrote {count:,} PNGs of {SIZE}x{SIZE} in {time.perf_counter() - started:.1f} s")
    defs = catalog_definitions(raw)
    config = label_config(project_catalog_of(raw).labeling[NAME])
    instrument()

    # Warm both sides up (Django's first requests, Dagster's first run, Pillow's import).
    say(f"warm-up: a sync of {WARMUP_IMAGES} other images, a bare import and a bare export...")
    run_assets(defs, "warmup", "warmup_labels_project")
    warm = bare.create_project("warm-up, bare", config)
    bare.import_tasks(warm, task_dicts(paths[:WARMUP_IMAGES], store_root, document_root))
    bare.export_all(warm)

    # 1. First sync against the bare import of the same tasks.
    say(f"1. first sync of {count:,} images (bare import first, then ours)...")
    tasks = task_dicts(paths, store_root, document_root)
    started = time.perf_counter()
    baseline_project = bare.create_project("bare import", config)
    bare_created = bare.import_tasks(baseline_project, tasks)
    bare_first = time.perf_counter() - started
    first, meta = run_assets(defs, "photos", f"{NAME}_project")
    project = int(meta["project_id"])
    in_ls = bare.task_number(project)
    first_spent = dict(SPENT)
    say(
        f"   bare import (project + {bare_created:,} tasks in batches of {IMPORT_BATCH}): "
        f"{bare_first:.2f} s"
    )
    say(
        f"   ours (version registered + sync): {first:.2f} s ({first / bare_first:.2f}x the bare "
        f"import); {meta['new_tasks']:,} new tasks, Label Studio holds {in_ls:,}"
    )
    say("   " + breakdown(first, SYNC_KEYS, SYNC_NESTED))
    say(
        f"   sync_project alone (no Dagster run, no progress snapshot): "
        f"{first_spent['sync_project']:.2f} s, {first_spent['sync_project'] / bare_first:.2f}x "
        "the bare import"
    )
    sizes = first_spent.get("image sizes", 0.0)
    say(
        f"   Pillow header reads: {sizes:.2f} s for {count:,} images "
        f"({sizes / count * 1000:.2f} ms each), {sizes / first:.1%} of the first sync"
    )
    started = time.perf_counter()
    for path in paths:  # the same reads again, bare, for comparison (files in the page cache)
        with Image.open(store_root / path) as opened:
            opened.size  # noqa: B018
    plain_sizes = time.perf_counter() - started
    say(f"   the same header reads with Image.open(path) directly: {plain_sizes:.2f} s")

    # 2. Nothing changed.
    say("2. second sync, nothing changed...")
    again, meta = run_assets(defs, "photos", f"{NAME}_project")
    after = bare.task_number(project)
    verdict = "OK" if (meta["new_tasks"], after) == (0, in_ls) else "FAIL"
    say(
        f"   ours: {again:.2f} s ({again / first:.2f}x the first sync, {again / bare_first:.2f}x "
        f"its bare import); {meta['new_tasks']} new tasks, Label Studio holds {after:,} "
        f"(was {in_ls:,}): {verdict}"
    )
    say("   " + breakdown(again, SYNC_KEYS, SYNC_NESTED))

    # 3. 10 % more images.
    say(f"3. incremental sync after adding {added:,} images (bare import first, then ours)...")
    new_paths = write_images(store_root, "photos", count, added)
    new_tasks = task_dicts(new_paths, store_root, document_root)
    started = time.perf_counter()
    bare_added = bare.import_tasks(baseline_project, new_tasks)
    bare_incremental = time.perf_counter() - started
    incremental, meta = run_assets(defs, "photos", f"{NAME}_project")
    grown = bare.task_number(project)
    verdict = "OK" if (meta["new_tasks"], grown) == (added, in_ls + added) else "FAIL"
    say(f"   bare import of the {bare_added:,} new tasks: {bare_incremental:.2f} s")
    say(
        f"   ours: {incremental:.2f} s ({incremental / bare_incremental:.2f}x); "
        f"{meta['new_tasks']:,} tasks added, Label Studio holds {grown:,} "
        f"(expected {in_ls + added:,}): {verdict}"
    )
    say("   " + breakdown(incremental, SYNC_KEYS, SYNC_NESTED))
    say(
        f"   sync_project alone: {SPENT['sync_project']:.2f} s, "
        f"{SPENT['sync_project'] / bare_incremental:.2f}x the bare import"
    )

    # 4. Export after labeling.
    state = project_state(raw, home=Path(os.environ["INGESTION_HOME"]))
    chosen = sorted(state.tasks)[:labeled]
    say(f"4. labeling {len(chosen)} tasks through the API (not timed)...")
    started = time.perf_counter()
    for number, path in enumerate(chosen, start=1):
        bare.annotate(state.tasks[path].id, CLASSES[number % 2])
        if number % 50 == 0 or number == len(chosen):
            say(f"   {number} of {len(chosen)} annotated ({time.perf_counter() - started:.0f} s)")
    say("   export (bare request first, then ours)...")
    started = time.perf_counter()
    exported = bare.export_all(project)
    bare_export = time.perf_counter() - started
    export, meta = run_assets(defs, NAME)
    exported_paths = [task["data"]["path"] for task in exported]
    annotated = sum(1 for task in exported if task.get("annotations"))
    unique = len(set(exported_paths)) == len(exported_paths) == count + added
    say(
        f"   bare GET .../export?exportType=JSON&download_all_tasks=true: {bare_export:.2f} s, "
        f"{len(exported):,} tasks, {annotated} annotated, each image once: "
        f"{'OK' if unique else 'FAIL'}"
    )
    verdict = "OK" if meta["labeled"] == len(chosen) else "FAIL"
    say(
        f"   ours (snapshot + labeled dataset v{meta['version']} registered): {export:.2f} s "
        f"({export / bare_export:.2f}x); {meta['labeled']} labeled rows: {verdict}"
    )
    say("   " + breakdown(export, ["snapshots", "read annotations", "register labels"], {}))


def project_state(raw: dict[str, Any], home: Path) -> Any:
    from ingestion_project.datasets.api import Workspace

    registry = Workspace(project_catalog_of(raw), home).registry
    state = state_module.read_state(registry.store, registry.prefix, NAME)
    assert state is not None
    return state


if __name__ == "__main__":
    main()
