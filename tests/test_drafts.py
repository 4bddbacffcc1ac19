"""A first draft of the documentation from the records (wiki.drafts, issue 14 item 4): the
empty fields of the model, data and deployment pages proposed from what pipelines posted,
shown in the edit form, never saved without a person, and the revision says so."""

import html
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import cli_actor, make_deployment, make_training_run
from wiki.drafts import draft
from wiki.history import CHANGE_REASON_MAX_LENGTH
from wiki.models import Page
from wiki.services.pages import edit_page

pytestmark = pytest.mark.django_db

EDIT = "/projects/churn/model/edit/"


def page(project, slug):
    found = Page.objects.get(project=project, slug=slug)
    found.project = project
    return found


def runs(project):
    """An older run, the latest succeeded one, and a later failed one (not drafted from)."""
    now = timezone.now()
    make_training_run(
        project, "1.0", started_at=now - timedelta(days=2), metrics={"auc": 0.7},
        hyperparameters={"learning_rate": 0.5}, dataset_name="customers",
        dataset_version="2024-04", dataset_uri="s3://data/april.parquet",
    )  # fmt: skip
    latest = make_training_run(
        project, "2.0", started_at=now - timedelta(days=1),
        metrics={"auc": 0.91, "recall": 0.625},
        hyperparameters={"learning_rate": 0.05, "num_leaves": 31, "estimator": "LGBMClassifier",
                         "train_size": 0.8, "weird: key": True},
        tags={"team": "growth", "split": "by customer id"},
        environment={"lightgbm": "4.3.0", "python": "3.11.7"},
        dataset_name="customers", dataset_version="2024-05", dataset_uri="s3://data/may.parquet",
    )  # fmt: skip
    make_training_run(project, "2.1", status="failed", started_at=now, metrics={"auc": 0.1})
    return latest


def test_the_model_page_is_drafted_from_the_latest_succeeded_run(project):
    latest = runs(project)
    proposed = draft(page(project, "model"))
    assert set(proposed) == {"hyperparameters", "training_algorithm", "evaluation_metrics"}
    assert proposed["hyperparameters"] == [
        {"key": "estimator", "value": "LGBMClassifier"},
        {"key": "learning_rate", "value": "0.05"},
        {"key": "num_leaves", "value": "31"},
        {"key": "train_size", "value": "0.8"},
        {"key": "weird  key", "value": "true"},
    ]
    source = f"From training run {latest.pk} of model version `2.0`:"
    algorithm = proposed["training_algorithm"]
    assert algorithm.startswith(source) and "- estimator: LGBMClassifier" in algorithm
    assert "Trained with lightgbm 4.3.0, python 3.11.7." in algorithm
    metrics = proposed["evaluation_metrics"]
    assert metrics.startswith(source)
    assert "| auc | 0.91 |" in metrics and "| recall | 0.625 |" in metrics
    assert "0.1 |" not in metrics


def test_the_data_page_is_drafted_from_the_datasets_and_split_the_runs_name(project):
    runs(project)
    proposed = draft(page(project, "data"))
    assert proposed["dataset_versions"] == [
        {"key": "customers", "value": "2024-05 s3://data/may.parquet"},
        {"key": "customers", "value": "2024-04 s3://data/april.parquet"},
    ]
    assert "- split: by customer id" in proposed["split"]
    assert "- train_size: 0.8" in proposed["split"] and "learning_rate" not in proposed["split"]


def test_the_deployment_page_is_drafted_from_the_latest_successful_deployment(project):
    now = timezone.now()
    make_deployment(
        project, "2.0", environment="production", target="k8s-eu",
        config={"replicas": 3, "image": "registry/churn:2.0"}, started_at=now - timedelta(hours=1),
    )  # fmt: skip
    make_deployment(project, "2.1", environment="staging", status="failed", started_at=now)
    proposed = draft(page(project, "deployment"))
    assert proposed == {
        "environment": "production (k8s-eu)",
        "configuration": [
            {"key": "image", "value": "registry/churn:2.0"},
            {"key": "replicas", "value": "3"},
        ],
    }


