"""Model cards out (wiki.modelcards, issue 14 item 5): GET .../model-card/?format=huggingface
is a README.md that huggingface_hub reads as a valid model card, ?format=model-card-toolkit
is JSON valid against the schema the model-card-toolkit package ships; both are made from
the pages and the latest succeeded training run, and name the revision they came from.

Why the Hub is not asked: ``ModelCard.validate()`` posts the metadata to the Hugging Face
Hub (``/api/validate-yaml``), and the tests have no network. What huggingface_hub checks
on its own is done instead: it parses the README (``ModelCard``, ``metadata_load``), turns
the model-index into evaluation results (``model_index_to_eval_results``, which raises on
a malformed one) and builds ``ModelCardData`` from the metadata (which raises on invalid
evaluation results), and the metadata must come back the same from the card it re-writes.
"""

import importlib.metadata
import json
from datetime import timedelta

import jsonschema
import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from huggingface_hub import ModelCard, ModelCardData, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results
from rest_framework.test import APIClient

from tests.factories import (
    ProjectFactory,
    UserFactory,
    cli_actor,
    make_free_page,
    make_token,
    make_training_run,
)
from wiki import modelcards
from wiki.models import AuditEntry, Membership, Page, Project, TrainingRun
from wiki.services.pages import edit_page

pytestmark = pytest.mark.django_db

CARD = "/api/v1/projects/churn/model-card/"
# Metric names YAML and Markdown tables must keep: a pipe, a colon and a hash, a quote.
METRICS = {"auc": 0.91, "f1 | macro": 0.8, "loss: log #1": 0.25, "n_rows": 120000, "it's": 1}


@pytest.fixture
def documented(project):
    """churn with filled overview, model and data pages, a free page (not a card section),
    an older succeeded run, the latest succeeded run, and a newer failed one."""
    pages = {page.category: page for page in Page.objects.filter(project=project)}
    edit_page(
        pages["overview"], actor=cli_actor(), base_revision=None, change_reason="docs",
        fields={
            "purpose": "Predicts which customers will **churn** next month.",
            "owners": [{"key": "ML lead", "value": "João Lima"}],
            "stakeholders": [{"key": "Retention team", "value": "acts on the scores"}],
            "risk_level": "medium",
            "out_of_scope": "Credit decisions.",
        },
        body="Scores are refreshed weekly.",
    )  # fmt: skip
    edit_page(
        Page.objects.get(pk=pages["overview"].pk), actor=cli_actor(),
        base_revision=None, change_reason="owners", body="Scores are refreshed every Monday.",
    )  # fmt: skip
    edit_page(
        pages["model"], actor=cli_actor(), base_revision=None, change_reason="docs",
        fields={"architecture": "Gradient-boosted trees (LightGBM).",
                "limitations": "Weak on customers younger than 30 days."},
    )  # fmt: skip
    edit_page(
        pages["data"], actor=cli_actor(), base_revision=None, change_reason="docs",
        fields={"limitations_bias": "Few customers from the north region."},
    )  # fmt: skip
    make_free_page(project, slug="runbook", title="Runbook", body="Restart the scorer.")
    now = timezone.now()
    make_training_run(
        project, model_version="1.0.0", started_at=now - timedelta(days=2), metrics={"auc": 0.7}
    )
    latest = make_training_run(
        project, model_version="1.1.0", started_at=now - timedelta(days=1), metrics=METRICS,
        dataset_name="customers", dataset_version="2024-06-30", dataset_uri="s3://lake/customers",
    )  # fmt: skip
    make_training_run(
        project, model_version="1.2.0", started_at=now, status="failed", metrics={"auc": 0.1}
    )
    return latest


def read_hf(text, tmp_path):
    """The card's (metadata, ModelCard), checked as huggingface_hub can without the Hub."""
    card = ModelCard(text)  # raises on a metadata block that is not a mapping
    readme = tmp_path / "README.md"
    readme.write_text(text, encoding="utf-8")
    metadata = metadata_load(readme)
    # The card data holds the same metadata, and writes it back the same.
    assert card.data.to_dict() == metadata
    assert ModelCard(card.content).data.to_dict() == metadata
    assert ModelCardData(**metadata).to_dict() == metadata
    assert metadata["license"] == "other" and metadata["license_name"]  # the Hub asks for it
    return metadata, card


