"""Documentation health: pages the records have overtaken are stale until edited."""

import pytest

from tests.factories import ProjectFactory, cli_actor, make_deployment, make_training_run
from wiki.health import is_stale, stale_reasons, with_staleness
from wiki.models import Page
from wiki.services.pages import approve_page, edit_page, submit_for_review
from wiki.services.records import update_deployment

pytestmark = pytest.mark.django_db


def page(project, category):
    return Page.objects.get(project=project, category=category)


def edit(project, category, body="Updated."):
    current = page(project, category)
    return edit_page(
        current, actor=cli_actor(), base_revision=current.revision, change_reason="", body=body
    )


def stale_categories(project):
    pages = with_staleness(Page.objects.filter(project=project).exclude(category=""))
    return {p.category for p in pages if is_stale(p)}


def test_a_new_training_run_makes_the_model_page_stale_until_it_is_edited(project):
    assert stale_categories(project) == set()
    run = make_training_run(project, "1.4.0", dataset_name="customers", dataset_version="2024-06")
    assert stale_categories(project) == {"model", "data"}
    reasons = stale_reasons(page(project, "model"))
    assert reasons == [
        f"1 new model version: 1.4.0 ({run.model_version.created_at:%Y-%m-%d %H:%M} UTC)",
        f"1 new training run: #{run.pk} of 1.4.0 succeeded ({run.created_at:%Y-%m-%d %H:%M} UTC)",
    ]
    (data,) = stale_reasons(page(project, "data"))
    assert data.startswith(
        f"1 new dataset version: customers@2024-06 first used by training run #{run.pk}"
    )
    edit(project, "model")
    assert stale_categories(project) == {"data"}
    assert stale_reasons(page(project, "model")) == []


def test_a_known_dataset_version_does_not_make_the_data_page_stale(project):
    make_training_run(project, "1.0", dataset_name="customers", dataset_version="2024-06")
    edit(project, "data")
    make_training_run(project, "1.1", dataset_name="customers", dataset_version="2024-06")
    assert "data" not in stale_categories(project)
    make_training_run(project, "1.2", dataset_name="customers", dataset_version="2024-07")
    make_training_run(project, "1.3", dataset_name="customers", dataset_version="2024-07")
    later = make_training_run(project, "1.4", dataset_name="orders", dataset_version="v2")
    assert "data" in stale_categories(project)
    (reason,) = stale_reasons(page(project, "data"))
    assert reason.startswith(
        f"2 new dataset versions: orders@v2 first used by training run #{later.pk}"
    )
    assert "customers@2024-07" in reason and "2024-06" not in reason


def test_a_deployment_makes_the_deployment_and_maintenance_pages_stale(project):
    for number in range(7):
        make_deployment(project, f"1.{number}", environment="production")
    assert stale_categories(project) >= {"deployment", "maintenance"}
    (reason,) = stale_reasons(page(project, "deployment"))
    assert reason.startswith("7 new or changed deployments: ")
    assert reason.endswith("; and 2 more")
    edit(project, "deployment")
    assert "deployment" not in stale_categories(project)
    assert "maintenance" in stale_categories(project)


def test_a_deployment_that_moves_on_makes_its_pages_stale_again(project):
    deployment = make_deployment(project, "2.0", environment="production", status="in_progress")
    edit(project, "deployment")
    edit(project, "maintenance")
    assert not stale_categories(project) & {"deployment", "maintenance"}
    update_deployment(deployment, actor=cli_actor(), status="failed")
    assert stale_categories(project) >= {"deployment", "maintenance"}
    (reason,) = stale_reasons(page(project, "maintenance"))
    assert f"#{deployment.pk} 2.0 to production, failed" in reason


def test_records_of_another_project_leave_its_pages_alone(project):
    other = ProjectFactory(slug="other")
    make_training_run(other, "1.0", dataset_name="d", dataset_version="1")
    make_deployment(other, "1.0")
    assert stale_categories(project) == set()
    assert stale_categories(other) == {"model", "data", "deployment", "maintenance"}


def test_reviewing_or_approving_a_page_does_not_make_it_current(project, user):
    edit(project, "model")  # by the command line: alice may approve it
    make_training_run(project, "1.0")
    model = submit_for_review(page(project, "model"), actor=cli_actor(user))
    approve_page(model, actor=cli_actor(user), revision=model.revision)
    approved = Page.objects.get(pk=model.pk)
    assert approved.review_state == "approved"
    assert "model" in stale_categories(project)
    assert approved.edited_at < approved.updated_at


def test_pages_no_record_concerns_are_never_stale(project):
    make_training_run(project, "1.0")
    make_deployment(project, "1.0")
    assert not stale_categories(project) & {"overview", "workflow"}
    assert stale_reasons(page(project, "overview")) == []


def test_the_banner_and_the_api_say_what_arrived(project, client_logged_in, api, user):
    from tests.factories import make_token

    run = make_training_run(project, "2.0")
    html = client_logged_in.get("/projects/churn/model/").content.decode()
    assert "Records arrived since this page was last edited" in html
    assert f"#{run.pk} of 2.0 succeeded" in html
    assert 'class="badge stale-mark"' in html  # the model tab is marked
    _, key = make_token(user, projects=["churn"])
    data = api(key).get("/api/v1/projects/churn/pages/model/").json()
    assert data["stale"] is True
    assert any(f"#{run.pk}" in reason for reason in data["stale_reasons"])
    edit(project, "model")
    assert "Records arrived" not in client_logged_in.get("/projects/churn/model/").content.decode()
    data = api(key).get("/api/v1/projects/churn/pages/model/").json()
    assert data["stale"] is False and data["stale_reasons"] == []
    overview = api(key).get("/api/v1/projects/churn/pages/overview/").json()
    assert overview["stale"] is False
