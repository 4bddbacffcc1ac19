#!/usr/bin/env python3
"""Record training runs and deployments in mlwiki from a CI/CD pipeline.

One file, Python 3.8+ standard library only: copy it into the pipeline. Configuration:

  MLWIKI_URL    the wiki, e.g. https://wiki.example.com (not a URL that redirects)
  MLWIKI_TOKEN  a token with the records:write scope for the project
  MLWIKI_RUN_ID the pipeline run's id; by default GitHub Actions' GITHUB_RUN_ID with
                GITHUB_JOB, or GitLab's CI_PIPELINE_ID with CI_JOB_NAME. Both stay the
                same when a job is retried or re-run.

Every write carries an Idempotency-Key made of the run id and what identifies the record
(a training run's model version and start time; a deployment's environment and model
version; a deployment's id and outcome). So this client's own retries (on connection
errors, 429 and 5xx, after the wait a Retry-After header asks for, else with a doubling
backoff) and a re-run of the step that sends the same record get the first
answer back and never record twice. A re-run that sends a different record under the same
identity (other metrics for the same start time, say) is refused by the wiki (422, exit 1)
rather than recorded twice: pass --idempotency-key to record it as new, on purpose.
Hence a training run needs its --started-at (the job's start time, not "now"); deployment
times default to when the wiki receives the start and the outcome.

--attach FILE (repeatable) attaches files to the record once it is written: plots,
reports, a metrics CSV (the wiki decides the type from the content; 25 MB each by
default). Each upload's key is made of the record's key and the file's name and SHA-256,
so a retried or re-run step attaches nothing twice. Every file is read before anything
is sent: a missing one is exit 2 with nothing recorded.

pipeline push FILE draws the pipeline on the project's workflow page: a spec compiled by
kfp (.yaml or .yml) or a generic DAG (.json: name, nodes, edges, schedule). The token
needs pages:write. Posting the same pipeline again changes nothing, so it needs no key.

--file RUNS.jsonl (a name ending in .jsonl) records many training runs: one JSON object
per line (the flags fill in or override each line's fields, as with a single --file),
sent in batches of --batch-size (500; at most 1,000) to the batch endpoint. Each line is
recorded under its own key: its "idempotency_key" if it has one, else one made of the run
id and the line's content, so that retries (the same batch again, after a 503 or a lost
connection) and re-runs of the step record each run once. Lines the wiki refuses are
named with its reasons (exit 1); the others are recorded all the same.

docs-push DIR (a token with the pages:write scope) keeps the documentation in git: each
Markdown file in DIR (as `manage.py export_markdown` writes them: YAML front matter with
page, title and fields, then the body) becomes a revision of its page, with the commit
(SHA, branch, repository: from GitHub's or GitLab's variables, else from git in DIR) as
its origin and the commit message as its reason. Only files that change their page are
written, all or none: a page edited in the wiki since the last push is never overwritten
(exit 1, naming it). The files as they were at the commit before are sent along (git
show), so the first push after an export goes through: clone with a depth of 2 or more.

Examples:
  mlwiki_ci.py training-run --project churn --model-version 1.4.0 --status succeeded \\
      --started-at 2024-06-01T10:00:00Z --metric auc=0.84 --param learning_rate=0.05
  mlwiki_ci.py training-run --project churn --file run.json \\
      --attach roc.png --attach confusion.csv
  mlwiki_ci.py training-run --project churn --file runs.jsonl --batch-size 200
  ID=$(mlwiki_ci.py deployment-start --project churn --model-version 1.4.0 \\
      --environment production --reason "Retrained on June data")
  mlwiki_ci.py deployment-finish --project churn --id "$ID" --status succeeded \\
      --check smoke=pass --check latency_p99_ms=pass:87 --checks-file checks.json \\
      --attach load-test.html

Exit status: 0 on success, 1 when the wiki refuses the request (its message is printed),
2 on bad arguments or input files, 3 when the wiki cannot be reached after the retries.
"""

