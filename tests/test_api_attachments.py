"""Attachments over the API: upload (multipart), list, download, replace, delete, versions."""

import hashlib
import io
import zipfile

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from api.parsers import MULTIPART_ENVELOPE_BYTES
from tests.factories import ProjectFactory, UserFactory, make_deployment, make_token
from tests.factories import make_training_run as run_of
from tests.test_storage import s3  # noqa: F401  (the fixture: a real S3 server)
from wiki import storage
from wiki.models import Attachment, IdempotencyKey, Membership
from wiki.models.attachments import storage_name

pytestmark = pytest.mark.django_db

PAGE = "/api/v1/projects/churn/pages/model/attachments/"


def png(colour=(200, 30, 30)):
    out = io.BytesIO()
    Image.new("RGB", (4, 3), colour).save(out, "PNG")
    return out.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def zipped():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.txt", "hello")
    return out.getvalue()


def upload(client, url, data, filename="plot.png", **fields):
    """POST ``data`` as the file ``filename`` (multipart), with ``fields`` and headers."""
    headers = {k: v for k, v in fields.items() if k.startswith("HTTP_")}
    form = {k: v for k, v in fields.items() if not k.startswith("HTTP_")}
    form["file"] = SimpleUploadedFile(filename, data)
    return client.post(url, form, format="multipart", **headers)


def content(response):
    return b"".join(response.streaming_content)


@pytest.fixture
def writer(api, user, project):
    """A client with a pages:write and records:write token for churn."""
    return api(make_token(user, scopes=["pages:write", "records:write"], projects=["churn"])[1])


def test_a_png_uploaded_to_a_page_is_listed_and_downloaded(writer, project):
    response = upload(writer, PAGE, png(), "ROC curve.png", change_reason="Add the ROC curve")
    assert response.status_code == 201, response.json()
    item = response.json()
    url = f"http://testserver{PAGE}ROC-curve.png/"
    assert item | {"created_at": None, "updated_at": None} == {
        "name": "ROC-curve.png",
        "sha256": hashlib.sha256(png()).hexdigest(),
        "size": len(png()),
        "content_type": "image/png",
        "url": url,
        "revision": 1,
        "uploaded_by": "alice",
        "created_at": None,
        "updated_at": None,
    }
    assert response["Location"] == url
    row = Attachment.objects.get().history.get()
    assert (row.history_change_reason, row.history_source) == ("Add the ROC curve", "api")

    listed = writer.get(PAGE).json()
    assert listed["count"] == 1 and listed["results"] == [item]

    download = writer.get(url)
    assert download.status_code == 200
    assert content(download) == png()
    assert download["Content-Type"] == "image/png"
    assert download["X-Content-Type-Options"] == "nosniff"
    assert download["ETag"] == f'"{item["sha256"]}"'
    assert download["Content-Disposition"].startswith("inline")
    assert writer.get(url, {"download": "1"})["Content-Disposition"] == (
        'attachment; filename="ROC-curve.png"'
    )
    again = writer.get(url, HTTP_IF_NONE_MATCH=download["ETag"])
    assert again.status_code == 304 and again["ETag"] == download["ETag"]


def test_a_run_a_deployment_and_a_model_version_take_attachments(writer, project):
    run = run_of(project, model_version="2.0.0")
    deployment = make_deployment(project, model_version="2.0.0")
    for url in (
        f"/api/v1/projects/churn/training-runs/{run.pk}/attachments/",
        f"/api/v1/projects/churn/deployments/{deployment.pk}/attachments/",
        "/api/v1/projects/churn/model-versions/2.0.0/attachments/",
    ):
        response = upload(writer, url, b"step,loss\n1,0.9\n2,0.7\n", "curve.csv")
        assert response.status_code == 201, response.json()
        assert response.json()["url"] == f"http://testserver{url}curve.csv/"
        assert content(writer.get(f"{url}curve.csv/")) == b"step,loss\n1,0.9\n2,0.7\n"
    targets = Attachment.objects.order_by("id").values_list(
        "training_run", "deployment", "model_version"
    )
    assert list(targets) == [
        (run.pk, None, None),
        (None, deployment.pk, None),
        (None, None, run.model_version.pk),
    ]
    missing = writer.get("/api/v1/projects/churn/training-runs/999999/attachments/")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "Churn model has no training run 999999."
    unknown = writer.get("/api/v1/projects/churn/model-versions/9.9/attachments/")
    assert unknown.json()["detail"] == "Churn model has no model version '9.9'."


