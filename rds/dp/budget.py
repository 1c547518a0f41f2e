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

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from rds.errors import BudgetExceeded, EpsilonTooSmall, InvalidInput
from rds.ledger import Entry, Ledger

_ZERO = Decimal(0)
#: The smallest ε one request may spend unless the owner sets another (``Policy.min_epsilon``).
MIN_EPSILON = 0.01
_FIGURES = ("epsilon_budget", "spent", "pending", "delta_budget", "delta_spent", "delta_pending")


def amount(value: float | int | Decimal | None) -> Decimal:
    """ε or δ as an exact decimal: the shortest decimal that reads back as the number.

    That is the number as it was typed (``0.1`` is ``Decimal("0.1")``, not the binary
    ``0.1000000000000000055…``), so thirty requests of ε=0.1 fill a budget of 3 exactly,
    and no sum of many small ε drifts past the budget through rounding.

    Examples
    --------
    >>> sum(amount(0.1) for _ in range(30)) == amount(3)
    True
    """
    if value is None:
        return _ZERO
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"ε and δ are numbers, not {value!r}.")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise InvalidInput(f"ε and δ are finite and ≥ 0, not {value!r}.")
    return Decimal(repr(number))


def plan_amount(value: float) -> float:
    """The largest float not above ``amount(value)``: the ε (or δ) noise is calibrated to, so
    the privacy loss never exceeds what the ledger charges (``0.1`` the float is a hair above
    ``0.1`` the decimal)."""
    charged = amount(value)
    number = float(charged)
    while Decimal(number) > charged:
        number = math.nextafter(number, 0.0)
    return number


@dataclass(frozen=True)
class Budget:
    """A scientist's privacy budget on one dataset.

    The figures are kept as exact decimals (``amount``); the attributes show them as
    floats. ``min_epsilon`` is the smallest ε one request may ask for.

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
    min_epsilon: float = 0.0
    #: The same figures as exact decimals (see ``amount``), keyed by attribute name; made
    #: from the floats when not given.
    exact: dict[str, Decimal] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        given = self.exact or {}
        exact = {name: given.get(name, amount(getattr(self, name))) for name in _FIGURES}
        object.__setattr__(self, "exact", exact)
        object.__setattr__(self, "min_epsilon", float(self.min_epsilon or 0.0))

    def _left(self, total: str, *used: str) -> Decimal:
        e = self.exact or {}
        return max(_ZERO, e[total] - sum((e[u] for u in used), _ZERO))

    @property
    def remaining(self) -> float:
        """ε still available (0 when the owner offers no DP queries)."""
        if self.epsilon_budget is None:
            return 0.0
        return float(self._left("epsilon_budget", "spent", "pending"))

    @property
    def delta_remaining(self) -> float:
        return float(self._left("delta_budget", "delta_spent", "delta_pending"))

    def check(self, epsilon: float, delta: float = 0.0) -> None:
        """Raise ``BudgetExceeded`` unless a request for ``(epsilon, delta)`` fits, exactly.

        ``EpsilonTooSmall`` (a ``BudgetExceeded``) when ``epsilon`` is under
        ``min_epsilon``; ``InvalidInput`` when the owner offers no DP queries or the figures
        are not finite numbers ≥ 0.
        """
        if self.epsilon_budget is None:
            raise InvalidInput(
                f"The owner of {self.dataset!r} offers no differentially private queries "
                "(its policy sets no epsilon_budget)."
            )
        asked, asked_delta = amount(epsilon), amount(delta)
        if asked < amount(self.min_epsilon) or asked == 0:
            raise EpsilonTooSmall(
                dataset=self.dataset, requested=float(epsilon), minimum=self.min_epsilon
            )
        if asked > self._left("epsilon_budget", "spent", "pending"):
            raise BudgetExceeded(dataset=self.dataset, requested=epsilon, remaining=self.remaining)
        if asked_delta > self._left("delta_budget", "delta_spent", "delta_pending"):
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
            "min_epsilon": self.min_epsilon,
        }

    def __repr__(self) -> str:
        if self.epsilon_budget is None:
            return f"<Budget {self.dataset}: no DP queries offered>"
        return (
            f"<Budget {self.dataset}: ε spent {self.spent:g}, pending {self.pending:g}, "
            f"remaining {self.remaining:g} of {self.epsilon_budget:g}>"
        )

    def _repr_html_(self) -> str:
        from rds.dp.views import budgets_html

        return budgets_html([self])


class BudgetList(list[Budget]):
    """Budgets on several datasets; a notebook draws one bar per dataset."""

    def _repr_html_(self) -> str:
        from rds.dp.views import budgets_html

        return budgets_html(self)


def from_ledger(
    entries: Iterable[Entry],
    *,
    scientist: str,
    dataset: str,
    epsilon_budget: float | None,
    delta_budget: float = 0.0,
    min_epsilon: float = 0.0,
) -> Budget:
    """The budget as the owner's ledger has it, summed exactly."""
    reserved: dict[str, tuple[Decimal, Decimal]] = {}
    settled: dict[str, str] = {}
    for entry in entries:
        data = entry.data
        if data.get("scientist") != scientist or data.get("dataset") != dataset:
            continue
        if entry.event == "epsilon_reserved":
            reserved[data["request"]] = (amount(data["epsilon"]), amount(data.get("delta")))
        elif entry.event in {"epsilon_spent", "epsilon_refunded"}:
            settled.setdefault(data["request"], entry.event)
    return tally(
        dataset=dataset,
        epsilon_budget=epsilon_budget,
        delta_budget=delta_budget,
        min_epsilon=min_epsilon,
        spent=[v for k, v in reserved.items() if settled.get(k) == "epsilon_spent"],
        pending=[v for k, v in reserved.items() if k not in settled],
    )


