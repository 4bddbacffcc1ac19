"""Documentation templates: loading one (strictly checked, immutable, with history),
projects pinned to a version, an upgrade that keeps every value, the packs' Annex IV and
SR 11-7 mappings, and the browser and API ways to change a project's template."""

import json
import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.urls import reverse
from django.utils import timezone

from tests.factories import (
    ProjectFactory,
    cli_actor,
    make_deployment,
    make_token,
    make_training_run,
)
from tests.test_exports import content, export
from wiki import audit, doc_templates, reports
from wiki.diff import as_text
from wiki.doc_templates import TemplateError, pack_spec, parse, read_pack
from wiki.health import dashboard, is_stale, with_staleness
from wiki.history import Actor, Source
from wiki.models import AuditEntry, Membership, Page, Project, Template
from wiki.services.pages import approve_page, edit_page
from wiki.services.templates import load_template, preview_upgrade, upgrade_project

# The default pack as a newer version: the model page gains a required field, renames
# "limitations" and its table of hyperparameters becomes Markdown; the data page drops
# "personal_data_licensing"; the deployment environment becomes a table (a one-line
# value no longer fits); and a "risk" category is added.
DEFAULT_V2 = (
    read_pack("default")
    .replace("version: 1", "version: 2", 1)
    .replace(
        "  - name: limitations\n    label: Limitations\n",
        "  - name: known_limitations\n    label: Known limitations\n"
        "    renamed_from: [model.limitations]\n",
    )
    .replace(
        "  - name: architecture\n    label: Architecture\n",
        "  - name: intended_users\n    label: Intended users\n    help: Who uses it.\n"
        "    kind: markdown\n"
        "  - name: architecture\n    label: Architecture\n",
    )
    .replace(
        "  - name: environment\n    label: Deployment environment\n"
        "    help: Where the model runs, e.g. 'Kubernetes cluster ml-prod (eu-west-1)' or 'nightly"
        " batch on Airflow'.\n    kind: text\n",
        "  - name: environment\n    label: Deployment environment\n    help: Where.\n"
        "    kind: table\n",
    )
)
DEFAULT_V2 = DEFAULT_V2.replace(
    "  - name: personal_data_licensing\n    label: Personal data and licensing\n"
    "    help: Personal or sensitive data used, its legal basis, and the licences of third-party"
    " data.\n    kind: markdown\n    required: false\n    evidences: [annex_iv.5]\n",
    "",
).replace(
    "evidence:\n",
    "- name: risk\n  label: Risk\n  fields:\n"
    "  - {name: appetite, label: Risk appetite, kind: markdown}\n"
    "evidence:\n",
)
CLI = cli_actor()


def load(text=DEFAULT_V2):
    return load_template(text, actor=CLI)[0]


def fill(project, category, **fields):
    page = project.pages.get(category=category)
    return edit_page(page, actor=CLI, base_revision=None, change_reason="Filled", fields=fields,
                     merge_fields=True)  # fmt: skip


def test_the_v2_fixture_really_changes_what_it_says():
    spec = parse(DEFAULT_V2)
    model = next(c for c in spec["categories"] if c["name"] == "model")
    names = [f["name"] for f in model["fields"]]
    assert "intended_users" in names and "known_limitations" in names
    data = next(c for c in spec["categories"] if c["name"] == "data")
    assert "personal_data_licensing" not in [f["name"] for f in data["fields"]]
    deployment = next(c for c in spec["categories"] if c["name"] == "deployment")
    assert next(f for f in deployment["fields"] if f["name"] == "environment")["kind"] == "table"


# Loading ---------------------------------------------------------------------------


def test_the_packs_are_loaded_by_the_migration_and_projects_get_the_latest_default(db):
    loaded = {(t.slug, t.version) for t in Template.objects.all()}
    assert {("default", 1), ("eu-ai-act-high-risk", 1), ("sr-11-7", 1)} <= loaded
    for template in Template.objects.all():
        # What the migration stored is what today's parser makes of the pack file.
        assert template.definition == parse(read_pack(template.slug))
    assert ProjectFactory().template.slug == "default"
    v2 = load()
    assert ProjectFactory().template == v2


