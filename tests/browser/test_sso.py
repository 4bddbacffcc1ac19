"""Single sign-on in Chromium, against the real test provider (tests/oidc_provider/): a
person logs in through the provider's form, lands with the roles its groups map to, and
logging out ends the provider's session too; a token from another sign-in (nonce), an
expired one and one from another issuer are refused with a page saying so. More refusals
(signature, audience, state, provider down) are in tests/test_sso.py."""

import re
from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from tests.browser.support import expect
from tests.factories import ProjectFactory
from tests.oidc_provider.fixtures import (  # noqa: F401 - fixtures
    PROVIDER_PASSWORD,
    oidc_provider_fixture,
    sso_fixture,
)
from wiki import oidc
from wiki.access import is_auditor
from wiki.models import Membership


def provider_log_in(page, sso, username):
    page.wait_for_url(re.compile(rf"^{re.escape(sso.url)}/accounts/login/"))
    page.get_by_label("Provider user").fill(username)
    page.get_by_label("Provider password").fill(PROVIDER_PASSWORD)
    page.get_by_role("button", name="Continue to the application").click()


def test_sign_in_with_the_provider_lands_with_the_mapped_roles_then_log_out_of_both(
    new_page, sso, live_server
):
    ProjectFactory(slug="churn", name="Churn prediction")
    ProjectFactory(slug="fraud", name="Fraud detection")
    page = new_page()
    page.goto("/accounts/login/")
    page.get_by_role("button", name="Sign in with Test IdP").click()
    provider_log_in(page, sso, "dana")  # groups ds-churn (editor of churn) and risk (auditor)

    page.wait_for_url(f"{live_server.url}/")
    expect(page.locator(".user-menu")).to_contain_text("dana")
    dashboard = page.locator("table.dashboard")
    expect(dashboard.get_by_role("link", name="Churn prediction")).to_be_visible()
    expect(dashboard.get_by_role("link", name="Fraud detection")).to_be_visible()  # auditor
    membership = Membership.objects.get(user__username="dana")
    assert (membership.project.slug, membership.role) == ("churn", "editor")
    assert is_auditor(membership.user)
    # The editor's right shows: churn's overview may be edited, fraud's may not.
    page.goto("/projects/churn/overview/")
    expect(page.get_by_role("link", name="Edit", exact=True)).to_be_visible()
    page.goto("/projects/fraud/overview/")
    expect(page.get_by_role("link", name="Edit", exact=True)).to_have_count(0)

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{live_server.url}/accounts/login/")  # back through the provider
    page.goto("/")
    page.wait_for_url(re.compile(r"/accounts/login/"))
    # The provider's session ended too: signing in asks for the password again.
    page.get_by_role("button", name="Sign in with Test IdP").click()
    expect(page.get_by_role("heading", name="Test identity provider")).to_be_visible()


def test_with_the_password_form_off_the_login_page_offers_only_the_provider(
    new_page, sso, settings
):
    settings.LOCAL_LOGIN = False
    page = new_page()
    page.goto("/accounts/login/")
    expect(page.get_by_role("button", name="Sign in with Test IdP")).to_be_visible()
    expect(page.get_by_label("Password")).to_have_count(0)
    page.goto("/accounts/login/local/")
    expect(page.get_by_label("Password")).to_be_visible()


def _give_the_sign_in_another_nonce(page):
    """As if the token came back for another sign-in: the nonce this browser's session
    expects (kept on the server) is changed."""
    (cookie,) = [c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME]
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=cookie["value"])
    states = session["oidc_states"]
    for state in states.values():
        state["nonce"] = "another-sign-in-s-nonce"
    session["oidc_states"] = states
    session.save()


@pytest.mark.parametrize(
    ("refusal", "says"),
    [
        ("nonce", "does not belong to this sign-in (nonce)"),
        ("expired", "token has expired"),
        ("issuer", "issued by another provider"),
    ],
)
def test_a_token_that_fails_its_checks_is_refused_with_a_clear_page(
    new_page, sso, live_server, refusal, says
):
    page = new_page()
    page.goto("/accounts/login/")  # mlwiki reads the provider's discovery document here
    if refusal == "expired":
        sso.change(id_token_seconds=-3600)
    elif refusal == "issuer":
        assert oidc._discovered  # the real issuer's, read before the tokens change
        sso.change(issuer="http://127.0.0.1:9/another-provider")
    page.get_by_role("button", name="Sign in with Test IdP").click()
    page.wait_for_url(re.compile(rf"^{re.escape(sso.url)}/accounts/login/"))
    if refusal == "nonce":
        _give_the_sign_in_another_nonce(page)
    provider_log_in(page, sso, "dana")

    page.wait_for_url(re.compile(r"/accounts/oidc/callback/"))
    expect(page.get_by_role("heading", name="The sign-in could not be verified")).to_be_visible()
    expect(page.locator("main")).to_contain_text(says)
    assert not get_user_model().objects.filter(username="dana").exists()
    page.goto("/")
    page.wait_for_url(re.compile(r"/accounts/login/"))  # not signed in
