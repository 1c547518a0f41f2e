"""Walking a decoded output for ``rds.checks.leakage``: its parts, its numbers, its strings.

``walk`` breaks an output into what the checks judge one at a time: scalars, tables, series
and arrays (torch tensors become arrays of their own dtype), reading lists of dicts, lists of
equal-length rows, dicts of equal-length lists and dicts of scalars as tables (one record,
or with more than 64 keys, (key, value) pairs like ``dict(zip(ids, ages))``); dict keys that
are not strings are parts too, and a set is kept for the ``types`` rule while its items are
checked like a list's.

``numbers_in`` gathers every number of one part: cells (and lists or arrays held in cells),
array elements, index values, column labels and dict keys, and numbers written in strings
(``"|".join(map(str, ...))``, ``"$12.50"``). Numbers that came from float32 carry a flag
(they are compared at float32 precision), numbers pandas labels as order statistics
(``min``, ``max``, ``median``, ``25%``…) carry the quantile the label names, and cells carry
their row and column. ``text_candidates`` turns every string into what a private string
could have been turned into: whole, cut into tokens at any character that is not a letter or
digit, runs of up to four tokens, each string and each token reversed, all case-folded and
compared without separators (``"Given17|FAMILY17"`` yields ``given17family17``).
``numeric_hits`` finds a numeric identifier's values in columns of its name.

Text work is vectorised with pyarrow's string kernels. An output holding more than
``TOKENS`` tokens has a random sample of its strings turned into candidates (the checks say
so). They live apart from the rules in ``rds.checks.leakage`` so that module reads as the
rules it applies, not as the many shapes an output can take.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

SCALARS = (type(None), bool, int, float, str)
TOKENS = 500_000  # output words made into candidates; beyond, a sample of 1,000-word pieces
_WORDS = 4  # longest run of tokens compared with a private string
_RECORD_KEYS = 64  # a dict of more scalars than this is a table of (key, value) pairs
NOT_ALNUM = r"[^\p{L}\p{N}]+"  # pyarrow's (RE2) syntax: every separator, punctuation included
_PIECES = r"[|,;\t\n\r/\\]+"  # separators a list is joined with; names keep spaces and dashes
_SEPARATORS = (" ", "-", "_", ".", ",", "'", "|", ";", ":", "/", "\t")  # the usual ones
_NUMBER_GAPS = r"[^\p{L}\p{N}.+\-]+"  # a number stands between anything but letters
_NUMBER = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
_QUANTILES = {"min": 0.0, "amin": 0.0, "median": 0.5, "max": 1.0, "amax": 1.0}
_PERCENT = re.compile(r"^(\d{1,3}(?:\.\d+)?)%$")  # describe()'s quantile labels


def walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(position, value) for each scalar, table, series or array in the output."""
    import numpy as np
    import pandas as pd

    if isinstance(value, (*SCALARS, np.generic, pd.DataFrame, pd.Series, np.ndarray)):
        yield path, value
    elif type(value).__module__.split(".")[0] == "torch":
        import torch  # only when the output holds a tensor: torch is slow to import

        yield path, (_array(value) if isinstance(value, torch.Tensor) else value)
    elif isinstance(value, (dict, list, tuple)) and (table := _as_table(value)) is not None:
        yield path, table
    elif isinstance(value, dict):
        for i, (key, item) in enumerate(value.items()):
            if _scalar(key) and not isinstance(key, (bool, type(None))):  # ids as keys
                yield f"{path} key {i}", key
            yield from walk(item, f"{path}[{i}]")
    elif isinstance(value, (set, frozenset)):
        yield path, value  # refused by the types rule; its items are checked all the same
        yield from walk(sorted(value, key=repr), path)
    elif isinstance(value, (list, tuple)) and value and all(_scalar(v) for v in value):
        try:
            yield path, pd.Series(list(value))
        except OverflowError:  # an int too large for any dtype
            yield path, pd.Series(list(value), dtype=object)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from walk(item, f"{path}[{i}]")
    else:
        yield path, value


def _array(tensor: Any) -> np.ndarray:
    """A tensor's values in its own precision (half precision as float32: numpy lacks bf16)."""
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype in (torch.float16, torch.bfloat16):
        tensor = tensor.float()
    return tensor.resolve_conj().numpy()