def test_a_template_is_in_the_global_audit_chain_with_its_history(db):
    template, created = load_template(DEFAULT_V2, actor=CLI, reason="New fields for audits")
    assert created
    row = template.history.get()
    assert (row.history_source, row.history_change_reason) == ("cli", "New fields for audits")
    entry = AuditEntry.objects.get(table="wiki.HistoricalTemplate", history_id=row.history_id)
    assert entry.chain.key == "global" and entry.object_repr == "default v2"
    assert audit.verify(audit.head_for(None)).ok


def test_the_same_version_loads_once_and_never_changes(db):
    first = load()
    again, created = load_template(DEFAULT_V2, actor=CLI)
    assert (again, created) == (first, False)
    with pytest.raises(TemplateError, match="already loaded with other content"):
        load_template(DEFAULT_V2 + "\n# edited\n", actor=CLI)
    assert Template.objects.filter(slug="default", version=2).count() == 1


def test_a_loaded_text_reloads_as_itself_even_if_a_later_rule_would_refuse_it(db, monkeypatch):
    first = load()
    # A route added since reserves a name the loaded text uses for a category.
    routes = doc_templates.PROJECT_ROUTE_SLUGS | {"risk"}
    monkeypatch.setattr(doc_templates, "PROJECT_ROUTE_SLUGS", routes)
    with pytest.raises(TemplateError):
        parse(DEFAULT_V2.replace("version: 2", "version: 9", 1))
    assert load_template(DEFAULT_V2, actor=CLI) == (first, False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("label: Default\n", "label: Default\ncolour: blue\n"), "colour: unknown key"),
        (("kind: markdown", "kind: html"), "categories[0].fields[0].kind: must be one of"),
        (("name: owners", "name: purpose"), "categories[0].fields[1].name: 'purpose' is repeated"),
        (("name: data\n", "name: overview\n"), "categories[1].name: 'overview' is repeated"),
        (("[annex_iv.1]", "[annex_iv.12]"), "categories[0].fields[0].evidences[0]: unknown item"),
        (("'records:model_versions'", "'records:coffee'"), "evidence.annex_iv.1[0]: unknown"),
        (("version: 1", "version: one"), "version: must be a whole number"),
        (("high: 12", "severe: 12"), "review_months.severe: not a choice of"),
        (("risk_tier_field: overview.risk_level", "risk_tier_field: overview.owners"),
         "risk_tier_field: must name a text field"),
    ],
)  # fmt: skip
def test_a_bad_template_is_refused_naming_the_place(db, change, message):
    text = read_pack("default").replace(*change, 1)
    with pytest.raises(TemplateError) as error:
        load_template(text, actor=CLI)
    assert any(message in problem for problem in error.value.errors), error.value.errors
    assert not Template.objects.filter(version=2).exists()


def test_too_deep_too_big_aliases_and_non_yaml_are_refused():
    deep = "slug: x\nversion: 1\nlabel: X\ncategories: " + "[" * 30 + "]" * 30
    for text, message in [
        (deep, "too_deep"),
        ("x" * (300 * 1024), "over 256 KiB"),
        ("a: &a [1]\nb: *a\n", "aliases"),
        ("slug: [unclosed", "Not valid YAML"),
        ("- just a list", "must be a mapping"),
        ("slug: a\nslug: b\n", "key 'slug' is repeated"),
    ]:
        with pytest.raises(TemplateError, match=message.replace("(", r"\(")):
            parse(text)


def test_load_template_command_loads_and_reports_every_problem(db, tmp_path, capsys):
    good = tmp_path / "default-v2.yaml"
    good.write_text(DEFAULT_V2)
    call_command("load_template", str(good))
    assert "Loaded template default v2" in capsys.readouterr().out
    call_command("load_template", str(good))
    assert "already loaded" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        DEFAULT_V2.replace("version: 2", "version: 3").replace("kind: table", "kind: grid")
    )
    with pytest.raises(SystemExit) as exit_:
        call_command("load_template", str(bad))
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "not loaded" in err and "categories[0].fields[1].kind: must be one of" in err
    assert not Template.objects.filter(version=3).exists()


