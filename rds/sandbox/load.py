"""Private tables on disk: an uncompressed Arrow IPC file, memory-mapped when read.

The domain's private store writes each dataset with ``write_table``; the sandbox reads it
with ``read_table``. Text columns are stored dictionary-encoded, so loading them costs one
``take`` over a few distinct Python strings rather than building a string per row, and they
come back as ordinary object columns: a scientist's function sees the owner's own dtypes,
exactly as in the mock (a Categorical would change ``groupby`` and ``value_counts``).
Columns that were Categoricals stay Categoricals.

Measured on 10M rows (int64, float64, a 50-value text column; 2 cores): the map itself
takes 15 ms from the page cache and turning the text column back into objects ~0.1 s.
``to_pandas(split_blocks=True)`` saves ~6 ms but hands back read-only numpy arrays, so
``df.loc[0, "x"] = 1`` raises; ``self_destruct`` frees nothing when the buffers are a
memory map; ``types_mapper=pd.ArrowDtype`` changes the dtypes users see. So ``read_table``
uses plain ``to_pandas()``: ordinary, writable pandas columns.
"""

from __future__ import annotations

import json
import mmap
import os
from pathlib import Path
from typing import TYPE_CHECKING

from rds.errors import InvalidInput

TEXT_COLUMNS = b"rds:text_columns"

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` as the uncompressed Arrow IPC file ``read_table`` maps.

    String columns are dictionary-encoded with a sorted dictionary; a non-default index is
    kept as columns and restored on read.

    Raises
    ------
    InvalidInput
        If a column holds values Arrow cannot store (mixed types, arbitrary objects).

    Examples
    --------
    >>> write_table(pd.DataFrame({"ward": ["onco", "cardio"], "age": [71, 64]}), p)
    >>> read_table(p).dtypes.to_dict()
    {'ward': CategoricalDtype(categories=['cardio', 'onco'], ordered=False, ...), 'age': ...}
    """
    import pyarrow as pa

    try:
        table = pa.Table.from_pandas(df, preserve_index=None)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise InvalidInput(
            f"This DataFrame cannot be stored as a private table: {exc}. Give every column "
            "one type (numbers, booleans, strings, dates or categories)."
        ) from None
    text = []
    for index, field in enumerate(table.schema):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            table = table.set_column(index, field.name, _sorted_dictionary(table.column(index)))
            text.append(field.name)
    metadata = dict(table.schema.metadata or {})
    metadata[TEXT_COLUMNS] = json.dumps(text).encode()
    table = table.replace_schema_metadata(metadata)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def read_table(source: Path | int) -> pd.DataFrame:
    """Load a table written by ``write_table`` through a memory map.

    Parameters
    ----------
    source
        The ``data.arrow`` path, or a descriptor open on it for reading. Inside the sandbox
        the file arrives as a descriptor: the jail's user may not be allowed to open it by
        path, and nothing else in the dataset's directory needs to be readable.

    Examples
    --------
    >>> df = read_table(store / "patients" / "data.arrow")
    """
    import pyarrow as pa

    if isinstance(source, int):
        mapped = _map(source, str(source))
    else:
        fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        try:
            mapped = _map(fd, str(source))
        finally:
            os.close(fd)
    try:
        table = pa.ipc.open_file(pa.py_buffer(mapped)).read_all()
    except pa.ArrowInvalid as exc:
        raise InvalidInput(f"{source} is not an Arrow IPC file ({exc}).") from None
    text = json.loads((table.schema.metadata or {}).get(TEXT_COLUMNS, b"[]"))
    frame = table.to_pandas()
    for name in text:
        frame[name] = _as_text(frame[name])
    return frame


def _as_text(column: pd.Series) -> pd.Series:
    """A dictionary-decoded Categorical back to an object column of the same strings."""
    import numpy as np
    import pandas as pd

    codes = column.cat.codes.to_numpy()
    values = np.asarray(column.cat.categories, dtype=object).take(codes)
    values[codes < 0] = None
    return pd.Series(values, index=column.index, name=column.name, dtype=object)


def _map(fd: int, name: str) -> mmap.mmap:
    try:
        return mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except ValueError:
        raise InvalidInput(f"{name} is empty; it is not an Arrow IPC file.") from None


def _sorted_dictionary(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dictionary-encode ``column`` with its values in sorted order, as pandas would."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(column).unify_dictionaries()
    if encoded.num_chunks == 0:
        return pa.chunked_array([], pa.dictionary(pa.int32(), column.type))
    dictionary = encoded.chunk(0).dictionary
    order = pc.array_sort_indices(dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    ranks = pa.array(rank)
    sorted_values = dictionary.take(pa.array(order))
    chunks = [
        pa.DictionaryArray.from_arrays(pc.take(ranks, chunk.indices), sorted_values)
        for chunk in encoded.chunks
    ]
    return pa.chunked_array(chunks, pa.dictionary(pa.int32(), column.type))
