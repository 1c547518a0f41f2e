"""Does what a Python function returned give away private records? Checks on decoded outputs.

``check_output`` looks at the value the sandbox decoded (scalars, DataFrames, Series, numpy
arrays, torch tensors, and dicts/lists/tuples of them, checked element by element) next to the
private dataset it was computed from, and reports one ``Check`` per rule:

- ``types``: only the types the codec lets out; anything else fails.
- ``size``: the payload against the output limit, when one is set.
- ``private_rows``: a result row equal to a private record on the columns they share (two
  or more, or all of the dataset's). A row whose shared values are common to
  ``min_cell_count`` or more private records is a group's key, not a record, and passes.
- ``identifying``: a value of a column the owner marked identifying. Text identifiers are
  looked for in every string of the output (cells, index, column names, dict keys, list
  items; whole strings and runs of up to four words, in the usual letter cases); numeric
  ones only in columns, index levels and series of the same name.
- ``row_count``: a table, series, array or list as long as ≥ 90% of the dataset (fail) or
  ≥ 50% (warn), for datasets of 20 rows or more: that is a copy, not a summary.
- ``small_cells``: something that looks like counts (integer-valued, non-negative, at most
  the dataset's rows) with cells from 1 to ``min_cell_count - 1``, or zeros: a warning.

Lists of dicts, dicts of equal-length lists and dicts of scalars are read as tables, since
``df.to_dict(...)`` is as good a way to copy records as returning the frame. Taking the
output apart, and gathering the strings an identifier could hide in, is in
``rds.privacy._output_values``; this module holds the rules.

The private side is only scanned with vectorised lookups (``Index.get_indexer``, ``isin``):
a dataset of 10 million rows takes well under a second per million rows.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from rds.privacy._output_values import SCALARS, numeric_hits, strings_in, text_candidates, walk
from rds.privacy.report import Check, CheckReport
from rds.privacy.sdc import SDCRules

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_LIMIT = 100  # rows or values listed in a check's numbers


def check_output(
    value: Any,
    *,
    private: pd.DataFrame,
    identifying: Collection[str] = (),
    rules: SDCRules = SDCRules(),  # noqa: B008  (frozen, so one shared default is safe)
    payload_bytes: int | None = None,
    output_limit_bytes: int | None = None,
) -> CheckReport:
    """Check a function's output against the private dataset it was computed from.

    Parameters
    ----------
    value
        The decoded output.
    private
        The dataset the function ran on.
    identifying
        Columns whose values must not appear in the output.
    rules
        ``min_cell_count`` sets the small-cell and group thresholds.
    payload_bytes, output_limit_bytes
        The encoded output's size and the limit it must keep to.

    Examples
    --------
    >>> check_output(private.head(3), private=private).verdict
    'fail'
    >>> check_output(float(private.age.mean()), private=private).verdict
    'pass'
    """
    leaves = list(walk(value, "result"))
    return CheckReport(
        (
            _types(value, leaves),
            _size(payload_bytes, output_limit_bytes),
            _private_rows(leaves, private, rules),
            _identifying(leaves, private, identifying),
            _row_count(leaves, len(private)),
            _small_cells(leaves, len(private), rules),
        )
    )


def _types(value: Any, leaves: list[tuple[str, Any]]) -> Check:
    import numpy as np
    import pandas as pd

    allowed = (*SCALARS, np.generic, pd.DataFrame, pd.Series, np.ndarray)
    refused = sorted({type(v).__name__ for _, v in leaves if not isinstance(v, allowed)})
    if refused:
        text = f"The result holds {', '.join(refused)}, which may not leave the sandbox."
        return Check("types", "fail", text, {"types": refused})
    return Check("types", "pass", f"The result's type is {type(value).__name__}.")


def _size(size: int | None, limit: int | None) -> Check:
    numbers = {"bytes": size, "limit": limit}
    if limit is None or size is None:
        return Check("size", "pass", "No output size limit applies.", numbers)
    shown = next(
        f"{limit / f:.4g} {u}" for f, u in ((2**20, "MiB"), (2**10, "KiB"), (1, "B")) if limit >= f
    )
    if size > limit:
        text = f"The result is larger than the {shown} output limit."
        return Check("size", "fail", text, numbers)
    return Check("size", "pass", f"The result is within the {shown} output limit.", numbers)


def _frame(value: Any, private: pd.DataFrame) -> pd.DataFrame | None:
    """The output as a table whose columns may be compared with the private ones."""
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.Series):
        value = value.to_frame(value.name if value.name is not None else "__value__")
    if isinstance(value, np.ndarray) and value.ndim == 2:
        # An array has no column names; it lines up with the dataset if its width does.
        for candidate in (private, private.select_dtypes("number")):
            if value.shape[1] == candidate.shape[1]:
                return pd.DataFrame(value, columns=candidate.columns)
        return None
    if not isinstance(value, pd.DataFrame):
        return None
    if any(name in private.columns for name in value.index.names if name is not None):
        value = value.reset_index()
    return value.loc[:, ~value.columns.duplicated()]


def _private_rows(leaves: list[tuple[str, Any]], private: pd.DataFrame, rules: SDCRules) -> Check:
    found: dict[str, Any] = {}
    for path, value in leaves:
        frame = _frame(value, private)
        if frame is None or frame.empty:
            continue
        shared = [c for c in private.columns if c in frame.columns]
        if len(shared) < 2 and len(shared) < private.shape[1]:
            continue
        try:
            hits = _record_rows(frame[shared], private[shared], rules.min_cell_count)
        except TypeError:  # unhashable cells (lists, dicts) cannot equal a record's values
            continue
        if len(hits):
            found[path] = {"rows": hits[:_LIMIT].tolist(), "matches": len(hits), "on": shared}
    if not found:
        text = "No row of the result equals a private record on the columns they share."
        return Check("private_rows", "pass", text)
    parts = [f"{v['matches']} rows of {p} (on {', '.join(v['on'])})" for p, v in found.items()]
    text = f"Private records appear in the result: {'; '.join(parts)}."
    return Check("private_rows", "fail", text, found)


def _record_rows(frame: pd.DataFrame, private: pd.DataFrame, min_count: int) -> np.ndarray:
    """Output rows equal to between 1 and ``min_count - 1`` private rows on every column."""
    import numpy as np
    import pandas as pd
    from pandas.util import hash_pandas_object

    # Each value becomes its position among the output's values of its column (-1: absent),
    # one column at a time, keeping only the private rows still matching: the first
    # selective column (numbers first, text last) leaves a handful of rows to look up.
    order = sorted(frame.columns, key=lambda c: _cost(private[c]))
    mine = np.zeros((len(frame), len(order)), dtype=np.int32)
    theirs: list[np.ndarray] = []
    rows = None
    for j, column in enumerate(order):
        candidates = private[column] if rows is None else private[column].iloc[rows]
        ours, own = _comparable(frame[column], candidates)
        index = pd.Index(pd.unique(ours.dropna()))
        mine[:, j] = index.get_indexer(ours)
        codes = _codes(index, own)
        keep = codes >= 0
        if keep.all():  # nothing to drop: skip copying millions of rows
            theirs.append(codes)
            continue
        rows = np.flatnonzero(keep) if rows is None else rows[keep]
        theirs = [t[keep] for t in theirs] + [codes[keep]]
    ours_h = hash_pandas_object(pd.DataFrame(mine), index=False).to_numpy()
    theirs_h = hash_pandas_object(pd.DataFrame(np.column_stack(theirs)), index=False)
    per_row = theirs_h[theirs_h.isin(ours_h)].value_counts().reindex(ours_h).fillna(0)
    return np.flatnonzero((per_row.to_numpy() >= 1) & (per_row.to_numpy() < min_count))


def _cost(column: pd.Series) -> int:
    import pandas as pd

    if isinstance(column.dtype, pd.CategoricalDtype):
        return 1
    return 0 if pd.api.types.is_numeric_dtype(column) else 2


def _comparable(ours: pd.Series, theirs: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Both sides in one type, so 45 and 45.0, or text and categories, compare equal."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(theirs) and not pd.api.types.is_bool_dtype(theirs):
        return pd.to_numeric(ours, errors="coerce").astype(float), theirs.astype(float)
    if isinstance(ours.dtype, pd.CategoricalDtype):
        ours = ours.astype(object)
    return ours, theirs


def _codes(index: pd.Index, values: pd.Series) -> np.ndarray:
    """Each value's position in ``index``, -1 when absent (missing values never match)."""
    import numpy as np
    import pandas as pd

    if isinstance(values.dtype, pd.CategoricalDtype):  # look up the categories, not the rows
        codes = values.cat.codes.to_numpy()
        return np.where(codes >= 0, index.get_indexer(values.cat.categories)[codes], -1)
    return index.get_indexer(values)


