"""What people do in the wiki every day, in a real browser: browse and search, edit with the
live preview, resolve an edit conflict, compare and restore revisions, approve a page,
export a report."""

import re

import pytest

from tests.browser.support import DEMO, expect, log_in, screenshot
from wiki.models import Page
from wiki.services import exports as export_service

pytestmark = pytest.mark.browser


def revision(slug):
    return Page.objects.get(project__slug=DEMO, slug=slug).revision


def test_log_in_see_the_dashboard_search_and_open_a_project(page):
    page.goto("/accounts/login/")
    screenshot(page, "login")
    log_in(page)
    dashboard = page.locator("table.dashboard")
    expect(dashboard.get_by_role("link", name="Churn prediction")).to_be_visible()
    expect(dashboard.get_by_role("link", name="Fraud detection")).to_be_visible()
    screenshot(page, "dashboard")

    search = page.get_by_role("searchbox", name="Search the wiki")
    search.fill("retention")
    search.press("Enter")
    page.wait_for_url("/search/?q=retention")
    expect(page.locator(".results mark").first).to_have_text(re.compile("retention", re.I))
    screenshot(page, "search")

    page.locator(".results").get_by_role("link", name="Churn prediction").first.click()
    page.wait_for_url(f"/projects/{DEMO}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Churn prediction")
    tabs = page.get_by_role("navigation", name="Documentation categories")
    expect(tabs.get_by_role("link", name=re.compile("^Overview"))).to_have_attribute(
        "aria-current", "page"
    )
    screenshot(page, "project")


def test_edit_with_the_live_preview_and_help_texts_then_save_with_the_keyboard(page):
    log_in(page)
    page.goto(f"/projects/{DEMO}/overview/")
    page.get_by_role("link", name="Edit", exact=True).click()
    page.wait_for_url(f"/projects/{DEMO}/overview/edit/")

    # The help text is tied to its input and stands beside it on a wide screen.
    purpose = page.locator("#id_purpose")
    help_text = page.locator("#id_purpose_helptext")
    expect(purpose).to_have_attribute("aria-describedby", "id_purpose_helptext")
    expect(help_text).to_contain_text("The problem the model solves")
    input_box, help_box = purpose.bounding_box(), help_text.bounding_box()
    assert help_box["x"] >= input_box["x"] + input_box["width"]

    body = page.get_by_label("Body", exact=True)
    preview = page.locator("[data-live-preview]")
    expect(preview).to_be_visible()
    body.fill("## Live notes\n\nSee the [[model]] page and **this**.")
    expect(preview.get_by_role("heading", name="Live notes")).to_be_visible()
    expect(preview.locator("a.wikilink")).to_have_attribute("href", f"/projects/{DEMO}/model/")
    expect(preview.locator("strong")).to_have_text("this")
    # Beside the editor on a wide screen.
    assert preview.bounding_box()["x"] >= body.bounding_box()["x"] + body.bounding_box()["width"]
    expect(page.locator("[data-save-hint]")).to_have_text("or press Ctrl+S")
    screenshot(page, "edit-live-preview")

    page.get_by_label("Change reason").fill("Notes from the live preview")
    saved_as = revision("overview") + 1
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.dismiss()))
    body.press("Control+s")
    page.wait_for_url(f"/projects/{DEMO}/overview/")
    expect(page.locator(".message.success")).to_have_text(f"Saved revision {saved_as}.")
    expect(page.locator(".body").get_by_role("heading", name="Live notes")).to_be_visible()
    assert dialogs == [], "saving asked whether to leave the page"
    assert revision("overview") == saved_as


def test_leaving_the_edit_form_with_unsaved_changes_asks_first(page):
    log_in(page)
    edit_url = f"/projects/{DEMO}/model/edit/"
    page.goto(edit_url)
    cancel = page.locator(".actions").get_by_role("link", name="Cancel")
    cancel.click()  # nothing changed: no question
    # Arriving is what counts, not the page's figures having loaded ("commit").
    page.wait_for_url(f"/projects/{DEMO}/model/", wait_until="commit")

    page.goto(edit_url)
    body = page.get_by_label("Body", exact=True)
    body.press_sequentially(" Unsavedchange")
    # The live preview redraws once typing pauses and may move the buttons below it: a
    # click aimed before that lands where Cancel was. Wait until it shows the change.
    expect(page.locator("[data-live-preview]")).to_contain_text("Unsavedchange")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.type), dialog.dismiss()))  # stay
    cancel.click()  # returns once the dialog is answered
    assert asked == ["beforeunload"]
    expect(page.get_by_role("heading", name="Edit Model")).to_be_visible()
    assert page.url.endswith(edit_url)

    # Typing the text back as it was is not a change.
    body.press("Backspace")
    cancel.click()
    page.wait_for_url(f"/projects/{DEMO}/model/", wait_until="commit")


