"""The result codec: what may cross the boundary, and that decoding never runs code."""

from __future__ import annotations

import collections
import json
import math
import pickle
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from rds.errors import ResultTypeRefused, SandboxError
from rds.sandbox import ALLOWED_TYPES_DOC, decode, encode
from rds.sandbox.codec import MAGIC, VERSION


def envelope(
    root: object, parts: list[bytes], *, magic: bytes = MAGIC, version: int = VERSION
) -> bytes:
    """Hand-build an envelope, to feed ``decode`` what ``encode`` never would."""
    manifest = json.dumps({"root": root, "parts": [len(p) for p in parts]}).encode()
    return struct.pack("<8sBI", magic, version, len(manifest)) + manifest + b"".join(parts)


class Evil:
    """Unpickling this creates ``Evil.marker``: proof that something was unpickled."""

    marker = Path("/nonexistent")

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(Evil.marker), "w"))


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -7,
        2**100,
        1.5,
        -0.0,
        math.inf,
        "",
        "ünï\u2603",
        [1, [2, [3]]],
        (1, "a", None),
        {"a": {"b": [1.0, (2, 3)]}, "c": []},
        {},
    ],
)
def test_scalars_and_containers_round_trip(value: object) -> None:
    assert decode(encode(value)) == value
    assert type(decode(encode(value))) is type(value)


def test_nan_and_numpy_scalars_become_python_scalars() -> None:
    assert math.isnan(decode(encode(float("nan"))))  # type: ignore[arg-type]
    out = decode(encode([np.int16(3), np.float32(0.5), np.bool_(True), np.str_("s")]))
    assert isinstance(out, list) and out == [3, 0.5, True, "s"]
    assert [type(x) for x in out] == [int, float, bool, str]


def test_dataframes_keep_index_names_and_dtypes() -> None:
    frame = pd.DataFrame(
        {
            "ward": pd.Categorical(["onco", "cardio"], categories=["onco", "cardio"]),
            "age": pd.array([71, None], dtype="Int64"),
            "when": pd.to_datetime(["2024-01-01", "2024-02-01"]).tz_localize("UTC"),
            "name": ["a", None],
            "score": [0.5, 1.5],
        },
        index=pd.MultiIndex.from_tuples([("x", 1), ("y", 2)], names=["k", "n"]),
    )
    out = decode(encode(frame))
    assert isinstance(out, pd.DataFrame)
    pd.testing.assert_frame_equal(out, frame)


def test_integer_column_names_round_trip_and_mixed_ones_are_refused() -> None:
    frame = pd.DataFrame([[1, 2]], columns=[10, 20])
    pd.testing.assert_frame_equal(decode(encode(frame)), frame)
    with pytest.raises(ResultTypeRefused, match="column names mix types"):
        encode(pd.DataFrame([[1, 2]], columns=["a", 3]))


def test_series_keep_name_and_index() -> None:
    for series in [
        pd.Series([1.0, 2.0], index=pd.Index(["a", "b"], name="id"), name="score"),
        pd.Series([1, 2]),
        pd.Series(["x"], name=("tuple", 1)),
    ]:
        out = decode(encode(series))
        assert isinstance(out, pd.Series)
        pd.testing.assert_series_equal(out, series)


def test_arrays_and_tensors_round_trip() -> None:
    arrays = [
        np.arange(12, dtype=np.int32).reshape(3, 4),
        np.asfortranarray(np.random.default_rng(0).random((3, 2))),
        np.array(["a", "bc"]),
        np.array([True, False]),
        np.array(["2024-01-01"], dtype="datetime64[D]"),
    ]
    for array in arrays:
        out = decode(encode(array))
        assert isinstance(out, np.ndarray) and out.dtype == array.dtype
        np.testing.assert_array_equal(out, array)
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    for tensor in [base, base.t(), base.to(torch.bfloat16), torch.tensor([True]), base[1:]]:
        out = decode(encode(tensor))
        assert isinstance(out, torch.Tensor) and out.dtype == tensor.dtype
        assert torch.equal(out, tensor)