def _identifying(
    leaves: list[tuple[str, Any]], private: pd.DataFrame, identifying: Collection[str]
) -> Check:
    import pandas as pd

    columns = [c for c in identifying if c in private.columns]
    if not columns:
        return Check("identifying", "pass", "No column is marked identifying.")
    candidates = text_candidates(strings_in(leaves))
    found: dict[str, list[Any]] = {}
    for column in columns:
        values = private[column]
        if pd.api.types.is_numeric_dtype(values):
            hits = numeric_hits(leaves, column, values)
        else:
            hits = pd.unique(values[values.isin(candidates)]).tolist() if candidates else []
        if len(hits):
            found[column] = list(hits)[:_LIMIT]
    if not found:
        text = f"No value of {', '.join(columns)} appears in the result."
        return Check("identifying", "pass", text)
    text = f"The result contains values of identifying columns: {', '.join(found)}."
    return Check("identifying", "fail", text, {"values": found})


def _length(value: Any) -> int | None:
    import numpy as np
    import pandas as pd

    if isinstance(value, (pd.DataFrame, pd.Series)):
        return len(value)
    if isinstance(value, np.ndarray) and value.ndim >= 1:
        return int(value.shape[0])
    return None


def _row_count(leaves: list[tuple[str, Any]], rows: int) -> Check:
    sizes = {p: n for p, v in leaves if (n := _length(v)) is not None}
    numbers = {"input_rows": rows, "output_rows": sizes}
    if rows < 20:
        return Check("row_count", "pass", "The dataset is too small to compare row counts.")
    fail = sorted(p for p, n in sizes.items() if n >= 0.9 * rows)
    warn = sorted(p for p, n in sizes.items() if 0.5 * rows <= n < 0.9 * rows)
    if fail:
        text = f"{', '.join(fail)}: at least 90% as many rows as the dataset, a copy."
        return Check("row_count", "fail", text, numbers)
    if warn:
        text = f"{', '.join(warn)}: at least half as many rows as the dataset."
        return Check("row_count", "warn", text, numbers)
    return Check("row_count", "pass", "The result is much shorter than the dataset.", numbers)


