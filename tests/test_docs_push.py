"""Docs as code (issue 14 item 2): a folder of Markdown files with front matter pushed as
revisions (wiki.services.pages.push_tree, POST .../docs/, the CI client's docs-push), the
commit as their origin, never over a page edited in the wiki since the last push."""

import json
import subprocess

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from tests.factories import cli_actor, history_lines, make_free_page, make_token
from tests.test_ci_client import run_client
from wiki import audit, doctree
from wiki.history import Actor, Source, git_origin
from wiki.models import Page
from wiki.services.pages import TreeConflict, TreeFile, edit_page, push_tree

pytestmark = pytest.mark.django_db

REPO = "https://git.example.com/ml/churn"
ORIGIN = git_origin(
    repository=REPO, branch="main", commit="a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
)
WEB = Actor(user=None, source=Source.WEB)
DOCS = "/api/v1/projects/churn/docs/"


def page(project, slug):
    return Page.objects.get(project=project, slug=slug)


def exported(project):
    """The project's tree as push_tree takes it: {path: text}."""
    return {path: item.decode() for path, item in doctree.files(project) if path.endswith(".md")}


def push(project, texts, previous=None, origin=ORIGIN, reason="Describe the model"):
    files = [TreeFile(path, text, (previous or {}).get(path)) for path, text in texts.items()]
    return push_tree(project, actor=cli_actor(), files=files, origin=origin, change_reason=reason)


def with_body(text, body):
    """``text`` (a page's file) with its body replaced."""
    header, _, _ = text[4:].partition("\n---\n")
    return f"---\n{header}\n---\n{body}"


def test_a_file_reads_back_as_the_page_it_was_written_from(project):
    edit_page(
        page(project, "model"), actor=cli_actor(), base_revision=None, change_reason="",
        fields={"architecture": "Trees: 400\n  deep", "hyperparameters": [
            {"key": "depth", "value": "6"}]}, body="Body\r\nwith a line",
    )  # fmt: skip
    model = page(project, "model")
    parsed = doctree.read(doctree.page_text(model).replace("\n", "\r\n"))
    assert (parsed.slug, parsed.title, parsed.body) == ("model", model.title, model.body)
    assert {k: v for k, v in parsed.fields.items() if v} == model.fields


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# no front matter", "Must start with YAML front matter"),
        ("---\npage: model\n", "no closing '---'"),
        ("---\npage: [model\n---\n", "not valid YAML"),
        ("---\n- model\n---\n", "must be a mapping"),
        ("---\ntitle: Model\n---\n", "which page this is"),
        ("---\npage: model\nlayout: post\n---\n", "Unknown front matter keys: layout"),
        ("---\npage: model\nfields: text\n---\n", "fields must be a mapping"),
        ("---\npage: model\ntitle: 2024-06-01\n---\n", "title must be text"),
    ],
)
def test_a_file_that_is_not_a_page_is_refused_saying_why(text, message):
    with pytest.raises(ValidationError) as refused:
        doctree.read(text)
    assert message in refused.value.messages[0]


def test_pushing_the_export_back_writes_nothing(project):
    make_free_page(project, slug="runbook", title="Runbook", body="Steps: *restart*.")
    rows = Page.history.count()
    outcomes = push(project, exported(project))
    assert {how for _, _, how in outcomes} == {"unchanged"}
    assert [path for path, _, _ in outcomes] == sorted(exported(project))
    assert Page.history.count() == rows


def test_a_changed_file_is_a_revision_with_the_commit_as_its_origin(project):
    texts = exported(project)
    texts["model.md"] = with_body(texts["model.md"], "Gradient boosting, 400 trees.")
    before = page(project, "model").revision
    outcomes = push(project, texts)
    assert [(path, how) for path, _, how in outcomes if how != "unchanged"] == [
        ("model.md", "changed")
    ]
    model = page(project, "model")
    assert (model.revision, model.body) == (before + 1, "Gradient boosting, 400 trees.")
    row = model.history.get(revision=model.revision)
    assert row.history_origin == ORIGIN
    assert row.history_change_reason == "Describe the model"
    assert audit.verify(audit.head_for(project)).ok


