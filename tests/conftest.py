"""Shared fixtures: real syft servers (in-process and over HTTP), real private data."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def forge(
    session: rds.Session, meta: dict[str, Any], names: list[str], source: str | None = None
) -> str:
    """A hand-made submission: ``meta`` as its header exactly, bound to datasets ``names``,
    with ``source`` (default: the SQL stand-in function for ``names``). The scientist's
    client checks nothing on its way, as a plain syft client would not."""
    from rds._syft.submission import sql_function

    records = {r.name: r for r in session._conn.datasets()}
    code = sql_function(tuple(names)) if source is None else source
    return str(session._conn.submit(source=code, datasets=[records[n] for n in names], meta=meta))


@contextlib.contextmanager
def jail_cannot_start(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Inside: every jail names an interpreter that does not exist (the path bug of an owner
    who started Python by a relative path), and none was warmed before it broke."""
    from rds.sandbox import _jail, _warm

    real = _jail.interpreter
    pool = _warm.WarmPool()
    with monkeypatch.context() as patch:
        patch.setattr(_warm, "POOL", pool)
        patch.setattr(_jail, "interpreter", lambda: "/opt/no-such-venv/bin/python3")
        try:
            yield
        finally:
            pool.shutdown()
    assert _jail.interpreter is real


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def private_frame() -> pd.DataFrame:
    return patients()


def embedded_hospital(path: Path, frame: pd.DataFrame) -> rds.Domain:
    """An embedded domain in ``path`` with ``frame`` published as ``patients``."""
    d = rds.Domain.create("Test Hospital", path=path)
    d.publish("patients", frame, description="Synthetic admissions", bounds={"age": (0, 120)})
    return d


@pytest.fixture
def domain(tmp_path: Path, private_frame: pd.DataFrame) -> Iterator[rds.Domain]:
    """An embedded domain with ``patients`` published."""
    d = embedded_hospital(tmp_path / "domain", private_frame)
    yield d
    d.close()


@pytest.fixture
def scientist(domain: rds.Domain) -> rds.Credentials:
    return domain.add_scientist("ada@uni.example.org")


@pytest.fixture
def session(domain: rds.Domain, scientist: rds.Credentials) -> rds.Session:
    return rds.connect(domain, email=scientist.email, password=scientist.password)


@contextlib.contextmanager
def serving(path: Path, frame: pd.DataFrame) -> Iterator[tuple[Path, str]]:
    """A domain in ``path`` with ``frame`` as ``patients``, served over HTTP: ``(path, url)``."""
    with rds.Domain.create("Served Hospital", path=path) as d:
        d.publish("patients", frame, description="Synthetic admissions")
    url = serve.start(path, port=free_port())
    try:
        yield path, url
    finally:
        serve.stop(path)


@pytest.fixture
def served(tmp_path: Path, private_frame: pd.DataFrame) -> Iterator[tuple[Path, str]]:
    """A domain served over HTTP by its own process: ``(path, url)``."""
    with serving(tmp_path / "served", private_frame) as where:
        yield where


@pytest.fixture(scope="module")
def served_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """``served``, once for a module whose tests change nothing another of them reads.

    Starting a served domain takes 20-30 s (three processes import syft, the worker logs
    in); tests that only read it, or add what no other test looks at, share one.
    """
    with serving(tmp_path_factory.mktemp("served") / "served", patients()) as where:
        yield where


# -- running on two workers (pytest-xdist; the options are in pyproject.toml) -------------
# `--dist loadfile` hands each test file to one worker as a whole, so a file's tests keep
# their order and its module-scoped fixtures (a served domain, say) are made once. Two
# changes to it, made by the scheduler below:
#
# - ONE_AT_A_TIME is one unit across files: the tests that load the whole machine (a served
#   domain under a queue of DP runs over 1.5M rows, the demo's 1M-row seeding, JupyterLab
#   and Chromium, parallel spends over HTTP) or time what they do. One worker runs them one
#   after another, first, while the other takes the rest: none of them overlaps another.
# - The units are handed out longest first (LONG_FIRST, measured serially), so that the
#   last one to start is short and neither worker waits long for the other at the end.
#
# (`--dist loadgroup` with xdist_group marks would say the same, but with pytest 9.2 and
# xdist 3.8 it silently ignores the marks: pytest-dev/pytest-xdist#1386.)
ONE_AT_A_TIME = "one-at-a-time"
_ONE_AT_A_TIME = (
    "tests/ui/",
    "tests/domain/test_serve.py",
    "tests/domain/test_channels.py",
    "tests/test_demo.py",
    "tests/domain/test_dp_requests.py::test_parallel_requests_over_http_never_overspend",
    "tests/sandbox/test_warm.py",
    "tests/sandbox/test_runner.py::test_fixed_cost_of_a_trivial_run_is_small",
    "tests/sandbox/test_attacks.py::test_sleeping_loop_is_stopped_by_the_wall_clock",
    "tests/sandbox/test_load.py::test_reading_and_grouping_costs_at_most_twice_an_in_memory",
    "tests/panel/test_routes.py::test_a_down_domain_shows_as_down_and_never_blocks_the_server",
)
LONG_FIRST = (
    ONE_AT_A_TIME,
    "tests/test_http.py",
    "tests/domain/test_sql_requests.py",
    "tests/test_notebooks.py",
    "tests/panel/test_routes.py",
    "tests/domain/test_dp_requests.py",
    "tests/domain/test_intake.py",
    "tests/scientist/test_session.py",
    "tests/_syft/test_http_attacks.py",
)


@pytest.hookimpl(optionalhook=True)  # only with xdist installed and not disabled
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist") != "loadfile":
        return None  # another --dist asked for: xdist's own

    from xdist.scheduler import LoadFileScheduling

    class Scheduling(LoadFileScheduling):  # type: ignore[misc]
        _ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return ONE_AT_A_TIME if nodeid.startswith(_ONE_AT_A_TIME) else nodeid.split("::")[0]

        def _assign_work_unit(self, node: Any) -> None:
            if not self._ordered:  # the first hand-out: the queue is complete
                self._ordered = True
                rank = {scope: i for i, scope in enumerate(LONG_FIRST)}
                queue = sorted(self.workqueue.items(), key=lambda u: rank.get(u[0], len(rank)))
                self.workqueue.clear()
                self.workqueue.update(queue)
            super()._assign_work_unit(node)

    return Scheduling(config, log)