def tally(
    *,
    dataset: str,
    epsilon_budget: float | None,
    delta_budget: float,
    min_epsilon: float,
    spent: Iterable[tuple[Decimal, Decimal]],
    pending: Iterable[tuple[Decimal, Decimal]],
) -> Budget:
    """The budget from the (ε, δ) of its released and its waiting requests, summed exactly.

    The one place ε spent is computed: the owner's side tallies the ledger
    (``from_ledger``), a scientist's session its own requests.
    """
    spent, pending = list(spent), list(pending)
    exact = {
        "epsilon_budget": amount(epsilon_budget),
        "spent": sum((e for e, _ in spent), _ZERO),
        "pending": sum((e for e, _ in pending), _ZERO),
        "delta_budget": amount(delta_budget),
        "delta_spent": sum((d for _, d in spent), _ZERO),
        "delta_pending": sum((d for _, d in pending), _ZERO),
    }
    return Budget(
        dataset=dataset,
        epsilon_budget=epsilon_budget,
        spent=float(exact["spent"]),
        pending=float(exact["pending"]),
        delta_budget=delta_budget,
        delta_spent=float(exact["delta_spent"]),
        delta_pending=float(exact["delta_pending"]),
        min_epsilon=min_epsilon,
        exact=exact,
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
    min_epsilon: float = 0.0,
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
            min_epsilon=min_epsilon,
        ).check(epsilon, delta)

    return ledger.append(
        "epsilon_reserved",
        actor=actor,
        once_key=request,
        guard=fits,
        scientist=scientist,
        dataset=dataset,
        request=request,
        epsilon=float(epsilon),
        delta=float(delta),
    )


def settle(ledger: Ledger, *, actor: str, request: str, spent: bool) -> bool:
    """Mark a request's reservation spent (its answer was released) or refunded (denied).

    The reservation is found by request id and settled under its own scientist and dataset,
    at most once; returns whether an entry was written (``False``: nothing was reserved, or
    it is settled already).
    """
    reservation = next(
        (
            e
            for e in ledger.entries()
            if e.event == "epsilon_reserved" and e.data.get("request") == request
        ),
        None,
    )
    if reservation is None:
        return False

    def still_open(entries: list[Entry]) -> None:
        settled = {"epsilon_spent", "epsilon_refunded"}
        if any(e.event in settled and e.data.get("request") == request for e in entries):
            raise _NothingToSettle

    try:
        ledger.append(
            "epsilon_spent" if spent else "epsilon_refunded",
            actor=actor,
            guard=still_open,
            scientist=reservation.data.get("scientist"),
            dataset=reservation.data.get("dataset"),
            request=request,
        )
    except _NothingToSettle:
        return False
    return True


def open_reservations(entries: Iterable[Entry]) -> list[str]:
    """Requests whose ε is reserved and not yet settled, in the order they were reserved."""
    reserved: list[str] = []
    settled: set[str] = set()
    for entry in entries:
        request = str(entry.data.get("request"))
        if entry.event == "epsilon_reserved" and request not in reserved:
            reserved.append(request)
        elif entry.event in {"epsilon_spent", "epsilon_refunded"}:
            settled.add(request)
    return [r for r in reserved if r not in settled]


class _NothingToSettle(Exception):
    """No open reservation for the request: nothing to write."""
