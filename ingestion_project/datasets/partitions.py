"""Azure ML partition formats: values encoded in a file's path become columns of its rows.

``data/{region}/{date:yyyy/MM/dd}/*.parquet`` matches ``data/eu/2024/01/31/part-0.parquet`` and
gives every row of that file ``region='eu'`` and ``date=2024-01-31``. Date parts use the .NET
letters yyyy, MM, dd, HH, mm, ss; any other character in a date part is literal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([^{}]*))?\}")
_DATE_TOKEN = re.compile(r"yyyy|MM|dd|HH|mm|ss")
_DATE_FIELDS = {
    "yyyy": ("year", r"\d{4}"),
    "MM": ("month", r"\d{2}"),
    "dd": ("day", r"\d{2}"),
    "HH": ("hour", r"\d{2}"),
    "mm": ("minute", r"\d{2}"),
    "ss": ("second", r"\d{2}"),
}

PartitionValue = str | datetime
# The finest date token present says how long a dated file's period is.
_GRANULARITY = (
    ("ss", "second"),
    ("mm", "minute"),
    ("HH", "hour"),
    ("dd", "day"),
    ("MM", "month"),
    ("yyyy", "year"),
)


class PartitionFormatError(ValueError):
    """A partition format is malformed, or a path's values are not valid for it."""


@dataclass(frozen=True)
class PartitionPart:
    """One ``{name}`` or ``{name:date format}`` placeholder."""

    name: str
    date_format: str | None = None


class PartitionFormat:
    """A compiled partition format: which columns it names and how to read them from a path."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts: list[PartitionPart] = []
        pattern: list[str] = []
        position = 0
        clean = text.lstrip("/")
        for match in _PLACEHOLDER.finditer(clean):
            pattern.append(_literal(clean[position : match.start()], text))
            pattern.append(self._placeholder(match.group(1), match.group(2)))
            position = match.end()
        pattern.append(_literal(clean[position:], text))
        self.regex = re.compile("".join(pattern))

    @property
    def columns(self) -> list[str]:
        return [part.name for part in self.parts]

    def _placeholder(self, name: str, date_format: str | None) -> str:
        if name in self.columns:
            raise PartitionFormatError(
                f"partition format '{self.text}' names '{name}' twice: give each "
                "placeholder its own name"
            )
        index = len(self.parts)
        self.parts.append(PartitionPart(name, date_format))
        if date_format is None:
            return f"(?P<p{index}>[^/]+)"
        if not date_format:
            raise PartitionFormatError(
                f"partition format '{self.text}': '{{{name}:}}' has an empty date format; "
                f"write '{{{name}}}' for text or e.g. '{{{name}:yyyy/MM/dd}}' for a date"
            )
        pieces: list[str] = []
        seen: set[str] = set()
        position = 0
        for token in _DATE_TOKEN.finditer(date_format):
            if token.group() in seen:
                raise PartitionFormatError(
                    f"partition format '{self.text}': '{{{name}:{date_format}}}' has "
                    f"'{token.group()}' twice"
                )
            seen.add(token.group())
            field, digits = _DATE_FIELDS[token.group()]
            pieces.append(re.escape(date_format[position : token.start()]))
            pieces.append(f"(?P<p{index}_{field}>{digits})")
            position = token.end()
        if not seen:
            raise PartitionFormatError(
                f"partition format '{self.text}': '{{{name}:{date_format}}}' has no date parts; "
                "use yyyy, MM, dd, HH, mm, ss (e.g. 'yyyy/MM/dd'), or '{name}' for text"
            )
        pieces.append(re.escape(date_format[position:]))
        return "".join(pieces)

    def values(self, path: str) -> dict[str, PartitionValue] | None:
        """The column values ``path`` encodes, or None if it does not match the format.

        Raises PartitionFormatError when the path matches but a date part is impossible.
        """
        match = self.regex.fullmatch(path)
        if match is None:
            return None
        found: dict[str, PartitionValue] = {}
        for index, part in enumerate(self.parts):
            if part.date_format is None:
                found[part.name] = match.group(f"p{index}")
                continue
            fields = {
                key.split("_", 1)[1]: int(value)
                for key, value in match.groupdict().items()
                if key.startswith(f"p{index}_") and value is not None
            }
            try:
                found[part.name] = datetime(
                    fields.get("year", 1),
                    fields.get("month", 1),
                    fields.get("day", 1),
                    fields.get("hour", 0),
                    fields.get("minute", 0),
                    fields.get("second", 0),
                )
            except ValueError as error:
                raise PartitionFormatError(
                    f"'{path}' matches partition format '{self.text}', but its '{part.name}' "
                    f"is not a valid date for '{part.date_format}' ({error})"
                ) from None
        return found


def date_placeholder(partitions: PartitionFormat) -> PartitionPart | None:
    """The first ``{name:date format}`` placeholder: the date a file's path gives it."""
    return next((part for part in partitions.parts if part.date_format), None)


def date_granularity(partitions: PartitionFormat) -> str | None:
    """How long a dated file's period is ('day' for 'yyyy/MM/dd'), or None without a date."""
    part = date_placeholder(partitions)
    if part is None or part.date_format is None:
        return None
    tokens = set(_DATE_TOKEN.findall(part.date_format))
    return next(unit for token, unit in _GRANULARITY if token in tokens)


def _literal(text: str, whole: str) -> str:
    """Regex for the text between placeholders: a path glob (``*``, ``**``, ``?``, ``[..]``)."""
    if "{" in text or "}" in text:
        raise PartitionFormatError(
            f"partition format '{whole}' has an unmatched '{{' or '}}' or a bad placeholder; "
            "placeholders look like '{name}' or '{name:yyyy/MM/dd}'"
        )
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if text.startswith("**/", index):
            out.append("(?:[^/]+/)*")
            index += 3
            continue
        if text.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and "]" in text[index + 1 :]:
            end = text.index("]", index + 1)
            body = text[index + 1 : end]
            negate = body.startswith("!")
            body = re.sub(r"([\\\]^])", r"\\\1", body[1:] if negate else body)
            out.append(f"[^/{body}]" if negate else f"[{body}]")
            index = end + 1
            continue
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)
