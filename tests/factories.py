"""Test data. Domain objects are made through wiki/services, as everything else makes them."""

import html
import re
from types import SimpleNamespace

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from wiki.history import Actor, Source
from wiki.services.pages import create_free_page
from wiki.services.projects import create_project
from wiki.services.records import record_deployment, record_training_run
from wiki.services.tokens import create_token

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return model_class.objects.create_user(*args, password=PASSWORD, **kwargs)


def cli_actor(user=None):
    return Actor(user=user, source=Source.CLI)


class ProjectFactory(factory.Factory):
    """Builds a project (and its six pages) through the create_project service."""

    class Meta:
        model = dict

    slug = factory.Sequence(lambda n: f"project-{n}")
    name = factory.Sequence(lambda n: f"Project {n}")
    owner_team = "ML platform"
    summary = "A model under test."
    tags = ()

    @classmethod
    def _create(cls, model_class, actor=None, **kwargs):
        return create_project(actor=actor or cli_actor(), **kwargs)


def make_free_page(project, slug="runbook", title="Runbook", body="", actor=None):
    return create_free_page(project, actor=actor or cli_actor(), slug=slug, title=title, body=body)


def make_training_run(project, model_version="1.0.0", **attrs):
    defaults = {"status": "succeeded", "started_at": timezone.now(), "metrics": {"auc": 0.8}}
    return record_training_run(
        project, actor=cli_actor(), model_version=model_version, **(defaults | attrs)
    )


def make_deployment(project, model_version="1.0.0", **attrs):
    defaults = {"environment": "production", "status": "succeeded", "started_at": timezone.now()}
    return record_deployment(
        project, actor=cli_actor(), model_version=model_version, **(defaults | attrs)
    )


def make_token(user, scopes=("read",), projects=(), expires_in_days=None, name="test token"):
    """A token acting as ``user``; returns (token, key). No projects means all projects."""
    return create_token(
        actor=cli_actor(user),
        user=user,
        name=name,
        scopes=list(scopes),
        projects=list(projects),
        all_projects=not projects,
        expires_in_days=expires_in_days,
    )


def history_lines(response):
    """The lines of a page's history page, read from its HTML (they are cached as HTML,
    so not in the context): revision, source, reason and the text of each review event."""
    body = response.content.decode().split("<tbody>")[1].split("</tbody>")[0]
    return [
        SimpleNamespace(
            revision=int(_cell(r'title="Read revision (\d+)"', row)),
            source=_cell(r'<span class="source">(.*?)</span>', row),
            reason=_cell(r'<td data-label="Reason">(.*?)</td>', row),
            events=[_text(item) for item in re.findall(r"<li>(.*?)</li>", row, re.S)],
        )
        for row in body.split("<tr>")[1:]
    ]


def _cell(pattern, row):
    return html.unescape(re.search(pattern, row, re.S)[1]).strip()


def _text(fragment):
    """An HTML fragment's text, its white space collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).split())
