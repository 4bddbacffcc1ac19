"""Notifications: where a project's go, what they say, and sending them exactly once.

Two kinds: a daily digest of the overdue validation findings and the stale and
incomplete pages (``queue_digests``, run by Celery beat at DIGEST_TIME), and events
announced by the writes they are about
(``announce``: a deployment failed or was rolled back, a page was approved). Each becomes
one Delivery per channel, created in the transaction of what it announces and sent by a
Celery task once that commits: a webhook that is down or slow never holds up, nor undoes,
a write. Its unique key is the claim that keeps a second beat or worker from queueing it
again, and ``deliver`` takes a delivery from pending to sending in one UPDATE, so a task
that runs twice sends once. The delivery row is the outbox (wiki.outbox): one the broker
never got, or lost, is queued again by the sweep, so nothing announced while Redis was
down is lost.
"""

import http.client
import json
import logging
import urllib.error
import urllib.request
import uuid
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from wiki import inventory, metrics, outbox
from wiki.health import is_stale, stale_reasons, with_staleness
from wiki.history import recording
from wiki.models import Delivery, Finding, Membership, NotificationSettings, Page, Project
from wiki.rendering import site_link as link

logger = logging.getLogger(__name__)
ERROR_KEPT = 1000  # characters of a failure kept in the log
SUBJECT_MAX = Delivery._meta.get_field("subject").max_length  # names can make it longer


def settings_of(project):
    """The project's notification settings (unsaved defaults when it has none yet)."""
    found = NotificationSettings.objects.filter(project=project).first()
    return found or NotificationSettings(project=project)


def configure(project, *, actor, change_reason="", **values):
    """Set where the project's notifications go (webhook_url, email_maintainers,
    daily_digest, events). ValidationError on a bad value, nothing saved."""
    unknown = set(values) - set(NotificationSettings.SETTINGS)
    if unknown:
        raise ValidationError(f"Unknown notification settings: {', '.join(sorted(unknown))}.")
    try:
        with transaction.atomic(), recording(actor, change_reason or "Changed notifications"):
            current = NotificationSettings.objects.select_for_update().filter(project=project)
            current = current.first() or NotificationSettings(project=project)  # one revision
            for name, value in values.items():
                setattr(current, name, value)
            current.full_clean(exclude=["project"])
            current.save()
    except IntegrityError:  # two first saves at once: the other one won
        raise ValidationError(
            "Someone else saved these settings at the same moment; reload and try again."
        ) from None
    return current


def _recipients(project):
    return sorted(
        Membership.objects.filter(
            project=project, role=Membership.Role.MAINTAINER, user__is_active=True
        )
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )


def _queue(wanted, key, kind, subject, text):
    """Create the deliveries of one announcement to the channels of ``wanted`` (a project's
    settings), those its key has not claimed already, and send them once the current
    transaction commits. Returns those created."""
    created = []
    for channel in wanted.channels:
        if channel == Delivery.Channel.WEBHOOK:
            target = wanted.webhook_url
        else:
            target = ", ".join(_recipients(wanted.project))
            if not target:
                continue  # no maintainer with an address: nobody to write to
        with transaction.atomic():  # the savepoint get_or_create needs on PostgreSQL
            delivery, new = Delivery.objects.get_or_create(
                key=f"{key}:{channel}",
                defaults={
                    "project": wanted.project, "kind": kind, "channel": channel,
                    "target": target, "subject": subject[:SUBJECT_MAX], "text": text,
                },
            )  # fmt: skip
        if new:
            created.append(delivery)
    outbox.send(deliver_notification, Delivery, [d.pk for d in created])
    return created


def _saved_with_channels(project):
    """The project's saved settings if they name somewhere to send to, else None."""
    wanted = NotificationSettings.objects.filter(project=project).first()
    return wanted if wanted is not None and wanted.channels else None


def announce(project, kind, ref, subject, text):
    """Tell the project's channels about an event, if it wants events. Call it inside the
    transaction of the write it announces; ``ref`` makes its key unique."""
    wanted = _saved_with_channels(project)
    if wanted is None or not wanted.events:
        return []
    return _queue(wanted, f"{kind}:{project.pk}:{ref}", kind, subject, text)


def announce_test(project, actor):
    """A test message to every channel of the project (whatever it wants announced)."""
    wanted = _saved_with_channels(project)
    if wanted is None:
        return []
    subject = f"[mlwiki] {project.name}: test message"
    text = (
        f"{actor.username} sent this test from {link('frontend:notifications', project.slug)}: "
        f"notifications of {project.name} arrive here."
    )
    with transaction.atomic():
        return _queue(wanted, f"test:{uuid.uuid4().hex}", "test", subject, text)


