"""Loading documentation templates, and moving a project to another template version.

An upgrade (to a newer version, or to another template) never loses a value: a field the
new version still has keeps its value; a field it renamed (``renamed_from``) hands its
value to the new name; a value with nowhere to go (its field is gone, or the value does
not fit the new field's kind) is appended to its page's Markdown body under a heading
naming the old field. ``preview_upgrade`` says all of that before ``upgrade_project``
does it, in one transaction, with a revision of every changed page and of the project.
"""

import hashlib
import json
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from wiki import audit, doc_templates
from wiki.categories import TABLE, Category, guess_kind, validate_fields
from wiki.diff import as_text
from wiki.doc_templates import TemplateError
from wiki.history import SYSTEM, recording
from wiki.models import Page, Project, Template
from wiki.services.pages import edit_page


def load_template(text, *, actor, reason=""):
    """Load the template in YAML ``text``: (template, created). The same slug and version
    with the same text is the one already loaded; with other text, TemplateError (a
    loaded version never changes: give the new one a new version)."""
    digest = doc_templates.digest(text)
    # The very text already loaded is that template, even if a rule added since (a name
    # reserved for a new route) would now refuse it: reloading on every deploy stays a
    # no-op rather than an error about a version that cannot change anyway.
    loaded = Template.objects.filter(digest=digest).order_by("pk").first()
    if loaded is not None:
        return loaded, False
    definition = doc_templates.parse(text)
    slug, version = definition["slug"], definition["version"]
    existing = Template.objects.filter(slug=slug, version=version).first()
    if existing is not None:
        if existing.digest == digest:
            return existing, False
        raise TemplateError([
            f"version: {slug} v{version} is already loaded with other content; a loaded "
            "version never changes: give this one a new version."
        ])  # fmt: skip
    template = Template(
        slug=slug, version=version, label=definition["label"], definition=definition,
        source=text, digest=digest, loaded_by=actor.user, loaded_by_name=actor.username,
    )  # fmt: skip
    template.full_clean()
    try:
        with transaction.atomic(), recording(actor, reason or f"Loaded template {template}"):
            template.save()
    except IntegrityError:
        # Loaded by someone else meanwhile: the same content is the same template.
        return load_template(text, actor=actor, reason=reason)
    doc_templates.forget(template.pk)
    return template, True


def default_template():
    """The latest version of the ``default`` template."""
    return template_named(doc_templates.DEFAULT)


def template_named(slug, version=None):
    """The template ``slug`` at ``version`` (None: its latest); ValidationError naming the
    loaded ones when there is no such template. A shipped pack missing from the database
    (one emptied by a test, say) is loaded from its file."""
    if not isinstance(slug, str) or (version is not None and not isinstance(version, int)):
        raise ValidationError({"template": "Name a template by its slug (and version number)."})
    chosen = Template.objects.filter(slug=slug)
    template = chosen.filter(version=version).first() if version else chosen.latest_of(slug)
    if template is None and slug in doc_templates.SHIPPED and not chosen.exists():
        template, _ = load_template(doc_templates.read_pack(slug), actor=SYSTEM)
        template = template if version in (None, template.version) else None
    if template is None:
        loaded = ", ".join(str(t) for t in Template.objects.all()) or "none"
        wanted = f"{slug} v{version}" if version else slug
        raise ValidationError({"template": f"No template {wanted}; loaded: {loaded}."})
    return template


@dataclass
class Move:
    """A stored value and where an upgrade puts it."""

    category: str  # where it is now
    name: str
    label: str
    to_category: str | None = None  # the field it moves to (None: the body)
    to_name: str | None = None
    why: str = ""  # why it goes to the body


@dataclass
class CategoryPlan:
    """What an upgrade does to one category page."""

    name: str
    label: str
    new_page: bool = False
    added: list = field(default_factory=list)  # fields the page gains (Field)
    moved_in: list = field(default_factory=list)  # Moves into a renamed field here
    to_body: list = field(default_factory=list)  # Moves appended to this page's body

    @property
    def added_required(self):
        return [f for f in self.added if f.required]


