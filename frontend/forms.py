"""Browser forms. They shape input for the services in wiki/services, which validate it."""

from datetime import UTC, date, datetime, timedelta

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from wiki import inventory, run_table
from wiki.audit import ACTIVITY_KINDS
from wiki.categories import MARKDOWN, TABLE, TEXT
from wiki.history import CHANGE_REASON_MAX_LENGTH, Source
from wiki.models import (
    ApiToken,
    AuditEntry,
    ExportJob,
    Membership,
    MlflowSync,
    ModelVersion,
    NotificationSettings,
    Page,
    Project,
    Template,
    TrainingRun,
    Validation,
    max_length,
)
from wiki.models.records import MAX_NAME_LENGTH

CHANGE_REASON_HELP = "What changed and why; shown in the page history and in audit reports."


def apply_errors(form, error):
    """Show a service ValidationError on ``form``: per field where the form has it."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for name, messages in error.message_dict.items():
        form.add_error(name if name in form.fields else None, messages)


class RevisionForm(forms.Form):
    """A form that edits an existing object: carries the revision it started from."""

    base_revision = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    change_reason = forms.CharField(
        label="Change reason", max_length=CHANGE_REASON_MAX_LENGTH, help_text=CHANGE_REASON_HELP
    )


def _tags_text(tags):
    return ", ".join(tags)


def _parse_tags(text):
    return [t for t in (part.strip() for part in text.split(",")) if t]


def _latest_templates():
    """(slug, label) of each loaded template, at its latest version."""
    latest = {}
    for template in Template.objects.order_by("slug", "version"):
        latest[template.slug] = template
    return [(t.slug, f"{t.label} ({t.slug} v{t.version})") for t in latest.values()]


class ProjectCreateForm(forms.ModelForm):
    tags = forms.CharField(
        required=False, max_length=1000, help_text="Comma-separated, e.g. churn, tabular."
    )
    template = forms.ChoiceField(
        label="Documentation template", initial="default", required=False,
        help_text="The categories and fields the documentation follows (latest version); "
        "a maintainer can change it later in the project's settings.",
    )  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].choices = _latest_templates()

    class Meta:
        model = Project
        fields = ["name", "slug", "owner_team", "summary"]
        # slug.js fills the slug in from the name as it is typed.
        widgets = {
            "summary": forms.Textarea(attrs={"rows": 3}),
            "slug": forms.TextInput(attrs={"data-slug-from": "id_name"}),
        }
        help_texts = {
            "slug": "Part of every URL of the project; cannot be changed later. "
            "Lowercase letters, digits and hyphens.",
            "owner_team": "The team accountable for the model.",
            "summary": "One or two sentences shown in the project list.",
        }

    def clean_tags(self):
        return _parse_tags(self.cleaned_data["tags"])

    def validate_unique(self):
        # The service checks uniqueness (and the race behind it) when it saves.
        pass


class ProjectSettingsForm(RevisionForm):
    name = forms.CharField(max_length=max_length(Project, "name"))
    owner_team = forms.CharField(label="Owner team", max_length=max_length(Project, "owner_team"))
    summary = forms.CharField(
        max_length=max_length(Project, "summary"),
        required=False,
        widget=forms.Textarea({"rows": 3}),
    )
    tags = forms.CharField(required=False, max_length=1000, help_text="Comma-separated.")

    field_order = ["name", "owner_team", "summary", "tags", "change_reason"]

    @classmethod
    def for_project(cls, project, data=None):
        initial = {
            "name": project.name,
            "owner_team": project.owner_team,
            "summary": project.summary,
            "tags": _tags_text(project.tags),
            "base_revision": project.revision,
        }
        return cls(data=data, initial=initial)

    def clean_tags(self):
        return _parse_tags(self.cleaned_data["tags"])


def table_to_text(rows):
    return "\n".join(f"{row['key']}: {row['value']}" for row in rows)


def text_to_table(text):
    """Parse 'key: value' lines into table rows; blank lines are skipped."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise ValidationError(f"Line {number}: write one 'key: value' per line.")
        if not key.strip():
            raise ValidationError(f"Line {number}: there is no key before the ':'.")
        rows.append({"key": key.strip(), "value": value.strip()})
    return rows


