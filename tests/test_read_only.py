"""No GET changes state: nothing a page can make a viewer's browser fetch (an image, a
prefetched link, an iframe, a crawler following an <a>) writes anything to the database.

Every route of the app (but the admin's, superusers only) is fetched with GET as the
browser of a maintainer and of a viewer; the whole database must be as it was.
"""

import pytest
from django.apps import apps
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import URLResolver, get_resolver, reverse

from tests.factories import (
    ProjectFactory,
    UserFactory,
    make_deployment,
    make_free_page,
    make_training_run,
)
from tests.factories import make_token as token_for
from tests.test_attachments import png
from wiki.history import Actor, Source
from wiki.models import ChainHead, Membership, Page, Template
from wiki.pipelines import normalize
from wiki.services.attachments import attach
from wiki.services.exports import build, request_export
from wiki.services.pages import edit_page, submit_for_review
from wiki.services.pipelines import post_pipeline
from wiki.services.validations import comment_on_finding, file_finding, open_validation

pytestmark = pytest.mark.django_db


def _routes(patterns, namespace=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.app_name == "admin":
                continue
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _routes(pattern.url_patterns, inner)
        else:
            yield f"{namespace}{pattern.name or ''}"


@pytest.fixture
def world(project, user):
    """A project with every kind of object a route can name: pages with revisions in
    review, records, a done export (whose download a planted image would fetch), a
    member, a token."""
    overview = project.pages.get(category="overview")
    actor = Actor(user, Source.WEB)
    editor = UserFactory(username="eve")
    Membership.objects.create(project=project, user=editor, role=Membership.Role.EDITOR)
    edit_page(
        overview, actor=Actor(editor, Source.WEB), base_revision=None, change_reason="planted",
        body="![x](/api/v1/exports/1/download/) ![y](/projects/churn/exports/1/download/)",
    )  # fmt: skip
    submit_for_review(overview, actor=actor)
    make_free_page(project)
    run = make_training_run(project, series={"loss": [{"step": 1, "value": 0.5}]})
    deployment = make_deployment(project)
    dag = normalize({"name": "nightly", "nodes": [{"name": "train"}]})
    post_pipeline(project, dag, actor=actor)
    # A figure on every kind of target (its thumbnail is made once, by a GET: a cache, in
    # the storage, never a row).
    for target in (overview, run, deployment, run.model_version):
        attach(target, ContentFile(png(), name="fig.png"), actor=actor)
    # A validation with a finding and a comment (superusers validate: the maintainer here
    # is none, so a validator of the project files them).
    checker = UserFactory(username="vera")
    Membership.objects.create(project=project, user=checker, role=Membership.Role.VALIDATOR)
    validation = open_validation(project, actor=Actor(checker, Source.WEB), title="Annual")
    finding = file_finding(
        validation, actor=Actor(checker, Source.WEB), title="Leak", description="Split.",
        severity="high", page="data",
    )  # fmt: skip
    comment_on_finding(finding, actor=Actor(checker, Source.WEB), body="See the split.")
    job = request_export(project, actor=actor, format="markdown", enqueue=False)
    build(job.pk)
    token, _ = token_for(user, projects=[project.slug])
    viewer = UserFactory(username="victor")
    Membership.objects.create(project=project, user=viewer, role=Membership.Role.VIEWER)
    member = Membership.objects.get(user=editor)
    ids = {"run": run.pk, "deployment": deployment.pk, "export": job.pk, "token": token.pk,
           "member": member.pk, "version": run.model_version.version}  # fmt: skip
    return {"ids": ids, "viewer": viewer}


def _attachment_urls(ids):
    """The attachment routes of every kind of target, API and browser."""
    api = {
        "page": {"project": "churn", "page": "overview"},
        "training-run": {"project": "churn", "pk": ids["run"]},
        "deployment": {"project": "churn", "pk": ids["deployment"]},
        "model-version": {"project": "churn", "version": ids["version"]},
    }
    browser = {
        "page": "overview", "run": ids["run"], "deployment": ids["deployment"],
        "model-version": ids["version"],
    }  # fmt: skip
    urls = {}
    for kind, kwargs in api.items():
        urls[f"api:{kind}-attachment-list"] = reverse(f"api:{kind}-attachment-list", kwargs=kwargs)
        for route in ("attachment-detail", "attachment-versions"):
            name = f"api:{kind}-{route}"
            urls[name] = reverse(name, kwargs=kwargs | {"name": "fig.png"})
    for kind, key in browser.items():
        kwargs = {"project": "churn", "key": key}
        urls[f"frontend:{kind}-attachments"] = reverse(
            f"frontend:{kind}-attachments", kwargs=kwargs
        )
        for route in ("attachment", "thumbnail", "versions", "delete"):
            name = f"frontend:{kind}-{route}"
            urls[name] = reverse(name, kwargs=kwargs | {"name": "fig.png"})
    return urls


def _urls(ids):
    """Every route, by name, as a URL to GET (with the query a person would send)."""
    page = {"project": "churn", "page": "overview"}
    project = {"project": "churn"}
    return {
        "login": reverse("login"),
        "logout": reverse("logout"),
        "login-local": reverse("login-local"),
        "oidc-start": reverse("oidc-start"),
        "oidc-callback": reverse("oidc-callback") + "?code=planted&state=planted",
        "password_change": reverse("password_change"),
        "password_change_done": reverse("password_change_done"),
        "api-schema": reverse("api-schema"),
        "api-docs": reverse("api-docs"),
        "": "/api/nothing-here/",
        "api:": "/api/v1/nothing-here/",
        "api:project-list": reverse("api:project-list"),
        "api:search": reverse("api:search") + "?q=churn",
        "api:inventory": reverse("api:inventory"),
        "api:project-detail": reverse("api:project-detail", kwargs=project),
        "api:project-template": reverse("api:project-template", kwargs=project),
        "api:page-list": reverse("api:page-list", kwargs=project),
        "api:page-detail": reverse("api:page-detail", kwargs=page),
        "api:docs-push": reverse("api:docs-push", kwargs=project),
        "api:revision-list": reverse("api:revision-list", kwargs=page),
        "api:revision-detail": reverse("api:revision-detail", kwargs=page | {"number": 1}),
        "api:page-diff": reverse("api:page-diff", kwargs=page) + "?from=1&to=2",
        "api:page-restore": reverse("api:page-restore", kwargs=page),
        "api:page-review": reverse("api:page-review", kwargs=page),
        "api:page-approve": reverse("api:page-approve", kwargs=page),
        "api:pipeline-detail": reverse("api:pipeline-detail", kwargs=project),
        "api:training-run-list": reverse("api:training-run-list", kwargs=project),
        "api:training-run-detail": reverse(
            "api:training-run-detail", kwargs=project | {"pk": ids["run"]}
        ),
        "api:deployment-list": reverse("api:deployment-list", kwargs=project),
        "api:training-run-batch": reverse("api:training-run-batch", kwargs=project),
        "api:deployment-batch": reverse("api:deployment-batch", kwargs=project),
        "api:deployment-detail": reverse(
            "api:deployment-detail", kwargs=project | {"pk": ids["deployment"]}
        ),
        "api:training-run-series": reverse(
            "api:training-run-series", kwargs=project | {"pk": ids["run"]}
        ),
        "api:model-version-list": reverse("api:model-version-list", kwargs=project),
        "api:validation-list": reverse("api:validation-list", kwargs=project),
        "api:validation-detail": reverse("api:validation-detail", kwargs=project | {"number": 1}),
        "api:validation-conclusion": reverse(
            "api:validation-conclusion", kwargs=project | {"number": 1}
        ),
        "api:finding-list": reverse("api:finding-list", kwargs=project),
        "api:finding-detail": reverse("api:finding-detail", kwargs=project | {"number": 1}),
        "api:finding-comment-list": reverse(
            "api:finding-comment-list", kwargs=project | {"number": 1}
        ),
        "api:activity-list": reverse("api:activity-list", kwargs=project),
        "api:activity-export": reverse("api:activity-export", kwargs=project),
        "api:audit-verify": reverse("api:audit-verify", kwargs=project),
        "api:export-list": reverse("api:export-list", kwargs=project),
        "api:markdown-tree": reverse("api:markdown-tree", kwargs=project),
        "api:model-card": reverse("api:model-card", kwargs=project) + "?format=huggingface",
        "api:export-detail": reverse("api:export-detail", args=[ids["export"]]),
        "api:export-download": reverse("api:export-download", args=[ids["export"]]),
        "frontend:project-list": reverse("frontend:project-list") + "?sort=name",
        "frontend:tokens": reverse("frontend:tokens"),
        "frontend:search": reverse("frontend:search") + "?q=churn",
        "frontend:inventory": reverse("frontend:inventory"),
        "frontend:token-revoke": reverse("frontend:token-revoke", args=[ids["token"]]),
        "frontend:": "/projects/",
        "frontend:project-create": reverse("frontend:project-create"),
        "frontend:project-detail": reverse("frontend:project-detail", kwargs=project),
        "frontend:project-settings": reverse("frontend:project-settings", kwargs=project),
        "frontend:members": reverse("frontend:members", kwargs=project),
        "frontend:notifications": reverse("frontend:notifications", kwargs=project),
        "frontend:mlflow-sync": reverse("frontend:mlflow-sync", kwargs=project),
        # The preview of a template change, which only a POST carries out.
        "frontend:project-template": reverse("frontend:project-template", kwargs=project)
        + f"?template={Template.objects.get(slug='sr-11-7').pk}",
        "frontend:member-remove": reverse(
            "frontend:member-remove", kwargs=project | {"pk": ids["member"]}
        ),
        "frontend:project-token-revoke": reverse(
            "frontend:project-token-revoke", kwargs=project | {"pk": ids["token"]}
        ),
        "frontend:activity": reverse("frontend:activity", kwargs=project) + "?format=csv",
        "frontend:records": reverse("frontend:records", kwargs=project),
        "frontend:runs": reverse("frontend:runs", kwargs=project) + "?metric=auc+%3E+0.5",
        "frontend:run": reverse("frontend:run", kwargs=project | {"pk": ids["run"]}),
        "frontend:runs-compare": reverse("frontend:runs-compare", kwargs=project)
        + f"?run={ids['run']}&run={ids['run']}",
        "frontend:deployment": reverse(
            "frontend:deployment", kwargs=project | {"pk": ids["deployment"]}
        ),
        "frontend:model-version": reverse(
            "frontend:model-version", kwargs=project | {"version": ids["version"]}
        ),
        "frontend:validations": reverse("frontend:validations", kwargs=project),
        "frontend:validation-create": reverse("frontend:validation-create", kwargs=project),
        "frontend:validation": reverse("frontend:validation", kwargs=project | {"number": 1}),
        "frontend:validation-conclude": reverse(
            "frontend:validation-conclude", kwargs=project | {"number": 1}
        ),
        "frontend:finding-create": reverse(
            "frontend:finding-create", kwargs=project | {"number": 1}
        ),
        "frontend:finding": reverse("frontend:finding", kwargs=project | {"number": 1}),
        "frontend:finding-change": reverse(
            "frontend:finding-change", kwargs=project | {"number": 1}
        ),
        "frontend:finding-comment": reverse(
            "frontend:finding-comment", kwargs=project | {"number": 1}
        ),
        "frontend:audit-verify": reverse("frontend:audit-verify", kwargs=project),
        "frontend:exports": reverse("frontend:exports", kwargs=project),
        "frontend:export-download": reverse(
            "frontend:export-download", kwargs=project | {"pk": ids["export"]}
        ),
        "frontend:page-list": reverse("frontend:page-list", kwargs=project),
        "frontend:page-create": reverse("frontend:page-create", kwargs=project) + "?slug=faq",
        "frontend:page": reverse("frontend:page", kwargs=page),
        "frontend:page-edit": reverse("frontend:page-edit", kwargs=page),
        "frontend:page-preview": reverse("frontend:page-preview", kwargs=page),
        "frontend:page-history": reverse("frontend:page-history", kwargs=page),
        "frontend:page-compare": reverse("frontend:page-compare", kwargs=page) + "?from=1&to=2",
        "frontend:revision": reverse("frontend:revision", kwargs=page | {"number": 1}),
        "frontend:revision-restore": reverse(
            "frontend:revision-restore", kwargs=page | {"number": 1}
        ),
        "frontend:page-submit": reverse("frontend:page-submit", kwargs=page),
        "frontend:page-approve": reverse("frontend:page-approve", kwargs=page),
    } | _attachment_urls(ids)


def _database():
    """Every row of every table, as values."""
    return {
        model._meta.label: list(model._base_manager.order_by("pk").values())
        for model in apps.get_models(include_auto_created=True)
    }


def _fetch(client, url):
    response = client.get(url)
    if response.streaming:  # run the generator: a streamed body could write as it goes
        b"".join(response.streaming_content)
    return response.status_code


def test_every_route_is_fetched_here():
    ids = dict.fromkeys(["run", "deployment", "export", "token", "member", "version"], 1)
    assert set(_routes(get_resolver().url_patterns)) == set(_urls(ids))


@pytest.mark.parametrize("who", ["maintainer", "viewer"])
def test_no_get_of_any_route_writes_anything(world, user, who):
    client = Client()
    client.force_login(user if who == "maintainer" else world["viewer"])
    urls = _urls(world["ids"])
    before = _database()
    statuses = {name: _fetch(client, url) for name, url in urls.items()}
    assert _database() == before
    # The routes really ran: the pages that show something showed it.
    assert statuses["frontend:page"] == statuses["api:page-detail"] == 200
    assert statuses["frontend:export-download"] == statuses["api:export-download"] == 405
    assert statuses["api:audit-verify"] == statuses["api:markdown-tree"] == 200
    assert statuses["api:model-card"] == 200
    for name in ("frontend:run", "frontend:deployment", "frontend:model-version"):
        assert statuses[name] == 200, name
    for kind in ("page", "run", "deployment", "model-version"):
        assert statuses[f"frontend:{kind}-attachment"] == 200
        assert statuses[f"frontend:{kind}-thumbnail"] == 200
    assert statuses["api:training-run-attachment-detail"] == 200
    for name in ("frontend:validations", "frontend:validation", "frontend:finding"):
        assert statuses[name] == 200, name
    for name in ("api:validation-detail", "api:finding-detail", "api:finding-comment-list"):
        assert statuses[name] == 200, name


def test_the_page_with_a_planted_download_image_writes_nothing_when_viewed(world):
    client = Client()
    client.force_login(world["viewer"])
    overview = Page.objects.get(project__slug="churn", category="overview")
    assert "/api/v1/exports/1/download/" in overview.body
    before = _database()
    html = client.get("/projects/churn/").content.decode()
    assert 'src="/api/v1/exports/1/download/"' in html
    for src in ("/api/v1/exports/1/download/", "/projects/churn/exports/1/download/"):
        assert client.get(src).status_code == 405  # what the browser's image request gets
    assert _database() == before


def test_reading_a_chain_that_has_no_entry_yet_creates_no_head(user, settings):
    settings.AUDIT_CHAIN_ENABLED = False  # history written before the chain was turned on
    quiet = ProjectFactory(slug="quiet")
    Membership.objects.create(project=quiet, user=user, role=Membership.Role.MAINTAINER)
    settings.AUDIT_CHAIN_ENABLED = True
    client = Client()
    client.force_login(user)
    assert client.get("/projects/quiet/").status_code == 200
    verdict = client.get("/api/v1/projects/quiet/audit/verify/").json()
    assert not ChainHead.objects.filter(project=quiet).exists()
    # Its history rows are linked by no entry: the verdict says so, it does not hide it.
    assert verdict["ok"] is False and verdict["first_bad"]["kind"] == "inserted"
