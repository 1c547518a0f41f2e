"""The package's layers (``.importlinter``) hold, and breaking one fails the build.

``make lint`` (part of ``make test``) runs ``lint-imports``; these tests run it too, on the
package as it is and on a copy with one forbidden import added, so a contract that stopped
checking anything would fail here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--config", str(ROOT / ".importlinter"), "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "rds", tmp_path / "rds", ignore=shutil.ignore_patterns("labextension"))
    return tmp_path


def test_the_package_keeps_its_contracts() -> None:
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 2 kept, 0 broken." in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # the UI kit must know no rds object
        ("rds/widgets/html.py", "from rds.domain import desk  # noqa", "Every import points"),
        # checks sit below dp, even lazily or for types only
        ("rds/checks/sdc.py", "if False:\n    import rds.dp.budget", "Every import points"),
        # the owner's side never imports the scientist's
        ("rds/domain/overlap.py", "import rds.scientist.session", "never import each other"),
        # nor the scientist's the owner's, even through the layer between
        ("rds/scientist/local.py", "import rds.domain.requests", "never import each other"),
    ],
)
def test_one_forbidden_import_breaks_the_build(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    tree = _copy(tmp_path)
    target = tree / module
    target.write_text(target.read_text() + f"\n{line}\n")
    done = _lint(tree)
    assert done.returncode != 0
    assert "BROKEN" in done.stdout
    assert broken in done.stdout.split("Broken contracts")[1]
