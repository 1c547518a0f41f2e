"""The ε ledger: privacy budget per (scientist, dataset), kept in the domain's audit log.

A differentially private request moves through three ledger events, each written once per
request:

- ``epsilon_reserved`` before its query runs. The check "does this fit the budget?" and the
  write happen under the ledger's lock (``Ledger.append(guard=…)``), so requests arriving
  together — from threads or from separate processes — can never overspend.
- ``epsilon_spent`` when its answer is released to the scientist.
- ``epsilon_refunded`` when it is denied after running: nothing left the domain.

Spent plus still-reserved ε never exceeds the budget. The scientist's side computes the
same figures from its own requests (released ones are spent, pending ones reserved), so
``session.budget(name)`` agrees with the owner's ledger without reading it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rds.errors import BudgetExceeded, InvalidInput
from rds.ledger import Entry, Ledger

#: Floating-point slack when comparing sums of ε with the budget.
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Budget:
    """A scientist's privacy budget on one dataset.

    Examples
    --------
    >>> session.budget("patients")
    <Budget patients: ε spent 0.5, pending 0.25, remaining 2.25 of 3>
    """

    dataset: str
    epsilon_budget: float | None
    spent: float
    pending: float
    delta_budget: float = 0.0
    delta_spent: float = 0.0
    delta_pending: float = 0.0

    @property
    def remaining(self) -> float:
        """ε still available (0 when the owner offers no DP queries)."""
        if self.epsilon_budget is None:
            return 0.0
        return max(0.0, self.epsilon_budget - self.spent - self.pending)

    @property
    def delta_remaining(self) -> float:
        return max(0.0, self.delta_budget - self.delta_spent - self.delta_pending)

    def check(self, epsilon: float, delta: float = 0.0) -> None:
        """Raise ``BudgetExceeded`` unless a request for ``(epsilon, delta)`` fits."""
        if self.epsilon_budget is None:
            raise InvalidInput(
                f"The owner of {self.dataset!r} offers no differentially private queries "
                "(its policy sets no epsilon_budget)."
            )
        if epsilon > self.remaining + TOLERANCE:
            raise BudgetExceeded(dataset=self.dataset, requested=epsilon, remaining=self.remaining)
        if delta > self.delta_remaining + TOLERANCE:
            raise BudgetExceeded(
                dataset=self.dataset, requested=delta, remaining=self.delta_remaining, unit="δ"
            )

    def as_dict(self) -> dict[str, float | str | None]:
        return {
            "dataset": self.dataset,
            "epsilon_budget": self.epsilon_budget,
            "spent": self.spent,
            "pending": self.pending,
            "remaining": self.remaining,
            "delta_budget": self.delta_budget,
            "delta_spent": self.delta_spent,
            "delta_pending": self.delta_pending,
        }

    def __repr__(self) -> str:
        if self.epsilon_budget is None:
            return f"<Budget {self.dataset}: no DP queries offered>"
        return (
            f"<Budget {self.dataset}: ε spent {self.spent:g}, pending {self.pending:g}, "
            f"remaining {self.remaining:g} of {self.epsilon_budget:g}>"
        )

    def _repr_html_(self) -> str:
        from rds.widgets.reprs import budgets_html

        return budgets_html([self])


class BudgetList(list[Budget]):
    """Budgets on several datasets; a notebook draws one bar per dataset."""

    def _repr_html_(self) -> str:
        from rds.widgets.reprs import budgets_html

        return budgets_html(self)


def from_ledger(
    entries: Iterable[Entry],
    *,
    scientist: str,
    dataset: str,
    epsilon_budget: float | None,
    delta_budget: float = 0.0,
) -> Budget:
    """The budget as the owner's ledger has it."""
    reserved: dict[str, tuple[float, float]] = {}
    settled: dict[str, str] = {}
    for entry in entries:
        data = entry.data
        if data.get("scientist") != scientist or data.get("dataset") != dataset:
            continue
        if entry.event == "epsilon_reserved":
            reserved[data["request"]] = (float(data["epsilon"]), float(data.get("delta", 0.0)))
        elif entry.event in {"epsilon_spent", "epsilon_refunded"}:
            settled[data["request"]] = entry.event
    spent = [v for k, v in reserved.items() if settled.get(k) == "epsilon_spent"]
    pending = [v for k, v in reserved.items() if k not in settled]
    return Budget(
        dataset=dataset,
        epsilon_budget=epsilon_budget,
        spent=sum(e for e, _ in spent),
        pending=sum(e for e, _ in pending),
        delta_budget=delta_budget,
        delta_spent=sum(d for _, d in spent),
        delta_pending=sum(d for _, d in pending),
    )


def reserve(
    ledger: Ledger,
    *,
    actor: str,
    scientist: str,
    dataset: str,
    request: str,
    epsilon: float,
    delta: float,
    epsilon_budget: float | None,
    delta_budget: float,
) -> Entry:
    """Reserve ε for a request, atomically; raise ``BudgetExceeded`` if it does not fit.

    Reserving again for the same request returns the first reservation (no double charge).
    """

    def fits(entries: list[Entry]) -> None:
        from_ledger(
            entries,
            scientist=scientist,
            dataset=dataset,
            epsilon_budget=epsilon_budget,
            delta_budget=delta_budget,
        ).check(epsilon, delta)

    return ledger.append(
        "epsilon_reserved",
        actor=actor,
        once_key=request,
        guard=fits,
        scientist=scientist,
        dataset=dataset,
        request=request,
        epsilon=epsilon,
        delta=delta,
    )


def settle(
    ledger: Ledger, *, actor: str, scientist: str, dataset: str, request: str, spent: bool
) -> None:
    """Mark a reservation spent (its answer was released) or refunded (it was denied)."""

    def open_reservation(entries: list[Entry]) -> None:
        mine = [e.event for e in entries if e.data.get("request") == request]
        if "epsilon_reserved" not in mine or {"epsilon_spent", "epsilon_refunded"} & set(mine):
            raise _NothingToSettle

    try:
        ledger.append(
            "epsilon_spent" if spent else "epsilon_refunded",
            actor=actor,
            guard=open_reservation,
            scientist=scientist,
            dataset=dataset,
            request=request,
        )
    except _NothingToSettle:
        return


class _NothingToSettle(Exception):
    """No open reservation for the request: nothing to write."""
