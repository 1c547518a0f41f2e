"""What the output checks found: one ``Check`` per rule, gathered in a ``CheckReport``.

Every result carries a report. It has two readers:

- the owner reads everything: ``explanation`` (one line, with the figures that led to the
  verdict: how many cells failed, how many rows were removed) and ``numbers`` (the actual
  counts, ratios and positions of failing cells);
- the scientist reads, once a result is released, each check's rule, its verdict and a
  **fixed sentence per rule and verdict** (``SCIENTIST_TEXT``): ``for_scientist()`` replaces
  the explanation with it and drops the numbers. No figure computed from the private data
  reaches the scientist through a check: "379 of 379 rows come from small groups" would be
  a count the query can make equal to a private value. A check marked ``public`` (the DP
  check, whose text is made of the request's ε and the published bounds only) keeps its
  explanation.

Reports travel as JSON (``to_dict``/``from_dict``): in the run's ``checks.json`` and, with the
numbers removed, in the release envelope.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from rds.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

VERDICTS = ("pass", "warn", "fail")

_REVIEWED = "the data owner reviewed it before releasing"
#: What the scientist reads of each check: one fixed sentence per (rule, verdict), written
#: without any figure from the data. A rule missing here reads as "<rule>: <verdict>.".
SCIENTIST_TEXT: dict[tuple[str, str], str] = {
    ("shape", "pass"): "The query's shape lets each output cell be checked on its own.",
    ("shape", "fail"): f"The query could not be checked automatically; {_REVIEWED}.",
    ("record_level", "pass"): "Records leave only with columns the owner marked non-sensitive.",
    ("record_level", "fail"): f"Records leave with columns not marked non-sensitive; {_REVIEWED}.",
    ("threshold", "pass"): "Every cell comes from at least the dataset's minimum of people.",
    ("threshold", "warn"): "Cells or rows from too few people were suppressed.",
    ("threshold", "fail"): f"Some cells come from too few people; {_REVIEWED}.",
    ("dominance", "pass"): "No cell is dominated by a few people's contributions.",
    ("dominance", "warn"): "Cells dominated by a few people's contributions were suppressed.",
    ("dominance", "fail"): f"Some cells are dominated by a few people; {_REVIEWED}.",
    ("p_ratio", "pass"): "In every cell the others' contributions hide the largest one.",
    ("p_ratio", "warn"): "Cells whose largest contribution could be estimated were suppressed.",
    ("p_ratio", "fail"): f"Some cells' largest contribution could be estimated; {_REVIEWED}.",
    ("zeros", "pass"): "No cell is a zero that gives people away.",
    ("zeros", "warn"): "Zero cells were suppressed.",
    ("zeros", "fail"): f"Some cells are zeros or combinations that do not occur; {_REVIEWED}.",
    ("extreme_values", "pass"): "No output is a single record's value (MIN, MAX, MEDIAN, …).",
    ("extreme_values", "fail"): f"Some outputs are single records' values; {_REVIEWED}.",
    ("run", "warn"): "The run failed; only the error's type is released.",
    ("types", "pass"): "The result holds only types that may leave the sandbox.",
    ("types", "fail"): "The result holds a type that may not leave the sandbox.",
    ("size", "pass"): "The result is within the output size limit.",
    ("size", "fail"): f"The result is larger than the output size limit; {_REVIEWED}.",
    ("private_rows", "pass"): "No row of the result was found to equal a private record. "
    "Records whose values were transformed are not detected.",
    ("private_rows", "fail"): f"Rows of the result equal private records; {_REVIEWED}.",
    ("identifying", "pass"): "No value of an identifying column was found in the result. "
    "Encoded or hashed values are not detected.",
    ("identifying", "fail"): f"The result contains values of identifying columns; {_REVIEWED}.",
    ("private_values", "pass"): "No value that only a few records hold was found in the "
    "result beyond what chance explains. Values that were rounded, scaled, offset, encoded "
    "or hashed are not detected.",
    ("private_values", "warn"): "The result may hold values that only a few records hold; "
    f"they may be coincidences; {_REVIEWED}.",
    ("private_values", "fail"): "Values that only a few records hold appear in the result; "
    f"{_REVIEWED}.",
    ("row_count", "pass"): "The result is much shorter than the dataset.",
    ("row_count", "warn"): "The result has at least half as many rows as the dataset; "
    f"{_REVIEWED}.",
    ("row_count", "fail"): "The result has about as many rows as the dataset, a copy rather "
    f"than a summary; {_REVIEWED}.",
    ("small_cells", "pass"): "Nothing in the result looks like a small count.",
    ("small_cells", "warn"): "Some values look like small counts, which can identify people; "
    f"{_REVIEWED}.",
}


def scientist_text(rule: str, verdict: str) -> str:
    """The fixed sentence the scientist reads for a check (see ``SCIENTIST_TEXT``)."""
    return SCIENTIST_TEXT.get((rule, verdict), f"{rule}: {verdict}.")


@dataclass(frozen=True)
class Check:
    """One rule's verdict on one output.

    Parameters
    ----------
    rule
        The rule's name, e.g. ``"threshold"``, ``"dominance"``, ``"private_rows"``.
    verdict
        ``"pass"``, ``"warn"`` or ``"fail"``.
    explanation
        One line, safe to show the scientist.
    numbers
        Owner-only figures behind the verdict; converted to plain JSON values.
    public
        The explanation is made of public figures only (the request's ε, published bounds)
        and may reach the scientist as it is; otherwise they read ``scientist_text``.

    Examples
    --------
    >>> check = Check("threshold", "fail", "1 of 3 cells has fewer than 10 records", {"n": 2})
    >>> check.verdict, check.numbers
    ('fail', {'n': 2})
    """

    rule: str
    verdict: str
    explanation: str
    numbers: dict[str, Any] = field(default_factory=dict)
    public: bool = False

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise InvalidInput(f"A check's verdict is one of {VERDICTS}, not {self.verdict!r}.")
        if not isinstance(self.rule, str) or not self.rule:
            raise InvalidInput("A check needs a rule name.")
        if not isinstance(self.explanation, str):
            raise InvalidInput("A check's explanation is text.")
        if not isinstance(self.numbers, Mapping):
            raise InvalidInput("A check's numbers are a mapping of name to value.")
        if not isinstance(self.public, bool):
            raise InvalidInput("A check's public flag is True or False.")
        # Stored as JSON: numpy scalars, tuples and NaN would not survive the round trip.
        object.__setattr__(self, "numbers", {str(k): _plain(v) for k, v in self.numbers.items()})


@dataclass(frozen=True)
class CheckReport:
    """The checks one output went through; its verdict is the worst of theirs.

    Examples
    --------
    >>> report = CheckReport((Check("threshold", "pass", "all 4 cells have 10 or more records"),))
    >>> report.verdict
    'pass'
    >>> CheckReport.from_dict(report.to_dict()) == report
    True
    """

    checks: tuple[Check, ...] = ()

    def __post_init__(self) -> None:
        checks = tuple(self.checks)
        if not all(isinstance(c, Check) for c in checks):
            raise InvalidInput("A CheckReport holds Check objects only.")
        object.__setattr__(self, "checks", checks)

    @property
    def verdict(self) -> str:
        """The worst verdict of the checks; ``"pass"`` when there are none."""
        return max((c.verdict for c in self.checks), key=VERDICTS.index, default="pass")

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.verdict == "fail")

    @property
    def warned(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.verdict == "warn")

    def for_scientist(self) -> CheckReport:
        """The same rules and verdicts, each with its fixed scientist sentence, no numbers."""
        return CheckReport(
            tuple(
                replace(
                    c,
                    explanation=c.explanation if c.public else scientist_text(c.rule, c.verdict),
                    numbers={},
                )
                for c in self.checks
            )
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; ``from_dict`` reads it back."""
        return {
            "verdict": self.verdict,
            "checks": [
                {
                    "rule": c.rule,
                    "verdict": c.verdict,
                    "explanation": c.explanation,
                    "numbers": dict(c.numbers),
                    **({"public": True} if c.public else {}),
                }
                for c in self.checks
            ],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CheckReport:
        """Rebuild a report from ``to_dict``'s output (its ``verdict`` is recomputed)."""
        rows = d.get("checks") if isinstance(d, Mapping) else None
        if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
            raise InvalidInput("A stored check report is a dict with a list of checks.")
        try:
            return cls(
                tuple(
                    Check(
                        r["rule"],
                        r["verdict"],
                        r["explanation"],
                        r.get("numbers") or {},
                        public=r.get("public") is True,
                    )
                    for r in rows
                )
            )
        except KeyError as exc:
            raise InvalidInput(f"A stored check lacks its {exc.args[0]!r}.") from None

    def to_frame(self) -> pd.DataFrame:
        """One row per check: rule, verdict, explanation (and numbers, when any are kept)."""
        import pandas as pd

        columns = ["rule", "verdict", "explanation"]
        if any(c.numbers for c in self.checks):
            columns.append("numbers")
        rows = [[c.rule, c.verdict, c.explanation, c.numbers][: len(columns)] for c in self.checks]
        return pd.DataFrame(rows, columns=columns)

    def __add__(self, other: object) -> CheckReport:
        if not isinstance(other, CheckReport):
            return NotImplemented
        return CheckReport(self.checks + other.checks)

    def __repr__(self) -> str:
        if not self.checks:
            return "CheckReport(pass: no checks)"
        width = max(len(c.rule) for c in self.checks)
        lines = [f"  {c.verdict:<4}  {c.rule:<{width}}  {c.explanation}" for c in self.checks]
        return f"CheckReport({self.verdict}):\n" + "\n".join(lines)

    def _repr_html_(self) -> str:
        from rds.checks.views import report_html

        return report_html(self)


def _plain(value: Any) -> Any:
    """``value`` as plain JSON data: numpy scalars unwrapped, tuples as lists, NaN as None."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_plain(v) for v in items]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
