"""The Remote Data panel's layout and its notebooks, in real JupyterLab (Debian's Chromium).

Against a served domain whose scientist has sent more requests than one page: the panel's
styles never reach rds's cards in notebooks, a dataset's name is shown whole at the
default sidebar width, the release policy is labelled, "My requests" folds older requests,
and "Open review desk" runs its cell in one notebook however often it is clicked.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
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
    run_notebook_in_lab,
    screenshot_locator,
)
from tests.ui.test_lab_smoke import write_notebook

DATASET = "hospital_admissions_2023"
REQUESTS = 23  # one page of 20, and 3 older

# Every style rule the page has that names an rds class, from style sheets outside
# notebook outputs (an rds card brings its own, scoped under .rds): the panel's, as built.
_PANEL_SELECTORS_JS = """() => {
  const out = [];
  const walk = (rules) => {
    for (const rule of rules) {
      if (rule.cssRules && !rule.selectorText) { walk(rule.cssRules); continue; }
      if (rule.selectorText && /\\.rds\\b/.test(rule.selectorText)) {
        out.push(...rule.selectorText.split(',').map((s) => s.trim()));
      }
    }
  };
  for (const sheet of document.styleSheets) {
    const owner = sheet.ownerNode;
    if (owner && owner.closest && owner.closest('.jp-OutputArea')) { continue; }
    try { walk(sheet.cssRules); } catch (e) { /* another origin's sheet */ }
  }
  return out;
}"""

# Computed styles of the card's parts, with the panel's style sheets on and then off.
_CARD_STYLES_JS = """() => {
  const parts = ['.rds', '.rds-card', '.rds-head', '.rds-title', '.rds-subtitle', '.rds-badge'];
  const root = document.querySelector('.jp-OutputArea-output .rds');
  const read = () => parts.map((sel) => {
    const el = sel === '.rds' ? root : root.querySelector(sel);
    const style = getComputedStyle(el);
    const names = Array.from(style);
    return Object.fromEntries(names.map((name) => [name, style.getPropertyValue(name)]));
  });
  const panelSheets = Array.from(document.styleSheets).filter((sheet) => {
    try { return Array.from(sheet.cssRules).some((r) => (r.cssText || '').includes('.rds-panel')); }
    catch (e) { return false; }
  });
  const withPanel = read();
  panelSheets.forEach((sheet) => { sheet.disabled = true; });
  const withoutPanel = read();
  panelSheets.forEach((sheet) => { sheet.disabled = false; });
  const changed = [];
  parts.forEach((sel, i) => {
    for (const name of Object.keys(withPanel[i])) {
      if (withPanel[i][name] !== withoutPanel[i][name]) {
        changed.push(`${sel} ${name}: ${withoutPanel[i][name]} -> ${withPanel[i][name]}`);
      }
    }
  });
  const title = root.querySelector('.rds-title');
  const style = getComputedStyle(title);
  return {
    panelSheets: panelSheets.length,
    changed,
    text: title.innerText,
    textTransform: style.textTransform,
    textOverflow: style.textOverflow,
  };
}"""

CARD_CELL = """from IPython.display import HTML

from rds.widgets.html import badge, card

HTML(card("Request d819fccc", "<p>" + badge("released", "ok") + "</p>", subtitle="python"))"""


@pytest.fixture(scope="module")
def clinic(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A served domain saved as profiles "clinic" and "clinic-owner"; 23 requests sent."""
    path = tmp_path_factory.mktemp("layout") / "clinic"
    # Room for every request in the queue: none is denied for the cap.
    limits = rds.WorkerLimits(max_waiting_per_scientist=REQUESTS)
    with rds.Domain.create("Layout Clinic", path=path, worker_limits=limits) as domain:
        domain.publish(
            DATASET,
            patients(),
            description="Admissions in 2023",
            bounds={"age": (0, 120)},
            policy=rds.Policy(epsilon_budget=2.0),
        )
        creds = domain.add_scientist("cy@uni.example.org")
    url = serve.start(path, port=free_port())
    session = rds.connect(url, email=creds.email, password=creds.password)
    dataset = session.dataset(DATASET)

    def row_count(df: Any) -> int:
        return len(df)

    ids = [dataset.request(row_count, reason=f"count {i}").id for i in range(REQUESTS)]
    store = ProfileStore(lab.profiles)
    store.save(
        Profile("clinic", kind="scientist", url=url, email=creds.email, password=creds.password)
    )
    store.save(Profile("clinic-owner", kind="owner", path=str(path.resolve())))
    yield {"path": path, "url": url, "ids": ids}
    store.remove("clinic")
    store.remove("clinic-owner")
    serve.stop(path)


