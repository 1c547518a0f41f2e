"""The wheel carries the built panel and enables both halves: no Node needed by its user."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        cwd=ROOT,
    )
    [built] = out.glob("rds-*.whl")
    return built


def test_the_wheel_ships_the_prebuilt_extension_and_server_config(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    data = "rds-0.1.0.data/data/"
    assert f"{data}share/jupyter/labextensions/rds-jupyterlab/package.json" in names
    assert f"{data}share/jupyter/labextensions/rds-jupyterlab/install.json" in names
    assert any(
        n.startswith(f"{data}share/jupyter/labextensions/rds-jupyterlab/static/remoteEntry.")
        for n in names
    )
    assert f"{data}etc/jupyter/jupyter_server_config.d/rds.json" in names
    assert "rds/server/handlers.py" in names
    assert not any("node_modules" in n for n in names)


def test_after_pip_install_jupyter_lists_rds_enabled(wheel: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--prefix",
            str(prefix),
            str(wheel),
        ],
        check=True,
    )
    site = (
        prefix
        / "lib"
        / f"python{sys.version_info.major}.{sys.version_info.minor}"
        / "site-packages"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(site),  # the installed wheel's rds, ahead of the checkout's
        "JUPYTER_PATH": str(prefix / "share" / "jupyter"),
        "JUPYTER_CONFIG_PATH": str(prefix / "etc" / "jupyter"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "no-user-config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "no-user-data"),
    }
    jupyter = [sys.executable, "-m", "jupyter"]
    labext = subprocess.run(
        [*jupyter, "labextension", "list"], env=env, capture_output=True, text=True, check=True
    )
    listing = labext.stdout + labext.stderr
    line = next(ln for ln in listing.splitlines() if "rds-jupyterlab" in ln)
    assert str(prefix / "share") in listing and "enabled" in line and "OK" in line
    server = subprocess.run(
        [*jupyter, "server", "extension", "list"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    text = server.stdout + server.stderr
    assert "rds enabled" in text and "rds.server OK" in text, text
    where = subprocess.run(
        [sys.executable, "-c", "import rds; print(rds.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(site))
