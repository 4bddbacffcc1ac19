#!/usr/bin/env python3
"""Check an mlwiki audit report bundle (the JSON or ZIP export) offline, with the standard library.

    python3 verify_bundle.py BUNDLE.json|BUNDLE.zip [--expect-head DIGEST] [--key KEY]

1. The audit chain: every history row in order, each digest = SHA-256(previous digest +
   canonical JSON of the row), ending at the head the document-control section names;
   with --expect-head, the chain passes through the entry of that digest; with the key
   (the wiki's AUDIT_HMAC_KEY), each seal = HMAC-SHA-256(key, digest) too.
2. The report against its history: the project, every page (its text, fields, revision
   and approval), every training run, deployment and model version in the bundle must
   equal its latest history row; none that history holds (for records: in the period)
   may be missing; the change log must be exactly the history entries of the period;
   the attachment versions and metric series chunks listed (each with its SHA-256) must
   be exactly those history holds, as it holds them.
   A report made as of a moment (document control's "as_of") is checked against the
   history as it stood then: each object's latest row at or before that moment, the
   period ending with it; the whole chain is still walked and sealed.
3. The bundle itself: the integrity digest covers everything else in the file; with the
   key, its seal proves the wiki wrote it, including what history cannot show (the
   period, generated at and by, the inventory and completeness summaries, the Annex IV
   mapping).

4. The files (ZIP bundle): each attachment file (attachments/SHA256) and metric series
   chunk (series/SHA256.json) the bundle lists is in the ZIP and hashes to its SHA-256,
   and the ZIP holds nothing else.

Exits 0 when intact; 1 naming the first bad entry or file; 2 when the file cannot be read.
"""

import argparse
import hashlib
import hmac
import json
import sys
import zipfile
from datetime import date, datetime, timedelta

GENESIS = "0" * 64
BUNDLE_NAME = "bundle.json"  # the JSON bundle inside a ZIP bundle
CHUNK = 1 << 20
MODES = """\
What each way of running it catches:

  without --key or --expect-head
      Any edit that leaves the bundle inconsistent: a history row, page, record,
      approval or change-log entry changed, added or removed without the digests after
      it recomputed, or any other part of the file changed without the integrity digest
      recomputed. It does NOT catch a forger who rewrote history and recomputed every
      digest and the integrity digest: such a bundle is consistent, and only the two
      options below tell it from the real one.
  --expect-head DIGEST
      Also any rewrite, insertion or removal of history up to the entry whose digest you
      noted earlier, from the project page or GET /api/v1/projects/SLUG/audit/verify/
      ("head"), even with every digest recomputed: the recomputed chain cannot pass
      through that digest again. The chain grows after you note it, so the head you
      noted may be an earlier entry of the bundle. It does NOT catch entries rewritten,
      added or removed after the one you noted (and so a page or record shown as changed
      since), nor forged parts of the report that history does not hold (the period,
      generated at and by, the inventory and Annex IV summaries) with the integrity
      digest recomputed.
  --key KEY
      Also every seal (HMAC-SHA-256 with the wiki's AUDIT_HMAC_KEY): nobody without the
      key can rewrite, add or remove any entry or change any part of the bundle, digests
      recomputed or not. It does NOT catch whoever holds the key (the wiki's operators);
      --expect-head does, for history up to the head you noted.
"""


class Bad(Exception):
    """The first problem found."""


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def seal(key, digest):
    return hmac.digest(key, digest.encode(), "sha256").hex()


def check_chain(bundle, key, expect_head=None):
    """Walk the history; {(table, object id): (seq, latest row)}. With ``expect_head``, the
    recomputed chain must pass through an entry of that digest."""
    previous, latest, passed = GENESIS, {}, expect_head is None
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
        passed = passed or digest == expect_head
        latest[(entry["table"], row.get("id"))] = (entry["seq"], row)
    if not passed:
        raise Bad(
            f"the chain does not pass through the head you expected ({expect_head}): history "
            "up to that entry was rewritten (and its digests recomputed), or the bundle is "
            "of another project, or was exported before that head was written"
        )
    chain = bundle["document_control"]["audit_chain"]
    if previous != chain.get("head") or len(history) != chain.get("entries"):
        raise Bad(
            f"document control: the chain head is {chain.get('head')} with "
            f"{chain.get('entries')} entries; the history ends at {previous} with {len(history)}"
        )
    return latest


def as_of(dc):
    """The moment a report made as of one describes (a datetime), or None."""
    moment = dc.get("as_of")  # absent from bundles made before it existed
    return datetime.fromisoformat(moment["at"]) if moment else None


def as_it_stood(bundle, latest):
    """``latest`` as it stood at the report's moment (check_chain's, for a report not
    made as of one): each object's latest row at or before it."""
    moment = as_of(bundle["document_control"])
    if moment is None:
        return latest
    then = {}
    for entry in bundle["history"]:
        row = entry["row"]
        if datetime.fromisoformat(row["history_date"]) <= moment:
            then[(entry["table"], row.get("id"))] = (entry["seq"], row)
    return then


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