def deployment_changed(deployment):
    """Announce a deployment that failed or was rolled back (other statuses are news
    nobody needs to be woken for)."""
    if deployment.status not in (deployment.Status.FAILED, deployment.Status.ROLLED_BACK):
        return []
    project = deployment.project
    what = "failed" if deployment.status == deployment.Status.FAILED else "was rolled back"
    subject = (
        f"[mlwiki] {project.name}: deployment of {deployment.model_version} "
        f"to {deployment.environment} {what}"
    )
    failed_checks = [c["name"] for c in deployment.checks if not c.get("passed")]
    lines = [
        f"Deployment #{deployment.pk} of {deployment.model_version} to "
        f"{deployment.environment}{f' ({deployment.target})' if deployment.target else ''} "
        f"{what}.",
        f"Failed checks: {', '.join(failed_checks)}" if failed_checks else "",
        f"Records: {link('frontend:records', project.slug)}",
    ]
    text = "\n".join(line for line in lines if line)
    ref = f"{deployment.pk}:{deployment.status}"
    return announce(project, f"deployment_{deployment.status}", ref, subject, text)


def page_approved(page):
    project = page.project
    subject = f"[mlwiki] {project.name}: {page.title} approved"
    text = (
        f"{page.approved_by_name} approved revision {page.approved_revision} of "
        f"{page.title}: {link('frontend:page', project.slug, page.slug)}"
        + (f"\nComment: {page.approval_comment}" if page.approval_comment else "")
    )
    return announce(project, "page_approved", f"{page.pk}:{page.approved_revision}", subject, text)


def digest_text(project):
    """The digest of ``project``: its periodic review when overdue or due soon, its
    overdue validation findings, its stale pages (and what arrived) and its pages with
    required fields missing (and what to write); None when there is nothing to say."""
    pages = with_staleness(Page.objects.categories().filter(project=project), [project.spec])
    pages = sorted(pages, key=lambda page: project.spec.order(page.category))
    stale = [page for page in pages if is_stale(page)]
    incomplete = [page for page in pages if page.missing_fields]
    overdue = list(Finding.objects.overdue().filter(project=project).order_by("due_date", "number"))
    (review,) = inventory.inventory(Project.objects.filter(pk=project.pk))
    due = review.review_state in (inventory.OVERDUE, inventory.DUE_SOON)
    if not stale and not incomplete and not overdue and not due:
        return None
    lines = [f"Documentation of {project.name}: {link('frontend:project-detail', project.slug)}"]
    if due:
        when = review.next_review.isoformat()
        validation = review.last_validation
        since = (
            f"validation {validation.number} concluded on {validation.concluded_at:%Y-%m-%d}"
            if validation
            else "never validated"
        )
        lines += [
            "",
            (f"Periodic review overdue since {when}" if review.review_state == inventory.OVERDUE
             else f"Periodic review due on {when}")
            + f" ({review.risk_tier} risk; {since}): "
            + link("frontend:validations", project.slug),
        ]  # fmt: skip
    if overdue:
        lines += ["", "Overdue validation findings:"]
        for finding in overdue:
            owner = f", owner {finding.owner_name}" if finding.owner_name else ", no owner"
            lines.append(
                f"• Finding {finding.number} ({finding.severity}): {finding.title}{owner}, "
                f"due {finding.due_date.isoformat()}, {finding.get_status_display().lower()}: "
                f"{link('frontend:finding', project.slug, finding.number)}"
            )
    if stale:
        lines += ["", "Stale pages (records arrived since their last edit):"]
        for page in stale:
            lines.append(f"• {page.spec.label}: {link('frontend:page', project.slug, page.slug)}")
            lines += [f"    {reason}" for reason in stale_reasons(page)]
    if incomplete:
        lines += ["", "Required fields still empty:"]
        for page in incomplete:
            lines.append(f"• {page.spec.label}: {link('frontend:page', project.slug, page.slug)}")
            for field in page.missing_fields:
                lines.append(f"    {field.label}: {field.help_text}")
    return "\n".join(lines)


def queue_digests(day=None):
    """Queue today's digest of every project that wants one; a second run the same day
    (another beat, a retried task) queues nothing. Returns the deliveries created."""
    day = day or timezone.localdate()
    wanting = NotificationSettings.objects.filter(daily_digest=True).select_related("project")
    created = []
    for wanted in wanting:
        if not wanted.channels:
            continue
        project = wanted.project
        try:
            text = digest_text(project)
        except Exception:  # one project's trouble must not cost the others their digest
            logger.exception("No digest for project %s", project.slug)
            continue
        if text is None:
            continue
        subject = f"[mlwiki] {project.name}: documentation digest of {day.isoformat()}"
        key = f"digest:{project.pk}:{day.isoformat()}"
        with transaction.atomic():
            created += _queue(wanted, key, "digest", subject, text)
    return created


