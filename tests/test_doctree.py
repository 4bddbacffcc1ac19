"""The documentation as a tree of Markdown files (wiki.doctree, issue 14 item 2): what
export_markdown writes and GET .../markdown.tar.gz sends, the same files byte for byte,
each page's front matter and body reading back as exactly what is stored."""

import io
import tarfile
from pathlib import Path

import pytest
import yaml
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from tests.factories import ProjectFactory, cli_actor, make_free_page, make_token
from tests.test_attachments import png
from wiki.doctree import page_text
from wiki.models import Page
from wiki.models.attachments import storage_name
from wiki.services import attachments
from wiki.services.pages import edit_page

pytestmark = pytest.mark.django_db

TREE = "/api/v1/projects/churn/markdown.tar.gz"
# Text YAML must keep exactly: a colon and a hash, leading spaces, trailing spaces on a
# line, a tab, quotes, non-ASCII, a document marker of its own, and no final newline.
AWKWARD = '# Heading: "quoted"\n  indented line  \n\ttab\n---\nnaïve ✓ #not-a-comment'


@pytest.fixture
def documented(project):
    model = Page.objects.get(project=project, slug="model")
    edit_page(
        model, actor=cli_actor(), base_revision=None, change_reason="docs",
        fields={"architecture": AWKWARD, "hyperparameters": [
            {"key": "learning_rate", "value": "0.05"}, {"key": "depth # max", "value": "- 6: deep"},
        ], "training_algorithm": "LightGBM.\n\nGradient *boosting*."},
        body="See ![the curve](attachment:roc.png).\n\nTrailing spaces  ",
    )  # fmt: skip
    attachments.attach(model, ContentFile(png(), name="roc.png"), actor=cli_actor())
    make_free_page(project, slug="runbook", title="Runbook: retraining", body=AWKWARD)
    return project


def read(text):
    """(front matter, body) of a page's file."""
    assert text.startswith("---\n")
    header, _, body = text[4:].partition("\n---\n")
    return yaml.safe_load(header), body


def test_export_markdown_writes_every_page_and_attachment_as_stored(documented, tmp_path):
    out = tmp_path / "docs"
    call_command("export_markdown", "--project", "churn", "--output", str(out))
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert names == [
        "attachments/model/roc.png", "data.md", "deployment.md", "maintenance.md", "model.md",
        "overview.md", "runbook.md", "workflow.md",
    ]  # fmt: skip
    for page in Page.objects.filter(project=documented):
        meta, body = read((out / f"{page.slug}.md").read_text(encoding="utf-8"))
        assert (meta["page"], meta["title"], body) == (page.slug, page.title, page.body)
        if page.spec is None:
            assert "fields" not in meta
        else:
            names = [field.name for field in page.spec.fields]
            assert list(meta["fields"]) == names  # every field, in the registry's order
            assert meta["fields"] == {
                name: page.fields.get(name, [] if page.spec.get_field(name).kind == "table" else "")
                for name in names
            }
    model = (out / "model.md").read_text(encoding="utf-8")
    # Markdown reads as written (YAML quotes what a block cannot hold: trailing spaces).
    assert "  training_algorithm: |-\n    LightGBM.\n\n    Gradient *boosting*.\n" in model
    assert read(model)[0]["fields"]["architecture"] == AWKWARD
    assert (out / "attachments/model/roc.png").read_bytes() == png()


def test_the_archive_holds_the_same_files_and_is_the_same_each_time(documented, user, tmp_path):
    out = tmp_path / "docs"
    call_command("export_markdown", "--project", "churn", "--output", str(out))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(user, ['read'], ['churn'])[1]}")
    response = client.get(TREE)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/gzip"
    assert 'filename="churn-docs.tar.gz"' in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        archived = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    on_disk = {
        str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    }
    assert archived == on_disk
    assert b"".join(client.get(TREE).streaming_content) == body  # deterministic


def test_the_archive_needs_a_token_that_may_read_the_project(documented, user):
    client = APIClient()
    assert client.get(TREE).status_code == 401
    ProjectFactory(slug="fraud")
    elsewhere = make_token(user, ["read"], ["fraud"])[1]
    client.credentials(HTTP_AUTHORIZATION=f"Token {elsewhere}")
    assert client.get(TREE).status_code == 403
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(user, ['read'], ['churn'])[1]}")
    assert client.get("/api/v1/projects/nope/markdown.tar.gz").status_code == 404


def test_a_missing_attachment_file_is_a_clear_error_not_a_crash(documented, user, tmp_path):
    (attachment,) = attachments.of(Page.objects.get(project=documented, slug="model"))
    default_storage.delete(storage_name(attachment.sha256))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(user, ['read'], ['churn'])[1]}")
    response = client.get(TREE)
    assert response.status_code == 409
    assert "attachments/model/roc.png" in response.json()["detail"]
    with pytest.raises(CommandError, match="missing from the file storage"):
        call_command("export_markdown", "--project", "churn", "--output", str(tmp_path / "d"))


def test_export_markdown_refuses_a_directory_with_files_and_an_unknown_project(
    documented, tmp_path
):
    full = tmp_path / "full"
    full.mkdir()
    (full / "old.md").write_text("an earlier export")
    with pytest.raises(CommandError, match="not an empty directory"):
        call_command("export_markdown", "--project", "churn", "--output", str(full))
    assert sorted(p.name for p in full.iterdir()) == ["old.md"]
    with pytest.raises(CommandError, match="no project 'nope'"):
        call_command("export_markdown", "--project", "nope", "--output", str(tmp_path / "x"))
    assert not Path(tmp_path / "x").exists()


def test_text_yaml_would_read_as_line_breaks_is_escaped(project):
    """NEL and the Unicode line and paragraph separators, which a YAML reader takes for
    line breaks unless they are escaped."""
    awkward = "a\x85b\nc\u2028d\u2029e\n"
    page = Page(slug="notes", title="\x85b", body=awkward)
    meta, body = read(page_text(page))
    assert (meta["title"], body) == ("\x85b", awkward)
    # A category page's fields are those of its project's template.
    model = Page(
        project=project, slug="model", category="model", title="Model",
        fields={"architecture": awkward},
    )  # fmt: skip
    assert read(page_text(model))[0]["fields"]["architecture"] == awkward