@dataclass
class UpgradePlan:
    """What ``upgrade_project`` would do: per category of the new template, in its order."""

    project: object
    old: object  # Spec
    new: object  # Spec
    categories: list
    values: dict  # (category, field) -> value after the upgrade, for changed pages
    bodies: dict  # category -> body after the upgrade, for changed pages
    applied: bool = False  # whether it was carried out (the API says so)

    @property
    def changes_anything(self):
        return self.old != self.new or any(
            c.new_page or c.added or c.moved_in or c.to_body for c in self.categories
        )

    @property
    def digest(self):
        """A digest of what the plan does (both versions, each category's new page, added
        fields, moves and their reasons): a preview carries it, and ``upgrade_project``
        refuses to carry out a plan that no longer has the digest the maintainer saw."""

        def moves(plan):
            return [
                [m.category, m.name, m.to_category, m.to_name, m.why]
                for m in plan.moved_in + plan.to_body
            ]

        shown = [
            self.old.name,
            self.new.name,
            [[c.name, c.new_page, [f.name for f in c.added], moves(c)] for c in self.categories],
        ]
        return hashlib.sha256(json.dumps(shown, separators=(",", ":")).encode()).hexdigest()


class PlanChanged(Exception):
    """The project's pages changed since the upgrade was previewed, so it would now do
    something else: ``plan`` is what it would do now (show it again)."""

    def __init__(self, plan):
        self.plan = plan
        super().__init__(
            "The project's pages changed since this move was previewed, and it would now do "
            "something else: review the new preview and confirm it again."
        )


def preview_upgrade(project, template):
    """The plan of moving ``project`` to ``template``, saving nothing; ValidationError when
    the template lacks a category of the project's (it would drop its page) or a new
    category's name is taken by a free page."""
    pages = {p.category: p for p in Page.objects.filter(project=project).categories()}
    return _plan(project, project.spec, template.spec, pages)


def _plan(project, old, new, pages):
    lost = [name for name in pages if new.get_category(name) is None]
    if lost:
        raise ValidationError({"template": (
            f"{new.name} lacks categories of {old.name} ({', '.join(lost)}): moving to it "
            "would drop their pages."
        )})  # fmt: skip
    taken = set(
        Page.objects.filter(project=project)
        .free()
        .filter(slug__in=new.category_names)
        .values_list("slug", flat=True)
    )
    if taken:
        raise ValidationError({"template": (
            f"{new.name} adds the categor{'y' if len(taken) == 1 else 'ies'} "
            f"{', '.join(sorted(taken))}, whose slug a free page of this project already has: "
            "rename that page first."
        )})  # fmt: skip
    renamed = {
        old_name: (c.name, f.name) for c in new.categories for f in c.fields
        for old_name in f.renamed_from
    }  # fmt: skip
    plans = {
        c.name: CategoryPlan(c.name, c.label, new_page=c.name not in pages) for c in new.categories
    }
    values = {
        (c.name, f.name): pages[c.name].fields[f.name]
        for c in new.categories for f in c.fields
        if c.name in pages and f.name in pages[c.name].fields
    }  # fmt: skip
    # In the old template's order, however the pages were read: the plan (which value a
    # renamed field takes, the order of moves its digest covers) is the same for the
    # preview and for the move it confirms.
    for name, page in sorted(pages.items(), key=lambda item: (old.order(item[0]), item[0])):
        category = old.category_or_unknown(name)
        for stored, value in page.fields.items():
            target = new.get_category(name).get_field(stored)
            label = getattr(category.get_field(stored), "label", stored)
            move = Move(name, stored, label)
            if target is not None:
                problem = _misfit(target, value)
                if problem:
                    del values[(name, stored)]
                    move.why = problem
                    plans[name].to_body.append(move)
                continue
            to = renamed.get(f"{name}.{stored}")
            if to is None:
                move.why = f"{new.name} has no such field"
            elif to in values:
                move.why = "the field it was renamed to already has a value"
            elif problem := _misfit(new.get_category(to[0]).get_field(to[1]), value):
                move.why = problem
            else:
                move.to_category, move.to_name = to
                values[to] = value
                plans[to[0]].moved_in.append(move)
                continue
            plans[name].to_body.append(move)
    for plan in plans.values():
        have = pages[plan.name].fields if plan.name in pages else {}
        old_category = old.get_category(plan.name)
        plan.added = [
            f for f in new.get_category(plan.name).fields
            if (old_category is None or old_category.get_field(f.name) is None)
            and f.name not in have and (plan.name, f.name) not in values
        ]  # fmt: skip
    bodies = {}
    for name, page in pages.items():
        extra = [_section(move, page.fields[move.name], old) for move in plans[name].to_body]
        if extra:
            bodies[name] = "\n\n".join([page.body, *extra]).strip()
    return UpgradePlan(project, old, new, list(plans.values()), values, bodies)


