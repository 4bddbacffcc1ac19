"""Audit reports: everything an auditor asks about one project, as one plain structure.

``build`` reads a consistent snapshot of the project and returns a dict of plain JSON
values (text, numbers, lists, dicts; times as ISO 8601 in UTC), in a fixed order, so the
same database state and options always give the same report. The renderers
(wiki.report_formats) turn it into a JSON bundle, Markdown, HTML or PDF with the same
content.

Sections: document control (ISO/IEC 42001 7.5: the report's id and version, ...), the
model inventory header (SR 11-7), the current documentation with its completeness, model
versions and their lineage, training runs and deployments of the period, the change log
of the period, every version of every attachment (its SHA-256: the file's bytes), the
independent validations and their findings with their life cycles (wiki.validations),
the EU AI Act Annex IV mapping (wiki.annex_iv), and (for the JSON bundle) every metric
series chunk and every history row of the project's audit chain with its digest and seal,
which deploy/audit/verify_bundle.py checks offline (with the files, in the ZIP bundle).
"""

import json
from datetime import UTC, datetime, time, timedelta

from django.conf import settings

from wiki import as_of, audit, diff, inventory, validations
from wiki.annex_iv import annex_iv, sr_11_7
from wiki.categories import is_placeholder, missing_required
from wiki.models import (
    Attachment,
    AuditEntry,
    Deployment,
    ModelVersion,
    Page,
    SeriesChunk,
    TrainingRun,
)
from wiki.rendering import site_link

# The version of the report's structure: bump it when a section or a key changes meaning.
REPORT_FORMAT_VERSION = 3
REPORT_FORMAT = f"mlwiki-audit-report/{REPORT_FORMAT_VERSION}"
PAGE_TABLE = "wiki.HistoricalPage"

# Columns that say when and by whom, not what: left out of "fields changed".
BOOKKEEPING = {
    "history_id", "history_date", "history_change_reason", "history_type", "history_user_id",
    "history_username", "history_source", "history_token_id", "history_token_name",
    "history_request_id", "history_origin", "updated_at", "created_at", "revision",
}  # fmt: skip


def iso(value):
    """A time as ISO 8601 in UTC (how the audit chain writes it); dates as YYYY-MM-DD."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value.isoformat()


def period_bounds(since, until):
    """The period's [start, end) in UTC; both dates are whole days, inclusive."""
    start = datetime.combine(since, time.min, UTC) if since else None
    end = datetime.combine(until + timedelta(days=1), time.min, UTC) if until else None
    return start, end


def _within(moment, start, end):
    """Whether ``moment`` is in the period [start, end) (None: open)."""
    return (start is None or moment >= start) and (end is None or moment < end)


def _in_period(queryset, column, start, end):
    if start:
        queryset = queryset.filter(**{f"{column}__gte": start})
    if end:
        queryset = queryset.filter(**{f"{column}__lt": end})
    return queryset


def plain(row):
    """A history row's columns as the JSON the chain's digest covers."""
    return json.loads(audit.canonical(row))


def revision_url(project, page):
    """The wiki's address of ``page``'s current revision (what a report's evidence is)."""
    return site_link("frontend:revision", project.slug, page.slug, page.revision)


def _page_entry(project, page):
    spec = page.spec
    entry = {
        "id": page.id,
        "slug": page.slug,
        "category": page.category,
        "label": spec.label if spec else "Free page",
        "title": page.title,
        "revision": page.revision,
        "approved_revision": page.approved_revision,
        "url": revision_url(project, page),
        "updated_at": iso(page.updated_at),
        "fields": [],
        "body": page.body,
    }
    if spec:
        missing = {f.name for f in missing_required(spec, page.fields)}
        entry["fields"] = [
            {
                "name": f.name,
                "label": f.label,
                "kind": f.kind,
                "required": f.required,
                "value": page.fields.get(f.name),
                "missing": f.name in missing,
                "placeholder": is_placeholder(page.fields.get(f.name)),
            }
            for f in spec.fields_for(page.fields)
        ]
        filled, required = page.completeness
        entry["completeness"] = {
            "filled": filled,
            "required": required,
            "missing": [
                {"name": f.name, "label": f.label, "help": f.help_text}
                for f in spec.fields
                if f.name in missing
            ],
        }
    return entry


def _approval(page):
    return {
        "page": page.slug,
        "title": page.title,
        "revision": page.revision,
        "review_state": page.review_state,
        "approved_revision": page.approved_revision,
        "approved_by": page.approved_by_name,
        "approved_at": iso(page.approved_at),
        "comment": page.approval_comment,
        "current_differs": page.approved_revision is not None
        and page.approved_revision != page.revision,
    }


