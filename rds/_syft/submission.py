"""The text of a request as syft stores it, and reading it back without executing it.

syft 0.9.5 keeps no request reason (it only becomes a notification subject), so rds puts
its metadata in the submitted code as one literal decorator line::

    @rds_request('{"v": 1, "kind": "python", "dataset": "patients", ...}')
    def mean_age(df):
        return df["age"].mean()

A plain syft user sees readable code; rds reads the header back with ``ast`` only.
"""

from __future__ import annotations

import ast
import json
import textwrap
from typing import Any

from rds.errors import InvalidInput

HEADER = "rds_request"
#: Longest submitted code and header rds reads at all; longer ones read as having no header.
MAX_CODE = 200_000
MAX_HEADER = 64_000


def function_source(source: str) -> tuple[str, str, list[str]]:
    """Normalise one function's source: dedent, drop decorators.

    Returns ``(source, name, parameter_names)``.
    """
    text = textwrap.dedent(source)
    try:
        module = ast.parse(text)
    except SyntaxError as exc:
        raise InvalidInput(f"The function's source does not parse: {exc}") from exc
    functions = [n for n in module.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if len(module.body) != 1 or not functions:
        raise InvalidInput(
            "A request takes exactly one function defined with `def` "
            "(lambdas and code outside a function cannot be sent)."
        )
    fn = functions[0]
    if isinstance(fn, ast.AsyncFunctionDef):
        raise InvalidInput("Async functions cannot be sent; use a plain `def`.")
    lines = text.splitlines()
    body = "\n".join(lines[fn.lineno - 1 : fn.end_lineno]) + "\n"
    params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
    return body, fn.name, params


def with_header(source: str, meta: dict[str, Any]) -> str:
    """Prefix ``source`` (decorator-free) with the rds metadata line."""
    return f"@{HEADER}({json.dumps(meta, sort_keys=True)!r})\n{source}"


def split_header(raw_code: str) -> tuple[dict[str, Any], str]:
    """Read ``(meta, source)`` back from stored code; ``meta`` is ``{}`` for non-rds code.

    Total: any text gives an answer (a submission is hostile input, and one that could make
    this raise would break every listing of the domain's requests).
    """
    if not isinstance(raw_code, str):
        return {}, ""
    try:
        return _split(raw_code)
    except Exception:  # RecursionError, MemoryError-adjacent parser failures, odd types
        return {}, raw_code


def _split(raw_code: str) -> tuple[dict[str, Any], str]:
    if len(raw_code) > MAX_CODE:
        return {}, raw_code
    try:
        module = ast.parse(textwrap.dedent(raw_code))
    except SyntaxError:
        return {}, raw_code
    if not module.body or not isinstance(module.body[0], ast.FunctionDef):
        return {}, raw_code
    fn = module.body[0]
    meta: dict[str, Any] = {}
    for deco in fn.decorator_list:
        if (
            isinstance(deco, ast.Call)
            and isinstance(deco.func, ast.Name)
            and deco.func.id == HEADER
            and len(deco.args) == 1
            and isinstance(deco.args[0], ast.Constant)
            and isinstance(deco.args[0].value, str)
            and len(deco.args[0].value) <= MAX_HEADER
        ):
            try:
                loaded = json.loads(deco.args[0].value)
            except ValueError:
                continue
            if isinstance(loaded, dict):
                meta = loaded
    lines = textwrap.dedent(raw_code).splitlines()
    source = "\n".join(lines[fn.lineno - 1 : fn.end_lineno]) + "\n"
    return meta, source


def sql_function(datasets: tuple[str, ...]) -> str:
    """The syft-side stand-in for a SQL request over ``datasets``: rds reads the query from
    its header and runs it with DuckDB, never this function."""
    params = ", ".join(datasets)
    return (
        f"def sql_query({params}):\n"
        '    """A SQL request: rds runs the query in the header with DuckDB, never this."""\n'
        "    raise NotImplementedError\n"
    )
