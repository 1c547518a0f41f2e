"""The scientist's kernel API end to end against an embedded domain (real syft, real bwrap)."""

from __future__ import annotations

import pandas as pd
import pytest

import rds


def mean_age(df):
    return float(df["age"].mean())


def test_datasets_metadata_and_mock(session: rds.Session, private_frame: pd.DataFrame) -> None:
    listing = session.datasets.to_frame()
    assert list(listing["name"]) == ["patients"]
    assert listing.loc[0, "rows"] == len(private_frame)
    assert listing.loc[0, "description"] == "Synthetic admissions"
    ds = session.dataset("patients")
    schema = ds.schema.set_index("name")
    assert list(schema.index) == list(private_frame.columns)
    assert schema.loc["age", "bounds"] == [0.0, 120.0]
    assert schema.loc["age", "dtype"] == "int64"
    # Functions see the owner's own dtypes, in the mock as in the sandbox.
    assert schema.loc["ward", "dtype"] == "object"
    assert ds.mock["ward"].dtype == object
    assert ds.policy["release"] == "manual review by the data owner"
    assert ds.contact == "owner@test-hospital.example.org"
    assert list(ds.mock.columns) == list(private_frame.columns)
    assert not set(ds.mock["patient_id"]) & set(private_frame["patient_id"])


def test_request_released_end_to_end(
    domain: rds.Domain, session: rds.Session, private_frame: pd.DataFrame
) -> None:
    req = session.dataset("patients").request(mean_age, reason="age profile")
    assert isinstance(req.mock_result, float)
    assert req.status == "awaiting review"  # embedded: picked up at submit

    owner_req = domain.requests[-1]
    assert owner_req.id == req.id
    assert owner_req.scientist == "ada@uni.example.org"
    assert owner_req.dataset == "patients" and owner_req.kind == "python"
    assert owner_req.reason == "age profile"
    assert "def mean_age(df):" in owner_req.code
    assert owner_req.status == "submitted"

    preview = owner_req.run()
    assert preview.ok and preview.sandboxed
    assert preview.result == pytest.approx(private_frame["age"].mean())
    assert owner_req.status == "ran"
    assert req.status == "awaiting review"

    owner_req.approve(note="aggregate over 400 patients")
    assert owner_req.status == "released"
    assert req.status == "released"
    assert req.result(timeout=30, progress=False) == pytest.approx(private_frame["age"].mean())

    events = [e.event for e in domain.ledger.entries()]
    assert events[-4:] == ["submitted", "ran", "approved", "released"]
    [approval] = domain.ledger.events(event="approved", request=req.id)
    assert approval.actor == domain.owner
    assert approval.data["note"] == "aggregate over 400 patients"
    assert domain.ledger.verify() == len(events)


def test_dataframe_result_and_logs_stay_with_owner(
    domain: rds.Domain, session: rds.Session
) -> None:
    def by_ward(df):
        print("SECRET-STDOUT rows:", len(df))
        return df.groupby("ward")["los_days"].mean().reset_index()

    req = session.dataset("patients").request(by_ward, reason="length of stay per ward")
    owner_req = domain.request(req.id)
    preview = owner_req.run()
    assert "SECRET-STDOUT" in preview.stdout
    owner_req.approve()
    table = req.result(timeout=30, progress=False)
    assert isinstance(table, pd.DataFrame)
    assert sorted(table["ward"]) == ["cardio", "neuro", "onco"]
    assert req.logs == (None, None)


def test_logs_released_only_when_owner_says_so(domain: rds.Domain, session: rds.Session) -> None:
    def noisy(df):
        print("hello from the sandbox")
        return 1

    req = session.dataset("patients").request(noisy, reason="x")
    owner_req = domain.request(req.id)
    owner_req.run()
    owner_req.approve(release_logs=True)
    assert req.result(timeout=30, progress=False) == 1
    assert "hello from the sandbox" in (req.logs[0] or "")


