"""Validations and findings over the API: scopes, rights, the life cycle, If-Match,
idempotency, and 400s that name the field."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import UserFactory, make_deployment, make_token
from wiki.models import Finding, FindingComment, Membership, Validation

pytestmark = pytest.mark.django_db

VALIDATIONS = "/api/v1/projects/churn/validations/"
FINDINGS = "/api/v1/projects/churn/findings/"


@pytest.fixture
def vera(project):
    vera = UserFactory(username="vera")
    Membership.objects.create(project=project, user=vera, role=Membership.Role.VALIDATOR)
    return vera


@pytest.fixture
def eddie(project):
    eddie = UserFactory(username="eddie")
    Membership.objects.create(project=project, user=eddie, role=Membership.Role.EDITOR)
    return eddie


def client_of(api, user, scopes=("validations:write",)):
    return api(make_token(user, scopes=scopes, projects=["churn"])[1])


@pytest.fixture
def validator(api, vera):
    return client_of(api, vera)


@pytest.fixture
def owner(api, eddie):
    return client_of(api, eddie)


def finding_body(**changes):
    due = (timezone.localdate() + timedelta(days=30)).isoformat()
    body = {
        "title": "Split leaks the future",
        "description": "The test split overlaps training.",
        "severity": "high",
        "page": "data",
        "field": "split",
        "owner": "eddie",
        "due_date": due,
    }
    return body | changes


@pytest.fixture
def opened(validator, eddie):
    response = validator.post(VALIDATIONS, {"title": "Annual validation"})
    assert response.status_code == 201, response.json()
    return response.json()


def test_the_whole_life_of_a_finding_over_the_api(validator, owner, opened, project):
    assert opened["number"] == 1 and opened["outcome"] == "" and opened["signature"] is None
    assert {"page": "data", "revision": 1} in opened["pinned"]

    filed = validator.post(FINDINGS, finding_body())
    assert filed.status_code == 201, filed.json()
    finding = filed.json()
    assert filed["Location"] == finding["url"]
    assert (finding["validation"], finding["page"], finding["field"]) == (1, "data", "split")
    assert [s["status"] for s in finding["lifecycle"]] == ["open"]

    url = finding["url"]
    proposed = owner.patch(
        url, {"status": "remediation_proposed", "remediation": "Split by time."},
        HTTP_IF_MATCH='"1"',
    )  # fmt: skip
    assert proposed.status_code == 200, proposed.json()
    assert proposed["ETag"] == '"2"'
    closed = validator.patch(url, {"status": "closed", "comment": "Verified."}, HTTP_IF_MATCH='"2"')
    assert closed.status_code == 200, closed.json()
    assert [(s["status"], s["user"]) for s in closed.json()["lifecycle"]] == [
        ("open", "vera"), ("remediation_proposed", "eddie"), ("closed", "vera"),
    ]  # fmt: skip

    concluded = validator.post(
        f"{opened['url']}conclusion/",
        {"outcome": "approved_with_conditions", "conclusion": "Fit, with conditions."},
    )
    assert concluded.status_code == 200, concluded.json()
    body = concluded.json()
    assert body["outcome"] == "approved_with_conditions" and body["concluded_by"] == "vera"
    assert len(body["signature"]["digest"]) == 64

    verified = validator.get("/api/v1/projects/churn/audit/verify/")
    assert verified.json()["ok"] is True
    again = validator.post(
        f"{opened['url']}conclusion/", {"outcome": "rejected", "conclusion": "No."}
    )
    assert again.status_code == 409


def test_an_editor_cannot_open_a_validation_or_file_a_finding(owner, opened):
    assert owner.post(VALIDATIONS, {"title": "Mine"}).status_code == 403
    response = owner.post(FINDINGS, finding_body())
    assert response.status_code == 403
    assert not Finding.objects.exists()


def test_a_token_without_the_scope_cannot_write(api, vera, opened):
    reader = client_of(api, vera, scopes=("read",))
    response = reader.post(FINDINGS, finding_body())
    assert response.status_code == 403
    assert "validations:write" in response.json()["detail"]
    assert reader.get(FINDINGS).status_code == 200


def test_a_validator_cannot_edit_pages(api, vera):
    client = client_of(api, vera, scopes=("pages:write",))
    response = client.patch(
        "/api/v1/projects/churn/pages/data/", {"body": "mine"}, HTTP_IF_MATCH='"1"'
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"severity": "critical"}, "severity"),
        ({"title": ""}, "title"),
        ({"page": "nope"}, "page"),
        ({"field": "colour"}, "field"),
        ({"page": "", "field": ""}, "page"),
        ({"record": "deployment:999"}, "record"),
        ({"revision": 1}, "revision"),
        ({"page_revision": 7}, "page_revision"),
        ({"owner": "ghost"}, "owner"),
        ({"due_date": "2020-01-01"}, "due_date"),
        ({"due_date": "soon"}, "due_date"),
        ({"validation": 9}, "validation"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_finding_is_a_400_naming_the_field(validator, opened, changes, field):
    response = validator.post(FINDINGS, finding_body(**changes))
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"], response.json()
    assert not Finding.objects.exists()


def test_without_an_open_validation_a_finding_names_one(validator):
    response = validator.post(FINDINGS, finding_body())
    assert response.status_code == 400
    assert "none is open" in response.json()["errors"]["validation"][0]


def test_a_finding_about_a_record(validator, opened, project):
    deployment = make_deployment(project)
    response = validator.post(
        FINDINGS, finding_body(page="", field="", record=f"deployment:{deployment.pk}")
    )
    assert response.status_code == 201, response.json()
    assert response.json()["record"] == f"deployment:{deployment.pk}"
    assert response.json()["page"] is None


def test_a_retried_post_files_one_finding(validator, opened):
    first = validator.post(FINDINGS, finding_body(), HTTP_IDEMPOTENCY_KEY="f-1")
    replay = validator.post(FINDINGS, finding_body(), HTTP_IDEMPOTENCY_KEY="f-1")
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    other = validator.post(FINDINGS, finding_body(title="Other"), HTTP_IDEMPOTENCY_KEY="f-1")
    assert other.status_code == 422
    assert Finding.objects.count() == 1


def test_a_retried_conclusion_answers_the_first(validator, opened):
    url = f"{opened['url']}conclusion/"
    body = {"outcome": "approved", "conclusion": "Fit for use."}
    first = validator.post(url, body, HTTP_IDEMPOTENCY_KEY="c-1")
    replay = validator.post(url, body, HTTP_IDEMPOTENCY_KEY="c-1")
    assert (first.status_code, replay.status_code) == (200, 200)
    assert replay.json() == first.json()
    assert Validation.objects.get().history.count() == 2


def test_changes_need_if_match_and_a_stale_one_is_412(validator, owner, opened):
    url = validator.post(FINDINGS, finding_body()).json()["url"]
    change = {"status": "remediation_proposed", "remediation": "Done."}
    assert owner.patch(url, change).status_code == 428
    owner.patch(url, change, HTTP_IF_MATCH='"1"')
    stale = validator.patch(url, {"status": "closed"}, HTTP_IF_MATCH='"1"')
    assert stale.status_code == 412
    assert stale["ETag"] == '"2"'
    assert Finding.objects.get().status == "remediation_proposed"


@pytest.mark.parametrize(
    ("who", "change", "status", "field"),
    [
        ("owner", {"status": "remediation_proposed"}, 400, "remediation"),
        ("owner", {"status": "closed"}, 403, None),
        ("validator", {"status": "closed"}, 409, None),
        ("validator", {"status": "open", "comment": "Again."}, 400, "comment"),
        ("owner", {"status": "accepted_risk", "risk_justification": "ok"}, 403, None),
        ("owner", {"remediation": "x"}, 400, "remediation"),
        ("owner", {"status": "done"}, 400, "status"),
    ],
)
def test_a_move_the_life_cycle_does_not_allow_is_refused(
    validator, owner, opened, who, change, status, field
):
    url = validator.post(FINDINGS, finding_body()).json()["url"]
    client = owner if who == "owner" else validator
    response = client.patch(url, change, HTTP_IF_MATCH="*")
    assert response.status_code == status, response.json()
    if field:
        assert field in response.json()["errors"]
    finding = Finding.objects.get()
    assert (finding.status, finding.revision) == ("open", 1)


def test_a_maintainer_accepts_the_risk(api, user, validator, opened):
    url = validator.post(FINDINGS, finding_body()).json()["url"]
    maintainer = client_of(api, user)
    response = maintainer.patch(
        url, {"status": "accepted_risk", "risk_justification": "Retired soon."},
        HTTP_IF_MATCH='"1"',
    )  # fmt: skip
    assert response.status_code == 200, response.json()
    assert response.json()["accepted_by"] == "alice"


def test_the_owner_and_due_date_change_in_one_revision(validator, opened):
    url = validator.post(FINDINGS, finding_body()).json()["url"]
    due = (timezone.localdate() + timedelta(days=60)).isoformat()
    response = validator.patch(url, {"owner": "alice", "due_date": due}, HTTP_IF_MATCH='"1"')
    assert response.status_code == 200, response.json()
    assert (response.json()["owner"], response.json()["due_date"]) == ("alice", due)
    assert response.json()["revision"] == 2
    refused = validator.patch(url, {"owner": "vera"}, HTTP_IF_MATCH='"2"')
    assert refused.status_code == 400
    assert "validates" in refused.json()["errors"]["owner"][0]


def test_filters(validator, opened):
    validator.post(FINDINGS, finding_body())
    validator.post(FINDINGS, finding_body(severity="low", title="Typo"))
    assert [f["title"] for f in validator.get(f"{FINDINGS}?severity=low").json()["results"]] == [
        "Typo"
    ]
    assert validator.get(f"{FINDINGS}?status=closed").json()["count"] == 0
    assert validator.get(f"{FINDINGS}?validation=1").json()["count"] == 2
    assert validator.get(f"{FINDINGS}?overdue=true").json()["count"] == 0
    assert validator.get(f"{FINDINGS}?overdue=false").json()["count"] == 2
    for bad in ("severity=critical", "overdue=yes", "validation=x", "owner=eddie"):
        response = validator.get(f"{FINDINGS}?{bad}")
        assert response.status_code == 400
        assert bad.split("=")[0] in response.json()["errors"]
    assert validator.get(f"{VALIDATIONS}?open=true").json()["count"] == 1


def test_comments(validator, owner, opened, api, project):
    url = validator.post(FINDINGS, finding_body()).json()["comments_url"]
    response = owner.post(url, {"body": "On it."}, HTTP_IDEMPOTENCY_KEY="c")
    assert response.status_code == 201, response.json()
    assert owner.post(url, {"body": "On it."}, HTTP_IDEMPOTENCY_KEY="c").status_code == 200
    assert owner.post(url, {"body": ""}).status_code == 400
    viewer = UserFactory(username="vic")
    Membership.objects.create(project=project, user=viewer, role=Membership.Role.VIEWER)
    assert client_of(api, viewer).post(url, {"body": "Hm."}).status_code == 403
    listed = client_of(api, viewer, scopes=("read",)).get(url).json()
    assert [(c["author"], c["body"]) for c in listed["results"]] == [("eddie", "On it.")]
    assert FindingComment.objects.count() == 1


def test_unknown_validations_and_findings_are_404(validator):
    assert validator.get(f"{VALIDATIONS}3/").status_code == 404
    assert validator.get(f"{FINDINGS}3/").status_code == 404
    assert validator.get(f"{FINDINGS}3/comments/").status_code == 404


def test_the_list_signs_as_the_detail_does(validator, opened):
    validator.post(f"{opened['url']}conclusion/", {"outcome": "rejected", "conclusion": "No."})
    validator.post(VALIDATIONS, {"title": "Second"})
    listed = validator.get(VALIDATIONS).json()["results"]
    detail = validator.get(opened["url"]).json()
    assert [v["number"] for v in listed] == [2, 1]
    assert listed[1]["signature"] == detail["signature"] and listed[0]["signature"] is None
    assert len(detail["signature"]["digest"]) == 64


def test_the_owner_made_validator_cannot_close_their_remediation_by_patch(
    api, validator, owner, opened, eddie, project
):
    url = validator.post(FINDINGS, finding_body()).json()["url"]
    owner.patch(url, {"status": "remediation_proposed", "remediation": "Done."}, HTTP_IF_MATCH="*")
    Membership.objects.filter(project=project, user=eddie).update(role=Membership.Role.VALIDATOR)
    for change in ({"status": "closed"}, {"status": "open", "comment": "No."}):
        refused = owner.patch(url, change, HTTP_IF_MATCH='"2"')
        assert refused.status_code == 403, refused.json()
        assert "You own finding 1" in refused.json()["detail"]
    finding = Finding.objects.get()
    assert (finding.status, finding.revision, finding.closed_by) == (
        "remediation_proposed", 2, None,
    )  # fmt: skip


def test_a_validator_cannot_pin_their_own_revision(api, eddie, project):
    owner = client_of(api, eddie, scopes=("pages:write", "validations:write"))
    edited = owner.patch(
        "/api/v1/projects/churn/pages/data/", {"body": "Mine."}, HTTP_IF_MATCH='"1"'
    )
    assert edited.status_code == 200, edited.json()
    Membership.objects.filter(project=project, user=eddie).update(role=Membership.Role.VALIDATOR)
    refused = owner.post(VALIDATIONS, {"title": "V", "pinned": [{"page": "data", "revision": 2}]})
    assert refused.status_code == 400, refused.json()
    assert "You wrote Data (revision 2)" in refused.json()["errors"]["pinned"][0]
    assert not Validation.objects.exists()
