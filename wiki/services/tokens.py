"""Issuing, revoking and checking API tokens."""

import hashlib
import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from wiki.history import recording
from wiki.models import ApiToken, Project

KEY_PREFIX = "mlw_"
# Writing last_used_at on every request would add a write to every read; once a minute
# is precise enough to tell a live token from a forgotten one.
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_EXPIRY_DAYS = 3650


class TokenRejected(Exception):
    """The key is unknown, revoked or expired; the message says which."""


def hash_key(key):
    return hashlib.sha256(key.encode()).hexdigest()


def create_token(
    *, actor, user, name, scopes, projects=(), all_projects=False, expires_in_days=None
):
    """Issue a token acting as ``user``; returns (token, key). The key is never stored."""
    if expires_in_days is not None and (
        not isinstance(expires_in_days, int) or not 1 <= expires_in_days <= MAX_EXPIRY_DAYS
    ):
        raise ValidationError(
            {"expires_in_days": f"A whole number of days from 1 to {MAX_EXPIRY_DAYS}."}
        )
    slugs = sorted(set(projects))
    unknown = sorted(
        set(slugs) - set(Project.objects.filter(slug__in=slugs).values_list("slug", flat=True))
    )
    if unknown:
        raise ValidationError({"projects": f"No such project: {', '.join(unknown)}."})
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=(name or "").strip(),
        user=user,
        prefix=key[: len(KEY_PREFIX) + 8],
        key_hash=hash_key(key),
        scopes=sorted(set(scopes)),
        all_projects=all_projects,
        projects=slugs,
        expires_at=timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    token.full_clean()
    with transaction.atomic(), recording(actor, f"Issued API token {token.name}"):
        token.save()
    return token, key


def revoke_token(token, *, actor, change_reason=""):
    """Revoke ``token`` from now on; revoking twice changes nothing."""
    with transaction.atomic(), recording(actor, change_reason or f"Revoked API token {token.name}"):
        current = ApiToken.objects.select_for_update().get(pk=token.pk)
        if current.revoked_at is None:
            current.revoked_at = timezone.now()
            current.save()
    return current


def authenticate_key(key):
    """The active token whose key is ``key``; TokenRejected otherwise."""
    # Every API request runs this: fetch only what authentication and history need.
    found = (
        ApiToken.objects.select_related("user")
        .only(
            "name",
            "user__username",
            "user__is_active",
            "user__is_superuser",
            "scopes",
            "all_projects",
            "projects",
            "expires_at",
            "revoked_at",
            "last_used_at",
        )  # fmt: skip
        .filter(key_hash=hash_key(key))
        .order_by()[:1]
    )
    token = next(iter(found), None)
    if token is None or not token.user.is_active:
        raise TokenRejected("Invalid token.")
    if token.state == "revoked":
        raise TokenRejected("This token has been revoked.")
    if token.state == "expired":
        raise TokenRejected("This token has expired.")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        # Bookkeeping, not a change of the token: no history row, one conditional UPDATE.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
