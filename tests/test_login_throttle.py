"""Failed logins are throttled per user name and per address (django-axes): after
AXES_FAILURE_LIMIT failures, further tries get the "too many failed logins" page (429)."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import PASSWORD, UserFactory, make_token
from wiki.tasks import forget_failed_logins

pytestmark = pytest.mark.django_db

LIMIT = 3


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


def log_in(username, password=PASSWORD, address="10.0.0.1", route="login", **headers):
    client = Client(REMOTE_ADDR=address, **headers)
    answer = client.post(reverse(route), {"username": username, "password": password})
    return answer, "_auth_user_id" in client.session


def fail(times, username="alice", address="10.0.0.1", **headers):
    """``times`` failed logins under the limit: each answered by the form with its error."""
    for _ in range(times):
        answer, logged_in = log_in(username, "wrong", address, **headers)
        assert (answer.status_code, logged_in) == (200, False)


def assert_locked_out(answer, logged_in):
    assert answer.status_code == 429
    assert "Too many failed logins" in answer.content.decode()
    assert not logged_in


def test_a_user_name_is_paused_at_the_limit_even_with_the_right_password(user):
    fail(LIMIT - 1)
    assert log_in("alice")[1]  # under the limit: the right password still works
    fail(LIMIT - 1)  # the success reset the count
    assert_locked_out(*log_in("alice", "wrong"))  # the failure that reaches the limit
    assert_locked_out(*log_in("alice"))


def test_failures_from_many_addresses_pause_the_user_name(user):
    for number in range(LIMIT - 1):
        fail(1, address=f"10.0.1.{number}")
    assert_locked_out(*log_in("alice", "wrong", address="10.0.1.9"))
    assert_locked_out(*log_in("alice", address="10.0.2.1"))
    UserFactory(username="bob")
    assert log_in("bob", address="10.0.2.1")[1]  # the address itself is not paused


def test_failures_for_many_user_names_pause_the_address(user):
    for number in range(LIMIT - 1):
        fail(1, username=f"guess{number}")
    assert_locked_out(*log_in("guess9", "wrong"))
    assert_locked_out(*log_in("alice"))
    assert log_in("alice", address="10.0.0.2")[1]  # from elsewhere alice gets in


def test_a_forged_forwarded_for_header_does_not_change_the_address(user):
    for number in range(LIMIT - 1):
        fail(1, username=f"guess{number}", HTTP_X_FORWARDED_FOR=f"192.0.2.{number}")
    assert_locked_out(*log_in("guess9", "wrong", HTTP_X_FORWARDED_FOR="192.0.2.9"))
    assert_locked_out(*log_in("alice", HTTP_X_FORWARDED_FOR="192.0.2.99"))


def test_behind_a_proxy_the_address_it_saw_counts_not_its_own_nor_a_forged_one(user, settings):
    # An ingress at 10.9.9.9 appends the address it was reached from; a client may have put
    # anything before it.
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.9.9.9"
    for number in range(LIMIT - 1):
        fail(1, f"guess{number}", proxy, HTTP_X_FORWARDED_FOR=f"192.0.2.{number}, 203.0.113.7")
    assert_locked_out(
        *log_in("guess9", "wrong", proxy, HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.7")
    )
    # Someone else behind the same proxy is not paused with 203.0.113.7.
    answer, logged_in = log_in("alice", address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.8")
    assert logged_in, answer.content.decode()
    # Two proxies: the entry two from the right.
    settings.TRUSTED_PROXY_COUNT = 2
    two = {"HTTP_X_FORWARDED_FOR": "203.0.113.7, 10.8.8.8"}
    assert_locked_out(*log_in("alice", address=proxy, **two))


def test_the_pause_ends_after_the_cool_off(user, settings):
    fail(LIMIT - 1)
    assert_locked_out(*log_in("alice", "wrong"))
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - timedelta(hours=settings.AXES_COOLOFF_TIME, minutes=1)
    )
    assert log_in("alice")[1]


def test_the_admin_and_break_glass_logins_are_throttled_too(db):
    UserFactory(username="root", is_superuser=True, is_staff=True)
    for route in ("admin:login", "login-local"):
        AccessAttempt.objects.all().delete()
        for _ in range(LIMIT - 1):
            assert log_in("root", "wrong", route=route)[0].status_code == 200
        assert_locked_out(*log_in("root", "wrong", route=route))
        assert_locked_out(*log_in("root", route=route))


def test_api_tokens_still_work_from_a_paused_address(user):
    fail(LIMIT - 1, username="nobody")
    assert_locked_out(*log_in("nobody", "wrong"))
    key = make_token(user)[1]
    client = Client(REMOTE_ADDR="10.0.0.1", HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/projects/").status_code == 200


def test_counts_whose_cool_off_ended_are_forgotten_by_the_daily_task(user, settings):
    fail(1, username="old-guess")
    fail(1, username="new-guess")
    AccessAttempt.objects.filter(username="old-guess").update(
        attempt_time=timezone.now() - timedelta(hours=settings.AXES_COOLOFF_TIME, minutes=1)
    )
    forget_failed_logins.delay()
    assert list(AccessAttempt.objects.values_list("username", flat=True)) == ["new-guess"]
