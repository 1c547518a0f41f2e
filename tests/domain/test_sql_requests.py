"""SQL requests end to end: validated, run on the mock, run in the sandbox, checked, released."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

import rds
from rds.checks.report import scientist_text
from rds.errors import InvalidInput
from tests.conftest import embedded_hospital, patients

BY_WARD = (
    "SELECT ward, COUNT(*) AS n, AVG(age) AS mean_age FROM patients GROUP BY ward ORDER BY ward"
)


def test_aggregate_passes_checks_and_is_released(
    domain: rds.Domain, session: rds.Session, private_frame: pd.DataFrame
) -> None:
    req = session.dataset("patients").sql(BY_WARD, reason="ward profile")
    assert req.kind == "sql" and list(req.mock_result.columns) == ["ward", "n", "mean_age"]
    review = domain.request(req.id)
    assert review.kind == "sql" and review.sql.startswith("SELECT ward")
    assert review.code == review.sql  # the owner reads the query, not a stand-in function
    assert "def " in review.source
    preview = review.run()
    assert preview.ok and preview.sandboxed
    assert preview.checks.verdict == "pass"
    expected = private_frame.groupby("ward")["age"].agg(["count", "mean"])
    result = preview.result.set_index("ward")
    assert result["n"].tolist() == expected["count"].tolist()
    assert np.allclose(result["mean_age"], expected["mean"])
    assert not any(c.startswith("__rds") for c in preview.result.columns)
    review.approve()
    released = req.result(timeout=30, progress=False)
    pd.testing.assert_frame_equal(released, preview.result)
    assert req.checks is not None and req.checks.verdict == "pass"
    assert all(not c.numbers for c in req.checks.checks)  # the scientist sees no figures


SMALL_CELLS = (
    "SELECT ward, age, COUNT(*) AS n, AVG(los_days) AS los FROM patients "
    "GROUP BY ward, age ORDER BY ward, age"
)


def test_small_cells_block_release_without_a_justification(
    domain: rds.Domain, session: rds.Session
) -> None:
    req = session.dataset("patients").sql(SMALL_CELLS, reason="fine grid")
    review = domain.request(req.id)
    preview = review.run()
    assert preview.checks.verdict == "fail"
    assert "threshold" in [c.rule for c in preview.checks.failed]
    with pytest.raises(rds.RequestStateError, match="justification"):
        review.approve()
    review.approve(justification="Ethics board approved release of this table (ref 2026-17).")
    (approved,) = domain.ledger.events(event="approved", request=req.id)
    assert approved.data["justification"].startswith("Ethics board")
    assert "threshold" in approved.data["failed_checks"]
    released = req.result(timeout=30, progress=False)
    assert released["n"].min() < 10  # released as it was, on the owner's word
    assert req.checks is not None and req.checks.verdict == "fail"


def test_suppress_policy_blanks_failing_cells(
    domain: rds.Domain, session: rds.Session, private_frame: pd.DataFrame
) -> None:
    domain.set_policy("patients", rds.Policy(on_fail="suppress"))
    query = (
        "SELECT ward, COUNT(*) AS n, SUM(los_days) AS los FROM patients "
        "WHERE age < 20 OR ward <> 'neuro' GROUP BY ward ORDER BY ward"
    )
    req = session.dataset("patients").sql(query, reason="suppress me")
    review = domain.request(req.id)
    preview = review.run()
    young_neuro = int(((private_frame.ward == "neuro") & (private_frame.age < 20)).sum())
    assert 0 < young_neuro < 10  # the fixture has a small neuro cell
    assert preview.checks.verdict == "warn"
    assert "neuro" not in preview.result["ward"].tolist()  # a small group loses its row
    review.approve()
    released = req.result(timeout=30, progress=False)
    assert sorted(released["ward"]) == ["cardio", "onco"]
    assert req.checks is not None
    assert all(not c.numbers for c in req.checks.checks)  # no figure of the dropped group


def test_record_level_query_fails_unless_columns_are_non_sensitive(
    domain: rds.Domain, session: rds.Session
) -> None:
    rows = session.dataset("patients").sql("SELECT age, ward FROM patients", reason="rows")
    assert domain.request(rows.id).run().checks.verdict == "fail"
    domain.set_policy("patients", rds.Policy(non_sensitive=["ward"]))
    wards = session.dataset("patients").sql("SELECT DISTINCT ward FROM patients", reason="codes")
    assert domain.request(wards.id).run().checks.verdict == "pass"
    leaky = session.dataset("patients").sql(
        "SELECT DISTINCT ward FROM patients WHERE age > 90", reason="filter on sensitive"
    )
    assert domain.request(leaky.id).run().checks.verdict == "fail"


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[rds.Domain, rds.Session]]:
    """One domain and session for all the refused queries: none may reach it (each test
    counts its requests before and after), so they need not make one each."""
    domain = embedded_hospital(tmp_path_factory.mktemp("refusing") / "domain", patients())
    creds = domain.add_scientist("ada@uni.example.org")
    yield domain, rds.connect(domain, email=creds.email, password=creds.password)
    domain.close()


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "COPY patients TO '/tmp/x.csv'",
        "ATTACH '/tmp/x.db'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "PRAGMA version",
        "SET threads = 1",
        "SELECT * FROM 'secret.parquet'",
        "SELECT * FROM glob('/*')",
        "SELECT getenv('HOME')",
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM other_table",
        "DELETE FROM patients",
        "SELECT 1; SELECT 2",
    ],
)
def test_refused_queries_are_never_submitted(
    refusing: tuple[rds.Domain, rds.Session], query: str
) -> None:
    domain, session = refusing
    before = len(domain.requests)
    with pytest.raises(InvalidInput):
        session.dataset("patients").sql(query, reason="attack")
    assert len(domain.requests) == before


def test_query_failing_on_the_mock_is_not_submitted(
    domain: rds.Domain, session: rds.Session
) -> None:
    with pytest.raises(rds.MockRunFailed, match="mock"):
        session.dataset("patients").sql("SELECT no_such_column FROM patients", reason="typo")
    assert domain.requests == []


def test_join_of_two_datasets(domain: rds.Domain, session: rds.Session) -> None:
    wards = pd.DataFrame({"ward": ["cardio", "onco", "neuro"], "floor": [1, 2, 3]})
    domain.publish("wards", wards, mock=wards)
    session._fetched = 0.0
    req = session.dataset("patients").sql(
        "SELECT w.floor, COUNT(*) AS n FROM patients p JOIN wards w USING (ward) "
        "GROUP BY w.floor ORDER BY w.floor",
        reason="patients per floor",
    )
    review = domain.request(req.id)
    assert review.datasets == ["patients", "wards"]
    preview = review.run()
    # Across a join rds cannot count the people behind a cell: the owner judges it.
    assert preview.checks.verdict == "fail" and preview.checks.failed[0].rule == "shape"
    assert "join" in preview.checks.failed[0].explanation
    assert preview.result["floor"].tolist() == [1, 2, 3]
    with pytest.raises(rds.RequestStateError, match="justification"):
        review.approve()
    review.approve(justification="three wards per floor, hundreds of patients each")
    assert req.result(timeout=30, progress=False)["floor"].tolist() == [1, 2, 3]
    (shape,) = [c for c in req.checks.checks if c.rule == "shape"]
    assert shape.explanation == scientist_text("shape", "fail")  # no figures, no query text


def test_exact_results_always_wait_for_a_human(domain: rds.Domain, session: rds.Session) -> None:
    """No exact answer leaves without the owner, whatever its checks would say: a query that
    passes every check and one that fails look the same to the scientist."""
    with pytest.raises(rds.InvalidInput, match="no longer offered"):
        rds.Policy(auto_release="checked-sql")
    domain.set_policy("patients", rds.Policy(auto_release="dp", epsilon_budget=1.0))
    session._fetched = 0.0
    ds = session.dataset("patients")
    good, bad = ds.sql(BY_WARD, reason="passes"), ds.sql(SMALL_CELLS, reason="fails")
    for req in (good, bad):
        assert domain.auto_release(req.id) is None
        assert req.status == "awaiting review"
        assert domain.request(req.id).status == "submitted"  # not even run
        assert not domain.ledger.events(event="approved", request=req.id)

    def fn(df):
        return len(df)

    assert ds.request(fn, reason="python waits").status == "awaiting review"


def test_a_stored_checked_sql_policy_reads_as_dp() -> None:
    stored = rds.Policy(auto_release="dp").describe() | {"auto_release": "checked-sql"}
    assert rds.Policy.from_description(stored).auto_release == "dp"
