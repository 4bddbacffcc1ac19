#!/usr/bin/env python3
"""Issue 13's benchmark session, in one command: every target of the issue, measured beside
MLflow's tracking server, then again with 1,000,000 training runs and 100,000 revisions
stored; prints a Markdown table with met / not met per target.

  .venv/bin/python bench/issue13.py            # the whole session (see bench/README.md)
  .venv/bin/python bench/issue13.py --smoke    # tiny sizes: checks the script in a minute
  .venv/bin/python bench/issue13.py --only grown --reuse-base   # the grown half again

Needs PostgreSQL with the role ``mlwiki`` and Redis (what .ci/run starts) and ``make test``
once (.venv). Steps:

1. a fresh database ``mlwiki_bench_i13`` (``--reuse-base`` keeps one already filled),
   migrated; Redis database 14 emptied (``BENCH_REDIS_URL``);
2. ``bench/grow.py base``: the project ``pages`` (10,000 runs, 1,000 revisions), the project
   ``ingest`` that records are posted to, a ``records:write`` token, a logged-in session;
3. gunicorn as shipped (``deploy/gunicorn.conf.py``, its 2 workers) on 127.0.0.1, and
   MLflow's tracking server (``mlflow server``, from PyPI, in its own venv, /opt/mlflow-bench,
   made here if missing) with 1 and with 2 workers on a PostgreSQL database of its own;
4. three alternated rounds of: single training-run posts at concurrency 8; batches of 500 at
   concurrency 4 (``POST .../training-runs/batch/``; "not available" if it answers 404);
   MLflow's three calls per run (create_run, log_batch, update_run over plain HTTP, the same
   record content, the same load generator) on 1 and 2 workers; the model page and its
   history page at concurrency 8 with a session cookie. Each figure is the median of 3;
5. ``bench/grow.py grow`` to 1,000,000 runs and 100,000 revisions (filler projects), then
   step 4 again; the GIN pending list of the search index and the index sizes before and
   after, and the slowest single post or page view (any over 1 s is flagged).

The load generator (bench/loadgen.py) measures its own ceiling first, against a server that
does nothing, so that a figure near it would show that the client, not the server, limits.
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import types
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402
from ingest import count, record  # noqa: E402

PY = ROOT / ".venv/bin/python"
GUNICORN = ROOT / ".venv/bin/gunicorn"
MLFLOW_VENV = Path(os.environ.get("MLFLOW_VENV", "/opt/mlflow-bench"))
MLFLOW_VERSION = os.environ.get("MLFLOW_VERSION", "")  # e.g. "==3.17.2"; empty: the latest
PG = os.environ.get("BENCH_PG", "postgres://mlwiki@127.0.0.1:5432")
PG_SUPERUSER = os.environ.get("BENCH_PG_SUPERUSER", "postgres")  # for pgstattuple; optional
DB = os.environ.get("BENCH_DB", "mlwiki_bench_i13")
MLFLOW_DB = DB + "_mlflow"
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
PROJECT = "ingest"
ROUNDS = 3
BATCH = 500

SIZES = {
    "full": types.SimpleNamespace(
        single=2000, batches=40, mlflow=1000, pages=2000, base_runs=10_000,
        base_revisions=1_000, runs_total=1_000_000, revisions_total=100_000, ceiling=20_000,
    ),
    "smoke": types.SimpleNamespace(
        single=100, batches=4, mlflow=30, pages=60, base_runs=500, base_revisions=60,
        runs_total=3_000, revisions_total=300, ceiling=2_000,
    ),
}  # fmt: skip

# mlwiki's requests of one record or page, whose slowest is held to 1 s. A batch of 500 is
# one request that does 500 records' work (about 1 s at c=4 and 2,000 records/s): its
# slowest is shown beside, not held to that target.
MLWIKI = ("single", "model", "history")
TARGETS = {"single": 500, "p99": 100, "mlflow_ratio": 10, "batch": 2000, "model": 240,
           "history": 190, "slowest": 1000}  # fmt: skip


def say(message):
    print(message, file=sys.stderr, flush=True)


# Databases and servers --------------------------------------------------------------------


def psql(sql, db="postgres", user=None, check=True):
    """Run SQL with psql; its unaligned output."""
    url = f"{PG}/{db}"
    if user:
        url = url.replace("mlwiki@", f"{user}@", 1)
    done = subprocess.run(["psql", url, "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if check and done.returncode:
        raise RuntimeError(f"psql failed: {done.stderr.strip()}")
    return done.stdout.strip() if done.returncode == 0 else None


def recreate(db):
    psql(f"DROP DATABASE IF EXISTS {db}")
    psql(f"CREATE DATABASE {db}")


def exists(db):
    return psql(f"SELECT 1 FROM pg_database WHERE datname = '{db}'") == "1"  # noqa: S608


def app_env():
    env = os.environ.copy()
    env.update(
        DATABASE_URL=f"{PG}/{DB}", REDIS_URL=REDIS, DEBUG="false", ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false", SECRET_KEY=secrets.token_urlsafe(50),
        AUDIT_HMAC_KEY=secrets.token_urlsafe(50),
        API_THROTTLE_RATE="100000000/minute",  # measure the server, not the throttle
    )  # fmt: skip
    for name in ("CELERY_BROKER_URL", "WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "LOG_FORMAT"):
        env.pop(name, None)  # as shipped: the config's 2 workers
    return env


def manage(env, *args, capture=False):
    done = subprocess.run([str(PY), *args], cwd=ROOT, env=env, check=True, text=True,
                          stdout=subprocess.PIPE if capture else None)  # fmt: skip
    return done.stdout


def wait_for(url, process, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server of {url} exited ({process.returncode}): see its log")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - local
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


class Server:
    """A server process in a process group of its own, stopped by that group's id."""

    def __init__(self, name, argv, env, health, log):
        self.name, self.port = name, loadgen.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            wait_for(self.url + health, self.process, seconds=180)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def gunicorn(env, logdir):
    argv = [str(GUNICORN), "--config", "deploy/gunicorn.conf.py", "--bind", "127.0.0.1:{port}",
            "--access-logfile", "/dev/null", "--error-logfile", "-"]  # fmt: skip
    return Server("mlwiki", argv, env, "/healthz/", logdir / "gunicorn.log")


