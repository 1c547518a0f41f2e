"""The only way a result crosses the sandbox boundary: a self-describing envelope, no pickle.

An envelope is::

    MAGIC (8 bytes) | version (1 byte) | manifest length (uint32, little endian)
    | manifest (UTF-8 JSON) | part 0 | part 1 | ...

The manifest is ``{"root": node, "parts": [length, ...]}``. A node is a JSON object tagged by
``"t"``: ``none``, ``bool``, ``int``, ``float`` (``float.hex``, so exact and NaN-safe),
``str``, ``list``, ``tuple`` and ``dict`` (``items``: ``[key, node]`` pairs, str keys), or a
binary value stored in one part: ``dataframe`` and ``series`` (an Arrow IPC stream),
``ndarray`` (npy, ``allow_pickle=False``) and ``tensor`` (safetensors). Each part is used
exactly once and the part lengths add up to the rest of the bytes.

Decoding only parses data: JSON, Arrow, npy and safetensors. Nothing is imported by name,
evaluated or unpickled. numpy, pandas, pyarrow and torch are imported only when a value of
theirs is met, so ``import rds.sandbox`` stays light.
"""

from __future__ import annotations

import io
import json
import struct
import sys
from typing import Any

from rds.errors import ResultTypeRefused, SandboxError

MAGIC = b"\x89RDS\r\n\x1a\n"
VERSION = 1
MAX_DEPTH = 64
_HEADER = struct.Struct("<8sBI")
_SERIES_COLUMN = "__rds_series__"
_SCALARS = {"none", "bool", "int", "float", "str"}

ALLOWED_TYPES_DOC = (
    "None, bool, int, float, str, numpy scalars, numpy arrays (not of object dtype), "
    "pandas DataFrames and Series (columns Arrow can store: numbers, booleans, strings, "
    "dates, categories), torch tensors, and dicts with str keys, lists and tuples of these"
)


def encode(obj: object) -> bytes:
    """Encode a function's result for the trip out of the sandbox.

    Raises
    ------
    ResultTypeRefused
        If ``obj`` holds anything but the types in ``ALLOWED_TYPES_DOC``.

    Examples
    --------
    >>> decode(encode({"mean": 3.2, "counts": [1, 2]}))
    {'mean': 3.2, 'counts': [1, 2]}
    """
    encoder = _Encoder()
    root = encoder.node(obj, "result", 0)
    manifest = {"root": root, "parts": [len(part) for part in encoder.parts]}
    try:
        text = json.dumps(manifest, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except ValueError:  # only an int past Python's int-to-str digit limit gets here
        raise _refuse("an int in the result", "too large to write out") from None
    return b"".join([_HEADER.pack(MAGIC, VERSION, len(text)), text, *encoder.parts])


def decode(data: bytes) -> object:
    """Rebuild the value ``encode`` produced, after validating the envelope.

    Raises
    ------
    SandboxError
        If ``data`` is not a well-formed envelope.
    """
    manifest, parts = _split(data)
    decoder = _Decoder(parts)
    value = decoder.node(manifest["root"], 0)
    if len(decoder.used) != len(parts):
        raise SandboxError("Malformed result envelope: some binary parts are never referenced.")
    return value


def verify(data: bytes) -> None:
    """Check the envelope's header and manifest without decoding its binary parts."""
    _split(data)


def _refuse(where: str, what: str) -> ResultTypeRefused:
    return ResultTypeRefused(
        f"{where} is {what}, which cannot leave the sandbox. Allowed: {ALLOWED_TYPES_DOC}. "
        "Convert it to one of these (e.g. a dict of floats or a DataFrame) and return that."
    )


class _Encoder:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def _part(self, data: bytes) -> int:
        self.parts.append(data)
        return len(self.parts) - 1

    def node(self, obj: object, where: str, depth: int) -> dict[str, Any]:
        if depth > MAX_DEPTH:
            raise _refuse(where, f"nested more than {MAX_DEPTH} levels deep (or contains itself)")
        if obj is None:
            return {"t": "none"}
        if isinstance(obj, bool):
            return {"t": "bool", "v": bool(obj)}
        np = sys.modules.get("numpy")
        if np is not None and isinstance(obj, np.generic):
            return self.node(_numpy_scalar(np, obj, where), where, depth)
        if isinstance(obj, int):
            return {"t": "int", "v": int(obj)}
        if isinstance(obj, float):
            return {"t": "float", "v": float(obj).hex()}
        if isinstance(obj, str):
            return {"t": "str", "v": str(obj)}
        if isinstance(obj, (list, tuple)):
            items = [self.node(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(obj)]
            return {"t": "tuple" if isinstance(obj, tuple) else "list", "items": items}
        if isinstance(obj, dict):
            pairs = []
            for key, value in obj.items():
                if not isinstance(key, str):
                    raise _refuse(
                        f"{where} key {key!r}", f"of type {type(key).__name__} (keys must be str)"
                    )
                pairs.append([str(key), self.node(value, f"{where}[{key!r}]", depth + 1)])
            return {"t": "dict", "items": pairs}
        return self._binary(obj, where, depth)

    def _binary(self, obj: object, where: str, depth: int) -> dict[str, Any]:
        np, pd, torch = (sys.modules.get(name) for name in ("numpy", "pandas", "torch"))
        if pd is not None and isinstance(obj, pd.DataFrame):
            return {"t": "dataframe", "part": self._part(_arrow(obj, where))}
        if pd is not None and isinstance(obj, pd.Series):
            frame = obj.to_frame(name=_SERIES_COLUMN)
            name = self.node(obj.name, f"{where}.name", depth + 1)
            return {"t": "series", "part": self._part(_arrow(frame, where)), "name": name}
        if np is not None and isinstance(obj, np.ndarray):
            if type(obj) is not np.ndarray:
                raise _refuse(where, f"of type {type(obj).__name__} (an ndarray subclass)")
            if obj.dtype.hasobject:
                raise _refuse(where, "a numpy array of object dtype (it would need pickle)")
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, obj, allow_pickle=False)
            return {"t": "ndarray", "part": self._part(buffer.getvalue())}
        if torch is not None and isinstance(obj, torch.Tensor):
            return {"t": "tensor", "part": self._part(_safetensors(obj, where))}
        kind = type(obj)
        raise _refuse(where, f"of type {kind.__module__}.{kind.__qualname__}")


def _numpy_scalar(np: Any, obj: Any, where: str) -> object:
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.str_):
        return str(obj)
    raise _refuse(where, f"a numpy {type(obj).__name__} scalar")