def test_svg_and_html_are_served_in_a_sandbox(writer, project):
    upload(writer, PAGE, SVG, "chart.svg")
    upload(writer, PAGE, b"<html><script>alert(1)</script></html>", "report.html")
    for name, content_type in (("chart.svg", "image/svg+xml"), ("report.html", "text/html")):
        response = writer.get(f"{PAGE}{name}/")
        assert response["Content-Type"] == content_type
        assert response["Content-Security-Policy"].startswith("sandbox;")
        assert response["X-Content-Type-Options"] == "nosniff"


def test_replacing_keeps_the_old_version_downloadable_by_its_hash(writer, project):
    first = upload(writer, PAGE, png(), "roc.png").json()
    second = upload(writer, PAGE, png((0, 0, 0)), "roc.png").json()
    assert (second["revision"], second["name"]) == (2, "roc.png")
    assert second["sha256"] != first["sha256"]
    url = f"{PAGE}roc.png/"
    assert content(writer.get(url)) == png((0, 0, 0))
    old = writer.get(url, {"sha256": first["sha256"]})
    assert old.status_code == 200 and content(old) == png()
    assert old["ETag"] == f'"{first["sha256"]}"'
    never = writer.get(url, {"sha256": hashlib.sha256(b"other").hexdigest()})
    assert never.status_code == 404
    assert "never had a version" in never.json()["detail"]
    garbled = writer.get(url, {"sha256": "abc"})
    assert garbled.status_code == 400 and "sha256" in garbled.json()["errors"]

    versions = writer.get(f"{url}versions/").json()["results"]
    assert [(v["revision"], v["sha256"], v["deleted"]) for v in versions] == [
        (2, second["sha256"], False),
        (1, first["sha256"], False),
    ]
    assert versions[1]["url"] == f"http://testserver{url}?sha256={first['sha256']}"
    assert (versions[0]["user"], versions[0]["source"], versions[0]["reason"]) == (
        "alice",
        "api",
        "Replaced roc.png",
    )


def test_the_list_takes_as_many_queries_for_many_attachments_as_for_one(writer, project):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert writer.get(PAGE).status_code == 200
        return len(captured)

    upload(writer, PAGE, png(), "one.png")
    one = queries()
    for n in range(5):
        upload(writer, PAGE, png((n, n, n)), f"more-{n}.png")
    assert queries() == one


def test_the_same_bytes_again_change_nothing(writer, project):
    first = upload(writer, PAGE, png(), "roc.png").json()
    again = upload(writer, PAGE, png(), "roc.png")
    assert again.status_code == 201 and again.json()["revision"] == first["revision"] == 1
    assert Attachment.objects.get().history.count() == 1


def test_deleting_hides_it_and_keeps_its_versions(writer, project):
    first = upload(writer, PAGE, png(), "roc.png").json()
    url = f"{PAGE}roc.png/"
    too_long = writer.delete(f"{url}?change_reason={'x' * 1001}")
    assert too_long.status_code == 400 and "change_reason" in too_long.json()["errors"]
    deleted = writer.delete(f"{url}?change_reason=Superseded")
    assert deleted.status_code == 204
    assert writer.get(PAGE).json()["results"] == []
    gone = writer.get(url)
    assert gone.status_code == 404 and "was deleted" in gone.json()["detail"]
    assert writer.delete(url).status_code == 404
    versions = writer.get(f"{url}versions/").json()["results"]
    assert [(v["revision"], v["deleted"], v["reason"]) for v in versions] == [
        (2, True, "Superseded"),
        (1, False, "Attached roc.png"),
    ]
    old = writer.get(url, {"sha256": first["sha256"]})
    assert old.status_code == 200 and content(old) == png()
    assert default_storage.exists(storage_name(Attachment.objects.get().sha256))


