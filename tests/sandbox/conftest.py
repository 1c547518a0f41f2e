"""Fixtures for the sandbox tests: small private datasets on disk, tight limits."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from rds.sandbox import RunResult, SandboxLimits, bwrap_available, run_python, write_table

SECRET = "P-SECRET-7f3a9c"

# Tight enough that bombs die in a second or two, loose enough for pandas and pyarrow.
TIGHT = SandboxLimits(cpu_seconds=3, memory_mb=1024, wall_seconds=20, output_mb=4, max_processes=24)


def run(source: str, datasets: list[Path], **kwargs: object) -> RunResult:
    """``run_python`` on an indented snippet defining one function, with ``TIGHT`` limits."""
    source = textwrap.dedent(source).lstrip("\n")
    name = source.split("def ", 1)[1].split("(", 1)[0]
    kwargs.setdefault("limits", TIGHT)
    return run_python(source, name, datasets=datasets, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _require_bwrap() -> None:
    # The sandbox is a hard dependency: a missing bubblewrap must fail the suite, not skip it.
    assert bwrap_available(), "bubblewrap (Debian package bubblewrap) is required"


@pytest.fixture
def make_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Write a frame as a dataset directory (``<dir>/data.arrow``) and return the directory."""

    def make(
        frame: pd.DataFrame | None = None, *, name: str = "patients", root: Path = tmp_path
    ) -> Path:
        directory = root / name
        directory.mkdir(mode=0o700, parents=True)
        if frame is None:
            frame = pd.DataFrame(
                {
                    "patient_id": [f"{SECRET}-{i}" for i in range(6)],
                    "age": [34, 51, 67, 45, 72, 29],
                    "ward": ["onco", "cardio", "onco", "neuro", "cardio", "onco"],
                }
            )
        write_table(frame, directory / "data.arrow")
        return directory

    return make


@pytest.fixture
def dataset(make_dataset: Callable[..., Path]) -> Path:
    return make_dataset()
