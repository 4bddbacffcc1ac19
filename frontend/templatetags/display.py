import json

from django import template
from django.utils.text import capfirst

from wiki import access
from wiki.audit import ACTIONS, ACTIVITY_KINDS
from wiki.categories import is_placeholder
from wiki.history import Source

register = template.Library()


@register.filter
def as_json(value):
    """Values pipelines posted, as they posted them: true, null, [1, 2] (not Python's
    True, None); text is shown as it is."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@register.filter
def may_create_projects(user):
    """Whether to offer "New project" (auditors read only)."""
    return access.may_create_projects(user)


@register.filter
def placeholder(value):
    """Whether a field value is only a placeholder ("TBD"), which counts as missing."""
    return is_placeholder(value)


@register.filter
def change_name(entry):
    """What an activity entry did, in words: "Training run created"."""
    kind = capfirst(ACTIVITY_KINDS.get(entry.kind, entry.kind))
    return f"{kind} {ACTIONS.get(entry.action, entry.action)}"


@register.filter
def source_name(source):
    """Where a change came from, in words: "Command line" for "cli"."""
    return Source(source).label if source in Source.values else source