def _form_field(spec):
    common = {"label": spec.label, "help_text": spec.help_text, "required": False}
    if spec.kind == MARKDOWN:
        return forms.CharField(widget=forms.Textarea({"rows": 5}), strip=False, **common)
    if spec.kind == TEXT and spec.choices:
        choices = [("", "— not set —")] + [(c, c.capitalize()) for c in spec.choices]
        return forms.ChoiceField(choices=choices, **common)
    if spec.kind == TEXT:
        return forms.CharField(**common)
    assert spec.kind == TABLE
    common["help_text"] += " One 'key: value' per line."
    return forms.CharField(widget=forms.Textarea({"rows": 4, "class": "table-input"}), **common)


class PageForm(RevisionForm):
    """Edits a page: its registry fields (category pages) or its title (free pages), and body."""

    body = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea({"rows": 14}),
        help_text="Free Markdown. Link other pages with [[page]] or [[project/page]]; show "
        "an attached image with ![caption](attachment:name), or paste or drop one here.",
    )

    def __init__(self, page, data=None, reason_required=True):
        self.page = page
        initial = {"body": page.body, "base_revision": page.revision}
        super().__init__(data=data, initial=initial)
        # A preview needs no reason yet; a save does.
        self.fields["change_reason"].required = reason_required
        spec = page.spec
        if spec is None:
            self.fields["title"] = forms.CharField(
                max_length=Page._meta.get_field("title").max_length, initial=page.title
            )
            self.order_fields(["title", "body", "change_reason"])
            return
        for field_spec in spec.fields:
            form_field = _form_field(field_spec)
            value = page.fields.get(field_spec.name, "")
            form_field.initial = table_to_text(value) if field_spec.kind == TABLE else value
            form_field.registry = field_spec
            self.fields[field_spec.name] = form_field
        self.order_fields([f.name for f in spec.fields] + ["body", "change_reason"])

    def propose(self, values):
        """Show ``values`` ({field name: stored value}, wiki.drafts) in their fields."""
        for name, value in values.items():
            field = self.fields[name]
            field.initial = table_to_text(value) if field.registry.kind == TABLE else value

    def registry_fields(self):
        """Bound fields of the structured fields, for the template."""
        return [self[name] for name, field in self.fields.items() if hasattr(field, "registry")]

    def clean(self):
        cleaned = super().clean()
        for name, field in self.fields.items():
            spec = getattr(field, "registry", None)
            if spec is not None and spec.kind == TABLE and name in cleaned:
                try:
                    cleaned[name] = text_to_table(cleaned[name])
                except ValidationError as e:
                    self.add_error(name, e)
        return cleaned

    def field_values(self):
        """The structured field values as the service expects them (after is_valid)."""
        return {
            name: self.cleaned_data[name]
            for name, field in self.fields.items()
            if hasattr(field, "registry") and name in self.cleaned_data
        }


class FreePageCreateForm(forms.Form):
    title = forms.CharField(max_length=max_length(Page, "title"))
    slug = forms.SlugField(
        max_length=max_length(Page, "slug"),
        help_text="Its address and the name other pages link to: [[slug]]. "
        "Lowercase letters, digits and hyphens.",
        widget=forms.TextInput(attrs={"data-slug-from": "id_title"}),  # slug.js
    )
    body = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea({"rows": 14}),
        help_text="Free Markdown. Link other pages with [[page]] or [[project/page]].",
    )
    change_reason = forms.CharField(
        label="Change reason (optional)",
        max_length=CHANGE_REASON_MAX_LENGTH,
        required=False,
        help_text="Shown in the page history; defaults to “Created page”.",
    )


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=max_length(ApiToken, "name"), help_text="What uses it, e.g. 'churn training CI'."
    )
    scopes = forms.MultipleChoiceField(
        choices=ApiToken.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="Pipelines that post records need 'Write records'; writing implies reading.",
    )
    all_projects = forms.BooleanField(
        required=False, label="Valid for all projects (present and future)"
    )
    projects = forms.ModelMultipleChoiceField(
        queryset=Project.objects.order_by("name"),
        to_field_name="slug",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Or the projects it may use.",
    )
    expires_in_days = forms.IntegerField(
        min_value=1,
        max_value=3650,
        required=False,
        initial=90,
        label="Expires after (days)",
        help_text="Leave empty for a token that never expires.",
    )

    def __init__(self, *args, projects, **kwargs):
        super().__init__(*args, **kwargs)
        # Only the projects the user sees: a token acts as its user.
        self.fields["projects"].queryset = projects.order_by("name")

    def clean_projects(self):
        return [project.slug for project in self.cleaned_data["projects"]]


