"""Fixtures for browser tests: one JupyterLab and one Chromium for tests/ui, a page per test.

Both end with the last test here, not with the session: while Playwright's sync API is
open, its event loop counts as running in this thread, and the tests that run after these
in the same process (on the same xdist worker, say) could not run a loop of their own
(pytest-jupyter's ``jp_asyncio_loop`` would find this one, running).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Generator, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.ui.lab import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, VIEWPORT, Lab, screenshot, start_lab

# A 2-core machine running a domain, JupyterLab and Chromium at once is slow to settle:
# wait up to 20 s for what a user would see (failures still name what never appeared).
expect.set_options(timeout=20_000)


@pytest.fixture(scope="package")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A real JupyterLab on a free port; tests write notebooks under ``lab.root``."""
    server = start_lab(
        tmp_path_factory.mktemp("lab-root"),
        tmp_path_factory.mktemp("lab-home"),
        log=ARTIFACTS / "jupyter-lab.log",
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's Chromium (Playwright's own download does not work here)."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test item, so ``page`` knows whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def page(browser: Browser, lab: Lab, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context per test; on failure, a screenshot and the browser console."""
    context = browser.new_context(viewport=VIEWPORT)
    new_page = context.new_page()
    console: list[str] = []
    new_page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    try:
        yield new_page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            name = re.sub(r"[^\w.-]", "_", f"failed-{request.node.name}")
            (ARTIFACTS / f"{name}.console.log").write_text("\n".join(console))
            with contextlib.suppress(PlaywrightError):  # a crashed page still gets cleaned up
                screenshot(new_page, name)
        context.close()
        lab.shutdown_kernels()
