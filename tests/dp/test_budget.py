"""The ε ledger: reservations are atomic across processes, settle once, and add up."""

from __future__ import annotations

import multiprocessing
import random
from decimal import Decimal
from pathlib import Path

import pytest

from rds.dp import budget
from rds.errors import BudgetExceeded, EpsilonTooSmall, InvalidInput
from rds.ledger import Ledger, create_key_pair, load_private_key

ADA, BOB = "ada@uni.example.org", "bob@uni.example.org"


@pytest.fixture(autouse=True)
def _ledger_key(tmp_path: Path) -> None:
    """The signing key every ledger below uses, in a file so that pool workers can load it."""
    create_key_pair(tmp_path / "ledger.key", tmp_path / "ledger.pub")


def _ledger(path: Path) -> Ledger:
    return Ledger(path, key=load_private_key(path.with_name("ledger.key")))


def _reserve(
    path: str,
    request: str,
    scientist: str = ADA,
    epsilon: float = 0.3,
    *,
    limit: float = 1.0,
    floor: float = 0.01,
) -> bool:
    try:
        budget.reserve(
            _ledger(Path(path)),
            actor="owner@example.org",
            scientist=scientist,
            dataset="patients",
            request=request,
            epsilon=epsilon,
            delta=0.0,
            epsilon_budget=limit,
            delta_budget=0.0,
            min_epsilon=floor,
        )
    except BudgetExceeded:
        return False
    return True


def _state(ledger: Ledger, scientist: str = ADA) -> budget.Budget:
    return budget.from_ledger(
        ledger.entries(), scientist=scientist, dataset="patients", epsilon_budget=1.0
    )