class ActivityFilterForm(forms.Form):
    user = forms.CharField(required=False, max_length=max_length(AuditEntry, "username"))
    source = forms.ChoiceField(required=False, choices=[("", "all sources"), *Source.choices])
    kind = forms.ChoiceField(required=False, choices=[("", "all kinds"), *ACTIVITY_KINDS.items()])
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Up to and including this day (UTC).",
    )

    def clean_until(self):
        until = self.cleaned_data["until"]
        if until and until >= date.max:  # "up to and including" needs the next day
            raise forms.ValidationError("Give a day before 9999-12-31.")
        since = self.cleaned_data.get("since")
        if until and since and until < since:
            raise forms.ValidationError(f"Give a day on or after {since:%Y-%m-%d}, the first day.")
        return until

    def filters(self):
        """Keyword arguments for wiki.audit.activity (empty when the form is invalid)."""
        if not self.is_valid():
            return {}
        data = dict(self.cleaned_data)
        for name, shift in (("since", 0), ("until", 1)):
            if data[name]:
                day = data[name] + timedelta(days=shift)
                data[name] = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return data


class NotificationsForm(forms.Form):
    webhook_url = forms.URLField(
        label="Webhook URL", required=False, assume_scheme="https",
        max_length=max_length(NotificationSettings, "webhook_url"),
        help_text='A Slack-compatible incoming webhook: mlwiki POSTs {"text": …} as JSON to it. '
        "Empty for none.",
    )  # fmt: skip
    email_maintainers = forms.BooleanField(
        label="E-mail the maintainers", required=False,
        help_text="Every maintainer of the project with an e-mail address on their account.",
    )  # fmt: skip
    daily_digest = forms.BooleanField(label="Daily digest", required=False)
    events = forms.BooleanField(
        label="Events", required=False,
        help_text="Right away when a deployment fails or is rolled back, and when a page is "
        "approved.",
    )  # fmt: skip
    change_reason = forms.CharField(
        label="Change reason (optional)", max_length=CHANGE_REASON_MAX_LENGTH, required=False,
        help_text=CHANGE_REASON_HELP,
    )  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["daily_digest"].help_text = (
            f"The stale pages and the empty required fields, every day at "
            f"{settings.DIGEST_TIME} ({settings.TIME_ZONE}), when there are any."
        )


class NamesField(forms.CharField):
    """Names one per line (experiments, registered models), as a list."""

    widget = forms.Textarea(attrs={"rows": 3})

    def to_python(self, value):
        return [line.strip() for line in (value or "").splitlines() if line.strip()]

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value


class MlflowSyncForm(forms.Form):
    tracking_uri = forms.URLField(
        label="Tracking URI", assume_scheme="https", max_length=500,
        help_text="The MLflow tracking server, e.g. https://mlflow.example.com.",
    )  # fmt: skip
    experiments = NamesField(
        label="Experiments", required=False,
        help_text="Names or ids, one per line: their runs become training runs.",
    )  # fmt: skip
    registered_models = NamesField(
        label="Registered models", required=False,
        help_text="Names, one per line: their versions become model versions.",
    )  # fmt: skip
    every_hours = forms.TypedChoiceField(
        label="Schedule", coerce=int, choices=MlflowSync.Every.choices,
        initial=MlflowSync.Every.DAY,
    )  # fmt: skip
    attach_images = forms.BooleanField(
        label="Attach image artifacts", required=False, initial=True,
        help_text="Plots the runs logged (PNG, JPEG, GIF, WebP, SVG; up to 5 MB each).",
    )  # fmt: skip
    change_reason = forms.CharField(
        label="Change reason (optional)", max_length=CHANGE_REASON_MAX_LENGTH, required=False,
        help_text=CHANGE_REASON_HELP,
    )  # fmt: skip


class MemberForm(forms.Form):
    username = forms.CharField(max_length=max_length(get_user_model(), "username"))
    role = forms.ChoiceField(choices=Membership.Role.choices)


class RestoreForm(forms.Form):
    base_revision = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    change_reason = forms.CharField(
        label="Why restore it",
        max_length=CHANGE_REASON_MAX_LENGTH,
        help_text="Kept in the history.",
    )


class ApproveForm(forms.Form):
    revision = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    comment = forms.CharField(
        required=False,
        max_length=max_length(Page, "approval_comment"),
        widget=forms.Textarea({"rows": 2}),
    )


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=ExportJob.Format.choices, initial=ExportJob.Format.PDF)
    since = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="First day of the period (UTC); empty: from the beginning.",
    )
    until = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Last day, included; empty: up to now.",
    )
    include_diffs = forms.BooleanField(
        required=False,
        label="Include full diffs",
        help_text="Every page change with its line-by-line difference, not only the list.",
    )
    as_of = forms.CharField(
        required=False,
        label="As of",
        max_length=max_length(ExportJob, "as_of"),
        help_text="Empty: the documentation as it is. Else the project as it stood at a "
        "moment: deployment:<id>, model-version:<version>, or a date or time (ISO 8601, "
        "UTC); a date means the end of that day.",
    )

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "The period ends before it starts.")
        return data