import argparse
import datetime
import email.utils
import hashlib
import json
import math
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

USER_AGENT = "mlwiki-ci/1"


class UsageError(Exception):
    """The arguments, the environment or an input file are wrong."""


class Refused(Exception):
    """The wiki answered 4xx: retrying the same request cannot help."""


class Unreachable(Exception):
    """No usable answer after every retry."""


class RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would turn the POST into a GET (and record nothing): stop instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise UsageError(f"MLWIKI_URL redirects ({code}) to {newurl}: use that address")


OPENER = urllib.request.build_opener(RefuseRedirects)


def log(message):
    print(message, file=sys.stderr)


def run_id():
    explicit = os.environ.get("MLWIKI_RUN_ID")
    if explicit:
        return explicit
    if os.environ.get("GITHUB_RUN_ID"):
        return f"gh-{os.environ['GITHUB_RUN_ID']}-{os.environ.get('GITHUB_JOB', '')}"
    if os.environ.get("CI_PIPELINE_ID"):
        return f"gl-{os.environ['CI_PIPELINE_ID']}-{os.environ.get('CI_JOB_NAME', '')}"
    return None


def idempotency_key(args, *identity):
    """The write's key: --idempotency-key, else the run id and the record's identity."""
    if args.idempotency_key:
        return args.idempotency_key
    rid = run_id()
    if rid is None:
        return None
    digest = hashlib.sha256("|".join([rid, *map(str, identity)]).encode()).hexdigest()
    return f"mlwiki-ci-{digest[:48]}"


