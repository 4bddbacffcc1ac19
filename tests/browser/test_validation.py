"""Independent validation in a real browser: a validator opens a validation and files a
finding, the editor proposes a remediation, the validator closes it and signs the
conclusion; the screens pass axe and fit a phone."""

import pytest
from django.contrib.auth import get_user_model

from tests.browser.support import DEMO, NARROW, expect, log_in, screenshot, serious_violations
from wiki.history import Actor, Source
from wiki.models import Membership, Project
from wiki.services.validations import (
    conclude_validation,
    file_finding,
    open_validation,
    propose_remediation,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def validator(demo):
    """vera, who views fraud-detection in the demo, validates churn-prediction too."""
    vera = get_user_model().objects.get(username="vera")
    Membership.objects.create(
        project=Project.objects.get(slug=DEMO), user=vera, role=Membership.Role.VALIDATOR
    )
    return vera


def next_numbers():
    """The numbers the next validation and finding of the demo project get (the demo has
    victor's validation already)."""
    project = Project.objects.get(slug=DEMO)
    return project.validations.count() + 1, project.findings.count() + 1


def test_a_finding_from_filing_to_the_signed_conclusion(new_page, validator):
    number, finding = next_numbers()
    vera = new_page()
    log_in(vera, "vera")
    vera.goto(f"/projects/{DEMO}/")
    vera.get_by_role("link", name="Validation", exact=True).click()
    vera.get_by_role("link", name="Open a validation").click()
    vera.get_by_label("Title").fill("Annual validation")
    vera.get_by_role("button", name="Open the validation").click()
    expect(vera.locator(".message.success")).to_contain_text(f"Validation {number} is open")

    vera.get_by_role("link", name="File a finding").click()
    vera.get_by_label("Title").fill("The split leaks the future")
    vera.get_by_label("Severity").select_option("high")
    vera.get_by_label("Description (Markdown)").fill("The test split overlaps training.")
    vera.get_by_label("Page", exact=True).select_option("data")
    vera.get_by_label("Owner").fill("erik")
    vera.get_by_role("button", name="File the finding").click()
    expect(vera.locator(".message.success")).to_have_text(f"Finding {finding} is filed.")

    erik = new_page()
    log_in(erik, "erik")
    erik.goto(f"/projects/{DEMO}/findings/{finding}/")
    erik.get_by_label("Remediation (Markdown)").fill("Split by time from now on.")
    erik.get_by_role("button", name="Propose the remediation").click()
    expect(erik.locator(".message.success")).to_have_text(
        f"Finding {finding} is remediation proposed."
    )

    vera.goto(f"/projects/{DEMO}/findings/{finding}/")
    vera.get_by_role("button", name="Close: remediated").click()
    expect(vera.locator(".message.success")).to_have_text(f"Finding {finding} is closed.")
    expect(vera.locator(".timeline")).to_contain_text("Remediation proposed")

    vera.goto(f"/projects/{DEMO}/validations/{number}/")
    vera.get_by_label("Outcome").select_option("approved")
    vera.get_by_label("Conclusion (Markdown)").fill("Fit for use.")
    vera.get_by_role("button", name="Sign the conclusion").click()
    expect(vera.locator(".signed")).to_contain_text("Signed by vera")
    screenshot(vera, "validation-signed")


@pytest.mark.parametrize("mode", ["light", "dark"])
@pytest.mark.parametrize("screen", ["tab", "validation", "finding"])
def test_the_validation_screens_pass_axe_and_fit_a_phone(
    new_page, validator, axe_source, screen, mode
):
    """Every state on show: a high finding open, a medium one with a remediation proposed,
    the validation signed "approved with conditions"."""
    number, finding = next_numbers()
    project = Project.objects.get(slug=DEMO)
    actor = Actor(validator, Source.WEB)
    validation = open_validation(project, actor=actor, title="Annual validation")
    file_finding(
        validation, actor=actor, title="Leak", description="The *split*.", severity="high",
        page="data", owner="erik",
    )  # fmt: skip
    second = file_finding(
        validation, actor=actor, title="Drift", description="No alerts.", severity="medium",
        page="deployment", owner="erik",
    )  # fmt: skip
    erik = Actor(get_user_model().objects.get(username="erik"), Source.WEB)
    propose_remediation(second, actor=erik, remediation="Alerts added.", base_revision=1)
    conclude_validation(
        validation, actor=actor, outcome="approved_with_conditions", conclusion="Fit, once fixed."
    )
    url = {
        "tab": f"/projects/{DEMO}/validations/",
        "validation": f"/projects/{DEMO}/validations/{number}/",
        "finding": f"/projects/{DEMO}/findings/{finding + 1}/",
    }[screen]
    page = new_page(color_scheme=mode, bypass_csp=True)
    log_in(page, "vera")
    page.goto(url)
    assert serious_violations(page, axe_source) == []
    phone = new_page(viewport=NARROW)
    log_in(phone, "vera")
    phone.goto(url)
    assert phone.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
