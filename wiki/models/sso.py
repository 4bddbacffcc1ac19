"""Accounts that sign in through the company's OpenID Connect provider."""

from django.conf import settings
from django.db import models

from wiki.models.base import history


class SsoAccount(models.Model):
    """The provider's identity (issuer and subject, which never change) of a user, and
    what the role map gave them at their last login."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_account"
    )
    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=255)
    # The auditor role (a member of the "auditor" group) came from the role map, so leaving
    # the provider's group takes it away; an auditor made by hand keeps it.
    auditor = models.BooleanField(default=False)
    # Likewise for the global validator role (a member of the "validator" group).
    validator = models.BooleanField(default=False)
    groups = models.JSONField("groups at the last login", default=list)
    last_login = models.DateTimeField()

    history = history(excluded_fields=["last_login"])

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="sso_account_unique")
        ]

    def __str__(self):
        return f"{self.user} ({self.subject} at {self.issuer})"
