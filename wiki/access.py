"""Who may do what: project roles, the global auditor, and administrators.

Per project, a member is a viewer (reads everything of the project, history included), an
editor (also writes its documentation and records) or a maintainer (also its settings,
members, tokens and approvals). An auditor (member of the "auditor" group) reads every
project, history included, and may request exports, but changes nothing. Superusers may
do everything. Anyone else sees nothing of a project: not even that it exists.
"""

from django.db.models import IntegerField, OuterRef, Subquery, Value

from wiki.models import Membership, Project

AUDITOR_GROUP = "auditor"

VIEW, EDIT, MAINTAIN = "view", "edit", "maintain"
# What each role may do; an auditor's rights are VIEW on every project.
ROLE_RIGHTS = {
    Membership.Role.VIEWER: {VIEW},
    Membership.Role.EDITOR: {VIEW, EDIT},
    Membership.Role.MAINTAINER: {VIEW, EDIT, MAINTAIN},
}


def is_auditor(user):
    """Whether ``user`` is in the auditor group (asked once per user object)."""
    if not user.is_authenticated:
        return False
    if not hasattr(user, "_mlwiki_auditor"):
        user._mlwiki_auditor = user.groups.filter(name=AUDITOR_GROUP).exists()
    return user._mlwiki_auditor


def role_in(user, project):
    """``user``'s role in ``project`` (a Membership.Role), or None.

    Read from ``project.user_role`` when the project was loaded ``with_role`` for this
    user, else asked once per user and project."""
    if not user.is_authenticated:
        return None
    roles = user.__dict__.setdefault("_mlwiki_roles", {})
    if project.pk not in roles:
        if getattr(project, "role_of_user", None) == user.pk:
            roles[project.pk] = project.user_role
        else:
            roles[project.pk] = (
                Membership.objects.filter(project=project, user=user)
                .values_list("role", flat=True)
                .first()
            )
    return roles[project.pk]


def with_role(projects, user):
    """``projects`` annotated with ``user``'s role in each (no query per project later)."""
    if not user.is_authenticated:
        return projects
    role = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    return projects.annotate(
        user_role=Subquery(role), role_of_user=Value(user.pk, output_field=IntegerField())
    )


def rights(user, project):
    """The set of VIEW / EDIT / MAINTAIN ``user`` has in ``project``."""
    if not user.is_authenticated or not user.is_active:
        return set()
    if user.is_superuser:
        return {VIEW, EDIT, MAINTAIN}
    granted = set(ROLE_RIGHTS.get(role_in(user, project), ()))
    if not granted and is_auditor(user):  # a member sees the project anyway
        granted.add(VIEW)
    return granted


def can(user, right, project):
    return right in rights(user, project)


def may_create_projects(user):
    """Any active user may start a project (and maintains it); an auditor changes nothing."""
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or not is_auditor(user)


def visible_projects(user):
    """The projects ``user`` may see."""
    if not user.is_authenticated or not user.is_active:
        return Project.objects.none()
    if user.is_superuser or is_auditor(user):
        return Project.objects.all()
    return Project.objects.filter(pk__in=Membership.objects.filter(user=user).values("project"))
