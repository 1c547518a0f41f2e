"""Shared fixtures: real syft servers (in-process and over HTTP), real private data."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rds
from rds.domain import serve


def patients(n: int = 400, seed: int = 7) -> pd.DataFrame:
    """A small private table with a recognisable marker in one column."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "patient_id": [f"P-SECRET-{i:05d}" for i in range(n)],
            "age": rng.integers(18, 95, n),
            "ward": rng.choice(["cardio", "onco", "neuro"], n),
            "los_days": rng.gamma(2.0, 3.0, n).round(1),
        }
    )


NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run_notebook(path: Path, cwd: Path) -> str:
    """Execute a notebook in a fresh kernel (cwd ``cwd``); return all its text outputs."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for v in out.get("data", {}).values())
    return "\n".join(parts)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def private_frame() -> pd.DataFrame:
    return patients()


@pytest.fixture
def domain(tmp_path: Path, private_frame: pd.DataFrame) -> Iterator[rds.Domain]:
    """An embedded domain with ``patients`` published."""
    d = rds.Domain.create("Test Hospital", path=tmp_path / "domain")
    d.publish(
        "patients", private_frame, description="Synthetic admissions", bounds={"age": (0, 120)}
    )
    yield d
    d.close()


@pytest.fixture
def scientist(domain: rds.Domain) -> rds.Credentials:
    return domain.add_scientist("ada@uni.example.org")


@pytest.fixture
def session(domain: rds.Domain, scientist: rds.Credentials) -> rds.Session:
    return rds.connect(domain, email=scientist.email, password=scientist.password)


@pytest.fixture
def served(tmp_path: Path, private_frame: pd.DataFrame) -> Iterator[tuple[Path, str]]:
    """A domain served over HTTP by its own process: ``(path, url)``."""
    path = tmp_path / "served"
    with rds.Domain.create("Served Hospital", path=path) as d:
        d.publish("patients", private_frame, description="Synthetic admissions")
    url = serve.start(path, port=free_port())
    yield path, url
    serve.stop(path)