def mlflow_venv():
    """/opt/mlflow-bench with mlflow and psycopg2 (never the project's venv)."""
    binary = MLFLOW_VENV / "bin/mlflow"
    if not binary.exists():
        say(f"Making {MLFLOW_VENV} (mlflow{MLFLOW_VERSION} from PyPI)…")
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
        subprocess.run([str(MLFLOW_VENV / "bin/pip"), "install", "-q",
                        f"mlflow{MLFLOW_VERSION}", "psycopg2-binary"], check=True)  # fmt: skip
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                             check=True).stdout.strip()  # fmt: skip
    return binary, version


def mlflow(binary, workers, logdir, artifacts):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    argv = [str(binary), "server", "--host", "127.0.0.1", "--port", "{port}",
            "--workers", str(workers),
            "--backend-store-uri", f"{PG.replace('postgres://', 'postgresql+psycopg2://')}/{MLFLOW_DB}",
            "--default-artifact-root", str(artifacts),
            # No access log, as gunicorn's is sent to /dev/null above.
            "--uvicorn-opts", "--no-access-log"]  # fmt: skip
    return Server(f"mlflow {workers}w", argv, env, "/health", logdir / f"mlflow-{workers}.log")


def database_stats():
    """GIN pending list of the search index (pgstattuple, as the superuser, if allowed),
    index sizes of the tables a record post writes, row counts."""
    stats = {}
    gin = None
    if PG_SUPERUSER:
        gin = psql(
            "CREATE EXTENSION IF NOT EXISTS pgstattuple; SELECT pending_pages || ' ' || "
            "pending_tuples FROM pgstatginindex('wiki_searchentry_vector')",
            DB, user=PG_SUPERUSER, check=False,
        )  # fmt: skip
    if gin:
        pages, tuples = gin.split()
        stats["gin_pending_pages"], stats["gin_pending_tuples"] = int(pages), int(tuples)
    sizes = psql(
        "SELECT relname, sum(pg_relation_size(indexrelid)) FROM pg_stat_user_indexes "
        "WHERE relname IN ('wiki_trainingrun', 'wiki_historicaltrainingrun', 'wiki_runvalue', "
        "'wiki_searchentry', 'wiki_auditentry', 'wiki_idempotencykey', 'wiki_historicalpage') "
        "GROUP BY relname ORDER BY relname",
        DB,
    )  # fmt: skip
    stats["index_mb"] = {
        name: round(int(size) / 2**20, 1)
        for name, size in (line.split("|") for line in sizes.splitlines())
    }
    stats["gin_mb"] = round(int(psql(
        "SELECT pg_relation_size('wiki_searchentry_vector')", DB)) / 2**20, 1)  # fmt: skip
    stats["runs"] = int(psql("SELECT count(*) FROM wiki_trainingrun", DB))
    stats["revisions"] = int(psql("SELECT count(*) FROM wiki_historicalpage", DB))
    return stats


