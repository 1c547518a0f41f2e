"""The synthesized mock keeps the schema and marginals but no real row or rare value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

from rds.dataset.mock import synthesize_mock


def _shared_rows(mock: pd.DataFrame, private: pd.DataFrame) -> int:
    keys = pd.util.hash_pandas_object(private, index=False)
    return int(pd.util.hash_pandas_object(mock, index=False).isin(keys).sum())


def test_real_tables_keep_schema_and_share_no_row() -> None:
    for loader in (load_breast_cancer, load_diabetes):
        private = loader(as_frame=True).frame
        mock = synthesize_mock(private, seed=3)
        assert list(mock.columns) == list(private.columns)
        assert mock.dtypes.equals(private.dtypes)
        assert len(mock) == 200
        assert _shared_rows(mock, private) == 0
        # rough marginals: means within a quarter of a standard deviation
        for col in private.columns[:5]:
            assert abs(mock[col].mean() - private[col].mean()) < 0.25 * private[col].std()


def test_small_domains_never_reproduce_a_private_row() -> None:
    rng = np.random.default_rng(0)
    private = pd.DataFrame(
        {"a": rng.integers(0, 2, 500), "b": rng.integers(0, 3, 500), "c": rng.integers(0, 2, 500)}
    )
    # Every combination exists privately: no mock row can avoid them, so none is kept,
    # and the owner is told to supply a mock.
    with pytest.warns(UserWarning, match="Pass mock="):
        mock = synthesize_mock(private, seed=1)
    assert _shared_rows(mock, private) == 0
    # With one continuous column beside them, the mock keeps its size and still no row.
    private["weight"] = rng.normal(70, 12, 500).round(1)
    mock = synthesize_mock(private, seed=1)
    assert len(mock) == 200 and _shared_rows(mock, private) == 0


def test_rare_categories_and_extremes_do_not_appear() -> None:
    rng = np.random.default_rng(1)
    private = pd.DataFrame(
        {
            "diagnosis": ["flu"] * 300 + ["cold"] * 195 + ["kuru", "fatal-insomnia"] + ["x"] * 3,
            "income": np.r_[rng.normal(40_000, 5_000, 499), [9_999_999.0]],
        }
    )
    mock = synthesize_mock(private, rows=1000, seed=2)
    assert set(mock["diagnosis"]) <= {"flu", "cold"}
    assert mock["income"].max() < 1_000_000


def test_nulls_are_kept_at_their_rate() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(0, 1, 1000)
    values[::2] = np.nan
    private = pd.DataFrame({"v": values, "w": rng.normal(5, 1, 1000)})
    mock = synthesize_mock(private, rows=1000, seed=0)
    assert 0.4 < mock["v"].isna().mean() < 0.6


def test_categorical_dtype_does_not_carry_rare_categories() -> None:
    private = pd.DataFrame(
        {"dx": pd.Categorical(["flu"] * 50 + ["kuru"]), "w": np.linspace(50, 90, 51)}
    )
    mock = synthesize_mock(private, rows=100, seed=0)
    assert "kuru" not in set(mock["dx"].astype(str))
    assert "kuru" not in str(mock.dtypes.to_dict())


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", [None, "UTC", "Europe/Paris"])
def test_dates_and_durations_of_any_unit_keep_their_range_and_type(
    unit: str, tz: str | None
) -> None:
    """Drawn in the column's own unit: seconds read as nanoseconds gave dates in 1970, and
    durations became the strings 'category_1', ... (a mock no query of the real one runs on)."""
    n = 400
    when = pd.date_range("2024-01-01", periods=n, freq="h", tz=tz)
    private = pd.DataFrame(
        {
            "t": when.astype(f"datetime64[{unit}, {tz}]" if tz else f"datetime64[{unit}]"),
            "d": pd.to_timedelta(np.arange(n), unit="s").astype(f"timedelta64[{unit}]"),
        }
    )
    mock = synthesize_mock(private, seed=1)
    assert pd.api.types.is_datetime64_any_dtype(mock["t"])
    assert str(getattr(mock["t"].dtype, "tz", None)) == str(tz)
    assert pd.api.types.is_timedelta64_dtype(mock["d"])
    assert private["t"].min() <= mock["t"].min() <= mock["t"].max() <= private["t"].max()
    assert private["d"].min() <= mock["d"].min() <= mock["d"].max() <= private["d"].max()