def test_denied_request_raises_with_reason(domain: rds.Domain, session: rds.Session) -> None:
    req = session.dataset("patients").request(mean_age, reason="x")
    owner_req = domain.request(req.id)
    with pytest.raises(rds.InvalidInput):
        owner_req.deny("   ")
    owner_req.deny("Too fine-grained for this dataset")
    with pytest.raises(rds.RequestDenied) as caught:
        req.result(timeout=30, progress=False)
    assert caught.value.reason == "Too fine-grained for this dataset"
    assert domain.ledger.events(event="denied", request=req.id)[0].data["reason"].startswith("Too")
    with pytest.raises(rds.RequestStateError, match="already denied"):
        owner_req.approve()


def test_failure_on_private_data_gives_safe_summary(
    domain: rds.Domain, session: rds.Session
) -> None:
    def fails_on_private(df):
        if len(df) > 300:  # the mock is smaller than the private table
            raise ValueError("private detail: P-SECRET-00001 has an odd value")
        return 0

    req = session.dataset("patients").request(fails_on_private, reason="x")
    owner_req = domain.request(req.id)
    preview = owner_req.run()
    assert not preview.ok and "P-SECRET-00001" in (preview.error or "")
    owner_req.approve()
    with pytest.raises(rds.RequestFailed) as caught:
        req.result(timeout=30, progress=False)
    assert caught.value.summary == "ValueError"
    assert "P-SECRET" not in str(caught.value)


def test_function_failing_on_mock_is_not_submitted(
    domain: rds.Domain, session: rds.Session
) -> None:
    def broken(df):
        return df["no_such_column"].sum()

    with pytest.raises(rds.MockRunFailed, match="KeyError"):
        session.dataset("patients").request(broken, reason="x")
    assert domain.requests == []


def test_notebook_globals_are_caught_on_the_mock(session: rds.Session) -> None:
    threshold = 50

    def uses_global(df):
        return int((df["age"] > threshold).sum())

    with pytest.raises(rds.MockRunFailed, match="import what it uses"):
        session.dataset("patients").request(uses_global, reason="x")


def test_bad_requests_are_refused(session: rds.Session) -> None:
    ds = session.dataset("patients")
    with pytest.raises(rds.InvalidInput, match="reason"):
        ds.request(mean_age, reason="")
    with pytest.raises(rds.InvalidInput, match="Lambdas"):
        ds.request(lambda df: 1, reason="x")

    def two_args(df, other):
        return 1

    with pytest.raises(rds.InvalidInput, match="exactly one argument"):
        ds.request(two_args, reason="x")


def test_unknown_dataset_lists_available(session: rds.Session) -> None:
    with pytest.raises(rds.DatasetNotFound) as caught:
        session.dataset("patiens")
    assert caught.value.available == ["patients"]
    assert "patients" in str(caught.value)


def test_wrong_password(domain: rds.Domain, scientist: rds.Credentials) -> None:
    with pytest.raises(rds.AuthenticationFailed):
        rds.connect(domain, email=scientist.email, password="not-the-password")


def test_unreachable_domain() -> None:
    from tests.conftest import free_port

    with pytest.raises(rds.DomainUnreachable, match="rds domain start"):
        rds.connect(f"http://127.0.0.1:{free_port()}", email="a@b.example.org", password="x")


def test_result_timeout(session: rds.Session) -> None:
    req = session.dataset("patients").request(mean_age, reason="x")
    with pytest.raises(rds.RequestTimeout, match="still awaiting review"):
        req.result(timeout=0.5, poll=0.1, progress=False)


def test_a_result_that_cannot_cross_the_boundary_is_refused_on_the_mock(
    domain: rds.Domain, session: rds.Session
) -> None:
    import matplotlib

    matplotlib.use("Agg")

    def wards(df):
        return set(df["ward"])

    def plot(df):
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots()
        axes.hist(df["age"])
        return figure

    before = len(domain.requests)
    with pytest.raises(rds.MockRunFailed, match=r"returned a set.*sorted\(\.\.\.\)"):
        session.dataset("patients").request(wards, reason="which wards")
    with pytest.raises(rds.MockRunFailed, match=r"matplotlib.*return the numbers it shows"):
        session.dataset("patients").request(plot, reason="a histogram")
    assert len(domain.requests) == before  # neither was submitted
