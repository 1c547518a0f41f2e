"""Leakage checks on what a Python function returned, each rule both ways.

The red team's shapes (a column in any container, a dict keyed by id, joined, reversed or cut
names, tensors and fake state dicts, group extremes, renamed or shifted frames) each fail on
the value-based rule, and summaries that only look like them (means, counts, describe() of a
large dataset, a model trained on the data) pass. Timings are measured in benchmarks and in
the module's docstring, not here.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import rds.checks.leakage as leakage
from rds.checks.leakage import check_output
from rds.checks.report import CheckReport
from rds.checks.sdc import SDCRules


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
            "private_values",
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
        "import sys, pandas as pd; from rds.checks.leakage import check_output; "
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


# --- private values anywhere: the red team's shapes -----------------------------------------


def _names(rng: np.random.Generator, n: int) -> list[str]:
    """Made-up names of letters only, nearly all different, as a real name column is."""
    consonants, vowels = list("bdfgklmnprstvz"), list("aeiou")

    def word(syllables: int) -> str:
        return "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables))

    return [
        f"{word(int(rng.integers(2, 4))).capitalize()} {word(int(rng.integers(3, 5))).capitalize()}"
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    """1,200 customers: sparse ids, names, a region, ages and amounts in cents."""
    rng = np.random.default_rng(11)
    n = 1_200
    return pd.DataFrame(
        {
            "customer_id": rng.choice(np.arange(100_000, 1_000_000), n, replace=False),
            "name": _names(rng, n),
            "region": pd.Categorical(rng.choice(["north", "south", "east"], n)),
            "age": rng.integers(18, 91, n),
            "amount": rng.gamma(2.0, 40.0, n).round(2),
        }
    )


def shop(value: object, customers: pd.DataFrame, **kwargs: object) -> CheckReport:
    return check_output(value, private=customers, identifying=["name", "customer_id"], **kwargs)  # type: ignore[arg-type]


def fails_on_values(value: object, frame: pd.DataFrame, column: str) -> CheckReport:
    """The report fails, and the value-based rule is one that fails, on ``column``."""
    report = shop(value, frame)
    assert report.verdict == "fail", report
    assert verdict(report, "private_values") == "fail", report
    assert numbers(report, "private_values")["columns"][column]["verdict"] == "fail", report
    return report


def test_a_column_is_found_in_any_container(customers: pd.DataFrame) -> None:
    amounts = customers.amount.sample(300, random_state=1)  # a quarter: row_count passes
    leaks = {
        "array": amounts.to_numpy(),
        "2-D array": customers[["amount", "age"]].to_numpy().reshape(40, -1),
        "float32 array": amounts.to_numpy(dtype=np.float32),
        "list": amounts.tolist(),
        "tuple": tuple(amounts),
        "set": set(amounts),
        "nested": {"a": [{"b": [x]} for x in amounts[:50]]},
        "text": "|".join(map(str, amounts)),
        "text with units": " ".join(f"${x:.2f};" for x in amounts),
        "lists in cells": customers.head(300).groupby("region", observed=True).amount.apply(list),
        "renamed column": pd.DataFrame({"total": amounts.to_numpy()}),
        "index": pd.Series(1, index=amounts.to_numpy()),
        "column labels": pd.DataFrame([range(40)], columns=amounts[:40].astype(str)),
    }
    for shape, value in leaks.items():
        report = fails_on_values(value, customers, "amount")
        figures = numbers(report, "private_values")["columns"]["amount"]
        assert figures["rare_values_found"] >= 40, shape
        assert "values of amount" in report.checks[4].explanation, shape


def test_a_copy_of_common_values_and_a_zeros_array(customers: pd.DataFrame) -> None:
    # Ages are common values (about 16 customers each), but a copy is a copy.
    report = fails_on_values(customers.age.to_numpy().reshape(30, 40), customers, "age")
    assert numbers(report, "private_values")["columns"]["age"]["copies"] == ["result"]
    zeros = shop(np.zeros((300, 3)), customers)  # 0 is a value of no column here, or many
    assert verdict(zeros, "private_values") == "pass"
    flags = customers.assign(flag=(customers.amount > 50).astype(int))
    assert verdict(check_output(np.zeros(900), private=flags), "private_values") == "pass"


def test_a_dict_keyed_by_id(customers: pd.DataFrame) -> None:
    ids = customers.customer_id
    fails_on_values({str(i): 1 for i in ids}, customers, "customer_id")
    fails_on_values({int(i): 1 for i in ids}, customers, "customer_id")  # called directly
    fails_on_values({str(i): 1 for i in ids.sample(100, random_state=2)}, customers, "customer_id")
    fails_on_values(dict(zip(map(str, ids), customers.amount, strict=True)), customers, "amount")
    # Dense ids (1..n): any integer is one, so chance explains a few; all of them do not.
    dense = customers.assign(customer_id=np.arange(1, len(customers) + 1))
    fails_on_values({str(i): 1 for i in dense.customer_id}, dense, "customer_id")
    # ids with their ages: each (key, value) pair is a record.
    pairs = shop(dict(zip(map(str, ids), customers.age.tolist(), strict=True)), customers)
    assert verdict(pairs, "private_rows") == "fail"
    assert numbers(pairs, "private_rows")["result"]["on"] == [
        "key as customer_id",
        "value as age",
    ]


def test_names_joined_into_one_string(customers: pd.DataFrame) -> None:
    names = customers.name.sample(300, random_state=3)
    for text in (
        "|".join(names),
        ", ".join(names),
        ";".join(names),
        "\n".join(names),
        ",".join(n.replace(" ", "") for n in names),  # no spaces
        "|".join(n.upper().replace(" ", "_") for n in names),
        " / ".join(n.lower() for n in names),
        "".join(names),  # run together
        "".join(n.replace(" ", "") for n in names)[::-1],
    ):
        report = fails_on_values(text, customers, "name")
        assert numbers(report, "private_values")["columns"]["name"]["kinds"]["value"] >= 250
        assert verdict(report, "identifying") == "fail"


def test_reversed_names(customers: pd.DataFrame) -> None:
    names = customers.name.sample(300, random_state=4)
    for value in (
        [n[::-1] for n in names],
        "|".join(n[::-1] for n in names),
        "|".join(names)[::-1],  # the whole string reversed
        [" ".join(w[::-1] for w in n.split()) for n in names],  # each word reversed in place
    ):
        fails_on_values(value, customers, "name")


def test_tensors_of_a_column(customers: pd.DataFrame) -> None:
    import torch

    amounts = customers.amount.to_numpy()[:300]
    for tensor in (
        torch.tensor(amounts),
        torch.tensor(amounts).reshape(30, 10),
        torch.tensor(amounts, dtype=torch.float32),
        torch.tensor(customers.customer_id.to_numpy()[:300]),
    ):
        column = "customer_id" if tensor.dtype == torch.int64 else "amount"
        fails_on_values(tensor, customers, column)


def test_a_fake_state_dict_of_private_values(customers: pd.DataFrame) -> None:
    import torch

    amounts = customers.amount.to_numpy()
    fake = collections.OrderedDict(
        [
            ("layer.weight", torch.tensor(amounts[:64], dtype=torch.float32).reshape(8, 8)),
            ("layer.bias", torch.tensor(amounts[64:72], dtype=torch.float32)),
            ("out.weight", torch.tensor(customers.age.to_numpy()[:8], dtype=torch.float32)),
        ]
    )
    report = fails_on_values(fake, customers, "amount")
    assert numbers(report, "private_values")["columns"]["amount"]["rare_values_found"] >= 70


def test_a_trained_model_and_its_state_dict_pass(customers: pd.DataFrame) -> None:
    import torch

    torch.manual_seed(0)
    x = torch.tensor(customers[["age"]].to_numpy(dtype=np.float32))
    y = torch.tensor(customers[["amount"]].to_numpy(dtype=np.float32))
    x, y = (x - x.mean()) / x.std(), (y - y.mean()) / y.std()
    model = torch.nn.Sequential(torch.nn.Linear(1, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(3):  # epochs
        for batch in torch.split(torch.randperm(len(x)), 64):
            optimiser.zero_grad()
            torch.nn.functional.mse_loss(model(x[batch]), y[batch]).backward()
            optimiser.step()
    for value in (model.state_dict(), {"weights": model.state_dict(), "loss": 0.93}):
        report = shop(value, customers)
        assert verdict(report, "private_values") == "pass", report
        assert report.verdict == "pass", report


def test_group_extremes_of_a_small_dataset_fail(customers: pd.DataFrame) -> None:
    rng = np.random.default_rng(5)
    small = pd.DataFrame(
        {"ward": rng.choice(["a", "b", "c"], 60), "age": rng.integers(18, 95, 60)}
    ).assign(amount=customers.amount[:60].to_numpy())
    by_ward = small.groupby("ward")
    # Ages are integers: only the labels pandas gives min, max and quantiles tell them apart
    # from counts that equal an age by chance.
    for value in (
        by_ward.age.describe(),
        by_ward.age.agg(["min", "max"]),
        small.age.describe(),
        by_ward[["age"]].describe(),
    ):
        fails_on_values(value, small, "age")
    # Amounts in cents: a single record's value is unlikely by chance, whatever its label.
    for value in (
        by_ward.amount.describe(),
        by_ward.amount.max().rename("top"),
        by_ward.amount.min().to_numpy(),
        by_ward.amount.first().tolist(),
        by_ward.amount.last().tolist(),
        by_ward.amount.nlargest(2).reset_index(drop=True),
        float(small.amount.max()),
    ):
        fails_on_values(value, small, "amount")


def test_describe_of_a_large_dataset_passes_when_its_extremes_are_common() -> None:
    rng = np.random.default_rng(6)
    n = 30_000
    large = pd.DataFrame(
        {
            "patient_id": np.arange(1, n + 1),  # dense: 18, 57 and 94 are ids of one patient
            "ward": pd.Categorical(rng.choice(["cardio", "onco", "neuro"], n)),
            "age": rng.integers(18, 95, n),  # every age is held by about 390 patients
        }
    )
    for value in (
        large.groupby("ward", observed=True).age.describe(),
        large.groupby("ward", observed=True).age.agg(["min", "max", "median"]),
        large.age.describe(),
    ):
        report = check_output(value, private=large, identifying=["patient_id"])
        assert report.verdict == "pass", report
    # The same with a rare maximum: one patient aged 120.
    older = large.copy()
    older.loc[17, "age"] = 120
    report = check_output(older.age.describe(), private=older, identifying=["patient_id"])
    assert verdict(report, "private_values") == "fail"
    assert numbers(report, "private_values")["columns"]["age"]["labelled"] == 1


def test_renamed_shifted_and_reordered_frames_match_records(customers: pd.DataFrame) -> None:
    head = customers.head(40)
    for frame in (
        head.rename(columns=str.upper),
        head.rename(columns=str.upper).shift(1),
        head[head.columns[::-1]].set_axis([f"c{i}" for i in range(5)], axis=1),
        head[["age", "amount"]].rename(columns={"age": "x", "amount": "y"}),
        head[["age", "amount"]].to_numpy().T,  # unnamed, one row per column
        pd.Series(head.age.to_numpy(), index=head.customer_id.astype(str).to_numpy()),
        head[["name", "amount"]]
        .assign(name=head.name.str.upper())
        .set_axis(["who", "paid"], axis=1),
    ):
        report = shop(frame, customers)
        assert verdict(report, "private_rows") == "fail", frame
        found = numbers(report, "private_rows")["result"]
        assert found["matches"] >= 30 and found["by_chance"] <= 2, found
        assert any(" as " in on for on in found["on"]), found  # matched by values


def test_counts_that_equal_dense_ids_are_not_records(customers: pd.DataFrame) -> None:
    dense = customers.assign(customer_id=np.arange(1, len(customers) + 1))
    table = dense.groupby(["region", pd.cut(dense.age, [0, 30, 50, 70, 100])], observed=True)
    counts = table.size().reset_index(name="n")  # n is read as a customer_id
    report = shop(counts, dense)
    assert verdict(report, "private_rows") == "pass", report
    assert verdict(report, "private_values") == "pass", report


def test_cut_names_and_first_names(customers: pd.DataFrame) -> None:
    names = customers.name.sample(300, random_state=7)
    for value in (
        [n[1:] for n in names],
        [n[:-1] for n in names],
        [n[2:-2] for n in names],
        "|".join(n[1:] for n in names),
        [n.split()[0] for n in names],  # first names only
        " ".join(n.split()[1].lower() for n in names),  # family names, lower case
    ):
        report = fails_on_values(value, customers, "name")
        kinds = numbers(report, "private_values")["columns"]["name"]["kinds"]
        assert kinds["word"] + kinds["cut"] >= 100, kinds


def test_rare_values_of_a_text_column_are_found(customers: pd.DataFrame) -> None:
    diagnoses = customers.assign(
        diagnosis=["flu"] * 1_000 + [f"rare syndrome {i}" for i in range(200)]
    )
    leak = "; ".join(diagnoses.diagnosis.iloc[1_000:1_050])
    report = check_output(leak, private=diagnoses)
    assert verdict(report, "private_values") == "fail"
    assert numbers(report, "private_values")["columns"]["diagnosis"]["kinds"]["value"] == 50
    common = check_output(diagnoses.diagnosis.value_counts().head(1), private=diagnoses)
    assert verdict(common, "private_values") == "pass"  # "flu" is held by 1,000


def test_summaries_pass(customers: pd.DataFrame) -> None:
    regions = customers.groupby("region", observed=True)
    x = np.column_stack([np.ones(len(customers)), customers.age.to_numpy()])
    coefficients = np.linalg.lstsq(x, customers.amount.to_numpy(), rcond=None)[0]
    for value in (
        float(customers.amount.mean()),
        round(float(customers.amount.mean()), 2),
        customers.region.value_counts(),
        regions[["age", "amount"]].mean(),
        regions[["age", "amount"]].mean().round(1),
        regions.amount.agg(["count", "mean", "std"]),
        customers[["age", "amount"]].corr(),
        {"intercept": coefficients[0], "slope": coefficients[1]},
        np.histogram(customers.age, bins=8),
    ):
        report = shop(value, customers)
        assert verdict(report, "private_values") == "pass", (value, report)
        assert "Not detected: values rounded, scaled" in report.checks[4].explanation


def test_rounded_means_of_real_data_that_equal_a_value_by_chance_pass() -> None:
    from sklearn.datasets import load_diabetes

    diabetes = load_diabetes(as_frame=True, scaled=False).frame
    by_sex = diabetes.groupby("sex")["target"]
    # 235, 207 and 149.0 are values of s1 held by fewer than 10 patients: counts and a
    # rounded mean among densely spread integers, which chance explains.
    for value in (by_sex.agg(["count", "mean"]).round(1), by_sex.mean().round(1).to_frame()):
        report = check_output(value, private=diabetes)
        assert report.verdict == "pass", report
        assert numbers(report, "private_values")["columns"]["s1"]["rare_values_found"] >= 1


def test_owner_figures_and_sampling_are_explained(
    customers: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = shop(customers.amount.sample(300, random_state=8).to_numpy(), customers)
    text = report.checks[4].explanation
    assert "300 of 300 numbers in result are values of amount" in text
    assert "held by fewer than 10 records" in text
    monkeypatch.setattr(leakage, "TEXT_ROWS", 500)  # the name column is larger than that
    names = customers.name.sample(300, random_state=9)
    sampled = shop("|".join(n.lower().replace(" ", "") for n in names), customers)
    assert verdict(sampled, "private_values") == "fail"
    assert "used a random 500 of its 1,200 values" in sampled.checks[4].explanation
    assert numbers(sampled, "private_values")["sampled"]["name"] == [500, 1200]
    exact = shop("|".join(names), customers)  # exact look-ups still see every value
    assert len(numbers(exact, "identifying")["values"]["name"]) == 100  # listed up to 100
