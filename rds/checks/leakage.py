"""Does what a Python function returned give away private records? Checks on decoded outputs.

``check_output`` looks at the value the sandbox decoded (scalars, DataFrames, Series, numpy
arrays, torch tensors and state dicts, and dicts/lists/tuples/sets of them) next to the
private dataset it was computed from, and reports one ``Check`` per rule:

- ``types``: only the types the codec lets out; anything else fails.
- ``size``: the payload against the output limit, when one is set.
- ``private_rows``: a result row equal to a private record on the columns they share (two
  or more, or all of the dataset's). A row whose shared values are common to
  ``min_cell_count`` or more private records is a group's key, not a record, and passes.
  Columns are also matched by their values, so renamed, reordered or unnamed columns (arrays,
  ``dict(zip(ids, ages))``) count: an output column is read as the private column holding
  ≥ 90% of its values. Such rows fail only when far more of them match records than when the
  columns are shifted against each other (chance explains the rest).
- ``identifying``: a value of a column the owner marked identifying. Text identifiers are
  looked for in every string of the output, as it is or case-folded, split at any separator
  and reversed (see ``private_values``); numeric ones only in columns, index levels and series
  of the same name.
- ``private_values``: private values anywhere in the result, by value, whatever holds them.
  Numbers: every number of the result (cells, index values, labels, dict keys, array and
  tensor elements, numbers written in strings) equal to a value of a numeric column (after
  float conversion, so 45 == 45.0; float32 numbers at float32 precision). *Rare* values, held
  by fewer than ``min_cell_count`` records, are the signal: a min, a max, a first, a copied
  cell. Strings: a string column's rare values, and every value of an identifying column,
  compared with each string of the result whole, cut into tokens at any separator, runs of
  up to four tokens, reversed, case-folded, without separators and run together with other
  strings; identifying values also word by word (a first name alone), and rare or
  identifying values as cuts of four or more characters, up to two off either end
  (``name[1:]``, ``name[:-1]``). Matching is by value: column names play no part.
- ``row_count``: a table, series, array or list as long as ≥ 90% of the dataset (fail) or
  ≥ 50% (warn), for datasets of 20 rows or more: that is a copy, not a summary.
- ``small_cells``: something that looks like counts (integer-valued, non-negative, at most
  the dataset's rows) with cells from 1 to ``min_cell_count - 1``, or zeros: a warning.

False positives, and how ``private_values`` keeps them apart. A number can equal a rare
private value by chance: a count of 57 and a patient aged 57, a mean rounded to one decimal
and a blood test reported to one decimal, a group size and an id among ids 1..n. How likely
that is depends on the number's own precision and on how densely the column's rare values
lie near it, so for each distinct number of the result the chance is estimated from its 10
nearest rare values that its decimal places can write (integers on a grid of 1, 1500 on one
of 100, a mean rounded to 0.1 on 0.1, a full-precision mean on 1e-13, where a coincidence is
all but impossible). Summed, that is how many rare matches chance would give; a column fails
when the rare matches found are more than chance explains at 1% (a Poisson tail, multiplied
by the number of numeric columns tested), warns at 5%, and otherwise passes with its figures
kept for the owner. So integer coincidences weigh as little as they are likely, and a single
float that is a rare value fails where such values are sparse (a max, a min) and warns in a
column's dense middle. Three more reasons fail a column whatever chance says: rare values
among numbers pandas labels as order statistics (``describe()``'s ``min``/``25%``/``max``,
``agg(["min", "max"])``), when the labelled numbers of a row or column fit the column's
distribution (a max in its upper half: describe() of ages is not about ids 18 to 94); a copy
(in one part, at least half as many values of the column as the dataset has rows, 90% of the
part's numbers, three distinct values or more); a list of the column's rare values (20 or
more, at least half of them, and half of the result's distinct numbers in the column's
range: ``{id: 1 for id in df.id}`` among dense ids). Tested to pass: means, rounded group
means, counts of big groups (also among dense ids), value_counts of a category, regression
coefficients, describe() of a large dataset, a torch model trained for three epochs and its
state_dict, and real data's rounded means that equal a rare value by chance. Strings are
not weighed by chance: three distinct rare or identifying strings (whole values, words,
cuts) fail, one or two warn; column names and pandas' statistic words are not compared, and
a cut counts only when it is no value or word of the column itself.

Bounds. The private side is scanned with vectorised operations only, about once per column:
numbers are counted in one ``bincount`` pass when the column is on a grid of at most 6
decimals (ages, cents, ids), else by ``isin`` and, if a number matches, ``np.unique``; text
with pyarrow's string kernels. A text column of more than ``TEXT_ROWS`` (250,000) values is
compared exactly (as written and in the usual letter cases) on all its values, and
case-folded, word by word and by cuts on a random ``TEXT_ROWS`` of them, words' rarity
judged in that sample (a word seen once there counts as rare); the check says so when it
sampled. The output's strings are split into at most 500,000 words (else a random share of
1,000-word pieces, said too) and searched for values run together over their first 200,000
characters.

Measured by hand on 10 million rows (integer id 0..n-1, a 3-category ward, integer age, a
2-decimal cost, unique identifying names; 2-core machine shared with other work, load 2-4):
1.9-6.0 s of CPU per check, 0.19-0.60 CPU s per million rows (group means 2.4, 1,000 costs
1.9, describe() by ward 3.5, a sentence 2.8, five records 6.0, group keys 5.6, 1,000 joined
names 3.3, 1,000 cut names 3.1), 2.8-9.0 s wall; the rules before value matching took
0.05-0.19 CPU s per million rows on the same cases. On the output's side, a result of
500,000 words of text takes about 17 s (41 s before), a million numbers 1-3 s.

Not detected: values transformed before they leave (rounded, scaled, offset, encoded,
hashed, spelled out letter by letter, cut by more than two characters at an end, in half
precision), dates, records split across parts of the result, and common values (held by
``min_cell_count`` records or more) unless the result copies a column. A number in a dense
run of rare values (ids 1..n, most ages of a small dataset) weighs as a likely coincidence,
so a few of them, such as an unlabelled group maximum of an integer column, pass or warn,
and so does a subset of dense ids (which ids are in a group).

Taking the output apart, and turning its strings into candidates, is in
``rds.checks._output_values``; this module holds the rules.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rds.checks._output_values import (
    NOT_ALNUM,
    SCALARS,
    Numbers,
    TextCandidates,
    compact,
    numbers_in,
    numeric_hits,
    round_significant,
    strings_in,
    text_candidates,
    walk,
)
from rds.checks.report import Check, CheckReport
from rds.checks.sdc import SDCRules

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_LIMIT = 100  # rows or values listed in a check's numbers
TEXT_ROWS = 250_000  # values of a text column normalised and split; beyond, a sample
_ALTERNATIVES = 2_000  # cut candidates looked for in one regular-expression pass
_RUN_CHARS = 200_000  # characters of the output's strings searched for values run together
_NEIGHBOURS = 10  # rare values around a number that tell how densely they lie there
_FAIL, _WARN = 0.01, 0.05  # chance of the rare matches found, below which a column fails/warns
_ROWS = 1e-3  # chance of the records matched on columns mapped by value, below which it fails
_CUTS = [(a, b) for a in range(3) for b in range(3) if a or b]  # characters cut off each end
_STAT_WORDS = frozenset(
    {"count", "mean", "std", "min", "max", "sum", "median", "first", "last", "size", "var"}
    | {"sem", "nunique", "unique", "top", "freq", "index", "value", "values", "true", "false"}
    | {"none", "nan", "null", "total", "result", "mode"}
)


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
        ``min_cell_count`` sets the small-cell and group thresholds, and which values are
        rare.
    payload_bytes, output_limit_bytes
        The encoded output's size and the limit it must keep to.

    Examples
    --------
    >>> check_output(private.head(3), private=private).verdict
    'fail'
    >>> check_output(float(private.age.mean()), private=private).verdict
    'pass'
    """
    private, value = _dates_as_numbers(private), _dates_in(value)
    leaves = list(walk(value, "result"))
    found = _Found(leaves, private, identifying, rules.min_cell_count)
    return CheckReport(
        (
            _types(value, leaves),
            _size(payload_bytes, output_limit_bytes),
            _private_rows(leaves, private, rules, found),
            _identifying(leaves, private, identifying, found),
            _private_values(found, len(private), rules.min_cell_count),
            _row_count(leaves, len(private)),
            _small_cells(leaves, len(private), rules),
        )
    )