def test_parallel_processes_never_overspend(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    # spawn, not fork: a forked child of a process with threads (the warm pool's, tqdm's)
    # can inherit a lock held at the fork and hang; each child here opens its own ledger.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(8) as pool:
        outcomes = pool.starmap(_reserve, [(str(path), f"r{i}") for i in range(16)])
    assert sum(outcomes) == 3  # 3 x 0.3 <= 1.0 < 4 x 0.3
    ledger = _ledger(path)
    assert ledger.verify() == 3
    state = _state(ledger)
    assert state.pending == pytest.approx(0.9)
    assert state.remaining == pytest.approx(0.1)


def test_reserving_twice_for_one_request_charges_once(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    assert _reserve(str(path), "r1") and _reserve(str(path), "r1")
    assert _state(_ledger(path)).pending == pytest.approx(0.3)


def test_budgets_are_per_scientist(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    assert _reserve(str(path), "a1", epsilon=1.0)
    assert not _reserve(str(path), "a2", epsilon=0.1)
    assert _reserve(str(path), "b1", scientist=BOB, epsilon=1.0)


def test_spent_and_refunded_settle_once(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = _ledger(path)
    for request in ("r1", "r2"):
        assert _reserve(str(path), request)
    actor = "owner@example.org"
    assert budget.settle(ledger, actor=actor, request="r1", spent=True)
    assert not budget.settle(ledger, actor=actor, request="r1", spent=False)  # settled already
    assert budget.settle(ledger, actor=actor, request="r2", spent=False)
    assert not budget.settle(ledger, actor=actor, request="never-reserved", spent=True)
    state = _state(ledger)
    assert (state.spent, state.pending) == (pytest.approx(0.3), 0.0)
    assert state.remaining == pytest.approx(0.7)
    events = [e.event for e in ledger.entries()]
    assert events.count("epsilon_spent") == 1 and events.count("epsilon_refunded") == 1


def test_check_explains_what_is_missing() -> None:
    state = budget.Budget(dataset="patients", epsilon_budget=1.0, spent=0.75, pending=0.0)
    with pytest.raises(BudgetExceeded, match=r"only ε=0\.25") as info:
        state.check(0.5)
    assert info.value.remaining == pytest.approx(0.25)
    state.check(0.25)  # exactly the remainder fits
    with pytest.raises(BudgetExceeded, match="δ"):
        state.check(0.1, delta=1e-6)
    with pytest.raises(InvalidInput, match="no differentially private"):
        budget.Budget(dataset="x", epsilon_budget=None, spent=0, pending=0).check(0.1)


def test_guard_failure_writes_nothing(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path / "ledger.jsonl")
    ledger.append("first", actor="a")

    def refuse(entries: list) -> None:
        assert len(entries) == 1
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        ledger.append("second", actor="a", guard=refuse)
    assert [e.event for e in ledger.entries()] == ["first"]


def test_settling_uses_the_reservation_s_own_scientist_and_dataset(tmp_path: Path) -> None:
    """A request that later reads as another dataset (or as invalid) still settles the ε it
    reserved: the settlement is found by request id, not by what the caller believes."""
    path = tmp_path / "ledger.jsonl"
    ledger = _ledger(path)
    assert _reserve(str(path), "r1", scientist=BOB)
    assert budget.open_reservations(ledger.entries()) == ["r1"]
    assert budget.settle(ledger, actor="owner@example.org", request="r1", spent=False)
    refund = ledger.entries()[-1]
    assert (refund.data["scientist"], refund.data["dataset"]) == (BOB, "patients")
    assert budget.open_reservations(ledger.entries()) == []
    assert _state(ledger, BOB).pending == 0.0


def test_thirty_tenths_fill_a_budget_of_three_exactly(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = _ledger(path)
    for i in range(30):
        assert _reserve(str(path), f"r{i}", epsilon=0.1, limit=3.0), i
    state = budget.from_ledger(
        ledger.entries(), scientist=ADA, dataset="patients", epsilon_budget=3.0
    )
    assert state.remaining == 0.0 and state.exact is not None
    assert state.exact["pending"] == Decimal(3)
    # Nothing more fits, however small: no drift past the budget, ever.
    for tiny in (0.01, 1e-9, 1e-300, 5e-324):
        assert not _reserve(str(path), f"tiny{tiny}", epsilon=tiny, limit=3.0, floor=1e-320)


def test_minimum_epsilon_per_request() -> None:
    state = budget.Budget(
        dataset="patients", epsilon_budget=3.0, spent=0, pending=0, min_epsilon=0.01
    )
    state.check(0.01)
    for small in (0.009, 1e-9, 1e-300, 0.0):
        with pytest.raises(EpsilonTooSmall, match=r"minimum of ε=0\.01"):
            state.check(small)
    for bad in (float("nan"), float("inf"), -0.5):
        with pytest.raises(InvalidInput):
            state.check(bad)


def test_noise_is_calibrated_to_no_more_than_the_charge() -> None:
    for typed in (0.1, 0.3, 1 / 3, 2.675, 1e-2, 3.0):
        assert Decimal(budget.plan_amount(typed)) <= budget.amount(typed)
        assert budget.plan_amount(typed) == pytest.approx(typed, rel=1e-15)


def test_no_sequence_of_requests_exceeds_the_budget(tmp_path: Path) -> None:
    """Adaptive-looking random sequences: odd ε values, tiny and huge ones, approvals,
    denials (refunds), requests that stay pending (crashed runs). Spent plus pending never
    passes the budget, exactly, and every decided request is settled exactly once."""
    rng = random.Random(12)
    path = tmp_path / "ledger.jsonl"
    ledger = _ledger(path)
    limit = 2.0
    decided: dict[str, str] = {}
    for i in range(250):
        epsilon = rng.choice(
            [rng.uniform(0.001, 0.5), round(rng.uniform(0.01, 0.3), 2), 1 / 3, 1e-9, 0.7, 2.0]
        )
        request = f"r{i}"
        if not _reserve(str(path), request, epsilon=epsilon, limit=limit):
            continue
        outcome = rng.choice(["spent", "refunded", "pending"])
        if outcome != "pending":
            budget.settle(ledger, actor="o", request=request, spent=outcome == "spent")
            decided[request] = outcome
        state = budget.from_ledger(
            ledger.entries(), scientist=ADA, dataset="patients", epsilon_budget=limit
        )
        assert state.exact is not None
        assert state.exact["spent"] + state.exact["pending"] <= Decimal(2)
    entries = ledger.entries()
    for request, outcome in decided.items():
        events = [e.event for e in entries if e.data.get("request") == request]
        assert events.count(f"epsilon_{outcome}") == 1, request
        assert len(events) == 2, (request, events)
    assert set(budget.open_reservations(entries)).isdisjoint(decided)