def request(method, path, body, key, args, content_type="application/json"):
    """Send one request (``body``: JSON, or bytes of ``content_type``); returns the parsed
    JSON answer. Retries what may pass later."""
    base = os.environ.get("MLWIKI_URL", "").rstrip("/")
    token = os.environ.get("MLWIKI_TOKEN", "")
    if not base or not token:
        raise UsageError("set MLWIKI_URL and MLWIKI_TOKEN")
    if not base.startswith(("https://", "http://")):
        raise UsageError(f"MLWIKI_URL must start with https:// (or http://), got {base!r}")
    headers = {
        "Authorization": f"Token {token}",
        "Content-Type": content_type,
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }
    if key:
        headers["Idempotency-Key"] = key
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    for attempt in range(args.retries + 1):
        wait = args.backoff * 2**attempt
        # The scheme is checked above: only http(s) is ever opened.
        req = urllib.request.Request(base + path, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with OPENER.open(req, timeout=30) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                detail = json.loads(payload).get("detail", "")
            except (ValueError, AttributeError):
                detail = payload.decode("utf-8", "replace")[:300]
            if error.code == 429 or error.code >= 500:
                told = retry_after(error.headers.get("Retry-After", ""))
                if told is not None:  # the server knows when it can take it: wait that long
                    wait = told
                problem = f"{error.code} {detail}".strip()
            else:
                raise Refused(f"{error.code}: {detail or error.reason}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            problem = str(getattr(error, "reason", error))
        except ValueError:
            problem = "the answer was not JSON"
        if attempt < args.retries:
            log(f"mlwiki_ci: {problem}; retrying in {wait:g} s")
            time.sleep(wait)
    raise Unreachable(f"giving up after {args.retries + 1} attempts: {problem}")


MAX_RETRY_AFTER = 300  # seconds: a longer wait asked for is cut to this


def retry_after(value):
    """Seconds a Retry-After header asks to wait (a number or an HTTP date); None if it
    says nothing usable."""
    value = value.strip()
    if value.isdigit():
        return min(int(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    now = datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017  (runs on Python 3.8+)
    seconds = (when - now).total_seconds()
    return min(max(0, math.ceil(seconds)), MAX_RETRY_AFTER)


def read_json(path, kind, missing_ok=False):
    """The JSON in ``path``, which must be a ``kind`` (dict or list)."""
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except FileNotFoundError:
        if missing_ok:
            log(f"mlwiki_ci: {path} does not exist; recording without it")
            return kind()
        raise UsageError(f"{path} does not exist") from None
    except (OSError, ValueError) as error:
        raise UsageError(f"{path} is not readable JSON: {error}") from None
    if not isinstance(value, kind):
        raise UsageError(f"{path} must hold a JSON {'object' if kind is dict else 'list'}")
    return value


def pairs(items, convert, what):
    result = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"{what} must be name=value, got {item!r}")
        result[name] = convert(value, name)
    return result


def scalar(value, name):
    """Numbers and true/false/null as JSON, anything else as text."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if not isinstance(parsed, (dict, list)) else value


def number(value, name):
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if isinstance(parsed, bool) or not isinstance(parsed, (int, float)):
        raise UsageError(f"metric {name} must be a number, got {value!r}")
    if not math.isfinite(parsed):
        raise UsageError(f"metric {name} must be a finite number, got {value!r}")
    return parsed


def text(value, name):
    return value


def check(value, name):
    """'pass', 'fail', optionally ':<value>' (a number or text)."""
    outcome, _, measured = value.partition(":")
    if outcome not in ("pass", "fail"):
        raise UsageError(f"check {name} must be pass or fail[:value], got {value!r}")
    result = {"name": name, "passed": outcome == "pass"}
    if measured:
        result["value"] = scalar(measured, name)
    return result


def read_attachments(paths):
    """[(file name, bytes)] of the --attach files, all read before anything is sent."""
    found = []
    for path in paths or []:
        try:
            with open(path, "rb") as handle:
                found.append((os.path.basename(path), handle.read()))
        except OSError as error:
            raise UsageError(f"--attach {path}: {error.strerror or error}") from None
        if not found[-1][1]:  # the wiki refuses it: say so before the record is written
            raise UsageError(f"--attach {path}: the file is empty")
    return found


def multipart(name, content):
    """A multipart/form-data body holding ``content`` as the field ``file`` named
    ``name``; returns (body, content type)."""
    boundary = secrets.token_hex(16)
    while boundary.encode() in content:
        boundary = secrets.token_hex(16)
    # A quote or a line break would end the header; the wiki cleans the name anyway.
    filename = "".join("_" if c in '"\\\r\n' else c for c in name)
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    body = head.encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def attach(files, args, record_path, record_key):
    """Upload ``files`` ([(name, bytes)]) to the record at ``record_path``, each under
    a key made of the record's and the file's, so that a retry attaches nothing twice."""
    for name, content in files:
        sha256 = hashlib.sha256(content).hexdigest()
        key = None
        if record_key:
            digest = hashlib.sha256(f"{record_key}|{name}|{sha256}".encode()).hexdigest()
            key = f"mlwiki-ci-{digest[:48]}"
        body, content_type = multipart(name, content)
        answer = request("POST", record_path + "attachments/", body, key, args, content_type)
        log(f"mlwiki_ci: attached {answer.get('name', name)}: {answer.get('url', '')}")


def project_path(project, *rest):
    parts = (urllib.parse.quote(part, safe="") for part in (project, *rest))
    return "/api/v1/projects/" + "/".join(parts) + "/"


def commit_from_env():
    return os.environ.get("GITHUB_SHA") or os.environ.get("CI_COMMIT_SHA")


def pipeline_push(args):
    """Post a pipeline spec to the workflow page; its type is told by the file's name."""
    types = {".yaml": "application/yaml", ".yml": "application/yaml", ".json": "application/json"}
    content_type = types.get(os.path.splitext(args.file)[1].lower())
    if content_type is None:
        raise UsageError(f"{args.file}: give a .yaml or .yml (kfp) or a .json (DAG) file")
    try:
        with open(args.file, "rb") as handle:
            body = handle.read()
    except OSError as error:
        raise UsageError(f"{args.file}: {error.strerror or error}") from None
    if not body:
        raise UsageError(f"{args.file} is empty")
    given = {"schedule": args.schedule, "change_reason": args.reason}
    query = urllib.parse.urlencode({k: v for k, v in given.items() if v})
    path = project_path(args.project, "pages", "workflow", "pipeline")
    answer = request("POST", path + (f"?{query}" if query else ""), body, None, args, content_type)
    log(f"mlwiki_ci: pipeline {answer.get('name')} is at revision {answer.get('revision')}")
    print(json.dumps(answer, indent=2))


def commit(args):
    return args.git_commit or commit_from_env()


def training_run(args):
    if args.file and args.file.endswith(".jsonl"):
        return training_runs(args)
    run = run_body(args, read_json(args.file, dict) if args.file else {})
    files = read_attachments(args.attach)
    key = idempotency_key(
        args, "training-run", args.project, run.get("model_version"), run["started_at"]
    )
    record = request("POST", project_path(args.project, "training-runs"), run, key, args)
    if "id" not in record:
        raise Unreachable(f"unexpected answer: {json.dumps(record)[:300]}")
    print(json.dumps(record, indent=2))
    attach(files, args, project_path(args.project, "training-runs", str(record["id"])), key)


def run_body(args, body):
    """A training run's body: ``body`` (from --file) with the flags on top."""
    flags = {
        "model_version": args.model_version,
        "status": args.status,
        "started_at": args.started_at,
        "finished_at": args.finished_at,
        "git_commit": commit(args),
        "pipeline_url": args.pipeline_url,
        "notes": args.notes,
    }
    body.update({k: v for k, v in flags.items() if v is not None})
    dataset = {"name": args.dataset_name, "version": args.dataset_version, "uri": args.dataset_uri}
    if any(v is not None for v in dataset.values()):
        given = {k: v for k, v in dataset.items() if v is not None}
        body["dataset"] = {**body.get("dataset", {}), **given}
    for field, values, convert in (
        ("hyperparameters", args.param, scalar),
        ("metrics", args.metric, number),
        ("tags", args.tag, text),
    ):
        if values:
            body[field] = {**body.get(field, {}), **pairs(values, convert, field)}
    body.setdefault("status", "succeeded")
    if "started_at" not in body:
        raise UsageError("give the run's --started-at (or started_at in --file)")
    return body


MAX_BATCH = 1000


def read_lines(path):
    """[(line number, JSON object)] of a JSON Lines file (blank lines skipped)."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist") from None
    except (OSError, ValueError) as error:
        raise UsageError(f"{path} is not readable: {error}") from None
    found = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as error:
            raise UsageError(f"{path} line {number} is not JSON: {error}") from None
        if not isinstance(value, dict):
            raise UsageError(f"{path} line {number} must be a JSON object")
        found.append((number, value))
    if not found:
        raise UsageError(f"{path} holds no runs")
    return found


def line_keys(args, bodies):
    """Each body's key: its own idempotency_key, else the run id (if any), the project and
    the body's canonical JSON (and, for identical lines, which one it is)."""
    keys, seen = [], {}
    for body in bodies:
        if body.get("idempotency_key"):
            keys.append(str(body["idempotency_key"]))
            continue
        content = json.dumps(body, sort_keys=True, separators=(",", ":"))
        seen[content] = seen.get(content, 0) + 1
        identity = [run_id() or "", args.project, content, str(seen[content])]
        digest = hashlib.sha256("|".join(identity).encode()).hexdigest()
        keys.append(f"mlwiki-ci-{digest[:48]}")
    return keys


def training_runs(args):
    """Every line of the --file (JSON Lines) as a training run, in batches."""
    if args.attach:
        raise UsageError("--attach goes with one run, not with a .jsonl --file")
    if args.idempotency_key:
        raise UsageError("each line of a .jsonl --file has its own key (idempotency_key)")
    if not 1 <= args.batch_size <= MAX_BATCH:
        raise UsageError(f"--batch-size must be 1 to {MAX_BATCH}")
    lines = read_lines(args.file)
    numbers = [number for number, _ in lines]
    bodies = []
    for number, line in lines:
        try:
            bodies.append(run_body(args, dict(line)))
        except UsageError as error:
            raise UsageError(f"{args.file} line {number}: {error}") from None
    keys = line_keys(args, bodies)
    path = project_path(args.project, "training-runs", "batch")
    totals = {"created": 0, "replayed": 0, "invalid": 0}
    failed = []
    for start in range(0, len(bodies), args.batch_size):
        part = range(start, min(start + args.batch_size, len(bodies)))
        records = [{**bodies[i], "idempotency_key": keys[i]} for i in part]
        # No Idempotency-Key header: each record carries its key, the same on every retry.
        answer = request("POST", path, {"records": records}, None, args)
        results = answer.get("results")
        if not isinstance(results, list) or len(results) != len(records):
            raise Unreachable(f"unexpected answer: {json.dumps(answer)[:300]}")
        for offset, i in enumerate(part):
            result = results[offset] if isinstance(results[offset], dict) else {}
            status = result.get("status")
            if status in ("created", "replayed"):
                totals[status] += 1
            else:
                totals["invalid"] += 1
                failed.append(f"line {numbers[i]}: {result.get('detail') or results[offset]}")
        log(f"mlwiki_ci: lines {numbers[part[0]]} to {numbers[part[-1]]} sent")
    print(json.dumps(totals))
    if failed:
        for problem in failed:
            log(f"mlwiki_ci: {problem}")
        raise Refused(f"{len(failed)} of {len(bodies)} runs refused (lines above)")


def deployment_start(args):
    body = {
        "model_version": args.model_version,
        "environment": args.environment,
        "status": args.status,
        "target": args.target or "",
        "reason": args.reason or "",
        "config": pairs(args.config, scalar, "config"),
        "git_commit": commit(args) or "",
        "pipeline_url": args.pipeline_url or "",
    }
    if args.started_at:
        body["started_at"] = args.started_at
    files = read_attachments(args.attach)
    key = idempotency_key(
        args, "deployment-start", args.project, args.environment, args.model_version
    )
    record = request("POST", project_path(args.project, "deployments"), body, key, args)
    if "id" not in record:
        raise Unreachable(f"unexpected answer: {json.dumps(record)[:300]}")
    log(f"mlwiki_ci: deployment {record['id']} recorded: {record['url']}")
    print(record["id"])
    attach(files, args, project_path(args.project, "deployments", str(record["id"])), key)


def deployment_finish(args):
    checks = list(pairs(args.check, check, "check").values())
    if args.checks_file:
        # A deployment that failed before its tests ran still has an outcome to record.
        checks += read_json(args.checks_file, list, missing_ok=True)
    body = {"status": args.status}
    if args.finished_at:
        body["finished_at"] = args.finished_at
    if checks:
        body["checks"] = checks
    files = read_attachments(args.attach)
    key = idempotency_key(args, "deployment-finish", args.project, args.id, args.status)
    path = project_path(args.project, "deployments", str(args.id))
    print(json.dumps(request("PATCH", path, body, key, args), indent=2))
    attach(files, args, path, key)


def git(directory, *arguments):
    """What git prints when run in ``directory`` (None if git or the answer is missing)."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed git arguments, no shell
            ["git", "-C", directory, *arguments],  # noqa: S607 - git from the PATH, as CI has it
            capture_output=True,
            check=False,
        )
    except OSError:
        return None
    return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else None


def without_credentials(url):
    """A remote's URL without the user and password CI checkouts often put in it."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme and "@" in parts.netloc:
        return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
    return url


def source(args):
    """The commit the folder is pushed from: flags, then CI variables, then git."""
    env = os.environ
    commit = args.git_commit or commit_from_env() or (git(args.dir, "rev-parse", "HEAD") or "")
    branch = (
        args.branch
        or env.get("GITHUB_REF_NAME")
        or env.get("CI_COMMIT_REF_NAME")
        or (git(args.dir, "rev-parse", "--abbrev-ref", "HEAD") or "").strip()
    )
    repository = args.repository or env.get("CI_PROJECT_URL")
    if not repository and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        repository = f"{server}/{env['GITHUB_REPOSITORY']}"
    repository = repository or (git(args.dir, "remote", "get-url", "origin") or "").strip()
    commit = commit.strip()
    if not commit or not repository:
        raise UsageError(
            f"{args.dir} is not in a git checkout with a remote 'origin': "
            "pass --git-commit and --repository"
        )
    return {
        "repository": without_credentials(repository),
        "branch": "" if branch == "HEAD" else branch,
        "commit": commit,
    }


def tree_files(args, commit):
    """Each Markdown file of the folder, and its content at the commit before, if git
    has it (None when the file is new or the history is too shallow to tell)."""
    try:
        names = sorted(name for name in os.listdir(args.dir) if name.endswith(".md"))
    except OSError as error:
        raise UsageError(f"cannot read {args.dir}: {error}") from None
    if not names:
        raise UsageError(f"{args.dir} holds no .md files")
    files = []
    for name in names:
        try:
            with open(os.path.join(args.dir, name), encoding="utf-8", newline="") as handle:
                content = handle.read()
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"cannot read {name} as UTF-8 text: {error}") from None
        files.append(
            {
                "path": name,
                "content": content,
                "previous": git(args.dir, "show", f"{commit}^:./{name}"),
            }
        )
    return files


MAX_REASON = 1000  # characters of a change reason the wiki keeps


def docs_push(args):
    body = {"source": source(args), "files": [], "message": args.message}
    body["files"] = tree_files(args, body["source"]["commit"])
    if body["message"] is None:
        body["message"] = (
            git(args.dir, "log", "-1", "--format=%B", body["source"]["commit"]) or ""
        ).strip()
    if len(body["message"]) > MAX_REASON:
        log(f"mlwiki_ci: the commit message is cut to its first {MAX_REASON} characters")
        body["message"] = body["message"][: MAX_REASON - 1] + "…"
    answer = request("POST", project_path(args.project, "docs"), body, None, args)
    pages = answer.get("pages", [])
    for page in pages:
        where = f"page {page['page']}, revision {page['revision']}"
        log(f"mlwiki_ci: {page['path']}: {page['outcome']} ({where})")
    written = sum(page["outcome"] != "unchanged" for page in pages)
    log(f"mlwiki_ci: {written} of {len(pages)} pages written from {body['source']['commit'][:12]}")
    print(json.dumps(answer, indent=2))


def parser():
    main = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    main.add_argument("--retries", type=int, default=int(os.environ.get("MLWIKI_RETRIES", "5")))
    main.add_argument(
        "--backoff",
        type=float,
        default=float(os.environ.get("MLWIKI_BACKOFF", "1")),
        help="first wait in seconds, doubled each retry",
    )
    commands = main.add_subparsers(dest="command", required=True)
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--project", required=True)
    shared.add_argument(
        "--idempotency-key", help="record this write under this key (default: derived)"
    )
    shared.add_argument(
        "--attach",
        action="append",
        metavar="FILE",
        help="attach this file to the record (repeatable): a plot, a report, a CSV",
    )

    run = commands.add_parser("training-run", parents=[shared], help="record a training run")
    run.add_argument(
        "--file",
        help="JSON body (flags below override its fields); a .jsonl file: one run per line",
    )
    run.add_argument(
        "--batch-size",
        type=int,
        default=500,
        help=f"runs per request with a .jsonl --file (1 to {MAX_BATCH}; default 500)",
    )
    run.add_argument("--model-version")
    run.add_argument("--status", choices=["running", "succeeded", "failed"])
    run.add_argument("--started-at", help="ISO 8601 with time zone (required, or in --file)")
    run.add_argument("--finished-at")
    run.add_argument("--git-commit")
    run.add_argument("--pipeline-url")
    run.add_argument("--dataset-name")
    run.add_argument("--dataset-version")
    run.add_argument("--dataset-uri")
    run.add_argument("--param", action="append", metavar="NAME=VALUE")
    run.add_argument("--metric", action="append", metavar="NAME=NUMBER")
    run.add_argument("--tag", action="append", metavar="NAME=TEXT")
    run.add_argument("--notes")
    run.set_defaults(handler=training_run)

    start = commands.add_parser(
        "deployment-start", parents=[shared], help="record a deployment; prints its id"
    )
    start.add_argument("--model-version", required=True)
    start.add_argument("--environment", required=True)
    start.add_argument("--status", default="in_progress", choices=["pending", "in_progress"])
    start.add_argument("--target")
    start.add_argument("--reason", help="why this update (Markdown)")
    start.add_argument("--config", action="append", metavar="NAME=VALUE")
    start.add_argument("--started-at", help="default: when the wiki receives it")
    start.add_argument("--git-commit")
    start.add_argument("--pipeline-url")
    start.set_defaults(handler=deployment_start)

    finish = commands.add_parser(
        "deployment-finish", parents=[shared], help="record a deployment's outcome and checks"
    )
    finish.add_argument("--id", required=True, type=int)
    finish.add_argument("--status", required=True, choices=["succeeded", "failed", "rolled_back"])
    finish.add_argument("--check", action="append", metavar="NAME=pass|fail[:VALUE]")
    finish.add_argument(
        "--checks-file",
        help='JSON list of {"name", "passed", "value", "details"}; if missing, none',
    )
    finish.add_argument("--finished-at", help="default: when the wiki receives it")
    finish.set_defaults(handler=deployment_finish)

    docs = commands.add_parser(
        "docs-push", help="write a folder of Markdown files (with front matter) as revisions"
    )
    docs.add_argument("--project", required=True)
    docs.add_argument("dir", metavar="DIR", help="the folder, in a git checkout")
    docs.add_argument("--git-commit", help="default: GITHUB_SHA, CI_COMMIT_SHA or git's HEAD")
    docs.add_argument("--branch", help="default: GITHUB_REF_NAME, CI_COMMIT_REF_NAME or git's")
    docs.add_argument(
        "--repository", help="its URL; default: GitHub's or GitLab's, or git's remote 'origin'"
    )
    docs.add_argument("--message", help="the change reason; default: the commit's message")
    # A push needs no key: sent twice, the second finds its pages as it wants them.
    docs.set_defaults(handler=docs_push, idempotency_key="")

    pipeline = commands.add_parser("pipeline", help="the pipeline drawn on the workflow page")
    push = pipeline.add_subparsers(dest="action", required=True).add_parser(
        "push", help="post a kfp-compiled spec (.yaml) or a generic DAG (.json)"
    )
    push.add_argument("file", metavar="FILE")
    push.add_argument("--project", required=True)
    push.add_argument("--schedule", help="when it runs (a cron line); kfp specs carry none")
    push.add_argument("--reason", help="why, for the history")
    # The same pipeline posted again changes nothing: no Idempotency-Key, nor a warning.
    push.set_defaults(handler=pipeline_push, idempotency_key="")
    return main


def main(argv=None):
    args = parser().parse_args(argv)
    if args.idempotency_key is None and run_id() is None:  # "" for a docs push
        log(
            "mlwiki_ci: no run id (MLWIKI_RUN_ID, GITHUB_RUN_ID or CI_PIPELINE_ID): "
            "retries are not protected against duplicates"
        )
    try:
        args.handler(args)
    except UsageError as error:
        log(f"mlwiki_ci: {error}")
        return 2
    except Refused as refused:
        log(f"mlwiki_ci: the wiki refused the request: {refused}")
        return 1
    except Unreachable as unreachable:
        log(f"mlwiki_ci: {unreachable}")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
