"""The value objects of differentially private SQL: schema in, plan out.

:class:`DPSchema` is what the data owner declared when publishing (column bounds, category
domains, the privacy unit and its contribution bound); :class:`DPPlan` is what planning
produces and the domain stores as JSON until the release (:mod:`rds.dp.plan`
writes it, :mod:`rds.dp.mechanism` calibrates and releases it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from itertools import product
from typing import Any

from rds.errors import InvalidInput


@dataclass(frozen=True)
class DPColumn:
    """One column of the dataset's public schema, as the data owner declared it.

    ``nullable`` is the published flag (``publish`` sets it from the data: whether any value
    is missing). ``False`` lets ``COUNT(col)`` be ``COUNT(*)``, one noisy count fewer; when
    it is unknown (``None``) the dtype decides: only NumPy ints and bools cannot be missing.
    """

    name: str
    dtype: str
    bounds: tuple[Any, Any] | None = None  # floats; ISO text for a date column
    categories: tuple[Any, ...] | None = None
    nullable: bool | None = None
    #: A GROUP BY key computed from a column (a date bucket), as SQL over the table's
    #: columns; its ``categories`` are every value it can take, from public bounds.
    expression: str | None = None

    @property
    def may_be_missing(self) -> bool:
        """Whether a value of this column may be NULL or NaN (so ``COUNT(col)`` may differ
        from ``COUNT(*)``)."""
        if self.nullable is not None:
            return bool(self.nullable)
        return nullable_dtype(self.dtype)


@dataclass(frozen=True)
class DPSchema:
    """What DP planning may know about a dataset: public schema and contribution bounds."""

    dataset: str
    columns: tuple[DPColumn, ...]
    privacy_unit: str | None = None
    max_contributions: int = 1
    needs_cap: bool = False


@dataclass(frozen=True)
class DPAggregate:
    """One noisy vector: an exact integer aggregate per cell, and the noise it gets.

    ``column`` is its name in the frame ``plan.sql`` returns; ``sensitivity`` its L1 (= L2)
    change per individual and ``scale`` the noise scale (Laplace ``b`` or Gaussian sigma),
    both in integer units; one unit is worth ``unit`` (1 for counts, ``2**-p`` for sums).
    ``clamp`` is the integer range ``(lo_q, hi_q)`` of one summed row.
    """

    column: str
    kind: str
    source: str | None
    sensitivity: int
    unit: float = 1.0
    clamp: tuple[int, int] | None = None
    scale: float = 0.0  # set by calibration (rds.dp.mechanism)


@dataclass(frozen=True)
class DPMeasure:
    """One requested output column and the noisy aggregates it is computed from.

    ``kind`` is ``count``, ``sum`` or ``avg``; ``numerator`` names a :class:`DPAggregate`;
    an ``avg`` also has a ``denominator`` (the count of the same rows) and the ``bounds``
    its value is clipped into.
    """

    name: str
    kind: str
    source: str | None
    numerator: str
    denominator: str | None = None
    bounds: tuple[float, float] | None = None


@dataclass(frozen=True)
class DPPlan:
    """A planned DP query: the SQL to run privately and how to add noise to its result.

    Examples
    --------
    >>> plan = DPPlan.from_dict(json.loads(stored))  # doctest: +SKIP
    >>> plan.sql, plan.epsilon  # doctest: +SKIP
    """

    sql: str
    keys: tuple[str, ...]
    domains: tuple[tuple[Any, ...], ...]
    measures: tuple[DPMeasure, ...]
    aggregates: tuple[DPAggregate, ...]
    order_by: tuple[tuple[str, bool], ...]  # (output column, descending), applied after noise
    epsilon: float
    delta: float
    mechanism: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; :meth:`from_dict` rebuilds the plan from it."""
        return {"format": 1, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DPPlan:
        """Rebuild a plan stored with :meth:`to_dict` (lists become tuples again)."""
        try:
            if d["format"] != 1:
                raise InvalidInput(f"Unknown DP plan format {d['format']!r}.")
            return cls(
                sql=str(d["sql"]),
                keys=tuple(d["keys"]),
                domains=tuple(tuple(v) for v in d["domains"]),
                measures=tuple(
                    DPMeasure(**{**m, "bounds": _pair(m["bounds"])}) for m in d["measures"]
                ),
                aggregates=tuple(
                    DPAggregate(**{**a, "clamp": _pair(a["clamp"])}) for a in d["aggregates"]
                ),
                order_by=tuple((str(c), bool(desc)) for c, desc in d["order_by"]),
                epsilon=float(d["epsilon"]),
                delta=float(d["delta"]),
                mechanism=str(d["mechanism"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"This is not a stored DP plan: {exc!r}.") from None

    @property
    def cells(self) -> list[tuple[Any, ...]]:
        """Every group of the released table: the cross product of the key domains."""
        return list(product(*self.domains))


def _pair(value: Any) -> Any:
    return None if value is None else tuple(value)


def _dtype(dtype: str) -> Any:
    import pandas as pd

    try:
        return pd.api.types.pandas_dtype(dtype)
    except TypeError:
        return None


def numeric_dtype(dtype: str) -> bool:
    import pandas as pd

    parsed = _dtype(dtype)
    return parsed is not None and bool(pd.api.types.is_numeric_dtype(parsed))


def nullable_dtype(dtype: str) -> bool:
    import numpy as np

    parsed = _dtype(dtype)  # NumPy ints and bools cannot hold a missing value
    return not (isinstance(parsed, np.dtype) and parsed.kind in "iub")


def date_dtype(dtype: str) -> bool:
    """A datetime dtype without a time zone (the one date buckets are drawn on)."""
    import pandas as pd

    parsed = _dtype(dtype)
    return (
        parsed is not None
        and bool(pd.api.types.is_datetime64_any_dtype(parsed))
        and getattr(parsed, "tz", None) is None
    )


def _date_bounds(col: DPColumn) -> tuple[str, str]:
    import pandas as pd

    try:
        lo, hi = (pd.Timestamp(b) for b in col.bounds or ())
    except (TypeError, ValueError):
        raise InvalidInput(f"Bounds of the date column {col.name!r} must be two dates.") from None
    if not lo < hi or lo.tzinfo is not None or hi.tzinfo is not None:
        raise InvalidInput(f"Bounds of {col.name!r} must be two dates, the first earlier.")
    return lo.isoformat(), hi.isoformat()


def where_kind(col: DPColumn) -> str:
    """The type a WHERE condition sees ``col`` as: ``bool``, ``num``, ``str``, ``time``,
    ``timetz`` or ``other`` (then only ``IS [NOT] NULL`` and ``TRY_CAST(… AS VARCHAR)``).

    The dtype decides when it is boolean, numeric or a datetime; otherwise (``object``,
    ``string``, ``category``) a declared category domain does (numbers or strings), and
    without one the column is read as text.
    """
    import pandas as pd

    parsed = _dtype(col.dtype)
    if parsed is None:
        return "other"
    if pd.api.types.is_bool_dtype(parsed):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(parsed):
        return "timetz" if getattr(parsed, "tz", None) is not None else "time"
    if pd.api.types.is_numeric_dtype(parsed) and not pd.api.types.is_complex_dtype(parsed):
        return "num"
    textual = pd.api.types.is_object_dtype(parsed) or pd.api.types.is_string_dtype(parsed)
    if not (textual or isinstance(parsed, pd.CategoricalDtype)):
        return "other"  # timedelta, period, interval, ...
    values = [v for v in col.categories or () if v is not None]
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "num"
    if values and not all(isinstance(v, str) for v in values):
        return "other"
    return "str"


def checked_schema(schema: DPSchema) -> DPSchema:
    """``schema`` with NumPy category values made plain Python, once it is found sound.

    Raises
    ------
    InvalidInput
        If the declaration itself is unusable: names, bounds, domains or the unit.
    """
    import numpy as np

    names = [c.name for c in schema.columns]
    if len(set(names)) != len(names) or not schema.dataset:
        raise InvalidInput("A DP schema needs a dataset name and unique column names.")
    if schema.privacy_unit is not None and schema.privacy_unit not in names:
        raise InvalidInput(f"The privacy unit {schema.privacy_unit!r} is not a column.")
    k = schema.max_contributions
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInput(f"max_contributions must be an integer >= 1, not {k!r}.")
    if schema.needs_cap and schema.privacy_unit is None:
        raise InvalidInput("needs_cap requires a privacy_unit column to cap rows by.")
    columns = []
    for col in schema.columns:
        if col.bounds is not None and date_dtype(col.dtype):
            col = replace(col, bounds=_date_bounds(col))
        elif col.bounds is not None and not numeric_dtype(col.dtype):
            # Bounds of a zoned datetime: published, but no DP aggregate or bucket uses them.
            col = replace(col, bounds=None)
        elif col.bounds is not None:
            lo, hi = (
                float(b) if isinstance(b, int | float | np.number) else math.nan for b in col.bounds
            )
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise InvalidInput(f"Bounds of {col.name!r} must be finite with low < high.")
            col = replace(col, bounds=(lo, hi))
        if col.categories is not None:
            values = tuple(v.item() if isinstance(v, np.generic) else v for v in col.categories)
            kinds = {isinstance(v, str) for v in values if v is not None}
            plain = all(
                v is None or isinstance(v, str) or (isinstance(v, int | float) and math.isfinite(v))
                for v in values
            )
            if not plain or len(kinds) > 1 or len(set(values)) != len(values) or not values:
                raise InvalidInput(
                    f"Categories of {col.name!r} must be distinct str, or distinct numbers "
                    f"(and None), not {col.categories!r}."
                )
            col = replace(col, categories=values)
        if col.nullable is not None and not isinstance(col.nullable, bool):
            raise InvalidInput(f"nullable of {col.name!r} must be True, False or None.")
        columns.append(col)
    return replace(schema, columns=tuple(columns))
