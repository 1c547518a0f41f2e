"""Leakage checks on what a Python function returned, each rule both ways."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from rds.privacy.leakage import check_output
from rds.privacy.report import CheckReport
from rds.privacy.sdc import SDCRules


@pytest.fixture(scope="module")
def private() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 400
    return pd.DataFrame(
        {
            "patient_id": np.arange(100_000, 100_000 + n),
            "name": [f"Given{i} Family{i}" for i in range(n)],
            "ward": pd.Categorical(rng.choice(["cardio", "onco", "neuro"], n)),
            "age": rng.integers(18, 95, n),
            "cost": rng.gamma(2.0, 300.0, n).round(2),
        }
    )


def verdict(report: CheckReport, rule: str) -> str:
    return {c.rule: c.verdict for c in report.checks}[rule]


def numbers(report: CheckReport, rule: str) -> dict:
    return {c.rule: c.numbers for c in report.checks}[rule]


def check(value: object, private: pd.DataFrame, **kwargs: object) -> CheckReport:
    return check_output(value, private=private, identifying=["name", "patient_id"], **kwargs)  # type: ignore[arg-type]


def test_a_summary_passes_every_check(private: pd.DataFrame) -> None:
    summary = private.groupby("ward", observed=True).agg(
        mean_age=("age", "mean"), n=("age", "size")
    )
    for value in (summary, float(private.age.mean()), {"mean": 47.5, "hist": [120, 130, 150]}):
        report = check(value, private)
        assert report.verdict == "pass", report
        assert [c.rule for c in report.checks] == [
            "types",
            "size",
            "private_rows",
            "identifying",
            "row_count",
            "small_cells",
        ]


def test_types(private: pd.DataFrame) -> None:
    assert verdict(check(np.ones(3), private), "types") == "pass"
    assert verdict(check({"a": [1, "x", None], "b": (np.float32(2),)}, private), "types") == "pass"
    refused = check({"fine": 1.0, "odd": {1, 2}, "bytes": [b"x"]}, private)
    assert verdict(refused, "types") == "fail"
    assert numbers(refused, "types")["types"] == ["bytes", "set"]


def test_a_tensor_is_checked_like_an_array(private: pd.DataFrame) -> None:
    import torch

    leak = torch.tensor(private[["age", "cost"]].to_numpy()[:5], dtype=torch.float64)
    assert verdict(check(leak, private), "types") == "pass"
    small = torch.tensor([3, 400, 2])
    assert verdict(check(small, private), "small_cells") == "warn"


def test_checking_a_frame_does_not_import_torch() -> None:
    code = (
        "import sys, pandas as pd; from rds.privacy.leakage import check_output; "
        "frame = pd.DataFrame({'a': [1]}); "
        "check_output({'x': frame, 'y': [1.5]}, private=frame); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_size_against_the_limit(private: pd.DataFrame) -> None:
    assert (
        verdict(check(1.0, private, payload_bytes=10, output_limit_bytes=2**20), "size") == "pass"
    )
    over = check(1.0, private, payload_bytes=2**21, output_limit_bytes=2**20)
    assert verdict(over, "size") == "fail"
    assert "1 MiB" in over.checks[1].explanation
    assert verdict(check(1.0, private, payload_bytes=2**30), "size") == "pass"  # no limit


def test_private_rows_in_tables_records_and_arrays(private: pd.DataFrame) -> None:
    report = check(private.head(3), private)
    assert verdict(report, "private_rows") == "fail"
    assert numbers(report, "private_rows")["result"]["rows"] == [0, 1, 2]
    few = private[["ward", "age", "cost"]].sample(5, random_state=1).reset_index(drop=True)
    assert verdict(check(few, private), "private_rows") == "fail"
    as_float = private[["age", "cost"]].head(4).astype({"age": float})  # 45 == 45.0
    assert verdict(check(as_float, private), "private_rows") == "fail"
    records = {"rows": private.head(2).to_dict("records")}
    assert numbers(check(records, private), "private_rows")["result[0]"]["matches"] == 2
    array = private[["age", "cost"]].to_numpy()[:7]
    assert verdict(check(array, private[["age", "cost"]]), "private_rows") == "fail"
    indexed = private.set_index("name")[["age"]].head(3)  # shared via the index
    assert verdict(check(indexed, private), "private_rows") == "fail"


def test_group_keys_and_aggregates_are_not_records(private: pd.DataFrame) -> None:
    keys = private.groupby(["ward"], observed=True).size().reset_index(name="n")
    assert verdict(check(keys, private), "private_rows") == "pass"
    common = pd.DataFrame({"ward": ["onco"] * 3, "age": [0, 0, 0]})
    assert verdict(check(common, private), "private_rows") == "pass"
    means = private.groupby("ward", observed=True)[["age", "cost"]].mean().reset_index()
    assert verdict(check(means, private), "private_rows") == "pass"
    one_column = private[["cost"]].head(5)  # one shared column is not a record
    assert verdict(check(one_column, private), "private_rows") == "pass"


def test_identifying_text_is_found_anywhere(private: pd.DataFrame) -> None:
    name = private.name[17]
    leaks = [
        f"The oldest patient is {name}, aged 94.",
        {"by person": {name: 3.0}},
        pd.DataFrame({"who": [name.upper()], "n": [1]}),
        pd.Series([1.0], index=[name.lower()]),
        pd.DataFrame({name: [1.0]}),
        ["a", "b", f"({name})"],
        np.array([["x", name]]),
    ]
    for value in leaks:
        report = check(value, private)
        assert verdict(report, "identifying") == "fail", value
        assert numbers(report, "identifying")["values"]["name"] == [name]
        assert name.lower() not in json.dumps(report.for_scientist().to_dict()).lower()
    assert (
        verdict(check("Given17 and Family18 are different people", private), "identifying")
        == "pass"
    )


def test_numeric_identifiers_only_under_their_name(private: pd.DataFrame) -> None:
    ids = private.patient_id.head(2).tolist()
    assert verdict(check(pd.DataFrame({"patient_id": ids}), private), "identifying") == "fail"
    assert (
        verdict(
            check(pd.Series([2.0, 3.0], index=pd.Index(ids, name="patient_id")), private),
            "identifying",
        )
        == "fail"
    )
    assert verdict(check({"patient_id": ids, "x": [1, 2]}, private), "identifying") == "fail"
    assert verdict(check(pd.DataFrame({"total": ids}), private), "identifying") == "pass"
    assert verdict(check(float(ids[0]), private), "identifying") == "pass"


def test_row_count(private: pd.DataFrame) -> None:
    n = len(private)
    assert verdict(check(np.zeros(n), private), "row_count") == "fail"
    assert verdict(check(private.age.head(int(n * 0.9)), private), "row_count") == "fail"
    assert verdict(check(list(range(int(n * 0.6))), private), "row_count") == "warn"
    assert verdict(check(np.zeros((int(n * 0.4), 3)), private), "row_count") == "pass"
    tiny = private.head(10)
    assert verdict(check(np.zeros(10), tiny), "row_count") == "pass"  # too few rows to judge


def test_small_cells(private: pd.DataFrame) -> None:
    counts = pd.Series({"cardio": 150, "onco": 3, "neuro": 247})
    report = check(counts, private)
    assert verdict(report, "small_cells") == "warn"
    assert numbers(report, "small_cells") == {"small": 1, "zeros": 0, "where": ["result"]}
    assert "3" not in report.checks[-1].explanation.replace("between 1 and 9", "")
    assert verdict(check(pd.Series({"a": 150, "b": 250}), private), "small_cells") == "pass"
    zeros = check(pd.DataFrame({"ward": ["a", "b"], "n": [0, 400]}), private)
    assert numbers(zeros, "small_cells")["zeros"] == 1
    assert (
        verdict(
            check(
                pd.DataFrame({"ward": ["a"], "n": [0]}), private, rules=SDCRules(zeros_fail=False)
            ),
            "small_cells",
        )
        == "pass"
    )
    assert verdict(check(pd.Series([2.5, 7.25]), private), "small_cells") == "pass"  # not counts
    assert verdict(check(np.array([1e6, 3.0]), private), "small_cells") == "pass"  # > n rows
    assert verdict(check(4, private), "small_cells") == "warn"
    assert verdict(check(True, private), "small_cells") == "pass"


def test_nested_outputs_are_checked_element_by_element(private: pd.DataFrame) -> None:
    value = {"summary": 47.1, "rows": private.head(2), "more": [1.0, {"x": private.age.to_numpy()}]}
    report = check(value, private)
    assert set(numbers(report, "private_rows")) == {"result[1]"}
    assert numbers(report, "row_count")["output_rows"]["result[2][1][0]"] == len(private)
    assert verdict(report, "row_count") == "fail"
    explained = " ".join(c.explanation for c in report.checks)
    assert "summary" not in explained and "more" not in explained  # positions, not keys


@pytest.mark.slow
def test_ten_million_private_rows_are_checked_quickly() -> None:
    n = 10_000_000
    rng = np.random.default_rng(0)
    big = pd.DataFrame(
        {
            "patient_id": np.arange(n),
            "ward": pd.Categorical(rng.choice(["cardio", "onco", "neuro"], n)),
            "age": rng.integers(18, 95, n),
            "cost": rng.random(n),
            "name": pd.Series(np.arange(n).astype(str), dtype=object),
        }
    )
    timings = {}
    for label, value in {
        "five records": big.head(5),
        "group keys": big.groupby(["ward", "age"], observed=True).size().reset_index(name="n"),
        "text": "patient 123456 was here",
    }.items():
        start = time.perf_counter()
        report = check_output(value, private=big, identifying=["name"])
        timings[label] = time.perf_counter() - start
        assert report.verdict == ("pass" if label == "group keys" else "fail"), (label, report)
    print({k: f"{v / 10:.3f} s per million rows" for k, v in timings.items()})
    assert max(timings.values()) < 0.5 * n / 1e6, timings  # half a second per million
