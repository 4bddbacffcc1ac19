"""What an audit report claims, and how it reads: the Annex IV mapping counts only real,
approved text; evidence names and links its page, field and revision; the report has an
id and a version; times and Markdown read as people write them; PDF headings stay with
their content; and verify_bundle.py --expect-head catches a forger without the key."""

import copy
import hashlib
import io
import json
import re
from datetime import UTC
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.utils import timezone
from pypdf import PdfReader

from deploy.audit.verify_bundle import verify as verify_bundle
from tests import test_exports
from tests.factories import ProjectFactory, make_token, make_training_run
from tests.test_exports import KEY, SECTIONS, content, export, needs_pango, pdf_text, run_verifier
from wiki import reports
from wiki.history import Actor, Source
from wiki.services.pages import approve_page, edit_page

demo = test_exports.demo  # the demo projects, shared with the export tests
SITE = "https://wiki.example.com"
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


@pytest.fixture
def site(settings):
    settings.SITE_URL = SITE + "/"


def page(project, category):
    return project.pages.get(category=category)


def edit(project, category, user, **fields):
    current = page(project, category)
    return edit_page(
        current, actor=Actor(user, Source.WEB), base_revision=current.revision,
        change_reason="Edited in a test", fields=fields, merge_fields=True,
    )  # fmt: skip


def approve(project, category, user):
    current = page(project, category)
    return approve_page(current, actor=Actor(user, Source.WEB), revision=current.revision)


def build(project):
    return reports.build(project, report_id="test", generated_at=timezone.now(), with_history=False)


def annex(project):
    return {item["item"]: item for item in build(project)["annex_iv"]}


def revision_url(category, revision):
    return f"{SITE}/projects/churn-prediction/{category}/revisions/{revision}/"


class Links(HTMLParser):
    """Every link of an HTML document as (href, text)."""

    def __init__(self, html):
        super().__init__()
        self.links, self._open = [], None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._open = [dict(attrs).get("href"), ""]

    def handle_data(self, data):
        if self._open:
            self._open[1] += data

    def handle_endtag(self, tag):
        if tag == "a" and self._open:
            self.links.append(tuple(self._open))
            self._open = None


def section(html, anchor):
    """The HTML of the report's section ``anchor``, up to the next section (headings in
    pages' Markdown have ids that start with "h-")."""
    return re.split(r'<h2 id="(?!h-)', html.split(f'<h2 id="{anchor}">', 1)[1], maxsplit=1)[0]


# Annex IV: covered means real text on an approved revision ----------------------------


def test_a_placeholder_or_an_unapproved_revision_leaves_an_annex_item_partial(demo):
    churn, erik, maria = demo["churn"], demo["users"]["erik"], demo["users"]["maria"]
    edit(churn, "model", erik, limitations="TBD")
    for category in ("model", "data", "deployment"):
        approve(churn, category, maria)
    items = annex(churn)
    # Item 3's fields are all on approved revisions, but one is only a placeholder.
    assert items[3]["state"] == "partial"
    assert items[3]["reasons"] == ["Model: Limitations is only a placeholder ('TBD')"]
    limitations = next(d for d in items[3]["documented_by"] if d["source"] == "model.limitations")
    assert (limitations["status"], limitations["filled"]) == ("placeholder", False)
    assert items[4]["state"] == "covered"  # metrics described (approved) and recorded
    assert items[4]["reasons"] == []

    model = edit(churn, "model", erik, evaluation_metrics="AUC on the test set; at least 0.82.")
    items = annex(churn)
    assert items[4]["state"] == "partial"
    assert items[4]["reasons"] == [
        f"the Model page's revision {model.revision} is not approved "
        f"(approved: revision {model.revision - 1})"
    ]
    # Fields with real text on a never-approved page still evidence the item, partly.
    assert items[9]["state"] == "partial"
    assert (
        "the Workflow page's revision 2 is not approved (it was never approved)"
        in (items[9]["reasons"])
    )
    assert items[8]["state"] == "missing"
    assert items[8]["reasons"] == ["there is no 'declaration-of-conformity' page"]


