"""Every write is kept with who, why and from where, with or without a request."""

import pytest

from tests.factories import UserFactory
from wiki.history import Actor, Source, recording
from wiki.models import Page
from wiki.services.pages import edit_page

pytestmark = pytest.mark.django_db


def test_a_save_outside_the_services_is_still_kept_with_source_system(project):
    page = project.pages.get(category="data")
    page.body = "Edited in a shell"
    page.save()
    row = page.history.first()
    assert (row.body, row.history_source, row.history_user, row.history_username) == (
        "Edited in a shell",
        "system",
        None,
        "",
    )


def test_the_user_name_survives_deletion_of_the_account(project):
    bob = UserFactory(username="bob")
    page = project.pages.get(category="data")
    edit_page(page, actor=Actor(bob, Source.WEB), base_revision=1, change_reason="r", body="x")
    bob.delete()
    row = Page.objects.get(pk=page.pk).history.first()
    assert (row.history_user, row.history_username, row.history_source) == (None, "bob", "web")


def test_recording_contexts_nest_and_restore(project):
    page = project.pages.get(category="data")
    outer = Actor(None, Source.CLI)
    with recording(outer, "outer"):
        edit_page(
            page, actor=Actor(None, Source.API), base_revision=None, change_reason="inner", body="1"
        )
        page.body = "2"
        page.save()
    page.body = "3"
    page.save()
    rows = list(page.history.order_by("history_id"))[-3:]
    assert [(r.history_source, r.history_change_reason) for r in rows] == [
        ("api", "inner"),
        ("cli", "outer"),
        ("system", None),
    ]
