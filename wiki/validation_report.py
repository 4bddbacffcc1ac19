"""The audit report's Validation section as people read it: the rows and lines that
wiki.report_formats puts in its Markdown, HTML and PDF (the section's data is
wiki.validations.report_section)."""

from wiki.models import Finding, Validation

OUTCOMES = dict(Validation.Outcome.choices)
STATUSES = dict(Finding.Status.choices)
VALIDATION_HEADER = [
    "Validation", "Title", "Validator", "Opened", "Outcome", "Concluded", "Signed by",
    "Signature (audit chain digest)",
]  # fmt: skip
FINDING_HEADER = [
    "Finding", "Validation", "Severity", "About", "Owner", "Due", "Status", "Life cycle",
]  # fmt: skip
SIGNATURE_RULE = (
    "A conclusion is signed by the history row it wrote: the validator's name, the time, "
    "and that row's digest in the audit chain (verified with the chain's head above)."
)


def outcome(value):
    return OUTCOMES.get(value, "Open") if value else "Open"


def about(f):
    """What a finding is about, in words: "data · split · revision 3 · deployment:12"."""
    parts = [f["page"] or "", f["field"], f"revision {f['page_revision']}" if f["page_revision"]
             else "", f["record"]]  # fmt: skip
    return " · ".join(part for part in parts if part)


def lifecycle(f, human):
    """Each status of a finding, when and by whom: "Open 2026-01-02 10:00 UTC by vera; …"."""
    return "; ".join(
        f"{STATUSES.get(s['status'], s['status'])} {human(s['at'])} by {s['by'] or 'the system'}"
        for s in f["lifecycle"]
    )


def validation_row(v, human):
    return [
        f"#{v['number']}", v["title"], v["validator"], human(v["opened_at"]),
        outcome(v["outcome"]), human(v["concluded_at"]), v["concluded_by"], v["signature"],
    ]  # fmt: skip


def finding_row(f, human):
    due = (f["due_date"] or "") + (" (overdue)" if f["overdue"] else "")
    return [
        f"#{f['number']}: {f['title']}", f"#{f['validation']}", f["severity"], about(f),
        f["owner"], due, STATUSES.get(f["status"], f["status"]), lifecycle(f, human),
    ]  # fmt: skip


def inventory_facts(inv, human):
    """The inventory's validation rows: the latest conclusion, the unresolved findings."""
    last = inv.get("last_validation")
    concluded = (
        f"{outcome(last['outcome'])} on {human(last['concluded_at'])} by {last['validator']} "
        f"(validation #{last['number']})"
        if last
        else "never validated"
    )
    counts = inv.get("open_findings") or {}
    unresolved = ", ".join(f"{counts.get(s, 0)} {s}" for s in Finding.Severity.values)
    return [("Last validation", concluded), ("Unresolved findings", unresolved)]


def markdown_lines(section, table, human):
    """The section in Markdown; ``table(header, rows)`` writes a table."""
    yield f"## Validation ({len(section['validations'])})"
    yield ""
    yield SIGNATURE_RULE
    yield ""
    yield from table(VALIDATION_HEADER, [validation_row(v, human) for v in section["validations"]])
    for v in section["validations"]:
        yield f"### Validation #{v['number']}: {v['title']}"
        yield ""
        pinned = ", ".join(f"{p['page']} revision {p['revision']}" for p in v["pinned"])
        yield f"Revisions validated: {pinned or 'none'}."
        yield ""
        if v["scope"]:
            yield from v["scope"].splitlines()
            yield ""
        if v["outcome"]:
            yield f"**Conclusion: {outcome(v['outcome'])}**, signed by {v['concluded_by']} on "
            yield f"{human(v['concluded_at'])}, digest `{v['signature']}`."
            yield ""
            yield from v["conclusion"].splitlines()
            yield ""
    yield f"### Findings ({len(section['findings'])})"
    yield ""
    yield from table(FINDING_HEADER, [finding_row(f, human) for f in section["findings"]])
    for f in section["findings"]:
        yield f"#### Finding #{f['number']}: {f['title']}"
        yield ""
        yield from f["description"].splitlines()
        yield ""
        accepted = f"Risk accepted by {f['accepted_by']}"
        for label, text in (("Remediation", f["remediation"]), (accepted, f["risk_justification"])):
            if text:
                yield f"*{label}:*"
                yield ""
                yield from text.splitlines()
                yield ""
        for comment in f["comments"]:
            yield f"- Comment by {comment['by']}, {human(comment['at'])}: " + " ".join(
                comment["body"].splitlines()
            )
        if f["comments"]:
            yield ""


def html_parts(section, render, human):
    """The section's rows, and its Markdown texts as ``render`` (a list of texts → their
    HTML) makes them, for wiki/_report_validation.html."""
    texts = [t for v in section["validations"] for t in (v["scope"], v["conclusion"])]
    texts += [
        t for f in section["findings"]
        for t in (f["description"], f["remediation"], f["risk_justification"],
                  *(c["body"] for c in f["comments"]))
    ]  # fmt: skip
    rendered = iter(render(texts))
    validations = [
        (v, validation_row(v, human), next(rendered), next(rendered))
        for v in section["validations"]
    ]
    findings = [
        (f, finding_row(f, human), next(rendered), next(rendered), next(rendered),
         [(c, human(c["at"]), next(rendered)) for c in f["comments"]])
        for f in section["findings"]
    ]  # fmt: skip
    return {
        "validations": validations,
        "findings": findings,
        "validation_header": VALIDATION_HEADER,
        "finding_header": FINDING_HEADER,
    }
