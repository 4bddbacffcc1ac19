"""Single sign-on with OpenID Connect, against a real provider (django-oauth-toolkit in OIDC
mode, tests/oidc_provider/) started by the tests on 127.0.0.1.

The browser's part is played by two clients: Django's test client for mlwiki and a
requests session for the provider, each keeping its own cookies. The same journey in
Chromium is in tests/browser/test_sso.py.
"""

import html
import time
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD, ProjectFactory, UserFactory
from tests.oidc_provider.fixtures import (  # noqa: F401 - fixtures
    CLIENT_ID,
    ROLE_MAP,
    callback_path,
    oidc_provider_fixture,
    rsa_key_pem,
    sso_fixture,
)
from tests.test_settings import PRODUCTION, manage
from wiki import audit, oidc, rolemap
from wiki.access import AUDITOR_GROUP, VALIDATE, VALIDATOR_GROUP, can, is_auditor
from wiki.models import Membership, SsoAccount
from wiki.rolemap import Grant, MappedRoles, RoleMapError
from wiki.services import sso as sso_service
from wiki.services.sso import SignInRefused

User = get_user_model()


# The role map ----------------------------------------------------------------------------


def test_the_role_map_reads_roles_projects_and_the_global_groups():
    grants = rolemap.parse(
        " ml-platform=maintainer:* ; risk=auditor;ds-churn=editor:churn-prediction;;"
        "/org/team=viewer:fraud;mrm=validator;mrm-churn=validator:churn;mrm-all=validator:*"
    )
    assert grants == [
        Grant("ml-platform", "maintainer", "*"),
        Grant("risk", "auditor"),
        Grant("ds-churn", "editor", "churn-prediction"),
        Grant("/org/team", "viewer", "fraud"),
        Grant("mrm", "validator"),  # the validator group
        Grant("mrm-churn", "validator", "churn"),  # a project's validator role
        Grant("mrm-all", "validator", "*"),
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a=boss:churn", "unknown role 'boss'; use viewer, editor, maintainer, validator or"),
        ("a=editor", "editor needs a project"),
        ("a=auditor:churn", "auditor reads every project"),
        ("a=auditor:", "auditor reads every project"),
        ("a=validator:", "'validator:*', or 'validator' alone for the validator group"),
        ("a=validator:Not A Slug", "'Not A Slug' is not a project slug"),
        ("a=validator;b=validator:x;c=validator:", "entry 3 ('c=validator:')"),
        ("=editor:churn", "write <group>=<role>"),
        ("ds-churn editor:churn", "write <group>=<role>"),
        ("a=viewer:Not A Slug", "'Not A Slug' is not a project slug"),
        ("a=viewer:x;b=editor", "entry 2 ('b=editor')"),
    ],
)
def test_a_role_map_typo_is_refused_naming_the_entry(text, says):
    with pytest.raises(RoleMapError, match=None) as refusal:
        rolemap.parse(text)
    assert says in str(refusal.value)


def test_the_highest_role_wins_and_a_star_means_every_project():
    grants = rolemap.parse("all=viewer:*;a=editor:churn;b=maintainer:churn;c=editor:gone")
    mapped = rolemap.roles_for(grants, ["all", "b", "a", "c"], {"churn", "fraud"})
    assert (mapped.auditor, mapped.validator) == (False, False)
    assert mapped.projects == {"churn": "maintainer", "fraud": "viewer"}  # "gone": no project
    assert rolemap.roles_for(grants, ["nobody's group"], {"churn"}) == MappedRoles()


@pytest.mark.parametrize(
    "text",
    [
        "all=viewer:*;mrm=validator:*;ds=editor:churn;ops=maintainer:ops",
        "ops=maintainer:ops;ds=editor:churn;mrm=validator:*;all=viewer:*",  # order is no matter
    ],
)
def test_validating_outranks_viewing_and_editing_outranks_validating(text):
    grants = rolemap.parse(text)
    mapped = rolemap.roles_for(grants, ["all", "mrm", "ds", "ops"], {"churn", "fraud", "ops"})
    # Who may edit churn does not validate it (independence); fraud they only read and
    # validate.
    assert mapped.projects == {"churn": "editor", "fraud": "validator", "ops": "maintainer"}
    assert not mapped.validator


