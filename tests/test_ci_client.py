"""deploy/ci/mlwiki_ci.py against a live test server, as a pipeline runs it."""

import contextlib
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from tests.factories import make_token
from wiki.models import Deployment, IdempotencyKey, TrainingRun

CLIENT = Path(__file__).resolve().parent.parent / "deploy" / "ci" / "mlwiki_ci.py"


def run_client(*args, url, token="", run_id="run-1", **env):
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("MLWIKI_", "GITHUB_", "CI_"))
    }
    environment |= {"MLWIKI_URL": url, "MLWIKI_TOKEN": token, "MLWIKI_BACKOFF": "0.01"} | env
    if run_id:
        environment["MLWIKI_RUN_ID"] = run_id
    return subprocess.run(
        [sys.executable, str(CLIENT), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def wiki(live_server, user, project):
    _, key = make_token(user, scopes=["records:write"], projects=["churn"])
    return {"url": live_server.url, "token": key}


RUN_ARGS = [
    "training-run", "--project", "churn", "--model-version", "1.4.0", "--status", "succeeded",
    "--started-at", "2024-06-01T10:00:00Z", "--metric", "auc=0.84", "--metric", "rows=1200",
    "--param", "learning_rate=0.05", "--param", "objective=binary", "--param", "early=true",
    "--tag", "trigger=nightly", "--dataset-name", "customers", "--dataset-version", "2024-05",
    "--git-commit", "a1b2c3d",
]  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_a_training_run_is_recorded_from_flags(wiki):
    result = run_client(*RUN_ARGS, **wiki)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    run = TrainingRun.objects.get(pk=record["id"])
    assert run.metrics == {"auc": 0.84, "rows": 1200}
    assert run.hyperparameters == {"learning_rate": 0.05, "objective": "binary", "early": True}
    assert (run.tags, run.dataset_name, run.git_commit) == (
        {"trigger": "nightly"},
        "customers",
        "a1b2c3d",
    )


@pytest.mark.django_db(transaction=True)
def test_running_the_step_again_records_nothing_new(wiki):
    first = run_client(*RUN_ARGS, **wiki)
    again = run_client(*RUN_ARGS, **wiki)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["id"] == json.loads(first.stdout)["id"]
    assert TrainingRun.objects.count() == 1
    other_run = run_client(*RUN_ARGS, run_id="run-2", **wiki)
    assert other_run.returncode == 0
    assert TrainingRun.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_training_run_is_recorded_from_a_file_with_flags_on_top(wiki, tmp_path):
    body = {
        "model_version": "2.0.0",
        "status": "failed",
        "started_at": "2024-06-01T10:00:00+02:00",
        "metrics": {"auc": 0.5},
        "dataset": {"name": "customers"},
    }
    path = tmp_path / "run.json"
    path.write_text(json.dumps(body))
    result = run_client(
        "training-run", "--project", "churn", "--file", str(path), "--metric", "f1=0.4",
        "--dataset-version", "v7", **wiki,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = TrainingRun.objects.get()
    assert (run.status, run.metrics) == ("failed", {"auc": 0.5, "f1": 0.4})
    assert (run.dataset_name, run.dataset_version) == ("customers", "v7")


@pytest.mark.django_db(transaction=True)
def test_a_deployment_is_started_and_finished_with_checks(wiki, tmp_path):
    started = run_client(
        "deployment-start", "--project", "churn", "--model-version", "1.4.0",
        "--environment", "production", "--target", "ml-prod", "--reason", "Monthly",
        "--config", "replicas=3", **wiki,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    deployment_id = started.stdout.strip()
    assert deployment_id.isdigit()
    checks = tmp_path / "checks.json"
    checks.write_text(json.dumps([{"name": "load", "passed": True, "details": "ok"}]))
    args = [
        "deployment-finish", "--project", "churn", "--id", deployment_id, "--status",
        "succeeded", "--check", "smoke=pass", "--check", "latency_p99_ms=pass:87",
        "--checks-file", str(checks),
    ]  # fmt: skip
    finished = run_client(*args, **wiki)
    assert finished.returncode == 0, finished.stderr
    assert run_client(*args, **wiki).returncode == 0  # a retried step appends nothing
    deployment = Deployment.objects.get(pk=deployment_id)
    assert (deployment.status, deployment.config) == ("succeeded", {"replicas": 3})
    assert deployment.checks == [
        {"name": "smoke", "passed": True},
        {"name": "latency_p99_ms", "passed": True, "value": 87},
        {"name": "load", "passed": True, "details": "ok"},
    ]
    assert deployment.finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_refusals_exit_1_with_the_wikis_message(wiki):
    bad_token = run_client(*RUN_ARGS, url=wiki["url"], token="mlw_wrong")
    assert bad_token.returncode == 1
    assert "401: Invalid token." in bad_token.stderr
    naive = run_client(*RUN_ARGS[:-2], "--started-at", "2024-06-01T10:00:00", **wiki)
    assert naive.returncode == 1
    assert "started_at: Include a time zone" in naive.stderr
    other_project = run_client(
        "training-run", "--project", "fraud", "--model-version", "1",
        "--started-at", "2024-06-01T10:00:00Z", **wiki,
    )  # fmt: skip
    assert other_project.returncode == 1 and "404" in other_project.stderr


def test_bad_arguments_exit_2(tmp_path):
    assert run_client(*RUN_ARGS, url="", token="").returncode == 2
    result = run_client(
        "training-run",
        "--project",
        "x",
        "--metric",
        "auc=high",
        url="http://127.0.0.1:9",
        token="t",
    )
    assert result.returncode == 2 and "metric auc must be a number" in result.stderr
    result = run_client(*RUN_ARGS, url="ftp://127.0.0.1", token="t")
    assert result.returncode == 2 and "MLWIKI_URL must start with https://" in result.stderr
    result = run_client("training-run", "--project", "x", url="http://127.0.0.1:9", token="t")
    assert result.returncode == 2 and "--started-at" in result.stderr


class FlakyWiki(BaseHTTPRequestHandler):
    """Answers 503, then 429 with Retry-After: 0, then 201: what a busy server may do."""

    answers = []
    seen = []
    bodies = []

    def do_POST(self):
        self.seen.append(dict(self.headers))
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        status, body, extra = self.answers.pop(0)
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args):
        pass


def run_against_flaky_wiki(answers, *args):
    """The client's run (with ``args`` before the command's) against a FlakyWiki giving
    ``answers`` [(status, body, headers)] in turn."""
    FlakyWiki.answers, FlakyWiki.seen, FlakyWiki.bodies = list(answers), [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyWiki)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        return run_client(*args, *RUN_ARGS, url=f"http://127.0.0.1:{server.server_port}", token="t")
    finally:
        server.shutdown()


def test_connection_trouble_429_and_5xx_are_retried_with_the_same_key():
    result = run_against_flaky_wiki(
        [
            (503, {"detail": "busy"}, {}),
            (429, {"detail": "slow down"}, {"Retry-After": "0"}),
            (201, {"id": 7, "url": "http://x/7/"}, {}),
        ]
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["id"] == 7
    assert result.stderr.count("retrying") == 2
    keys = {headers["Idempotency-Key"] for headers in FlakyWiki.seen}
    assert len(FlakyWiki.seen) == 3 and len(keys) == 1


def test_retry_after_is_honoured_whatever_the_backoff_says():
    """A database outage answers 503 with Retry-After; the client waits what it asks
    (0 s, or until an HTTP date already past), not its own 30 s backoff."""
    past = "Wed, 21 Oct 2015 07:28:00 GMT"
    answers = [
        (503, {"detail": "database unavailable"}, {"Retry-After": "0"}),
        (503, {"detail": "database unavailable"}, {"Retry-After": past}),
        (201, {"id": 8, "url": "http://x/8/"}, {}),
    ]
    result = run_against_flaky_wiki(answers, "--backoff", "30")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("database unavailable; retrying in 0 s") == 2


@contextlib.contextmanager
def closed_port():
    """A port nothing listens on (bound, so nothing else takes it, but never listening)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_an_unreachable_wiki_exits_3_after_the_retries():
    with closed_port() as port:
        result = run_client(
            *RUN_ARGS, url=f"http://127.0.0.1:{port}", token="t", MLWIKI_RETRIES="2"
        )
    assert result.returncode == 3
    assert "giving up after 3 attempts" in result.stderr
    assert result.stderr.count("retrying") == 2


def serve(answers):
    """A local HTTP server giving ``answers`` in turn; returns (url, seen headers, stop)."""
    FlakyWiki.answers = list(answers)
    FlakyWiki.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyWiki)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", FlakyWiki.seen, server.shutdown


def test_a_redirect_is_refused_not_followed_as_a_get():
    url, seen, stop = serve([(302, {}, {"Location": "https://elsewhere.example/"})])
    try:
        result = run_client(*RUN_ARGS, url=url, token="t")
    finally:
        stop()
    assert result.returncode == 2
    assert "MLWIKI_URL redirects (302) to https://elsewhere.example/" in result.stderr
    assert len(seen) == 1


def test_a_rerun_of_a_github_job_reuses_its_key():
    keys = []
    for attempt in ("1", "2"):
        url, seen, stop = serve([(201, {"id": 1, "url": "u"}, {})])
        try:
            run_client(
                *RUN_ARGS, url=url, token="t", run_id="",
                GITHUB_RUN_ID="777", GITHUB_RUN_ATTEMPT=attempt, GITHUB_JOB="train",
            )  # fmt: skip
        finally:
            stop()
        keys.append(seen[0]["Idempotency-Key"])
    assert keys[0] == keys[1]


def test_another_run_of_the_same_version_gets_its_own_key_or_the_one_given():
    seen_keys = []
    for extra in (["--started-at", "2024-06-02T10:00:00Z"], ["--idempotency-key", "mine-1"]):
        url, seen, stop = serve([(201, {"id": 1, "url": "u"}, {})])
        try:
            run_client(*RUN_ARGS, *extra, url=url, token="t")
        finally:
            stop()
        seen_keys.append(seen[0]["Idempotency-Key"])
    url, seen, stop = serve([(201, {"id": 1, "url": "u"}, {})])
    try:
        run_client(*RUN_ARGS, url=url, token="t")
    finally:
        stop()
    assert len({*seen_keys, seen[0]["Idempotency-Key"]}) == 3
    assert seen_keys[1] == "mine-1"


@pytest.mark.django_db(transaction=True)
def test_a_failed_deployment_is_recorded_even_without_its_checks_file(wiki, tmp_path):
    started = run_client(
        "deployment-start", "--project", "churn", "--model-version", "1.4.0",
        "--environment", "production", **wiki,
    )  # fmt: skip
    finished = run_client(
        "deployment-finish", "--project", "churn", "--id", started.stdout.strip(),
        "--status", "failed", "--checks-file", str(tmp_path / "never-written.json"), **wiki,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    assert "never-written.json does not exist; recording without it" in finished.stderr
    assert Deployment.objects.get().status == "failed"


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "not readable JSON"), ('{"name": "x"}', "must hold a JSON list")],
)
def test_unusable_checks_files_exit_2(tmp_path, content, message):
    path = tmp_path / "checks.json"
    path.write_text(content)
    result = run_client(
        "deployment-finish", "--project", "p", "--id", "1", "--status", "failed",
        "--checks-file", str(path), url="http://127.0.0.1:9", token="t",
    )  # fmt: skip
    assert result.returncode == 2 and message in result.stderr


def test_non_finite_metrics_exit_2():
    result = run_client(*RUN_ARGS, "--metric", "loss=NaN", url="http://127.0.0.1:9", token="t")
    assert result.returncode == 2 and "metric loss must be a finite number" in result.stderr


# --attach: files uploaded to the record once it is written, each exactly once.


def png():
    out = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def figures(tmp_path):
    (tmp_path / "roc curve.png").write_bytes(png())
    (tmp_path / "metrics.csv").write_text("step,loss\n1,0.9\n2,0.7\n")
    return [str(tmp_path / "roc curve.png"), str(tmp_path / "metrics.csv")]


@pytest.mark.django_db(transaction=True)
def test_a_training_run_is_posted_with_its_attachments_once(wiki, figures):
    args = [*RUN_ARGS, "--attach", figures[0], "--attach", figures[1]]
    result = run_client(*args, **wiki)
    assert result.returncode == 0, result.stderr
    run = TrainingRun.objects.get(pk=json.loads(result.stdout)["id"])
    attached = {a.name: a for a in run.attachments.all()}
    assert {name: a.content_type for name, a in attached.items()} == {
        "roc-curve.png": "image/png",
        "metrics.csv": "text/csv",
    }
    assert attached["roc-curve.png"].sha256 == hashlib.sha256(png()).hexdigest()
    assert f"attached roc-curve.png: {wiki['url']}/api/v1/projects/churn/" in result.stderr
    # The step again: the run and its files are replayed, nothing is recorded twice.
    again = run_client(*args, **wiki)
    assert again.returncode == 0, again.stderr
    assert TrainingRun.objects.count() == 1
    assert [a.history.count() for a in run.attachments.all()] == [1, 1]
    assert IdempotencyKey.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_deployments_get_attachments_at_start_and_finish(wiki, figures):
    started = run_client(
        "deployment-start", "--project", "churn", "--model-version", "1.4.0",
        "--environment", "production", "--attach", figures[1], **wiki,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    deployment_id = started.stdout.strip()
    finished = run_client(
        "deployment-finish", "--project", "churn", "--id", deployment_id, "--status",
        "succeeded", "--attach", figures[0], **wiki,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    deployment = Deployment.objects.get(pk=deployment_id)
    assert sorted(a.name for a in deployment.attachments.all()) == ["metrics.csv", "roc-curve.png"]


@pytest.mark.django_db(transaction=True)
def test_a_missing_attachment_exits_2_before_anything_is_sent(wiki, figures, tmp_path):
    result = run_client(
        *RUN_ARGS, "--attach", figures[0], "--attach", str(tmp_path / "nope.png"), **wiki
    )
    assert result.returncode == 2
    assert "nope.png: No such file or directory" in result.stderr
    (tmp_path / "empty.png").write_bytes(b"")
    result = run_client(*RUN_ARGS, "--attach", str(tmp_path / "empty.png"), **wiki)
    assert result.returncode == 2 and "empty.png: the file is empty" in result.stderr
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_refused_attachment_exits_1_with_the_wikis_message(wiki, tmp_path):
    archive = tmp_path / "model.zip"
    archive.write_bytes(b"PK\x03\x04zipped")
    result = run_client(*RUN_ARGS, "--attach", str(archive), **wiki)
    assert result.returncode == 1
    assert "415: This type of file is not accepted." in result.stderr
    assert TrainingRun.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_run_page_shows_what_the_client_posted_a_figure_and_a_learning_curve(
    wiki, figures, tmp_path, client_logged_in
):
    body = tmp_path / "run.json"
    points = [{"step": step, "value": 1 / step} for step in range(1, 101)]
    body.write_text(json.dumps({"series": {"loss": points}}))
    result = run_client(*RUN_ARGS, "--file", str(body), "--attach", figures[0], **wiki)
    assert result.returncode == 0, result.stderr
    run = TrainingRun.objects.get(pk=json.loads(result.stdout)["id"])
    page = client_logged_in.get(f"/projects/churn/runs/{run.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    figure = f"/projects/churn/runs/{run.pk}/attachments/roc-curve.png"
    assert figure in html  # the panel lists it, with its thumbnail
    assert client_logged_in.get(figure).getvalue() == png()
    chart = html.split("Learning curves", 1)[1]
    assert "<svg" in chart and ">loss<" in chart
    assert "<td>100</td>" in chart  # the curve's data table holds its last step


def jsonl(tmp_path, runs):
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(json.dumps(run) for run in runs) + "\n\n")
    return str(path)


def batch_run(number, **changes):
    started = f"2024-06-01T10:{number:02d}:00Z"
    return {"model_version": "1.4.0", "started_at": started, "metrics": {"auc": 0.8}} | changes


@pytest.mark.django_db(transaction=True)
def test_runs_from_a_jsonl_file_are_sent_in_batches_and_the_refused_lines_named(wiki, tmp_path):
    runs = [batch_run(n) for n in range(5)]
    runs[2]["metrics"] = {"auc": "high"}
    path = jsonl(tmp_path, runs)
    args = ["training-run", "--project", "churn", "--file", path, "--batch-size", "2"]
    first = run_client(*args, "--git-commit", "a1b2c3d", **wiki)
    assert first.returncode == 1
    assert json.loads(first.stdout) == {"created": 4, "replayed": 0, "invalid": 1}
    assert "line 3: metrics" in first.stderr
    assert "1 of 5 runs refused" in first.stderr
    assert first.stderr.count("sent") == 3  # three batches: 2, 2 and 1 lines
    assert TrainingRun.objects.count() == 4
    assert set(TrainingRun.objects.values_list("git_commit", flat=True)) == {"a1b2c3d"}
    # The step run again, the bad line fixed: the others are replays, nothing twice.
    runs[2]["metrics"] = {"auc": 0.7}
    jsonl(tmp_path, runs)
    again = run_client(*args, "--git-commit", "a1b2c3d", **wiki)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"created": 1, "replayed": 4, "invalid": 0}
    assert TrainingRun.objects.count() == 5
    assert IdempotencyKey.objects.filter(key__startswith="mlwiki-ci-").count() == 5


def test_a_batch_answered_503_is_sent_again_with_the_same_keys(tmp_path):
    path = jsonl(tmp_path, [batch_run(0), batch_run(1, idempotency_key="mine")])
    created = {"status": "created", "id": 1, "url": "http://x/1/"}
    answer = {"results": [created, created], "created": 2, "replayed": 0, "invalid": 0}
    FlakyWiki.answers, FlakyWiki.seen, FlakyWiki.bodies = (
        [
            (503, {"detail": "nothing of it was saved"}, {"Retry-After": "0"}),
            (200, answer, {}),
        ],
        [],
        [],
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyWiki)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run_client(
            "training-run", "--project", "churn", "--file", path,
            url=f"http://127.0.0.1:{server.server_port}", token="t",
        )  # fmt: skip
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert "nothing of it was saved; retrying in 0 s" in result.stderr
    sent = [json.loads(body)["records"] for body in FlakyWiki.bodies]
    assert len(sent) == 2 and sent[0] == sent[1]
    keys = [record["idempotency_key"] for record in sent[0]]
    assert keys[0].startswith("mlwiki-ci-") and keys[1] == "mine"
    assert all("Idempotency-Key" not in headers for headers in FlakyWiki.seen)
    assert FlakyWiki.seen[0]["Content-Type"] == "application/json"


def test_an_unreadable_jsonl_file_exits_2_before_anything_is_sent(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(batch_run(0)) + "\n{not json\n")
    result = run_client(
        "training-run", "--project", "churn", "--file", str(path), url="http://127.0.0.1:9",
        token="t",
    )  # fmt: skip
    assert result.returncode == 2 and "line 2 is not JSON" in result.stderr
    too_big = run_client(
        "training-run", "--project", "churn", "--file", str(path), "--batch-size", "1001",
        url="http://127.0.0.1:9", token="t",
    )  # fmt: skip
    assert too_big.returncode == 2 and "--batch-size must be 1 to 1000" in too_big.stderr