def fresh_lab(page: Page, lab: Lab) -> None:
    """JupyterLab in a new workspace: the default layout, nothing restored."""
    page.goto(f"{lab.url}/lab/workspaces/test-{uuid.uuid4().hex[:12]}?token={lab.token}")


def test_panel_styles_never_reach_an_rds_card_in_a_notebook(
    page: Page, lab: Lab, clinic: dict[str, Any]
) -> None:
    notebook = write_notebook(lab.root / f"card-{uuid.uuid4().hex[:8]}.ipynb", CARD_CELL)
    run_notebook_in_lab(page, lab, notebook, timeout=120)
    panel = open_panel(page)
    expect(panel.locator('.rds-profile[data-profile="clinic"] .rds-dataset')).to_have_count(1)
    title = page.locator(".jp-OutputArea-output .rds .rds-title")
    expect(title).to_be_visible()

    styles = page.evaluate(_CARD_STYLES_JS)
    assert styles["panelSheets"] >= 1, styles  # the panel's CSS is on the page
    assert styles["text"] == "Request d819fccc"  # as written, not "REQUEST D819FCCC"
    assert styles["textTransform"] == "none"
    assert styles["textOverflow"] != "ellipsis"
    assert styles["changed"] == []  # no computed property of the card comes from the panel
    screenshot_locator(page.locator(".jp-OutputArea-output").first, "panel-free-card")

    selectors = page.evaluate(_PANEL_SELECTORS_JS)
    assert len(selectors) > 50, selectors  # the built panel CSS, not an empty list
    unscoped = [s for s in selectors if not (s == ".rds-panel" or s.startswith(".rds-panel "))]
    assert unscoped == []


def test_dataset_name_whole_at_default_width_and_policy_labelled(
    page: Page, lab: Lab, clinic: dict[str, Any]
) -> None:
    fresh_lab(page, lab)
    panel = open_panel(page)
    row = panel.locator(
        f'.rds-profile[data-profile="clinic"] .rds-dataset[data-dataset="{DATASET}"]'
    )
    name = row.locator(".rds-dataset-name")
    expect(name).to_have_text(DATASET)
    expect(row).to_contain_text("ε 2 left")  # the budget shares the row with the name

    fit = name.evaluate(
        """(el) => {
          const panel = el.closest('.rds-panel').getBoundingClientRect();
          const box = el.getBoundingClientRect();
          return {
            panelWidth: panel.width,
            sidebarWidth: el.closest('#jp-left-stack').getBoundingClientRect().width,
            scroll: el.scrollWidth, client: el.clientWidth,
            inside: box.left >= panel.left && box.right <= panel.right,
            toggleScroll: el.parentElement.scrollWidth, toggleClient: el.parentElement.clientWidth,
            textOverflow: getComputedStyle(el).textOverflow,
          };
        }"""
    )
    # The default left sidebar (no resize in a fresh workspace) is narrow for this row.
    assert fit["panelWidth"] < 320, fit
    assert fit["scroll"] <= fit["client"], fit
    assert fit["toggleScroll"] <= fit["toggleClient"], fit
    assert fit["inside"], fit
    assert fit["textOverflow"] != "ellipsis", fit
    screenshot_locator(panel, "panel-dataset-name-default-width")

    row.locator(".rds-dataset-toggle").click()
    policy = row.locator(".rds-policy")
    expect(policy).to_be_visible()
    assert policy.inner_text().startswith("Release policy: "), policy.inner_text()
    expect(policy.locator(".rds-label")).to_have_text("Release policy:")


