"""Check reports: verdicts, the scientist's view, and the JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rds.checks.report import SCIENTIST_TEXT, Check, CheckReport, scientist_text
from rds.errors import InvalidInput

SMALL = Check(
    "threshold", "fail", "1 of 4 cells has fewer than 10 records.", {"cells": [[2, "n", 3]]}
)
DOMINANT = Check("dominance", "warn", "1 of 4 cells was suppressed.", {"share": 0.97})
FINE = Check("zeros", "pass", "None of the 4 cells is zero.")


def test_the_verdict_is_the_worst_check() -> None:
    assert CheckReport(()).verdict == "pass"
    assert CheckReport((FINE,)).verdict == "pass"
    assert CheckReport((FINE, DOMINANT)).verdict == "warn"
    report = CheckReport((DOMINANT, SMALL, FINE))
    assert report.verdict == "fail"
    assert report.failed == (SMALL,)
    assert report.warned == (DOMINANT,)


@pytest.mark.parametrize("verdict", ["ok", "FAIL", "", None, "review"])
def test_only_three_verdicts_exist(verdict: object) -> None:
    with pytest.raises(InvalidInput, match="pass"):
        Check("threshold", verdict, "x")  # type: ignore[arg-type]


def test_numbers_are_stored_as_plain_json() -> None:
    check = Check(
        "dominance",
        "fail",
        "x",
        {"share": np.float64(0.95), "n": np.int64(3), "cells": ((1, "a"),), "nan": float("nan")},
    )
    assert check.numbers == {"share": 0.95, "n": 3, "cells": [[1, "a"]], "nan": None}
    assert type(check.numbers["n"]) is int
    json.dumps(check.numbers, allow_nan=False)


def test_the_scientist_sees_verdicts_and_fixed_sentences_only() -> None:
    """No figure from the data reaches the scientist through a check: the owner's
    explanation (with its counts) is replaced by the rule's fixed sentence."""
    report = CheckReport((SMALL, DOMINANT, FINE))
    seen = report.for_scientist()
    assert [c.numbers for c in seen.checks] == [{}, {}, {}]
    assert [(c.rule, c.verdict) for c in seen.checks] == [
        (c.rule, c.verdict) for c in report.checks
    ]
    assert [c.explanation for c in seen.checks] == [
        scientist_text(c.rule, c.verdict) for c in report.checks
    ]
    assert not any(ch.isdigit() for ch in json.dumps(seen.to_dict()))
    assert report.checks[0].numbers  # the owner's copy keeps them


def test_every_fixed_sentence_is_free_of_figures() -> None:
    assert SCIENTIST_TEXT and not any(
        ch.isdigit() for text in SCIENTIST_TEXT.values() for ch in text
    )
    assert scientist_text("new_rule", "warn") == "new_rule: warn."


def test_a_public_check_keeps_its_explanation_for_the_scientist() -> None:
    dp = Check(
        "differential_privacy", "pass", "ε=0.5 spent, Laplace scale 4", {"e": 0.5}, public=True
    )
    (seen,) = CheckReport((dp,)).for_scientist().checks
    assert seen.explanation == dp.explanation and seen.numbers == {}
    assert CheckReport.from_dict(CheckReport((dp,)).to_dict()).checks == (dp,)


def test_json_round_trip() -> None:
    report = CheckReport((SMALL, DOMINANT, FINE))
    stored = json.loads(json.dumps(report.to_dict()))
    assert stored["verdict"] == "fail"
    assert CheckReport.from_dict(stored) == report
    assert CheckReport.from_dict(CheckReport(()).to_dict()) == CheckReport(())


@pytest.mark.parametrize(
    "stored",
    [
        {},
        {"checks": "threshold"},
        {"checks": [{"rule": "threshold", "verdict": "pass"}]},
        {"checks": [{"rule": "threshold", "verdict": "maybe", "explanation": "x"}]},
        [],
    ],
)
def test_malformed_stored_reports_are_refused(stored: object) -> None:
    with pytest.raises(InvalidInput):
        CheckReport.from_dict(stored)  # type: ignore[arg-type]


def test_frame_repr_and_combining() -> None:
    report = CheckReport((SMALL,)) + CheckReport((FINE,))
    assert [c.rule for c in report.checks] == ["threshold", "zeros"]
    frame = report.to_frame()
    assert list(frame.columns) == ["rule", "verdict", "explanation", "numbers"]
    assert list(report.for_scientist().to_frame().columns) == ["rule", "verdict", "explanation"]
    text = repr(report)
    assert text.startswith("CheckReport(fail)")
    assert "threshold" in text and "1 of 4 cells" in text and "[[2" not in text
    html = report._repr_html_()
    assert "<table" in html and "rds-badge rds-fail" in html and "owner-only figures" in html
    assert "owner-only figures" not in report.for_scientist()._repr_html_()
    assert repr(CheckReport(())) == "CheckReport(pass: no checks)"
    with pytest.raises(TypeError):
        report + 1