def test_the_auditor_and_validator_groups_need_no_project():
    grants = rolemap.parse("risk=auditor;mrm=validator;ds=editor:churn")
    assert rolemap.roles_for(grants, ["mrm", "ds"], {"churn"}) == MappedRoles(
        validator=True, projects={"churn": "editor"}
    )
    assert rolemap.roles_for(grants, ["risk"], {"churn"}) == MappedRoles(auditor=True)


def test_a_role_map_typo_stops_the_start_with_what_to_fix():
    result = manage("check", OIDC_ROLE_MAP="ml-platform=maintaner:*")
    assert result.returncode != 0
    assert "wiki.E010" in result.stderr
    assert "unknown role 'maintaner'" in result.stderr
    assert "mrm=validator" in result.stderr  # the hint shows every kind of role


def test_single_sign_on_without_its_client_stops_the_start():
    result = manage("check", OIDC_ISSUER="https://login.example.com/realms/company")
    assert result.returncode != 0
    assert "wiki.E011" in result.stderr
    assert "Set OIDC_CLIENT_ID and OIDC_CLIENT_SECRET." in result.stderr


def test_turning_the_password_form_off_without_single_sign_on_stops_the_start():
    result = manage("check", LOCAL_LOGIN="false")
    assert result.returncode != 0
    assert "wiki.E012" in result.stderr


# Signing in through the provider ---------------------------------------------------------


def sign_in(provider, username, client=None, start_query=""):
    """Start a sign-in at mlwiki, log in at the provider, come back: (client, answer)."""
    client = client or Client()
    start = client.post(reverse("oidc-start") + start_query)
    assert start.status_code == 302
    authorize = urlsplit(start["Location"])
    assert (
        f"{authorize.scheme}://{authorize.netloc}{authorize.path}"
        == f"{provider.issuer}/authorize/"
    )
    asked = parse_qs(authorize.query)
    assert asked["code_challenge_method"] == ["S256"]  # PKCE
    assert {"state", "nonce", "code_challenge"} <= set(asked)
    browser = requests.Session()
    provider.log_in(browser, username)
    authorized = browser.get(start["Location"], allow_redirects=False, timeout=10)
    assert authorized.status_code == 302, authorized.text
    client.provider_session = browser
    return client, client.get(callback_path(authorized.headers["Location"]))


def signed_in_user(client):
    return User.objects.filter(pk=client.session.get("_auth_user_id")).first()


@pytest.fixture
def projects(db):
    return {slug: ProjectFactory(slug=slug) for slug in ("churn", "fraud")}


def test_the_first_sign_in_creates_the_user_with_the_roles_its_groups_map_to(sso, projects):
    client, answer = sign_in(sso, "dana")  # groups ds-churn and risk
    assert answer.status_code == 302
    assert answer["Location"] == reverse("frontend:project-list")
    dana = signed_in_user(client)
    assert dana.username == "dana"
    assert dana.email == "dana@example.com"
    assert not dana.has_usable_password()
    membership = Membership.objects.get(user=dana)
    assert (membership.project.slug, membership.role, membership.managed_by_sso) == (
        "churn", "editor", True,
    )  # fmt: skip
    assert is_auditor(dana)
    account = SsoAccount.objects.get(user=dana)
    assert (account.issuer, account.groups, account.auditor) == (
        sso.issuer,
        ["ds-churn", "risk"],
        True,
    )
    revision = membership.history.get()
    assert (revision.history_source, revision.history_user) == ("sso", dana)
    assert "Test IdP" in revision.history_change_reason
    # The dashboard then shows what the roles give.
    assert client.get(reverse("frontend:project-list")).status_code == 200
    # Administrators see who signs in through the provider, read-only.
    admin = Client()
    admin.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    listing = admin.get(reverse("admin:wiki_ssoaccount_changelist")).content.decode()
    assert "dana" in listing
    detail = admin.get(reverse("admin:wiki_ssoaccount_change", args=[account.pk]))
    assert detail.status_code == 200
    assert 'name="subject"' not in detail.content.decode()  # read-only