def _field(pages, category, name):
    page = pages.get(category)
    return page.fields.get(name) if page else None


def _text(value):
    """A field value as one text: a key-value table as "key: value; key: value"."""
    if isinstance(value, list):
        return "; ".join(f"{row['key']}: {row['value']}" for row in value)
    return diff.as_text(value)


def _inventory(project, pages, production, until=None):
    """The inventory header (SR 11-7) of ``project``; with ``until`` (a report as of a
    moment), its validation, unresolved findings and next review are those of then."""
    overview, model = pages.get("overview"), pages.get("model")
    spec = project.spec
    tier = inventory.risk_tier(spec, {name: page.fields for name, page in pages.items()})
    last_validation = validations.last_concluded(project, until)
    review = inventory.next_review(
        spec, tier, project.created_at,
        *((datetime.fromisoformat(last_validation["concluded_at"]), last_validation["outcome"])
          if last_validation else ()),
    )  # fmt: skip
    return {
        "model_id": project.slug,
        "name": project.name,
        "template": spec.name,
        "purpose": _text(_field(pages, "overview", "purpose")),
        "owner_team": project.owner_team,
        "owners": _text(_field(pages, "overview", "owners")),
        "risk_level": tier,
        "status": _text(_field(pages, "overview", "status")),
        "production_version": production["model_version"] if production else None,
        "in_production_since": production["since"] if production else None,
        # Validation: the four-eyes approval of the model page; approval: of the overview.
        "validated_at": iso(model.approved_at) if model else None,
        "validated_by": model.approved_by_name if model else "",
        "approved_at": iso(overview.approved_at) if overview else None,
        "approved_by": overview.approved_by_name if overview else "",
        "known_limitations": _text(_field(pages, "model", "limitations")),
        # The independent validation (SR 11-7): the latest conclusion, and what is unresolved.
        "last_validation": last_validation,
        "open_findings": validations.open_counts(project, until),
        # The periodic review the template's months for the tier set (wiki.inventory).
        "next_review": review.isoformat() if review else None,
    }


def _run(run):
    return {
        "id": run.id,
        "model_version": run.model_version.version,
        "status": run.status,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "git_commit": run.git_commit,
        "pipeline_url": run.pipeline_url,
        "dataset": {
            "name": run.dataset_name,
            "version": run.dataset_version,
            "uri": run.dataset_uri,
        },
        "hyperparameters": run.hyperparameters,
        "metrics": run.metrics,
        "tags": run.tags,
        "environment": run.environment,
        "notes": run.notes,
    }


def _deployment(d):
    return {
        "id": d.id,
        "model_version": d.model_version.version,
        "environment": d.environment,
        "target": d.target,
        "status": d.status,
        "started_at": iso(d.started_at),
        "finished_at": iso(d.finished_at),
        "git_commit": d.git_commit,
        "pipeline_url": d.pipeline_url,
        "reason": d.reason,
        "config": d.config,
        "checks": d.checks,
    }


def _lineage(versions, runs, deployments):
    """Each model version with the datasets and runs that made it and where it went.
    ``versions``: the model versions, oldest first; ``runs``: (version id, run id, dataset
    name, dataset version) and ``deployments``: (version id, deployment id, environment,
    status, started_at) tuples, each in the order they started."""
    lineage = {
        v.id: {
            "id": v.id,
            "version": v.version,
            "created_at": iso(v.created_at),
            "description": v.description,
            "datasets": set(),
            "training_runs": [],
            "deployments": [],
        }
        for v in versions
    }
    for version_id, run_id, name, version in runs:
        lineage[version_id]["training_runs"].append(run_id)
        if name:
            lineage[version_id]["datasets"].add(f"{name}@{version}" if version else name)
    for version_id, deployment_id, environment, status, started_at in deployments:
        lineage[version_id]["deployments"].append(
            {"id": deployment_id, "environment": environment, "status": status,
             "started_at": iso(started_at)}
        )  # fmt: skip
    for version in lineage.values():
        version["datasets"] = sorted(version["datasets"])
    return list(lineage.values())


RUN_KEYS = ("model_version_id", "id", "dataset_name", "dataset_version")
DEPLOYMENT_KEYS = ("model_version_id", "id", "environment", "status", "started_at")


def _lineage_now(project):
    return _lineage(
        ModelVersion.objects.filter(project=project).order_by("created_at", "id"),
        TrainingRun.objects.filter(project=project)
        .order_by("started_at", "id")
        .values_list(*RUN_KEYS)
        .iterator(chunk_size=2000),
        Deployment.objects.filter(project=project)
        .order_by("started_at", "id")
        .values_list(*DEPLOYMENT_KEYS),
    )


