"""A real Jupyter server with the rds extension enabled, and a real domain served over HTTP.

pytest-jupyter's fixtures are imported here (not as a global plugin) so that its event
loop and async-test hooks apply to these tests only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403

import rds
from rds.domain import serve
from tests.conftest import free_port, patients


@pytest.fixture
def jp_server_config() -> dict[str, Any]:  # replaces pytest-jupyter's empty default
    return {
        "ServerApp": {
            "jpserver_extensions": {"rds": True},
            "allow_unauthenticated_access": False,  # every route must ask for the token
        }
    }


@pytest.fixture(autouse=True)
def profiles_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where this test's connection profiles live (set before the Jupyter server starts)."""
    where = tmp_path / "rds-config"
    monkeypatch.setenv("RDS_CONFIG_DIR", str(where))
    return where


@pytest.fixture(scope="module")
def hospital(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A domain served over HTTP with ``patients`` (DP budget) and one scientist."""
    path = tmp_path_factory.mktemp("served") / "hospital"
    frame: pd.DataFrame = patients()
    with rds.Domain.create("Route Hospital", path=path) as domain:
        domain.publish(
            "patients",
            frame,
            description="Synthetic admissions <b>not bold</b>",
            bounds={"age": (0, 120)},
            categories={"ward": ["cardio", "onco", "neuro"]},
            policy=rds.Policy(epsilon_budget=2.0, auto_release="dp"),
        )
        creds = domain.add_scientist("ada@uni.example.org")
    url = serve.start(path, port=free_port())
    yield {"path": path, "url": url, "email": creds.email, "password": creds.password}
    serve.stop(path)