def test_a_sign_in_returns_to_the_page_it_started_from_on_this_site_only(sso, projects):
    _, answer = sign_in(sso, "dana", start_query="?next=/projects/churn/")
    assert answer["Location"] == "/projects/churn/"
    _, answer = sign_in(sso, "dana", start_query="?next=https://evil.example.com/")
    assert answer["Location"] == reverse("frontend:project-list")


def test_a_claim_that_cannot_name_a_user_is_refused(sso, settings, projects):
    settings.OIDC_USERNAME_CLAIM = "nickname"  # the provider sends none
    client, answer = sign_in(sso, "dana")
    assert_refused(client, answer, 403, "did not send the 'nickname' claim")
    with pytest.raises(SignInRefused, match="not a user name mlwiki accepts"):
        sso_service.sign_in(sso.issuer, {"sub": "7", "nickname": "Dana Smith"})
    sso_service.sign_in(sso.issuer, {"sub": "7", "nickname": "dana", "groups": ["x\x00"],
                                     "email": "nul\x00@example.com"})  # fmt: skip
    assert SsoAccount.objects.get(subject="7").groups == []
    assert User.objects.get(username="dana").email == ""
    assert not User.objects.exclude(username="dana").exists()


def test_a_group_for_every_project_maintains_each_of_them(sso, projects):
    client, _ = sign_in(sso, "max")  # ml-platform=maintainer:*
    roles = Membership.objects.filter(user=signed_in_user(client)).values_list(
        "project__slug", "role"
    )
    assert sorted(roles) == [("churn", "maintainer"), ("fraud", "maintainer")]


def test_leaving_a_group_takes_its_role_away_at_the_next_login_and_roles_given_by_hand_stay(
    sso, projects
):
    sign_in(sso, "dana")
    dana = User.objects.get(username="dana")
    by_hand = Membership.objects.create(project=projects["fraud"], user=dana, role="maintainer")
    sso.change(user="dana", groups=["ds-fraud"])  # left ds-churn and risk; fraud by hand
    client, answer = sign_in(sso, "dana")
    assert answer.status_code == 302
    assert signed_in_user(client) == dana
    assert list(Membership.objects.filter(user=dana)) == [by_hand]
    by_hand.refresh_from_db()
    assert (by_hand.role, by_hand.managed_by_sso) == ("maintainer", False)
    assert not User.objects.get(pk=dana.pk).groups.filter(name=AUDITOR_GROUP).exists()
    removal = Membership.history.filter(user=dana, history_type="-").get()
    assert removal.history_source == "sso"
    assert SsoAccount.history.filter(user=dana).count() == 2  # the auditor role came and went
    # Every change is in the audit chains, intact.
    out = StringIO()
    call_command("verify_audit", stdout=out)
    assert "NOT INTACT" not in out.getvalue()
    assert "global: intact" in out.getvalue()
    # The members page marks the role that comes from single sign-on.
    sso.change(user="dana", groups=["ds-churn"])
    sign_in(sso, "dana")
    maintainer = Client()
    maintainer.force_login(UserFactory(username="mia"))
    Membership.objects.create(project=projects["churn"], user=User.objects.get(username="mia"),
                              role="maintainer")  # fmt: skip
    page = maintainer.get(reverse("frontend:members", args=["churn"])).content.decode()
    assert 'Editor <span class="muted small">(from single sign-on groups)</span>' in page