def _scalar(value: Any) -> bool:
    import numpy as np

    return isinstance(value, (*SCALARS, np.generic))


def _as_table(value: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> pd.DataFrame | None:
    """Records (dicts or equal-length rows), columns (dict of lists) or one record, as a table."""
    import pandas as pd

    if isinstance(value, dict):
        if value and all(_scalar(v) for v in value.values()):
            if len(value) > _RECORD_KEYS:  # not one record but a mapping: {id: value, ...}
                return pd.DataFrame({"key": list(value), "value": list(value.values())})
            return pd.DataFrame([value])
        lists = [v for v in value.values() if isinstance(v, (list, tuple))]
        same = len(lists) == len(value) and len({len(v) for v in lists}) == 1
        if value and same and all(_scalar(x) for v in lists for x in v):
            return pd.DataFrame({k: list(v) for k, v in value.items()})
        return None
    if value and all(isinstance(r, dict) and all(_scalar(x) for x in r.values()) for r in value):
        return pd.DataFrame(list(value))
    rows = [r for r in value if isinstance(r, (list, tuple))]
    if (
        value
        and len(rows) == len(value)
        and len({len(r) for r in rows}) == 1
        and len(rows[0]) >= 2
        and all(_scalar(x) for r in rows for x in r)
    ):
        # df.values.tolist() is rows; [ids, amounts] is columns: the longer side is the rows.
        if len(rows) >= len(rows[0]):
            return pd.DataFrame([list(r) for r in rows])
        return pd.DataFrame({i: list(r) for i, r in enumerate(rows)})
    return None


def leaf_strings(value: Any) -> list[str]:
    """The strings of one part: cells, column and index names, index values, list items."""
    import numpy as np
    import pandas as pd

    texts: list[Any] = []
    if isinstance(value, str):
        texts.append(value)
    elif isinstance(value, (pd.DataFrame, pd.Series)):
        frame = value.to_frame() if isinstance(value, pd.Series) else value
        texts += [*frame.columns, *frame.index.names]
        parts = [frame.index.get_level_values(i) for i in range(frame.index.nlevels)]
        for column in [*parts, *(c for _, c in frame.items())]:
            if not pd.api.types.is_numeric_dtype(column):
                texts += _texts(column.dropna())
    elif isinstance(value, np.ndarray) and value.dtype.kind in "OUS":
        texts += value.ravel().tolist()
    flat = [t for x in texts for t in (x if isinstance(x, tuple) else (x,))]
    return [t for t in flat if isinstance(t, str) and t.strip()]


def strings_in(leaves: list[tuple[str, Any]]) -> set[str]:
    """Every string in the output: cells, column and index names, index values, keys, items."""
    return {t for _, value in leaves for t in leaf_strings(value)}


def _texts(values: Any) -> list[Any]:
    import numpy as np
    import pandas as pd

    try:
        return list(pd.unique(values.astype(object)))
    except TypeError:  # cells holding lists: look inside them
        nested = (list, tuple, np.ndarray)
        return [x for v in values for x in (v if isinstance(v, nested) else [v])]


# --- numbers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Numbers:
    """The numbers of one part of the output (finite, as float64), and what is known of each.

    ``single``: the number came from float32 and was rounded to 7 significant digits, so it
    is compared with private values at that precision. ``rank``: the quantile its row or
    column label names (``min`` 0, ``25%`` 0.25, ``max`` 1), NaN for the rest. ``row`` and
    ``column``: the table cell it is in (-1 for numbers that are not cells).
    """

    values: np.ndarray
    single: np.ndarray
    rank: np.ndarray
    row: np.ndarray
    column: np.ndarray

    def __len__(self) -> int:
        return len(self.values)


_Block = tuple[Any, bool, Any, Any, Any]  # values, single, and rank, row, column (or one for all)


def numbers_in(value: Any) -> Numbers:
    """Every number of one part of the output (see ``Numbers``); none for text-free scalars."""
    import numpy as np
    import pandas as pd

    blocks: list[_Block] = []
    if isinstance(value, (bool, np.bool_)) or value is None:
        pass
    elif isinstance(value, (int, float, np.integer, np.floating)):
        blocks.append(([_float(value)], isinstance(value, np.float32), np.nan, -1, -1))
    elif isinstance(value, str):
        blocks.append((parse_numbers([value]), False, np.nan, -1, -1))
    elif isinstance(value, np.ndarray):
        blocks += _array_numbers(value)
    elif isinstance(value, pd.Series):  # an unnamed series' column label 0 is no number
        blocks += _frame_numbers(value.to_frame("" if value.name is None else value.name))
    elif isinstance(value, pd.DataFrame):
        blocks += _frame_numbers(value)
    return _gather(blocks)


def _gather(blocks: list[_Block]) -> Numbers:
    import numpy as np

    parts: list[list[np.ndarray]] = [[], [], [], [], []]
    for block, single, *where in blocks:
        array = np.asarray(block, dtype=float).ravel()
        keep = np.isfinite(array)
        if single:
            array = round_significant(array, 7)
        parts[0].append(array[keep])
        parts[1].append(np.full(int(keep.sum()), single))
        for i, known in enumerate(where, 2):
            kind = float if i == 2 else int
            parts[i].append(np.broadcast_to(np.asarray(known, dtype=kind), array.shape)[keep])
    if not blocks:
        return Numbers(np.zeros(0), np.zeros(0, bool), np.zeros(0), *[np.zeros(0, int)] * 2)
    return Numbers(*(np.concatenate(p) for p in parts))


def _array_numbers(array: np.ndarray) -> list[_Block]:
    import numpy as np

    if array.dtype.kind in "iu":
        return [(array.astype(float), False, np.nan, -1, -1)]
    if array.dtype.kind == "f":
        return [(array.astype(float), array.dtype.itemsize <= 4, np.nan, -1, -1)]
    if array.dtype.kind in "OUS":
        texts = [t for t in array.ravel().tolist() if isinstance(t, str)]
        return [(parse_numbers(texts), False, np.nan, -1, -1)]
    return []


def _frame_numbers(frame: pd.DataFrame) -> list[_Block]:
    import numpy as np
    import pandas as pd

    rows = np.array([quantile_label(label) for label in frame.index], dtype=float)
    blocks: list[_Block] = []
    for j in range(frame.shape[1]):
        label = quantile_label(frame.columns[j])
        for numbers, single in _series_numbers(frame.iloc[:, j]):
            if len(numbers) == len(rows):
                ranks = np.where(np.isnan(rows), label, rows)
                blocks.append((numbers, single, ranks, np.arange(len(rows)), j))
            else:  # numbers read from text are not cells: only the column's label marks them
                blocks.append((numbers, single, label, -1, -1))
    if not isinstance(frame.index, pd.RangeIndex):  # a default index holds no values
        for i in range(frame.index.nlevels):
            level = pd.Series(frame.index.get_level_values(i))
            blocks += [(v, s, np.nan, -1, -1) for v, s in _series_numbers(level)]
    labels = [  # a default RangeIndex of columns, like one of rows, holds no values
        x
        for label in ([] if isinstance(frame.columns, pd.RangeIndex) else frame.columns)
        for x in (label if isinstance(label, tuple) else [label])
    ]
    numeric = [x for x in labels if _scalar(x) and not isinstance(x, (bool, str, type(None)))]
    blocks.append((numeric, False, np.nan, -1, -1))
    texts = [x for x in labels if isinstance(x, str) and not _PERCENT.match(x)]
    blocks.append((parse_numbers(texts), False, np.nan, -1, -1))
    return blocks


def _series_numbers(column: pd.Series) -> list[tuple[Any, bool]]:
    """A column's numbers: numeric cells (as they are), or numbers written in its text."""
    import numpy as np
    import pandas as pd

    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = column.cat.categories
        if not pd.api.types.is_numeric_dtype(categories):
            column = column.astype(object)
        else:  # the categories' values, row by row (a missing one is NaN)
            codes = column.cat.codes.to_numpy()
            values = np.where(codes >= 0, categories.to_numpy(dtype=float)[codes], np.nan)
            return [(values, False)]
    if pd.api.types.is_bool_dtype(column):
        return []
    if pd.api.types.is_numeric_dtype(column):
        single = isinstance(column.dtype, np.dtype) and column.dtype == np.float32
        return [(column.to_numpy(dtype=float, na_value=np.nan), single)]
    if pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column):
        texts: list[str] = []
        blocks: list[tuple[Any, bool]] = []
        _cells(column.dropna().tolist(), texts, blocks, 0)
        return [(parse_numbers(texts), False), *blocks]
    return []


