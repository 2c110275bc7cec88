"""Errors a catalog author can cause, worded to name the file, the entry and the fix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CatalogProblem:
    """One mistake in one entry of a catalog file."""

    entry: str
    problem: str
    fix: str

    def render(self, source: Path | str) -> str:
        return f"{source}: {self.entry}: {self.problem.rstrip('.')}. {self.fix}"


class CatalogError(ValueError):
    """Raised at load time when a catalog YAML file has mistakes; lists every one found."""

    def __init__(self, source: Path | str, problems: Iterable[CatalogProblem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        lines = [problem.render(source) for problem in self.problems]
        super().__init__("\n".join(lines))
