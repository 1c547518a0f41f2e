"""The Remote Data panel in real JupyterLab (Debian's Chromium) against a served domain.

A scientist opens the panel, sees the domain reachable with its datasets, previews a
dataset's mock, inserts the connect snippet into a notebook, runs it and a request, and
watches the request appear in "My requests" with its status; the owner's profile counts
it as pending. Screenshots go to ``tests/artifacts/ui/``.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

import rds
from rds.domain import serve
from rds.profiles import Profile, ProfileStore
from tests.conftest import free_port, patients
from tests.ui.lab import (
    Lab,
    _dismiss_popups,
    open_panel,
    run_all_cells,
    run_notebook_in_lab,
    screenshot,
    screenshot_locator,
)
from tests.ui.test_lab_smoke import write_notebook

DESCRIPTION = "Admissions <img src=x onerror=\"alert('panel')\">"

REQUEST_CELL = """def mean_age(df):
    return float(df["age"].mean())

req = ds.request(mean_age, reason="panel test")
req.id"""


@pytest.fixture(scope="module")
def hospital(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A served domain, saved as the lab's profiles "hospital" and "hospital-owner"."""
    path = tmp_path_factory.mktemp("panel") / "hospital"
    with rds.Domain.create("Panel Hospital", path=path) as domain:
        domain.publish(
            "patients",
            patients(),
            description=DESCRIPTION,
            bounds={"age": (0, 120)},
            categories={"ward": ["cardio", "onco", "neuro"]},
            policy=rds.Policy(epsilon_budget=2.0),
        )
        creds = domain.add_scientist("ada@uni.example.org")
    url = serve.start(path, port=free_port())
    store = ProfileStore(lab.profiles)
    store.save(
        Profile("hospital", kind="scientist", url=url, email=creds.email, password=creds.password)
    )
    store.save(Profile("hospital-owner", kind="owner", path=str(path.resolve())))
    yield {"path": path, "url": url}
    store.remove("hospital")
    store.remove("hospital-owner")
    serve.stop(path)