def test_a_page_edited_in_the_wiki_since_the_last_push_is_never_overwritten(project):
    texts = exported(project)
    texts["model.md"] = with_body(texts["model.md"], "From git, first.")
    push(project, texts)
    # Someone edits two pages in the browser; the next push changes one of them, and
    # another page nobody touched.
    model = page(project, "model")
    edit_page(model, actor=WEB, base_revision=model.revision, change_reason="", body="Web.")
    texts["model.md"] = with_body(texts["model.md"], "From git, second.")
    texts["data.md"] = with_body(texts["data.md"], "Data, from git.")
    rows = Page.history.count()
    with pytest.raises(TreeConflict) as conflict:
        push(project, texts)
    assert [(path, p.slug) for path, p, _ in conflict.value.conflicts] == [("model.md", "model")]
    assert "model.md: 'model' was changed in the wiki since the last push" in str(conflict.value)
    assert "Nothing was written" in str(conflict.value)
    # All or nothing: the page without a conflict was not written either.
    assert Page.history.count() == rows
    assert (page(project, "model").body, page(project, "data").body) == ("Web.", "")


def test_the_first_push_after_an_export_goes_through_when_the_page_is_as_exported(project):
    # The page was last written in the wiki, never pushed; git has the export as the
    # commit before, and the page still reads as that: the push may replace it.
    model = page(project, "model")
    edit_page(model, actor=WEB, base_revision=model.revision, change_reason="", body="Web.")
    before = exported(project)
    after = dict(before, **{"model.md": with_body(before["model.md"], "Edited in git.")})
    with pytest.raises(TreeConflict):
        push(project, after)  # without the commit before, the wiki cannot tell
    push(project, after, previous=before)
    assert page(project, "model").body == "Edited in git."
    # Had the page moved on since that export, the same push is a conflict.
    model = page(project, "model")
    edit_page(model, actor=WEB, base_revision=model.revision, change_reason="", body="Again.")
    newer = dict(after, **{"model.md": with_body(after["model.md"], "Later in git.")})
    with pytest.raises(TreeConflict):
        push(project, newer, previous=after, origin=git_origin(
            repository="https://git.example.com/other", branch="", commit="abcdef1"))  # fmt: skip


def test_a_push_creates_the_free_pages_it_names(project):
    text = "---\npage: runbook\ntitle: 'Runbook: retraining'\n---\nStep one."
    outcomes = push(project, {"runbook.md": text})
    runbook = page(project, "runbook")
    assert [(path, how) for path, _, how in outcomes] == [("runbook.md", "created")]
    assert (runbook.title, runbook.body) == ("Runbook: retraining", "Step one.")
    assert runbook.history.get().history_origin == ORIGIN
    assert push(project, {"runbook.md": text})[0][2] == "unchanged"


def test_invalid_files_are_named_and_nothing_is_written(project):
    texts = exported(project)
    texts["model.md"] = with_body(texts["model.md"], "Would be written.")
    texts["broken.md"] = "no front matter"
    texts["twice.md"] = texts["data.md"]
    texts["overview.md"] = "---\npage: overview\nfields:\n  colour: blue\n---\n"
    rows = Page.history.count()
    with pytest.raises(ValidationError) as refused:
        push(project, texts)
    errors = refused.value.message_dict
    assert set(errors) == {"broken.md", "twice.md", "overview.md"}
    assert "data.md is page 'data' already." in errors["twice.md"]
    assert "Unknown field 'colour'" in " ".join(errors["overview.md"])
    assert Page.history.count() == rows


