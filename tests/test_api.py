"""The public surface and the packaging stay deliberate."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import rds

ROOT = Path(__file__).resolve().parents[1]


def test_all_is_sorted_and_complete() -> None:
    assert rds.__all__ == sorted(rds.__all__)
    public = {n for n in dir(rds) if (not n.startswith("_") and n[0].isupper()) or n == "connect"}
    modules = {"domain", "errors", "ledger", "privacy", "sandbox", "scientist"}
    assert public - modules <= set(rds.__all__)
    for name in rds.__all__:
        assert getattr(rds, name) is not None


def test_every_error_derives_from_the_root() -> None:
    import rds.errors as errors

    classes = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, Exception)]
    assert all(issubclass(c, rds.RDSError) for c in classes)
    for c in classes:
        assert c.__name__ in errors.__doc__


def test_import_rds_does_not_import_heavy_packages() -> None:
    heavy = "('syft', 'torch', 'tornado', 'ipywidgets', 'pygments', 'opendp', 'sqlglot', 'duckdb')"
    code = f"import sys, rds; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_syft_is_imported_only_in_the_adapter() -> None:
    pattern = re.compile(r"^\s*(import syft|from syft)", re.M)
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "rds").rglob("*.py")
        if pattern.search(p.read_text()) and "_syft" not in p.parts
    ]
    assert offenders == []


def test_only_the_adapter_knows_syfts_routes() -> None:
    """syft's URLs change between versions: one place (``rds._syft``) spells them."""
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "rds").rglob("*.py")
        if "/api/v2" in p.read_text() and "_syft" not in p.parts
    ]
    assert offenders == []


def _normalise(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_normalise(r) for r in project["dependencies"]}
    wanted |= {_normalise(r) for r in project["optional-dependencies"]["dev"]}
    text = (ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]
    listed = {
        _normalise(line.split("- ", 1)[1])
        for line in pip_section.splitlines()
        if line.strip().startswith("- ")
    }
    listed.discard("-e.")
    assert listed == wanted
    assert "python=3.11" in text
