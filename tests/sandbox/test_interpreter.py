"""A sandboxed run works whatever path the owner started Python by.

An owner who ran ``../rds/.venv/bin/python owner.py`` had every run end with no report
(exit status 127: the jail had no such path), and it looked like the scientist's failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