def test_the_admin_lists_templates_read_only(admin_client_logged_in):
    response = admin_client_logged_in.get("/admin/wiki/template/")
    assert response.status_code == 200
    assert "eu-ai-act-high-risk" in response.content.decode()
    template = Template.objects.get(slug="sr-11-7")
    page = admin_client_logged_in.get(f"/admin/wiki/template/{template.pk}/change/")
    assert page.status_code == 200 and "validator_conclusion" in page.content.decode()
    assert admin_client_logged_in.get("/admin/wiki/template/add/").status_code == 403


# A new required field shows as missing ---------------------------------------------


def test_a_new_required_field_shows_as_missing_in_every_project_pinned_to_it(
    client_logged_in, user
):
    load()
    fresh = ProjectFactory(slug="fresh")  # the latest default: v2
    older = ProjectFactory(slug="older", template="default")
    older.template = Template.objects.get(slug="default", version=1)
    Project.objects.filter(pk=older.pk).update(template=older.template)
    upgrade_project(older, Template.objects.get(slug="default", version=2), actor=CLI)
    for project in (fresh, Project.objects.get(slug="older")):
        Membership.objects.create(project=project, user=user, role=Membership.Role.VIEWER)
        model = project.pages.get(category="model")
        assert "intended_users" in [f.name for f in model.missing_fields]
        report = reports.build(project, report_id="t", generated_at=timezone.now(),
                               with_history=False)  # fmt: skip
        entry = next(p for p in report["documentation"] if p["category"] == "model")
        assert "intended_users" in [m["name"] for m in entry["completeness"]["missing"]]
        html = client_logged_in.get(reverse("frontend:page", args=[project.slug, "model"]))
        assert "Intended users" in html.content.decode()
        assert project.pages.filter(category="risk").exists()


# Upgrading -------------------------------------------------------------------------


@pytest.fixture
def documented(db):
    """A project on default v1 with values in the fields that v2 renames, drops, retypes."""
    project = ProjectFactory(slug="credit", name="Credit scoring")
    fill(project, "model", limitations="Weak on thin files.", architecture="GBM",
         hyperparameters=[{"key": "depth", "value": "6"}])  # fmt: skip
    fill(project, "data", personal_data_licensing="GDPR art. 6(1)(b).", sources="Core banking.")
    fill(project, "deployment", environment="k8s ml-prod")
    return Project.objects.get(pk=project.pk)


def test_the_preview_says_what_moves_what_is_added_and_what_goes_to_the_body(documented):
    plan = preview_upgrade(documented, load())
    by_name = {c.name: c for c in plan.categories}
    assert [f.name for f in by_name["model"].added] == ["intended_users"]
    assert [(m.name, m.to_category, m.to_name) for m in by_name["model"].moved_in] == [
        ("limitations", "model", "known_limitations")
    ]
    assert [(m.name, m.why) for m in by_name["data"].to_body] == [
        ("personal_data_licensing", "default v2 has no such field")
    ]
    environment = by_name["deployment"].to_body[0]
    assert environment.name == "environment" and "does not fit the new field" in environment.why
    assert by_name["risk"].new_page
    # A preview saves nothing.
    assert Project.objects.get(pk=documented.pk).template.version == 1


def test_an_upgrade_keeps_every_value_and_writes_sealed_history(documented):
    old_export = export(documented, "json")
    before = {p.category: p.revision for p in documented.pages.all()}
    v2 = load()
    plan = upgrade_project(documented, v2, actor=CLI)
    assert plan.applied
    upgraded = plan.project
    assert upgraded.template == v2
    pages = {p.category: p for p in upgraded.pages.all()}
    assert pages["model"].fields["known_limitations"] == "Weak on thin files."
    assert "limitations" not in pages["model"].fields
    assert pages["model"].fields["architecture"] == "GBM"
    assert "personal_data_licensing" not in pages["data"].fields
    assert "## Personal data and licensing (kept from default v1)" in pages["data"].body
    assert "GDPR art. 6(1)(b)." in pages["data"].body
    assert "k8s ml-prod" in pages["deployment"].body
    assert pages["risk"].revision == 1
    assert {c for c, p in pages.items() if c in before and p.revision > before[c]} == {
        "model", "data", "deployment"
    }  # fmt: skip
    reason = "Template upgraded from default v1 to default v2"
    assert upgraded.history.first().history_change_reason == reason
    assert pages["model"].history.first().history_change_reason == reason
    assert AuditEntry.objects.filter(chain__project=upgraded, reason=reason).count() == 5
    assert audit.verify(audit.head_for(upgraded)).ok
    # The export made before still reads as it was.
    old = json.loads(content(old_export))
    model = next(p for p in old["documentation"] if p["category"] == "model")
    assert next(f for f in model["fields"] if f["name"] == "limitations")["value"] == (
        "Weak on thin files."
    )


