"""Who may do what: project roles, the global auditor, and administrators.

Per project, a member is a viewer (reads everything of the project, history included), an
editor (also writes its documentation and records) or a maintainer (also its settings,
members, tokens and approvals). A validator reads a project and validates its
documentation independently (opens validations, files findings, concludes), but never
edits it. An auditor (member of the "auditor" group) reads every project, history
included, and may request exports, but changes nothing. A member of the "validator" group
is a validator of every project but those whose documentation they may edit: who writes
a documentation may not validate it. Superusers may do everything. Anyone else sees
nothing of a project: not even that it exists.

Rights are checked here, once, by ``project_for``: the browser and the API both start
every project-scoped request with it. The services in wiki/services assume their caller
may act, and enforce the domain's own rules (four eyes, the last maintainer, conflicts).

What decides access (tokens, users, groups, memberships) is cached per process under the
access stamp (AccessStamp), which every change of it bumps in its own transaction. A
request reads the stamp once (``read_stamp``, or with its token, wiki.services.tokens)
before it uses anything cached, and a cached answer counts only if it was looked up under
that very version: a revoked token or a removed role takes effect on the next request.
Outside requests (tasks, commands) nothing is cached.
"""

import contextvars
import threading

from django.core.exceptions import PermissionDenied
from django.db import connection

from wiki.models import AccessStamp, Membership, Project
from wiki.models.access import STAMP_ID

AUDITOR_GROUP = "auditor"
VALIDATOR_GROUP = "validator"
GLOBAL_GROUPS = (AUDITOR_GROUP, VALIDATOR_GROUP)

VIEW, EDIT, MAINTAIN, VALIDATE = "view", "edit", "maintain", "validate"
# What each role may do; an auditor's rights are VIEW on every project, a global
# validator's VIEW and VALIDATE on every project where they may not EDIT.
ROLE_RIGHTS = {
    Membership.Role.VIEWER: {VIEW},
    Membership.Role.EDITOR: {VIEW, EDIT},
    Membership.Role.MAINTAINER: {VIEW, EDIT, MAINTAIN},
    Membership.Role.VALIDATOR: {VIEW, VALIDATE},
}


# The access version the current request read (None outside requests: no caching), the
# project read with it (see read_stamp), and the cache: {key: (version, value)}.
_version = contextvars.ContextVar("mlwiki_access_version", default=None)
_prefetched = contextvars.ContextVar("mlwiki_access_project", default=None)
_cache = {}
_cache_lock = threading.Lock()
# Entries kept at most (a flood of distinct keys must not grow a process without end).
CACHE_SIZE = 10_000


def read_stamp(slug=None, user_id=None):
    """The access version now, in one small query, remembered for this request (and the
    cache emptied if it moved). With ``slug``, the same query also reads that project
    with ``user_id``'s role in it, which ``project_for`` then uses instead of asking."""
    stamps = connection.ops.quote_name(AccessStamp._meta.db_table)
    if slug is None:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT version FROM {stamps} WHERE id = %s", [STAMP_ID])  # noqa: S608
            row = cursor.fetchone()
        return seen(row[0] if row else None)
    projects = connection.ops.quote_name(Project._meta.db_table)
    members = connection.ops.quote_name(Membership._meta.db_table)
    found = Project.objects.raw(
        f"SELECT p.*, (SELECT m.role FROM {members} m "  # noqa: S608 - quoted table names
        f"WHERE m.project_id = p.id AND m.user_id = %s) AS user_role, "
        f"s.version AS access_version "
        f"FROM {stamps} s LEFT JOIN {projects} p ON p.slug = %s WHERE s.id = %s",
        [user_id, slug, STAMP_ID],
    )
    row = next(iter(found), None)
    if row is None:
        return seen(None)
    version = row.access_version
    if row.pk is not None:
        row.role_of_user = user_id
    _prefetched.set((slug, user_id, row if row.pk is not None else None))
    return seen(version)


def seen(version):
    """Note ``version`` as the access version of this request; returns it."""
    _version.set(version)
    if version is not None:
        with _cache_lock:
            if _cache.get("version") != version:
                _cache.clear()
                _cache["version"] = version
    return version


def forget_request(**kwargs):
    """The request ended (or starts): what it read is not the next one's."""
    _version.set(None)
    _prefetched.set(None)


def forget_all():
    """Empty this process's cache (tests start from nothing)."""
    forget_request()
    with _cache_lock:
        _cache.clear()


