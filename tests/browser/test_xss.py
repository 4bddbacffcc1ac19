"""Script saved in a page never runs: not on the page, not in the live preview, not in a
comparison of revisions or in search results, not when its links are clicked."""

import pytest

from tests.browser.support import DEMO, expect, log_in

pytestmark = pytest.mark.browser

PAYLOADS = """Payloads that must stay inert.

<script>window.__xss = 1; alert("script")</script>

<img src=x onerror="window.__xss = 1; alert('img')">

[click me](javascript:window.__xss=1;alert('link'))

<a href="javascript:window.__xss=1;alert('raw link')">raw link</a>

<svg onload="window.__xss = 1; alert('svg')"><circle r="5"></circle></svg>

<iframe src="javascript:window.__xss=1;alert('iframe')"></iframe>

<p style="background:url(javascript:window.__xss=1)" onclick="window.__xss=1">styled</p>
"""


def assert_inert(page, dialogs):
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert dialogs == []


def click_every_link(page, container):
    for name in ["click me", "raw link", "styled"]:
        container.get_by_text(name, exact=True).click()
    # A click that navigated would have left the page.
    expect(container.get_by_text("Payloads that must stay inert.")).to_be_visible()


def test_a_saved_xss_payload_never_runs(page):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page)
    page.goto(f"/projects/{DEMO}/overview/edit/")
    page.locator("#id_purpose").fill(PAYLOADS)
    page.get_by_label("Body", exact=True).fill(PAYLOADS)
    preview = page.locator("[data-live-preview]")
    expect(preview).to_contain_text("Payloads that must stay inert.")
    assert preview.locator("script, iframe, svg, [onerror], [onload], [style]").count() == 0
    click_every_link(page, preview)
    assert_inert(page, dialogs)

    page.get_by_label("Change reason").fill("Payloads")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(f"/projects/{DEMO}/overview/")
    body = page.locator(".markdown.body")
    click_every_link(page, body)
    assert_inert(page, dialogs)

    page.goto(f"/projects/{DEMO}/overview/history/")
    page.get_by_role("button", name="Compare the chosen revisions").click()
    expect(page.locator("table.diff").first).to_contain_text("<script>window.__xss = 1")
    assert_inert(page, dialogs)

    page.goto("/search/?q=inert")
    expect(page.locator(".results mark").first).to_be_visible()
    assert_inert(page, dialogs)
