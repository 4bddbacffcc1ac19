"""The Validation tab: a project's validations and findings, opening a validation, filing
a finding, a finding's life cycle and comments, and the signed conclusion."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from frontend.forms import apply_errors
from frontend.validation_forms import (
    CommentForm,
    ConclusionForm,
    FindingChangeForm,
    FindingForm,
    ValidationForm,
)
from frontend.views.base import actor, project_context, project_for
from wiki import inventory
from wiki import validations as readers
from wiki.access import EDIT, MAINTAIN, VALIDATE, can
from wiki.models import Finding, Page, Project, Validation
from wiki.rendering import render_markdown
from wiki.services import EditConflict
from wiki.services import validations as service
from wiki.services.records import RecordConflict

# Findings listed on the tab at most (unresolved first): a project with more is a
# project with another problem.
FINDINGS_SHOWN = 200


def _context(request, project, **extra):
    return project_context(request, project, "validation") | {
        "can_validate": can(request.user, VALIDATE, project)
    } | extra  # fmt: skip


@require_safe
def validations(request, project):
    """Every validation of the project, and its findings (unresolved first)."""
    project = project_for(request, project)
    findings = (
        Finding.objects.filter(project=project)
        .select_related("validation", "page")
        .order_by(F("closed_at").asc(nulls_first=True), "-number")  # unresolved first
    )
    status = request.GET.get("status", "")
    if status in Finding.Status.values:
        findings = findings.filter(status=status)
    context = _context(
        request, project,
        validations=project.validations.order_by("-number"),
        review=inventory.inventory(Project.objects.filter(pk=project.pk))[0],
        findings=findings[:FINDINGS_SHOWN],
        statuses=Finding.Status.choices,
        status=status,
    )  # fmt: skip
    return render(request, "frontend/validations.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
def validation_create(request, project):
    project = project_for(request, project, VALIDATE)
    pages = Page.objects.filter(project=project).order_by("category", "slug")
    form = ValidationForm(request.POST or None, pages=pages)
    if request.method == "POST" and form.is_valid():
        try:
            opened = service.open_validation(project, actor=actor(request), **form.cleaned_data)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(request, f"Validation {opened.number} is open: file its findings.")
            return redirect("frontend:validation", project.slug, opened.number)
    return render(request, "frontend/validation_create.html", _context(request, project, form=form))


def _validation(project, number):
    found = Validation.objects.filter(project=project, number=number).first()
    if found is None:
        raise Http404("There is no such validation.")
    found.project = project
    return found


@require_safe
def validation_detail(request, project, number):
    project = project_for(request, project)
    validation = _validation(project, number)
    context = _context(
        request, project,
        validation=validation,
        scope_html=render_markdown(validation.scope, project.slug),
        conclusion_html=render_markdown(validation.conclusion, project.slug),
        signature=readers.signature(validation),
        findings=validation.findings.select_related("page").order_by("number"),
        form=ConclusionForm(),
    )  # fmt: skip
    return render(request, "frontend/validation_detail.html", context)


@require_POST
def validation_conclude(request, project, number):
    project = project_for(request, project, VALIDATE)
    validation = _validation(project, number)
    form = ConclusionForm(request.POST)
    if form.is_valid():
        try:
            service.conclude_validation(validation, actor=actor(request), **form.cleaned_data)
        except ValidationError as e:
            apply_errors(form, e)
        except RecordConflict as e:
            form.add_error(None, str(e))
        else:
            messages.success(request, f"Validation {validation.number} is concluded and signed.")
            return redirect("frontend:validation", project.slug, validation.number)
    context = _context(
        request, project,
        validation=validation,
        scope_html=render_markdown(validation.scope, project.slug),
        findings=validation.findings.select_related("page").order_by("number"),
        form=form,
    )  # fmt: skip
    return render(request, "frontend/validation_detail.html", context, status=400)


@require_http_methods(["GET", "HEAD", "POST"])
def finding_create(request, project, number):
    project = project_for(request, project, VALIDATE)
    validation = _validation(project, number)
    pages = Page.objects.filter(project=project).order_by("category", "slug")
    form = FindingForm(request.POST or None, pages=pages)
    if request.method == "POST" and form.is_valid():
        try:
            filed = service.file_finding(validation, actor=actor(request), **form.cleaned_data)
        except ValidationError as e:
            apply_errors(form, e)
        except RecordConflict as e:
            form.add_error(None, str(e))
        else:
            messages.success(request, f"Finding {filed.number} is filed.")
            return redirect("frontend:finding", project.slug, filed.number)
    context = _context(request, project, validation=validation, form=form)
    return render(request, "frontend/finding_create.html", context)


def _finding(project, number):
    found = (
        Finding.objects.filter(project=project, number=number)
        .select_related("validation", "page")
        .first()
    )
    if found is None:
        raise Http404("There is no such finding.")
    found.project = project
    return found


def _actions(user, finding):
    """What ``user`` may do with ``finding`` now, as its page offers it."""
    project = finding.project
    validator = can(user, VALIDATE, project)
    owner_or_editor = finding.owner_id == user.pk or can(user, EDIT, project)
    status = finding.status
    judge = (
        validator
        and status == Finding.Status.REMEDIATION_PROPOSED
        and not service.own_work(finding, user)
    )
    return {
        "propose": owner_or_editor and status == Finding.Status.OPEN,
        "close": judge,
        "reopen": judge,
        "accept": can(user, MAINTAIN, project) and finding.is_unresolved,
        "assign": (validator or can(user, MAINTAIN, project)) and finding.is_unresolved,
        "comment": owner_or_editor or validator,
    }


@require_safe
def finding_detail(request, project, number):
    project = project_for(request, project)
    finding = _finding(project, number)
    comments = [
        (comment, render_markdown(comment.body, project.slug))
        for comment in finding.comments.order_by("created_at", "id")
    ]
    context = _context(
        request, project,
        finding=finding,
        description_html=render_markdown(finding.description, project.slug),
        remediation_html=render_markdown(finding.remediation, project.slug),
        justification_html=render_markdown(finding.risk_justification, project.slug),
        lifecycle=readers.lifecycle(finding),
        history=finding.history.order_by("-history_date", "-history_id"),
        comments=comments,
        actions=_actions(request.user, finding),
        comment_form=CommentForm(),
    )  # fmt: skip
    return render(request, "frontend/finding_detail.html", context)


@require_POST
def finding_change(request, project, number):
    """One move of a finding's life cycle (or a new owner or due date), from its page."""
    project = project_for(request, project)
    finding = _finding(project, number)
    form = FindingChangeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The change was not understood; reload the page and retry.")
        return redirect("frontend:finding", project.slug, finding.number)
    data = form.cleaned_data
    base, text = data["base_revision"], data["text"]
    change = {
        "propose": lambda: service.propose_remediation(
            finding, actor=actor(request), remediation=text, base_revision=base
        ),
        "close": lambda: service.close_finding(
            finding, actor=actor(request), comment=text, base_revision=base
        ),
        "reopen": lambda: service.reopen_finding(
            finding, actor=actor(request), comment=text, base_revision=base
        ),
        "accept": lambda: service.accept_risk(
            finding, actor=actor(request), justification=text, base_revision=base
        ),
        "assign": lambda: service.assign_finding(
            finding,
            actor=actor(request),
            base_revision=base,
            owner=data["owner"],
            due_date=data["due_date"],
        ),  # fmt: skip
    }[data["action"]]
    try:
        changed = change()
    except EditConflict as e:
        messages.error(
            request,
            f"The finding changed meanwhile (now revision {e.current.revision}): read it "
            "again, then retry.",
        )
    except ValidationError as e:
        messages.error(request, " ".join(e.messages))
    except (PermissionDenied, RecordConflict) as e:
        messages.error(request, str(e))
    else:
        messages.success(
            request, f"Finding {changed.number} is {changed.get_status_display().lower()}."
        )
    return redirect("frontend:finding", project.slug, finding.number)


@require_POST
def finding_comment(request, project, number):
    project = project_for(request, project)
    finding = _finding(project, number)
    form = CommentForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Write a comment first.")
        return redirect("frontend:finding", project.slug, finding.number)
    try:
        service.comment_on_finding(finding, actor=actor(request), body=form.cleaned_data["body"])
    except ValidationError as e:
        messages.error(request, " ".join(e.messages))
    except PermissionDenied as e:
        messages.error(request, str(e))
    else:
        messages.success(request, "Comment added.")
    return redirect(reverse("frontend:finding", args=[project.slug, finding.number]) + "#comments")