class RunsTableForm(forms.Form):
    """The runs table's filters, sort and columns (a GET form; wiki.run_table reads them)."""

    status = forms.ChoiceField(
        required=False, choices=[("", "any status"), *TrainingRun.Status.choices]
    )
    model_version = forms.CharField(
        required=False, max_length=max_length(ModelVersion, "version"), label="Model version"
    )
    dataset_version = forms.CharField(
        required=False, max_length=max_length(TrainingRun, "dataset_version"),
        label="Dataset version",
    )  # fmt: skip
    tag = forms.CharField(required=False, max_length=1000, help_text="name=value")
    where = forms.CharField(
        required=False, max_length=2000, label="Metric conditions",
        help_text="For example: auc > 0.8, loss <= 0.3 (operators > >= < <= =).",
    )  # fmt: skip
    sort = forms.CharField(required=False, max_length=300)
    order = forms.ChoiceField(
        required=False, choices=[("desc", "descending"), ("asc", "ascending")]
    )
    # The column checkboxes ("metric", "param") are read by columns(): their names are
    # whatever the runs hold, not a fixed list of choices.
    cursor = forms.CharField(required=False, max_length=2000)

    def clean_tag(self):
        return run_table.parse_tag(self.cleaned_data["tag"])

    def clean_where(self):
        return run_table.parse_conditions(self.cleaned_data["where"])

    def clean(self):
        data = super().clean()
        if "sort" in data and "order" in data:
            try:
                data["sort"] = run_table.Sort.parse(data["sort"], data["order"])
            except ValidationError as error:
                self.add_error("sort", error)
        return data

    def filters(self):
        data = self.cleaned_data
        return run_table.Filters(
            status=data["status"], model_version=data["model_version"].strip(),
            dataset_version=data["dataset_version"].strip(), tag=data["tag"],
            conditions=data["where"],
        )  # fmt: skip

    def columns(self):
        """(metric names, parameter names) chosen as columns; None for each when the
        chooser was not submitted (the table then shows its default columns)."""
        if not self.data.get("columns"):
            return None, None
        chosen = []
        for kind in ("metric", "param"):
            names = [n for n in self.data.getlist(kind) if 0 < len(n) <= MAX_NAME_LENGTH]
            chosen.append(list(dict.fromkeys(names))[: run_table.MAX_COLUMNS])
        return tuple(chosen)


class TemplateChangeForm(forms.Form):
    """A project's move to another template version: chosen, previewed, then confirmed."""

    template = forms.ModelChoiceField(
        queryset=Template.objects.order_by("slug", "-version"), label="Template version",
        empty_label=None,
    )  # fmt: skip
    change_reason = forms.CharField(
        label="Change reason", max_length=CHANGE_REASON_MAX_LENGTH, required=False,
        help_text="Kept in the history; by default it names both versions.",
    )  # fmt: skip
    # The digest of the plan previewed (UpgradePlan.digest): the move confirmed is that one.
    plan_digest = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)


class InventoryFilterForm(forms.Form):
    """The model inventory's filters and order (wiki.inventory.chosen)."""

    text = forms.CharField(required=False, max_length=200, label="Name")
    tier = forms.CharField(required=False, max_length=200, label="Risk tier")
    status = forms.CharField(required=False, max_length=200)
    team = forms.CharField(required=False, max_length=100, label="Owner team")
    review = forms.ChoiceField(
        required=False, choices=[("", "any"), *inventory.REVIEW_LABELS.items()]
    )
    outcome = forms.ChoiceField(
        required=False,
        label="Last validation",
        choices=[("", "any"), *Validation.Outcome.choices, (inventory.NEVER, "never validated")],
    )
    sort = forms.ChoiceField(
        required=False,
        choices=[
            ("name", "name"), ("tier", "risk tier"), ("next_review", "next review"),
            ("findings", "open findings"), ("validated", "last validated"), ("team", "team"),
        ],
    )  # fmt: skip

    def filters(self):
        """Keyword arguments for wiki.inventory.chosen (none when the form is invalid)."""
        if not self.is_valid():
            return {}
        data = {name: value or None for name, value in self.cleaned_data.items()}
        data["sort"] = data["sort"] or "name"
        return data
