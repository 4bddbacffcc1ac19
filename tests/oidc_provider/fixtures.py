"""pytest fixtures of the single sign-on tests: the real test provider (serve.py) in a
subprocess, and mlwiki configured to sign in with it."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from wiki import oidc

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "mlwiki-tests"
CLIENT_SECRET = "mlwiki-tests-secret"  # noqa: S105 - the test provider's client
PROVIDER_PASSWORD = "provider-password"  # noqa: S105
# The provider's users and their groups there.
PROVIDER_USERS = {
    "dana": ["ds-churn", "risk"],
    "max": ["ml-platform"],
    "nobody": [],
}
ROLE_MAP = "ml-platform=maintainer:*;risk=auditor;ds-churn=editor:churn;ds-fraud=viewer:fraud"


def rsa_key_pem():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@dataclass
class Provider:
    url: str
    issuer: str
    key: str  # its signing key (PEM), for tokens a test forges

    def change(self, **change):
        """What the provider says from now on (see tests/oidc_provider/urls.py)."""
        requests.post(f"{self.url}/testing/", json=change, timeout=10).raise_for_status()

    def log_in(self, session, username):
        """Log ``session`` (a requests.Session) in at the provider's own form."""
        form = session.get(f"{self.url}/accounts/login/", timeout=10)
        form.raise_for_status()
        answer = session.post(
            f"{self.url}/accounts/login/",
            data={
                "username": username,
                "password": PROVIDER_PASSWORD,
                "csrfmiddlewaretoken": session.cookies["provider_csrftoken"],
                "next": "/",
            },
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 302, answer.text


# Named apart from the fixtures' names, so a test module imports them without shadowing.
@pytest.fixture(scope="session", name="oidc_provider")
def oidc_provider_fixture(tmp_path_factory):
    """The test provider (django-oauth-toolkit) on a free port of 127.0.0.1."""
    workdir = tmp_path_factory.mktemp("oidc-provider")
    key = rsa_key_pem()
    client = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        # Loopback addresses match on any port (RFC 8252): the live server's too.
        "redirect_uris": [
            "http://testserver/accounts/oidc/callback/",
            "http://127.0.0.1/accounts/oidc/callback/",
        ],
        "post_logout_redirect_uris": [
            "http://testserver/accounts/login/",
            "http://127.0.0.1/accounts/login/",
        ],
        "users": {name: [PROVIDER_PASSWORD, groups] for name, groups in PROVIDER_USERS.items()},
    }
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "DATABASE_", "OIDC_"))
    }
    env |= {
        "PROVIDER_DB": str(workdir / "provider.sqlite3"),
        "PROVIDER_RSA_KEY": key,
        "PROVIDER_CLIENT": json.dumps(client),
    }
    errors = (workdir / "stderr.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.oidc_provider.serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    try:
        line = process.stdout.readline()  # "ready <port>", or "" if it died
        if not line.startswith("ready "):
            process.wait(timeout=10)
            pytest.fail(f"The test provider did not start:\n{(workdir / 'stderr.log').read_text()}")
        url = f"http://127.0.0.1:{line.split()[1]}"
        yield Provider(url=url, issuer=f"{url}/o", key=key)
    finally:
        process.terminate()
        process.wait(timeout=10)
        errors.close()


@pytest.fixture(name="sso")
def sso_fixture(settings, oidc_provider):
    """mlwiki signing in with the test provider (a fresh discovery, default tokens)."""
    settings.OIDC_ISSUER = oidc_provider.issuer
    settings.OIDC_CLIENT_ID = CLIENT_ID
    settings.OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_ROLE_MAP = ROLE_MAP
    settings.OIDC_PROVIDER_NAME = "Test IdP"
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, "wiki.oidc.Backend"]
    oidc._discovered.clear()
    yield oidc_provider
    oidc_provider.change(id_token_seconds=36000, issuer=oidc_provider.issuer)
    for name, groups in PROVIDER_USERS.items():
        oidc_provider.change(user=name, groups=groups)


def callback_path(location):
    """The path and query of an absolute URL the provider redirects to."""
    parts = urlsplit(location)
    return f"{parts.path}?{parts.query}"