def mct_schema():
    """The newest model card schema in the installed model-card-toolkit wheel (read from
    its files: importing the package would need TensorFlow)."""
    files = importlib.metadata.distribution("model-card-toolkit").files
    schemas = {f.parent.name: f for f in files if f.name == "model_card.schema.json"}
    newest = max(schemas, key=lambda v: tuple(int(n) for n in v.lstrip("v").split(".")))
    assert newest == f"v{modelcards.MCT_SCHEMA_VERSION}"
    return json.loads(schemas[newest].locate().read_text(encoding="utf-8"))


def check_mct(card):
    schema = mct_schema()
    validator = jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    jsonschema.Draft7Validator.check_schema(schema)
    validator.validate(card)
    assert not validator.is_valid(card | {"made_by": "mlwiki"})  # the schema is a strict one


def reader(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(user, ['read'], ['churn'])[1]}")
    return client


def test_the_hugging_face_card_is_valid_and_reports_the_latest_succeeded_run(
    documented, user, tmp_path
):
    response = reader(user).get(CARD, {"format": "huggingface"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="README.md"'
    metadata, card = read_hf(response.content.decode(), tmp_path)

    name, results = model_index_to_eval_results(metadata["model-index"])
    assert name == "churn"
    assert {r.metric_type: r.metric_value for r in results} == documented.metrics == METRICS
    assert {(r.dataset_type, r.dataset_revision, r.task_type) for r in results} == {
        ("customers", "2024-06-30", "other")
    }
    assert {r.source_url for r in results} == {
        f"{settings.SITE_URL}/projects/churn/runs/{documented.pk}/"
    }
    assert card.data.datasets == ["customers"]
    assert card.data.metrics == sorted(METRICS)
    assert "mlwiki" in card.data.tags


def test_the_hugging_face_card_s_sections_are_the_pages(documented, user, tmp_path):
    text = reader(user).get(CARD, {"format": "huggingface"}).content.decode()
    body = read_hf(text, tmp_path)[1].text
    assert body.index("## Overview") < body.index("## Data") < body.index("## Model")
    assert "### Purpose and intended use\n\nPredicts which customers will **churn**" in body
    assert "### Owners\n\n- ML lead: João Lima" in body
    assert "Scores are refreshed every Monday." in body
    assert "### Limitations\n\nWeak on customers younger than 30 days." in body
    assert "## Workflow\n\n*Not documented yet.*" in body
    assert "Restart the scorer." not in body  # free pages are not part of a model card
    assert "| f1 \\| macro | 0.8 |\n| it's | 1 |\n| loss: log #1 | 0.25 |" in body
    assert "| 0.1 |" not in body and "| 0.7 |" not in body  # not the failed or older run


def test_both_cards_name_the_revision_they_were_made_from(documented, user, tmp_path):
    client = reader(user)
    hf = read_hf(client.get(CARD, {"format": "huggingface"}).content.decode(), tmp_path)[1]
    mct = client.get(CARD, {"format": "model-card-toolkit"}).json()
    last = AuditEntry.objects.filter(chain__project__slug="churn").order_by("-seq").first()
    revisions = dict(Page.objects.filter(project__slug="churn").values_list("slug", "revision"))
    assert revisions["overview"] == 3
    made_from = hf.data["mlwiki"]
    assert made_from["version"] == settings.APP_VERSION
    assert made_from["audit_chain"] == {"entries": last.seq, "head": last.digest}
    assert made_from["pages"] == {
        slug: revisions[slug] for slug in Project.objects.get(slug="churn").spec.category_names
    }
    assert made_from["training_run"] == documented.pk
    for text in (hf.text, mct["model_details"]["citations"][0]["citation"]):
        assert f"mlwiki {settings.APP_VERSION}" in text
        assert f"audit chain entry {last.seq} (head {last.digest})" in text
        assert "overview revision 3" in text
    references = [r["reference"] for r in mct["model_details"]["references"]]
    assert f"{settings.SITE_URL}/projects/churn/overview/revisions/3/" in references


def test_the_model_card_toolkit_json_is_valid_against_the_shipped_schema(documented, user):
    response = reader(user).get(CARD, {"format": "model-card-toolkit"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert 'filename="churn-model-card.json"' in response["Content-Disposition"]
    card = response.json()
    check_mct(card)
    metrics = card["quantitative_analysis"]["performance_metrics"]
    assert {m["type"]: json.loads(m["value"]) for m in metrics} == METRICS
    details = card["model_details"]
    assert details["version"]["name"] == "1.1.0"
    assert details["owners"] == [{"name": "ML platform"}, {"name": "João Lima (ML lead)"}]
    assert details["licenses"] == [{"identifier": "proprietary"}]
    assert "## Model" in details["documentation"]
    assert card["model_parameters"]["model_architecture"] == "Gradient-boosted trees (LightGBM)."
    assert card["model_parameters"]["data"] == [
        {"name": "customers", "description": "2024-06-30 at s3://lake/customers"}
    ]
    considerations = card["considerations"]
    assert [c["description"] for c in considerations["limitations"]] == [
        "Weak on customers younger than 30 days.",
        "Few customers from the north region.",
        "Credit decisions.",
    ]
    assert considerations["ethical_considerations"] == [{"name": "Risk level: medium"}]


def test_a_project_with_no_documentation_or_runs_still_has_valid_cards(user, tmp_path):
    empty = ProjectFactory(slug="empty", name="Empty", summary="", tags=["nlp"])
    Membership.objects.create(project=empty, user=user, role=Membership.Role.VIEWER)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(user, ['read'], ['empty'])[1]}")
    url = "/api/v1/projects/empty/model-card/"
    metadata, card = read_hf(client.get(url, {"format": "huggingface"}).content.decode(), tmp_path)
    assert "model-index" not in metadata and "datasets" not in metadata
    assert metadata["tags"] == ["nlp", "mlwiki"]
    assert "No succeeded training run has been recorded yet." in card.text
    assert card.text.count("*Not documented yet.*") == 6
    mct = client.get(url, {"format": "model-card-toolkit"}).json()
    check_mct(mct)
    assert "version" not in mct["model_details"]
    assert "quantitative_analysis" not in mct


def test_a_failed_run_alone_gives_no_evaluation_results(project, user, tmp_path):
    make_training_run(project, status="failed", metrics={"auc": 0.1})
    text = reader(user).get(CARD, {"format": "huggingface"}).content.decode()
    metadata, _ = read_hf(text, tmp_path)
    assert "model-index" not in metadata
    assert TrainingRun.objects.filter(project=project).count() == 1


def test_the_card_needs_a_token_that_may_read_the_project(documented, user):
    client = APIClient()
    assert client.get(CARD, {"format": "huggingface"}).status_code == 401
    ProjectFactory(slug="fraud")
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(user, ['read'], ['fraud'])[1]}")
    response = client.get(CARD, {"format": "huggingface"})
    assert response.status_code == 403
    assert "not valid for project 'churn'" in response.json()["detail"]
    client = reader(user)
    assert client.get("/api/v1/projects/nope/model-card/?format=huggingface").status_code == 404


@pytest.mark.parametrize(
    "query, message",
    [
        ("?format=pdf", "Must be one of: huggingface, model-card-toolkit."),
        ("", "Missing: give format=huggingface or format=model-card-toolkit."),
        ("?format=huggingface&lang=en", "Unknown parameter; known here: format."),
    ],
)
def test_a_bad_format_is_a_clear_400(documented, user, query, message):
    response = reader(user).get(CARD + query)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert message in json.dumps(response.json()["errors"])


def test_the_exports_page_offers_both_cards_to_a_viewer(documented):
    viewer = UserFactory(username="victor")
    Membership.objects.create(project=documented.project, user=viewer, role=Membership.Role.VIEWER)
    client = Client()
    client.force_login(viewer)
    html = client.get("/projects/churn/exports/").content.decode()
    for format in modelcards.FORMATS:
        link = f'href="{CARD}?format={format}"'
        assert link in html
        response = client.get(f"{CARD}?format={format}")
        assert response.status_code == 200
        assert response["Content-Disposition"].startswith("attachment;")