def test_only_empty_fields_are_drafted_and_nothing_without_records(project):
    model = page(project, "model")
    assert draft(model) == {}
    runs(project)
    edit_page(
        model, actor=cli_actor(), base_revision=None, change_reason="by hand",
        fields={"evaluation_metrics": "AUC on the holdout set."},
    )  # fmt: skip
    assert set(draft(page(project, "model"))) == {"hyperparameters", "training_algorithm"}
    assert draft(page(project, "overview")) == {}


def test_the_edit_form_shows_the_draft_and_saves_nothing(client_logged_in, project):
    runs(project)
    model = page(project, "model")
    plain = client_logged_in.get(EDIT).content.decode()
    assert 'href="?draft=records"' in plain and 'name="drafted"' not in plain
    response = client_logged_in.get(EDIT + "?draft=records")
    assert response.status_code == 200
    text = html.unescape(response.content.decode())
    assert "Drafted from the records" in text and 'name="drafted" value="records"' in text
    assert "learning_rate: 0.05\nnum_leaves: 31" in text and "| auc | 0.91 |" in text
    assert 'href="?draft=records"' not in text
    after = page(project, "model")
    assert (after.revision, after.fields) == (model.revision, model.fields)
    assert model.history.count() == 1


def test_a_page_saved_from_a_draft_says_so_in_its_history(client_logged_in, project):
    runs(project)
    form = {
        "base_revision": "1", "drafted": "records", "save": "",
        "hyperparameters": "learning_rate: 0.05", "training_algorithm": "LightGBM.",
        "evaluation_metrics": "AUC 0.91.", "body": "", "change_reason": "First draft read",
    }  # fmt: skip
    too_long = form | {"change_reason": "r" * CHANGE_REASON_MAX_LENGTH}
    refused = client_logged_in.post(EDIT, too_long)
    assert refused.status_code == 200 and "the history adds" in refused.content.decode()
    assert page(project, "model").revision == 1
    assert client_logged_in.post(EDIT, form).status_code == 302
    saved = page(project, "model")
    assert saved.revision == 2
    assert saved.fields["hyperparameters"] == [{"key": "learning_rate", "value": "0.05"}]
    reason = saved.history.first().history_change_reason
    assert reason == "First draft read (started from a draft from the records)"


def test_a_page_with_nothing_to_draft_says_so(client_logged_in, project):
    response = client_logged_in.get(EDIT + "?draft=records", follow=True)
    text = response.content.decode()
    assert "The records have nothing to propose for the empty fields." in text
    assert 'name="drafted"' not in text


def test_a_draft_saved_as_proposed_stores_exactly_what_was_proposed(client_logged_in, project):
    """Values the edit form's "key: value" lines could not hold as they are (a line break,
    an empty or colon-bearing key) are proposed so that saving the form keeps them."""
    make_training_run(
        project, "3.0", metrics={"a|b": 0.912345678, "big": 1234567.0},
        hyperparameters={"": 3, "multi": "line one\nline two", "a\nb": "x: y", "lr": 0.1},
    )  # fmt: skip
    proposed = draft(page(project, "model"))
    assert proposed["hyperparameters"] == [
        {"key": "(no name)", "value": "3"}, {"key": "a b", "value": "x: y"},
        {"key": "lr", "value": "0.1"}, {"key": "multi", "value": "line one line two"},
    ]  # fmt: skip
    metrics = proposed["evaluation_metrics"]
    assert "| a\\|b | 0.912345678 |" in metrics and "| big | 1234567.0 |" in metrics
    form = client_logged_in.get(EDIT + "?draft=records").context["form"]
    data = {name: form[name].value() or "" for name in form.fields}
    data |= {"drafted": "records", "save": "", "change_reason": "As drafted"}
    assert client_logged_in.post(EDIT, data).status_code == 302
    saved = page(project, "model")
    assert {name: saved.fields[name] for name in proposed} == proposed