def cached(key, version):
    """The value cached under ``key`` if it was looked up under ``version`` (the one
    this request read), else None."""
    if version is None:
        return None
    entry = _cache.get(key)
    return entry[1] if entry is not None and entry[0] == version else None


def latest(key):
    """What is cached under ``key`` under the newest version this process has seen (to be
    confirmed by ``cached`` once the request has read the version), else None."""
    entry = _cache.get(key)
    return entry[1] if entry is not None and entry[0] == _cache.get("version") else None


def keep(key, version, value):
    """Cache ``value``, looked up under ``version`` (read before the lookup, or in its
    query: a change committed in between bumps past it, so the entry is never older than
    its version)."""
    if version is None:
        return
    with _cache_lock:
        if _cache.get("version") != version:
            return  # a newer version was seen meanwhile
        if len(_cache) > CACHE_SIZE:
            _cache.clear()
            _cache["version"] = version
        _cache[key] = (version, value)


def global_groups(user):
    """Which of the global groups (auditor, validator) ``user`` is in, as a frozenset
    (asked once per user object, and once per access version in a request)."""
    if not user.is_authenticated:
        return frozenset()
    if not hasattr(user, "_mlwiki_groups"):
        version = _version.get()
        found = cached(("groups", user.pk), version)
        if found is None:
            found = frozenset(
                user.groups.filter(name__in=GLOBAL_GROUPS).values_list("name", flat=True)
            )
            keep(("groups", user.pk), version, found)
        user._mlwiki_groups = found
    return user._mlwiki_groups


def is_auditor(user):
    """Whether ``user`` is in the auditor group."""
    return AUDITOR_GROUP in global_groups(user)


def is_global_validator(user):
    """Whether ``user`` is in the validator group."""
    return VALIDATOR_GROUP in global_groups(user)


def role_in(user, project):
    """``user``'s role in ``project`` (a Membership.Role), or None.

    Read from ``project.user_role`` when the project was loaded by ``project_for``
    for this user, else asked once per user and project (and access version)."""
    if not user.is_authenticated:
        return None
    roles = user.__dict__.setdefault("_mlwiki_roles", {})
    if project.pk not in roles:
        if getattr(project, "role_of_user", None) == user.pk:
            roles[project.pk] = project.user_role
        else:
            version = _version.get()
            key = ("role", user.pk, project.pk)
            role = cached(key, version)
            if role is None:
                role = (
                    Membership.objects.filter(project=project, user=user)
                    .values_list("role", flat=True)
                    .first()
                ) or ""  # "" (no role) can be cached, None means not cached
                keep(key, version, role)
            roles[project.pk] = role or None
    return roles[project.pk]


def project_for(user, slug, right=VIEW, token=None):
    """The project ``slug`` if ``user`` may see it and has ``right`` in it (with the API
    ``token`` the request came with, if any, valid for it).

    Project.DoesNotExist when it does not exist or the user may not see it (the same
    answer, so nobody learns that a hidden project exists); PermissionDenied when they see
    it but may not do this."""
    known, project = _prefetched_project(slug, user)
    if not known:
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


def _prefetched_project(slug, user):
    """(True, project or None) if read_stamp read ``slug`` for ``user`` in this request
    (once: a second project_for asks again), else (False, None)."""
    found = _prefetched.get()
    user_id = user.pk if user.is_authenticated else None
    if found is None or found[0] != slug or found[1] != user_id or user_id is None:
        return False, None
    _prefetched.set(None)
    return True, found[2]


def rights(user, project):
    """The set of VIEW / EDIT / MAINTAIN / VALIDATE ``user`` has in ``project``."""
    if not user.is_authenticated or not user.is_active:
        return set()
    if user.is_superuser:
        return {VIEW, EDIT, MAINTAIN, VALIDATE}
    granted = set(ROLE_RIGHTS.get(role_in(user, project), ()))
    if EDIT not in granted and VALIDATE not in granted:  # asked only when it may matter
        groups = global_groups(user)
        if AUDITOR_GROUP in groups:
            granted.add(VIEW)
        if VALIDATOR_GROUP in groups:  # independence: never where they edit
            granted |= {VIEW, VALIDATE}
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
    if user.is_superuser or global_groups(user):
        return Project.objects.all()
    return Project.objects.filter(pk__in=Membership.objects.filter(user=user).values("project"))
