"""The ε ledger: reservations are atomic across processes, settle once, and add up."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from rds.errors import BudgetExceeded, InvalidInput
from rds.ledger import Ledger, create_key_pair, load_private_key
from rds.privacy import budget

ADA, BOB = "ada@uni.example.org", "bob@uni.example.org"


@pytest.fixture(autouse=True)
def _ledger_key(tmp_path: Path) -> None:
    """The signing key every ledger below uses, in a file so that pool workers can load it."""
    create_key_pair(tmp_path / "ledger.key", tmp_path / "ledger.pub")


def _ledger(path: Path) -> Ledger:
    return Ledger(path, key=load_private_key(path.with_name("ledger.key")))


def _reserve(path: str, request: str, scientist: str = ADA, epsilon: float = 0.3) -> bool:
    try:
        budget.reserve(
            _ledger(Path(path)),
            actor="owner@example.org",
            scientist=scientist,
            dataset="patients",
            request=request,
            epsilon=epsilon,
            delta=0.0,
            epsilon_budget=1.0,
            delta_budget=0.0,
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
    ctx = multiprocessing.get_context("fork")
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
    settle = {"actor": "owner@example.org", "scientist": ADA, "dataset": "patients"}
    budget.settle(ledger, request="r1", spent=True, **settle)
    budget.settle(ledger, request="r1", spent=False, **settle)  # already settled: ignored
    budget.settle(ledger, request="r2", spent=False, **settle)
    budget.settle(ledger, request="never-reserved", spent=True, **settle)
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
