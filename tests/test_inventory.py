"""The model inventory and the periodic review: every model with its tier, template,
validation, findings and next review; overdue reviews on the dashboard, in the digest
and in /metrics."""

import csv
import io
from datetime import date, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import (
    ProjectFactory,
    UserFactory,
    cli_actor,
    make_deployment,
    make_token,
)
from wiki import inventory, report_formats, reports
from wiki.health import dashboard
from wiki.history import Actor, Source
from wiki.inventory import DUE_SOON, NO_TIER, OVERDUE, SCHEDULED, add_months
from wiki.models import Membership, Project, Validation
from wiki.services.notifications import digest_text
from wiki.services.pages import edit_page
from wiki.services.validations import conclude_validation, file_finding, open_validation

pytestmark = pytest.mark.django_db


def web(user):
    return Actor(user=user, source=Source.WEB)


def set_overview(project, **values):
    page = project.pages.get(category="overview")
    fields = page.fields | values
    return edit_page(
        page, actor=cli_actor(), base_revision=page.revision, change_reason="", fields=fields
    )


@pytest.fixture
def vera(project):
    vera = UserFactory(username="vera")
    Membership.objects.create(project=project, user=vera, role=Membership.Role.VALIDATOR)
    return vera


def validate(project, validator, outcome="approved_with_conditions", findings=()):
    """A validation of ``project`` concluded now with ``findings`` (severities) open."""
    validation = open_validation(project, actor=web(validator), title="Annual validation")
    for number, severity in enumerate(findings):
        file_finding(
            validation, actor=web(validator), title=f"Finding {number}", severity=severity,
            description="Found.", page="data", field="split",
            due_date=timezone.localdate() + timedelta(days=10),
        )  # fmt: skip
    return conclude_validation(
        validation, actor=web(validator), outcome=outcome, conclusion="Done."
    )


def row_of(project, today=None):
    (row,) = inventory.inventory(Project.objects.filter(pk=project.pk), today=today)
    return row


def test_a_month_later_is_the_same_day_or_the_months_last():
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 11, 15), 12) == date(2027, 11, 15)
    assert add_months(date(2026, 12, 1), 1) == date(2027, 1, 1)


def test_the_next_review_follows_the_last_validation_by_the_tiers_period(project, vera):
    set_overview(project, risk_level="high")
    validation = validate(project, vera)
    concluded = timezone.localdate(validation.concluded_at)
    row = row_of(project)
    assert row.risk_tier == "high"
    assert row.last_validation == validation
    assert row.next_review == add_months(concluded, project.spec.review_months["high"])
    assert row.review_state == SCHEDULED
    # The same project, read later: due soon within 30 days of the date, overdue after it.
    assert row_of(project, today=row.next_review - timedelta(days=30)).review_state == DUE_SOON
    assert row_of(project, today=row.next_review - timedelta(days=31)).review_state == SCHEDULED
    assert row_of(project, today=row.next_review).review_state == DUE_SOON
    assert row_of(project, today=row.next_review + timedelta(days=1)).review_state == OVERDUE


def test_a_lower_tier_waits_longer_and_no_tier_has_no_date(project, vera):
    set_overview(project, risk_level="high")
    high = row_of(project).next_review
    set_overview(project, risk_level="medium")
    medium = row_of(project).next_review
    assert medium > high
    set_overview(project, risk_level="")
    row = row_of(project)
    assert (row.next_review, row.review_state) == (None, NO_TIER)


def test_a_project_never_validated_is_due_a_period_after_its_creation(project):
    set_overview(project, risk_level="high")
    row = row_of(project)
    assert row.last_validation is None
    created = timezone.localdate(project.created_at)
    assert row.next_review == add_months(created, project.spec.review_months["high"])


def test_only_the_last_concluded_validation_counts(project, vera):
    set_overview(project, risk_level="high")
    first = validate(project, vera, outcome="rejected")
    open_validation(project, actor=web(vera), title="Still open")
    row = row_of(project)
    assert row.last_validation == first
    assert row.last_validation.outcome == "rejected"