# The measurements -------------------------------------------------------------------------


class NotAvailable(Exception):
    pass


def single_posts(url, token, tag, n):
    path = f"/api/v1/projects/{PROJECT}/training-runs/"

    def job(connection, number):
        key = {"Idempotency-Key": f"{tag}-{number}"}
        status, body = connection.send("POST", path, record(tag, number), key)
        return 1 if status == 201 else f"{status} {body[:200]!r}"

    return loadgen.run(url, job, n, 8, {"Authorization": f"Token {token}"})


def batch_posts(url, token, tag, batches):
    path = f"/api/v1/projects/{PROJECT}/training-runs/batch/"
    bodies = [
        json.dumps({"records": [
            {"idempotency_key": f"{tag}-{b}-{i}", **record(tag, b * BATCH + i)}
            for i in range(BATCH)
        ]}).encode()
        for b in range(batches)
    ]  # fmt: skip

    def job(connection, number):
        status, body = connection.send("POST", path, bodies[number])
        if status >= 300 and status != 207:
            return f"{status} {body[:200]!r}"
        # {"results": [{"status": "created" | "replayed" | "invalid", ...}, ...], counts}
        results = json.loads(body)["results"]
        created = sum(1 for r in results if r.get("status") == "created")
        if created != len(results):
            bad = next(r for r in results if r.get("status") != "created")
            return f"{len(results) - created} records not created: {bad!r:.200}"
        return created

    probe = loadgen.Connection(url, {"Authorization": f"Token {token}"})
    status, _ = probe.send("POST", path, b'{"records": []}')
    probe.close()
    if status == 404:
        raise NotAvailable
    return loadgen.run(url, job, batches, 4, {"Authorization": f"Token {token}"})


def mlflow_runs(url, tag, n):
    """MLflow's client's three calls per run, on the same record content."""
    setup = loadgen.Connection(url)
    status, body = setup.send("POST", "/api/2.0/mlflow/experiments/create", {"name": tag})
    setup.close()
    if status != 200:
        raise RuntimeError(f"MLflow: experiment not made: {status} {body[:300]!r}")
    experiment = json.loads(body)["experiment_id"]

    def job(connection, number):
        fields = record(tag, number)
        now = int(time.time() * 1000)
        status, body = connection.send("POST", "/api/2.0/mlflow/runs/create", {
            "experiment_id": experiment, "start_time": now, "run_name": f"{tag}-{number}",
            "tags": [{"key": "mlflow.user", "value": "bench"},
                     {"key": "mlflow.source.name", "value": "train.py"},
                     {"key": "mlflow.source.type", "value": "LOCAL"},
                     {"key": "mlflow.source.git.commit", "value": fields["git_commit"]},
                     {"key": "mlflow.runName", "value": f"{tag}-{number}"}],
        })  # fmt: skip
        if status != 200:
            return f"create_run {status} {body[:200]!r}"
        run_id = json.loads(body)["run"]["info"]["run_id"]
        tags = fields["tags"] | {
            "model_version": fields["model_version"], "status": fields["status"],
            "pipeline_url": fields["pipeline_url"], "dataset": json.dumps(fields["dataset"]),
            "environment": json.dumps(fields["environment"]),
        }  # fmt: skip
        status, body = connection.send("POST", "/api/2.0/mlflow/runs/log-batch", {
            "run_id": run_id,
            "metrics": [{"key": k, "value": v, "timestamp": now, "step": 0}
                        for k, v in fields["metrics"].items()],
            "params": [{"key": k, "value": str(v)} for k, v in fields["hyperparameters"].items()],
            "tags": [{"key": k, "value": str(v)} for k, v in tags.items()],
        })  # fmt: skip
        if status != 200:
            return f"log_batch {status} {body[:200]!r}"
        status, body = connection.send("POST", "/api/2.0/mlflow/runs/update", {
            "run_id": run_id, "status": "FINISHED", "end_time": int(time.time() * 1000),
        })  # fmt: skip
        return 1 if status == 200 else f"update_run {status} {body[:200]!r}"

    return loadgen.run(url, job, n, 8)


