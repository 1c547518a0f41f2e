"""SandboxLimits: a small typed value, validated when made."""

from __future__ import annotations

import dataclasses
import math

import pytest

from rds.errors import InvalidInput
from rds.sandbox import SandboxLimits


def test_defaults() -> None:
    limits = SandboxLimits()
    assert dataclasses.asdict(limits) == {
        "cpu_seconds": 300,
        "memory_mb": 4096,
        "wall_seconds": 600,
        "output_mb": 64,
        "max_processes": 64,
        "scratch_mb": 256,
    }


def test_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        SandboxLimits(60)  # type: ignore[misc]
    limits = SandboxLimits(cpu_seconds=1.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.cpu_seconds = 10  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cpu_seconds": 0},
        {"wall_seconds": -1},
        {"cpu_seconds": math.nan},
        {"wall_seconds": math.inf},
        {"memory_mb": 1.5},
        {"output_mb": True},
        {"max_processes": "64"},
        {"max_processes": 0},
    ],
)
def test_bad_values_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput, match=next(iter(kwargs))):
        SandboxLimits(**kwargs)  # type: ignore[arg-type]