def _slack_escaped(text):
    """Slack reads <…> as links and mentions (<!channel>): names and comments go out as
    text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook that answers with a redirect failed: following it would turn the POST
    into a GET of wherever it points."""

    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _post(url, subject, text):
    body = json.dumps({"text": _slack_escaped(f"*{subject}*\n{text}")}).encode()
    request = urllib.request.Request(  # noqa: S310 - http(s) only (the model's validator)
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with _opener.open(request, timeout=settings.NOTIFY_TIMEOUT) as response:
        response.read(1024)


def _failure(error):
    """What the delivery log says of a failed try. Of an HTTP error, the status only: the
    body of whatever the URL points at is not the log's business."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    return f"{type(error).__name__}: {error}"


def deliver(delivery_id, *, final=False):
    """Send one delivery unless another task has taken it. Returns None when it was sent
    or was not this task's to send, else the error. After a failed try the delivery is
    left pending, due again after NOTIFY_RETRY_DELAY (doubled at each try), or failed on
    its last try: the ``final`` one, or its NOTIFY_RETRIES + 1st however its tries were
    queued (a task's retries, the sweep)."""
    taken = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.SENDING, attempts=F("attempts") + 1, claimed_at=timezone.now()
    )
    if not taken:
        return None
    delivery = Delivery.objects.get(pk=delivery_id)
    try:
        if delivery.channel == Delivery.Channel.WEBHOOK:
            _post(delivery.target, delivery.subject, delivery.text)
        else:
            recipients = [address.strip() for address in delivery.target.split(",")]
            send_mail(delivery.subject, delivery.text, None, recipients)
    except Exception as error:  # noqa: BLE001 - whatever went wrong, the log says so
        # Timeouts and refused connections, HTTP errors, a server that speaks no HTTP,
        # SMTP errors: the delivery must not stay "sending" whatever it was.
        if not isinstance(error, (OSError, urllib.error.URLError, http.client.HTTPException)):
            logger.exception("Delivery %s failed unexpectedly", delivery_id)
        detail = _failure(error)[:ERROR_KEPT]
        if final or delivery.attempts > settings.NOTIFY_RETRIES:
            status, due = Delivery.Status.FAILED, None
        else:
            status = Delivery.Status.PENDING
            wait = settings.NOTIFY_RETRY_DELAY * 2 ** (delivery.attempts - 1)
            due = timezone.now() + timedelta(seconds=wait)
        Delivery.objects.filter(pk=delivery_id).update(status=status, last_error=detail, due_at=due)
        outcome = "failed" if status == Delivery.Status.FAILED else "retried"
        metrics.NOTIFICATIONS.labels(delivery.channel, outcome).inc()
        return detail
    Delivery.objects.filter(pk=delivery_id).update(
        status=Delivery.Status.SENT, sent_at=timezone.now(), last_error=""
    )
    metrics.NOTIFICATIONS.labels(delivery.channel, "sent").inc()
    return None


def fail_stuck(now=None):
    """Fail deliveries left "sending" by a worker that died mid-send (scheduled). Not sent
    again: it may have gone out, and a notification is never sent twice."""
    cutoff = (now or timezone.now()) - timedelta(minutes=settings.NOTIFY_STUCK_MINUTES)
    return Delivery.objects.filter(status=Delivery.Status.SENDING, claimed_at__lt=cutoff).update(
        status=Delivery.Status.FAILED,
        last_error="The worker sending it stopped midway; not tried again, as it may have "
        "been sent.",
    )


def sweep(now=None):
    """Queue again the deliveries the broker never got or lost, and fail those a dead
    worker left sending (the outbox's sweep, every minute). Returns how many were queued."""
    fail_stuck(now)
    waiting = Delivery.objects.filter(status=Delivery.Status.PENDING)
    return outbox.send_now(deliver_notification, Delivery, outbox.lost(waiting, now))


# No limit of Celery's own: the delivery's attempts are the count (NOTIFY_RETRIES).
@shared_task(name="wiki.tasks.deliver_notification", bind=True, acks_late=True, max_retries=None)
def deliver_notification(self, delivery_id):
    """Send one notification; a failed try is retried when it is due (``deliver`` decides
    when, and when to give up). Run in-process (no broker), it is tried once: a retry there
    would hold up the request that caused it."""
    if not deliver(delivery_id, final=self.request.is_eager):
        return
    due = (
        Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING)
        .values_list("due_at", flat=True)
        .first()
    )
    if due is not None:
        # If the broker is away now, the delivery waits pending: the sweep queues it.
        countdown = max(0.0, (due - timezone.now()).total_seconds())
        raise self.retry(countdown=countdown)