def test_an_upgrade_to_a_template_without_a_category_of_the_project_is_refused(documented):
    smaller = read_pack("default").replace("version: 1", "version: 5", 1)
    start = smaller.index("- name: maintenance")
    smaller = smaller[:start] + smaller[smaller.index("evidence:") :]
    with pytest.raises(ValidationError, match="maintenance"):
        upgrade_project(documented, load(smaller), actor=CLI)
    assert Project.objects.get(pk=documented.pk).template.version == 1


# DEFAULT_V2, and a new "governance" category taking over the overview's stakeholders
# (a value renamed into a category the upgrade adds).
DEFAULT_V4 = (
    DEFAULT_V2.replace("version: 2", "version: 4", 1)
    .replace(
        "- name: risk\n",
        "- name: governance\n  label: Governance\n  fields:\n"
        "  - {name: stakeholders, label: Stakeholders, kind: table,"
        " renamed_from: [overview.stakeholders]}\n"
        "  - {name: committee, label: Committee, kind: markdown}\n"
        "- name: risk\n",
    )
    .replace(
        "  - name: stakeholders\n    label: Stakeholders\n    help: Teams and people who depend on"
        " or are affected by the model, and their interest in it.\n    kind: table\n",
        "",
    )
)


def test_the_v4_fixture_moves_the_stakeholders_to_a_new_category():
    spec = parse(DEFAULT_V4)
    overview = next(c for c in spec["categories"] if c["name"] == "overview")
    assert "stakeholders" not in [f["name"] for f in overview["fields"]]
    governance = next(c for c in spec["categories"] if c["name"] == "governance")
    assert governance["fields"][0]["renamed_from"] == ["overview.stakeholders"]


def test_a_preview_moving_values_of_two_pages_into_one_category_is_confirmed_at_once(db):
    # The data page's licensing joins the overview's stakeholders in "governance": the
    # plan must not depend on the order the pages are read in (preview by title, the
    # move by primary key), or an untouched preview would be refused as changed.
    text = DEFAULT_V4.replace(
        "  - {name: committee, label: Committee, kind: markdown}\n",
        "  - {name: committee, label: Committee, kind: markdown}\n"
        "  - {name: licensing, label: Licensing, kind: markdown,"
        " renamed_from: [data.personal_data_licensing]}\n",
    ).replace("version: 4", "version: 5", 1)
    text = text.replace(
        "  - name: personal_data_licensing\n", "  - name: personal_data_licensing_old\n", 1
    )
    project = ProjectFactory(slug="two", template="default")
    _fill_everything(project)
    template = load(text)
    preview = preview_upgrade(project, template)
    moved = {
        m.to_name for m in next(c for c in preview.categories if c.name == "governance").moved_in
    }
    assert moved == {"stakeholders", "licensing"}
    upgrade_project(project, template, actor=CLI, expected=preview.digest)  # no PlanChanged
    governance = Project.objects.get(pk=project.pk).pages.get(category="governance")
    assert set(governance.fields) >= {"stakeholders", "licensing"}


