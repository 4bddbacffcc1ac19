"""Pages: reading, editing (with preview and conflicts), free pages, history, comparing
and restoring revisions, review and approval."""

import contextlib

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from frontend.forms import ApproveForm, FreePageCreateForm, PageForm, RestoreForm, apply_errors
from frontend.views.attachments import resolver
from frontend.views.base import (
    actor,
    as_of_context,
    as_of_refused,
    cursor,
    moment_of,
    page_for,
    pager,
    project_context,
    project_for,
)
from frontend.views.projects import conflict_row
from wiki import as_of, caching, drafts
from wiki.access import EDIT, MAINTAIN
from wiki.audit import head_for
from wiki.charts import deployment_timeline, metric_trend
from wiki.dag_chart import pipeline_chart
from wiki.diff import compare, content
from wiki.health import stale_reasons
from wiki.history import CHANGE_REASON_MAX_LENGTH
from wiki.models import Page, Pipeline
from wiki.rendering import (
    keep_moment,
    render_markdown,
    render_markdown_many,
    render_page,
    render_revision,
    to_slug,
)
from wiki.services import EditConflict
from wiki.services.pages import (
    approval_for,
    approve_page,
    check_page_changes,
    compared_revisions,
    create_free_page,
    current_revision_of,
    edit_page,
    restore_page,
    revision_of,
    submit_for_review,
)
from wiki.services.pipelines import recent_revisions
from wiki.summaries import SUMMARIES, deployment_summary, records_summary

REVISIONS_PER_PAGE = 50


@require_safe
def project_detail(request, project):
    return page_detail(request, project, "overview")


@require_safe
def page_detail(request, project, page):
    project = project_for(request, project)
    if as_of.PARAMETER in request.GET:
        return _page_as_of(request, project, page)
    found = Page.objects.filter(project=project, slug=page).first()
    if found is None:
        context = project_context(request, project, "pages") | {"slug": to_slug(page)}
        return render(request, "frontend/page_missing.html", context, status=404)
    found.project = project
    last = current_revision_of(found)  # who wrote the revision shown
    if last is None:  # no history row (never, through the services): render it uncached
        fields, body_html = render_page(
            found.spec, found.fields, found.body, project.slug, resolver(found)
        )
    else:
        fields, body_html = render_revision(
            found.spec, found.fields, found.body, project, last, resolver(found)
        )
    header = project_context(request, project, found.category or "pages")
    # The tabs know which pages are stale (one query for all): say why only for a stale one.
    stale = any(tab.stale for _, tab in header["tabs"] if tab.pk == found.pk)
    context = header | {
        "page": found,
        "fields": fields,
        "body_html": body_html,
        "last": last,
        "records_html": _records_html(found),
        "approve_form": ApproveForm(initial={"revision": found.revision}),
        # Whether this user may approve the current revision; if not, why, and who may.
        "approval": None
        if found.review_state == Page.ReviewState.APPROVED
        else approval_for(found, request.user, last),
        "stale_reasons": _stale_reasons(found) if stale else [],
        "chart_html": _chart_html(found, request.GET.get("metric")),
        "pipeline_html": _pipeline_html(found) if found.category == "workflow" else None,
    }
    if found.category == "overview":
        # The overview carries the project's review states and its audit chain's state.
        context["reviews"] = project.pages.only(
            "project", "slug", "title", "category", "revision", "review_state",
            "approved_revision", "approved_by_name", "approved_at",
        ).order_by("-category", "title")  # fmt: skip
        context["chain"] = head_for(project)
    return render(request, "frontend/page_detail.html", context)


