"""The audit chain seals files too: verify_audit (and the API, the browser's verify and
the recorded verdict) re-hashes every stored attachment version and every metric series
chunk, names the first one whose content changed, and tells a storage that does not
answer from tampering."""

import hashlib
import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from tests.factories import cli_actor, make_token, make_training_run
from tests.test_attachments import png
from tests.test_storage import s3  # noqa: F401  the fixture: moto's S3 server
from wiki import audit, metrics, reports
from wiki.models import Attachment, ChainHead, SeriesChunk
from wiki.models.attachments import storage_name
from wiki.services import attachments, series


def verify_audit(project):
    """(exit status, output) of ``manage.py verify_audit --project``."""
    out = io.StringIO()
    try:
        call_command("verify_audit", project=project.slug, stdout=out)
    except SystemExit as exit:
        return exit.code, out.getvalue()
    return 0, out.getvalue()


def change_a_byte(name):
    with default_storage.open(name, "rb") as file:
        data = bytearray(file.read())
    data[-1] ^= 1
    default_storage.delete(name)
    default_storage.save(name, ContentFile(bytes(data)))


@pytest.fixture
def documented(project):
    """A page with a figure (replaced once, so two versions), a run with a series."""
    page = project.pages.get(category="model")
    first = attachments.attach(page, ContentFile(png(), name="roc.png"), actor=cli_actor())
    attachments.attach(page, ContentFile(png(colour=(0, 0, 0)), name="roc.png"), actor=cli_actor())
    run = make_training_run(project)
    points = [
        {"step": 1, "value": 0.9},
        {"step": 2, "value": 0.7, "timestamp": "2026-12-06T01:00:00Z"},
    ]
    [chunk] = series.append(run, {"loss": points}, actor=cli_actor())
    return {"first": first.history.earliest("history_id"), "run": run, "chunk": chunk}


def test_intact_files_and_series_verify(project, documented):
    status, out = verify_audit(project)
    assert status == 0, out
    assert f"{project.slug}: intact" in out
    assert ChainHead.objects.get(project=project).verified_ok is True


def test_a_changed_byte_in_an_old_version_fails_naming_the_file(project, documented, api, user):
    old = documented["first"]  # replaced since: its bytes are still sealed
    failures = metrics.AUDIT_VERIFICATION_FAILURES._value.get()
    change_a_byte(storage_name(old.sha256))
    status, out = verify_audit(project)
    assert status == 1
    assert "NOT INTACT" in out and "file-altered" in out
    assert f"attachment roc.png (sha256 {old.sha256})" in out
    head = ChainHead.objects.get(project=project)
    assert head.verified_ok is False and head.first_bad["kind"] == "file-altered"
    assert metrics.AUDIT_VERIFICATION_FAILURES._value.get() == failures + 1

    _, key = make_token(user, projects=[project.slug])
    verdict = api(key).get(f"/api/v1/projects/{project.slug}/audit/verify/").json()
    assert verdict["ok"] is False and verdict["unchecked"] is None
    assert verdict["first_bad"]["kind"] == "file-altered"
    assert old.sha256 in verdict["first_bad"]["detail"]
    # An audit report read now says so in its document control.
    report = reports.build(project, report_id="r", generated_at=timezone.now(), with_history=False)
    assert report["document_control"]["audit_chain"]["first_bad"]["kind"] == "file-altered"


def test_a_deleted_file_is_reported_missing(project, documented, client_logged_in):
    current = attachments.of(project.pages.get(category="model")).get(name="roc.png")
    attachments.remove(current, actor=cli_actor())  # a deleted attachment is checked too
    default_storage.delete(storage_name(current.sha256))
    response = client_logged_in.post(f"/projects/{project.slug}/audit/verify/", follow=True)
    text = response.content.decode()
    assert "The audit chain is broken: file-missing: attachment roc.png" in text
    assert f"{current.sha256}): missing from the storage" in text
    assert "broken (file-missing: attachment roc.png" in text  # the overview keeps it
    assert ChainHead.objects.get(project=project).first_bad["kind"] == "file-missing"


