"""What the output checks found: one ``Check`` per rule, gathered in a ``CheckReport``.

Every result carries a report. It has two readers, and each check is written for both:

- ``explanation`` is one line that is safe for the scientist: counts of cells or rows, column
  names the scientist wrote or the dataset publishes, the rule's thresholds, never a private
  value or a suppressed number;
- ``numbers`` holds the owner-only figures behind the verdict (the actual counts, ratios and
  the positions of failing cells). ``for_scientist()`` drops them.

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

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise InvalidInput(f"A check's verdict is one of {VERDICTS}, not {self.verdict!r}.")
        if not isinstance(self.rule, str) or not self.rule:
            raise InvalidInput("A check needs a rule name.")
        if not isinstance(self.explanation, str):
            raise InvalidInput("A check's explanation is text.")
        if not isinstance(self.numbers, Mapping):
            raise InvalidInput("A check's numbers are a mapping of name to value.")
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
        """The same verdicts and explanations, without the owner-only numbers."""
        return CheckReport(tuple(replace(c, numbers={}) for c in self.checks))

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
                    Check(r["rule"], r["verdict"], r["explanation"], r.get("numbers") or {})
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
        from rds.widgets.reprs import report_html

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
