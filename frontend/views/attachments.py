"""Attachments in the browser: upload, delete, download, thumbnails and versions of the
files of a page, training run, deployment or model version.

The same views serve the four kinds of target (``KINDS``): a URL names the project, the
target (a page slug, a run or deployment id, a model version) and the attachment's name.
Reading needs the view right. Uploading and deleting need the edit right, for records
too: wiki.access has no right of its own for records (``records:write`` is a scope of API
tokens, narrowing what their user may do), and a project's editors are the people who
"write its documentation and records", so EDIT is a person's records-write right.

Files are served by wiki.attachments.serve (nosniff; a sandbox policy for everything but
PDF), so an SVG or HTML report never runs as a document of the wiki's origin. Only an
HTML report may be framed, by the wiki's own pages (the versions page shows it in an
``<iframe sandbox>``); every other file, and the wiki's pages, may be framed by nobody.
"""

import functools
import re
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from frontend.views.base import actor, project_context, project_for
from wiki import attachments as files
from wiki import storage
from wiki.access import EDIT, VIEW
from wiki.models import Attachment, Deployment, ModelVersion, Page, TrainingRun
from wiki.models.attachments import TARGETS
from wiki.services import attachments as service


@dataclass(frozen=True)
class Kind:
    """A kind of target: its URL name and path (after ``projects/<project>/``), the field
    of its URL ``key``, and the Attachment field that points at it."""

    name: str
    prefix: str
    model: type
    lookup: str

    @property
    def field(self):
        return next(field for field, model in TARGETS.items() if model is self.model)

    def find(self, project, key):
        found = self.model.objects.filter(project=project, **{self.lookup: key}).first()
        if found is None:
            raise Http404(f"There is no such {self.model._meta.verbose_name}.")
        found.project = project
        return found


KINDS = {
    kind.model: kind
    for kind in [
        Kind("page", "<slug:key>/", Page, "slug"),
        Kind("run", "runs/<int:key>/", TrainingRun, "pk"),
        Kind("deployment", "deployments/<int:key>/", Deployment, "pk"),
        Kind("model-version", "model-versions/<text:key>/", ModelVersion, "version"),
    ]
}


def urlpatterns(project_prefix):
    """The attachment routes of every kind of target, under ``project_prefix``."""
    routes = []
    for kind in KINDS.values():
        base, extra = f"{project_prefix}{kind.prefix}attachments/", {"kind": kind}
        routes += [
            path(base, upload, extra, name=f"{kind.name}-attachments"),
            path(f"{base}<text:name>", download, extra, name=f"{kind.name}-attachment"),
            path(f"{base}<text:name>/thumbnail", thumbnail, extra, name=f"{kind.name}-thumbnail"),
            path(f"{base}<text:name>/versions/", versions, extra, name=f"{kind.name}-versions"),
            path(f"{base}<text:name>/delete/", delete, extra, name=f"{kind.name}-delete"),
        ]
    return routes


def url(target, view, name=None):
    """The address of ``view`` ("attachments", "attachment", "thumbnail", "versions" or
    "delete") of ``target``, for its attachment ``name``."""
    kind = KINDS[type(target)]
    args = [target.project.slug, getattr(target, kind.lookup)]
    return reverse(f"frontend:{kind.name}-{view}", args=args + ([name] if name else []))


def target_url(target):
    """The address of the page or record itself: where its attachments' routes hang."""
    return url(target, "attachments").removesuffix("attachments/")


def target_label(target):
    if isinstance(target, Page):
        return target.title
    if isinstance(target, ModelVersion):
        return f"Model version {target.version}"
    return f"{target._meta.verbose_name.capitalize()} #{target.pk}"


