"""Search in the browser: one box in the header, results the user may see, paginated."""

from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_safe

from wiki.access import visible_projects
from wiki.search import search, snippet

RESULTS_PER_PAGE = 20


@require_safe
def search_page(request):
    q = request.GET.get("q", "").strip()
    results = search(q, visible_projects(request.user))
    page_obj = Paginator(results, RESULTS_PER_PAGE).get_page(request.GET.get("page"))
    for entry in page_obj:
        entry.snippet = snippet(entry, q)
    context = {"search_query": q, "page_obj": page_obj, "query": urlencode({"q": q}) if q else ""}
    return render(request, "frontend/search.html", context)
