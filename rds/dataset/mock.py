"""Synthesize a mock table from private data: same schema, rough marginals, no real row.

Each column is drawn on its own (so no joint record survives): numbers from a histogram
over the 1st to 99th percentiles (the extremes, which identify people, never appear),
categories from those seen at least ``min_category_count`` times (a rare value never
appears), booleans and nulls at their observed rates. Any drawn row that happens to equal a
private row is redrawn, and dropped if it keeps colliding.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

DEFAULT_ROWS = 200
_REDRAWS = 20


def synthesize_mock(
    data: pd.DataFrame,
    *,
    rows: int | None = None,
    min_category_count: int = 10,
    seed: int | None = None,
) -> pd.DataFrame:
    """Return a mock of ``data``.

    Parameters
    ----------
    data
        The private table.
    rows
        Mock size; defaults to ``min(len(data), 200)``.
    min_category_count
        A category value must occur at least this often to appear in the mock.
    seed
        For reproducible mocks.

    Examples
    --------
    >>> mock = synthesize_mock(patients, rows=50, seed=0)
    >>> list(mock.columns) == list(patients.columns)
    True
    """
    rng = np.random.default_rng(seed)
    n = min(len(data), DEFAULT_ROWS) if rows is None else rows
    dtypes = _mock_dtypes(data)
    mock = pd.DataFrame({c: _column(data[c], n, rng, min_category_count) for c in data.columns})
    mock = mock.astype(dtypes, errors="ignore")
    private = _row_keys(data)
    for _ in range(_REDRAWS):
        clash = _row_keys(mock).isin(private).to_numpy()
        if not clash.any():
            break
        redrawn = pd.DataFrame(
            {c: _column(data[c], int(clash.sum()), rng, min_category_count) for c in data.columns}
        ).astype(dtypes, errors="ignore")
        mock.loc[clash] = redrawn.to_numpy()
    mock = mock.loc[~_row_keys(mock).isin(private).to_numpy()]
    if len(mock) < n / 2:
        warnings.warn(
            f"Only {len(mock)} of {n} mock rows could be drawn without repeating a private row "
            "(the columns take few distinct values). Pass mock= to publish() yourself.",
            UserWarning,
            stacklevel=2,
        )
    return mock.reset_index(drop=True).astype(dtypes, errors="ignore")


def _mock_dtypes(data: pd.DataFrame) -> dict[str, object]:
    return {
        c: (object if isinstance(t, pd.CategoricalDtype) else t) for c, t in data.dtypes.items()
    }


def _row_keys(frame: pd.DataFrame) -> pd.Series:
    return pd.util.hash_pandas_object(frame, index=False)


def _column(col: pd.Series, n: int, rng: np.random.Generator, min_count: int) -> pd.Series:
    values = col.dropna()
    null_rate = 1 - len(values) / len(col) if len(col) else 0.0
    if pd.api.types.is_bool_dtype(col):
        drawn = pd.Series(rng.random(n) < (values.mean() if len(values) else 0.5))
    elif pd.api.types.is_numeric_dtype(col):
        drawn = _numeric(values.astype(float), n, rng, integer=pd.api.types.is_integer_dtype(col))
    elif pd.api.types.is_datetime64_any_dtype(col) or pd.api.types.is_timedelta64_dtype(col):
        # Drawn as integers in the column's own unit (s, ms, us or ns): read as nanoseconds,
        # a column of seconds would give a mock of dates in January 1970.
        unit = col.dt.unit
        private = values.astype("int64").to_numpy()
        ticks = _numeric(pd.Series(private.astype(float)), n, rng, integer=True)
        ticks = _unseen(ticks.to_numpy(), private, _step(private, unit))
        if pd.api.types.is_timedelta64_dtype(col):
            drawn = pd.Series(pd.to_timedelta(ticks, unit=unit))
        elif getattr(col.dtype, "tz", None) is not None:  # the integers count from UTC
            drawn = pd.Series(pd.to_datetime(ticks, unit=unit, utc=True)).dt.tz_convert(
                col.dtype.tz
            )
        else:
            drawn = pd.Series(pd.to_datetime(ticks, unit=unit))
    else:
        # Categories are rebuilt from the drawn values only: the private column's dtype
        # would list every category, rare ones included.
        drawn = _categorical(values.astype(str), n, rng, min_count)
    if null_rate > 0:
        drawn = drawn.astype(object) if drawn.dtype.kind in "iub" else drawn
        drawn[rng.random(n) < null_rate] = None
    return drawn.reset_index(drop=True)


_TICKS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_RESOLUTIONS = (86_400, 3_600, 60, 1, 1e-3, 1e-6, 1e-9)  # a day down to a nanosecond, in s


def _step(ticks: np.ndarray, unit: str) -> int:
    """The coarsest resolution every private value is recorded at (a day for dates, a
    second for timestamps to the second), in ticks of the column's unit."""
    per_second = _TICKS_PER_SECOND.get(unit, 1)
    for seconds in _RESOLUTIONS:
        step = round(seconds * per_second)
        if step >= 1 and len(ticks) and not (ticks % step).any():
            return step
    return 1