def _cells(cells: list[Any], texts: list[str], blocks: list[tuple[Any, bool]], depth: int) -> None:
    """Strings and numbers of mixed cells, looking into lists and arrays held in cells
    (``df.groupby(g).x.apply(list)``)."""
    import numpy as np

    numbers = []
    for cell in cells:
        if isinstance(cell, str):
            texts.append(cell)
        elif isinstance(cell, (bool, np.bool_)):
            continue
        elif isinstance(cell, (int, float, np.integer, np.floating)):
            numbers.append(_float(cell))
        elif isinstance(cell, np.ndarray) and cell.dtype.kind in "iuf":
            single = cell.dtype.kind == "f" and cell.dtype.itemsize <= 4
            blocks.append((cell.astype(float).ravel(), single))
        elif isinstance(cell, (list, tuple, np.ndarray)) and depth < 8:
            _cells(list(cell), texts, blocks, depth + 1)
    blocks.append((np.array(numbers, dtype=float), False))


def _float(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:  # 10**400 is no float
        return float("inf")


def quantile_label(label: Any) -> float:
    """The quantile a row or column label names (pandas' ``min``, ``50%``, ``max``…), or NaN."""
    for part in label if isinstance(label, tuple) else (label,):
        if isinstance(part, str):
            if part in _QUANTILES:
                return _QUANTILES[part]
            if (percent := _PERCENT.match(part)) and float(percent.group(1)) <= 100:
                return float(percent.group(1)) / 100
    return float("nan")


def parse_numbers(texts: list[str]) -> np.ndarray:
    """The numbers written in some strings, each between separators ("12.5", "-3", "1e5")."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if not texts:
        return np.zeros(0)
    words = pc.list_flatten(pc.split_pattern_regex(pa.array(texts, pa.string()), _NUMBER_GAPS))
    words = pc.utf8_rtrim(words, characters=".")  # "aged 94." ends a sentence
    words = pc.filter(words, pc.match_substring_regex(words, _NUMBER))
    return np.asarray(pc.cast(words, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)


def round_significant(values: np.ndarray, digits: int) -> np.ndarray:
    """Each value rounded to ``digits`` significant digits (how float32 is read back)."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = np.floor(np.log10(np.abs(values)))
    places = np.where(np.isfinite(magnitude), digits - 1 - magnitude, 0)
    scale = 10.0**places
    return np.where(values == 0, 0.0, np.rint(values * scale) / scale)


# --- strings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextCandidates:
    """What the output's strings could be a private string turned into (all case-folded).

    ``whole``: strings, pieces between list separators and runs of up to four tokens, each
    without separators, forwards and reversed. ``tokens``: single tokens of three or more
    characters, forwards and reversed. ``raw``: strings, pieces and runs of words as written
    and in the usual letter cases, for exact look-ups in columns too large to normalise.
    ``joined``: each string without separators, forwards and reversed, to find values run
    together (``"".join(names)``). ``sampled``: of how many strings a sample was used, or 0.
    """

    whole: pa.Array
    tokens: pa.Array
    joined: pa.Array
    strings: tuple[str, ...]
    sampled: int = 0

    @cached_property
    def raw(self) -> frozenset[str]:
        return frozenset(_raw(self.strings))


def text_candidates(texts: set[str], ignore: Collection[str] = ()) -> TextCandidates:
    """Candidates from every string of the output; ``ignore`` drops words such as column names."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    strings = [piece for text in sorted(texts) for piece in _chunks(text)]
    sampled = 0
    words = sum(len(t.split()) for t in strings)
    if words > TOKENS:  # bounded work: a random share of the strings, said in the check
        rng = np.random.default_rng(0)
        keep = rng.random(len(strings)) < TOKENS / words
        sampled, strings = len(strings), [s for s, k in zip(strings, keep, strict=True) if k]
    lowered = pc.utf8_lower(pa.array(strings, pa.string()))
    whole: list[pa.Array] = []
    tokens: list[pa.Array] = []
    joined: list[pa.Array] = []
    for text in (lowered, pc.utf8_reverse(lowered)):
        joined.append(compact(text))
        whole.append(joined[-1])
        whole.append(compact(pc.list_flatten(pc.split_pattern_regex(text, _PIECES))))
        lists = pc.split_pattern_regex(text, NOT_ALNUM)
        flat = pc.list_flatten(lists)
        parents = np.asarray(pc.list_parent_indices(lists))
        keep = np.asarray(pc.greater(pc.utf8_length(flat), 0))
        flat, parents = flat.filter(pa.array(keep)), parents[keep]
        variants = [flat, pc.utf8_reverse(flat)] if text is lowered else [flat]
        for variant in variants:  # the second: each word reversed where it stands
            tokens.append(variant)
            whole += _runs(variant, parents)
    ignored = pa.array(sorted({c for i in ignore if (c := _compact_one(i))}), pa.string())
    return TextCandidates(
        whole=_distinct(whole, ignored, 1),
        tokens=_distinct(tokens, ignored, 3),
        joined=_distinct(joined, ignored, 16),
        strings=tuple(strings),
        sampled=sampled,
    )


def _chunks(text: str, words: int = 1_000) -> list[str]:
    """A long text as pieces of ``words`` words, so that a sample of them covers all of it."""
    parts = text.split(" ")
    if len(parts) <= words:
        return [text]
    return [" ".join(parts[i : i + words]) for i in range(0, len(parts), words)]


def compact(texts: pa.Array) -> pa.Array:
    """Case-folded, every character but letters and digits removed."""
    import pyarrow.compute as pc

    out = pc.utf8_lower(texts)
    for separator in _SEPARATORS:  # literal replacements are fast; a regex only for the rest
        out = pc.replace_substring(out, separator, "")
    clean = pc.fill_null(pc.or_(pc.utf8_is_alnum(out), pc.equal(pc.utf8_length(out), 0)), True)
    dirty = pc.invert(clean)
    if not pc.any(dirty).as_py():
        return out
    rest = pc.replace_substring_regex(out.filter(dirty), NOT_ALNUM, "")
    return pc.replace_with_mask(out, dirty, rest)


def _compact_one(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def _runs(tokens: pa.Array, parents: np.ndarray) -> list[pa.Array]:
    """Runs of 1 to ``_WORDS`` consecutive tokens of one string, joined without a separator."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n, out = len(tokens), [tokens]
    for r in range(2, _WORDS + 1):
        if n < r:
            break
        same = parents[: n - r + 1] == parents[r - 1 :]
        joined = pc.binary_join_element_wise(*(tokens.slice(i, n - r + 1) for i in range(r)), "")
        out.append(joined.filter(pa.array(same)))
    return out


def _distinct(parts: list[pa.Array], ignored: pa.Array, shortest: int) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pc.unique(pa.chunked_array([p.cast(pa.string()) for p in parts], pa.string()))
    keep = pc.and_(
        pc.greater_equal(pc.utf8_length(values), shortest),
        pc.invert(pc.is_in(values, value_set=ignored)),
    )
    return values.filter(pc.fill_null(keep, False))


def _raw(strings: Collection[str]) -> set[str]:
    """Strings, list pieces and runs of words as written, in the usual letter cases."""
    runs: set[str] = set()
    for text in strings:
        for piece in {text, *re.split(r"[|,;\t\n\r/\\]+", text)}:
            for part in (piece, piece[::-1]):
                runs.add(part.strip())
                words = [w.strip(".,;:!?\"'()[]{}<>") for w in part.split()]
                for i in range(len(words)):
                    top = min(i + _WORDS, len(words))
                    runs.update(" ".join(words[i:j]) for j in range(i + 1, top + 1))
    cases = (str, str.lower, str.upper, str.title, str.capitalize)
    return {f(r) for r in runs if r for f in cases}


def numeric_hits(leaves: list[tuple[str, Any]], column: str, values: pd.Series) -> list[Any]:
    """Values of a numeric identifier in output columns, index levels or series of its name."""
    import pandas as pd

    hits: list[Any] = []
    for _, value in leaves:
        if isinstance(value, pd.Series):
            value = value.to_frame(value.name if value.name is not None else "__value__")
        if not isinstance(value, pd.DataFrame):
            continue
        if column in value.index.names:
            value = value.reset_index()
        for _, series in value.loc[:, value.columns == column].items():
            numbers = pd.to_numeric(series, errors="coerce").dropna()
            hits += pd.unique(numbers[numbers.isin(values.dropna())]).tolist()
    return hits
