"""run_python: what a data owner sees when a scientist's function runs on private data."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rds.errors import InvalidInput, SandboxError, SandboxUnavailable
from rds.sandbox import SandboxLimits, run_python, runner
from tests.sandbox.conftest import SECRET, TIGHT, run


def test_scalar_result_and_stdout(dataset: Path) -> None:
    result = run(
        """
        def mean_age(df):
            print("rows:", len(df))
            import sys
            print("warn", file=sys.stderr)
            return df.age.mean()
        """,
        [dataset],
    )
    assert result.ok and result.sandboxed
    assert result.value() == pytest.approx(49.666, abs=1e-3)
    assert result.stdout == "rows: 6\n"
    assert result.stderr == "warn\n"
    assert result.error is None and result.error_type is None
    assert 0 < result.duration < 10


def test_dataframe_series_and_categorical_round_trip(dataset: Path) -> None:
    result = run(
        """
        def summary(df):
            table = df.groupby("ward", observed=True).age.agg(["mean", "count"])
            return {"table": table, "ages": df.set_index("patient_id").age}
        """,
        [dataset],
    )
    value = result.value()
    assert isinstance(value, dict)
    assert list(value["table"].index) == ["cardio", "neuro", "onco"]
    assert value["table"].loc["onco", "count"] == 3
    assert value["ages"].index.name == "patient_id"
    assert value["ages"].name == "age"
    assert value["ages"].iloc[0] == 34


def test_ndarray_tensor_state_dict_and_nesting(dataset: Path) -> None:
    result = run(
        """
        def train(df):
            import torch
            model = torch.nn.Linear(1, 1)
            return {
                "ages": df.age.to_numpy(),
                "tensor": torch.tensor(df.age.to_numpy(), dtype=torch.float32),
                "state": model.state_dict(),
                "nested": [1, (2.5, "x"), None, np.float32(0.5), True],
            }
        """,
        [dataset],
        limits=SandboxLimits(cpu_seconds=30, memory_mb=3072, wall_seconds=60),
    )
    value = result.value()
    assert isinstance(value, dict)
    np.testing.assert_array_equal(value["ages"], [34, 51, 67, 45, 72, 29])
    assert torch.equal(value["tensor"], torch.tensor([34, 51, 67, 45, 72, 29], dtype=torch.float32))
    assert set(value["state"]) == {"weight", "bias"}
    assert value["state"]["weight"].shape == (1, 1)
    assert value["nested"] == [1, (2.5, "x"), None, 0.5, True]


def test_several_datasets_arrive_in_order(make_dataset: Callable[..., Path]) -> None:
    a = make_dataset(pd.DataFrame({"x": [1, 2]}), name="a")
    b = make_dataset(pd.DataFrame({"x": [10, 20, 30]}), name="b")
    result = run("def f(a, b):\n    return [len(a), len(b), int(b.x.sum())]\n", [a, b])
    assert result.value() == [2, 3, 60]


def test_frames_are_ordinary_writable_pandas(dataset: Path) -> None:
    result = run(
        """
        def f(df):
            df.loc[0, "age"] = 99
            df["age"] *= 2
            return int(df.age.iloc[0])
        """,
        [dataset],
    )
    assert result.value() == 198


def test_exception_gives_traceback_to_owner_and_type_to_scientist(dataset: Path) -> None:
    result = run(
        """
        def f(df):
            return df["no_such_column"]
        """,
        [dataset],
    )
    assert not result.ok and result.payload is None
    assert result.error_type == "KeyError"
    assert result.error is not None
    assert 'File "<request>", line 2, in f' in result.error
    assert "no_such_column" in result.error
    with pytest.raises(SandboxError, match=r"\(KeyError\)") as info:
        result.value()
    assert "no_such_column" not in str(info.value)


def test_error_type_cannot_carry_private_data(dataset: Path) -> None:
    # A class named after private data, and a forged status line: neither gets through.
    result = run(
        """
        def f(df):
            name = df.patient_id.iloc[0].replace("-", "_")
            raise type(name, (ValueError,), {})("boom")
        """,
        [dataset],
    )
    assert result.error_type == "ValueError"
    forged = run(
        """
        def f(df):
            import json, os
            status = {"ok": False, "error": "", "error_type": df.patient_id.iloc[0]}
            for fd in range(3, 20):
                try:
                    os.write(fd, json.dumps(status).encode())
                except OSError:
                    pass
            os._exit(0)
        """,
        [dataset],
    )
    assert not forged.ok
    assert SECRET not in (forged.error_type or "")


def test_missing_function_and_syntax_error(dataset: Path) -> None:
    assert run("def f(df):\n    return 1\n", [dataset]).ok
    missing = run_python("def f(df):\n    return 1\n", "g", datasets=[dataset], limits=TIGHT)
    assert missing.error_type == "NameError"
    broken = run_python("def f(df)\n    return 1\n", "f", datasets=[dataset], limits=TIGHT)
    assert broken.error_type == "SyntaxError"


def test_invalid_arguments_raise(tmp_path: Path, dataset: Path) -> None:
    with pytest.raises(InvalidInput, match="not a dataset directory"):
        run_python("def f(df):\n    return 1\n", "f", datasets=[tmp_path / "nothing"])
    with pytest.raises(InvalidInput, match="function name"):
        run_python("def f(df):\n    return 1\n", "f; import os", datasets=[dataset])


def test_missing_bubblewrap_is_refused(monkeypatch: pytest.MonkeyPatch, dataset: Path) -> None:
    monkeypatch.setattr(runner, "BWRAP", None)
    assert not runner.bwrap_available()
    with pytest.raises(SandboxUnavailable, match="bubblewrap") as info:
        run("def f(df):\n    return 1\n", [dataset])
    assert "allow_unsandboxed=True" in str(info.value)


def test_unsandboxed_opt_in_runs_with_limits(
    monkeypatch: pytest.MonkeyPatch, dataset: Path
) -> None:
    monkeypatch.setattr(runner, "BWRAP", str(Path("/nonexistent/bwrap")))
    result = run(
        """
        def f(df):
            import resource
            return [len(df), resource.getrlimit(resource.RLIMIT_AS)[0]]
        """,
        [dataset],
        allow_unsandboxed=True,
    )
    assert result.ok and not result.sandboxed
    assert result.value() == [6, TIGHT.memory_mb * 1024 * 1024]
    slow = run("def f(df):\n    while True:\n        pass\n", [dataset], allow_unsandboxed=True)
    assert slow.error_type == "LimitExceeded:cpu"


def test_fixed_cost_of_a_trivial_run_is_small(dataset: Path) -> None:
    run("def f(df):\n    return 1\n", [dataset])  # warm the page cache
    start = time.monotonic()
    result = run("def f(df):\n    return 1\n", [dataset])
    assert result.value() == 1
    assert time.monotonic() - start < 3.0


def test_importing_the_sandbox_does_not_import_torch() -> None:
    code = "import sys, rds.sandbox; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_python_installation_under_tmp_still_runs(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkout (and so its venv) under /tmp, as CI may place it, must not break the jail."""
    from rds.sandbox import _jail

    assert str(tmp_path).startswith("/tmp/")
    extra = tmp_path / "venv-under-tmp"
    extra.mkdir()
    (extra / "marker.txt").write_text("bound read-only")
    roots = _jail._python_roots()
    monkeypatch.setattr(_jail, "_python_roots", lambda: [*roots, str(extra)])
    source = f"""
def f(df):
    import tempfile
    with tempfile.NamedTemporaryFile(dir=None) as handle:  # TMPDIR is scratch
        handle.write(b"x")
        where = handle.name
    return [open({str(extra / "marker.txt")!r}).read(), where]
"""
    # An unusual scratch size is a pool key no warm jail has: this run starts cold.
    limits = SandboxLimits(cpu_seconds=20, memory_mb=1024, wall_seconds=60, scratch_mb=77)
    result = run_python(source, "f", datasets=[dataset], limits=limits)
    assert result.ok, result.error or result.stderr
    value = result.value()
    assert isinstance(value, list) and value[0] == "bound read-only"
    assert str(value[1]).startswith("/scratch/")