def _period(dc):
    """The report's period as [start, end) ISO strings in UTC (None: open)."""
    since, until = dc["period"]["since"], dc["period"]["until"]
    start = f"{since}T00:00:00+00:00" if since else None
    end = None
    if until:
        end = (date.fromisoformat(until) + timedelta(days=1)).isoformat() + "T00:00:00+00:00"
    moment = as_of(dc)
    if moment is not None:  # up to and including the moment
        after = moment + timedelta(microseconds=1)
        if end is None or after < datetime.fromisoformat(end):
            end = after.isoformat()
    return start, end


def _within(moment, start, end):
    when = datetime.fromisoformat(moment)
    return (start is None or when >= datetime.fromisoformat(start)) and (
        end is None or when < datetime.fromisoformat(end)
    )


def _alive(latest, table):
    """Ids of the objects of ``table`` whose latest history row is not a deletion."""
    return {
        object_id: row
        for (name, object_id), (_, row) in latest.items()
        if name == table and row.get("history_type") != "-"
    }


def check_complete(bundle, latest):
    """Nothing that history says exists (in the period) is left out of the report."""
    dc = bundle["document_control"]
    start, end = _period(dc)
    listed = {p["id"] for p in bundle["documentation"]}
    for page_id, row in _alive(latest, "wiki.HistoricalPage").items():
        if page_id not in listed:
            raise Bad(f"page '{row.get('slug')}' exists in history but is missing from the report")
    listed = {v["id"] for v in bundle["model_versions"]}
    for version_id, row in _alive(latest, "wiki.HistoricalModelVersion").items():
        if version_id not in listed:
            raise Bad(f"model version {row.get('version')} is missing from the report")
    for key, table, what in (
        ("training_runs", "wiki.HistoricalTrainingRun", "training run"),
        ("deployments", "wiki.HistoricalDeployment", "deployment"),
    ):
        listed = {r["id"] for r in bundle[key]}
        for record_id, row in _alive(latest, table).items():
            if _within(row["started_at"], start, end) and record_id not in listed:
                raise Bad(f"{what} #{record_id} of the period is missing from the report")
        for record in bundle[key]:
            if not _within(record["started_at"], start, end):
                raise Bad(f"{what} #{record['id']} is outside the report's period")


def check_change_log(bundle):
    """The change log is the history of the period: every entry, as its row says."""
    start, end = _period(bundle["document_control"])
    entries = {e["seq"]: e for e in bundle["history"]}
    logged = {c["seq"]: c for c in bundle["change_log"]}
    for seq, entry in entries.items():
        row = entry["row"]
        if not _within(row["history_date"], start, end):
            continue
        change = logged.pop(seq, None)
        if change is None:
            raise Bad(f"change log: history entry {seq} of the period is missing")
        facts = {
            "at": row["history_date"],
            "user": row.get("history_username", ""),
            "source": row.get("history_source"),
            "reason": row.get("history_change_reason") or "",
        }
        for name, value in facts.items():
            if change.get(name) != value:
                raise Bad(f"change log: entry {seq}'s {name} is not what its history row says")
    if logged:
        raise Bad(f"change log: entry {min(logged)} is not a history entry of the period")


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


ATTACHMENT_FACTS = ("name", "sha256", "size", "content_type", "revision", "deleted")


def check_files_listed(bundle, latest):
    """The attachment versions (those saved by the report's moment, if it has one) and
    series chunks the bundle lists are exactly those its history holds (so a listed
    SHA-256 is one the chain sealed)."""
    moment = as_of(bundle["document_control"])
    rows = {
        entry["history_id"]: entry["row"]
        for entry in bundle["history"]
        if entry["table"] == "wiki.HistoricalAttachment"
        and (moment is None or datetime.fromisoformat(entry["row"]["history_date"]) <= moment)
    }
    for version in bundle.get("attachments", []):
        what = f"attachment {version.get('name')} ({version.get('target')})"
        row = rows.pop(version.get("history_id"), None)
        if row is None:
            raise Bad(f"{what}: no history row records this version")
        facts = dict(version, history_username=version["who"], history_date=version["when"])
        for name in (*ATTACHMENT_FACTS, "history_username", "history_date"):
            if facts[name] != row.get(name):
                raise Bad(f"{what}: its {name} is not what its history row says")
    if rows:
        row = rows[min(rows)]
        raise Bad(f"attachment {row.get('name')}: a version in history is missing from the list")
    listed = {}
    for chunk in bundle.get("series", []):
        what = f"metric series {chunk.get('metric')} of training run #{chunk.get('run')}"
        listed[chunk["id"]] = chunk
        facts = dict(chunk, training_run_id=chunk["run"])
        names = {n: n for n in ("metric", "count", "first_step", "last_step", "sha256")}
        compare(what, facts, latest, "wiki.HistoricalSeriesChunk", chunk["id"],
                names | {"training_run_id": "training_run_id"})  # fmt: skip
    for chunk_id, row in _alive(latest, "wiki.HistoricalSeriesChunk").items():
        if chunk_id not in listed:
            raise Bad(
                f"metric series {row.get('metric')} of training run "
                f"#{row.get('training_run_id')}: a chunk in history is missing from the list"
            )


