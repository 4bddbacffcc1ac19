"""Issuing, revoking and checking API tokens."""

import copy
import hashlib
import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Subquery
from django.utils import timezone

from wiki import access
from wiki.history import recording
from wiki.models import AccessStamp, ApiToken, Project
from wiki.models.access import STAMP_ID

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


# What authentication and history need of a token and its user.
TOKEN_FIELDS = (
    "name", "user__username", "user__is_active", "user__is_superuser", "scopes",
    "all_projects", "projects", "expires_at", "revoked_at", "last_used_at",
)  # fmt: skip
# When this process last wrote each token's last_used_at: {key hash: time}.
_last_written = {}


def authenticate_key(key, project_slug=None):
    """The active token whose key is ``key``; TokenRejected otherwise.

    Every API request runs this. A token this process looked up under the current access
    version (wiki.access) is taken from its cache, after one small query that reads the
    version (and the project ``project_slug``, which project_for then uses); otherwise
    the token is read with the version in one query."""
    key_hash = hash_key(key)
    token = None
    hit = access.latest(("token", key_hash))
    if hit is not None:
        version = access.read_stamp(project_slug, hit.user_id)
        if access.cached(("token", key_hash), version) is hit:
            token = copy.copy(hit)
            token.user = copy.copy(hit.user)
    if token is None:
        token = _load(key_hash)
    if token is None or not token.user.is_active:
        raise TokenRejected("Invalid token.")
    if token.state == "revoked":
        raise TokenRejected("This token has been revoked.")
    if token.state == "expired":
        raise TokenRejected("This token has expired.")
    _note_use(token, key_hash)
    return token


def _load(key_hash):
    """The token (None if unknown) with the access version, in one query; cached."""
    stamp = AccessStamp.objects.filter(pk=STAMP_ID).values("version")
    found = (
        ApiToken.objects.select_related("user")
        .only(*TOKEN_FIELDS)
        .annotate(access_version=Subquery(stamp))
        .filter(key_hash=key_hash)
        .order_by()[:1]
    )
    token = next(iter(found), None)
    if token is None:
        return None
    version = access.seen(token.access_version)
    cached = copy.copy(token)
    cached.user = copy.copy(token.user)
    access.keep(("token", key_hash), version, cached)
    return token


def _note_use(token, key_hash):
    """Write the token's last_used_at at most once a minute per token and process:
    bookkeeping, not a change of the token (no history row, one UPDATE)."""
    now = timezone.now()
    written = _last_written.get(key_hash, token.last_used_at)
    if written is not None and now - written <= LAST_USED_RESOLUTION:
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    _last_written[key_hash] = token.last_used_at = now