def test_an_auditor_made_by_hand_stays_one_when_the_groups_say_nothing(sso, projects, settings):
    settings.OIDC_LINK_LOCAL_ACCOUNTS = True
    nobody = UserFactory(username="nobody")
    nobody.groups.add(Group.objects.get_or_create(name=AUDITOR_GROUP)[0])
    client, _ = sign_in(sso, "nobody")
    assert signed_in_user(client) == nobody  # the local account of that name
    assert User.objects.get(pk=nobody.pk).groups.filter(name=AUDITOR_GROUP).exists()
    assert not SsoAccount.objects.get(user=nobody).auditor


def test_the_validator_group_comes_and_goes_with_the_provider_s_group(sso, projects, settings):
    settings.OIDC_ROLE_MAP = f"{ROLE_MAP};mrm=validator"
    sso.change(user="nobody", groups=["mrm"])
    client, _ = sign_in(sso, "nobody")
    vic = signed_in_user(client)
    assert vic.groups.filter(name=VALIDATOR_GROUP).exists()
    assert SsoAccount.objects.get(user=vic).validator
    assert not Membership.objects.filter(user=vic).exists()  # the group, not a membership
    assert can(User.objects.get(pk=vic.pk), VALIDATE, projects["churn"])
    # Left the provider's group: the next login takes the role away.
    sso.change(user="nobody", groups=[])
    sign_in(sso, "nobody")
    assert not vic.groups.filter(name=VALIDATOR_GROUP).exists()
    assert not SsoAccount.objects.get(user=vic).validator
    assert not can(User.objects.get(pk=vic.pk), VALIDATE, projects["churn"])
    assert list(SsoAccount.history.filter(user=vic).order_by("history_date").values_list(
        "validator", flat=True)) == [True, False]  # fmt: skip
    # The flag is sealed in the global chain; accounts sealed before it existed (no such
    # key) verify as they were, since False is hashed as absent. Forging it breaks the chain.
    plain = {"history_id": 1, "auditor": False}
    assert audit.canonical(plain | {"validator": False}) == audit.canonical(plain)
    assert audit.verify(audit.head_for(None)).ok
    row = SsoAccount.history.filter(user=vic).latest("history_id")
    type(row).objects.filter(history_id=row.history_id).update(validator=True)
    verdict = audit.verify(audit.head_for(None))
    assert not verdict.ok and verdict.first_bad["history_id"] == row.history_id


def test_a_validator_made_by_hand_stays_one_when_the_groups_say_nothing(sso, projects, settings):
    settings.OIDC_ROLE_MAP = f"{ROLE_MAP};mrm=validator"
    settings.OIDC_LINK_LOCAL_ACCOUNTS = True
    nobody = UserFactory(username="nobody")
    nobody.groups.add(Group.objects.get_or_create(name=VALIDATOR_GROUP)[0])
    sign_in(sso, "nobody")
    assert nobody.groups.filter(name=VALIDATOR_GROUP).exists()
    assert not SsoAccount.objects.get(user=nobody).validator
    # Even a login that maps to the group, then one that no longer does, leaves them be.
    sso.change(user="nobody", groups=["mrm"])
    sign_in(sso, "nobody")
    sso.change(user="nobody", groups=[])
    sign_in(sso, "nobody")
    assert nobody.groups.filter(name=VALIDATOR_GROUP).exists()
    assert not SsoAccount.objects.get(user=nobody).validator


def test_a_project_s_validator_role_comes_from_the_map_and_never_where_they_edit(
    sso, projects, settings
):
    settings.OIDC_ROLE_MAP = f"{ROLE_MAP};mrm-churn=validator:churn;mrm=validator:*"
    sso.change(user="dana", groups=["mrm-churn"])
    client, _ = sign_in(sso, "dana")
    dana = signed_in_user(client)
    membership = Membership.objects.get(user=dana)
    assert (membership.project.slug, membership.role, membership.managed_by_sso) == (
        "churn", "validator", True,
    )  # fmt: skip
    assert can(dana, VALIDATE, projects["churn"])
    assert not dana.groups.filter(name=VALIDATOR_GROUP).exists()
    # Also an editor of churn (ds-churn) and a validator of every project (mrm): she edits
    # churn, so she validates fraud only.
    sso.change(user="dana", groups=["mrm-churn", "ds-churn", "mrm"])
    sign_in(sso, "dana")
    roles = Membership.objects.filter(user=dana).values_list("project__slug", "role")
    assert sorted(roles) == [("churn", "editor"), ("fraud", "validator")]
    dana = User.objects.get(pk=dana.pk)
    assert not can(dana, VALIDATE, projects["churn"])
    assert can(dana, VALIDATE, projects["fraud"])


