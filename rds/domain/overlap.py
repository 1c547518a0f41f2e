"""What a scientist already has: earlier releases that overlap a new request.

No automatic check stops differencing — two exact answers that each pass every rule, whose
difference is one person (``SUM(amount)`` for a region, then the same ``AND customer_id <>
42``). So every exact result waits for the owner, and the review desk shows the owner what
the same scientist was already given on the same datasets, closest first:

- a query that differs from the new one only in its conditions (``WHERE``, ``FILTER``,
  ``HAVING``) is marked: subtracting the two answers gives the rows in one and not the other;
- otherwise the columns both read are listed;
- Python functions and DP answers on the same datasets are listed too (DP answers are
  noised, so differencing them only averages noise within the ε budget).

Everything comes from the ledger (who submitted what, what was released) and the requests'
own code; nothing here runs on private data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rds.errors import InvalidInput

if TYPE_CHECKING:
    from rds.domain.domain import Domain
    from rds.domain.requests import OwnerRequest

#: Earlier releases read in full for one request (the newest overlapping ones).
LIMIT = 10


@dataclass(frozen=True)
class EarlierRelease:
    """One earlier release to the same scientist that reads a dataset the new request reads.

    ``same_but_conditions``: both are SQL over the same tables with the same outputs and
    grouping, differing only in their conditions — the pair a differencing attack uses.
    """

    request: str
    kind: str
    released_at: str
    datasets: tuple[str, ...]
    shared_columns: tuple[str, ...]
    same_but_conditions: bool
    text: str

    @property
    def note(self) -> str:
        if self.kind == "dp":
            return "differentially private: noised, differencing costs ε"
        if self.same_but_conditions:
            return "same query, other conditions: subtracting the answers isolates rows"
        if self.shared_columns:
            return f"reads {', '.join(self.shared_columns)} too"
        if self.kind == "python":
            return "a Python function on the same data"
        return "same dataset"


def earlier_releases(
    domain: Domain, req: OwnerRequest, *, limit: int = LIMIT
) -> list[EarlierRelease]:
    """Releases to ``req``'s scientist on any of its datasets, most similar first."""
    entries = domain.ledger.entries()
    submitted = {e.data.get("request"): e for e in entries if e.event == "submitted"}
    wanted = set(req.datasets)
    released: list[tuple[str, str]] = []
    for entry in reversed(entries):
        if entry.event != "approved" or entry.data.get("request") == req.id:
            continue
        sub = submitted.get(entry.data.get("request"))
        if sub is None or sub.actor != req.scientist:
            continue
        if wanted & set(sub.data.get("datasets") or ()):
            released.append((str(entry.data["request"]), entry.time))
        if len(released) >= limit:
            break
    mine = _shape(req)
    found = []
    for request_id, when in released:
        try:
            other = domain.request(request_id)
        except InvalidInput:  # a request syft no longer has: nothing to compare
            continue
        theirs = _shape(other)
        shared = tuple(sorted(mine.columns & theirs.columns))
        same = bool(mine.skeleton) and mine.skeleton == theirs.skeleton and mine.text != theirs.text
        found.append(
            EarlierRelease(
                request=request_id,
                kind=other.kind,
                released_at=when,
                datasets=tuple(other.datasets),
                shared_columns=shared,
                same_but_conditions=same and other.kind == "sql",
                text=theirs.text,
            )
        )
    found.sort(key=lambda e: (not e.same_but_conditions, not e.shared_columns))
    return found


@dataclass(frozen=True)
class _Shape:
    text: str
    columns: frozenset[str]
    skeleton: str  # the query without its conditions ("" when not SQL)


def _shape(req: OwnerRequest) -> _Shape:
    if req.kind not in ("sql", "dp") or not req.sql:
        return _Shape(req.code, frozenset(), "")
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(req.sql, read="duckdb")
    except SqlglotError:
        return _Shape(req.sql, frozenset(), "")
    columns = frozenset(c.name.lower() for c in tree.find_all(exp.Column))
    bare = tree.copy()
    for node in list(bare.find_all(exp.Where, exp.Having)):
        node.pop()
    for node in list(bare.find_all(exp.Filter)):
        node.replace(node.this)
    return _Shape(req.sql, columns, bare.sql(dialect="duckdb"))