def test_an_idempotent_upload_replays_its_first_answer(writer, project):
    first = upload(writer, PAGE, png(), "roc.png", HTTP_IDEMPOTENCY_KEY="ci-42-roc")
    assert first.status_code == 201
    # A retry: the same file and name (in a multipart body with another boundary).
    replay = upload(writer, PAGE, png(), "roc.png", HTTP_IDEMPOTENCY_KEY="ci-42-roc")
    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert replay["Idempotent-Replayed"] == "true"
    other_file = upload(writer, PAGE, png((0, 0, 0)), "roc.png", HTTP_IDEMPOTENCY_KEY="ci-42-roc")
    assert other_file.status_code == 422
    assert "already used for a different request" in other_file.json()["detail"]
    other_name = upload(writer, PAGE, png(), "auc.png", HTTP_IDEMPOTENCY_KEY="ci-42-roc")
    assert other_name.status_code == 422
    assert Attachment.objects.get().history.count() == 1
    assert IdempotencyKey.objects.count() == 1


def test_a_refused_upload_does_not_use_its_key_up(writer, project):
    refused = upload(writer, PAGE, zipped(), "model.zip", HTTP_IDEMPOTENCY_KEY="k")
    assert refused.status_code == 415
    assert upload(writer, PAGE, png(), HTTP_IDEMPOTENCY_KEY="k").status_code == 201


def test_a_declared_length_over_the_limit_is_413_before_reading(writer, project, settings):
    settings.ATTACHMENT_MAX_BYTES = 1024 * 1024
    declared = str(1024 * 1024 + MULTIPART_ENVELOPE_BYTES + 1)
    response = writer.post(
        PAGE, {"file": SimpleUploadedFile("a.png", png())}, format="multipart",
        CONTENT_LENGTH=declared,
    )  # fmt: skip
    assert response.status_code == 413
    assert response.json()["detail"] == (
        f"The upload is over the limit of 1 MB per file (Content-Length: {declared})."
    )
    assert not Attachment.objects.exists()


def test_a_file_over_the_limit_is_413(writer, project, settings):
    settings.ATTACHMENT_MAX_BYTES = 1024 * 1024
    # Within the envelope's allowance, so only its real size tells.
    response = upload(writer, PAGE, b"x" * (1024 * 1024 + 1), "big.txt")
    assert response.status_code == 413
    assert response.json()["detail"] == "The file is over the limit of 1 MB."
    assert not Attachment.objects.exists() and not IdempotencyKey.objects.exists()


def test_a_zip_is_415_naming_what_is_accepted(writer, project):
    response = upload(writer, PAGE, zipped(), "model.zip")
    assert response.status_code == 415
    assert response.json()["detail"].startswith("This type of file is not accepted.")
    assert "PNG" in response.json()["detail"]
    assert not Attachment.objects.exists()


def test_json_instead_of_multipart_is_415(writer, project):
    response = writer.post(PAGE, {"file": "plot.png"})
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["detail"]


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"name": "roc.png"}, "file", "No file was submitted."),
        ({"file": "not a file"}, "file", "The submitted data was not a file."),
        ({"file": "x", "colour": "red"}, "colour", "Unknown field."),
    ],
)
def test_a_missing_file_or_unknown_field_is_400_naming_it(writer, project, form, field, message):
    response = writer.post(PAGE, form, format="multipart")
    assert response.status_code == 400
    assert message in response.json()["errors"][field][0]


def test_a_file_sent_twice_is_400(writer, project):
    files = [SimpleUploadedFile("a.png", png()), SimpleUploadedFile("b.png", png())]
    response = writer.post(PAGE, {"file": files}, format="multipart")
    assert response.status_code == 400
    assert response.json()["errors"] == {"file": ["Given more than once."]}


def test_djangos_own_limits_on_the_form_answer_in_json(writer, project):
    long_field = upload(writer, PAGE, png(), name="x" * (3 * 1024 * 1024))
    assert long_field.status_code == 413
    assert long_field.json()["detail"].startswith("The form's fields are too long")
    many = [SimpleUploadedFile(f"{n}.txt", b"x") for n in range(101)]
    too_many = writer.post(PAGE, {"file": many}, format="multipart")
    assert too_many.status_code == 400
    assert too_many.json()["detail"].startswith("The multipart body is refused")


