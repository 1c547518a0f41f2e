"""What a data owner decides about a dataset: disclosure rules, privacy budget, release."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from rds.dp.budget import MIN_EPSILON
from rds.errors import InvalidInput
from rds.sandbox.limits import SandboxLimits

if TYPE_CHECKING:
    from rds.worker.ports import Site

ON_FAIL = ("block", "suppress")
AUTO_RELEASE = (None, "dp")
#: Retired release modes, read from policies stored by earlier versions as their successor.
RETIRED = {"checked-sql": "dp"}
_RELEASE_TEXT = {
    None: "manual review by the data owner",
    "dp": "differentially private answers within budget are released automatically; "
    "exact results (SQL and Python) are reviewed by the data owner",
}


@dataclass(frozen=True, kw_only=True)
class Policy:
    """Release rules for one dataset; public, shown to scientists with its metadata.

    Parameters
    ----------
    min_cell_count
        Threshold rule: each cell must come from at least this many people (distinct
        privacy units; records when the dataset declares none) (ACRO's default, 10).
    dominance
        ``(n, k)``: a cell fails when the ``n`` largest people's totals make up ``k`` or
        more of it (ACRO: 2 and 0.9).
    p_ratio
        The people other than the two largest must add up to at least ``p_ratio`` of the
        largest person's total (ACRO: 0.1).
    on_fail
        ``"block"``: a result with a failing cell waits for the owner, who must write a
        justification to release it. ``"suppress"``: failing cells are blanked and the rest
        is released.
    identifying
        Columns whose values identify people (names, record numbers): a Python result
        containing any of their values fails its checks.
    non_sensitive
        Columns whose row-level values may be released: a SQL query that returns individual
        rows passes only if it touches these columns alone.
    epsilon_budget
        Total ε each scientist may spend on differentially private queries over this
        dataset; ``None`` offers no DP queries.
    delta_budget
        Total δ each scientist may spend (Gaussian-noise queries need a δ > 0).
    min_epsilon
        The smallest ε one request may spend (default 0.01): a floor under the number of
        requests a budget allows, so ε cannot be spread over thousands of tiny queries.
    auto_release
        ``None`` (a human decides everything) or ``"dp"`` (DP answers within budget go out
        at once). Exact results — SQL aggregates and Python functions — always wait for a
        human: no automatic check stops differencing between exact answers. (The
        ``"checked-sql"`` mode of earlier versions is refused; a stored policy that has it
        is read as ``"dp"``.)
    limits
        Sandbox limits for runs on this dataset; the domain's defaults when ``None``.

    Examples
    --------
    >>> Policy(epsilon_budget=3.0, auto_release="dp").describe()["epsilon_budget"]
    3.0
    """

    min_cell_count: int = 10
    dominance: tuple[int, float] = (2, 0.9)
    p_ratio: float = 0.1
    on_fail: str = "block"
    identifying: Sequence[str] = field(default=())
    non_sensitive: Sequence[str] = field(default=())
    epsilon_budget: float | None = None
    delta_budget: float = 0.0
    min_epsilon: float = MIN_EPSILON
    auto_release: str | None = None
    limits: SandboxLimits | None = None

    def __post_init__(self) -> None:
        if isinstance(self.min_cell_count, bool) or not isinstance(self.min_cell_count, int):
            raise InvalidInput("min_cell_count must be a whole number of records.")
        if self.min_cell_count < 1:
            raise InvalidInput("min_cell_count must be at least 1.")
        try:
            n, k = self.dominance
        except (TypeError, ValueError):
            raise InvalidInput("dominance must be a pair (n, k), e.g. (2, 0.9).") from None
        if not isinstance(n, int) or n < 1 or not 0 < float(k) <= 1:
            raise InvalidInput(f"dominance (n, k) needs n ≥ 1 and 0 < k ≤ 1; got {self.dominance}.")
        object.__setattr__(self, "dominance", (n, float(k)))
        if not 0 <= float(self.p_ratio) < 1:
            raise InvalidInput(f"p_ratio must lie in [0, 1); got {self.p_ratio}.")
        if self.on_fail not in ON_FAIL:
            raise InvalidInput(f"on_fail must be 'block' or 'suppress', not {self.on_fail!r}.")
        if self.auto_release in RETIRED:
            raise InvalidInput(
                f"auto_release={self.auto_release!r} is no longer offered: exact SQL results "
                "always wait for the owner, because two exact answers that pass every check "
                "can still be subtracted to give one person's value. Use 'dp' to release "
                "differentially private answers automatically."
            )
        if self.auto_release not in AUTO_RELEASE:
            raise InvalidInput(f"auto_release must be None or 'dp', not {self.auto_release!r}.")
        for name in ("identifying", "non_sensitive"):
            object.__setattr__(self, name, _columns(getattr(self, name), name))
        both = sorted(set(self.identifying) & set(self.non_sensitive))
        if both:
            raise InvalidInput(f"Columns cannot be identifying and non-sensitive at once: {both}.")
        if self.epsilon_budget is not None:
            budget = float(self.epsilon_budget)
            if not math.isfinite(budget) or budget < 0:
                raise InvalidInput(f"epsilon_budget must be a finite ε ≥ 0; got {budget}.")
            object.__setattr__(self, "epsilon_budget", budget)
        if not 0 <= float(self.delta_budget) < 1:
            raise InvalidInput(f"delta_budget must lie in [0, 1); got {self.delta_budget}.")
        object.__setattr__(self, "delta_budget", float(self.delta_budget))
        floor = self.min_epsilon
        if isinstance(floor, bool) or not isinstance(floor, int | float):
            raise InvalidInput(f"min_epsilon must be a number; got {floor!r}.")
        if not (math.isfinite(floor) and floor > 0):
            raise InvalidInput(f"min_epsilon must be a finite ε > 0; got {floor}.")
        object.__setattr__(self, "min_epsilon", float(floor))

    @property
    def sdc_rules(self) -> Any:
        """The disclosure-control thresholds as ``rds.checks.sdc.SDCRules``."""
        from rds.checks.sdc import SDCRules

        return SDCRules(
            min_cell_count=self.min_cell_count, dominance=self.dominance, p_ratio=self.p_ratio
        )

    def check_columns(self, columns: Collection[str]) -> None:
        """Refuse column lists naming columns the dataset does not have."""
        unknown = sorted((set(self.identifying) | set(self.non_sensitive)) - set(columns))
        if unknown:
            raise InvalidInput(f"The policy names columns the dataset does not have: {unknown}.")

    def describe(self) -> dict[str, Any]:
        """A JSON-safe summary for the dataset's public metadata (and for storing it)."""
        summary: dict[str, Any] = {
            "release": _RELEASE_TEXT[self.auto_release],
            "min_cell_count": self.min_cell_count,
            "dominance": list(self.dominance),
            "p_ratio": self.p_ratio,
            "on_fail": self.on_fail,
            "identifying": list(self.identifying),
            "non_sensitive": list(self.non_sensitive),
            "epsilon_budget": self.epsilon_budget,
            "delta_budget": self.delta_budget,
            "min_epsilon": self.min_epsilon,
            "auto_release": self.auto_release,
        }
        if self.limits is not None:
            summary["limits"] = asdict(self.limits)
        return summary

    @classmethod
    def from_description(cls, summary: dict[str, Any]) -> Policy:
        """Rebuild the policy from ``describe()``'s output (kept in the domain directory)."""
        fields = {k: v for k, v in summary.items() if k in cls.__dataclass_fields__}
        if fields.get("auto_release") in RETIRED:
            fields["auto_release"] = RETIRED[fields["auto_release"]]
        limits = fields.pop("limits", None)
        if "dominance" in fields:
            fields["dominance"] = tuple(fields["dominance"])
        return cls(**fields, limits=SandboxLimits(**limits) if limits else None)


def _columns(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    try:
        columns = tuple(value)
    except TypeError:
        raise InvalidInput(f"{name} must be a list of column names.") from None
    if not all(isinstance(c, str) and c for c in columns):
        raise InvalidInput(f"{name} must be a list of column names; got {list(columns)}.")
    return columns


def sandbox_limits(domain: Site, datasets: Sequence[str]) -> SandboxLimits:
    """The sandbox limits a request on ``datasets`` runs under: the strictest of their own
    limits (field by field), else the domain's."""
    return combined_policy(domain, datasets).limits or domain.limits


def combined_policy(domain: Site, datasets: Sequence[str]) -> Policy:
    """The strictest reading of the policies of every dataset a request touches."""
    policies = [domain.policy(name) for name in datasets]
    if len(policies) == 1:
        return policies[0]
    sensitive_somewhere = {c for p in policies for c in p.identifying}
    non_sensitive = set.intersection(*(set(p.non_sensitive) for p in policies))
    autos = {p.auto_release for p in policies}
    return Policy(
        min_cell_count=max(p.min_cell_count for p in policies),
        dominance=(max(p.dominance[0] for p in policies), min(p.dominance[1] for p in policies)),
        p_ratio=max(p.p_ratio for p in policies),
        on_fail="block" if any(p.on_fail == "block" for p in policies) else "suppress",
        identifying=tuple(sorted(sensitive_somewhere)),
        non_sensitive=tuple(sorted(non_sensitive - sensitive_somewhere)),
        min_epsilon=max(p.min_epsilon for p in policies),
        auto_release=autos.pop() if len(autos) == 1 else None,
        limits=_strictest([p.limits for p in policies if p.limits is not None]),
    )


def _strictest(limits: list[SandboxLimits]) -> SandboxLimits | None:
    """Each limit at its smallest over ``limits`` (``None`` when no dataset sets any)."""
    if not limits:
        return None
    values = [asdict(one) for one in limits]
    return type(limits[0])(**{key: min(v[key] for v in values) for key in values[0]})
