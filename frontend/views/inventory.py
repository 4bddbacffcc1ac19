"""The model inventory in the browser: every model the user may see, filtered and sorted,
and its CSV download."""

from urllib.parse import urlencode

from django.shortcuts import render
from django.views.decorators.http import require_safe

from frontend.forms import InventoryFilterForm
from wiki import inventory
from wiki.access import visible_projects


@require_safe
def inventory_page(request):
    form = InventoryFilterForm(request.GET or None)
    filters = form.filters() if form.is_bound else {"sort": "name"}
    rows = inventory.inventory(visible_projects(request.user))
    rows = inventory.chosen(rows, **filters) if filters else []
    if request.GET.get("format") == "csv" and not form.errors:
        return inventory.csv_response(rows)
    query = urlencode([(k, v) for k, v in request.GET.items() if k not in ("format", "sort") and v])
    context = {
        "form": form,
        "rows": rows,
        "sort": filters.get("sort", "name"),
        "query": query,
        "severities": inventory.SEVERITIES,
        "soon_days": inventory.REVIEW_SOON_DAYS,
    }
    return render(request, "frontend/inventory.html", context)