def test_state_dicts_and_parameters() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    state = model.state_dict()
    assert isinstance(state, collections.OrderedDict)
    out = decode(encode({"state": state, "param": next(model.parameters()), "loss": 0.25}))
    assert isinstance(out, dict)
    assert list(out["state"]) == list(state)
    assert all(torch.equal(out["state"][k], v) for k, v in state.items())
    assert not out["param"].requires_grad


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({1, 2}, "builtins.set"),
        (lambda: 1, "builtins.function"),
        ((i for i in range(2)), "builtins.generator"),
        (Evil(), "Evil"),
        (b"bytes", "builtins.bytes"),
        (np.complex64(1), "complex64"),
        (np.array([Evil()], dtype=object), "object dtype"),
        (np.ma.array([1, 2], mask=[0, 1]), "MaskedArray"),
        (pd.DataFrame({"x": [Evil()]}), "DataFrame Arrow cannot store"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "Duplicate column names"),
        (pd.Timestamp("2024-01-01"), "Timestamp"),
        ({"ok": {1: "int key"}}, "keys must be str"),
        ({"deep": [[{"model": Evil()}]]}, "result['deep'][0][0]['model']"),
    ],
)
def test_other_types_are_refused_with_a_clear_message(value: object, named: str) -> None:
    with pytest.raises(ResultTypeRefused) as info:
        encode(value)
    assert named in str(info.value)
    assert ALLOWED_TYPES_DOC in str(info.value)


def test_self_containing_structures_are_refused() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ResultTypeRefused, match="nested more than"):
        encode(loop)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an envelope at all",
        envelope({"t": "none"}, [], magic=b"PICKLE!!"),
        envelope({"t": "none"}, [], version=99),
        envelope({"t": "none"}, [])[:-1],
        envelope({"t": "none"}, []) + b"x",
        struct.pack("<8sBI", MAGIC, VERSION, 5) + b"{nope",
        envelope({"t": "what"}, []),
        envelope({"t": "int", "v": "1"}, []),
        envelope({"t": "float", "v": 1.5}, []),
        envelope({"t": "bool", "v": 1}, []),
        envelope({"t": "dict", "items": [["a", {"t": "none"}], ["a", {"t": "none"}]]}, []),
        envelope({"t": "dict", "items": [[1, {"t": "none"}]]}, []),
        envelope({"t": "list", "items": [{"t": "ndarray", "part": 0}] * 2}, [b"x"]),
        envelope({"t": "none"}, [b"unreferenced"]),
        envelope({"t": "ndarray", "part": 5}, []),
        envelope({"t": "dataframe", "part": 0}, [b"garbage"]),
        envelope({"t": "tensor", "part": 0}, [b"garbage"]),
        envelope({"t": "none", "extra": 1}, []),
    ],
)
def test_malformed_envelopes_raise_sandbox_error(data: bytes) -> None:
    with pytest.raises(SandboxError):
        decode(data)


def test_deep_nesting_in_a_forged_manifest_is_refused() -> None:
    node: dict[str, Any] = {"t": "none"}
    for _ in range(100):
        node = {"t": "list", "items": [node]}
    with pytest.raises(SandboxError, match="too deep"):
        decode(envelope(node, []))


def test_a_pickled_npy_part_is_never_unpickled(tmp_path: Path) -> None:
    Evil.marker = tmp_path / "npy-unpickled"
    buffer = __import__("io").BytesIO()
    np.lib.format.write_array(buffer, np.array([Evil()], dtype=object), allow_pickle=True)
    with pytest.raises(SandboxError, match="unreadable ndarray"):
        decode(envelope({"t": "ndarray", "part": 0}, [buffer.getvalue()]))
    assert not Evil.marker.exists()


@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::FutureWarning")
def test_a_pickled_arrow_extension_type_is_never_unpickled(tmp_path: Path) -> None:
    Evil.marker = tmp_path / "arrow-unpickled"
    metadata = {
        b"ARROW:extension:name": b"arrow.py_extension_type",
        b"ARROW:extension:metadata": pickle.dumps(Evil()),
    }
    schema = pa.schema([pa.field("x", pa.int64(), metadata=metadata)])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_table(pa.table({"x": [1, 2]}, schema=schema))
    pa.PyExtensionType.set_auto_load(True)  # even if someone turned it on
    try:
        out = decode(envelope({"t": "dataframe", "part": 0}, [sink.getvalue().to_pybytes()]))
    finally:
        pa.PyExtensionType.set_auto_load(False)
    assert not Evil.marker.exists()
    assert isinstance(out, pd.DataFrame) and list(out.x) == [1, 2]


def test_codec_imports_torch_only_for_tensors() -> None:
    code = (
        "import sys, pandas as pd\n"
        "from rds.sandbox.codec import encode, decode\n"
        "decode(encode({'a': 1, 'df': pd.DataFrame({'x': [1]})}))\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
