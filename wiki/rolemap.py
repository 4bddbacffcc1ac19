"""The group → role map of single sign-on (OIDC_ROLE_MAP): checked at start (wiki.E010),
read at each login (wiki.services.sso).

Syntax: entries separated by ``;``, each ``<group>=<role>[:<project>]``:

- ``<group>`` is a value of the ID token's group claim (OIDC_GROUPS_CLAIM), as the identity
  provider sends it (a name, a path such as ``/ml-platform``, or an object id);
- ``<role>`` is ``viewer``, ``editor`` or ``maintainer`` followed by ``:<project slug>``, or
  ``:*`` for every project, or ``auditor`` (reads every project; no project part).

Example: ``ml-platform=maintainer:*;risk=auditor;ds-churn=editor:churn-prediction``.
A group may appear in several entries; when several groups give a role in one project,
the highest wins (maintainer > editor > viewer).
"""

import re
from dataclasses import dataclass

from wiki.models import SLUG_PATTERN, Membership

AUDITOR = "auditor"
EVERY_PROJECT = "*"
# Lowest to highest: when two groups grant roles in one project, the later one wins.
RANKS = [Membership.Role.VIEWER, Membership.Role.EDITOR, Membership.Role.MAINTAINER]


class RoleMapError(ValueError):
    """OIDC_ROLE_MAP does not follow the syntax; the message says where and how."""


@dataclass(frozen=True)
class Grant:
    group: str
    role: str  # a Membership.Role, or AUDITOR
    project: str = ""  # a project slug or EVERY_PROJECT; empty for the auditor


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
        role, _, project = (part.strip() for part in target.partition(":"))
        if role == AUDITOR:
            if project:
                raise RoleMapError(f"{where}: auditor reads every project; drop ':{project}'.")
        elif role in RANKS:
            if not project:
                raise RoleMapError(
                    f"{where}: {role} needs a project: '{role}:<project slug>' or '{role}:*'."
                )
            if project != EVERY_PROJECT and not re.fullmatch(SLUG_PATTERN, project):
                raise RoleMapError(f"{where}: '{project}' is not a project slug.")
        else:
            raise RoleMapError(
                f"{where}: unknown role '{role}'; use viewer, editor, maintainer or auditor."
            )
        grants.append(Grant(group=group, role=role, project=project))
    return grants


def roles_for(grants, groups, project_slugs):
    """What the role map gives a member of ``groups``: (auditor?, {project slug: role}).

    ``project_slugs`` are the projects that exist (``*`` means each of them; a slug that
    names no project is skipped)."""
    groups = set(groups)
    auditor = False
    roles = {}
    for grant in grants:
        if grant.group not in groups:
            continue
        if grant.role == AUDITOR:
            auditor = True
            continue
        targets = project_slugs if grant.project == EVERY_PROJECT else [grant.project]
        for slug in targets:
            if slug in project_slugs and RANKS.index(grant.role) >= RANKS.index(
                roles.get(slug, RANKS[0])
            ):
                roles[slug] = grant.role
    return auditor, roles