def resolver(target, at=None):
    """``resolve(name)`` for wiki.rendering.link_attachments: the address of ``target``'s
    attachment ``name`` as it is now, or, given ``at`` (a time), of the version it had
    then (``?v=<sha256>``); None if there was none. Asks the database once, on first use,
    so a text without attachments costs no query."""
    field = KINDS[type(target)].field

    @functools.cache
    def suffixes():
        if at is None:
            return dict.fromkeys((attachment.name for attachment in current(target)), "")
        rows = Attachment.history.filter(**{f"{field}_id": target.pk}, history_date__lte=at)
        found = {}
        for name, sha256, deleted in rows.order_by("history_date", "history_id").values_list(
            "name", "sha256", "deleted"
        ):
            if deleted:
                found.pop(name, None)
            else:
                found[name] = f"?v={sha256}"
        return found

    def resolve(name):
        suffix = suffixes().get(name)
        return None if suffix is None else url(target, "attachment", name) + suffix

    return resolve


def current(target):
    """``target``'s current attachments, asked for once per target object: the panel
    and the figures of its Markdown share one query."""
    if "_current_attachments" not in target.__dict__:
        target._current_attachments = list(service.of(target))
    return target._current_attachments


def panel_context(request, target, can_edit, next_url=None):
    """What frontend/_attachments.html shows: ``target``'s current attachments, each
    with its addresses, and the upload form if ``can_edit``."""
    attachments = current(target)
    for attachment in attachments:
        attachment.url = url(target, "attachment", attachment.name)
        attachment.versions_url = url(target, "versions", attachment.name)
        attachment.delete_url = url(target, "delete", attachment.name)
        if attachment.is_image:
            attachment.thumbnail_url = url(target, "thumbnail", attachment.name)
    return {
        "attachments": attachments,
        "can_edit": can_edit,
        "upload_url": url(target, "attachments"),
        "next": next_url or request.get_full_path(),
        "limit": files.limit_text(),
    }


def _target(request, kind, project, key, right=VIEW):
    return kind.find(project_for(request, project, right), key)


def _version(kind, target, name, sha256=None):
    """The attachment ``name`` of ``target`` now (404 if deleted), or, given ``sha256``,
    its history row of that version (an attachment deleted since still has it)."""
    attachment = Attachment.objects.filter(**{kind.field: target}, name=name).first()
    if attachment is None or (sha256 is None and attachment.deleted):
        raise Http404("There is no such attachment.")
    if sha256 is None:
        return attachment
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):  # (a NUL would be a database error)
        raise Http404("This attachment has no such version.")
    row = service.version(attachment, sha256)
    if row is None:
        raise Http404("This attachment has no such version.")
    return row


def _back(request, target):
    """Where to go after a form: the page the form was on (``next``), else the target."""
    wanted = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return target_url(target)


def _wants_json(request):
    """Whether the request came from attachments.js (fetch), which reads JSON."""
    return "application/json" in request.headers.get("Accept", "")


def _unavailable(message):
    response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(storage.RETRY_AFTER)
    return response


@require_POST
def upload(request, project, key, kind):
    """Attach the uploaded files (the field ``file``, one or more): all of them, or,
    if one is refused, none (each refusal named: 413 too large, 400 otherwise)."""
    target = _target(request, kind, project, key, EDIT)
    uploads = request.FILES.getlist("file")
    errors, status, names = [], 400, set()
    for uploaded in uploads:
        try:
            if uploaded.size > settings.ATTACHMENT_MAX_BYTES:
                raise files.TooLarge
            name = files.clean_name(uploaded.name, files.sniff(uploaded))
            if name in names:  # the second would replace the first at once
                raise ValidationError({"file": f"Another file of this upload is named {name}."})
            names.add(name)
        except ValidationError as e:
            errors += [f"{uploaded.name}: {message}" for message in e.message_dict["file"]]
            status = 413 if isinstance(e, files.TooLarge) else status
    if not uploads:
        errors.append("Choose a file to attach.")
    attached = []
    if not errors:
        try:
            with transaction.atomic():  # all or none, an outage halfway too
                attached = [service.attach(target, one, actor=actor(request)) for one in uploads]
        except ValidationError as e:
            errors += [message for messages_ in e.message_dict.values() for message in messages_]
        except storage.Unavailable:
            return _unavailable("The file storage does not answer; try again in a minute.")
    if errors:
        if _wants_json(request):
            return JsonResponse({"errors": {"file": errors}}, status=status)
        context = project_context(request, target.project, _tab(target)) | {
            "target": target,
            "target_label": target_label(target),
            "back": _back(request, target),
            "errors": errors,
        }
        return render(request, "frontend/attachment_refused.html", context, status=status)
    if _wants_json(request):
        panel = render_to_string(
            "frontend/_attachments.html",
            panel_context(request, target, True, _back(request, target)),
            request=request,
        )
        items = [
            {
                "name": one.name,
                "url": url(target, "attachment", one.name),
                "content_type": one.content_type,
                "markdown": f"{'!' if one.is_image else ''}[{one.name}](attachment:{one.name})",
            }
            for one in attached
        ]
        return JsonResponse({"attachments": items, "panel": panel}, status=201)
    messages.success(request, f"Attached {', '.join(one.name for one in attached)}.")
    return redirect(_back(request, target))


