from django import template

from wiki.rendering import render_markdown

register = template.Library()


@register.simple_tag
def markdown(text, project_slug=None):
    """Sanitized HTML of Markdown ``text``; wiki links resolve within ``project_slug``."""
    return render_markdown(text, project_slug)
