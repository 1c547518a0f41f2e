"""Drive a real JupyterLab from Playwright: start a server, run a notebook, take screenshots.

The server is the venv's own ``jupyter lab`` (so its kernel is the venv's python and
``import rds`` works there), isolated from the user's Jupyter config and settings, with
every feature that would reach the network or pop up over the notebook switched off.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page, ViewportSize, expect

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "ui"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT: ViewportSize = {"width": 1400, "height": 1000}

# Settings a fresh user would be asked about in toasts: answer them up front.
_USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class LabError(AssertionError):
    """JupyterLab did not do what a test needed; the message says what and where to look."""


@dataclass
class Lab:
    """A running JupyterLab server: where it listens and where tests put notebooks."""

    url: str
    token: str
    root: Path
    log: Path
    home: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def profiles(self) -> Path:
        """The rds profiles file this server's panel reads (``RDS_CONFIG_DIR``)."""
        return self.home / "rds-config" / "profiles.json"

    def api(self, method: str, path: str) -> Any:
        """Call the server's REST API (``path`` like ``/api/sessions``); return parsed JSON."""
        req = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def notebook_url(self, notebook: Path) -> str:
        """Open ``notebook`` in a fresh workspace, so no earlier test's tabs are restored."""
        rel = notebook.resolve().relative_to(self.root.resolve()).as_posix()
        workspace = f"test-{uuid.uuid4().hex[:12]}"
        return f"{self.url}/lab/workspaces/{workspace}/tree/{quote(rel)}?token={self.token}"

    def shutdown_kernels(self) -> None:
        """End every session, so each test starts with no kernels left from the last one."""
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")

    def stop(self, timeout: float = 20) -> None:
        """Stop the server and every kernel it started; kill it if not gone in ``timeout`` s."""
        if self.process.poll() is not None:
            return
        # Kernels run in their own sessions (jupyter_client's choice), so a process-group
        # kill would miss them: note them before asking the server to stop.
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        os.killpg(self.process.pid, signal.SIGTERM)  # the server shuts its kernels down
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)
        _, alive = psutil.wait_procs(children, timeout=5)
        for proc in alive:
            proc.kill()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _isolated_env(home: Path) -> dict[str, str]:
    """The caller's environment (PYTHONPATH included) minus the user's Jupyter state."""
    env = dict(os.environ)
    for var, sub in [
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),  # a user kernelspec named python3 would shadow the venv's
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("IPYTHONDIR", "ipython"),
    ]:
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    env["RDS_CONFIG_DIR"] = str(home / "rds-config")  # connection profiles for the panel
    return env


def _lab_command(port: int, token: str, root: Path, home: Path) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ServerApp.port_retries=0",  # fail on a taken port rather than move silently
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # the default asks PyPI
        f"--LabApp.user_settings_dir={home / 'settings'}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, to run commands
    ]
    if os.getuid() == 0:
        cmd.append("--allow-root")
    return cmd


def start_lab(root: Path, home: Path, *, log: Path, timeout: float = 60) -> Lab:
    """Start JupyterLab serving ``root`` (state under ``home``); return once its API answers.

    The log goes to ``log``; a server that exits or stays silent raises with its tail.
    """
    for name, values in _USER_SETTINGS.items():
        target = home / "settings" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    env = _isolated_env(home)
    log.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):  # another process may grab the free port before the server binds it
        port, token = _free_port(), secrets.token_hex(24)
        with log.open("wb") as out:
            process = subprocess.Popen(
                _lab_command(port, token, root, home),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=root,
                start_new_session=True,
            )
        lab = Lab(f"http://127.0.0.1:{port}", token, root, log, home, process)
        if _wait_until_up(lab, timeout):
            return lab
        if "already in use" not in log.read_text(errors="replace"):
            break
    lab.stop()
    raise LabError(f"JupyterLab did not start; log {log}:\n{_tail(log)}")


