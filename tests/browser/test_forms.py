"""The creation forms in a real browser: the slug fills itself in from the name."""

import pytest

from tests.browser.support import DEMO, expect, log_in
from wiki.models import Page, Project

pytestmark = pytest.mark.browser


def test_a_new_project_s_slug_follows_its_name_until_it_is_edited(page):
    log_in(page)
    page.goto("/projects/new/")
    name, slug = page.get_by_label("Name"), page.get_by_label("Slug")
    name.press_sequentially("Churn Prédiction v2!")
    expect(slug).to_have_value("churn-prediction-v2")
    # Once the slug is typed by hand, the name no longer changes it.
    slug.fill("churn-v2")
    name.fill("Churn Prédiction v2! (EU)")
    expect(slug).to_have_value("churn-v2")
    page.get_by_label("Owner team").fill("Retention analytics")
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url("/projects/churn-v2/overview/edit/")
    assert Project.objects.get(slug="churn-v2").name == "Churn Prédiction v2! (EU)"


def test_a_new_free_page_s_slug_follows_its_title_but_keeps_a_link_s(page):
    log_in(page)
    page.goto(f"/projects/{DEMO}/pages/new/")
    page.get_by_label("Title").press_sequentially("On-call   runbook: retraining")
    expect(page.get_by_label("Slug")).to_have_value("on-call-runbook-retraining")
    page.get_by_role("button", name="Create page").click()
    page.wait_for_url(f"/projects/{DEMO}/on-call-runbook-retraining/")
    assert Page.objects.get(project__slug=DEMO, slug="on-call-runbook-retraining")

    # Offered by a [[link]] to a page not written yet: the slug is the link's.
    page.goto(f"/projects/{DEMO}/pages/new/?slug=glossary")
    page.get_by_label("Title").fill("")
    page.get_by_label("Title").press_sequentially("Terms we use")
    expect(page.get_by_label("Slug")).to_have_value("glossary")
