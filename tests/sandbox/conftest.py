"""Fixtures for the sandbox tests: small private datasets on disk, tight limits, warm pools."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from rds.sandbox import (
    RunResult,
    SandboxLimits,
    _warm,
    bwrap_available,
    run_python,
    runner,
    write_table,
)
from rds.sandbox._spawn import Jail, JailConfig
from tests.sandbox.procs import zombie_children

SECRET = "P-SECRET-7f3a9c"

# Tight enough that bombs die in a second or two, loose enough for pandas and pyarrow.
TIGHT = SandboxLimits(cpu_seconds=3, memory_mb=1024, wall_seconds=20, output_mb=4, max_processes=24)
CONFIG = JailConfig.for_run(runner.BWRAP, TIGHT)


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


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[_warm.WarmPool]:
    """A pool of this test's own, shut down after it; no zombie may be left behind."""
    fresh = _warm.WarmPool()
    monkeypatch.setattr(_warm, "POOL", fresh)
    yield fresh
    fresh.shutdown()
    assert not zombie_children()


@pytest.fixture
def cold_starts(monkeypatch: pytest.MonkeyPatch) -> list[JailConfig]:
    """The configurations of the jails runs had to start themselves (the pool's not counted)."""
    started: list[JailConfig] = []
    original = Jail.start

    def start(cls: type[Jail], config: JailConfig) -> Jail:
        started.append(config)
        return original(config)

    monkeypatch.setattr(Jail, "start", classmethod(start))
    return started


def ready(pool: _warm.WarmPool, config: JailConfig = CONFIG, timeout: float = 30) -> Jail:
    """Ask for a warm jail for ``config`` and wait until one waits, with its imports done."""
    deadline = time.monotonic() + timeout
    taken = pool.take(config)  # starts the pool's thread and asks it for the next jail
    if taken is not None:
        taken.close()
    while (jail := pool.waiting(config)) is None or not (jail.alive() and jail.ready):
        assert time.monotonic() < deadline, f"no warm jail came up: {pool.last_error}"
        time.sleep(0.05)
    return jail
