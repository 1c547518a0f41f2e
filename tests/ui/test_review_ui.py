"""The review desk and the scientist's live status, rendered by real JupyterLab in Chromium.

One notebook plays both roles in one kernel: the scientist submits a request (with script
payloads in the reason, and the owner's dataset description holding more), the owner opens
``domain.review()``. The browser then clicks the desk's real buttons, and the scientist's
request widget, a cell above, moves to "released" by itself. Screenshots of both are kept
under ``tests/artifacts/ui/``; no payload may ever run (a JavaScript dialog fails the test).
"""

from __future__ import annotations

import uuid

from playwright.sync_api import Dialog, Page, expect

from tests.ui.lab import Lab, run_notebook_in_lab, screenshot, screenshot_locator
from tests.ui.test_lab_smoke import write_notebook

PAYLOAD = "<img src=x onerror=\"alert('img')\"><script>alert('script')</script>"

SETUP = f"""
import tempfile
from pathlib import Path

import pandas as pd

import rds

PAYLOAD = {PAYLOAD!r}
workdir = Path(tempfile.mkdtemp(prefix="rds-ui-"))
domain = rds.Domain.create("UI Hospital", path=workdir / "domain")
frame = pd.DataFrame({{
    "age": [34, 51, 68, 45, 72, 29, 60, 55, 41, 38, 66, 49] * 3,
    "ward": ["cardio", "onco", "cardio", "neuro"] * 9,
}})
domain.publish(
    "patients", frame, description="Admissions " + PAYLOAD,
    bounds={{"age": (0, 120)}}, categories={{"ward": ["cardio", "onco", "neuro"]}},
    policy=rds.Policy(epsilon_budget=1.0, auto_release="dp"),
)
creds = domain.add_scientist("ada@uni.example.org")
session = rds.connect(domain, email=creds.email, password=creds.password)


def mean_age(df):
    return round(float(df["age"].mean()), 2)


req = session.dataset("patients").request(mean_age, reason="MARKER age profile " + PAYLOAD)
dp = session.dataset("patients").sql(
    "SELECT ward, COUNT(*) AS n FROM patients GROUP BY ward", epsilon=0.4, reason="counts"
)
dp.result(timeout=120)
"""


def _notebook(lab: Lab, marker: str) -> str:
    path = write_notebook(
        lab.root / f"review-{marker}.ipynb",
        SETUP.replace("MARKER", marker),
        "session.dataset('patients')",  # metadata, schema and mock preview
        "req",  # the scientist's live status widget
        "session.budget('patients')",
        "desk = domain.review(refresh_every=1.0)\ndesk.select(req.id)\ndesk",
    )
    return str(path)


def test_review_desk_and_request_status_in_jupyterlab(page: Page, lab: Lab) -> None:
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    # Tall enough that the whole desk fits: Lab scrolls inside the notebook, not the page.
    page.set_viewport_size({"width": 1400, "height": 3000})
    marker = uuid.uuid4().hex[:8]
    notebook = _notebook(lab, marker)
    run_notebook_in_lab(page, lab, lab.root / notebook.rsplit("/", 1)[-1], timeout=240)

    outputs = page.locator(".jp-Cell .jp-OutputArea-output")
    tracker = outputs.filter(has=page.locator(".rds-tracker")).first
    desk = page.locator(".rds-review-desk").first
    expect(tracker).to_be_visible(timeout=30_000)
    expect(desk).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Loading widget")).to_have_count(0)

    # The scientist's view: the request submitted, their reason shown as text, not markup.
    expect(tracker).to_contain_text("submitted")
    expect(tracker).to_contain_text(f"{marker} age profile {PAYLOAD}")
    # The dataset as the scientist sees it: the owner's description is text, not markup.
    dataset = outputs.filter(has_text="Schema").first
    expect(dataset).to_contain_text(f"Admissions {PAYLOAD}")
    expect(dataset).to_contain_text("cardio")  # the mock preview
    screenshot_locator(dataset, "scientist-dataset")
    # The budget: spent and left, drawn as bars with no external asset.
    budget = outputs.filter(has_text="ε").filter(has=page.locator("svg")).first
    expect(budget).to_contain_text("0.4")
    expect(budget).to_contain_text("0.6")

    # The owner's desk: the queue, the selected request's detail, the disabled release.
    expect(desk).to_contain_text("UI Hospital")
    expect(desk).to_contain_text(f"{marker} age profile {PAYLOAD}")
    expect(desk).to_contain_text("def mean_age(df):")
    expect(desk.get_by_text("Admissions")).to_have_count(0)  # owner text is not in the desk
    approve = desk.get_by_role("button", name="Approve & release")
    run_private = desk.get_by_role("button", name="Run on private")
    expect(approve).to_be_disabled()
    screenshot_locator(desk, "review-desk-before-run")

    # Real clicks in the browser travel to the kernel: run in the sandbox, then release.
    run_private.click()
    expect(desk).to_contain_text("Preview on private data", timeout=120_000)
    expect(desk).to_contain_text("50.67")  # mean age of the 36 patients, in the preview
    expect(approve).to_be_enabled(timeout=30_000)
    expect(tracker).to_contain_text("awaiting review", timeout=30_000)
    desk_shot = screenshot_locator(desk, "review-desk-after-run")
    approve.click()
    expect(desk).to_contain_text("Released request", timeout=30_000)

    # The scientist's widget moved on by itself: no cell was re-run.
    expect(tracker).to_contain_text("released", timeout=30_000)
    expect(tracker).to_contain_text("pass")
    tracker_shot = screenshot_locator(tracker, "scientist-request-status")

    desk.get_by_role("tab", name="History").click()
    expect(desk).to_contain_text("approved")
    expect(desk).to_contain_text("owner@")
    screenshot_locator(desk, "review-desk-history")
    screenshot(page, "review-notebook")

    for shot in (desk_shot, tracker_shot):
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5_000
    # Nothing written by anyone ran: no alert, no injected element.
    assert dialogs == []
    assert page.locator(".jp-OutputArea-output img[src='x']").count() == 0
    assert page.locator(".jp-OutputArea-output script").count() == 0
