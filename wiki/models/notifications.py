"""Where a project's notifications go, and the log of each one sent."""

from urllib.parse import urlsplit

from django.core.validators import URLValidator
from django.db import models

from wiki.models.base import DomainModel, history
from wiki.models.projects import Project


class NotificationSettings(DomainModel):
    """Where a project's notifications go: a webhook (Slack-compatible JSON) and/or e-mail
    to its maintainers. What goes: a daily digest of stale and incomplete pages, and events
    as they happen (a deployment failed or was rolled back, a page was approved)."""

    project = models.OneToOneField(
        Project, on_delete=models.CASCADE, related_name="notification_settings"
    )
    # Slack's incoming-webhook URLs are secrets: kept out of the history rows (which audit
    # reports copy); a revision still says who changed the settings, and when.
    webhook_url = models.URLField(
        max_length=500, blank=True, validators=[URLValidator(schemes=["http", "https"])]
    )
    email_maintainers = models.BooleanField(default=False)
    daily_digest = models.BooleanField(default=True)
    events = models.BooleanField(default=True)

    history = history(excluded_fields=["webhook_url"])

    # What a maintainer sets (the form, the service and the page read this list).
    SETTINGS = ("webhook_url", "email_maintainers", "daily_digest", "events")

    def __str__(self):
        return f"Notifications of {self.project}"

    @property
    def channels(self):
        return [
            channel
            for channel, wanted in (
                (Delivery.Channel.WEBHOOK, bool(self.webhook_url)),
                (Delivery.Channel.EMAIL, self.email_maintainers),
            )
            if wanted
        ]


class Delivery(models.Model):
    """One notification to one channel, and how sending it went: the delivery log.

    ``key`` names what it announces (the digest of a day, an event) once per channel; its
    unique constraint is the claim that keeps two beat or worker processes from sending
    the same thing twice."""

    class Channel(models.TextChoices):
        WEBHOOK = "webhook"
        EMAIL = "email", "E-mail"

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="deliveries")
    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=30)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    # The webhook URL or the e-mail addresses, as they were when it was queued.
    target = models.TextField()
    subject = models.CharField(max_length=300)
    text = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the message queued to send it is due to run (null while none is queued): the
    # outbox's sweep queues it again when there is none, or it is long overdue.
    due_at = models.DateTimeField(null=True, blank=True)
    # When a task took it to send (a delivery "sending" long after lost its worker).
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "created_at"]),
            models.Index(fields=["status", "claimed_at"]),
            models.Index(fields=["status", "due_at"]),
        ]
        verbose_name_plural = "deliveries"

    def __str__(self):
        return f"{self.kind} to {self.channel} ({self.status})"

    @property
    def shown_target(self):
        """The target without a webhook URL's secrets (its path, any user:password@): its
        host and port only."""
        if self.channel == self.Channel.WEBHOOK:
            url = urlsplit(self.target)
            return f"{url.hostname}:{url.port}" if url.port else url.hostname
        return self.target
