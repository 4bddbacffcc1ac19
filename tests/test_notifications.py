"""Notifications: the daily digest, events, delivery with retries, the claim, the page."""

import socket
import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from tests.factories import (
    ProjectFactory,
    UserFactory,
    cli_actor,
    make_deployment,
    make_training_run,
)
from wiki.history import Actor, Source
from wiki.models import Delivery, Membership, NotificationSettings, Page
from wiki.services import notifications
from wiki.services.notifications import configure, deliver, digest_text, fail_stuck, queue_digests
from wiki.services.pages import approve_page, edit_page
from wiki.services.records import update_deployment
from wiki.tasks import deliver_notification, send_daily_digest

# Deliveries are queued when the write commits: these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)


def _notify(project, **values):
    return configure(project, actor=cli_actor(), **values)


def _document_everything(project):
    """Fill every required field of every category page (a project with nothing to say)."""
    for page in Page.objects.categories().filter(project=project):
        fields = {
            f.name: [{"key": "k", "value": "v"}] if f.kind == "table" else (f.choices or ["Yes"])[0]
            for f in page.spec.required_fields
        }
        edit_page(
            page, actor=cli_actor(), base_revision=page.revision, fields=fields,
            change_reason="Documented",
        )  # fmt: skip


def test_the_digest_lists_stale_pages_and_empty_required_fields_with_what_to_write(project):
    make_training_run(project, model_version="2.0.0")
    text = digest_text(project)
    stale, empty = text.split("Required fields still empty:")
    assert "Stale pages" in stale
    assert "• Model: http://127.0.0.1:8000/projects/churn/model/" in stale
    assert "1 new training run" in stale and "of 2.0.0" in stale
    assert "• Data:" not in stale  # no dataset in that run: the data page is current
    overview = Page.objects.get(project=project, category="overview")
    first = overview.spec.required_fields[0]
    assert f"{first.label}: {first.help_text}" in empty


def test_a_documented_current_project_gets_no_digest(project, webhook):
    _document_everything(project)
    assert digest_text(project) is None
    _notify(project, webhook_url=webhook.url)
    assert queue_digests() == []
    assert webhook.received == []


def test_the_daily_digest_goes_to_the_webhook_once_a_day(project, webhook):
    _notify(project, webhook_url=webhook.url)
    send_daily_digest.delay()
    send_daily_digest.delay()  # a second beat, or the task run again
    assert len(webhook.received) == 1
    message = webhook.received[0]["text"]
    today = timezone.localdate()
    assert message.startswith(f"*[mlwiki] Churn model: documentation digest of {today}*")
    assert "Required fields still empty:" in message
    delivery = Delivery.objects.get()
    assert (delivery.kind, delivery.status, delivery.attempts) == ("digest", "sent", 1)
    assert delivery.sent_at is not None

    queue_digests(day=timezone.localdate() + timedelta(days=1))  # the next day: a new one
    assert len(webhook.received) == 2


def test_projects_that_want_no_digest_get_none(project, webhook):
    _notify(project, webhook_url=webhook.url, daily_digest=False)
    send_daily_digest.delay()
    assert webhook.received == []
    assert not Delivery.objects.exists()


def test_two_digest_runs_at_once_send_once(project, webhook):
    """Two beat processes firing together: the delivery's unique key lets one queue it."""
    _notify(project, webhook_url=webhook.url)
    start = threading.Barrier(2)
    errors = []

    def run():
        try:
            start.wait()
            queue_digests()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Delivery.objects.count() == 1
    assert len(webhook.received) == 1


def test_a_delivery_is_sent_once_however_often_its_task_runs(project, webhook, settings):
    _notify(project, webhook_url=webhook.url)
    webhook.statuses = [500]  # queued in-process, the first try fails: left for the retry
    settings.NOTIFY_RETRIES = 3
    (delivery,) = queue_digests()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 1)  # in-process: one try

    Delivery.objects.filter(pk=delivery.pk).update(status="pending")
    assert deliver(delivery.pk, final=False) is None  # the retry: sent
    assert deliver(delivery.pk, final=False) is None  # run again: not sent again
    deliver_notification.delay(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 2, "")
    assert len(webhook.received) == 2  # the failed try and the retry


def test_a_failed_try_is_logged_and_left_for_the_retry(project, webhook):
    _notify(project, webhook_url=webhook.url, daily_digest=False)
    delivery = Delivery.objects.create(
        project=project, key="k", kind="test", channel="webhook", target=webhook.url,
        subject="s", text="t",
    )  # fmt: skip
    webhook.statuses = [503]
    assert deliver(delivery.pk, final=False) == "HTTP 503 Service Unavailable"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.last_error == "HTTP 503 Service Unavailable"  # not the body

    unreachable = "http://127.0.0.1:9/nothing-listens-here"
    Delivery.objects.filter(pk=delivery.pk).update(target=unreachable)
    assert "refused" in deliver(delivery.pk, final=True).lower()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 2)


