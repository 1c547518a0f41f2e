"""Walking a decoded output for ``rds.privacy.leakage``: its parts, and where identifiers hide.

``walk`` breaks an output into what the checks judge one at a time: scalars, tables, series
and arrays (torch tensors become arrays), reading lists of dicts, dicts of equal-length lists
and dicts of scalars as tables. ``strings_in`` and ``text_candidates`` gather every string an
identifier could be hidden in, and ``numeric_hits`` finds a numeric identifier's values in
columns of its name.

They live apart from the checks in ``rds.privacy.leakage`` so that module reads as the rules
it applies, not as the many shapes an output can take.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

SCALARS = (type(None), bool, int, float, str)
_WORDS = 4  # longest run of words compared with a text identifier


def walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(position, value) for each scalar, table, series or array in the output."""
    import numpy as np
    import pandas as pd

    if isinstance(value, (*SCALARS, np.generic, pd.DataFrame, pd.Series, np.ndarray)):
        yield path, value
    elif type(value).__module__.split(".")[0] == "torch":
        import torch  # only when the output holds a tensor: torch is slow to import

        if isinstance(value, torch.Tensor):
            yield path, value.detach().cpu().float().numpy()
        else:
            yield path, value
    elif isinstance(value, (dict, list, tuple)) and (table := _as_table(value)) is not None:
        yield path, table
    elif isinstance(value, dict):
        for i, (key, item) in enumerate(value.items()):
            if isinstance(key, str):  # searched for identifiers, like any other string
                yield f"{path} key {i}", key
            yield from walk(item, f"{path}[{i}]")
    elif isinstance(value, (list, tuple)) and value and all(_scalar(v) for v in value):
        yield path, pd.Series(list(value))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from walk(item, f"{path}[{i}]")
    else:
        yield path, value


def _scalar(value: Any) -> bool:
    import numpy as np

    return isinstance(value, (*SCALARS, np.generic))


def _as_table(value: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> pd.DataFrame | None:
    """Records (list of dicts), columns (dict of equal-length lists) or one record, as a table."""
    import pandas as pd

    if isinstance(value, dict):
        if value and all(_scalar(v) for v in value.values()):
            return pd.DataFrame([value])
        lists = [v for v in value.values() if isinstance(v, (list, tuple))]
        same = len(lists) == len(value) and len({len(v) for v in lists}) == 1
        if value and same and all(_scalar(x) for v in lists for x in v):
            return pd.DataFrame({k: list(v) for k, v in value.items()})
        return None
    if value and all(isinstance(r, dict) and all(_scalar(x) for x in r.values()) for r in value):
        return pd.DataFrame(list(value))
    return None


def strings_in(leaves: list[tuple[str, Any]]) -> set[str]:
    """Every string in the output: cells, column and index names, index values, keys, items."""
    import numpy as np
    import pandas as pd

    texts: list[Any] = []
    for _, value in leaves:
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
    return {t for t in flat if isinstance(t, str) and t.strip()}


def _texts(values: Any) -> list[Any]:
    import numpy as np
    import pandas as pd

    try:
        return list(pd.unique(values.astype(object)))
    except TypeError:  # cells holding lists: look inside them
        nested = (list, tuple, np.ndarray)
        return [x for v in values for x in (v if isinstance(v, nested) else [v])]


def text_candidates(texts: set[str]) -> set[str]:
    """Whole strings and runs of up to four words, each in the usual letter cases."""
    runs = set()
    for text in texts:
        runs.add(text.strip())
        words = [w.strip(".,;:!?\"'()[]{}<>") for w in text.split()]
        for i in range(len(words)):
            runs.update(" ".join(words[i:j]) for j in range(i + 1, min(i + _WORDS, len(words)) + 1))
    return {f(r) for r in runs if r for f in (str, str.lower, str.upper, str.title, str.capitalize)}


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