def test_an_edit_conflict_shows_both_texts_and_a_merge_saves(page, new_page):
    log_in(page)
    other = new_page()
    log_in(other, "erik")
    edit_url = f"/projects/{DEMO}/data/edit/"
    page.goto(edit_url)
    other.goto(edit_url)

    page.get_by_label("Body", exact=True).fill("Refreshed monthly by the data team.")
    page.get_by_label("Change reason").fill("Refresh cadence")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".message.success")).to_contain_text("Saved revision")

    other.get_by_label("Body", exact=True).fill("Owned by the data platform team.")
    other.get_by_label("Change reason").fill("Ownership")
    other.get_by_role("button", name="Save", exact=True).click()
    expect(other.get_by_role("alert")).to_contain_text("This was changed while you were editing")
    expect(other.get_by_role("alert")).to_contain_text("by demo")
    expect(other.locator(".conflict-diff table.diff")).to_contain_text("Refreshed monthly")
    screenshot(other, "conflict")

    merged = "Refreshed monthly by the data team.\n\nOwned by the data platform team."
    other.get_by_label("Body", exact=True).fill(merged)
    saved_as = revision("data") + 1
    other.get_by_role("button", name="Save", exact=True).click()
    other.wait_for_url(f"/projects/{DEMO}/data/")
    expect(other.locator(".message.success")).to_have_text(f"Saved revision {saved_as}.")
    expect(other.locator(".body")).to_contain_text("Refreshed monthly")
    expect(other.locator(".body")).to_contain_text("Owned by the data platform team.")


def test_compare_two_revisions_then_restore_the_older(page):
    log_in(page)
    page.goto(f"/projects/{DEMO}/overview/")
    page.get_by_role("link", name="History", exact=True).click()
    page.wait_for_url(f"/projects/{DEMO}/overview/history/")
    latest = revision("overview")
    # The newest row is chosen as "to"; revision 1 is the oldest row.
    page.get_by_label("From revision 1", exact=True).last.check()
    screenshot(page, "history")
    page.get_by_role("button", name="Compare the chosen revisions").click()
    expect(page.get_by_role("heading", level=2)).to_have_text(
        f"Overview: revision 1 → revision {latest}"
    )
    expect(page.locator("table.diff").first).to_be_visible()
    expect(page.locator("tr.insert, tr.replace").first).to_be_visible()
    screenshot(page, "compare")

    page.goto(f"/projects/{DEMO}/overview/revisions/1/")
    page.get_by_role("link", name="Restore…").click()
    expect(page.get_by_role("heading", level=2)).to_have_text("Restore revision 1 of Overview?")
    page.get_by_label("Why restore it").fill("Back to the first version")
    page.get_by_role("button", name="Restore revision 1").click()
    page.wait_for_url(f"/projects/{DEMO}/overview/")
    expect(page.locator(".message.success")).to_have_text(
        f"Restored revision 1 as revision {latest + 1}."
    )
    assert revision("overview") == latest + 1


def test_an_editor_submits_a_page_and_another_maintainer_approves_it(new_page, demo):
    editor = new_page()
    log_in(editor, "erik")
    editor.goto(f"/projects/{DEMO}/data/edit/")
    editor.get_by_label("Body", exact=True).fill("Checked against the June snapshot.")
    editor.get_by_label("Change reason").fill("Snapshot check")
    editor.get_by_role("button", name="Save", exact=True).click()
    editor.get_by_role("button", name="Submit for review").click()
    expect(editor.locator(".review")).to_contain_text("In review")

    maintainer = new_page()
    log_in(maintainer, "maria")
    maintainer.goto(f"/projects/{DEMO}/data/")
    maintainer.get_by_label("Approval comment").fill("Matches the snapshot.")
    current = revision("data")
    maintainer.get_by_role("button", name=f"Approve revision {current}").click()
    expect(maintainer.locator(".message.success")).to_have_text(f"Approved revision {current}.")
    expect(maintainer.locator(".review")).to_contain_text(f"Approved: revision {current}, by maria")
    screenshot(maintainer, "approved")


