"""Signing in through the company's OpenID Connect provider: the account, and the roles the
provider's groups give (OIDC_ROLE_MAP, wiki.rolemap), applied at every login.

Roles the role map gave are marked (Membership.managed_by_sso, SsoAccount.auditor and
SsoAccount.validator for the global groups), so leaving a group in the provider takes its
role away at the next login. Roles given by hand are never changed here. Every change is
a revision with source "sso".
"""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from wiki import rolemap
from wiki.access import AUDITOR_GROUP, VALIDATOR_GROUP
from wiki.history import Actor, Source, recording
from wiki.models import Membership, Project, SsoAccount
from wiki.services.members import remove_member, set_member
from wiki.services.records import RecordConflict

logger = logging.getLogger(__name__)


class SignInRefused(Exception):
    """A sign-in through the provider is refused; ``title`` and the message are shown to
    the person (never a secret), with HTTP ``status``."""

    def __init__(self, title, message, status=403):
        super().__init__(message)
        self.title = title
        self.status = status


def _text(value):
    """``value`` if it is text the database can store, else None."""
    return value if isinstance(value, str) and "\x00" not in value else None


def _text_claim(claims, name):
    value = _text(claims.get(name))
    if value is None or not value.strip():
        raise SignInRefused(
            "Your account cannot be used here",
            f"The sign-in provider did not send the '{name}' claim mlwiki names users by "
            "(OIDC_USERNAME_CLAIM). Ask your administrator.",
        )
    return value.strip()