def _page_as_of(request, project, slug):
    """The page as it stood at the moment ?as_of= names, read-only: its revision then,
    rendered with its attachments then, and its approval state then. What the records
    say today (summaries, charts), staleness and every form are left out."""
    try:
        moment = moment_of(request, project)
    except ValidationError as error:
        return as_of_refused(request, project, error)
    documentation = as_of.documentation(project, moment)
    found = documentation.page(slug)
    header = as_of_context(request, documentation, (found.category or "pages") if found else "")
    if found is None:
        context = header | {"slug": to_slug(slug)}
        return render(request, "frontend/as_of_missing.html", context, status=404)
    fields, body_html = render_page(
        found.spec, found.fields, found.body, project.slug, resolver(found, at=moment.at)
    )
    here, elsewhere = as_of.link_query(moment), as_of.link_query(moment, elsewhere=True)

    def keeping(html):  # its wiki links stay at the moment
        return keep_moment(html, project.slug, here, elsewhere) if html else html

    context = header | {
        "page": found,
        "fields": [(field, value, keeping(html)) for field, value, html in fields],
        "body_html": keeping(body_html),
        "last": revision_of(found, found.revision),  # who wrote the revision shown
    }
    if found.category == "overview":
        by_title = sorted(documentation.pages, key=lambda p: p.title)
        context["reviews"] = sorted(by_title, key=lambda p: p.category, reverse=True)
    return render(request, "frontend/page_detail.html", context)


def _records_html(page):
    """The page's records summary as HTML (None for a page with none), rendered once per
    records version: rendering it costs more than computing it. But the maintenance log:
    its reasons are Markdown whose wiki links may name other projects' pages, rendered
    by wiki.rendering (whose cache knows them); only its data is cached."""
    if page.category not in SUMMARIES:
        return None
    if page.category == "maintenance":
        key = caching.records_key(page.project, "summary", page.category)
        return _render_summary(page, caching.get_or_compute(key, lambda: records_summary(page)))
    key = caching.records_key(page.project, "summary-html", page.category, _SUMMARY.version)
    html = caching.get_or_compute(key, lambda: _render_summary(page, records_summary(page)))
    return mark_safe(html)  # noqa: S308 - our template's output


def _render_summary(page, summary):
    updates = summary.get("updates")
    if updates:
        reasons = render_markdown_many([update["reason"] for update in updates], page.project.slug)
        for update, reason_html in zip(updates, reasons, strict=True):
            update["reason_html"] = reason_html
    return _SUMMARY.render({"summary": summary, "project": page.project, "page": page})


def _chart_html(page, metric):
    """The page's chart as HTML (None without one): the default chart rendered once per
    records version, a chart of another metric (?metric=) rendered from its cached data."""
    if metric is None:
        key = caching.records_key(page.project, "chart-html", page.category, _CHART.version)
        html = caching.get_or_compute(key, lambda: _render_chart(page, None))
    else:
        html = _render_chart(page, metric)
    return mark_safe(html) if html else None  # noqa: S308 - our template's output


def _render_chart(page, metric):
    chart = _chart(page, metric)
    if not chart:
        return None
    context = {"chart": chart, "project": page.project, "page": page}
    return _CHART.render(context)


_SUMMARY = caching.Fragment("frontend/_records_summary.html")
_CHART = caching.Fragment("frontend/_chart.html")
_PIPELINE = caching.Fragment("frontend/_pipeline.html")


def _pipeline_html(page):
    """The workflow page's pipeline (its DAG, steps and latest revisions) as HTML,
    rendered once per records version: a post that changes the pipeline bumps it."""

    def render_pipeline():
        pipeline = Pipeline.objects.filter(project=page.project).first()
        context = {"project": page.project, "pipeline": pipeline}
        if pipeline is not None:
            context |= {
                "chart": pipeline_chart(pipeline.dag),
                "revisions": recent_revisions(pipeline),
            }
        return _PIPELINE.render(context)

    key = caching.records_key(page.project, "pipeline-html", _PIPELINE.version)
    return mark_safe(caching.get_or_compute(key, render_pipeline))  # noqa: S308 - our template's output


def _stale_reasons(page):
    """stale_reasons, cached by the project's records and pages versions."""
    key = caching.state_key(page.project, "stale", page.pk)
    return caching.get_or_compute(key, lambda: stale_reasons(page))


def _chart(page, metric):
    """The model page's metric trend (``metric`` chosen by ?metric=), the deployment
    page's timeline; None for other pages or without records. Cached by the project's
    records version, under the metric's name only for a metric the chart offers (so a
    query string cannot fill the cache)."""
    if page.category not in ("model", "deployment"):
        return None
    chart = caching.get_or_compute(
        caching.records_key(page.project, "chart", page.category),
        lambda: _compute_chart(page, None),
    )
    offered = chart["metrics"] if chart and page.category == "model" else ()
    if metric in offered and metric != chart["metric"]:
        key = caching.records_key(page.project, "chart", page.category, caching.digest(metric))
        chart = caching.get_or_compute(key, lambda: _compute_chart(page, metric))
    return chart