def test_an_item_whose_fields_are_all_placeholders_is_missing(db):
    project = ProjectFactory()
    edit(project, "model", None, evaluation_metrics="n/a")
    item = annex(project)[4]
    assert item["state"] == "missing"
    assert item["reasons"] == [
        "Model: Evaluation metrics is only a placeholder ('n/a')",
        "Training-run metrics (pipeline records): nothing recorded",
    ]
    make_training_run(project, metrics={"auc": 0.8})
    assert annex(project)[4]["state"] == "partial"  # the records evidence it, the text not


def test_a_placeholder_counts_as_missing_in_the_documentation(demo):
    churn, erik = demo["churn"], demo["users"]["erik"]
    edit(churn, "model", erik, architecture="**TODO**")
    model = next(p for p in build(churn)["documentation"] if p["category"] == "model")
    assert model["completeness"]["filled"] == model["completeness"]["required"] - 1
    assert [m["name"] for m in model["completeness"]["missing"]] == ["architecture"]
    architecture = next(f for f in model["fields"] if f["name"] == "architecture")
    assert architecture["placeholder"] and architecture["missing"]
    markdown = content(export(churn, "markdown")).decode()
    assert "*Only a placeholder, counted as missing:* **TODO**" in markdown
    html = content(export(churn, "html")).decode()
    assert '<span class="missing">Only a placeholder, counted as missing:</span> **TODO**' in html


# Evidence pointers, report id and version --------------------------------------------


def test_evidence_names_the_page_field_and_revision_and_links_to_it(demo, site):
    churn = demo["churn"]
    revision = page(churn, "model").revision
    bundle = json.loads(content(export(churn, "json")))
    item = next(i for i in bundle["annex_iv"] if i["item"] == 4)
    metrics = item["documented_by"][0]
    assert {k: metrics[k] for k in ("page", "page_title", "field", "field_label", "revision")} == {
        "page": "model", "page_title": "Model", "field": "evaluation_metrics",
        "field_label": "Evaluation metrics", "revision": revision,
    }  # fmt: skip
    assert metrics["url"] == revision_url("model", revision)
    records = item["documented_by"][1]
    assert (records["source"], records["url"], records["status"]) == (
        "records:metrics", None, "documented",
    )  # fmt: skip

    markdown = content(export(churn, "markdown")).decode()
    name = f"Model: Evaluation metrics (Model, revision {revision})"
    assert f"- [{name}]({revision_url('model', revision)}): not approved" in markdown

    html = content(export(churn, "html")).decode()
    links = Links(section(html, "annex-iv")).links
    assert (revision_url("model", revision), f"Model, revision {revision}") in links
    # The field's name leads to its text in the report itself.
    assert ("#field-model-evaluation_metrics", "Model: Evaluation metrics") in links
    assert '<h4 id="field-model-evaluation_metrics">' in html
    documentation = Links(section(html, "documentation")).links
    assert (revision_url("model", revision), f"Revision {revision}") in documentation


def test_the_report_id_and_version_are_in_every_format_and_sealed(demo):
    churn = demo["churn"]
    version = f"format {reports.REPORT_FORMAT_VERSION}, mlwiki {settings.APP_VERSION}"
    job = export(churn, "json")
    bundle = json.loads(content(job))
    control = bundle["document_control"]
    assert control["report_id"] == f"churn-prediction-audit-report-{job.pk}"
    assert job.filename == control["report_id"] + ".json"
    assert control["report_version"] == {
        "format": reports.REPORT_FORMAT_VERSION, "application": settings.APP_VERSION,
    }  # fmt: skip
    assert bundle["report"] == f"mlwiki-audit-report/{reports.REPORT_FORMAT_VERSION}"
    renamed = copy.deepcopy(bundle)
    renamed["document_control"]["report_id"] = "another-report"
    assert "changed after it was generated" in verify_bundle(renamed)

    job = export(churn, "markdown")
    markdown = content(job).decode()
    assert f"| Report id | churn-prediction-audit-report-{job.pk} |" in markdown
    assert f"| Report version | {version} |" in markdown
    job = export(churn, "html")
    html = content(job).decode()
    assert f"<th>Report id</th><td>churn-prediction-audit-report-{job.pk}</td>" in html
    assert f"<th>Report version</th><td>{version}</td>" in html


