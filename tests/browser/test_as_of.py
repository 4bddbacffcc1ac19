"""The documentation as released, in a real browser: from a deployment, one click shows the
pages as they were then under a banner, with nothing to write; its link leads back to
today's version."""

import re

import pytest

from tests.browser.support import DEMO, NARROW, expect, log_in, screenshot
from tests.factories import cli_actor, make_deployment
from wiki.models import Page, Project
from wiki.services.pages import edit_page

pytestmark = pytest.mark.browser


@pytest.fixture
def released(demo):
    """A deployment of the demo's churn model, then its model page rewritten."""
    project = Project.objects.get(slug=DEMO)
    deployment = make_deployment(project, model_version="1.2.0")
    model = Page.objects.get(project=project, category="model")
    edit_page(
        model, actor=cli_actor(), base_revision=None, change_reason="Rewritten after the release",
        fields=model.fields | {"architecture": "A transformer, since the release."},
    )  # fmt: skip
    return deployment


def test_from_a_deployment_one_click_shows_the_documentation_as_released(page, released):
    log_in(page)
    page.goto(f"/projects/{DEMO}/deployments/{released.pk}/")
    page.get_by_role("link", name="Documentation as released").click()
    page.wait_for_url(re.compile(rf"/projects/{DEMO}/\?as_of=deployment"))
    banner = page.get_by_role("note")
    expect(banner).to_contain_text("You are reading the documentation as it stood on")
    expect(banner).to_contain_text(f"deployment {released.pk} of 1.2.0 to production")
    page.get_by_role("navigation", name="Documentation categories").get_by_role(
        "link", name=re.compile("^Model")
    ).click()
    page.wait_for_url(re.compile(rf"/projects/{DEMO}/model/\?as_of="))
    expect(page.get_by_text("A transformer, since the release.")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    screenshot(page, "as-of")
    banner.get_by_role("link", name="see today's version").click()
    page.wait_for_url(f"/projects/{DEMO}/model/")
    expect(page.get_by_text("A transformer, since the release.")).to_be_visible()
    expect(page.get_by_role("note")).to_have_count(0)


def test_the_past_needs_no_sideways_scrolling_on_a_phone(new_page, released):
    page = new_page(viewport=NARROW)
    log_in(page)
    page.goto(f"/projects/{DEMO}/model/?as_of=deployment:{released.pk}")
    expect(page.get_by_role("note")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= NARROW["width"]