def test_a_local_account_of_the_same_name_is_used_only_when_the_administrator_says_so(
    sso, projects, settings
):
    local = UserFactory(username="nobody")
    client, answer = sign_in(sso, "nobody")
    assert answer.status_code == 403
    assert "already has a local account named &#x27;nobody&#x27;" in answer.content.decode()
    assert signed_in_user(client) is None
    assert not SsoAccount.objects.exists()
    settings.OIDC_LINK_LOCAL_ACCOUNTS = True
    client, _ = sign_in(sso, "nobody")
    assert signed_in_user(client) == local
    assert SsoAccount.objects.get().user == local


def test_an_e_mail_address_names_a_user_only_when_the_provider_verified_it(db, settings):
    settings.OIDC_USERNAME_CLAIM = "email"
    claims = {"sub": "s-1", "email": "eve@example.com"}
    for verified in ({}, {"email_verified": False}, {"email_verified": "true"}):
        with pytest.raises(sso_service.SignInRefused, match="has not verified the e-mail"):
            sso_service.sign_in("https://idp.example.com", claims | verified)
    assert not User.objects.exists()
    user = sso_service.sign_in("https://idp.example.com", claims | {"email_verified": True})
    assert user.username == "eve@example.com"


def test_a_sign_in_never_takes_a_superuser_account_over(sso, projects, settings):
    settings.OIDC_LINK_LOCAL_ACCOUNTS = True
    UserFactory(username="max", is_superuser=True)
    client, answer = sign_in(sso, "max")
    assert answer.status_code == 403
    assert "administrator account" in answer.content.decode()
    assert signed_in_user(client) is None
    assert not SsoAccount.objects.exists()


# Refusals: a clear page, never a 500, nobody signed in -----------------------------------


def assert_refused(client, answer, status, says):
    assert answer.status_code == status
    assert says in html.unescape(answer.content.decode())
    assert signed_in_user(client) is None


def test_a_token_with_another_sign_in_s_nonce_is_refused(sso, projects):
    client = Client()
    start = client.post(reverse("oidc-start"))
    session = client.session
    state = next(iter(session["oidc_states"]))
    session["oidc_states"][state]["nonce"] = "another-sign-in-s-nonce"
    session.save()
    browser = requests.Session()
    sso.log_in(browser, "dana")
    authorized = browser.get(start["Location"], allow_redirects=False, timeout=10)
    answer = client.get(callback_path(authorized.headers["Location"]))
    assert_refused(client, answer, 403, "does not belong to this sign-in (nonce)")
    assert not User.objects.filter(username="dana").exists()


def test_an_expired_id_token_is_refused(sso, projects):
    sso.change(id_token_seconds=-3600)
    client, answer = sign_in(sso, "dana")
    assert_refused(client, answer, 403, "token has expired")


def test_a_token_from_another_issuer_is_refused(sso, projects):
    oidc.discovery()  # read before: the provider's tokens, not its discovery, change issuer
    sso.change(issuer="http://127.0.0.1:9/another-provider")
    client, answer = sign_in(sso, "dana")
    assert_refused(client, answer, 403, "issued by another provider")


