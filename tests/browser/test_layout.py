"""Layout at the widths people use (1280 px and a 375 px phone), measured in a real
browser: nothing pushed off the screen, clipped, or wrapped onto a second row."""

import pytest

from tests.browser.support import DEMO, NARROW, WIDE, log_in, screenshot
from tests.factories import ProjectFactory, make_deployment, make_training_run
from wiki.models import Project

pytestmark = pytest.mark.browser

LONG_NAME = "Churn" + "X" * 120  # 125 characters without a space

BOXES = """selector => [...document.querySelectorAll(selector)].map(element => {
    const box = element.getBoundingClientRect();
    return {left: box.left, right: box.right, top: box.top,
            scroll: element.scrollWidth, client: element.clientWidth};
})"""


def boxes(page, selector):
    return page.evaluate(BOXES, selector)


@pytest.mark.parametrize("viewport", [WIDE, NARROW], ids=["1280px", "375px"])
def test_a_long_project_name_keeps_the_dashboard_on_screen(new_page, demo, viewport):
    ProjectFactory(slug="long", name=LONG_NAME, summary="S" * 300, owner_team="T" * 100)
    make_deployment(Project.objects.get(slug="long"), "v" * 60, environment="e" * 50)
    page = new_page(viewport=viewport)
    log_in(page)
    screenshot(page, f"dashboard-long-name-{viewport['width']}px")
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    cells = boxes(page, "table.dashboard th, table.dashboard td")
    assert cells and all(cell["left"] >= 0 and cell["right"] <= viewport["width"] for cell in cells)
    name = page.get_by_role("link", name=LONG_NAME)
    assert name.bounding_box()["x"] + name.bounding_box()["width"] <= viewport["width"]


def test_the_project_tabs_fit_in_one_row_at_1280_px(page):
    # Four tabs marked stale besides their scores: the widest the tab bar gets.
    project = Project.objects.get(slug=DEMO)
    make_deployment(project, "1.3.0", environment="staging")
    make_training_run(project, "1.3.0", dataset_name="events", dataset_version="2099-01")
    log_in(page)
    page.goto(f"/projects/{DEMO}/")
    screenshot(page, "project-tabs-1280px")
    tabs = boxes(page, "nav.tabs a")
    assert len(tabs) == 11
    assert len(page.locator("nav.tabs .stale-mark").all()) == 4
    assert {tab["top"] for tab in tabs} == {tabs[0]["top"]}, tabs
    (bar,) = boxes(page, "nav.tabs")
    assert tabs[-1]["right"] <= bar["right"]


@pytest.mark.parametrize("category", ["deployment", "model"])
def test_a_chart_s_table_is_not_clipped_at_1280_px(page, category):
    log_in(page)
    page.goto(f"/projects/{DEMO}/{category}/")
    (wrap,) = boxes(page, ".chart-and-table .table-wrap")
    (table,) = boxes(page, ".chart-and-table table")
    assert wrap["scroll"] <= wrap["client"], "the table scrolls sideways in its box"
    assert table["right"] <= wrap["right"] <= WIDE["width"]