# How it reads: times, Markdown ---------------------------------------------------------


def test_times_read_as_people_write_them_while_the_bundle_keeps_iso(demo):
    churn = demo["churn"]
    for format in ("html", "markdown"):
        job = export(churn, format)
        text = content(job).decode()
        assert not ISO_TIME.search(text), (format, ISO_TIME.search(text))
        generated = job.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        assert f"Generated at</th><td>{generated}" in text or f"Generated at | {generated}" in text
        assert "2024-07-08 03:20 UTC" in text  # in production since (the demo's 1.2.0)
    bundle = json.loads(content(export(churn, "json")))
    assert ISO_TIME.match(bundle["document_control"]["generated_at"])
    assert bundle["inventory"]["in_production_since"] == "2024-07-08T03:20:00+00:00"


def test_markdown_in_fields_is_rendered_not_shown_raw(demo, site):
    html = content(export(demo["churn"], "html")).decode()
    inventory = section(html, "inventory")
    # The purpose and the known limitations are Markdown, like every Markdown field.
    assert "<strong>who is contacted first</strong>" in inventory
    assert "**" not in inventory and "[[runbook-retraining]]" not in html
    runbook = f"{SITE}/projects/churn-prediction/runbook-retraining/"
    assert (runbook, "Runbook: retraining") in Links(inventory).links
    # Wiki links in the documentation point at the wiki too, not at the reader's disk.
    assert (runbook, "Runbook: retraining") in Links(section(html, "documentation")).links


# The PDF ---------------------------------------------------------------------------------


@needs_pango
def test_the_pdf_links_its_evidence_and_reads_as_people_write(demo, site):
    churn = demo["churn"]
    revision = page(churn, "model").revision
    job = export(churn, "pdf")
    reader = PdfReader(io.BytesIO(content(job)))
    uris = {
        annotation.get_object()["/A"].get("/URI")
        for sheet in reader.pages
        for annotation in sheet.get("/Annots", [])
        if "/A" in annotation.get_object()
    }
    assert revision_url("model", revision) in uris
    text = "\n".join(sheet.extract_text() for sheet in reader.pages)
    assert f"Report id churn-prediction-audit-report-{job.pk}" in text
    assert f"format {reports.REPORT_FORMAT_VERSION}, mlwiki {settings.APP_VERSION}" in text
    generated = job.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    assert f"Generated at {generated}" in text
    assert not ISO_TIME.search(text.replace("\n", ""))
    assert "**" not in text and "[[" not in text


@needs_pango
def test_no_pdf_page_ends_with_a_heading(demo):
    churn = demo["churn"]
    report = build(churn)
    headings = {"Notes", "Approval state of every page", *SECTIONS}
    headings |= {f["label"] for p in report["documentation"] for f in p["fields"]}
    running = re.compile(r"^(Audit report \S+ Generated .* UTC|Page \d+ of \d+)$")
    pages = [
        [line.strip() for line in text.splitlines() if line.strip() and not running.match(line)]
        for text in pdf_text(export(churn, "pdf"))
    ]
    for number, lines in enumerate(pages, start=1):
        assert lines[-1] not in headings, f"page {number} ends with the heading '{lines[-1]}'"
    # A heading inside a page's own Markdown (the overview's "## Contacts") neither starts a
    # page of its own nor parts the "Notes" heading from it.
    where = next(lines for lines in pages if "Contacts" in lines)
    assert where[where.index("Contacts") - 1] == "Notes"


# verify_bundle.py --expect-head ------------------------------------------------------