def test_a_failing_webhook_never_blocks_a_write(project, webhook, api, pipeline_key):
    _notify(project, webhook_url=webhook.url)
    deployment = make_deployment(project, status="in_progress")
    webhook.statuses = [500]
    response = api(pipeline_key).patch(
        f"/api/v1/projects/churn/deployments/{deployment.pk}/", {"status": "failed"}, format="json"
    )
    assert response.status_code == 200, response.content
    deployment.refresh_from_db()
    assert deployment.status == "failed"
    (delivery,) = Delivery.objects.all()
    assert delivery.kind == "deployment_failed"
    assert (delivery.status, delivery.last_error) == ("failed", "HTTP 500 Internal Server Error")
    assert "Deployment #" in webhook.received[0]["text"] and "failed" in webhook.received[0]["text"]


def test_deployments_that_fail_or_roll_back_are_announced_and_others_not(project, webhook):
    _notify(project, webhook_url=webhook.url)
    make_deployment(project, status="succeeded")
    make_deployment(project, status="in_progress")
    assert webhook.received == []

    checks = [{"name": "latency", "passed": False}, {"name": "auc", "passed": True}]
    make_deployment(project, model_version="2.0.0", status="failed", checks=checks)
    assert "2.0.0 to production failed" in webhook.received[0]["text"]
    assert "Failed checks: latency" in webhook.received[0]["text"]

    live = make_deployment(project, model_version="1.5.0", status="succeeded")
    update_deployment(live, actor=cli_actor(), status="rolled_back")
    update_deployment(live, actor=cli_actor(), status="rolled_back")  # a replay: no news
    assert len(webhook.received) == 2
    assert "1.5.0 to production was rolled back" in webhook.received[1]["text"]


def test_an_approval_is_announced_by_e_mail_to_the_maintainers(project, user):
    user.email = "alice@example.com"
    user.save()
    quiet = UserFactory(username="quiet", email="")  # a maintainer with no address
    Membership.objects.create(project=project, user=quiet, role="maintainer")
    reader = UserFactory(username="reader", email="reader@example.com")
    Membership.objects.create(project=project, user=reader, role="viewer")
    _notify(project, email_maintainers=True)
    page = Page.objects.get(project=project, category="overview")

    approve_page(page, actor=Actor(user, Source.WEB), revision=page.revision, comment="Fine.")

    (message,) = mail.outbox
    assert message.to == ["alice@example.com"]
    assert message.subject == "[mlwiki] Churn model: Overview approved"
    assert "alice approved revision 1 of Overview" in message.body
    assert "Comment: Fine." in message.body


def test_events_can_be_turned_off(project, webhook):
    _notify(project, webhook_url=webhook.url, events=False)
    make_deployment(project, status="failed")
    assert webhook.received == []


def test_a_bad_webhook_url_is_refused_and_nothing_saved(project):
    with pytest.raises(Exception, match="valid URL"):
        _notify(project, webhook_url="ftp://example.com/hook")
    assert not NotificationSettings.objects.exists()


def test_the_page_saves_settings_keeps_the_secret_out_of_history_and_shows_the_log(
    client_logged_in, project, webhook
):
    url = "/projects/churn/notifications/"
    assert client_logged_in.get(url).status_code == 200
    bad = client_logged_in.post(url, {"webhook_url": "not a url", "events": "on"})
    assert bad.status_code == 200 and b"Enter a valid URL" in bad.content
    assert not NotificationSettings.objects.exists()

    saved = client_logged_in.post(
        url, {"webhook_url": webhook.url, "events": "on", "change_reason": "Slack channel"}
    )
    assert saved.status_code == 302
    settings_row = NotificationSettings.objects.get(project=project)
    assert (settings_row.webhook_url, settings_row.events, settings_row.daily_digest) == (
        webhook.url, True, False,
    )  # fmt: skip
    revision = settings_row.history.get()
    assert revision.history_change_reason == "Slack channel"
    assert revision.history_user.username == "alice"
    assert not hasattr(revision, "webhook_url")

    client_logged_in.post(url, {"test": "1"})
    assert "alice sent this test" in webhook.received[0]["text"]
    page = client_logged_in.get(url).content.decode()
    assert "test message" in page and f"127.0.0.1:{webhook.url.split(':')[2].split('/')[0]}" in page
    assert "secret" not in page.split("Delivery log")[1]  # the webhook's path is not shown