@pytest.mark.parametrize("text", [DEFAULT_V2, DEFAULT_V4], ids=["v2", "v4"])
def test_every_value_survives_an_upgrade_in_a_field_or_a_body(db, text):
    project = ProjectFactory(slug="full", template="default")
    _fill_everything(project)
    before = {
        (p.category, name): value
        for p in project.pages.categories() for name, value in p.fields.items()
    }  # fmt: skip
    assert len(before) == sum(len(c.fields) for c in project.spec.categories)
    plan = upgrade_project(project, load(text), actor=CLI)
    pages = list(Project.objects.get(pk=project.pk).pages.categories())
    kept = [value for page in pages for value in page.fields.values()]
    for (category, name), value in before.items():
        in_a_body = any(as_text(value, "table" if isinstance(value, list) else "markdown")
                        in page.body for page in pages)  # fmt: skip
        assert value in kept or in_a_body, f"{category}.{name} was lost"
    if text == DEFAULT_V4:
        governance = next(p for p in pages if p.category == "governance")
        assert governance.fields["stakeholders"] == before[("overview", "stakeholders")]
        history = governance.history.get()
        assert history.fields == governance.fields  # its one revision has the value
        by_name = {c.name: c for c in plan.categories}
        assert [m.to_name for m in by_name["governance"].moved_in] == ["stakeholders"]
        assert [f.name for f in by_name["governance"].added] == ["committee"]


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite locks the whole file: two writers cannot hold row locks in opposite orders",
)
@pytest.mark.django_db(transaction=True)
def test_an_upgrade_racing_a_page_edit_does_not_deadlock():
    """The edit holds its page's row (as edit_page does first) when the upgrade starts;
    then it appends to the chain. Had the upgrade taken the chain head before the pages'
    rows, each would wait for the other, and PostgreSQL would fail one of them."""
    from django.db import transaction

    project = ProjectFactory(slug="raced", template="default")
    v2 = load()
    page = project.pages.get(category="overview")
    # Each step waits for the one before it (a condition, never a time; the long
    # timeouts only end a broken run): the upgrade's connection is known, the edit
    # holds the page, the upgrade waits for it, the edit goes on.
    upgrader, page_locked, results = {}, threading.Event(), {}
    ready = threading.Event()

    def edit():
        try:
            assert ready.wait(60), "the upgrade's connection never opened"
            with transaction.atomic():
                Page.objects.select_for_update().get(pk=page.pk)
                page_locked.set()
                _wait_until_blocked(upgrader["pid"])
                edit_page(page, actor=CLI, base_revision=None, change_reason="Raced",
                          body="Edited while upgrading.")  # fmt: skip
            results["edit"] = "ok"
        except Exception as error:  # reported by the assertion below
            results["edit"] = error
        finally:
            connections.close_all()

    def upgrade():
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                upgrader["pid"] = cursor.fetchone()[0]
            ready.set()
            assert page_locked.wait(60), "the edit never locked its page"
            results["upgrade"] = upgrade_project(project, v2, actor=CLI).applied
        except Exception as error:  # reported by the assertion below
            results["upgrade"] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=f, daemon=True) for f in (edit, upgrade)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert results == {"edit": "ok", "upgrade": True}
    page.refresh_from_db()
    assert page.body == "Edited while upgrading." and page.project.template == v2
    assert audit.verify(audit.head_for(project)).ok


def _wait_until_blocked(pid, seconds=60):
    """Until the connection of backend ``pid`` (the upgrade) waits for a lock."""
    deadline = time.monotonic() + seconds
    with connections["default"].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
            if cursor.fetchone()[0] == "Lock":
                return
            time.sleep(0.05)
    raise AssertionError("the upgrade never waited for the edit's lock")


def test_an_old_revision_with_a_field_the_template_no_longer_has_still_displays(
    documented, client_logged_in, user
):
    Membership.objects.create(project=documented, user=user, role=Membership.Role.VIEWER)
    data = documented.pages.get(category="data")
    old_revision = data.revision
    upgrade_project(documented, load(), actor=CLI)
    url = reverse("frontend:revision", args=["credit", "data", old_revision])
    response = client_logged_in.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert "personal_data_licensing" in page and "GDPR art. 6(1)(b)." in page
    assert "(not in the current template)" in page
    compare = client_logged_in.get(
        reverse("frontend:page-compare", args=["credit", "data"]),
        {"from": old_revision, "to": old_revision + 1},
    )
    assert compare.status_code == 200 and "personal_data_licensing" in compare.content.decode()
    report = reports.build(
        Project.objects.get(pk=documented.pk),
        report_id="t",
        generated_at=timezone.now(),
        include_diffs=True,
        with_history=False,
    )
    diffs = [c["diff"] for c in report["change_log"] if c.get("diff")]
    assert any(d["field"] == "personal_data_licensing" for diff in diffs for d in diff)