def _count_like(value: Any, rows: int) -> list[np.ndarray]:
    """The parts of a value that look like counts: whole numbers from 0 to ``rows``."""
    import numpy as np
    import pandas as pd

    if isinstance(value, np.ndarray):
        blocks = [value.ravel()] if value.dtype.kind in "iuf" else []
    elif isinstance(value, (pd.DataFrame, pd.Series)):
        frame = value.to_frame() if isinstance(value, pd.Series) else value
        blocks = [
            pd.to_numeric(c).to_numpy(dtype=float, na_value=np.nan)
            for _, c in frame.items()
            if pd.api.types.is_numeric_dtype(c) and not pd.api.types.is_bool_dtype(c)
        ]
    elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        blocks = [np.array([value])]  # a lone integer answer is a count as often as not
    else:
        blocks = []
    out = []
    for block in blocks:
        numbers = block[~np.isnan(block.astype(float))].astype(float)
        whole = np.all(numbers == np.round(numbers))
        if len(numbers) and whole and np.all((numbers >= 0) & (numbers <= rows)):
            out.append(numbers)
    return out


def _small_cells(leaves: list[tuple[str, Any]], rows: int, rules: SDCRules) -> Check:
    import numpy as np

    small, zeros, where = 0, 0, []
    for path, value in leaves:
        for counts in _count_like(value, rows):
            s = int(np.sum((counts >= 1) & (counts < rules.min_cell_count)))
            z = int(np.sum(counts == 0)) if rules.zeros_fail else 0
            small, zeros = small + s, zeros + z
            if s or z:
                where.append(path)
    places = sorted(set(where))
    numbers = {"small": small, "zeros": zeros, "where": places}
    if not where:
        return Check("small_cells", "pass", "Nothing in the result looks like a small count.")
    text = (
        f"Values that look like counts are between 1 and {rules.min_cell_count - 1} in {small} "
        f"cells and zero in {zeros} (in {', '.join(places)}); small counts can identify people."
    )
    return Check("small_cells", "warn", text, numbers)