def _misfit(target, value):
    """Why ``value`` cannot be stored in field ``target``, or None."""
    try:
        validate_fields(Category("probe", "", "", (target,)), {target.name: value})
    except ValidationError as e:
        return f"it does not fit the new field: {' '.join(e.messages)}"
    return None


def _section(move, value, old):
    """A value with nowhere to go, as Markdown appended to its page's body."""
    kind = TABLE if isinstance(value, list) else guess_kind(value)
    text = as_text(value, kind)
    if kind == TABLE:
        text = "\n".join(f"- {line}" for line in text.splitlines())
    return f"## {move.label} (kept from {old.name})\n\n*Field `{move.name}`: {move.why}.*\n\n{text}"


def upgrade_project(project, template, *, actor, reason="", expected=None):
    """Move ``project`` to ``template`` as ``preview_upgrade`` says, in one transaction:
    a new revision of every page that changes, a page for each new category (with the
    values moved into it), and a revision of the project naming both versions. With
    ``expected`` (the digest of the plan previewed), PlanChanged when the plan computed
    under the locks is another one. Returns that plan, ``applied`` when it was carried
    out (not when the project already follows ``template``); its ``project`` is the
    project as saved."""
    with transaction.atomic():
        # Locks in the order every writer takes them: the category pages' rows (by
        # primary key, as several edit_page calls would), then the chain head (appending
        # a history row), then the project's row. edit_page takes a page's row before
        # the head: taking the head first here would deadlock with an edit of a page.
        locked = (
            Page.objects.select_for_update(no_key=True).filter(project_id=project.pk).categories()
        )
        pages = {p.category: p for p in locked.order_by("pk")}
        audit.lock_chain(project)
        current = Project.objects.select_for_update().get(pk=project.pk)
        old = current.spec
        plan = _plan(current, old, template.spec, pages)
        if expected is not None and plan.digest != expected:
            raise PlanChanged(plan)
        plan.project = current
        if current.template_id == template.pk:
            return plan
        reason = reason or f"Template upgraded from {old.name} to {template.spec.name}"
        with recording(actor, reason):
            current.template = template
            current.revision += 1
            current.full_clean()
            current.save()
            for category in plan.categories:
                fields = {
                    name: value for (cat, name), value in plan.values.items()
                    if cat == category.name
                }  # fmt: skip
                if category.new_page:
                    # Created with the values renamed into it (checked by _plan).
                    Page.objects.create(
                        project=current, category=category.name, slug=category.name,
                        title=category.label,
                        fields=validate_fields(template.spec.get_category(category.name), fields),
                    )  # fmt: skip
                    continue
                page = pages[category.name]
                page.project = current
                body = plan.bodies.get(category.name)
                try:
                    edit_page(page, actor=actor, base_revision=None, change_reason=reason,
                              fields=fields, body=body)  # fmt: skip
                except ValidationError as e:
                    raise ValidationError({"template": [
                        f"{category.label}: {name}: {' '.join(texts)}"
                        for name, texts in e.message_dict.items()
                    ]}) from None  # fmt: skip
            Project.pages_changed(current.pk)
    plan.applied = True
    return plan