# The packs' mappings -----------------------------------------------------------------


def _approve_all(project, approver):
    for page in project.pages.categories():
        approve_page(page, actor=Actor(approver, Source.WEB), revision=page.revision)


def _fill_everything(project):
    for category in project.spec.categories:
        values = {}
        for f in category.fields:
            if f.kind == "table":
                values[f.name] = [{"key": "entry", "value": f"{f.label} documented"}]
            elif f.choices:
                values[f.name] = f.choices[-1]
            else:
                values[f.name] = f"{f.label}: documented in full."
        fill(project, category.name, **values)


def test_a_project_on_the_eu_pack_covers_every_annex_iv_item_from_its_own_fields(admin_user):
    project = ProjectFactory(slug="hr-screening", template="eu-ai-act-high-risk")
    assert project.pages.filter(category="compliance").exists()
    _fill_everything(project)
    make_training_run(project, metrics={"auc": 0.9})
    make_deployment(project, checks=[{"name": "smoke", "passed": True}])
    _approve_all(project, admin_user)
    report = reports.build(project, report_id="t", generated_at=timezone.now(), with_history=False)
    assert report["template"] == {"slug": "eu-ai-act-high-risk", "version": 1,
                                  "label": "EU AI Act high-risk"}  # fmt: skip
    states = {i["item"]: i["state"] for i in report["annex_iv"]}
    assert states == dict.fromkeys(range(1, 10), "covered"), report["annex_iv"]
    for number in (3, 5, 7, 8, 9):
        item = next(i for i in report["annex_iv"] if i["item"] == number)
        assert not any(d["source"].startswith("page:") for d in item["documented_by"])
    assert "sr_11_7" not in report
    three = next(i for i in report["annex_iv"] if i["item"] == 3)
    assert "deployment.human_oversight" in [d["source"] for d in three["documented_by"]]


def test_the_default_pack_maps_annex_iv_as_before_templates(db):
    spec = pack_spec("default")
    assert spec.sources("annex_iv.7") == ["page:standards"]
    assert spec.sources("annex_iv.1") == [
        "overview.purpose", "overview.owners", "overview.status", "deployment.environment",
        "records:model_versions",
    ]  # fmt: skip
    assert set(spec.sources("annex_iv.2")) == {
        "model.architecture", "model.training_algorithm", "model.hyperparameters",
        "data.sources", "data.preprocessing", "data.feature_engineering", "data.split",
        "data.dataset_versions", "workflow.workflow", "records:training_runs",
    }  # fmt: skip


def test_a_project_on_the_sr_11_7_pack_gets_an_sr_11_7_mapping(admin_user):
    project = ProjectFactory(slug="pd-model", template="sr-11-7")
    _fill_everything(project)
    _approve_all(project, admin_user)
    report = reports.build(project, report_id="t", generated_at=timezone.now(), with_history=False)
    states = {i["item"]: i["state"] for i in report["sr_11_7"]}
    assert states == dict.fromkeys(
        ["purpose_use", "development", "limitations", "conceptual_soundness",
         "ongoing_monitoring", "outcomes_analysis", "validator_conclusion"], "covered"
    )  # fmt: skip
    validation = project.pages.get(category="validation")
    assert validation.spec.get_field("validator_conclusion").required
    markdown = content(export(project, "markdown")).decode()
    assert "## Appendix: SR 11-7 model risk management" in markdown
    assert "| outcomes_analysis | Outcomes analysis (back-testing) | Covered |" in markdown
    html = content(export(project, "html")).decode()
    assert 'id="sr-11-7"' in html
    plain = ProjectFactory(slug="plain")
    assert "SR 11-7" not in content(export(plain, "markdown")).decode()


