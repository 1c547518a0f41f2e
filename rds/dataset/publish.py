"""Turn what the owner hands to ``Domain.publish`` into a private table and public metadata."""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from rds.dp.model import DPColumn, DPSchema
from rds.errors import InvalidInput

Bounds = Mapping[str, tuple[Any, Any]]
Categories = Mapping[str, Sequence[Any]]
DateColumns = bool | Sequence[str] | Mapping[str, str | None] | None

#: An ISO 8601 date or timestamp, as CSV files write them: ``2023-09-04``,
#: ``2023-09-04 13:05``, ``2023-09-04T13:05:59.5+02:00``. Only columns whose every value
#: has this form are read as dates unasked; anything else needs ``parse_dates=``.
ISO_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
#: What ``dtypes=`` takes besides a pandas dtype name.
DTYPE_NAMES = {
    "date": "date",
    "datetime": "date",
    "timestamp": "date",
    "int": "Int64",
    "integer": "Int64",
    "float": "float64",
    "number": "float64",
    "str": "object",
    "string": "object",
    "text": "object",
    "category": "category",
    "bool": "boolean",
    "boolean": "boolean",
}


def load_data(
    data: pd.DataFrame | str | Path,
    *,
    parse_dates: DateColumns = None,
    dtypes: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Accept a DataFrame or a CSV/Parquet path; refuse anything malformed with a clear error.

    Text columns whose every value is an ISO date or timestamp become dates (``parse_dates
    =False`` keeps them text; a list of columns parses those too, in any format pandas reads,
    month first when ambiguous; ``{"day": "%d/%m/%Y"}`` names the format). ``dtypes``
    declares column types (``"date"``, ``"int"``, ``"float"``, ``"str"``, ``"category"``,
    ``"bool"`` or a pandas dtype), checked against every value. Returns the frame and the
    columns read as dates.
    """
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
    # SQL folds case: DuckDB would rename one of "Age" and "age", and a query could not say
    # which it reads.
    folded: dict[str, str] = {}
    for column in names:
        if (other := folded.setdefault(column.casefold(), column)) != column:
            raise InvalidInput(
                f"Columns {other!r} and {column!r} differ only in case; SQL cannot tell them "
                "apart. Rename one of them."
            )
    frame = frame.copy()
    frame.columns = names
    frame = frame.reset_index(drop=True)
    return _typed(frame, parse_dates, dict(dtypes or {}))


def _typed(
    frame: pd.DataFrame, parse_dates: DateColumns, dtypes: dict[str, str]
) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` with its declared types applied and its ISO date columns parsed."""
    formats: dict[str, str | None] = {}
    if isinstance(parse_dates, Mapping):
        formats = {str(k): v for k, v in parse_dates.items()}
    elif parse_dates is not None and not isinstance(parse_dates, bool):
        if isinstance(parse_dates, str) or not isinstance(parse_dates, Sequence):
            raise InvalidInput(
                "parse_dates takes a list of column names, a mapping of column to format "
                "({'day': '%d/%m/%Y'}), True or False."
            )
        formats = dict.fromkeys(parse_dates)
    forced = list(formats)
    unknown = sorted({*forced, *dtypes} - set(frame.columns))
    if unknown:
        raise InvalidInput(f"parse_dates or dtypes name unknown columns: {unknown}.")
    dated: list[str] = []
    for column in frame.columns:
        wanted = dtypes.get(column)
        if wanted is not None:
            kind = DTYPE_NAMES.get(str(wanted).lower(), str(wanted))
            frame[column] = _as_declared(frame[column], kind)
            if kind == "date":
                dated.append(column)
        elif column in forced:
            frame[column] = _as_declared(frame[column], "date", formats[column])
            dated.append(column)
        elif parse_dates is not False and _looks_like_dates(frame[column]):
            frame[column] = _to_dates(frame[column], iso=True)
            dated.append(column)
    return frame, dated


def _looks_like_dates(col: pd.Series) -> bool:
    if not (pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)):
        return False
    values = col.dropna()
    if values.empty or not all(isinstance(v, str) for v in values):
        return False
    return bool(values.str.fullmatch(ISO_DATE).all())


def _to_dates(col: pd.Series, *, iso: bool) -> pd.Series:
    """Dates, in UTC when any value names an offset (mixed offsets cannot share a dtype)."""
    text = col.astype("string")
    zoned = bool(text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True, na=False).any())
    return pd.to_datetime(col, format="ISO8601" if iso else "mixed", utc=zoned, errors="raise")


def _as_declared(col: pd.Series, kind: str, fmt: str | None = None) -> pd.Series:
    """``col`` as the declared type (dates in ``fmt``, or any format pandas reads, month
    first when ambiguous); every value must convert."""
    try:
        if kind == "date":
            if pd.api.types.is_datetime64_any_dtype(col):
                return col
            converted = pd.to_datetime(col, format=fmt) if fmt else _to_dates(col, iso=False)
        elif kind == "category":
            converted = col.astype("category")
        else:
            converted = col.astype(kind)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInput(
            f"Column {col.name!r} cannot be read as {kind}: {exc}. Clean the data or declare "
            "another type."
        ) from None
    lost = int((converted.isna() & col.notna()).sum())
    if lost:
        raise InvalidInput(f"{lost} value(s) of {col.name!r} cannot be read as {kind}.")
    return converted


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