def forged(key, nonce, **claims):
    now = int(time.time())
    payload = {"iss": oidc.settings.OIDC_ISSUER, "aud": CLIENT_ID, "sub": "1", "iat": now,
               "exp": now + 300, "nonce": nonce} | claims  # fmt: skip
    jwks = requests.get(oidc.discovery()["jwks_uri"], timeout=10).json()
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": jwks["keys"][0]["kid"]})


def test_an_id_token_is_accepted_only_when_the_provider_s_key_signed_it(sso):
    backend = oidc.Backend()
    assert backend.verify_token(forged(sso.key, "n1"), nonce="n1")["sub"] == "1"
    with pytest.raises(oidc.SignInRefused, match="not signed by the provider's keys"):
        backend.verify_token(forged(rsa_key_pem(), "n1"), nonce="n1")
    with pytest.raises(oidc.SignInRefused, match="another application"):
        backend.verify_token(forged(sso.key, "n1", aud="another-client"), nonce="n1")
    unsigned = jwt.encode({"iss": sso.issuer, "nonce": "n1"}, None, algorithm="none")
    with pytest.raises(oidc.SignInRefused, match="not signed"):
        backend.verify_token(unsigned, nonce="n1")


def test_a_state_this_browser_did_not_start_is_refused(sso, projects):
    client, _ = sign_in(sso, "dana", client=Client())
    client.logout()
    client.post(reverse("oidc-start"))  # a session with a state, but not this one
    answer = client.get(reverse("oidc-callback"), {"code": "abc", "state": "forged"})
    assert_refused(client, answer, 400, "not started in this browser")
    fresh = Client()  # no state at all in its session
    answer = fresh.get(reverse("oidc-callback"), {"code": "abc", "state": "forged"})
    assert_refused(fresh, answer, 400, "not started in this browser")


def test_a_provider_that_says_no_is_a_clear_page(sso, db):
    client = Client()
    answer = client.get(reverse("oidc-callback"), {"error": "access_denied", "state": "x"})
    assert_refused(client, answer, 403, "declined to sign in to mlwiki")
    # Text of someone else's in the link is not shown.
    lure = {"error": "Call +1 555 0100 to unlock your account", "state": "x"}
    answer = client.get(reverse("oidc-callback"), lure)
    assert_refused(client, answer, 403, "could not sign you in to mlwiki")
    assert "555" not in answer.content.decode()


def test_a_provider_that_does_not_answer_is_a_503_page(sso, settings, db):
    with socket_closed() as port:
        settings.OIDC_ISSUER = f"http://127.0.0.1:{port}/o"
        client = Client()
        answer = client.post(reverse("oidc-start"))
    assert_refused(client, answer, 503, "The sign-in provider does not answer")


def test_a_provider_that_stops_answering_before_the_callback_is_a_503_page(sso, projects):
    client = Client()
    start = client.post(reverse("oidc-start"))
    browser = requests.Session()
    sso.log_in(browser, "dana")
    authorized = browser.get(start["Location"], allow_redirects=False, timeout=10)
    with socket_closed() as port:  # the token endpoint no longer answers
        oidc.discovery()["token_endpoint"] = f"http://127.0.0.1:{port}/o/token/"
        answer = client.get(callback_path(authorized.headers["Location"]))
    assert_refused(client, answer, 503, "The sign-in provider does not answer")
    assert not User.objects.filter(username="dana").exists()


class socket_closed:
    """A port of 127.0.0.1 where nothing listens (bound, never listening, so no other
    process takes it meanwhile)."""

    def __enter__(self):
        import socket

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        return self.socket.getsockname()[1]

    def __exit__(self, *exc):
        self.socket.close()


def test_without_single_sign_on_its_routes_are_404_and_the_login_page_has_no_button(db):
    client = Client()
    assert client.post(reverse("oidc-start")).status_code == 404
    assert client.get(reverse("oidc-callback")).status_code == 404
    page = client.get(reverse("login")).content.decode()
    assert "Sign in with" not in page
    assert 'name="password"' in page


# Logging out ------------------------------------------------------------------------------