# Browser and API ---------------------------------------------------------------------


def test_a_maintainer_previews_then_confirms_a_template_change_in_the_browser(
    client_logged_in, project
):
    settings_page = client_logged_in.get(reverse("frontend:project-settings", args=["churn"]))
    assert "default</code> version 1" in settings_page.content.decode()
    v2 = load()
    url = reverse("frontend:project-template", args=["churn"])
    preview = client_logged_in.get(url, {"template": v2.pk})
    text = preview.content.decode()
    assert preview.status_code == 200
    assert "New field: Intended users (required" in text and "Risk" in text
    assert Project.objects.get(pk=project.pk).template.version == 1  # a GET changes nothing
    digest = preview.context["plan"].digest
    assert f'name="plan_digest" value="{digest}"' in text
    done = client_logged_in.post(
        url, {"template": v2.pk, "change_reason": "", "plan_digest": digest}
    )
    assert done.status_code == 302
    project = Project.objects.get(pk=project.pk)
    assert project.template == v2
    row = project.history.first()
    assert (row.history_source, row.history_user_id) == ("web", project.memberships.get().user_id)


def test_a_move_confirmed_after_the_pages_changed_is_shown_again_not_made(
    client_logged_in, project
):
    v2 = load()
    url = reverse("frontend:project-template", args=["churn"])
    previewed = client_logged_in.get(url, {"template": v2.pk}).context["plan"]
    assert not previewed.categories[2].moved_in  # model: no limitations to move yet
    fill(project, "model", limitations="Weak on thin files.")  # after the preview
    form = {"template": v2.pk, "change_reason": "", "plan_digest": previewed.digest}
    shown = client_logged_in.post(url, form)
    assert shown.status_code == 200
    text = shown.content.decode()
    assert "changed since this move was previewed" in text
    assert "moves to <code>model.known_limitations</code>" in text  # the new plan
    assert Project.objects.get(pk=project.pk).template.version == 1
    without = client_logged_in.post(url, {"template": v2.pk, "change_reason": ""})
    assert without.status_code == 200 and "changed since" in without.content.decode()
    again = shown.context["plan"].digest
    done = client_logged_in.post(url, form | {"plan_digest": again})
    assert done.status_code == 302
    model = Project.objects.get(pk=project.pk).pages.get(category="model")
    assert model.fields["known_limitations"] == "Weak on thin files."


def test_a_template_category_may_not_take_a_route_of_the_project():
    for name in ("settings", "exports", "model-versions", "findings"):
        text = read_pack("default").replace("- name: maintenance", f"- name: {name}", 1)
        with pytest.raises(TemplateError, match=rf"categories\[5\]\.name: '{name}' is a page"):
            parse(text)
    parse(read_pack("default"))  # the default categories are reserved, and allowed


def test_an_editor_cannot_change_the_template(client_logged_in, user):
    other = ProjectFactory(slug="other")
    Membership.objects.create(project=other, user=user, role=Membership.Role.EDITOR)
    url = reverse("frontend:project-template", args=["other"])
    assert client_logged_in.get(url).status_code == 403
    v2 = load()
    assert client_logged_in.post(url, {"template": v2.pk}).status_code == 403


