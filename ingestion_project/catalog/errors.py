"""Errors a catalog author can cause, worded to name the file, the entry and the fix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CatalogProblem:
    """One mistake in one entry of a catalog file (``source``: the file, when known)."""

    entry: str
    problem: str
    fix: str
    source: str | None = None

    def render(self, source: Path | str | None = None) -> str:
        where = self.source or source or "catalog"
        return f"{where}: {self.entry}: {self.problem.rstrip('.')}. {self.fix}"


class CatalogError(Exception):
    """Raised at load time when catalogs have mistakes; lists every one found, file by file.

    Not a ValueError on purpose: raised inside pydantic validation it must travel unchanged.
    """

    def __init__(
        self, problems: Iterable[CatalogProblem], source: Path | str | None = None
    ) -> None:
        self.problems = tuple(
            problem if problem.source or source is None else _with_source(problem, source)
            for problem in problems
        )
        self.source = (
            source if source is not None else (self.problems[0].source if self.problems else None)
        )
        super().__init__("\n".join(problem.render() for problem in self.problems))


def _with_source(problem: CatalogProblem, source: Path | str) -> CatalogProblem:
    return CatalogProblem(problem.entry, problem.problem, problem.fix, str(source))