def _compute_chart(page, metric):
    if page.category == "model":
        live = {
            e["environment"]: e["model_version"]
            for e in deployment_summary(page.project)["environments"]
        }
        return metric_trend(page.project, metric, live.get("production"))
    return deployment_timeline(page.project)


@require_http_methods(["GET", "HEAD", "POST"])
def page_edit(request, project, page):
    page = page_for(request, project, page, EDIT)
    previewing = "preview" in request.POST
    form = PageForm(page, request.POST or None, reason_required=not previewing)
    preview = conflict = changes = None
    # ?draft=records fills the empty fields with what the records propose (wiki.drafts):
    # shown, not saved; the form carries "drafted" so the revision saved says so.
    drafted = request.POST.get("drafted") == DRAFT
    if request.method != "POST" and request.GET.get("draft") == DRAFT:
        proposed = drafts.draft(page)
        form.propose(proposed)
        drafted = bool(proposed)
        if not proposed:
            messages.info(request, "The records have nothing to propose for the empty fields.")
    if request.method == "POST" and form.is_valid():
        if previewing:
            preview = _preview(page, form)
            # Shown again to be saved, which needs a reason: marked required again.
            form.fields["change_reason"].required = True
        else:
            try:
                saved = _save_page(request, page, form, drafted)
            except EditConflict as e:
                conflict = conflict_row(form, e)
                changes = _conflict_changes(page, form, e.current)
            else:
                if saved:
                    return redirect("frontend:page", saved.project.slug, saved.slug)
    context = project_context(request, page.project, page.category or "pages") | {
        "page": page,
        "form": form,
        "preview": preview,
        "conflict": conflict,
        "changes": changes,
        "drafted": drafted,
        "draftable": page.category in drafts.DRAFTERS,
    }
    return render(request, "frontend/page_edit.html", context)


DRAFT = "records"
DRAFT_NOTE = " (started from a draft from the records)"


@require_POST
def page_preview(request, project, page):
    """The body as the page would show it: the HTML fragment the edit form's live preview
    (frontend/static/frontend/edit.js) puts beside the editor. Saves nothing."""
    page = page_for(request, project, page, EDIT)
    body = request.POST.get("body")
    try:
        if body is None:
            raise ValidationError("There was no body to preview.")
        # The edit form's checks: the same size limit and newline handling as a save.
        body = check_page_changes(page, body=body)["body"]
    except ValidationError as e:
        return render(request, "frontend/_live_preview.html", {"errors": e.messages}, status=400)
    context = {"body_html": render_markdown(body, page.project.slug, resolver(page))}
    return render(request, "frontend/_live_preview.html", context)


def _conflict_changes(page, form, current):
    """How the user's text differs from the version saved meanwhile, field by field."""
    data = form.cleaned_data
    theirs = {
        "title": data.get("title", current.title),
        "fields": form.field_values(),
        "body": data["body"],
    }
    with contextlib.suppress(ValidationError):  # invalid input is compared as typed
        theirs |= {k: v for k, v in check_page_changes(page, **theirs).items() if k != "title"}
    return [change for change in compare(page.spec, content(current), theirs) if change.changed]


def _preview(page, form):
    """What the page would look like with the submitted values, or None if they are invalid."""
    try:
        changes = check_page_changes(
            page, fields=form.field_values(), body=form.cleaned_data["body"]
        )
    except ValidationError as e:
        apply_errors(form, e)
        return None
    fields, body_html = render_page(
        page.spec, changes.get("fields", {}), changes["body"], page.project.slug, resolver(page)
    )
    return {
        "title": form.cleaned_data.get("title", page.title),
        "fields": fields,
        "body_html": body_html,
    }