def test_the_test_button_says_when_there_is_nowhere_to_send(client_logged_in, project):
    response = client_logged_in.post("/projects/churn/notifications/", {"test": "1"}, follow=True)
    assert b"Nothing to send it to" in response.content
    assert not Delivery.objects.exists()


def _delivery(project, target, **values):
    return Delivery.objects.create(
        project=project, key=f"k-{target}", kind="test", channel="webhook", target=target,
        subject="s", text="t", **values,
    )  # fmt: skip


def test_a_server_that_speaks_no_http_fails_the_delivery_instead_of_leaving_it_sending(project):
    listener = socket.create_server(("127.0.0.1", 0))

    def greet():
        # Read the whole request before answering: a server that closed on the client
        # mid-request would make it fail writing (Broken pipe) or reading, by the luck of
        # scheduling, instead of on the answer.
        connection, _ = listener.accept()
        with connection, connection.makefile("rb") as request:
            length = 0
            while (line := request.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            request.read(length)
            connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
            connection.shutdown(socket.SHUT_WR)

    threading.Thread(target=greet, daemon=True).start()
    delivery = _delivery(project, f"http://127.0.0.1:{listener.getsockname()[1]}/")
    error = deliver(delivery.pk, final=True)
    listener.close()
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert error.startswith("BadStatusLine") and delivery.last_error == error


def test_a_redirect_is_a_failure_not_followed(project, webhook):
    webhook.statuses = [302]
    delivery = _delivery(project, webhook.url)
    assert deliver(delivery.pk, final=True) == "HTTP 302 Found"
    assert len(webhook.received) == 1


def test_deliveries_left_sending_by_a_dead_worker_are_failed_not_resent(project, settings):
    settings.NOTIFY_STUCK_MINUTES = 10
    now = timezone.now()
    stuck = _delivery(project, "http://a.example", status="sending",
                      claimed_at=now - timedelta(minutes=11))  # fmt: skip
    busy = _delivery(project, "http://b.example", status="sending",
                     claimed_at=now - timedelta(minutes=9))  # fmt: skip
    assert fail_stuck(now) == 1
    stuck.refresh_from_db()
    busy.refresh_from_db()
    assert (stuck.status, busy.status) == ("failed", "sending")
    assert "may have been sent" in stuck.last_error


def test_long_names_make_a_subject_that_still_fits_and_slack_markup_goes_out_as_text(
    project, webhook
):
    project.name = "P" * 200
    project.save()  # (a test shortcut: the name's length is what matters here)
    _notify(project, webhook_url=webhook.url)
    page = Page.objects.get(project=project, category="overview")
    Page.objects.filter(pk=page.pk).update(title="T" * 200)
    page.refresh_from_db()
    page.approved_by_name, page.approved_revision = "<!channel> & co", 1
    (delivery,) = notifications.page_approved(page)
    assert len(delivery.subject) == Delivery._meta.get_field("subject").max_length
    assert "&lt;!channel&gt; &amp; co approved" in webhook.received[0]["text"]


def test_the_log_shows_a_webhook_host_without_its_credentials(project):
    delivery = _delivery(project, "https://user:pw@hooks.example.com:8443/services/secret")
    assert delivery.shown_target == "hooks.example.com:8443"


def test_one_project_s_trouble_does_not_cost_the_others_their_digest(project, webhook,
                                                                       monkeypatch):  # fmt: skip
    other = ProjectFactory(slug="other")
    _notify(project, webhook_url=webhook.url)
    _notify(other, webhook_url=webhook.url)
    real = notifications.digest_text

    def broken_for_churn(p):
        if p.slug == "churn":
            raise KeyError("a category the registry no longer has")
        return real(p)

    monkeypatch.setattr(notifications, "digest_text", broken_for_churn)
    (delivery,) = queue_digests()
    assert delivery.project == other


def test_tries_are_counted_on_the_delivery_however_they_were_queued(project, webhook, settings):
    """A retry chain the sweep starts anew (its message was lost) does not get a fresh
    set of retries: the delivery's own attempts decide its last try."""
    settings.NOTIFY_RETRIES, settings.NOTIFY_RETRY_DELAY = 2, 30
    delivery = _delivery(project, webhook.url)
    webhook.statuses = [500, 500, 500]
    before = timezone.now()
    for attempt, status in ((1, "pending"), (2, "pending"), (3, "failed")):
        assert deliver(delivery.pk) == "HTTP 500 Internal Server Error"
        delivery.refresh_from_db()
        assert (delivery.attempts, delivery.status) == (attempt, status)
        if status == "pending":  # due again after 30 s, then 60 s
            wait = (delivery.due_at - before).total_seconds()
            assert 30 * 2 ** (attempt - 1) <= wait < 30 * 2 ** (attempt - 1) + 60
    assert delivery.due_at is None and len(webhook.received) == 3