def _canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def forge(bundle, seq, change):
    """What a forger without the key does: rewrite the history row of entry ``seq``, then
    recompute every digest, the head and the integrity digest, so the bundle is consistent."""
    forged = copy.deepcopy(bundle)
    change(forged["history"][seq - 1]["row"])
    previous = "0" * 64
    for entry in forged["history"]:
        entry["digest"] = hashlib.sha256(previous.encode() + _canonical(entry["row"])).hexdigest()
        previous = entry["digest"]
    forged["document_control"]["audit_chain"]["head"] = previous
    body = {k: v for k, v in forged.items() if k != "integrity"}
    forged["integrity"]["digest"] = hashlib.sha256(_canonical(body)).hexdigest()
    return forged


@pytest.fixture
def noted(demo, api):
    """The head an auditor noted from the API, then the bundle exported after more edits."""
    churn, audrey = demo["churn"], demo["users"]["audrey"]
    _, key = make_token(audrey)
    head = api(key).get("/api/v1/projects/churn-prediction/audit/verify/").json()["head"]
    edit(churn, "model", demo["users"]["erik"], limitations="Weak on new customers.")
    bundle = json.loads(content(export(churn, "json", audrey)))
    return head, bundle


def _rewrite_body(row):
    row["body"] = "Rewritten after the fact."


def test_a_forger_who_recomputed_every_digest_is_caught_only_with_the_head_or_the_key(noted):
    head, bundle = noted
    assert head != bundle["document_control"]["audit_chain"]["head"]  # the chain grew since
    digests = [e["digest"] for e in bundle["history"]]
    assert head in digests
    assert verify_bundle(bundle, expect_head=head) is None
    # An old revision of a page (its latest is unchanged, so the report still agrees).
    first_page_row = next(e for e in bundle["history"] if e["table"] == "wiki.HistoricalPage")
    forged = forge(bundle, first_page_row["seq"], _rewrite_body)
    # Without the key or a noted head, a consistent forgery passes: that is the limit.
    assert verify_bundle(forged) is None
    assert "does not pass through the head you expected" in verify_bundle(forged, expect_head=head)
    assert "seal does not match" in verify_bundle(forged, KEY)


def test_a_rewrite_after_the_noted_head_is_not_caught_by_it(noted):
    head, bundle = noted
    since = digests_after(bundle, head)
    row = next(e for e in bundle["history"] if e["digest"] in since)
    forged = forge(bundle, row["seq"], lambda r: r.update(history_username="mallory"))
    forged["change_log"] = [
        dict(c, user="mallory") if c["seq"] == row["seq"] else c for c in forged["change_log"]
    ]
    body = {k: v for k, v in forged.items() if k != "integrity"}
    forged["integrity"]["digest"] = hashlib.sha256(_canonical(body)).hexdigest()
    # What was written after the auditor noted the head is not pinned by it; the seals are.
    assert verify_bundle(forged, expect_head=head) is None
    assert "seal does not match" in verify_bundle(forged, KEY)


def digests_after(bundle, head):
    digests = [e["digest"] for e in bundle["history"]]
    return set(digests[digests.index(head) + 1 :])


def test_the_command_line_checks_the_expected_head(noted, tmp_path):
    head, bundle = noted
    result = run_verifier(tmp_path, bundle, "--expect-head", head.upper())
    seq = next(e["seq"] for e in bundle["history"] if e["digest"] == head)
    assert result.returncode == 0, result.stdout
    assert f"passes through the head you expected at entry {seq}" in result.stdout
    first_page_row = next(e for e in bundle["history"] if e["table"] == "wiki.HistoricalPage")
    forged = forge(bundle, first_page_row["seq"], _rewrite_body)
    result = run_verifier(tmp_path, forged)
    assert result.returncode == 0  # consistent: without a head or the key, that is all
    assert "not that history was not rewritten" in result.stdout
    result = run_verifier(tmp_path, forged, "--expect-head", head)
    assert result.returncode == 1
    assert f"NOT INTACT: the chain does not pass through the head you expected ({head})" in (
        result.stdout
    )
    result = run_verifier(tmp_path, bundle, "--expect-head", "not-a-digest")
    assert result.returncode == 2 and "not a SHA-256 digest" in result.stderr