def test_logout_ends_the_session_here_and_at_the_provider(sso, projects):
    client, _ = sign_in(sso, "dana")
    answer = client.post(reverse("logout"))
    assert signed_in_user(client) is None
    assert answer.status_code == 302
    end_session = answer["Location"]
    assert end_session.startswith(f"{sso.issuer}/logout/?")
    assert "id_token_hint=" in end_session
    # The provider ends its session and sends the browser back to mlwiki's login page.
    back = client.provider_session.get(end_session, allow_redirects=False, timeout=10)
    assert back.status_code == 302
    assert back.headers["Location"] == "http://testserver/accounts/login/"
    # A new sign-in now asks for the provider's password again.
    start = Client().post(reverse("oidc-start"))
    again = client.provider_session.get(start["Location"], allow_redirects=False, timeout=10)
    assert again.headers["Location"].startswith("/accounts/login/")


def test_a_password_session_logs_out_here_only(sso, user):
    client = Client()
    client.force_login(user)
    answer = client.post(reverse("logout"))
    assert answer["Location"] == reverse("login")


# The password form -------------------------------------------------------------------------


def test_the_login_page_offers_the_provider_and_the_password_form(sso, db):
    answer = Client().get(reverse("login"))
    page = answer.content.decode()
    assert "Sign in with Test IdP" in page
    assert 'name="password"' in page
    # The sign-in button's and the logout's forms redirect to the provider: allowed.
    assert f"form-action 'self' {sso.url};" in answer["Content-Security-Policy"]


def test_endpoints_on_other_hosts_than_the_issuer_are_allowed_form_actions(sso, db, monkeypatch):
    # As with Amazon Cognito (a hosted sign-in domain) or a Keycloak front-end URL: the
    # discovery document names them.
    document = oidc.discovery() | {
        "authorization_endpoint": "https://login.example.net/oauth2/authorize",
        "end_session_endpoint": "https://logout.example.org/end",
    }
    monkeypatch.setitem(oidc._discovered, sso.issuer, document)
    policy = Client().get(reverse("login"))["Content-Security-Policy"]
    origins = f"{sso.url} https://login.example.net https://logout.example.org"
    assert f"form-action 'self' {origins};" in policy


def test_local_login_off_hides_the_form_and_only_superusers_use_the_break_glass_page(
    sso, settings, user
):
    settings.LOCAL_LOGIN = False
    page = Client().get(reverse("login")).content.decode()
    assert "Sign in with Test IdP" in page
    assert 'name="password"' not in page
    # A password posted anyway is refused, here and at the break-glass page, as a wrong
    # one is: the answer does not tell that it was right.
    for route in ("login", "login-local"):
        answers = []
        for password in (PASSWORD, "wrong"):
            client = Client()
            answer = client.post(reverse(route), {"username": "alice", "password": password})
            assert answer.status_code == 200
            assert signed_in_user(client) is None
            answers.append(answer.context["form"].errors.as_data()["__all__"][0].code)
        assert answers == ["invalid_login", "invalid_login"]
    # Nor does the admin's login form let staff who are not superusers in.
    UserFactory(username="stella", is_staff=True)
    client = Client()
    client.post(reverse("admin:login"), {"username": "stella", "password": PASSWORD})
    assert signed_in_user(client) is None
    UserFactory(username="root", is_superuser=True)
    client = Client()
    glass = client.get(reverse("login-local")).content.decode()
    assert 'name="password"' in glass
    assert "Sign in with" not in glass
    answer = client.post(reverse("login-local"), {"username": "root", "password": PASSWORD})
    assert answer.status_code == 302
    assert signed_in_user(client).username == "root"


def test_check_deploy_is_clean_with_single_sign_on_and_no_password_form():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION,
        OIDC_ISSUER="https://keycloak.example.com/realms/company", OIDC_CLIENT_ID="mlwiki",
        OIDC_CLIENT_SECRET="s3cret", LOCAL_LOGIN="false", OIDC_ROLE_MAP=ROLE_MAP,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