def _unseen(drawn: np.ndarray, private: np.ndarray, step: int) -> np.ndarray:
    """``drawn`` on the grid of ``step``, each value that equals a private one moved to the
    nearest grid point within the drawn range that none has.

    A real date next to a ward or an age can identify someone, so no private date or
    timestamp appears in the mock (unless every point of the range is taken, when the
    value is left where it was drawn).
    """
    if not len(drawn):
        return drawn
    low, high = int(drawn.min()) // step, int(drawn.max()) // step
    grid = (drawn // step).astype(np.int64)
    taken = np.unique(private[private % step == 0] // step)
    clash = np.isin(grid, taken)
    for distance in range(1, 1 + max(1, min(high - low, 4096))):
        if not clash.any():
            break
        for sign in (1, -1):
            moved = grid + sign * distance
            ok = clash & ~np.isin(moved, taken) & (moved >= low) & (moved <= high)
            grid[ok] = moved[ok]
            clash &= ~ok
    return grid * step


def _numeric(values: pd.Series, n: int, rng: np.random.Generator, *, integer: bool) -> pd.Series:
    if values.empty:
        return pd.Series(np.zeros(n, dtype=int if integer else float))
    low, high = np.quantile(values, [0.01, 0.99])
    if high <= low:
        return pd.Series(np.full(n, low).astype(int if integer else float))
    inner = values[(values >= low) & (values <= high)]
    counts, edges = np.histogram(inner, bins=min(20, max(1, inner.nunique())))
    bins = rng.choice(len(counts), size=n, p=counts / counts.sum())
    drawn = rng.uniform(edges[bins], edges[bins + 1])
    if integer:
        return pd.Series(np.clip(np.rint(drawn), np.ceil(low), np.floor(high)).astype(np.int64))
    decimals = _decimals(values)
    return pd.Series(np.round(drawn, decimals) if decimals is not None else drawn)


def _decimals(values: pd.Series) -> int | None:
    """The precision the data is recorded at (e.g. 1 for 36.6), if it is a short one."""
    sample = values.head(1000).to_numpy()
    for places in range(0, 5):
        if np.allclose(sample, np.round(sample, places)):
            return places
    return None


def _categorical(values: pd.Series, n: int, rng: np.random.Generator, min_count: int) -> pd.Series:
    counts = values.value_counts()
    common = counts[counts >= min_count]
    if common.empty:
        return pd.Series([f"category_{i % 3 + 1}" for i in range(n)], dtype=object)
    drawn = rng.choice(common.index.to_numpy(), size=n, p=(common / common.sum()).to_numpy())
    return pd.Series(drawn, dtype=object)
