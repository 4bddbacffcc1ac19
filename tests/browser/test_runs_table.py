"""The runs table, a deployment's page and a model version's page in a real browser, on
the demo data: filter and sort the runs, pick two to compare, follow a model version to
its deployment; axe-core finds nothing serious on them."""

import re

import pytest

from tests.browser.support import DEMO, expect, log_in, screenshot, serious_violations
from wiki.models import Deployment

pytestmark = pytest.mark.browser


def test_filter_and_sort_the_runs_then_pick_two_to_compare(page):
    log_in(page)
    page.goto(f"/projects/{DEMO}/records/")
    page.get_by_role("link", name=re.compile("All training runs")).click()
    page.wait_for_url(f"/projects/{DEMO}/runs/")
    page.get_by_label("Metric conditions").fill("auc > 0.8")
    page.get_by_label("Sort by").select_option("metric:auc")
    page.get_by_label("Order").select_option("asc")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"where=auc"))
    auc = page.locator('table.runs td[data-label="auc"]')
    expect(auc).to_have_text(["0.812", "0.836", "0.841"])
    screenshot(page, "runs-table")

    bad = page.get_by_label("Metric conditions")
    bad.fill("auc >> 0.8")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("“> 0.8” is not a number")).to_be_visible()

    page.go_back()
    ids = page.locator("table.runs tbody tr").evaluate_all("rows => rows.map(r => r.id.slice(4))")
    page.get_by_label(f"Select run {ids[0]}").check()
    page.get_by_label(f"Select run {ids[2]}").check()
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url(f"/projects/{DEMO}/runs/compare/?run={ids[0]}&run={ids[2]}")


def test_a_model_version_leads_to_its_production_deployment_and_its_timeline(page):
    log_in(page)
    page.goto(f"/projects/{DEMO}/records/")
    page.locator("#version-" + str(_version_pk("1.2.0"))).get_by_role("link").click()
    page.wait_for_url(f"/projects/{DEMO}/model-versions/1.2.0/")
    production = page.locator("#environment-production")
    expect(production).to_contain_text("This version")
    screenshot(page, "model-version")
    production.get_by_role("link", name=re.compile("deployment #")).click()
    page.wait_for_url(re.compile(r"/deployments/\d+/$"))
    expect(page.locator(".timeline li")).to_contain_text(["recorded as Succeeded"])
    expect(page.get_by_text("✓ passed").first).to_be_visible()
    screenshot(page, "deployment")


def _version_pk(version):
    return Deployment.objects.get(
        project__slug=DEMO, model_version__version=version, environment="production"
    ).model_version_id


@pytest.mark.parametrize("screen", ["runs", "deployment", "model-version"])
def test_axe_finds_nothing_serious_on_the_records_pages(new_page, demo, axe_source, screen):
    page = new_page(bypass_csp=True)
    log_in(page)
    deployment = Deployment.objects.filter(project__slug=DEMO).first()
    url = {
        "runs": f"/projects/{DEMO}/runs/",
        "deployment": f"/projects/{DEMO}/deployments/{deployment.pk}/",
        "model-version": f"/projects/{DEMO}/model-versions/{deployment.model_version.version}/",
    }[screen]
    page.goto(url)
    assert serious_violations(page, axe_source) == []