def _groups(claims):
    value = claims.get(settings.OIDC_GROUPS_CLAIM, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [group for group in value if _text(group) is not None]


def sign_in(issuer, claims):
    """The user the provider's verified ``claims`` name, created at the first login, with
    the roles their groups map to. SignInRefused when the account may not sign in."""
    subject = _text_claim(claims, "sub")
    username = _text_claim(claims, settings.OIDC_USERNAME_CLAIM)
    if settings.OIDC_USERNAME_CLAIM == "email" and claims.get("email_verified") is not True:
        # Some providers let people set their own e-mail address: unverified, it could
        # name someone else's account.
        raise SignInRefused(
            "Your account cannot be used here",
            f"The provider has not verified the e-mail address '{username}', which mlwiki "
            "names users by. Ask your administrator.",
        )
    User = get_user_model()
    try:
        User._meta.get_field("username").run_validators(username)
    except ValidationError:
        raise SignInRefused(
            "Your account cannot be used here",
            f"'{username}' is not a user name mlwiki accepts (at most 150 letters, digits "
            "and @ . + - _). Ask your administrator to set OIDC_USERNAME_CLAIM.",
        ) from None
    groups = _groups(claims)
    try:
        return _sign_in(issuer, subject, username, groups, claims)
    except IntegrityError:
        # The same person's first sign-in in two tabs at once: the other one created the
        # account; this one now finds it.
        return _sign_in(issuer, subject, username, groups, claims)


def _sign_in(issuer, subject, username, groups, claims):
    with transaction.atomic():
        account = (
            SsoAccount.objects.select_for_update()
            .select_related("user")
            .filter(issuer=issuer, subject=subject)
            .first()
        )
        user = account.user if account else _user_for(username, claims)
        if not user.is_active:
            raise SignInRefused(
                "Your account is deactivated", "Ask an administrator of mlwiki to restore it."
            )
        actor = Actor(user=user, source=Source.SSO)
        reason = f"Signed in with {settings.OIDC_PROVIDER_NAME} (groups: {', '.join(groups)})"
        with recording(actor, reason[:1000]):
            _update_profile(user, claims)
            if account is None:
                account = SsoAccount(user=user, issuer=issuer, subject=subject)
            before = _marks(account)
            account.groups = groups
            account.last_login = timezone.now()
            grants = rolemap.parse(settings.OIDC_ROLE_MAP)
            slugs = set(Project.objects.values_list("slug", flat=True))
            mapped = rolemap.roles_for(grants, groups, slugs)
            _sync_group(user, account, "auditor", AUDITOR_GROUP, mapped.auditor)
            _sync_group(user, account, "validator", VALIDATOR_GROUP, mapped.validator)
            if account.pk is None or before != _marks(account):
                account.save()
            else:  # the time alone is not a revision
                SsoAccount.objects.filter(pk=account.pk).update(last_login=account.last_login)
        _sync_memberships(user, mapped.projects, actor, reason)
    return user


def _user_for(username, claims):
    """The account a first sign-in uses: a new one, or with OIDC_LINK_LOCAL_ACCOUNTS the
    local one of that name."""
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None:
        with recording(Actor(user=None, source=Source.SSO), "First sign-in"):
            return User.objects.create_user(username, **_profile(claims))
    if user.is_superuser:
        # Taking a superuser over would give the provider's account of that name every
        # right; superusers log in with their password (the break-glass page).
        raise SignInRefused(
            "Your account cannot be used here",
            f"'{username}' is an administrator account of mlwiki, which does not sign in "
            "through the provider.",
        )
    if hasattr(user, "sso_account"):
        raise SignInRefused(
            "Your account cannot be used here",
            f"The mlwiki account '{username}' belongs to another identity of the provider.",
        )
    if not settings.OIDC_LINK_LOCAL_ACCOUNTS:
        # Taken over, the local account's roles and API tokens would go to whoever the
        # provider calls by that name: only when the administrator says names match.
        raise SignInRefused(
            "Your account cannot be used here",
            f"mlwiki already has a local account named '{username}'. An administrator can "
            "let single sign-on use local accounts of the same name (OIDC_LINK_LOCAL_ACCOUNTS)"
            " or rename that account.",
        )
    return user


def _profile(claims):
    """The account's e-mail and names, from the claims that carry them as usable text."""
    User = get_user_model()
    claim_of = {"email": "email", "first_name": "given_name", "last_name": "family_name"}
    profile = {}
    for field, claim in claim_of.items():
        value = _text(claims.get(claim))
        if value is not None:
            profile[field] = value[: User._meta.get_field(field).max_length]
    return profile


def _update_profile(user, claims):
    changed = {f: v for f, v in _profile(claims).items() if getattr(user, f) != v}
    if changed:
        for field, value in changed.items():
            setattr(user, field, value)
        user.save(update_fields=list(changed))


def _marks(account):
    """What a login may change of an account, besides its time."""
    return (account.groups, account.auditor, account.validator)


def _sync_group(user, account, flag, name, given):
    """Put ``user`` in the global group ``name`` when the role map gives it, marking
    ``account.<flag>``; take them out when it no longer does, only if the mark says the
    role map put them there."""
    group = Group.objects.get_or_create(name=name)[0]
    in_group = user.groups.filter(pk=group.pk).exists()
    if given and not in_group:
        user.groups.add(group)
        setattr(account, flag, True)
    elif not given and getattr(account, flag):
        user.groups.remove(group)
        setattr(account, flag, False)
    # A member by hand (in the group, not marked) stays one either way.


def _sync_memberships(user, roles, actor, reason):
    current = {
        m.project.slug: m for m in Membership.objects.filter(user=user).select_related("project")
    }
    projects = {p.slug: p for p in Project.objects.filter(slug__in=roles)}
    for slug, role in roles.items():
        membership = current.get(slug)
        if membership is not None and (not membership.managed_by_sso or membership.role == role):
            continue
        _keep_going(
            set_member, projects[slug], actor=actor, username=user.username, role=role,
            change_reason=reason, managed_by_sso=True,
        )  # fmt: skip
    for slug, membership in current.items():
        if membership.managed_by_sso and slug not in roles:
            _keep_going(remove_member, membership, actor=actor, change_reason=reason)


def _keep_going(change, *args, **kwargs):
    """A change the domain refuses (the last maintainer may not leave) is skipped, so the
    person still signs in; the log says why the role stays."""
    try:
        change(*args, **kwargs)
    except RecordConflict as refusal:
        logger.warning("Single sign-on kept a role: %s", refusal)