def _save_page(request, page, form, drafted=False):
    """Save the edit; returns the saved page, or None with the errors put on ``form``.
    An edit that started from a draft says so in its change reason."""
    data = form.cleaned_data
    reason = data["change_reason"]
    if drafted:
        room = CHANGE_REASON_MAX_LENGTH - len(DRAFT_NOTE)
        if len(reason) > room:
            added = DRAFT_NOTE.strip()
            form.add_error("change_reason", f"At most {room} characters: the history adds {added}.")
            return None
        reason += DRAFT_NOTE
    try:
        saved = edit_page(
            page,
            actor=actor(request),
            base_revision=data["base_revision"],
            change_reason=reason,
            fields=form.field_values(),
            body=data["body"],
            title=data.get("title"),
        )
    except ValidationError as e:
        apply_errors(form, e)
        return None
    if saved.revision == page.revision:
        messages.info(request, "Nothing changed, so no new revision was saved.")
    else:
        messages.success(request, f"Saved revision {saved.revision}.")
    return saved


@require_http_methods(["GET", "HEAD", "POST"])
def page_create(request, project):
    project = project_for(request, project, EDIT)
    slug = to_slug(request.GET.get("slug", ""))
    initial = {"slug": slug, "title": slug.replace("-", " ").capitalize()}
    form = FreePageCreateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            page = create_free_page(project, actor=actor(request), **form.cleaned_data)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(request, f"Created page {page.title}.")
            return redirect("frontend:page", project.slug, page.slug)
    context = project_context(request, project, "pages") | {"form": form}
    return render(request, "frontend/page_create.html", context)


@require_safe
def page_list(request, project):
    project = project_for(request, project)
    if as_of.PARAMETER in request.GET:
        try:
            moment = moment_of(request, project)
        except ValidationError as error:
            return as_of_refused(request, project, error)
        documentation = as_of.documentation(project, moment)
        context = as_of_context(request, documentation, "pages")
        return render(
            request, "frontend/page_list.html", context | {"pages": documentation.free_pages}
        )
    pages = project.pages.free().only("project", "slug", "title", "updated_at").order_by("title")
    context = project_context(request, project, "pages") | {"pages": pages}
    return render(request, "frontend/page_list.html", context)


@require_safe
def page_history(request, project, page):
    """The revisions, newest first, REVISIONS_PER_PAGE at a time: keyset-paginated by
    revision number (a page's revisions are numbered 1, 2, … with no gap), so a page of
    history is one query, however long the history."""
    page = page_for(request, project, page)
    newest, before, after = page.revision, cursor(request, "before"), cursor(request, "after")
    if after is not None:
        bottom, top = after + 1, min(newest, after + REVISIONS_PER_PAGE)
    else:
        top = newest if before is None else min(newest, before - 1)
        bottom = max(1, top - REVISIONS_PER_PAGE + 1)
    context = project_context(request, page.project, page.category or "pages") | {
        "page": page,
        "revision_rows": _revision_rows(page, top, bottom),
        "pager": pager(
            request,
            newer=top if top < newest else None,
            older=bottom if 1 < bottom <= top + 1 else None,
        ),
    }
    return render(request, "frontend/page_history.html", context)


def _revision_rows(page, top, bottom):
    """The history table's lines of revisions ``top`` down to ``bottom`` as HTML, rendered
    once per state of the project's pages: history rows never change, and every write
    that adds one to a page bumps the pages version."""
    if top < bottom:
        return ""
    key = caching.pages_key(page.project, "history", page.pk, top, bottom, _REVISION_ROWS.version)

    def compute():
        lines = _revision_lines(page, top, bottom)
        return _REVISION_ROWS.render({"project": page.project, "page": page, "revisions": lines})

    return mark_safe(caching.get_or_compute(key, compute))  # noqa: S308 - our template's output


_REVISION_ROWS = caching.Fragment("frontend/_revision_rows.html")


def _revision_lines(page, top, bottom):
    """One line per revision from ``top`` down to ``bottom`` (newest first): the history
    row that created it, with the later rows of the same number as its ``events``
    (submitted for review, approved)."""
    rows = page.history.filter(revision__gte=bottom, revision__lte=top)
    rows = rows.order_by("history_date", "history_id").only(
        "history_id", "revision", "history_date", "history_username", "history_source",
        "history_change_reason", "history_token_name", "review_state", "approved_revision",
        "approval_comment", "history_origin",
    )  # fmt: skip
    lines = {}
    for row in rows:
        line = lines.get(row.revision)
        if line is None:
            row.events, lines[row.revision] = [], row
            continue
        row.event, row.note = _event(line.events[-1] if line.events else line, row)
        line.events.append(row)
    return [lines[number] for number in range(top, bottom - 1, -1) if number in lines]


