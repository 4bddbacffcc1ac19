from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from wiki.access import EDIT, MAINTAIN, VALIDATE, VIEW, rights
from wiki.health import is_stale, with_staleness
from wiki.models import (
    Deployment,
    HistoricalPage,
    HistoricalProject,
    Membership,
    ModelVersion,
    Page,
    Project,
    TrainingRun,
)

pytestmark = pytest.mark.django_db

TABLES = [
    Project, Page, ModelVersion, TrainingRun, Deployment, HistoricalPage, HistoricalProject,
    Membership, get_user_model(),
]  # fmt: skip


def seed(*args):
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_seed_demo_fills_every_category_of_the_demo_project_and_prints_credentials(settings):
    settings.DEBUG = True
    output = seed()
    assert "Log in as 'demo' with password 'mlwiki-demo'" in output
    assert get_user_model().objects.get(username="demo").check_password("mlwiki-demo")
    churn = Project.objects.get(slug="churn-prediction")
    category_pages = churn.pages.categories()
    assert category_pages.count() == 6
    for page in category_pages:
        assert page.missing_fields == [], page.category
    assert churn.pages.free().filter(slug="runbook-retraining").exists()
    assert churn.model_versions.count() == 4
    assert churn.training_runs.count() == 4
    assert churn.deployments.count() == 6
    # The pages describe the released versions; a candidate run came after: only the
    # model page is stale.
    pages = with_staleness(churn.pages.categories())
    assert [p.category for p in pages if is_stale(p)] == ["model"]
    fraud = Project.objects.get(slug="fraud-detection")
    assert any(page.missing_fields for page in fraud.pages.categories())


def test_seed_demo_shares_the_projects_with_colleagues_in_each_role(settings):
    settings.DEBUG = True
    assert "audrey (auditor)" in seed()
    churn = Project.objects.get(slug="churn-prediction")
    fraud = Project.objects.get(slug="fraud-detection")
    user = get_user_model().objects.get
    assert rights(user(username="maria"), churn) == {VIEW, EDIT, MAINTAIN}
    assert rights(user(username="erik"), fraud) == {VIEW, EDIT}
    assert rights(user(username="vera"), fraud) == {VIEW}
    assert rights(user(username="vera"), churn) == set()
    assert rights(user(username="audrey"), churn) == {VIEW}
    assert user(username="vera").check_password("mlwiki-demo")
    overview = churn.pages.get(category="overview")
    assert (overview.review_state, overview.approved_by_name) == ("approved", "maria")
    assert churn.pages.get(category="model").review_state == "in_review"
    assert rights(user(username="victor"), churn) == {VIEW, VALIDATE}
    # victor's validation: concluded with conditions, one finding closed, one remedied.
    (validation,) = churn.validations.all()
    assert (validation.outcome, validation.concluded_by_name) == (
        "approved_with_conditions", "victor"
    )  # fmt: skip
    assert sorted(churn.findings.values_list("status", flat=True)) == [
        "closed", "remediation_proposed"
    ]  # fmt: skip


def test_seed_demo_is_recorded_as_the_demo_user_from_the_command_line(settings):
    settings.DEBUG = True
    seed()
    rows = HistoricalPage.objects.filter(project__slug="churn-prediction")
    assert {(r.history_source, r.history_username) for r in rows} == {
        ("cli", "demo"), ("cli", "maria"),  # maria approved the overview
    }  # fmt: skip
    assert rows.filter(history_change_reason="Demo content").count() == 6


def test_running_seed_demo_twice_changes_nothing(settings):
    settings.DEBUG = True
    seed()
    counts = [model.objects.count() for model in TABLES]
    output = seed()
    assert [model.objects.count() for model in TABLES] == counts
    assert "nothing changed" in output
    assert "already exists; its password was left as is" in output


def test_seed_demo_needs_a_real_password_in_production(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="--password"):
        seed()
    assert not get_user_model().objects.exists()
    seed("--password", "a-long-real-password")
    assert get_user_model().objects.get(username="demo").check_password("a-long-real-password")
