"""Who may do what: project roles, the global auditor, and administrators.

Per project, a member is a viewer (reads everything of the project, history included), an
editor (also writes its documentation and records) or a maintainer (also its settings,
members, tokens and approvals). An auditor (member of the "auditor" group) reads every
project, history included, and may request exports, but changes nothing. Superusers may
do everything. Anyone else sees nothing of a project: not even that it exists.

Rights are checked here, once, by ``project_for``: the browser and the API both start
every project-scoped request with it. The services in wiki/services assume their caller
may act, and enforce the domain's own rules (four eyes, the last maintainer, conflicts).
"""

from django.core.exceptions import PermissionDenied
from django.db import connection

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

    Read from ``project.user_role`` when the project was loaded by ``project_for``
    for this user, else asked once per user and project."""
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


def project_for(user, slug, right=VIEW, token=None):
    """The project ``slug`` if ``user`` may see it and has ``right`` in it (with the API
    ``token`` the request came with, if any, valid for it).

    Project.DoesNotExist when it does not exist or the user may not see it (the same
    answer, so nobody learns that a hidden project exists); PermissionDenied when they see
    it but may not do this."""
    project = _with_role(slug, user)
    granted = rights(user, project) if project is not None else set()
    if VIEW not in granted:
        raise Project.DoesNotExist(f"There is no project '{slug}' that {user} may see.")
    if token is not None and not token.allows_project(slug):
        raise PermissionDenied(f"This token is not valid for project '{slug}'.")
    if right not in granted:
        raise PermissionDenied(f"{user}'s role in '{slug}' does not allow this.")
    return project


def _with_role(slug, user):
    """The project ``slug`` (None if there is none), with ``user``'s role in it, in one
    query.

    Raw SQL because it is the hottest query of the API: the ORM spent more time compiling
    the role subquery than the database took to answer it."""
    projects = connection.ops.quote_name(Project._meta.db_table)
    members = connection.ops.quote_name(Membership._meta.db_table)
    user_id = user.pk if user.is_authenticated else None
    found = Project.objects.raw(
        f"SELECT p.*, (SELECT m.role FROM {members} m "  # noqa: S608 - quoted table names
        f"WHERE m.project_id = p.id AND m.user_id = %s) AS user_role "
        f"FROM {projects} p WHERE p.slug = %s",
        [user_id, slug],
    )
    project = next(iter(found), None)
    if project is not None and user_id is not None:
        project.role_of_user = user_id
    return project


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