def test_the_api_pushes_a_tree_and_answers_what_it_wrote(project, user, api):
    _, key = make_token(user, scopes=["pages:write"], projects=["churn"])
    texts = exported(project)
    texts["data.md"] = with_body(texts["data.md"], "Customers since 2020.")
    body = {
        "source": {"repository": REPO, "branch": "main", "commit": ORIGIN["commit"]},
        "message": "Data: the customers table",
        "files": [{"path": p, "content": t} for p, t in texts.items()],
    }
    answer = api(key).post(DOCS, body, format="json")
    assert answer.status_code == 200, answer.content
    changed = [p for p in answer.json()["pages"] if p["outcome"] != "unchanged"]
    assert changed == [
        {"path": "data.md", "page": "data", "revision": page(project, "data").revision,
         "outcome": "changed"}
    ]  # fmt: skip
    revisions = api(key).get("/api/v1/projects/churn/pages/data/revisions/").json()["results"]
    assert revisions[0]["origin"] == ORIGIN
    assert revisions[0]["reason"] == "Data: the customers table"

    # A browser edit of that page, then a push of another change to it: 409, named.
    data = page(project, "data")
    edit_page(data, actor=WEB, base_revision=data.revision, change_reason="", body="Web.")
    body["files"] = [{"path": "data.md", "content": with_body(texts["data.md"], "Newer.")}]
    conflict = api(key).post(DOCS, body, format="json")
    assert conflict.status_code == 409
    assert conflict.json()["conflicts"] == [
        {"path": "data.md", "page": "data", "revision": data.revision + 1}
    ]
    assert "data.md: 'data' was changed in the wiki" in conflict.json()["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"source": {"repository": REPO, "commit": "not-a-sha"}}, "source"),
        ({"files": []}, "files"),
        ({"files": [{"path": "model.md", "content": 5}]}, "files"),
        ({"files": [{"path": "model.md", "content": "---\n"}]}, "model.md"),
    ],
)
def test_the_api_refuses_bad_pushes_naming_what_is_wrong(project, user, api, change, field):
    _, key = make_token(user, scopes=["pages:write"], projects=["churn"])
    body = {"source": {"repository": REPO, "commit": "abcdef1"}, "files": [
        {"path": "model.md", "content": exported(project)["model.md"]}]} | change  # fmt: skip
    answer = api(key).post(DOCS, body, format="json")
    assert answer.status_code == 400, answer.content
    assert field in answer.json()["errors"]


def test_pushing_needs_the_pages_write_scope(project, user, api):
    _, key = make_token(user, scopes=["read", "records:write"], projects=["churn"])
    body = {"source": {"repository": REPO, "commit": "abcdef1"}, "files": [
        {"path": "model.md", "content": "---\npage: model\n---\nWritten?"}]}  # fmt: skip
    assert api(key).post(DOCS, body, format="json").status_code == 403
    assert api().post(DOCS, body, format="json").status_code in (401, 403)
    assert page(project, "model").body == ""


def test_the_history_page_links_a_pushed_revision_to_its_commit(project, user):
    texts = exported(project)
    push(project, dict(texts, **{"model.md": with_body(texts["model.md"], "Pushed.")}))
    client = Client()
    client.force_login(user)
    response = client.get("/projects/churn/model/history/")
    assert history_lines(response)[0].reason == "Describe the model"
    link = f'<a href="{REPO}/commit/{ORIGIN["commit"]}" rel="noopener noreferrer">'
    assert f"{link}git a1b2c3d4e5f6 (main)</a>" in response.content.decode()