def _lineage_then(records):
    """_lineage of the records as they stood at a moment (wiki.as_of.records)."""

    def keys(objects, names):
        return ([getattr(o, name) for name in names] for o in objects)

    return _lineage(
        records.model_versions,
        keys(records.training_runs, RUN_KEYS),
        keys(records.deployments, DEPLOYMENT_KEYS),
    )


def _production(deployments):
    """The version whose latest succeeded production deployment is the newest, if any:
    ``deployments``, the newest first."""
    live = next(
        (
            d for d in deployments
            if inventory.is_production(d.environment) and d.status == Deployment.Status.SUCCEEDED
        ),
        None,
    )  # fmt: skip
    if live is None:
        return None
    return {
        "model_version": live.model_version.version,
        "since": iso(live.finished_at or live.started_at),
    }


def _production_now(project):
    return _production(
        Deployment.objects.filter(
            inventory.in_production(), project=project, status=Deployment.Status.SUCCEEDED
        )
        .select_related("model_version")
        .order_by("-started_at", "-id")[:1]
    )


def _records_now(project, start, end):
    """(runs and deployments of the period, the version in production, the lineage, the
    facts the Annex IV appendix asks of the records) of today's records."""
    runs = _in_period(TrainingRun.objects.filter(project=project), "started_at", start, end)
    runs = runs.select_related("model_version").order_by("started_at", "id")
    deployments = _in_period(Deployment.objects.filter(project=project), "started_at", start, end)
    deployments = deployments.select_related("model_version").order_by("started_at", "id")
    recorded = TrainingRun.objects.filter(project=project)
    deployed = Deployment.objects.filter(project=project)
    facts = {
        "records:training_runs": recorded.exists(),
        "records:metrics": recorded.exclude(metrics={}).exists(),
        "records:deployments": deployed.exists(),
        "records:deployment_checks": deployed.exclude(checks=[]).exists(),
    }
    runs = runs.iterator(chunk_size=2000)
    return runs, deployments, _production_now(project), _lineage_now(project), facts


def _records_then(project, moment, start, end):
    """_records_now of the records as they stood at ``moment`` (a deployment's status
    then, say): rebuilt from their history rows (wiki.as_of.records)."""
    records = as_of.records(project, moment)
    facts = {
        "records:training_runs": bool(records.training_runs),
        "records:metrics": any(r.metrics for r in records.training_runs),
        "records:deployments": bool(records.deployments),
        "records:deployment_checks": any(d.checks for d in records.deployments),
    }
    return (
        [r for r in records.training_runs if _within(r.started_at, start, end)],
        [d for d in records.deployments if _within(d.started_at, start, end)],
        _production(reversed(records.deployments)),
        _lineage_then(records),
        facts,
    )


def _attachment_versions(project, pages, before=None):
    """Every version of every attachment of the project (deleted ones too), by what it
    is attached to and name, oldest first (those saved before ``before``, if given): each
    a history row, so the bundle's verifier holds it against the chain. ``target`` reads
    "page:<slug>", "training_run:<id>", "deployment:<id>" or "model_version:<version>"."""
    slugs = {page.id: page.slug for page in pages}
    versions = dict(ModelVersion.objects.filter(project=project).values_list("id", "version"))
    rows = Attachment.history.filter(project_id=project.id).order_by("id", "history_id")
    if before is not None:
        rows = rows.filter(history_date__lt=before)
    listed = []
    for row in rows.iterator(chunk_size=2000):
        if row.page_id is not None:
            target = f"page:{slugs.get(row.page_id, row.page_id)}"
        elif row.model_version_id is not None:
            target = f"model_version:{versions.get(row.model_version_id, row.model_version_id)}"
        else:
            target = next(
                f"{name}:{getattr(row, f'{name}_id')}"
                for name in ("training_run", "deployment")
                if getattr(row, f"{name}_id") is not None
            )
        listed.append({
            "history_id": row.history_id, "target": target, "name": row.name,
            "sha256": row.sha256, "size": row.size, "content_type": row.content_type,
            "revision": row.revision, "deleted": row.deleted, "who": row.history_username,
            "when": iso(row.history_date),
        })  # fmt: skip
    listed.sort(key=lambda v: (v["target"], v["name"], v["revision"], v["history_id"]))
    return listed