@require_POST
def delete(request, project, key, name, kind):
    """Delete the attachment: a new revision; the file and its versions stay."""
    target = _target(request, kind, project, key, EDIT)
    service.remove(_version(kind, target, name), actor=actor(request))
    messages.success(request, f"Deleted {name}; its versions stay in its history.")
    return redirect(_back(request, target))


@require_safe
def download(request, project, key, name, kind):
    """The file (``?v=<sha256>``: that version, if the attachment's history has it;
    ``?download=1``: as a download rather than shown)."""
    target = _target(request, kind, project, key)
    version = _version(kind, target, name, request.GET.get("v") or None)
    as_download = request.GET.get("download") == "1"
    if (cached := files.not_modified(request, version.sha256)) is not None:
        return cached
    response = _served(
        lambda: files.serve(version.sha256, version.content_type, name, download=as_download)
    )
    if version.content_type == "text/html" and not as_download and response.status_code == 200:
        # The versions page shows a report in a sandboxed frame: the wiki may frame it
        # (its own policy still sandboxes it), nobody else may.
        response["Content-Security-Policy"] += "; frame-ancestors 'self'"
        response["X-Frame-Options"] = "SAMEORIGIN"
    return response


@require_safe
def thumbnail(request, project, key, name, kind):
    """A small PNG of an image attachment (made once, then kept); an SVG is its own."""
    target = _target(request, kind, project, key)
    version = _version(kind, target, name, request.GET.get("v") or None)
    if version.content_type == "image/svg+xml":
        return download(request, project, key, name, kind=kind)
    if version.content_type not in files.RASTER:
        raise Http404("Only images have thumbnails.")
    if (cached := files.not_modified(request, files.thumbnail_tag(version.sha256))) is not None:
        return cached
    try:
        return _served(lambda: files.serve_thumbnail(version.sha256))
    except (OSError, ValueError):  # Pillow could not read it after all
        raise Http404("This image has no thumbnail.") from None


def _served(respond):
    """``respond()``, or a 410 when the stored bytes are gone, 503 when the storage does
    not answer."""
    try:
        return respond()
    except FileNotFoundError:
        return HttpResponse(
            "The file of this attachment is missing from the storage; an administrator "
            "can see which with verify_audit.",
            status=410,
            content_type="text/plain; charset=utf-8",
        )
    except storage.Unavailable:
        return _unavailable("The file storage does not answer; try again in a minute.")


@require_safe
def versions(request, project, key, name, kind):
    """The attachment shown (an image, an HTML report in a sandboxed frame) with every
    version in its history, each with a download link."""
    target = _target(request, kind, project, key)
    attachment = Attachment.objects.filter(**{kind.field: target}, name=name).first()
    if attachment is None:
        raise Http404("There is no such attachment.")
    address = url(target, "attachment", name)
    rows = list(service.versions(attachment))
    for row in rows:
        row.url = f"{address}?v={row.sha256}"
    context = project_context(request, target.project, _tab(target)) | {
        "target": target,
        "target_label": target_label(target),
        "target_url": target_url(target),
        "attachment": attachment,
        "url": address,
        "rows": rows,
        "delete_url": url(target, "delete", name),
    }
    return render(request, "frontend/attachment_versions.html", context)


def _tab(target):
    """The project header's tab that ``target`` is under."""
    if isinstance(target, Page):
        return target.category or "pages"
    return "records"
