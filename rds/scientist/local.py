"""Run a request's function on the mock, the way the sandbox will run it on private data.

The sandbox receives the function's source only — not the notebook's variables — so the
local run does the same: it defines the function afresh from its source (with ``pd`` and
``np`` available) and calls it. A function that leans on a notebook global fails here,
before it is submitted, rather than on the private data.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from rds._syft.submission import function_source
from rds.errors import InvalidInput, MockRunFailed, ResultTypeRefused
from rds.sandbox import codec


def source_of(fn: Callable[..., Any]) -> tuple[str, str]:
    """``(source, name)`` of a function defined with ``def`` (decorators removed)."""
    if not callable(fn):
        raise InvalidInput(f"request() takes a function, not {type(fn).__name__}.")
    if getattr(fn, "__name__", "") == "<lambda>":
        raise InvalidInput("Lambdas cannot be sent; define the function with `def`.")
    try:
        raw = inspect.getsource(fn)
    except (OSError, TypeError) as exc:
        raise InvalidInput(
            f"Cannot read the source of {getattr(fn, '__name__', fn)!r} ({exc}); define it in "
            "a notebook cell or a .py file."
        ) from None
    source, name, params = function_source(raw)
    if len(params) != 1:
        raise InvalidInput(
            f"{name}() must take exactly one argument (the dataset as a DataFrame); "
            f"it takes {len(params)}."
        )
    return source, name


def run_in_kernel(source: str, name: str, mock: pd.DataFrame) -> Any:
    """Call the function defined by ``source`` on ``mock``; raise ``MockRunFailed`` if it fails."""
    namespace: dict[str, Any] = {"pd": pd, "np": np, "__name__": "rds_request"}
    try:
        exec(compile(source, f"<{name}>", "exec"), namespace)  # noqa: S102 - the scientist's own code, locally
        result = namespace[name](mock.copy())
    except Exception as exc:
        hint = ""
        if isinstance(exc, NameError):
            hint = (
                " The function runs from its source alone: import what it uses inside it "
                "(pd and np are provided)."
            )
        raise MockRunFailed(
            f"{name}() failed on the mock data, so it was not submitted: "
            f"{type(exc).__name__}: {exc}.{hint}"
        ) from exc
    _check_crossable(name, result)
    return result


def _check_crossable(name: str, result: object) -> None:
    """Refuse, before submission, a result the sandbox could not send back."""
    try:
        codec.encode(result)
    except ResultTypeRefused as exc:
        raise MockRunFailed(
            f"{name}() returned {_kind(result)} on the mock, which cannot leave the sandbox, "
            f"so it was not submitted. {_instead(result)} ({exc})"
        ) from None


def _kind(value: object) -> str:
    kind = type(value)
    where = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
    return f"a {where}{kind.__qualname__}"


def _instead(value: object) -> str:
    module = type(value).__module__.split(".")[0]
    if module in {"matplotlib", "seaborn", "plotly", "bokeh", "altair"}:
        return (
            "A plot cannot be released: return the numbers it shows (e.g. "
            "df.groupby('ward').age.mean(), or np.histogram(df.age, bins=10)[0]) and draw "
            "the plot locally from the released result."
        )
    if isinstance(value, (set, frozenset)):
        return "Return sorted(...) of the set as a list instead."
    return "Return a number, string, list, dict, numpy array or pandas DataFrame/Series."
