"""Files in object storage: exports written to a real S3-compatible server (moto's, see
tests/s3.py) and downloaded through mlwiki after its permission check; a storage that
does not answer (503, the export waits) or lost a file (410); wiki.storage.check."""

import hashlib
import os
import runpy
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.test import Client

from tests.factories import UserFactory, make_token
from tests.s3 import S3Server
from tests.workers import needs_real_worker, start_worker, stop, until
from wiki import storage
from wiki.celery import app as celery_app
from wiki.history import Actor, Source
from wiki.models import ExportJob
from wiki.services.exports import build, build_export, request_export

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def s3(settings, monkeypatch):
    """moto's S3 server with an empty bucket, and mlwiki's default storage pointed at it
    as wiki/settings.py makes it from the environment (README, "Object storage")."""
    server = S3Server()
    server.start()
    with monkeypatch.context() as environment:
        for name, value in server.environment().items():
            environment.setenv(name, value)
        made = runpy.run_path(str(ROOT / "wiki" / "settings.py"))["STORAGES"]["default"]
    settings.STORAGES = settings.STORAGES | {"default": made}
    yield server
    if server.process.poll() is None:
        server.stop()


def exported(project, user):
    """A Markdown report of ``project``, asked for by ``user`` and built here."""
    job = request_export(project, actor=Actor(user, Source.WEB), format="markdown", enqueue=False)
    return build(job.pk)


def body(response):
    return b"".join(response.streaming_content)


def download_url(job):
    return f"/projects/{job.project.slug}/exports/{job.pk}/download/"


def test_an_export_is_written_to_the_bucket_and_downloaded_through_mlwiki(
    s3, project, user, client_logged_in, api, settings
):
    config = default_storage.client_config  # wiki/settings.py's short timeouts
    assert (config.connect_timeout, config.read_timeout) == (2, 10)
    job = exported(project, user)
    assert job.status == "done", job.last_error
    key = f"exports/{job.filename}"
    assert s3.keys() == [key]
    stored = s3.read(key)
    assert project.name.encode() in stored
    assert hashlib.sha256(stored).hexdigest() == job.sha256 and len(stored) == job.size
    # Built in the system's temporary directory, nothing left on the local disk.
    assert not (Path(settings.MEDIA_ROOT) / "exports").exists()

    response = client_logged_in.post(download_url(job))
    assert response.status_code == 200
    assert f'filename="{job.filename}"' in response["Content-Disposition"]
    assert body(response) == stored

    _, key = make_token(user, projects=[project.slug])
    response = api(key).post(f"/api/v1/exports/{job.pk}/download/")
    assert response.status_code == 200 and response["X-Content-SHA256"] == job.sha256
    assert body(response) == stored

    job.refresh_from_db()
    assert job.downloads == 2
    assert [h.history_change_reason for h in job.history.all()[:2]] == [
        "Downloaded the report",
        "Downloaded the report",
    ]


def test_someone_without_rights_gets_nothing_from_the_bucket(s3, project, user, api):
    job = exported(project, user)
    stranger = UserFactory(username="mallory")
    browser = Client()
    browser.force_login(stranger)
    assert browser.post(download_url(job)).status_code == 404
    _, key = make_token(stranger)
    response = api(key).post(f"/api/v1/exports/{job.pk}/download/")
    assert response.status_code == 404 and b"Audit" not in response.content
    job.refresh_from_db()
    assert job.downloads == 0


def test_a_storage_that_does_not_answer_makes_the_download_a_503(
    s3, project, user, client_logged_in, api
):
    job = exported(project, user)
    _, key = make_token(user, projects=[project.slug])
    history = job.history.count()
    s3.stop()

    page = client_logged_in.post(download_url(job))
    assert page.status_code == 503 and page["Retry-After"] == str(storage.RETRY_AFTER)
    assert b"The file storage does not answer" in page.content
    response = api(key).post(f"/api/v1/exports/{job.pk}/download/")
    assert response.status_code == 503 and response["Retry-After"] == str(storage.RETRY_AFTER)
    assert "file storage does not answer" in response.json()["detail"]
    # Neither was recorded as a download.
    job.refresh_from_db()
    assert job.downloads == 0 and job.history.count() == history


def test_a_file_the_bucket_lost_is_a_410(s3, project, user, client_logged_in, api):
    job = exported(project, user)
    s3.client().delete_object(Bucket=s3.bucket, Key=job.file.name)
    _, key = make_token(user, projects=[project.slug])
    response = api(key).post(f"/api/v1/exports/{job.pk}/download/")
    assert response.status_code == 410
    assert (
        response.json()["detail"] == f"The file of export {job.pk} is gone; ask for a new export."
    )
    page = client_logged_in.post(download_url(job))
    assert page.status_code == 410 and b"is gone; ask for a new export" in page.content
    job.refresh_from_db()
    assert job.downloads == 0


