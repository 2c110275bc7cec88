"""Read one file of a tabular dataset into pandas, by format, with errors that say which file."""

from __future__ import annotations

import io
from typing import IO

import pandas as pd


class MalformedFileError(ValueError):
    """A file could not be parsed in the dataset's declared format."""


def read_table(
    stream: IO[bytes], *, file_format: str, path: str, separator: str = ",", encoding: str = "utf-8"
) -> pd.DataFrame:
    """Parse one file; raise MalformedFileError naming the file and the fix."""
    try:
        if file_format == "parquet":
            return pd.read_parquet(io.BytesIO(stream.read()), engine="pyarrow")
        if file_format == "jsonl":
            frame = pd.read_json(stream, lines=True, encoding=encoding)
        else:
            raw = stream.read()
            # pyarrow turns undecodable values into bytes instead of failing: check first.
            raw.decode(encoding)
            frame = pd.read_csv(io.BytesIO(raw), sep=separator, encoding=encoding, engine="pyarrow")
    except UnicodeDecodeError as error:
        raise MalformedFileError(
            f"'{path}' is not valid {encoding} text ({error.reason} at byte {error.start}). "
            "Set 'encoding:' on the dataset to the file's encoding."
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as error:
        raise MalformedFileError(
            f"'{path}' could not be read as {file_format}: {_first_line(error)}. "
            "Fix the file, or the dataset's 'format:'/'separator:' if they are wrong."
        ) from None
    if frame.columns.empty:
        raise MalformedFileError(
            f"'{path}' has no columns (is it empty?). Fix the file or remove it from the dataset."
        )
    return frame


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