def pages(url, cookie, path, n):
    return loadgen.run(url, loadgen.get_job(path), n, 8, {"Cookie": cookie})


def phase(name, size, env, credentials, binary, logdir):
    """Three alternated rounds of every measurement; {measure: [Result, ...]}."""
    say(f"== {name}: starting servers")
    stats_before = database_stats()
    servers = {"mlwiki": gunicorn(env, logdir)}
    artifacts = Path(tempfile.mkdtemp(prefix="mlflow-artifacts-"))
    try:
        for workers in (1, 2):  # one after the other: the first one creates the schema
            servers[f"mlflow{workers}"] = mlflow(binary, workers, logdir, artifacts)
        url, token, cookie = servers["mlwiki"].url, credentials["token"], credentials["cookie"]
        model, history = "/projects/pages/model/", "/projects/pages/model/history/"
        measures = {
            "single": lambda tag: single_posts(url, token, tag, size.single),
            "batch": lambda tag: batch_posts(url, token, tag, size.batches),
            "mlflow1": lambda tag: mlflow_runs(servers["mlflow1"].url, tag, size.mlflow),
            "mlflow2": lambda tag: mlflow_runs(servers["mlflow2"].url, tag, size.mlflow),
            "model": lambda tag: pages(url, cookie, model, size.pages),
            "history": lambda tag: pages(url, cookie, history, size.pages),
        }
        say("   warming up")
        warm = [single_posts(url, token, f"warm-{uuid.uuid4().hex[:8]}", 100)]
        warm += [pages(url, cookie, path, 50) for path in (model, history)]
        warm += [mlflow_runs(servers[f"mlflow{w}"].url, f"warm-{uuid.uuid4().hex[:8]}", 20)
                 for w in (1, 2)]  # fmt: skip
        for result in warm:
            if result.failures:
                raise RuntimeError(f"warm-up failed: {result.failures[0]}")
        results = {key: [] for key in measures}
        for number in range(ROUNDS):
            for key, measure in measures.items():
                if results[key] is None:
                    continue
                tag = f"{name}-{key}-{number}-{uuid.uuid4().hex[:6]}"
                try:
                    result = measure(tag)
                except NotAvailable:
                    say(f"   {key}: not available (404)")
                    results[key] = None
                    continue
                result.tag = tag
                if key in ("single", "batch"):  # exactly the records posted are there
                    result.stored = count(types.SimpleNamespace(
                        url=url, token=token, project=PROJECT), tag)  # fmt: skip
                results[key].append(result)
                stored = f"  stored {result.stored}" if hasattr(result, "stored") else ""
                say(
                    f"   round {number + 1} {key:8} {result.rate:8.1f}/s  "
                    f"p50 {result.percentile(50):7.1f} ms  p99 {result.percentile(99):7.1f} ms  "
                    f"slowest {result.slowest:7.1f} ms  failures {len(result.failures)}{stored}"
                )
                if result.failures:
                    say(f"     first failure: {result.failures[0]}")
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(artifacts, ignore_errors=True)
    return {"results": results, "before": stats_before, "after": database_stats()}


