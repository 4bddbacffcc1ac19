"""Django admin for the domain. Writes go through wiki/services (source "admin");
nothing is deleted here, and history is viewed, never reverted in place."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpResponseRedirect
from simple_history.admin import SimpleHistoryAdmin

from wiki.categories import validate_fields
from wiki.history import Actor, Source
from wiki.models import Deployment, ModelVersion, Page, Project, SsoAccount, Template, TrainingRun
from wiki.services import EditConflict
from wiki.services.pages import create_free_page, edit_page
from wiki.services.projects import clean_tags, create_project, update_project


class RevisionAdminForm(forms.ModelForm):
    change_reason = forms.CharField(
        max_length=500, help_text="What changed and why; kept in the history."
    )
    base_revision = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["base_revision"].initial = self.instance.revision

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk:
            current = type(self.instance).objects.get(pk=self.instance.pk).revision
            if cleaned.get("base_revision") != current:
                raise ValidationError(
                    f"This was changed by someone else meanwhile (now revision {current}). "
                    "Reload the page to edit the current version."
                )
        return cleaned


class ProjectAdminForm(RevisionAdminForm):
    def clean_tags(self):
        return clean_tags(self.cleaned_data["tags"] or [])


class PageAdminForm(RevisionAdminForm):
    def clean_fields(self):
        # The clean_<name> hook of the model field called "fields" (the structured fields).
        value = self.cleaned_data["fields"]
        if not self.instance.category:
            if value:
                raise ValidationError("Free pages have no structured fields.")
            return {}
        try:
            return validate_fields(self.instance.spec, value)
        except ValidationError as e:
            raise ValidationError(
                [f"{name}: {text}" for name, texts in e.message_dict.items() for text in texts]
            ) from None


class ServiceAdmin(SimpleHistoryAdmin):
    """Saves through the service layer and refuses deletion."""

    history_list_display = ["history_source", "history_username"]

    def has_delete_permission(self, request, obj=None):
        return False

    def actor(self, request):
        return Actor(user=request.user, source=Source.ADMIN)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The form validates as the service does; only a concurrent change that wins
        # between the form's checks and the service's locked ones gets here. The admin's
        # transaction has then been rolled back: say so.
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except (EditConflict, ValidationError) as e:
            message = str(e) if isinstance(e, EditConflict) else "; ".join(e.messages)
            self.message_user(request, f"Nothing was saved: {message}", messages.ERROR)
            return HttpResponseRedirect(request.path)

    def save_related(self, request, form, formsets, change):
        # No many-to-many fields or inlines; the service has saved everything.
        pass


@admin.register(Project)
class ProjectAdmin(ServiceAdmin):
    form = ProjectAdminForm
    list_display = ["name", "slug", "owner_team", "template", "revision", "updated_at"]
    list_select_related = ["template"]
    search_fields = ["name", "slug", "owner_team", "summary"]

    def get_fields(self, request, obj=None):
        fields = ["slug", "name", "owner_team", "summary", "tags", "change_reason"]
        return ["template", *fields, "base_revision"] if obj else fields

    def get_readonly_fields(self, request, obj=None):
        # A project changes template by an upgrade (the project's settings page).
        return ["slug", "template"] if obj else []

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            saved = update_project(
                obj,
                actor=self.actor(request),
                base_revision=data["base_revision"],
                change_reason=data["change_reason"],
                name=data["name"],
                owner_team=data["owner_team"],
                summary=data["summary"],
                tags=data["tags"],
            )
        else:
            saved = create_project(
                actor=self.actor(request),
                slug=data["slug"],
                name=data["name"],
                owner_team=data["owner_team"],
                summary=data["summary"],
                tags=data["tags"],
                change_reason=data["change_reason"],
            )
        obj.pk = saved.pk


@admin.register(Page)
class PageAdmin(ServiceAdmin):
    form = PageAdminForm
    list_display = ["title", "project", "slug", "category", "revision", "updated_at"]
    list_filter = ["category"]
    list_select_related = ["project"]
    search_fields = ["title", "slug", "project__slug", "body"]

    def get_fields(self, request, obj=None):
        if obj is None:  # only free pages are added by hand; category pages come with projects
            return ["project", "slug", "title", "body", "change_reason"]
        structured = ["fields"] if obj.category else []
        return [
            "project", "category", "slug", "title", *structured, "body", "change_reason",
            "base_revision",
        ]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        # A category page's title is its category's label.
        return ["project", "category", "slug"] + (["title"] if obj.category else [])

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            saved = edit_page(
                obj,
                actor=self.actor(request),
                base_revision=data["base_revision"],
                change_reason=data["change_reason"],
                title=data.get("title"),
                fields=data.get("fields"),
                body=data["body"],
            )
        else:
            saved = create_free_page(
                data["project"],
                actor=self.actor(request),
                slug=data["slug"],
                title=data["title"],
                body=data["body"],
                change_reason=data["change_reason"],
            )
        obj.pk = saved.pk


class RecordAdmin(SimpleHistoryAdmin):
    """Records are posted by pipelines and append-only: the admin shows them, read-only."""

    history_list_display = ["history_source", "history_username"]
    list_select_related = ["project"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Template)
class TemplateAdmin(RecordAdmin):
    """Templates are loaded with ``manage.py load_template`` and never change: shown only."""

    list_display = ["slug", "version", "label", "loaded_at", "loaded_by_name"]
    list_select_related = []
    search_fields = ["slug", "label"]
    readonly_fields = ["slug", "version", "label", "digest", "loaded_at", "loaded_by_name",
                       "source"]  # fmt: skip
    fields = readonly_fields


@admin.register(ModelVersion)
class ModelVersionAdmin(RecordAdmin):
    list_display = ["version", "project", "created_at"]
    search_fields = ["version", "project__slug"]


@admin.register(TrainingRun)
class TrainingRunAdmin(RecordAdmin):
    list_display = ["id", "project", "model_version", "status", "started_at"]
    list_filter = ["status"]
    list_select_related = ["project", "model_version"]
    search_fields = ["project__slug", "model_version__version", "git_commit"]


@admin.register(Deployment)
class DeploymentAdmin(RecordAdmin):
    list_display = ["id", "project", "model_version", "environment", "status", "started_at"]
    list_filter = ["environment", "status"]
    list_select_related = ["project", "model_version"]
    search_fields = ["project__slug", "model_version__version", "target"]


@admin.register(SsoAccount)
class SsoAccountAdmin(RecordAdmin):
    """Who signs in through the provider, with the groups of their last login; read-only,
    since the provider decides (wiki.services.sso)."""

    list_display = ["user", "subject", "auditor", "validator", "last_login"]
    list_select_related = ["user"]
    search_fields = ["user__username", "subject"]