def test_an_export_built_while_the_storage_is_down_waits_and_is_built_once_it_is_back(
    s3, project, user
):
    job = request_export(project, actor=Actor(user, Source.WEB), format="json", enqueue=False)
    s3.stop()
    with pytest.raises(storage.Unavailable, match="The file storage did not answer"):
        build(job.pk)
    job.refresh_from_db()
    assert (job.status, job.file.name, job.last_error) == ("queued", "", "")
    assert job.due_at is not None  # the task's retry, or the outbox's sweep, sends it again
    assert job.history.first().history_change_reason == "Will try again"

    s3.start()  # empty again: the bucket is created anew
    assert build(job.pk).status == "done"
    job.refresh_from_db()
    assert s3.keys() == [job.file.name]
    assert hashlib.sha256(s3.read(job.file.name)).hexdigest() == job.sha256
    assert job.attempts == 2


def test_the_tasks_last_try_fails_the_job_clearly_when_the_storage_is_still_down(s3, project, user):
    job = request_export(project, actor=Actor(user, Source.WEB), format="markdown", enqueue=False)
    s3.stop()
    # The last try (the ones before are queued again: see the test above).
    build_export.apply(args=[job.pk], retries=build_export.max_retries)
    job.refresh_from_db()
    assert job.status == "failed" and job.file.name == ""
    assert job.last_error.startswith("Gave up after 4 tries: The file storage did not answer")
    assert s3.endpoint_url in job.last_error and "mlwiki-test-secret" not in job.last_error


@pytest.mark.redis
@needs_real_worker
def test_a_real_worker_builds_into_the_bucket_once_it_is_back_and_the_web_serves_it(
    s3, transactional_db, project, user, client_logged_in
):
    queue = f"test-{uuid.uuid4().hex}"
    worker = start_worker(queue, **s3.environment())
    celery_app.conf.task_always_eager = False  # conftest puts it back
    try:
        s3.stop()
        job = request_export(project, actor=Actor(user, Source.WEB), format="json")
        until(
            lambda: job.history.filter(history_change_reason="Will try again").exists(),
            "the worker did not meet the storage down",
        )
        s3.start()  # the task's retry (in 10 s) finds it back
        until(
            lambda: ExportJob.objects.get(pk=job.pk).status not in ("queued", "running"),
            "the worker did not finish the export",
            seconds=120,
        )
    finally:
        stop([worker])
    job.refresh_from_db()
    assert job.status == "done", job.last_error
    assert s3.keys() == [job.file.name]
    assert body(client_logged_in.post(download_url(job))) == s3.read(job.file.name)


def test_check_tells_whether_the_bucket_answers(s3, settings):
    assert storage.check(timeout=1) is True
    settings.STORAGES = settings.STORAGES | {
        "default": settings.STORAGES["default"]
        | {"OPTIONS": settings.STORAGES["default"]["OPTIONS"] | {"bucket_name": "missing"}}
    }
    assert storage.check(timeout=1) is False
    settings.STORAGES = settings.STORAGES | {
        "default": settings.STORAGES["default"]
        | {"OPTIONS": settings.STORAGES["default"]["OPTIONS"] | {"bucket_name": s3.bucket}}
    }
    s3.pause()  # hung: the probe gives up after its timeout
    assert storage.check(timeout=0.5) is False
    s3.resume()
    assert storage.check(timeout=1) is True
    s3.stop()
    assert storage.check(timeout=1) is False


def test_check_on_the_local_disk_wants_a_media_root_it_can_write_to(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"  # not made yet: a fresh install is ready
    assert storage.is_local() and storage.check() is True
    assert not (tmp_path / "media").exists()  # a probe changes nothing
    (tmp_path / "a-file").write_text("")
    settings.MEDIA_ROOT = tmp_path / "a-file" / "media"
    assert storage.check() is False


def test_the_environment_turns_the_bucket_on_and_its_absence_keeps_the_disk(s3, tmp_path):
    script = (
        "from django.core.files.base import ContentFile;"
        "from django.core.files.storage import storages; files = storages['default'];"
        "from wiki import storage;"
        "print(type(files).__name__, storage.check(), files.save('probe.txt', ContentFile(b'x')))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean["MEDIA_ROOT"] = str(tmp_path)

    def shell(environment):
        return subprocess.run(
            [sys.executable, "manage.py", "shell", "--no-imports", "-c", script],
            cwd=ROOT, env=environment, capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip

    assert shell(clean | s3.environment()) == ["S3Storage", "True", "probe.txt"]
    assert s3.keys() == ["probe.txt"] and s3.read("probe.txt") == b"x"
    assert shell(clean) == ["FileSystemStorage", "True", "probe.txt"]
    assert (tmp_path / "probe.txt").read_bytes() == b"x"