def test_a_damaged_image_is_400(writer, project):
    response = upload(writer, PAGE, png()[:40], "roc.png")
    assert response.status_code == 400
    assert "damaged" in response.json()["errors"]["file"][0]


def test_scopes_decide_who_may_upload_and_delete(api, user, project):
    run = run_of(project)
    run_url = f"/api/v1/projects/churn/training-runs/{run.pk}/attachments/"
    reader = api(make_token(user, scopes=["read"], projects=["churn"])[1])
    pipeline = api(make_token(user, scopes=["records:write"], projects=["churn"])[1])
    editor = api(make_token(user, scopes=["pages:write"], projects=["churn"])[1])

    refused = upload(reader, PAGE, png())
    assert refused.status_code == 403
    assert refused.json()["detail"] == "This token lacks the 'pages:write' scope."
    assert upload(pipeline, PAGE, png()).status_code == 403
    assert upload(editor, run_url, png()).status_code == 403
    assert upload(editor, PAGE, png()).status_code == 201
    assert upload(pipeline, run_url, png()).status_code == 201
    # A read token reads them, and cannot delete them.
    assert reader.get(PAGE).json()["count"] == 1
    assert content(reader.get(f"{run_url}plot.png/")) == png()
    assert reader.delete(f"{run_url}plot.png/").status_code == 403
    assert pipeline.delete(f"{PAGE}plot.png/").status_code == 403


def test_other_projects_attachments_are_out_of_reach(api, project):
    outsider = UserFactory(username="mallory")
    fraud = ProjectFactory(slug="fraud")
    Membership.objects.create(project=fraud, user=outsider, role="maintainer")
    key = make_token(outsider, scopes=["pages:write", "records:write"], projects=["fraud"])[1]
    client = api(key)
    assert client.get(PAGE).status_code == 404
    assert upload(client, PAGE, png()).status_code == 404
    # A record of churn is not found under fraud's URL either.
    run = run_of(project)
    response = upload(client, f"/api/v1/projects/fraud/training-runs/{run.pk}/attachments/", png())
    assert response.status_code == 404
    assert not Attachment.objects.exists()


def test_without_a_token_it_is_401(api, project, writer):
    upload(writer, PAGE, png())
    assert api().get(PAGE).status_code == 401
    assert api().get(f"{PAGE}plot.png/").status_code == 401
    assert upload(api(), PAGE, png()).status_code == 401
    assert api().delete(f"{PAGE}plot.png/").status_code == 401


def test_unknown_names_and_parameters_are_refused_in_json(writer, project):
    response = writer.get(f"{PAGE}nothing.png/")
    assert response.status_code == 404
    assert response.json()["detail"] == "The page 'model' has no attachment 'nothing.png'."
    upload(writer, PAGE, png())
    assert writer.get(f"{PAGE}plot.png/", {"dl": "1"}).status_code == 400
    assert writer.get(PAGE, {"name": "plot.png"}).status_code == 400
    assert writer.get(f"{PAGE}other.png/versions/").status_code == 404


def test_bytes_lost_from_storage_are_410(writer, project):
    upload(writer, PAGE, png())
    default_storage.delete(storage_name(Attachment.objects.get().sha256))
    response = writer.get(f"{PAGE}plot.png/")
    assert response.status_code == 410
    assert "gone from the file storage" in response.json()["detail"]


def test_a_storage_that_does_not_answer_is_503_with_retry_after(s3, writer, project):  # noqa: F811
    assert upload(writer, PAGE, png()).status_code == 201
    s3.stop()
    for response in (writer.get(f"{PAGE}plot.png/"), upload(writer, PAGE, png((1, 2, 3)))):
        assert response.status_code == 503
        assert response["Retry-After"] == str(storage.RETRY_AFTER)
        assert "file storage does not answer" in response.json()["detail"]
    assert Attachment.objects.get().revision == 1
