"""A project's audit report exports in the browser: ask for one, watch it, download it."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from frontend.forms import ExportForm, apply_errors
from frontend.views.base import actor, project_context, project_for
from wiki import storage
from wiki.models import ExportJob
from wiki.services.exports import TooManyExports, open_for_download, request_export

EXPORTS_SHOWN = 50


@require_http_methods(["GET", "HEAD", "POST"])
def exports(request, project):
    """The export form and the project's earlier exports. Anyone who may read the project
    may ask for a report; while one is being built its progress bar moves (exports.js),
    and without JavaScript a reload shows how far it got."""
    project = project_for(request, project)
    # ?as_of= (the header's Export link, from the documentation as it stood then) fills in
    # the moment, so that the report describes what the reader was looking at.
    form = ExportForm(request.POST or None, initial={"as_of": request.GET.get("as_of", "")})
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                job = request_export(project, actor=actor(request), **form.cleaned_data)
            except TooManyExports as error:
                form.add_error(None, str(error))
                status = 429
            except ValidationError as error:  # e.g. a period outside the days it can cover
                apply_errors(form, error)
            else:
                messages.success(request, f"Export #{job.pk} requested; it is built meanwhile.")
                return redirect("frontend:exports", project.slug)
    return _page(request, project, form, status)


def _page(request, project, form, status):
    jobs = ExportJob.objects.filter(project=project)[:EXPORTS_SHOWN]
    context = project_context(request, project, "exports") | {"form": form, "jobs": jobs}
    return render(request, "frontend/exports.html", context, status=status)


@require_POST
def export_download(request, project, pk):
    """The report file, streamed from the file storage (or the exports page saying why
    not: 410 when the storage lost the file, 503 when it does not answer). A POST (a
    button), because the download is recorded in the export's history: no link, image or
    prefetch a page can hold may write history."""
    project = project_for(request, project)
    job = ExportJob.objects.filter(project=project, pk=pk).first()
    if job is None:
        raise Http404("There is no such export.")
    if job.status != ExportJob.Status.DONE:
        messages.error(request, f"Export #{job.pk} is {job.status}: it cannot be downloaded yet.")
        return redirect("frontend:exports", project.slug)
    try:
        handle = open_for_download(job, actor=actor(request))
    except FileNotFoundError:
        messages.error(request, f"The file of export #{job.pk} is gone; ask for a new export.")
        return _page(request, project, ExportForm(), status=410)
    except storage.Unavailable:
        messages.error(
            request,
            f"The file storage does not answer, so export #{job.pk} cannot be downloaded "
            "now; try again in a minute.",
        )
        response = _page(request, project, ExportForm(), status=503)
        response["Retry-After"] = str(storage.RETRY_AFTER)
        return response
    return FileResponse(handle, as_attachment=True, filename=job.filename)