def current_attachments(report):
    """{target: [the current version of each of its attachments, by name]} of a report:
    the latest version of each name, unless that deleted it."""
    latest = {}
    for version in report["attachments"]:
        key = (version["target"], version["name"])
        if key not in latest or version["history_id"] > latest[key]["history_id"]:
            latest[key] = version
    current = {}
    for (target, _), version in sorted(latest.items()):
        if not version["deleted"]:
            current.setdefault(target, []).append(version)
    return current


def series(project):
    """Every metric series chunk of the project (its points' SHA-256, not the points),
    read a batch at a time: a run may post thousands."""
    chunks = (
        SeriesChunk.objects.filter(project=project)
        .order_by("training_run_id", "metric", "id")
        .values_list(
            "id", "training_run_id", "metric", "count", "first_step", "last_step", "sha256"
        )  # fmt: skip
    )
    for chunk_id, run_id, metric, count, first_step, last_step, sha256 in chunks.iterator(
        chunk_size=audit.VERIFY_BATCH
    ):
        yield {
            "id": chunk_id, "run": run_id, "metric": metric, "count": count,
            "first_step": first_step, "last_step": last_step, "sha256": sha256,
        }  # fmt: skip


def series_points(project_id):
    """(SHA-256, points as stored) of each distinct series chunk of the project, for the
    ZIP bundle; read a few at a time (each may hold 10,000 points)."""
    chunks = (
        SeriesChunk.objects.filter(project_id=project_id)
        .order_by("sha256", "id")
        .values_list("sha256", "points")
        .iterator(chunk_size=audit.SERIES_BATCH)
    )
    previous = None
    for sha256, points in chunks:
        if sha256 != previous:
            previous = sha256
            yield sha256, points


def history(head):
    """Every history row of ``head``'s chain, in chain order, with its entry's digest and
    seal: read a batch at a time (as verification reads them), so a bundle of any size is
    written without holding its history in memory. Read it inside the report's snapshot."""
    entries = (
        AuditEntry.objects.filter(chain=head, seq__lte=head.seq)
        .order_by("seq")
        .values_list("seq", "table", "history_id", "digest", "seal")
        .iterator(chunk_size=audit.VERIFY_BATCH)
    )
    for batch in audit._batches(entries, audit.VERIFY_BATCH):
        rows = audit._rows(batch)
        for seq, table, history_id, digest, seal in batch:
            row = rows.get((table, history_id))
            yield {
                "seq": seq, "table": table, "history_id": history_id, "digest": digest,
                "seal": seal, "row": plain(row) if row is not None else None,
            }  # fmt: skip


def _changes(project, include_diffs):
    """{(table, history id): (names of the columns it changed, page diff or None)}.

    Each history table is read once, ordered by object and then revision, so only the
    previous row of the current object is held."""
    changes = {}
    for model in audit._history_models():
        label, before = model._meta.label, None
        rows = model.objects.filter(**audit._project_filter(model, project.id))
        ordered = rows.order_by("id", "history_id").values(*audit._columns(model))
        for row in ordered.iterator(chunk_size=2000):
            if before is None or before["id"] != row["id"]:
                changes[(label, row["history_id"])] = ([], None)
            else:
                changed = sorted(
                    name
                    for name, value in row.items()
                    if name not in BOOKKEEPING and before[name] != value
                )
                page_diff = (
                    _page_diff(project.spec, row, before)
                    if include_diffs and label == PAGE_TABLE
                    else None
                )
                changes[(label, row["history_id"])] = (changed, page_diff)
            before = row
    return changes


def _page_diff(spec, row, before):
    spec = spec.category_or_unknown(row["category"]) if row.get("category") else None
    old = {"title": before["title"], "fields": before["fields"], "body": before["body"]}
    new = {"title": row["title"], "fields": row["fields"], "body": row["body"]}
    return [
        {"field": c.name, "label": c.label, "old": c.old, "new": c.new, "lines": c.lines}
        for c in diff.compare(spec, old, new, words=False)
        if c.changed
    ]


def _change_log(project, start, end, include_diffs):
    changes = _changes(project, include_diffs)
    chosen = _in_period(AuditEntry.objects.filter(chain__project=project), "at", start, end)
    log = []
    for e in chosen.order_by("seq").iterator(chunk_size=5000):
        changed, page_diff = changes.get((e.table, e.history_id), ([], None))
        item = {
            "seq": e.seq,
            "at": iso(e.at),
            "user": e.username,
            "source": e.source,
            "kind": e.kind,
            "action": audit.ACTIONS[e.action],
            "object": e.object_repr,
            "reason": e.reason,
            "request_id": str(e.request_id) if e.request_id else None,
            "fields_changed": changed,
        }
        if page_diff is not None:
            item["diff"] = page_diff
        log.append(item)
    return log