def test_the_api_creates_a_project_on_a_template_and_upgrades_it(api, user):
    _, key = make_token(user, scopes=["admin", "read"])
    client = api(key)
    created = client.post("/api/v1/projects/", {"slug": "hr", "name": "HR",
                          "owner_team": "People", "template": "eu-ai-act-high-risk"},
                          format="json")  # fmt: skip
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["template_slug"], body["template_version"]) == ("eu-ai-act-high-risk", 1)
    unknown = client.post("/api/v1/projects/", {"slug": "x", "name": "X", "owner_team": "T",
                          "template": "nope"}, format="json")  # fmt: skip
    assert unknown.status_code == 400 and "template" in unknown.json()["errors"]

    ProjectFactory(slug="api-upgrade", actor=Actor(user, Source.API))
    load()
    url = "/api/v1/projects/api-upgrade/template/"
    dry = client.post(url, {"template": "default", "dry_run": True}, format="json")
    assert dry.status_code == 200, dry.json()
    plan = dry.json()
    assert (plan["template_from"], plan["template_to"], plan["applied"]) == (
        "default v1", "default v2", False,
    )  # fmt: skip
    model = next(c for c in plan["categories"] if c["category"] == "model")
    assert model["added_fields"] == ["intended_users", "known_limitations"]  # nothing to move
    assert Project.objects.get(slug="api-upgrade").template.version == 1
    page = Project.objects.get(slug="api-upgrade").pages.get(category="model")
    edit_page(page, actor=CLI, base_revision=None, change_reason="After the dry run",
              fields={"limitations": "Weak on thin files."})  # fmt: skip
    stale = client.post(url, {"template": "default", "version": 2,
                              "plan_digest": plan["plan_digest"]}, format="json")  # fmt: skip
    assert stale.status_code == 409, stale.json()
    assert "changed since this move was previewed" in stale.json()["detail"]
    assert Project.objects.get(slug="api-upgrade").template.version == 1
    digest = stale.json()["plan_digest"]
    done = client.post(url, {"template": "default", "version": 2, "plan_digest": digest},
                       format="json")  # fmt: skip
    assert done.status_code == 200 and done.json()["applied"] is True
    # The plan answered is the one carried out: the limitations moved.
    model = next(c for c in done.json()["categories"] if c["category"] == "model")
    assert [(m["field"], m["to_field"]) for m in model["moved_in"]] == [
        ("limitations", "known_limitations")
    ]
    assert done.json()["plan_digest"] == stale.json()["plan_digest"]
    assert Project.objects.get(slug="api-upgrade").template.version == 2
    patched = client.patch("/api/v1/projects/api-upgrade/", {"template": "sr-11-7"},
                           format="json", HTTP_IF_MATCH='"2"')  # fmt: skip
    assert patched.status_code == 400 and "template" in patched.json()["errors"]
    refused = client.post(url, {"template": "eu-ai-act-high-risk"}, format="json")
    assert refused.status_code == 400  # v2 has a "risk" category the EU pack lacks
    assert "risk" in json.dumps(refused.json())


def test_staleness_follows_the_template(db):
    text = (
        DEFAULT_V2.replace("version: 2", "version: 3", 1)
        .replace("  stale_on: [new_model_versions, new_training_runs]\n", "")
        .replace("- name: risk\n  label: Risk\n", "- name: risk\n  label: Risk\n"
                 "  stale_on: [new_training_runs]\n")
    )  # fmt: skip
    project = ProjectFactory(slug="stale", template="default")
    v3 = load(text)
    upgrade_project(project, v3, actor=CLI)
    project = Project.objects.get(pk=project.pk)
    make_training_run(project)
    pages = with_staleness(project.pages.categories(), [project.spec])
    assert {p.category for p in pages if is_stale(p)} == {"risk"}
    (row,) = dashboard(Project.objects.filter(pk=project.pk))
    assert row.stale == ["Risk"]
    with pytest.raises(TemplateError, match=r"categories\[0\].stale_on\[0\]: must be one of"):
        parse(read_pack("default").replace("  fields:", "  stale_on: [coffee]\n  fields:", 1))


def test_the_new_project_form_offers_the_templates(client_logged_in):
    form = client_logged_in.get(reverse("frontend:project-create")).content.decode()
    assert "SR 11-7 model risk (sr-11-7 v1)" in form
    response = client_logged_in.post(
        reverse("frontend:project-create"),
        {"name": "PD model", "slug": "pd", "owner_team": "Credit risk", "template": "sr-11-7"},
    )
    assert response.status_code == 302
    project = Project.objects.get(slug="pd")
    assert project.template.slug == "sr-11-7"
    assert project.pages.filter(category="validation").exists()
    refused = client_logged_in.post(
        reverse("frontend:project-create"),
        {"name": "X", "slug": "x", "owner_team": "T", "template": "made-up"},
    )
    assert refused.status_code == 200 and not Project.objects.filter(slug="x").exists()


def test_load_template_command_says_when_it_cannot_read_the_file(db, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("load_template", str(tmp_path / "missing.yaml"))