def _arrow(frame: Any, where: str) -> bytes:
    import pandas as pd
    import pyarrow as pa

    labels = frame.columns
    if not isinstance(labels, pd.MultiIndex) and len({type(label) for label in labels}) > 1:
        # Arrow would turn them all into str, silently changing the columns.
        raise _refuse(where, "a DataFrame whose column names mix types; make them all str")
    try:
        table = pa.Table.from_pandas(frame, preserve_index=None)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise _refuse(
            where,
            f"a DataFrame Arrow cannot store ({exc}); keep columns to numbers, booleans, "
            "strings, dates and categories, with unique column names",
        ) from None
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _safetensors(tensor: Any, where: str) -> bytes:
    from safetensors.torch import save

    try:
        return bytes(save({"t": tensor.detach().to("cpu").contiguous()}))
    except Exception as exc:  # safetensors and torch raise several unrelated types here
        raise _refuse(where, f"a tensor safetensors cannot store ({exc})") from None


def _split(data: bytes) -> tuple[dict[str, Any], list[memoryview]]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SandboxError(f"A result envelope is bytes, not {type(data).__name__}.")
    view = memoryview(data).cast("B")
    if len(view) < _HEADER.size:
        raise SandboxError("Malformed result envelope: shorter than its header.")
    magic, version, length = _HEADER.unpack_from(view)
    if magic != MAGIC:
        raise SandboxError("Not an rds result envelope (wrong magic bytes).")
    if version != VERSION:
        raise SandboxError(f"Unsupported result envelope version {version} (expected {VERSION}).")
    start = _HEADER.size + length
    if start > len(view):
        raise SandboxError("Malformed result envelope: the manifest is truncated.")
    try:
        manifest = json.loads(bytes(view[_HEADER.size : start]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SandboxError("Malformed result envelope: the manifest is not valid JSON.") from None
    if not isinstance(manifest, dict) or set(manifest) != {"root", "parts"}:
        raise SandboxError("Malformed result envelope: unexpected manifest layout.")
    sizes = manifest["parts"]
    if not isinstance(sizes, list) or not all(type(n) is int and n >= 0 for n in sizes):
        raise SandboxError("Malformed result envelope: part lengths are not sizes.")
    if start + sum(sizes) != len(view):
        raise SandboxError("Malformed result envelope: part lengths do not match the data.")
    parts = []
    for size in sizes:
        parts.append(view[start : start + size])
        start += size
    return manifest, parts


class _Decoder:
    def __init__(self, parts: list[memoryview]) -> None:
        self.parts = parts
        self.used: set[int] = set()

    def node(self, node: object, depth: int) -> object:
        if depth > MAX_DEPTH or not isinstance(node, dict):
            raise SandboxError("Malformed result envelope: bad node or nesting too deep.")
        kind = node.get("t")
        if not isinstance(kind, str):
            raise SandboxError("Malformed result envelope: a node without a type tag.")
        expected = {
            "none": {"t"},
            "list": {"t", "items"},
            "tuple": {"t", "items"},
            "dict": {"t", "items"},
            "series": {"t", "part", "name"},
        }.get(kind, {"t", "v"} if kind in _SCALARS else {"t", "part"})
        if set(node) != expected:
            raise SandboxError(f"Malformed result envelope: bad {kind!r} node.")
        if kind in _SCALARS:
            return _scalar(kind, node.get("v"))
        if kind in ("list", "tuple", "dict"):
            items = node["items"]
            if not isinstance(items, list):
                raise SandboxError(f"Malformed result envelope: {kind} items are not a list.")
            if kind == "dict":
                return self._dict(items, depth)
            values = [self.node(item, depth + 1) for item in items]
            return tuple(values) if kind == "tuple" else values
        return self._binary(kind, node, depth)

    def _dict(self, items: list[Any], depth: int) -> dict[str, object]:
        out: dict[str, object] = {}
        for pair in items:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                raise SandboxError("Malformed result envelope: dict items are not [str, node].")
            if pair[0] in out:
                raise SandboxError(f"Malformed result envelope: duplicate key {pair[0]!r}.")
            out[pair[0]] = self.node(pair[1], depth + 1)
        return out

    def _binary(self, kind: str, node: dict[str, Any], depth: int) -> object:
        index = node["part"]
        if type(index) is not int or not 0 <= index < len(self.parts) or index in self.used:
            raise SandboxError("Malformed result envelope: bad or reused part reference.")
        self.used.add(index)
        part = self.parts[index]
        if kind == "series":
            name = self.node(node["name"], depth + 1)
            frame = _parse(kind, _read_arrow, part)
            if list(frame.columns) != [_SERIES_COLUMN]:
                raise SandboxError("Malformed result envelope: a series part has other columns.")
            return frame[_SERIES_COLUMN].rename(name)
        readers = {"dataframe": _read_arrow, "ndarray": _read_npy, "tensor": _read_safetensors}
        if kind not in readers:
            raise SandboxError(f"Malformed result envelope: unknown node type {kind!r}.")
        return _parse(kind, readers[kind], part)


def _scalar(kind: str, value: object) -> object:
    if kind == "none":
        return None
    if kind == "bool" and type(value) is bool:
        return value
    if kind == "int" and type(value) is int:
        return value
    if kind == "str" and type(value) is str:
        return value
    if kind == "float" and type(value) is str:
        try:
            return float.fromhex(value)
        except ValueError:
            pass
    raise SandboxError(f"Malformed result envelope: bad {kind} value.")


def _parse(kind: str, reader: Any, part: memoryview) -> Any:
    try:
        return reader(part)
    except SandboxError:
        raise
    except Exception as exc:  # Arrow, numpy and safetensors each raise their own types
        raise SandboxError(f"Malformed result envelope: unreadable {kind} ({exc}).") from None


def _read_arrow(part: memoryview) -> Any:
    import pyarrow as pa

    # pyarrow's default already, restated because it is what keeps a crafted schema from
    # unpickling a "PyExtensionType" even if something in this process turned it on.
    pa.PyExtensionType.set_auto_load(False)
    return pa.ipc.open_stream(pa.BufferReader(pa.py_buffer(part))).read_all().to_pandas()


def _read_npy(part: memoryview) -> Any:
    import numpy as np

    buffer = io.BytesIO(part)
    array = np.lib.format.read_array(buffer, allow_pickle=False)
    if buffer.tell() != len(part):
        raise SandboxError("Malformed result envelope: trailing bytes after an array.")
    return array


def _read_safetensors(part: memoryview) -> Any:
    from safetensors.torch import load

    tensors = load(bytes(part))
    if set(tensors) != {"t"}:
        raise SandboxError("Malformed result envelope: a tensor part holds other tensors.")
    return tensors["t"]