# -- dates ---------------------------------------------------------------------------------
# Dates, timestamps and durations are judged as numbers: days since 1970 (a fraction for a
# time of day), in the private data and in the output alike, so a first admission date, a
# list of real dates or a copied column fails the way a max, a list of rare ages or a copy
# does, and month starts in a grouped count pass when chance explains them. Each date
# column is also compared as text (ISO, "2023-09-04"), so a date written into a string is
# found like any rare string.


def _dates_as_numbers(private: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    dated = [c for c in private.columns if _is_dated(private[c])]
    if not dated:
        return private
    frame = private.copy()
    for column in dated:
        values = private[column]
        frame[column] = _days(values)
        if pd.api.types.is_datetime64_any_dtype(values):
            midnight = bool((values.dropna() == values.dropna().dt.normalize()).all())
            text = values.dt.strftime("%Y-%m-%d" if midnight else "%Y-%m-%dT%H:%M:%S")
            frame[f"{column} (as text)"] = text.astype(object).where(values.notna(), None)
    return frame


def _dates_in(value: Any) -> Any:
    """``value`` with every date, timestamp and duration in it as days (see above): in
    columns, index levels (a MultiIndex's too), ``datetime.date`` objects and scalars."""
    import datetime as dt

    import numpy as np
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        dated = [i for i in range(value.shape[1]) if _is_dated(_as_dated(value.iloc[:, i]))]
        index = _index_days(value.index)
        if not dated and index is value.index:
            return value  # nothing to convert: no copy of a large output
        out = value.copy()
        for i in dated:
            out.isetitem(i, _days(_as_dated(out.iloc[:, i])))
        out.index = index
        return out
    if isinstance(value, pd.Series):
        column = _as_dated(value)
        index = _index_days(value.index)
        if not _is_dated(column) and index is value.index:
            return value
        out = _days(column) if _is_dated(column) else value.copy()
        out.index = index
        return out
    if isinstance(value, dt.date) and not isinstance(value, pd.Timestamp):
        value = pd.Timestamp(value)
    if isinstance(value, pd.Timestamp | pd.Timedelta | np.datetime64 | np.timedelta64):
        return float(_days(pd.Series([value])).iloc[0])
    if isinstance(value, np.ndarray) and value.dtype.kind in "mM":
        return _days(pd.Series(value.ravel())).to_numpy().reshape(value.shape)
    if isinstance(value, dict):
        return {k: _dates_in(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_dates_in(v) for v in value)
    return value


def _as_dated(values: pd.Series) -> pd.Series:
    """An object column of ``datetime.date``/``datetime`` values as datetimes (``.dt.date``
    gives such a column); anything else as it is."""
    import datetime as dt

    import pandas as pd

    if values.dtype != object:
        return values
    head = values.dropna().head(1000)
    if len(head) and all(isinstance(v, dt.date) for v in head):
        converted = pd.to_datetime(values, errors="coerce", utc=False)
        if converted.notna().sum() == values.notna().sum():
            return converted
    return values


def _index_days(index: pd.Index) -> pd.Index:
    """``index`` with its dated levels as days."""
    import pandas as pd

    if isinstance(index, pd.MultiIndex):
        levels = [_index_days(level) for level in index.levels]
        if all(new is old for new, old in zip(levels, index.levels, strict=True)):
            return index
        return index.set_levels(levels)
    column = _as_dated(pd.Series(index))
    return pd.Index(_days(column).to_numpy(), name=index.name) if _is_dated(column) else index


def _is_dated(values: Any) -> bool:
    import pandas as pd

    return bool(
        pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_timedelta64_dtype(values)
    )


def _days(values: pd.Series) -> pd.Series:
    import pandas as pd

    if pd.api.types.is_timedelta64_dtype(values):
        return values / pd.Timedelta(days=1)
    if getattr(values.dtype, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return (values - pd.Timestamp(0)) / pd.Timedelta(days=1)


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


def _private_rows(
    leaves: list[tuple[str, Any]], private: pd.DataFrame, rules: SDCRules, found: _Found
) -> Check:
    hits: dict[str, Any] = {}
    for path, value in leaves:
        for frame in _tables(value, private):
            if hit := _rows_in(frame, private, rules.min_cell_count, found):
                hits[path] = hit
                break
    if not hits:
        text = (
            "No row of the result equals a private record on the columns they share, or on "
            "columns holding the same values under other names more often than chance. Not "
            "detected: records whose values were transformed, or split across parts."
        )
        return Check("private_rows", "pass", text)
    parts = [f"{v['matches']} rows of {p} (on {', '.join(v['on'])})" for p, v in hits.items()]
    text = f"Private records appear in the result: {'; '.join(parts)}."
    return Check("private_rows", "fail", text, hits)


def _rows_in(
    frame: pd.DataFrame, private: pd.DataFrame, min_count: int, found: _Found
) -> dict[str, Any] | None:
    """Rows of ``frame`` that are private records: on shared names, then on matching values."""
    import numpy as np
    import pandas as pd

    named = {c: c for c in private.columns if c in frame.columns}
    if len(named) >= 2 or (named and len(named) == private.shape[1]):
        rows = _matching(found.canonical(frame, named), private[list(named)], min_count)
        if len(rows):
            return {
                "rows": rows[:_LIMIT].tolist(),
                "matches": len(rows),
                "on": list(map(str, named)),
            }
    by_value = found.map_columns(frame, exclude=set(named))
    columns = {**named, **by_value}
    if not by_value or (len(columns) < 2 and len(columns) < private.shape[1]):
        return None
    ours, theirs = found.canonical(frame, columns), private[list(columns.values())]
    # Columns that only share values match records by chance too: as often as when each
    # column is shifted against the others, which breaks every real record apart. Both are
    # looked up at once (the private side is scanned once).
    shifted = ours.copy()
    for j, column in enumerate(shifted.columns):
        shifted[column] = np.roll(shifted[column].to_numpy(), j)
    both = _matching(pd.concat([ours, shifted], ignore_index=True), theirs, min_count)
    rows, by_chance = both[both < len(ours)], int((both >= len(ours)).sum())
    if len(rows) < 2 or _tail(len(rows), by_chance + 0.1) >= _ROWS:
        return None
    on = [str(o) if o == p else f"{o} as {p}" for o, p in columns.items()]
    return {"rows": rows[:_LIMIT].tolist(), "matches": len(rows), "on": on, "by_chance": by_chance}


def _matching(frame: pd.DataFrame, private: pd.DataFrame, min_count: int) -> np.ndarray:
    import numpy as np

    if frame.empty:
        return np.zeros(0, dtype=int)
    frame.columns = private.columns
    try:
        return _record_rows(frame, private, min_count)
    except TypeError:  # unhashable cells (lists, dicts) cannot equal a record's values
        return np.zeros(0, dtype=int)


def _tables(value: Any, private: pd.DataFrame) -> list[pd.DataFrame]:
    """The output as tables whose columns may be compared with the private ones."""
    import numpy as np
    import pandas as pd

    frames = []
    if isinstance(value, pd.Series):
        value = value.to_frame(value.name if value.name is not None else "__value__")
    if isinstance(value, np.ndarray) and value.ndim == 2:
        array = value if value.shape[0] >= value.shape[1] else value.T
        # No column names: by position if the width is the dataset's, and by value.
        for candidate in (private, private.select_dtypes("number")):
            if array.shape[1] == candidate.shape[1]:
                frames.append(pd.DataFrame(array, columns=candidate.columns))
                break
        frames.append(pd.DataFrame(array, columns=[f"column {j}" for j in range(array.shape[1])]))
        return frames
    if not isinstance(value, pd.DataFrame):
        return []
    if not isinstance(value.index, pd.RangeIndex):  # an index of ids or group keys is data
        value = value.reset_index(allow_duplicates=True)
    if isinstance(value.columns, pd.MultiIndex):  # ("age", "max") is no column named "age"
        value = value.set_axis(value.columns.to_flat_index(), axis=1)
    frame = value.loc[:, ~value.columns.duplicated()]
    frames.append(frame)
    if len(frame) == 1 and frame.shape[1] >= 3:  # a dict of scalars: its keys and values as pairs
        pairs = {"key": [str(k) for k in frame.columns], "value": frame.iloc[0].to_numpy()}
        frames.append(pd.DataFrame(pairs).infer_objects())
    return frames


def _identifying(
    leaves: list[tuple[str, Any]],
    private: pd.DataFrame,
    identifying: Collection[str],
    found: _Found,
) -> Check:
    import pandas as pd

    columns = [c for c in identifying if c in private.columns]
    if not columns:
        return Check("identifying", "pass", "No column is marked identifying.")
    hits: dict[str, list[Any]] = {}
    for column in columns:
        if str(column) in found.textual:
            values = found.textual[str(column)].whole
        elif pd.api.types.is_numeric_dtype(private[column]):
            values = numeric_hits(leaves, column, private[column])
        else:
            values = []
        if len(values):
            hits[column] = list(values)[:_LIMIT]
    if not hits:
        text = (
            f"No value of {', '.join(map(str, columns))} appears in the result: text as "
            "written, case-folded, split at any separator, run together or reversed; numbers "
            "under the column's name. Not detected: values encoded, hashed or cut apart."
        )
        return Check("identifying", "pass", text + found.sampling(columns))
    text = f"The result contains values of identifying columns: {', '.join(map(str, hits))}."
    return Check("identifying", "fail", text, {"values": hits})


def _private_values(found: _Found, rows: int, min_count: int) -> Check:
    columns: dict[str, dict[str, Any]] = {}
    said: dict[str, list[str]] = {"fail": [], "warn": []}
    for name, number in found.numeric.items():
        verdict, figures, text = number.judged(rows, min_count, found.tests)
        if figures:
            columns[name] = figures
        if verdict != "pass":
            said[verdict].append(text)
    for name, textual in found.textual.items():
        verdict, figures, text = textual.judged(min_count)
        if figures:
            columns[name] = figures
        if verdict != "pass":
            said[verdict].append(text)
    numbers = {"columns": columns, "sampled": found.sampled}
    verdict = "fail" if said["fail"] else "warn" if said["warn"] else "pass"
    if verdict == "pass":
        text = (
            f"Every number and string of the result was compared with every private column's "
            f"values: none held by fewer than {min_count} records appears more often than "
            "chance explains. Not detected: values rounded, scaled, offset, encoded or hashed."
        )
        return Check("private_values", "pass", text + found.sampling(), numbers)
    lead = {"fail": "Private values appear in the result", "warn": "Possibly private values"}
    text = f"{lead[verdict]}: {'; '.join(said['fail'] + said['warn'])}."
    return Check("private_values", verdict, text + found.sampling(), numbers)


class _Found:
    """Which private values the output holds, column by column; computed once per check."""

    def __init__(
        self,
        leaves: list[tuple[str, Any]],
        private: pd.DataFrame,
        identifying: Collection[str],
        min_count: int,
    ) -> None:
        import numpy as np

        self.parts = [(path, numbers_in(value)) for path, value in leaves]
        self.numeric: dict[str, _Numeric] = {}
        self.textual: dict[str, _Textual] = {}
        self.labels = {str(name): name for name in private.columns}  # for non-str labels
        self.tests = 0
        self.candidates_sampled = 0
        pools = {}
        for single in (False, True):
            chunks = [n.values[n.single == single] for _, n in self.parts]
            pools[single] = np.unique(np.concatenate([np.zeros(0), *chunks]))
        texts = strings_in(leaves)
        candidates: TextCandidates | None = None
        for name in private.columns:
            column = private[name]
            kind = _kind(column) if getattr(column, "ndim", 2) == 1 else None
            if kind == "number":
                self.tests += 1
                number = _numeric(str(name), column, pools)
                if number.held:
                    number.measure(self.parts, min_count, name in identifying, pools)
                    self.numeric[str(name)] = number
            elif kind == "text" and texts:
                if candidates is None:
                    names = [str(c) for c in private.columns]
                    words = {w for c in names for w in re.split(r"[\W_]+", c.lower()) if w}
                    ignore = {*names, *words, *_STAT_WORDS}
                    candidates = text_candidates(texts, ignore=ignore)
                    self.candidates_sampled = candidates.sampled
                textual = _textual(str(name), column, candidates, name in identifying, min_count)
                if textual.found or textual.values:
                    self.textual[str(name)] = textual

    @property
    def sampled(self) -> dict[str, Any]:
        out: dict[str, Any] = {c: t.sampled for c, t in self.textual.items() if t.sampled}
        if self.candidates_sampled:
            out["result strings"] = self.candidates_sampled
        return out

    def sampling(self, columns: Collection[str] | None = None) -> str:
        """What the explanation must say about the samples the text look-ups used."""
        notes = [
            f" {c}: case-folded, word and cut look-ups used a random {t.sampled[0]:,} of its "
            f"{t.sampled[1]:,} values (exact look-ups used all)."
            for c, t in self.textual.items()
            if t.sampled and (columns is None or c in columns)
        ]
        if self.candidates_sampled:
            notes.append(
                f" Only a random share of the result's {self.candidates_sampled:,} strings was "
                "split into candidates."
            )
        return "".join(notes)

    def map_columns(self, frame: pd.DataFrame, exclude: set[Any]) -> dict[Any, Any]:
        """Output columns read as the private column holding ≥ 90% of their values."""
        scores = []
        for out in frame.columns:
            if out in exclude:
                continue
            for name, share in self._cover(frame[out]):
                if share >= 0.9:
                    scores.append((share, str(out), out, name))
        mapping: dict[Any, Any] = {}
        for _, _, out, name in sorted(scores, key=lambda s: (-s[0], s[1], s[3])):
            if out not in mapping and self.labels[name] not in mapping.values():
                mapping[out] = self.labels[name]
        return mapping

    def _cover(self, column: pd.Series) -> list[tuple[str, float]]:
        import numpy as np

        values = column.dropna()
        if len(values) < 2:
            return []
        shares = []
        numbers, single = _as_numbers(values)
        if numbers is not None:
            shares += [
                (name, float(np.isin(numbers, held.index.to_numpy()).mean()))
                for name, f in self.numeric.items()
                if (held := f.held.get(single)) is not None
            ]
        if any(f.values for f in self.textual.values()):
            texts = _compact_cells(values)
            shares += [
                (name, float(np.mean([t in found.values for t in texts])))
                for name, found in self.textual.items()
                if found.values
            ]
        return shares

    def canonical(self, frame: pd.DataFrame, columns: dict[Any, Any]) -> pd.DataFrame:
        """The mapped columns as the private ones hold them (float32 read back, names' case)."""
        import pandas as pd

        out = {}
        for ours, theirs in columns.items():
            values = frame[ours]
            numbers, _ = _as_numbers(values)
            if numbers is not None and str(theirs) not in self.textual:
                values = pd.Series(numbers, index=values.index)
            elif str(theirs) in self.textual:
                spelled = self.textual[str(theirs)].values
                forms = _compact_cells(values)
                values = pd.Series([spelled.get(f, v) for f, v in zip(forms, values, strict=True)])
            out[theirs] = values.reset_index(drop=True)
        return pd.DataFrame(out)


def _kind(column: pd.Series) -> str | None:
    """``number``, ``text`` or None (booleans, dates and the rest are not compared)."""
    import pandas as pd

    values = column.cat.categories if isinstance(column.dtype, pd.CategoricalDtype) else column
    if pd.api.types.is_bool_dtype(values):
        return None
    if pd.api.types.is_numeric_dtype(values):
        return "number"
    if pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
        head = pd.Series(values[:1000]).dropna()
        if len(head) and all(isinstance(v, str) for v in head):
            return "text"
    return None


def _as_numbers(values: pd.Series) -> tuple[np.ndarray | None, bool]:
    """A column's cells as float64 (float32 read back at its precision), or None for text."""
    import numpy as np
    import pandas as pd

    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    if pd.api.types.is_bool_dtype(values):
        return None, False
    if pd.api.types.is_numeric_dtype(values):
        single = isinstance(values.dtype, np.dtype) and values.dtype == np.float32
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        return (round_significant(numbers, 7) if single else numbers), single
    try:
        numbers = pd.to_numeric(values, errors="coerce")  # ids written as text: {"100017": 1}
    except (OverflowError, TypeError):  # ints too large for a float; lists in cells
        return None, False
    if numbers.notna().all():
        return numbers.to_numpy(dtype=float), False
    return None, False


def _compact_cells(values: Any) -> list[str]:
    """Each cell's text case-folded without separators, as ``compact`` makes candidates."""
    import pyarrow as pa

    return [str(t) for t in compact(pa.array([str(v) for v in values], pa.string())).to_pylist()]


def _float_values(column: pd.Series, single: bool) -> np.ndarray:
    """A numeric column as float64; ``single``: as float32 holds it, read back to 7 digits."""
    import numpy as np
    import pandas as pd

    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        categories = column.cat.categories.to_numpy(dtype=float)
        values = np.where(codes >= 0, categories[codes], np.nan)
    else:
        values = column.to_numpy(dtype=float, na_value=np.nan)
    if single:
        values = round_significant(values.astype(np.float32).astype(float), 7)
    return values


@dataclass(frozen=True)
class _Distribution:
    """A numeric column's distinct values, sorted, and how many records hold each."""

    values: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray, wanted: np.ndarray, whole: bool) -> _Distribution | None:
        """The distribution, or None when none of ``wanted`` is a value (found cheaply).
        ``whole``: the column's dtype is an integer one."""
        import numpy as np
        import pandas as pd

        values = values[np.isfinite(values)]
        if not len(values):
            return None
        places = 0 if whole else int(_decimals(values[:: max(1, len(values) // 10_000)]).max())
        steps = None
        if whole:
            steps = values
        elif places <= 6:  # every value on the grid of the sample's decimals? (one pass)
            scale = 10.0 ** max(places, 0)
            steps = np.rint(values * scale)
            if not np.array_equal(steps / scale, values):
                steps = None
        if steps is not None:
            if not (_decimals(wanted) <= places).any():
                return None  # no output number is written on the column's grid
            if (table := cls._counted(steps, places)) is not None:
                return table if table.held(wanted).any() else None
        if not pd.Series(values).isin(wanted).any():
            return None
        distinct, counts = np.unique(values, return_counts=True)
        return cls(distinct, counts)

    @classmethod
    def _counted(cls, steps: np.ndarray, places: int) -> _Distribution | None:
        """Values on a grid of ``places`` decimals (as whole steps) counted in one pass when
        they span little: ages, amounts in cents, ids (sorting ten million takes seconds)."""
        import numpy as np

        low, high = float(steps.min()), float(steps.max())
        if high - low > max(4 * len(steps), 2**20):
            return None
        counts = np.bincount((steps - low).astype(np.int64))
        spots = np.flatnonzero(counts)
        return cls((spots + low) / 10.0 ** max(places, 0), counts[spots])

    def held(self, numbers: np.ndarray) -> np.ndarray:
        """How many records hold each number (0: not a value)."""
        import numpy as np

        spot = np.clip(np.searchsorted(self.values, numbers), 0, len(self.values) - 1)
        return np.where(self.values[spot] == numbers, self.counts[spot], 0)


@dataclass
class _Numeric:
    """What the output's numbers hold of one numeric column."""

    column: str
    held: dict[bool, pd.Series] = field(default_factory=dict)  # pool: value -> records
    tables: dict[bool, _Distribution] = field(default_factory=dict)  # pool: the column
    rare: dict[bool, np.ndarray] = field(default_factory=dict)  # pool: rare values found
    expected: float = 0.0  # rare values chance alone would put among the output's numbers
    rare_total: int = 0  # the column's distinct rare values
    in_range: int = 0  # distinct output numbers between the column's least and greatest value
    labelled: int = 0  # rare values found among numbers pandas labels min, max, 50%, …
    where: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def found(self) -> int:
        return sum(len(r) for r in self.rare.values())

    @property
    def distinct(self) -> int:
        """How many distinct values the column has (as its first pool holds them)."""
        return len(next(iter(self.tables.values())).values) if self.tables else 0

    def measure(
        self,
        parts: list[tuple[str, Numbers]],
        min_count: int,
        identifying: bool,
        pools: dict[bool, np.ndarray],
    ) -> None:
        import numpy as np

        ranks: dict[bool, tuple[np.ndarray, np.ndarray]] = {}  # pool: sorted values, ranks
        for single, held in self.held.items():
            counts = held.to_numpy()
            rare = held.index.to_numpy(dtype=float)[
                slice(None) if identifying else counts < min_count
            ]
            if not len(rare):
                continue
            self.rare[single] = rare
            table = self.tables[single]
            every = table.values[(table.counts < min_count) | identifying]
            self.rare_total += len(every)
            low, high = float(table.values[0]), float(table.values[-1])
            self.expected += float(_chance(pools[single], every, low, high).sum())
            self.in_range += int(((pools[single] >= low) & (pools[single] <= high)).sum())
            middle = (np.cumsum(table.counts) - table.counts / 2) / table.counts.sum()
            ranks[single] = (table.values, middle)  # each value's rank among the records
        labelled: set[tuple[bool, float]] = set()
        for path, numbers in parts:
            tally = {"numbers": len(numbers), "values": 0, "rare": 0, "distinct": 0}
            for single, held in self.held.items():
                pool = numbers.single == single
                mine = numbers.values[pool]
                is_value = np.isin(mine, held.index.to_numpy())
                tally["values"] += int(is_value.sum())
                tally["distinct"] += len(np.unique(mine[is_value]))
                if single in self.rare:
                    is_rare = np.isin(mine, self.rare[single])
                    tally["rare"] += int(is_rare.sum())
                    named = _named_quantiles(numbers, pool, *ranks[single])
                    labelled.update((single, float(v)) for v in mine[named & is_rare])
            if tally["values"]:
                self.where[path] = tally
        self.labelled = len(labelled)

    def judged(self, rows: int, min_count: int, tests: int) -> tuple[str, dict[str, Any], str]:
        import numpy as np

        # A copy: many values, most of the part, and not one value over and over (zeros).
        floor, variety = max(20, rows / 2), min(3, self.distinct)
        copies = [
            p
            for p, w in self.where.items()
            if w["values"] >= max(floor, 0.9 * w["numbers"]) and w["distinct"] >= variety
        ]
        if not self.found and not copies:
            return "pass", {}, ""
        chance = min(1.0, _tail(self.found, self.expected) * max(tests, 1))
        # A list of the column's rare values: most of them, and most of the output's numbers
        # in the column's range (a million random integers also hit most ids 1..n).
        listing = self.found >= max(20, self.rare_total / 2, self.in_range / 2)
        reasons = []
        if chance < _FAIL:
            reasons.append(f"chance would give about {self.expected:.2g}")
        if self.labelled:
            reasons.append(f"{self.labelled} of them labelled as a min, max or quantile")
        if listing:
            reasons.append(f"{self.found} of the column's {self.rare_total} rare values")
        if copies:
            reasons.append(f"a copy of the column in {', '.join(copies[:3])}")
        verdict = "fail" if reasons else "warn" if chance < _WARN else "pass"
        if verdict == "warn":
            reasons.append(f"chance would give about {self.expected:.2g}, so they may be")
        top = sorted(self.where.items(), key=lambda kv: (-kv[1]["rare"], -kv[1]["values"]))
        path, w = top[0]
        more = f" (in {len(top) - 1} other parts too)" if len(top) > 1 else ""
        text = (
            f"{w['values']} of {w['numbers']} numbers in {path} are values of {self.column}, "
            f"{w['rare']} of them held by fewer than {min_count} records{more}; "
            f"{self.found} distinct rare values in all ({'; '.join(reasons)}"
            f"{' coincidences' if verdict == 'warn' else ''})"
        )
        shown = np.concatenate([np.zeros(0), *self.rare.values()])[:_LIMIT]
        figures = {
            "verdict": verdict,
            "rare_values_found": self.found,
            "expected_by_chance": round(self.expected, 4),
            "chance": chance,
            "labelled": self.labelled,
            "rare_values_in_column": self.rare_total,
            "copies": copies,
            "where": dict(top[:20]),
            "values": shown.tolist(),
        }
        return verdict, figures, text


def _numeric(name: str, column: pd.Series, pools: dict[bool, np.ndarray]) -> _Numeric:
    """The output numbers that are values of ``column``, and how many records hold each."""
    import pandas as pd

    found = _Numeric(name)
    for single, distinct in pools.items():
        if not len(distinct):
            continue
        whole = pd.api.types.is_integer_dtype(column) and not single
        table = _Distribution.of(_float_values(column, single), distinct, whole)
        if table is None:
            continue
        records = table.held(distinct)
        found.tables[single] = table
        found.held[single] = pd.Series(records[records > 0], index=distinct[records > 0])
    return found


def _named_quantiles(
    numbers: Numbers, pool: np.ndarray, values: np.ndarray, ranks: np.ndarray
) -> np.ndarray:
    """Which numbers of a pool are order statistics of this column, by their labels.

    A labelled number counts when a row or column of the table it is in holds two or more
    quantile labels, and every labelled number there fits the column: each lies within half
    the column's records of the rank its label names (a ``max`` in the upper half, a ``min``
    in the lower one). ``describe()`` of ages is about age, not about the ids 18 to 94.
    """
    import numpy as np

    named = numbers.rank[pool]
    counted = np.zeros(len(named), dtype=bool)
    labelled = ~np.isnan(named)
    if not labelled.any():
        return counted
    rank = np.interp(numbers.values[pool], values, ranks)  # exact for a value, between else
    fits = ~labelled | (np.abs(rank - named) <= 0.5)
    for line in (numbers.row[pool], numbers.column[pool]):
        for spot in np.unique(line[labelled & (line >= 0)]):
            here = (line == spot) & labelled
            if len(np.unique(named[here])) >= 2 and fits[here].all():
                counted |= here
    return counted


def _decimals(values: np.ndarray) -> np.ndarray:
    """The fewest decimal places (-6 to 15; 16: more) each number is written with."""
    import numpy as np

    places = np.full(len(values), 16)
    whole = np.flatnonzero((values == np.rint(values)) & (np.abs(values) < 2**53))
    places[whole] = 0
    steps = values[whole].astype(np.int64)
    for power in range(1, 7):  # 1500 is written on a grid of 100: -2 decimals
        keep = steps % 10 == 0
        whole, steps = whole[keep], steps[keep] // 10
        places[whole] = -power
    rest = np.flatnonzero(places == 16)
    low, high = np.full(len(rest), 1), np.full(len(rest), 16)
    while np.any(low < high):
        middle = (low + high) // 2
        scale = 10.0 ** middle.astype(float)
        with np.errstate(over="ignore", invalid="ignore"):
            exact = np.rint(values[rest] * scale) / scale == values[rest]
        active = low < high
        high = np.where(active & exact, middle, high)
        low = np.where(active & ~exact, middle + 1, low)
    places[rest] = high
    return places


def _chance(numbers: np.ndarray, rare: np.ndarray, low: float, high: float) -> np.ndarray:
    """For each number, the chance that a number of its precision there is a rare value.

    Estimated from the ``_NEIGHBOURS`` rare values nearest to it among those its decimal
    places can write (``k / grid points`` within the k-th one's distance, inside the column's
    range), or from the column's whole range when it has fewer rare values than that.
    """
    import numpy as np

    places = _decimals(numbers)
    chance = np.zeros(len(numbers))
    inside = (numbers >= low) & (numbers <= high)
    for level in np.unique(places[inside]):
        if level < 16:  # the rare values this many decimal places can write
            scale = 10.0 ** float(level)
            scaled = rare * scale  # past 2**52 every float is whole: counted as writable
            grid = rare[(np.rint(scaled) / scale == rare) | (np.abs(scaled) >= 2**52)]
        else:
            grid = rare
        if not len(grid):
            continue
        step = 10.0 ** -float(level)
        overall = len(grid) / (np.floor((high - low) / step + 1e-9) + 1)
        at = np.flatnonzero(inside & (places == level))
        for chunk in np.array_split(at, max(1, len(at) // 50_000)):
            x = numbers[chunk]
            spots = np.searchsorted(grid, x)[:, None] + np.arange(-_NEIGHBOURS, _NEIGHBOURS + 1)
            valid = (spots >= 0) & (spots < len(grid))
            near = grid[np.clip(spots, 0, len(grid) - 1)]
            distance = np.where(valid & (near != x[:, None]), np.abs(near - x[:, None]), np.inf)
            distance.sort(axis=1)
            k = np.minimum(_NEIGHBOURS, np.isfinite(distance).sum(axis=1))
            reach = distance[np.arange(len(x)), np.maximum(k - 1, 0)]
            reach = np.where(k > 0, reach, 0.0)
            width = np.minimum(x + reach, high) - np.maximum(x - reach, low)
            # Grid points within reach, its own left out (as its own value is, among the k).
            local = np.where(k > 0, k / np.maximum(np.floor(width / step + 1e-9), 1), 0.0)
            chance[chunk] = np.where(k < _NEIGHBOURS, np.maximum(local, overall), local)
    return np.minimum(chance, 1.0)


def _tail(observed: int, expected: float) -> float:
    """P(a Poisson count with mean ``expected`` is ``observed`` or more)."""
    if observed <= 0:
        return 1.0
    if expected <= 0:
        return 0.0
    from scipy.special import pdtrc  # scikit-learn's dependency; imported only when needed

    return float(pdtrc(observed - 1, expected))


@dataclass
class _Textual:
    """What the output's strings hold of one text column."""

    column: str
    identifying: bool
    found: dict[str, tuple[str, int]] = field(default_factory=dict)  # string: (how, records)
    values: dict[str, Any] = field(default_factory=dict)  # compact form: value found whole
    sampled: tuple[int, int] | None = None

    @property
    def whole(self) -> list[Any]:
        """The private values found whole (any rarity)."""
        return list(dict.fromkeys(self.values.values()))

    def counted(self, min_count: int) -> dict[str, tuple[str, int]]:
        """What counts as a disclosure: rare strings, and identifying values or their cuts."""
        return {
            s: (how, n)
            for s, (how, n) in self.found.items()
            if n < min_count or (self.identifying and how != "word")
        }

    def judged(self, min_count: int) -> tuple[str, dict[str, Any], str]:
        counted = self.counted(min_count)
        if not counted:
            return "pass", {}, ""
        verdict = "fail" if len(counted) >= 3 else "warn"
        kinds = {how: sum(1 for h, _ in counted.values() if h == how) for how in _HOW}
        said = " and ".join(f"{n} {_HOW[how][n != 1]}" for how, n in kinds.items() if n)
        whose = (
            "identifying values"
            if self.identifying
            else f"values held by fewer than {min_count} records"
        )
        text = f"{self.column}: the result's strings hold {said} of {whose}"
        figures = {
            "verdict": verdict,
            "strings_found": len(counted),
            "kinds": kinds,
            "values": sorted(counted)[:_LIMIT],
        }
        return verdict, figures, text


_HOW = {
    "value": ("whole value", "whole values"),
    "word": ("word", "words"),
    "cut": ("cut (a part of 4+ characters)", "cuts (parts of 4+ characters)"),
}


def _isin(values: Any, candidates: Any) -> np.ndarray:
    """Which values are candidates. Hashing the smaller side: many candidates against a few
    values are first narrowed to those among the values."""
    import numpy as np
    import pyarrow.compute as pc

    if len(candidates) > 4 * len(values):
        candidates = candidates.filter(pc.is_in(candidates, value_set=pc.unique(values)))
    return np.asarray(pc.fill_null(pc.is_in(values, value_set=candidates), False))


def _distinct_texts(column: pd.Series) -> tuple[Any, np.ndarray]:
    """A text column's distinct values (as a pyarrow array) and how many records hold each."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column.dtype, pd.CategoricalDtype):
        counts = column.value_counts(sort=False)
        counts = counts[counts > 0]
        return pa.array([str(v) for v in counts.index], pa.string()), counts.to_numpy()
    try:
        array = pa.array(column, pa.string(), from_pandas=True)
    except (pa.ArrowException, TypeError):
        array = pa.array(column.astype(str), pa.string())
    tally = pc.value_counts(array.drop_null())
    return tally.field("values"), np.asarray(tally.field("counts"))


def _textual(
    name: str,
    column: pd.Series,
    candidates: TextCandidates,
    identifying: bool,
    min_count: int,
) -> _Textual:
    """The output strings that are values of ``column``, words of them or cuts of them."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    found = _Textual(name, identifying)
    part = column
    if len(column) > TEXT_ROWS and not isinstance(column.dtype, pd.CategoricalDtype):
        rows = np.random.default_rng(0).choice(len(column), TEXT_ROWS, replace=False)
        part = column.iloc[np.sort(rows)]
        found.sampled = (TEXT_ROWS, len(column))
    texts, records = _distinct_texts(part)
    whole = compact(texts)
    length = np.asarray(pc.utf8_length(whole))
    matched = _isin(whole, candidates.whole)
    for i in np.flatnonzero(matched & (length >= 3)):
        text = str(texts[int(i)].as_py())
        found.found[text] = ("value", int(records[i]))
        found.values[str(whole[int(i)].as_py())] = text
    rare = np.arange(len(texts)) if identifying else np.flatnonzero(records < min_count)
    for i in _inside(whole.take(pa.array(rare)), candidates.joined):
        text = str(texts[int(rare[i])].as_py())
        found.found.setdefault(text, ("value", int(records[rare[i]])))
        found.values.setdefault(str(whole[int(rare[i])].as_py()), text)
    words = None
    if identifying:
        lists = pc.split_pattern_regex(pc.utf8_lower(texts), NOT_ALNUM)
        words = (pc.list_flatten(lists), np.asarray(pc.list_parent_indices(lists)))
    # A cut only counts when the output string is no value or word of the column itself:
    # "Given1" is someone's name before it is "Given17" cut short.
    parts = [whole.filter(pa.array(matched))]
    if words:
        parts.append(words[0].filter(pa.array(_isin(words[0], candidates.whole))))
    own = pa.chunked_array(parts, pa.string())
    longest = int(length.max()) if len(length) else 0
    sizes = pc.utf8_length(candidates.whole)
    fits = pc.and_(pc.less(sizes, longest), pc.greater_equal(sizes, 4))
    cuts = candidates.whole.filter(pc.and_(fits, pa.array(~_isin(candidates.whole, own))))
    for i in _cut_of(whole.take(pa.array(rare)), cuts):
        found.found.setdefault(str(texts[int(rare[i])].as_py()), ("cut", int(records[rare[i]])))
    if words:
        _words(found, *words, records, candidates.tokens, cuts)
    if found.sampled:
        _exact(found, column, candidates)
    return found


def _inside(texts: Any, joined: Any) -> np.ndarray:
    """Positions of the texts (8 characters or more) found inside the output's strings with
    their separators removed: values run together (``"".join(names)``)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    text = "\x00".join(joined.to_pylist())[:_RUN_CHARS]  # bounded: the rest is not looked at
    length = np.asarray(pc.utf8_length(texts))
    found: list[np.ndarray] = []
    if not text:
        return np.zeros(0, dtype=int)
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    for size in np.unique(length[(length >= 8) & (length <= len(codes))]):
        windows = np.lib.stride_tricks.sliding_window_view(codes, int(size))
        seen = pa.array(np.unique(windows.copy().view(f"<U{size}").ravel()))
        at = np.flatnonzero(length == size)
        found.append(at[_isin(texts.take(pa.array(at)), seen)])
    return np.concatenate([np.zeros(0, dtype=int), *found])


def _cut_of(texts: Any, candidates: Any) -> np.ndarray:
    """Positions of the texts a candidate is a cut of: up to two characters off either end,
    four or more left. Few candidates: one regular-expression pass; many: every cut looked up.
    """
    import numpy as np
    import pyarrow.compute as pc

    if not len(candidates) or not len(texts):
        return np.zeros(0, dtype=int)
    if len(candidates) <= _ALTERNATIVES:  # candidates are letters and digits only
        wanted = set(candidates.to_pylist())
        maybe = np.flatnonzero(pc.match_substring_regex(texts, "|".join(sorted(wanted))))
        if len(maybe) <= _ALTERNATIVES:  # else looking at each would take longer
            near = texts.take(maybe).to_pylist()
            return maybe[[_is_cut(t, wanted) for t in near]] if len(maybe) else maybe
    length = np.asarray(pc.utf8_length(texts))
    hit = np.zeros(len(texts), dtype=bool)
    for a, b in _CUTS:
        piece = pc.utf8_slice_codeunits(texts, a, -b if b else None)
        hit |= (length - a - b >= 4) & _isin(piece, candidates)
    return np.flatnonzero(hit)


def _is_cut(text: str, wanted: set[str]) -> bool:
    return any(len(text) - a - b >= 4 and text[a : len(text) - b] in wanted for a, b in _CUTS)


def _words(
    found: _Textual,
    words: Any,
    owners: np.ndarray,
    records: np.ndarray,
    tokens: Any,
    cuts: Any,
) -> None:
    """Words of identifying values found alone (a first name), or cut (``name[1:]``)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    word = _isin(words, tokens) & (np.asarray(pc.utf8_length(words)) >= 3)
    cut = np.zeros(len(words), dtype=bool)
    cut[_cut_of(words, cuts)] = True
    for how, mask in {"word": word, "cut": cut & ~word}.items():
        if not mask.any():
            continue
        chosen = words.filter(pa.array(mask)).to_numpy(zero_copy_only=False)
        held = pd.Series(records[owners[mask]]).groupby(chosen).sum()
        for text, n in held.items():
            found.found.setdefault(str(text), (how, int(n)))


def _exact(found: _Textual, data: pd.Series, candidates: TextCandidates) -> None:
    """A sampled column's values as written in the output, and exact counts for all found."""
    seen = {s for s, (how, _) in found.found.items() if how != "word"}
    held = data[data.isin(candidates.raw | seen)].value_counts()
    for value, n in held.items():
        text = str(value)
        how = found.found.get(text, ("value", 0))[0]
        found.found[text] = (how, int(n))
        if how == "value":
            found.values[_compact_cells([text])[0]] = value
    # Words are counted in the sample only (the explanation says so): one seen once there
    # may be anyone's and counts as rare; the others are scaled up to the whole column.
    share = len(data) / found.sampled[0] if found.sampled else 1.0
    for word, (how, n) in list(found.found.items()):
        if how == "word":
            found.found[word] = (how, 0 if n <= 1 else round(n * share))


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
        # A lone integer answer is a count as often as not (10**400 is not one).
        blocks = [np.array([value])] if -rows <= int(value) <= rows else []
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
