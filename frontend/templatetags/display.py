import json

from django import template

register = template.Library()


@register.filter
def as_json(value):
    """Values pipelines posted, as they posted them: true, null, [1, 2] (not Python's
    True, None); text is shown as it is."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