# The report -------------------------------------------------------------------------------


def median(results, figure):
    if not results:
        return None
    return statistics.median(figure(r) for r in results)


def summary(measured):
    r = measured["results"]
    rate = lambda key: median(r.get(key), lambda x: x.rate)  # noqa: E731
    out = {key: rate(key) for key in r}
    out["p99"] = median(r.get("single"), lambda x: x.percentile(99))
    out["p50"] = median(r.get("single"), lambda x: x.percentile(50))
    slowest = [x.slowest for key in MLWIKI for x in r.get(key) or []]
    out["slowest"] = max(slowest) if slowest else None
    out["slowest_batch"] = max((x.slowest for x in r.get("batch") or []), default=None)
    out["mlflow_ratio"] = out["single"] / out["mlflow1"] if out.get("mlflow1") else None
    bad = [
        (key, x)
        for key in r
        for x in (r[key] or [])
        if x.failures or getattr(x, "stored", len(x.latencies) and x.records) != x.records
    ]
    out["failures"] = len(bad)
    return out


def verdict(value, target, higher=True):
    if value is None:
        return "n/a"
    return "met" if (value >= target if higher else value < target) else "**not met**"


def fmt(value, unit=""):
    if value is None:
        return "not available"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return f"{value:,.1f}{unit}" if value < 100 else f"{value:,.0f}{unit}"


def table(phases, size_name, ceiling, mlflow_version):
    rows = [
        ("single posts, c=8 (records/s)", "single", "≥ 500", TARGETS["single"], True, ""),
        ("single posts, p99", "p99", "< 100 ms", TARGETS["p99"], False, " ms"),
        ("single posts ÷ MLflow 1 worker", "mlflow_ratio", "≥ 10×", TARGETS["mlflow_ratio"],
         True, "×"),
        ("batches of 500, c=4 (records/s)", "batch", "≥ 2,000", TARGETS["batch"], True, ""),
        ("model page, c=8 (requests/s)", "model", "≥ 240", TARGETS["model"], True, ""),
        ("history page, c=8 (requests/s)", "history", "≥ 190", TARGETS["history"], True, ""),
        ("slowest request (post, page)", "slowest", "< 1 s", TARGETS["slowest"], False, " ms"),
    ]  # fmt: skip
    names = list(phases)
    head = "| target | goal | " + " | ".join(f"{n} | {n}: met?" for n in names) + " |"
    lines = [head, "|---|---|" + "---:|---|" * len(names)]
    for label, key, goal, target, higher, unit in rows:
        cells = []
        for n in names:
            value = phases[n][key]
            cells += [fmt(value, unit), verdict(value, target, higher)]
        lines.append(f"| {label} | {goal} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| for comparison | " + " | ".join(names) + " |")
    lines.append("|---|" + "---:|" * len(names))
    for label, key in [("MLflow 1 worker (records/s)", "mlflow1"),
                       ("MLflow 2 workers (records/s)", "mlflow2"),
                       ("single posts, p50 (ms)", "p50"),
                       ("slowest batch of 500 (ms)", "slowest_batch"),
                       ("runs with failures or a wrong stored count", "failures")]:  # fmt: skip
        lines.append(f"| {label} | " + " | ".join(fmt(phases[n][key]) for n in names) + " |")
    lines.append("")
    lines.append(
        f"Sizes: {size_name}; median of {ROUNDS} alternated runs; {mlflow_version}; "
        f"load generator ceiling {ceiling.rate:,.0f} requests/s at c=8 "
        f"(p99 {ceiling.percentile(99):.1f} ms) against a null server; "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end."
    )
    return "\n".join(lines)


