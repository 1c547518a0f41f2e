"""The tutorial course executes, top to bottom, in a real kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOTEBOOKS, run_notebook

COURSE = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
EXPECTED = {
    "01-quickstart.ipynb": [
        "denied: Row-level data",
        "entries verified:",
        "failed on the mock",
        "returned a matplotlib.figure.Figure on the mock",
        "from  patients",
    ],
    "02-privacy-checks.ipynb": [
        "refused: Refused: COPY",
        "Checks failed (threshold",
        "denied: Cells under 10 patients",
        "verdict: fail",
        "combinations of sex, decade have no row",
        "record_level",
        "private_rows",
        "scientist sees: awaiting review",
        "same query, other conditions",
        "denied: denied",
        "entries verified:",
    ],
    "03-dp-sql.ipynb": [
        "Answered with differential privacy: ε=0.5 spent",
        "patients_ci_low",
        "refused: Refused for a DP query: GROUP BY 'age'",
        "budget untouched: 2.0",
        "halfwidth_n100",
        "CAST",
        "below the data owner's minimum of ε=0.01",
        "only ε=0.5 of your budget remains",
        "<Budget diabetes: ε spent 1.9",
        "entries verified:",
    ],
    "04-owner-review.ipynb": [
        "approve enabled before a private run: False",
        "scientist sees: released",
        "failed checks: ['threshold', 'zeros']",
        "approve enabled without a justification: False",
        "imports os",
        "denied: Cells under 10 patients",
        "status: released   verdict: pass",
        "entries verified:",
    ],
}


def test_course_exists() -> None:
    assert [p.name for p in COURSE][:4] == [
        "01-quickstart.ipynb",
        "02-privacy-checks.ipynb",
        "03-dp-sql.ipynb",
        "04-owner-review.ipynb",
    ]


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    text = run_notebook(path, tmp_path)
    for expected in EXPECTED.get(path.name, []):
        assert expected in text, f"{path.name}: {expected!r} not in the outputs"
