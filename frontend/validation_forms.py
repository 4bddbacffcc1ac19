"""Browser forms of validations and findings (frontend.views.validations). Kept apart from
frontend.forms, which is long enough; wiki.services.validations validates."""

from django import forms

from wiki.categories import MARKDOWN_MAX_LENGTH
from wiki.models import Finding, Validation, max_length


def markdown(label, rows=4, required=True, help_text=""):
    return forms.CharField(
        label=label, required=required, max_length=MARKDOWN_MAX_LENGTH, strip=False,
        widget=forms.Textarea({"rows": rows}), help_text=help_text,
    )  # fmt: skip


def date_field(label, help_text):
    return forms.DateField(
        label=label, required=False, widget=forms.DateInput(attrs={"type": "date"}),
        help_text=help_text,
    )  # fmt: skip


class ValidationForm(forms.Form):
    """Open a validation: its title, scope, and the page revisions it covers."""

    title = forms.CharField(max_length=max_length(Validation, "title"))
    scope = markdown("Scope (Markdown)", required=False, help_text="What is validated, and how.")
    pinned = forms.MultipleChoiceField(
        label="Pages validated", widget=forms.CheckboxSelectMultiple,
        help_text="Each at the revision shown: later edits are not part of this validation.",
    )  # fmt: skip

    def __init__(self, *args, pages, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(f"{p.slug}:{p.revision}", f"{p.title} (revision {p.revision})") for p in pages]
        self.fields["pinned"].choices = choices
        self.fields["pinned"].initial = [value for value, _ in choices]

    def clean_pinned(self):
        pinned = []
        for value in self.cleaned_data["pinned"]:
            slug, _, revision = value.rpartition(":")
            pinned.append({"page": slug, "revision": int(revision)})
        return pinned


class FindingForm(forms.Form):
    """File a finding: what is wrong, how badly, what it is about, who remedies it by when."""

    title = forms.CharField(max_length=max_length(Finding, "title"))
    severity = forms.ChoiceField(choices=Finding.Severity.choices)
    description = markdown("Description (Markdown)", rows=6)
    page = forms.ChoiceField(label="Page", required=False)
    field = forms.CharField(
        label="Field", required=False, max_length=max_length(Finding, "field"),
        help_text="The name of a field of the page (e.g. split), if it is about one.",
    )  # fmt: skip
    page_revision = forms.IntegerField(
        label="Page revision", required=False, min_value=1,
        help_text="The revision of the page it is about, if one.",
    )  # fmt: skip
    record = forms.CharField(
        label="Record", required=False, max_length=max_length(Finding, "record"),
        help_text="deployment:<id>, training_run:<id> or model_version:<version>.",
    )  # fmt: skip
    owner = forms.CharField(
        label="Owner", required=False, help_text="The user name of who remedies it."
    )
    due_date = date_field("Due date", "When it must be remedied by.")

    def __init__(self, *args, pages, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["page"].choices = [("", "—"), *((p.slug, p.title) for p in pages)]


class ConclusionForm(forms.Form):
    outcome = forms.ChoiceField(choices=Validation.Outcome.choices)
    conclusion = markdown("Conclusion (Markdown)", rows=6)


class FindingChangeForm(forms.Form):
    """One change of a finding, as its page's buttons send it."""

    ACTIONS = ("propose", "close", "reopen", "accept", "assign")

    action = forms.ChoiceField(choices=[(a, a) for a in ACTIONS], widget=forms.HiddenInput)
    base_revision = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    text = forms.CharField(required=False, max_length=MARKDOWN_MAX_LENGTH, strip=False)
    owner = forms.CharField(required=False)
    due_date = forms.DateField(required=False)


class CommentForm(forms.Form):
    body = markdown("Comment (Markdown)", rows=3)