def _event(before, row):
    """(what, note): what a history row that kept the content did to the revision's
    review, told by how the review state moved from the row ``before`` it."""

    def approval(r):
        return r.review_state == Page.ReviewState.APPROVED and r.approved_revision == r.revision

    if approval(row) and not approval(before):
        return "approved", row.approval_comment
    if row.review_state == Page.ReviewState.IN_REVIEW != before.review_state:
        return "submitted for review", ""
    return "saved without a change of content", row.history_change_reason


def _revision(page, number):
    """The history row that created revision ``number`` (from the URL): 404 if none."""
    row = revision_of(page, number)
    if row is None:
        raise Http404("There is no such revision.")
    return row


@require_safe
def revision_detail(request, project, page, number):
    page = page_for(request, project, page)
    row = _revision(page, number)
    # Attachments as they were when the revision was saved (a later replacement or
    # deletion does not change what an old revision shows).
    fields, body_html = render_revision(
        page.spec, row.fields, row.body, page.project, row, resolver(page, at=row.history_date)
    )
    context = project_context(request, page.project, page.category or "pages") | {
        "page": page,
        "row": row,
        "fields": fields,
        "body_html": body_html,
    }
    return render(request, "frontend/revision.html", context)


@require_safe
def revision_compare(request, project, page):
    page = page_for(request, project, page)
    context = project_context(request, page.project, page.category or "pages") | {"page": page}
    try:
        older, newer = compared_revisions(page, request.GET.get("from"), request.GET.get("to"))
    except ValidationError as e:
        context["errors"] = e.message_dict
        return render(request, "frontend/compare.html", context, status=400)
    context |= {
        "older": older,
        "newer": newer,
        "changes": compare(page.spec, content(older), content(newer)),
    }
    return render(request, "frontend/compare.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
def revision_restore(request, project, page, number):
    """Confirm, with a reason, then save the old content as a new revision."""
    page = page_for(request, project, page, EDIT)
    row = _revision(page, number)
    form = RestoreForm(request.POST or None, initial={"base_revision": page.revision})
    conflict = None
    if request.method == "POST" and form.is_valid():
        try:
            saved = restore_page(
                page,
                actor=actor(request),
                revision=row.revision,
                base_revision=form.cleaned_data["base_revision"],
                change_reason=form.cleaned_data["change_reason"],
            )
        except EditConflict as e:
            conflict = conflict_row(form, e)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            if saved.revision == page.revision:
                messages.info(request, "The page already says this: nothing was saved.")
            else:
                messages.success(
                    request, f"Restored revision {row.revision} as revision {saved.revision}."
                )
            return redirect("frontend:page", page.project.slug, page.slug)
    context = project_context(request, page.project, page.category or "pages") | {
        "page": page,
        "row": row,
        "form": form,
        "conflict": conflict,
        "changes": compare(page.spec, content(page), content(row)),
    }
    return render(request, "frontend/restore.html", context)


@require_POST
def page_submit(request, project, page):
    page = page_for(request, project, page, EDIT)
    submit_for_review(page, actor=actor(request))
    messages.success(request, "Submitted for review: a maintainer can now approve it.")
    return redirect("frontend:page", page.project.slug, page.slug)


@require_POST
def page_approve(request, project, page):
    page = page_for(request, project, page, MAINTAIN)
    form = ApproveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The approval was not understood; reload the page and retry.")
        return redirect("frontend:page", page.project.slug, page.slug)
    try:
        approve_page(
            page,
            actor=actor(request),
            revision=form.cleaned_data["revision"],
            comment=form.cleaned_data["comment"],
        )
    except EditConflict as e:
        messages.error(
            request,
            f"The page changed meanwhile (now revision {e.current.revision}): read it again "
            "before approving.",
        )
    except PermissionDenied as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"Approved revision {form.cleaned_data['revision']}.")
    return redirect("frontend:page", page.project.slug, page.slug)