def _wait_until_up(lab: Lab, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and lab.process.poll() is None:
        try:
            with urllib.request.urlopen(
                f"{lab.url}/api/status?token={lab.token}", timeout=2
            ) as resp:
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    return False


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as ``tests/artifacts/ui/<name>.png``; return the path."""
    path = _artifact(name)
    page.screenshot(path=path, full_page=True)
    return path


def screenshot_locator(locator: Locator, name: str) -> Path:
    """Save one element (e.g. an output area) as ``tests/artifacts/ui/<name>.png``."""
    path = _artifact(name)
    locator.screenshot(path=path)
    return path


def _artifact(name: str) -> Path:
    if not re.fullmatch(r"[\w.-]+", name):
        raise ValueError(f"screenshot name {name!r}: use letters, digits, '.', '_', '-' only")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{name}.png"


def wait_for_text(page: Page, text: str, timeout: float = 30) -> Locator:
    """Wait up to ``timeout`` seconds until ``text`` (a substring) is visible; return it."""
    locator = page.get_by_text(text).first
    locator.wait_for(state="visible", timeout=timeout * 1000)
    return locator


# Evaluated in the page: the open notebook at ``path`` and its kernel, as a status word.
_NOTEBOOK_STATE_JS = """(path) => {
  const app = window.jupyterapp;
  if (!app) { return 'loading'; }
  const panel = Array.from(app.shell.widgets('main'))
    .find((w) => w.context && w.context.path === path);
  if (!panel || !panel.context.isReady) { return 'opening'; }
  const session = panel.sessionContext;
  if (!session.isReady) { return 'starting'; }
  const kernel = session.session && session.session.kernel;
  return kernel ? kernel.status : 'no-kernel';
}"""

_RUN_ALL_JS = """() => {
  window.__rdsRunAll = 'running';
  window.jupyterapp.commands.execute('notebook:run-all-cells').then(
    () => { window.__rdsRunAll = 'done'; },
    (err) => { window.__rdsRunAll = 'error: ' + err; },
  );
}"""

_RUNNING_PROMPTS_JS = """() => Array.from(
  document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-InputPrompt')
).filter((p) => p.textContent.includes('*')).length"""

_NOTEBOOK_JSON_JS = """(path) => Array.from(window.jupyterapp.shell.widgets('main'))
  .find((w) => w.context && w.context.path === path).context.model.toJSON()"""


def run_notebook_in_lab(
    page: Page, lab: Lab, notebook_path: Path, *, timeout: float = 180, allow_errors: bool = False
) -> None:
    """Open ``notebook_path`` in JupyterLab, run all cells, and wait until all have finished.

    "Finished" means the run-all command has resolved, no cell shows ``[*]`` and the kernel
    is idle. A cell that raised fails here with its traceback unless ``allow_errors``.
    """
    deadline = time.monotonic() + timeout
    path = notebook_path.resolve().relative_to(lab.root.resolve()).as_posix()
    page.goto(lab.notebook_url(notebook_path))
    _wait(page, deadline, f"kernel of {path} idle", lambda: _state(page, path) == "idle")
    _run_all(page, path, deadline, allow_errors=allow_errors)


def run_all_cells(
    page: Page, lab: Lab, notebook_path: Path, *, timeout: float = 180, allow_errors: bool = False
) -> None:
    """Run every cell of ``notebook_path``, already open in ``page``, and wait for them."""
    path = notebook_path.resolve().relative_to(lab.root.resolve()).as_posix()
    _run_all(page, path, time.monotonic() + timeout, allow_errors=allow_errors)


def _run_all(page: Page, path: str, deadline: float, *, allow_errors: bool) -> None:
    page.evaluate(_RUN_ALL_JS)
    _wait(
        page,
        deadline,
        f"all cells of {path} run",
        lambda: (
            page.evaluate("() => window.__rdsRunAll") != "running"
            and page.evaluate(_RUNNING_PROMPTS_JS) == 0
            and _state(page, path) == "idle"
        ),
    )
    outcome = page.evaluate("() => window.__rdsRunAll")
    if outcome != "done":
        raise LabError(f"running {path} failed in JupyterLab: {outcome}")
    if not allow_errors:
        _raise_cell_errors(page.evaluate(_NOTEBOOK_JSON_JS, path), path)


def _state(page: Page, path: str) -> str:
    return str(page.evaluate(_NOTEBOOK_STATE_JS, path))


def _wait(page: Page, deadline: float, what: str, done: Callable[[], bool]) -> None:
    """Poll ``done()`` until the deadline, clearing dialogs and toasts that block the view."""
    while True:
        _dismiss_popups(page)
        if done():
            return
        if time.monotonic() > deadline:
            shot = screenshot(page, "timeout")
            raise LabError(f"timed out waiting for {what}; screenshot {shot}")
        page.wait_for_timeout(200)


def _dismiss_popups(page: Page) -> None:
    """Accept the kernel picker (the default kernel is the venv's); close any toast.

    Any other dialog means something went wrong, so it fails with the dialog's text.
    """
    dialog = page.locator(".jp-Dialog")
    if dialog.count() and dialog.first.is_visible():
        text = dialog.first.inner_text()
        if "Select Kernel" not in text:
            shot = screenshot(page, "unexpected-dialog")
            raise LabError(f"unexpected dialog in JupyterLab: {text!r}; screenshot {shot}")
        with contextlib.suppress(PlaywrightError):  # still opening: the next poll clicks
            dialog.first.locator(".jp-Dialog-button.jp-mod-accept").click(timeout=2000)
    for close in page.locator(".jp-Notification-Toast-Close").all():
        # A toast that is still sliding in (or already leaving) rejects the click; the next
        # poll tries again.
        with contextlib.suppress(PlaywrightError):
            if close.is_visible():
                close.click(timeout=500)


def _raise_cell_errors(notebook: dict[str, Any], path: str) -> None:
    for index, cell in enumerate(notebook["cells"]):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                traceback = _ANSI.sub("", "\n".join(output.get("traceback", [])))
                raise LabError(f"cell {index} of {path} raised in JupyterLab:\n{traceback}")


def open_panel(page: Page, timeout: float = 60) -> Locator:
    """Show the Remote Data panel and return it.

    Activated rather than clicked: a click on an open panel's tab closes it (and a restored
    workspace may have it open already). A workspace still being restored can hide it again
    right after, so it is activated until it stays shown.
    """
    tab = page.locator('.jp-SideBar [data-id="rds-remote-data"]')
    expect(tab).to_be_visible(timeout=30_000)
    panel = page.locator("#rds-remote-data")
    deadline = time.monotonic() + timeout
    while True:
        page.evaluate("() => window.jupyterapp.shell.activateById('rds-remote-data')")
        try:
            expect(panel).to_be_visible(timeout=5_000)
            return panel
        except AssertionError:
            if time.monotonic() > deadline:
                raise
