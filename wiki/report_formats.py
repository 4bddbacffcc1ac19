"""The renderings of an audit report (wiki.reports): a JSON bundle, the same in a ZIP with
the attachment files and metric series it lists, Markdown, a self-contained HTML file,
and PDF (WeasyPrint, from the same HTML).

Each writes to a binary file object and tells ``progress(percent)`` how far it got
(55 when called, up to 95; the caller says 100 once the file is in place).
"""

import hashlib
import json
import re
import shutil
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime

from django.conf import settings
from django.template.defaultfilters import linebreaksbr
from django.template.loader import render_to_string
from django.utils.safestring import SafeData, mark_safe

from wiki import attachments as files
from wiki import validation_report
from wiki.audit import canonical, seal
from wiki.categories import MARKDOWN, TABLE
from wiki.rendering import link_attachments, render_markdown_many
from wiki.reports import current_attachments, series_points
from wiki.storage import answering

STATES = {"covered": "Covered", "partial": "Partial", "missing": "Missing"}


def human(moment):
    """An ISO 8601 time of the report as people read it: 2026-12-05 07:13 UTC (the JSON
    bundle keeps ISO 8601, to the microsecond, as history writes it)."""
    if not moment:
        return ""
    return datetime.fromisoformat(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def page_state(page):
    """Whether a page's current revision, the one the report shows, is approved."""
    if page["approved_revision"] == page["revision"]:
        return "approved"
    if page["approved_revision"] is None:
        return "not approved"
    return f"not approved (approved: revision {page['approved_revision']})"


def write(format, report, handle, progress):
    WRITERS[format](report, handle, progress)
    progress(95)


def write_json(report, handle, progress):
    """The bundle: each section indented, then the history (and the metric series) one
    entry per line, then the integrity block: a SHA-256 of the canonical JSON of
    everything before it (what deploy/audit/verify_bundle.py recomputes) and its seal.

    The history and the series are read from the database while they are written (they
    can be large), so the digest is computed piece by piece, in the canonical order (keys
    sorted); pieces joined are byte for byte wiki.audit.canonical(report)."""
    digest = hashlib.sha256(b"{")
    handle.write(b"{")
    for number, key in enumerate(sorted(report)):
        name = json.dumps(key)
        digest.update(("," if number else "").encode() + name.encode() + b":")
        handle.write(("," if number else "").encode() + b"\n" + name.encode() + b": ")
        if isinstance(report[key], Iterator):
            handle.write(b"[")
            digest.update(b"[")
            for index, entry in enumerate(report[key]):
                piece = canonical(entry)
                digest.update(b"," + piece if index else piece)
                handle.write((b",\n" if index else b"\n") + piece)
            handle.write(b"\n]")
            digest.update(b"]")
        else:
            digest.update(canonical(report[key]))
            handle.write(json.dumps(report[key], ensure_ascii=False, indent=1).encode())
    digest.update(b"}")
    integrity = {
        "algorithm": "sha256+hmac-sha256",
        "digest": digest.hexdigest(),
        "seal": seal(digest.hexdigest()),
    }
    handle.write(b',\n"integrity": ' + json.dumps(integrity, indent=1).encode() + b"\n}\n")


BUNDLE_NAME = "bundle.json"


def write_zip(report, handle, progress):
    """The JSON bundle as ``bundle.json``, with each file it lists at
    ``attachments/<sha256>`` and each series chunk's points (the stored JSON text) at
    ``series/<sha256>.json``, so verify_bundle.py can hash every one offline. Files are
    copied in chunks, whatever their size. A file missing from the storage fails the
    export naming it (verify_audit reports it too)."""
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open(BUNDLE_NAME, "w", force_zip64=True) as entry:
            write_json(report, entry, progress)
        for sha256 in sorted({version["sha256"] for version in report["attachments"]}):
            try:
                stored = files.open_stored(sha256)
            except FileNotFoundError:
                raise ValueError(
                    f"the attachment file {sha256} is missing from the storage"
                ) from None
            name = f"attachments/{sha256}"
            with stored, archive.open(name, "w", force_zip64=True) as entry, answering():
                shutil.copyfileobj(stored, entry, files.CHUNK)
        for sha256, points in series_points(report["document_control"]["project"]["id"]):
            archive.writestr(f"series/{sha256}.json", points)


# Markdown ----------------------------------------------------------------------------


def _cell(value):
    """Text for a Markdown table cell: one line, pipes escaped."""
    if value is None:
        return ""
    if isinstance(value, dict):
        value = ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def _table(header, rows):
    yield "| " + " | ".join(header) + " |"
    yield "|" + "---|" * len(header)
    for row in rows:
        yield "| " + " | ".join(_cell(v) for v in row) + " |"
    yield ""


def _text(field):
    value = field["value"]
    if field["kind"] == TABLE:
        return "; ".join(f"{row['key']}: {row['value']}" for row in value)
    return value


def _value_lines(field):
    value = field["value"]
    if field["kind"] == TABLE:
        return [f"- {row['key']}: {row['value']}" for row in value or []]
    if field["kind"] == MARKDOWN:
        return (value or "").splitlines()
    return [value or ""]


def markdown_lines(report):
    dc, inv = report["document_control"], report["inventory"]
    yield f"# {title(report)}"
    yield ""
    yield "## Document control"
    yield ""
    yield from _table(["Fact", "Value"], control_facts(report))
    yield "### Approval state of every page"
    yield ""
    yield from _table(
        ["Page", "Revision", "State", "Approved revision", "Approved by", "Approved at"],
        [
            [a["title"], a["revision"], approval_state(a), a["approved_revision"],
             a["approved_by"], human(a["approved_at"])]
            for a in dc["approvals"]
        ],
    )  # fmt: skip
    yield "## Model inventory"
    yield ""
    yield from _table(["Fact", "Value"], inventory_facts(inv))
    yield "## Documentation"
    yield ""
    for page in report["documentation"]:
        yield f"### {page['label']}: {page['title']} (revision {page['revision']})"
        yield ""
        yield f"Revision {page['revision']}, {page_state(page)}: <{page['url']}>"
        yield ""
        completeness = page.get("completeness")
        if completeness:
            filled, required = completeness["filled"], completeness["required"]
            yield f"Completeness: {filled} of {required} required fields."
            for missing in completeness["missing"]:
                yield f"- **Missing: {missing['label']}.** {missing['help']}"
            yield ""
        for field in page["fields"]:
            yield f"#### {field['label']}"
            yield ""
            if field["placeholder"]:
                yield f"*Only a placeholder, counted as missing:* {_cell(_text(field))}"
            else:
                yield from (_value_lines(field) if not field["missing"] else ["*Missing.*"])
            yield ""
        if page["body"]:
            yield "#### Notes"
            yield ""
            yield from page["body"].splitlines()
            yield ""
    yield "## Model versions and lineage"
    yield ""
    yield from _table(
        ["Model version", "Created", "Datasets", "Training runs", "Deployments"],
        [lineage_row(v) for v in report["model_versions"]],
    )
    yield f"## Training runs ({len(report['training_runs'])})"
    yield ""
    yield from _table(RUN_HEADER, [run_row(r) for r in report["training_runs"]])
    yield f"## Deployments ({len(report['deployments'])})"
    yield ""
    yield from _table(DEPLOYMENT_HEADER, [deployment_row(d) for d in report["deployments"]])
    attached = attachment_rows(report)
    yield f"## Attachments ({len(attached)})"
    yield ""
    yield ATTACHMENTS_RULE
    yield ""
    yield from _table(ATTACHMENT_HEADER, attached)
    yield f"## Change log ({len(report['change_log'])})"
    yield ""
    yield from _table(CHANGE_HEADER, [change_row(c) for c in report["change_log"]])
    diffs = [c for c in report["change_log"] if c.get("diff")]
    for change in diffs:
        yield f"### Change {change['seq']}: {change['object']}"
        yield ""
        for part in change["diff"]:
            yield f"{part['label']}:"
            yield ""
            yield "```diff"
            for line in part["lines"]:
                if line["op"] == "equal":
                    yield f"  {line['old']}"
                    continue
                if line["old"] is not None:
                    yield f"- {line['old']}"
                if line["new"] is not None:
                    yield f"+ {line['new']}"
            yield "```"
            yield ""
    if "validation" in report:  # reports made before validations had none
        yield from validation_report.markdown_lines(report["validation"], _table, human)
    yield "## Appendix: EU AI Act Annex IV"
    yield ""
    yield ANNEX_RULE
    yield ""
    yield from _mapping_lines(report["annex_iv"])
    if report.get("sr_11_7"):
        yield "## Appendix: SR 11-7 model risk management"
        yield ""
        yield SR_RULE
        yield ""
        yield from _mapping_lines(report["sr_11_7"])


def _mapping_lines(items):
    """A regulation's items as Markdown: a table of their states, then each one's evidence."""
    yield from _table(
        ["Item", "Requirement", "State", "Why not covered"],
        [[i["item"], i["title"], STATES[i["state"]], "; ".join(i["reasons"])] for i in items],
    )
    for item in items:
        yield f"### Item {item['item']}: evidence"
        yield ""
        for d in item["documented_by"]:
            where = f"[{evidence_name(d)}]({d['url']})" if d["url"] else evidence_name(d)
            yield f"- {where}: {d['status']}"
        yield ""


def write_markdown(report, handle, progress):
    for number, line in enumerate(markdown_lines(report)):
        handle.write(line.encode() + b"\n")
        if number % 5000 == 0:
            progress(min(90, 60 + number // 1000))


# Facts shared by the templates and Markdown ------------------------------------------


# What the SR 11-7 appendix (templates whose fields evidence SR 11-7 items) says of itself.
SR_RULE = (
    "The elements of model risk management SR 11-7 asks to be documented, each with the "
    "fields of this project's template that evidence it; covered, as for Annex IV, only "
    "by real text on approved revisions."
)
ANNEX_RULE = (
    "An item is covered when every field that documents it holds real text (a placeholder "
    "such as TBD, TODO or n/a counts as missing) on a page whose current revision is "
    "approved, and every kind of record it names was recorded; partial when only some of "
    "that holds; missing when nothing documents it."
)


def evidence_name(d):
    """An evidence pointer in words: page, field and revision."""
    if d["revision"] is None:
        return d["label"]
    return f"{d['label']} ({d['page_title']}, revision {d['revision']})"


def approval_state(a):
    if a["approved_revision"] is None:
        return {"draft": "Draft", "in_review": "In review"}.get(a["review_state"], "Draft")
    if a["current_differs"]:
        return f"Approved revision {a['approved_revision']}; current revision differs"
    return "Approved"


def title(report):
    """The report's title: "Audit report: Churn model", and the moment it describes, if
    it is made as of one ("…, as of 2025-06-01 14:30 UTC (deployment 12 of …)")."""
    dc = report["document_control"]
    moment = dc.get("as_of")  # absent from reports made before it existed
    name = f"Audit report: {dc['project']['name']}"
    if not moment:
        return name
    record = f" ({moment['record']})" if moment["record"] else ""
    return f"{name}, as of {human(moment['at'])}{record}"


def control_facts(report):
    dc = report["document_control"]
    chain = dc["audit_chain"]
    period = dc["period"]
    verified = "intact" if chain["verified"] else f"NOT intact: {chain['first_bad']}"
    if chain["verified"] and chain["files_unchecked"]:
        verified += f" ({chain['files_unchecked']})"
    version = dc["report_version"]
    return [
        ("Report id", dc["report_id"]),
        ("Report version", f"format {version['format']}, mlwiki {version['application']}"),
        ("Project", f"{dc['project']['name']} ({dc['project']['slug']})"),
        ("Period", f"{period['since'] or 'the beginning'} to {period['until'] or 'now'}"),
        *_as_of_facts(dc),
        ("Generated at", human(dc["generated_at"])),
        ("Generated by", dc["generated_by"]),
        ("Audit chain head", chain["head"]),
        ("Audit chain entries", chain["entries"]),
        ("Audit chain verification", verified),
        (
            "Required fields filled",
            f"{dc['completeness']['filled']} of {dc['completeness']['required']}",
        ),
        ("Full diffs included", "yes" if dc["options"]["include_diffs"] else "no"),
    ]


def _as_of_facts(dc):
    moment = dc.get("as_of")
    if not moment:
        return []
    record = f" ({moment['record']})" if moment["record"] else ""
    said = "the documentation, records and change log as they stood then"
    return [("As of", f"{human(moment['at'])}{record}: {said}")]


def inventory_facts(inv, rendered=None):
    """The inventory as (label, value) rows; ``rendered``: HTML of its Markdown texts."""
    rendered = rendered or {}
    # Reports made before templates and periodic reviews lack the keys read with get().
    return [
        ("Model id", inv.get("model_id") or inv["name"]),
        ("System", inv["name"]),
        ("Template", inv.get("template") or "default v1"),
        ("Purpose", rendered.get("purpose") or inv["purpose"] or "Missing"),
        ("Owner", " / ".join(x for x in (inv["owner_team"], inv["owners"]) if x)),
        ("Risk level", inv["risk_level"] or "Missing"),
        ("Status", inv["status"] or "Missing"),
        ("Production version", inv["production_version"] or "none in production"),
        ("In production since", human(inv["in_production_since"])),
        ("Validated (model page approved)", _when_by(inv["validated_at"], inv["validated_by"])),
        ("Approved (overview approved)", _when_by(inv["approved_at"], inv["approved_by"])),
        (
            "Known limitations",
            rendered.get("known_limitations") or inv["known_limitations"] or "Missing",
        ),
        *validation_report.inventory_facts(inv, human),
        ("Next periodic review", inv.get("next_review") or "none: no risk tier set"),
    ]


def _when_by(at, by):
    return f"{human(at)} by {by}" if at else "not yet"


def lineage_row(v):
    runs = v["training_runs"]
    shown = ", ".join(f"#{r}" for r in runs[:5]) + (f" … #{runs[-1]}" if len(runs) > 5 else "")
    deployments = ", ".join(
        f"#{d['id']} {d['environment']} {d['status']}" for d in v["deployments"]
    )
    return [
        v["version"], human(v["created_at"]), ", ".join(v["datasets"]),
        f"{len(runs)}: {shown}" if runs else "0", deployments,
    ]  # fmt: skip


def run_row(r):
    dataset = r["dataset"]
    name = "@".join(x for x in (dataset["name"], dataset["version"]) if x)
    return [
        f"#{r['id']}", r["model_version"], r["status"], human(r["started_at"]), name,
        r["hyperparameters"], r["metrics"],
    ]  # fmt: skip


def deployment_row(d):
    checks = ", ".join(
        f"{c.get('name')}: {'passed' if c.get('passed') else 'FAILED'}" for c in d["checks"]
    )
    return [
        f"#{d['id']}", d["model_version"], d["environment"], d["status"], human(d["started_at"]),
        d["reason"], checks,
    ]  # fmt: skip


ATTACHMENT_HEADER = ["Attached to", "Name", "Type", "Size (bytes)", "SHA-256", "Revision"]
ATTACHMENTS_RULE = (
    "The current version of every file attached to a page or a record. Each is stored by "
    "its SHA-256, which its history row holds, so the audit chain seals the bytes; the "
    "JSON bundle lists every version, and the ZIP bundle carries the files."
)


def attachment_rows(report):
    """The current attachments of every page and record, as table rows."""
    return [
        [target, v["name"], v["content_type"], v["size"], v["sha256"], v["revision"]]
        for target, versions in current_attachments(report).items()
        for v in versions
    ]


def attachment_anchor(target, name):
    """The id of an attachment's row in the HTML report (names and slugs are plain)."""
    return "attachment-" + re.sub(r"[^A-Za-z0-9._-]", "-", f"{target}-{name}")


def _resolver(target, current):
    """What ``attachment:<name>`` in a text of ``target`` becomes in a self-contained
    report: an image's bytes as a data: URI (an SVG in <img> runs no script), any other
    file a link to its row in the report's list of attachments (name, type, size,
    SHA-256); None for a name the target has no attachment of."""
    by_name = {v["name"]: v for v in current.get(target, [])}

    def resolve(name):
        version = by_name.get(name)
        if version is None:
            return None
        if version["content_type"].startswith("image/"):
            try:
                return files.data_uri(version["sha256"], version["content_type"])
            except FileNotFoundError:  # verify_audit names it; the report still renders
                return None
        return "#" + attachment_anchor(target, name)

    return resolve


def change_row(c):
    return [
        c["seq"], human(c["at"]), c["user"] or "system", c["source"], f"{c['kind']}: {c['object']}",
        c["action"], c["reason"], ", ".join(c["fields_changed"]),
    ]  # fmt: skip


# HTML and PDF ------------------------------------------------------------------------


def html(report, *, pdf=False):
    """The report as one HTML document, styles inline, nothing fetched from elsewhere."""
    project = report["document_control"]["project"]["slug"]
    pages, inventory = report["documentation"], report["inventory"]
    texts = [p["body"] for p in pages]
    texts += [f["value"] or "" for p in pages for f in p["fields"] if f["kind"] == MARKDOWN]
    texts += [inventory["purpose"], inventory["known_limitations"]]
    rendered = iter(_absolute(h) for h in render_markdown_many(texts, project))
    current = current_attachments(report)
    resolvers = [_resolver(f"page:{page['slug']}", current) for page in pages]
    bodies = [link_attachments(next(rendered), resolve) for resolve in resolvers]
    for page, resolve in zip(pages, resolvers, strict=True):
        for field in page["fields"]:
            if field["kind"] == MARKDOWN:
                field["html"] = link_attachments(next(rendered), resolve)
    markdown = {"purpose": next(rendered), "known_limitations": next(rendered)}
    section = report.get("validation") or {"validations": [], "findings": []}
    validated = validation_report.html_parts(
        section, lambda texts: [_absolute(h) for h in render_markdown_many(texts, project)], human
    )
    return render_to_string(
        "wiki/report.html",
        {
            "report": report,
            "pdf": pdf,
            "control": control_facts(report),
            "title": title(report),
            "generated_at": human(report["document_control"]["generated_at"]),
            "annex_rule": ANNEX_RULE,
            "inventory": [
                (label, value if isinstance(value, SafeData) else linebreaksbr(value))
                for label, value in inventory_facts(inventory, markdown)
            ],
            "documentation": list(zip(pages, bodies, map(page_state, pages), strict=True)),
            "lineage": [lineage_row(v) for v in report["model_versions"]],
            "runs": [run_row(r) for r in report["training_runs"]],
            "deployments": [deployment_row(d) for d in report["deployments"]],
            "changes": [change_row(c) for c in report["change_log"]],
            "attachments": [
                (attachment_anchor(row[0], row[1]), row) for row in attachment_rows(report)
            ],
            "attachments_rule": ATTACHMENTS_RULE,
            "diffs": [c for c in report["change_log"] if c.get("diff")],
            "approvals": [
                (a, approval_state(a), human(a["approved_at"]))
                for a in report["document_control"]["approvals"]
            ],
            "annex": [(i, STATES[i["state"]]) for i in report["annex_iv"]],
            "validation": validated,
            "signature_rule": validation_report.SIGNATURE_RULE,
            "sr_11_7": [(i, STATES[i["state"]]) for i in report.get("sr_11_7") or ()],
            "sr_rule": SR_RULE,
            "runs_ledger": pdf and list(ledger(RUN_HEADER, map(run_row, report["training_runs"]))),
            "changes_ledger": pdf
            and list(ledger(CHANGE_HEADER, map(change_row, report["change_log"]))),
        },
    )


# A link of the wiki's own ("/projects/…") made absolute: the report is read away from it.
_ROOT_RELATIVE = re.compile(r'href="/(?!/)')


def _absolute(rendered):
    site = settings.SITE_URL.rstrip("/")
    return mark_safe(_ROOT_RELATIVE.sub(lambda m: f'href="{site}/', rendered))  # noqa: S308


LEDGER_LINES = 60
LEDGER_WIDTH = 40  # widest a column but the last may be, in characters


def ledger(header, rows):
    """Long listings for the PDF: blocks of fixed-width text lines, a header atop each.

    WeasyPrint lays out every table cell as boxes of its own: ten thousand runs as a
    table take minutes and gigabytes, the same lines as preformatted text seconds."""
    rows = [[_cell(v) for v in row] for row in rows]
    widths = [
        min(LEDGER_WIDTH, max([len(h)] + [len(r[i]) for r in rows])) for i, h in enumerate(header)
    ]

    def line(cells):
        padded = [c.ljust(w) for c, w in zip(cells[:-1], widths, strict=False)]
        return "  ".join(padded + [cells[-1]])

    top = line(header) + "\n" + line(["-" * w for w in widths[:-1]] + ["-" * len(header[-1])])
    for start in range(0, len(rows), LEDGER_LINES):
        yield top + "\n" + "\n".join(line(r) for r in rows[start : start + LEDGER_LINES])


RUN_HEADER = ["Run", "Model version", "Status", "Started", "Dataset", "Hyperparameters", "Metrics"]
DEPLOYMENT_HEADER = [
    "Deployment", "Model version", "Environment", "Status", "Started", "Reason", "Checks",
]  # fmt: skip
CHANGE_HEADER = ["#", "When", "Who", "Source", "What", "Action", "Reason", "Fields changed"]


def write_html(report, handle, progress):
    handle.write(html(report).encode())


def write_pdf(report, handle, progress):
    from weasyprint import HTML, URLFetcher  # imported when needed: it loads pango

    document = html(report, pdf=True)
    progress(65)
    # A page body may link an image anywhere: the server that renders PDFs fetches
    # nothing, and reads only the data: URIs of the attachments the report holds.
    fetcher = URLFetcher(allowed_protocols={"data"})
    HTML(string=document, url_fetcher=fetcher).write_pdf(handle)


WRITERS = {
    "json": write_json, "zip": write_zip, "markdown": write_markdown, "html": write_html,
    "pdf": write_pdf,
}  # fmt: skip
