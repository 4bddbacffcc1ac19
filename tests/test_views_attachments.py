"""Attachments in the browser: upload, delete, download, thumbnails, versions, and
``attachment:`` in the page, a revision and the live preview."""

import io

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from PIL import Image

from tests.factories import (
    ProjectFactory,
    UserFactory,
    cli_actor,
    make_deployment,
    make_training_run,
)
from tests.test_storage import s3  # noqa: F401 - the S3 server fixture
from wiki.models import Attachment, Membership
from wiki.models.attachments import storage_name
from wiki.services import attachments
from wiki.services.pages import edit_page

pytestmark = pytest.mark.django_db

PAGE = "/projects/churn/model/"
FILES = f"{PAGE}attachments/"


def png(width=40, height=30, colour=(200, 30, 30)):
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'
REPORT = b"<!doctype html><html><body><script>alert(1)</script><p>AUC 0.91</p></body></html>"


def upload_file(data, name):
    return ContentFile(data, name=name)


def history_rows():
    return Attachment.history.count()


def attach(target, data, name):
    return attachments.attach(target, upload_file(data, name), actor=cli_actor())


@pytest.fixture
def model_page(project):
    return project.pages.get(category="model")


def member(project, role, username):
    user = UserFactory(username=username)
    Membership.objects.create(project=project, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer(project):
    return member(project, Membership.Role.VIEWER, "vera")


@pytest.fixture
def editor(project):
    return member(project, Membership.Role.EDITOR, "ed")


# Uploading


def test_an_editor_uploads_files_and_comes_back_to_the_page(editor, model_page):
    response = editor.post(
        FILES,
        {
            "file": [upload_file(png(), "ROC curve.png"), upload_file(b"a,b\n1,2\n", "split")],
            "next": f"{PAGE}edit/",
        },
    )
    assert response.status_code == 302 and response["Location"] == f"{PAGE}edit/"
    found = {a.name: a for a in attachments.of(model_page)}
    assert set(found) == {"ROC-curve.png", "split.csv"}
    assert found["ROC-curve.png"].uploaded_by_name == "ed"
    assert found["split.csv"].content_type == "text/csv"
    html = editor.get(PAGE).content.decode()
    assert "Attached ROC-curve.png, split.csv." in html
    assert f'href="{FILES}ROC-curve.png"' in html
    assert f'src="{FILES}ROC-curve.png/thumbnail"' in html


def test_an_upload_from_the_editor_script_gets_json_with_the_markdown_and_the_panel(
    editor, model_page
):
    response = editor.post(
        FILES, {"file": upload_file(png(), "pasted-1")}, headers={"accept": "application/json"}
    )
    assert response.status_code == 201
    answer = response.json()
    assert answer["attachments"] == [
        {
            "name": "pasted-1.png",
            "url": f"{FILES}pasted-1.png",
            "content_type": "image/png",
            "markdown": "![pasted-1.png](attachment:pasted-1.png)",
        }
    ]
    assert "data-attachments" in answer["panel"] and "pasted-1.png" in answer["panel"]


def test_a_refused_file_refuses_the_whole_upload_naming_it(editor, model_page):
    before = history_rows()
    response = editor.post(
        FILES,
        {"file": [upload_file(png(), "ok.png"), upload_file(b"PK\x03\x04zip", "a.zip")]},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["errors"]["file"][0].startswith("a.zip: This type of file")
    assert history_rows() == before
    # The plain form gets a page that says so.
    response = editor.post(FILES, {"file": upload_file(b"PK\x03\x04zip", "a.zip")})
    assert response.status_code == 400
    assert "Nothing was attached" in response.content.decode()


def test_a_file_over_the_limit_is_a_413(editor, model_page, settings):
    settings.ATTACHMENT_MAX_BYTES = 100
    response = editor.post(
        FILES, {"file": upload_file(b"x" * 101, "big.txt")}, headers={"accept": "application/json"}
    )
    assert response.status_code == 413
    assert "limit" in response.json()["errors"]["file"][0]
    assert not model_page.attachments.exists()


def test_an_upload_without_a_file_is_a_400(editor, model_page):
    response = editor.post(FILES, {}, headers={"accept": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"errors": {"file": ["Choose a file to attach."]}}


def test_a_next_address_elsewhere_is_not_followed(editor, model_page):
    response = editor.post(
        FILES, {"file": upload_file(png(), "a.png"), "next": "https://evil.example/"}
    )
    assert response["Location"] == PAGE


def test_a_viewer_can_neither_upload_nor_delete(viewer, model_page):
    attach(model_page, png(), "roc.png")
    before = history_rows()
    assert viewer.post(FILES, {"file": upload_file(png(), "x.png")}).status_code == 403
    assert viewer.post(f"{FILES}roc.png/delete/").status_code == 403
    assert history_rows() == before
    html = viewer.get(PAGE).content.decode()
    assert "roc.png" in html and "Attach files" not in html and "/delete/" not in html


def test_uploads_and_deletes_need_the_csrf_token(project, model_page, user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    attach(model_page, png(), "roc.png")
    before = history_rows()
    assert client.post(FILES, {"file": upload_file(png(), "x.png")}).status_code == 403
    assert client.post(f"{FILES}roc.png/delete/").status_code == 403
    assert history_rows() == before


def test_anonymous_visitors_are_sent_to_log_in(model_page):
    attach(model_page, png(), "roc.png")
    for address in [f"{FILES}roc.png", f"{FILES}roc.png/thumbnail", f"{FILES}roc.png/versions/"]:
        response = Client().get(address)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    response = Client().post(FILES, {"file": upload_file(png(), "x.png")})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_another_projects_attachments_are_not_found(client_logged_in, project):
    other = ProjectFactory(slug="fraud")
    attach(other.pages.get(category="model"), png(), "roc.png")
    base = "/projects/fraud/model/attachments/"
    for address in [f"{base}roc.png", f"{base}roc.png/thumbnail", f"{base}roc.png/versions/"]:
        assert client_logged_in.get(address).status_code == 404
    assert client_logged_in.post(base, {"file": upload_file(png(), "x.png")}).status_code == 404
    assert client_logged_in.post(f"{base}roc.png/delete/").status_code == 404


def test_an_attachment_of_another_page_is_not_found_under_this_one(client_logged_in, project):
    attach(project.pages.get(category="data"), png(), "roc.png")
    assert client_logged_in.get(f"{FILES}roc.png").status_code == 404


# Deleting


def test_deleting_is_a_new_revision_and_keeps_the_file(editor, model_page):
    attachment = attach(model_page, png(), "roc.png")
    response = editor.post(f"{FILES}roc.png/delete/", {"next": PAGE})
    assert response.status_code == 302 and response["Location"] == PAGE
    attachment.refresh_from_db()
    assert attachment.deleted and attachment.revision == 2
    assert editor.get(f"{FILES}roc.png").status_code == 404
    # The old version is still there for the history.
    response = editor.get(f"{FILES}roc.png?v={attachment.sha256}")
    assert response.status_code == 200 and b"".join(response.streaming_content) == png()
    assert editor.get(f"{FILES}roc.png/delete/").status_code == 405


# Reading


def test_the_file_is_served_with_its_sniffed_type_and_no_active_content(
    client_logged_in, model_page
):
    attach(model_page, SVG, "diagram.svg")
    attach(model_page, REPORT, "report.html")
    before = history_rows()
    svg = client_logged_in.get(f"{FILES}diagram.svg")
    assert svg["Content-Type"] == "image/svg+xml"
    assert svg["X-Content-Type-Options"] == "nosniff"
    assert svg["Content-Security-Policy"].startswith("sandbox;")
    assert "frame-ancestors" not in svg["Content-Security-Policy"]
    assert svg["X-Frame-Options"] == "DENY"
    # An HTML report may be framed by the wiki's own pages (sandboxed) and nobody else.
    report = client_logged_in.get(f"{FILES}report.html")
    assert report["Content-Security-Policy"].startswith("sandbox;")
    assert report["Content-Security-Policy"].endswith("; frame-ancestors 'self'")
    assert report["X-Frame-Options"] == "SAMEORIGIN"
    download = client_logged_in.get(f"{FILES}report.html?download=1")
    assert download["Content-Disposition"].startswith("attachment;")
    assert download["X-Frame-Options"] == "DENY"
    assert history_rows() == before


def test_a_page_of_the_wiki_frames_only_its_own_origin_and_nobody_frames_it(
    client_logged_in, model_page
):
    response = client_logged_in.get(PAGE)
    policy = response["Content-Security-Policy"]
    # frame-src falls back to default-src: the wiki's own origin only.
    assert "default-src 'self'" in policy and "frame-src" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"


def test_an_older_version_is_served_only_if_the_history_has_it(client_logged_in, model_page):
    first = attach(model_page, png(colour=(1, 2, 3)), "roc.png")
    old_sha = first.sha256
    second = attach(model_page, png(colour=(4, 5, 6)), "roc.png")
    current = client_logged_in.get(f"{FILES}roc.png")
    assert current["ETag"] == f'"{second.sha256}"'
    old = client_logged_in.get(f"{FILES}roc.png?v={old_sha}")
    assert b"".join(old.streaming_content) == png(colour=(1, 2, 3))
    other = attach(project_page(model_page, "data"), png(colour=(7, 8, 9)), "x.png")
    assert client_logged_in.get(f"{FILES}roc.png?v={other.sha256}").status_code == 404
    cached = client_logged_in.get(f"{FILES}roc.png", headers={"if-none-match": current["ETag"]})
    assert cached.status_code == 304


def project_page(page, category):
    return page.project.pages.get(category=category)


def test_thumbnails_are_small_pngs_of_images_and_an_svg_is_its_own(client_logged_in, model_page):
    attach(model_page, png(1000, 500), "big.png")
    attach(model_page, SVG, "diagram.svg")
    attach(model_page, b"a,b\n1,2\n", "split.csv")
    before = history_rows()
    response = client_logged_in.get(f"{FILES}big.png/thumbnail")
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    with Image.open(io.BytesIO(b"".join(response.streaming_content))) as image:
        assert max(image.size) == 320
    again = client_logged_in.get(
        f"{FILES}big.png/thumbnail", headers={"if-none-match": response["ETag"]}
    )
    assert again.status_code == 304
    svg = client_logged_in.get(f"{FILES}diagram.svg/thumbnail")
    assert svg["Content-Type"] == "image/svg+xml" and svg["Content-Security-Policy"].startswith(
        "sandbox"
    )
    assert client_logged_in.get(f"{FILES}split.csv/thumbnail").status_code == 404
    assert history_rows() == before


def test_a_file_missing_from_storage_is_a_410_not_a_500(client_logged_in, model_page):
    from django.core.files.storage import default_storage

    attachment = attach(model_page, png(), "roc.png")
    default_storage.delete(storage_name(attachment.sha256))
    response = client_logged_in.get(f"{FILES}roc.png")
    assert response.status_code == 410 and b"missing" in response.content


def test_the_versions_page_lists_the_history_and_frames_a_report_sandboxed(
    client_logged_in, model_page
):
    attach(model_page, REPORT, "report.html")
    second = attach(model_page, REPORT.replace(b"0.91", b"0.93"), "report.html")
    before = history_rows()
    html = client_logged_in.get(f"{FILES}report.html/versions/").content.decode()
    assert f'<iframe src="{FILES}report.html" sandbox title=' in html
    assert html.count("download=1") == 3  # the button and both versions
    assert f"?v={second.sha256}&amp;download=1" in html
    assert history_rows() == before


# attachment: in Markdown


def test_the_page_shows_attached_images_linked_full_size(client_logged_in, model_page):
    attach(model_page, png(), "roc.png")
    edit_page(
        model_page,
        actor=cli_actor(),
        base_revision=model_page.revision,
        change_reason="figures",
        body="![ROC](attachment:roc.png) and ![gone](attachment:gone.png)",
    )
    html = client_logged_in.get(PAGE).content.decode()
    url = f"{FILES}roc.png"
    assert f'<a class="attachment-image" href="{url}"><img alt="ROC" src="{url}"></a>' in html
    assert "missing attachment: gone.png" in html


def test_the_panel_and_the_figures_share_one_query(client_logged_in, model_page):
    attach(model_page, png(), "roc.png")
    edit_page(
        model_page,
        actor=cli_actor(),
        base_revision=model_page.revision,
        change_reason="figure",
        body="![ROC](attachment:roc.png)",
    )
    table = Attachment._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        html = client_logged_in.get(PAGE).content.decode()
    assert f'src="{FILES}roc.png"' in html and f'src="{FILES}roc.png/thumbnail"' in html
    assert len([q for q in queries if f'FROM "{table}"' in q["sql"]]) == 1


def test_the_live_preview_resolves_attachments(client_logged_in, model_page):
    attach(model_page, png(), "roc.png")
    response = client_logged_in.post(f"{PAGE}preview/", {"body": "![ROC](attachment:roc.png)"})
    assert f'src="{FILES}roc.png"' in response.content.decode()


def test_an_old_revision_shows_the_attachments_it_was_saved_with(client_logged_in, model_page):
    first = attach(model_page, png(colour=(1, 2, 3)), "roc.png")
    saved = edit_page(
        model_page,
        actor=cli_actor(),
        base_revision=model_page.revision,
        change_reason="figure",
        body="![ROC](attachment:roc.png) [notes](attachment:notes.txt)",
    )
    attach(model_page, png(colour=(4, 5, 6)), "roc.png")
    attach(model_page, b"later notes", "notes.txt")
    html = client_logged_in.get(f"{PAGE}revisions/{saved.revision}/").content.decode()
    assert f'src="{FILES}roc.png?v={first.sha256}"' in html
    assert "There is no attachment named notes.txt" in html
    current = client_logged_in.get(PAGE).content.decode()
    assert (
        f'src="{FILES}roc.png"' in current
        and 'href="/projects/churn/model/attachments/notes.txt"' in current
    )


# Records


@pytest.mark.parametrize("kind", ["runs", "deployments", "model-versions"])
def test_records_have_the_same_attachment_routes(editor, viewer, project, kind):
    if kind == "runs":
        target = make_training_run(project)
        key = target.pk
    elif kind == "deployments":
        target = make_deployment(project)
        key = target.pk
    else:
        target = make_training_run(project, model_version="2.0.0").model_version
        key = "2.0.0"
    base = f"/projects/churn/{kind}/{key}/attachments/"
    assert viewer.post(base, {"file": upload_file(png(), "x.png")}).status_code == 403
    response = editor.post(
        base, {"file": upload_file(png(), "curve.png")}, headers={"accept": "application/json"}
    )
    assert response.status_code == 201
    assert [a.name for a in attachments.of(target)] == ["curve.png"]
    # The record's own page lists it (viewers see no upload form).
    html = viewer.get(f"/projects/churn/{kind}/{key}/").content.decode()
    assert f'href="{base}curve.png"' in html and "Attach files" not in html
    assert viewer.get(f"{base}curve.png").status_code == 200
    assert viewer.get(f"{base}curve.png/thumbnail").status_code == 200
    html = viewer.get(f"{base}curve.png/versions/").content.decode()
    assert f'href="/projects/churn/{kind}/{key}/"' in html
    assert editor.post(f"{base}curve.png/delete/").status_code == 302
    assert viewer.get(f"{base}curve.png").status_code == 404
    assert viewer.get(f"/projects/churn/{kind}/999999/attachments/curve.png").status_code == 404


# Object storage


def test_files_go_through_object_storage_and_an_outage_is_a_503_that_writes_nothing(
    s3,  # noqa: F811 - the fixture imported above
    editor,
    model_page,
):
    response = editor.post(FILES, {"file": upload_file(png(), "roc.png")})
    assert response.status_code == 302
    attachment = attachments.of(model_page).get(name="roc.png")
    assert s3.read(storage_name(attachment.sha256)) == png()
    assert b"".join(editor.get(f"{FILES}roc.png").streaming_content) == png()

    s3.stop()
    before = history_rows()
    response = editor.get(f"{FILES}roc.png")
    assert response.status_code == 503 and response["Retry-After"]
    response = editor.post(
        FILES, {"file": [upload_file(b"a,b\n1,2\n", "a.csv"), upload_file(b"x", "b.txt")]}
    )
    assert response.status_code == 503 and response["Retry-After"]
    assert history_rows() == before
    assert [a.name for a in attachments.of(model_page)] == ["roc.png"]


def test_a_nul_in_a_name_or_version_is_no_such_thing(client_logged_in, project):
    page = project.pages.get(category="model")
    attachments.attach(page, ContentFile(png(), name="roc.png"), actor=cli_actor())
    base = "/projects/churn/model/attachments/roc.png"
    assert client_logged_in.get(f"{base}?v=%00").status_code == 404
    assert client_logged_in.get("/projects/churn/model/attachments/r%00c.png").status_code == 404
    assert client_logged_in.get("/projects/churn/model-versions/1%00/").status_code == 404
    assert client_logged_in.get(base).status_code == 200


def test_two_files_of_one_upload_may_not_share_a_name(client_logged_in, project):
    one, two = (
        ContentFile(png(), name="same.png"),
        ContentFile(png(colour=(0, 0, 0)), name="same.png"),
    )
    response = client_logged_in.post("/projects/churn/model/attachments/", {"file": [one, two]})
    assert response.status_code == 400
    assert "Another file of this upload is named same.png" in response.content.decode()
    assert not Attachment.objects.exists()
