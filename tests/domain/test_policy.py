"""Owner policies: validated, published with the dataset, changeable later with a ledger entry."""

from __future__ import annotations

import pandas as pd
import pytest

import rds
from rds.errors import InvalidInput


def test_defaults_are_acros() -> None:
    policy = rds.Policy()
    assert (policy.min_cell_count, policy.dominance, policy.p_ratio) == (10, (2, 0.9), 0.1)
    assert policy.on_fail == "block" and policy.auto_release is None
    assert policy.epsilon_budget is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_cell_count": 0}, "at least 1"),
        ({"min_cell_count": 2.5}, "whole number"),
        ({"dominance": (2, 1.5)}, "0 < k"),
        ({"dominance": 3}, "pair"),
        ({"p_ratio": 1.0}, r"\[0, 1\)"),
        ({"on_fail": "ignore"}, "'block' or 'suppress'"),
        ({"auto_release": "all"}, "auto_release"),
        ({"auto_release": "checked-sql"}, "no longer offered"),
        ({"min_epsilon": 0}, "min_epsilon"),
        ({"min_epsilon": float("nan")}, "min_epsilon"),
        ({"epsilon_budget": -1}, "finite"),
        ({"epsilon_budget": float("inf")}, "finite"),
        ({"delta_budget": 1}, "delta_budget"),
        ({"identifying": [1]}, "column names"),
        ({"identifying": ["a"], "non_sensitive": ["a"]}, "at once"),
    ],
)
def test_bad_policies_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        rds.Policy(**kwargs)


def test_round_trip_through_description() -> None:
    policy = rds.Policy(
        min_cell_count=5,
        on_fail="suppress",
        identifying=["patient_id"],
        epsilon_budget=2.0,
        min_epsilon=0.05,
        auto_release="dp",
        limits=rds.SandboxLimits(wall_seconds=30),
    )
    assert rds.Policy.from_description(policy.describe()) == policy


def test_policy_columns_must_exist(domain: rds.Domain, private_frame: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="does not have"):
        domain.publish("other", private_frame, policy=rds.Policy(identifying=["name"]))
    with pytest.raises(InvalidInput, match="does not have"):
        domain.set_policy("patients", rds.Policy(non_sensitive=["nope"]))


def test_set_policy_reaches_scientists_and_the_ledger(
    domain: rds.Domain, session: rds.Session
) -> None:
    def mean_age(df):
        return df["age"].mean()

    pending = session.dataset("patients").request(mean_age, reason="before the change")
    domain.set_policy(
        "patients", rds.Policy(epsilon_budget=1.5, auto_release="dp"), note="DP pilot"
    )
    session._fetched = 0.0  # skip the listing cache
    ds = session.dataset("patients")
    assert ds.policy["epsilon_budget"] == 1.5
    assert ds.policy["auto_release"] == "dp"
    assert ds.rows == len(domain.store.read("patients"))
    assert len(ds.mock) > 0
    assert domain.policy("patients").epsilon_budget == 1.5
    (change,) = domain.ledger.events(event="policy_changed")
    assert change.data["old"]["epsilon_budget"] is None
    assert change.data["new"]["epsilon_budget"] == 1.5
    assert change.data["note"] == "DP pilot"
    # A request made before the change is still served.
    req = domain.request(pending.id)
    req.run()
    req.approve()
    assert pending.result(timeout=30, progress=False) == pytest.approx(
        domain.store.read("patients")["age"].mean()
    )
    assert len(session.datasets) == 1


def test_publish_declares_categories_and_privacy_unit(
    domain: rds.Domain, session: rds.Session
) -> None:
    visits = pd.DataFrame(
        {"person": [1, 1, 1, 2, 3] * 10, "clinic": ["a", "b", "a", "b", "a"] * 10}
    )
    meta = domain.publish(
        "visits",
        visits,
        categories={"clinic": ["a", "b", "c"]},
        privacy_unit="person",
        max_contributions=2,
    )
    assert meta["privacy_unit"] == {"column": "person", "max_contributions": 2}
    clinic = next(c for c in meta["schema"] if c["name"] == "clinic")
    assert clinic["categories"] == ["a", "b", "c"]
    assert domain.dataset_info("visits")["needs_cap"] is True  # person 1 has 30 rows
    # The owner learns how much the cap leaves out; scientists do not.
    assert meta["capped"] == {"units": 3, "capped": 3, "rows_beyond": 28 + 8 + 8}
    (published,) = domain.ledger.events(event="published", dataset="visits")
    assert published.data["capped"] == meta["capped"]
    session._fetched = 0.0
    assert "capped" not in session.dataset("visits")._record.meta
    assert session.dataset("visits").schema.set_index("name").loc["clinic", "categories"] == [
        "a",
        "b",
        "c",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"categories": {"clinic": ["a"]}}, "not among its declared categories"),
        ({"categories": {"clinic": "ab"}}, "list of values"),
        ({"categories": {"clinic": []}}, "non-empty"),
        ({"categories": {"clinic": ["a", "a", "b"]}}, "repeat"),
        ({"categories": {"nope": ["a"]}}, "unknown columns"),
        ({"privacy_unit": "nope"}, "not a column"),
        ({"privacy_unit": "person", "max_contributions": 0}, "at least 1"),
    ],
)
def test_bad_declarations_are_refused(domain: rds.Domain, kwargs: dict, message: str) -> None:
    visits = pd.DataFrame({"person": [1, 2] * 10, "clinic": ["a", "b"] * 10})
    with pytest.raises(InvalidInput, match=message):
        domain.publish("visits", visits, **kwargs)
