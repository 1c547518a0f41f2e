"""Publishing from DataFrames and files, with clear errors on bad input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import rds


def test_publish_csv_and_parquet(
    domain: rds.Domain, tmp_path: Path, private_frame: pd.DataFrame
) -> None:
    private_frame.to_csv(tmp_path / "p.csv", index=False)
    private_frame.to_parquet(tmp_path / "p.parquet")
    meta = domain.publish("from_csv", tmp_path / "p.csv", description="csv")
    assert meta["rows"] == len(private_frame)
    domain.publish("from_parquet", str(tmp_path / "p.parquet"))
    assert domain.store.read("from_parquet")["age"].tolist() == private_frame["age"].tolist()
    assert set(domain.datasets["name"]) == {"patients", "from_csv", "from_parquet"}
    assert [e.data["dataset"] for e in domain.ledger.events(event="published")] == [
        "patients",
        "from_csv",
        "from_parquet",
    ]


def test_malformed_csv(domain: rds.Domain, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,4,5\n6\n")
    with pytest.raises(rds.InvalidInput, match="not a well-formed CSV"):
        domain.publish("bad", bad)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "has space"}, "Invalid dataset name"),
        ({"name": "patients"}, "already published"),
        ({"data": 42}, "DataFrame or a CSV/Parquet path"),
        ({"data": "/no/such/file.csv"}, "No file"),
        ({"data": pd.DataFrame()}, "no rows"),
        ({"bounds": {"age": (0, 50)}}, "outside the declared bounds"),
        ({"bounds": {"ward": (0, 1)}}, "numeric and date columns"),
        ({"bounds": {"nope": (0, 1)}}, "unknown columns"),
        ({"mock": pd.DataFrame({"x": [1]})}, "columns"),
        ({"data": pd.DataFrame({"Age": [1, 2], "age": [3, 4]})}, "differ only in case"),
    ],
)
def test_publish_refuses_bad_input(
    domain: rds.Domain, private_frame: pd.DataFrame, kwargs: dict, match: str
) -> None:
    args = {"name": "other", "data": private_frame, **kwargs}
    with pytest.raises(rds.InvalidInput, match=match):
        domain.publish(args.pop("name"), args.pop("data"), **args)


def test_explicit_mock_is_used(domain: rds.Domain, private_frame: pd.DataFrame) -> None:
    mock = private_frame.head(0).copy()
    mock.loc[0] = ["P-MOCK", 40, "cardio", 1.0]
    domain.publish("with_mock", private_frame, mock=mock)
    creds = domain.add_scientist("m@lab.example.org")
    s = rds.connect(domain, email=creds.email, password=creds.password)
    assert s.dataset("with_mock").mock["patient_id"].tolist() == ["P-MOCK"]