def test_altered_series_points_are_reported_naming_run_and_metric(project, documented):
    chunk = documented["chunk"]
    # Behind the application's back: an UPDATE writes no history row.
    SeriesChunk.objects.filter(pk=chunk.pk).update(points="[[1,0.1,null],[2,0.05,null]]")
    status, out = verify_audit(project)
    assert status == 1
    assert f"series-altered: training run #{documented['run'].pk}, metric loss" in out
    assert "its points no longer hash" in out


def test_a_series_rehashed_behind_the_apps_back_differs_from_its_sealed_hash(project, documented):
    chunk = documented["chunk"]
    points = "[[1,0.1,null]]"
    SeriesChunk.objects.filter(pk=chunk.pk).update(
        points=points, sha256=hashlib.sha256(points.encode()).hexdigest()
    )
    verdict = audit.verify(audit.head_for(project), record=False)
    assert verdict.ok is False and verdict.first_bad["kind"] == "series-altered"
    assert "no longer holds what its history sealed" in verdict.first_bad["detail"]


def test_a_series_chunk_deleted_behind_the_apps_back_is_reported(project, documented):
    SeriesChunk.objects.filter(pk=documented["chunk"].pk).delete()
    verdict = audit.verify(audit.head_for(project), record=False)
    assert verdict.ok is False and verdict.first_bad["kind"] == "series-altered"
    assert "metric loss" in verdict.first_bad["detail"]
    assert "its row was deleted" in verdict.first_bad["detail"]


def test_a_series_chunk_moved_to_another_metric_is_reported(project, documented):
    SeriesChunk.objects.filter(pk=documented["chunk"].pk).update(metric="accuracy")
    verdict = audit.verify(audit.head_for(project), record=False)
    assert verdict.first_bad["kind"] == "series-altered"
    assert "metric loss" in verdict.first_bad["detail"]  # named as it was sealed


def test_an_attachment_pointed_at_other_sealed_bytes_is_reported(project, documented):
    """Both files are intact and sealed, but the row now serves the other one's bytes."""
    page = project.pages.get(category="data")
    attachments.attach(page, ContentFile(b"a,b\n1,2\n", name="split.csv"), actor=cli_actor())
    first, second = Attachment.objects.filter(project=project).order_by("pk")
    Attachment.objects.filter(pk=first.pk).update(sha256=second.sha256)
    verdict = audit.verify(audit.head_for(project), record=False)
    assert verdict.ok is False and verdict.first_bad["kind"] == "attachment-altered"
    assert f"attachment {first.name}" in verdict.first_bad["detail"]


@pytest.fixture
def s3_fast(monkeypatch, request):
    """The S3 fixture with short timeouts and no retry: a hung server is given up soon."""
    monkeypatch.setenv("AWS_S3_READ_TIMEOUT", "1")
    monkeypatch.setenv("AWS_S3_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("AWS_S3_MAX_ATTEMPTS", "1")
    return request.getfixturevalue("s3")


def test_a_storage_that_does_not_answer_is_unchecked_not_tampering(
    s3_fast, project, documented, api, user
):
    failures = metrics.AUDIT_VERIFICATION_FAILURES._value.get()
    s3_fast.pause()  # hung: connections accepted, never answered
    try:
        status, out = verify_audit(project)
        assert status == 2, out
        assert "intact" in out and "could not check files: storage unavailable" in out
        assert "NOT INTACT" not in out
        _, key = make_token(user, projects=[project.slug])
        verdict = api(key).get(f"/api/v1/projects/{project.slug}/audit/verify/").json()
        assert verdict["ok"] is True and verdict["first_bad"] is None
        assert verdict["unchecked"] == "could not check files: storage unavailable"
    finally:
        s3_fast.resume()
    assert metrics.AUDIT_VERIFICATION_FAILURES._value.get() == failures
    # Nothing was recorded: an unchecked verdict is neither intact nor broken.
    assert ChainHead.objects.get(project=project).verified_at is None
    status, out = verify_audit(project)
    assert status == 0, out
