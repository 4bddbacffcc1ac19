"""Attachments in the domain: what a file is, its name, its versions, its bytes."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from tests.factories import cli_actor, make_training_run
from wiki import attachments as files
from wiki.models import AuditEntry
from wiki.models.attachments import storage_name
from wiki.services import attachments
from wiki.services.pages import approve_page


def png(width=4, height=3, colour=(200, 30, 30)):
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def upload(data, name):
    return ContentFile(data, name=name)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (png(), "image/png"),
        (b"%PDF-1.7\n%...", "application/pdf"),
        (b'<?xml version="1.0"?>\n<!-- a plot -->\n<svg width="4"/>', "image/svg+xml"),
        (b"<!doctype html><html><script>alert(1)</script></html>", "text/html"),
        (b'{"auc": 0.9}', "application/json"),
        (b"step,loss\n1,0.9\n2,0.7\n", "text/csv"),
        (b"Trained on 4 GPUs.\nNothing else to say.", "text/plain"),
        (b"{not json", "text/plain"),
    ],
)  # fmt: skip
def test_the_type_comes_from_the_content(data, expected):
    assert files.sniff(io.BytesIO(data)) == expected


@pytest.mark.parametrize(
    "data",
    [b"PK\x03\x04zipped", b"\x7fELF\x02\x01", b"text then a \x00 byte", b"\xff\xfe\x00bad"],
)
def test_other_files_are_refused_naming_what_is_accepted(data):
    with pytest.raises(ValidationError, match="PNG"):
        files.sniff(io.BytesIO(data))


def test_a_damaged_image_is_refused():
    with pytest.raises(ValidationError, match="damaged"):
        files.sniff(io.BytesIO(png()[:40]))


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("ROC curve (v2).png", "image/png", "ROC-curve-v2.png"),
        ("../../etc/passwd", "text/plain", "passwd.txt"),
        ("C:\\Users\\me\\plot.JPEG", "image/jpeg", "plot.jpeg"),
        ("report.png", "text/html", "report.html"),  # the content decides
        ("courbe-précision.svg", "image/svg+xml", "courbe-precision.svg"),
        ("", "application/pdf", "file.pdf"),
        ("x" * 300 + ".csv", "text/csv", "x" * 96 + ".csv"),
    ],
)  # fmt: skip
def test_names_are_cleaned(name, content_type, expected):
    assert files.clean_name(name, content_type) == expected


def test_attaching_stores_the_bytes_by_hash_and_seals_them(project):
    page = project.pages.get(category="model")
    attachment = attachments.attach(page, upload(png(), "roc.png"), actor=cli_actor())
    assert (attachment.name, attachment.content_type, attachment.revision) == (
        "roc.png",
        "image/png",
        1,
    )
    assert default_storage.open(storage_name(attachment.sha256)).read() == png()
    row = attachment.history.get()
    assert (row.sha256, row.size, row.content_type, row.name) == (
        attachment.sha256,
        len(png()),
        "image/png",
        "roc.png",
    )
    assert AuditEntry.objects.filter(table="wiki.HistoricalAttachment", history_id=row.history_id)
    assert files.check_stored(attachment.sha256) is None


def test_replacing_keeps_every_version_and_the_same_bytes_change_nothing(project):
    run = make_training_run(project)
    first = attachments.attach(run, upload(png(), "curve.png"), actor=cli_actor())
    again = attachments.attach(run, upload(png(), "curve.png"), actor=cli_actor())
    assert again.revision == 1 and first.history.count() == 1
    second = attachments.attach(run, upload(png(colour=(0, 0, 0)), "curve.png"), actor=cli_actor())
    assert (second.pk, second.revision) == (first.pk, 2)
    assert [v.sha256 for v in attachments.versions(second)] == [second.sha256, first.sha256]
    assert default_storage.exists(storage_name(first.sha256))


def test_deleting_hides_it_and_keeps_the_file(project):
    page = project.pages.get(category="data")
    attachment = attachments.attach(page, upload(b"a,b\n1,2\n", "split.csv"), actor=cli_actor())
    attachments.remove(attachment, actor=cli_actor())
    assert not attachments.of(page).filter(name="split.csv").exists()
    assert default_storage.exists(storage_name(attachment.sha256))
    back = attachments.attach(page, upload(b"a,b\n1,2\n", "split.csv"), actor=cli_actor())
    assert (back.pk, back.revision, back.deleted) == (attachment.pk, 3, False)


def test_a_file_over_the_limit_is_refused_and_nothing_is_written(project, settings):
    settings.ATTACHMENT_MAX_BYTES = 100
    page = project.pages.get(category="data")
    with pytest.raises(ValidationError, match="limit"):
        attachments.attach(page, upload(b"x" * 101, "big.txt"), actor=cli_actor())
    assert not page.attachments.exists()


def test_a_changed_byte_in_storage_is_reported(project):
    page = project.pages.get(category="model")
    attachment = attachments.attach(page, upload(png(), "roc.png"), actor=cli_actor())
    path = default_storage.path(storage_name(attachment.sha256))
    with open(path, "r+b") as file:
        file.seek(-1, 2)
        last = file.read(1)[0]
        file.seek(-1, 2)
        file.write(bytes([last ^ 1]))
    assert "changed" in files.check_stored(attachment.sha256)
    default_storage.delete(storage_name(attachment.sha256))
    assert files.check_stored(attachment.sha256) == "missing from the storage"


def test_thumbnails_are_made_once(project):
    page = project.pages.get(category="model")
    attachment = attachments.attach(page, upload(png(1000, 500), "big.png"), actor=cli_actor())
    name = files.thumbnail(attachment.sha256)
    with default_storage.open(name) as file, Image.open(file) as image:
        assert image.size == (320, 160)
    made = default_storage.get_modified_time(name)
    assert files.thumbnail(attachment.sha256) == name
    assert default_storage.get_modified_time(name) == made


def test_changing_an_approved_page_s_figure_ends_its_approval(project, client_logged_in):
    page = project.pages.get(category="model")
    attachments.attach(page, upload(png(), "roc.png"), actor=cli_actor())
    approver = cli_actor(project.memberships.get().user)
    page = approve_page(page, actor=approver, revision=page.revision)
    assert page.review_state == "approved"
    attachments.attach(page, upload(png(colour=(0, 0, 0)), "roc.png"), actor=cli_actor())
    page.refresh_from_db()
    assert (page.review_state, page.approved_revision) == ("draft", page.revision)
    html = client_logged_in.get("/projects/churn/model/").content.decode()
    assert f"Approved revision {page.revision}; its attachments changed since" in html


def test_deeply_nested_json_is_text_not_an_error():
    assert files.sniff(io.BytesIO(b"[" * 200_000)) == "text/plain"


def test_an_empty_file_is_refused(project):
    page = project.pages.get(category="data")
    with pytest.raises(ValidationError, match="empty"):
        attachments.attach(page, upload(b"", "empty.txt"), actor=cli_actor())
    assert not page.attachments.exists()


def test_a_thumbnail_is_turned_as_the_camera_said(project):
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to show
    Image.new("RGB", (400, 200), "white").save(out, "JPEG", exif=exif)
    page = project.pages.get(category="model")
    attachment = attachments.attach(page, upload(out.getvalue(), "photo.jpg"), actor=cli_actor())
    with (
        default_storage.open(files.thumbnail(attachment.sha256)) as file,
        Image.open(file) as image,
    ):
        assert image.size == (160, 320)
