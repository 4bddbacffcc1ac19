"""Who belongs to a project, and as what."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from wiki.history import recording
from wiki.models import Membership
from wiki.services.records import RecordConflict


def _role(role):
    if role not in Membership.Role.values:
        raise ValidationError({"role": f"Must be one of: {', '.join(Membership.Role.values)}."})
    return role


def _keeps_a_maintainer(project, leaving):
    """Refuse to leave a project without any maintainer (nobody could manage it)."""
    # Locking every maintainer's row keeps two maintainers leaving at once from both
    # seeing the other one still there.
    maintainers = Membership.objects.select_for_update().filter(
        project=project, role=Membership.Role.MAINTAINER
    )
    if not [m for m in maintainers if m.pk != leaving.pk]:
        raise RecordConflict(f"{leaving.user} is the last maintainer of {project}.")


def set_member(project, *, actor, username, role, change_reason="", managed_by_sso=False):
    """Make ``username`` a member of ``project`` with ``role`` (new, or a change of role).

    ``managed_by_sso``: the role comes from single sign-on's role map (wiki.services.sso).
    A role set by hand takes an SSO-managed membership over: later logins leave it be."""
    role = _role(role)
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ValidationError({"username": f"There is no active user '{username}'."})
    reason = change_reason or f"{username} is now {role}"
    with transaction.atomic(), recording(actor, reason):
        membership = Membership.objects.select_for_update().filter(project=project, user=user)
        current = membership.first()
        if current is None:
            return Membership.objects.create(
                project=project, user=user, role=role, managed_by_sso=managed_by_sso
            )
        if current.role != role or current.managed_by_sso != managed_by_sso:
            if current.role == Membership.Role.MAINTAINER and role != current.role:
                _keeps_a_maintainer(project, current)
            current.role = role
            current.managed_by_sso = managed_by_sso
            current.save()
        return current


def remove_member(membership, *, actor, change_reason=""):
    """Take a member out of a project (the history keeps that they were one)."""
    reason = change_reason or f"{membership.user} left"
    with transaction.atomic(), recording(actor, reason):
        current = Membership.objects.select_for_update().get(pk=membership.pk)
        if current.role == Membership.Role.MAINTAINER:
            _keeps_a_maintainer(current.project, current)
        current.delete()