def test_the_inventory_counts_unresolved_findings_and_the_production_version(project, vera):
    validate(project, vera, findings=["high", "high", "low"])
    make_deployment(project, model_version="2.0.0", environment="staging")
    make_deployment(project, model_version="1.4.0", environment="Production")
    row = row_of(project)
    assert row.open_findings == {"high": 2, "medium": 0, "low": 1}
    assert row.production_version == "1.4.0"
    assert row_of(project, today=timezone.localdate() + timedelta(days=11)).overdue_findings == 3


def test_the_inventory_reads_many_projects_in_a_fixed_number_of_queries(
    project, vera, django_assert_max_num_queries
):
    validate(project, vera, findings=["medium"])
    for n in range(6):
        other = ProjectFactory(slug=f"model-{n}")
        make_deployment(other, environment="production")
    with django_assert_max_num_queries(6):
        rows = inventory.inventory(Project.objects.all())
    assert len(rows) == 7


@pytest.fixture
def portfolio(project, vera, user):
    """churn (high, validated with a high finding open), fraud (medium, never validated,
    another team) and a project alice may not see."""
    set_overview(project, risk_level="high", status="production")
    validate(project, vera, findings=["high"])
    fraud = ProjectFactory(slug="fraud", name="Fraud detection", owner_team="Risk")
    Membership.objects.create(project=fraud, user=user, role=Membership.Role.VIEWER)
    set_overview(fraud, risk_level="medium", status="development")
    hidden = ProjectFactory(slug="hidden", name="Hidden model")
    return {"churn": project, "fraud": fraud, "hidden": hidden}


def test_the_inventory_page_lists_what_the_user_may_see(client_logged_in, portfolio):
    response = client_logged_in.get(reverse("frontend:inventory"))
    assert response.status_code == 200
    text = response.content.decode()
    assert "Churn model" in text and "Fraud detection" in text
    assert "Hidden model" not in text
    assert "Approved with conditions" in text and "vera" in text
    assert "1 high" in text
    assert "never validated" in text


