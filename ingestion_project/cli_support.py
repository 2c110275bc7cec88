"""What every `ingestion` command shares: which project, its .env, and worded load errors.

Commands run in a Dagster project (the working directory or ``--project``) and load its
catalogs as Dagster does. A catalog mistake prints the worded problems and exits 2, never a
traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from ingestion_project.catalog.loading import LoadedProject

F = TypeVar("F", bound=Callable[..., Any])
CATALOG_MISTAKE_EXIT = 2


class CatalogMistake(click.ClickException):
    """A mistake in the project or its catalogs: the message says what and where; exit 2."""

    exit_code = CATALOG_MISTAKE_EXIT


def project_option(command: F) -> F:
    return click.option(
        "--project",
        "project",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        default=None,
        help="The Dagster project's folder (default: the working directory or a parent).",
    )(command)


def load_dotenv_of(project: Path | None) -> None:
    """Read the project's .env as `dg dev` and `dagster dev` do; set variables win."""
    from dotenv import load_dotenv

    from ingestion_project.catalog.loading import ProjectNotFoundError, find_project_root

    try:
        root = find_project_root(project)
    except ProjectNotFoundError:
        return
    if (root / ".env").is_file():
        load_dotenv(root / ".env", override=False)


def loaded_project(project: Path | None) -> LoadedProject:
    """The project's catalogs, or a worded CatalogMistake (exit 2) if they cannot load."""
    from ingestion_project.catalog.errors import CatalogError
    from ingestion_project.catalog.loading import ProjectNotFoundError, load_project

    load_dotenv_of(project)
    try:
        return load_project(project)
    except CatalogError as error:
        raise CatalogMistake(f"the catalog has mistakes:\n{error}") from None
    except ProjectNotFoundError as error:
        raise CatalogMistake(str(error)) from None
    except Exception as error:  # Dagster's own load errors: bad YAML, unknown component type
        raise CatalogMistake(
            f"the project's definitions could not load: {innermost_message(error)}\n"
            "Fix the file it names; `dg check defs` in the project's folder shows the same."
        ) from None


def innermost_message(error: BaseException) -> str:
    """The root cause's message: Dagster wraps load errors in a tree of context."""
    seen: set[int] = set()
    while id(error) not in seen:
        seen.add(id(error))
        cause = error.__cause__ or error.__context__
        if cause is None:
            break
        error = cause
    return f"{type(error).__name__}: {error}"


@contextmanager
def explained_errors() -> Iterator[None]:
    """Turn the errors a person can cause into one clear message and a non-zero exit.

    Unknown names and versions are usage errors and catalog mistakes exit 2; everything else
    exits 1.
    """
    from ingestion_project.catalog.errors import CatalogError
    from ingestion_project.datasets.api import UnknownDatasetError
    from ingestion_project.datasets.versions import DatasetError
    from ingestion_project.datastores.base import DatastoreError
    from ingestion_project.records import RecordError
    from ingestion_project.registry import RegistryError
    from ingestion_project.training.estimators import TrainingError

    try:
        yield
    except UnknownDatasetError as error:
        raise click.UsageError(str(error)) from None
    except CatalogError as error:
        raise CatalogMistake(f"the catalog has mistakes:\n{error}") from None
    except (
        DatasetError,
        DatastoreError,
        RegistryError,
        RecordError,
        TrainingError,
        OSError,
    ) as error:
        raise click.ClickException(str(error)) from None
