"""What a submitted request is, read from its code, never from its own description.

A submission's header (``rds._syft.submission``) is written by the scientist's client, and
a plain syft client can write anything there. So the owner's side derives what matters from
the code itself and checks the header against it (DESIGN.md invariant 9):

- a SQL or DP request's datasets are the tables its query reads (``check_query``), and its
  code must be exactly rds's stand-in function over those datasets;
- a Python request's function must parse, carry the header's name and take one argument per
  dataset; every dataset it names must be published;
- ε and δ must be real numbers in range; the reason a non-empty text.

Anything else makes the submission **invalid**: it is listed (kind ``"invalid"``, with the
problem), can be denied with a reason and is recorded in the ledger, but never runs, and
never breaks a listing.

Examples
--------
>>> read_submission(record.source, record.meta, published={"patients"}).kind
'sql'
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from rds._syft.submission import MAX_CODE, function_source, sql_function
from rds.errors import InvalidInput

KINDS = ("python", "sql", "dp")
MAX_REASON = 4000
MAX_EPSILON = 100.0


@dataclass(frozen=True)
class Submission:
    """A request as the owner's side understands it. ``problem`` is set when it is invalid."""

    kind: str  # "python" | "sql" | "dp" | "invalid"
    datasets: tuple[str, ...]
    reason: str
    function: str | None = None
    sql: str = ""
    epsilon: float = 0.0
    delta: float = 0.0
    problem: str | None = None

    @property
    def dataset(self) -> str | None:
        return self.datasets[0] if self.datasets else None


class _Invalid(Exception):
    pass


def read_submission(source: str, meta: Any, *, published: Collection[str]) -> Submission:
    """Read ``(source, header)`` into a ``Submission``; never raises on bad input."""
    try:
        return _read(source, meta, published)
    except _Invalid as exc:
        problem = str(exc)
    except Exception as exc:  # total: e.g. RecursionError from a deeply nested construct
        problem = f"rds could not read it ({type(exc).__name__})."
    try:
        names, reason = _claimed_names(meta, published), _text(meta.get("reason"))
    except Exception:
        names, reason = (), ""
    return Submission(kind="invalid", datasets=names, reason=reason, problem=problem)


def _read(source: str, meta: Any, published: Collection[str]) -> Submission:
    if not isinstance(source, str) or len(source) > MAX_CODE:
        raise _Invalid(f"Its code is longer than {MAX_CODE:,} characters.")
    if not isinstance(meta, dict) or not meta:
        raise _Invalid("It was not made with rds (its code has no rds header).")
    if meta.get("v") != 1:
        raise _Invalid(f"Its header has an unknown version {meta.get('v')!r}.")
    kind = meta.get("kind")
    if kind not in KINDS:
        raise _Invalid(f"Its header names an unknown kind {kind!r}.")
    reason = meta.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise _Invalid(f"Its reason must be a text of 1 to {MAX_REASON} characters.")
    claimed = _claimed(meta)
    unknown = sorted(set(claimed) - set(published))
    if unknown:
        raise _Invalid(f"It names datasets that are not published: {unknown}.")
    if kind == "python":
        return _python(source, meta, claimed, reason.strip())
    return _query(source, meta, kind, claimed, reason.strip(), published)


def _python(source: str, meta: dict[str, Any], claimed: tuple[str, ...], reason: str) -> Submission:
    if any(key in meta for key in ("sql", "epsilon", "delta")):
        raise _Invalid("Its header says Python but carries a query or an ε.")
    try:
        _, name, params = function_source(source)
    except InvalidInput as exc:
        raise _Invalid(str(exc)) from None
    if meta.get("function") != name:
        raise _Invalid(
            f"Its header names function {meta.get('function')!r}; the code defines {name!r}."
        )
    if len(params) != len(claimed):
        raise _Invalid(
            f"Its function takes {len(params)} argument(s) but the header names "
            f"{len(claimed)} dataset(s): {list(claimed)}."
        )
    return Submission(kind="python", datasets=claimed, reason=reason, function=name)


def _query(
    source: str,
    meta: dict[str, Any],
    kind: str,
    claimed: tuple[str, ...],
    reason: str,
    published: Collection[str],
) -> Submission:
    from rds.checks.sql import check_query

    query = meta.get("sql")
    if not isinstance(query, str) or not query.strip():
        raise _Invalid("Its header says SQL but carries no query.")
    try:
        checked = check_query(query, datasets=sorted(published))
    except InvalidInput as exc:
        raise _Invalid(f"Its query is refused: {exc}") from None
    read = tuple(checked.datasets)
    if set(claimed) != set(read):
        raise _Invalid(
            f"Its header names datasets {list(claimed)}, but its query reads {list(read)}."
        )
    if source.strip() != sql_function(read).strip():
        raise _Invalid("Its header says SQL, but its code is not rds's stand-in for a query.")
    epsilon, delta = 0.0, 0.0
    if kind == "dp":
        epsilon = _number(meta.get("epsilon"), "ε", low=0.0, high=MAX_EPSILON)
        delta = _number(meta.get("delta", 0.0) or 0.0, "δ", low=0.0, high=1.0, zero_ok=True)
        if len(read) != 1:
            raise _Invalid(f"A differentially private query reads one dataset, not {list(read)}.")
    elif "epsilon" in meta or "delta" in meta:
        raise _Invalid("Its header says exact SQL but carries an ε or δ.")
    return Submission(
        kind=kind, datasets=read, reason=reason, sql=query.strip(), epsilon=epsilon, delta=delta
    )


def _number(value: Any, name: str, *, low: float, high: float, zero_ok: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Invalid(f"Its {name} must be a number, not {value!r}.")
    if not (low < value < high or (zero_ok and value == low)):
        raise _Invalid(f"Its {name} = {value!r} is outside the accepted range.")
    return float(value)


def _claimed(meta: dict[str, Any]) -> tuple[str, ...]:
    names = meta.get("datasets")
    if names is None and isinstance(meta.get("dataset"), str):
        names = [meta["dataset"]]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise _Invalid("Its header must name the datasets it reads as a list of names.")
    if len(set(names)) != len(names):
        raise _Invalid(f"Its header names a dataset twice: {names}.")
    first = meta.get("dataset")
    if first is not None and first != names[0]:
        raise _Invalid(f"Its header names {first!r} and {names} as its datasets.")
    return tuple(names)


def _claimed_names(meta: Any, published: Collection[str]) -> tuple[str, ...]:
    """The published datasets an invalid submission names, for the owner's listing."""
    if not isinstance(meta, dict):
        return ()
    names = meta.get("datasets")
    if not isinstance(names, list):
        names = [meta.get("dataset")]
    return tuple(n for n in names if isinstance(n, str) and n in published)


def _text(value: Any) -> str:
    return value.strip()[:MAX_REASON] if isinstance(value, str) else ""
