"""A released DP answer says how noisy each cell is, on a real domain (embedded syft, the
sandbox, OpenDP), from the released table alone."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

import rds
from rds.scientist.dp_answer import SWAMPED_AT, DPAnswer, PrivacyInfo
from tests.conftest import patients

WARDS = ["cardio", "onco", "neuro", "icu"]  # icu: declared, absent from the data


@pytest.fixture(scope="module")
def dp_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rds.Session]:
    path = tmp_path_factory.mktemp("dp") / "domain"
    domain = rds.Domain.create("DP Hospital", path=path)
    domain.publish(
        "patients",
        patients(),
        bounds={"age": (0, 120)},
        categories={"ward": WARDS},
        policy=rds.Policy(epsilon_budget=3.0, auto_release="dp"),
    )
    creds = domain.add_scientist("ada@uni.example.org")
    yield rds.connect(domain, email=creds.email, password=creds.password)
    domain.close()


def _answer(session: rds.Session, query: str, epsilon: float) -> tuple[rds.Request, DPAnswer]:
    req = session.dataset("patients").sql(query, epsilon=epsilon, reason="ward profile")
    answer = req.result(timeout=60, progress=False)
    assert isinstance(answer, DPAnswer)
    return req, answer


def test_each_cell_has_its_relative_error_from_the_released_interval(
    dp_session: rds.Session,
) -> None:
    query = "SELECT ward, COUNT(*) AS n, AVG(age) AS mean_age FROM patients GROUP BY ward"
    req, answer = _answer(dp_session, query, 1.0)
    assert list(answer.columns) == [
        "ward",
        *("n", "n_ci_low", "n_ci_high", "n_rel_error"),
        *("mean_age", "mean_age_ci_low", "mean_age_ci_high", "mean_age_rel_error"),
    ]
    assert answer.measures == ["n", "mean_age"] and answer.key_columns == ["ward"]
    for m in answer.measures:  # the released value and interval, nothing else
        half = (answer[f"{m}_ci_high"] - answer[f"{m}_ci_low"]) / 2
        expected = np.where(answer[m] == 0, np.inf, half / answer[m].abs())
        expected = np.where(answer[m].isna(), np.nan, expected)
        np.testing.assert_allclose(answer[f"{m}_rel_error"], expected)
        np.testing.assert_array_equal(
            answer.swamped[m], answer[m].isna() | (answer[f"{m}_rel_error"] >= SWAMPED_AT)
        )
    real = answer.set_index("ward").loc[["cardio", "onco", "neuro"]]  # ~133 patients each
    assert (real["n_rel_error"] < 0.5).all() and (real["mean_age_rel_error"] < 0.5).all()
    flags = answer.swamped.set_index("ward")
    assert not flags.loc[["cardio", "onco", "neuro"]].any().any()
    assert (
        answer.relative_error.set_index("ward").loc["onco", "n"] == real.loc["onco", "n_rel_error"]
    )
    assert answer.privacy == dict(req.privacy or {})

    plain = answer[answer["n"] > 0]  # what the scientist does next is plain pandas
    assert type(plain) is pd.DataFrame


def test_cells_whose_noise_swamps_the_value_are_flagged_in_the_display(
    dp_session: rds.Session,
) -> None:
    # Nobody is over 500: every count is noise around 0, each swamped with probability
    # >= 95% (its interval holds 0), so all four escape the flag with chance < 1e-5.
    query = "SELECT ward, COUNT(*) AS n FROM patients WHERE age > 500 GROUP BY ward"
    _, answer = _answer(dp_session, query, 0.5)
    flagged = int(answer.swamped["n"].sum())
    assert flagged >= 1
    html = answer._repr_html_()
    assert html.count("noise ≥ value") == flagged
    assert f"{flagged} of 4 cells: the noise is as large as the value" in html
    assert "Differentially private answer" in html and "95% interval" in html

    query = "SELECT ward, COUNT(*) AS n FROM patients GROUP BY ward"
    _, busy = _answer(dp_session, query, 0.5)
    real = busy.set_index("ward").loc[["cardio", "onco", "neuro"]]
    assert not busy.swamped.set_index("ward").loc[real.index, "n"].any()
    assert busy._repr_html_().count("noise ≥ value") == int(busy.swamped["n"].sum())


def test_privacy_and_policy_read_as_tables_and_stay_dicts(dp_session: rds.Session) -> None:
    req, _ = _answer(dp_session, "SELECT COUNT(*) AS n FROM patients", 0.2)
    privacy = req.privacy
    assert isinstance(privacy, PrivacyInfo) and isinstance(privacy, dict)
    assert privacy["mechanism"] == "laplace" and set(privacy["noise_scale"]) == {"n"}
    html = privacy._repr_html_()
    assert "ε spent" in html and "<td>n</td>" in html
    assert f"{privacy['noise_scale']['n']:.6g}" in html

    policy = dp_session.dataset("patients").policy
    assert isinstance(policy, dict) and policy["epsilon_budget"] == 3.0
    html = policy._repr_html_()
    assert "Release policy" in html and "your ε budget for differentially private queries" in html
    assert "<td>epsilon_budget</td>" in html and "min_cell_count" in html
