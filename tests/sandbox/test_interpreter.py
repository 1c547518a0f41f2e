"""A sandboxed run works whatever path the owner started Python by, and a jail that cannot
start is the domain's failure, not the scientist's.

An owner who ran ``../rds/.venv/bin/python owner.py`` had every run end with no report
(exit status 127: the jail had no such path), and it looked like the scientist's failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import rds
from rds.sandbox import _jail, _warm, runner

SCRIPT = """
from rds.sandbox import runner
result = runner.run_python("def f():\\n    return 6 * 7\\n", "f", datasets=[])
print(result.ok, result.error_type, result.value() if result.ok else result.stderr[-300:])
"""


def test_a_python_started_by_a_relative_path_with_dots_runs_in_the_jail(tmp_path: Path) -> None:
    here = tmp_path / "work" / "owner"
    here.mkdir(parents=True)
    # The interpreter named through a directory the jail does not mount, then "..".
    relative = os.path.relpath(sys.executable, here)
    assert relative.startswith("..")
    done = subprocess.run(
        [relative, "-c", SCRIPT],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "None", "42"], done.stdout


def test_a_jail_that_cannot_start_python_is_the_domains_fault(
    monkeypatch: pytest.MonkeyPatch, pool: _warm.WarmPool
) -> None:
    # The owner's interpreter path does not exist inside the jail (the bug this file is
    # about, before the fix): nothing of the job ran, so nobody should blame its code.
    monkeypatch.setattr(_jail, "interpreter", lambda: "/opt/no-such-venv/bin/python3")
    result = runner.run_python("def f():\n    return 1\n", "f", datasets=[])
    assert not result.ok
    assert result.fault == "domain", result
    assert result.error_type == "SandboxError"
    assert "domain's failure" in (result.error or "")
    assert "no-such-venv" in result.stderr  # what setpriv said, for the owner
    with pytest.raises(rds.SandboxError, match="SandboxError"):
        result.value()


@pytest.mark.parametrize(
    "body",
    [
        "raise ValueError('no')",
        "import os; os._exit(3)",  # ends the process after taking the job: no report
        "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
    ],
)
def test_code_that_fails_after_taking_the_job_is_the_scientists_fault(body: str) -> None:
    result = runner.run_python(f"def f():\n    {body}\n", "f", datasets=[])
    assert not result.ok
    assert result.fault == "code", result


def test_a_successful_run_has_no_fault() -> None:
    result = runner.run_python("def f():\n    return 2\n", "f", datasets=[])
    assert result.ok and result.fault is None