def git(repo, *args):
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.django_db(transaction=True)
def test_the_ci_client_pushes_a_folder_from_git(live_server, user, project, tmp_path):
    _, key = make_token(user, scopes=["pages:write"], projects=["churn"])
    repo, docs = tmp_path / "repo", tmp_path / "repo" / "docs"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    git(repo, "config", "user.email", "ci@example.com")
    git(repo, "config", "user.name", "CI")
    git(repo, "remote", "add", "origin", "https://ci-token:s3cret@git.example.com/ml/churn.git")
    doctree.write(project, docs)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "Docs exported from the wiki")
    env = {"url": live_server.url, "token": key, "run_id": ""}

    unchanged = run_client("docs-push", "--project", "churn", str(docs), **env)
    assert unchanged.returncode == 0, unchanged.stderr
    assert "0 of 6 pages written" in unchanged.stderr

    (docs / "model.md").write_text(with_body((docs / "model.md").read_text(), "From git."))
    git(repo, "commit", "-q", "-am", "Model: describe the trees\n\nWith a body line.")
    sha = git(repo, "rev-parse", "HEAD")
    pushed = run_client("docs-push", "--project", "churn", str(docs), **env)
    assert pushed.returncode == 0, pushed.stderr
    assert "model.md: changed" in pushed.stderr
    row = page(project, "model").history.latest("history_id")
    assert row.history_origin == git_origin(
        repository="https://git.example.com/ml/churn.git", branch="main", commit=sha
    )  # the remote's credentials are not sent
    assert row.history_change_reason == "Model: describe the trees\n\nWith a body line."

    model = page(project, "model")
    edit_page(model, actor=WEB, base_revision=model.revision, change_reason="", body="Web.")
    (docs / "model.md").write_text(with_body((docs / "model.md").read_text(), "Git again."))
    git(repo, "commit", "-q", "-am", "Model: again")
    refused = run_client("docs-push", "--project", "churn", str(docs), **env)
    assert refused.returncode == 1
    assert "model.md: 'model' was changed in the wiki since the last push" in refused.stderr
    assert page(project, "model").body == "Web."
    assert json.loads(unchanged.stdout)["pages"][0]["outcome"] == "unchanged"


def test_the_origin_is_sealed_and_rows_from_before_it_verify_as_they_were(project):
    texts = exported(project)
    push(project, dict(texts, **{"model.md": with_body(texts["model.md"], "Pushed.")}))
    row = page(project, "model").history.latest("history_id")
    # A row sealed before the column existed had no such key: null is hashed as absent.
    plain = {"history_id": 1, "history_change_reason": "Created"}
    assert audit.canonical(plain | {"history_origin": None}) == audit.canonical(plain)
    assert audit.verify(audit.head_for(project)).ok
    # Rewriting the origin behind the application's back breaks the chain at that row.
    forged = git_origin(repository=REPO, branch="main", commit="feedbeef")
    type(row).objects.filter(history_id=row.history_id).update(history_origin=forged)
    verdict = audit.verify(audit.head_for(project))
    assert not verdict.ok
    assert verdict.first_bad["history_id"] == row.history_id


def test_the_same_branch_of_the_same_repository_however_spelt_may_replace_its_pushes(project):
    texts = exported(project)
    push(project, dict(texts, **{"model.md": with_body(texts["model.md"], "One.")}))
    # The same repository through ssh, from a laptop: its push replaces the last one.
    laptop = git_origin(repository="git@git.example.com:ml/churn.git", branch="main",
                        commit="b2c3d4e")  # fmt: skip
    texts["model.md"] = with_body(texts["model.md"], "Two.")
    outcomes = {path: how for path, _, how in push(project, texts, origin=laptop)}
    assert outcomes["model.md"] == "changed"
    # Another branch of it is not the line the page follows: a conflict, nothing written.
    feature = dict(laptop, branch="feature/old-docs")
    with pytest.raises(TreeConflict):
        push(project, dict(texts, **{"model.md": with_body(texts["model.md"], "Old.")}),
             origin=feature)  # fmt: skip
    assert page(project, "model").body == "Two."


def test_a_path_sent_twice_is_refused_not_dropped(project):
    files = [
        TreeFile("x.md", "---\npage: runbook\ntitle: Runbook\n---\nOne."),
        TreeFile("x.md", "---\npage: glossary\ntitle: Glossary\n---\nTwo."),
    ]
    with pytest.raises(ValidationError) as refused:
        push_tree(project, actor=cli_actor(), files=files, origin=ORIGIN)
    assert refused.value.message_dict == {"x.md": ["This path is in the push twice."]}
    assert not Page.objects.filter(project=project, slug__in=["runbook", "glossary"]).exists()
