import json

from django import template

from wiki import access
from wiki.audit import ACTIONS
from wiki.categories import is_placeholder

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
def action_name(action):
    """A history action ("+", "~", "-") in words: created, changed, deleted."""
    return ACTIONS.get(action, action)


@register.filter
def placeholder(value):
    """Whether a field value is only a placeholder ("TBD"), which counts as missing."""
    return is_placeholder(value)
