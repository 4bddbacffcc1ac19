"""Accessibility and layout in a real browser: axe-core finds nothing serious or critical
on the main screens (in light and dark mode, some on a phone too), the keyboard reaches the
navigation and the search box with a visible focus, and a 375 px wide phone needs no
sideways scrolling."""

import pytest

from tests.browser.support import DEMO, NARROW, expect, log_in, screenshot, serious_violations
from wiki.history import Actor, Source
from wiki.models import Project
from wiki.services.exports import build, request_export

pytestmark = pytest.mark.browser

SCREENS = {
    "login": "/accounts/login/",
    "dashboard": "/",
    "project": f"/projects/{DEMO}/model/",
    "deployment": f"/projects/{DEMO}/deployment/",
    "edit": f"/projects/{DEMO}/overview/edit/",
    "history": f"/projects/{DEMO}/overview/history/",
    "compare": f"/projects/{DEMO}/overview/compare/?from=1&to=2",
    "search": "/search/?q=model",
    "export": f"/projects/{DEMO}/exports/",
    "attachment": f"/projects/{DEMO}/model/attachments/roc-curve.png/versions/",
    "template": f"/projects/{DEMO}/settings/template/",
    "inventory": "/inventory/",
}


def open_screen(page, screen):
    """Log in (except for the login screen) and open ``screen`` as a person sees it."""
    if screen != "login":
        log_in(page)
    if screen == "export":
        # One export done and one waiting, so the list shows a link and a progress bar.
        project, cli = Project.objects.get(slug=DEMO), Actor(None, Source.CLI)
        build(request_export(project, actor=cli, format="json", enqueue=False).pk)
        request_export(project, actor=cli, format="markdown", enqueue=False)
    page.goto(SCREENS[screen])
    if screen == "edit":
        expect(page.locator("[data-live-preview] p").first).to_be_visible()


# Every screen in light and dark mode; those with charts, tables and the editor on a phone.
AXE_RUNS = [(screen, mode) for mode in ("light", "dark") for screen in SCREENS] + [
    (screen, "375px") for screen in ("dashboard", "project", "deployment", "edit", "inventory")
]


@pytest.mark.parametrize(("screen", "mode"), AXE_RUNS)
def test_axe_finds_nothing_serious_on_the_main_screens(new_page, demo, axe_source, screen, mode):
    # bypass_csp: the site's CSP refuses the injected axe script, and must stay as it is.
    if mode == "375px":
        page = new_page(viewport=NARROW, bypass_csp=True)
    else:
        page = new_page(color_scheme=mode, bypass_csp=True)
    open_screen(page, screen)
    assert serious_violations(page, axe_source) == []


def test_the_keyboard_reaches_the_navigation_and_the_search_box_with_a_visible_focus(page):
    log_in(page)
    page.goto(f"/projects/{DEMO}/")
    # Each focused element: its accessible text, and whether an outline shows it.
    focused = """() => {
        const element = document.activeElement;
        const style = getComputedStyle(element);
        return {
            name: element.getAttribute("aria-label") || element.labels?.[0]?.textContent
                || element.textContent.trim(),
            visible: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0,
        };
    }"""
    reached = []
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.append(page.evaluate(focused))
        if reached[-1]["name"] == "Search the wiki":
            break
    names = [element["name"] for element in reached]
    assert names[0] == "Skip to content"
    assert "Dashboard" in names and names[-1] == "Search the wiki", names
    assert all(element["visible"] for element in reached), reached
    screenshot(page, "keyboard-focus-search")

    # The skip link takes the keyboard past the header, to the page's content.
    page.reload()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_in_viewport()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null")


@pytest.mark.parametrize("screen", ["dashboard", "project", "edit", "inventory"])
def test_a_375_px_wide_screen_needs_no_sideways_scrolling(new_page, demo, screen):
    page = new_page(viewport=NARROW)
    open_screen(page, screen)
    screenshot(page, f"375px-{screen}")
    assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]


def test_on_a_narrow_screen_help_and_preview_come_under_what_they_explain(new_page, demo):
    page = new_page(viewport=NARROW)
    open_screen(page, "edit")
    purpose = page.locator("#id_purpose").bounding_box()
    purpose_help = page.locator("#id_purpose_helptext").bounding_box()
    assert purpose_help["y"] >= purpose["y"] + purpose["height"]
    body = page.get_by_label("Body", exact=True).bounding_box()
    assert page.locator("[data-live-preview]").bounding_box()["y"] > body["y"] + body["height"]
