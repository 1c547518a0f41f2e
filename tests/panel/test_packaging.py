"""The wheel carries the built panel and enables both halves: no Node needed by its user."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_APP = "import sys; from {module} import main; sys.argv = ['jupyter-{name}', 'list']; main()"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


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
    assert "rds/panel/handlers.py" in names
    assert not any("node_modules" in n for n in names)


def test_after_pip_install_jupyter_lists_rds_enabled(wheel: Path, tmp_path: Path) -> None:
    # A fresh venv gets the wheel; Jupyter itself comes from this venv's site-packages via a
    # plain path entry (its .pth files, and so the checkout's editable rds, are not read).
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True
    )
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "outer-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "no-user-config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "no-user-data"),
    }
    env.pop("PYTHONPATH", None)

    def run(*args: str) -> str:
        out = subprocess.run(
            [python, *args], env=env, capture_output=True, text=True, check=True, cwd=tmp_path
        )
        return _ANSI.sub("", out.stdout + out.stderr)

    assert run("-c", "import rds; print(rds.__file__)").startswith(str(site))
    # The fresh venv has no jupyter-* scripts: call the same command line apps directly.
    listing = run("-c", _APP.format(module="jupyterlab.labextensions", name="labextension"))
    line = next(ln for ln in listing.splitlines() if "rds-jupyterlab" in ln)
    assert "enabled" in line and "OK" in line, listing
    assert str(env_dir / "share" / "jupyter" / "labextensions") in listing
    text = run(
        "-c",
        _APP.format(module="jupyter_server.extension.serverextension", name="server-extension"),
    )
    assert re.search(r"\brds enabled", text) and re.search(r"\brds 0\.1\.0 OK", text), text
    assert str(env_dir / "etc" / "jupyter") in text
