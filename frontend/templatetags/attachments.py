from django import template

from frontend.views.attachments import panel_context

register = template.Library()


@register.inclusion_tag("frontend/_attachments.html", takes_context=True)
def attachments_panel(context, target, can_edit):
    """The attachments of ``target`` (a page or record), with the upload form and delete
    buttons if ``can_edit``."""
    return panel_context(context["request"], target, can_edit) | {
        "csrf_token": context.get("csrf_token")
    }
