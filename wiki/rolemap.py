"""The group → role map of single sign-on (OIDC_ROLE_MAP): checked at start (wiki.E010),
read at each login (wiki.services.sso).

Syntax: entries separated by ``;``, each ``<group>=<role>[:<project>]``:

- ``<group>`` is a value of the ID token's group claim (OIDC_GROUPS_CLAIM), as the identity
  provider sends it (a name, a path such as ``/ml-platform``, or an object id);
- ``<role>`` is ``viewer``, ``editor``, ``maintainer`` or ``validator`` followed by
  ``:<project slug>``, or ``:*`` for every project that exists at the login (a membership
  in each); or, with no project part, ``auditor`` (the "auditor" group: reads every
  project) or ``validator`` (the "validator" group: validates every project, including
  those created later, except where the person may edit).

Example: ``ml-platform=maintainer:*;risk=auditor;mrm=validator;ds-churn=editor:churn``.
A group may appear in several entries; when several groups give roles in one project, the
highest wins: maintainer > editor > validator > viewer. A validator reads the project and
validates it, so it is more than a viewer; but who may edit a documentation must not
validate it (independence), so editing outranks validating: a person whose groups make them
both an editor and a validator of one project is its editor, as a member of the "validator"
group is never a validator where they edit (wiki.access).
"""

import re
from dataclasses import dataclass, field

from wiki.models import SLUG_PATTERN, Membership

AUDITOR = "auditor"
VALIDATOR = "validator"  # without a project part: the global group
GLOBAL_ROLES = (AUDITOR, VALIDATOR)
EVERY_PROJECT = "*"
# Lowest to highest: when two groups grant roles in one project, the higher one wins
# (editing outranks validating: see the module docstring).
RANKS = [
    Membership.Role.VIEWER,
    Membership.Role.VALIDATOR,
    Membership.Role.EDITOR,
    Membership.Role.MAINTAINER,
]


class RoleMapError(ValueError):
    """OIDC_ROLE_MAP does not follow the syntax; the message says where and how."""


@dataclass(frozen=True)
class Grant:
    group: str
    role: str  # a Membership.Role, or AUDITOR / VALIDATOR for a global group
    project: str = ""  # a project slug or EVERY_PROJECT; empty for a global group


@dataclass
class MappedRoles:
    """What the role map gives one person: the global groups and a role per project."""

    auditor: bool = False
    validator: bool = False  # the "validator" group, not a project's validator role
    projects: dict = field(default_factory=dict)  # {project slug: Membership.Role}


def parse(text):
    """The grants written in ``text`` (OIDC_ROLE_MAP), or RoleMapError naming the entry."""
    grants = []
    for number, entry in enumerate(text.split(";"), start=1):
        entry = entry.strip()
        if not entry:
            continue
        group, equals, target = (part.strip() for part in entry.rpartition("="))
        where = f"OIDC_ROLE_MAP entry {number} ({entry!r})"
        if not equals or not group:
            raise RoleMapError(f"{where}: write <group>=<role>[:<project>].")
        role, colon, project = (part.strip() for part in target.partition(":"))
        if role in GLOBAL_ROLES and not colon:
            pass  # the auditor or validator group
        elif role == AUDITOR:
            raise RoleMapError(f"{where}: auditor reads every project; drop ':{project}'.")
        elif role in RANKS:
            if not project:
                alone = ", or 'validator' alone for the validator group"
                alone = alone if role == VALIDATOR else ""
                raise RoleMapError(
                    f"{where}: {role} needs a project: '{role}:<project slug>' or "
                    f"'{role}:*'{alone}."
                )
            if project != EVERY_PROJECT and not re.fullmatch(SLUG_PATTERN, project):
                raise RoleMapError(f"{where}: '{project}' is not a project slug.")
        else:
            raise RoleMapError(
                f"{where}: unknown role '{role}'; use viewer, editor, maintainer, validator "
                "or auditor."
            )
        grants.append(Grant(group=group, role=role, project=project))
    return grants


def roles_for(grants, groups, project_slugs):
    """What the role map gives a member of ``groups`` (MappedRoles).

    ``project_slugs`` are the projects that exist (``*`` means each of them; a slug that
    names no project is skipped)."""
    groups = set(groups)
    mapped = MappedRoles()
    for grant in grants:
        if grant.group not in groups:
            continue
        if grant.role == AUDITOR:
            mapped.auditor = True
            continue
        if grant.role == VALIDATOR and not grant.project:
            mapped.validator = True
            continue
        targets = project_slugs if grant.project == EVERY_PROJECT else [grant.project]
        for slug in targets:
            if slug in project_slugs and RANKS.index(grant.role) >= RANKS.index(
                mapped.projects.get(slug, RANKS[0])
            ):
                mapped.projects[slug] = grant.role
    return mapped