def test_my_requests_shows_the_latest_page_then_older_ones(
    page: Page, lab: Lab, clinic: dict[str, Any]
) -> None:
    fresh_lab(page, lab)
    panel = open_panel(page)
    section = panel.get_by_role("region", name="My requests on clinic")
    rows = section.locator(".rds-request")
    expect(rows).to_have_count(20, timeout=30_000)
    expect(section.locator(".rds-subheading")).to_contain_text(f"({REQUESTS})")
    newest = list(reversed(clinic["ids"]))
    shown = [rows.nth(i).get_attribute("data-request") for i in range(20)]
    assert shown == newest[:20]
    expect(section.get_by_role("button", name="Show fewer")).to_have_count(0)
    screenshot_locator(section, "panel-requests-folded")

    section.get_by_role("button", name="Show 3 older").click()
    expect(rows).to_have_count(REQUESTS)
    assert rows.last.get_attribute("data-request") == clinic["ids"][0]
    expect(section.get_by_role("button", name="Show 3 older")).to_have_count(0)

    section.get_by_role("button", name="Show fewer").click()
    expect(rows).to_have_count(20)
    expect(section.get_by_role("button", name="Show 3 older")).to_be_visible()


_DESK_NOTEBOOKS_JS = """(code) => Array.from(window.jupyterapp.shell.widgets('main'))
  .filter((w) => w.context && w.content && w.content.model)
  .map((w) => ({
    path: w.context.path,
    cells: w.content.model.toJSON().cells
      .filter((c) => c.cell_type === 'code' && [].concat(c.source).join('') === code)
      .map((c) => ({ count: c.execution_count, outputs: c.outputs.length })),
  }))
  .filter((nb) => nb.cells.length > 0)"""


def _current_path(page: Page) -> str | None:
    return page.evaluate(  # type: ignore[no-any-return]
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " return w && w.context ? w.context.path : null; }"
    )


def _untitled(lab: Lab) -> set[str]:
    listing = lab.api("GET", "/api/contents")["content"]
    return {item["path"] for item in listing if item["name"].startswith("Untitled")}


def test_open_review_desk_runs_its_cell_in_one_notebook(
    page: Page, lab: Lab, clinic: dict[str, Any]
) -> None:
    code = f'import rds\ndomain = rds.Domain.open("{clinic["path"].resolve()}")\ndomain.review()'
    before = _untitled(lab)
    other = write_notebook(lab.root / f"other-{uuid.uuid4().hex[:8]}.ipynb", "1 + 1")
    fresh_lab(page, lab)
    panel = open_panel(page)
    button = panel.locator('.rds-profile[data-profile="clinic-owner"]').get_by_role(
        "button", name="Open review desk"
    )

    button.click(timeout=120_000)  # the owner's profile renders once its status is read
    _until(page, lambda: _ran(page, code), "the desk cell run", timeout=120)
    first = page.evaluate(_DESK_NOTEBOOKS_JS, code)
    assert len(first) == 1 and len(first[0]["cells"]) == 1, first  # one notebook, one cell
    desk_path = first[0]["path"]
    screenshot_locator(page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)"), "panel-desk-run")

    # Another notebook in front: the second click must go back to the desk's, not use it.
    page.evaluate(
        "(path) => { void window.jupyterapp.commands.execute('docmanager:open', {path}); }",
        other.name,
    )
    _until(page, lambda: _current_path(page) == other.name, f"{other.name} in front")

    button.click()
    _until(page, lambda: _current_path(page) == desk_path, f"{desk_path} back in front")
    second = page.evaluate(_DESK_NOTEBOOKS_JS, code)
    # The same notebook and cell (none in the other notebook), not run twice in one kernel.
    assert second == first, second
    assert _current_path(page) == desk_path
    assert len(_untitled(lab) - before) == 1  # one notebook made for both clicks


def _ran(page: Page, code: str) -> bool:
    """Whether an open notebook's desk cell has run: an execution count and an output."""
    notebooks = page.evaluate(_DESK_NOTEBOOKS_JS, code)
    return any(c["count"] is not None and c["outputs"] > 0 for nb in notebooks for c in nb["cells"])


def _until(page: Page, done: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        _dismiss_popups(page)
        page.wait_for_timeout(200)
