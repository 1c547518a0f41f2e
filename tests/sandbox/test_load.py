"""The private table format: write_table for the store, read_table in the sandbox."""

from __future__ import annotations

import mmap
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from rds.errors import InvalidInput
from rds.sandbox import read_table, write_table


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(5, dtype=np.int64),
            "score": [0.5, np.nan, 1.5, 2.0, -1.0],
            "ward": ["onco", "cardio", None, "onco", "neuro"],
            "flag": [True, False, True, True, False],
            "when": pd.to_datetime([f"2024-01-0{d}" for d in range(1, 6)]),
            "count": pd.array([1, None, 3, 4, 5], dtype="Int64"),
            "level": pd.Categorical(
                ["hi", "lo", "hi", "mid", "lo"], categories=["lo", "mid", "hi"]
            ),
        }
    )


def test_round_trip_keeps_text_as_text_and_categoricals_as_categoricals(tmp_path: Path) -> None:
    path = tmp_path / "data.arrow"
    original = frame()
    write_table(original, path)
    loaded = read_table(path)
    assert loaded["ward"].dtype == object
    assert loaded["ward"].tolist() == ["onco", "cardio", None, "onco", "neuro"]
    assert list(loaded["level"].cat.categories) == ["lo", "mid", "hi"]  # a chosen order is kept
    pd.testing.assert_frame_equal(loaded, original)


def test_the_file_is_an_uncompressed_ipc_file_with_dictionary_strings(tmp_path: Path) -> None:
    path = tmp_path / "data.arrow"
    write_table(frame(), path)
    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.open_file(source)
        assert pa.types.is_dictionary(reader.schema.field("ward").type)
        batch = reader.get_batch(0)
    assert batch.num_rows == 5
    assert path.read_bytes()[:6] == b"ARROW1"


def test_a_non_default_index_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "data.arrow"
    original = frame().set_index("id")
    write_table(original, path)
    loaded = read_table(path)
    assert loaded.index.name == "id"
    assert loaded.index.tolist() == [0, 1, 2, 3, 4]


def test_reading_through_a_descriptor_matches_the_path(tmp_path: Path) -> None:
    path = tmp_path / "data.arrow"
    write_table(frame(), path)
    fd = os.open(path, os.O_RDONLY)
    try:
        pd.testing.assert_frame_equal(read_table(fd), read_table(path))
    finally:
        os.close(fd)


def test_loaded_columns_are_writable_like_any_dataframe(tmp_path: Path) -> None:
    path = tmp_path / "data.arrow"
    write_table(frame(), path)
    loaded = read_table(path)
    loaded.loc[0, "score"] = 9.0
    loaded["id"] *= 2
    loaded.loc[1, "ward"] = "onco"
    # Columns lent by the file itself (no nulls to convert) are writable too.
    loaded.loc[2, "level"] = "lo"
    loaded.loc[3, "when"] = pd.Timestamp("2030-01-01")
    loaded["id"].to_numpy()[4] = 99
    loaded.loc[0, "flag"] = False
    assert loaded.loc[0, "score"] == 9.0 and loaded["id"].tolist() == [0, 2, 4, 6, 99]
    assert loaded.loc[2, "level"] == "lo" and loaded.loc[3, "when"].year == 2030
    pd.testing.assert_frame_equal(read_table(path), frame())  # the file is untouched


def test_columns_without_nulls_are_lent_by_the_file_not_copied(tmp_path: Path) -> None:
    path = tmp_path / "data.arrow"
    write_table(frame(), path)
    loaded = read_table(path)
    codes = loaded["level"].cat.codes.to_numpy()
    for values in [loaded["id"].to_numpy(), loaded["when"].to_numpy(), codes]:
        root = values
        while isinstance(root, np.ndarray) and root.base is not None:
            root = root.base
        assert isinstance(root, mmap.mmap)
    assert loaded["id"].to_numpy().flags.writeable  # (pandas lends .cat.codes read-only)


def test_empty_frames_and_zero_rows(tmp_path: Path) -> None:
    path = tmp_path / "data.arrow"
    write_table(pd.DataFrame({"name": pd.Series([], dtype=object), "x": []}), path)
    loaded = read_table(path)
    assert len(loaded) == 0 and list(loaded.columns) == ["name", "x"]


def test_bad_inputs_raise_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="one type"):
        write_table(pd.DataFrame({"mixed": ["a", 1, 2.5]}), tmp_path / "mixed.arrow")
    (tmp_path / "empty.arrow").write_bytes(b"")
    with pytest.raises(InvalidInput, match="empty"):
        read_table(tmp_path / "empty.arrow")
    (tmp_path / "text.arrow").write_text("id,age\n1,2\n")
    with pytest.raises(InvalidInput, match="not an Arrow IPC file"):
        read_table(tmp_path / "text.arrow")


@pytest.mark.slow
def test_reading_and_grouping_costs_at_most_twice_an_in_memory_group_by(tmp_path: Path) -> None:
    rows = 2_000_000
    rng = np.random.default_rng(0)
    cities = np.array([f"city_{i:02d}" for i in range(50)], dtype=object)
    data = pd.DataFrame(
        {"id": np.arange(rows), "x": rng.random(rows), "city": cities[rng.integers(0, 50, rows)]}
    )
    path = tmp_path / "data.arrow"
    write_table(data, path)

    def best(step: object) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            step()  # type: ignore[operator]
            times.append(time.perf_counter() - start)
        return min(times)

    in_memory = best(lambda: data.groupby("city")["x"].mean())
    from_disk = best(lambda: read_table(path).groupby("city", observed=True)["x"].mean())
    assert from_disk <= 2 * in_memory
