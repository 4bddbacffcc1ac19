#!/usr/bin/env python3
"""Check an mlwiki audit report bundle (the JSON export) offline, with the standard library.

    python3 verify_bundle.py BUNDLE.json [--key KEY]

1. The audit chain: every history row in order, each digest = SHA-256(previous digest +
   canonical JSON of the row), ending at the head the document-control section names;
   with the key (the wiki's AUDIT_HMAC_KEY), each seal = HMAC-SHA-256(key, digest) too.
2. The report against its history: the project, every page (its text, fields, revision
   and approval), every training run, deployment and model version in the bundle must
   equal its latest history row.
3. The bundle itself: the integrity digest covers everything else in the file; with the
   key, its seal proves the wiki wrote it (document control, period, generated at and by).

Exits 0 when intact; 1 naming the first bad entry; 2 when the file cannot be read.
"""

import argparse
import hashlib
import hmac
import json
import sys

GENESIS = "0" * 64


class Bad(Exception):
    """The first problem found."""


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def seal(key, digest):
    return hmac.digest(key, digest.encode(), "sha256").hex()


def check_chain(bundle, key):
    """Walk the history; {(table, object id): (seq, latest row)}."""
    previous, latest = GENESIS, {}
    history = bundle.get("history")
    if not isinstance(history, list):
        raise Bad("the bundle holds no history (is it the JSON export?)")
    for expected, entry in enumerate(history, start=1):
        where = (
            f"history entry {entry.get('seq')} ({entry.get('table')} #{entry.get('history_id')})"
        )
        if entry.get("seq") != expected:
            raise Bad(f"{where}: expected entry {expected}; entries were removed or reordered")
        row = entry.get("row")
        if row is None:
            raise Bad(f"{where}: its history row is missing")
        if row.get("history_id") != entry.get("history_id"):
            raise Bad(f"{where}: the row is another history row ({row.get('history_id')})")
        digest = hashlib.sha256(previous.encode() + canonical(row)).hexdigest()
        if digest != entry.get("digest"):
            raise Bad(f"{where}: the row or its place in the chain was changed")
        if key is not None and not hmac.compare_digest(seal(key, digest), entry.get("seal", "")):
            raise Bad(f"{where}: the seal does not match (rewritten, or another key)")
        previous = digest
        latest[(entry["table"], row.get("id"))] = (entry["seq"], row)
    chain = bundle["document_control"]["audit_chain"]
    if previous != chain.get("head") or len(history) != chain.get("entries"):
        raise Bad(
            f"document control: the chain head is {chain.get('head')} with "
            f"{chain.get('entries')} entries; the history ends at {previous} with {len(history)}"
        )
    return latest


def compare(what, facts, latest, table, object_id, names):
    """``facts`` (the report's) must equal the latest history row of the object."""
    found = latest.get((table, object_id))
    if found is None:
        raise Bad(f"{what}: no history row records it")
    seq, row = found
    for report_name, row_name in names.items():
        if facts.get(report_name) != row.get(row_name):
            raise Bad(
                f"{what}: its {report_name} is not what history entry {seq} says "
                f"({facts.get(report_name)!r} instead of {row.get(row_name)!r})"
            )


def check_contents(bundle, latest):
    dc = bundle["document_control"]
    project = dc["project"]
    compare(
        "document control (project)", project, latest, "wiki.HistoricalProject", project["id"],
        {n: n for n in ("slug", "name", "summary", "owner_team", "tags")},
    )  # fmt: skip
    pages = {}
    for page in bundle["documentation"]:
        what, table = f"page '{page['slug']}'", "wiki.HistoricalPage"
        names = ("title", "body", "revision", "slug", "category")
        compare(what, page, latest, table, page["id"], {n: n for n in names})
        stored = latest[(table, page["id"])][1].get("fields") or {}
        for field in page["fields"]:
            if field["value"] != stored.get(field["name"]):
                raise Bad(f"{what}: its field '{field['name']}' is not what its history says")
        pages[page["slug"]] = page["id"]
    for approval in dc["approvals"]:
        facts = {
            "review_state": approval["review_state"],
            "approved_revision": approval["approved_revision"],
            "approved_by_name": approval["approved_by"],
            "approved_at": approval["approved_at"],
            "revision": approval["revision"],
        }
        what = f"document control (approval of '{approval['page']}')"
        page_id = pages.get(approval["page"])
        compare(what, facts, latest, "wiki.HistoricalPage", page_id, {n: n for n in facts})
    versions = {}
    for version in bundle["model_versions"]:
        compare(f"model version {version['version']}", version, latest,
                "wiki.HistoricalModelVersion", version["id"],
                {"version": "version", "description": "description"})  # fmt: skip
        versions[version["version"]] = version["id"]
    for run in bundle["training_runs"]:
        facts = dict(run, model_version_id=versions.get(run["model_version"]),
                     dataset_name=run["dataset"]["name"], dataset_version=run["dataset"]["version"],
                     dataset_uri=run["dataset"]["uri"])  # fmt: skip
        names = [n for n in facts if n not in ("id", "model_version", "dataset")]
        compare(f"training run #{run['id']}", facts, latest, "wiki.HistoricalTrainingRun",
                run["id"], {n: n for n in names})  # fmt: skip
    for deployment in bundle["deployments"]:
        facts = dict(deployment, model_version_id=versions.get(deployment["model_version"]))
        names = [n for n in facts if n not in ("id", "model_version")]
        compare(f"deployment #{deployment['id']}", facts, latest, "wiki.HistoricalDeployment",
                deployment["id"], {n: n for n in names})  # fmt: skip


def check_integrity(bundle, key):
    integrity = bundle.get("integrity") or {}
    body = {k: v for k, v in bundle.items() if k != "integrity"}
    digest = hashlib.sha256(canonical(body)).hexdigest()
    if digest != integrity.get("digest"):
        raise Bad("the bundle was changed after it was generated (its integrity digest differs)")
    if key is not None and not hmac.compare_digest(seal(key, digest), integrity.get("seal", "")):
        raise Bad("the bundle's seal does not match: not written by the wiki with this key")


def verify(bundle, key=None):
    """None when intact, else what is wrong (the first problem)."""
    key = key.encode() if isinstance(key, str) else key
    try:
        latest = check_chain(bundle, key)
        check_contents(bundle, latest)
        check_integrity(bundle, key)
    except Bad as problem:
        return str(problem)
    except (KeyError, TypeError, AttributeError) as problem:
        return (
            f"the bundle is not an mlwiki audit report bundle ({type(problem).__name__}: {problem})"
        )
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", help="the JSON bundle exported by mlwiki")
    parser.add_argument("--key", help="the wiki's AUDIT_HMAC_KEY, to check the seals too")
    args = parser.parse_args(argv)
    try:
        with open(args.bundle, encoding="utf-8") as handle:
            bundle = json.load(handle)
    except (OSError, ValueError) as error:
        print(f"cannot read {args.bundle}: {error}", file=sys.stderr)
        return 2
    problem = verify(bundle, args.key)
    if problem:
        print(f"NOT INTACT: {problem}")
        return 1
    entries = len(bundle["history"])
    sealed = "digests and seals" if args.key else "digests (give --key to check the seals)"
    head = bundle["document_control"]["audit_chain"]["head"]
    print(f"intact: {entries} history entries, {sealed}; head {head}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
