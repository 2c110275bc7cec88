"""Sensor ticks as Dagster's code server evaluates them, against an instance that cannot open.

The code server hands a tick the instance's ref and only the top-level resources the sensor
declares (``dagster/_grpc/impl.py``, ``get_external_sensor_execution``). A tick that opens the
instance fails on :func:`unopenable_instance_ref`, so a test can tell that it did not.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import dagster as dg


def unopenable_instance_ref(tmp_path: Path) -> Any:
    """The ref of an instance whose folder became a file: opening it fails."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    instance = dg.DagsterInstance.local_temp(str(home))
    ref = instance.get_ref()
    instance.dispose()
    shutil.rmtree(home)
    home.write_text("not a folder")
    return ref


def code_server_tick(
    defs: dg.Definitions, name: str, instance_ref: Any, cursor: str | None = None
) -> Any:
    """One tick of sensor ``name`` with the instance's ref and only its declared resources."""
    sensor = defs.resolve_sensor_def(name)
    resources = defs.resources or {}
    declared = {key: resources[key] for key in sensor.required_resource_keys}
    with dg.build_sensor_context(
        instance_ref=instance_ref, cursor=cursor, definitions=defs, resources=declared
    ) as context:
        return sensor.evaluate_tick(context)