def check_zip(archive, bundle):
    """Each file the bundle lists is in the ZIP and hashes to its SHA-256; nothing else is."""
    wanted = {BUNDLE_NAME: None}
    for version in bundle.get("attachments", []):
        wanted[f"attachments/{version['sha256']}"] = version["sha256"], version["name"]
    for chunk in bundle.get("series", []):
        what = f"{chunk['metric']} of training run #{chunk['run']}"
        wanted[f"series/{chunk['sha256']}.json"] = chunk["sha256"], what
    present = set(archive.namelist())
    for name, listed in sorted(wanted.items(), key=lambda item: item[0]):
        if listed is None:
            continue
        sha256, what = listed
        if name not in present:
            raise Bad(f"{name} ({what}) is listed in the bundle but missing from the ZIP")
        digest = hashlib.sha256()
        with archive.open(name) as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != sha256:
            raise Bad(
                f"{name} ({what}): its bytes hash to {digest.hexdigest()}, not the SHA-256 "
                "the bundle lists (the file was changed)"
            )
    extra = sorted(present - set(wanted))
    if extra:
        raise Bad(f"{extra[0]} is in the ZIP but not listed in the bundle")


def check_integrity(bundle, key):
    integrity = bundle.get("integrity") or {}
    body = {k: v for k, v in bundle.items() if k != "integrity"}
    digest = hashlib.sha256(canonical(body)).hexdigest()
    if digest != integrity.get("digest"):
        raise Bad("the bundle was changed after it was generated (its integrity digest differs)")
    if key is not None and not hmac.compare_digest(seal(key, digest), integrity.get("seal", "")):
        raise Bad("the bundle's seal does not match: not written by the wiki with this key")


def verify(bundle, key=None, expect_head=None, archive=None):
    """None when intact, else what is wrong (the first problem). ``archive``: the open
    ZIP bundle the JSON bundle came from, whose files are checked too."""
    key = key.encode() if isinstance(key, str) else key
    try:
        latest = check_chain(bundle, key, expect_head)
        then = as_it_stood(bundle, latest)
        check_complete(bundle, then)
        check_contents(bundle, then)
        check_change_log(bundle)
        check_files_listed(bundle, latest)
        check_integrity(bundle, key)
        if archive is not None:
            check_zip(archive, bundle)
    except Bad as problem:
        return str(problem)
    except (KeyError, TypeError, AttributeError, ValueError) as problem:
        return (
            f"the bundle is not an mlwiki audit report bundle ({type(problem).__name__}: {problem})"
        )
    return None


def _digest(value):
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value.lower()):
        raise argparse.ArgumentTypeError(f"{value!r} is not a SHA-256 digest (64 hex digits)")
    return value.lower()


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=MODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bundle", help="the JSON or ZIP bundle exported by mlwiki")
    parser.add_argument(
        "--expect-head",
        type=_digest,
        metavar="DIGEST",
        help="the audit chain head you noted from the project page or its audit/verify/ "
        "API at some moment: the bundle's chain must pass through it",
    )
    parser.add_argument("--key", help="the wiki's AUDIT_HMAC_KEY, to check the seals too")
    args = parser.parse_args(argv)
    archive = None
    try:
        if zipfile.is_zipfile(args.bundle):
            archive = zipfile.ZipFile(args.bundle)
            with archive.open(BUNDLE_NAME) as handle:
                bundle = json.load(handle)
        else:
            with open(args.bundle, encoding="utf-8") as handle:
                bundle = json.load(handle)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        print(f"cannot read {args.bundle}: {error}", file=sys.stderr)
        return 2
    try:
        problem = verify(bundle, args.key, args.expect_head, archive)
    finally:
        if archive is not None:
            archive.close()
    if problem:
        print(f"NOT INTACT: {problem}")
        return 1
    entries = len(bundle["history"])
    sealed = "digests and seals" if args.key else "digests (give --key to check the seals)"
    head = bundle["document_control"]["audit_chain"]["head"]
    print(f"intact: {entries} history entries, {sealed}; head {head}")
    if archive is not None:
        files = len({v["sha256"] for v in bundle.get("attachments", [])})
        chunks = len({c["sha256"] for c in bundle.get("series", [])})
        print(f"files: {files} attachment files and {chunks} series chunks match their SHA-256")
    elif bundle.get("attachments") or bundle.get("series"):
        print("note: the files themselves were not checked: the ZIP bundle carries them")
    if args.expect_head:
        seq = next(e["seq"] for e in bundle["history"] if e["digest"] == args.expect_head)
        print(f"passes through the head you expected at entry {seq}")
    elif not args.key:
        print(
            "note: without --key or --expect-head this shows the bundle is consistent, not "
            "that history was not rewritten (see --help)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