def schema(
    frame: pd.DataFrame, bounds: Bounds | None, categories: Categories | None = None
) -> list[dict[str, Any]]:
    """Public column descriptions; declared bounds and category domains are checked.

    ``categories`` declares a column's public domain (every value it may take, known
    without looking at the data), which differentially private GROUP BYs need.
    """
    bounds = dict(bounds or {})
    categories = dict(categories or {})
    for given, what in ((bounds, "Bounds"), (categories, "Categories")):
        unknown = sorted(set(given) - set(frame.columns))
        if unknown:
            raise InvalidInput(f"{what} given for unknown columns: {unknown}.")
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
        if name in categories:
            entry["categories"] = _checked_categories(col, categories[name])
        columns.append(entry)
    return columns


def privacy_unit(
    frame: pd.DataFrame, column: str | None, max_contributions: int
) -> tuple[dict[str, Any], dict[str, int]]:
    """The public description of who a record belongs to, and the owner's view of the cap.

    Without a unit column each row is one individual. With one, differentially private
    queries count at most ``max_contributions`` rows per individual. The second value is
    owner-only: ``units`` (individuals), ``capped`` (how many have more rows than that, so
    DP queries count only ``max_contributions`` of them, picked at random per query) and
    ``rows_beyond`` (rows over the cap in all); ``capped > 0`` means queries cap.
    """
    if isinstance(max_contributions, bool) or not isinstance(max_contributions, int):
        raise InvalidInput("max_contributions must be a whole number of rows.")
    if max_contributions < 1:
        raise InvalidInput("max_contributions must be at least 1.")
    if column is None:
        return {"column": None, "max_contributions": 1}, {
            "units": len(frame),
            "capped": 0,
            "rows_beyond": 0,
        }
    if column not in frame.columns:
        raise InvalidInput(f"The privacy unit {column!r} is not a column of the data.")
    if frame[column].isna().any():
        raise InvalidInput(f"The privacy unit {column!r} has missing values; every row needs one.")
    rows = frame[column].value_counts()
    over = rows[rows > max_contributions]
    cap = {
        "units": len(rows),
        "capped": len(over),
        "rows_beyond": int((over - max_contributions).sum()),
    }
    return {"column": column, "max_contributions": max_contributions}, cap


def _checked_bounds(col: pd.Series, pair: tuple[Any, Any]) -> tuple[Any, Any]:
    if pd.api.types.is_datetime64_any_dtype(col):
        return _checked_date_bounds(col, pair)
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise InvalidInput(
            f"Bounds apply to numeric and date columns; {col.name!r} is {col.dtype}."
        )
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


def _checked_date_bounds(col: pd.Series, pair: tuple[Any, Any]) -> tuple[str, str]:
    """A date column's declared range, published as ISO text."""
    tz = getattr(col.dtype, "tz", None)
    try:
        low, high = (pd.Timestamp(pair[0]), pd.Timestamp(pair[1]))
    except (TypeError, ValueError, IndexError):
        raise InvalidInput(
            f"Bounds for the date column {col.name!r} must be a (first, last) pair of dates, "
            "e.g. ('2020-01-01', '2024-12-31')."
        ) from None
    if tz is not None:
        low, high = (t.tz_localize(tz) if t.tzinfo is None else t for t in (low, high))
    elif low.tzinfo is not None or high.tzinfo is not None:
        raise InvalidInput(f"{col.name!r} has no time zone; give its bounds without one.")
    if not low < high:
        raise InvalidInput(f"Bounds for {col.name!r}: the first must be before the last.")
    outside = int(((col < low) | (col > high)).sum())
    if outside:
        raise InvalidInput(
            f"{outside} value(s) of {col.name!r} lie outside the declared bounds "
            f"[{low.isoformat()}, {high.isoformat()}]; widen the bounds or clean the data."
        )
    return low.isoformat(), high.isoformat()


def _checked_categories(col: pd.Series, values: Sequence[Any]) -> list[Any]:
    if isinstance(values, str) or not isinstance(values, Sequence | set | frozenset):
        raise InvalidInput(f"Categories for {col.name!r} must be a list of values.")
    domain = [v.item() if hasattr(v, "item") else v for v in values]
    if not domain or not all(isinstance(v, str | int | float | bool) for v in domain):
        raise InvalidInput(
            f"Categories for {col.name!r} must be a non-empty list of strings or numbers."
        )
    if len(set(domain)) != len(domain):
        raise InvalidInput(f"Categories for {col.name!r} repeat a value.")
    outside = sorted(map(str, set(col.dropna().unique()) - set(domain)))
    if outside:
        raise InvalidInput(
            f"{len(outside)} value(s) of {col.name!r} are not among its declared categories; "
            "declare every value the column can take."
        )
    return domain


def schema_for_dp(dataset: str, meta: dict[str, Any], *, needs_cap: bool) -> DPSchema:
    """``DPSchema`` from a dataset's public metadata (owner and scientist sides alike)."""
    unit = meta.get("privacy_unit") or {}
    columns = tuple(
        DPColumn(
            name=c["name"],
            dtype=c["dtype"],
            bounds=tuple(c["bounds"]) if c.get("bounds") else None,
            categories=tuple(c["categories"]) if c.get("categories") else None,
            # published from the data: False lets COUNT(col) share COUNT(*)'s noise
            nullable=c["nullable"] if isinstance(c.get("nullable"), bool) else None,
        )
        for c in meta.get("schema", [])
    )
    return DPSchema(
        dataset=dataset,
        columns=columns,
        privacy_unit=unit.get("column"),
        max_contributions=int(unit.get("max_contributions") or 1),
        needs_cap=needs_cap,
    )
