"""Tokens, users and rights are cached per process under the access stamp (wiki.access):
any change of them takes effect on the very next request, and the cache saves queries."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from tests.factories import UserFactory, cli_actor, make_token
from tests.test_api_records import RUNS, run_body
from wiki import access
from wiki.models import AccessStamp, ApiToken, Membership
from wiki.services.members import remove_member, set_member
from wiki.services.tokens import hash_key, revoke_token

PROJECT = "/api/v1/projects/churn/"
PAGE = "/projects/churn/overview/"


@pytest.fixture
def bob(project):
    """An editor of churn, with a records:write token for it."""
    bob = UserFactory(username="bob")
    Membership.objects.create(project=project, user=bob, role=Membership.Role.EDITOR)
    return bob


def stamp():
    return AccessStamp.objects.get().version


def test_a_revoked_token_is_refused_on_the_next_request(api, user, project):
    token, key = make_token(user, scopes=["records:write"], projects=["churn"])
    client = api(key)
    assert client.get(RUNS).status_code == 200
    assert client.get(RUNS).status_code == 200  # from the cache
    assert access.latest(("token", hash_key(key))) is not None
    before = stamp()
    revoke_token(token, actor=cli_actor(user))
    assert stamp() == before + 1
    response = client.get(RUNS)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert client.post(RUNS, run_body()).status_code == 401


def test_a_removed_role_takes_effect_on_the_next_request(api, user, project, bob):
    client = api(make_token(bob, scopes=["records:write"], projects=["churn"])[1])
    assert client.post(RUNS, run_body()).status_code == 201
    assert client.get(PROJECT).status_code == 200
    set_member(project, actor=cli_actor(user), username="bob", role=Membership.Role.VIEWER)
    assert client.post(RUNS, run_body()).status_code == 403  # a viewer writes nothing
    assert client.get(PROJECT).status_code == 200
    remove_member(Membership.objects.get(user=bob), actor=cli_actor(user))
    assert client.get(PROJECT).status_code == 404  # no longer sees the project at all


def test_a_removed_role_takes_effect_on_the_next_page_view(client, user, project, bob):
    client.force_login(bob)
    assert client.get(PAGE).status_code == 200
    assert client.get(PAGE).status_code == 200  # from the cache
    remove_member(Membership.objects.get(user=bob), actor=cli_actor(user))
    assert client.get(PAGE).status_code == 404


def test_joining_the_auditor_group_takes_effect_on_the_next_request(client, project):
    carol = UserFactory(username="carol")
    client.force_login(carol)
    assert client.get(PAGE).status_code == 404
    assert client.get(PAGE).status_code == 404
    carol.groups.add(Group.objects.get_or_create(name=access.AUDITOR_GROUP)[0])
    assert client.get(PAGE).status_code == 200


def test_a_deactivated_users_token_is_refused(api, client, project, bob):
    key = make_token(bob, scopes=["read"], projects=["churn"])[1]
    client.force_login(bob)
    assert api(key).get(RUNS).status_code == 200
    assert client.get(PAGE).status_code == 200
    bob.is_active = False
    bob.save()
    assert api(key).get(RUNS).status_code == 401
    assert client.get(PAGE).status_code == 302  # to the login page


def test_a_changed_password_ends_the_cached_session(client, project, bob):
    client.force_login(bob)
    assert client.get(PAGE).status_code == 200
    bob.set_password("something else entirely")
    bob.save()
    assert client.get(PAGE).status_code == 302


def test_last_use_is_written_at_most_once_a_minute(
    api, user, project, monkeypatch, django_assert_num_queries
):
    token, key = make_token(user, scopes=["read"], projects=["churn"])
    client = api(key)
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)
    client.get(RUNS)
    assert ApiToken.objects.get(pk=token.pk).last_used_at == now
    first = now
    for seconds in (1, 30, 59):
        now = first + timedelta(seconds=seconds)
        with django_assert_num_queries(2):  # the version with the project, the runs
            assert client.get(RUNS).status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first
    now = first + timedelta(seconds=61)
    with django_assert_num_queries(3):  # and the one UPDATE of last_used_at
        client.get(RUNS)
    assert ApiToken.objects.get(pk=token.pk).last_used_at == now


def test_an_api_get_is_two_queries(api, pipeline_key, project, django_assert_num_queries):
    client = api(pipeline_key)
    client.get(RUNS)  # the token is looked up (with the access version), and cached
    # Before the cache: the token (with its user), the project with the role, the runs.
    # Now the access version is read with the project, and the token is the cached one.
    with django_assert_num_queries(2):
        assert client.get(RUNS).status_code == 200


def test_a_page_view_reads_the_user_from_the_cache(
    client_logged_in, project, django_assert_num_queries
):
    client_logged_in.get(PAGE)
    # Before the cache, 10: the session, the user, the project with the role, the page,
    # the tabs, the revision, the chain, the auditor group, the attachments, the page list.
    # Now the user and the auditor group are cached, the access version is read with the
    # project, and the tabs and the revision's author come from the read cache (wiki.caching).
    with django_assert_num_queries(6):
        assert client_logged_in.get(PAGE).status_code == 200


def test_a_cached_token_asking_for_an_unknown_project_gets_a_404(api, pipeline_key, project):
    client = api(pipeline_key)
    assert client.get(RUNS).status_code == 200
    assert client.get("/api/v1/projects/no-such-project/training-runs/").status_code == 404


def test_what_was_read_for_one_request_is_not_used_by_the_next(
    api, pipeline_key, project, client_logged_in
):
    """The access version and the project read with it belong to their request only."""
    assert api(pipeline_key).get(RUNS).status_code == 200
    assert api(pipeline_key).get(RUNS).status_code == 200
    assert access._version.get() is None
    assert access._prefetched.get() is None
    assert client_logged_in.get(PAGE).status_code == 200
    assert access._version.get() is None
