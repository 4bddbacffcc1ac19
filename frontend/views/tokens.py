"""The user's API tokens."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from frontend.forms import TokenForm, apply_errors
from frontend.views.base import actor
from wiki.access import visible_projects
from wiki.services.tokens import create_token, revoke_token

NEW_KEY = "mlwiki-new-token-key"


@require_http_methods(["GET", "HEAD", "POST"])
@never_cache
def tokens(request):
    """The user's API tokens. A new key is shown once, on the page after issuing it (kept
    in the session just until then), so reloading neither repeats nor re-issues it."""
    form = TokenForm(request.POST or None, projects=visible_projects(request.user))
    if request.method == "POST" and form.is_valid():
        try:
            _, key = create_token(actor=actor(request), user=request.user, **form.cleaned_data)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            request.session[NEW_KEY] = key
            return redirect("frontend:tokens")
    context = {
        "form": form,
        "key": request.session.pop(NEW_KEY, None),
        "tokens": request.user.api_tokens.all(),
    }
    return render(request, "frontend/tokens.html", context)


@require_POST
def token_revoke(request, pk):
    token = get_object_or_404(request.user.api_tokens, pk=pk)
    revoke_token(token, actor=actor(request))
    messages.success(request, f"Revoked {token.name} ({token.prefix}…).")
    return redirect("frontend:tokens")
