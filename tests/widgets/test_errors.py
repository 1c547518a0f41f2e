"""rds's errors in a real Jupyter kernel: the message first, the traceback behind ``%tb``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat

from rds.widgets.errors import FULL_TRACEBACK

SETUP = """
import numpy as np
import pandas as pd
import rds

rng = np.random.default_rng(1)
frame = pd.DataFrame({"age": rng.integers(18, 90, 200), "bmi": rng.normal(27, 4, 200)})
domain = rds.Domain.create("Kernel Hospital", path=DOMAIN_PATH)
domain.publish("patients", frame, description="Synthetic", bounds={"age": (0, 120)})
creds = domain.add_scientist("ada@uni.example.org")
session = rds.connect(domain, email=creds.email, password=creds.password)
ds = session.dataset("patients")
"""
FAILS_ON_MOCK = """
threshold = 30

def heavy(df):
    return int((df["bmi"] > threshold).sum())

ds.request(heavy, reason="count")
"""
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _execute(cells: list[str], cwd: Path, *, raising: set[int]) -> list[list[dict[str, Any]]]:
    """Run ``cells`` in a fresh kernel; the outputs of each (cells in ``raising`` may fail)."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    for i, source in enumerate(cells):
        cell = nbformat.v4.new_code_cell(source)
        if i in raising:
            cell.metadata["tags"] = ["raises-exception"]
        nb.cells.append(cell)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()
    return [list(cell.outputs) for cell in nb.cells]


def _text(outputs: list[dict[str, Any]]) -> str:
    parts = []
    for out in outputs:
        if out["output_type"] == "error":
            parts.append("\n".join(out["traceback"]))
        else:
            parts.append(out.get("text", ""))
            parts.extend(str(v) for v in out.get("data", {}).values())
    return ANSI.sub("", "\n".join(parts))


def test_an_rds_error_shows_its_message_first_and_tb_shows_the_frames(tmp_path: Path) -> None:
    setup = SETUP.replace("DOMAIN_PATH", repr(str(tmp_path / "domain")))
    outputs = _execute(
        [setup, FAILS_ON_MOCK, "%tb", "raise ValueError('not an rds error')"],
        tmp_path,
        raising={1, 3},
    )
    errors = [o for o in outputs[1] if o["output_type"] == "error"]
    assert len(errors) == 1 and errors[0]["ename"] == "MockRunFailed"
    shown = _text(outputs[1]).strip().splitlines()
    assert len(shown) < 8, shown
    assert shown[0].startswith("MockRunFailed: heavy() failed on the mock data")
    assert "NameError: name 'threshold' is not defined" in shown[0]
    assert shown[-1] == FULL_TRACEBACK
    assert "rds/scientist" not in "\n".join(shown)  # no frames of rds's internals

    full = _text(outputs[2])  # %tb: IPython's own full traceback of the same error
    assert "rds/scientist/dataset.py" in full and "rds/scientist/local.py" in full
    assert "run_in_kernel" in full and "MockRunFailed" in full
    assert len(full.splitlines()) > 15

    other = _text(outputs[3])  # anything but rds's errors keeps IPython's rendering
    assert "Traceback" in other and "ValueError: not an rds error" in other
    assert FULL_TRACEBACK not in other


def test_a_denied_request_names_its_id(tmp_path: Path) -> None:
    setup = SETUP.replace("DOMAIN_PATH", repr(str(tmp_path / "domain")))
    deny = """
def ages(df):
    return df["age"].tolist()

req = ds.request(ages, reason="raw ages")
domain.request(req.id).deny("Row-level data cannot leave the domain.")
print("id", req.id)
"""
    outputs = _execute([setup, deny, "req.result(timeout=30)"], tmp_path, raising={2})
    request_id = _text(outputs[1]).split("id ", 1)[1].strip()
    shown = _text(outputs[2]).strip().splitlines()
    assert shown[0] == (
        "RequestDenied: The data owner denied this request: Row-level data cannot leave the domain."
    )
    assert any(request_id in line for line in shown[1:])
    assert len(shown) < 8, shown


def test_install_outside_ipython_does_nothing() -> None:
    from rds.widgets import errors

    assert errors.install() is False
