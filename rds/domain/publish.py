"""Turn what the owner hands to ``Domain.publish`` into a private table and public metadata."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from rds.errors import InvalidInput

Bounds = Mapping[str, tuple[float, float]]


def load_data(data: pd.DataFrame | str | Path) -> pd.DataFrame:
    """Accept a DataFrame or a CSV/Parquet path; refuse anything malformed with a clear error."""
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, str | Path):
        frame = _read_file(Path(data))
    else:
        raise InvalidInput(
            f"publish() takes a pandas DataFrame or a CSV/Parquet path, not {type(data).__name__}."
        )
    if frame.empty or len(frame.columns) == 0:
        raise InvalidInput("The data has no rows or no columns; nothing to publish.")
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        raise InvalidInput(f"Column names must be unique; got {names}.")
    frame = frame.copy()
    frame.columns = names
    return frame.reset_index(drop=True)


def _read_file(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InvalidInput(f"No file at {path}.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in {".csv", ".tsv", ".txt"}:
            with path.open(newline="", encoding="utf-8") as handle:
                widths = {
                    len(row)
                    for row in csv.reader(handle, delimiter="\t" if suffix == ".tsv" else ",")
                }
            if len(widths) > 1:
                raise InvalidInput(
                    f"{path.name} is not a well-formed CSV: rows have {sorted(widths)} fields."
                )
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except InvalidInput:
        raise
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Could not read {path.name}: {exc}") from None
    raise InvalidInput(f"Unsupported file type {suffix!r}: publish CSV or Parquet.")


def schema(frame: pd.DataFrame, bounds: Bounds | None) -> list[dict[str, Any]]:
    """Public column descriptions; declared bounds are checked against the data."""
    bounds = dict(bounds or {})
    unknown = sorted(set(bounds) - set(frame.columns))
    if unknown:
        raise InvalidInput(f"Bounds given for unknown columns: {unknown}.")
    columns = []
    for name in frame.columns:
        col = frame[name]
        entry: dict[str, Any] = {
            "name": name,
            "dtype": str(col.dtype),
            "nullable": bool(col.isna().any()),
            "bounds": None,
        }
        if name in bounds:
            entry["bounds"] = list(_checked_bounds(col, bounds[name]))
        columns.append(entry)
    return columns


def _checked_bounds(col: pd.Series, pair: tuple[float, float]) -> tuple[float, float]:
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise InvalidInput(f"Bounds apply to numeric columns; {col.name!r} is {col.dtype}.")
    try:
        low, high = (float(pair[0]), float(pair[1]))
    except (TypeError, ValueError, IndexError):
        raise InvalidInput(f"Bounds for {col.name!r} must be a (low, high) pair.") from None
    if not low < high:
        raise InvalidInput(f"Bounds for {col.name!r}: low must be below high, got {pair}.")
    outside = int(((col < low) | (col > high)).sum())
    if outside:
        raise InvalidInput(
            f"{outside} value(s) of {col.name!r} lie outside the declared bounds "
            f"[{low}, {high}]; widen the bounds or clean the data."
        )
    return low, high