def test_panel_browses_previews_inserts_and_follows_requests(
    page: Page, lab: Lab, hospital: dict[str, Any]
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.set_viewport_size({"width": 1400, "height": 1100})
    marker = uuid.uuid4().hex[:8]
    notebook = write_notebook(lab.root / f"panel-{marker}.ipynb", f"# {marker}")
    # Open the notebook (so the snippet has somewhere to go) with its kernel idle.
    run_notebook_in_lab(page, lab, notebook, timeout=120)

    panel = open_panel(page)
    profile = panel.locator('.rds-profile[data-profile="hospital"]')
    expect(profile.locator(".rds-status")).to_have_attribute("data-reachable", "true")
    expect(profile.locator(".rds-status-text")).to_contain_text("0.9.5")
    dataset = profile.locator('.rds-dataset[data-dataset="patients"]')
    expect(dataset).to_contain_text("400 rows")
    expect(dataset).to_contain_text(DESCRIPTION)  # shown as text, never as markup
    owner = panel.locator('.rds-profile[data-profile="hospital-owner"]')
    expect(owner.locator(".rds-pending")).to_have_attribute("data-pending", "0", timeout=30_000)
    screenshot_locator(panel, "panel-datasets")

    # Expand the dataset: its schema; then its mock.
    dataset.locator(".rds-dataset-toggle").click()
    expect(dataset.locator('.rds-schema tr[data-column="age"]')).to_contain_text("0")
    dataset.get_by_role("button", name="Preview mock").click()
    mock = dataset.locator(".rds-mock-table")
    expect(mock).to_be_visible(timeout=30_000)
    expect(mock).to_contain_text("ward")
    expect(mock).not_to_contain_text("P-SECRET")  # a mock, never the private rows
    screenshot_locator(panel, "panel-mock-preview")

    # Insert the snippet into the notebook, then add a request below it and run both.
    dataset.get_by_role("button", name="Insert snippet").click()
    cell = page.locator(".jp-Notebook .jp-Cell", has_text='rds.connect(profile="hospital")')
    expect(cell).to_have_count(1)
    expect(cell).to_contain_text('.dataset("patients")')
    page.evaluate(
        """(source) => {
          const nb = window.jupyterapp.shell.currentWidget.content;
          nb.model.sharedModel.insertCell(nb.model.cells.length, {cell_type: 'code', source});
        }""",
        REQUEST_CELL,
    )
    run_all_cells(page, lab, notebook, timeout=120)
    request_id = page.locator(".jp-Cell").last.locator(".jp-OutputArea-output").inner_text()
    request_id = request_id.strip().strip("'")
    assert len(request_id) == 32, request_id

    # The request shows up in "My requests" by itself, and the owner sees it pending.
    panel = open_panel(page)
    row = profile.locator(f'.rds-request[data-request="{request_id}"]')
    expect(row).to_be_visible(timeout=30_000)
    expect(row).to_contain_text("mean_age()")
    expect(row).to_contain_text(re.compile("submitted|awaiting review"))  # the worker's pickup
    expect(owner.locator(".rds-pending")).to_have_attribute("data-pending", "1", timeout=30_000)
    screenshot_locator(panel, "panel-my-requests")
    screenshot(page, "panel-notebook")

    # The owner decides: a notification offers the code that fetches the outcome.
    with rds.Domain.open(hospital["path"]) as domain:  # served: attaches as its admin
        domain.request(request_id).deny("Use the age bands table instead")
    toast = page.locator(".Toastify__toast", has_text="Denied: mean_age()")
    expect(toast).to_be_visible(timeout=30_000)
    expect(toast).to_contain_text("Use the age bands table instead")
    expect(row).to_contain_text("denied")
    screenshot(page, "panel-notification")
    toast.get_by_role("button", name="Insert result code").click()
    inserted = page.locator(".jp-Notebook .jp-Cell", has_text=f'.request("{request_id}")')
    expect(inserted).to_have_count(1)
    expect(inserted).to_contain_text("req.result()")

    # The owner's button opens a notebook of its own with the review desk's code (and runs it).
    owner.get_by_role("button", name="Open review desk").click()
    desk_cell = page.locator(".jp-Notebook .jp-Cell", has_text="domain.review()")
    deadline = time.monotonic() + 30
    while desk_cell.count() == 0 and time.monotonic() < deadline:
        _dismiss_popups(page)  # a new notebook may ask which kernel to use
        page.wait_for_timeout(200)
    expect(desk_cell).to_contain_text(f'rds.Domain.open("{hospital["path"].resolve()}")')
    assert dialogs == []


def test_connect_form_saves_a_profile(page: Page, lab: Lab, hospital: dict[str, Any]) -> None:
    with rds.Domain.open(hospital["path"]) as domain:
        creds = domain.add_scientist(f"bo-{uuid.uuid4().hex[:6]}@uni.example.org")
    page.goto(f"{lab.url}/lab?token={lab.token}")
    panel = open_panel(page)
    panel.get_by_role("button", name="Connect").click()
    form = panel.get_by_role("form", name="Connect to a domain")
    form.get_by_label("Profile name").fill("bo")
    form.get_by_label("Domain URL").fill(hospital["url"])
    form.get_by_label("Email").fill(creds.email)
    form.get_by_label("Password").fill("not the password")
    form.get_by_role("button", name="Add profile").click()
    expect(form.get_by_role("alert")).to_contain_text("password")  # refused, with the reason
    form.get_by_label("Password").fill(creds.password)
    form.get_by_role("button", name="Add profile").click()
    bo = panel.locator('.rds-profile[data-profile="bo"]')
    expect(bo.locator(".rds-status")).to_have_attribute("data-reachable", "true", timeout=30_000)
    expect(bo.locator('.rds-dataset[data-dataset="patients"]')).to_be_visible()
    saved = ProfileStore(lab.profiles).get("bo")
    assert saved.email == creds.email and saved.url == hospital["url"]
    ProfileStore(lab.profiles).remove("bo")


def test_a_domain_that_is_down_shows_as_down(page: Page, lab: Lab, tmp_path: Path) -> None:
    store = ProfileStore(lab.profiles)
    port = free_port()  # nothing listens here
    store.save(
        Profile(
            "gone",
            kind="scientist",
            url=f"http://127.0.0.1:{port}",
            email="a@b.example",
            password="x",
        )
    )
    try:
        page.goto(f"{lab.url}/lab?token={lab.token}")
        panel = open_panel(page)
        gone = panel.locator('.rds-profile[data-profile="gone"]')
        expect(gone.locator(".rds-status")).to_have_attribute("data-reachable", "false")
        expect(gone.locator(".rds-status-text")).to_contain_text("down")
        screenshot_locator(gone, "panel-domain-down")
    finally:
        store.remove("gone")