def test_the_author_of_a_page_in_review_is_told_who_approves_it_and_sees_its_history_once(
    new_page, demo
):
    # The demo user wrote revision 2 of the model page and submitted it for review.
    author = new_page()
    log_in(author)
    author.goto(f"/projects/{DEMO}/model/")
    review = author.locator(".review")
    expect(review).to_contain_text(
        "Four eyes: you wrote revision 2; another maintainer approves it: ask maria."
    )
    expect(review.get_by_role("button", name=re.compile("^Approve"))).to_have_count(0)

    author.get_by_role("link", name="History", exact=True).click()
    rows = author.locator("table.list tbody tr")
    expect(rows).to_have_count(2)  # revisions 2 and 1; the submission is an event of 2
    expect(rows.first).to_contain_text("Submitted for review by demo")
    screenshot(author, "history-events")
    author.get_by_role("button", name="Compare the chosen revisions").click()
    expect(author.get_by_role("heading", level=2)).to_have_text("Model: revision 1 → revision 2")
    expect(author.locator("main")).to_contain_text("(“Demo content”)")
    expect(author.locator("main")).not_to_contain_text("{#")

    maintainer = new_page()
    log_in(maintainer, "maria")
    maintainer.goto(f"/projects/{DEMO}/model/")
    expect(maintainer.get_by_role("button", name="Approve revision 2")).to_be_visible()


def test_compare_marks_the_words_that_changed_inside_a_line(page):
    log_in(page, "erik")
    page.goto(f"/projects/{DEMO}/data/edit/")
    preprocessing = page.locator("#id_preprocessing")
    preprocessing.fill(preprocessing.input_value().replace("60 days", "90 days"))
    page.get_by_label("Change reason").fill("Longer tenure cut-off")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(f"/projects/{DEMO}/data/")
    expect(page.locator(".review")).to_contain_text("Only maintainers approve: ask demo or maria.")

    page.get_by_role("link", name="History", exact=True).click()
    page.get_by_role("button", name="Compare the chosen revisions").click()
    latest = revision("data")
    expect(page.get_by_role("heading", level=2)).to_have_text(
        f"Data: revision {latest - 1} → revision {latest}"
    )
    expect(page.locator("table.diff del")).to_have_text(["60"])
    expect(page.locator("table.diff ins")).to_have_text(["90"])
    screenshot(page, "compare-words")


def test_edit_and_history_sit_in_the_same_place_on_every_page(page):
    log_in(page)
    places = {}
    for slug in ("overview", "data", "model", "deployment", "workflow", "maintenance",
                 "runbook-retraining"):  # fmt: skip
        page.goto(f"/projects/{DEMO}/{slug}/")
        head = page.locator(".page-head").first
        edit = head.get_by_role("link", name="Edit", exact=True).bounding_box()
        history = head.get_by_role("link", name="History", exact=True).bounding_box()
        assert edit["x"] < history["x"] and edit["y"] == history["y"]
        places[slug] = (edit["x"], edit["y"], history["x"])
    assert len(set(places.values())) == 1, places


def test_an_export_s_progress_bar_reaches_the_download_link(page, monkeypatch):
    # No worker takes the job yet, so the page shows it waiting; the test then builds it
    # as a worker would, and exports.js must notice and show the download link.
    queued = []
    monkeypatch.setattr(export_service.outbox, "send", lambda task, model, ids: queued.extend(ids))
    log_in(page)
    page.goto(f"/projects/{DEMO}/")
    page.get_by_role("link", name="Export", exact=True).click()
    page.get_by_label("Format").select_option("markdown")
    page.get_by_role("button", name="Request export").click()
    expect(page.locator("tr[data-export-status] progress")).to_be_visible()
    expect(page.locator("[data-export-label]")).to_have_text("Queued 0%")
    screenshot(page, "export-queued")

    export_service.build(queued.pop())
    expect(page.get_by_role("button", name="Download")).to_be_visible()
    expect(page.locator("tr[data-export-status]")).to_have_count(0)
    screenshot(page, "export-done")