def build(
    project,
    *,
    report_id,
    since=None,
    until=None,
    include_diffs=False,
    generated_by="",
    generated_at,
    with_history=True,
    as_of_value=None,
):
    """The audit report ``report_id`` of ``project`` for the period (dates, inclusive;
    None: open).

    With ``as_of_value`` (an ``as_of``, wiki.as_of), the report describes the project as it
    stood at that moment: its documentation (each page at its revision then, with its
    approval then), completeness, inventory and Annex IV appendix from that state, the
    validations and findings as they stood then, and the records, attachments and change
    log up to it. The audit chain is today's, whole (the JSON bundle's history too), so
    the report still proves that the past it shows has not been rewritten since.

    Call it inside one transaction with a consistent snapshot (wiki.services.exports does),
    so the documentation, the records and the history agree.
    """
    start, end = period_bounds(since, until)
    moment = as_of.parse(project, as_of_value) if as_of_value else None
    if moment is not None:
        # Up to and including the moment: what happened then belongs to it.
        after = moment.at + timedelta(microseconds=1)
        end = after if end is None else min(end, after)
    head = audit.head_for(project)
    verdict = audit.verify(head, record=False)

    if moment is None:
        all_pages = list(Page.objects.filter(project=project).order_by("slug"))
        described = project
    else:
        then = as_of.documentation(project, moment)
        all_pages = sorted(then.pages, key=lambda page: page.slug)
        described = then.project
    # The template the documentation followed then (a report as of a moment reads it
    # from the project's history row of the moment).
    spec = described.spec
    order = spec.order
    categories = {p.category: p for p in all_pages if p.category}
    free_pages = {p.slug: p for p in all_pages if not p.category}
    documentation = [_page_entry(project, categories[c]) for c in sorted(categories, key=order)]
    documentation += [_page_entry(project, p) for p in free_pages.values()]
    filled = sum(p.get("completeness", {}).get("filled", 0) for p in documentation)
    required = sum(p.get("completeness", {}).get("required", 0) for p in documentation)

    if moment is None:
        runs, deployments, production, lineage, facts = _records_now(project, start, end)
    else:
        runs, deployments, production, lineage, facts = _records_then(project, moment, start, end)
    run_list = [_run(r) for r in runs]
    deployment_list = [_deployment(d) for d in deployments]
    change_log = _change_log(project, start, end, include_diffs)
    facts |= {"records:model_versions": bool(lineage), "history": head.seq > 0}
    report = {
        "report": REPORT_FORMAT,
        "document_control": {
            "report_id": report_id,
            "report_version": {
                "format": REPORT_FORMAT_VERSION,
                "application": settings.APP_VERSION,
            },
            "project": {
                "id": project.id,
                "slug": project.slug,
                "name": described.name,
                "summary": described.summary,
                "owner_team": described.owner_team,
                "tags": described.tags,
            },
            "period": {"since": iso(since), "until": iso(until)},
            "options": {"include_diffs": include_diffs},
            "generated_at": iso(generated_at),
            "generated_by": generated_by,
            "audit_chain": {
                "head": verdict.head,
                "entries": verdict.entries,
                "verified": verdict.ok,
                "first_bad": verdict.first_bad,
                "files_unchecked": verdict.unchecked,
            },
            "completeness": {"filled": filled, "required": required},
            "approvals": [_approval(categories[c]) for c in sorted(categories, key=order)]
            + [_approval(page) for page in free_pages.values()],
        },
        "inventory": _inventory(described, categories, production, moment.at if moment else None),
        "documentation": documentation,
        "model_versions": lineage,
        "training_runs": run_list,
        "deployments": deployment_list,
        "change_log": change_log,
        "attachments": _attachment_versions(project, all_pages, end if moment else None),
        "validation": validations.report_section(project, moment.at if moment else None),
        "template": {"slug": spec.slug, "version": spec.version, "label": spec.label},
        "annex_iv": annex_iv(
            spec, categories, free_pages, facts, lambda page: revision_url(project, page)
        ),
    }
    if moment is not None:
        # Only in a report made as of a moment (a report of today has no such key): a
        # null "as_of" would be left out of the bundle's digest, as the audit chain
        # leaves out the null columns added after it (wiki.audit.LATER_COLUMNS).
        report["document_control"]["as_of"] = {
            "value": moment.value,
            "at": iso(moment.at),
            "record": moment.record,
        }
    sr = sr_11_7(spec, categories, free_pages, facts, lambda page: revision_url(project, page))
    if sr is not None:
        report["sr_11_7"] = sr
    if with_history:  # both read as they are written: see write_json
        report["series"] = series(project)
        report["history"] = history(head)
    return report