def stats_lines(name, measured):
    before, after = measured["before"], measured["after"]
    gin = lambda s: (f"{s['gin_pending_pages']} pages / {s['gin_pending_tuples']} tuples"  # noqa: E731
                     if "gin_pending_pages" in s else "n/a (no pgstattuple)")  # fmt: skip
    sizes = ", ".join(f"{t.removeprefix('wiki_')} {before['index_mb'].get(t, 0)} → {mb} MB"
                      for t, mb in after["index_mb"].items())  # fmt: skip
    return (f"- {name}: {before['runs']:,} → {after['runs']:,} runs, {after['revisions']:,} "
            f"page revisions; GIN pending list {gin(before)} before, {gin(after)} after; "
            f"search GIN index {before['gin_mb']} → {after['gin_mb']} MB; "
            f"index sizes: {sizes}")  # fmt: skip


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script")
    parser.add_argument("--only", choices=["base", "grown"], help="one half of the session")
    parser.add_argument(
        "--reuse-base",
        action="store_true",
        help=f"keep {DB} if it holds the base data (and what was grown)",
    )
    parser.add_argument("--drop", action="store_true", help="drop the databases at the end")
    args = parser.parse_args()
    # A terminated session still stops its servers (the finally blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    size_name = "smoke" if args.smoke else "full"
    size = SIZES[size_name]
    logdir = Path(tempfile.mkdtemp(prefix="mlwiki-issue13-"))
    env = app_env()
    started = time.monotonic()

    binary, mlflow_version = mlflow_venv()
    say(f"{mlflow_version}; logs in {logdir}")
    reuse = (args.reuse_base or args.only == "grown") and exists(DB)
    if args.only == "grown" and not reuse:
        sys.exit(f"--only grown needs {DB} from an earlier run (with --reuse-base).")
    if not reuse:
        say(f"Fresh database {DB}")
        recreate(DB)
        manage(env, "manage.py", "migrate", "--noinput", "-v0")
    manage(env, "manage.py", "collectstatic", "--noinput", "-v0")  # pages need the manifest
    import redis  # the project's dependency: empty the benchmark's own Redis database

    redis.Redis.from_url(REDIS).flushdb()
    recreate(MLFLOW_DB)
    say("Base data (bench/grow.py base)")
    credentials = json.loads(manage(env, "bench/grow.py", "base", "--runs", str(size.base_runs),
                                    "--revisions", str(size.base_revisions),
                                    capture=True).strip().splitlines()[-1])  # fmt: skip
    say("Load generator ceiling")
    ceiling = loadgen.ceiling(size.ceiling, 8)
    say(f"   {ceiling.rate:,.0f} requests/s")

    measured = {}
    if args.only != "grown":
        measured["base"] = phase("base", size, env, credentials, binary, logdir)
    if args.only != "base":
        say(f"Growing to {size.runs_total:,} runs, {size.revisions_total:,} revisions")
        grow_started = time.monotonic()
        manage(env, "bench/grow.py", "grow", "--runs-total", str(size.runs_total),
               "--revisions-total", str(size.revisions_total))  # fmt: skip
        grow_seconds = time.monotonic() - grow_started
        say(f"   grown in {grow_seconds:.0f} s")
        measured["grown"] = phase("grown", size, env, credentials, binary, logdir)

    phases = {name: summary(m) for name, m in measured.items()}
    print()
    print(table(phases, size_name, ceiling, mlflow_version))
    print()
    for name, m in measured.items():
        print(stats_lines(name, m))
    if "grown" in measured:
        print(f"- grown: bench/grow.py took {grow_seconds:.0f} s")
    slow = [(name, key, x.slowest) for name, m in measured.items()
            for key, rs in m["results"].items() if key in MLWIKI
            for x in rs or [] if x.slowest > TARGETS["slowest"]]  # fmt: skip
    for name, key, ms in slow:
        print(f"- **over 1 s**: {name} {key}: a request took {ms:,.0f} ms")
    print()
    print("Commands:")
    print("    .venv/bin/python bench/issue13.py" + (" --smoke" if args.smoke else "")
          + (f" --only {args.only}" if args.only else "")
          + (" --reuse-base" if args.reuse_base else "")
          + (" --drop" if args.drop else ""))  # fmt: skip
    print(f"    (session took {time.monotonic() - started:.0f} s; server logs in {logdir})")
    if args.drop:
        psql(f"DROP DATABASE IF EXISTS {DB}")
        psql(f"DROP DATABASE IF EXISTS {MLFLOW_DB}")


if __name__ == "__main__":
    main()
