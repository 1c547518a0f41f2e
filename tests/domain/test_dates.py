"""Dates from a CSV stay dates: published, stored, mocked, queried, checked and DP-counted.

A column ``admitted=2023-09-04`` used to be published as text and mocked as
``category_1/2/3``, so ``pd.to_datetime(df["admitted"])`` failed on the mock and the
request could never be submitted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rds

DAYS = pd.date_range("2023-01-01", "2024-06-30", freq="D")


def _admissions(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    admitted = pd.Series(rng.choice(DAYS, n)).dt.strftime("%Y-%m-%d")
    admitted[5] = None
    return pd.DataFrame(
        {
            "patient_id": [f"P-{i:04d}" for i in range(n)],
            "admitted": admitted,
            "seen_at": (
                pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s")
            ).strftime("%Y-%m-%d %H:%M:%S"),
            "ward": rng.choice(["cardio", "onco", "neuro"], n),
            "age": rng.integers(18, 95, n),
        }
    )


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "admissions.csv"
    _admissions().to_csv(path, index=False)
    return path


@pytest.fixture
def dated(tmp_path: Path, csv: Path) -> Iterator[tuple[rds.Domain, rds.Session]]:
    with rds.Domain.create("Dates", path=tmp_path / "domain") as domain:
        domain.publish(
            "admissions",
            csv,
            bounds={"age": (0, 120), "admitted": ("2023-01-01", "2024-12-31")},
            categories={"ward": ["cardio", "onco", "neuro"]},
            policy=rds.Policy(epsilon_budget=5.0),
        )
        creds = domain.add_scientist("ada@uni.example.org")
        yield domain, rds.connect(domain, email=creds.email, password=creds.password)


def test_iso_dates_in_a_csv_are_published_stored_and_mocked_as_dates(
    dated: tuple[rds.Domain, rds.Session], csv: Path
) -> None:
    domain, session = dated
    private = pd.read_csv(csv)
    stored = domain.store.read("admissions")
    assert pd.api.types.is_datetime64_any_dtype(stored["admitted"])
    assert pd.api.types.is_datetime64_any_dtype(stored["seen_at"])
    assert stored["admitted"].isna().sum() == 1
    ds = session.dataset("admissions")
    kinds = dict(zip(ds.schema["name"], ds.schema["dtype"], strict=True))
    assert kinds["admitted"].startswith("datetime64") and kinds["ward"] == "object"
    mock = ds.mock
    assert pd.api.types.is_datetime64_any_dtype(mock["admitted"])
    days = mock["admitted"].dropna()
    real = pd.to_datetime(private["admitted"]).dropna()
    assert real.min() <= days.min() and days.max() <= real.max()  # within the private range
    assert (days == days.dt.normalize()).all()  # dates stay dates, not times of day
    assert not set(days) & set(real)  # and none is a real admission date
    seen = mock["seen_at"]
    assert (seen == seen.dt.floor("s")).all()  # timestamps kept to the second they have
    assert not set(seen) & set(pd.to_datetime(private["seen_at"]))

    def by_year(df):
        return df.groupby(pd.to_datetime(df["admitted"]).dt.year).size()

    req = ds.request(by_year, reason="admissions per year")  # runs on the mock first
    preview = domain.request(req.id).run()
    assert preview.ok, preview.error
    expected = pd.to_datetime(private["admitted"]).dt.year.value_counts().sort_index()
    assert preview.result.to_dict() == expected.to_dict()


def test_parse_dates_and_declared_types(tmp_path: Path) -> None:
    path = tmp_path / "visits.csv"
    frame = pd.DataFrame(
        {
            "day": ["04/09/2023", "05/09/2023"] * 20,
            "iso": ["2023-09-04"] * 40,
            "n": [str(i) for i in range(40)],
        }
    )
    frame.to_csv(path, index=False)
    with rds.Domain.create("Types", path=tmp_path / "domain") as domain:
        meta = domain.publish("kept", path, parse_dates=False)
        assert meta["dates"] == [] and domain.store.read("kept")["iso"].dtype == object
        meta = domain.publish("parsed", path, parse_dates=["day"], dtypes={"n": "float"})
        assert meta["dates"] == ["day", "iso"]
        stored = domain.store.read("parsed")
        assert pd.api.types.is_datetime64_any_dtype(stored["day"]) and stored["n"].dtype == float
        meta = domain.publish("european", path, parse_dates={"day": "%d/%m/%Y"})
        assert domain.store.read("european")["day"].dt.month.unique().tolist() == [9]
        with pytest.raises(rds.InvalidInput, match="'n' cannot be read as date"):
            domain.publish("bad", frame.assign(n=["x"] * 40), dtypes={"n": "date"})
        with pytest.raises(rds.InvalidInput, match="unknown columns"):
            domain.publish("bad", path, parse_dates=["nope"])
        with pytest.raises(rds.InvalidInput, match="outside the declared bounds"):
            domain.publish("bad", path, bounds={"iso": ("2024-01-01", "2024-12-31")})


def test_sql_on_dates_and_the_checks_on_their_extremes(
    dated: tuple[rds.Domain, rds.Session],
) -> None:
    domain, session = dated
    ds = session.dataset("admissions")
    by_year = ds.sql(
        "SELECT year(admitted) AS y, COUNT(*) AS n FROM admissions GROUP BY y ORDER BY y",
        reason="per year",
    )
    preview = domain.request(by_year.id).run()
    assert preview.ok and list(preview.result["y"].dropna()) == [2023, 2024]
    first = ds.sql("SELECT MIN(admitted) AS first FROM admissions", reason="first day")
    report = domain.request(first.id).run().checks
    assert "extreme_values" in [c.rule for c in report.failed]


def test_a_python_result_holding_real_dates_is_caught(
    dated: tuple[rds.Domain, rds.Session],
) -> None:
    domain, session = dated
    ds = session.dataset("admissions")

    def dates(df):
        return df["admitted"].head(40)

    def written(df):
        return {"first": str(df["admitted"].min())}

    def copied(df):
        return df[["admitted", "ward"]]

    def monthly(df):
        return df.groupby(pd.Grouper(key="admitted", freq="MS")).size()

    verdicts = {}
    for fn in (dates, written, copied, monthly):
        verdicts[fn.__name__] = domain.request(ds.request(fn, reason="x").id).run().checks.verdict
    assert verdicts["dates"] != "pass"
    assert verdicts["written"] == "fail"  # a real date written into a string
    assert verdicts["copied"] == "fail"
    assert verdicts["monthly"] == "pass"  # month starts are real dates only by chance


def test_dp_counts_by_date_bucket_and_with_a_date_condition(
    dated: tuple[rds.Domain, rds.Session],
) -> None:
    domain, session = dated
    ds = session.dataset("admissions")
    req = ds.sql(
        "SELECT date_trunc('quarter', admitted) AS quarter, COUNT(*) AS n FROM admissions "
        "WHERE admitted >= '2023-04-01' GROUP BY quarter ORDER BY quarter",
        epsilon=0.5,
        reason="admissions per quarter",
    )
    preview = domain.request(req.id).run()
    assert preview.ok and preview.checks.verdict == "pass"
    # Every quarter between the declared bounds, data or not: 2024-07 and 2024-10 have none.
    quarters = ["2023-01", "2023-04", "2023-07", "2023-10", "2024-01", "2024-04", "2024-07"]
    assert list(preview.result["quarter"]) == [*quarters, "2024-10"]
    assert abs(preview.result["n"].iloc[0]) < 30  # before the WHERE's first day: noise only
    with pytest.raises(rds.InvalidInput, match="date column with bounds"):
        ds.sql(
            "SELECT date_trunc('month', seen_at) AS m, COUNT(*) FROM admissions GROUP BY m",
            epsilon=0.5,
            reason="x",
        )
    with pytest.raises(rds.InvalidInput, match="AS <name>"):
        ds.sql(
            "SELECT COUNT(*) FROM admissions GROUP BY date_trunc('month', admitted)",
            epsilon=0.5,
            reason="x",
        )


# Found by a red team: records with real dates passed when the date sat in a MultiIndex
# level or was a datetime.date object (``.dt.date``).
def dates_as_date_objects(df):
    return df["admitted"].head(40).dt.date


def records_with_date_objects(df):
    return pd.DataFrame({"d": df["admitted"].dt.date, "age": df["age"]}).head(40)


def records_in_a_multiindex(df):
    return df.set_index(["ward", "admitted"])["age"].head(40)


def records_in_a_multiindex_frame(df):
    return df.set_index(["age", "admitted"])[["ward"]].head(40)


@pytest.mark.parametrize(
    "fn",
    [
        dates_as_date_objects,
        records_with_date_objects,
        records_in_a_multiindex,
        records_in_a_multiindex_frame,
    ],
    ids=lambda f: f.__name__,
)
def test_records_with_dates_in_other_shapes_do_not_pass(
    dated: tuple[rds.Domain, rds.Session], fn: object
) -> None:
    domain, session = dated
    ds = session.dataset("admissions")
    preview = domain.request(ds.request(fn, reason="x").id).run()  # type: ignore[arg-type]
    assert preview.checks.verdict != "pass", (getattr(fn, "__name__", fn), preview.result)


def test_bounds_on_a_zoned_date_column_leave_dp_working(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    days = pd.Series(pd.to_datetime(rng.choice(pd.date_range("2023-01-01", "2024-12-30"), 200)))
    frame = pd.DataFrame(
        {"seen": days.dt.tz_localize("Europe/Paris"), "age": rng.integers(18, 90, 200)}
    )
    with rds.Domain.create("TZ", path=tmp_path / "d") as domain:
        domain.publish(
            "visits",
            frame,
            bounds={"age": (0, 120), "seen": ("2023-01-01", "2024-12-31")},
            policy=rds.Policy(epsilon_budget=5.0),
        )
        creds = domain.add_scientist("ada@uni.example.org")
        session = rds.connect(domain, email=creds.email, password=creds.password)
        req = session.dataset("visits").sql(
            "SELECT COUNT(*) AS n FROM visits", epsilon=0.5, reason="n"
        )
        assert domain.request(req.id).run().ok
