"""The EU AI Act Annex IV appendix of an audit report: what in the wiki documents each item
of Annex IV (technical documentation, Article 11(1)), and whether it does so well enough;
and the same for the elements of SR 11-7, for templates whose fields evidence them.

An item is **covered** when every field that evidences it is filled with real text (not a
placeholder such as "TBD": wiki.categories.is_placeholder) on a page whose current revision
is its approved one, and every kind of record it names has been recorded. It is **partial**
when some of that holds, with the reasons; **missing** when nothing evidences it.
"""

from wiki.categories import TABLE, is_placeholder
from wiki.diff import as_text

# The items of Annex IV, in the law's words. What documents each is the project's
# template's business (wiki.doc_templates.Spec.sources): fields that name the item in
# their ``evidences``, and the template's other sources for it (``evidence``).
ANNEX_IV = [
    (1, "A general description of the AI system: intended purpose, provider, versions, "
        "how it is deployed"),
    (2, "A detailed description of the elements of the AI system and of the process for "
        "its development: methods, design, architecture, data, training, validation"),
    (3, "Detailed information about the monitoring, functioning and control of the AI "
        "system: capabilities and limitations, foreseeable unintended outcomes, oversight"),
    (4, "A description of the appropriateness of the performance metrics"),
    (5, "A detailed description of the risk management system (Article 9)"),
    (6, "A description of relevant changes made to the system through its lifecycle"),
    (7, "A list of the harmonised standards applied, or of the other solutions adopted"),
    (8, "A copy of the EU declaration of conformity (Article 47)"),
    (9, "A description of the system in place to evaluate the AI system's performance in "
        "the post-market phase (Article 72)"),
]  # fmt: skip
# The elements of model risk management that SR 11-7 (Federal Reserve / OCC, 2011) asks
# to be documented and validated.
SR_11_7 = [
    ("purpose_use", "Model purpose and intended use in the business"),
    ("development", "Model development: data, methodology and implementation"),
    ("limitations", "Model limitations and assumptions"),
    ("conceptual_soundness", "Evaluation of conceptual soundness"),
    ("ongoing_monitoring", "Ongoing monitoring"),
    ("outcomes_analysis", "Outcomes analysis (back-testing)"),
    ("validator_conclusion", "The validator's conclusion"),
]
# Every item id a template may name: "annex_iv.3", "sr_11_7.limitations".
ITEMS = {f"annex_iv.{n}": title for n, title in ANNEX_IV} | {
    f"sr_11_7.{key}": title for key, title in SR_11_7
}
# Sources of evidence other than a field: "records:…" the pipeline records; "history"
# the audit chain; and "page:<slug>" the text of the free page of that slug.
RECORD_SOURCES = {
    "records:model_versions": "Model versions (pipeline records)",
    "records:training_runs": "Training runs (pipeline records)",
    "records:metrics": "Training-run metrics (pipeline records)",
    "records:deployments": "Deployments (pipeline records)",
    "records:deployment_checks": "Post-deployment checks (pipeline records)",
    "history": "The revision history and its audit chain",
}
EVIDENCE_SOURCES = frozenset(RECORD_SOURCES)
QUOTED = 40  # characters of a placeholder quoted in a reason


def annex_iv(spec, pages, free_pages, facts, url):
    """The appendix, one entry per item, as the template ``spec`` maps them. ``pages``:
    the category pages by category; ``free_pages``: the free pages by slug; ``facts``:
    whether each record source holds anything; ``url(page)``: the wiki's address of the
    page's current revision."""
    return _mapping(spec, "annex_iv", ANNEX_IV, pages, free_pages, facts, url)


def sr_11_7(spec, pages, free_pages, facts, url):
    """The SR 11-7 mapping, as ``annex_iv``; None when ``spec`` evidences no SR 11-7 item."""
    if not spec.evidences_any("sr_11_7."):
        return None
    return _mapping(spec, "sr_11_7", SR_11_7, pages, free_pages, facts, url)


def _mapping(spec, prefix, items_of_law, pages, free_pages, facts, url):
    items = []
    for number, title in items_of_law:
        evidence = [
            _records(source, facts[source])
            if source in RECORD_SOURCES
            else _page_evidence(spec, source, pages, free_pages, url)
            for source in spec.sources(f"{prefix}.{number}")
        ]
        if not evidence:
            state = "missing"
        elif all(e["filled"] and e["approved"] is not False for e in evidence):
            state = "covered"
        else:
            state = "partial" if any(e["filled"] for e in evidence) else "missing"
        items.append({
            "item": number,
            "title": title,
            "state": state,
            # Two fields of one unapproved page give one reason, said once.
            "reasons": list(dict.fromkeys(e["reason"] for e in evidence if e["reason"]))
            or ([] if evidence else [f"nothing in the template {spec.name} evidences it"]),
            "documented_by": evidence,
        })  # fmt: skip
    return items


def _records(source, present):
    label = RECORD_SOURCES[source]
    return {
        "source": source, "label": label, "page": None, "page_title": None, "field": None,
        "field_label": None, "revision": None, "approved_revision": None, "url": None,
        "filled": present, "approved": None, "status": "documented" if present else "not recorded",
        "reason": None if present else f"{label}: nothing recorded",
    }  # fmt: skip


def _page_evidence(spec, source, pages, free_pages, url):
    """A field (or a free page's text) as evidence: filled with real text, and approved."""
    if source.startswith("page:"):
        slug = source.removeprefix("page:")
        page = free_pages.get(slug)
        field, field_label = "body", "Text"
        label, noun = f"Free page '{slug}'", f"'{slug}' page"
        value = page.body if page else None
    else:
        slug, field = source.split(".")
        category = spec.get_category(slug)
        field_label = category.get_field(field).label
        label, noun = f"{category.label}: {field_label}", f"{category.label} page"
        page = pages.get(slug)
        value = page.fields.get(field) if page else None
    placeholder = is_placeholder(value)
    filled = bool(value) and not placeholder
    approved = page is not None and page.approved_revision == page.revision
    if page is None:
        status, reason = "no page", f"there is no {noun}"
    elif placeholder:
        quoted = as_text(value, TABLE if isinstance(value, list) else None).replace("\n", "; ")
        quoted = quoted if len(quoted) <= QUOTED else quoted[: QUOTED - 1] + "…"
        status, reason = "placeholder", f"{label} is only a placeholder ('{quoted}')"
    elif not filled:
        status, reason = "empty", f"{label} is empty"
    elif not approved:
        approved_one = page.approved_revision
        since = f"approved: revision {approved_one}" if approved_one else "it was never approved"
        status = "not approved"
        reason = f"the {noun}'s revision {page.revision} is not approved ({since})"
    else:
        status, reason = "documented", None
    return {
        "source": source,
        "label": label,
        "page": page.slug if page else slug,
        "page_title": page.title if page else None,
        "field": field,
        "field_label": field_label,
        "revision": page.revision if page else None,
        "approved_revision": page.approved_revision if page else None,
        "url": url(page) if page else None,
        "filled": filled,
        "approved": approved,
        "status": status,
        "reason": reason,
    }