def test_the_inventory_page_filters_and_sorts(client_logged_in, portfolio):
    url = reverse("frontend:inventory")
    text = client_logged_in.get(url, {"team": "Risk"}).content.decode()
    assert "Fraud detection" in text and "Churn model" not in text
    text = client_logged_in.get(url, {"outcome": "none"}).content.decode()
    assert "Fraud detection" in text and "Churn model" not in text
    text = client_logged_in.get(url, {"sort": "tier"}).content.decode()
    assert text.index("Churn model") < text.index("Fraud detection")
    text = client_logged_in.get(url, {"sort": "name"}).content.decode()
    assert text.index("Churn model") < text.index("Fraud detection")
    response = client_logged_in.get(url, {"review": "soon-ish"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


def test_the_inventory_downloads_as_csv(client_logged_in, portfolio):
    fraud = portfolio["fraud"]
    Project.objects.filter(pk=fraud.pk).update(owner_team="=HYPERLINK(1)")
    response = client_logged_in.get(
        reverse("frontend:inventory"), {"format": "csv", "sort": "name"}
    )
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["model_id"] for r in rows] == ["churn", "fraud"]
    churn = rows[0]
    assert churn["risk_tier"] == "high" and churn["status"] == "production"
    assert churn["last_validation_outcome"] == "approved_with_conditions"
    assert churn["validator"] == "vera"
    assert churn["open_findings_high"] == "1"
    assert churn["template"] == portfolio["churn"].spec.name
    assert rows[1]["owner_team"] == "'=HYPERLINK(1)"  # a formula stays text


def test_the_api_inventory(api, user, portfolio):
    key = make_token(user, scopes=["read"])[1]
    response = api(key).get("/api/v1/inventory/", {"sort": "next_review"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["model_id"] for r in results] == ["churn", "fraud"]
    churn = results[0]
    assert churn["open_findings_high"] == 1
    assert churn["review_state"] == SCHEDULED
    assert churn["next_review"] == row_of(portfolio["churn"]).next_review.isoformat()
    filtered = api(key).get("/api/v1/inventory/", {"tier": "medium"}).json()["results"]
    assert [r["model_id"] for r in filtered] == ["fraud"]
    bad = api(key).get("/api/v1/inventory/", {"review": "later"})
    assert bad.status_code == 400 and "review" in bad.json()["errors"]
    unknown = api(key).get("/api/v1/inventory/", {"teams": "Risk"})
    assert unknown.status_code == 400
    text = api(key).get("/api/v1/inventory/", {"format": "csv"}).content.decode()
    assert text.splitlines()[0].startswith("model_id,name,owner_team,risk_tier")


def test_a_token_for_one_project_sees_only_it_in_the_inventory(api, user, portfolio):
    key = make_token(user, scopes=["read"], projects=["fraud"])[1]
    results = api(key).get("/api/v1/inventory/").json()["results"]
    assert [r["model_id"] for r in results] == ["fraud"]


@pytest.fixture
def overdue(project):
    """churn is high risk, never validated, and was created 13 months ago (its first
    validation is a month late)."""
    set_overview(project, risk_level="high")
    Project.objects.filter(pk=project.pk).update(created_at=timezone.now() - timedelta(days=400))
    return project


def test_an_overdue_review_shows_on_the_dashboard(client_logged_in, overdue):
    text = client_logged_in.get(reverse("frontend:project-list")).content.decode()
    assert "Periodic review overdue since" in text


def test_an_overdue_review_is_in_the_digest(overdue):
    text = digest_text(overdue)
    assert "Periodic review overdue since" in text


def test_metrics_count_projects_by_review_state(settings, overdue):
    settings.METRICS_TOKEN = "m" * 32
    ProjectFactory(slug="fresh")  # no tier: no review date
    client = Client()
    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer " + "m" * 32).content.decode()
    assert 'mlwiki_periodic_reviews{state="overdue"} 1.0' in body
    assert 'mlwiki_periodic_reviews{state="no_tier"} 1.0' in body
    assert "mlwiki_findings_overdue 0.0" in body


def test_a_validator_can_log_in_and_read_the_inventory(project, vera):
    client = Client()
    client.force_login(vera)
    assert "Churn model" in client.get(reverse("frontend:inventory")).content.decode()
    assert Validation.objects.count() == 0  # reading wrote nothing


def test_the_audit_reports_inventory_names_the_model_template_and_next_review(project, vera):
    set_overview(project, risk_level="medium", purpose="Predict churn.")
    validation = validate(project, vera, outcome="approved")
    report = reports.build(project, report_id="t", generated_at=timezone.now(), with_history=False)
    header = report["inventory"]
    concluded = timezone.localdate(validation.concluded_at)
    assert header["model_id"] == "churn" and header["template"] == "default v1"
    assert header["risk_level"] == "medium"
    assert header["next_review"] == add_months(concluded, 24).isoformat()
    assert header["last_validation"]["validator"] == "vera"
    facts = dict(report_formats.inventory_facts(header))
    assert facts["Model id"] == "churn"
    assert facts["Next periodic review"] == header["next_review"]


def test_a_rejected_model_is_due_again_on_the_day_of_the_rejection(project, vera):
    set_overview(project, risk_level="low")
    rejected = validate(project, vera, outcome="rejected")
    day = timezone.localdate(rejected.concluded_at)
    row = row_of(project)
    assert row.next_review == day and row.review_state == DUE_SOON
    assert row_of(project, today=day + timedelta(days=1)).review_state == OVERDUE
    # The dashboard says the same; a later approval starts the tier's period again.
    (health,) = dashboard(Project.objects.filter(pk=project.pk))
    assert (health.next_review, health.review_state) == (day, DUE_SOON)
    approved = validate(project, vera, outcome="approved")
    later = timezone.localdate(approved.concluded_at)
    assert row_of(project).next_review == add_months(later, project.spec.review_months["low"])


def test_the_inventory_and_the_report_agree_on_the_production_version(project):
    make_deployment(project, model_version="3.1.0", environment="Prod")
    report = reports.build(project, report_id="t", generated_at=timezone.now(), with_history=False)
    assert row_of(project).production_version == "3.1.0"
    assert report["inventory"]["production_version"] == "3.1.0"


def test_the_validation_tab_says_when_the_next_review_is_and_why(client_logged_in, project, vera):
    url = reverse("frontend:validations", args=[project.slug])
    assert "No review date: the risk tier is not set" in client_logged_in.get(url).content.decode()
    set_overview(project, risk_level="high")
    validation = validate(project, vera)
    text = " ".join(client_logged_in.get(url).content.decode().split())
    concluded = timezone.localdate(validation.concluded_at)
    assert f'Next review: <time datetime="{add_months(concluded, 12)}">' in text
    assert "asks for a validation every 12 months, counted from validation #1" in text
